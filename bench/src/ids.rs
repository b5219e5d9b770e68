//! Identifiers shaped like the agents' own: uuids, Anthropic message/request/tool-use ids,
//! OpenAI call ids. Their randomness matters for realism: ids are a real share of a log's bytes
//! and compress poorly.

use crate::rng::Rng;

/// A random (version 4) uuid, as Claude Code uses for sessions and records.
pub fn uuid_v4(rng: &mut Rng) -> String {
    let mut out = String::with_capacity(36);
    rng.hex(&mut out, 32);
    let mut u = String::with_capacity(36);
    u.push_str(&out[0..8]);
    u.push('-');
    u.push_str(&out[8..12]);
    u.push_str("-4");
    u.push_str(&out[13..16]);
    u.push('-');
    u.push(['8', '9', 'a', 'b'][rng.index(4)]);
    u.push_str(&out[17..20]);
    u.push('-');
    u.push_str(&out[20..32]);
    u
}

/// A time-ordered (version 7) uuid: Codex names threads with these, so rollout ids sort by
/// their start time.
pub fn uuid_v7(rng: &mut Rng, ms: i64) -> String {
    let time = format!("{:012x}", (ms as u64) & 0xFFFF_FFFF_FFFF);
    let mut rand = String::with_capacity(20);
    rng.hex(&mut rand, 20);
    format!(
        "{}-{}-7{}-{}{}-{}",
        &time[0..8],
        &time[8..12],
        &rand[0..3],
        ['8', '9', 'a', 'b'][rng.index(4)],
        &rand[3..6],
        &rand[6..18]
    )
}

fn prefixed(rng: &mut Rng, prefix: &str, n: usize) -> String {
    let mut out = String::with_capacity(prefix.len() + n);
    out.push_str(prefix);
    rng.base62(&mut out, n);
    out
}

/// `msg_01…`: an Anthropic API message id.
pub fn message_id(rng: &mut Rng) -> String {
    prefixed(rng, "msg_01", 22)
}

/// `req_011C…`: an Anthropic request id.
pub fn request_id(rng: &mut Rng) -> String {
    prefixed(rng, "req_011C", 20)
}

/// `toolu_01…`: a tool call id.
pub fn tool_use_id(rng: &mut Rng) -> String {
    prefixed(rng, "toolu_01", 22)
}

/// `srvtoolu_01…`: a server-side tool call id (web search).
pub fn server_tool_use_id(rng: &mut Rng) -> String {
    prefixed(rng, "srvtoolu_01", 22)
}

/// `call_…`: an OpenAI function call id.
pub fn call_id(rng: &mut Rng) -> String {
    prefixed(rng, "call_", 24)
}

/// A Claude Code subagent id: 8 hex digits in 2.0; later versions use longer ids (the exact
/// form is not pinned down here, only that it is longer and still a file-name-safe token).
pub fn agent_id(rng: &mut Rng, long: bool) -> String {
    let mut out = String::new();
    if long {
        out.push('a');
        rng.hex(&mut out, 16);
    } else {
        rng.hex(&mut out, 8);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shapes() {
        let mut rng = Rng::new(3);
        let v4 = uuid_v4(&mut rng);
        let v7 = uuid_v7(&mut rng, 1_757_844_131_459);
        for u in [&v4, &v7] {
            assert_eq!(u.len(), 36, "{u}");
            for (i, b) in u.bytes().enumerate() {
                match i {
                    8 | 13 | 18 | 23 => assert_eq!(b, b'-'),
                    _ => assert!(b.is_ascii_hexdigit(), "{u}"),
                }
            }
        }
        assert_eq!(&v4[14..15], "4");
        assert!(v7.starts_with("01994"), "{v7}");
        assert_eq!(&v7[14..15], "7");
    }
}

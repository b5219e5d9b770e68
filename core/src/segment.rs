//! Segments: a contiguous ordinal range of one session's messages, as NDJSON.
//!
//! ```text
//! {"count":2,"first_ordinal":0,"kind":"segment","v":1}
//! {"content":"hi","ordinal":0,"role":"user"}
//! {"content":"hello","ordinal":1,"role":"assistant"}
//! ```
//!
//! Every line is canonical JSON: keys in byte order, no whitespace, fields equal to their default
//! omitted (except `ordinal` and `role`), integers only, each line ending in `\n`.
//!
//! The segmenting rule is greedy and prefix-stable: starting from the first message, a segment
//! takes messages until the next one would bring it past [`SEGMENT_TARGET_BYTES`] of message
//! lines or it holds [`SEGMENT_TARGET_MESSAGES`]. Boundaries therefore depend only on the messages
//! before them: appending to a session leaves every segment but the last one untouched.

use serde::{Deserialize, Serialize};

use crate::canonical_line;
use crate::error::{Error, Result};
use crate::id::ArtifactId;
use crate::limits::{
    MAX_JSON_DEPTH, MAX_MESSAGE_BYTES, SEGMENT_MAX_MESSAGES, SEGMENT_TARGET_BYTES,
    SEGMENT_TARGET_MESSAGES,
};
use crate::model::Message;

pub const SEGMENT_VERSION: u64 = 1;

/// A decoded segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub first_ordinal: u64,
    pub messages: Vec<Message>,
}

/// What a manifest records of each of its segments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRef {
    pub id: ArtifactId,
    pub first_ordinal: u64,
    pub count: u32,
    /// Length of the segment's canonical bytes.
    pub bytes: u64,
}

/// A segment ready to be sealed and written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedSegment {
    pub reference: SegmentRef,
    pub canonical: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    count: u64,
    first_ordinal: u64,
    kind: String,
    v: u64,
}

#[derive(Deserialize)]
struct VersionOnly {
    v: Option<u64>,
}

/// The canonical JSON line of one message, with its newline.
pub fn message_line(message: &Message) -> Result<Vec<u8>> {
    message.validate()?;
    let mut line =
        serde_json::to_vec(message).map_err(|e| Error::malformed("message", e.to_string()))?;
    line.push(b'\n');
    if line.len() > MAX_MESSAGE_BYTES {
        return Err(Error::SizeLimit {
            kind: "message line",
            limit: MAX_MESSAGE_BYTES as u64,
            actual: line.len() as u64,
        });
    }
    Ok(line)
}

fn check_contiguous(messages: &[Message]) -> Result<()> {
    for pair in messages.windows(2) {
        if pair[0].ordinal.checked_add(1) != Some(pair[1].ordinal) {
            return Err(Error::malformed(
                "segment",
                format!(
                    "ordinals must be contiguous: {} is followed by {}",
                    pair[0].ordinal, pair[1].ordinal
                ),
            ));
        }
    }
    Ok(())
}

fn assemble(first_ordinal: u64, lines: &[Vec<u8>]) -> Result<EncodedSegment> {
    let header = Header {
        count: lines.len() as u64,
        first_ordinal,
        kind: "segment".into(),
        v: SEGMENT_VERSION,
    };
    let mut canonical =
        serde_json::to_vec(&header).map_err(|e| Error::malformed("segment", e.to_string()))?;
    canonical.push(b'\n');
    for line in lines {
        canonical.extend_from_slice(line);
    }
    Ok(EncodedSegment {
        reference: SegmentRef {
            id: ArtifactId::of(&canonical),
            first_ordinal,
            count: lines.len() as u32,
            bytes: canonical.len() as u64,
        },
        canonical,
    })
}

/// Encodes `messages` (contiguous ordinals, at least one) as exactly one segment.
pub fn encode_segment(messages: &[Message]) -> Result<EncodedSegment> {
    let first = messages
        .first()
        .ok_or_else(|| Error::malformed("segment", "a segment holds at least one message"))?;
    crate::limits::check_count("segment messages", messages.len(), SEGMENT_MAX_MESSAGES)?;
    check_contiguous(messages)?;
    let lines = messages
        .iter()
        .map(message_line)
        .collect::<Result<Vec<_>>>()?;
    assemble(first.ordinal, &lines)
}

/// Splits a session's messages (contiguous ordinals, from any first ordinal that is itself a
/// segment boundary, such as 0) into segments by the segmenting rule.
pub fn segment_messages(messages: &[Message]) -> Result<Vec<EncodedSegment>> {
    check_contiguous(messages)?;
    let mut out = Vec::new();
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0usize;
    let mut first = messages.first().map_or(0, |m| m.ordinal);
    for message in messages {
        let line = message_line(message)?;
        let full = lines.len() >= SEGMENT_TARGET_MESSAGES
            || (!lines.is_empty() && bytes + line.len() > SEGMENT_TARGET_BYTES);
        if full {
            out.push(assemble(first, &lines)?);
            lines.clear();
            bytes = 0;
            first = message.ordinal;
        }
        bytes += line.len();
        lines.push(line);
    }
    if !lines.is_empty() {
        out.push(assemble(first, &lines)?);
    }
    Ok(out)
}

/// Depth of JSON nesting of one line, checked before serde sees it. Strings (most of a
/// segment's bytes) are skipped with memchr rather than walked byte by byte.
pub(crate) fn check_depth(line: &[u8]) -> Result<()> {
    let mut depth = 0u32;
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b'"' => {
                // Skip to the closing quote, stepping over escapes.
                let mut j = i + 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &line[j..]) {
                        None => return Ok(()),
                        Some(k) if line[j + k] == b'\\' => j += k + 2,
                        Some(k) => {
                            j += k;
                            break;
                        }
                    }
                    if j >= line.len() {
                        return Ok(());
                    }
                }
                i = j;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(Error::NestingLimit {
                        what: "segment line",
                        limit: MAX_JSON_DEPTH,
                    });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Reads a message line in the canonical shape [`message_line`] writes (without its newline),
/// or `None` for any other line, which may still be valid JSON of a message: parse that one
/// with serde_json. A host storing canonical lines (the archive's `rest_json`) reads them back
/// at the read path's speed with this. A message it returns may still break the limits:
/// [`Message::validate`] says.
pub fn read_canonical_message(line: &[u8]) -> Option<Message> {
    canonical_line::parse_message(line)
}

/// Splits on `\n` with memchr; yields the last piece even when empty, like `split`.
struct LineSplit<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for LineSplit<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match memchr::memchr(b'\n', rest) {
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                Some(&rest[..i])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// Decodes a segment's canonical bytes. Unknown keys (appended by a newer writer of the same
/// version) are skipped; a newer version is [`Error::FutureVersion`].
pub fn decode_segment(bytes: &[u8]) -> Result<Segment> {
    const WHAT: &str = "segment";
    let body = bytes
        .strip_suffix(b"\n")
        .ok_or(Error::Truncated { what: WHAT })?;
    let mut lines = LineSplit { rest: Some(body) };
    let header_line = lines.next().ok_or(Error::Truncated { what: WHAT })?;
    check_depth(header_line)?;
    let version: VersionOnly = serde_json::from_slice(header_line)
        .map_err(|e| Error::malformed(WHAT, format!("header: {e}")))?;
    match version.v {
        None | Some(0) => return Err(Error::malformed(WHAT, "header has no version")),
        Some(v) if v > SEGMENT_VERSION => {
            return Err(Error::FutureVersion {
                what: WHAT,
                version: v,
                supported: SEGMENT_VERSION,
            });
        }
        Some(_) => {}
    }
    let header: Header = serde_json::from_slice(header_line)
        .map_err(|e| Error::malformed(WHAT, format!("header: {e}")))?;
    if header.kind != "segment" {
        return Err(Error::KindMismatch {
            expected: "segment",
            found: "other",
        });
    }
    if header.count > SEGMENT_MAX_MESSAGES as u64 {
        return Err(Error::CountLimit {
            what: "segment messages",
            limit: SEGMENT_MAX_MESSAGES as u64,
            actual: header.count,
        });
    }
    if header.count == 0 {
        return Err(Error::malformed(
            WHAT,
            "a segment holds at least one message",
        ));
    }
    let mut messages = Vec::with_capacity(header.count as usize);
    for (i, line) in lines.enumerate() {
        if i as u64 >= header.count {
            return Err(Error::malformed(
                WHAT,
                format!("more lines than the {} announced", header.count),
            ));
        }
        if line.len() + 1 > MAX_MESSAGE_BYTES {
            return Err(Error::SizeLimit {
                kind: "message line",
                limit: MAX_MESSAGE_BYTES as u64,
                actual: line.len() as u64 + 1,
            });
        }
        let message = match canonical_line::parse_message(line) {
            Some(message) => message,
            None => {
                check_depth(line)?;
                serde_json::from_slice(line)
                    .map_err(|e| Error::malformed(WHAT, format!("line {}: {e}", i + 2)))?
            }
        };
        message.validate()?;
        let expected = header.first_ordinal.checked_add(i as u64);
        if Some(message.ordinal) != expected {
            return Err(Error::malformed(
                WHAT,
                format!(
                    "line {} has ordinal {}, expected {expected:?}",
                    i + 2,
                    message.ordinal
                ),
            ));
        }
        messages.push(message);
    }
    if messages.len() as u64 != header.count {
        return Err(Error::Truncated { what: WHAT });
    }
    Ok(Segment {
        first_ordinal: header.first_ordinal,
        messages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_depth_ok(line: &[u8]) -> bool {
        let (mut depth, mut in_string, mut escaped) = (0u32, false, false);
        for &b in line {
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => {
                    depth += 1;
                    if depth > MAX_JSON_DEPTH {
                        return false;
                    }
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        true
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let deep_string = format!(
            "{{\"a\":\"{}\\\"{}\",\"b\":[1]}}",
            "[".repeat(40),
            "{".repeat(40)
        );
        assert!(check_depth(deep_string.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(17), "]".repeat(17));
        assert!(check_depth(deep.as_bytes()).is_err());
    }

    proptest! {
        #[test]
        fn fast_depth_scan_agrees_with_the_byte_walk(
            line in proptest::collection::vec(prop::sample::select(b"[]{}\"\\ax".to_vec()), 0..200)
        ) {
            prop_assert_eq!(check_depth(&line).is_ok(), naive_depth_ok(&line));
        }
    }
}

//! Fitting values from agent logs into the wire limits (`agentsync_core::limits`).
//!
//! Logs are not bounded, the wire format is: a writer must never produce a message or session
//! its peers would reject. Oversized text is cut at a character boundary, with a marker on the
//! large text fields so a reader can tell the archive holds less than the log did.

use agentsync_core::limits::{
    MAX_LABEL, MAX_MESSAGE_BYTES, MAX_NATIVE_ID, MAX_PATH, MAX_TEXT, MAX_TOOL_CALLS,
};
use agentsync_core::{Message, NativeId, UsageEvent};
use std::io::{self, Read};

/// `text` cut to at most `limit` bytes, at a character boundary.
pub fn clip(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn clip_in_place(text: &mut String, limit: usize) {
    let len = clip(text, limit).len();
    text.truncate(len);
}

/// Cuts a large text field to `limit` bytes, ending it with a note of what was left out.
fn clip_text(text: &mut String, limit: usize) {
    let original = text.len();
    clip_text_of(text, original, limit);
}

/// Cuts `text`, the start of a text of `original` bytes, to `limit` bytes, ending it with a
/// note of what was left out of the original when it did not fit.
fn clip_text_of(text: &mut String, original: usize, limit: usize) {
    if original <= limit && text.len() <= limit {
        return;
    }
    let note_room = 64;
    let keep = clip(text, limit.saturating_sub(note_room)).len();
    text.truncate(keep);
    let note = format!("\n[agentsync: {} bytes cut]", original.max(keep) - keep);
    if text.len() + note.len() <= limit {
        text.push_str(&note);
    }
}

/// The text of a file of `len` bytes read through `reader`, reading at most `limit` bytes: a
/// longer file is cut with the note [`fit_message`] gives a cut text, counting the bytes of
/// the file left out. Bytes that are not UTF-8 become U+FFFD.
pub(crate) fn read_text(reader: impl Read, len: u64, limit: usize) -> io::Result<String> {
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(limit).min(limit));
    reader.take(limit as u64).read_to_end(&mut bytes)?;
    let read = bytes.len();
    let mut text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    // The file may have grown since its length was taken: what was read counts too.
    let original = usize::try_from(len).unwrap_or(usize::MAX).max(read);
    clip_text_of(&mut text, original, limit);
    Ok(text)
}

/// The id an agent's session name becomes: characters outside `[A-Za-z0-9._-]` replaced by
/// `_`, at most 128 bytes, no leading `.`. `None` if nothing valid is left.
pub fn native_id(raw: &str) -> Option<NativeId> {
    let mut id: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    id.truncate(MAX_NATIVE_ID);
    if id.starts_with('.') {
        id.replace_range(..1, "_");
    }
    id.parse().ok()
}

/// Makes `message` pass `Message::validate` and fit in one segment line.
pub fn fit_message(message: &mut Message) {
    clip_text(&mut message.content, MAX_TEXT);
    clip_text(&mut message.thinking, MAX_TEXT);
    clip_in_place(&mut message.model, MAX_LABEL);
    clip_in_place(&mut message.role, MAX_LABEL);
    // A role is required and never empty: a log record without one is kept as `unknown`.
    if message.role.is_empty() {
        message.role = "unknown".into();
    }
    clip_in_place(&mut message.source_uuid, MAX_PATH);
    clip_in_place(&mut message.parent_uuid, MAX_PATH);
    clip_in_place(&mut message.api_message_id, MAX_PATH);
    clip_in_place(&mut message.request_id, MAX_PATH);
    message.tool_calls.truncate(MAX_TOOL_CALLS);
    for call in &mut message.tool_calls {
        clip_in_place(&mut call.name, MAX_LABEL);
        clip_in_place(&mut call.category, MAX_LABEL);
        clip_in_place(&mut call.id, MAX_PATH);
        clip_in_place(&mut call.file_path, MAX_PATH);
        clip_in_place(&mut call.subagent_session, MAX_PATH);
        clip_text(&mut call.input, MAX_TEXT);
        clip_text(&mut call.result, MAX_TEXT);
    }
    shrink_to_line_limit(message);
}

/// Makes a usage event fit its manifest's limits (a model name is whatever the log says).
pub fn fit_usage_event(event: &mut UsageEvent) {
    clip_in_place(&mut event.source, MAX_LABEL);
    clip_in_place(&mut event.model, MAX_LABEL);
    clip_in_place(&mut event.dedup_key, MAX_PATH);
}

/// JSON escaping can grow text up to six times (`\u0000`), so only a message whose raw text
/// could pass the line limit after escaping is serialized to check.
fn shrink_to_line_limit(message: &mut Message) {
    const ESCAPED_GROWTH: usize = 6;
    const OVERHEAD_PER_CALL: usize = 256;
    loop {
        let raw = message.content.len()
            + message.thinking.len()
            + message
                .tool_calls
                .iter()
                .map(|c| c.input.len() + c.result.len() + OVERHEAD_PER_CALL)
                .sum::<usize>();
        if raw * ESCAPED_GROWTH < MAX_MESSAGE_BYTES {
            return;
        }
        let line_len = serde_json::to_vec(message).map_or(usize::MAX, |line| line.len() + 1);
        if line_len <= MAX_MESSAGE_BYTES {
            return;
        }
        let largest = std::iter::once(&mut message.content)
            .chain(std::iter::once(&mut message.thinking))
            .chain(
                message
                    .tool_calls
                    .iter_mut()
                    .flat_map(|c| [&mut c.input, &mut c.result]),
            )
            .max_by_key(|text| text.len());
        match largest {
            Some(text) if !text.is_empty() => {
                let half = text.len() / 2;
                clip_text(text, half);
            }
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentsync_core::segment::message_line;
    use agentsync_core::{ToolCall, limits::MAX_NOTE};

    #[test]
    fn clip_respects_char_boundaries() {
        assert_eq!(clip("héllo", 2), "h");
        assert_eq!(clip("héllo", 3), "hé");
        assert_eq!(clip("abc", 10), "abc");
        assert_eq!(clip("", 0), "");
        let long = "é".repeat(MAX_NOTE);
        assert_eq!(clip(&long, MAX_NOTE).len(), MAX_NOTE);
    }

    #[test]
    fn native_ids_are_sanitised() {
        let id = |raw: &str| native_id(raw).map(|id| id.as_str().to_owned());
        assert_eq!(
            id("b25638d7-b104-4f06-a797-70ac33d069ed").as_deref(),
            Some("b25638d7-b104-4f06-a797-70ac33d069ed")
        );
        assert_eq!(id("a b/c:d").as_deref(), Some("a_b_c_d"));
        assert_eq!(id(".hidden").as_deref(), Some("_hidden"));
        assert_eq!(id(&"x".repeat(300)).map(|s| s.len()), Some(128));
        assert_eq!(id(""), None);
    }

    #[test]
    fn oversized_messages_fit_one_line() {
        let control_chars = "\u{1}".repeat(MAX_TEXT + 10);
        let mut message = Message {
            role: "r".repeat(MAX_LABEL + 1),
            content: control_chars.clone(),
            thinking: "t".repeat(MAX_TEXT),
            tool_calls: vec![ToolCall {
                name: "Bash".into(),
                result: control_chars,
                ..ToolCall::default()
            }],
            ..Message::default()
        };
        fit_message(&mut message);
        assert!(message.content.ends_with("bytes cut]"));
        let line = message_line(&message).expect("the fitted message encodes");
        assert!(line.len() <= MAX_MESSAGE_BYTES);
    }

    #[test]
    fn a_file_longer_than_the_limit_is_cut_with_a_note() {
        let file = "é".repeat(100);
        let text = read_text(file.as_bytes(), file.len() as u64, 200).unwrap();
        assert_eq!(text, file, "a file within the limit is read whole");

        let text = read_text(file.as_bytes(), file.len() as u64, 101).unwrap();
        let kept = "é".repeat(18);
        assert_eq!(
            text,
            format!("{kept}\n[agentsync: {} bytes cut]", 200 - kept.len())
        );
        assert!(text.len() <= 101);

        let text = read_text(&b"ok \xff"[..], 4, 100).unwrap();
        assert_eq!(text, "ok \u{fffd}");
    }

    #[test]
    fn a_message_without_a_role_is_kept_as_unknown() {
        let mut message = Message {
            content: "text".into(),
            ..Message::default()
        };
        assert!(
            message_line(&message).is_err(),
            "readers refuse an empty role"
        );
        fit_message(&mut message);
        assert_eq!(message.role, "unknown");
        assert!(message_line(&message).is_ok());
    }
}

//! A strict reader of canonical message lines: the read path's fast way in, beside serde_json.
//!
//! Nearly every segment line a reader meets was written by [`crate::segment::message_line`]:
//! keys in byte order, no whitespace, integers only, non-ASCII text raw and only `"`, `\` and
//! control characters escaped. [`parse_message`] reads exactly such lines, scanning strings with
//! `memchr` straight into their own allocation, and gives up (`None`) on anything else:
//! whitespace, a key out of order or unknown, `null`, a float, an escaped key, a surrogate
//! escape, a byte below 0x20, invalid UTF-8, trailing bytes. The caller then hands the line to
//! serde_json, which stays the judge of everything unusual and the author of every error
//! message, so what a reader accepts and how it words a refusal are the same with or without
//! this path.
//!
//! What this module promises (and its property tests check): when it returns a message,
//! serde_json parses the same line into an equal message, and the line is within the nesting
//! limit (a canonical message nests at most five levels: message, `tool_calls`, a call,
//! `result_events`, an event).

use crate::model::{Message, TokenUsage, ToolCall, ToolResultEvent};

/// Parses one canonical message line (without its newline), or `None` when the line is not in
/// the canonical shape this reader knows (which does not make it invalid: see the module docs).
pub(crate) fn parse_message(line: &[u8]) -> Option<Message> {
    // serde_json refuses raw control characters inside strings, and canonical lines have no
    // whitespace outside them: any byte below 0x20 means "not for this reader". The fold has
    // no early exit so that it vectorizes.
    if line
        .chunks(64)
        .any(|chunk| chunk.iter().fold(false, |seen, &b| seen | (b < 0x20)))
    {
        return None;
    }
    let text = std::str::from_utf8(line).ok()?;
    let mut cursor = Cursor { text, at: 0 };
    let message = cursor.message()?;
    (cursor.at == text.len()).then_some(message)
}

struct Cursor<'a> {
    /// The whole line, valid UTF-8; `at` only ever stops on ASCII bytes, so slices of `text`
    /// between two stops are on character boundaries.
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.bytes().get(self.at) == Some(&byte)).then(|| self.at += 1)
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let found = self.text[self.at..].starts_with(word);
        if found {
            self.at += word.len();
        }
        found
    }

    /// An object whose keys come in strictly increasing byte order (so no key twice, which
    /// serde refuses), each value read by `field`, which returns `None` for a key it does not
    /// know.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        let mut previous: Option<&str> = None;
        loop {
            let key = self.key()?;
            if previous.is_some_and(|p| p >= key) {
                return None;
            }
            previous = Some(key);
            self.eat(b':')?;
            field(self, key)?;
            if self.eat(b',').is_none() {
                return self.eat(b'}');
            }
        }
    }

    /// A key without escapes (an escaped key may still name a field for serde: not ours).
    fn key(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        // Keys are short: a plain loop, not a call into memchr.
        let len = self.bytes()[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\')?;
        if self.bytes()[start + len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        Some(&self.text[start..start + len])
    }

    fn array<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        self.eat(b'[')?;
        let mut items = Vec::new();
        if self.eat(b']').is_some() {
            return Some(items);
        }
        loop {
            items.push(item(self)?);
            if self.eat(b',').is_none() {
                self.eat(b']')?;
                return Some(items);
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let bytes = self.bytes();
        let start = self.at;
        let mut at = start + memchr::memchr2(b'"', b'\\', &bytes[start..])?;
        if bytes[at] == b'"' {
            self.at = at + 1;
            return Some(self.text[start..at].to_owned());
        }
        // Escapes only shorten text: the rest of the line bounds the string, up to a size past
        // which growing costs less than the spare room.
        let mut out = String::with_capacity((bytes.len() - start).min(1 << 16));
        let mut run = start;
        loop {
            out.push_str(&self.text[run..at]);
            if bytes[at] == b'"' {
                self.at = at + 1;
                out.shrink_to_fit();
                return Some(out);
            }
            let escaped = *bytes.get(at + 1)?;
            at += 2;
            match escaped {
                b'"' => out.push('"'),
                b'\\' => out.push('\\'),
                b'/' => out.push('/'),
                b'b' => out.push('\u{8}'),
                b'f' => out.push('\u{c}'),
                b'n' => out.push('\n'),
                b'r' => out.push('\r'),
                b't' => out.push('\t'),
                b'u' => {
                    let hex = self.text.get(at..at + 4)?;
                    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return None;
                    }
                    // Surrogates (pairs, and the lone ones serde refuses) are left to serde:
                    // a canonical writer never escapes a character above U+001F.
                    out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
                    at += 4;
                }
                _ => return None,
            }
            run = at;
            at += memchr::memchr2(b'"', b'\\', &bytes[at..])?;
        }
    }

    fn bool(&mut self) -> Option<bool> {
        if self.eat_word("true") {
            Some(true)
        } else if self.eat_word("false") {
            Some(false)
        } else {
            None
        }
    }

    /// `0` or a digit string without a leading zero that fits in a `u64`.
    fn u64(&mut self) -> Option<u64> {
        let bytes = self.bytes();
        let start = self.at;
        let digits = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 || (digits > 1 && bytes[start] == b'0') {
            return None;
        }
        let mut value: u64 = 0;
        for &b in &bytes[start..start + digits] {
            value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        }
        self.at = start + digits;
        // A fraction or an exponent makes the number a float: serde's to refuse.
        match bytes.get(self.at) {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(value),
        }
    }

    /// An `i64`, never `-0` (which serde_json reads as a float).
    fn i64(&mut self) -> Option<i64> {
        if self.eat(b'-').is_some() {
            let magnitude = self.u64()?;
            if magnitude == 0 {
                return None;
            }
            0i64.checked_sub_unsigned(magnitude)
        } else {
            i64::try_from(self.u64()?).ok()
        }
    }

    fn message(&mut self) -> Option<Message> {
        let mut m = Message::default();
        let (mut ordinal, mut role) = (false, false);
        self.object(|c, key| {
            match key {
                "abandoned" => m.abandoned = c.bool()?,
                "api_message_id" => m.api_message_id = c.string()?,
                "compact_boundary" => m.compact_boundary = c.bool()?,
                "content" => m.content = c.string()?,
                "model" => m.model = c.string()?,
                "ordinal" => {
                    m.ordinal = c.u64()?;
                    ordinal = true;
                }
                "parent_uuid" => m.parent_uuid = c.string()?,
                "request_id" => m.request_id = c.string()?,
                "role" => {
                    m.role = c.string()?;
                    role = true;
                }
                "sidechain" => m.sidechain = c.bool()?,
                "source_uuid" => m.source_uuid = c.string()?,
                "system" => m.system = c.bool()?,
                "thinking" => m.thinking = c.string()?,
                "timestamp_ms" => m.timestamp_ms = Some(c.i64()?),
                "tool_calls" => m.tool_calls = c.array(Self::tool_call)?,
                "usage" => m.usage = c.usage()?,
                _ => return None,
            }
            Some(())
        })?;
        (ordinal && role).then_some(m)
    }

    fn tool_call(&mut self) -> Option<ToolCall> {
        let mut call = ToolCall::default();
        let mut name = false;
        self.object(|c, key| {
            match key {
                "category" => call.category = c.string()?,
                "file_path" => call.file_path = c.string()?,
                "id" => call.id = c.string()?,
                "input" => call.input = c.string()?,
                "is_error" => call.is_error = c.bool()?,
                "name" => {
                    call.name = c.string()?;
                    name = true;
                }
                "result" => call.result = c.string()?,
                "result_events" => call.result_events = c.array(Self::result_event)?,
                "subagent_session" => call.subagent_session = c.string()?,
                _ => return None,
            }
            Some(())
        })?;
        name.then_some(call)
    }

    fn result_event(&mut self) -> Option<ToolResultEvent> {
        let mut event = ToolResultEvent::default();
        self.object(|c, key| {
            match key {
                "content" => event.content = c.string()?,
                "source" => event.source = c.string()?,
                "status" => event.status = c.string()?,
                "subagent_session" => event.subagent_session = c.string()?,
                "timestamp_ms" => event.timestamp_ms = Some(c.i64()?),
                _ => return None,
            }
            Some(())
        })?;
        Some(event)
    }

    fn usage(&mut self) -> Option<TokenUsage> {
        let mut usage = TokenUsage::default();
        self.object(|c, key| {
            match key {
                "cache_creation" => usage.cache_creation = c.u64()?,
                "cache_read" => usage.cache_read = c.u64()?,
                "input" => usage.input = c.u64()?,
                "output" => usage.output = c.u64()?,
                "reasoning" => usage.reasoning = c.u64()?,
                _ => return None,
            }
            Some(())
        })?;
        Some(usage)
    }
}

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::option;
    use proptest::prelude::*;

    use super::*;
    use crate::segment::message_line;

    /// What serde_json and the nesting pre-scan make of a line, as `decode_segment` reads it.
    fn serde_reading(line: &[u8]) -> Option<Message> {
        crate::segment::check_depth(line).ok()?;
        serde_json::from_slice(line).ok()
    }

    /// The promise of this module: never a message serde would not give, equal.
    fn assert_agrees(line: &[u8]) -> Option<Message> {
        let fast = parse_message(line);
        if let Some(fast) = &fast {
            assert_eq!(
                Some(fast),
                serde_reading(line).as_ref(),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        fast
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            2 => "[a-z ]{0,12}",
            // What needs escaping, non-ASCII and the characters escapes are made of.
            2 => "[a-z\"\\\\/\n\r\t\u{0}\u{8}\u{c}\u{1f}\u{7f}é€😀u0 ]{0,24}",
            1 => any::<String>(),
            1 => Just(String::new()),
        ]
    }

    fn usage() -> impl Strategy<Value = TokenUsage> {
        prop_oneof![
            Just(TokenUsage::default()),
            (any::<u64>(), any::<u64>(), 0u64..10, 0u64..10, any::<u64>()).prop_map(
                |(cache_creation, cache_read, input, output, reasoning)| TokenUsage {
                    cache_creation,
                    cache_read,
                    input,
                    output,
                    reasoning,
                }
            ),
        ]
    }

    fn timestamp() -> impl Strategy<Value = Option<i64>> {
        option::of(prop_oneof![
            any::<i64>(),
            Just(i64::MIN),
            Just(i64::MAX),
            Just(0),
            -2i64..2
        ])
    }

    fn result_event() -> impl Strategy<Value = ToolResultEvent> {
        (text(), text(), text(), text(), timestamp()).prop_map(
            |(content, source, status, subagent_session, timestamp_ms)| ToolResultEvent {
                content,
                source,
                status,
                subagent_session,
                timestamp_ms,
            },
        )
    }

    fn tool_call() -> impl Strategy<Value = ToolCall> {
        (
            (text(), text(), text(), text(), any::<bool>()),
            (text(), text(), vec(result_event(), 0..3), text()),
        )
            .prop_map(
                |(
                    (category, file_path, id, input, is_error),
                    (name, result, result_events, subagent_session),
                )| ToolCall {
                    category,
                    file_path,
                    id,
                    input,
                    is_error,
                    name,
                    result,
                    result_events,
                    subagent_session,
                },
            )
    }

    fn message() -> impl Strategy<Value = Message> {
        (
            (any::<bool>(), text(), any::<bool>(), text(), text()),
            (any::<u64>(), text(), text(), "[a-z]{1,9}", any::<bool>()),
            (text(), any::<bool>(), text(), timestamp()),
            (vec(tool_call(), 0..3), usage()),
        )
            .prop_map(
                |(
                    (abandoned, api_message_id, compact_boundary, content, model),
                    (ordinal, parent_uuid, request_id, role, sidechain),
                    (source_uuid, system, thinking, timestamp_ms),
                    (tool_calls, usage),
                )| Message {
                    abandoned,
                    api_message_id,
                    compact_boundary,
                    content,
                    model,
                    ordinal,
                    parent_uuid,
                    request_id,
                    role,
                    sidechain,
                    source_uuid,
                    system,
                    thinking,
                    timestamp_ms,
                    tool_calls,
                    usage,
                },
            )
    }

    /// Bytes and words that make or break JSON, for mutations.
    fn splice() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            any::<u8>().prop_map(|b| vec![b]),
            prop::sample::select(vec![
                "\"",
                "\\",
                ",",
                ":",
                "{",
                "}",
                "[",
                "]",
                " ",
                "\n",
                "\t",
                "0",
                "-",
                "-0",
                "1.5",
                "e5",
                "null",
                "true",
                "false",
                "\\u",
                "\\ud800",
                "\\udc00",
                "\\ud83d\\ude00",
                "\\u00e9",
                "\\u0000",
                "\\x",
                "é",
                "\u{0}",
                "\u{1f}",
                "\"ordinal\":1",
                "\"role\":\"a\"",
                "\"zzz\":1",
                "\"usage\":{}",
                "18446744073709551616",
                "9223372036854775808",
                "-9223372036854775809",
                "01",
            ])
            .prop_map(|s| s.as_bytes().to_vec()),
            Just(vec![0xff]),
            Just(vec![0xc3]),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Every line the canonical writer produces takes the fast path, to an equal message.
        #[test]
        fn reads_every_canonical_line_back(message in message()) {
            let line = message_line(&message).expect("a valid message");
            let body = &line[..line.len() - 1];
            prop_assert_eq!(parse_message(body), Some(message));
        }

        /// Whatever is done to a line, the fast path never gives what serde would not.
        #[test]
        fn agrees_with_serde_on_damaged_lines(
            message in message(),
            edits in vec((any::<prop::sample::Index>(), 0usize..3, splice()), 1..4),
        ) {
            let line = message_line(&message).expect("a valid message");
            let mut line = line[..line.len() - 1].to_vec();
            for (at, removed, inserted) in edits {
                let at = at.index(line.len() + 1);
                let removed = removed.min(line.len() - at);
                line.splice(at..at + removed, inserted);
            }
            assert_agrees(&line);
        }
    }

    #[test]
    fn leaves_what_is_not_canonical_to_serde() {
        let serde_accepts = [
            // Spacing, an unknown key, keys out of order, an escaped key, `null`.
            r#"{ "ordinal":0,"role":"user"}"#,
            r#"{"ordinal":0,"role":"user" }"#,
            r#"{"ordinal":0,"role":"user","zzz":1}"#,
            r#"{"role":"user","ordinal":0}"#,
            r#"{"ordinal":0,"r\u006fle":"user"}"#,
            r#"{"ordinal":0,"role":"user","timestamp_ms":null}"#,
            // A surrogate pair, trailing whitespace.
            r#"{"content":"\ud83d\ude00","ordinal":0,"role":"user"}"#,
            "{\"ordinal\":0,\"role\":\"user\"}\t",
        ];
        for line in serde_accepts {
            assert!(serde_reading(line.as_bytes()).is_some(), "{line}");
            assert_eq!(parse_message(line.as_bytes()), None, "{line}");
        }
        let serde_refuses = [
            r#"{"ordinal":0,"ordinal":1,"role":"user"}"#,
            r#"{"ordinal":0}"#,
            r#"{"ordinal":01,"role":"user"}"#,
            r#"{"ordinal":1.0,"role":"user"}"#,
            r#"{"ordinal":-1,"role":"user"}"#,
            // serde_json reads `-0` as a float (to keep its sign).
            r#"{"ordinal":0,"role":"user","timestamp_ms":-0}"#,
            r#"{"ordinal":18446744073709551616,"role":"user"}"#,
            r#"{"ordinal":0,"role":"user","timestamp_ms":9223372036854775808}"#,
            r#"{"content":"\ud800","ordinal":0,"role":"user"}"#,
            r#"{"content":"\x","ordinal":0,"role":"user"}"#,
            "{\"content\":\"a\u{1}b\",\"ordinal\":0,\"role\":\"user\"}",
            r#"{"ordinal":0,"role":"user"}x"#,
            r#"{"ordinal":0,"role":"user","tool_calls":[{}]}"#,
            r#"{"ordinal":0,"role":"user","tool_calls":[{"name":"a"},]}"#,
        ];
        for line in serde_refuses {
            assert!(serde_reading(line.as_bytes()).is_none(), "{line}");
            assert_eq!(parse_message(line.as_bytes()), None, "{line}");
        }
        assert_eq!(
            parse_message(b"{\"content\":\"\xff\",\"ordinal\":0,\"role\":\"user\"}"),
            None
        );
    }

    #[test]
    fn reads_the_extremes_of_each_number() {
        let line = format!(
            "{{\"ordinal\":{},\"role\":\"user\",\"timestamp_ms\":{},\"usage\":{{\"input\":0}}}}",
            u64::MAX,
            i64::MIN
        );
        let message = assert_agrees(line.as_bytes()).expect("canonical enough");
        assert_eq!(
            (message.ordinal, message.timestamp_ms),
            (u64::MAX, Some(i64::MIN))
        );
    }
}

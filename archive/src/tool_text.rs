//! What search finds of a message's tool calls: each call's name, the values of its input,
//! and its result.
//!
//! A call's input is the JSON the agent wrote (`{"command":"cargo build\nls"}`). Indexed as
//! written, every word after an escape was glued to the escape's letter (`\nclass` became the
//! token `nclass`, `caf\u00e9` the tokens `caf` and `u00e9`), so a word at the start of a line
//! of a file the agent wrote or a command it ran was not found (8 281 messages of the 1 GB
//! bench corpus held the token `nimport`). Search now reads the input's values as they read:
//! strings unescaped, numbers and booleans as JSON writes them; the keys (`command`,
//! `file_path`, …), which every call of a tool repeats, are left out. Input that is not JSON is
//! indexed as written.
//!
//! The text is not stored: the index reads it out of each message's stored JSON through the
//! SQL function `tool_text` (`schema::MESSAGES_FTS`), also to delete a message's entries, which
//! must be removed with the very text they were made from. So a change to what [`of`] returns
//! needs a migration that rebuilds the index (as migration 11 does).

use std::borrow::Cow;
use std::fmt::{self, Write};

use agentsync_core::Message;
use rusqlite::Connection;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::Result;

/// What search indexes of a message's tool calls: one line per call, its parts separated by
/// spaces.
pub(crate) fn of(message: &Message) -> String {
    of_calls(
        message
            .tool_calls
            .iter()
            .map(|c| (c.name.as_str(), c.input.as_str(), c.result.as_str())),
    )
}

/// [`of`] the message a row's `rest_json` holds, read for its tool calls only. JSON this build
/// cannot read gives no text; every row was written by this build or an earlier one.
pub(crate) fn of_stored(rest_json: &str) -> String {
    match serde_json::from_str::<StoredCalls<'_>>(rest_json) {
        Ok(stored) => of_calls(
            stored
                .tool_calls
                .iter()
                .map(|c| (&*c.name, &*c.input, &*c.result)),
        ),
        Err(_) => String::new(),
    }
}

/// The SQL function `tool_text(rest_json)`: [`of_stored`]. The search index reads a message's
/// tool text through it (`schema::MESSAGES_FTS`), so every connection that reads or deletes
/// messages registers it.
pub(crate) fn register(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "tool_text",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            Ok(match ctx.get_raw(0) {
                rusqlite::types::ValueRef::Text(json) => {
                    std::str::from_utf8(json).map(of_stored).unwrap_or_default()
                }
                _ => String::new(),
            })
        },
    )
}

/// The tool calls of a stored message, their text borrowed where it holds no escapes.
#[derive(serde::Deserialize)]
struct StoredCalls<'a> {
    #[serde(default, borrow)]
    tool_calls: Vec<StoredCall<'a>>,
}

#[derive(serde::Deserialize)]
struct StoredCall<'a> {
    #[serde(default, borrow)]
    name: Cow<'a, str>,
    #[serde(default, borrow)]
    input: Cow<'a, str>,
    #[serde(default, borrow)]
    result: Cow<'a, str>,
}

fn of_calls<'a>(calls: impl Iterator<Item = (&'a str, &'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (name, input, result) in calls {
        if !out.is_empty() {
            out.push('\n');
        }
        let start = out.len();
        for (part, is_input) in [(name, false), (input, true), (result, false)] {
            if part.is_empty() {
                continue;
            }
            if out.len() > start {
                out.push(' ');
            }
            if is_input {
                push_input(&mut out, part);
            } else {
                out.push_str(part);
            }
        }
    }
    out
}

/// Appends the values of a call's input, or the input as written when it is not JSON.
fn push_input(out: &mut String, input: &str) {
    let start = out.len();
    let mut de = serde_json::Deserializer::from_str(input);
    let read = Values { out: &mut *out }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if read.is_err() {
        out.truncate(start);
        out.push_str(input);
    }
}

/// A JSON value's strings, numbers and booleans, each on a line of its own.
struct Values<'a> {
    out: &'a mut String,
}

impl Values<'_> {
    fn push(&mut self, value: impl fmt::Display) {
        if !self.out.is_empty() && !self.out.ends_with(['\n', ' ']) {
            self.out.push('\n');
        }
        // Writing into a String cannot fail.
        let _ = write!(self.out, "{value}");
    }
}

impl<'de> DeserializeSeed<'de> for Values<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Values<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E>(mut self, v: &str) -> Result<(), E> {
        if !v.is_empty() {
            self.push(v);
        }
        Ok(())
    }

    fn visit_bool<E>(mut self, v: bool) -> Result<(), E> {
        self.push(v);
        Ok(())
    }

    fn visit_i64<E>(mut self, v: i64) -> Result<(), E> {
        self.push(v);
        Ok(())
    }

    fn visit_u64<E>(mut self, v: u64) -> Result<(), E> {
        self.push(v);
        Ok(())
    }

    fn visit_f64<E>(mut self, v: f64) -> Result<(), E> {
        // Debug writes 1e300 as such; Display would spell out its 301 digits.
        self.push(format_args!("{v:?}"));
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(Values {
                out: &mut *self.out,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(Values {
                out: &mut *self.out,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentsync_core::ToolCall;

    fn calls(calls: &[(&str, &str, &str)]) -> Message {
        Message {
            tool_calls: calls
                .iter()
                .map(|(name, input, result)| ToolCall {
                    name: (*name).into(),
                    input: (*input).into(),
                    result: (*result).into(),
                    ..ToolCall::default()
                })
                .collect(),
            ..Message::default()
        }
    }

    #[test]
    fn an_input_reads_as_its_values_without_escapes_or_keys() {
        let m = calls(&[(
            "Write",
            r#"{"file_path":"src/a.py","content":"import os\n\tclass TaskWriter:\n caf\u00e9 \"q\"","n":[1,-2,2.5,1e300,true,null,{"deep":["x"]}],"e":""}"#,
            "ok",
        )]);
        assert_eq!(
            of(&m),
            "Write src/a.py\nimport os\n\tclass TaskWriter:\n café \"q\"\n1\n-2\n2.5\n1e300\ntrue\nx ok"
        );
    }

    #[test]
    fn an_input_that_is_not_json_is_kept_as_written() {
        for input in [
            "ls -la",
            "{\"a\": ",
            "{\"a\":1} trailing",
            "*** Begin Patch\n+x",
        ] {
            let m = calls(&[("shell", input, "")]);
            assert_eq!(of(&m), format!("shell {input}"));
        }
        // A JSON string alone is its text.
        assert_eq!(of(&calls(&[("t", "\"a\\nb\"", "")])), "t a\nb");
    }

    #[test]
    fn calls_are_lines_and_empty_parts_leave_no_gaps() {
        let m = calls(&[("Bash", "ls", "a b"), ("Read", "", ""), ("", "{}", "r")]);
        assert_eq!(of(&m), "Bash ls a b\nRead\nr");
    }

    /// A part of a call: JSON or not, with escapes, quotes, non-ASCII and control characters.
    fn part() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            "[a-z \n\t\"\\\\/{}:,é€😀\u{0}-\u{1f}]{0,24}",
            proptest::collection::vec(("[a-z_]{1,6}", "[a-z \n\"\\\\é😀]{0,12}"), 0..4).prop_map(
                |fields| serde_json::to_string(
                    &fields
                        .into_iter()
                        .collect::<std::collections::BTreeMap<_, _>>()
                )
                .unwrap_or_default()
            ),
            Just("[1, 2.5e300, true, null, {\"k\": [\"v\"]}]".to_owned()),
        ]
    }

    proptest::proptest! {
        /// The index deletes a message with the text `of_stored` reads out of its stored JSON,
        /// so it must be exactly what `of` made when the message was indexed.
        #[test]
        fn the_stored_json_gives_the_text_the_row_was_indexed_with(
            parts in proptest::collection::vec((part(), part(), part()), 0..4),
        ) {
            let message = Message {
                tool_calls: parts
                    .into_iter()
                    .map(|(name, input, result)| ToolCall { name, input, result, ..ToolCall::default() })
                    .collect(),
                ..Message::default()
            };
            let stored = crate::error::encode("message", &message).unwrap();
            proptest::prop_assert_eq!(of_stored(&stored), of(&message));
        }
    }
}

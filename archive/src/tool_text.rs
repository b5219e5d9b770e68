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

use std::fmt::{self, Write};

use agentsync_core::Message;
use rusqlite::Connection;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::Result;

/// The `tools` column of a message: one line per call, its parts separated by spaces.
pub(crate) fn of(message: &Message) -> String {
    let mut out = String::new();
    for call in &message.tool_calls {
        if !out.is_empty() {
            out.push('\n');
        }
        let start = out.len();
        for (part, is_input) in [
            (&call.name, false),
            (&call.input, true),
            (&call.result, false),
        ] {
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

/// Migration: the `tools` column of messages stored before, made again from each message's
/// stored tool calls, and the search index rebuilt when any of them changed.
pub(crate) fn reindex(conn: &Connection) -> Result<()> {
    const BATCH: i64 = 1024;
    let mut read = conn.prepare(
        "SELECT id, rest_json, tools FROM messages WHERE id > ?1 AND tools != ''
         ORDER BY id LIMIT ?2",
    )?;
    let mut write = conn.prepare("UPDATE messages SET tools = ?2 WHERE id = ?1")?;
    let (mut after, mut changed) = (i64::MIN, 0u64);
    loop {
        let rows: Vec<(i64, String, String)> = read
            .query_map([after, BATCH], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let Some(last) = rows.last() else { break };
        after = last.0;
        for (id, rest_json, tools) in rows {
            // A row this build cannot read keeps the text it was indexed with.
            let Ok(message) = serde_json::from_str::<Message>(&rest_json) else {
                continue;
            };
            let text = of(&message);
            if text != tools {
                write.execute(rusqlite::params![id, text])?;
                changed += 1;
            }
        }
    }
    if changed > 0 {
        conn.execute_batch("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');")?;
    }
    Ok(())
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
}

//! JSON lines written by hand into a reused buffer.
//!
//! The corpus is up to gigabytes of JSON: building `serde_json::Value`s would allocate for every
//! field, and its sorted maps would lose the key order the agents write. Records here are written
//! field by field, in the agents' order, with the agents' compact separators.

use crate::time;

/// A JSON text being written. Values and keys insert their own commas.
#[derive(Debug, Default)]
pub struct Json {
    pub buf: Vec<u8>,
    /// Whether the next value or key in the current container needs a comma before it.
    comma: bool,
}

/// Appends `text` as a JSON string: quotes, `\"`, `\\`, and control characters escaped; all
/// other characters (UTF-8 included) as they are, as `JSON.stringify` and `serde_json` do.
pub fn push_escaped(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&text[start..i]);
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&text[start..]);
    out.push(b'"');
}

impl Json {
    pub fn new() -> Self {
        Json::default()
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.comma = false;
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn sep(&mut self) {
        if self.comma {
            self.buf.push(b',');
        }
    }

    pub fn begin_obj(&mut self) -> &mut Self {
        self.sep();
        self.buf.push(b'{');
        self.comma = false;
        self
    }

    pub fn end_obj(&mut self) -> &mut Self {
        self.buf.push(b'}');
        self.comma = true;
        self
    }

    pub fn begin_arr(&mut self) -> &mut Self {
        self.sep();
        self.buf.push(b'[');
        self.comma = false;
        self
    }

    pub fn end_arr(&mut self) -> &mut Self {
        self.buf.push(b']');
        self.comma = true;
        self
    }

    /// An object value, its fields written by `f`.
    pub fn obj(&mut self, f: impl FnOnce(&mut Self)) -> &mut Self {
        self.begin_obj();
        f(self);
        self.end_obj()
    }

    /// An array value, its items written by `f`.
    pub fn arr(&mut self, f: impl FnOnce(&mut Self)) -> &mut Self {
        self.begin_arr();
        f(self);
        self.end_arr()
    }

    /// A key in the current object; its value follows.
    pub fn key(&mut self, key: &str) -> &mut Self {
        self.sep();
        push_escaped(&mut self.buf, key.as_bytes());
        self.buf.push(b':');
        self.comma = false;
        self
    }

    pub fn str(&mut self, value: &str) -> &mut Self {
        self.bytes_str(value.as_bytes())
    }

    /// A string value from UTF-8 bytes (another [`Json`]'s text, for JSON inside a string).
    pub fn bytes_str(&mut self, value: &[u8]) -> &mut Self {
        self.sep();
        push_escaped(&mut self.buf, value);
        self.comma = true;
        self
    }

    pub fn num(&mut self, value: u64) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(itoa(value, &mut [0; 20]));
        self.comma = true;
        self
    }

    /// A float with 3 to 6 decimals, as the agents write durations (Rust's formatting is exact
    /// and the same everywhere).
    pub fn float(&mut self, value: f64, decimals: usize) -> &mut Self {
        use std::io::Write;
        self.sep();
        let _ = write!(self.buf, "{value:.decimals$}");
        self.comma = true;
        self
    }

    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.sep();
        self.buf
            .extend_from_slice(if value { b"true" } else { b"false" });
        self.comma = true;
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(b"null");
        self.comma = true;
        self
    }

    /// A timestamp string (`"2025-09-29T17:07:50.508Z"`).
    pub fn time(&mut self, ms: i64) -> &mut Self {
        self.sep();
        self.buf.push(b'"');
        time::push_rfc3339(&mut self.buf, ms);
        self.buf.push(b'"');
        self.comma = true;
        self
    }

    /// `"key":"value"`.
    pub fn s(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key).str(value)
    }

    /// `"key":"value"`, or `"key":null` for `None`.
    pub fn s_or_null(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        self.key(key);
        match value {
            Some(v) => self.str(v),
            None => self.null(),
        }
    }

    pub fn n(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key).num(value)
    }

    pub fn b(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key).bool(value)
    }

    pub fn t(&mut self, key: &str, ms: i64) -> &mut Self {
        self.key(key).time(ms)
    }

    pub fn o(&mut self, key: &str, f: impl FnOnce(&mut Self)) -> &mut Self {
        self.key(key).obj(f)
    }

    pub fn a(&mut self, key: &str, f: impl FnOnce(&mut Self)) -> &mut Self {
        self.key(key).arr(f)
    }

    /// `"key":null`.
    pub fn null_at(&mut self, key: &str) -> &mut Self {
        self.key(key).null()
    }

    /// Text already JSON-encoded (another [`Json`]'s buffer), inserted as a value.
    pub fn raw(&mut self, json: &[u8]) -> &mut Self {
        self.sep();
        self.buf.extend_from_slice(json);
        self.comma = true;
        self
    }
}

fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_serde_json_reads() {
        let mut j = Json::new();
        j.obj(|j| {
            j.s("a", "q\"uo\\te\n\t\u{1}→")
                .n("n", 1234567890)
                .b("t", true)
                .null_at("z")
                .a("list", |j| {
                    j.num(0).str("x").obj(|j| {
                        j.t("ts", 0);
                    });
                })
                .o("empty", |_| {})
                .key("f")
                .float(1.5, 3);
        });
        let text = std::str::from_utf8(&j.buf).unwrap();
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["a"], "q\"uo\\te\n\t\u{1}→");
        assert_eq!(v["n"], 1234567890);
        assert_eq!(v["list"][2]["ts"], "1970-01-01T00:00:00.000Z");
        assert_eq!(
            text,
            r#"{"a":"q\"uo\\te\n\t\u0001→","n":1234567890,"t":true,"z":null,"list":[0,"x",{"ts":"1970-01-01T00:00:00.000Z"}],"empty":{},"f":1.500}"#
        );
    }
}

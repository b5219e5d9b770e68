//! The binary record layer shared by manifests, buckets, roots and event batches.
//!
//! Primitives follow postcard's wire rules (unsigned LEB128 varints, zigzag for signed integers,
//! length-prefixed UTF-8, a 0/1 tag byte for options) so a second implementation can reuse a
//! postcard library for them. On top, every extensible struct is a *record*: a varint byte length
//! followed by its fields. A reader decodes the fields it knows and skips the rest of the record,
//! which is how a newer writer appends fields without breaking older readers.
//!
//! The reader checks every declared length and count against a limit and against the bytes that
//! remain *before* allocating for it.

use crate::error::{Error, Result};
use crate::id::ArtifactId;

#[derive(Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn varint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.buf.push(byte);
                return;
            }
            self.buf.push(byte | 0x80);
        }
    }

    pub fn signed(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }

    pub fn bytes(&mut self, v: &[u8]) {
        self.varint(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    pub fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }

    pub fn id(&mut self, id: &ArtifactId) {
        self.buf.extend_from_slice(id.as_bytes());
    }

    pub fn opt_signed(&mut self, v: Option<i64>) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                self.signed(v);
            }
        }
    }

    pub fn opt_varint(&mut self, v: Option<u64>) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                self.varint(v);
            }
        }
    }

    /// Writes `fill`'s output as a length-prefixed record.
    pub fn record(&mut self, fill: impl FnOnce(&mut Writer)) {
        let mut inner = Writer::new();
        fill(&mut inner);
        self.bytes(&inner.buf);
    }
}

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn consumed(&self) -> &'a [u8] {
        &self.buf[..self.pos]
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::Truncated { what });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// An unsigned LEB128 varint of at most 10 bytes, in its shortest form.
    pub fn varint(&mut self, what: &'static str) -> Result<u64> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = self.u8(what)?;
            let bits = u64::from(byte & 0x7f);
            if i == 9 && byte > 1 {
                return Err(Error::malformed(what, "varint overflows 64 bits"));
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                if i > 0 && byte == 0 {
                    return Err(Error::malformed(what, "varint is not in its shortest form"));
                }
                return Ok(value);
            }
        }
        Err(Error::malformed(what, "varint longer than 10 bytes"))
    }

    pub fn signed(&mut self, what: &'static str) -> Result<i64> {
        let z = self.varint(what)?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32> {
        let v = self.varint(what)?;
        u32::try_from(v).map_err(|_| Error::malformed(what, "does not fit 32 bits"))
    }

    fn option_tag(&mut self, what: &'static str) -> Result<bool> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Error::malformed(what, "option tag is neither 0 nor 1")),
        }
    }

    pub fn opt_signed(&mut self, what: &'static str) -> Result<Option<i64>> {
        Ok(if self.option_tag(what)? {
            Some(self.signed(what)?)
        } else {
            None
        })
    }

    pub fn opt_varint(&mut self, what: &'static str) -> Result<Option<u64>> {
        Ok(if self.option_tag(what)? {
            Some(self.varint(what)?)
        } else {
            None
        })
    }

    /// A length prefix, checked against `limit` and against the remaining input.
    fn length(&mut self, what: &'static str, limit: usize) -> Result<usize> {
        let len = self.varint(what)?;
        if len > limit as u64 {
            return Err(Error::StringLimit {
                what,
                limit: limit as u64,
                actual: len,
            });
        }
        let len = len as usize;
        if len > self.remaining() {
            return Err(Error::Truncated { what });
        }
        Ok(len)
    }

    pub fn bytes(&mut self, what: &'static str, limit: usize) -> Result<&'a [u8]> {
        let len = self.length(what, limit)?;
        self.take(len, what)
    }

    pub fn str(&mut self, what: &'static str, limit: usize) -> Result<String> {
        let bytes = self.bytes(what, limit)?;
        core::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| Error::malformed(what, "not valid UTF-8"))
    }

    pub fn id(&mut self, what: &'static str) -> Result<ArtifactId> {
        Ok(ArtifactId::from_bytes(self.array::<32>(what)?))
    }

    /// An item count, checked against `limit`, and against the remaining input assuming each
    /// item takes at least `min_item_bytes`, so that a lying count cannot force an allocation.
    pub fn count(
        &mut self,
        what: &'static str,
        limit: usize,
        min_item_bytes: usize,
    ) -> Result<usize> {
        let n = self.varint(what)?;
        if n > limit as u64 {
            return Err(Error::CountLimit {
                what,
                limit: limit as u64,
                actual: n,
            });
        }
        let n = n as usize;
        if n.saturating_mul(min_item_bytes.max(1)) > self.remaining() {
            return Err(Error::Truncated { what });
        }
        Ok(n)
    }

    /// Reads a length-prefixed record with `read`, skipping whatever fields of it `read` does
    /// not consume (fields appended by a newer writer).
    pub fn record<T>(
        &mut self,
        what: &'static str,
        limit: usize,
        read: impl FnOnce(&mut Reader<'a>) -> Result<T>,
    ) -> Result<T> {
        let body = self.bytes(what, limit)?;
        let mut inner = Reader::new(body);
        read(&mut inner)
    }

    /// Fails unless every byte was consumed: the top level of an artifact has no slack.
    pub fn finish(&self, what: &'static str) -> Result<()> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(Error::malformed(
                what,
                format!("{} trailing bytes", self.remaining()),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(v: u64, s: i64) {
            let mut w = Writer::new();
            w.varint(v);
            w.signed(s);
            let bytes = w.into_bytes();
            let mut r = Reader::new(&bytes);
            prop_assert_eq!(r.varint("v").unwrap(), v);
            prop_assert_eq!(r.signed("s").unwrap(), s);
            r.finish("t").unwrap();
        }
    }

    #[test]
    fn overlong_and_overflowing_varints_are_rejected() {
        assert!(Reader::new(&[0x80, 0x00]).varint("v").is_err());
        assert!(Reader::new(&[0xff; 11]).varint("v").is_err());
        assert!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])
                .varint("v")
                .is_err()
        );
        assert_eq!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])
                .varint("v")
                .unwrap(),
            u64::MAX
        );
    }

    #[test]
    fn a_lying_count_fails_before_allocating() {
        let mut w = Writer::new();
        w.varint(1_000_000);
        let bytes = w.into_bytes();
        let err = Reader::new(&bytes).count("items", 10, 1).unwrap_err();
        assert_eq!(err.class(), "CountLimit");
        let err = Reader::new(&bytes)
            .count("items", usize::MAX, 1)
            .unwrap_err();
        assert_eq!(err.class(), "Truncated");
    }

    #[test]
    fn records_skip_appended_fields() {
        let mut w = Writer::new();
        w.record(|r| {
            r.varint(7);
            r.str("appended by a newer writer");
        });
        w.u8(42);
        let bytes = w.into_bytes();
        let mut r = Reader::new(&bytes);
        let v = r.record("rec", 1024, |r| r.varint("a")).unwrap();
        assert_eq!(v, 7);
        assert_eq!(r.u8("after").unwrap(), 42);
        r.finish("t").unwrap();
    }
}

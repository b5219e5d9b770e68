//! Complete lines of an append-only log.
//!
//! Agents append one JSON record per line and may be caught mid-write, so only lines ending in
//! `\n` are handed out; a partial last line stays unread until a later pass finds its newline.

use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::path::Path;

/// Longest line kept in memory. Real records stay far below it (the largest tool results are
/// capped at 16 MiB of text by the wire limits); a longer line is reported and skipped.
pub const MAX_LINE_BYTES: usize = 128 * 1024 * 1024;

/// One complete line, without its `\n` (and without a `\r` before it).
pub enum Line<'a> {
    Text(&'a [u8]),
    TooLong { bytes: u64 },
}

/// Calls `each` with every complete line of `reader` and returns how many bytes those lines
/// took, newlines included. Bytes after the last `\n` are read but not counted. Lines longer
/// than `max_line` bytes are passed as [`Line::TooLong`] without being held in memory.
pub fn for_each_complete_line<R: BufRead>(
    reader: &mut R,
    max_line: usize,
    mut each: impl FnMut(Line<'_>),
) -> io::Result<u64> {
    let mut consumed = 0u64;
    let mut line = Vec::new();
    let mut line_bytes = 0u64;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(consumed);
        }
        let (chunk, ends_line) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], true),
            None => (buf, false),
        };
        line_bytes += chunk.len() as u64;
        if line_bytes <= max_line as u64 {
            line.extend_from_slice(chunk);
        } else {
            line = Vec::new();
        }
        let used = chunk.len() + usize::from(ends_line);
        reader.consume(used);
        if ends_line {
            consumed += line_bytes + 1;
            if line_bytes > max_line as u64 {
                each(Line::TooLong { bytes: line_bytes });
            } else {
                let text = line.strip_suffix(b"\r").unwrap_or(&line);
                each(Line::Text(text));
            }
            line.clear();
            line_bytes = 0;
        }
    }
}

/// What the bytes before `offset` of the file at `path` look like, as a resumed read checks:
/// the first and the last 4 KiB, their length, and whether a line ends at `offset` (a
/// whole-file hash would make every incremental read cost the whole file). A file rewritten in
/// place and grown no longer matches, and is read again from the start, never mid-line.
pub fn fingerprint(path: &Path, offset: u64) -> io::Result<String> {
    const WINDOW: u64 = 4096;
    let mut file = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(&offset.to_le_bytes());
    let mut head = vec![0u8; usize::try_from(offset.min(WINDOW)).unwrap_or(0)];
    file.read_exact(&mut head)?;
    hasher.update(&head);
    let tail_start = offset.saturating_sub(WINDOW);
    file.seek(SeekFrom::Start(tail_start))?;
    let mut tail = vec![0u8; usize::try_from(offset - tail_start).unwrap_or(0)];
    file.read_exact(&mut tail)?;
    hasher.update(&tail);
    if offset > 0 && tail.last() != Some(&b'\n') {
        hasher.update(b"no line end");
    }
    Ok(hasher.finalize().to_hex()[..32].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(input: &[u8]) -> (Vec<String>, u64) {
        let mut out = Vec::new();
        let mut reader = io::BufReader::with_capacity(4, input);
        let consumed = for_each_complete_line(&mut reader, 12, |line| match line {
            Line::Text(t) => out.push(String::from_utf8_lossy(t).into_owned()),
            Line::TooLong { bytes } => out.push(format!("<{bytes} bytes>")),
        })
        .unwrap();
        (out, consumed)
    }

    #[test]
    fn partial_last_line_is_not_consumed() {
        let (lines, consumed) = lines_of(b"first line\r\n\nthird\nfour");
        assert_eq!(lines, ["first line", "", "third"]);
        assert_eq!(consumed, 19);
    }

    #[test]
    fn long_lines_are_reported_by_length() {
        let (lines, consumed) = lines_of(b"123456789012\n1234567890123\nok\n");
        assert_eq!(lines, ["123456789012", "<13 bytes>", "ok"]);
        assert_eq!(consumed, 30);
    }

    #[test]
    fn empty_input_consumes_nothing() {
        assert_eq!(lines_of(b""), (vec![], 0));
        assert_eq!(lines_of(b"no newline"), (vec![], 0));
    }
}

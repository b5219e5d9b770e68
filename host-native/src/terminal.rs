//! Text for a terminal. Session names, tags, notes and message text come from other machines
//! and from agents' logs: printed raw, an escape sequence in them (`ESC[2J`) would act on the
//! reader's terminal. Every control character but newline and tab, and the bidirectional
//! overrides that reorder what is shown, are printed as visible escapes instead. JSON output is
//! not touched: it is exact, and JSON escapes control characters itself.

/// `text` with control characters and bidi overrides shown as `\x1b`-style escapes.
pub fn safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let hidden = (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if hidden {
            let code = u32::from(c);
            if code <= 0xff {
                out.push_str(&format!("\\x{code:02x}"));
            } else {
                out.push_str(&format!("\\u{{{code:04x}}}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether a name or tag holds a character [`safe`] would escape (refused at the edit).
pub fn has_control(text: &str) -> bool {
    safe(text) != text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_would_act_on_a_terminal() {
        assert_eq!(safe("a\u{1b}[2Jb"), "a\\x1b[2Jb");
        assert_eq!(safe("line\nnext\ttab"), "line\nnext\ttab");
        assert_eq!(safe("\u{202e}txt.exe"), "\\u{202e}txt.exe");
        assert_eq!(safe("\u{9b}"), "\\x9b");
        assert_eq!(safe("café ✓"), "café ✓");
        assert!(has_control("x\u{7}"));
        assert!(!has_control("a b"));
    }
}

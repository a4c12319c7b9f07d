//! Terminal safety: every string a requester wrote (a reason, a comment, a
//! name, a label value, a value in the diff) passes through [`inert`] before
//! the plugin prints it, so a crafted string cannot move the cursor, clear
//! the screen, retitle the window or reorder text on the approver's terminal.

use std::fmt::Write as _;

/// `text` with every control character (C0, DEL, C1, so every escape
/// sequence starts inert), every bidirectional override and every invisible
/// zero-width character replaced by its visible escape (`\u{1b}`). What the
/// requester wrote stays visible; nothing of it is interpreted.
pub fn inert(text: &str) -> String {
    if !text.chars().any(needs_escape) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(
            inert("INC-1234 roll back → v1.2"),
            "INC-1234 roll back → v1.2"
        );
    }

    #[test]
    fn escape_sequences_print_inert() {
        let crafted = "ok\x1b[2J\x1b[1;1HApproved by security\x1b]0;title\x07\r\n";
        let shown = inert(crafted);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert_eq!(
            shown,
            "ok\\u{1b}[2J\\u{1b}[1;1HApproved by security\\u{1b}]0;title\\u{7}\\u{d}\\u{a}"
        );
    }

    #[test]
    fn c1_controls_and_bidi_overrides_are_escaped() {
        assert_eq!(inert("a\u{9b}31m"), "a\\u{9b}31m");
        assert_eq!(inert("safe\u{202e}txt.exe"), "safe\\u{202e}txt.exe");
        assert_eq!(inert("zero\u{200b}width"), "zero\\u{200b}width");
    }
}

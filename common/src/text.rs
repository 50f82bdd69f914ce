//! Text that people read: reasons, denial and revocation reasons, anything the CA shows to
//! approvers or writes into a grant.
//!
//! [`check_line`] is the one check every such string passes when it enters the system. It
//! refuses control characters (a second line, terminal escape sequences) and Unicode
//! format characters (general category Cf: bidi overrides and isolates such as U+202E and
//! U+2066..U+2069, zero-width characters such as U+200B, U+FEFF), which make text read
//! differently from what it is ("Trojan Source"). The error names the character as
//! `U+XXXX`.

/// Unicode general category Cf (format characters), as inclusive ranges (Unicode 15.1).
const FORMAT_RANGES: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// Whether `c` is a Unicode format character (general category Cf).
pub fn is_format(c: char) -> bool {
    let c = u32::from(c);
    if c < 0xAD {
        return false;
    }
    FORMAT_RANGES.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// Whether `c` is a line or paragraph separator (U+2028, U+2029: general categories Zl and
/// Zp), which editors, browsers and JSON viewers render as a line break.
pub fn is_separator(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}')
}

/// Whether `c` must not appear in text shown to people: a control or a format character,
/// or a line or paragraph separator (one line must stay one line wherever it is shown).
pub fn is_hidden(c: char) -> bool {
    c.is_control() || is_format(c) || is_separator(c)
}

/// Checks one line of text shown to people (`what` names it in the error, e.g. "reason"):
/// at most `max` bytes, no control characters, no invisible or bidi format characters.
pub fn check_line(what: &str, s: &str, max: usize) -> Result<(), String> {
    if s.len() > max {
        return Err(format!(
            "the {what} is {} bytes; at most {max} are allowed",
            s.len()
        ));
    }
    if let Some(c) = s.chars().find(|&c| is_hidden(c)) {
        let kind = if c.is_control() {
            "a control character"
        } else if is_separator(c) {
            "a line or paragraph separator"
        } else {
            "an invisible or bidirectional formatting character"
        };
        return Err(format!(
            "the {what} contains {kind} (U+{:04X}); write it as one line of visible text",
            u32::from(c)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bidi_zero_width_and_controls_and_names_them() {
        for (c, name) in [
            ('\u{202E}', "U+202E"),
            ('\u{200B}', "U+200B"),
            ('\u{2066}', "U+2066"),
            ('\u{2069}', "U+2069"),
            ('\u{FEFF}', "U+FEFF"),
            ('\u{061C}', "U+061C"),
            ('\u{E0041}', "U+E0041"),
            ('\n', "U+000A"),
            ('\u{2028}', "U+2028"),
            ('\u{2029}', "U+2029"),
            ('\u{1b}', "U+001B"),
        ] {
            let e = check_line("reason", &format!("fix {c}db"), 100).unwrap_err();
            assert!(e.contains(name), "{e}");
        }
        assert!(check_line("reason", "INC-1: disk full, é ü 日本", 100).is_ok());
        assert!(check_line("reason", "x", 0).is_err());
        assert!(!is_format('a') && !is_format('\u{2065}'));
    }
}

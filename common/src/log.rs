//! Syslog line hygiene, and (with the `syslog` feature) a writer for the CA and `jit-host`.
//!
//! Lines are always passed to syslog as data (the C API's format is the constant `"%s"`;
//! the writer here never formats), with control characters escaped so that a user-chosen
//! string (a reason, a user name) cannot forge a second log line, and cut to
//! [`MAX_LINE`] bytes.

/// Longest line sent to syslog, in bytes.
pub const MAX_LINE: usize = 1024;

/// Escapes control characters (`\n` becomes `\x0a`) and Unicode format characters (bidi
/// overrides, zero-width characters: U+202E becomes `\u{202e}`), and cuts the line to `max` bytes on a
/// character boundary, marking the cut with `...`.
pub fn sanitize(line: &str, max: usize) -> String {
    escape(line, max, false)
}

/// A log field's value: escaped as [`sanitize`] does and, in addition, a backslash written
/// `\x5c`, so that every `\` in the result starts an escape this module wrote. A value
/// then never ends in `\`, and logfmt parsers (which read `\"` as an escaped quote) cannot
/// run a quoted value past its closing quote. Cut to `max` bytes (after escaping).
pub fn escape_value(value: &str, max: usize) -> String {
    escape(value, max, true)
}

fn escape(line: &str, max: usize, backslash: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(line.len().min(max));
    let limit = max.saturating_sub(3);
    for c in line.chars() {
        let format = !c.is_control() && crate::text::is_format(c);
        let hex = c.is_control() || (backslash && c == '\\');
        let piece_len = if hex {
            4
        } else if format {
            // `\u{xxxx}` or `\u{xxxxx}`
            if u32::from(c) > 0xFFFF { 9 } else { 8 }
        } else {
            c.len_utf8()
        };
        if out.len() + piece_len > limit {
            out.push_str("...");
            return out;
        }
        if hex {
            let _ = write!(out, "\\x{:02x}", u32::from(c) & 0xff);
        } else if format {
            // Bidi overrides and invisible characters are shown, not obeyed.
            let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// `key=value`, the value escaped by [`escape_value`] (control and format characters,
/// backslashes; not cut) and quoted when it is empty or has whitespace (any Unicode
/// whitespace, so a splitter on `\s` never cuts a value), quotes or `=`; a `"` inside
/// becomes `'`, so a quoted value never contains `"`.
pub fn field(key: &str, value: &str) -> String {
    field_escaped(key, &escape_value(value, usize::MAX))
}

/// [`field`] for a value already escaped by [`escape_value`] (cut to a length of the
/// caller's choosing): only quoted, never escaped again.
pub fn field_escaped(key: &str, value: &str) -> String {
    if value.is_empty() || value.contains(|c: char| c.is_whitespace() || c == '"' || c == '=') {
        format!("{key}=\"{}\"", value.replace('"', "'"))
    } else {
        format!("{key}={value}")
    }
}

#[cfg(feature = "syslog")]
mod writer {
    use super::{MAX_LINE, sanitize};

    /// Severity of a log line.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Severity {
        /// Someone must look now (`LOG_ALERT`): the CA's `alert.*` events.
        Alert,
        /// Something was refused or went wrong.
        Warning,
        /// A normal, significant event.
        Notice,
        /// Detail.
        Info,
    }

    /// Sends lines to the local syslog daemon (`/dev/log`) under the `authpriv` facility.
    /// If there is no syslog daemon, lines are dropped silently: logging never blocks a
    /// decision.
    pub struct Syslog {
        logger: Option<syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>>,
    }

    impl std::fmt::Debug for Syslog {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Syslog")
                .field("connected", &self.logger.is_some())
                .finish()
        }
    }

    impl Syslog {
        /// Connects with the given program name.
        pub fn new(process: &str) -> Self {
            let formatter = syslog::Formatter3164 {
                facility: syslog::Facility::LOG_AUTHPRIV,
                hostname: None,
                process: process.to_string(),
                pid: std::process::id(),
            };
            Self {
                logger: syslog::unix(formatter).ok(),
            }
        }

        /// Whether a syslog daemon was reached.
        pub fn is_connected(&self) -> bool {
            self.logger.is_some()
        }

        /// Logs one sanitised line.
        pub fn log(&mut self, severity: Severity, line: &str) {
            let line = sanitize(line, MAX_LINE);
            if let Some(l) = self.logger.as_mut() {
                let _ = match severity {
                    Severity::Alert => l.alert(line),
                    Severity::Warning => l.warning(line),
                    Severity::Notice => l.notice(line),
                    Severity::Info => l.info(line),
                };
            }
        }
    }
}

#[cfg(feature = "syslog")]
pub use writer::{Severity, Syslog};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_cuts() {
        assert_eq!(sanitize("a\nb", 100), "a\\x0ab");
        assert_eq!(sanitize("a\u{202e}b", 100), "a\\u{202e}b");
        let long = "x".repeat(2000);
        let s = sanitize(&long, MAX_LINE);
        assert!(s.len() <= MAX_LINE);
        assert!(s.ends_with("..."));
        let multi = "é".repeat(600);
        assert!(sanitize(&multi, 101).len() <= 101);
        assert_eq!(field("reason", "fix db"), "reason=\"fix db\"");
        assert_eq!(field("user", "alice"), "user=alice");
        assert_eq!(field("k", ""), "k=\"\"");
        assert_eq!(field("k", "a=b"), "k=\"a=b\"");
        assert_eq!(field("k", "say \"hi\""), "k=\"say 'hi'\"");
        // Unicode whitespace is quoted too (a `\s` splitter would cut there).
        assert_eq!(field("k", "a\u{a0}b"), "k=\"a\u{a0}b\"");
        assert_eq!(field("k", "a\u{2028}b"), "k=\"a\u{2028}b\"");
    }

    #[test]
    fn a_value_never_ends_in_a_backslash() {
        // sanitize (whole lines, people's text) leaves backslashes alone ...
        assert_eq!(sanitize("C:\\dir\\", 100), "C:\\dir\\");
        // ... a field's value escapes them, so `\"` cannot close a quoted value early for a
        // logfmt parser, and `\x0a` in the input is not mistaken for an escaped newline.
        assert_eq!(escape_value("a\\", 100), "a\\x5c");
        assert_eq!(escape_value("\\x0a\n", 100), "\\x5cx0a\\x0a");
        assert_eq!(field("reason", "ends in \\"), "reason=\"ends in \\x5c\"");
        assert_eq!(field("user", "a\\"), "user=a\\x5c");
        assert_eq!(field("k", "a\nb c"), "k=\"a\\x0ab c\"");
        // Already escaped values are only quoted.
        assert_eq!(field_escaped("k", "a\\x5c b"), "k=\"a\\x5c b\"");
        // The cut counts the escapes.
        let cut = escape_value(&"\\".repeat(100), 20);
        assert!(cut.len() <= 20 && cut.ends_with("..."), "{cut}");
        assert!(!cut.trim_end_matches("...").ends_with('\\'), "{cut}");
        for v in ["\\", "a\\", "\\\"", "x \\"] {
            let f = field("k", v);
            assert!(!f.contains("\\\""), "{v:?}: {f}");
        }
    }
}

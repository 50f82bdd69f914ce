//! One way to report a TOML syntax or type error without quoting the file.
//!
//! `toml::de::Error`'s `Display` prints the whole source line of the error; in config.toml
//! that line can hold a Slack webhook URL (a credential) and in policy.toml a webhook URL.
//! Errors go to the journal and to automation logs, a wider audience than the file, so every
//! TOML file the CA reads reports its errors through [`toml_error`]: the message and the
//! line and column only.

/// `PATH-less` one-line error for `e` found in `text`: "line L, column C: MESSAGE".
pub fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = unquoted(&e.message().trim().replace('\n', "; "));
    let Some(span) = e.span() else {
        return message;
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let start = before.rsplit('\n').next().unwrap_or("");
    let column = start.chars().count() + 1;
    // A value's error points at the value: name its key when the line before it is just
    // `KEY =` and the key reads as a schema name, never as a secret (a base64 or hex secret
    // pasted on a line of its own parses as a bare key).
    let key = start
        .trim_end()
        .strip_suffix('=')
        .map(str::trim)
        .filter(|k| is_plain_name(k));
    match key {
        Some(key) => format!("line {line}, column {column}: {key}: {message}"),
        None => format!("line {line}, column {column}: {message}"),
    }
}

/// Whether `s` reads as a name of the files' schemas (`notify_max_age`, `auth_failures`,
/// `secret_file`), never as a secret: at most 48 characters of lowercase letters, digits and
/// `_ - . ` (space), in words of at most 16 characters. A hex or base64 token fails.
pub fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 48
        && s.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.' | ' ')
        })
        && s.split(['_', '-', '.', ' ']).all(|w| w.len() <= 16)
}

/// `message` with every double-quoted part shown as `"…"` (a type error quotes the value,
/// which may be a secret typed under the wrong key; `\"` inside does not end it, and an
/// unclosed quote hides the rest), and every backticked part that is not a plain name or
/// punctuation (`unknown field `…``, `expected `]``) shown as `` `…` ``.
pub fn unquoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut escaped = false;
                for d in chars.by_ref() {
                    match d {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '"' => break,
                        _ => {}
                    }
                }
                out.push_str("\"…\"");
            }
            '`' => {
                let mut inner = String::new();
                let mut closed = false;
                for d in chars.by_ref() {
                    if d == '`' {
                        closed = true;
                        break;
                    }
                    inner.push(d);
                }
                let shown =
                    closed && (is_plain_name(&inner) || !inner.chars().any(char::is_alphanumeric));
                out.push('`');
                out.push_str(if shown { &inner } else { "…" });
                out.push('`');
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        let e = toml::from_str::<toml::Table>(text).unwrap_err();
        toml_error(text, &e)
    }

    #[test]
    fn names_the_line_and_problem_but_never_quotes_the_source() {
        let e = err("a = 1\nurl = \"https://x/SECRETTOKEN\" format = \"slack\"\n");
        assert!(e.starts_with("line 2, column "), "{e}");
        assert!(e.contains("expected newline"), "{e}");
        assert!(!e.contains("SECRETTOKEN"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let e = err("url = \"https://x/SECRETTOKEN\nb = 1\n");
        assert!(e.starts_with("line 1, column "), "{e}");
        assert!(!e.contains("SECRETTOKEN"), "{e}");
        let e = err("[a]\nflag = [1, \"x\"\n");
        assert_eq!(e, "line 3, column 1: invalid array; expected `]`");
        #[derive(Debug, serde::Deserialize)]
        struct T {
            #[allow(dead_code)]
            flag: bool,
        }
        let text = "flag = \"yes\"\n";
        let e = toml_error(text, &toml::from_str::<T>(text).unwrap_err());
        assert_eq!(
            e,
            "line 1, column 8: flag: invalid type: string \"…\", expected a boolean"
        );
        let text = "flag = \"https://hooks.slack.com/services/T0/B0/SECRETTOKEN\"\n";
        let e = toml_error(text, &toml::from_str::<T>(text).unwrap_err());
        assert!(!e.contains("SECRETTOKEN"), "{e}");
    }

    /// Review R4 E2/E3: a secret never comes back as a key name, in backticks, or out of a
    /// quoted value with a quote inside it.
    #[test]
    fn a_secret_is_never_named_as_a_key_or_shown_in_quotes() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw8kqZab4dxE6z=";
        let text = format!("a = 1\n{secret}\n");
        let e = err(&text);
        assert!(!e.contains("MfKQ9r8GKYqr"), "{e}");
        let e = err(&format!("{secret} = 1\n"));
        assert!(!e.contains("MfKQ9r8GKYqr"), "{e}");
        let hex = "0123456789abcdef0123456789abcdef";
        let e = err(&format!("x = 1\n{hex} =\n"));
        assert!(!e.contains(hex), "{e}");
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct T {
            #[allow(dead_code)]
            flag: Option<bool>,
        }
        let text = format!("{hex} = 1\n");
        let e = toml_error(&text, &toml::from_str::<T>(&text).unwrap_err());
        assert!(!e.contains(hex), "{e}");
        let text = "flag = 'x\"SECRETTOKEN'\n";
        let e = toml_error(text, &toml::from_str::<T>(text).unwrap_err());
        assert!(!e.contains("SECRETTOKEN"), "{e}");
        // Names and punctuation stay: the hint is kept.
        assert_eq!(
            unquoted("unknown field `flagg`, expected `flag`"),
            "unknown field `flagg`, expected `flag`"
        );
        assert_eq!(unquoted("expected `]`"), "expected `]`");
        assert_eq!(
            unquoted("unknown field `https://x/T0`"),
            "unknown field `…`"
        );
        assert_eq!(unquoted("string \"a\\\"SECRET\" x"), "string \"…\" x");
        assert_eq!(unquoted("open \"SECRET"), "open \"…\"");
        assert!(is_plain_name("auth_failures_window"));
        assert!(is_plain_name("max_pending_requests_per_user"));
        assert!(!is_plain_name(hex));
        assert!(!is_plain_name("Secret"));
    }
}

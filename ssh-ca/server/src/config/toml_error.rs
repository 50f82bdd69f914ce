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
    // `KEY =` with a bare (dotted) key, which is never a secret.
    let key = start
        .trim_end()
        .strip_suffix('=')
        .map(str::trim)
        .filter(|k| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' '))
        });
    match key {
        Some(key) => format!("line {line}, column {column}: {key}: {message}"),
        None => format!("line {line}, column {column}: {message}"),
    }
}

/// `message` with every double-quoted part shown as `"…"`: a type error quotes the value
/// (`invalid type: string "…", expected a boolean`), which may be a secret typed under
/// the wrong key.
fn unquoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut parts = message.split('"');
    out.push_str(parts.next().unwrap_or(""));
    let mut inside = true;
    for part in parts {
        if inside {
            out.push_str("\"…\"");
        } else {
            out.push_str(part);
        }
        inside = !inside;
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
}

//! One way to report a TOML syntax or type error without quoting the file.
//!
//! `toml::de::Error`'s `Display` prints the whole source line of the error; in config.toml
//! that line can hold a Slack webhook URL (a credential) and in policy.toml a webhook URL.
//! Errors go to the journal and to automation logs, a wider audience than the file, so every
//! TOML file the CA reads reports its errors through [`toml_error`]: the message and the
//! line and column only.

/// `PATH-less` one-line error for `e` found in `text`: "line L, column C: MESSAGE".
pub fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', "; ");
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
            "line 1, column 8: flag: invalid type: string \"yes\", expected a boolean"
        );
    }
}

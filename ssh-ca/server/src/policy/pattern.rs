//! Regular expressions of policy.toml (`reason_pattern`, an auto-approval rule's
//! `ticket_pattern`): compiled once, at policy load, with bounded size; compared by text.
//!
//! The ticket a reason carries is what `reason_pattern` matched: the capture group named
//! `ticket` if the pattern has one (`^(?<ticket>(INC|CHG)-[0-9]+):`), else the whole match.

use regex::{Regex, RegexBuilder};

/// Longest pattern text accepted.
pub const MAX_PATTERN_LEN: usize = 1024;
/// Longest ticket kept (a longer match is refused, not stored): the grant format's limit.
pub const MAX_TICKET_LEN: usize = jit_common::grant::MAX_TICKET_LEN;

/// A compiled pattern and its text.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    re: Regex,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Pattern {}

impl Pattern {
    /// Compiles `text`; the error is one line (the regex crate's own, without its caret
    /// drawing).
    pub fn compile(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("is empty; remove the key to accept any text".into());
        }
        if text.len() > MAX_PATTERN_LEN {
            return Err(format!("is longer than {MAX_PATTERN_LEN} bytes"));
        }
        let re = RegexBuilder::new(text)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                let detail = match &e {
                    regex::Error::Syntax(s) => s
                        .lines()
                        .rev()
                        .find_map(|l| l.strip_prefix("error: "))
                        .unwrap_or("invalid syntax")
                        .to_string(),
                    regex::Error::CompiledTooBig(_) => "compiles too large".to_string(),
                    _ => "invalid".to_string(),
                };
                format!("{text:?} is not a regular expression: {detail}")
            })?;
        Ok(Self {
            text: text.to_string(),
            re,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `s` matches anywhere (anchor with `^`/`$` in the pattern).
    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }

    /// Whether the pattern names a capture group `ticket`.
    pub fn has_ticket_group(&self) -> bool {
        self.re.capture_names().any(|n| n == Some("ticket"))
    }

    /// The ticket in `reason`: None if it does not match; `Some(None)` if it matched an
    /// empty ticket (or the `ticket` group did not take part).
    pub fn ticket(&self, reason: &str) -> Option<Option<String>> {
        let caps = self.re.captures(reason)?;
        let m = if self.has_ticket_group() {
            caps.name("ticket")
        } else {
            caps.get(0)
        };
        Some(
            m.map(|m| m.as_str())
                .filter(|t| !t.is_empty())
                .map(str::to_string),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_errors_are_one_line() {
        let e = Pattern::compile("^(INC").unwrap_err();
        assert_eq!(e, "\"^(INC\" is not a regular expression: unclosed group");
        assert!(Pattern::compile("").is_err());
        assert!(Pattern::compile(&"a".repeat(MAX_PATTERN_LEN + 1)).is_err());
        let e = Pattern::compile("a{100000}{100000}").unwrap_err();
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn the_ticket_is_the_match_or_the_named_group() {
        let p = Pattern::compile("^(INC|CHG)-[0-9]+").unwrap();
        assert_eq!(p.ticket("INC-42 disk full"), Some(Some("INC-42".into())));
        assert_eq!(p.ticket("see INC-42"), None);
        let p = Pattern::compile("^(?<ticket>(INC|CHG)-[0-9]+): .+").unwrap();
        assert!(p.has_ticket_group());
        assert_eq!(p.ticket("CHG-7: rotate"), Some(Some("CHG-7".into())));
        let p = Pattern::compile("(?<ticket>INC-[0-9]+)?").unwrap();
        assert_eq!(p.ticket("nothing"), Some(None));
        assert_eq!(
            Pattern::compile("x").unwrap(),
            Pattern::compile("x").unwrap()
        );
    }
}

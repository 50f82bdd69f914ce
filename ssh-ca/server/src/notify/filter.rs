//! Which events a sink receives: `events = ["request.*", "alert.self_approval"]`.
//!
//! A pattern is `*` (everything), a family followed by `.*` (`request.*`, `alert.*`), or an
//! exact event type. Anything else is refused when the configuration is read (a typo must
//! not silently drop a sink's messages), naming the known types.

use super::event::Kind;

/// One validated pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pattern {
    /// `*`.
    All,
    /// `FAMILY.*`.
    Family(&'static str),
    /// One type.
    Exact(Kind),
}

impl Pattern {
    fn matches(self, kind: Kind) -> bool {
        match self {
            Self::All => true,
            Self::Family(f) => kind.family() == f,
            Self::Exact(k) => k == kind,
        }
    }
}

/// A sink's event filter: an event passes when any pattern matches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    patterns: Vec<Pattern>,
    /// The patterns as written, for `jit-ca notify status`.
    written: Vec<String>,
}

/// The families events belong to.
fn families() -> Vec<&'static str> {
    let mut f: Vec<_> = Kind::ALL.iter().map(|k| k.family()).collect();
    f.dedup();
    f
}

impl Filter {
    /// Everything (a sink with no `events` key).
    pub fn all() -> Self {
        Self {
            patterns: vec![Pattern::All],
            written: vec!["*".into()],
        }
    }

    /// Validates `events`; the error is one line saying what is wrong and what is accepted.
    pub fn parse(events: &[String]) -> Result<Self, String> {
        if events.is_empty() {
            return Err(
                "is empty, so the sink would receive nothing; list patterns such as [\"request.*\", \"alert.*\"] or remove the key (everything)"
                    .into(),
            );
        }
        let mut patterns = Vec::with_capacity(events.len());
        for e in events {
            patterns.push(Self::pattern(e)?);
        }
        Ok(Self {
            patterns,
            written: events.to_vec(),
        })
    }

    fn pattern(e: &str) -> Result<Pattern, String> {
        if e == "*" {
            return Ok(Pattern::All);
        }
        if let Some(family) = e.strip_suffix(".*") {
            return families()
                .into_iter()
                .find(|f| *f == family)
                .map(Pattern::Family)
                .ok_or_else(|| {
                    format!(
                        "{e:?} names no family of events; use one of {}",
                        families()
                            .iter()
                            .map(|f| format!("\"{f}.*\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
        }
        Kind::parse(e).map(Pattern::Exact).ok_or_else(|| {
            let hint = if e.contains('*') {
                "a wildcard is accepted only as \"*\" or \"FAMILY.*\"".to_string()
            } else {
                format!(
                    "known types: {}",
                    Kind::ALL
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            format!("{e:?} is not an event type or pattern; {hint}")
        })
    }

    /// Whether an event of `kind` goes to the sink.
    pub fn matches(&self, kind: Kind) -> bool {
        self.patterns.iter().any(|p| p.matches(kind))
    }

    /// Whether an event of type `ty`, which this build does not know, could pass: `*`, or
    /// its family's `FAMILY.*` (an exact pattern names a known type, never this one).
    pub fn may_take_unknown(&self, ty: &str) -> bool {
        let family = ty.split('.').next().unwrap_or(ty);
        self.patterns.iter().any(|p| match p {
            Pattern::All => true,
            Pattern::Family(f) => *f == family,
            Pattern::Exact(_) => false,
        })
    }

    /// The patterns as written.
    pub fn written(&self) -> &[String] {
        &self.written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: &[&str]) -> Result<Filter, String> {
        Filter::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn families_exact_names_and_everything() {
        let ops = f(&["request.*", "alert.*"]).unwrap();
        assert!(Kind::ALL.iter().all(|k| ops.matches(*k)));
        let req = f(&["request.*"]).unwrap();
        assert!(req.matches(Kind::RequestCreated));
        assert!(req.matches(Kind::RequestExpiring));
        assert!(!req.matches(Kind::AlertSelfApproval));
        let one = f(&["alert.self_approval", "request.denied"]).unwrap();
        assert!(one.matches(Kind::AlertSelfApproval));
        assert!(one.matches(Kind::RequestDenied));
        assert!(!one.matches(Kind::AlertBreakGlass));
        assert!(!one.matches(Kind::RequestApproved));
        assert!(Kind::ALL.iter().all(|k| Filter::all().matches(*k)));
        assert!(Kind::ALL.iter().all(|k| f(&["*"]).unwrap().matches(*k)));
        assert_eq!(one.written(), ["alert.self_approval", "request.denied"]);
    }

    #[test]
    fn refuses_what_would_silently_match_nothing() {
        assert!(f(&[]).unwrap_err().starts_with("is empty"));
        let e = f(&["requests.*"]).unwrap_err();
        assert_eq!(
            e,
            "\"requests.*\" names no family of events; use one of \"request.*\", \"alert.*\""
        );
        let e = f(&["request.approve"]).unwrap_err();
        assert!(e.starts_with("\"request.approve\" is not an event type or pattern; known types: request.created, "), "{e}");
        let e = f(&["request.app*"]).unwrap_err();
        assert!(
            e.ends_with("a wildcard is accepted only as \"*\" or \"FAMILY.*\""),
            "{e}"
        );
        assert!(f(&["Request.created"]).is_err());
        assert!(f(&[" request.created"]).is_err());
        assert!(f(&["**"]).is_err());
        assert!(f(&[".*"]).is_err());
    }
}

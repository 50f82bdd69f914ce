//! `[web]` in config.toml: the web pages for approvers and auditors (issue 16, docs/web.md).

use serde::Deserialize;

/// Default `session_idle_timeout`: 15 minutes.
pub const DEFAULT_IDLE_TIMEOUT: u64 = 15 * 60;
/// Default `session_max_age`: 8 hours.
pub const DEFAULT_MAX_AGE: u64 = 8 * 3600;
/// Accepted `session_idle_timeout`: 1 minute to 1 day.
pub const IDLE_RANGE: (u64, u64) = (60, 24 * 3600);
/// Accepted `session_max_age`: 5 minutes to 7 days.
pub const MAX_AGE_RANGE: (u64, u64) = (5 * 60, 7 * 24 * 3600);

/// `[web]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeb {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    session_idle_timeout: Option<String>,
    #[serde(default)]
    session_max_age: Option<String>,
}

/// The validated `[web]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebConfig {
    /// Whether `/ui/` is served and `POST /v1/web/login` issues login links.
    pub enabled: bool,
    /// A session unused this long ends (`session_idle_timeout`).
    pub session_idle_timeout_secs: u64,
    /// A session ends this long after its login whatever its use (`session_max_age`).
    pub session_max_age_secs: u64,
}

impl WebConfig {
    /// The longest `session_idle_timeout` accepted.
    pub const MAX_IDLE_SECS: u64 = IDLE_RANGE.1;
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            session_idle_timeout_secs: DEFAULT_IDLE_TIMEOUT,
            session_max_age_secs: DEFAULT_MAX_AGE,
        }
    }
}

fn duration(name: &str, v: Option<&str>, default: u64, errs: &mut Vec<String>) -> u64 {
    match v {
        None => default,
        Some(s) => match jit_common::time::parse_duration(s).map(u64::from) {
            Ok(d) => d,
            Err(e) => {
                errs.push(format!("web.{name}: {e}"));
                default
            }
        },
    }
}

/// Validates `[web]` (absent: the defaults), pushing every problem to `errs`.
pub(super) fn validate(raw: Option<RawWeb>, errs: &mut Vec<String>) -> WebConfig {
    let raw = raw.unwrap_or_default();
    let idle = duration(
        "session_idle_timeout",
        raw.session_idle_timeout.as_deref(),
        DEFAULT_IDLE_TIMEOUT,
        errs,
    );
    let max_age = duration(
        "session_max_age",
        raw.session_max_age.as_deref(),
        DEFAULT_MAX_AGE,
        errs,
    );
    let mut ok = true;
    if !(IDLE_RANGE.0..=IDLE_RANGE.1).contains(&idle) {
        errs.push(format!(
            "web.session_idle_timeout is {idle}s; use 1m to 1d (e.g. session_idle_timeout = \"15m\")"
        ));
        ok = false;
    }
    if !(MAX_AGE_RANGE.0..=MAX_AGE_RANGE.1).contains(&max_age) {
        errs.push(format!(
            "web.session_max_age is {max_age}s; use 5m to 7d (e.g. session_max_age = \"8h\")"
        ));
        ok = false;
    }
    if ok && max_age < idle {
        errs.push(format!(
            "web.session_max_age ({max_age}s) is shorter than web.session_idle_timeout ({idle}s); \
             make the maximum age at least the idle timeout"
        ));
    }
    WebConfig {
        enabled: raw.enabled.unwrap_or(true),
        session_idle_timeout_secs: idle,
        session_max_age_secs: max_age,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{Config, TEMPLATE};
    use super::*;

    fn parse(t: &str) -> Result<Config, Vec<String>> {
        Config::parse(Path::new("/d"), t)
    }

    #[test]
    fn defaults_and_the_template() {
        assert_eq!(parse("").unwrap().web, WebConfig::default());
        assert_eq!(parse(TEMPLATE).unwrap().web, WebConfig::default());
        let d = WebConfig::default();
        assert!(d.enabled);
        assert_eq!(d.session_idle_timeout_secs, 900);
        assert_eq!(d.session_max_age_secs, 8 * 3600);
        // The template's commented [web] block, uncommented, is the defaults.
        let uncommented: String = TEMPLATE
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|_| {
                        l == "# [web]"
                            || l.starts_with("# enabled =")
                            || l.starts_with("# session_")
                    })
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            uncommented.contains("\n[web]\nenabled = true"),
            "{uncommented}"
        );
        assert_eq!(parse(&uncommented).unwrap().web, WebConfig::default());
    }

    #[test]
    fn values_are_read_and_checked() {
        let c = parse(
            "[web]\nenabled = false\nsession_idle_timeout = \"5m\"\nsession_max_age = \"1h\"\n",
        )
        .unwrap();
        assert_eq!(
            c.web,
            WebConfig {
                enabled: false,
                session_idle_timeout_secs: 300,
                session_max_age_secs: 3600
            }
        );
        let one = |t: &str| {
            let e = parse(t).unwrap_err();
            assert_eq!(e.len(), 1, "{e:?}");
            e[0].clone()
        };
        assert!(one("[web]\nsession_idle_timeout = \"30s\"").contains("use 1m to 1d"));
        assert!(one("[web]\nsession_idle_timeout = \"2d\"").contains("use 1m to 1d"));
        assert!(one("[web]\nsession_max_age = \"4m\"").contains("use 5m to 7d"));
        assert!(one("[web]\nsession_max_age = \"8d\"").contains("use 5m to 7d"));
        assert!(
            one("[web]\nsession_idle_timeout = \"1h\"\nsession_max_age = \"30m\"")
                .contains("shorter than web.session_idle_timeout")
        );
        assert!(one("[web]\nsession_max_age = \"soon\"").starts_with("web.session_max_age: "));
        assert!(parse("[web]\ncookie = \"x\"").is_err(), "unknown key");
        assert!(parse("web = 1").is_err());
        // The bounds themselves are accepted.
        let c = parse("[web]\nsession_idle_timeout = \"1m\"\nsession_max_age = \"5m\"").unwrap();
        assert_eq!(c.web.session_idle_timeout_secs, 60);
        let c = parse("[web]\nsession_idle_timeout = \"1d\"\nsession_max_age = \"7d\"").unwrap();
        assert_eq!(c.web.session_max_age_secs, 7 * 24 * 3600);
    }
}

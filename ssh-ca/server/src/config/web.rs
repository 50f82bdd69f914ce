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

/// `public_url` checked and normalised: `scheme://host[:port]` (http or https), a trailing
/// `/` dropped. The pages are served under `/ui/` of that origin, and login links, chat links
/// and the CSRF origin check are all built from it, so a path, query, fragment or userinfo
/// (which would make them point elsewhere or break them) is refused.
pub(super) fn public_url(u: &str) -> Result<String, String> {
    let refuse = |why: &str| {
        format!(
            "public_url {u:?}: {why}; give the origin only, e.g. \"https://ca.example.com:8443\" (the web pages are served under /ui/ of it)"
        )
    };
    if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(refuse("a space or control character is not allowed"));
    }
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or_else(|| refuse("must start with http:// or https://"))?;
    if rest.contains('?') {
        return Err(refuse("a query (?...) is not allowed"));
    }
    if rest.contains('#') {
        return Err(refuse("a fragment (#...) is not allowed"));
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.contains('@') {
        return Err(refuse("user information (user@) is not allowed"));
    }
    if !path.is_empty() && path != "/" {
        return Err(refuse(&format!(
            "a path ({path}) is not allowed: the CA must be served at the root of its origin"
        )));
    }
    // host, [v6], with an optional :port.
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            // After `]`: nothing, or `:port` (anything else is a bad port).
            Some((h, p)) => (h, (!p.is_empty()).then(|| p.strip_prefix(':').unwrap_or(p))),
            None => ("", None),
        },
        None => match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err(refuse("the host is missing"));
    }
    if let Some(p) = port
        && (!p.bytes().all(|b| b.is_ascii_digit()) || !matches!(p.parse::<u16>(), Ok(1..)))
    {
        return Err(refuse(&format!(
            "the port {p:?} is not a number from 1 to 65535"
        )));
    }
    Ok(u.trim_end_matches('/').to_string())
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

    #[test]
    fn public_url_is_an_origin_only() {
        let url = |u: &str| parse(&format!("public_url = {u:?}\n"));
        // A trailing slash is normalised away; every link is built from the origin.
        for (given, kept) in [
            ("https://ca.example.com", "https://ca.example.com"),
            ("https://ca.example.com/", "https://ca.example.com"),
            ("http://10.0.0.5:8443/", "http://10.0.0.5:8443"),
            ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
        ] {
            let c = url(given).unwrap();
            assert_eq!(c.public_url.as_deref(), Some(kept), "{given}");
            assert_eq!(c.url(), kept);
        }
        for (bad, why) in [
            ("https://ca.example.com/?x=1", "query"),
            ("https://ca.example.com?x=1", "query"),
            ("https://ca.example.com/#top", "fragment"),
            ("https://u@ca.example.com", "user"),
            ("https://u:pw@ca.example.com/", "user"),
            ("https://ca.example.com/jit", "path"),
            ("https://ca.example.com/jit/", "path"),
            ("https://ca.example.com//", "path"),
            ("https:// ca.example.com", "space"),
            ("https://", "host"),
            ("https://ca.example.com:x", "port"),
            ("https://ca.example.com:99999", "port"),
            ("https://ca.example.com:0", "port"),
            ("https://ca.example.com:", "port"),
            ("https://[::1]x", "port"),
            ("ftp://ca.example.com", "http"),
        ] {
            let e = url(bad).unwrap_err();
            assert_eq!(e.len(), 1, "{bad}: {e:?}");
            let e = &e[0];
            assert!(e.starts_with("public_url "), "{bad}: {e}");
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.contains("https://ca.example.com:8443"), "{bad}: {e}");
            assert!(!e.contains('\n'), "{bad}: {e}");
        }
    }
}

//! Several CA base URLs (the replicas of one CA) and when a call may go to the next one.
//!
//! Shared by `jit` and `jit-host sync`; no HTTP types here: the caller says how an attempt
//! ended ([`Outcome`]) and [`retry_policy`] says whether another server may be asked.
//!
//! The rule keeps "nothing answered twice": a call is sent to the next server only when
//! the first certainly did not act on it (the connection or TLS handshake failed, so
//! nothing was sent; or the CA answered 503 `unavailable`, which it does only when nothing
//! was stored), or when the call is a GET (reads change nothing). A POST whose request went
//! out but whose answer was lost may have been stored: it is never resent
//! ([`Next::Unknown`]), the user is told to look (`jit list`).

use std::fmt;

use serde::Deserialize;

use crate::wire::ErrorCode;

/// At most this many servers in one list (a CA with more replicas sits behind a load
/// balancer; a client walking a longer list would wait minutes on a dead network).
pub const MAX_SERVERS: usize = 16;

/// Why a server URL or a list of them is refused (one line, says how to fix it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerListError(pub String);

impl fmt::Display for ServerListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServerListError {}

const EXAMPLE: &str = "example: https://ca.example.com:8443";

/// Checks and normalises one server URL: `http(s)://host[:port]`, no path, query or user
/// info; a trailing `/` is dropped.
pub fn normalize(url: &str) -> Result<String, ServerListError> {
    let url = url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            ServerListError(format!(
                "server URL {:?} must start with https:// or http:// ({EXAMPLE})",
                shown(url)
            ))
        })?;
    let authority = rest.trim_end_matches('/');
    if authority.contains(',') {
        return Err(ServerListError(format!(
            "server URL {:?} holds a comma: list several servers as a TOML array \
             (server = [\"https://ca1:8443\", \"https://ca2:8443\"]), or comma-separated in \
             JIT_SERVER or --server",
            shown(url)
        )));
    }
    if authority.is_empty()
        || authority.contains(['/', '?', '#', '@', ','])
        || authority
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ServerListError(format!(
            "server URL {:?} must be scheme://host[:port] with no path ({EXAMPLE})",
            shown(url)
        )));
    }
    let scheme_len = url.len() - rest.len();
    Ok(format!("{}{}", &url[..scheme_len], authority))
}

/// At most 200 characters of what was given, for messages.
fn shown(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Checks and normalises a list of server URLs (from a TOML array, or repeated flags):
/// at least one, at most [`MAX_SERVERS`], each valid, none twice (after normalising).
pub fn parse_list<S: AsRef<str>>(items: &[S]) -> Result<Vec<String>, ServerListError> {
    if items.is_empty() || items.iter().all(|s| s.as_ref().trim().is_empty()) {
        return Err(ServerListError(format!(
            "the server list is empty: name at least one CA URL ({EXAMPLE})"
        )));
    }
    if items.len() > MAX_SERVERS {
        return Err(ServerListError(format!(
            "{} servers listed; at most {MAX_SERVERS} (put more replicas behind a load balancer \
             and list its address)",
            items.len()
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let item = item.as_ref();
        if item.trim().is_empty() {
            return Err(ServerListError(
                "the server list has an empty entry: remove it".to_string(),
            ));
        }
        let url = normalize(item)?;
        if out.contains(&url) {
            return Err(ServerListError(format!(
                "server {url} is listed twice: name each replica once"
            )));
        }
        out.push(url);
    }
    Ok(out)
}

/// A comma-separated list (`JIT_SERVER=https://ca1:8443,https://ca2:8443`, or one
/// `--server` value): split, then [`parse_list`].
pub fn parse_comma_list(text: &str) -> Result<Vec<String>, ServerListError> {
    let items: Vec<&str> = text.split(',').map(str::trim).collect();
    parse_list(&items)
}

/// Several `--server` flags, each of which may itself be a comma list: one flat list.
pub fn parse_flags<S: AsRef<str>>(flags: &[S]) -> Result<Vec<String>, ServerListError> {
    let items: Vec<&str> = flags
        .iter()
        .flat_map(|f| f.as_ref().split(','))
        .map(str::trim)
        .collect();
    parse_list(&items)
}

/// `server` in a TOML file: one URL, or an array of them (the replicas of one CA).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ServerSetting {
    /// `server = "https://ca.example.com:8443"`.
    One(String),
    /// `server = ["https://ca1:8443", "https://ca2:8443"]`.
    Many(Vec<String>),
}

impl ServerSetting {
    /// The checked, normalised list ([`parse_list`]).
    pub fn to_list(&self) -> Result<Vec<String>, ServerListError> {
        match self {
            Self::One(url) => parse_list(std::slice::from_ref(url)),
            Self::Many(urls) => parse_list(urls),
        }
    }
}

/// The call's HTTP method, as far as retrying cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A read: changes nothing, may always be asked again.
    Get,
    /// A change (`POST`): may be sent again only when it certainly was not acted on.
    Post,
}

impl Method {
    /// `GET` is [`Method::Get`]; every other method is treated as a change.
    pub fn from_name(name: &str) -> Self {
        if name.eq_ignore_ascii_case("GET") {
            Self::Get
        } else {
            Self::Post
        }
    }
}

/// How one attempt against one server ended (only failures are asked about).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// DNS, TCP connect or the TLS handshake failed: nothing of the request was sent.
    NotConnected,
    /// Connected (the request may have gone out), but no complete answer came back: the
    /// connection broke, timed out, or the answer was not HTTP.
    AnswerLost,
    /// An HTTP error status; `jit_code` is the `error.code` of a jit error body, `None`
    /// when the body is not one (a load balancer's or proxy's page).
    Status {
        /// The HTTP status (4xx/5xx).
        status: u16,
        /// The jit error code, when the body is a jit error.
        jit_code: Option<&'a str>,
    },
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Ask the next server (sign the call anew).
    Retry,
    /// Final: report this answer (the CA decided, e.g. 403 or 409).
    Stop,
    /// A change may or may not have been stored: do not resend; tell the user to check.
    Unknown,
}

/// Whether a failed call may be sent to another server:
///
/// * nothing was sent (connect, DNS, TLS handshake) -> [`Next::Retry`], any method;
/// * 503 with the jit code `unavailable` (the CA stored nothing) -> [`Next::Retry`], any method;
/// * a GET whose answer was lost, or a 502/503/504 without a jit body (a load balancer's)
///   -> [`Next::Retry`] for a GET, [`Next::Unknown`] for a POST (it may have reached a
///   replica that stored it);
/// * any other status with a jit error body (the CA's decision, or 500 `internal` whose
///   outcome is unknown) -> [`Next::Stop`];
/// * any other status without a jit body -> [`Next::Stop`] (not a jit-ca answer; the
///   caller reports it).
pub fn retry_policy(method: Method, outcome: Outcome<'_>) -> Next {
    let unsure = match method {
        Method::Get => Next::Retry,
        Method::Post => Next::Unknown,
    };
    match outcome {
        Outcome::NotConnected => Next::Retry,
        Outcome::AnswerLost => unsure,
        Outcome::Status {
            status: 503,
            jit_code: Some(code),
        } if code == ErrorCode::Unavailable.as_str() => Next::Retry,
        Outcome::Status {
            jit_code: Some(_), ..
        } => Next::Stop,
        Outcome::Status {
            status: 502..=504,
            jit_code: None,
        } => unsure,
        Outcome::Status { jit_code: None, .. } => Next::Stop,
    }
}

/// The message for a change whose answer was lost (the same words in every client).
pub fn answer_lost_message(server: &str, detail: &str) -> String {
    format!(
        "the CA at {server} did not answer; it may have stored the request: run `jit list` \
         before trying again ({detail})"
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn one_url_is_normalised_as_before() {
        assert_eq!(
            normalize(" http://127.0.0.1:8443/ ").unwrap(),
            "http://127.0.0.1:8443"
        );
        assert_eq!(
            normalize("https://ca.example.com").unwrap(),
            "https://ca.example.com"
        );
        for bad in [
            "ca.example.com",
            "https://ca/x",
            "https://u@ca",
            "https://",
            "ftp://ca",
            "https://ca?x",
            "https://c a",
        ] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lists_are_normalised_and_keep_their_order() {
        assert_eq!(
            parse_list(&["https://b:1/", "https://a:1"]).unwrap(),
            vec!["https://b:1", "https://a:1"]
        );
        assert_eq!(
            parse_comma_list("https://a:1, https://b:1/").unwrap(),
            vec!["https://a:1", "https://b:1"]
        );
        assert_eq!(
            parse_flags(&["https://a:1", "https://b:1,https://c:1"]).unwrap(),
            vec!["https://a:1", "https://b:1", "https://c:1"]
        );
        assert_eq!(parse_comma_list("http://one").unwrap(), vec!["http://one"]);
    }

    #[test]
    fn duplicates_are_refused_after_normalising() {
        let e = parse_list(&["https://a:1", "https://a:1/"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "server https://a:1 is listed twice: name each replica once"
        );
        assert!(parse_comma_list("https://a:1,https://a:1").is_err());
    }

    #[test]
    fn empty_lists_and_entries_are_refused_clearly() {
        let none: [&str; 0] = [];
        let e = parse_list(&none).unwrap_err().to_string();
        assert!(
            e.starts_with("the server list is empty: name at least one CA URL"),
            "{e}"
        );
        assert_eq!(parse_comma_list("  ").unwrap_err().to_string(), e);
        assert_eq!(
            parse_comma_list("https://a:1,,https://b:1")
                .unwrap_err()
                .to_string(),
            "the server list has an empty entry: remove it"
        );
        assert!(parse_comma_list("https://a:1,").is_err());
        let e = parse_comma_list("https://a:1,ca2:8443")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"ca2:8443\" must start with https://"), "{e}");
    }

    #[test]
    fn too_many_servers_are_refused() {
        let many: Vec<String> = (0..=MAX_SERVERS)
            .map(|i| format!("https://ca{i}"))
            .collect();
        assert!(
            parse_list(&many)
                .unwrap_err()
                .to_string()
                .contains("at most 16")
        );
        assert!(parse_list(&many[..MAX_SERVERS]).is_ok());
    }

    fn status(status: u16, jit_code: Option<&str>) -> Outcome<'_> {
        Outcome::Status { status, jit_code }
    }

    #[test]
    fn nothing_sent_is_retried_for_every_method() {
        assert_eq!(
            retry_policy(Method::Get, Outcome::NotConnected),
            Next::Retry
        );
        assert_eq!(
            retry_policy(Method::Post, Outcome::NotConnected),
            Next::Retry
        );
    }

    #[test]
    fn unavailable_is_retried_for_every_method() {
        for m in [Method::Get, Method::Post] {
            assert_eq!(
                retry_policy(m, status(503, Some("unavailable"))),
                Next::Retry
            );
        }
    }

    #[test]
    fn a_load_balancers_gateway_errors_are_retried_only_for_reads() {
        for s in [502, 503, 504] {
            assert_eq!(
                retry_policy(Method::Get, status(s, None)),
                Next::Retry,
                "{s}"
            );
            assert_eq!(
                retry_policy(Method::Post, status(s, None)),
                Next::Unknown,
                "{s}"
            );
        }
    }

    #[test]
    fn a_lost_answer_is_retried_for_reads_and_never_resent_for_changes() {
        assert_eq!(retry_policy(Method::Get, Outcome::AnswerLost), Next::Retry);
        assert_eq!(
            retry_policy(Method::Post, Outcome::AnswerLost),
            Next::Unknown
        );
    }

    #[test]
    fn the_cas_own_errors_are_final() {
        for m in [Method::Get, Method::Post] {
            for (s, code) in [
                (400, "invalid_input"),
                (401, "bad_signature"),
                (401, "replayed_nonce"),
                (403, "forbidden"),
                (404, "not_found"),
                (409, "invalid_state"),
                (429, "too_many_pending_requests"),
                (500, "internal"),
                // A 502/504 carrying a jit body is the CA's answer, not a gateway's.
                (502, "internal"),
                // Only `unavailable` promises that nothing was stored.
                (503, "internal"),
            ] {
                assert_eq!(
                    retry_policy(m, status(s, Some(code))),
                    Next::Stop,
                    "{s} {code}"
                );
            }
            // Not a jit answer and not a gateway error: reported, not retried.
            assert_eq!(retry_policy(m, status(404, None)), Next::Stop);
            assert_eq!(retry_policy(m, status(500, None)), Next::Stop);
        }
    }

    #[test]
    fn toml_takes_a_string_or_an_array() {
        #[derive(Deserialize)]
        struct F {
            server: ServerSetting,
        }
        let one: F = toml::from_str("server = \"https://a:1/\"").unwrap();
        assert_eq!(one.server.to_list().unwrap(), vec!["https://a:1"]);
        let many: F = toml::from_str("server = [\"https://a:1\", \"https://b:1\"]").unwrap();
        assert_eq!(
            many.server.to_list().unwrap(),
            vec!["https://a:1", "https://b:1"]
        );
        let empty: F = toml::from_str("server = []").unwrap();
        assert!(empty.server.to_list().is_err());
        let comma: F = toml::from_str("server = \"https://a:1,https://b:1\"").unwrap();
        let e = comma.server.to_list().unwrap_err().to_string();
        assert!(e.contains("TOML array"), "{e}");
        assert!(toml::from_str::<F>("server = 3").is_err());
    }

    #[test]
    fn method_names() {
        assert_eq!(Method::from_name("GET"), Method::Get);
        assert_eq!(Method::from_name("get"), Method::Get);
        assert_eq!(Method::from_name("POST"), Method::Post);
        assert_eq!(Method::from_name("DELETE"), Method::Post);
    }

    #[test]
    fn the_lost_answer_message_says_what_to_run() {
        let m = answer_lost_message("https://ca1:8443", "connection reset");
        assert!(
            m.starts_with("the CA at https://ca1:8443 did not answer"),
            "{m}"
        );
        assert!(
            m.contains("it may have stored the request: run `jit list`"),
            "{m}"
        );
    }
}

//! The `[[notify]]` tables of `config.toml`: where notifications go.
//!
//! ```toml
//! [[notify]]
//! name = "ops"
//! url = "https://hooks.example.com/jit"
//! format = "standard"               # Standard Webhooks: webhook-id, -timestamp, -signature
//! secret_file = "keys/ops.whsec"    # relative to the data directory; mode 0600
//! events = ["request.*", "alert.*"] # default: every event ("*")
//!
//! [[notify]]
//! name = "chat"
//! url = "https://hooks.slack.com/services/..."
//! format = "slack"                  # incoming-webhook JSON with Block Kit
//! ```
//! The URL follows the authorizing webhook's rule ([`crate::webhook::check_url`]): https, or
//! plain http to the loopback interface only (a local relay), no credentials in it. A
//! `standard` sink signs with the secret in `secret_file`; an inline `secret` is refused, as
//! for `[[webhook]]`: config.toml is not a secret file (it is readable, reviewed, copied into
//! backups and tickets), while the secret file is mode 0600 under checked directories, read
//! once at load and zeroized on drop, and rotated by replacing it. A `slack` sink is not
//! signed (Slack's incoming webhooks check nothing); its URL is its secret.
//!
//! Each table is checked key by key, so every problem is one line naming the sink and the
//! key (`notify.ops.events: ...`), all reported at once like the rest of config.toml.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::filter::Filter;
use crate::webhook::Secret;

/// Most sinks.
pub const MAX_SINKS: usize = 16;
/// The keys a `[[notify]]` table may have.
pub const KEYS: &[&str] = &[
    "name",
    "url",
    "format",
    "secret_file",
    "secret",
    "events",
    "ca_file",
];

/// How a sink's messages are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The event's JSON payload, signed with Standard Webhooks headers.
    Standard,
    /// A Slack incoming-webhook message (Block Kit), unsigned.
    Slack,
}

impl Format {
    /// The name written in config.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Slack => "slack",
        }
    }
}

/// A `[[notify]]` table's values, once its keys are known to be allowed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    name: Option<String>,
    url: Option<String>,
    format: Option<String>,
    secret_file: Option<String>,
    /// Refused with a pointer to `secret_file` (see the module documentation).
    secret: Option<toml::Value>,
    events: Option<Vec<String>>,
    ca_file: Option<String>,
}

/// A validated sink. Its `Debug` shows the URL's scheme and host only (a Slack URL is a
/// credential) and no secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Sink {
    /// Its name: in metrics, `jit-ca notify status` and the outbox's delivery rows.
    pub name: String,
    /// Where messages go.
    pub url: String,
    /// How they are written.
    pub format: Format,
    /// The secret's file, as written (relative to the data directory unless absolute);
    /// `standard` sinks only.
    pub secret_file: Option<PathBuf>,
    /// Which events it receives.
    pub filter: Filter,
    /// The secret, once [`load_secrets`] read it. A `standard` sink without it is not
    /// delivered to (its rows wait, and `notify status` says why).
    pub secret: Option<Secret>,
    /// `ca_file`, as written: only these roots are trusted for its https (a receiver behind
    /// an internal PKI), like a `[[webhook]]`'s; default the web PKI.
    pub ca_file: Option<PathBuf>,
    /// The `ca_file` text, once [`load_secrets`] read and checked it.
    pub ca_pem: Option<String>,
}

/// A slack sink's URL is its credential: it is wiped from memory when the sink is dropped
/// (a SIGHUP reload replaces the sinks; the service's exit drops them).
impl Drop for Sink {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.url);
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("name", &self.name)
            .field("url", &crate::webhook::shown_url(&self.url))
            .field("format", &self.format)
            .field("secret_file", &self.secret_file)
            .field("filter", &self.filter)
            .field("secret", &self.secret.as_ref().map(|_| "(set)"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Validates the `[[notify]]` tables (as parsed from config.toml, in order); every problem is
/// pushed to `errs` as one line naming the sink and the key. Sinks with a problem are left
/// out.
pub fn validate(tables: Vec<toml::Table>, errs: &mut Vec<String>) -> Vec<Sink> {
    if tables.len() > MAX_SINKS {
        errs.push(format!(
            "notify: {} sinks; at most {MAX_SINKS} are accepted",
            tables.len()
        ));
    }
    let mut out: Vec<Sink> = Vec::new();
    for (i, table) in tables.into_iter().enumerate() {
        let label = match table.get("name").and_then(toml::Value::as_str) {
            Some(n) => format!("notify.{n}"),
            None => format!("notify[{i}]"),
        };
        let before = errs.len();
        let unknown: Vec<_> = table
            .keys()
            .filter(|k| !KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in &unknown {
            // A key that is not a name may be a pasted secret: never echo it.
            let k = if crate::config::is_plain_name(k) {
                k.as_str()
            } else {
                "(a key that is not a name, not shown)"
            };
            errs.push(format!(
                "{label}.{k}: unknown key; a [[notify]] table has {}",
                KEYS.join(", ")
            ));
        }
        if !unknown.is_empty() {
            continue;
        }
        let raw = match RawSink::deserialize(toml::Value::Table(table)) {
            Ok(r) => r,
            Err(e) => {
                // The key and the expected type, on one line.
                let msg = crate::config::unquoted(&e.message().replace('\n', " "));
                errs.push(format!("{label}: {}", msg.trim()));
                continue;
            }
        };
        let mut err = |field: &str, msg: String| errs.push(format!("{label}.{field}: {msg}"));
        let name = raw.name.clone().unwrap_or_default();
        match &raw.name {
            None => err("name", "is required (e.g. name = \"ops\")".into()),
            Some(n) => {
                if let Err(e) = jit_common::grant::check_id("name", n) {
                    err("name", e.to_string());
                }
                if out.iter().any(|s| s.name == *n) {
                    err(
                        "name",
                        "is defined twice; give each sink its own name".into(),
                    );
                }
            }
        }
        let url = raw.url.unwrap_or_default();
        if let Err(e) = crate::webhook::check_url(&url) {
            err("url", e);
        }
        let format = match raw.format.as_deref() {
            Some("standard") => Some(Format::Standard),
            Some("slack") => Some(Format::Slack),
            Some(other) => {
                err(
                    "format",
                    format!(
                        "{other:?} is not a format; use \"standard\" (Standard Webhooks, signed) or \"slack\""
                    ),
                );
                None
            }
            None => {
                err(
                    "format",
                    "is required: \"standard\" (Standard Webhooks, signed) or \"slack\"".into(),
                );
                None
            }
        };
        if raw.secret.is_some() {
            err(
                "secret",
                format!(
                    "a secret is not accepted inline: config.toml is not a secret file (it is readable, \
                     reviewed and copied into backups); write the secret to a file of mode 0600 in the \
                     data directory and name it: secret_file = \"keys/{name}.whsec\""
                ),
            );
        }
        let secret_file = match (format, raw.secret_file) {
            (Some(Format::Slack), Some(_)) => {
                err(
                    "secret_file",
                    "a slack sink is not signed (Slack's incoming webhooks check no signature; the URL is the secret): remove secret_file".into(),
                );
                None
            }
            (Some(Format::Standard), Some(f)) if !f.trim().is_empty() => Some(PathBuf::from(f)),
            (Some(Format::Standard), _) if raw.secret.is_none() => {
                err(
                    "secret_file",
                    format!(
                        "is required for format = \"standard\": the file (mode 0600, in the data directory) \
                         holding the signing secret, e.g. secret_file = \"keys/{name}.whsec\""
                    ),
                );
                None
            }
            _ => None,
        };
        let filter = match raw.events {
            None => Filter::all(),
            Some(events) => match Filter::parse(&events) {
                Ok(f) => f,
                Err(e) => {
                    err("events", e);
                    Filter::all()
                }
            },
        };
        if errs.len() == before
            && let Some(format) = format
        {
            out.push(Sink {
                name,
                url,
                format,
                secret_file,
                filter,
                secret: None,
                ca_file: raw.ca_file.map(PathBuf::from),
                ca_pem: None,
            });
        }
    }
    out
}

/// Parses a TOML document's `[[notify]]` tables (other top-level keys are ignored here:
/// `Config::parse` checks them), reporting every problem at once.
pub fn parse(text: &str) -> Result<Vec<Sink>, Vec<String>> {
    let doc: toml::Table =
        toml::from_str(text).map_err(|e| vec![crate::config::toml_error(text, &e)])?;
    let tables = match doc.get("notify") {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => {
            let mut tables = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    toml::Value::Table(t) => tables.push(t.clone()),
                    _ => {
                        return Err(vec!["notify: write each sink as a [[notify]] table".into()]);
                    }
                }
            }
            tables
        }
        Some(_) => return Err(vec!["notify: write each sink as a [[notify]] table".into()]),
    };
    let mut errs = Vec::new();
    let sinks = validate(tables, &mut errs);
    if errs.is_empty() {
        Ok(sinks)
    } else {
        Err(errs)
    }
}

/// Reads every `standard` sink's secret file (relative to `dir` unless absolute) with the
/// webhook secrets' rule ([`crate::webhook::read_secret_file`]). Returns every problem, each
/// naming the sink and the file.
pub fn load_secrets(sinks: &mut [Sink], dir: &Path) -> Vec<String> {
    let mut errs = Vec::new();
    for s in sinks.iter_mut() {
        if let Some(f) = &s.ca_file {
            // Whoever could swap the roots could pose as the receiver (the webhooks' rule:
            // a file under directories nobody else may write).
            let path = dir.join(f);
            let pem = crate::files::read_trusted_tree(&path, 1024 * 1024)
                .map_err(|e| e.to_string())
                .and_then(|pem| {
                    crate::webhook::client::tls_config(&pem)
                        .map(|_| pem)
                        .map_err(|e| format!("{}: {e}", path.display()))
                });
            match pem {
                Ok(pem) => s.ca_pem = Some(pem),
                Err(e) => {
                    s.ca_pem = None;
                    errs.push(format!("notify.{}.ca_file: {e}", s.name));
                }
            }
        }
        let Some(file) = &s.secret_file else {
            continue;
        };
        match crate::webhook::read_secret_file(&dir.join(file)) {
            Ok(secret) => s.secret = Some(secret),
            Err(e) => {
                s.secret = None;
                errs.push(format!("notify.{}.secret_file: {e}", s.name));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::notify::event::Kind;

    const ISSUE_EXAMPLE: &str = r#"
listen = "127.0.0.1:8443"
[[notify]]
name = "ops"
url = "https://hooks.example.com/jit"
format = "standard"          # Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature
secret_file = "keys/ops.whsec"   # "whsec_" + base64 key; v1 = HMAC-SHA256 over "{id}.{timestamp}.{body}"
events = ["request.*", "alert.*"]
[[notify]]
name = "chat"
url = "https://hooks.slack.com/services/T000/B000/XXXX"
format = "slack"
"#;

    #[test]
    fn the_issue_example_parses() {
        let sinks = parse(ISSUE_EXAMPLE).unwrap();
        assert_eq!(sinks.len(), 2);
        let (ops, chat) = (&sinks[0], &sinks[1]);
        assert_eq!(ops.name, "ops");
        assert_eq!(ops.format, Format::Standard);
        assert_eq!(ops.secret_file, Some(PathBuf::from("keys/ops.whsec")));
        assert!(ops.filter.matches(Kind::AlertBreakGlass));
        assert_eq!(ops.secret, None);
        assert_eq!(chat.format.as_str(), "slack");
        assert_eq!(chat.secret_file, None);
        assert!(Kind::ALL.iter().all(|k| chat.filter.matches(*k)));
        assert_eq!(parse("").unwrap(), vec![]);
        // http to the loopback interface: a local relay (and the tests' receiver).
        let local =
            "[[notify]]\nname = \"t\"\nurl = \"http://127.0.0.1:9/x\"\nformat = \"slack\"\n";
        assert_eq!(parse(local).unwrap()[0].url, "http://127.0.0.1:9/x");
    }

    fn errors(text: &str) -> Vec<String> {
        parse(text).unwrap_err()
    }

    #[test]
    fn a_toml_syntax_error_on_the_url_line_never_quotes_the_url() {
        for (text, line) in [
            (
                "[[notify]]\nname = \"chat\"\nurl = \"https://hooks.slack.com/services/T0/B0/SECRETTOKEN\" format = \"slack\"\n",
                3,
            ),
            (
                "[[notify]]\nname = \"chat\"\nurl = \"https://hooks.slack.com/services/T0/B0/SECRETTOKEN\nformat = \"slack\"\n",
                3,
            ),
            (
                "[[notify]]\nname = \"chat\"\nurl = \"https://hooks.slack.com/services/T0/B0/SECRETTOKEN\"\nurl = \"https://hooks.slack.com/services/T0/B0/SECRETTOKEN\"\n",
                4,
            ),
            (
                "[[notify]]\nname = \"chat\"\nurl = \"https://hooks.slack.com/services/T0/B0/SECRETTOKEN\\q\"\n",
                3,
            ),
        ] {
            for e in [
                errors(text),
                crate::config::Config::parse(std::path::Path::new("/d"), text).unwrap_err(),
            ] {
                assert_eq!(e.len(), 1, "{text}: {e:?}");
                assert!(!e[0].contains("SECRETTOKEN"), "{e:?}");
                assert!(!e[0].contains("hooks.slack.com"), "{e:?}");
                assert!(!e[0].contains('\n'), "{e:?}");
                assert!(e[0].starts_with(&format!("line {line}, column ")), "{e:?}");
            }
        }
        let e = errors(
            "[[notify]]\nname = \"chat\"\nurl = \"https://hooks.slack.com/services/T0/B0/SECRETTOKEN\" format = \"slack\"\n",
        );
        assert!(e[0].contains("expected newline"), "{e:?}");
    }

    #[test]
    fn a_value_or_key_of_the_wrong_kind_is_never_echoed() {
        // Review R4 E3: a URL typed under a key of another type, and a secret pasted as a
        // key, never come back in the error.
        let e = errors(
            "[[notify]]\nname = \"chat\"\nurl = \"https://h.example/x\"\nformat = \"slack\"\nevents = \"https://hooks.slack.com/services/T0/B0/SECRETTOKEN\"\n",
        );
        assert!(!e.is_empty());
        assert!(e.iter().all(|l| !l.contains("SECRETTOKEN")), "{e:?}");
        let e = errors(
            "[[notify]]\nname = \"chat\"\nurl = \"https://h.example/x\"\nformat = \"slack\"\n0123456789abcdef0123456789abcdef = 1\n",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(!e[0].contains("0123456789abcdef"), "{e:?}");
        assert!(e[0].contains("unknown key"), "{e:?}");
        let e = errors(
            "[[notify]]\nname = \"chat\"\nurl = \"https://h.example/x\"\nformat = \"slack\"\nevnets = [\"*\"]\n",
        );
        assert!(e[0].starts_with("notify.chat.evnets: unknown key"), "{e:?}");
    }

    #[test]
    fn a_slack_url_is_never_shown_in_an_error_or_a_debug_print() {
        for url in [
            "http://hooks.slack.com/services/T0/B0/SECRETTOKEN",
            "hooks.slack.com/services/T0/B0/SECRETTOKEN",
            "https:/hooks.slack.com/services/T0/B0/SECRETTOKEN",
            "ftp://hooks.slack.com/services/T0/B0/SECRETTOKEN?x=SECRETTOKEN",
            "https://user:SECRETTOKEN@/services",
        ] {
            let e = errors(&format!(
                "[[notify]]\nname = \"chat\"\nurl = \"{url}\"\nformat = \"slack\"\n"
            ));
            assert_eq!(e.len(), 1, "{url}: {e:?}");
            assert!(!e[0].contains("SECRETTOKEN"), "{e:?}");
            assert!(e[0].starts_with("notify.chat.url: "), "{e:?}");
        }
        let e = errors(
            "[[notify]]\nname = \"chat\"\nurl = \"http://hooks.slack.com/services/T0/B0/SECRETTOKEN\"\nformat = \"slack\"\n",
        );
        assert!(
            e[0].contains("\"http://hooks.slack.com/…\": plain http is accepted only"),
            "{e:?}"
        );
        let sinks = parse(
            "[[notify]]\nname = \"chat\"\nurl = \"https://hooks.slack.com/services/T0/B0/SECRETTOKEN\"\nformat = \"slack\"\n",
        )
        .unwrap();
        let shown = format!("{sinks:?}");
        assert!(!shown.contains("SECRETTOKEN"), "{shown}");
        assert!(shown.contains("https://hooks.slack.com/…"), "{shown}");
    }

    #[test]
    fn each_problem_is_one_line_naming_the_sink_and_key() {
        let e = errors(
            "[[notify]]\nname = \"ops\"\nurl = \"https://h/x\"\nformat = \"slack\"\ncolour = 1\n",
        );
        assert_eq!(
            e,
            vec![
                "notify.ops.colour: unknown key; a [[notify]] table has name, url, format, secret_file, secret, events, ca_file"
            ]
        );
        let e = errors("[[notify]]\nname = \"ops\"\nurl = 7\nformat = \"slack\"\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("notify.ops: invalid type: integer `7`, expected a string"),
            "{e:?}"
        );
        assert!(!e[0].contains('\n'));
        let e = errors(
            "[[notify]]\nurl = \"http://hooks.example.com/\"\nformat = \"teams\"\nevents = [\"request.approve\"]\n",
        );
        assert_eq!(e.len(), 4, "{e:?}");
        assert_eq!(e[0], "notify[0].name: is required (e.g. name = \"ops\")");
        assert!(e[1].starts_with("notify[0].url: \"http://hooks.example.com/\": plain http is accepted only to the loopback interface"), "{e:?}");
        assert!(
            e[2].starts_with("notify[0].format: \"teams\" is not a format"),
            "{e:?}"
        );
        assert!(
            e[3].starts_with("notify[0].events: \"request.approve\" is not an event type"),
            "{e:?}"
        );
        assert!(e.iter().all(|l| !l.contains('\n')));
        let e = errors("[[notify]]\nname = \"a\"\nurl = \"https://u:p@h/\"\n");
        assert!(
            e[0].starts_with("notify.a.url: must not carry credentials"),
            "{e:?}"
        );
        assert_eq!(
            e[1],
            "notify.a.format: is required: \"standard\" (Standard Webhooks, signed) or \"slack\""
        );
        assert_eq!(
            errors("notify = 1"),
            vec!["notify: write each sink as a [[notify]] table"]
        );
        let e = errors(
            "[[notify]]\nname = \"a\"\nurl = \"https://h/\"\nformat = \"slack\"\nevents = []\n",
        );
        assert!(e[0].starts_with("notify.a.events: is empty"), "{e:?}");
    }

    #[test]
    fn secrets_follow_the_webhook_rule() {
        let e = errors("[[notify]]\nname = \"ops\"\nurl = \"https://h/\"\nformat = \"standard\"\n");
        assert!(
            e[0].starts_with("notify.ops.secret_file: is required for format = \"standard\""),
            "{e:?}"
        );
        let e = errors(
            "[[notify]]\nname = \"ops\"\nurl = \"https://h/\"\nformat = \"standard\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with(
            "notify.ops.secret: a secret is not accepted inline: config.toml is not a secret file"
        ));
        assert!(!e[0].contains("MfKQ"));
        let e = errors(
            "[[notify]]\nname = \"c\"\nurl = \"https://h/\"\nformat = \"slack\"\nsecret_file = \"keys/c.whsec\"\n",
        );
        assert!(
            e[0].starts_with("notify.c.secret_file: a slack sink is not signed"),
            "{e:?}"
        );
        let twice =
            "[[notify]]\nname = \"a\"\nurl = \"https://h/\"\nformat = \"slack\"\n".repeat(2);
        assert_eq!(
            errors(&twice),
            vec!["notify.a.name: is defined twice; give each sink its own name"]
        );
        let many = (0..17)
            .map(|i| {
                format!("[[notify]]\nname = \"s{i}\"\nurl = \"https://h/\"\nformat = \"slack\"\n")
            })
            .collect::<String>();
        assert_eq!(
            errors(&many),
            vec!["notify: 17 sinks; at most 16 are accepted"]
        );
    }

    #[test]
    fn load_secrets_reads_mode_0600_files_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("keys")).unwrap();
        let file = dir.path().join("keys/ops.whsec");
        std::fs::write(&file, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut sinks = parse(ISSUE_EXAMPLE).unwrap();
        assert_eq!(load_secrets(&mut sinks, dir.path()), Vec::<String>::new());
        let s = sinks[0].secret.as_ref().unwrap();
        assert_eq!(
            s.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(sinks[1].secret, None);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let errs = load_secrets(&mut sinks, dir.path());
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("notify.ops.secret_file: "), "{errs:?}");
        assert!(!errs[0].contains("MfKQ"));
        assert_eq!(sinks[0].secret, None);
    }
}

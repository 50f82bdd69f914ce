//! Outgoing webhooks: named once in policy.toml (`[[webhook]]`), signed with Standard
//! Webhooks ([`sign`]), sent by one bounded HTTP client ([`client`]).
//!
//! Today one use: the **authorizing webhook** of an auto-approval rule ([`authorize`]): the
//! CA asks, and auto-approves only on an explicit yes in time; anything else leaves the
//! request to human approvers (fail closed). Notifications reuse the signer and the client.
//!
//! ```toml
//! [[webhook]]
//! name = "oncall"
//! url = "https://oncall.example.com/jit/authorize"
//! secret_file = "webhooks/oncall.whsec"   # relative to the data directory; mode 0600
//! timeout = "3s"                           # 1s to 10s; default 5s
//! # ca_file = "webhooks/internal-ca.pem"   # only these roots for https (default: web PKI)
//! ```
//! The secret is never written in policy.toml itself: policy.toml is not a secret file (it
//! is readable, reviewed, copied into backups and tickets), so an inline `secret` is refused
//! with a pointer to `secret_file`. Policy parsing stays pure: [`load_files`] reads the
//! secret and CA files when the service loads the policy (and at every reload, so a secret is
//! rotated by replacing its file and sending SIGHUP).

pub mod authorize;
pub mod client;
pub mod sign;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use sign::Secret;

/// Default deadline of a webhook call.
pub const DEFAULT_TIMEOUT_SECS: u64 = 5;
/// Longest deadline a webhook may have: a request's creation waits for it.
pub const MAX_TIMEOUT_SECS: u64 = 10;
/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// Largest secret file read.
const MAX_SECRET_FILE: u64 = 4096;
/// Largest `ca_file` read.
const MAX_CA_FILE: u64 = 1024 * 1024;

/// A `[[webhook]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhook {
    name: Option<String>,
    url: Option<String>,
    secret_file: Option<String>,
    /// Refused with a pointer to `secret_file` (see the module documentation).
    secret: Option<toml::Value>,
    timeout: Option<String>,
    ca_file: Option<String>,
}

/// A validated webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Its name (rules say `webhook = "NAME"`).
    pub name: String,
    /// Where calls go.
    pub url: String,
    /// The secret's file, as written (relative to the data directory unless absolute).
    pub secret_file: PathBuf,
    /// The deadline of a call, seconds.
    pub timeout_secs: u64,
    /// The roots trusted for `https`, as written; None: the web PKI's.
    pub ca_file: Option<PathBuf>,
    /// The files' contents, once [`load_files`] read them; a webhook not loaded is never
    /// called (its rules fall back to human approval).
    pub loaded: Option<Loaded>,
}

/// What a webhook's files hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The signing secret.
    pub secret: Secret,
    /// The `ca_file` text (checked to be a PEM certificate bundle).
    pub ca_pem: Option<String>,
}

/// Validates the `[[webhook]]` tables; every problem is pushed to `errs`, naming the webhook.
pub(crate) fn validate(raw: Vec<RawWebhook>, errs: &mut Vec<String>) -> BTreeMap<String, Webhook> {
    let mut out = BTreeMap::new();
    for (i, w) in raw.into_iter().enumerate() {
        let label = match &w.name {
            Some(n) => format!("webhook.{n}"),
            None => format!("webhook[{i}]"),
        };
        let before = errs.len();
        let mut err = |field: &str, msg: String| errs.push(format!("{label}.{field}: {msg}"));
        let name = w.name.clone().unwrap_or_default();
        match &w.name {
            None => err("name", "is required (e.g. name = \"oncall\")".into()),
            Some(n) => {
                if let Err(e) = jit_common::grant::check_id("name", n) {
                    err("name", e.to_string());
                }
                if out.contains_key(n) {
                    err(
                        "name",
                        "is defined twice; give each webhook its own name".into(),
                    );
                }
            }
        }
        let url = w.url.unwrap_or_default();
        if let Err(e) = check_url(&url) {
            err("url", e);
        }
        if w.secret.is_some() {
            err(
                "secret",
                format!(
                    "a secret is not accepted inline: policy.toml is not a secret file (it is readable, \
                     reviewed and copied into backups); write the secret to a file of mode 0600 in the \
                     data directory and name it: secret_file = \"webhooks/{name}.whsec\""
                ),
            );
        }
        let secret_file = match w.secret_file {
            Some(f) if !f.trim().is_empty() => PathBuf::from(f),
            _ if w.secret.is_some() => PathBuf::new(),
            _ => {
                err(
                    "secret_file",
                    format!(
                        "is required: the file (mode 0600, in the data directory) holding the signing \
                         secret, e.g. secret_file = \"webhooks/{name}.whsec\""
                    ),
                );
                PathBuf::new()
            }
        };
        let timeout_secs = match w.timeout.as_deref() {
            None => DEFAULT_TIMEOUT_SECS,
            Some(t) => match jit_common::time::parse_duration(t).map(u64::from) {
                Ok(s) if (1..=MAX_TIMEOUT_SECS).contains(&s) => s,
                Ok(_) => {
                    err(
                        "timeout",
                        format!(
                            "{t} is out of range; use 1s to {MAX_TIMEOUT_SECS}s (a request's creation waits for the answer)"
                        ),
                    );
                    DEFAULT_TIMEOUT_SECS
                }
                Err(e) => {
                    err("timeout", e);
                    DEFAULT_TIMEOUT_SECS
                }
            },
        };
        let ca_file = w.ca_file.map(PathBuf::from);
        if errs.len() == before {
            out.insert(
                name.clone(),
                Webhook {
                    name,
                    url,
                    secret_file,
                    timeout_secs,
                    ca_file,
                    loaded: None,
                },
            );
        }
    }
    out
}

/// How a URL is shown in an error: its scheme and host only, never its path or query (a
/// Slack incoming-webhook URL's path is the credential to post), never user information;
/// `/…` marks what is left out. At most 100 characters.
pub fn shown_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit('@').next().unwrap_or("");
    let more = if rest[end..].is_empty() || &rest[end..] == "/" {
        &rest[end..]
    } else {
        "/…"
    };
    let out: String = format!("{scheme}{host}{more}")
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if out.chars().count() > 100 {
        format!("{}…", out.chars().take(99).collect::<String>())
    } else {
        out
    }
}

/// `https://HOST/...`, or `http://` to the loopback interface only (a local relay); no
/// credentials in the URL (policy.toml is not a secret file), no spaces or control characters.
/// The errors show the URL by [`shown_url`] only (a Slack URL is a credential).
pub fn check_url(url: &str) -> Result<(), String> {
    let shown = shown_url(url);
    let example = "e.g. url = \"https://oncall.example.com/jit/authorize\"";
    if url.is_empty() {
        return Err(format!("is required ({example})"));
    }
    if url.len() > MAX_URL_LEN {
        return Err(format!("is longer than {MAX_URL_LEN} characters"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".into());
    }
    let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("{shown:?} must start with https:// ({example})"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(
            "must not carry credentials (user:password@): the request is signed with the secret instead"
                .into(),
        );
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    if host.is_empty() {
        return Err(format!("{shown:?} names no host ({example})"));
    }
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !https && !loopback {
        return Err(format!(
            "{shown:?}: plain http is accepted only to the loopback interface (a local relay); use https://"
        ));
    }
    Ok(())
}

/// Reads a signing secret's file: `whsec_<base64>` (see [`Secret::parse`]), owned by root or
/// this user, not readable or writable by group or others, under directories that are no
/// symbolic link and that nobody else may write, from `/` down. The one rule for the secrets
/// of `[[webhook]]` (policy.toml) and `[[notify]]` (config.toml) alike; the message names
/// the file and never repeats its text.
pub fn read_secret_file(path: &Path) -> Result<Secret, String> {
    // Whoever could swap the secret could sign for the CA (or answer for a webhook).
    let text = crate::files::read_secret_named(
        path,
        "webhook secret",
        MAX_SECRET_FILE,
        crate::files::Ancestors::Checked,
    )
    .map_err(|e| e.to_string())?;
    Secret::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads every webhook's secret file (relative to `dir` unless absolute; owned by root or
/// this user, not readable or writable by group or others) and `ca_file`, each under
/// directories that are no symbolic link and that nobody else may write, from `/` down.
/// Returns every problem, each naming the webhook and the file.
pub fn load_files(hooks: &mut BTreeMap<String, Webhook>, dir: &Path) -> Vec<String> {
    let mut errs = Vec::new();
    for w in hooks.values_mut() {
        let path = dir.join(&w.secret_file);
        // The directories above are checked too (no symbolic link, nobody else may write
        // them): whoever could swap the secret or the CA file could answer for the webhook.
        let secret = match read_secret_file(&path) {
            Ok(secret) => Some(secret),
            Err(e) => {
                errs.push(format!("webhook.{}.secret_file: {e}", w.name));
                None
            }
        };
        let ca_pem = match &w.ca_file {
            None => Some(None),
            Some(f) => {
                let path = dir.join(f);
                match crate::files::read_trusted_tree(&path, MAX_CA_FILE) {
                    Ok(pem) => match client::tls_config(&pem) {
                        Ok(_) => Some(Some(pem)),
                        Err(e) => {
                            errs.push(format!(
                                "webhook.{}.ca_file: {}: {e}",
                                w.name,
                                path.display()
                            ));
                            None
                        }
                    },
                    Err(e) => {
                        errs.push(format!("webhook.{}.ca_file: {e}", w.name));
                        None
                    }
                }
            }
        };
        w.loaded = match (secret, ca_pem) {
            (Some(secret), Some(ca_pem)) => Some(Loaded { secret, ca_pem }),
            _ => None,
        };
    }
    errs
}

#[cfg(test)]
mod tests;

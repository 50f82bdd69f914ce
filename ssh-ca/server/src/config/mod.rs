//! `config.toml`: how the service runs (listen address, keys, timings, TLS). Policy (who may
//! do what) lives in `policy.toml`, see [`crate::policy`].
//!
//! Parsed strictly (unknown keys are errors) into a raw struct, then validated into [`Config`]
//! with every problem reported at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{CaError, Result};

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
/// File name of the service configuration inside the data directory.
pub const CONFIG_FILE: &str = "config.toml";
/// File name of the policy inside the data directory.
pub const POLICY_FILE: &str = "policy.toml";
/// File name of the SQLite database inside the data directory.
pub const DB_FILE: &str = "jit.db";
/// Default of `max_active_grants_per_user`.
pub const DEFAULT_MAX_ACTIVE_GRANTS: u64 = 20;
/// Default of `max_pending_requests_per_user`.
pub const DEFAULT_MAX_PENDING_REQUESTS: u64 = 10;
/// Default `max_start_ahead`: 30 days.
pub const DEFAULT_MAX_START_AHEAD: u64 = 30 * 24 * 3600;
/// Default of `max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Shortest `notify_max_age`.
pub const NOTIFY_MAX_AGE_MIN: u64 = 60;
/// Longest `notify_max_age`.
pub const NOTIFY_MAX_AGE_MAX: u64 = 7 * 24 * 3600;
/// Default `expiry_reminder`: an active elevation is reminded 10 minutes before its end.
pub const DEFAULT_EXPIRY_REMINDER: u64 = 600;
/// Largest config or policy file read, in bytes.
pub const MAX_CONFIG_SIZE: u64 = 1024 * 1024;

/// The commented `config.toml` that `jit-ca init` writes.
pub const TEMPLATE: &str = r#"# jit-ca service configuration. Policy (roles, approvers) is in policy.toml.
# Paths are relative to this directory unless absolute.

# Address to listen on. `jit-ca serve --listen ADDR` overrides it.
listen = "127.0.0.1:8443"

# The URL engineers and hosts use to reach this service; `jit-ca host-config` writes it into
# host.toml. Defaults to http(s)://<listen>. An origin only (scheme://host[:port]): no path,
# query or user; the web pages are at /ui/ of it.
# public_url = "https://ca.example.com:8443"

# User-CA private keys (OpenSSH format, mode 0600). The FIRST signs new certificates; all are
# published to hosts (GET /v1/ca.pub), so a new key can be added first and made the signer
# later, without downtime.
user_ca_keys = ["keys/user_ca"]

# Grant-signing private keys, same rotation rule.
grant_keys = ["keys/grant"]

# A pending request expires if not decided within this time (a role's pending_ttl in
# policy.toml overrides it; a request for a later window, jit request --start, stays
# pending until this long after its start).
pending_expiry = "1h"

# How far ahead a request may ask its window to start (jit request --start TIME / --in D).
max_start_ahead = "30d"

# Certificates and grants start this long before issuance, to absorb clock skew.
backdate = "60s"

# The signed revocation list is re-signed (new sequence, new issued_at) at least this often,
# even without revocations, so hosts with a staleness bound (revocation_max_age_secs in
# host.toml) keep accepting it. Keep it well below that bound.
revocation_refresh = "10m"

# An active elevation (approved, certificate issued) whose window ends within this time gets
# one reminder (the audit event expiry_reminder, notified as request.expiring), once per
# window end: an extension gets a new one; a window no longer than this when its certificate
# was issued gets none (its requester was just told its end). "0s" turns reminders off.
expiry_reminder = "10m"

# Largest accepted request body, in bytes (larger -> 413 body_too_large).
max_body_bytes = 65536

# Most requests one user may have active (approved, certificate not ended or revoked) at
# once; one more is refused with 409 too_many_active_grants. Bounds what one requester adds
# to every host's grants document.
max_active_grants_per_user = 20
# Most requests one user may have pending (undecided, not expired) at once; one more is
# refused with 409 too_many_pending_requests. A second pending request for the same role is
# refused whatever this says (409 duplicate_pending_request, naming the first).
max_pending_requests_per_user = 10
# Slow and idle connections (plain HTTP and TLS alike). A client must send a request's
# line and headers within header_read_timeout of its first byte, and its body within
# body_read_timeout; a connection with no request for idle_timeout (keep-alive, or opened
# and never used) is closed. At most max_connections are open at once (capped below the
# process's descriptor limit, LimitNOFILE in jit-ca.service); when full, the connection idle
# the longest is closed to admit a new one, so idle sockets cannot lock out hosts or the
# health check.
header_read_timeout = "10s"
body_read_timeout = "30s"
idle_timeout = "60s"
max_connections = 4096

# Signed API calls name the CA they are for (scheme v2: the audience is the fingerprint of
# the first user-CA key). Calls from older clients (scheme v1, no audience) are
# refused unless this is true; each accepted v1 call is counted in the metrics and audited
# once per user and hour. Enable only for a transition while clients upgrade.
accept_v1_signatures = false

# Approvals must name the digest of the request they approve (jit approve always does; older
# clients and scripts posting {} do not). Their signed call is kept as evidence either way
# (docs/audit.md); with this, every approval binds the request's contents too.
require_approval_digest = false

# Notifications (docs/notify.md): each [[notify]] table is a sink that receives the events
# it names (default: every event) as they happen. They deliver requests; they never approve
# one (approving stays `jit approve ID` with the approver's key). `standard` sinks get the
# event's JSON signed with Standard Webhooks headers (webhook-id, webhook-timestamp,
# webhook-signature); the secret ("whsec_" + base64) is read from secret_file (mode 0600,
# relative to this directory), never written here: this file is not a secret file. A
# `slack` sink posts a Block Kit message to an incoming webhook; its URL is its credential,
# so with a slack sink this file must not be readable by others (chmod o-r config.toml).
# A receiver that does not answer 2xx is retried (10s, 30s, 1m, 2m, 5m, 10m, then every 15m)
# until notify_max_age after the event; then the delivery is dead (`jit-ca notify status`,
# `jit-ca notify retry ID`).
# notify_max_age = "24h"
# [[notify]]
# name = "ops"
# url = "https://hooks.example.com/jit"
# format = "standard"
# secret_file = "keys/ops.whsec"
# events = ["request.*", "alert.*"]
# [[notify]]
# name = "chat"
# url = "https://hooks.slack.com/services/T000/B000/XXXX"
# format = "slack"

# The database (docs/ha.md). Absent or "sqlite": the SQLite file jit.db in this directory,
# for one `jit-ca serve`. Several replicas share one PostgreSQL database instead: a URL
# postgres://USER@HOST:PORT/DB?sslmode=verify-full or libpq settings such as
# "host=/run/postgresql dbname=jit user=jit-ca". Never put the password here: it is read
# from database_password_file (mode 0600, owned by the service's user or root). Over the
# network TLS is required (sslmode=require, verify-ca or verify-full; disable, allow or
# prefer are refused for a host that is not a Unix socket or loopback); database_ca names the
# PEM roots the server's certificate is checked against (default: the system's). replica_name
# names this replica in `jit-ca db status`, the metrics and PostgreSQL's application_name
# (default: <hostname>:<listen port>).
# database = "sqlite"
# database_password_file = "db.password"
# database_ca = "/etc/jit-ca/db-ca.pem"
# replica_name = "ca1"

# Optional TLS. Without it the service speaks plain HTTP: put it behind a TLS proxy or
# keep it on a trusted network. Behind a TLS proxy set public_url to the https URL: the web
# pages then send Secure cookies and HSTS, and accept forms from that origin only.
# [tls]
# cert = "tls/cert.pem"    # PEM chain, leaf first
# key = "tls/key.pem"      # PEM private key (PKCS#8, PKCS#1 or SEC1)

# Alerts (docs/alerts.md): alert.* events to the notification sinks and syslog at alert
# level. The defaults are shown; self-approval attempts, approvals outside a role's
# schedule, jit-ca revoke-grant and audit checkpoint failures alert without a threshold.
# [alerts]
# auth_failures = 10             # failed signatures or unknown keys, per source or per key
# auth_failures_window = "1m"
# request_burst = 10             # requests stored for one user
# request_burst_window = "10m"
# cooldown = "15m"               # after an alert, the same source, key or user is quiet this long

# The web pages for approvers and auditors (docs/web.md), served under /ui/ on this listener.
# `jit web` signs a login request and opens a one-time URL (60 s, single use); the browser
# then holds a session cookie bound to that user and key. public_url (above), when set, is
# the base of that URL and of chat links. The defaults are shown; enabled = false turns the
# pages off (every /ui/ path is 404 and `jit web` is refused). A session keeps the limits in
# force at its login: lowering one shortens existing sessions, raising one never extends them.
# [web]
# enabled = true
# session_idle_timeout = "15m"   # a session unused this long ends (1m to 1d)
# session_max_age = "8h"         # a session ends this long after its login (5m to 7d)
"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    listen: Option<String>,
    #[serde(default)]
    public_url: Option<String>,
    #[serde(default)]
    user_ca_keys: Option<Vec<String>>,
    #[serde(default)]
    grant_keys: Option<Vec<String>>,
    #[serde(default)]
    pending_expiry: Option<String>,
    #[serde(default)]
    max_start_ahead: Option<String>,
    #[serde(default)]
    backdate: Option<String>,
    #[serde(default)]
    revocation_refresh: Option<String>,
    #[serde(default)]
    expiry_reminder: Option<String>,
    #[serde(default)]
    max_body_bytes: Option<usize>,
    #[serde(default)]
    max_active_grants_per_user: Option<u64>,
    #[serde(default)]
    max_pending_requests_per_user: Option<u64>,
    header_read_timeout: Option<String>,
    #[serde(default)]
    body_read_timeout: Option<String>,
    #[serde(default)]
    idle_timeout: Option<String>,
    #[serde(default)]
    max_connections: Option<usize>,
    #[serde(default)]
    accept_v1_signatures: Option<bool>,
    #[serde(default)]
    require_approval_digest: Option<bool>,
    #[serde(default)]
    tls: Option<RawTls>,
    /// `[alerts]`: validated by `notify::alerts::Settings::from_table`.
    #[serde(default)]
    alerts: Option<toml::Table>,
    /// `[[notify]]` tables, checked by [`crate::notify::config::validate`].
    #[serde(default)]
    notify: Option<Vec<toml::Table>>,
    #[serde(default)]
    notify_max_age: Option<String>,
    /// `[web]`: validated by [`web::validate`].
    #[serde(default)]
    web: Option<web::RawWeb>,
    /// The database keys: validated by [`database::validate`].
    #[serde(default)]
    database: Option<String>,
    #[serde(default)]
    database_password_file: Option<String>,
    #[serde(default)]
    database_ca: Option<String>,
    #[serde(default)]
    replica_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: String,
    key: String,
}

/// TLS certificate and key paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// The validated service configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data directory (holds config.toml, policy.toml, keys/, jit.db).
    pub dir: PathBuf,
    /// Listen address.
    pub listen: SocketAddr,
    /// URL clients and hosts use, if set explicitly.
    pub public_url: Option<String>,
    /// User-CA private key paths; the first signs.
    pub user_ca_keys: Vec<PathBuf>,
    /// Grant private key paths; the first signs.
    pub grant_keys: Vec<PathBuf>,
    /// Seconds a pending request waits for a decision.
    pub pending_expiry_secs: u64,
    /// Seconds ahead a request's window may start (`max_start_ahead`).
    pub max_start_ahead_secs: u64,
    /// Seconds certificates and grants are backdated.
    pub backdate_secs: u64,
    /// Seconds after which the revocation list is re-signed even without changes.
    pub revocation_refresh_secs: u64,
    /// Seconds before a window's end its reminder is sent (`expiry_reminder`); 0: none.
    pub expiry_reminder_secs: u64,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Most active grants (approved requests with a live certificate) per user.
    pub max_active_grants_per_user: u64,
    /// Most pending (undecided, not expired) requests per user.
    pub max_pending_requests_per_user: u64,
    /// Seconds from a request's first byte to the end of its headers.
    pub header_read_timeout_secs: u64,
    /// Seconds to receive a request's body.
    pub body_read_timeout_secs: u64,
    /// Seconds a connection may wait with no request in progress.
    pub idle_timeout_secs: u64,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Accept signed calls of the legacy scheme v1 (no audience).
    pub accept_v1_signatures: bool,
    /// Refuse approvals that do not name the request's digest.
    pub require_approval_digest: bool,
    /// TLS, if configured.
    pub tls: Option<TlsConfig>,
    /// Alert thresholds (`[alerts]`).
    pub alerts: crate::notify::alerts::Settings,
    /// Where notifications go (`[[notify]]`), in config order; secrets are read by
    /// [`Config::load_notify_files`].
    pub notify: Vec<crate::notify::config::Sink>,
    /// Seconds after an event's time within which its delivery is retried
    /// (`notify_max_age`); then it is a dead letter.
    pub notify_max_age_secs: u64,
    /// The web pages (`[web]`).
    pub web: WebConfig,
    /// The PostgreSQL database (`database` and its keys); None: the data directory's
    /// SQLite `jit.db`.
    pub database: Option<crate::store::postgres::PgSettings>,
}

impl Config {
    /// Parses `text` (the contents of `dir/config.toml`), reporting every problem at once.
    pub fn parse(dir: &Path, text: &str) -> std::result::Result<Self, Vec<String>> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| vec![toml_error(text, &e)])?;
        let mut errs = Vec::new();
        let listen: SocketAddr = match raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN).parse() {
            Ok(a) => a,
            Err(e) => {
                errs.push(format!(
                    "listen: {e} (expected an address like \"127.0.0.1:8443\")"
                ));
                ([127, 0, 0, 1], 8443).into()
            }
        };
        let public_url = match raw.public_url.as_deref().map(web::public_url) {
            None => None,
            Some(Ok(u)) => Some(u),
            Some(Err(e)) => {
                errs.push(e);
                None
            }
        };
        let paths = |name: &str, v: Option<Vec<String>>, default: &str, errs: &mut Vec<String>| {
            let v = v.unwrap_or_else(|| vec![default.to_string()]);
            if v.is_empty() {
                errs.push(format!("{name}: at least one key path is required"));
            }
            v.into_iter().map(|p| dir.join(p)).collect::<Vec<_>>()
        };
        let user_ca_keys = paths("user_ca_keys", raw.user_ca_keys, "keys/user_ca", &mut errs);
        let grant_keys = paths("grant_keys", raw.grant_keys, "keys/grant", &mut errs);
        let dur = |name: &str, v: Option<String>, default: u64, errs: &mut Vec<String>| match v {
            None => default,
            Some(s) => match jit_common::time::parse_duration(&s).map(u64::from) {
                Ok(d) => d,
                Err(e) => {
                    errs.push(format!("{name}: {e}"));
                    default
                }
            },
        };
        let pending_expiry_secs = dur("pending_expiry", raw.pending_expiry, 3600, &mut errs);
        if pending_expiry_secs == 0 {
            errs.push("pending_expiry must be longer than 0s".into());
        }
        let max_start_ahead_secs = dur(
            "max_start_ahead",
            raw.max_start_ahead,
            DEFAULT_MAX_START_AHEAD,
            &mut errs,
        );
        if !(3600..=365 * 24 * 3600).contains(&max_start_ahead_secs) {
            errs.push(format!(
                "max_start_ahead is {max_start_ahead_secs}s; use 1h to 365d"
            ));
        }
        let backdate_secs = dur("backdate", raw.backdate, 60, &mut errs);
        if backdate_secs > 3600 {
            errs.push(format!(
                "backdate is {backdate_secs}s; keep it at most 1h (it only absorbs clock skew)"
            ));
        }
        let revocation_refresh_secs =
            dur("revocation_refresh", raw.revocation_refresh, 600, &mut errs);
        if !(60..=7 * 24 * 3600).contains(&revocation_refresh_secs) {
            errs.push(format!(
                "revocation_refresh is {revocation_refresh_secs}s; use 1m to 7d"
            ));
        }
        let expiry_reminder_secs = dur(
            "expiry_reminder",
            raw.expiry_reminder,
            DEFAULT_EXPIRY_REMINDER,
            &mut errs,
        );
        if expiry_reminder_secs != 0 && !(60..=24 * 3600).contains(&expiry_reminder_secs) {
            errs.push(format!(
                "expiry_reminder is {expiry_reminder_secs}s; use 1m to 1d, or \"0s\" to send no reminders"
            ));
        }
        let max_body_bytes = raw.max_body_bytes.unwrap_or(64 * 1024);
        if !(1024..=16 * 1024 * 1024).contains(&max_body_bytes) {
            errs.push(format!(
                "max_body_bytes {max_body_bytes} must be between 1024 and 16777216"
            ));
        }
        let max_active_grants_per_user = raw
            .max_active_grants_per_user
            .unwrap_or(DEFAULT_MAX_ACTIVE_GRANTS);
        if !(1..=100_000).contains(&max_active_grants_per_user) {
            errs.push(format!(
                "max_active_grants_per_user {max_active_grants_per_user} must be between 1 and 100000"
            ));
        }
        let max_pending_requests_per_user = raw
            .max_pending_requests_per_user
            .unwrap_or(DEFAULT_MAX_PENDING_REQUESTS);
        if !(1..=10_000).contains(&max_pending_requests_per_user) {
            errs.push(format!(
                "max_pending_requests_per_user {max_pending_requests_per_user} must be between 1 and 10000"
            ));
        }
        let mut timeout = |name: &str, v: Option<String>, default: u64| {
            let d = dur(name, v, default, &mut errs);
            if !(1..=3600).contains(&d) {
                errs.push(format!("{name} is {d}s; use 1s to 1h"));
            }
            d
        };
        let header_read_timeout_secs = timeout("header_read_timeout", raw.header_read_timeout, 10);
        let body_read_timeout_secs = timeout("body_read_timeout", raw.body_read_timeout, 30);
        let idle_timeout_secs = timeout("idle_timeout", raw.idle_timeout, 60);
        let max_connections = raw.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
        if !(16..=1_000_000).contains(&max_connections) {
            errs.push(format!(
                "max_connections {max_connections} must be between 16 and 1000000"
            ));
        }
        let alerts = crate::notify::alerts::Settings::from_table(raw.alerts.as_ref(), &mut errs);
        let tls = raw.tls.map(|t| TlsConfig {
            cert: dir.join(t.cert),
            key: dir.join(t.key),
        });
        let notify = crate::notify::config::validate(raw.notify.unwrap_or_default(), &mut errs);
        let notify_max_age_secs = dur(
            "notify_max_age",
            raw.notify_max_age,
            crate::notify::backoff::DEFAULT_MAX_AGE,
            &mut errs,
        );
        if !(NOTIFY_MAX_AGE_MIN..=NOTIFY_MAX_AGE_MAX).contains(&notify_max_age_secs) {
            errs.push(format!(
                "notify_max_age is {notify_max_age_secs}s; use 1m to 7d"
            ));
        }
        let web = web::validate(raw.web, &mut errs);
        let database = database::validate(
            dir,
            database::RawDatabase {
                database: raw.database,
                password_file: raw.database_password_file,
                ca: raw.database_ca,
                replica_name: raw.replica_name,
            },
            listen.port(),
            &mut errs,
        );
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            listen,
            public_url,
            user_ca_keys,
            grant_keys,
            pending_expiry_secs,
            max_start_ahead_secs,
            backdate_secs,
            revocation_refresh_secs,
            expiry_reminder_secs,
            max_body_bytes,
            max_active_grants_per_user,
            max_pending_requests_per_user,
            header_read_timeout_secs,
            body_read_timeout_secs,
            idle_timeout_secs,
            max_connections,
            accept_v1_signatures: raw.accept_v1_signatures.unwrap_or(false),
            require_approval_digest: raw.require_approval_digest.unwrap_or(false),
            tls,
            alerts,
            notify,
            notify_max_age_secs,
            web,
            database,
        })
    }

    /// Reads and parses `dir/config.toml` (a missing file means all defaults).
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(CONFIG_FILE);
        let text = match crate::files::read_trusted(&path, MAX_CONFIG_SIZE) {
            Ok(t) => t,
            Err(CaError::NotFound(_)) => String::new(),
            Err(e) => return Err(e),
        };
        Self::parse(dir, &text).map_err(|errs| CaError::Config {
            path: path.clone(),
            problems: errs,
        })
    }

    /// Reads the `[[notify]]` sinks' secret files (the webhook secrets' rule: mode 0600,
    /// checked directories) and refuses a config.toml that others may read while it holds a
    /// `slack` sink, whose URL is the credential to post to the channel. Called when the
    /// service starts (`Ca::open`); every problem at once, each naming the sink and file.
    pub fn load_notify_files(&mut self) -> Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.dir.join(CONFIG_FILE);
        if self
            .notify
            .iter()
            .any(|s| s.format == crate::notify::config::Format::Slack)
        {
            let mode = std::fs::metadata(&path).map_or(0, |m| m.permissions().mode());
            if mode & 0o004 != 0 {
                return Err(CaError::File {
                    detail: format!(
                        "is readable by everyone and holds a slack sink's URL, which is the credential \
                         to post to the channel; run chmod o-r {}",
                        path.display()
                    ),
                    path,
                });
            }
        }
        let problems = crate::notify::config::load_secrets(&mut self.notify, &self.dir);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(CaError::Config { path, problems })
        }
    }

    /// The URL to publish: `public_url`, or derived from the listen address.
    pub fn url(&self) -> String {
        if let Some(u) = &self.public_url {
            return u.trim_end_matches('/').to_string();
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.listen)
    }

    /// Path of the database.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join(DB_FILE)
    }

    /// Path of the policy.
    pub fn policy_path(&self) -> PathBuf {
        self.dir.join(POLICY_FILE)
    }
}

mod database;
#[cfg(test)]
mod notify_tests;
mod toml_error;
mod web;
pub use toml_error::{is_plain_name, toml_error, unquoted};
pub use web::WebConfig;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_with_defaults() {
        let c = Config::parse(Path::new("/d"), TEMPLATE).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.pending_expiry_secs, 3600);
        assert_eq!(c.backdate_secs, 60);
        assert_eq!(c.user_ca_keys, vec![PathBuf::from("/d/keys/user_ca")]);
        assert_eq!(c.url(), "http://127.0.0.1:8443");
        assert!(c.tls.is_none());
        assert_eq!(c.max_active_grants_per_user, DEFAULT_MAX_ACTIVE_GRANTS);
        let c = Config::parse(Path::new("/d"), "max_active_grants_per_user = 3").unwrap();
        assert_eq!(c.max_active_grants_per_user, 3);
        assert!(Config::parse(Path::new("/d"), "max_active_grants_per_user = 0").is_err());
        assert_eq!(
            c.max_pending_requests_per_user,
            DEFAULT_MAX_PENDING_REQUESTS
        );
        let c = Config::parse(Path::new("/d"), "max_pending_requests_per_user = 2").unwrap();
        assert_eq!(c.max_pending_requests_per_user, 2);
        for bad in ["0", "10001"] {
            let text = format!("max_pending_requests_per_user = {bad}");
            assert_eq!(
                Config::parse(Path::new("/d"), &text).unwrap_err(),
                vec![format!(
                    "max_pending_requests_per_user {bad} must be between 1 and 10000"
                )]
            );
        }
        assert_eq!(c.header_read_timeout_secs, 10);
        assert_eq!(c.body_read_timeout_secs, 30);
        assert_eq!(c.idle_timeout_secs, 60);
        assert_eq!(c.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert!(!c.accept_v1_signatures);
        let d = Config::parse(Path::new("/d"), "").unwrap();
        assert_eq!(d.idle_timeout_secs, 60);
        assert!(!d.accept_v1_signatures);
        assert!(!d.require_approval_digest);
        let r = Config::parse(Path::new("/d"), "require_approval_digest = true").unwrap();
        assert!(r.require_approval_digest);
        assert!(Config::parse(Path::new("/d"), "idle_timeout = \"0s\"").is_err());
    }

    #[test]
    fn expiry_reminder_defaults_to_10m_and_0s_turns_it_off() {
        let p = |t: &str| Config::parse(Path::new("/d"), t);
        assert_eq!(p(TEMPLATE).unwrap().expiry_reminder_secs, 600);
        assert_eq!(p("").unwrap().expiry_reminder_secs, DEFAULT_EXPIRY_REMINDER);
        assert_eq!(
            p("expiry_reminder = \"0s\"").unwrap().expiry_reminder_secs,
            0
        );
        assert_eq!(
            p("expiry_reminder = \"30m\"").unwrap().expiry_reminder_secs,
            1800
        );
        for bad in ["\"30s\"", "\"2d\""] {
            let errs = p(&format!("expiry_reminder = {bad}")).unwrap_err();
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert!(errs[0].contains("use 1m to 1d, or \"0s\""), "{errs:?}");
        }
        let errs = p("expiry_reminder = \"soon\"").unwrap_err();
        assert!(
            errs[0].starts_with("expiry_reminder: invalid duration"),
            "{errs:?}"
        );
    }

    #[test]
    fn every_problem_reported() {
        let errs = Config::parse(
            Path::new("/d"),
            "listen = \"nope\"\npending_expiry = \"soon\"\nbackdate = \"2h\"\nuser_ca_keys = []\n",
        )
        .unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(Config::parse(Path::new("/d"), "colour = 1").is_err());
    }

    #[test]
    fn the_alerts_table() {
        use crate::notify::alerts::Settings;
        assert_eq!(
            Config::parse(Path::new("/d"), TEMPLATE).unwrap().alerts,
            Settings::default()
        );
        // The template's commented block, uncommented, is the defaults.
        let uncommented: String = TEMPLATE
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|_| {
                        l.contains("[alerts]")
                            || l.starts_with("# auth_")
                            || l.starts_with("# request_")
                            || l.starts_with("# cooldown")
                    })
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            uncommented.contains("\n[alerts]\nauth_failures = 10"),
            "{uncommented}"
        );
        assert_eq!(
            Config::parse(Path::new("/d"), &uncommented).unwrap().alerts,
            Settings::default()
        );
        let c = Config::parse(
            Path::new("/d"),
            "[alerts]\nauth_failures = 3\ncooldown = \"1m\"\n",
        )
        .unwrap();
        assert_eq!(c.alerts.auth_failures.count, 3);
        assert_eq!(c.alerts.request_burst.cooldown_secs, 60);
        assert_eq!(
            Config::parse(Path::new("/d"), "[alerts]\nrequest_burst = -1\n").unwrap_err(),
            vec!["alerts.request_burst: -1 is not a count from 1 to 10000".to_string()]
        );
        assert!(Config::parse(Path::new("/d"), "alerts = 3").is_err());
        // docs/api.md's config.toml block shows the same defaults.
        const API_MD: &str =
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md"));
        let block: String = API_MD
            .split("\n[alerts]")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .map(|b| format!("[alerts]{b}"))
            .unwrap_or_default();
        let table: toml::Table = toml::from_str(&block).unwrap();
        let mut errs = Vec::new();
        let documented = Settings::from_table(table["alerts"].as_table(), &mut errs);
        assert_eq!(
            (documented, errs),
            (Settings::default(), Vec::new()),
            "{block}"
        );
        assert!(block.contains("cooldown = "), "{block}");
    }
}

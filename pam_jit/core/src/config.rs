//! The host configuration, `/etc/jit/host.toml`: parsed strictly, validated once.
//!
//! The raw serde form ([`RawConfig`]) rejects unknown keys; [`Config`] is the validated
//! form the rest of the crate uses (keys parsed, paths absolute, names checked). The file
//! is read only when it is root-owned and not group/world-writable
//! ([`jit_common::secure_file`]), because whoever writes it decides which keys are trusted.

use std::fmt;
use std::path::{Path, PathBuf};

use jit_common::KeyRing;
use jit_common::secure_file::{self, FileError, Policy};
use serde::Deserialize;
use ssh_key::PublicKey;

/// Where the configuration lives unless `config=PATH` (module) or `--config PATH`
/// (`jit-host`) says otherwise.
pub const DEFAULT_PATH: &str = "/etc/jit/host.toml";
/// Largest configuration file accepted, in bytes.
pub const MAX_SIZE: u64 = 256 * 1024;
/// The PAM services gated when the configuration does not say.
pub const DEFAULT_SERVICES: &[&str] = &["sudo", "sudo-i"];
/// Largest accepted `clock_skew_secs` (one hour).
pub const MAX_CLOCK_SKEW: u64 = 3600;
/// Default `revocation_max_age_secs` (12 hours; see
/// [`jit_common::revocation::DEFAULT_MAX_AGE_SECS`] and docs/host.md for the trade-off).
pub const DEFAULT_REVOCATION_MAX_AGE: u64 = jit_common::revocation::DEFAULT_MAX_AGE_SECS.as_secs();
/// Default `session_dir`: on tmpfs, so bindings never outlive a boot.
pub const DEFAULT_SESSION_DIR: &str = "/run/jit/sessions";
/// Default `break_glass_max_window_secs`: a break-glass grant may span at most 24 hours.
pub const DEFAULT_BREAK_GLASS_MAX_WINDOW: u64 = 24 * 3600;
/// The metrics file `jit-host sync` writes in `textfile_dir` (node_exporter reads `*.prom`).
pub const TEXTFILE_NAME: &str = "jit_host.prom";

/// `mode = "enforce" | "audit"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deny sudo without a covering grant.
    #[default]
    Enforce,
    /// Allow, but log what would have been denied (for rollout).
    Audit,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Enforce => "enforce",
            Self::Audit => "audit",
        })
    }
}

/// The file as written, before validation. Every key is optional except the keys; unknown
/// keys are an error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// CA URL for `jit-host sync`, or an array of them (the CA's replicas, tried in order).
    pub server: Option<RawServers>,
    /// Enforce or audit.
    #[serde(default)]
    pub mode: Mode,
    /// PAM services gated.
    pub services: Option<Vec<String>>,
    /// Allowed clock difference for grant windows.
    pub clock_skew_secs: Option<u64>,
    /// Staleness bound of the local revocation list (default 12 h; 0 is refused).
    pub revocation_max_age_secs: Option<u64>,
    /// Longest window (`not_after - not_before`) a break-glass grant may have (default 24 h).
    pub break_glass_max_window_secs: Option<u64>,
    /// State directory.
    pub state_dir: Option<PathBuf>,
    /// Where sshd's session hook keeps SSH-session bindings (default `/run/jit/sessions`).
    pub session_dir: Option<PathBuf>,
    /// The user sshd runs `jit-host principals` as.
    pub grant_writer: Option<String>,
    /// Extra names this host answers to.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// User-CA public keys (OpenSSH lines).
    #[serde(default)]
    pub user_ca_keys: Vec<String>,
    /// Grant-signing public keys.
    #[serde(default)]
    pub grant_keys: Vec<String>,
    /// Offline break-glass grant keys.
    #[serde(default)]
    pub break_glass_keys: Vec<String>,
    /// node_exporter's textfile-collector directory: `jit-host sync` writes
    /// `jit_host.prom` there (unset: no metrics file).
    pub textfile_dir: Option<PathBuf>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// CA URLs for `jit-host sync` (its replicas, in the order tried; no trailing `/`);
    /// empty when host.toml sets none.
    pub servers: Vec<String>,
    /// Enforce or audit.
    pub mode: Mode,
    /// PAM services gated; every other service gets `PAM_IGNORE`.
    pub services: Vec<String>,
    /// Allowed clock difference for grant windows, seconds.
    pub clock_skew_secs: u64,
    /// Deny (every grant except break-glass ones) when the local revocation list is missing,
    /// invalid or older than this many seconds. Never 0.
    pub revocation_max_age_secs: u64,
    /// Deny a break-glass grant whose window is longer than this many seconds. Never 0.
    pub break_glass_max_window_secs: u64,
    /// Absolute state directory.
    pub state_dir: PathBuf,
    /// Absolute directory of SSH-session bindings (root-only; on tmpfs by default, so a
    /// reboot forgets every binding).
    pub session_dir: PathBuf,
    /// The grant writer's login name.
    pub grant_writer: String,
    /// Extra host names (lower case).
    pub hostnames: Vec<String>,
    /// User-CA keys (for `jit-host principals` and sshd's `TrustedUserCAKeys`).
    pub user_ca_keys: Vec<PublicKey>,
    /// Keys whose grants and revocation lists are trusted.
    pub grant_keys: KeyRing,
    /// Offline keys whose grants are trusted and bypass the staleness bound.
    pub break_glass_keys: KeyRing,
    /// Absolute directory where `jit-host sync` writes [`TEXTFILE_NAME`] for node_exporter's
    /// textfile collector; `None`: no metrics file. Data only: the module never writes it.
    pub textfile_dir: Option<PathBuf>,
}

/// Why the configuration cannot be used.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read safely.
    File(FileError),
    /// The file is not valid TOML for this schema.
    Syntax { path: PathBuf, detail: String },
    /// A value is not acceptable.
    Invalid { key: &'static str, detail: String },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(e) => write!(f, "cannot use the host configuration: {e}"),
            Self::Syntax { path, detail } => write!(
                f,
                "{}: {} (see docs/host.md for the keys host.toml accepts)",
                path.display(),
                detail.trim()
            ),
            Self::Invalid { key, detail } => write!(f, "host.toml: {key}: {detail}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<FileError> for ConfigError {
    fn from(e: FileError) -> Self {
        Self::File(e)
    }
}

fn invalid(key: &'static str, detail: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        detail: detail.into(),
    }
}

impl Config {
    /// Reads and validates `path`, which must be root-owned, not group/world-writable,
    /// at most [`MAX_SIZE`] bytes, in root-owned directories.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let bytes = secure_file::read(path, &Policy::root_only(MAX_SIZE))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| ConfigError::Syntax {
            path: path.to_path_buf(),
            detail: "not UTF-8".into(),
        })?;
        Self::parse(text).map_err(|e| match e {
            ConfigError::Syntax { detail, .. } => ConfigError::Syntax {
                path: path.to_path_buf(),
                detail,
            },
            other => other,
        })
    }

    /// Parses and validates configuration text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            // One line: the message and where (the full rendering spans several lines).
            let line = e.span().map(|s| {
                let end = s.start.min(text.len());
                // Bytes, not str slicing: never panics on a non-boundary offset.
                text.as_bytes()
                    .get(..end)
                    .map_or(0, |b| b.iter().filter(|c| **c == b'\n').count())
                    + 1
            });
            ConfigError::Syntax {
                path: PathBuf::from(DEFAULT_PATH),
                detail: match line {
                    Some(n) => format!("line {n}: {}", e.message()),
                    None => e.message().to_string(),
                },
            }
        })?;
        raw.validate()
    }
}

/// `server` as written: one URL or an array of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawServers {
    /// `server = "https://ca.example.com:8443"`.
    One(String),
    /// `server = ["https://ca1:8443", "https://ca2:8443"]`.
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for RawServers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawServers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "server = \"https://ca.example.com:8443\" or an array of such URLs (the CA's replicas)",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawServers, E> {
                Ok(RawServers::One(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawServers, A::Error> {
                let mut urls = Vec::new();
                while let Some(u) = seq.next_element::<String>()? {
                    urls.push(u);
                }
                Ok(RawServers::Many(urls))
            }
        }
        d.deserialize_any(V)
    }
}

/// At most this many CA URLs (more replicas belong behind a load balancer).
pub const MAX_SERVERS: usize = 16;

/// Checks a list of CA URLs (`server` in host.toml, or `jit-host sync --server`): at least
/// one, at most [`MAX_SERVERS`], each `http://` or `https://` without spaces or control
/// characters, none twice; a trailing `/` is dropped.
pub fn check_servers(items: &[String]) -> Result<Vec<String>, String> {
    if items.is_empty() {
        return Err(
            "the list is empty: name at least one CA URL (e.g. \"https://ca.example.com:8443\") or remove the line"
                .to_string(),
        );
    }
    if items.len() > MAX_SERVERS {
        return Err(format!(
            "{} URLs listed; at most {MAX_SERVERS} (put more replicas behind a load balancer)",
            items.len()
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let url = item.trim();
        if !(url.starts_with("http://") || url.starts_with("https://"))
            || url
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ',')
        {
            return Err(format!(
                "{:?} must be an http:// or https:// URL (several: an array, server = [\"URL1\", \"URL2\"])",
                url.chars().take(200).collect::<String>()
            ));
        }
        let url = url.trim_end_matches('/').to_string();
        if out.contains(&url) {
            return Err(format!("{url} is listed twice: name each replica once"));
        }
        out.push(url);
    }
    Ok(out)
}

/// Whether a path has a `.` or `..` component (`/a/./b`, `/a/../b`, `/a/.`).
fn has_dot_component(path: &str) -> bool {
    path.split('/').any(|c| c == "." || c == "..")
}

impl RawConfig {
    /// Checks every value and builds the [`Config`].
    pub fn validate(self) -> Result<Config, ConfigError> {
        let servers = match &self.server {
            None => Ok(Vec::new()),
            Some(RawServers::One(one)) => check_servers(std::slice::from_ref(one)),
            Some(RawServers::Many(many)) => check_servers(many),
        }
        .map_err(|e| invalid("server", e))?;
        let services = match self.services {
            Some(s) => s,
            None => DEFAULT_SERVICES.iter().map(|s| (*s).to_string()).collect(),
        };
        for s in &services {
            let ok = !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !ok {
                return Err(invalid(
                    "services",
                    format!("{s:?} is not a PAM service name (a-z 0-9 - _ .)"),
                ));
            }
        }
        let clock_skew_secs = self.clock_skew_secs.unwrap_or(60);
        if clock_skew_secs > MAX_CLOCK_SKEW {
            return Err(invalid(
                "clock_skew_secs",
                format!(
                    "{clock_skew_secs} is more than {MAX_CLOCK_SKEW}; fix the clocks (NTP) instead"
                ),
            ));
        }
        let revocation_max_age_secs = self
            .revocation_max_age_secs
            .unwrap_or(DEFAULT_REVOCATION_MAX_AGE);
        if revocation_max_age_secs == 0 {
            return Err(invalid(
                "revocation_max_age_secs",
                format!(
                    "0 (no staleness bound) is not accepted: a host that cannot refresh its revocation list must stop trusting it; remove the line for the default ({DEFAULT_REVOCATION_MAX_AGE}, 12 h) or set a longer bound, and use break-glass grants for longer CA outages"
                ),
            ));
        }
        let break_glass_max_window_secs = self
            .break_glass_max_window_secs
            .unwrap_or(DEFAULT_BREAK_GLASS_MAX_WINDOW);
        if break_glass_max_window_secs == 0 {
            return Err(invalid(
                "break_glass_max_window_secs",
                format!(
                    "0 would refuse every break-glass grant; remove the line for the default ({DEFAULT_BREAK_GLASS_MAX_WINDOW}, 24 h)"
                ),
            ));
        }
        let state_dir = self
            .state_dir
            .unwrap_or_else(|| PathBuf::from("/var/lib/jit"));
        if !state_dir.is_absolute() || state_dir.to_str().is_none() {
            return Err(invalid(
                "state_dir",
                format!("{} must be an absolute UTF-8 path", state_dir.display()),
            ));
        }
        let session_dir = self
            .session_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SESSION_DIR));
        if !session_dir.is_absolute() || session_dir.to_str().is_none() {
            return Err(invalid(
                "session_dir",
                format!("{} must be an absolute UTF-8 path", session_dir.display()),
            ));
        }
        // `..` and `.` would make the containment check below (which compares components)
        // unsound: refused in both, not resolved.
        for (key, dir) in [("state_dir", &state_dir), ("session_dir", &session_dir)] {
            if dir.to_str().is_some_and(has_dot_component) {
                return Err(invalid(
                    key,
                    format!(
                        "{} must not contain `.` or `..` components: write the path plainly",
                        dir.display()
                    ),
                ));
            }
        }
        if session_dir.starts_with(&state_dir) || state_dir.starts_with(&session_dir) {
            return Err(invalid(
                "session_dir",
                format!(
                    "{} must not be inside state_dir {} (or contain it): the grant writer may write there, and only root may write bindings",
                    session_dir.display(),
                    state_dir.display()
                ),
            ));
        }
        if let Some(dir) = &self.textfile_dir {
            check_textfile_dir(dir, &state_dir, &session_dir)?;
        }
        let grant_writer = self.grant_writer.unwrap_or_else(|| "jit".to_string());
        jit_common::grant::check_user("grant_writer", &grant_writer)
            .map_err(|e| invalid("grant_writer", e.to_string()))?;
        let mut hostnames = Vec::with_capacity(self.hostnames.len());
        for h in &self.hostnames {
            let ok = !h.is_empty()
                && h.len() <= jit_common::host::MAX_LEN
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
            if !ok {
                return Err(invalid(
                    "hostnames",
                    format!("{h:?} is not a host name (letters, digits, - . _; no globs)"),
                ));
            }
            hostnames.push(h.to_ascii_lowercase());
        }
        let mut user_ca_keys = Vec::with_capacity(self.user_ca_keys.len());
        for (i, k) in self.user_ca_keys.iter().enumerate() {
            let key = PublicKey::from_openssh(k.trim()).map_err(|e| {
                invalid(
                    "user_ca_keys",
                    format!("entry {}: {e} (expected an OpenSSH public key line)", i + 1),
                )
            })?;
            user_ca_keys.push(key);
        }
        let grant_keys = ring("grant_keys", &self.grant_keys)?;
        let break_glass_keys = ring("break_glass_keys", &self.break_glass_keys)?;
        if grant_keys.is_empty() && break_glass_keys.is_empty() {
            return Err(invalid(
                "grant_keys",
                "no grant key is configured, so no grant could ever verify (run `jit-ca host-config` to write this file)",
            ));
        }
        if let Some(k) = break_glass_keys.keys().iter().find(|k| {
            grant_keys
                .keys()
                .iter()
                .any(|g| g.key_data() == k.key_data())
        }) {
            return Err(invalid(
                "break_glass_keys",
                format!(
                    "{} is also a grant key; a break-glass key must be a separate offline key",
                    jit_common::keys::fingerprint(k)
                ),
            ));
        }
        Ok(Config {
            servers,
            mode: self.mode,
            services,
            clock_skew_secs,
            revocation_max_age_secs,
            break_glass_max_window_secs,
            state_dir,
            session_dir,
            grant_writer,
            hostnames,
            user_ca_keys,
            grant_keys,
            break_glass_keys,
            textfile_dir: self.textfile_dir,
        })
    }
}

/// `textfile_dir`: absolute, UTF-8, written plainly (no `.`/`..`), and neither jit's state
/// directory nor its session directory (nor inside or around them): the metrics file is for
/// node_exporter's directory, and nothing but jit's own files belongs in those two.
fn check_textfile_dir(dir: &Path, state_dir: &Path, session_dir: &Path) -> Result<(), ConfigError> {
    let key = "textfile_dir";
    let Some(text) = dir.to_str().filter(|_| dir.is_absolute()) else {
        return Err(invalid(
            key,
            format!(
                "{} must be an absolute UTF-8 path (node_exporter's --collector.textfile.directory)",
                dir.display()
            ),
        ));
    };
    if has_dot_component(text) {
        return Err(invalid(
            key,
            format!("{text} must not contain `.` or `..` components: write the path plainly"),
        ));
    }
    for (name, other) in [("state_dir", state_dir), ("session_dir", session_dir)] {
        if dir.starts_with(other) || other.starts_with(dir) {
            return Err(invalid(
                key,
                format!(
                    "{text} must not be {name} {} or inside it (or contain it): point it at node_exporter's textfile directory, e.g. /var/lib/prometheus/node-exporter",
                    other.display()
                ),
            ));
        }
    }
    Ok(())
}

fn ring(key: &'static str, lines: &[String]) -> Result<KeyRing, ConfigError> {
    let mut ring = KeyRing::new();
    for (i, line) in lines.iter().enumerate() {
        let k = PublicKey::from_openssh(line.trim()).map_err(|e| {
            invalid(
                key,
                format!("entry {}: {e} (expected an OpenSSH public key line)", i + 1),
            )
        })?;
        ring.push(k);
    }
    Ok(ring)
}

impl Config {
    /// Whether `service` is gated.
    pub fn gates(&self, service: &str) -> bool {
        self.services.iter().any(|s| s == service)
    }

    /// `<state_dir>/grants`.
    pub fn grants_dir(&self) -> PathBuf {
        self.state_dir.join("grants")
    }

    /// `<state_dir>/revocations`.
    pub fn revocations_path(&self) -> PathBuf {
        self.state_dir.join("revocations")
    }
}

/// Parses PAM module arguments: only `config=PATH` (absolute) is accepted.
pub fn config_path_from_args<'a, I>(args: I) -> Result<PathBuf, String>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut path = PathBuf::from(DEFAULT_PATH);
    for arg in args {
        match arg.split_once('=') {
            Some(("config", p)) if p.starts_with('/') => path = PathBuf::from(p),
            Some(("config", p)) => {
                return Err(format!(
                    "module argument config={p} must be an absolute path"
                ));
            }
            _ => {
                return Err(format!(
                    "unknown module argument {arg:?} (only config=PATH)"
                ));
            }
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFs7IxD3PzR74wjGG+1zDJpEtytOouLPW5jnw7aUxLS2 a";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINH9Rl3aVPAftPi+AlBvVmaf8CETglL2VnjpOoWtZrsS b";

    fn toml_with(extra: &str) -> String {
        format!("grant_keys = [\"{KEY_A}\"]\n{extra}")
    }

    #[test]
    fn defaults_are_as_documented() {
        let c = Config::parse(&toml_with("")).unwrap();
        assert_eq!(c.mode, Mode::Enforce);
        assert_eq!(c.services, vec!["sudo", "sudo-i"]);
        assert_eq!(c.clock_skew_secs, 60);
        assert_eq!(c.revocation_max_age_secs, 12 * 3600);
        assert_eq!(c.break_glass_max_window_secs, 24 * 3600);
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/jit"));
        assert_eq!(c.grant_writer, "jit");
        assert_eq!(c.session_dir, PathBuf::from("/run/jit/sessions"));
        assert!(c.gates("sudo-i") && !c.gates("login"));
        assert_eq!(c.textfile_dir, None, "no metrics file unless asked for");
    }

    #[test]
    fn textfile_dir_is_a_plain_absolute_path_outside_jit_dirs() {
        let c = Config::parse(&toml_with(
            "textfile_dir = \"/var/lib/prometheus/node-exporter\"",
        ))
        .unwrap();
        assert_eq!(
            c.textfile_dir,
            Some(PathBuf::from("/var/lib/prometheus/node-exporter"))
        );
        for (extra, needle) in [
            ("textfile_dir = \"node-exporter\"", "must be an absolute"),
            ("textfile_dir = \"/var/lib/../tmp\"", "`.` or `..`"),
            ("textfile_dir = \"/var/lib/jit\"", "state_dir /var/lib/jit"),
            ("textfile_dir = \"/var/lib/jit/metrics\"", "state_dir"),
            ("textfile_dir = \"/var\"", "state_dir"),
            ("textfile_dir = \"/run/jit/sessions\"", "session_dir"),
            ("textfile_dir = \"\"", "must be an absolute"),
        ] {
            let err = Config::parse(&toml_with(extra)).unwrap_err().to_string();
            assert!(
                err.starts_with("host.toml: textfile_dir: ") && err.contains(needle),
                "{extra}: {err}"
            );
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn server_is_one_url_or_an_array_of_them() {
        let c = Config::parse(&toml_with("server = \"https://ca.example.com:8443/\"")).unwrap();
        assert_eq!(c.servers, vec!["https://ca.example.com:8443"]);
        let c = Config::parse(&toml_with(
            "server = [\"https://ca1:8443\", \"http://ca2:8443/\"]",
        ))
        .unwrap();
        assert_eq!(c.servers, vec!["https://ca1:8443", "http://ca2:8443"]);
        let c = Config::parse(&toml_with("")).unwrap();
        assert!(c.servers.is_empty());
        let e = Config::parse(&toml_with("server = [\"https://a\", \"https://a/\"]"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "host.toml: server: https://a is listed twice: name each replica once"
        );
        let e = check_servers(&[]).unwrap_err();
        assert!(e.starts_with("the list is empty"), "{e}");
        let many: Vec<String> = (0..=MAX_SERVERS)
            .map(|i| format!("https://ca{i}"))
            .collect();
        assert!(check_servers(&many).is_err());
    }

    #[test]
    fn the_brief_example_parses() {
        let text = format!(
            r#"
server = "http://ca.example.com:8443"
mode = "audit"
services = ["sudo", "sudo-i"]
clock_skew_secs = 60
revocation_max_age_secs = 3600
state_dir = "/var/lib/jit"
grant_writer = "jit"
hostnames = ["DB-1.example.com"]
user_ca_keys = ["{KEY_B}"]
grant_keys = ["{KEY_A}"]
break_glass_keys = []
"#
        );
        let c = Config::parse(&text).unwrap();
        assert_eq!(c.mode, Mode::Audit);
        assert_eq!(c.hostnames, vec!["db-1.example.com"]);
        assert_eq!(c.user_ca_keys.len(), 1);
        assert_eq!(c.revocation_max_age_secs, 3600);
    }

    #[test]
    fn rejects_bad_input_with_the_key_named() {
        let cases = [
            ("colour = \"blue\"", "colour"),
            ("mode = \"permissive\"", "permissive"),
            ("state_dir = \"var/lib/jit\"", "state_dir"),
            ("session_dir = \"run/jit\"", "session_dir"),
            ("session_dir = \"/var/lib/jit/sessions\"", "session_dir"),
            ("session_dir = \"/var\"", "session_dir"),
            // Inside state_dir, written with `..`.
            (
                "session_dir = \"/run/../var/lib/jit/sessions\"",
                "session_dir",
            ),
            ("session_dir = \"/run/jit/./sessions\"", "session_dir"),
            ("session_dir = \"/var/lib/jit/..\"", "session_dir"),
            // Containing the default session_dir /run/jit/sessions, written with `..`.
            ("state_dir = \"/var/../run/jit\"", "state_dir"),
            ("state_dir = \"/var/lib/./jit\"", "state_dir"),
            ("clock_skew_secs = 99999", "clock_skew_secs"),
            ("server = \"ftp://x\"", "server"),
            ("server = []", "server"),
            ("server = [\"https://a\", \"https://a/\"]", "server"),
            ("server = [\"https://a\", \"ftp://b\"]", "server"),
            ("server = \"https://a,https://b\"", "server"),
            ("server = 8443", "server"),
            ("hostnames = [\"db-*\"]", "hostnames"),
            ("services = [\"sudo i\"]", "services"),
            ("grant_writer = \"Root!\"", "grant_writer"),
            ("revocation_max_age_secs = 0", "revocation_max_age_secs"),
            (
                "break_glass_max_window_secs = 0",
                "break_glass_max_window_secs",
            ),
            ("user_ca_keys = [\"ssh-ed25519 nonsense\"]", "user_ca_keys"),
            (
                &format!("break_glass_keys = [\"{KEY_A}\"]"),
                "break_glass_keys",
            ),
        ];
        for (extra, needle) in cases {
            let err = Config::parse(&toml_with(extra)).unwrap_err().to_string();
            assert!(err.contains(needle), "{extra}: {err}");
        }
        let err = Config::parse("").unwrap_err().to_string();
        assert!(err.contains("grant_keys"), "{err}");
        let err = Config::parse(&toml_with("session_dir = \"/run/../var/lib/jit/sessions\""))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("session_dir")
                && err.contains(
                    "/run/../var/lib/jit/sessions must not contain `.` or `..` components"
                ),
            "{err}"
        );
    }

    #[test]
    fn module_arguments() {
        assert_eq!(
            config_path_from_args([]).unwrap(),
            PathBuf::from(DEFAULT_PATH)
        );
        assert_eq!(
            config_path_from_args(["config=/etc/x.toml"]).unwrap(),
            PathBuf::from("/etc/x.toml")
        );
        assert!(config_path_from_args(["config=x.toml"]).is_err());
        assert!(config_path_from_args(["debug"]).is_err());
    }

    #[test]
    fn load_refuses_writable_or_foreign_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = dir.path().join("host.toml");
        std::fs::write(&p, toml_with("")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let euid = std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
            .unwrap();
        if euid == 0 {
            Config::load(&p).unwrap();
        } else {
            assert!(matches!(Config::load(&p), Err(ConfigError::File(_))));
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(matches!(Config::load(&p), Err(ConfigError::File(_))));
        assert!(matches!(
            Config::load(&dir.path().join("missing.toml")),
            Err(ConfigError::File(FileError::NotFound { .. }))
        ));
    }
}

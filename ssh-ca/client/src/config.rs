//! Where the client finds its server and identity: the command line, the environment,
//! then `~/.config/jit/config.toml` (or `$XDG_CONFIG_HOME/jit/config.toml`).
//!
//! ```toml
//! server = "https://ca.example.com:8443"   # or several replicas of one CA, tried in order:
//!                                          # server = ["https://ca1:8443", "https://ca2:8443"]
//! identity = "~/.ssh/id_ed25519"     # optional; default: the ssh-agent, then ~/.ssh/id_ed25519
//! ca_cert = "/etc/ssl/jit-ca.pem"    # optional; trust only this CA for the server's TLS
//! ca_fingerprint = "SHA256:..."      # optional; the CA that signed calls are for (pinned)
//! ```

use std::path::{Path, PathBuf};

use jit_api::servers::{self, ServerSetting};
use serde::Deserialize;

use super::error::{Error, Result};

/// Environment variable naming the server URL (or several, comma-separated).
pub const ENV_SERVER: &str = "JIT_SERVER";
/// Environment variable naming the identity key file.
pub const ENV_IDENTITY: &str = "JIT_IDENTITY";
/// Environment variable naming a PEM bundle of TLS roots for the server.
pub const ENV_CA_CERT: &str = "JIT_CA_CERT";
/// Environment variable pinning the CA's identity (the audience of signed calls).
pub const ENV_CA_FINGERPRINT: &str = "JIT_CA_FINGERPRINT";

/// The configuration file's contents.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// CA base URL, or an array of them (the replicas of one CA, tried in order).
    pub server: Option<ServerSetting>,
    /// Key file (private key, or public key whose private half is in the ssh-agent).
    pub identity: Option<String>,
    /// PEM bundle of the CA(s) that sign the server's TLS certificate.
    pub ca_cert: Option<String>,
    /// The CA's identity: SHA-256 fingerprint of its first user-CA key (`jit-ca` logs it at
    /// start; `ssh-keygen -lf` of the first line of `GET /v1/ca.pub`).
    pub ca_fingerprint: Option<String>,
}

/// Where a setting came from (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `--server` / `--identity`.
    Flag,
    /// `JIT_SERVER` / `JIT_IDENTITY`.
    Env,
    /// The config file.
    File,
}

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Normalised server base URLs (`scheme://host[:port]`, no trailing slash): one, or
    /// the replicas of one CA in the order they are tried. Never empty.
    pub servers: Vec<String>,
    /// Where the server URLs came from.
    pub server_source: Source,
    /// An explicit identity key file, if any.
    pub identity: Option<PathBuf>,
    /// TLS roots for the server (`JIT_CA_CERT`, `ca_cert`); `None`: the web PKI roots.
    pub ca_cert: Option<PathBuf>,
    /// The pinned audience of signed calls (`JIT_CA_FINGERPRINT`, `ca_fingerprint`);
    /// `None`: fetched from the server's `GET /v1/ca.pub`.
    pub ca_fingerprint: Option<String>,
    /// The config file path that was consulted.
    pub config_path: Option<PathBuf>,
}

/// The user's home directory (`$HOME`).
pub fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// `$XDG_CONFIG_HOME/jit/config.toml`, else `~/.config/jit/config.toml`.
pub fn config_path() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("jit").join("config.toml"));
    }
    home_dir().map(|h| h.join(".config").join("jit").join("config.toml"))
}

/// Reads the config file; a missing file is an empty configuration.
pub fn read_config(path: &Path) -> Result<ConfigFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
        Err(e) => return Err(Error::file(path, e)),
    };
    toml::from_str(&text).map_err(|e| {
        Error::Usage(format!(
            "{}: {} (allowed keys: server = \"https://ca.example.com:8443\" or [\"URL\", ...], identity = \"~/.ssh/id_ed25519\", \
             ca_cert = \"/path/ca.pem\", ca_fingerprint = \"SHA256:...\")",
            path.display(),
            e.message()
        ))
    })
}

/// Expands a leading `~/`.
pub fn expand_tilde(p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/")
        && let Some(home) = home_dir()
    {
        return home.join(rest);
    }
    PathBuf::from(p)
}

/// Checks and normalises a server URL: `http(s)://host[:port]`, no path, query or user info.
pub fn normalize_server(url: &str) -> Result<String> {
    servers::normalize(url).map_err(|e| Error::Usage(e.0))
}

/// Resolves server and identity: flag, then environment, then the config file.
///
/// `flag_*` are the command-line values; `env_*` the environment values (passed in so that
/// tests and callers decide what the environment is).
pub fn resolve(
    flag_server: &[String],
    env_server: Option<&str>,
    flag_identity: Option<&Path>,
    env_identity: Option<&str>,
    config_path: Option<PathBuf>,
) -> Result<Settings> {
    let file = match &config_path {
        Some(p) => read_config(p)?,
        None => ConfigFile::default(),
    };
    let non_empty = |s: Option<&str>| s.filter(|v| !v.trim().is_empty()).map(str::to_string);
    let file_path = || {
        config_path
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "~/.config/jit/config.toml".to_string())
    };
    let flags: Vec<&String> = flag_server
        .iter()
        .filter(|v| !v.trim().is_empty())
        .collect();
    let (servers, server_source) = if !flags.is_empty() {
        let list =
            servers::parse_flags(&flags).map_err(|e| Error::Usage(format!("--server: {e}")))?;
        (list, Source::Flag)
    } else if let Some(s) = non_empty(env_server) {
        let list = servers::parse_comma_list(&s)
            .map_err(|e| Error::Usage(format!("{ENV_SERVER}: {e}")))?;
        (list, Source::Env)
    } else if let Some(setting) = file
        .server
        .as_ref()
        .filter(|s| !matches!(s, ServerSetting::One(one) if one.trim().is_empty()))
    {
        let list = setting
            .to_list()
            .map_err(|e| Error::Usage(format!("{}: server: {e}", file_path())))?;
        (list, Source::File)
    } else {
        return Err(Error::Usage(format!(
            "no CA server configured: pass --server URL, set {ENV_SERVER}=URL, or put \
             server = \"https://ca.example.com:8443\" in {}",
            file_path()
        )));
    };
    let identity = if let Some(p) = flag_identity.filter(|p| !p.as_os_str().is_empty()) {
        Some(p.to_path_buf())
    } else if let Some(p) = non_empty(env_identity) {
        Some(expand_tilde(&p))
    } else {
        non_empty(file.identity.as_deref()).map(|p| expand_tilde(&p))
    };
    let ca_cert = non_empty(std::env::var(ENV_CA_CERT).ok().as_deref())
        .or_else(|| non_empty(file.ca_cert.as_deref()))
        .map(|p| expand_tilde(&p));
    let ca_fingerprint = non_empty(std::env::var(ENV_CA_FINGERPRINT).ok().as_deref())
        .or_else(|| non_empty(file.ca_fingerprint.as_deref()))
        .map(|f| f.trim().to_string());
    if let Some(f) = &ca_fingerprint
        && (!f.starts_with("SHA256:") || f.len() > jit_api::auth::MAX_AUDIENCE_LEN)
    {
        return Err(Error::Usage(format!(
            "ca_fingerprint / {ENV_CA_FINGERPRINT} {:?} must be a SHA256:... fingerprint of the CA's first \
             user-CA key (as `ssh-keygen -lf` prints it for the first line of GET /v1/ca.pub)",
            jit_common::log::sanitize(f, 80)
        )));
    }
    Ok(Settings {
        servers,
        server_source,
        identity,
        ca_cert,
        ca_fingerprint,
        config_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        assert_eq!(
            normalize_server("http://127.0.0.1:8443/").unwrap(),
            "http://127.0.0.1:8443"
        );
        assert_eq!(
            normalize_server("https://ca.example.com").unwrap(),
            "https://ca.example.com"
        );
        assert!(normalize_server("ca.example.com").is_err());
        assert!(normalize_server("https://ca/x").is_err());
        assert!(normalize_server("https://u@ca").is_err());
        assert!(normalize_server("https://").is_err());
    }

    #[test]
    fn precedence() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.toml");
        std::fs::write(&cfg, "server = \"http://file:1\"\nidentity = \"/k/file\"\n").unwrap();
        let s = resolve(&[], None, None, None, Some(cfg.clone())).unwrap();
        assert_eq!(
            (s.servers[0].as_str(), s.server_source),
            ("http://file:1", Source::File)
        );
        assert_eq!(s.identity.unwrap(), PathBuf::from("/k/file"));
        let s = resolve(
            &[],
            Some("http://env:1"),
            None,
            Some("/k/env"),
            Some(cfg.clone()),
        )
        .unwrap();
        assert_eq!(
            (s.servers[0].as_str(), s.server_source),
            ("http://env:1", Source::Env)
        );
        assert_eq!(s.identity.unwrap(), PathBuf::from("/k/env"));
        let s = resolve(
            &["http://flag:1".to_string()],
            Some("http://env:1"),
            Some(Path::new("/k/flag")),
            Some("/k/env"),
            Some(cfg),
        )
        .unwrap();
        assert_eq!(
            (s.servers[0].as_str(), s.server_source),
            ("http://flag:1", Source::Flag)
        );
        assert_eq!(s.identity.unwrap(), PathBuf::from("/k/flag"));
    }

    #[test]
    fn missing_server_names_all_three_places() {
        let dir = tempfile::tempdir().unwrap();
        let e = resolve(&[], None, None, None, Some(dir.path().join("none.toml")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--server") && e.contains(ENV_SERVER) && e.contains("none.toml"),
            "{e}"
        );
    }

    #[test]
    fn unknown_config_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.toml");
        std::fs::write(&cfg, "sever = \"http://x\"\n").unwrap();
        let e = resolve(&[], None, None, None, Some(cfg))
            .unwrap_err()
            .to_string();
        assert!(e.contains("sever"), "{e}");
    }

    #[test]
    fn several_servers_from_each_place() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.toml");
        std::fs::write(&cfg, "server = [\"http://f1:1\", \"http://f2:1/\"]\n").unwrap();
        let s = resolve(&[], None, None, None, Some(cfg.clone())).unwrap();
        assert_eq!(s.servers, vec!["http://f1:1", "http://f2:1"]);
        assert_eq!(s.server_source, Source::File);
        let s = resolve(
            &[],
            Some("http://e1:1, http://e2:1"),
            None,
            None,
            Some(cfg.clone()),
        )
        .unwrap();
        assert_eq!(s.servers, vec!["http://e1:1", "http://e2:1"]);
        assert_eq!(s.server_source, Source::Env);
        // Repeated flags, each possibly a comma list; the whole list beats the others.
        let flags = [
            "http://a:1".to_string(),
            "http://b:1,http://c:1".to_string(),
        ];
        let s = resolve(&flags, Some("http://e1:1"), None, None, Some(cfg)).unwrap();
        assert_eq!(s.servers, vec!["http://a:1", "http://b:1", "http://c:1"]);
        assert_eq!(s.server_source, Source::Flag);
    }

    #[test]
    fn bad_server_lists_name_where_they_came_from() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.toml");
        std::fs::write(&cfg, "server = []\n").unwrap();
        let e = resolve(&[], None, None, None, Some(cfg.clone()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("config.toml: server: the server list is empty"),
            "{e}"
        );
        std::fs::write(&cfg, "server = [\"http://a:1\", \"http://a:1/\"]\n").unwrap();
        let e = resolve(&[], None, None, None, Some(cfg.clone()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("http://a:1 is listed twice"), "{e}");
        let e = resolve(
            &[],
            Some("http://a:1,,http://b:1"),
            None,
            None,
            Some(cfg.clone()),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("JIT_SERVER: the server list has an empty entry"),
            "{e}"
        );
        let flags = ["http://a:1".to_string(), "http://a:1".to_string()];
        let e = resolve(&flags, None, None, None, Some(cfg)).unwrap_err();
        assert!(matches!(e, Error::Usage(_)));
        assert!(
            e.to_string()
                .starts_with("--server: server http://a:1 is listed twice"),
            "{e}"
        );
    }
}

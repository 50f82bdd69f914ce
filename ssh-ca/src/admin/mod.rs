//! Operator commands that work directly on a data directory (its files and SQLite), without
//! the service: init, users, policy check, host-config, audit verify/export. Changes are
//! audited like API events (actor `admin:uid=N`).

use std::fs;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::Path;

use serde::Serialize;
use serde_json::json;
use ssh_key::{HashAlg, PublicKey};

use jit_common::log::{Severity, Syslog};

use crate::audit::{self, event};
use crate::config::{self, Config};
use crate::error::{CaError, Result};
use crate::files;
use crate::policy::{self, Policy};
use crate::signer::{self, Signer};
use crate::store::{self, Store};

fn actor() -> String {
    format!("admin:uid={}", files::euid())
}

fn mkdir(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| CaError::File {
            path: path.to_path_buf(),
            detail: format!("cannot create directory: {e}"),
        })
}

/// What `init` creates, relative to the data directory.
pub const INIT_FILES: &[&str] = &[
    "keys/user_ca",
    "keys/user_ca.pub",
    "keys/grant",
    "keys/grant.pub",
    config::CONFIG_FILE,
    config::POLICY_FILE,
];

/// `jit-ca init --dir DIR`: keys, config.toml, policy.toml. Refuses if any exists.
pub fn init(dir: &Path) -> Result<Vec<String>> {
    let existing: Vec<_> = INIT_FILES
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| fs::symlink_metadata(p).is_ok())
        .collect();
    if let Some(first) = existing.first() {
        return Err(CaError::Exists(first.clone()));
    }
    mkdir(dir)?;
    mkdir(&dir.join("keys"))?;
    let (ca_priv, ca_pub) = signer::generate("jit-user-ca")?;
    let (grant_priv, grant_pub) = signer::generate("jit-grant")?;
    files::create_new(&dir.join("keys/user_ca"), ca_priv.as_bytes(), 0o600)?;
    files::create_new(
        &dir.join("keys/user_ca.pub"),
        format!("{ca_pub}\n").as_bytes(),
        0o644,
    )?;
    files::create_new(&dir.join("keys/grant"), grant_priv.as_bytes(), 0o600)?;
    files::create_new(
        &dir.join("keys/grant.pub"),
        format!("{grant_pub}\n").as_bytes(),
        0o644,
    )?;
    files::create_new(
        &dir.join(config::CONFIG_FILE),
        config::TEMPLATE.as_bytes(),
        0o644,
    )?;
    files::create_new(
        &dir.join(config::POLICY_FILE),
        policy::TEMPLATE.as_bytes(),
        0o644,
    )?;
    Ok(INIT_FILES
        .iter()
        .map(|f| dir.join(f).display().to_string())
        .collect())
}

/// Initialises `dir` if it has no config.toml yet (what `serve` does on first start).
/// Returns whether it did.
pub fn init_if_fresh(dir: &Path) -> Result<bool> {
    if dir.join(config::CONFIG_FILE).exists() {
        return Ok(false);
    }
    init(dir)?;
    Ok(true)
}

fn open_store(dir: &Path) -> Result<Store> {
    let cfg = Config::load(dir)?;
    if !dir.join(config::CONFIG_FILE).exists() {
        return Err(CaError::NotFound(dir.join(config::CONFIG_FILE)));
    }
    Store::open(&cfg.db_path())
}

fn log(records: &[audit::Record]) {
    let mut s = Syslog::new("jit-ca");
    for r in records {
        s.log(
            Severity::Notice,
            &format!(
                "audit seq={} event={} actor={} hash={} details={}",
                r.seq, r.event, r.actor, r.hash, r.details
            ),
        );
    }
}

/// Parses the keys in an OpenSSH public key file (one per line; comments and blanks skipped).
pub fn read_public_keys(path: &Path) -> Result<Vec<PublicKey>> {
    let text = fs::read_to_string(path).map_err(|e| CaError::File {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    if text.contains("PRIVATE KEY") {
        return Err(CaError::Input(format!(
            "{} is a private key; pass the public key ({}.pub)",
            path.display(),
            path.display()
        )));
    }
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = PublicKey::from_openssh(line).map_err(|e| {
            CaError::Input(format!(
                "{} line {}: not an OpenSSH public key ({e}); expected a line like `ssh-ed25519 AAAA... comment`",
                path.display(),
                n + 1
            ))
        })?;
        keys.push(key);
    }
    if keys.is_empty() {
        return Err(CaError::Input(format!(
            "{} contains no public key",
            path.display()
        )));
    }
    Ok(keys)
}

/// `jit-ca user add NAME --key FILE [--group G]...`.
pub fn user_add(
    dir: &Path,
    name: &str,
    key_file: &Path,
    groups: &[String],
    now: u64,
) -> Result<Vec<String>> {
    policy::check_name(name).map_err(CaError::Input)?;
    for g in groups {
        policy::check_name(g).map_err(|e| CaError::Input(format!("group: {e}")))?;
    }
    let mut groups = groups.to_vec();
    groups.sort();
    groups.dedup();
    let keys = read_public_keys(key_file)?;
    let lines = keys
        .iter()
        .map(|k| crate::auth::key_header(k).map_err(|e| CaError::Input(e.to_string())))
        .collect::<Result<Vec<_>>>()?;
    let fps: Vec<String> = keys
        .iter()
        .map(|k| k.fingerprint(HashAlg::Sha256).to_string())
        .collect();
    let mut st = open_store(dir)?;
    let tx = st.tx()?;
    store::add_user(&tx, name, &groups, &lines, now)?;
    let rec = store::append_audit(
        &tx,
        now,
        &actor(),
        event::USER_ADD,
        &json!({"user": name, "groups": groups, "keys": fps}),
    )?;
    tx.commit()?;
    log(&[rec]);
    Ok(fps)
}

/// `jit-ca user remove NAME`.
pub fn user_remove(dir: &Path, name: &str, now: u64) -> Result<()> {
    let mut st = open_store(dir)?;
    let tx = st.tx()?;
    if !store::remove_user(&tx, name)? {
        return Err(CaError::Input(format!(
            "there is no user {name:?} (jit-ca user list shows them)"
        )));
    }
    let rec = store::append_audit(
        &tx,
        now,
        &actor(),
        event::USER_REMOVE,
        &json!({"user": name}),
    )?;
    tx.commit()?;
    log(&[rec]);
    Ok(())
}

/// A user for `user list --json`.
#[derive(Debug, Serialize)]
pub struct UserView {
    pub name: String,
    pub groups: Vec<String>,
    pub keys: Vec<String>,
    pub fingerprints: Vec<String>,
    pub created_at: u64,
}

/// `jit-ca user list`.
pub fn user_list(dir: &Path) -> Result<Vec<UserView>> {
    let st = open_store(dir)?;
    Ok(store::list_users(st.conn())?
        .into_iter()
        .map(|u| UserView {
            fingerprints: u
                .keys
                .iter()
                .filter_map(|k| PublicKey::from_openssh(k).ok())
                .map(|k| k.fingerprint(HashAlg::Sha256).to_string())
                .collect(),
            name: u.name,
            groups: u.groups,
            keys: u.keys,
            created_at: u.created_at,
        })
        .collect())
}

/// Result of `policy check`.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub ok: bool,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    pub roles: Vec<String>,
}

/// `jit-ca policy check`: config, keys and policy, every problem at once.
pub fn policy_check(dir: &Path) -> CheckReport {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut roles = Vec::new();
    let cfg = match Config::load(dir) {
        Ok(c) => Some(c),
        Err(CaError::Config { path, problems }) => {
            errors.extend(
                problems
                    .into_iter()
                    .map(|p| format!("{}: {p}", path.display())),
            );
            None
        }
        Err(e) => {
            errors.push(e.to_string());
            None
        }
    };
    if let Some(cfg) = &cfg {
        warnings.extend(revocation_bound_conflict(cfg));
        for p in cfg.user_ca_keys.iter().chain(cfg.grant_keys.iter()) {
            if let Err(e) = Signer::load(std::slice::from_ref(p), std::slice::from_ref(p)) {
                errors.push(e.to_string());
            }
        }
    }
    let path = dir.join(config::POLICY_FILE);
    match files::read_trusted(&path, config::MAX_CONFIG_SIZE) {
        Err(e) => errors.push(e.to_string()),
        Ok(text) => match Policy::parse(&text) {
            Err(problems) => errors.extend(
                problems
                    .into_iter()
                    .map(|p| format!("{}: {p}", path.display())),
            ),
            Ok(p) => {
                roles = p.roles.keys().cloned().collect();
                if p.roles.is_empty() {
                    warnings.push(format!(
                        "{}: defines no roles; nobody can request anything",
                        path.display()
                    ));
                }
                if let Some(cfg) = &cfg
                    && let Ok(st) = Store::open(&cfg.db_path())
                    && let Ok(users) = store::list_users(st.conn())
                {
                    let names: Vec<String> = users.iter().map(|u| u.name.clone()).collect();
                    let mut groups: Vec<String> =
                        users.iter().flat_map(|u| u.groups.clone()).collect();
                    groups.sort();
                    groups.dedup();
                    warnings.extend(p.warnings(&names, &groups));
                    for role in p.roles.values() {
                        let able = users
                            .iter()
                            .filter(|u| role.may_approve(&u.name, &u.groups))
                            .count();
                        if !role.auto_approve && able < role.approvals as usize {
                            warnings.push(format!(
                                "roles.{}: needs {} approvals but only {able} registered user(s) may approve; requests cannot be approved yet",
                                role.name, role.approvals
                            ));
                        }
                    }
                }
            }
        },
    }
    CheckReport {
        ok: errors.is_empty(),
        errors,
        warnings,
        roles,
    }
}

/// `jit-ca host-config`: a complete host.toml (the schema shared with pam_jit and jit-host).
pub fn host_config(dir: &Path) -> Result<String> {
    let cfg = Config::load(dir)?;
    let signer = Signer::load(&cfg.user_ca_keys, &cfg.grant_keys)?;
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let list = |keys: Vec<PublicKey>| -> Result<String> {
        let mut lines = Vec::new();
        for k in keys {
            let line = k.to_openssh().map_err(|e| CaError::Other(e.to_string()))?;
            lines.push(format!("  {},", q(&line)));
        }
        Ok(format!("[\n{}\n]", lines.join("\n")))
    };
    let url = cfg.url();
    Ok(format!(
        r#"# /etc/jit/host.toml, written by `jit-ca host-config` for {url}
# Read by pam_jit.so and jit-host. Install root-owned, mode 0644.

server = {server}   # used by `jit-host sync`
mode = "enforce"                        # "enforce" | "audit"
services = ["sudo", "sudo-i"]           # PAM services gated; others get PAM_IGNORE
clock_skew_secs = 60                    # allowed clock difference for grant windows
revocation_max_age_secs = {max_age}       # deny (except break-glass) when the local revocation list is missing or older; 0 is refused
state_dir = "/var/lib/jit"              # grants/<user>/<grant-id>.grant, revocations, krl, ca.pub
grant_writer = "jit"                    # system user sshd runs `jit-host principals` as
hostnames = []                          # extra names this host answers to

# Certificates signed by these keys are trusted (sshd TrustedUserCAKeys); the first signs new ones.
user_ca_keys = {ca}

# Grants and revocation lists signed by these keys are trusted.
grant_keys = {grant}

break_glass_keys = []                   # offline keys; grants they sign bypass the staleness bound
break_glass_max_window_secs = 86400     # longest window a break-glass grant may have (24 h)
"#,
        server = q(&url),
        max_age = jit_common::revocation::DEFAULT_MAX_AGE_SECS,
        ca = list(signer.ca_public_keys())?,
        grant = list(signer.grant_public_keys())?,
    ))
}

/// A warning when hosts with the default staleness bound (`revocation_max_age_secs`, which
/// `host-config` writes) would find this CA's revocation list stale between two refreshes
/// (`revocation_refresh` plus two host sync periods is more than the bound).
pub fn revocation_bound_warning(dir: &Path) -> Option<String> {
    let cfg = Config::load(dir).ok()?;
    revocation_bound_conflict(&cfg)
}

fn revocation_bound_conflict(cfg: &Config) -> Option<String> {
    jit_common::revocation::max_age_conflict(
        jit_common::revocation::DEFAULT_MAX_AGE_SECS,
        cfg.revocation_refresh_secs,
    )
    .map(|w| format!("warning: hosts' default {w}"))
}

/// A warning when the URL written into host.toml cannot work from other hosts.
pub fn server_url_warning(dir: &Path) -> Option<String> {
    let cfg = Config::load(dir).ok()?;
    if cfg.public_url.is_some() {
        return None;
    }
    let ip = cfg.listen.ip();
    (ip.is_unspecified() || ip.is_loopback()).then(|| {
        format!(
            "warning: `server` is {} (from `listen`), which other hosts cannot reach; set public_url in {}",
            cfg.url(),
            dir.join(config::CONFIG_FILE).display()
        )
    })
}

/// `jit-ca backup --out FILE`: a consistent copy of the database (`VACUUM INTO`), safe while
/// the service runs. The keys in DIR/keys are not in it: back them up separately.
pub fn backup(dir: &Path, out: &Path) -> Result<u64> {
    if fs::symlink_metadata(out).is_ok() {
        return Err(CaError::Exists(out.to_path_buf()));
    }
    // Create it first so it is 0600 from the start (VACUUM INTO writes into an empty file).
    files::create_new(out, b"", 0o600)?;
    let st = open_store(dir)?;
    let target = out
        .to_str()
        .ok_or_else(|| CaError::Input("the output path must be UTF-8".into()))?;
    let result = st.conn().execute("VACUUM INTO ?1", [target]);
    if let Err(e) = result {
        let _ = fs::remove_file(out);
        return Err(e.into());
    }
    Ok(fs::metadata(out).map(|m| m.len()).unwrap_or(0))
}

/// Result of `audit verify`.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub records: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad_record: Option<u64>,
}

/// `jit-ca audit verify`.
pub fn audit_verify(dir: &Path) -> Result<VerifyReport> {
    audit_verify_anchored(dir, &[])
}

/// Parses an anchor `SEQ:HASH` (a record's seq and hash noted earlier, e.g. from syslog).
pub fn parse_anchor(s: &str) -> std::result::Result<(u64, String), String> {
    let (seq, hash) = s
        .split_once(':')
        .ok_or_else(|| format!("anchor {s:?} must be SEQ:HASH (e.g. 42:ab12...)"))?;
    let seq = seq
        .parse::<u64>()
        .map_err(|_| format!("anchor {s:?}: {seq:?} is not a record number"))?;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("anchor {s:?}: the hash must be 64 hex characters"));
    }
    Ok((seq, hash.to_ascii_lowercase()))
}

/// `jit-ca audit verify --anchor SEQ:HASH...`: the chain must be intact AND contain each
/// anchor, which detects truncation of the newest records when the anchors were kept
/// outside the database (syslog carries every record's seq and hash).
pub fn audit_verify_anchored(dir: &Path, anchors: &[(u64, String)]) -> Result<VerifyReport> {
    let st = open_store(dir)?;
    let records = store::audit_records(st.conn())?;
    let head = records.last().map(|r| r.hash.clone());
    let total = records.len() as u64;
    for (seq, hash) in anchors {
        let problem = match records.iter().find(|r| r.seq == *seq) {
            None => Some(format!(
                "record {seq} named by an anchor is missing (the trail has {total} records): records were deleted or the trail truncated"
            )),
            Some(r) if &r.hash != hash => Some(format!(
                "record {seq} does not match its anchor: the trail was rewritten from there on"
            )),
            Some(_) => None,
        };
        if problem.is_some() {
            return Ok(VerifyReport {
                ok: false,
                records: total,
                head,
                problem,
                bad_record: Some(*seq),
            });
        }
    }
    Ok(match audit::verify(records) {
        Ok(n) => VerifyReport {
            ok: true,
            records: n,
            head,
            problem: None,
            bad_record: None,
        },
        Err(b) => {
            let seq = match b {
                audit::Broken::Edited { seq } | audit::Broken::Unlinked { seq } => seq,
                audit::Broken::Gap { expected, .. } => expected,
            };
            VerifyReport {
                ok: false,
                records: total,
                head,
                problem: Some(b.to_string()),
                bad_record: Some(seq),
            }
        }
    })
}

/// `jit-ca audit export`: every record, details as JSON.
pub fn audit_export(dir: &Path) -> Result<Vec<serde_json::Value>> {
    let st = open_store(dir)?;
    Ok(store::audit_records(st.conn())?
        .into_iter()
        .map(|r| {
            let details: serde_json::Value = serde_json::from_str(&r.details)
                .unwrap_or(serde_json::Value::String(r.details.clone()));
            json!({"seq": r.seq, "time": r.time, "time_utc": jit_common::time::format_utc(r.time),
                   "actor": r.actor, "event": r.event, "details": details,
                   "prev_hash": r.prev_hash, "hash": r.hash})
        })
        .collect())
}

/// A warning if the data directory is accessible by group or others.
pub fn loose_dir_warning(dir: &Path) -> Option<String> {
    let meta = fs::metadata(dir).ok()?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Some(format!(
            "warning: {} is accessible by group or others (chmod 700 {})",
            dir.display(),
            dir.display()
        ));
    }
    None
}

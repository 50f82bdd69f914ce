//! Operator commands that work directly on a data directory (its files and SQLite), without
//! the service: init, users, policy check, host-config, audit verify/export. Changes are
//! audited like API events (actor `admin:uid=N`).

pub mod break_glass;
mod check;
mod db;
mod dir;
mod notify;
mod policy_test;
mod trail;
mod users;

use std::fs;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::Path;

use ssh_key::PublicKey;

use crate::config::{self, Config};
use crate::error::{CaError, Result};
use crate::files;
use crate::policy;
use crate::signer::{self, Signer};
use dir::open_store;

pub use check::{CheckReport, policy_check};
pub use db::{
    CopyReport, DbStatus, ReplicaStatus, TableCheck, db_copy, db_status,
    render_copy as render_db_copy, render_status as render_db_status,
};
pub use notify::{
    NotifyReport, Retried, SinkView, notify_retry, notify_status,
    render_status as render_notify_status,
};
pub use policy_test::{
    PolicyTestInput, PolicyTestReport, RuleMiss, policy_test, render as render_policy_test,
};
pub use trail::{
    VerifyReport, audit_export, audit_verify, audit_verify_anchored, audit_verify_checkpoint,
    parse_anchor,
};
pub use users::{
    KeyRemoval, MAX_CONTACT, RemovedKey, UserView, check_contact, read_public_keys, revoke_grant,
    user_add, user_add_key, user_add_with_contact, user_list, user_remove, user_remove_key,
    user_set_contact,
};

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

/// `jit-ca host-config`: a complete host.toml (the schema shared with pam_jit and jit-host).
pub fn host_config(dir: &Path) -> Result<String> {
    let cfg = Config::load(dir)?;
    let signer = Signer::load(&cfg.user_ca_keys, &cfg.grant_keys)?;
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let list = |keys: Vec<PublicKey>| -> Result<String> {
        let mut lines = Vec::new();
        for k in keys {
            let line = k.to_openssh().map_err(|source| CaError::SshEncoding {
                what: "public key encoding",
                source,
            })?;
            lines.push(format!("  {},", q(&line)));
        }
        Ok(format!("[\n{}\n]", lines.join("\n")))
    };
    let url = cfg.url();
    Ok(format!(
        r#"# /etc/jit/host.toml, written by `jit-ca host-config` for {url}
# Read by pam_jit.so and jit-host. Install root-owned, mode 0644.

server = {server}   # used by `jit-host sync`; replicas of one CA: ["https://ca1:8443", "https://ca2:8443"]
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
    check::revocation_bound_conflict(&cfg)
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
    // SQLite's file only (on PostgreSQL: pg_dump), checked before anything is created or
    // connected to.
    if Config::load(dir)?.database.is_some() {
        return Err(CaError::Input(
            "jit-ca backup copies SQLite's jit.db, but this data directory's config.toml names a \
             PostgreSQL database (database = ...): back that up with pg_dump (docs/ha.md)"
                .into(),
        ));
    }
    let mut db = open_store(dir)?;
    let st = db.sqlite("jit-ca backup")?;
    // Create it first so it is 0600 from the start (VACUUM INTO writes into an empty file).
    files::create_new(out, b"", 0o600)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `jit-ca backup` is SQLite's VACUUM INTO: on a PostgreSQL data directory it refuses,
    /// naming pg_dump, before creating the output file or connecting.
    #[test]
    fn backup_on_postgres_names_pg_dump_and_creates_nothing() {
        let d = tempfile::tempdir().unwrap();
        fs::write(
            d.path().join(config::CONFIG_FILE),
            "database = \"host=/nonexistent dbname=jit user=jit\"\n",
        )
        .unwrap();
        let out = d.path().join("copy.db");
        let e = backup(d.path(), &out).unwrap_err();
        assert!(e.to_string().contains("pg_dump"), "{e}");
        assert!(!out.exists());
    }
}

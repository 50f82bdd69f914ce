//! `jit-ca user ...` and `jit-ca revoke-grant`: registered users and their keys, and the
//! operator's revocations (through the service, with a fixed clock).

use std::fs;
use std::path::Path;

use serde::Serialize;
use serde_json::json;
use ssh_key::{HashAlg, PublicKey};

use super::dir::{actor, log, open_store};
use crate::audit::event;
use crate::config::{self, Config};
use crate::error::{CaError, Result};
use crate::policy::{self, Policy};
use crate::signer::Signer;
use crate::store::{self, Store};

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
    let (lines, fps) = key_lines(key_file)?;
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

/// The public keys of `key_file` as stored (`auth::key_header` lines) and their SHA-256
/// fingerprints, in file order.
fn key_lines(key_file: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let keys = read_public_keys(key_file)?;
    let lines = keys
        .iter()
        .map(|k| jit_api::auth::key_header(k).map_err(|e| CaError::Input(e.to_string())))
        .collect::<Result<Vec<_>>>()?;
    let fps = keys
        .iter()
        .map(|k| k.fingerprint(HashAlg::Sha256).to_string())
        .collect();
    Ok((lines, fps))
}

/// `jit-ca user add-key NAME --key FILE [--approval]`: registers more keys for an existing
/// user. With `approval`, they are approval keys: they may approve, deny, list and read,
/// never request or extend, and a role with `approval_key = "dedicated"` (or
/// `"dedicated-sk"`) accepts approvals only from them. Returns the fingerprints.
pub fn user_add_key(
    dir: &Path,
    name: &str,
    key_file: &Path,
    approval: bool,
    now: u64,
) -> Result<Vec<String>> {
    let (lines, fps) = key_lines(key_file)?;
    let purpose = if approval {
        store::KeyPurpose::Approval
    } else {
        store::KeyPurpose::Login
    };
    let mut st = open_store(dir)?;
    let tx = st.tx()?;
    for l in &lines {
        store::add_user_key(&tx, name, l, purpose)?;
    }
    let rec = store::append_audit(
        &tx,
        now,
        &actor(),
        event::USER_ADD_KEY,
        &json!({"user": name, "keys": fps, "purpose": purpose.as_str()}),
    )?;
    tx.commit()?;
    log(&[rec]);
    Ok(fps)
}

/// The CA on `dir` for an operator command that revokes: like the service's, but a
/// policy.toml that does not parse does not stop it (removing a user or revoking a grant
/// needs no policy, and must work while someone fixes the file).
fn operator_ca(dir: &Path, now: u64) -> Result<crate::service::Ca> {
    let config = Config::load(dir)?;
    if !dir.join(config::CONFIG_FILE).exists() {
        return Err(CaError::NotFound(dir.join(config::CONFIG_FILE)));
    }
    let policy = match crate::service::load_policy(&config) {
        Ok(p) => p,
        Err(_) => Policy::parse("").map_err(|problems| CaError::Config {
            path: dir.join(config::POLICY_FILE),
            problems,
        })?,
    };
    let signer = Signer::load(&config.user_ca_keys, &config.grant_keys)?;
    let store = Store::open(&config.db_path())?;
    let clock = std::sync::Arc::new(crate::clock::FixedClock::new(now));
    // Not `Ca::new`: the grant snapshot for host documents is not needed to revoke, and a
    // damaged grant's hosts must not stop the revocation of it.
    crate::service::Ca::for_revocation(config, policy, signer, store, clock)
}

/// `jit-ca user remove NAME`: ends the user's access in one audited transaction (pending
/// requests denied, approved ones revoked onto the KRL and revocation list, the user and
/// their keys deleted); a running `jit-ca serve` publishes it within a second or two.
pub fn user_remove(dir: &Path, name: &str, now: u64) -> Result<crate::service::UserRemoval> {
    let ca = operator_ca(dir, now)?;
    ca.remove_user(&actor(), name)
        .map_err(|e| CaError::Input(e.message))
}

/// `jit-ca revoke-grant ID|SERIAL`: revokes one grant id or certificate serial (a break-glass
/// grant too), audited; a running `jit-ca serve` publishes it within a second or two.
pub fn revoke_grant(
    dir: &Path,
    target: &str,
    reason: &str,
    now: u64,
) -> Result<crate::service::GrantRevocation> {
    let ca = operator_ca(dir, now)?;
    ca.revoke_grant(&actor(), target, reason)
        .map_err(|e| CaError::Input(e.message))
}

/// A user for `user list --json`.
#[derive(Debug, Serialize)]
pub struct UserView {
    pub name: String,
    pub groups: Vec<String>,
    pub keys: Vec<String>,
    pub fingerprints: Vec<String>,
    /// Approval-only keys (`user add-key --approval`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approval_keys: Vec<String>,
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
            approval_keys: u.approval_keys,
            created_at: u.created_at,
        })
        .collect())
}

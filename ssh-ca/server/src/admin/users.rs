//! `jit-ca user ...` and `jit-ca revoke-grant`: registered users and their keys, and the
//! operator's revocations (through the service, with a fixed clock).

use std::fs;
use std::path::Path;

use serde::Serialize;
use serde_json::json;
use ssh_key::{HashAlg, PublicKey};

use super::dir::{actor, log, open_store};
use crate::audit::{self, event};
use crate::config::{self, Config};
use crate::error::{CaError, Result};
use crate::policy::{self, Policy};
use crate::signer::Signer;
use crate::store::{self, StoreOps};

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

/// The most characters a contact handle may have.
pub const MAX_CONTACT: usize = 64;

/// Checks a contact handle (`--contact`, `user set-contact`): trimmed, not empty, one line of
/// at most [`MAX_CONTACT`] characters with no control or invisible character (it is shown
/// in notifications: Slack messages, receivers' tickets).
pub fn check_contact(handle: &str) -> Result<String> {
    let h = handle.trim();
    if h.is_empty() {
        return Err(CaError::Input(
            "the contact is empty; give a handle such as @alice or U0123ABCD (a Slack member id), or --clear to remove it".into(),
        ));
    }
    if h.chars().count() > MAX_CONTACT {
        return Err(CaError::Input(format!(
            "the contact is {} characters; at most {MAX_CONTACT} are allowed (a handle such as @alice or U0123ABCD)",
            h.chars().count()
        )));
    }
    jit_common::text::check_line("contact", h, 4 * MAX_CONTACT).map_err(CaError::Input)?;
    Ok(h.to_string())
}

/// `jit-ca user add NAME --key FILE [--group G]...`.
pub fn user_add(
    dir: &Path,
    name: &str,
    key_file: &Path,
    groups: &[String],
    now: u64,
) -> Result<Vec<String>> {
    user_add_with_contact(dir, name, key_file, groups, None, now)
}

/// `jit-ca user add NAME --key FILE [--group G]... [--contact HANDLE]`.
pub fn user_add_with_contact(
    dir: &Path,
    name: &str,
    key_file: &Path,
    groups: &[String],
    contact: Option<&str>,
    now: u64,
) -> Result<Vec<String>> {
    policy::check_name(name).map_err(CaError::Input)?;
    let contact = contact.map(check_contact).transpose()?;
    for g in groups {
        policy::check_name(g).map_err(|e| CaError::Input(format!("group: {e}")))?;
    }
    let mut groups = groups.to_vec();
    groups.sort();
    groups.dedup();
    let (lines, fps) = key_lines(key_file)?;
    let rec = open_store(dir)?.with_tx(|tx| {
        tx.add_user(name, &groups, &lines, now)?;
        let mut details = json!({"user": name, "groups": groups, "keys": fps});
        if let Some(h) = &contact {
            tx.set_contact(name, Some(h))?;
            details["contact"] = json!(h);
        }
        tx.append_audit(now, &actor(), event::USER_ADD, &details)
    })?;
    log(&[rec]);
    Ok(fps)
}

/// `jit-ca user set-contact NAME HANDLE` (Some) or `--clear` (None): audited as
/// `user_contact`. Returns the handle as stored.
pub fn user_set_contact(
    dir: &Path,
    name: &str,
    contact: Option<&str>,
    now: u64,
) -> Result<Option<String>> {
    let contact = contact.map(check_contact).transpose()?;
    let rec = open_store(dir)?.with_tx(|tx| {
        if !tx.set_contact(name, contact.as_deref())? {
            return Err(CaError::Input(format!(
                "there is no user {name:?} (jit-ca user list shows them)"
            )));
        }
        tx.append_audit(
            now,
            &actor(),
            event::USER_CONTACT,
            &json!({"user": name, "contact": contact}),
        )
    })?;
    log(&[rec]);
    Ok(contact)
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
    let rec = open_store(dir)?.with_tx(|tx| {
        for l in &lines {
            tx.add_user_key(name, l, purpose)?;
        }
        tx.append_audit(
            now,
            &actor(),
            event::USER_ADD_KEY,
            &json!({"user": name, "keys": fps, "purpose": purpose.as_str()}),
        )
    })?;
    log(&[rec]);
    Ok(fps)
}

/// What `jit-ca user key remove` removed and what the user has left.
#[derive(Debug, Serialize)]
pub struct KeyRemoval {
    pub user: String,
    /// The removed keys' fingerprints, in the order asked.
    pub removed: Vec<RemovedKey>,
    pub login_keys_left: usize,
    pub approval_keys_left: usize,
    /// Requests with a live (unrevoked, unexpired) certificate for a removed key: removing
    /// the key does not end them (`jit-ca revoke ID` does).
    pub live_requests: Vec<String>,
    /// Pending requests to certify a removed key, denied in the same transaction: a lost or
    /// stolen key must not be certified by an approver who does not know it was removed.
    pub denied_requests: Vec<String>,
}

/// One removed key.
#[derive(Debug, Serialize)]
pub struct RemovedKey {
    pub fingerprint: String,
    /// `login` or `approval`.
    pub purpose: &'static str,
}

/// `jit-ca user key remove NAME --key FILE|FINGERPRINT [--allow-no-login-key]`: removes keys
/// of a user who stays registered (a lost or replaced key). `key` is a `SHA256:...`
/// fingerprint (as `jit-ca user list` prints it) or an OpenSSH public key file (each of its
/// keys). Every key must be the user's; removing the user's last login key is refused unless
/// `allow_no_login_key` (they could not sign a request again: a lockout). The service reads
/// keys from the database on every call, so the next call signed with a removed key is refused.
/// The user's pending requests to certify a removed key are denied in the same transaction
/// (reason `key SHA256:... was removed (jit-ca user key remove)`), named in the result and
/// the `user_remove_key` record (`denied_requests`).
pub fn user_remove_key(
    dir: &Path,
    name: &str,
    key: &str,
    allow_no_login_key: bool,
    now: u64,
) -> Result<KeyRemoval> {
    let wanted = if key.starts_with("SHA256:") {
        KeyRef::Fingerprints(vec![key.to_string()])
    } else {
        KeyRef::Lines(key_lines(Path::new(key))?.0)
    };
    let (removal, rec, web_logouts) =
        open_store(dir)?.with_tx(|tx| remove_keys(tx, name, &wanted, allow_no_login_key, now))?;
    log(&[rec]);
    log(&web_logouts);
    Ok(removal)
}

/// [`user_remove_key`]'s transaction: the removal, its record, and the `web_logout` records
/// of the sessions it ended.
fn remove_keys(
    tx: &dyn StoreOps,
    name: &str,
    wanted: &KeyRef,
    allow_no_login_key: bool,
    now: u64,
) -> Result<(KeyRemoval, audit::Record, Vec<audit::Record>)> {
    if !tx.user_exists(name)? {
        return Err(CaError::Input(format!(
            "there is no user {name:?} (jit-ca user list shows the users)"
        )));
    }
    let registered: Vec<(String, String, store::KeyPurpose)> = tx
        .user_keys(name)?
        .into_iter()
        .map(|(line, purpose)| (fingerprint_of(&line), line, purpose))
        .collect();
    let targets: Vec<&(String, String, store::KeyPurpose)> = match wanted {
        KeyRef::Fingerprints(fps) => fps
            .iter()
            .map(|fp| find_key(&registered, name, fp, |k| &k.0 == fp))
            .collect::<Result<_>>()?,
        KeyRef::Lines(lines) => lines
            .iter()
            .map(|l| find_key(&registered, name, &fingerprint_of(l), |k| &k.1 == l))
            .collect::<Result<_>>()?,
    };
    let is_target = |k: &(String, String, store::KeyPurpose)| targets.iter().any(|t| t.1 == k.1);
    let left = |p: store::KeyPurpose| {
        registered
            .iter()
            .filter(|k| k.2 == p && !is_target(k))
            .count()
    };
    let (login_left, approval_left) = (
        left(store::KeyPurpose::Login),
        left(store::KeyPurpose::Approval),
    );
    let had_login = registered.iter().any(|k| k.2 == store::KeyPurpose::Login);
    if had_login && login_left == 0 && !allow_no_login_key {
        return Err(CaError::Input(format!(
            "refusing to remove the last login key of {name} ({}): {name} could not sign a \
             request or any other call with a login key; add the new key first (jit-ca user \
             key add {name} --key NEW.pub), or pass --allow-no-login-key to lock {name} out on \
             purpose",
            targets
                .iter()
                .filter(|t| t.2 == store::KeyPurpose::Login)
                .map(|t| t.0.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut removed = Vec::new();
    let mut live_requests = Vec::new();
    for t in &targets {
        if removed.iter().any(|r: &RemovedKey| r.fingerprint == t.0) {
            continue;
        }
        tx.remove_user_key(name, &t.1)?;
        for id in tx.requests_with_live_certs_for_key(name, &t.1, now)? {
            if !live_requests.contains(&id) {
                live_requests.push(id);
            }
        }
        removed.push(RemovedKey {
            fingerprint: t.0.clone(),
            purpose: t.2.as_str(),
        });
    }
    let denied_requests = deny_pending_for_keys(tx, name, &removed, now)?;
    // Web sessions established with a removed key end, idle ones too (audited
    // `web_logout`), and its unused login links are withdrawn; the pages check the key on
    // every view as well.
    let mut web_logouts = Vec::new();
    for k in &removed {
        let why = json!({"reason": "key removed", "removed_key": k.fingerprint});
        web_logouts.extend(crate::service::web::end_sessions(
            tx,
            name,
            Some(&k.fingerprint),
            now,
            &actor(),
            why,
        )?);
    }
    let rec = tx.append_audit(
        now,
        &actor(),
        event::USER_REMOVE_KEY,
        &json!({"user": name, "keys": removed, "login_keys_left": login_left,
            "approval_keys_left": approval_left, "live_requests": live_requests,
            "denied_requests": denied_requests}),
    )?;
    let removal = KeyRemoval {
        user: name.to_string(),
        removed,
        login_keys_left: login_left,
        approval_keys_left: approval_left,
        live_requests,
        denied_requests,
    };
    Ok((removal, rec, web_logouts))
}

/// Denies `name`'s pending requests whose key to certify is one of `removed` (compared by
/// fingerprint); returns their ids. A row that does not load is left alone: `approve` cannot
/// load it either.
fn deny_pending_for_keys(
    tx: &dyn StoreOps,
    name: &str,
    removed: &[RemovedKey],
    now: u64,
) -> Result<Vec<String>> {
    use crate::service::lifecycle;
    let by = actor();
    let mut denied = Vec::new();
    for id in tx.request_ids_of(name, &[jit_api::wire::RequestState::Pending])? {
        let Ok(Some(mut row)) = tx.get_request(&id) else {
            continue;
        };
        let fp = lifecycle::fingerprint(&row.public_key);
        if !removed.iter().any(|k| k.fingerprint == fp) {
            continue;
        }
        let why = format!("key {fp} was removed (jit-ca user key remove)");
        lifecycle::deny(&mut row, lifecycle::Actor::Operator, None, &by, &why, now)
            .map_err(|e| CaError::Input(e.to_string()))?;
        tx.update_request(&row)?;
        denied.push(id);
    }
    Ok(denied)
}

/// How `user key remove` names keys.
enum KeyRef {
    Fingerprints(Vec<String>),
    Lines(Vec<String>),
}

fn fingerprint_of(line: &str) -> String {
    PublicKey::from_openssh(line).map_or_else(
        |_| "(unreadable key)".to_string(),
        |k| k.fingerprint(HashAlg::Sha256).to_string(),
    )
}

fn find_key<'a>(
    registered: &'a [(String, String, store::KeyPurpose)],
    name: &str,
    fp: &str,
    matches: impl Fn(&(String, String, store::KeyPurpose)) -> bool,
) -> Result<&'a (String, String, store::KeyPurpose)> {
    registered.iter().find(|k| matches(k)).ok_or_else(|| {
        CaError::Input(format!(
            "key {fp} is not registered to user {name:?} (jit-ca user list shows their keys)"
        ))
    })
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
    let db = crate::store::Db::open(&config)?;
    let clock = std::sync::Arc::new(crate::clock::FixedClock::new(now));
    // Not `Ca::new`: the grant snapshot for host documents is not needed to revoke, and a
    // damaged grant's hosts must not stop the revocation of it.
    crate::service::Ca::for_revocation(config, policy, signer, db, clock)
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
    /// The handle notifications show (`--contact`), null when none is set.
    pub contact: Option<String>,
}

/// `jit-ca user list`.
pub fn user_list(dir: &Path) -> Result<Vec<UserView>> {
    Ok(open_store(dir)?
        .read(|c| c.list_users())??
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
            contact: u.contact,
        })
        .collect())
}

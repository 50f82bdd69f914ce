//! Operator commands that work directly on a data directory (its files and SQLite), without
//! the service: init, users, policy check, host-config, audit verify/export. Changes are
//! audited like API events (actor `admin:uid=N`).

pub mod break_glass;

use std::fs;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::Path;

use serde::Serialize;
use serde_json::json;
use ssh_key::{HashAlg, PublicKey};

use jit_common::log::Syslog;

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
    audit::log(&mut Syslog::new("jit-ca"), records);
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
    crate::service::Ca::new(config, policy, signer, store, clock)
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
                    if names.iter().any(|n| n == "root") {
                        warnings.push(
                            "user \"root\" is registered: every certificate carries its user's name as a principal, so root's certificates log in as root; remove it (jit-ca user remove root) and register people under their own names".into(),
                        );
                    }
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
                        // Approvers who hold a key this role's approval_key accepts.
                        let keyed = users
                            .iter()
                            .filter(|u| role.may_approve(&u.name, &u.groups))
                            .filter(|u| {
                                let ok = |k: &String, approval: bool| {
                                    let sk = k.starts_with("sk-");
                                    role.approval_key.check(approval, sk, sk).is_ok()
                                };
                                u.keys.iter().any(|k| ok(k, false))
                                    || u.approval_keys.iter().any(|k| ok(k, true))
                            })
                            .count();
                        if !role.auto_approve
                            && role.approval_key != policy::ApprovalKey::Any
                            && keyed < role.approvals as usize
                        {
                            warnings.push(format!(
                                "roles.{}: approval_key = \"{}\" but only {keyed} approver(s) have such a key registered (needs {}); register one with jit-ca user add-key NAME --key FILE --approval",
                                role.name,
                                role.approval_key.as_str(),
                                role.approvals
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

/// The keys a checkpoint may be signed by: the CA's grant keys (their `.pub` files, else
/// the public half of the private key), so a monitor needs no private key.
fn checkpoint_keys(dir: &Path) -> Result<jit_common::KeyRing> {
    let cfg = Config::load(dir)?;
    let mut ring = jit_common::KeyRing::new();
    for p in &cfg.grant_keys {
        let mut pub_path = p.as_os_str().to_owned();
        pub_path.push(".pub");
        let pub_path = std::path::PathBuf::from(pub_path);
        if let Ok(text) = files::read_trusted(&pub_path, 64 * 1024) {
            let key = PublicKey::from_openssh(text.trim()).map_err(|e| CaError::Key {
                path: pub_path.clone(),
                detail: format!("not an OpenSSH public key: {e}"),
            })?;
            ring.push(key);
        } else {
            let signer = Signer::load(std::slice::from_ref(p), std::slice::from_ref(p))?;
            for k in signer.grant_public_keys() {
                ring.push(k);
            }
        }
    }
    Ok(ring)
}

/// `jit-ca audit verify --checkpoint FILE [--anchor SEQ:HASH]...`: the checkpoint's signature
/// must verify against the CA's grant keys, and the chain must be intact and contain the
/// exact record it names (and every anchor). A checkpoint kept outside the database detects
/// a rewritten and re-chained trail and a cut tail, which the chain alone cannot.
pub fn audit_verify_checkpoint(
    dir: &Path,
    checkpoint: &Path,
    anchors: &[(u64, String)],
) -> Result<VerifyReport> {
    // A checkpoint is a few hundred bytes; read at most this much (a mistaken path such as
    // /dev/zero or a huge file must not make the command read without end).
    const MAX_CHECKPOINT: u64 = 64 * 1024;
    let mut doc = Vec::new();
    fs::File::open(checkpoint)
        .and_then(|f| {
            use std::io::Read as _;
            f.take(MAX_CHECKPOINT + 1).read_to_end(&mut doc)
        })
        .map_err(|e| CaError::File {
            path: checkpoint.to_path_buf(),
            detail: format!("cannot read the checkpoint: {e}"),
        })?;
    if doc.len() as u64 > MAX_CHECKPOINT {
        return Err(CaError::File {
            path: checkpoint.to_path_buf(),
            detail: format!(
                "larger than {MAX_CHECKPOINT} bytes: not a checkpoint (fetch one from GET /v1/audit/checkpoint)"
            ),
        });
    }
    let ring = checkpoint_keys(dir)?;
    let st = open_store(dir)?;
    let records = store::audit_records(st.conn())?;
    let head = records.last().map(|r| r.hash.clone());
    let total = records.len() as u64;
    let fail = |problem: String, bad: Option<u64>| VerifyReport {
        ok: false,
        records: total,
        head: head.clone(),
        problem: Some(problem),
        bad_record: bad,
    };
    let cp = match audit::checkpoint::Checkpoint::verify(&doc, &ring) {
        Ok(cp) => cp,
        Err(e) => return Ok(fail(format!("{}: {e}", checkpoint.display()), None)),
    };
    match records.iter().find(|r| r.seq == cp.seq) {
        None => {
            return Ok(fail(
                format!(
                    "record {} named by the signed checkpoint (signed {}) is missing (the trail has {total} records): the trail was truncated",
                    cp.seq,
                    jit_common::time::format_utc(cp.time)
                ),
                Some(cp.seq),
            ));
        }
        Some(r) if r.hash != cp.hash => {
            return Ok(fail(
                format!(
                    "record {} does not match the signed checkpoint (signed {}): the trail was rewritten at or before it",
                    cp.seq,
                    jit_common::time::format_utc(cp.time)
                ),
                Some(cp.seq),
            ));
        }
        Some(_) => {}
    }
    drop(st);
    audit_verify_anchored(dir, anchors)
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

//! Break-glass tooling: an offline key and the grants it signs (docs/break-glass.md).
//!
//! Nothing here touches a CA data directory or the network: the key is made and used on an
//! offline machine, and a grant it signs is carried to the host and installed with
//! `jit-host install`. Hosts trust the key through `break_glass_keys` in host.toml; such a
//! grant still needs the host's name, the user, its window and the revocation list to pass,
//! but not a fresh revocation list (so it works while the CA is down).

use std::path::{Path, PathBuf};

use serde::Serialize;
use ssh_key::PrivateKey;

use jit_common::Grant;

use crate::error::{CaError, Result};
use crate::files;

/// The longest window a break-glass grant gets without `--allow-long-window`: hosts refuse
/// longer ones by default (`break_glass_max_window_secs` in host.toml, default 86400).
pub const DEFAULT_MAX_WINDOW_SECS: u64 = 24 * 3600;
/// The role name written into break-glass grants.
pub const ROLE: &str = "break-glass";

fn pub_path(out: &Path) -> PathBuf {
    let mut p = out.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// What `break-glass keygen` wrote.
#[derive(Debug, Serialize)]
pub struct KeygenResult {
    /// The private key (0600).
    pub private_key: PathBuf,
    /// The public key (0644), for `break_glass_keys` in host.toml.
    pub public_key: PathBuf,
    /// Its public key line.
    pub public_line: String,
    /// Its fingerprint.
    pub fingerprint: String,
}

/// `jit-ca break-glass keygen --out FILE`: a new Ed25519 key (FILE 0600, FILE.pub 0644);
/// never overwrites.
pub fn keygen(out: &Path) -> Result<KeygenResult> {
    let public = pub_path(out);
    for p in [out, public.as_path()] {
        if std::fs::symlink_metadata(p).is_ok() {
            return Err(CaError::Exists(p.to_path_buf()));
        }
    }
    let (private, public_line) = crate::signer::generate("jit-break-glass")?;
    files::create_new(out, private.as_bytes(), 0o600)?;
    files::create_new(&public, format!("{public_line}\n").as_bytes(), 0o644)?;
    let key =
        ssh_key::PublicKey::from_openssh(&public_line).map_err(|source| CaError::SshEncoding {
            what: "break-glass public key",
            source,
        })?;
    Ok(KeygenResult {
        private_key: out.to_path_buf(),
        public_key: public,
        fingerprint: jit_common::keys::fingerprint(&key),
        public_line,
    })
}

/// What to sign.
#[derive(Debug, Clone)]
pub struct SignSpec {
    /// The break-glass private key file.
    pub key: PathBuf,
    /// Login name on the hosts.
    pub user: String,
    /// Host selectors.
    pub hosts: Vec<String>,
    /// Window length in seconds, from now.
    pub duration_secs: u64,
    /// Why (written into the grant, shown in logs).
    pub reason: String,
    /// Grant id (default: `bg-` and the time and random digits).
    pub id: Option<String>,
    /// Allow a window longer than [`DEFAULT_MAX_WINDOW_SECS`].
    pub allow_long_window: bool,
    /// Where to write the grant (must not exist).
    pub out: PathBuf,
}

/// What `break-glass sign` wrote.
#[derive(Debug, Serialize)]
pub struct SignResult {
    /// The grant file.
    pub grant_file: PathBuf,
    /// The grant id (what `jit-ca revoke-grant` takes).
    pub id: String,
    /// Window start.
    pub not_before: u64,
    /// Window end.
    pub not_after: u64,
    /// Fingerprint of the signing key.
    pub key_id: String,
}

fn new_id(now: u64) -> String {
    use rand_core::RngCore as _;
    let mut b = [0u8; 6];
    rand_core::OsRng.fill_bytes(&mut b);
    format!("bg-{:08x}{}", now & 0xffff_ffff, hex::encode(b))
}

/// `jit-ca break-glass sign`: signs a sudo grant with the offline key, valid from `now`.
pub fn sign(spec: &SignSpec, now: u64) -> Result<SignResult> {
    if spec.duration_secs == 0 {
        return Err(CaError::Input("--duration must be at least 1s".into()));
    }
    if spec.duration_secs > DEFAULT_MAX_WINDOW_SECS && !spec.allow_long_window {
        return Err(CaError::Input(format!(
            "a {} window is longer than the {} hosts accept from a break-glass grant by default \
             (host.toml break_glass_max_window_secs = {DEFAULT_MAX_WINDOW_SECS}); ask for less and sign \
             a new grant when it ends, or pass --allow-long-window if the hosts were configured \
             for longer windows",
            jit_common::time::format_duration(spec.duration_secs),
            jit_common::time::format_duration(DEFAULT_MAX_WINDOW_SECS),
        )));
    }
    if spec.reason.trim().is_empty() {
        return Err(CaError::Input(
            "--reason is required: say why the break-glass grant is needed (it is logged on the host)"
                .into(),
        ));
    }
    if spec.hosts.is_empty() {
        return Err(CaError::Input(
            "--hosts is required (a host name or glob, e.g. db-1 or 'db-*')".into(),
        ));
    }
    if std::fs::symlink_metadata(&spec.out).is_ok() {
        return Err(CaError::Exists(spec.out.clone()));
    }
    let text = files::read_secret(&spec.key)?;
    let key = PrivateKey::from_openssh(text.as_bytes()).map_err(|e| CaError::Key {
        path: spec.key.clone(),
        detail: format!("not an OpenSSH private key: {e}"),
    })?;
    if key.is_encrypted() {
        return Err(CaError::Key {
            path: spec.key.clone(),
            detail: "is passphrase-protected; `jit-ca break-glass sign` needs it unencrypted \
                     (keep it on offline, encrypted media instead; see docs/break-glass.md)"
                .into(),
        });
    }
    let id = spec.id.clone().unwrap_or_else(|| new_id(now));
    let grant = Grant {
        version: jit_common::grant::VERSION,
        id: id.clone(),
        user: spec.user.clone(),
        role: ROLE.to_string(),
        hosts: spec.hosts.clone(),
        sudo: true,
        not_before: now.into(),
        not_after: now.saturating_add(spec.duration_secs).into(),
        issued_at: now.into(),
        request_id: id.clone(),
        reason: spec.reason.trim().to_string(),
        approvers: Vec::new(),
        ticket: None,
        cert_serial: None,
        session_bound: false,
        key_id: String::new(),
    };
    let doc = grant
        .clone()
        .sign(&key)
        .map_err(|e| CaError::Input(format!("cannot sign this grant: {e}")))?;
    // Hosts parse it with a size limit (16 KiB) that field checks alone do not keep: refuse
    // here, not on a host during the outage.
    jit_common::UnverifiedGrant::parse(&doc).map_err(|e| {
        CaError::Input(format!(
            "hosts would refuse this grant ({e}); give fewer or shorter --hosts or a shorter --reason"
        ))
    })?;
    files::create_new(&spec.out, &doc, 0o644)?;
    Ok(SignResult {
        grant_file: spec.out.clone(),
        id,
        not_before: grant.not_before.as_secs(),
        not_after: grant.not_after.as_secs(),
        key_id: jit_common::keys::fingerprint(key.public_key()),
    })
}

//! Installing an issued certificate: `KEYFILE-cert.pub` next to the key (so plain `ssh`
//! finds it), the grant beside it, and key + certificate into a running ssh-agent.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use ssh_key::{Certificate, PrivateKey};

use super::agent;
use super::config::home_dir;
use super::error::{Error, Result};
use super::identity::{self, KeyFile, Signer};
use jit_api::wire::{IssuedView, RequestView};

/// What `login` (and a waited `request`) did; printed as JSON with `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginReport {
    /// The request as the server shows it.
    pub request: RequestView,
    /// The issued certificate (absent if the request ended without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<IssuedView>,
    /// Where the certificate was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_file: Option<PathBuf>,
    /// Where the grant was written (every role: it carries the host scope, and `sudo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_file: Option<PathBuf>,
    /// Whether the certificate is in the ssh-agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_loaded: Option<bool>,
    /// Why it is not (no agent, agent-only key, ...), or the agent socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_note: Option<String>,
    /// How to use the certificate with `ssh`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_hint: Option<String>,
}

impl LoginReport {
    /// A report for a request that has no certificate.
    pub fn without_certificate(request: RequestView) -> Self {
        Self {
            request,
            certificate: None,
            certificate_file: None,
            grant_file: None,
            agent_loaded: None,
            agent_note: None,
            ssh_hint: None,
        }
    }
}

/// Where the certificate and grant files go for this identity and request.
pub fn destinations(signer: &Signer, request_id: &str) -> Result<(PathBuf, PathBuf)> {
    // The id comes from the server and names files: only the contract's id syntax.
    jit_common::grant::check_id("request id", request_id).map_err(|_| {
        Error::Protocol(format!(
            "the server sent an invalid request id {:?}",
            jit_common::log::sanitize(request_id, 80)
        ))
    })?;
    if let Some(key) = signer.key_path() {
        return Ok((
            with_suffix(&key, "-cert.pub"),
            with_suffix(&key, "-jit.grant"),
        ));
    }
    let home = home_dir().ok_or_else(|| {
        Error::Usage("HOME is not set: cannot decide where to write the certificate".to_string())
    })?;
    let ssh_dir = home.join(".ssh");
    if !ssh_dir.exists() {
        std::fs::create_dir_all(&ssh_dir).map_err(|e| Error::file(&ssh_dir, e))?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&ssh_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::file(&ssh_dir, e))?;
    }
    Ok((
        ssh_dir.join(format!("jit-{request_id}-cert.pub")),
        ssh_dir.join(format!("jit-{request_id}.grant")),
    ))
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Checks the certificate against the identity and writes the files; loads the agent.
pub fn install(
    signer: &Signer,
    request: RequestView,
    issued: IssuedView,
    now: u64,
) -> Result<LoginReport> {
    let line = issued.certificate.trim();
    let cert = Certificate::from_openssh(line).map_err(|e| {
        Error::Protocol(format!(
            "the CA returned a certificate that does not parse: {e}"
        ))
    })?;
    if cert.public_key() != signer.public_key().key_data() {
        return Err(Error::Identity(format!(
            "request {} certifies another key than the one you are using ({}); run jit login with \
             the identity that made the request (--identity KEYFILE)",
            request.id,
            signer.describe()
        )));
    }
    if cert.valid_before() <= now {
        return Err(Error::NotGranted(format!(
            "the certificate of request {} expired at {}; request access again",
            request.id,
            jit_common::time::format_utc(cert.valid_before())
        )));
    }
    let (cert_path, grant_path) = destinations(signer, &request.id)?;
    let mut text = line.to_string();
    text.push('\n');
    jit_common::secure_file::write_atomic(&cert_path, text.as_bytes(), 0o644)
        .map_err(|e| Error::file(&cert_path, format!("cannot write the certificate: {e}")))?;
    let grant_file = match &issued.grant {
        Some(g) => {
            let mut g = g.clone();
            if !g.ends_with('\n') {
                g.push('\n');
            }
            jit_common::secure_file::write_atomic(&grant_path, g.as_bytes(), 0o644)
                .map_err(|e| Error::file(&grant_path, format!("cannot write the grant: {e}")))?;
            Some(grant_path)
        }
        None => None,
    };

    let (agent_loaded, agent_note) = load_agent(signer, &cert, now);
    let user = request.user.clone();
    let ssh_hint = match signer.key_path() {
        Some(key) => format!("ssh -i {} {user}@HOST", key.display()),
        None => format!(
            "ssh -o CertificateFile={} {user}@HOST  (the key stays in your ssh-agent)",
            cert_path.display()
        ),
    };
    Ok(LoginReport {
        request,
        certificate: Some(issued),
        certificate_file: Some(cert_path),
        grant_file,
        agent_loaded: Some(agent_loaded),
        agent_note: Some(agent_note),
        ssh_hint: Some(ssh_hint),
    })
}

/// Adds key + certificate to the running agent, when the private key is at hand.
fn load_agent(signer: &Signer, cert: &Certificate, now: u64) -> (bool, String) {
    let Some(sock) = agent::socket_from_env() else {
        return (
            false,
            "no ssh-agent running (SSH_AUTH_SOCK unset); ssh uses the certificate file".to_string(),
        );
    };
    // The private key: the identity file, or the unencrypted key file next to the
    // agent-held key's .pub.
    let from_file: Option<Box<PrivateKey>> = match signer {
        Signer::File { .. } => None,
        Signer::Agent { .. } => signer
            .key_path()
            .and_then(|p| match identity::read_key_file(&p) {
                Ok(KeyFile::Private(k)) if k.public_key().key_data() == cert.public_key() => {
                    Some(k)
                }
                _ => None,
            }),
    };
    let Some(key) = signer.private_key().or(from_file.as_deref()) else {
        let how = match signer.key_path() {
            Some(k) => format!(
                "ssh -i {} uses it with the agent's key; `ssh-add {}` loads it into the agent",
                k.display(),
                k.display()
            ),
            None => "the agent cannot take a certificate without its private key; ssh uses the \
                     certificate file with the agent's key"
                .to_string(),
        };
        return (false, format!("not loaded into the ssh-agent: {how}"));
    };
    let lifetime = cert
        .valid_before()
        .saturating_sub(now)
        .clamp(1, u64::from(u32::MAX));
    let lifetime = u32::try_from(lifetime).unwrap_or(u32::MAX);
    match agent::add_certificate(&sock, key, cert, lifetime) {
        Ok(()) => (
            true,
            format!(
                "loaded into the ssh-agent at {} until {}",
                sock.display(),
                jit_common::time::format_utc(cert.valid_before())
            ),
        ),
        Err(e) => (false, format!("not loaded into the ssh-agent: {e}")),
    }
}

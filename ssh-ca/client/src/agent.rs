//! Talking to a running ssh-agent (`SSH_AUTH_SOCK`): listing keys, making SSHSIG request
//! signatures with an agent-held key, and loading an issued certificate.
//!
//! Listing and signing use `ssh-agent-client-rs`. That crate cannot add a certificate
//! (its `add_identity` sends only a plain key), so [`add_certificate`] sends the one
//! `SSH_AGENTC_ADD_ID_CONSTRAINED` message itself: protocol framing only (length-prefixed
//! strings, draft-miller-ssh-agent section 3.2), with the key material and certificate
//! bytes encoded by `ssh-key`. No cryptography is done here.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh_agent_client_rs::{Client, Identity};
use ssh_key::{Certificate, HashAlg, PrivateKey, PublicKey, SshSig};
use zeroize::Zeroizing;

use super::error::{Error, Result};
use jit_api::auth;

const SSH_AGENTC_ADD_ID_CONSTRAINED: u8 = 25;
const SSH_AGENT_CONSTRAIN_LIFETIME: u8 = 1;
const SSH_AGENT_SUCCESS: u8 = 6;
const SSH_AGENT_FAILURE: u8 = 5;

/// The agent socket from `SSH_AUTH_SOCK`, if set and non-empty.
pub fn socket_from_env() -> Option<PathBuf> {
    std::env::var_os("SSH_AUTH_SOCK")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

/// A connection to the agent.
pub struct Agent {
    socket: PathBuf,
    client: Client,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("socket", &self.socket)
            .finish()
    }
}

impl Agent {
    /// Connects to the agent at `socket`.
    pub fn connect(socket: &Path) -> Result<Self> {
        let client = Client::connect(socket).map_err(|e| {
            Error::Agent(format!(
                "cannot connect to {} (SSH_AUTH_SOCK): {e}; start one with `eval $(ssh-agent)` \
                 and `ssh-add`, or pass --identity KEYFILE",
                socket.display()
            ))
        })?;
        Ok(Self {
            socket: socket.to_path_buf(),
            client,
        })
    }

    /// The agent's socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The plain public keys the agent holds (certificates are skipped).
    pub fn keys(&mut self) -> Result<Vec<PublicKey>> {
        let ids = self
            .client
            .list_all_identities()
            .map_err(|e| Error::Agent(format!("listing keys failed: {e}")))?;
        Ok(ids
            .into_iter()
            .filter_map(|i| match i {
                Identity::PublicKey(pk) => Some(pk.into_owned()),
                Identity::Certificate(_) => None,
            })
            .collect())
    }

    /// Makes an SSHSIG over `msg` in the API namespace with the agent-held `key`.
    ///
    /// The agent signs the SSHSIG "signed data" blob ([`SshSig::signed_data`]); the raw
    /// signature is wrapped with [`SshSig::new`], exactly as `SshSig::sign` does with a
    /// local key, then checked against `key` before use.
    pub fn sign_sshsig(&mut self, key: &PublicKey, msg: &[u8]) -> Result<SshSig> {
        let hash = HashAlg::Sha512;
        let data = SshSig::signed_data(auth::NAMESPACE, hash, msg)
            .map_err(|e| Error::Agent(format!("cannot build the data to sign: {e}")))?;
        let raw = self.client.sign(key, &data).map_err(|e| {
            Error::Agent(format!(
                "signing with {} failed: {e} (is the key still loaded? `ssh-add -l`; a \
                 confirmation-constrained key needs you to confirm)",
                key.fingerprint(HashAlg::Sha256)
            ))
        })?;
        let sig = SshSig::new(key.key_data().clone(), auth::NAMESPACE, hash, raw)
            .map_err(|e| Error::Agent(format!("cannot wrap the agent's signature: {e}")))?;
        if !auth::verify(key, msg, &sig) {
            return Err(Error::Agent(format!(
                "the agent returned a signature that does not verify with {}",
                key.fingerprint(HashAlg::Sha256)
            )));
        }
        Ok(sig)
    }
}

/// Loads `key` + `cert` into the agent at `socket`, to be forgotten after `lifetime_secs`.
///
/// Only Ed25519 keys are supported (the agent needs the private key alongside the
/// certificate); other types return an error saying to use `ssh-add KEYFILE`.
pub fn add_certificate(
    socket: &Path,
    key: &PrivateKey,
    cert: &Certificate,
    lifetime_secs: u32,
) -> Result<()> {
    let Some(kp) = key.key_data().ed25519() else {
        return Err(Error::Agent(format!(
            "loading a {} key with its certificate is not supported by jit; run `ssh-add KEYFILE` \
             (it loads KEYFILE-cert.pub too)",
            key.algorithm()
        )));
    };
    if cert.public_key() != key.public_key().key_data() {
        return Err(Error::Agent(
            "the certificate is for another key than the identity".to_string(),
        ));
    }
    let cert_blob = cert
        .to_bytes()
        .map_err(|e| Error::Agent(format!("cannot encode the certificate: {e}")))?;
    let cert_type = cert.algorithm().to_certificate_type();
    let mut msg = Zeroizing::new(Vec::with_capacity(cert_blob.len() + 256));
    msg.push(SSH_AGENTC_ADD_ID_CONSTRAINED);
    put_string(&mut msg, cert_type.as_bytes())?;
    put_string(&mut msg, &cert_blob)?;
    put_string(&mut msg, kp.public.as_ref())?;
    put_string(&mut msg, Zeroizing::new(kp.to_bytes()).as_ref())?;
    put_string(&mut msg, cert.key_id().as_bytes())?;
    msg.push(SSH_AGENT_CONSTRAIN_LIFETIME);
    msg.extend_from_slice(&lifetime_secs.to_be_bytes());

    let fail = |e: std::io::Error| Error::Agent(format!("{}: {e}", socket.display()));
    let mut s = UnixStream::connect(socket).map_err(fail)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(fail)?;
    let len =
        u32::try_from(msg.len()).map_err(|_| Error::Agent("message too large".to_string()))?;
    s.write_all(&len.to_be_bytes()).map_err(fail)?;
    s.write_all(&msg).map_err(fail)?;
    let mut hdr = [0u8; 5];
    s.read_exact(&mut hdr).map_err(fail)?;
    match hdr[4] {
        SSH_AGENT_SUCCESS => Ok(()),
        SSH_AGENT_FAILURE => Err(Error::Agent(
            "the agent refused the certificate (a locked agent, or one that does not accept \
             certificates); the certificate file is still written"
                .to_string(),
        )),
        other => Err(Error::Agent(format!(
            "unexpected agent answer type {other}"
        ))),
    }
}

fn put_string(buf: &mut Vec<u8>, s: &[u8]) -> Result<()> {
    let len = u32::try_from(s.len()).map_err(|_| Error::Agent("field too large".to_string()))?;
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(s);
    Ok(())
}

//! Request signing: every authenticated API call carries an SSHSIG, made with the caller's
//! registered SSH key (a key file or the ssh-agent), over a canonical message.
//!
//! Headers:
//! ```text
//! X-Jit-Audience:   SHA256:...                   the CA the call is for (scheme v2, see below)
//! X-Jit-Key:        ssh-ed25519 AAAA...          the caller's public key (no comment)
//! X-Jit-Timestamp:  1795440000                   unix seconds; the server accepts +-MAX_SKEW_SECS
//! X-Jit-Nonce:      32 lowercase hex chars       random; the server rejects a nonce seen before
//! X-Jit-Signature:  base64(SSHSIG PEM text)      namespace NAMESPACE, over message() below
//! ```
//! The signed message, scheme v2 (each line ends with `\n`):
//! ```text
//! jit-api-v2
//! SHA256:q3Xo...                    the audience: the SHA-256 fingerprint of the CA's first
//!                                   user-CA public key (the first line of GET /v1/ca.pub)
//! POST
//! /v1/requests?filter=mine          path and query exactly as sent
//! e3b0c442...                       sha256(body) in lowercase hex
//! 1795440000
//! 9f86d081884c7d659a2feaa0c55ad015
//! ```
//! The audience binds a call to one CA: a call signed for staging is refused by production
//! (`wrong_audience`). Scheme v1 (no audience line, first line `jit-api-v1`, no
//! `X-Jit-Audience` header) is refused (`legacy_signature`) unless the operator sets
//! `accept_v1_signatures = true` in config.toml for a transition.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

/// SSHSIG namespace of API request signatures.
pub const NAMESPACE: &str = "jit-api@jit";
/// Header: the audience (the CA's identity) the call is signed for; its presence selects
/// scheme v2.
pub const HDR_AUDIENCE: &str = "x-jit-audience";
/// Longest audience accepted (a SHA-256 fingerprint is 50 characters).
pub const MAX_AUDIENCE_LEN: usize = 100;
/// Header: the caller's public key.
pub const HDR_KEY: &str = "x-jit-key";
/// Header: unix seconds.
pub const HDR_TIMESTAMP: &str = "x-jit-timestamp";
/// Header: random hex nonce.
pub const HDR_NONCE: &str = "x-jit-nonce";
/// Header: base64 of the SSHSIG PEM text.
pub const HDR_SIGNATURE: &str = "x-jit-signature";
/// Accepted clock difference between client and server, in seconds.
pub const MAX_SKEW_SECS: u64 = 120;
/// Nonce length in hex characters.
pub const NONCE_HEX_LEN: usize = 32;

/// The exact bytes a client signs and the server verifies (scheme v2, bound to `audience`,
/// see [`audience_of`]).
pub fn message(
    audience: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    timestamp: u64,
    nonce: &str,
) -> Vec<u8> {
    let digest = hex::encode(Sha256::digest(body));
    format!("jit-api-v2\n{audience}\n{method}\n{path_and_query}\n{digest}\n{timestamp}\n{nonce}\n")
        .into_bytes()
}

/// The legacy scheme v1 message (not bound to a CA); the server accepts it only when
/// `accept_v1_signatures = true`.
pub fn message_v1(
    method: &str,
    path_and_query: &str,
    body: &[u8],
    timestamp: u64,
    nonce: &str,
) -> Vec<u8> {
    let digest = hex::encode(Sha256::digest(body));
    format!("jit-api-v1\n{method}\n{path_and_query}\n{digest}\n{timestamp}\n{nonce}\n").into_bytes()
}

/// The audience naming a CA: the SHA-256 fingerprint of its first user-CA public key
/// (`SHA256:...`, as `ssh-keygen -l` prints it).
pub fn audience_of(ca_key: &PublicKey) -> String {
    ca_key.fingerprint(HashAlg::Sha256).to_string()
}

/// The audience from the text of `GET /v1/ca.pub` (its first key), if any.
pub fn audience_from_ca_pub(text: &str) -> Option<String> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))?;
    PublicKey::from_openssh(line).ok().map(|k| audience_of(&k))
}

/// Encodes a signature for the header.
pub fn encode_signature(sig: &SshSig) -> Result<String, ssh_key::Error> {
    Ok(STANDARD.encode(sig.to_pem(LineEnding::LF)?))
}

/// Decodes the header value.
pub fn decode_signature(value: &str) -> Option<SshSig> {
    let pem = STANDARD.decode(value.trim()).ok()?;
    let pem = String::from_utf8(pem).ok()?;
    SshSig::from_pem(pem).ok()
}

/// Signs with a private key (the `--identity` key file path).
pub fn sign_with_key(key: &PrivateKey, msg: &[u8]) -> Result<SshSig, ssh_key::Error> {
    key.sign(NAMESPACE, HashAlg::Sha512, msg)
}

/// Signs with any signing key (the load generator signs through a
/// [`crate::signer::ReadyKey`], which does not re-derive the Ed25519 key every call).
pub fn sign_with<S: ssh_key::SigningKey>(key: &S, msg: &[u8]) -> Result<SshSig, ssh_key::Error> {
    SshSig::sign(key, NAMESPACE, HashAlg::Sha512, msg)
}

/// Verifies a request signature made by `key`.
pub fn verify(key: &PublicKey, msg: &[u8], sig: &SshSig) -> bool {
    sig.public_key() == key.key_data() && key.verify(NAMESPACE, msg, sig).is_ok()
}

/// The public key as sent in [`HDR_KEY`]: algorithm and base64, no comment.
pub fn key_header(key: &PublicKey) -> Result<String, ssh_key::Error> {
    let mut k = key.clone();
    k.set_comment("");
    Ok(k.to_openssh()?.trim().to_string())
}

/// A fresh nonce: 128 random bits from the OS. A nonce only has to be unique (the server
/// refuses one it has seen), so if the OS generator ever fails this falls back to a SHA-256
/// of the time in nanoseconds, the process id and a per-process counter rather than sending
/// a constant.
pub fn new_nonce() -> String {
    let mut b = [0u8; NONCE_HEX_LEN / 2];
    if getrandom_fill(&mut b).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        // Not a reading of the time: entropy for the fallback nonce only.
        #[allow(clippy::disallowed_methods)]
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut h = Sha256::new();
        h.update(nanos.to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        b.copy_from_slice(&h.finalize()[..NONCE_HEX_LEN / 2]);
    }
    hex::encode(b)
}

fn getrandom_fill(buf: &mut [u8]) -> Result<(), rand_core::Error> {
    use rand_core::RngCore as _;
    rand_core::OsRng.try_fill_bytes(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let key = PrivateKey::random(&mut rand_core::OsRng, ssh_key::Algorithm::Ed25519).unwrap();
        let msg = message("SHA256:a", "POST", "/v1/requests", b"{}", 10, &new_nonce());
        let sig = sign_with_key(&key, &msg).unwrap();
        let enc = encode_signature(&sig).unwrap();
        let dec = decode_signature(&enc).unwrap();
        assert!(verify(key.public_key(), &msg, &dec));
        let other = message("SHA256:a", "POST", "/v1/requests", b"{ }", 10, "00");
        assert!(!verify(key.public_key(), &other, &dec));
        assert_eq!(new_nonce().len(), NONCE_HEX_LEN);
    }

    #[test]
    fn audience_is_signed() {
        let key = PrivateKey::random(&mut rand_core::OsRng, ssh_key::Algorithm::Ed25519).unwrap();
        let nonce = new_nonce();
        let msg = message("SHA256:staging", "GET", "/v1/whoami", b"", 10, &nonce);
        let sig = sign_with_key(&key, &msg).unwrap();
        let prod = message("SHA256:prod", "GET", "/v1/whoami", b"", 10, &nonce);
        assert!(!verify(key.public_key(), &prod, &sig));
        let v1 = message_v1("GET", "/v1/whoami", b"", 10, &nonce);
        assert!(!verify(key.public_key(), &v1, &sig));
        let ca_pub = format!("{}\n", key.public_key().to_openssh().unwrap());
        assert_eq!(
            audience_from_ca_pub(&ca_pub).unwrap(),
            audience_of(key.public_key())
        );
        assert!(audience_from_ca_pub("not a key\n").is_none());
    }
}

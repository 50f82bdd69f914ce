//! The public keys a verifier trusts.

use ssh_key::{HashAlg, PublicKey, SshSig};

use crate::error::{Error, Result};

/// A set of trusted public keys (for grants: the CA's grant keys; several may be trusted at
/// once so that keys can be rotated without downtime).
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: Vec<PublicKey>,
}

impl KeyRing {
    /// An empty ring: nothing verifies against it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key.
    pub fn push(&mut self, key: PublicKey) {
        if !self.keys.iter().any(|k| k.key_data() == key.key_data()) {
            self.keys.push(key);
        }
    }

    /// Parses OpenSSH public key lines (`ssh-ed25519 AAAA... comment`), one per line; blank
    /// lines and `#` comments are skipped. An `authorized_keys`/`allowed_signers`-style
    /// prefix is not accepted: keep these files plain.
    pub fn from_openssh_lines(text: &str) -> Result<Self> {
        let mut ring = Self::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = PublicKey::from_openssh(line).map_err(|e| Error::BadKey {
                detail: format!("line {}: {e}", n + 1),
            })?;
            ring.push(key);
        }
        Ok(ring)
    }

    /// The keys, in insertion order.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// True if no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The trusted key that made `sig`, if any.
    pub fn find_signer(&self, sig: &SshSig) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.key_data() == sig.public_key())
    }

    /// Verifies `sig` over `msg` in `namespace` against the ring; returns the signer's
    /// fingerprint (`SHA256:...`).
    pub fn verify(&self, namespace: &'static str, msg: &[u8], sig: &SshSig) -> Result<String> {
        if sig.namespace() != namespace {
            return Err(Error::WrongNamespace {
                expected: namespace,
                found: sig.namespace().to_string(),
            });
        }
        let Some(key) = self.find_signer(sig) else {
            return Err(Error::UntrustedKey {
                fingerprint: sig.public_key().fingerprint(HashAlg::Sha256).to_string(),
            });
        };
        key.verify(namespace, msg, sig)
            .map_err(|_| Error::BadSignature)?;
        Ok(fingerprint(key))
    }
}

/// `SHA256:...`, the form `ssh-keygen -l` prints and grants carry as `key_id`.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

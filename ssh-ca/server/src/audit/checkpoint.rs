//! Signed audit checkpoints: `(seq, hash, time)` of the newest audit record, signed by the
//! CA's grant key in the SSHSIG style of grants (`common::envelope`) under their own namespace
//! [`NAMESPACE`], so a checkpoint can never be mistaken for a grant or a revocation list.
//!
//! ```text
//! {
//!   "version": 1,
//!   "seq": 42,
//!   "hash": "ab12...",            <- the hash of audit record 42
//!   "time": 1795435200,           <- when the CA signed it
//!   "key_id": "SHA256:..."        <- the signer's fingerprint
//! }
//! -----BEGIN SSH SIGNATURE-----
//! ...
//! -----END SSH SIGNATURE-----
//! ```
//!
//! The hash chain alone has no key: whoever can write `jit.db` can rewrite a record, re-chain
//! everything after it and cut the tail, and the chain still verifies. A checkpoint kept
//! outside the database (a monitor fetching `GET /v1/audit/checkpoint`, syslog) names a record
//! the chain must still contain with exactly that hash; forging a new one needs the CA's key.
//! `ssh-keygen -Y verify -n jit-audit-checkpoint@jit` checks the signature (docs/api.md).

use serde::{Deserialize, Serialize};
use ssh_key::SigningKey;

use jit_common::KeyRing;
use jit_common::envelope::Envelope;

/// The SSHSIG namespace of audit checkpoints.
pub const NAMESPACE: &str = "jit-audit-checkpoint@jit";
/// The format version.
pub const VERSION: u64 = 1;
/// Largest checkpoint document accepted.
pub const MAX_SIZE: usize = 4096;

/// What a checkpoint states. Field order is the order in the signed body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Always [`VERSION`].
    pub version: u64,
    /// Sequence number of the newest audit record.
    pub seq: u64,
    /// Its hash (64 lowercase hex characters).
    pub hash: String,
    /// When the checkpoint was signed (Unix seconds).
    pub time: u64,
    /// Fingerprint (`SHA256:...`) of the signing key.
    pub key_id: String,
}

fn hash_ok(h: &str) -> bool {
    h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Checkpoint {
    /// Signs `(seq, hash, time)` with `key`; returns the document.
    pub fn sign<S: SigningKey>(
        seq: u64,
        hash: &str,
        time: u64,
        key: &S,
    ) -> Result<Vec<u8>, String> {
        if !hash_ok(hash) {
            return Err(format!("{hash:?} is not a record hash"));
        }
        let body = Self {
            version: VERSION,
            seq,
            hash: hash.to_string(),
            time,
            key_id: jit_common::keys::fingerprint(&ssh_key::PublicKey::from(key.public_key())),
        };
        let mut bytes = serde_json::to_vec_pretty(&body).map_err(|e| e.to_string())?;
        bytes.push(b'\n');
        Envelope::seal(&bytes, key, NAMESPACE).map_err(|e| e.to_string())
    }

    /// Parses a checkpoint document and checks its signature against `trusted`.
    pub fn verify(doc: &[u8], trusted: &KeyRing) -> Result<Self, String> {
        let env = Envelope::parse(doc, MAX_SIZE)
            .map_err(|e| format!("not a signed audit checkpoint: {e}"))?;
        let signer = trusted
            .verify(NAMESPACE, &env.body, &env.signature)
            .map_err(|e| {
                format!("the checkpoint's signature does not verify against the CA's keys: {e}")
            })?;
        let cp: Self = serde_json::from_slice(&env.body)
            .map_err(|e| format!("the checkpoint's body is malformed: {e}"))?;
        if cp.version != VERSION {
            return Err(format!(
                "checkpoint version {} is not supported (this jit-ca reads {VERSION})",
                cp.version
            ));
        }
        if !hash_ok(&cp.hash) {
            return Err("the checkpoint's hash is not 64 lowercase hex characters".into());
        }
        if cp.key_id != signer {
            return Err(format!(
                "the checkpoint names key {} but was signed by {signer}",
                cp.key_id
            ));
        }
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ssh_key::{Algorithm, PrivateKey};

    #[test]
    fn signs_and_verifies_only_against_its_key_and_namespace() {
        let key = PrivateKey::random(&mut rand_core::OsRng, Algorithm::Ed25519).unwrap();
        let other = PrivateKey::random(&mut rand_core::OsRng, Algorithm::Ed25519).unwrap();
        let h = "ab".repeat(32);
        let doc = Checkpoint::sign(7, &h, 100, &key).unwrap();
        let mut ring = KeyRing::new();
        ring.push(key.public_key().clone());
        let cp = Checkpoint::verify(&doc, &ring).unwrap();
        assert_eq!((cp.seq, cp.hash.as_str(), cp.time), (7, h.as_str(), 100));
        let mut wrong = KeyRing::new();
        wrong.push(other.public_key().clone());
        assert!(Checkpoint::verify(&doc, &wrong).is_err());
        let edited = String::from_utf8(doc)
            .unwrap()
            .replace("\"seq\": 7", "\"seq\": 8");
        assert!(Checkpoint::verify(edited.as_bytes(), &ring).is_err());
        // A grant-namespace signature over the same body is not a checkpoint.
        let body = b"{\n  \"version\": 1\n}\n";
        let grant_ns = Envelope::seal(body, &key, jit_common::grant::NAMESPACE).unwrap();
        assert!(Checkpoint::verify(&grant_ns, &ring).is_err());
    }
}

//! The CA's private keys, parsed once at startup, and what they sign: OpenSSH user
//! certificates and grants. Keys are never logged (`Debug` shows fingerprints only) and
//! zeroize on drop (ssh-key's `PrivateKey`).
//!
//! A grant leaves here as a [`SignedGrant`] ([`Signer::sign_grant`]), the type hosts parse
//! it back into, and enters a certificate as that type ([`CertSpec::grant`]) under the one
//! extension name, [`jit_common::grant::CERT_EXTENSION`].

use std::path::{Path, PathBuf};

use jit_common::{Grant, SignedGrant};
use rand_core::OsRng;
use ssh_key::certificate::{Builder, CertType};
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey, Signature};

/// A private key ready to sign. ssh-key's own `Signer` for an Ed25519 `PrivateKey` rebuilds
/// the `ed25519_dalek::SigningKey` (a scalar multiplication and a point decompression) at
/// every signature, which was a quarter of the CA's instructions per certificate; this keeps
/// the derived key (zeroized on drop by ed25519-dalek) next to the parsed one. Other key
/// types sign through ssh-key as before.
pub struct ReadyKey {
    key: PrivateKey,
    ed25519: Option<ed25519_dalek::SigningKey>,
    public: KeyData,
    /// `jit_common::keys::fingerprint` of the public half, computed once (grants name it as
    /// their `key_id`, issuance records as `ca_key`).
    fingerprint: String,
}

impl ReadyKey {
    /// Parses once what every signature needs (the Ed25519 signing key, derived and checked
    /// against the stored public half).
    pub fn new(key: PrivateKey) -> Result<Self> {
        let ed25519 = match key.key_data().ed25519() {
            Some(pair) => Some(ed25519_dalek::SigningKey::try_from(pair).map_err(|source| {
                SignerError::KeyHalves {
                    fingerprint: key.public_key().fingerprint(HashAlg::Sha256).to_string(),
                    source,
                }
            })?),
            None => None,
        };
        let public = key.public_key().key_data().clone();
        let fingerprint = jit_common::keys::fingerprint(key.public_key());
        Ok(Self {
            key,
            ed25519,
            public,
            fingerprint,
        })
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    /// The public half's SHA-256 fingerprint (`SHA256:...`), computed once.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

impl std::fmt::Debug for ReadyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadyKey")
            .field(
                "fingerprint",
                &self.public_key().fingerprint(HashAlg::Sha256).to_string(),
            )
            .finish_non_exhaustive()
    }
}

impl ed25519_dalek::Signer<Signature> for ReadyKey {
    fn try_sign(
        &self,
        msg: &[u8],
    ) -> std::result::Result<Signature, ed25519_dalek::SignatureError> {
        match &self.ed25519 {
            Some(sk) => {
                let sig = ed25519_dalek::Signer::try_sign(sk, msg)?;
                Signature::new(Algorithm::Ed25519, sig.to_bytes().to_vec())
                    .map_err(|_| ed25519_dalek::SignatureError::new())
            }
            None => self.key.try_sign(msg),
        }
    }
}

impl From<&ReadyKey> for KeyData {
    fn from(k: &ReadyKey) -> KeyData {
        k.public.clone()
    }
}

pub use crate::error::SignerError;
use crate::error::{CaError, Result};

/// The loaded keys. The first of each list signs; all are published.
pub struct Signer {
    user_ca: Vec<ReadyKey>,
    grant: Vec<ReadyKey>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fps = |v: &[ReadyKey]| {
            v.iter()
                .map(|k| k.public_key().fingerprint(HashAlg::Sha256).to_string())
                .collect::<Vec<_>>()
        };
        f.debug_struct("Signer")
            .field("user_ca", &fps(&self.user_ca))
            .field("grant", &fps(&self.grant))
            .finish()
    }
}

/// What a certificate says.
#[derive(Debug, Clone)]
pub struct CertSpec<'a> {
    pub public_key: &'a PublicKey,
    pub serial: u64,
    pub key_id: String,
    pub principals: &'a [String],
    pub valid_after: u64,
    pub valid_before: u64,
    pub extensions: &'a [String],
    pub critical_options: &'a std::collections::BTreeMap<String, String>,
    /// The grant the certificate carries, in its `jit-grant@jit` extension.
    pub grant: Option<&'a SignedGrant>,
}

/// Generates a new Ed25519 key in OpenSSH private key format.
pub fn generate(comment: &str) -> Result<(zeroize::Zeroizing<String>, String)> {
    let mut key =
        PrivateKey::random(&mut OsRng, Algorithm::Ed25519).map_err(SignerError::Generate)?;
    key.set_comment(comment);
    let private = key
        .to_openssh(LineEnding::LF)
        .map_err(SignerError::Encode)?;
    let public = key.public_key().to_openssh().map_err(SignerError::Encode)?;
    Ok((private, public))
}

fn load_key(path: &Path) -> Result<PrivateKey> {
    let text = crate::files::read_secret(path)?;
    let key = PrivateKey::from_openssh(text.as_bytes()).map_err(|e| CaError::Key {
        path: path.to_path_buf(),
        detail: format!("not an OpenSSH private key: {e}"),
    })?;
    if key.is_encrypted() {
        return Err(CaError::Key {
            path: path.to_path_buf(),
            detail: "is passphrase-protected; the service needs it unencrypted (ssh-keygen -p -N '' -f KEY), protected by file permissions".into(),
        });
    }
    Ok(key)
}

impl Signer {
    /// Loads and parses the keys (once; the service keeps them in memory).
    pub fn load(user_ca: &[PathBuf], grant: &[PathBuf]) -> Result<Self> {
        let load_all = |v: &[PathBuf]| v.iter().map(|p| load_key(p)).collect::<Result<Vec<_>>>();
        Self::from_keys(load_all(user_ca)?, load_all(grant)?)
    }

    /// From parsed keys.
    pub fn from_keys(user_ca: Vec<PrivateKey>, grant: Vec<PrivateKey>) -> Result<Self> {
        if user_ca.is_empty() || grant.is_empty() {
            return Err(SignerError::MissingKeys.into());
        }
        let ready =
            |v: Vec<PrivateKey>| v.into_iter().map(ReadyKey::new).collect::<Result<Vec<_>>>();
        Ok(Self {
            user_ca: ready(user_ca)?,
            grant: ready(grant)?,
        })
    }

    /// The key that signs certificates.
    pub fn ca_key(&self) -> &ReadyKey {
        &self.user_ca[0]
    }

    /// The key that signs grants and revocation lists.
    pub fn grant_key(&self) -> &ReadyKey {
        &self.grant[0]
    }

    /// All user-CA public keys.
    pub fn ca_public_keys(&self) -> Vec<PublicKey> {
        self.user_ca
            .iter()
            .map(|k| k.public_key().clone())
            .collect()
    }

    /// All grant public keys.
    pub fn grant_public_keys(&self) -> Vec<PublicKey> {
        self.grant.iter().map(|k| k.public_key().clone()).collect()
    }

    /// Signs a grant with the grant key (`key_id`: its fingerprint, computed once): what this
    /// returns is what hosts parse from its bytes (`Signed::sign_as`), so every host accepts
    /// it as well-formed. [`jit_common::Error::Signing`] is a key problem;
    /// any other error means hosts would refuse the grant (too large, a field they reject).
    pub fn sign_grant(&self, grant: Grant) -> jit_common::Result<SignedGrant> {
        let key = self.grant_key();
        SignedGrant::sign_as(grant, key, key.fingerprint.clone())
    }

    /// Signs a user certificate; returns the `ssh-ed25519-cert-v01@openssh.com AAAA... key-id` line.
    pub fn certify(&self, spec: &CertSpec<'_>) -> Result<String> {
        let err = |e: ssh_key::Error| CaError::from(SignerError::Certificate(e));
        let mut b = Builder::new_with_random_nonce(
            &mut OsRng,
            spec.public_key.key_data().clone(),
            spec.valid_after,
            spec.valid_before,
        )
        .map_err(err)?;
        b.serial(spec.serial).map_err(err)?;
        b.key_id(spec.key_id.clone()).map_err(err)?;
        b.cert_type(CertType::User).map_err(err)?;
        for p in spec.principals {
            b.valid_principal(p.clone()).map_err(err)?;
        }
        for e in spec.extensions {
            b.extension(e.clone(), "").map_err(err)?;
        }
        if let Some(grant) = spec.grant {
            b.extension(jit_common::grant::CERT_EXTENSION, grant.doc())
                .map_err(err)?;
        }
        for (k, v) in spec.critical_options {
            b.critical_option(k.clone(), v.clone()).map_err(err)?;
        }
        b.comment(spec.key_id.clone()).map_err(err)?;
        let cert = b.sign(self.ca_key()).map_err(err)?;
        cert.to_openssh().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cached fingerprint is the one `jit_common::keys::fingerprint` computes, and a
    /// grant signed with it names the grant key as hosts check it.
    #[test]
    fn cached_fingerprints_name_the_keys() {
        let ca = PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap();
        let gk = PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap();
        let signer = Signer::from_keys(vec![ca.clone()], vec![gk.clone()]).unwrap();
        assert_eq!(
            signer.ca_key().fingerprint(),
            jit_common::keys::fingerprint(ca.public_key())
        );
        assert_eq!(
            signer.grant_key().fingerprint(),
            jit_common::keys::fingerprint(gk.public_key())
        );
        let g = signer.sign_grant(grant(3)).unwrap();
        assert_eq!(
            g.doc(),
            SignedGrant::sign(grant(3), &gk).unwrap().doc(),
            "the same bytes as signing with the key itself"
        );
    }

    #[test]
    fn ready_keys_sign_exactly_like_ssh_keys_own_signer() {
        let ca = PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap();
        let ready = ReadyKey::new(ca.clone()).unwrap();
        // Ed25519 is deterministic: the same bytes as ssh-key's own path.
        let msg = b"jit-api-v1\n";
        let sig = jit_api::auth::sign_with(&ready, msg).unwrap();
        let own = jit_api::auth::sign_with_key(&ca, msg).unwrap();
        assert_eq!(sig.signature_bytes(), own.signature_bytes());
        assert!(jit_api::auth::verify(ca.public_key(), msg, &sig));

        // A certificate signed through it validates against the CA's fingerprint.
        let signer = Signer::from_keys(vec![ca.clone()], vec![ca.clone()]).unwrap();
        let user = PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap();
        let principals = vec!["alice".to_string()];
        let line = signer
            .certify(&CertSpec {
                public_key: user.public_key(),
                serial: 7,
                key_id: "jit:r-1:alice".into(),
                principals: &principals,
                valid_after: 1_000,
                valid_before: 2_000,
                extensions: &[],
                critical_options: &std::collections::BTreeMap::new(),
                grant: None,
            })
            .unwrap();
        let cert = ssh_key::Certificate::from_openssh(&line).unwrap();
        let fp = ca.public_key().fingerprint(HashAlg::Sha256);
        cert.validate_at(1_500, [&fp]).unwrap();
        assert_eq!(cert.serial(), 7);
        // ... and not against another CA.
        let other = PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap();
        let other_fp = other.public_key().fingerprint(HashAlg::Sha256);
        assert!(cert.validate_at(1_500, [&other_fp]).is_err());
    }

    fn grant(serial: u64) -> Grant {
        Grant {
            version: jit_common::grant::VERSION,
            id: format!("r-1.{serial}"),
            user: "alice".into(),
            role: "db-admin".into(),
            hosts: vec!["db-*".into()],
            sudo: true,
            not_before: 1_000.into(),
            not_after: 2_000.into(),
            issued_at: 1_000.into(),
            request_id: "r-1".into(),
            reason: "INC-1".into(),
            approvers: vec![],
            ticket: None,
            cert_serial: Some(serial),
            session_bound: false,
            key_id: String::new(),
        }
    }

    /// The grant the signer makes is the one the certificate carries and the one a host
    /// reads back out of it, under the one extension name.
    #[test]
    fn the_signed_grant_travels_in_the_certificate_as_is() {
        let ca = PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap();
        let gk = PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap();
        let signer = Signer::from_keys(vec![ca.clone()], vec![gk.clone()]).unwrap();
        let signed = signer.sign_grant(grant(7)).unwrap();
        let user = PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap();
        let line = signer
            .certify(&CertSpec {
                public_key: user.public_key(),
                serial: 7,
                key_id: "jit:r-1:alice".into(),
                principals: &["alice".to_string()],
                valid_after: 1_000,
                valid_before: 2_000,
                extensions: &[],
                critical_options: &std::collections::BTreeMap::new(),
                grant: Some(&signed),
            })
            .unwrap();
        let cert = ssh_key::Certificate::from_openssh(&line).unwrap();
        let carried = cert
            .extensions()
            .get(jit_common::grant::CERT_EXTENSION)
            .unwrap();
        assert_eq!(carried, signed.doc());
        let back = SignedGrant::parse(carried.as_bytes()).unwrap();
        assert_eq!(back.claims_unverified(), signed.claims_unverified());
        let mut ring = jit_common::KeyRing::new();
        ring.push(gk.public_key().clone());
        let v = back.verify_at(1_500, &ring, 0).unwrap();
        assert_eq!(v.grant().cert_serial, Some(7));
        assert_eq!(v.signer(), jit_common::keys::fingerprint(gk.public_key()));
    }

    #[test]
    fn a_grant_hosts_would_refuse_is_not_signed() {
        let k = PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap();
        let signer = Signer::from_keys(vec![k.clone()], vec![k]).unwrap();
        let mut g = grant(1);
        g.hosts = (0..jit_common::grant::MAX_HOSTS)
            .map(|i| format!("{i:02}{}", "h".repeat(250)))
            .collect();
        assert!(matches!(
            signer.sign_grant(g),
            Err(jit_common::Error::Oversized { .. })
        ));
    }

    #[test]
    fn signer_errors_keep_their_messages_and_sources() {
        let e = CaError::from(SignerError::MissingKeys);
        assert_eq!(
            e.to_string(),
            "at least one user-CA key and one grant key are required"
        );
        assert!(matches!(
            Signer::from_keys(vec![], vec![]),
            Err(CaError::Signer(SignerError::MissingKeys))
        ));
        let e = SignerError::Encode(ssh_key::Error::AlgorithmUnknown);
        assert!(e.to_string().starts_with("key encoding failed: "));
        assert!(std::error::Error::source(&e).is_some());
        assert!(std::error::Error::source(&SignerError::MissingKeys).is_none());
    }

    /// `Debug` of the keys names fingerprints only, never key material.
    #[test]
    fn debug_shows_fingerprints_only() {
        let k = PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap();
        let signer = Signer::from_keys(vec![k.clone()], vec![k.clone()]).unwrap();
        let shown = format!("{signer:?} {:?}", signer.grant_key());
        let fp = k.public_key().fingerprint(HashAlg::Sha256).to_string();
        assert!(shown.contains(&fp), "{shown}");
        let private = k.to_openssh(LineEnding::LF).unwrap();
        for line in private.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!shown.contains(line), "{shown}");
        }
        let seed = k.key_data().ed25519().unwrap().private.to_bytes();
        assert!(!shown.contains(&format!("{seed:?}")));
        assert!(!shown.contains(&hex::encode(seed)));
    }
}

//! The signed revocation list: revoked grant ids and certificate serials.
//!
//! Each list carries a `sequence` that only grows and an `issued_at` time. Hosts keep the
//! newest list they have seen (refusing to go back to a lower sequence) and deny sudo when
//! their list is older than their staleness bound ([`DEFAULT_MAX_AGE_SECS`] by default).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use ssh_key::{PublicKey, SigningKey};

use crate::envelope::{Envelope, MAX_REVOCATION_LIST_SIZE, parse_body, split_body};
use crate::error::{Error, Result};
use crate::grant::check_id;
use crate::keys::{KeyRing, fingerprint};
use crate::record::{KeyringDigest, Kind, TrustedRecord};
use crate::time::UnixTime;

/// The SSHSIG namespace of revocation lists.
pub const NAMESPACE: &str = "jit-revocations@jit";

/// Hosts' default staleness bound (`revocation_max_age_secs` in host.toml): 12 hours. A host
/// whose newest list is older denies every grant except break-glass ones, so a revocation
/// reaches (or locks down) every host within this time even if its sync is blocked, while a
/// CA outage of a few hours goes unnoticed by users. Shared by `jit-ca host-config` and the
/// host, so both write and assume the same value.
pub const DEFAULT_MAX_AGE_SECS: u64 = 12 * 3600;

/// The longest interval between two runs of `jit-host-sync.timer` (`OnUnitActiveSec=5min`
/// plus `RandomizedDelaySec=30s`).
pub const HOST_SYNC_PERIOD_SECS: u64 = 5 * 60 + 30;

/// The smallest sensible staleness bound for a CA that re-signs its list every
/// `refresh_secs` (`revocation_refresh`): a list may be that old when fetched, and one sync
/// may be missed, so anything lower makes hosts deny while everything works.
pub fn min_max_age_secs(refresh_secs: u64) -> u64 {
    refresh_secs.saturating_add(2 * HOST_SYNC_PERIOD_SECS)
}

/// A warning when a host's staleness bound `max_age_secs` conflicts with the CA's
/// `revocation_refresh` (`refresh_secs`), for `jit-ca policy check`, `jit-ca host-config`
/// and `jit-host check`.
pub fn max_age_conflict(max_age_secs: u64, refresh_secs: u64) -> Option<String> {
    let min = min_max_age_secs(refresh_secs);
    (max_age_secs < min).then(|| {
        format!(
            "revocation_max_age_secs = {max_age_secs} is less than the CA's revocation_refresh ({refresh_secs}s) plus two sync periods ({}s): hosts would deny while the CA works; raise it to at least {min} (default {DEFAULT_MAX_AGE_SECS}) or lower revocation_refresh",
            2 * HOST_SYNC_PERIOD_SECS
        )
    })
}

const FIELDS: &[&str] = &[
    "version",
    "sequence",
    "issued_at",
    "revoked_grants",
    "revoked_serials",
    "key_id",
];

/// What a revocation list states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationList {
    /// Format version, always 1.
    pub version: u64,
    /// Grows by at least one with every list the CA publishes.
    pub sequence: u64,
    /// When the CA signed it.
    pub issued_at: UnixTime,
    /// Revoked grant ids.
    pub revoked_grants: BTreeSet<String>,
    /// Revoked certificate serials.
    pub revoked_serials: BTreeSet<u64>,
    /// Fingerprint of the signing key; set by [`RevocationList::sign`].
    pub key_id: String,
}

impl RevocationList {
    /// An empty list with the given sequence number and time.
    pub fn new(sequence: u64, issued_at: UnixTime) -> Self {
        Self {
            version: 1,
            sequence,
            issued_at,
            revoked_grants: BTreeSet::new(),
            revoked_serials: BTreeSet::new(),
            key_id: String::new(),
        }
    }

    fn validate(&self) -> Result<()> {
        if self.version != 1 {
            return Err(Error::UnknownVersion {
                found: self.version,
            });
        }
        for id in &self.revoked_grants {
            check_id("revoked_grants", id)?;
        }
        Ok(())
    }

    /// Signs the list and returns the document.
    ///
    /// `key` is an `ssh_key::PrivateKey` or any other [`SigningKey`].
    pub fn sign<S: SigningKey>(mut self, key: &S) -> Result<Vec<u8>> {
        self.key_id = fingerprint(&PublicKey::from(key.public_key()));
        self.validate()?;
        let mut body = serde_json::to_vec_pretty(&self).map_err(|e| Error::Signing {
            detail: e.to_string(),
        })?;
        body.push(b'\n');
        Envelope::seal(&body, key, NAMESPACE)
    }
}

/// The contents of a revocation list read from its JSON body only (signature block neither
/// decoded nor checked). Strict on the body, like [`UnverifiedRevocationList::parse`].
pub fn parse_claims_unverified(input: &[u8]) -> Result<RevocationList> {
    let body = split_body(input, MAX_REVOCATION_LIST_SIZE)?;
    // Typed, one pass; a body this accepts `parse_list_body` accepts with the same result.
    match serde_json::from_slice::<RevocationList>(body) {
        Ok(list) => {
            list.validate()?;
            Ok(list)
        }
        Err(_) => parse_list_body(body),
    }
}

fn parse_list_body(body: &[u8]) -> Result<RevocationList> {
    let map = parse_body(body, FIELDS)?;
    let list: RevocationList =
        serde_json::from_value(Value::Object(map)).map_err(|e| Error::Malformed {
            detail: e.to_string(),
        })?;
    list.validate()?;
    Ok(list)
}

/// A well-formed, unverified revocation list.
#[derive(Debug, Clone)]
pub struct UnverifiedRevocationList {
    envelope: Envelope,
    list: RevocationList,
}

impl UnverifiedRevocationList {
    /// Parses strictly (same framing rules as grants, larger size cap).
    pub fn parse(input: &[u8]) -> Result<Self> {
        let envelope = Envelope::parse(input, MAX_REVOCATION_LIST_SIZE)?;
        let list = parse_list_body(&envelope.body)?;
        Ok(Self { envelope, list })
    }

    /// The claims, unverified.
    pub fn claims_unverified(&self) -> &RevocationList {
        &self.list
    }

    /// Checks the signature against `trusted`. Revocation lists have no validity window;
    /// freshness is the host's policy ([`VerifiedRevocationList::is_stale`]).
    pub fn verify(self, trusted: &KeyRing) -> Result<VerifiedRevocationList> {
        let signer = trusted.verify(NAMESPACE, &self.envelope.body, &self.envelope.signature)?;
        if self.list.key_id != signer {
            return Err(Error::KeyIdMismatch {
                key_id: self.list.key_id.clone(),
                signer,
            });
        }
        Ok(VerifiedRevocationList { list: self.list })
    }
}

/// A revocation list signed by a trusted key.
#[derive(Debug, Clone)]
pub struct VerifiedRevocationList {
    list: RevocationList,
}

impl VerifiedRevocationList {
    /// A list whose exact bytes root already verified against the grant keys in force, as
    /// `record` (from [`crate::record::read_trusted`]) states: the record must be about a
    /// revocation list, name `input`'s SHA-256 and `keyring`, and the list's `key_id` must
    /// name the recorded signer. Replaces the Ed25519 verification and nothing else.
    pub fn from_record(
        input: &[u8],
        record: &TrustedRecord,
        keyring: &KeyringDigest,
    ) -> Result<Self> {
        record.check(Kind::Revocations, input, keyring)?;
        let list = parse_claims_unverified(input)?;
        if list.key_id != record.signer() {
            return Err(Error::KeyIdMismatch {
                key_id: list.key_id,
                signer: record.signer().to_string(),
            });
        }
        Ok(Self { list })
    }

    /// The verified contents.
    pub fn list(&self) -> &RevocationList {
        &self.list
    }

    /// Whether the grant id is revoked.
    pub fn is_grant_revoked(&self, id: &str) -> bool {
        self.list.revoked_grants.contains(id)
    }

    /// Whether the certificate serial is revoked.
    pub fn is_serial_revoked(&self, serial: u64) -> bool {
        self.list.revoked_serials.contains(&serial)
    }

    /// Whether the list is older than `max_age` seconds at `now`.
    pub fn is_stale(&self, now: UnixTime, max_age: u64) -> bool {
        now > self.list.issued_at.saturating_add(max_age)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_key::{Algorithm, PrivateKey, rand_core::OsRng};

    fn key() -> PrivateKey {
        PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap()
    }

    #[test]
    fn signed_list_round_trips_and_answers() {
        let k = key();
        let mut list = RevocationList::new(7, 1_000);
        list.revoked_grants.insert("g-1".into());
        list.revoked_serials.insert(42);
        let doc = list.sign(&k).unwrap();
        let mut ring = KeyRing::new();
        ring.push(k.public_key().clone());
        let v = UnverifiedRevocationList::parse(&doc)
            .unwrap()
            .verify(&ring)
            .unwrap();
        assert_eq!(v.list().sequence, 7);
        assert!(v.is_grant_revoked("g-1"));
        assert!(!v.is_grant_revoked("g-2"));
        assert!(v.is_serial_revoked(42));
        assert!(!v.is_serial_revoked(43));
        assert!(!v.is_stale(1_500, 600));
        assert!(v.is_stale(1_601, 600));
    }

    #[test]
    fn refuses_other_keys_and_grant_signatures() {
        let k = key();
        let doc = RevocationList::new(1, 1).sign(&k).unwrap();
        let mut other = KeyRing::new();
        other.push(key().public_key().clone());
        assert!(matches!(
            UnverifiedRevocationList::parse(&doc)
                .unwrap()
                .verify(&other),
            Err(Error::UntrustedKey { .. })
        ));
        // A grant-namespace signature over a revocation body is refused.
        let body = b"{\n  \"version\": 1,\n  \"sequence\": 1,\n  \"issued_at\": 1,\n  \"revoked_grants\": [],\n  \"revoked_serials\": [],\n  \"key_id\": \"x\"\n}\n";
        let forged = Envelope::seal(body, &k, crate::grant::NAMESPACE).unwrap();
        let mut ring = KeyRing::new();
        ring.push(k.public_key().clone());
        assert!(matches!(
            UnverifiedRevocationList::parse(&forged)
                .unwrap()
                .verify(&ring),
            Err(Error::WrongNamespace { .. })
        ));
        let mut t = doc.clone();
        t.extend_from_slice(b"x");
        assert!(matches!(
            UnverifiedRevocationList::parse(&t),
            Err(Error::TrailingData { .. })
        ));
    }
}

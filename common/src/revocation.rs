//! The signed revocation list: revoked grant ids and certificate serials.
//!
//! Each list carries a `sequence` that only grows and an `issued_at` time. Hosts keep the
//! newest list they have seen (refusing to go back to a lower sequence) and deny sudo when
//! their list is older than their staleness bound ([`DEFAULT_MAX_AGE_SECS`] by default).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use ssh_key::SigningKey;

use crate::document::{self, Document, Signed};
use crate::envelope::MAX_REVOCATION_LIST_SIZE;
use crate::error::{Error, Result};
use crate::grant::check_id;
use crate::keys::KeyRing;
use crate::record::{KeyringDigest, Kind, TrustedRecord};
use crate::time::{Secs, UnixTime};

/// The SSHSIG namespace of revocation lists.
pub const NAMESPACE: &str = "jit-revocations@jit";

/// Hosts' default staleness bound (`revocation_max_age_secs` in host.toml): 12 hours. A host
/// whose newest list is older denies every grant except break-glass ones, so a revocation
/// reaches (or locks down) every host within this time even if its sync is blocked, while a
/// CA outage of a few hours goes unnoticed by users. Shared by `jit-ca host-config` and the
/// host, so both write and assume the same value.
pub const DEFAULT_MAX_AGE_SECS: Secs = Secs::from_hours(12);

/// The longest interval between two runs of `jit-host-sync.timer` (`OnUnitActiveSec=5min`
/// plus `RandomizedDelaySec=30s`).
pub const HOST_SYNC_PERIOD_SECS: Secs = Secs::new(5 * 60 + 30);

/// The smallest sensible staleness bound for a CA that re-signs its list every
/// `refresh_secs` (`revocation_refresh`): a list may be that old when fetched, and one sync
/// may be missed, so anything lower makes hosts deny while everything works.
pub fn min_max_age_secs(refresh_secs: impl Into<Secs>) -> Secs {
    refresh_secs
        .into()
        .saturating_add(HOST_SYNC_PERIOD_SECS.saturating_mul(2))
}

/// A warning when a host's staleness bound `max_age_secs` conflicts with the CA's
/// `revocation_refresh` (`refresh_secs`), for `jit-ca policy check`, `jit-ca host-config`
/// and `jit-host check`.
pub fn max_age_conflict(
    max_age_secs: impl Into<Secs>,
    refresh_secs: impl Into<Secs>,
) -> Option<String> {
    let (max_age_secs, refresh_secs) = (max_age_secs.into(), refresh_secs.into());
    let min = min_max_age_secs(refresh_secs);
    (max_age_secs < min).then(|| {
        format!(
            "revocation_max_age_secs = {max_age_secs} is less than the CA's revocation_refresh ({refresh_secs}s) plus two sync periods ({}s): hosts would deny while the CA works; raise it to at least {min} (default {DEFAULT_MAX_AGE_SECS}) or lower revocation_refresh",
            HOST_SYNC_PERIOD_SECS.saturating_mul(2)
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
    pub fn new(sequence: u64, issued_at: impl Into<UnixTime>) -> Self {
        Self {
            version: 1,
            sequence,
            issued_at: issued_at.into(),
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
    pub fn sign<S: SigningKey>(self, key: &S) -> Result<Vec<u8>> {
        document::seal(self, key)
    }
}

impl Document for RevocationList {
    const NAMESPACE: &'static str = NAMESPACE;
    const MAX_SIZE: usize = MAX_REVOCATION_LIST_SIZE;
    const FIELDS: &'static [&'static str] = FIELDS;
    const KIND: Kind = Kind::Revocations;

    fn check(&self) -> Result<()> {
        self.validate()
    }

    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn set_key_id(&mut self, key_id: String) {
        self.key_id = key_id;
    }
}

/// The contents of a revocation list read from its JSON body only (signature block neither
/// decoded nor checked). Strict on the body, like [`UnverifiedRevocationList::parse`].
pub fn parse_claims_unverified(input: &[u8]) -> Result<RevocationList> {
    document::claims_unverified(input)
}

/// A well-formed, unverified revocation list: the document and its parsed body, read by the
/// same reader as grants (same framing rules, larger size cap).
pub type UnverifiedRevocationList = Signed<RevocationList>;

impl Signed<RevocationList> {
    /// Checks the signature against `trusted`. Revocation lists have no validity window;
    /// freshness is the host's policy ([`VerifiedRevocationList::is_stale`]).
    pub fn verify(self, trusted: &KeyRing) -> Result<VerifiedRevocationList> {
        self.verify_signature(trusted)?;
        Ok(VerifiedRevocationList {
            list: self.into_claims(),
        })
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
        Ok(Self {
            list: document::from_record(input, record, keyring)?,
        })
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

    /// Whether the list is older than `max_age` at `now`.
    pub fn is_stale(&self, now: impl Into<UnixTime>, max_age: impl Into<Secs>) -> bool {
        now.into() > self.list.issued_at.saturating_add(max_age.into())
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
        let forged = crate::envelope::Envelope::seal(body, &k, crate::grant::NAMESPACE).unwrap();
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

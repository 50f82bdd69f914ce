//! The signed revocation list: revoked grant ids and certificate serials.
//!
//! Each list carries a `sequence` that only grows and an `issued_at` time. Hosts keep the
//! newest list they have seen (refusing to go back to a lower sequence) and, when configured
//! with a staleness bound, deny sudo when their list is older than that bound.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use ssh_key::PrivateKey;

use crate::envelope::{Envelope, MAX_REVOCATION_LIST_SIZE, parse_body};
use crate::error::{Error, Result};
use crate::grant::check_id;
use crate::keys::{KeyRing, fingerprint};
use crate::time::UnixTime;

/// The SSHSIG namespace of revocation lists.
pub const NAMESPACE: &str = "jit-revocations@jit";

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
    pub fn sign(mut self, key: &PrivateKey) -> Result<Vec<u8>> {
        self.key_id = fingerprint(key.public_key());
        self.validate()?;
        let mut body = serde_json::to_vec_pretty(&self).map_err(|e| Error::Signing {
            detail: e.to_string(),
        })?;
        body.push(b'\n');
        Envelope::seal(&body, key, NAMESPACE)
    }
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
        let map = parse_body(&envelope.body, FIELDS)?;
        let list: RevocationList =
            serde_json::from_value(Value::Object(map)).map_err(|e| Error::Malformed {
                detail: e.to_string(),
            })?;
        list.validate()?;
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

//! The hash-chained audit trail.
//!
//! Each record is `(seq, time, actor, event, details)` plus `prev_hash` (the previous record's
//! hash; 64 zeros for the first) and `hash = sha256(prev_hash || "\n" || canonical)`, where
//! `canonical` is the JSON array `[seq, time, actor, event, details]` with `details` as the
//! stored JSON text. Editing a record changes its hash; deleting or reordering records breaks
//! `seq` continuity or the `prev_hash` links. [`verify`] names the first bad record.
//!
//! The table also has SQLite triggers that refuse UPDATE and DELETE, so a bug cannot rewrite
//! history; someone with write access to the file can drop them. The chain catches edits
//! that leave it unlinked, but it has no key: a rewrite that re-chains every later record,
//! or a cut tail, is detectable only against a record kept outside the database, best a
//! signed [`checkpoint`] (`jit-ca audit verify --checkpoint`), or a record's hash from syslog:
//! see docs/threat-model.md.

pub mod checkpoint;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The kinds of event recorded. Stable strings (SIEM rules match on them).
pub mod event {
    /// A new access request.
    pub const REQUEST: &str = "request";
    /// A request refused by policy at creation.
    pub const REQUEST_REFUSED: &str = "request_refused";
    /// An approval.
    pub const APPROVAL: &str = "approval";
    /// An approval refused by policy.
    pub const APPROVAL_REFUSED: &str = "approval_refused";
    /// A denial.
    pub const DENIAL: &str = "denial";
    /// A certificate (and grant) issued.
    pub const ISSUANCE: &str = "issuance";
    /// A revocation.
    pub const REVOCATION: &str = "revocation";
    /// An extension of an approved window.
    pub const EXTENSION: &str = "extension";
    /// A pending request expired.
    pub const EXPIRY: &str = "expiry";
    /// A deny call refused.
    pub const DENIAL_REFUSED: &str = "denial_refused";
    /// A revoke call refused.
    pub const REVOCATION_REFUSED: &str = "revocation_refused";
    /// An extend call refused.
    pub const EXTENSION_REFUSED: &str = "extension_refused";
    /// A read (request, list, certificate) refused.
    pub const ACCESS_REFUSED: &str = "access_refused";
    /// A call refused before authentication (e.g. body too large).
    pub const REJECTED: &str = "rejected";
    /// A failed API authentication.
    pub const AUTH_FAILURE: &str = "auth_failure";
    /// Refusals of one source and event in one window beyond those recorded in full: one
    /// record with their count (see `Ca::record_refusal_from`).
    pub const REFUSALS_SUMMARISED: &str = "refusals_summarised";
    /// A signed call accepted with the legacy scheme v1 (`accept_v1_signatures = true`),
    /// recorded once per user and hour.
    pub const LEGACY_SIGNATURE: &str = "legacy_signature";
    /// policy.toml reloaded (or a reload rejected).
    pub const POLICY_RELOAD: &str = "policy_reload";
    /// A user registered.
    pub const USER_ADD: &str = "user_add";
    /// A key was added to a user (`jit-ca user add-key`).
    pub const USER_ADD_KEY: &str = "user_add_key";
    /// A user removed.
    pub const USER_REMOVE: &str = "user_remove";
    /// The service started.
    pub const SERVICE_START: &str = "service_start";
    /// A grant id or certificate serial revoked by an operator (`jit-ca revoke-grant`).
    pub const GRANT_REVOCATION: &str = "grant_revocation";
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// 1, 2, 3, ... without gaps.
    pub seq: u64,
    /// Unix seconds.
    pub time: u64,
    /// Who did it (a user name, `admin:<uid>` for the CLI, `system`, or a key fingerprint).
    pub actor: String,
    /// One of [`event`].
    pub event: String,
    /// JSON object text.
    pub details: String,
    /// Hash of the previous record.
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

/// The hash of a record with these contents.
pub fn hash(
    prev_hash: &str,
    seq: u64,
    time: u64,
    actor: &str,
    event: &str,
    details: &str,
) -> String {
    let canonical = serde_json::json!([seq, time, actor, event, details]).to_string();
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// What is wrong with the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    /// A record's hash does not match its contents (edited).
    Edited { seq: u64 },
    /// `seq` jumps (records deleted) or goes backwards (reordered).
    Gap { expected: u64, found: u64 },
    /// A record's prev_hash is not the previous record's hash.
    Unlinked { seq: u64 },
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Edited { seq } => write!(
                f,
                "record {seq} was altered: its hash does not match its contents"
            ),
            Self::Gap { expected, found } => write!(
                f,
                "record {expected} is missing (next record is {found}): records were deleted or reordered"
            ),
            Self::Unlinked { seq } => write!(
                f,
                "record {seq} does not follow the record before it (prev_hash mismatch): records were deleted, inserted or reordered"
            ),
        }
    }
}

/// Checks records in storage order (ascending rowid). Returns the number checked.
pub fn verify<I: IntoIterator<Item = Record>>(records: I) -> Result<u64, Broken> {
    let mut prev = GENESIS.to_string();
    let mut expected = 1u64;
    for r in records {
        if r.seq != expected {
            return Err(Broken::Gap {
                expected,
                found: r.seq,
            });
        }
        if r.prev_hash != prev {
            return Err(Broken::Unlinked { seq: r.seq });
        }
        let h = hash(&r.prev_hash, r.seq, r.time, &r.actor, &r.event, &r.details);
        if h != r.hash {
            return Err(Broken::Edited { seq: r.seq });
        }
        prev = r.hash;
        expected += 1;
    }
    Ok(expected - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<Record> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let details = format!("{{\"n\":{seq}}}");
                let h = hash(&prev, seq, 100 + seq, "alice", "request", &details);
                let r = Record {
                    seq,
                    time: 100 + seq,
                    actor: "alice".into(),
                    event: "request".into(),
                    details,
                    prev_hash: prev.clone(),
                    hash: h.clone(),
                };
                prev = h;
                r
            })
            .collect()
    }

    #[test]
    fn intact_and_tampered() {
        assert_eq!(verify(chain(5)), Ok(5));
        let mut c = chain(5);
        c[2].actor = "mallory".into();
        assert_eq!(verify(c), Err(Broken::Edited { seq: 3 }));
        let mut c = chain(5);
        c.remove(1);
        assert_eq!(
            verify(c),
            Err(Broken::Gap {
                expected: 2,
                found: 3
            })
        );
        let mut c = chain(5);
        c.swap(1, 2);
        assert!(verify(c).is_err());
        let mut c = chain(5);
        // Renumber after deleting: the link breaks.
        c.remove(1);
        for (i, r) in c.iter_mut().enumerate() {
            r.seq = i as u64 + 1;
        }
        assert!(verify(c).is_err());
    }
}

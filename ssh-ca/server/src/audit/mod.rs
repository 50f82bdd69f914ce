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
//!
//! The kinds of event are one table, [`event`] (stored name and syslog severity); every
//! record's syslog line is made by [`syslog_line`] and sent by [`log`]. The one audit line
//! that is not a record, a signed checkpoint's, is made by [`checkpoint_line`], next to it.

pub mod checkpoint;
pub mod event;
pub mod export;

use jit_common::log::{Severity, Syslog};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use event::Event;

/// `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// 1, 2, 3, ... without gaps.
    pub seq: u64,
    /// Unix seconds.
    pub time: u64,
    /// Who did it (a user name, `admin:<uid>` for the CLI, `system`, or a key fingerprint).
    pub actor: String,
    /// The stored name of an [`Event`] (a record written by another version may carry a
    /// name this build does not know).
    pub event: String,
    /// JSON object text.
    pub details: String,
    /// Hash of the previous record.
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

impl Record {
    /// The event, if this build knows its name.
    pub fn kind(&self) -> Option<Event> {
        Event::parse(&self.event)
    }
}

/// The syslog line of a record, and its priority: the one format of audit lines (`authpriv`,
/// tag `jit-ca`), carrying the record's `seq` and `hash` so a line can anchor the chain
/// (`jit-ca audit verify --anchor SEQ:HASH`).
pub fn syslog_line(r: &Record) -> (Severity, String) {
    (
        Event::severity_of(&r.event),
        format!(
            "audit seq={} event={} actor={} hash={} details={}",
            r.seq, r.event, r.actor, r.hash, r.details
        ),
    )
}

/// The syslog line of a signed checkpoint (its claims and `doc`, the signed document), and its
/// priority: the one audit line that is not a record (a checkpoint signs the chain, it is no
/// event in it), at notice. It carries the SSHSIG base64 so the line alone can be verified.
pub fn checkpoint_line(c: &checkpoint::Checkpoint, doc: &[u8]) -> (Severity, String) {
    let sshsig: String = String::from_utf8_lossy(doc)
        .lines()
        .filter(|l| !l.starts_with('{') && !l.starts_with(' ') && !l.starts_with('}'))
        .filter(|l| !l.starts_with("-----"))
        .collect();
    (
        Severity::Notice,
        format!(
            "audit checkpoint seq={} hash={} time={} key={} sshsig={sshsig}",
            c.seq, c.hash, c.time, c.key_id
        ),
    )
}

/// Sends the syslog line of each record (see [`syslog_line`]).
pub fn log(syslog: &mut Syslog, records: &[Record]) {
    for r in records {
        let (severity, line) = syslog_line(r);
        syslog.log(severity, &line);
    }
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
    let canonical = canonical(seq, time, actor, event, details);
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// The hashed form of a record's contents: the compact JSON array `[seq, time, actor,
/// event, details]`, serialised straight from the fields (the bytes `json!([...])` gives,
/// without building and cloning into a value tree on the writer thread).
fn canonical(seq: u64, time: u64, actor: &str, event: &str, details: &str) -> String {
    serde_json::to_string(&(seq, time, actor, event, details))
        .unwrap_or_else(|_| serde_json::json!([seq, time, actor, event, details]).to_string())
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
    verify_from(0, GENESIS, records).map(|(n, _)| n)
}

/// Checks records that continue a chain already verified up to record `seq` with hash
/// `head` (0 and [`GENESIS`]: from the start), in storage order. Returns the seq and hash
/// of the last record checked (the arguments when there was none).
pub fn verify_from<I: IntoIterator<Item = Record>>(
    seq: u64,
    head: &str,
    records: I,
) -> Result<(u64, String), Broken> {
    let mut prev = head.to_string();
    let mut expected = seq + 1;
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
    Ok((expected - 1, prev))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The hashed form is byte for byte what `json!([...]).to_string()` gave (issue 18
        /// serialises the tuple directly): every stored chain keeps verifying.
        #[test]
        fn canonical_is_the_json_array(
            seq in proptest::prelude::any::<u64>(),
            time in proptest::prelude::any::<u64>(),
            actor in "\\PC{0,40}|[\\x00-\\x7f]{0,40}",
            event in "[a-z_]{0,20}",
            details in "\\PC{0,200}|[\\x00-\\x7f]{0,80}|\\{\"k\": \"[\\x00-\\x7f]{0,30}\"\\}",
        ) {
            proptest::prop_assert_eq!(
                canonical(seq, time, &actor, &event, &details),
                serde_json::json!([seq, time, actor, event, details]).to_string()
            );
        }
    }

    #[test]
    fn syslog_line_format_and_priority() {
        let r = &chain(1)[0];
        let (severity, line) = syslog_line(r);
        assert_eq!(severity, Severity::Notice);
        assert_eq!(
            line,
            format!(
                "audit seq=1 event=request actor=alice hash={} details={{\"n\":1}}",
                r.hash
            )
        );
        let refused = Record {
            event: event::AUTH_FAILURE.to_string(),
            ..r.clone()
        };
        assert_eq!(refused.kind(), Some(Event::AuthFailure));
        assert_eq!(syslog_line(&refused).0, Severity::Warning);
    }

    #[test]
    fn a_checkpoint_line_is_made_here_with_the_signature_on_it() {
        let claims = checkpoint::Checkpoint {
            version: checkpoint::VERSION,
            seq: 7,
            hash: "ab".repeat(32),
            time: 1_000,
            key_id: "SHA256:k".into(),
        };
        let doc = b"{\n  \"seq\": 7\n}\n-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\nAAAA\n-----END SSH SIGNATURE-----\n";
        let (severity, line) = checkpoint_line(&claims, doc);
        assert_eq!(severity, Severity::Notice);
        assert_eq!(
            line,
            format!(
                "audit checkpoint seq=7 hash={} time=1000 key=SHA256:k sshsig=U1NIU0lHAAAA",
                "ab".repeat(32)
            )
        );
    }

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
    fn verify_from_continues_a_verified_chain() {
        let c = chain(6);
        let (seq, head) = verify_from(0, GENESIS, c[..3].to_vec()).unwrap();
        assert_eq!((seq, head.as_str()), (3, c[2].hash.as_str()));
        assert_eq!(
            verify_from(seq, &head, c[3..].to_vec()),
            Ok((6, c[5].hash.clone()))
        );
        // Nothing new: the head stays.
        assert_eq!(
            verify_from(6, &c[5].hash, Vec::new()),
            Ok((6, c[5].hash.clone()))
        );
        // A gap right after the verified head, a wrong link, an edit.
        assert_eq!(
            verify_from(3, &head, c[4..].to_vec()),
            Err(Broken::Gap {
                expected: 4,
                found: 5
            })
        );
        assert_eq!(
            verify_from(3, &"f".repeat(64), c[3..].to_vec()),
            Err(Broken::Unlinked { seq: 4 })
        );
        let mut edited = c[3..].to_vec();
        edited[1].details = "{}".into();
        assert_eq!(
            verify_from(3, &head, edited),
            Err(Broken::Edited { seq: 5 })
        );
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

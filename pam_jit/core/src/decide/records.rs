//! The seam for root's verified-document records ([`jit_common::record`]): `decide` asks a
//! [`RecordSource`] the caller passes and does no I/O itself. `pam_jit.so` and
//! `jit-host check` pass [`crate::store::RecordLookup`] (root-owned files under
//! `<state_dir>/verified`); tests and benchmarks pass [`NoRecords`] or a fake.
//!
//! A record replaces one Ed25519 check and nothing else: what it says is re-checked against
//! the exact bytes and the keys in force ([`VerifiedGrant::from_record`],
//! [`VerifiedRevocationList::from_record`]), and a [`TrustedRecord`] can only be made by
//! `jit_common::record::read_trusted` from a root-owned file.

use std::cell::OnceCell;

use jit_common::record::{KeyringDigest, Ring, TrustedRecord};
use jit_common::{UnixTime, VerifiedGrant, VerifiedRevocationList};

use crate::config::Config;

/// Where `decide` looks up root's record of a document's exact bytes.
pub trait RecordSource {
    /// Root's record for these exact bytes, if there is one that may be trusted. Anything
    /// else (no record, an unsafe file, an I/O error) is `None`: the signature is then
    /// verified as if there were no record.
    fn find(&self, doc: &[u8]) -> Option<TrustedRecord>;
}

/// No records: every signature is verified.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRecords;

impl RecordSource for NoRecords {
    fn find(&self, _doc: &[u8]) -> Option<TrustedRecord> {
        None
    }
}

/// The record source of one decision, with the digest of the keys in force computed at most
/// once (and only if some document has a record).
pub(super) struct Records<'a> {
    config: &'a Config,
    source: &'a dyn RecordSource,
    keyring: OnceCell<Option<KeyringDigest>>,
}

impl<'a> Records<'a> {
    pub(super) fn new(config: &'a Config, source: &'a dyn RecordSource) -> Self {
        Self {
            config,
            source,
            keyring: OnceCell::new(),
        }
    }

    fn keyring(&self) -> Option<&KeyringDigest> {
        self.keyring
            .get_or_init(|| {
                KeyringDigest::of(&self.config.grant_keys, &self.config.break_glass_keys).ok()
            })
            .as_ref()
    }

    /// The grant, verified by root's record of these bytes under the keys in force, with
    /// whether break-glass keys verified it. `None` (verify the signature instead) when there
    /// is no trusted record, it does not apply, or the grant is outside its window.
    pub(super) fn grant(&self, bytes: &[u8], now: UnixTime) -> Option<(VerifiedGrant, bool)> {
        let record = self.source.find(bytes)?;
        let keyring = self.keyring()?;
        let skew = self.config.clock_skew_secs;
        let break_glass = match record.ring() {
            Ring::Grant => false,
            Ring::BreakGlass => true,
        };
        VerifiedGrant::from_record(bytes, &record, keyring, now, skew)
            .ok()
            .map(|v| (v, break_glass))
    }

    /// The revocation list, verified by root's record, or `None`.
    pub(super) fn revocations(&self, bytes: &[u8]) -> Option<VerifiedRevocationList> {
        let record = self.source.find(bytes)?;
        VerifiedRevocationList::from_record(bytes, &record, self.keyring()?).ok()
    }
}

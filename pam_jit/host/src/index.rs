//! Root's verified-document records (`<state_dir>/verified/`, see `jit_common::record`):
//! written after root verifies a grant or the revocation list, so that `pam_jit.so` can skip
//! the Ed25519 verification of exactly those bytes under exactly these keys.
//!
//! * `install` records the grant it just verified ([`record_grant`]).
//! * `sync` and `gc` index the whole store ([`index_store`]): every grant file of every user
//!   (including those `principals` wrote as the grant writer at login) that passes the same
//!   file checks as the module and verifies against the configured keys gets a record; the
//!   revocation list too; records of documents no longer stored, or made under other keys,
//!   are removed.
//!
//! Only root writes records (the module trusts root-owned records only); run as another
//! user these functions do nothing and say so.

use std::collections::BTreeSet;
use std::path::PathBuf;

use jit_common::record::{self, DocDigest, KeyringDigest};
use pam_jit_core::config::Config;
use pam_jit_core::store::{MAX_FILES_PER_USER, RevocationFile, read_revocations, records_dir};
use pam_jit_core::sys;

use crate::failure::{Failure, Result};
use crate::store_write::{UserDir, ensure_records_dir};

/// What an indexing pass did.
#[derive(Debug, Default)]
pub struct Indexed {
    /// Documents with a current record after the pass.
    pub recorded: usize,
    /// Records written in this pass (new documents, or new keys).
    pub written: usize,
    /// Stale records removed.
    pub pruned: usize,
    /// Grant files that did not verify (left without a record), one line each.
    pub refused: Vec<String>,
}

impl Indexed {
    /// One line for the command's output.
    pub fn summary(&self) -> String {
        format!(
            "verified-grant records: {} current, {} written, {} removed, {} file(s) did not verify",
            self.recorded,
            self.written,
            self.pruned,
            self.refused.len()
        )
    }
}

fn is_root() -> bool {
    sys::effective_uid() == 0
}

fn keyring(config: &Config) -> Result<KeyringDigest> {
    KeyringDigest::of(&config.grant_keys, &config.break_glass_keys)
        .map_err(|e| Failure::new(format!("cannot digest the configured keys: {e}")))
}

/// Whether `doc` already has a trusted record that applies under `keyring`.
fn has_current_record(
    dir: &std::path::Path,
    doc: &[u8],
    kind: record::Kind,
    keyring: &KeyringDigest,
) -> bool {
    record::read_trusted(dir, doc).is_ok_and(|r| r.check(kind, doc, keyring).is_ok())
}

/// Records one grant document just verified by the caller (`install`). The record writer
/// verifies the signature again itself: nothing is recorded on the caller's word.
pub fn record_grant(config: &Config, doc: &[u8]) -> Result<bool> {
    if !is_root() {
        return Ok(false);
    }
    let dir = ensure_records_dir(config)?;
    record::write_grant_record(&dir, doc, &config.grant_keys, &config.break_glass_keys)
        .map_err(|e| Failure::new(format!("cannot record the verified grant: {e}")))?;
    Ok(true)
}

/// Indexes every grant in the store and the revocation list, and prunes stale records.
/// Returns `None` when not run as root (nothing is written).
pub fn index_store(config: &Config) -> Result<Option<Indexed>> {
    if !is_root() {
        return Ok(None);
    }
    let dir = ensure_records_dir(config)?;
    let keyring = keyring(config)?;
    let mut out = Indexed::default();
    let mut keep: BTreeSet<DocDigest> = BTreeSet::new();
    let grants = config.grants_dir();
    for user in crate::grants::user_dirs(&grants)? {
        // Same rules as the module (no symlinked or writable-by-others user directories),
        // and opened without following links: the writer cannot point root elsewhere.
        let Ok(Some(udir)) = UserDir::open(config, &user, false) else {
            continue;
        };
        let Ok(names) = udir.grant_names(MAX_FILES_PER_USER * 4) else {
            continue;
        };
        for name in names {
            let path = udir.path().join(&name);
            let Ok(doc) = udir.read(&name) else {
                continue;
            };
            let digest = DocDigest::of(&doc);
            if has_current_record(&dir, &doc, record::Kind::Grant, &keyring) {
                keep.insert(digest);
                continue;
            }
            match record::write_grant_record(
                &dir,
                &doc,
                &config.grant_keys,
                &config.break_glass_keys,
            ) {
                Ok(_) => {
                    keep.insert(digest);
                    out.written += 1;
                }
                Err(record::RecordError::Document(e)) => {
                    out.refused.push(format!("{}: {e}", path.display()));
                }
                Err(e) => return Err(Failure::new(e.to_string())),
            }
        }
    }
    if let RevocationFile::Present(doc) = read_revocations(&config.state_dir) {
        let digest = DocDigest::of(&doc);
        if has_current_record(&dir, &doc, record::Kind::Revocations, &keyring) {
            keep.insert(digest);
        } else {
            match record::write_revocations_record(
                &dir,
                &doc,
                &config.grant_keys,
                &config.break_glass_keys,
            ) {
                Ok(()) => {
                    keep.insert(digest);
                    out.written += 1;
                }
                Err(record::RecordError::Document(e)) => {
                    out.refused
                        .push(format!("{}: {e}", config.revocations_path().display()));
                }
                Err(e) => return Err(Failure::new(e.to_string())),
            }
        }
    }
    out.recorded = keep.len();
    out.pruned = record::prune(&dir, &keep, &keyring)
        .map_err(|e| Failure::new(format!("cannot prune {}: {e}", dir.display())))?
        .len();
    Ok(Some(out))
}

/// `<state_dir>/verified`, for messages.
pub fn dir(config: &Config) -> PathBuf {
    records_dir(&config.state_dir)
}

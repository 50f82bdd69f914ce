//! The revocation state one decision (and `jit-host principals`, `list`, `setup`) works with:
//! the verified list, and why non-break-glass grants and certificates may not be trusted.

use jit_common::time::{format_duration, format_utc};
use jit_common::{Error, UnixTime, UnverifiedRevocationList, VerifiedRevocationList};

use super::records::Records;
use crate::config::Config;
use crate::store::RevocationFile;

/// The revocation state used for every grant in one decision (and by `jit-host principals`
/// for every login): the verified list if there is one, and why non-break-glass grants (and
/// certificates) may not be trusted, if they may not. The staleness rule is the same
/// everywhere: a missing, unusable, invalid or older-than-`revocation_max_age_secs` list
/// blocks.
#[derive(Debug)]
pub struct Revocations {
    /// The verified list, also when stale (its entries still deny).
    pub list: Option<VerifiedRevocationList>,
    /// Why non-break-glass grants may not be used, if they may not.
    pub problem: Option<String>,
}

/// [`Revocations`] for `file` at `now`, verifying the list's signature against `grant_keys`.
pub fn revocation_state(config: &Config, file: &RevocationFile, now: UnixTime) -> Revocations {
    revocations_with(config, file, now, |bytes| verify(config, bytes))
}

/// [`revocation_state`], with root's record of the list's bytes standing in for the
/// signature check when there is one.
pub(super) fn revocations(
    config: &Config,
    file: &RevocationFile,
    now: UnixTime,
    records: &Records<'_>,
) -> Revocations {
    revocations_with(config, file, now, |bytes| {
        match records.revocations(bytes) {
            Some(recorded) => Ok(recorded),
            None => verify(config, bytes),
        }
    })
}

fn verify(config: &Config, bytes: &[u8]) -> Result<VerifiedRevocationList, Error> {
    UnverifiedRevocationList::parse(bytes).and_then(|l| l.verify(&config.grant_keys))
}

fn revocations_with(
    config: &Config,
    file: &RevocationFile,
    now: UnixTime,
    verify: impl FnOnce(&[u8]) -> Result<VerifiedRevocationList, Error>,
) -> Revocations {
    let bound = config.revocation_max_age_secs;
    match file {
        RevocationFile::Missing => Revocations {
            list: None,
            problem: Some(
                "this host has no revocation list (it has never synced with the CA)".to_string(),
            ),
        },
        RevocationFile::Unusable(e) => Revocations {
            list: None,
            problem: Some(format!("the revocation list is unusable: {e}")),
        },
        RevocationFile::Present(bytes) => match verify(bytes) {
            Err(e) => Revocations {
                list: None,
                problem: Some(format!("the revocation list is invalid: {e}")),
            },
            Ok(list) => {
                let issued = list.list().issued_at;
                // A list from further ahead than the allowed skew would stay "fresh" until
                // issued_at + the bound, however long sync is blocked after it: not fresh.
                let problem = if issued > now.saturating_add(config.clock_skew_secs.into()) {
                    Some(format!(
                        "the revocation list was issued in the future ({}, more than clock_skew_secs ahead of this host's clock); check the clocks of the CA and this host",
                        format_utc(issued)
                    ))
                } else {
                    list.is_stale(now, bound).then(|| {
                        format!(
                            "the revocation list is stale: issued {}, older than {} (revocation_max_age_secs)",
                            format_utc(issued),
                            format_duration(bound)
                        )
                    })
                };
                Revocations {
                    list: Some(list),
                    problem,
                }
            }
        },
    }
}

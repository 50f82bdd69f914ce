//! One grant file against one request: the signature (or root's record of it), then user,
//! sudo, window, host, the break-glass window cap, revocation and staleness; then, for a
//! session-bound grant only, the caller's session's binding (`super::session`).

use jit_common::grant::NotCovered;
use jit_common::{Error, UnverifiedGrant, VerifiedGrant};

use super::Facts;
use super::miss::Miss;
use super::records::Records;
use super::revocations::Revocations;
use super::session::{self, BindingEvidence};
use crate::config::Config;
use crate::store::GRANT_SUFFIX;

/// One grant file's result.
pub(super) enum Checked {
    Allowed {
        id: String,
        break_glass: bool,
        /// The signature check was root's record ([`jit_common::record`]), not done here.
        by_record: bool,
        /// The certificate serial of a session-bound grant (it allowed through its binding).
        serial: Option<u64>,
    },
    /// Why not, and the certificate serial when the grant is session-bound (for the log).
    Missed(Miss, Option<u64>),
}

/// A cheap pre-filter on unverified claims (peeked at in the JSON body, the signature block
/// not even decoded): could this grant allow `user` here now? Meant to be looser than the
/// real check (it ignores the start of the window); where it is stricter (a body it cannot
/// peek at), the full loop in `decide` still checks every file, so the decision never
/// depends on it.
pub(crate) fn claims_could_allow(
    config: &Config,
    facts: &Facts<'_>,
    user: &str,
    bytes: &[u8],
) -> bool {
    jit_common::grant::peek_claims_unverified(bytes)
        .is_some_and(|g| claims_allow(config, facts, user, &g))
}

/// [`claims_could_allow`] on claims already peeked at.
pub(crate) fn claims_allow(
    config: &Config,
    facts: &Facts<'_>,
    user: &str,
    g: &jit_common::grant::ClaimsPeek<'_>,
) -> bool {
    g.user == user
        && g.sudo
        && facts.now < g.not_after.saturating_add(config.clock_skew_secs.into())
        && g.hosts.iter().any(|sel| {
            facts
                .host_names
                .iter()
                .any(|h| jit_common::host::matches(sel, h))
        })
}

/// The request's context for checking one grant file after another.
pub(super) struct Context<'a> {
    pub(super) config: &'a Config,
    pub(super) facts: &'a Facts<'a>,
    pub(super) user: &'a str,
    pub(super) revs: &'a Revocations,
    pub(super) records: &'a Records<'a>,
    /// The caller's session's binding (used for session-bound grants only).
    pub(super) binding: &'a BindingEvidence,
}

impl Context<'_> {
    /// Checks grant file `name` with contents `bytes`.
    pub(super) fn check(&self, name: &str, bytes: &[u8]) -> Checked {
        let config = self.config;
        // Root already verified these exact bytes under these keys: skip the Ed25519 check
        // only.
        if let Some((verified, break_glass)) = self.records.grant(bytes, self.facts.now)
            && name == format!("{}{GRANT_SUFFIX}", verified.grant().id)
        {
            return self.judge(&verified, break_glass, true);
        }
        let invalid = |detail: String| {
            Checked::Missed(
                Miss::Invalid {
                    file: name.to_string(),
                    detail,
                },
                None,
            )
        };
        let parsed = match UnverifiedGrant::parse(bytes) {
            Ok(p) => p,
            Err(e) => return invalid(e.to_string()),
        };
        let claims = parsed.claims_unverified().clone();
        if name != format!("{}{GRANT_SUFFIX}", claims.id) {
            return invalid(format!(
                "its file name does not match its id {:?}",
                claims.id
            ));
        }
        let (now, skew) = (self.facts.now, config.clock_skew_secs);
        let (verified, break_glass) = match parsed.clone().verify_at(now, &config.grant_keys, skew)
        {
            Ok(v) => (v, false),
            Err(Error::UntrustedKey { .. }) if !config.break_glass_keys.is_empty() => {
                match parsed.verify_at(now, &config.break_glass_keys, skew) {
                    Ok(v) => (v, true),
                    Err(e) => return window_or_invalid(e, &claims, name),
                }
            }
            Err(e) => return window_or_invalid(e, &claims, name),
        };
        self.judge(&verified, break_glass, false)
    }

    /// Everything after the signature ([`Context::judge_claims`]), with the certificate
    /// serial of a session-bound grant attached for the log.
    fn judge(&self, verified: &VerifiedGrant, break_glass: bool, by_record: bool) -> Checked {
        let g = verified.grant();
        let serial = if g.session_bound { g.cert_serial } else { None };
        match self.judge_claims(verified, break_glass) {
            Ok(()) => Checked::Allowed {
                id: g.id.clone(),
                break_glass,
                by_record,
                serial,
            },
            Err(m) => Checked::Missed(m, serial),
        }
    }

    /// User, sudo, window, host, break-glass window cap, revocation, staleness, and last
    /// (only for a session-bound grant that passed all of them) the session's binding.
    fn judge_claims(&self, verified: &VerifiedGrant, break_glass: bool) -> Result<(), Miss> {
        let (config, facts, revs) = (self.config, self.facts, self.revs);
        let g = verified.grant();
        let hosts: Vec<&str> = facts.host_names.iter().map(String::as_str).collect();
        if let Err(nc) = verified.covers(self.user, &hosts, facts.now) {
            return Err(match nc {
                NotCovered::OtherUser { grant_user } => Miss::OtherUser {
                    file: format!("{}{GRANT_SUFFIX}", g.id),
                    grant_user,
                },
                NotCovered::NoSudo => Miss::NoSudo {
                    id: g.id.clone(),
                    role: g.role.clone(),
                },
                NotCovered::OtherHost { selectors } => Miss::OtherHost {
                    id: g.id.clone(),
                    role: g.role.clone(),
                    selectors,
                },
                NotCovered::NotYetValid { not_before } => Miss::NotYetValid {
                    id: g.id.clone(),
                    not_before,
                },
                NotCovered::Expired { not_after } => Miss::Expired {
                    id: g.id.clone(),
                    role: g.role.clone(),
                    not_after,
                },
            });
        }
        if break_glass {
            // From when it was signed: a grant signed long before its window (one of a stack
            // pre-signed for future days) counts as spanning all that time.
            let window = g
                .not_after
                .saturating_since(g.not_before.min(g.issued_at))
                .as_secs();
            let cap = config.break_glass_max_window_secs;
            if window > cap {
                return Err(Miss::BreakGlassTooLong {
                    id: g.id.clone(),
                    window,
                    cap,
                });
            }
        }
        if let Some(list) = &revs.list {
            let detail = if list.is_grant_revoked(&g.id) {
                Some(format!("revocation list #{}", list.list().sequence))
            } else {
                g.cert_serial
                    .filter(|s| list.is_serial_revoked(*s))
                    .map(|s| {
                        format!(
                            "certificate serial {s} is revoked, list #{}",
                            list.list().sequence
                        )
                    })
            };
            if let Some(detail) = detail {
                return Err(Miss::Revoked {
                    id: g.id.clone(),
                    role: g.role.clone(),
                    detail,
                });
            }
        }
        if !break_glass && let Some(p) = &revs.problem {
            return Err(Miss::Stale {
                id: g.id.clone(),
                detail: p.clone(),
            });
        }
        if g.session_bound {
            session::check(g, self.user, facts.session_id, self.binding)?;
        }
        Ok(())
    }
}

fn window_or_invalid(e: Error, claims: &jit_common::Grant, name: &str) -> Checked {
    // Unverified claims, used for the log's serial only.
    let serial = if claims.session_bound {
        claims.cert_serial
    } else {
        None
    };
    let miss = match e {
        Error::Expired { not_after, .. } => Miss::Expired {
            id: claims.id.clone(),
            role: claims.role.clone(),
            not_after,
        },
        Error::NotYetValid { not_before, .. } => Miss::NotYetValid {
            id: claims.id.clone(),
            not_before,
        },
        other => Miss::Invalid {
            file: name.to_string(),
            detail: other.to_string(),
        },
    };
    let serial = if matches!(miss, Miss::Invalid { .. }) {
        None
    } else {
        serial
    };
    Checked::Missed(miss, serial)
}

//! The decision: may this caller use sudo on this host now? A function of plain values (no
//! clock, no environment; its only I/O is looking up root's verified-document records,
//! [`Evidence::records`]), shared by `pam_jit.so` and `jit-host check`.
//!
//! ```text
//! identify(config, facts)             -> the invoking user, or an early Decision (ignore/deny)
//! decide(config, facts, evidence)     -> Decision
//! ```
//!
//! A grant allows sudo only if it parses, is signed by a trusted grant key (or a
//! break-glass key), is inside its window (with the configured skew), names this user,
//! allows sudo, covers one of this host's names, is not revoked (by grant id or certificate
//! serial), and, unless signed by a break-glass key, the local revocation list exists, is
//! valid and is not older than `revocation_max_age_secs`. A break-glass grant's window may
//! not exceed `break_glass_max_window_secs` (counted from when it was signed, if earlier).

use std::cell::OnceCell;

use jit_common::grant::NotCovered;
use jit_common::log::sanitize;
use jit_common::record::{KeyringDigest, Ring};
use jit_common::time::{format_duration, format_utc};
use jit_common::{
    Error, UnixTime, UnverifiedGrant, UnverifiedRevocationList, VerifiedGrant,
    VerifiedRevocationList,
};

use crate::config::{Config, DEFAULT_SERVICES, Mode};
use crate::store::{RecordLookup, RevocationFile, UserGrants};

/// Longest user message, in bytes.
pub const MAX_MESSAGE: usize = 480;

/// Who is asking, as the PAM room found out.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// `PAM_RUSER`, the invoking user as sudo reports it.
    pub ruser: Option<&'a str>,
    /// The real uid of the process (`getuid()`).
    pub uid: u32,
    /// The uid the passwd database gives `ruser`, if it has an entry.
    pub ruser_uid: Option<u32>,
}

/// Everything known about the request except the stored evidence.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The caller.
    pub caller: Caller<'a>,
    /// `PAM_SERVICE`.
    pub service: &'a str,
    /// Names this host answers to; the first is the kernel host name.
    pub host_names: &'a [String],
    /// The current time.
    pub now: UnixTime,
}

/// What was found on disk for the user.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// The user's grant files, or why the store as a whole could not be trusted.
    pub grants: Result<UserGrants, String>,
    /// The local revocation list.
    pub revocations: RevocationFile,
    /// Root's verified-document records ([`jit_common::record`]): a record that names a
    /// document's exact bytes and the keys in force replaces that document's signature
    /// check, nothing else. The only I/O `decide` does is looking records up here.
    pub records: RecordLookup,
}

/// The outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `PAM_SUCCESS`.
    Allow,
    /// `PAM_PERM_DENIED`.
    Deny,
    /// `PAM_IGNORE`: the service is not gated.
    Ignore,
}

/// A decision with its explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What the module returns.
    pub verdict: Verdict,
    /// The invoking user, when known.
    pub user: Option<String>,
    /// The grant that allowed it, or the one the denial is about.
    pub grant_id: Option<String>,
    /// The reason, for the log and `jit-host check`.
    pub reason: String,
    /// The one line shown to the user on denial; `None` on success.
    pub user_message: Option<String>,
    /// Audit mode allowed something enforce mode would have denied.
    pub audit_would_deny: bool,
    /// The allowing grant was signed by a break-glass key.
    pub break_glass: bool,
}

impl Decision {
    fn ignore(reason: String) -> Self {
        Self {
            verdict: Verdict::Ignore,
            user: None,
            grant_id: None,
            reason,
            user_message: None,
            audit_would_deny: false,
            break_glass: false,
        }
    }

    fn deny(
        user: Option<&str>,
        host: &str,
        grant_id: Option<String>,
        why: &str,
        hint: &str,
    ) -> Self {
        let who = user.unwrap_or("this user");
        let msg = format!("jit: sudo denied for {who} on {host}: {why}; {hint}");
        Self {
            verdict: Verdict::Deny,
            user: user.map(str::to_string),
            grant_id,
            reason: why.to_string(),
            user_message: Some(sanitize(&msg, MAX_MESSAGE)),
            audit_would_deny: false,
            break_glass: false,
        }
    }

    /// Audit mode: turn a denial into an allowance that remembers it.
    fn audited(mut self, mode: Mode) -> Self {
        if mode == Mode::Audit && self.verdict == Verdict::Deny {
            self.verdict = Verdict::Allow;
            self.audit_would_deny = true;
            self.user_message = None;
            self.reason = format!("audit mode, would deny: {}", self.reason);
        }
        self
    }

    /// `allow`, `deny`, `ignore` or `audit-allow`, for logs and JSON.
    pub fn result_word(&self) -> &'static str {
        match (self.verdict, self.audit_would_deny) {
            (Verdict::Allow, true) => "audit-allow",
            (Verdict::Allow, false) => "allow",
            (Verdict::Deny, _) => "deny",
            (Verdict::Ignore, _) => "ignore",
        }
    }
}

/// The decision when the configuration cannot be used: deny the default services (fail
/// closed), ignore every other service (so a pam-auth-update profile cannot lock people out
/// of logins because of a broken host.toml).
pub fn config_unusable(service: &str, host: &str, user: Option<&str>, error: &str) -> Decision {
    if DEFAULT_SERVICES.contains(&service) {
        Decision::deny(
            user,
            host,
            None,
            &format!("the host configuration is unusable: {error}"),
            "ask an administrator to fix /etc/jit/host.toml (jit-host check shows the problem)",
        )
    } else {
        Decision::ignore(format!(
            "service {service} is not gated (host configuration unusable: {error})"
        ))
    }
}

fn host_of<'a>(facts: &Facts<'a>) -> &'a str {
    facts.host_names.first().map_or("this host", String::as_str)
}

/// Finds the invoking user: `PAM_RUSER`, which must be a valid login name whose passwd uid
/// is the process's real uid. Returns an early decision for ignored services and for
/// callers that cannot be identified.
pub fn identify<'a>(config: &Config, facts: &Facts<'a>) -> Result<&'a str, Decision> {
    let host = host_of(facts);
    if !config.gates(facts.service) {
        return Err(Decision::ignore(format!(
            "service {} is not gated (services = {:?})",
            facts.service, config.services
        )));
    }
    let c = facts.caller;
    let Some(ruser) = c.ruser.filter(|u| !u.is_empty()) else {
        return Err(Decision::deny(
            None,
            host,
            None,
            "the invoking user is unknown (PAM_RUSER is not set)",
            "use sudo >= 1.9 or sudo-rs, which set it",
        )
        .audited(config.mode));
    };
    if jit_common::grant::check_user("user", ruser).is_err() {
        return Err(Decision::deny(
            None,
            host,
            None,
            &format!("the invoking user {ruser:?} is not a valid login name"),
            "jit grants only cover POSIX login names",
        )
        .audited(config.mode));
    }
    match c.ruser_uid {
        None => Err(Decision::deny(
            Some(ruser),
            host,
            None,
            &format!("the invoking user {ruser} has no passwd entry"),
            "check the user database (getent passwd)",
        )
        .audited(config.mode)),
        Some(uid) if uid != c.uid => Err(Decision::deny(
            Some(ruser),
            host,
            None,
            &format!(
                "the invoking user {ruser} (uid {uid}) is not the calling process's user (uid {})",
                c.uid
            ),
            "PAM_RUSER must name the real user",
        )
        .audited(config.mode)),
        Some(_) => Ok(ruser),
    }
}

/// Why one grant file did not allow the request, ranked by how useful it is to the user.
#[derive(Debug, Clone)]
enum Miss {
    Revoked {
        id: String,
        role: String,
        detail: String,
    },
    Stale {
        id: String,
        detail: String,
    },
    BreakGlassTooLong {
        id: String,
        window: u64,
        cap: u64,
    },
    Expired {
        id: String,
        role: String,
        not_after: UnixTime,
    },
    NotYetValid {
        id: String,
        not_before: UnixTime,
    },
    OtherHost {
        id: String,
        role: String,
        selectors: Vec<String>,
    },
    NoSudo {
        id: String,
        role: String,
    },
    Invalid {
        file: String,
        detail: String,
    },
    OtherUser {
        file: String,
        grant_user: String,
    },
}

impl Miss {
    fn rank(&self) -> u32 {
        match self {
            // A covering grant that only a stale or missing list blocks says so, even when
            // an older (superseded, revoked) grant is also stored: the list is what to fix.
            Self::Stale { .. } => 95,
            Self::Revoked { .. } => 90,
            Self::BreakGlassTooLong { .. } => 85,
            Self::Expired { .. } => 70,
            Self::NotYetValid { .. } => 60,
            Self::OtherHost { .. } => 50,
            Self::NoSudo { .. } => 45,
            Self::Invalid { .. } => 30,
            Self::OtherUser { .. } => 20,
        }
    }

    fn grant_id(&self) -> Option<String> {
        match self {
            Self::Revoked { id, .. }
            | Self::Stale { id, .. }
            | Self::BreakGlassTooLong { id, .. }
            | Self::Expired { id, .. }
            | Self::NotYetValid { id, .. }
            | Self::OtherHost { id, .. }
            | Self::NoSudo { id, .. } => Some(id.clone()),
            Self::Invalid { .. } | Self::OtherUser { .. } => None,
        }
    }

    fn explain(&self) -> (String, String) {
        let request =
            |role: &str| format!("run: jit request {role} --duration 30m --reason \"...\"");
        match self {
            Self::Revoked { id, role, detail } => {
                (format!("grant {id} was revoked ({detail})"), request(role))
            }
            Self::Stale { id, detail } => (
                format!("grant {id} cannot be checked against revocations: {detail}"),
                "ask an administrator to run: jit-host sync".to_string(),
            ),
            Self::BreakGlassTooLong { id, window, cap } => (
                format!(
                    "break-glass grant {id} spans {}, more than break_glass_max_window_secs ({})",
                    format_duration(*window),
                    format_duration(*cap)
                ),
                format!(
                    "sign a break-glass grant of at most {}",
                    format_duration(*cap)
                ),
            ),
            Self::Expired {
                id,
                role,
                not_after,
            } => (
                format!("grant {id} expired at {}", format_utc(*not_after)),
                request(role),
            ),
            Self::NotYetValid { id, not_before } => (
                format!("grant {id} starts at {}", format_utc(*not_before)),
                "wait, or check this host's clock".to_string(),
            ),
            Self::OtherHost {
                id,
                role,
                selectors,
            } => (
                format!(
                    "grant {id} covers hosts {}, not this one",
                    selectors.join(",")
                ),
                request(role),
            ),
            Self::NoSudo { id, role } => (
                format!("grant {id} (role {role}) does not allow sudo"),
                request("ROLE"),
            ),
            Self::Invalid { file, detail } => (
                format!("grant file {file} is not valid: {detail}"),
                request("ROLE"),
            ),
            Self::OtherUser { file, grant_user } => (
                format!("grant file {file} is for user {grant_user}"),
                request("ROLE"),
            ),
        }
    }
}

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
    revocations_with(config, file, now, |bytes| {
        UnverifiedRevocationList::parse(bytes).and_then(|l| l.verify(&config.grant_keys))
    })
}

fn revocations(
    config: &Config,
    file: &RevocationFile,
    now: UnixTime,
    records: &Records<'_>,
) -> Revocations {
    revocations_with(config, file, now, |bytes| {
        match records.revocations(bytes) {
            Some(recorded) => Ok(recorded),
            None => {
                UnverifiedRevocationList::parse(bytes).and_then(|l| l.verify(&config.grant_keys))
            }
        }
    })
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

/// One grant file's result.
enum Checked {
    Allowed {
        id: String,
        break_glass: bool,
        /// The signature check was root's record ([`jit_common::record`]), not done here.
        by_record: bool,
    },
    Missed(Miss),
}

/// Root's verified-document records for one decision, with the digest of the keys in force
/// computed at most once (and only if some document has a record).
struct Records<'a> {
    config: &'a Config,
    lookup: &'a RecordLookup,
    keyring: OnceCell<Option<KeyringDigest>>,
}

impl<'a> Records<'a> {
    fn new(config: &'a Config, lookup: &'a RecordLookup) -> Self {
        Self {
            config,
            lookup,
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
    fn grant(&self, bytes: &[u8], now: UnixTime) -> Option<(VerifiedGrant, bool)> {
        let record = self.lookup.find(bytes)?;
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
    fn revocations(&self, bytes: &[u8]) -> Option<VerifiedRevocationList> {
        let record = self.lookup.find(bytes)?;
        VerifiedRevocationList::from_record(bytes, &record, self.keyring()?).ok()
    }
}

/// A cheap pre-filter on unverified claims (peeked at in the JSON body, the signature block
/// not even decoded): could this grant allow `user` here now? Meant to be looser than the
/// real check (it ignores the start of the window); where it is stricter (a body it cannot
/// peek at), the full loop in `decide_for` still checks every file, so the decision never
/// depends on it.
fn claims_could_allow(config: &Config, facts: &Facts<'_>, user: &str, bytes: &[u8]) -> bool {
    let Some(g) = jit_common::grant::peek_claims_unverified(bytes) else {
        return false;
    };
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

fn check_grant(
    config: &Config,
    facts: &Facts<'_>,
    user: &str,
    revs: &Revocations,
    records: &Records<'_>,
    name: &str,
    bytes: &[u8],
) -> Checked {
    // Root already verified these exact bytes under these keys: skip the Ed25519 check only.
    if let Some((verified, break_glass)) = records.grant(bytes, facts.now)
        && name == format!("{}{}", verified.grant().id, crate::store::GRANT_SUFFIX)
    {
        return judge(config, facts, user, revs, &verified, break_glass, true);
    }
    let invalid = |detail: String| {
        Checked::Missed(Miss::Invalid {
            file: name.to_string(),
            detail,
        })
    };
    let parsed = match UnverifiedGrant::parse(bytes) {
        Ok(p) => p,
        Err(e) => return invalid(e.to_string()),
    };
    let claims = parsed.claims_unverified().clone();
    if name != format!("{}{}", claims.id, crate::store::GRANT_SUFFIX) {
        return invalid(format!(
            "its file name does not match its id {:?}",
            claims.id
        ));
    }
    let skew = config.clock_skew_secs;
    let (verified, break_glass) =
        match parsed
            .clone()
            .verify_at(facts.now, &config.grant_keys, skew)
        {
            Ok(v) => (v, false),
            Err(Error::UntrustedKey { .. }) if !config.break_glass_keys.is_empty() => {
                match parsed.verify_at(facts.now, &config.break_glass_keys, skew) {
                    Ok(v) => (v, true),
                    Err(e) => return window_or_invalid(e, &claims, name),
                }
            }
            Err(e) => return window_or_invalid(e, &claims, name),
        };
    judge(config, facts, user, revs, &verified, break_glass, false)
}

/// Everything after the signature: user, sudo, window, host, break-glass window cap,
/// revocation, staleness.
fn judge(
    config: &Config,
    facts: &Facts<'_>,
    user: &str,
    revs: &Revocations,
    verified: &VerifiedGrant,
    break_glass: bool,
    by_record: bool,
) -> Checked {
    let g = verified.grant();
    let hosts: Vec<&str> = facts.host_names.iter().map(String::as_str).collect();
    if let Err(nc) = verified.covers(user, &hosts, facts.now) {
        return Checked::Missed(match nc {
            NotCovered::OtherUser { grant_user } => Miss::OtherUser {
                file: format!("{}{}", g.id, crate::store::GRANT_SUFFIX),
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
            return Checked::Missed(Miss::BreakGlassTooLong {
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
            return Checked::Missed(Miss::Revoked {
                id: g.id.clone(),
                role: g.role.clone(),
                detail,
            });
        }
    }
    if !break_glass && let Some(p) = &revs.problem {
        return Checked::Missed(Miss::Stale {
            id: g.id.clone(),
            detail: p.clone(),
        });
    }
    Checked::Allowed {
        id: g.id.clone(),
        break_glass,
        by_record,
    }
}

/// The end of an allow reason: how the signature was established.
fn how(by_record: bool) -> &'static str {
    if by_record {
        " (signature verified earlier by root, per its record)"
    } else {
        ""
    }
}

fn window_or_invalid(e: Error, claims: &jit_common::Grant, name: &str) -> Checked {
    Checked::Missed(match e {
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
    })
}

/// The decision for a request, given what is stored for the user.
pub fn decide(config: &Config, facts: &Facts<'_>, evidence: &Evidence) -> Decision {
    let user = match identify(config, facts) {
        Ok(u) => u,
        Err(d) => return d,
    };
    decide_for(config, facts, user, evidence).audited(config.mode)
}

/// Allowed by a (non-break-glass) grant.
fn allowed(user: &str, id: &str, host: &str, by_record: bool) -> Decision {
    Decision {
        verdict: Verdict::Allow,
        user: Some(user.to_string()),
        grant_id: Some(id.to_string()),
        reason: format!("grant {id} covers {user} on {host}{}", how(by_record)),
        user_message: None,
        audit_would_deny: false,
        break_glass: false,
    }
}

fn decide_for(config: &Config, facts: &Facts<'_>, user: &str, evidence: &Evidence) -> Decision {
    let host = host_of(facts);
    if facts.caller.uid == 0 && user == "root" {
        return Decision {
            verdict: Verdict::Allow,
            user: Some(user.to_string()),
            grant_id: None,
            reason: "the caller is already root; there is nothing to elevate".into(),
            user_message: None,
            audit_would_deny: false,
            break_glass: false,
        };
    }
    let grants = match &evidence.grants {
        Ok(g) => g,
        Err(e) => {
            return Decision::deny(
                Some(user),
                host,
                None,
                &format!("the grant store is not safe to read: {e}"),
                "ask an administrator to fix it (jit-host check shows the problem)",
            );
        }
    };
    let records = Records::new(config, &evidence.records);
    let revs = revocations(config, &evidence.revocations, facts.now, &records);
    // Fast path: verify signatures only of grants whose (unverified) claims could allow.
    // Every grant that `check_grant` allows passes this filter, so the first allowed grant
    // found here is the one the full loop below would find first: the decision is the same,
    // without an Ed25519 check per grant for other hosts, users or times. Claims are never
    // trusted here: an allow still comes only from `check_grant` (signature verified now, or
    // by root for these exact bytes under these keys, as a trusted record states).
    for f in grants
        .files
        .iter()
        .filter(|f| claims_could_allow(config, facts, user, &f.bytes))
    {
        if let Checked::Allowed {
            id,
            break_glass: false,
            by_record,
        } = check_grant(config, facts, user, &revs, &records, &f.name, &f.bytes)
        {
            return allowed(user, &id, host, by_record);
        }
    }
    let mut best: Option<Miss> = None;
    let mut allowed_break_glass: Option<(String, bool)> = None;
    for f in &grants.files {
        match check_grant(config, facts, user, &revs, &records, &f.name, &f.bytes) {
            Checked::Allowed {
                id,
                break_glass: false,
                by_record,
            } => {
                return allowed(user, &id, host, by_record);
            }
            Checked::Allowed {
                id,
                break_glass: true,
                by_record,
            } => {
                allowed_break_glass.get_or_insert((id, by_record));
            }
            Checked::Missed(m) => {
                let better = match (&best, &m) {
                    (None, _) => true,
                    (Some(b), m) if m.rank() > b.rank() => true,
                    (
                        Some(Miss::Expired { not_after: old, .. }),
                        Miss::Expired { not_after: new, .. },
                    ) => new > old,
                    _ => false,
                };
                if better {
                    best = Some(m);
                }
            }
        }
    }
    if let Some((id, by_record)) = allowed_break_glass {
        let mut reason = format!(
            "BREAK-GLASS grant {id} covers {user} on {host}{}",
            how(by_record)
        );
        if let Some(p) = &revs.problem {
            reason.push_str(&format!(" (bypassing: {p})"));
        }
        return Decision {
            verdict: Verdict::Allow,
            user: Some(user.to_string()),
            grant_id: Some(id),
            reason,
            user_message: None,
            audit_would_deny: false,
            break_glass: true,
        };
    }
    if let Some(m) = best {
        let (why, hint) = m.explain();
        return Decision::deny(Some(user), host, m.grant_id(), &why, &hint);
    }
    let why = match grants.problems.first() {
        Some(p) => format!("no usable grant (refused: {p})"),
        None if grants.truncated => "no usable grant among the first files examined".to_string(),
        None => "no grant for this user on this host".to_string(),
    };
    Decision::deny(
        Some(user),
        host,
        None,
        &why,
        "run: jit request ROLE --duration 30m --reason \"...\"",
    )
}

#[cfg(test)]
mod tests;

//! The decision: may this caller use sudo on this host now? A function of plain values: no
//! clock, no environment, no file. Shared by `pam_jit.so` and `jit-host check` through
//! [`crate::decide_here`], which identifies the caller once, reads the store and passes
//! root's verified-document records in as a [`RecordSource`].
//!
//! ```text
//! identify(config, facts)                               -> Invoker, or an early Decision
//! decide(config, facts, invoker, evidence, records)     -> Decision
//! ```
//!
//! A grant allows sudo only if it parses, is signed by a trusted grant key (or a
//! break-glass key), is inside its window (with the configured skew), names this user,
//! allows sudo, covers one of this host's names, is not revoked (by grant id or certificate
//! serial), and, unless signed by a break-glass key, the local revocation list exists, is
//! valid and is not older than `revocation_max_age_secs`. A break-glass grant's window may
//! not exceed `break_glass_max_window_secs` (counted from when it was signed, if earlier).
//! A session-bound grant (`session_bound`) must, after all of that, also be bound to the
//! caller's live SSH connection ([`session`]); every other grant is decided without it.
//!
//! * [`identify`]: who is asking ([`Invoker`]).
//! * [`records`]: the [`RecordSource`] seam for root's records.
//! * [`revocations`]: the revocation state and staleness rule ([`revocation_state`]).
//! * [`session`]: the caller's session's binding ([`BindingEvidence`]) against a
//!   session-bound grant.
//! * `check`: one grant file against the request; `miss`: why it did not allow, ranked.

mod check;
pub mod identify;
mod miss;
pub mod records;
pub mod revocations;
pub mod session;

use jit_common::UnixTime;
use jit_common::log::sanitize;

use crate::config::{Config, DEFAULT_SERVICES, Mode};
use crate::store::{RevocationFile, UserGrants};
use check::{Checked, Context};
pub(crate) use check::{claims_allow, claims_could_allow};
pub use identify::{Invoker, identify};
use miss::Miss;
use records::Records;
pub use records::{NoRecords, RecordSource};
pub use revocations::{Revocations, revocation_state};
pub use session::BindingEvidence;

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
    /// The caller's audit session id (`/proc/self/sessionid`; `None` when unset: the
    /// process is in no login session). Only session-bound grants look at it.
    pub session_id: Option<u32>,
}

/// What was found on disk for the user (read by [`crate::gather`]).
#[derive(Debug, Clone)]
pub struct Evidence {
    /// The user's grant files, or why the store as a whole could not be trusted.
    pub grants: Result<UserGrants, String>,
    /// The local revocation list.
    pub revocations: RevocationFile,
    /// The caller's session's binding, read only when a session-bound grant could allow
    /// ([`crate::gather_binding`]).
    pub session: BindingEvidence,
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
    /// For a decision about a session-bound grant: the caller's audit session id.
    pub session: Option<u32>,
    /// For a decision about a session-bound grant: its certificate serial.
    pub serial: Option<u64>,
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
            session: None,
            serial: None,
        }
    }

    /// Marks a decision about a session-bound grant with certificate `serial`.
    fn bound(mut self, session: Option<u32>, serial: Option<u64>) -> Self {
        if serial.is_some() {
            self.session = session;
            self.serial = serial;
        }
        self
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
            session: None,
            serial: None,
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

/// The decision for `invoker`'s request, given what is stored for them. Root's records of
/// documents are asked for through `records` (only for grants whose claims could allow, and
/// for the revocation list); `decide` itself reads nothing.
pub fn decide(
    config: &Config,
    facts: &Facts<'_>,
    invoker: Invoker<'_>,
    evidence: &Evidence,
    records: &dyn RecordSource,
) -> Decision {
    decide_for(config, facts, invoker, evidence, records, &[]).audited(config.mode)
}

/// [`decide`], with the pre-filter's answer for each grant file (in order) already known
/// (`could_allow[i]` for `evidence.grants`' file `i`, as [`crate::decide_here_lazy`] peeked
/// at each file once); a file without an answer is peeked at here. Only which files are
/// checked first depends on it, never the decision (see the fast path in `decide_for`).
pub fn decide_prefiltered(
    config: &Config,
    facts: &Facts<'_>,
    invoker: Invoker<'_>,
    evidence: &Evidence,
    records: &dyn RecordSource,
    could_allow: &[bool],
) -> Decision {
    decide_for(config, facts, invoker, evidence, records, could_allow).audited(config.mode)
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
        session: None,
        serial: None,
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

fn decide_for(
    config: &Config,
    facts: &Facts<'_>,
    invoker: Invoker<'_>,
    evidence: &Evidence,
    source: &dyn RecordSource,
    could_allow: &[bool],
) -> Decision {
    let host = host_of(facts);
    let user = invoker.name();
    if invoker.uid() == 0 && user == "root" {
        return Decision {
            verdict: Verdict::Allow,
            user: Some(user.to_string()),
            grant_id: None,
            reason: "the caller is already root; there is nothing to elevate".into(),
            user_message: None,
            audit_would_deny: false,
            break_glass: false,
            session: None,
            serial: None,
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
    let records = Records::new(config, source);
    let revs = revocations::revocations(config, &evidence.revocations, facts.now, &records);
    let cx = Context {
        config,
        facts,
        user,
        revs: &revs,
        records: &records,
        binding: &evidence.session,
    };
    // Fast path: verify signatures only of grants whose (unverified) claims could allow.
    // Every grant that `Context::check` allows passes this filter, so the first allowed grant
    // found here is the one the full loop below would find first: the decision is the same,
    // without an Ed25519 check per grant for other hosts, users or times. Claims are never
    // trusted here: an allow still comes only from `Context::check` (signature verified now, or
    // by root for these exact bytes under these keys, as a trusted record states).
    let candidate = |i: usize, bytes: &[u8]| match could_allow.get(i) {
        Some(known) => *known,
        None => claims_could_allow(config, facts, user, bytes),
    };
    for (_, f) in grants
        .files
        .iter()
        .enumerate()
        .filter(|(i, f)| candidate(*i, &f.bytes))
    {
        if let Checked::Allowed {
            id,
            break_glass: false,
            by_record,
            serial,
        } = cx.check(&f.name, &f.bytes)
        {
            return allowed(user, &id, host, by_record).bound(facts.session_id, serial);
        }
    }
    let mut best: Option<(Miss, Option<u64>)> = None;
    let mut allowed_break_glass: Option<(String, bool, Option<u64>)> = None;
    for f in &grants.files {
        match cx.check(&f.name, &f.bytes) {
            Checked::Allowed {
                id,
                break_glass: false,
                by_record,
                serial,
            } => {
                return allowed(user, &id, host, by_record).bound(facts.session_id, serial);
            }
            Checked::Allowed {
                id,
                break_glass: true,
                by_record,
                serial,
            } => {
                allowed_break_glass.get_or_insert((id, by_record, serial));
            }
            Checked::Missed(m, serial) => {
                if best.as_ref().is_none_or(|(b, _)| m.better_than(b)) {
                    best = Some((m, serial));
                }
            }
        }
    }
    if let Some((id, by_record, serial)) = allowed_break_glass {
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
            session: None,
            serial: None,
        }
        .bound(facts.session_id, serial);
    }
    if let Some((m, serial)) = best {
        let (why, hint) = m.explain();
        return Decision::deny(Some(user), host, m.grant_id(), &why, &hint)
            .bound(facts.session_id, serial);
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

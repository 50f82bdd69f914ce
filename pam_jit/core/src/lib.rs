//! The host's read side, shared by `pam_jit.so` (the `pam_jit` crate) and `jit-host`:
//! everything a sudo decision needs, and nothing that writes.
//!
//! * [`config`]: `/etc/jit/host.toml`, strict and validated.
//! * [`store`]: reading the grant store and revocation list with bounded work.
//! * [`logline`]: the module's syslog lines (stable `key=value` fields, one builder each).
//! * [`decide`]: the decision over plain values; [`decide_here`] is the one path from the
//!   caller's facts to a decision (identify once, [`gather`], decide with root's records).
//! * [`session`]: SSH session bindings of session-bound grants (read side, liveness, and
//!   in [`session::write`] the one writer, used only by the module's session hooks and
//!   `jit-host`).
//! * [`sys`]: safe wrappers over the few libc calls (uids, passwd, host name); the only
//!   `unsafe` on the host side outside the PAM boundary itself.
//!
//! Invariants: this crate opens no socket, starts no thread, reads no environment
//! variable, holds no private key, writes no file except session bindings (only in
//! [`session::write`], called only from the module's session hooks and `jit-host`, never
//! from the sudo decision) and never writes to stdout or stderr (checked by
//! `tests/system/01-invariants.sh`).
//!
//! Nothing here may panic inside sudo: besides the workspace's `unwrap_used`/`expect_used`,
//! indexing, slicing and explicit panics are denied outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unreachable,
        clippy::string_slice
    )
)]

pub mod config;
pub mod decide;
pub mod logline;
pub mod session;
pub mod store;
pub mod sys;

use std::path::Path;

use config::Config;
use decide::{BindingEvidence, Decision, Evidence, Facts, Invoker};

/// The names this host answers to, in [`decide::Facts::host_names`] order: the kernel host
/// name (`gethostname`), then host.toml's `hostnames`. The same for pam_jit.so, `jit-host
/// check`, `principals` and `sync`.
pub fn host_names(config: &Config) -> Vec<String> {
    host_names_with(sys::kernel_hostname(), config)
}

/// [`host_names`] with the kernel host name already read (`kernel`), so a caller that needs
/// it anyway asks the kernel once.
pub fn host_names_with(kernel: Option<String>, config: &Config) -> Vec<String> {
    let mut names: Vec<String> = kernel.into_iter().collect();
    for h in &config.hostnames {
        if !names.contains(h) {
            names.push(h.clone());
        }
    }
    names
}

/// Reads what the store holds for `invoker` (bounded: one directory, capped entries and
/// sizes), the revocation list, and (only when one of their grants that could allow is
/// session-bound, [`gather_binding`]) the binding of the caller's session.
pub fn gather(config: &Config, facts: &Facts<'_>, invoker: Invoker<'_>) -> Evidence {
    gather_lazy(config, facts, invoker, || facts.session_id).0
}

/// What one pass over the user's grant files found: for each file (in order) whether its
/// unverified claims could allow ([`decide::claims_could_allow`]), and whether any file may
/// be session-bound (claims it, or cannot be peeked at).
struct Peeked {
    could_allow: Vec<bool>,
    bound_candidate: bool,
    maybe_bound: bool,
}

/// Peeks at every file's claims once (the pre-filter's and [`gather_binding`]'s question
/// together).
fn peek_all(
    config: &Config,
    facts: &Facts<'_>,
    user: &str,
    grants: &Result<store::UserGrants, String>,
) -> Peeked {
    let mut out = Peeked {
        could_allow: Vec::new(),
        bound_candidate: false,
        maybe_bound: false,
    };
    let Ok(grants) = grants else { return out };
    for f in &grants.files {
        let peek = jit_common::grant::peek_claims_unverified(&f.bytes);
        let could = peek
            .as_ref()
            .is_some_and(|g| decide::claims_allow(config, facts, user, g));
        let bound = peek.as_ref().is_none_or(|g| g.session_bound);
        out.could_allow.push(could);
        out.maybe_bound |= bound;
        out.bound_candidate |= could && bound;
    }
    out
}

/// [`gather`], with the caller's audit session id read (`session_id`) only when one of the
/// user's grant files may be session-bound; returns the evidence, the session id as read (or
/// `None` unread) and the pre-filter's answer per file.
fn gather_lazy(
    config: &Config,
    facts: &Facts<'_>,
    invoker: Invoker<'_>,
    session_id: impl FnOnce() -> Option<u32>,
) -> (Evidence, Option<u32>, Vec<bool>) {
    // The grant writer's passwd entry is read only if something in the store is not root's.
    let writer_uid = || sys::user_by_name(&config.grant_writer).map(|p| p.uid);
    let state: &Path = &config.state_dir;
    let grants =
        store::read_user_grants_with(state, invoker.name(), &writer_uid).map_err(|e| e.to_string());
    let peeked = peek_all(config, facts, invoker.name(), &grants);
    let sid = if peeked.maybe_bound {
        session_id()
    } else {
        None
    };
    let session = match sid {
        Some(id) if peeked.bound_candidate => read_binding(config, id),
        _ => BindingEvidence::NotRead,
    };
    let evidence = Evidence {
        grants,
        revocations: store::read_revocations(state),
        session,
    };
    (evidence, sid, peeked.could_allow)
}

/// The binding of the caller's session (`<session_dir>/<session id>.binding`) and its
/// liveness, read only if the caller has an audit session id and one of `grants` whose
/// (unverified) claims could allow is session-bound; else [`BindingEvidence::NotRead`], so
/// that the common path reads nothing more. Reads; never writes.
pub fn gather_binding(
    config: &Config,
    facts: &Facts<'_>,
    user: &str,
    grants: &Result<store::UserGrants, String>,
) -> BindingEvidence {
    match facts.session_id {
        Some(id) if peek_all(config, facts, user, grants).bound_candidate => {
            read_binding(config, id)
        }
        _ => BindingEvidence::NotRead,
    }
}

/// Reads the binding of session `id` and its liveness.
fn read_binding(config: &Config, id: u32) -> BindingEvidence {
    match session::read_binding(&config.session_dir, id) {
        Ok(None) => BindingEvidence::Missing,
        Ok(Some(b)) => {
            let live = session::liveness(&b);
            BindingEvidence::Found(Box::new(b), live)
        }
        Err(e) => BindingEvidence::Unusable(e),
    }
}

/// The whole read-side path of one sudo decision, shared by `pam_jit.so` and `jit-host
/// check`: identify the caller once ([`decide::identify`]), read what the store holds for
/// them ([`gather`]), and decide ([`decide::decide`]) with root's verified-document records
/// ([`store::RecordLookup`]) as the record source.
pub fn decide_here(config: &Config, facts: &Facts<'_>) -> Decision {
    decide_here_lazy(config, facts, || facts.session_id)
}

/// [`decide_here`] for `pam_jit.so`: the caller's audit session id (`facts.session_id` is
/// ignored) is read through `session_id` only when one of the caller's grant files may be
/// session-bound, so the common path does not read `/proc/self/sessionid`. Each grant
/// file's claims are peeked at once, for the binding and the pre-filter together;
/// [`decide::decide`] stays pure and sees the session id in its facts as before.
pub fn decide_here_lazy(
    config: &Config,
    facts: &Facts<'_>,
    session_id: impl FnOnce() -> Option<u32>,
) -> Decision {
    let invoker = match decide::identify(config, facts) {
        Ok(i) => i,
        Err(early) => return early,
    };
    let (evidence, sid, could_allow) = gather_lazy(config, facts, invoker, session_id);
    let facts = Facts {
        session_id: sid,
        ..*facts
    };
    let records = store::RecordLookup::in_state_dir(&config.state_dir);
    decide::decide_prefiltered(config, &facts, invoker, &evidence, &records, &could_allow)
}

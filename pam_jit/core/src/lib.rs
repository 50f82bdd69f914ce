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
    let mut names: Vec<String> = sys::kernel_hostname().into_iter().collect();
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
    let writer_uid = sys::user_by_name(&config.grant_writer).map(|p| p.uid);
    let state: &Path = &config.state_dir;
    let grants =
        store::read_user_grants(state, invoker.name(), writer_uid).map_err(|e| e.to_string());
    let session = gather_binding(config, facts, invoker.name(), &grants);
    Evidence {
        grants,
        revocations: store::read_revocations(state),
        session,
    }
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
    let (Some(id), Ok(grants)) = (facts.session_id, grants) else {
        return BindingEvidence::NotRead;
    };
    let wanted = grants.files.iter().any(|f| {
        decide::claims_could_allow(config, facts, user, &f.bytes)
            && jit_common::grant::parse_claims_unverified(&f.bytes).is_ok_and(|g| g.session_bound)
    });
    if !wanted {
        return BindingEvidence::NotRead;
    }
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
    let invoker = match decide::identify(config, facts) {
        Ok(i) => i,
        Err(early) => return early,
    };
    let evidence = gather(config, facts, invoker);
    let records = store::RecordLookup::in_state_dir(&config.state_dir);
    decide::decide(config, facts, invoker, &evidence, &records)
}

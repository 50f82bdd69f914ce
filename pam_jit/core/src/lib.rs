//! The host's read side, shared by `pam_jit.so` (the `pam_jit` crate) and `jit-host`:
//! everything a sudo decision needs, and nothing that writes.
//!
//! * [`config`]: `/etc/jit/host.toml`, strict and validated.
//! * [`store`]: reading the grant store and revocation list with bounded work.
//! * [`decide`]: the decision over plain values; [`decide_here`] is the one path from the
//!   caller's facts to a decision (identify once, [`gather`], decide with root's records).
//! * [`sys`]: safe wrappers over the few libc calls (uids, passwd, host name); the only
//!   `unsafe` on the host side outside the PAM boundary itself.
//!
//! Invariants: this crate opens no socket, starts no thread, reads no environment
//! variable, holds no private key, never writes a file and never writes to stdout or
//! stderr (checked by `tests/system/01-invariants.sh`).
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
pub mod session;
pub mod store;
pub mod sys;

use std::path::Path;

use config::Config;
use decide::{Decision, Evidence, Facts, Invoker};

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
/// sizes) and the revocation list.
pub fn gather(config: &Config, invoker: Invoker<'_>) -> Evidence {
    let writer_uid = sys::user_by_name(&config.grant_writer).map(|p| p.uid);
    let state: &Path = &config.state_dir;
    Evidence {
        grants: store::read_user_grants(state, invoker.name(), writer_uid)
            .map_err(|e| e.to_string()),
        revocations: store::read_revocations(state),
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
    let evidence = gather(config, invoker);
    let records = store::RecordLookup::in_state_dir(&config.state_dir);
    decide::decide(config, facts, invoker, &evidence, &records)
}

//! `pam_jit.so`: gates sudo on CA-signed grants stored on the host, decided offline.
//!
//! Rooms, from the outside in:
//! * [`pam`]: the C boundary (the six `pam_sm_*` hooks, `pam_syslog`, libc look-ups);
//!   the only place `unsafe` is allowed.
//! * [`config`]: `/etc/jit/host.toml`, strict and validated.
//! * [`store`]: reading the grant store and revocation list with bounded work.
//! * [`decide`]: the decision, a pure function of plain values, shared with `jit-host`.
//!
//! Invariants: this crate opens no socket, starts no thread, reads no environment
//! variable, holds no private key and never writes to stdout or stderr.
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
pub mod pam;
pub mod store;

//! The jit signing service `jit-ca`. The HTTP contract and request signing are the
//! `jit-api` crate, shared with the client `jit` and `jit-host sync`.
//!
//! By where a change belongs:
//! [`config`] (config.toml), [`policy`] (policy.toml: roles and who may do what),
//! [`store`] (SQLite), [`audit`] (the hash chain and its events), [`signer`] (CA keys,
//! certificates, grants), [`krl`] (OpenSSH KRL encoding), [`service`] (the decisions,
//! synchronous), [`api`] (HTTP), [`server`] (listening, TLS, signals), [`admin`] (operator
//! commands on a data directory), [`cli`] (the `jit-ca` command line; `main.rs` only calls
//! it), [`error`] (operator and API errors; depends on no other module of the crate),
//! [`webhook`] (outgoing webhooks: Standard Webhooks signing, one bounded HTTP client, the
//! authorizing webhook of auto-approval rules), [`notify`] (notifications: events, sinks, the
//! Slack rendering).
#![forbid(unsafe_code)]
// stdout goes through jit_common::outln!: println! panics on a closed pipe.
#![cfg_attr(not(test), deny(clippy::print_stdout))]

pub mod admin;
pub mod api;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod files;
pub mod krl;
pub mod notify;
pub mod policy;
pub mod server;
pub mod service;
pub mod signer;
pub mod store;
mod ui;
pub mod webhook;

//! `jit-ca`'s API through the real router in process (the kit's harness: a real data
//! directory, SQLite on disk, a fixed clock, calls signed as the client signs them). One
//! test binary for all of them: each binary links the whole server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod alerts;
mod audit_page;
mod ca_api;
mod ca_approvals;
mod ca_hostile_api;
mod claims;
mod evidence;
mod fail_closed;
mod group_commit;
mod notify;
mod outbox;
mod policy_conditions;
mod receiver;
mod reliability_ca_bad_inputs;
mod reliability_regressions;
mod replicas;
mod requester;
mod scope;
mod service_split;
mod session_bound;
mod sweep;
mod ui;
mod web;
mod webhook;
mod workflow;

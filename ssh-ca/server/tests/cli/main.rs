//! `jit-ca` as a program: the real binary on real directories, and a running `jit-ca serve`
//! (connections, operator commands). One test binary for all of them.
//!
//! `host_grants_memory` and `host_grants_slow_readers` stay binaries of their own: they
//! measure the process's resident set, which other tests in the same process would distort.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ca_cli;
mod ca_connections;
mod ca_contract;
mod ca_operator;
mod contacts;
mod db_copy;
mod dev_docs;
mod notify;
mod policy_test;
/// The in-process tests' receiver (a real HTTP server on 127.0.0.1).
#[allow(dead_code)]
#[path = "../api/receiver.rs"]
mod receiver;

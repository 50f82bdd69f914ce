//! Tests of the `jit` client against a real `jit-ca serve` (one test binary: each one links
//! the whole client).
//!
//! * [`cli`]: the request/approve/login/extend/revoke life cycle, `--json`, settings, errors;
//! * [`agent`]: signing with an agent-held key and loading certificates into `ssh-agent`;
//! * [`failover`]: several servers (replicas): which failures go to the next one;
//! * [`evidence`]: `jit approve` signs the request's digest; the CA keeps the signed call;
//! * [`tls`]: HTTPS with a certificate from a private CA (`JIT_CA_CERT`, `ca_cert`);
//! * [`web`]: `jit web`: the one-time login URL and `--logout`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent;
mod cli;
mod contract;
mod evidence;
mod failover;
mod policy_conditions;
mod requester;
mod session_bound;
mod tls;
mod web;

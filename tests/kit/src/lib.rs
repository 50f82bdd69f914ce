//! The jit test kit (dev only, never shipped): what the CA, client and host tests, the fuzz
//! targets and the benchmarks share, so none of them keeps its own copy.
//!
//! * [`keys`]: deterministic Ed25519 keys (CA, grant, break-glass, users by name) and the
//!   grant vectors' committed TEST ONLY key.
//! * [`docs`]: signed grants and revocation lists for host-side tests (claims with defaults).
//! * [`request`]: API calls signed exactly as the client signs them.
//! * [`fixtures`]: host.toml text and other small inputs.
//! * [`bins`]: the workspace's programs (`jit`, `jit-ca`, `jit-host`), built on first use.
//! * [`harness`]: an in-process CA (real data directory, real router, fixed clock).
//! * [`running`]: a real `jit-ca serve` on 127.0.0.1, users with `ssh-keygen` keys, `jit` as
//!   one of them, and an `ssh-agent`.
//! * [`pg`]: the tests on PostgreSQL (`JIT_TEST_POSTGRES`: a fresh database per data
//!   directory), raw SQL on either database, and the one list of SQLite-only tests.
//! * [`cdp`]: a headless `chromium` driven over the DevTools protocol (the web page's
//!   browser tests).
#![forbid(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::new_without_default,
    missing_debug_implementations
)]

pub mod bins;
pub mod cdp;
pub mod docs;
pub mod fixtures;
pub mod harness;
pub mod keys;
pub mod pg;
pub mod request;
pub mod running;

pub use bins::{JIT, JIT_CA, JIT_HOST};

//! The jit test kit (dev only, never shipped): what the CA, client and host tests share.
//!
//! * [`bins`]: the workspace's programs (`jit`, `jit-ca`, `jit-host`), built on first use.
//! * [`harness`]: an in-process CA (real data directory, real router, fixed clock) and API
//!   calls signed exactly as the client signs them.
//! * [`running`]: a real `jit-ca serve` on 127.0.0.1, users with `ssh-keygen` keys, `jit` as
//!   one of them, and an `ssh-agent`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::new_without_default,
    missing_debug_implementations
)]

pub mod bins;
pub mod harness;
pub mod running;

pub use bins::{JIT, JIT_CA, JIT_HOST};

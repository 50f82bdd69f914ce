//! `jit-host` (placeholder until the host-side issue lands).
#![forbid(unsafe_code)]

fn main() {}

//! `jit-ca` (placeholder until the signing-service issue lands).
#![forbid(unsafe_code)]

fn main() {}

//! Shared setup of the `jit-host principals` targets: the kit's fixed user-CA key and the
//! grant vectors' key are trusted by a host.toml whose state directory is a private
//! directory under $JIT_FUZZ_SCRATCH (else /dev/shm).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use jit_test_kit::{docs, fixtures, keys};
use pam_jit_core::config::Config;
use ssh_key::PrivateKey;

/// The user-CA key of the targets (the kit's, seed 7; TEST ONLY).
pub fn user_ca() -> PrivateKey {
    keys::user_ca()
}

/// A user key to certify (seed 9; TEST ONLY).
pub fn user_key() -> PrivateKey {
    keys::seeded(9)
}

/// Scratch space: `$JIT_FUZZ_SCRATCH` (smoke.sh and run-long.sh set it and remove it),
/// else /dev/shm.
pub fn scratch() -> PathBuf {
    std::env::var_os("JIT_FUZZ_SCRATCH").map_or_else(|| PathBuf::from("/dev/shm"), PathBuf::from)
}

fn state_dir() -> PathBuf {
    scratch().join(format!("jit-fuzz-principals-{}", std::process::id()))
}

/// The configuration, created once per process.
pub fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let dir = state_dir();
        fixtures::dir_0755(&dir.join("grants"));
        let grant = keys::vectors::grant_key();
        let text = fixtures::host_toml(&dir, &[&grant], &[&user_ca()], &["grant_writer = \"root\""]);
        // A fresh signed revocation list, as a synced host has (without one principals
        // refuses every certificate, and the later stages would never run).
        let list = docs::revocations(1, crate::common::NOW).sign(&grant);
        fixtures::write_mode(&dir.join("revocations"), &list, 0o644);
        Config::parse(&text).unwrap_or_else(|e| panic!("fuzz host.toml: {e}"))
    })
}

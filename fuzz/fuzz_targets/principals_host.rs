//! Shared setup of the `jit-host principals` targets. `principals` lives in the jit-host
//! binary crate, so its modules are compiled in here with `#[path]` (the same source, not a
//! copy): a fixed user-CA key and the grant vectors' key are trusted by a host.toml whose
//! state directory is a private directory under $JIT_FUZZ_SCRATCH (else /dev/shm).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use pam_jit_core::config::Config;
use ssh_key::PrivateKey;
use ssh_key::private::Ed25519Keypair;

/// The user-CA key of the targets (derived from a fixed seed; TEST ONLY).
pub fn user_ca() -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[7u8; 32]))
}

/// A user key to certify (fixed seed; TEST ONLY).
pub fn user_key() -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[9u8; 32]))
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
        use std::os::unix::fs::DirBuilderExt;
        let dir = state_dir();
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir.join("grants"));
        let ca = user_ca().public_key().to_openssh().unwrap_or_default();
        let grant = include_str!("../../common/tests/vectors/test-grant-key.pub").trim();
        let text = format!(
            "state_dir = {:?}\ngrant_writer = \"root\"\nuser_ca_keys = [{:?}]\ngrant_keys = [{:?}]\n",
            dir.display().to_string(),
            ca.trim(),
            grant
        );
        // A fresh signed revocation list, as a synced host has (without one principals
        // refuses every certificate, and the later stages would never run).
        let key = PrivateKey::from_openssh(include_str!(
            "../../common/tests/vectors/test-grant-key"
        ))
        .unwrap_or_else(|e| panic!("test grant key: {e}"));
        let list = jit_common::RevocationList::new(1, crate::common::NOW)
            .sign(&key)
            .unwrap_or_else(|e| panic!("revocation list: {e}"));
        let path = dir.join("revocations");
        let _ = std::fs::write(&path, list);
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644));
        Config::parse(&text).unwrap_or_else(|e| panic!("fuzz host.toml: {e}"))
    })
}

//! Deterministic Ed25519 keys (TEST ONLY): the same name or seed gives the same key in every
//! run and every process, so fixtures, fuzz targets and benchmarks need no key files and a
//! failure replays with the same keys.
//!
//! The roles have fixed seeds: [`user_ca`] (7: the fuzz targets' user CA since they were
//! written), [`grant`], [`break_glass`], [`api_ca`]; people get [`user`]`(name)`.
//! [`vectors`] holds the committed TEST ONLY key of common's grant vectors.

use std::path::{Path, PathBuf};

use jit_common::KeyRing;
use ssh_key::private::Ed25519Keypair;
use ssh_key::{LineEnding, PrivateKey};

/// The Ed25519 key whose 32-byte seed is `seed` repeated.
pub fn seeded(seed: u8) -> PrivateKey {
    from_seed(&[seed; 32])
}

/// The Ed25519 key with this 32-byte seed.
pub fn from_seed(seed: &[u8; 32]) -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(seed))
}

/// A key derived from `name` (FNV-1a stretched over 32 bytes: not a KDF, just stable and
/// different for different names). `named("alice") != named("bob")`, in every run.
pub fn named(name: &str) -> PrivateKey {
    let mut seed = [0u8; 32];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, chunk) in seed.chunks_mut(8).enumerate() {
        for b in name.as_bytes().iter().chain(&[i as u8]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        chunk.copy_from_slice(&h.to_le_bytes());
    }
    let mut key = from_seed(&seed);
    key.set_comment(name);
    key
}

/// The user CA (signs certificates; hosts trust it in `user_ca_keys`).
pub fn user_ca() -> PrivateKey {
    seeded(7)
}

/// The grant-signing key (hosts trust it in `grant_keys`).
pub fn grant() -> PrivateKey {
    seeded(11)
}

/// The break-glass key (hosts trust it in `break_glass_keys`).
pub fn break_glass() -> PrivateKey {
    seeded(13)
}

/// A user's key: `named("user:NAME")`.
pub fn user(name: &str) -> PrivateKey {
    let mut key = named(&format!("user:{name}"));
    key.set_comment(name);
    key
}

/// A keyring of the public halves.
pub fn ring(keys: &[&PrivateKey]) -> KeyRing {
    let mut r = KeyRing::new();
    for k in keys {
        r.push(k.public_key().clone());
    }
    r
}

/// The public key's OpenSSH line (`ssh-ed25519 AAAA... comment`).
pub fn openssh_pub(key: &PrivateKey) -> String {
    key.public_key().to_openssh().expect("encode public key")
}

/// Writes `dir/name` (the private key, 0600) and `dir/name.pub`; returns both paths.
pub fn write_pair(dir: &Path, name: &str, key: &PrivateKey) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt as _;
    let private = dir.join(name);
    let public = dir.join(format!("{name}.pub"));
    std::fs::write(
        &private,
        key.to_openssh(LineEnding::LF)
            .expect("encode key")
            .as_bytes(),
    )
    .expect("write private key");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600))
        .expect("chmod private key");
    std::fs::write(&public, format!("{}\n", openssh_pub(key))).expect("write public key");
    (private, public)
}

/// The committed grant test vectors' key and clock (`common/tests/vectors/`, TEST ONLY).
pub mod vectors {
    use jit_common::KeyRing;
    use jit_common::time::UnixTime;
    use ssh_key::PrivateKey;

    /// 2027-01-15T08:00:00Z, the "now" of `common/tests/vectors/MANIFEST`.
    pub const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);

    /// The private key the vectors are signed with.
    pub const GRANT_KEY: &str = include_str!("../../../common/tests/vectors/test-grant-key");
    /// Its public half (one OpenSSH line).
    pub const GRANT_KEY_PUB: &str =
        include_str!("../../../common/tests/vectors/test-grant-key.pub");

    /// The vectors' grant-signing key.
    pub fn grant_key() -> PrivateKey {
        PrivateKey::from_openssh(GRANT_KEY).expect("common/tests/vectors/test-grant-key")
    }

    /// A keyring trusting only the vectors' key.
    pub fn trusted() -> KeyRing {
        KeyRing::from_openssh_lines(GRANT_KEY_PUB).expect("test-grant-key.pub")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_distinct() {
        assert_eq!(named("alice"), named("alice"));
        assert_ne!(
            named("alice").public_key().key_data(),
            named("bob").public_key().key_data()
        );
        assert_eq!(user("alice").comment(), "alice");
        let roles = [user_ca(), grant(), break_glass(), user("alice")];
        for (i, a) in roles.iter().enumerate() {
            for b in &roles[i + 1..] {
                assert_ne!(a.public_key().key_data(), b.public_key().key_data());
            }
        }
        // The fuzz targets' user CA since they were written (seed 7).
        assert_eq!(
            user_ca().public_key().key_data(),
            PrivateKey::from(Ed25519Keypair::from_seed(&[7; 32]))
                .public_key()
                .key_data()
        );
    }

    #[test]
    fn the_vectors_key_signs_what_its_keyring_trusts() {
        let doc = jit_common::RevocationList::new(1, vectors::NOW)
            .sign(&vectors::grant_key())
            .unwrap();
        assert!(
            jit_common::UnverifiedRevocationList::parse(&doc)
                .unwrap()
                .verify(&vectors::trusted())
                .is_ok()
        );
    }
}

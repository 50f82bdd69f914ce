//! Flipping any single byte of a valid signed grant never yields a valid grant.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;

use jit_common::{KeyRing, UnverifiedGrant, UnverifiedRevocationList};
use proptest::prelude::*;

const NOW: u64 = 1_800_000_000;

fn load(name: &str) -> Vec<u8> {
    fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors")
            .join(name),
    )
    .unwrap()
}

fn trusted() -> KeyRing {
    KeyRing::from_openssh_lines(&String::from_utf8(load("test-grant-key.pub")).unwrap()).unwrap()
}

fn accepted(bytes: &[u8], keys: &KeyRing) -> bool {
    UnverifiedGrant::parse(bytes)
        .and_then(|g| g.verify_at(NOW, keys, 60))
        .is_ok()
}

#[test]
fn the_untampered_grant_is_valid() {
    assert!(accepted(&load("valid.grant"), &trusted()));
}

/// Every position, several masks: exhaustive over the file.
#[test]
fn every_single_byte_flip_is_rejected() {
    let valid = load("valid.grant");
    let keys = trusted();
    let mut tried = 0;
    for i in 0..valid.len() {
        for mask in [0x01u8, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff] {
            let mut t = valid.clone();
            t[i] ^= mask;
            assert!(
                !accepted(&t, &keys),
                "flipping byte {i} with {mask:#04x} was accepted"
            );
            tried += 1;
        }
    }
    assert!(tried > 5000);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any byte replaced by any other value.
    #[test]
    fn any_byte_replacement_is_rejected(pos in any::<prop::sample::Index>(), value in any::<u8>()) {
        let valid = load("valid.grant");
        let i = pos.index(valid.len());
        prop_assume!(valid[i] != value);
        let mut t = valid;
        t[i] = value;
        prop_assert!(!accepted(&t, &trusted()));
    }

    /// Arbitrary bytes never verify (and never panic).
    #[test]
    fn arbitrary_input_is_rejected(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        prop_assert!(!accepted(&bytes, &trusted()));
        let _ = UnverifiedRevocationList::parse(&bytes);
    }
}

//! Shared pieces of the fuzz targets: the TEST ONLY keys of common's grant vectors and the
//! fixed "now" those vectors use.
#![allow(dead_code)]

use jit_common::KeyRing;
use ssh_key::PrivateKey;

/// 2027-01-15T08:00:00Z, the "now" of `common/tests/vectors/MANIFEST`.
pub const NOW: u64 = 1_800_000_000;

/// The trusted grant key of the vectors (public half).
pub fn trusted() -> KeyRing {
    KeyRing::from_openssh_lines(include_str!(
        "../../common/tests/vectors/test-grant-key.pub"
    ))
    .unwrap_or_default()
}

/// The vectors' grant-signing key (TEST ONLY), to sign fuzzed bodies.
pub fn signing_key() -> Option<PrivateKey> {
    PrivateKey::from_openssh(include_str!("../../common/tests/vectors/test-grant-key")).ok()
}

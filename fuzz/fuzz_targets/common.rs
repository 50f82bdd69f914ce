//! Shared pieces of the fuzz targets: the TEST ONLY key of common's grant vectors and the
//! fixed "now" those vectors use, from the test kit (`jit_test_kit::keys::vectors`).
#![allow(dead_code)]

use jit_common::KeyRing;
use jit_common::time::UnixTime;
use jit_test_kit::keys::vectors;
use ssh_key::PrivateKey;

/// 2027-01-15T08:00:00Z, the "now" of `common/tests/vectors/MANIFEST`.
pub const NOW: UnixTime = vectors::NOW;

/// The trusted grant key of the vectors (public half).
pub fn trusted() -> KeyRing {
    vectors::trusted()
}

/// The vectors' grant-signing key (TEST ONLY), to sign fuzzed bodies.
pub fn signing_key() -> Option<PrivateKey> {
    Some(vectors::grant_key())
}

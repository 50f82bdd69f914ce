//! A whole revocation list as a host reads it (from `jit-host sync` or its state dir):
//! parse, verify, query. A list that verifies must be exactly what
//! `RevocationList::sign` makes from its claims (no malleability).
#![no_main]

use jit_common::UnverifiedRevocationList;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = UnverifiedRevocationList::parse(data) else {
        return;
    };
    let claims = parsed.claims_unverified().clone();
    let Ok(verified) = parsed.verify(&common::trusted()) else {
        return;
    };
    assert_eq!(verified.list(), &claims);
    if let Some(key) = common::signing_key() {
        let resigned = claims
            .clone()
            .sign(&key)
            .expect("re-signing verified claims");
        assert_eq!(resigned.as_slice(), data, "a non-canonical list verified");
    }
    for id in claims.revoked_grants.iter().take(4) {
        assert!(verified.is_grant_revoked(id));
    }
    for s in claims.revoked_serials.iter().take(4) {
        assert!(verified.is_serial_revoked(*s));
    }
    let _ = verified.is_stale(common::NOW, 0);
    let _ = verified.is_stale(u64::MAX, u64::MAX);
});

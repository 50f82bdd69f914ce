//! A whole grant document as a host reads it from its store: parse, verify against the
//! trusted key at several times and skews, then ask whether it covers a user and host.
//!
//! Invariant beyond "no panic": a document that verifies must be byte-for-byte what
//! `Grant::sign` makes from its claims (signatures are deterministic), i.e. no byte of a
//! signed grant can change and still verify (no malleability in framing, armour or body).
#![no_main]

use jit_common::UnverifiedGrant;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = UnverifiedGrant::parse(data) else {
        return;
    };
    let claims = parsed.claims_unverified().clone();
    let ring = common::trusted();
    for (now, skew) in [
        (common::NOW.into(), 60),
        (common::NOW.into(), 0),
        (claims.not_before, 0),
    ] {
        let Ok(verified) = parsed.clone().verify_at(now, &ring, skew) else {
            continue;
        };
        assert_eq!(verified.grant(), &claims, "verification changed the claims");
        if let Some(key) = common::signing_key() {
            let resigned = claims
                .clone()
                .sign(&key)
                .expect("re-signing verified claims");
            assert_eq!(
                resigned.as_slice(),
                data,
                "a document that is not what Grant::sign makes verified"
            );
        }
        for user in [claims.user.as_str(), "root", "bob"] {
            for host in ["db-1", "web-1", "DB-7", ""] {
                let _ = verified.covers(user, &[host], now);
            }
        }
    }
});

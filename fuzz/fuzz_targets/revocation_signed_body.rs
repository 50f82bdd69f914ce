//! Revocation-list bodies carrying a valid signature (signed here with the TEST ONLY key),
//! so typed parsing and validation are reached. Invariant: what parses re-signs and reads
//! back to the same list.
#![no_main]

use jit_common::UnverifiedRevocationList;
use jit_common::envelope::Envelope;
use jit_common::revocation::NAMESPACE;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some(key) = common::signing_key() else {
        return;
    };
    let mut body = data.to_vec();
    if !body.ends_with(b"\n") {
        body.push(b'\n');
    }
    let Ok(doc) = Envelope::seal(&body, &key, NAMESPACE) else {
        return;
    };
    let Ok(parsed) = UnverifiedRevocationList::parse(&doc) else {
        return;
    };
    let claims = parsed.claims_unverified().clone();
    let resigned = claims
        .clone()
        .sign(&key)
        .expect("claims that parsed must re-sign");
    let again = UnverifiedRevocationList::parse(&resigned).expect("re-signed list must parse");
    // `sign` sets key_id to the signer's fingerprint; everything else must survive.
    let mut expected = claims.clone();
    expected.key_id = again.claims_unverified().key_id.clone();
    assert_eq!(
        again.claims_unverified(),
        &expected,
        "round trip changed the list"
    );
    if let Ok(v) = parsed.verify(&common::trusted()) {
        let _ = v.is_stale(claims.issued_at, 0);
    }
});

//! Grant bodies that carry a valid signature: the fuzzer writes the JSON, this target
//! signs it with the (TEST ONLY) trusted key, so every field check after the signature is
//! reached (typed parsing, validation, window, host matching).
//!
//! Input: `HOST\nBODY`. Invariants beyond "no panic": a body that parses re-signs to a
//! document that parses to the same claims (round trip), and `covers` never allows a
//! user, host or time the claims do not name.
#![no_main]

use jit_common::envelope::Envelope;
use jit_common::grant::NAMESPACE;
use jit_common::{UnverifiedGrant, host};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some(key) = common::signing_key() else {
        return;
    };
    let (host_name, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    };
    let host_name = String::from_utf8_lossy(host_name);
    let mut body = body.to_vec();
    if !body.ends_with(b"\n") {
        body.push(b'\n');
    }
    let Ok(doc) = Envelope::seal(&body, &key, NAMESPACE) else {
        return;
    };
    let Ok(parsed) = UnverifiedGrant::parse(&doc) else {
        return;
    };
    let claims = parsed.claims_unverified().clone();
    // Round trip: what the CA would write from these claims reads back identically.
    let resigned = claims
        .clone()
        .sign(&key)
        .expect("claims that parsed must re-sign");
    let again = UnverifiedGrant::parse(&resigned).expect("a re-signed grant must parse");
    // `sign` sets key_id to the signer's fingerprint; everything else must survive.
    let mut expected = claims.clone();
    expected.key_id = again.claims_unverified().key_id.clone();
    assert_eq!(
        again.claims_unverified(),
        &expected,
        "round trip changed the claims"
    );

    let ring = common::trusted();
    for (now, skew) in [
        (common::NOW.into(), 60),
        (claims.not_before, 0),
        (claims.not_after, 0),
        (claims.not_after - 1, 0),
    ] {
        let Ok(verified) = parsed.clone().verify_at(now, &ring, skew) else {
            continue;
        };
        for user in [claims.user.as_str(), "root"] {
            if verified.covers(user, &[&host_name], now).is_ok() {
                assert_eq!(user, claims.user, "covers allowed another user");
                assert!(claims.sudo, "covers allowed a grant without sudo");
                assert!(
                    now + skew >= claims.not_before && now < claims.not_after + skew,
                    "covers allowed outside the window"
                );
                assert!(
                    claims.hosts.iter().any(|s| host::matches(s, &host_name)),
                    "covers allowed a host no selector matches"
                );
            }
        }
    }
});

//! `jit-host principals USER CERT_BASE64`: the certificate argument comes from whoever
//! connects to sshd. The fuzzer writes the certificate's wire blob (first byte 0: the raw
//! argument text instead), this target passes it base64-encoded exactly as sshd's `%k` does.
//!
//! Invariant: an input not signed by the trusted user CA is refused and stores nothing.
#![no_main]
#![allow(dead_code)]

use base64::Engine;
use jit_host::principals;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;
#[path = "principals_host.rs"]
mod principals_host;

fuzz_target!(|data: &[u8]| {
    let config = principals_host::config();
    let arg = match data.split_first() {
        Some((0, rest)) => String::from_utf8_lossy(rest).into_owned(),
        _ => base64::engine::general_purpose::STANDARD.encode(data),
    };
    for user in ["alice", "root"] {
        if let Ok(a) = principals::verify_and_store(config, user, &arg, common::NOW.as_secs()) {
            // Only a certificate made by the trusted CA can get here; the fuzzer cannot
            // forge one, so any acceptance is a bug.
            panic!("accepted an unsigned certificate: {a:?}");
        }
    }
});

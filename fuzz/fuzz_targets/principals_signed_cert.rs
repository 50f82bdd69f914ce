//! `jit-host principals` with certificates that ARE signed by the trusted user CA: the
//! fuzzer controls the principals, window, serial, type and the embedded `jit-grant@jit`
//! document (a grant body this target signs with the trusted grant key), so every check
//! after the CA signature and the grant store are reached.
//!
//! Input: `PRINCIPAL\nSERIAL\nFLAGS\nGRANT BODY`. Invariants: acceptance implies the
//! certificate lists the user and is inside its window; a stored grant is for that user,
//! verifies, and is exactly the document carried.
#![no_main]
#![allow(dead_code)]

use base64::Engine;
use jit_common::UnverifiedGrant;
use jit_common::envelope::Envelope;
use jit_host::principals;
use libfuzzer_sys::fuzz_target;
use ssh_key::certificate::{Builder, CertType};

#[path = "common.rs"]
mod common;
#[path = "principals_host.rs"]
mod principals_host;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(4, '\n');
    let principal = parts.next().unwrap_or("").to_string();
    let serial: u64 = parts
        .next()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(7);
    let flags = parts
        .next()
        .unwrap_or("")
        .as_bytes()
        .first()
        .copied()
        .unwrap_or(0);
    let body = parts.next().unwrap_or("");
    let now = common::NOW.as_secs();
    // Window: inside, expired or not yet valid, depending on the flags.
    let (after, before) = match flags % 4 {
        0 | 3 => (now - 600, now + 600),
        1 => (now - 600, now - 1),
        _ => (now + 1, now + 600),
    };
    let Some(gkey) = common::signing_key() else {
        return;
    };
    let mut b = body.as_bytes().to_vec();
    if !b.ends_with(b"\n") {
        b.push(b'\n');
    }
    let doc = Envelope::seal(&b, &gkey, jit_common::grant::NAMESPACE).ok();
    let user_pub = principals_host::user_key().public_key().key_data().clone();
    let Ok(mut builder) = Builder::new([42u8; 16], user_pub, after, before) else {
        return;
    };
    let ty = if flags & 4 == 0 {
        CertType::User
    } else {
        CertType::Host
    };
    let ok = builder.serial(serial).is_ok()
        && builder.key_id(format!("jit:r-1:{principal}")).is_ok()
        && builder.cert_type(ty).is_ok()
        && (principal.is_empty() || builder.valid_principal(principal.clone()).is_ok())
        && match (&doc, flags & 8 == 0) {
            (Some(d), true) => builder
                .extension(
                    principals::GRANT_EXTENSION,
                    String::from_utf8_lossy(d).into_owned(),
                )
                .is_ok(),
            _ => true,
        };
    if !ok {
        return;
    }
    let Ok(cert) = builder.sign(&principals_host::user_ca()) else {
        return;
    };
    let Ok(blob) = cert.to_bytes() else {
        return;
    };
    let arg = base64::engine::general_purpose::STANDARD.encode(blob);
    let config = principals_host::config();
    for user in ["alice", "bob"] {
        let Ok(a) = principals::verify_and_store(config, user, &arg, now) else {
            continue;
        };
        assert_eq!(a.principal, user);
        assert!(
            cert.valid_principals().iter().any(|p| p == user),
            "principal not listed"
        );
        assert!(after <= now && now < before, "accepted outside the window");
        assert_eq!(ty, CertType::User, "accepted a host certificate");
        if let principals::GrantOutcome::Stored { id, .. } = &a.grant {
            let path = config.grants_dir().join(user).join(format!("{id}.grant"));
            let stored = std::fs::read(&path).expect("stored grant readable");
            assert_eq!(
                Some(&stored),
                doc.as_ref(),
                "stored bytes differ from the carried grant"
            );
            let g = UnverifiedGrant::parse(&stored)
                .and_then(|g| g.verify_at(now, &common::trusted(), config.clock_skew_secs))
                .expect("a stored grant verifies");
            assert_eq!(g.grant().user, user, "stored a grant for another user");
            let _ = std::fs::remove_file(path);
        }
    }
});

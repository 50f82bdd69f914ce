//! Grant test vectors: committed files under `tests/vectors/`, each with its expected outcome
//! in `tests/vectors/MANIFEST`. Regenerate (only when the format changes on purpose) with
//! `JIT_REGENERATE_VECTORS=1 cargo test -p jit-common --test vectors regenerate_vectors`.
//! Without that variable `regenerate_vectors` writes nothing (so `--include-ignored` runs in
//! CI never rewrite committed files while `every_vector_has_its_expected_outcome` reads them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

use jit_common::envelope::Envelope;
use jit_common::grant::{Approval, Grant, NAMESPACE};
use jit_common::{Error, KeyRing, NotCovered, UnixTime, UnverifiedGrant};
use ssh_key::PrivateKey;

/// The fixed "now" of every vector: 2027-01-15T08:00:00Z.
const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn key(name: &str) -> PrivateKey {
    PrivateKey::from_openssh(fs::read_to_string(dir().join(name)).unwrap()).unwrap()
}

fn trusted() -> KeyRing {
    KeyRing::from_openssh_lines(&fs::read_to_string(dir().join("test-grant-key.pub")).unwrap())
        .unwrap()
}

fn base() -> Grant {
    Grant {
        version: 1,
        id: "g-0001".into(),
        user: "alice".into(),
        role: "db-admin".into(),
        hosts: vec!["db-*".into(), "backup-1".into()],
        sudo: true,
        not_before: NOW - 600,
        not_after: NOW + 1800,
        issued_at: NOW - 600,
        request_id: "r-0001".into(),
        reason: "INC-42: replica lag".into(),
        approvers: vec![Approval {
            user: "bob".into(),
            at: NOW - 600,
        }],
        ticket: None,
        cert_serial: Some(7),
        session_bound: false,
        key_id: String::new(),
    }
}

/// Signs a raw body (for vectors the typed API refuses to produce).
fn seal_raw(body: &str, key: &PrivateKey) -> Vec<u8> {
    Envelope::seal(body.as_bytes(), key, NAMESPACE).unwrap()
}

fn body_of(doc: &[u8]) -> String {
    let s = String::from_utf8(doc.to_vec()).unwrap();
    let i = s.find("-----BEGIN SSH SIGNATURE-----").unwrap();
    s[..i].to_string()
}

/// Rewrites the committed vectors, only when `JIT_REGENERATE_VECTORS=1` (run it alone, with
/// the test name as filter, so no reader runs at the same time).
#[test]
fn regenerate_vectors() {
    if std::env::var_os("JIT_REGENERATE_VECTORS").is_none_or(|v| v != "1") {
        eprintln!(
            "regenerate_vectors: not regenerating (set JIT_REGENERATE_VECTORS=1 to rewrite tests/vectors/)"
        );
        return;
    }
    let k = key("test-grant-key");
    let other = key("other-key");
    let sign = |g: Grant| g.sign(&k).unwrap();
    let mut files: Vec<(&str, Vec<u8>)> = Vec::new();

    let valid = sign(base());
    files.push(("valid.grant", valid.clone()));
    files.push((
        "expired.grant",
        sign(Grant {
            not_before: NOW - 7200,
            not_after: NOW - 3600,
            ..base()
        }),
    ));
    files.push((
        "not-yet-valid.grant",
        sign(Grant {
            not_before: NOW + 3600,
            not_after: NOW + 7200,
            ..base()
        }),
    ));
    files.push((
        "skew-inside-start.grant",
        sign(Grant {
            not_before: NOW + 30,
            ..base()
        }),
    ));
    files.push((
        "skew-outside-start.grant",
        sign(Grant {
            not_before: NOW + 90,
            ..base()
        }),
    ));
    files.push((
        "skew-inside-end.grant",
        sign(Grant {
            not_before: NOW - 3600,
            not_after: NOW - 30,
            ..base()
        }),
    ));
    files.push((
        "skew-outside-end.grant",
        sign(Grant {
            not_before: NOW - 3600,
            not_after: NOW - 90,
            ..base()
        }),
    ));
    files.push(("wrong-key.grant", base().sign(&other).unwrap()));
    files.push((
        "no-sudo.grant",
        sign(Grant {
            sudo: false,
            ..base()
        }),
    ));

    let body = body_of(&valid);
    let tampered = String::from_utf8(valid.clone())
        .unwrap()
        .replacen("\"alice\"", "\"alicf\"", 1);
    files.push(("bad-signature.grant", tampered.into_bytes()));
    files.push((
        "unknown-version.grant",
        seal_raw(&body.replacen("\"version\": 1", "\"version\": 2", 1), &k),
    ));
    files.push((
        "unknown-field.grant",
        seal_raw(
            &body.replacen(
                "\"sudo\": true,",
                "\"sudo\": true,\n  \"command\": \"/bin/sh\",",
                1,
            ),
            &k,
        ),
    ));
    let mut trailing = valid.clone();
    trailing.extend_from_slice(b"ssh-ed25519 AAAA appended\n");
    files.push(("trailing-data.grant", trailing));
    files.push(("truncated.grant", valid[..valid.len() - 60].to_vec()));
    files.push(("no-signature.grant", body.clone().into_bytes()));
    let pad = "x".repeat(17 * 1024);
    files.push((
        "oversized.grant",
        seal_raw(
            &body.replacen("\"reason\": \"", &format!("\"reason\": \"{pad}"), 1),
            &k,
        ),
    ));
    files.push((
        "wrong-namespace.grant",
        Envelope::seal(body.as_bytes(), &k, "file").unwrap(),
    ));
    files.push((
        "key-id-mismatch.grant",
        seal_raw(
            &body.replace(
                &jit_common::keys::fingerprint(k.public_key()),
                &jit_common::keys::fingerprint(other.public_key()),
            ),
            &k,
        ),
    ));
    files.push((
        "not-json.grant",
        seal_raw("version = 1\nuser = \"alice\"\n", &k),
    ));

    for (name, bytes) in files {
        fs::write(dir().join(name), bytes).unwrap();
    }
}

/// Runs one manifest line: `file user host skew expected`.
fn check(line: &str) -> Result<(), String> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let [file, user, host, skew, expected] = f[..] else {
        return Err(format!("bad manifest line {line:?}"));
    };
    let skew: u64 = skew.parse().map_err(|e| format!("{e}"))?;
    let bytes = fs::read(dir().join(file)).map_err(|e| format!("{file}: {e}"))?;
    let outcome =
        match UnverifiedGrant::parse(&bytes).and_then(|g| g.verify_at(NOW, &trusted(), skew)) {
            Err(e) => error_name(&e).to_string(),
            Ok(v) => match v.covers(user, &[host], NOW) {
                Ok(()) => "allow".to_string(),
                Err(NotCovered::OtherUser { .. }) => "other-user".into(),
                Err(NotCovered::OtherHost { .. }) => "other-host".into(),
                Err(NotCovered::NoSudo) => "no-sudo".into(),
                Err(NotCovered::Expired { .. }) => "covers-expired".into(),
                Err(NotCovered::NotYetValid { .. }) => "covers-not-yet-valid".into(),
            },
        };
    if outcome == expected {
        Ok(())
    } else {
        Err(format!("{file}: expected {expected}, got {outcome}"))
    }
}

fn error_name(e: &Error) -> &'static str {
    match e {
        Error::Oversized { .. } => "oversized",
        Error::Truncated { .. } => "truncated",
        Error::TrailingData { .. } => "trailing-data",
        Error::MalformedSignature { .. } => "malformed-signature",
        Error::Malformed { .. } => "malformed",
        Error::UnknownVersion { .. } => "unknown-version",
        Error::UnknownField { .. } => "unknown-field",
        Error::InvalidField { .. } => "invalid-field",
        Error::WrongNamespace { .. } => "wrong-namespace",
        Error::UntrustedKey { .. } => "untrusted-key",
        Error::KeyIdMismatch { .. } => "key-id-mismatch",
        Error::BadSignature => "bad-signature",
        Error::NotYetValid { .. } => "not-yet-valid",
        Error::Expired { .. } => "expired",
        _ => "other",
    }
}

#[test]
fn every_vector_has_its_expected_outcome() {
    let manifest = fs::read_to_string(dir().join("MANIFEST")).unwrap();
    let lines: Vec<&str> = manifest
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(lines.len() >= 20, "manifest too short");
    let failures: Vec<String> = lines.iter().filter_map(|l| check(l).err()).collect();
    assert!(
        failures.is_empty(),
        "vector failures:\n{}",
        failures.join("\n")
    );
    // Every vector file is listed in the manifest.
    for entry in fs::read_dir(dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".grant") {
            assert!(
                lines.iter().any(|l| l.starts_with(&format!("{name} "))),
                "{name} is not in MANIFEST"
            );
        }
    }
}

#[test]
fn error_messages_name_the_problem() {
    let read = |f: &str| fs::read(dir().join(f)).unwrap();
    let msg = |f: &str| match UnverifiedGrant::parse(&read(f))
        .and_then(|g| g.verify_at(NOW, &trusted(), 60))
    {
        Err(e) => e.to_string(),
        Ok(_) => "ok".into(),
    };
    assert!(
        msg("expired.grant").contains("expired at 2027-01-15T07:00:00Z"),
        "{}",
        msg("expired.grant")
    );
    assert!(msg("unknown-field.grant").contains("\"command\""));
    assert!(msg("unknown-version.grant").contains("version 2"));
    assert!(msg("trailing-data.grant").contains("after the signature"));
    assert!(msg("wrong-key.grant").contains("not a trusted key"));
}

/// Issue 11, item 13 (host side): a grant whose reason carries an invisible or bidi format
/// character (Unicode Cf) is refused by `Grant::validate`, as the CA refuses it at input, so
/// a grant signed by an older CA or a break-glass tool cannot show approvers and logs
/// something other than what it says.
#[test]
fn reasons_with_format_characters_are_refused() {
    for c in ['\u{202E}', '\u{200B}', '\u{2066}', '\u{FEFF}', '\u{0007}'] {
        let mut g = base();
        g.reason = format!("INC-1 {c}reversed");
        let e = g.validate().unwrap_err().to_string();
        assert!(e.contains(&format!("U+{:04X}", u32::from(c))), "{c:?}: {e}");
    }
    let mut g = base();
    g.reason = "INC-1: disk full — «ok» ü".into();
    g.validate().unwrap();
}

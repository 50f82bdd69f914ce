//! `pam_jit_core::decide_here`, the one path pam_jit.so and `jit-host check` share: identify
//! the caller once, read only their directory and the revocation list, decide with root's
//! records under `<state_dir>/verified` as the record source.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use jit_common::{Approval, Grant, RevocationList};
use pam_jit_core::config::Config;
use pam_jit_core::decide::{Caller, Facts, Verdict};
use pam_jit_core::decide_here;
use ssh_key::{Algorithm, PrivateKey};

const NOW: u64 = 1_800_000_000;

fn mode(p: &Path, m: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
}

fn put(p: &Path, body: &[u8]) {
    fs::write(p, body).unwrap();
    mode(p, 0o644);
}

fn grant(id: &str, user: &str) -> Grant {
    Grant {
        version: jit_common::grant::VERSION,
        id: id.into(),
        user: user.into(),
        role: "dba".into(),
        hosts: vec!["db-1".into()],
        sudo: true,
        not_before: (NOW - 60).into(),
        not_after: (NOW + 3600).into(),
        issued_at: (NOW - 60).into(),
        request_id: format!("r-{id}"),
        reason: "test".into(),
        approvers: vec![Approval {
            user: "carol".into(),
            at: (NOW - 60).into(),
        }],
        ticket: None,
        cert_serial: Some(1),
        session_bound: false,
        key_id: String::new(),
    }
}

fn facts<'a>(user: &'a str, uid: u32, service: &'a str, hosts: &'a [String]) -> Facts<'a> {
    Facts {
        caller: Caller {
            ruser: Some(user),
            uid,
            ruser_uid: Some(uid),
        },
        service,
        host_names: hosts,
        now: NOW.into(),
    }
}

#[test]
#[ignore = "needs root"]
fn reads_the_callers_store_and_uses_roots_records() {
    let key = PrivateKey::random(&mut rand_core::OsRng, Algorithm::Ed25519).unwrap();
    let t = tempfile::tempdir().unwrap();
    let state = t.path().join("state");
    for d in ["", "grants", "grants/alice", "grants/bob"] {
        fs::create_dir_all(state.join(d)).unwrap();
        mode(&state.join(d), 0o755);
    }
    mode(t.path(), 0o755);
    let config = Config::parse(&format!(
        "state_dir = \"{}\"\ngrant_keys = [\"{}\"]\ngrant_writer = \"root\"\n",
        state.display(),
        key.public_key().to_openssh().unwrap()
    ))
    .unwrap();
    let doc = grant("g-1", "alice").sign(&key).unwrap();
    put(&state.join("grants/alice/g-1.grant"), &doc);
    let list = RevocationList::new(1, NOW - 60).sign(&key).unwrap();
    put(&state.join("revocations"), &list);
    let hosts = vec!["db-1".to_string()];

    // Verified here: no records yet.
    let d = decide_here(&config, &facts("alice", 1000, "sudo", &hosts));
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    assert!(!d.reason.contains("per its record"), "{d:?}");
    // Only the caller's own directory counts: bob has none of alice's grants.
    let d = decide_here(&config, &facts("bob", 1001, "sudo", &hosts));
    assert_eq!(d.verdict, Verdict::Deny, "{d:?}");
    assert!(d.reason.contains("no grant for this user"), "{d:?}");
    // An ungated service is decided before anything is read.
    let d = decide_here(&config, &facts("alice", 1000, "login", &hosts));
    assert_eq!(d.verdict, Verdict::Ignore, "{d:?}");

    // Root's records (as `jit-host sync` writes them) stand in for the signature check.
    let verified = state.join("verified");
    fs::create_dir(&verified).unwrap();
    mode(&verified, 0o755);
    jit_common::record::write_grant_record(
        &verified,
        &doc,
        &config.grant_keys,
        &config.break_glass_keys,
    )
    .unwrap();
    let d = decide_here(&config, &facts("alice", 1000, "sudo", &hosts));
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    assert!(d.reason.contains("per its record"), "{d:?}");
}

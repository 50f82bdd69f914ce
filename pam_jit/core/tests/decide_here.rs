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
        session_id: None,
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

/// Issue 14: the binding is read (only) for a session-bound grant that could allow, through
/// the same `decide_here` path as pam_jit.so, and written by the session writer.
#[test]
#[ignore = "needs root"]
fn session_bound_grants_need_the_callers_live_binding() {
    use pam_jit_core::session::{self, Binding, write};
    let key = PrivateKey::random(&mut rand_core::OsRng, Algorithm::Ed25519).unwrap();
    let t = tempfile::tempdir().unwrap();
    mode(t.path(), 0o755);
    let state = t.path().join("state");
    for d in ["", "grants", "grants/alice"] {
        fs::create_dir_all(state.join(d)).unwrap();
        mode(&state.join(d), 0o755);
    }
    let sessions = t.path().join("run/jit/sessions");
    let config = Config::parse(&format!(
        "state_dir = \"{}\"\nsession_dir = \"{}\"\ngrant_keys = [\"{}\"]\ngrant_writer = \"root\"\n",
        state.display(),
        sessions.display(),
        key.public_key().to_openssh().unwrap()
    ))
    .unwrap();
    let list = RevocationList::new(1, NOW - 60).sign(&key).unwrap();
    put(&state.join("revocations"), &list);
    let hosts = vec!["db-1".to_string()];
    let in_session = |id: Option<u32>| Facts {
        session_id: id,
        ..facts("alice", 1000, "sudo", &hosts)
    };

    // A plain grant never looks at sessions: a session directory that may not be trusted
    // (world-writable) does not matter to it.
    put(
        &state.join("grants/alice/g-1.grant"),
        &grant("g-1", "alice").sign(&key).unwrap(),
    );
    fs::create_dir_all(&sessions).unwrap();
    mode(&sessions, 0o777);
    let d = decide_here(&config, &in_session(Some(7)));
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    fs::remove_file(state.join("grants/alice/g-1.grant")).unwrap();

    let mut g = grant("g-2", "alice");
    g.session_bound = true;
    g.cert_serial = Some(42);
    put(
        &state.join("grants/alice/g-2.grant"),
        &g.sign(&key).unwrap(),
    );
    // ...but a session-bound one does.
    let d = decide_here(&config, &in_session(Some(7)));
    assert!(d.reason.contains("may not be trusted"), "{d:?}");
    assert!(d.reason.contains("writable by group or others"), "{d:?}");
    mode(&sessions, 0o700);
    let d = decide_here(&config, &in_session(Some(7)));
    assert!(d.reason.contains("SSH session 7 has no binding"), "{d:?}");

    let b = Binding {
        version: session::BINDING_VERSION,
        session_id: 7,
        user: "alice".into(),
        grant_id: "g-2".into(),
        role: "dba".into(),
        serial: 42,
        leader_pid: std::process::id(),
        leader_start: session::proc::own_start_time().unwrap(),
        boot_id: session::proc::boot_id().unwrap(),
        since: (NOW - 10).into(),
        client: "192.0.2.7".into(),
        tty: "ssh".into(),
        not_after: (NOW + 3600).into(),
        ended_at: None,
        ended_by: None,
    };
    write::write_binding(&sessions, &b).unwrap();
    let d = decide_here(&config, &in_session(Some(7)));
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    assert_eq!((d.session, d.serial), (Some(7), Some(42)));
    // Another session of the same user has no binding; no session at all says how to fix it.
    let d = decide_here(&config, &in_session(Some(8)));
    assert!(d.reason.contains("SSH session 8 has no binding"), "{d:?}");
    let d = decide_here(&config, &in_session(None));
    assert!(d.reason.contains("no audit session id"), "{d:?}");
    // Logout: the tombstone denies at once, with the time.
    write::mark_ended(&sessions, 7, (NOW + 5).into(), session::ENDED_BY_LOGOUT).unwrap();
    let d = decide_here(&config, &in_session(Some(7)));
    assert_eq!(d.verdict, Verdict::Deny, "{d:?}");
    assert!(
        d.reason
            .contains("grant g-2 is bound to SSH session 7, which ended at 2027-01-15T08:00:05Z"),
        "{d:?}"
    );
}

/// Issue 18: pam_jit.so's path (`decide_here_lazy`) reads the caller's audit session id only
/// when one of their grant files may be session-bound, and then decides exactly as
/// `decide_here` with that id in its facts.
#[test]
#[ignore = "needs root"]
fn the_session_id_is_read_only_for_session_bound_grants() {
    use std::cell::Cell;
    let key = PrivateKey::random(&mut rand_core::OsRng, Algorithm::Ed25519).unwrap();
    let t = tempfile::tempdir().unwrap();
    mode(t.path(), 0o755);
    let state = t.path().join("state");
    for d in ["", "grants", "grants/alice"] {
        fs::create_dir_all(state.join(d)).unwrap();
        mode(&state.join(d), 0o755);
    }
    let sessions = t.path().join("run/jit/sessions");
    fs::create_dir_all(&sessions).unwrap();
    mode(&sessions, 0o700);
    let config = Config::parse(&format!(
        "state_dir = \"{}\"\nsession_dir = \"{}\"\ngrant_keys = [\"{}\"]\ngrant_writer = \"root\"\n",
        state.display(),
        sessions.display(),
        key.public_key().to_openssh().unwrap()
    ))
    .unwrap();
    put(
        &state.join("revocations"),
        &RevocationList::new(1, NOW - 60).sign(&key).unwrap(),
    );
    let hosts = vec!["db-1".to_string()];
    let f = facts("alice", 1000, "sudo", &hosts);
    let asked = Cell::new(0);
    let lazy = |id: Option<u32>| {
        pam_jit_core::decide_here_lazy(&config, &f, || {
            asked.set(asked.get() + 1);
            id
        })
    };
    // Plain grants (one covering, one for another host): never asked.
    put(
        &state.join("grants/alice/g-1.grant"),
        &grant("g-1", "alice").sign(&key).unwrap(),
    );
    let mut other = grant("g-0", "alice");
    other.hosts = vec!["web-*".into()];
    put(
        &state.join("grants/alice/g-0.grant"),
        &other.sign(&key).unwrap(),
    );
    let d = lazy(Some(7));
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    assert_eq!(
        asked.get(),
        0,
        "the session id was read without a session-bound grant"
    );
    // No grant at all: not asked either.
    fs::remove_file(state.join("grants/alice/g-1.grant")).unwrap();
    fs::remove_file(state.join("grants/alice/g-0.grant")).unwrap();
    assert_eq!(lazy(Some(7)).verdict, Verdict::Deny);
    assert_eq!(asked.get(), 0);
    // A session-bound grant: asked once, and the decision is decide_here's with that id.
    let mut g = grant("g-2", "alice");
    g.session_bound = true;
    g.cert_serial = Some(42);
    put(
        &state.join("grants/alice/g-2.grant"),
        &g.sign(&key).unwrap(),
    );
    for id in [Some(7), None] {
        asked.set(0);
        let d = lazy(id);
        assert_eq!(asked.get(), 1);
        let eager = decide_here(
            &config,
            &Facts {
                session_id: id,
                ..f
            },
        );
        assert_eq!(d, eager);
    }
    // An unreadable (unpeekable) file may be session-bound: asked, conservatively.
    fs::remove_file(state.join("grants/alice/g-2.grant")).unwrap();
    put(&state.join("grants/alice/g-3.grant"), b"not a grant");
    asked.set(0);
    assert_eq!(lazy(Some(7)).verdict, Verdict::Deny);
    assert_eq!(asked.get(), 1);
}

//! Issue 14: `jit-host sessions`, `end-session`, `check --session` and `gc` through the
//! binary, on bindings written by the one writer (`pam_jit_core::session::write`) into a
//! temporary session_dir. Root only (bindings are root's).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use jit_common::UnixTime;
use pam_jit_core::session::{BINDING_VERSION, Binding, binding_path, proc, write};

const JIT_HOST: &str = env!("CARGO_BIN_EXE_jit-host");
const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFs7IxD3PzR74wjGG+1zDJpEtytOouLPW5jnw7aUxLS2 a";

fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = t.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let sessions = t.path().join("sessions");
    let conf = t.path().join("host.toml");
    std::fs::write(
        &conf,
        format!(
            "state_dir = {:?}\nsession_dir = {:?}\ngrant_keys = [{KEY:?}]\n",
            state.to_str().unwrap(),
            sessions.to_str().unwrap()
        ),
    )
    .unwrap();
    (t, conf, sessions)
}

fn binding(id: u32) -> Binding {
    Binding {
        version: BINDING_VERSION,
        session_id: id,
        user: "alice".into(),
        grant_id: format!("r-{id}.12"),
        role: "db-admin".into(),
        serial: 12,
        leader_pid: std::process::id(),
        leader_start: proc::own_start_time().unwrap(),
        boot_id: proc::boot_id().unwrap(),
        since: UnixTime::from_secs(1_795_435_200),
        client: "192.0.2.7".into(),
        tty: "ssh".into(),
        not_after: UnixTime::from_secs(4_000_000_000),
        ended_at: None,
        ended_by: None,
    }
}

fn run(conf: &Path, args: &[&str]) -> (i32, String, String) {
    let o = Command::new(JIT_HOST)
        .arg("--config")
        .arg(conf)
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

#[test]
#[ignore = "needs root"]
fn sessions_end_session_check_and_gc() {
    let (_t, conf, dir) = setup();
    let (code, out, err) = run(&conf, &["sessions"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("no session bindings in {}\n", dir.display()));
    // This test process stands in for the connection's sshd process: alive.
    write::write_binding(&dir, &binding(7)).unwrap();
    let (code, out, err) = run(&conf, &["sessions", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v[0]["session"], 7);
    assert_eq!(v[0]["alive"], true);
    assert_eq!(v[0]["why"], "alive");
    assert_eq!(v[0]["leader"], std::process::id());
    assert_eq!(v[0]["client"], "192.0.2.7");
    assert!(v[0]["ended_at"].is_null());
    let (_, out, _) = run(&conf, &["sessions"]);
    assert!(
        out.ends_with("7        alice  r-7.12  12      2026-11-23T12:00:00Z  yes\n"),
        "{out}"
    );

    // check --session: the session and readiness appear in the JSON.
    let (_, out, _) = run(&conf, &["check", "alice", "--session", "7", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["session"], 7, "{v}");
    assert!(v["session_binding"]["ready"].is_boolean(), "{v}");
    assert_eq!(v["session_binding"]["session_dir"], dir.to_str().unwrap());
    let (code, _, err) = run(&conf, &["check", "alice", "--session", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("not an audit session id"), "{err}");

    // end-session: marked ended by the tool; again: says so, exit 0; unknown: one line.
    let (code, out, err) = run(&conf, &["end-session", "7"]);
    assert_eq!(code, 0, "{err}");
    if !Path::new("/dev/log").exists() {
        // Without a syslog daemon the audit line is lost: say so, as principals does.
        assert_eq!(
            err,
            "jit-host: end-session: (not logged: no syslog daemon on /dev/log)\n"
        );
    }
    assert!(
        out.starts_with(
            "ended session 7 of alice (grant r-7.12, certificate serial 12, from 192.0.2.7)"
        ),
        "{out}"
    );
    let (_, out, _) = run(&conf, &["sessions"]);
    assert!(
        out.contains("no: ended at ") && out.ends_with(" by jit-host end-session\n"),
        "{out}"
    );
    let (code, out, _) = run(&conf, &["end-session", "7"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("session 7 has already ended (ended at "),
        "{out}"
    );
    let (code, out, err) = run(&conf, &["end-session", "8"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        format!(
            "jit-host: there is no binding for session 8 in {}; jit-host sessions lists the bindings\n",
            dir.display()
        )
    );

    // gc: a tombstone whose grant has expired goes; one whose grant could still be used
    // stays (its denial says the session ended), and so does a live binding.
    write::write_binding(&dir, &binding(9)).unwrap();
    let mut expired = binding(10);
    expired.not_after = UnixTime::from_secs(1_795_435_200 + 3600);
    expired.ended_at = Some(UnixTime::from_secs(1_795_435_200 + 60));
    expired.ended_by = Some("logout".into());
    write::write_binding(&dir, &expired).unwrap();
    let (code, out, err) = run(&conf, &["gc"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("gc: removed 1 session binding(s)"), "{out}");
    assert!(!binding_path(&dir, 10).exists());
    assert!(binding_path(&dir, 7).exists(), "kept until its grant ends");
    assert!(binding_path(&dir, 9).exists());
}

/// `check --session ID` decides as a process of that audit session: a session-bound grant
/// is allowed with the session's live binding (its leader a real child process here), and
/// denied without one, once the leader is gone, and without --session.
#[test]
#[ignore = "needs root"]
fn check_session_changes_the_decision_of_a_session_bound_grant() {
    use jit_common::{Approval, Grant, RevocationList};
    use ssh_key::{Algorithm, PrivateKey};
    let key = PrivateKey::random(&mut rand_core::OsRng, Algorithm::Ed25519).unwrap();
    let t = tempfile::tempdir().unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = t.path().join("state");
    for d in ["", "grants", "grants/nobody"] {
        std::fs::create_dir_all(state.join(d)).unwrap();
        std::fs::set_permissions(state.join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let dir = t.path().join("sessions");
    let conf = t.path().join("host.toml");
    std::fs::write(
        &conf,
        format!(
            "state_dir = {:?}\nsession_dir = {:?}\ngrant_keys = [{:?}]\ngrant_writer = \"root\"\nhostnames = [\"db-1\"]\n",
            state.to_str().unwrap(),
            dir.to_str().unwrap(),
            key.public_key().to_openssh().unwrap()
        ),
    )
    .unwrap();
    let now = jit_common::now().as_secs();
    let put = |p: PathBuf, body: Vec<u8>| {
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    };
    put(
        state.join("revocations"),
        RevocationList::new(1, now - 60).sign(&key).unwrap(),
    );
    let g = Grant {
        version: jit_common::grant::VERSION,
        id: "g-9".into(),
        user: "nobody".into(),
        role: "dba".into(),
        hosts: vec!["db-1".into()],
        sudo: true,
        not_before: (now - 60).into(),
        not_after: (now + 3600).into(),
        issued_at: (now - 60).into(),
        request_id: "r-g-9".into(),
        reason: "test".into(),
        approvers: vec![Approval {
            user: "carol".into(),
            at: (now - 60).into(),
        }],
        ticket: None,
        cert_serial: Some(42),
        session_bound: true,
        key_id: String::new(),
    };
    put(
        state.join("grants/nobody/g-9.grant"),
        g.clone().sign(&key).unwrap(),
    );
    let mut leader = Command::new("sleep").arg("300").spawn().unwrap();
    let b = Binding {
        user: "nobody".into(),
        grant_id: "g-9".into(),
        serial: 42,
        leader_pid: leader.id(),
        leader_start: proc::start_time(leader.id()).unwrap().unwrap(),
        not_after: g.not_after,
        ..binding(7)
    };
    write::write_binding(&dir, &b).unwrap();
    let decide = |args: &[&str]| {
        let (_, out, err) = run(&conf, args);
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out} {err}"));
        (v["allowed"].as_bool().unwrap(), v.to_string())
    };
    let (allowed, why) = decide(&["check", "nobody", "--session", "7", "--json"]);
    assert!(allowed, "{why}");
    let (allowed, why) = decide(&["check", "nobody", "--session", "8", "--json"]);
    assert!(!allowed, "{why}");
    assert!(why.contains("SSH session 8 has no binding"), "{why}");
    let (allowed, why) = decide(&["check", "nobody", "--json"]);
    assert!(!allowed);
    assert!(why.contains("no audit session id"), "{why}");
    leader.kill().unwrap();
    leader.wait().unwrap();
    let (allowed, why) = decide(&["check", "nobody", "--session", "7", "--json"]);
    assert!(!allowed, "{why}");
    assert!(why.contains("is gone"), "{why}");
}

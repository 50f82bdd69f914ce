use super::*;
use pam_jit_core::session::{BINDING_VERSION, binding_path, proc, write};
use std::fs;

/// 2026-11-23T12:00:00Z.
const T0: u64 = 1_795_435_200;

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
        since: UnixTime::from_secs(T0),
        client: "192.0.2.7".into(),
        tty: "ssh".into(),
        not_after: UnixTime::from_secs(T0 + 3600),
        ended_at: None,
        ended_by: None,
    }
}

#[test]
fn the_table_says_which_connections_live_and_why_not() {
    let alive = binding(7);
    let mut ended = binding(8);
    ended.ended_at = Some(UnixTime::from_secs(T0 + 60));
    ended.ended_by = Some("logout".into());
    let rows = vec![
        row_of(&alive, &Liveness::Alive),
        row_of(
            &ended,
            &Liveness::Ended {
                at: UnixTime::from_secs(T0 + 60),
                by: "logout".into(),
            },
        ),
        row_of(&binding(123), &Liveness::LeaderGone { pid: 4242 }),
    ];
    assert_eq!(
        render(&rows, Path::new("/run/jit/sessions")),
        "SESSION  USER   GRANT     SERIAL  SINCE                 ALIVE\n\
         7        alice  r-7.12    12      2026-11-23T12:00:00Z  yes\n\
         8        alice  r-8.12    12      2026-11-23T12:00:00Z  no: ended at 2026-11-23T12:01:00Z by logout\n\
         123      alice  r-123.12  12      2026-11-23T12:00:00Z  no: leader pid 4242 is gone\n"
    );
    assert_eq!(
        render(&[], Path::new("/run/jit/sessions")),
        "no session bindings in /run/jit/sessions\n"
    );
    // The JSON fields.
    let v = serde_json::to_value(&rows[1]).unwrap();
    for k in [
        "session",
        "user",
        "grant",
        "role",
        "serial",
        "since",
        "alive",
        "why",
        "leader",
        "client",
        "tty",
        "not_after",
        "ended_at",
        "ended_by",
    ] {
        assert!(v.get(k).is_some(), "{k} in {v}");
    }
    assert_eq!(v["ended_at"], T0 + 60);
    assert_eq!(v["ended_by"], "logout");
    assert_eq!(v["alive"], false);
    assert_eq!(v["client"], "192.0.2.7");
}

#[test]
fn gc_takes_tombstones_and_dead_bindings_only_after_the_grant_expired() {
    // Kept while the grant could still be used, so sudo's denial says the session ended
    // (the old gc deleted tombstones at once: the denial then said "has no binding").
    let b = binding(7);
    let before = UnixTime::from_secs(T0 + 3600 + 60);
    let after = UnixTime::from_secs(T0 + 3600 + 61);
    let ended = Liveness::Ended {
        at: UnixTime::from_secs(T0),
        by: "logout".into(),
    };
    for l in [
        &ended,
        &Liveness::LeaderGone { pid: 1 },
        &Liveness::OtherBoot,
    ] {
        assert!(!collectable(&b, l, before, 60, true), "{l:?}");
        assert!(collectable(&b, l, after, 60, true), "{l:?}");
    }
    assert!(!collectable(&b, &Liveness::Alive, after, 60, true));
    assert!(!collectable(
        &b,
        &Liveness::Unreadable("EACCES".into()),
        after,
        60,
        true
    ));
    // A leader that only looks gone (hidepid, another pid namespace) is unknown.
    assert!(!collectable(
        &b,
        &Liveness::LeaderGone { pid: 1 },
        after,
        60,
        false
    ));
    assert!(collectable(&b, &ended, after, 60, false));
}

#[test]
fn readiness_names_each_problem_and_its_fix() {
    let debian = include_str!("../setup/fixtures/debian12-pam.d-sshd");
    let pam = Path::new("/etc/pam.d/sshd");
    let dir = Path::new("/run/jit/sessions");
    let r = readiness_of(pam, Ok(debian), &[], dir, Ok(()), None);
    assert!(!r.ready);
    assert_eq!(
        r.problems,
        vec![
            "/etc/pam.d/sshd has no `session optional pam_jit.so` line, so no SSH connection is \
             bound (jit-host setup --session)"
                .to_string()
        ]
    );
    let set_up = debian.replacen(
        "pam_loginuid.so\n",
        "pam_loginuid.so\nsession optional pam_jit.so\n",
        1,
    );
    let r = readiness_of(pam, Ok(&set_up), &[], dir, Ok(()), None);
    assert!(r.ready, "{r:?}");
    assert_eq!(
        describe_readiness(&r),
        "session-bound grants: this host binds SSH connections (pam_jit.so after \
         pam_loginuid in /etc/pam.d/sshd; session_dir /run/jit/sessions)"
    );
    // pam_jit.so placed after pam_env user_readenv=1 (the end of Debian's session lines),
    // and no pam_loginuid at all.
    let late = format!(
        "{}session optional pam_jit.so\n",
        debian.replace("session    required     pam_loginuid.so\n", "")
    );
    let r = readiness_of(
        pam,
        Ok(&late),
        &[],
        dir,
        Err("owned by uid 1000".into()),
        None,
    );
    assert!(!r.ready);
    assert_eq!(r.problems.len(), 3, "{:?}", r.problems);
    assert!(r.problems[0].contains("no `session required pam_loginuid.so` before pam_jit.so"));
    assert!(r.problems[1].contains("runs `pam_env.so user_readenv=1` before pam_jit.so"));
    assert_eq!(
        r.problems[2],
        "session_dir /run/jit/sessions: owned by uid 1000"
    );
    let line = describe_readiness(&r);
    assert!(
        line.starts_with(
            "session-bound grants: this host cannot bind SSH connections, so it denies them: \
             /etc/pam.d/sshd has no `session required pam_loginuid.so` before pam_jit.so"
        ),
        "{line}"
    );
    assert!(
        line.ends_with("; session_dir /run/jit/sessions: owned by uid 1000"),
        "{line}"
    );
    assert!(!line.contains('\n'));
    // No sshd PAM file at all.
    let r = readiness_of(
        pam,
        Err("No such file or directory".into()),
        &[],
        dir,
        Ok(()),
        None,
    );
    assert_eq!(
        r.problems,
        vec!["cannot read /etc/pam.d/sshd: No such file or directory".to_string()]
    );
}

/// A root-owned 0755 temp dir with `sessions` (0700) in it.
fn session_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt as _;
    let t = tempfile::tempdir().unwrap();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let s = t.path().join("sessions");
    (t, s)
}

#[test]
#[ignore = "needs root"]
fn gc_removes_tombstones_and_dead_bindings_and_keeps_live_ones() {
    let (_t, s) = session_dir();
    write::write_binding(&s, &binding(7)).unwrap();
    let mut ended = binding(8);
    ended.ended_at = Some(UnixTime::from_secs(T0));
    ended.ended_by = Some("logout".into());
    write::write_binding(&s, &ended).unwrap();
    let mut dead = binding(9);
    dead.leader_start += 1; // the pid now belongs to another process
    write::write_binding(&s, &dead).unwrap();
    let mut old_boot = binding(10);
    old_boot.boot_id = "00000000-0000-4000-8000-000000000000".into();
    write::write_binding(&s, &old_boot).unwrap();
    let config = Config {
        session_dir: s.clone(),
        ..test_config()
    };
    // --dry-run removes nothing.
    assert!(!gc(&config, true));
    assert_eq!(fs::read_dir(&s).unwrap().count(), 4);
    assert!(!gc(&config, false));
    assert!(binding_path(&s, 7).exists(), "the live binding stays");
    for id in [8, 9, 10] {
        assert!(!binding_path(&s, id).exists(), "{id} removed");
    }
}

#[test]
#[ignore = "needs root"]
fn gc_keeps_unexpired_tombstones_and_removes_stale_temp_files() {
    use std::os::unix::fs::PermissionsExt as _;
    let (_t, s) = session_dir();
    let mut ended = binding(8);
    ended.ended_at = Some(UnixTime::from_secs(T0));
    ended.ended_by = Some("logout".into());
    write::write_binding(&s, &ended).unwrap();
    let config = Config {
        session_dir: s.clone(),
        ..test_config()
    };
    let tmp = s.join(".9.binding.123.tmp");
    fs::write(&tmp, b"{").unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)).unwrap();
    // Before the grant's end (+ skew): kept; a fresh temp file too.
    assert!(!gc_at(&config, false, UnixTime::from_secs(T0 + 60), true));
    assert!(binding_path(&s, 8).exists());
    assert!(tmp.exists(), "a temp file younger than 10 minutes stays");
    // The same at the real time (T0 is days ago, which made the age above 0 whatever the
    // file's mtime): written just now, it stays.
    assert!(!gc_temp_files(&s, false, jit_common::now()));
    assert!(tmp.exists(), "a temp file written just now stays");
    // Later: both go.
    assert!(!gc_at(
        &config,
        false,
        jit_common::now().saturating_add(jit_common::time::Secs::new(601)),
        true
    ));
    assert!(!binding_path(&s, 8).exists());
    assert!(!tmp.exists());
}

#[test]
#[ignore = "needs root"]
fn end_session_marks_the_binding_ended_by_the_tool_once() {
    let (t, s) = session_dir();
    write::write_binding(&s, &binding(7)).unwrap();
    let conf = t.path().join("host.toml");
    write_host_toml(&conf, &s);
    assert_eq!(end(&conf, 7).unwrap(), ExitCode::SUCCESS);
    let b = read_binding(&s, 7).unwrap().unwrap();
    assert_eq!(b.ended_by.as_deref(), Some("jit-host end-session"));
    let first = b.ended_at;
    assert!(first.is_some());
    // Already ended: says so, exit 0, the first end is kept.
    assert_eq!(end(&conf, 7).unwrap(), ExitCode::SUCCESS);
    assert_eq!(read_binding(&s, 7).unwrap().unwrap().ended_at, first);
    // Unknown: one line naming jit-host sessions.
    let e = end(&conf, 8).unwrap_err();
    assert_eq!(
        e.message,
        format!(
            "there is no binding for session 8 in {}; jit-host sessions lists the bindings",
            s.display()
        )
    );
    assert_eq!(e.code, 1);
    assert_eq!(end(&conf, 0).unwrap_err().code, 2);
    assert_eq!(end(&conf, u32::MAX).unwrap_err().code, 2);
}

fn test_config() -> Config {
    Config::parse(&format!("grant_keys = [\"{TEST_KEY}\"]\n")).unwrap()
}

/// A minimal valid host.toml (root-owned, 0644) whose session_dir is `sessions`.
fn write_host_toml(path: &Path, sessions: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let text = format!(
        "grant_keys = [\"{TEST_KEY}\"]\nsession_dir = \"{}\"\n",
        sessions.display()
    );
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
}

const TEST_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFs7IxD3PzR74wjGG+1zDJpEtytOouLPW5jnw7aUxLS2 a";

#[test]
fn sshd_with_usepam_no_cannot_bind() {
    let t = "port 22\nusepam no\npermitrootlogin no\n";
    let p = sshd_problem(t).unwrap();
    assert!(
        p.contains("`UsePAM no`") && p.contains("set `UsePAM yes`"),
        "{p}"
    );
    assert_eq!(sshd_problem("port 22\nusepam yes\n"), None);
    assert_eq!(sshd_problem(""), None);
    let debian = include_str!("../setup/fixtures/debian12-pam.d-sshd");
    let set_up = debian.replacen(
        "pam_loginuid.so\n",
        "pam_loginuid.so\nsession optional pam_jit.so\n",
        1,
    );
    let pam = Path::new("/etc/pam.d/sshd");
    let r = readiness_of(
        pam,
        Ok(&set_up),
        &[],
        Path::new("/run/jit/sessions"),
        Ok(()),
        Some(p),
    );
    assert!(!r.ready);
    assert!(describe_readiness(&r).contains("UsePAM no"));
}

#[test]
fn end_session_audit_names_who_through_sudo() {
    let b = binding(7);
    assert_eq!(
        end_audit_line(&b, 0, Some(1000), Some(42)),
        "result=end-session session=7 user=alice grant=r-7.12 serial=12 client=192.0.2.7 \
         leader="
            .to_string()
            + &b.leader_pid.to_string()
            + " by_uid=0 by_loginuid=1000 by_session=42"
    );
    assert!(end_audit_line(&b, 0, None, None).ends_with(" by_loginuid=- by_session=-"));
}

use super::*;
use crate::setup::change::apply;
use crate::setup::pamfile;

/// Debian 12's /etc/pam.d/sshd (openssh-server 1:9.2p1-2), byte for byte.
const DEBIAN12: &str = include_str!("../fixtures/debian12-pam.d-sshd");

#[test]
fn the_fixture_is_debian_12s_file() {
    assert!(DEBIAN12.contains("\nsession    required     pam_loginuid.so\n"));
    assert!(DEBIAN12.contains(
        "\nsession    required     pam_env.so user_readenv=1 envfile=/etc/default/locale\n"
    ));
    assert!(DEBIAN12.find("pam_loginuid.so") < DEBIAN12.find("user_readenv=1"));
}

/// Writes the files Debian 12's sshd file includes (their rules as Debian ships them, in
/// short): setup reads them, and an include it cannot read stops it.
fn debian_includes(dir: &Path) {
    for (name, text) in [
        (
            "common-auth",
            "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\nauth required pam_permit.so\n",
        ),
        (
            "common-account",
            "account [success=1 new_authtok_reqd=done default=ignore] pam_unix.so\naccount requisite pam_deny.so\naccount required pam_permit.so\n",
        ),
        (
            "common-session",
            "session [default=1] pam_permit.so\nsession requisite pam_deny.so\nsession required pam_permit.so\nsession required pam_unix.so\n",
        ),
        (
            "common-password",
            "password [success=1 default=ignore] pam_unix.so obscure yescrypt\npassword requisite pam_deny.so\npassword required pam_permit.so\n",
        ),
    ] {
        fs::write(dir.join(name), text).unwrap();
    }
}

#[test]
fn inserts_right_after_pam_loginuid_and_undoes_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sshd");
    fs::write(&p, DEBIAN12).unwrap();
    debian_includes(dir.path());
    let c = session_insert(&p, "pam_jit.so", None).unwrap().unwrap();
    let new = String::from_utf8(c.new.clone().unwrap()).unwrap();
    assert_eq!(
        new,
        DEBIAN12.replacen(
            "session    required     pam_loginuid.so\n",
            &format!(
                "session    required     pam_loginuid.so\n{SESSION_MARKER}\nsession optional pam_jit.so\n"
            ),
            1
        )
    );
    apply(&c).unwrap();
    assert_eq!(fs::read(backup_path(&p)).unwrap(), DEBIAN12.as_bytes());
    // What check reads: the line, pam_loginuid before it, no user_readenv before it.
    assert_eq!(
        readiness(&fs::read_to_string(&p).unwrap()),
        Readiness {
            session_line: true,
            loginuid_before: true,
            readenv_before: false,
            ..Default::default()
        }
    );
    // Idempotent.
    let again = session_insert(&p, "pam_jit.so", None).unwrap().unwrap();
    assert_eq!(again.old, again.new);
    assert!(again.backup.is_none());
    let u = session_undo(&p).unwrap();
    apply(&u).unwrap();
    assert_eq!(fs::read(&p).unwrap(), DEBIAN12.as_bytes());
    assert!(!backup_path(&p).exists());
    // Undo again: nothing to do.
    let u = session_undo(&p).unwrap();
    assert_eq!(u.old, u.new);
}

#[test]
fn module_path_and_config_argument_are_the_sudo_lines() {
    let t = insert_text(
        Path::new("/etc/pam.d/sshd"),
        DEBIAN12,
        &[],
        "/lib/security/pam_jit.so",
        Some(Path::new("/etc/jit/x.toml")),
    )
    .unwrap()
    .unwrap();
    assert!(t.contains(&format!(
        "pam_loginuid.so\n{SESSION_MARKER}\nsession optional /lib/security/pam_jit.so config=/etc/jit/x.toml\n"
    )));
    assert_eq!(undo_text(&t), DEBIAN12);
}

#[test]
fn refuses_without_pam_loginuid_naming_the_line_to_add() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sshd");
    let text = DEBIAN12.replace("session    required     pam_loginuid.so\n", "");
    fs::write(&p, &text).unwrap();
    debian_includes(dir.path());
    let why = session_insert(&p, "pam_jit.so", None).unwrap().unwrap_err();
    assert_eq!(
        why,
        format!(
            "{} has no pam_loginuid session line, so SSH sessions get no audit session id and \
             session-bound grants cannot be bound; add `session required pam_loginuid.so` \
             before the other session lines, then run jit-host setup --session again",
            p.display()
        )
    );
    // A commented-out line does not count.
    let commented = DEBIAN12.replace(
        "session    required     pam_loginuid.so",
        "# session    required     pam_loginuid.so",
    );
    assert!(insert_text(&p, &commented, &[], "pam_jit.so", None).is_err());
    assert_eq!(fs::read_to_string(&p).unwrap(), text, "nothing changed");
    assert!(!backup_path(&p).exists());
}

#[test]
fn refuses_when_pam_env_reads_the_users_environment_first() {
    let text = "session required pam_env.so user_readenv=1\nsession required pam_loginuid.so\n";
    let why = insert_text(Path::new("/x/sshd"), text, &[], "pam_jit.so", None).unwrap_err();
    assert!(
        why.starts_with(
            "/x/sshd runs `session required pam_env.so user_readenv=1` before pam_loginuid"
        ),
        "{why}"
    );
    // Without user_readenv=1 (the default is 0) it is harmless.
    let text = "session required pam_env.so\nsession required pam_loginuid.so\n";
    assert!(insert_text(Path::new("/x/sshd"), text, &[], "pam_jit.so", None).is_ok());
}

#[test]
fn bracketed_controls_optional_rules_and_full_paths_are_read() {
    let text = "session [success=ok default=bad] /usr/lib/security/pam_loginuid.so\n";
    let t = insert_text(Path::new("/x"), text, &[], "pam_jit.so", None)
        .unwrap()
        .unwrap();
    assert_eq!(
        t,
        format!("{text}{SESSION_MARKER}\nsession optional pam_jit.so\n")
    );
    let text = "-session optional pam_loginuid.so\n";
    assert!(
        insert_text(Path::new("/x"), text, &[], "pam_jit.so", None)
            .unwrap()
            .is_some()
    );
    // A pam_jit session line the administrator wrote is left alone (also cargo's name).
    let text = "session required pam_loginuid.so\nsession optional /opt/pam_jit.so\n";
    assert_eq!(
        insert_text(Path::new("/x"), text, &[], "pam_jit.so", None),
        Ok(None)
    );
    let text = "session required pam_loginuid.so\nsession optional /b/libpam_jit.so config=/x\n";
    assert_eq!(
        insert_text(Path::new("/x"), text, &[], "pam_jit.so", None),
        Ok(None)
    );
    assert!(readiness(text).session_line);
    // Another module whose name merely contains it is not pam_jit.
    assert!(!readiness("session optional pam_jitter.so.bak\n").session_line);
}

#[test]
fn readiness_reports_order_problems() {
    let bad = "session optional pam_jit.so\nsession required pam_loginuid.so\n";
    assert_eq!(
        readiness(bad),
        Readiness {
            session_line: true,
            loginuid_before: false,
            readenv_before: false,
            ..Default::default()
        }
    );
    let env = "session required pam_loginuid.so\nsession required pam_env.so user_readenv=1\nsession optional pam_jit.so\n";
    assert!(readiness(env).readenv_before);
    assert_eq!(
        readiness(DEBIAN12),
        Readiness {
            session_line: false,
            loginuid_before: true,
            readenv_before: false,
            ..Default::default()
        }
    );
}

#[test]
fn a_file_without_a_final_newline_after_pam_loginuid_is_refused() {
    let why = insert_text(
        Path::new("/x"),
        "session required pam_loginuid.so",
        &[],
        "pam_jit.so",
        None,
    )
    .unwrap_err();
    assert!(
        why.contains("add `session optional pam_jit.so` after it by hand"),
        "{why}"
    );
}

#[test]
#[ignore = "needs root"]
fn session_dir_is_made_root_0700_and_an_unsafe_one_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run/jit/sessions");
    assert_eq!(
        ensure_session_dir(&dir).unwrap(),
        Some(format!("created {} (root, 0700)", dir.display()))
    );
    let m = fs::symlink_metadata(&dir).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (0, 0, 0o700));
    assert_eq!(
        fs::symlink_metadata(dir.parent().unwrap()).unwrap().mode() & 0o7777,
        0o755
    );
    assert_eq!(ensure_session_dir(&dir).unwrap(), None, "idempotent");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    assert!(
        ensure_session_dir(&dir)
            .unwrap()
            .unwrap()
            .contains("narrowed to 0700")
    );
    assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o7777, 0o700);
    assert_eq!(session_dir_problem(&dir), None);
    std::os::unix::fs::chown(&dir, Some(1234), None).unwrap();
    let e = ensure_session_dir(&dir).unwrap_err();
    assert!(e.message.contains("owned by uid 1234, not root"), "{e}");
    // setup asks first, before it changes anything (--session) or to skip the line (--sshd).
    assert_eq!(
        session_dir_problem(&dir).as_deref(),
        Some(e.message.as_str())
    );
    fs::remove_dir(&dir).unwrap();
    assert_eq!(session_dir_problem(&dir), None, "created later");
    std::os::unix::fs::symlink(tmp.path(), &dir).unwrap();
    let e = ensure_session_dir(&dir).unwrap_err();
    assert!(e.message.contains("is not a directory (a symlink?)"), "{e}");
    assert_eq!(
        session_dir_problem(&dir).as_deref(),
        Some(e.message.as_str())
    );
}

/// The Debian file with pam_jit's line right after pam_loginuid.
fn set_up() -> String {
    DEBIAN12.replacen(
        "pam_loginuid.so\n",
        "pam_loginuid.so\nsession optional pam_jit.so\n",
        1,
    )
}

#[test]
fn every_pam_jit_line_is_checked_not_only_the_first() {
    let x = Path::new("/etc/pam.d/sshd");
    assert!(readiness(&set_up()).problems(x).is_empty());
    // A second line after `pam_env user_readenv=1`: that one reads the user's environment.
    let dup = format!("{}session optional pam_jit.so\n", set_up());
    let r = readiness(&dup);
    assert!(r.readenv_before, "{r:?}");
    let p = r.problems(x);
    assert!(
        p.iter().any(|l| l.contains("runs pam_jit.so 2 times")),
        "{p:?}"
    );
    let why = insert_text(x, &dup, &[], "pam_jit.so", None).unwrap_err();
    assert!(
        why.contains("keep only the one right after pam_loginuid"),
        "{why}"
    );
    assert!(!why.contains('\n'));
    // A line before pam_loginuid and a second one after it.
    let before = set_up().replacen(
        "session [success=ok",
        "session optional pam_jit.so\nsession [success=ok",
        1,
    );
    let r = readiness(&before);
    assert!(!r.loginuid_before, "{r:?}");
    assert!(insert_text(x, &before, &[], "pam_jit.so", None).is_err());
    // One line, after pam_loginuid but not right after it.
    let late = DEBIAN12.replacen(
        "pam_keyinit.so force revoke\n",
        "pam_keyinit.so force revoke\nsession optional pam_jit.so\n",
        1,
    );
    let p = readiness(&late).problems(x);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("is not right after pam_loginuid"), "{}", p[0]);
    assert!(
        p[0].contains("pam_keyinit.so force revoke` runs between"),
        "{}",
        p[0]
    );
    let why = insert_text(x, &late, &[], "pam_jit.so", None).unwrap_err();
    assert!(why.contains("move it right after"), "{why}");
}

#[test]
fn a_marker_whose_line_was_deleted_is_refused_not_taken_as_set_up() {
    let t = DEBIAN12.replacen(
        "pam_loginuid.so\n",
        &format!("pam_loginuid.so\n{SESSION_MARKER}\n"),
        1,
    );
    let why = insert_text(Path::new("/x"), &t, &[], "pam_jit.so", None).unwrap_err();
    assert!(
        why.contains("but no pam_jit session line after it: remove that line"),
        "{why}"
    );
    // Also when the next line is another session module's.
    let t = DEBIAN12.replacen(
        "session    required     pam_loginuid.so\n",
        &format!(
            "session    required     pam_loginuid.so\n{SESSION_MARKER}\nsession optional pam_umask.so\n"
        ),
        1,
    );
    assert!(insert_text(Path::new("/x"), &t, &[], "pam_jit.so", None).is_err());
}

#[test]
fn includes_are_followed_one_level_for_pam_env_and_pam_loginuid() {
    let x = Path::new("/etc/pam.d/sshd");
    // Arch/Gentoo: pam_loginuid only inside system-remote-login.
    let arch = "auth include system-remote-login\nsession include system-remote-login\n";
    let inc = vec![(
        "system-remote-login".to_string(),
        "session required pam_loginuid.so\nsession optional pam_motd.so\n".to_string(),
    )];
    let why = insert_text(x, arch, &inc, "pam_jit.so", None).unwrap_err();
    assert!(why.contains("only through system-remote-login"), "{why}");
    assert!(why.contains("a second pam_loginuid is harmless"), "{why}");
    let with_jit = format!("{arch}session optional pam_jit.so\n");
    let p = readiness_in(x, &with_jit, &inc, None).problems(x);
    assert!(
        p.iter()
            .any(|l| l.contains("only through system-remote-login")),
        "{p:?}"
    );
    // The include is not read as a module named system-remote-login.
    assert!(!readiness("session include pam_jit.so\n").session_line);
    // pam_env user_readenv=1 inside an @include before pam_jit.
    let text =
        "session required pam_loginuid.so\n@include common-session\nsession optional pam_jit.so\n";
    let inc = vec![(
        "common-session".to_string(),
        "session required pam_env.so user_readenv=1\n".to_string(),
    )];
    let r = readiness_in(x, text, &inc, None);
    assert!(r.readenv_before, "{r:?}");
    assert!(
        r.readenv_at
            .as_deref()
            .unwrap()
            .contains("includes common-session")
    );
    // In the auth stack it is harmless (sshd sets SSH_AUTH_INFO_0 again before the session).
    let inc = vec![(
        "common-session".to_string(),
        "auth required pam_env.so user_readenv=1\nsession optional pam_umask.so\n".to_string(),
    )];
    let r = readiness_in(x, text, &inc, None);
    assert!(!r.readenv_before, "{r:?}");
    // ... and a readenv include before pam_loginuid stops setup.
    let text = "@include common-session\nsession required pam_loginuid.so\n";
    let inc = vec![(
        "common-session".to_string(),
        "session required pam_env.so user_readenv=1\n".to_string(),
    )];
    let why = insert_text(x, text, &inc, "pam_jit.so", None).unwrap_err();
    assert!(
        why.contains("(in common-session, included on line 1)"),
        "{why}"
    );
}

#[test]
fn read_includes_reads_plain_names_under_the_directory_only() {
    let d = tempfile::tempdir().unwrap();
    fs::write(
        d.path().join("common-session"),
        "session required pam_unix.so\n",
    )
    .unwrap();
    let got = pamfile::read_includes(
        d.path(),
        "@include common-session\nsession include ../etc/shadow\nsession substack missing\n",
    );
    // ../etc/shadow is never read and a missing file is not skipped: both are listed as
    // unread (what they run is unknown), not left out as if they ran nothing.
    assert_eq!(
        got,
        vec![
            (
                "common-session".to_string(),
                "session required pam_unix.so\n".to_string()
            ),
            ("../etc/shadow".to_string(), pamfile::UNREAD.to_string()),
            ("missing".to_string(), pamfile::UNREAD.to_string()),
        ]
    );
    // Larger than the bound, or with a NUL byte: unread too.
    fs::write(d.path().join("big"), "#".repeat(pamfile::MAX_INCLUDE + 1)).unwrap();
    fs::write(d.path().join("nul"), "session required pam_unix.so\0\n").unwrap();
    let got = pamfile::read_includes(d.path(), "@include big\n@include nul\n");
    assert!(got.iter().all(|(_, t)| t == pamfile::UNREAD), "{got:?}");
}

/// An include that could not be followed (unreadable, a path, too large, or an include
/// inside an included file) may run `pam_env user_readenv=1`: before pam_jit it makes the
/// host not ready, before pam_loginuid it stops setup (it was skipped as if it ran nothing).
#[test]
fn includes_that_could_not_be_read_are_unknown_not_empty() {
    let x = Path::new("/etc/pam.d/sshd");
    let unread = |n: &str| vec![(n.to_string(), pamfile::UNREAD.to_string())];
    let text =
        "@include common-session\nsession required pam_loginuid.so\nsession optional pam_jit.so\n";
    let p = readiness_in(x, text, &unread("common-session"), None).problems(x);
    assert!(
        p.iter().any(|l| l.contains(
            "line 1 includes common-session before pam_jit.so, which jit-host could not read"
        )),
        "{p:?}"
    );
    let why = insert_text(
        x,
        "@include common-session\nsession required pam_loginuid.so\n",
        &unread("common-session"),
        "pam_jit.so",
        None,
    )
    .unwrap_err();
    assert!(why.contains("could not read"), "{why}");
    assert!(
        why.ends_with("then run jit-host setup --session again"),
        "{why}"
    );
    // Nested: an include inside an included file is not followed.
    let inc = vec![(
        "common-session".to_string(),
        "session include deeper\nsession optional pam_umask.so\n".to_string(),
    )];
    let p = readiness_in(x, text, &inc, None).problems(x);
    assert!(
        p.iter()
            .any(|l| l.contains("common-session (included at line 1) includes deeper")),
        "{p:?}"
    );
    // After pam_jit, an unread include is harmless.
    let text =
        "session required pam_loginuid.so\nsession optional pam_jit.so\n@include common-session\n";
    assert!(
        readiness_in(x, text, &unread("common-session"), None)
            .problems(x)
            .is_empty()
    );
}

/// A jump inside an included file counts over the flattened stack.
#[test]
fn a_numeric_jump_in_an_included_file_is_refused_too() {
    let text =
        "@include common-x\nsession required pam_loginuid.so\nsession required pam_unix.so\n";
    let inc = vec![(
        "common-x".to_string(),
        "session [success=1 default=ignore] pam_succeed_if.so quiet\n".to_string(),
    )];
    let why = insert_text(Path::new("/x"), text, &inc, "pam_jit.so", None).unwrap_err();
    assert!(
        why.starts_with("/x line 1 `session [success=1 default=ignore] pam_succeed_if.so quiet` (in common-x, included there) jumps over 1 rule(s)"),
        "{why}"
    );
}

#[test]
fn a_numeric_jump_over_the_insertion_point_is_refused() {
    let text = "session [success=1 default=ignore] pam_succeed_if.so quiet\nsession required pam_loginuid.so\nsession required pam_unix.so\n";
    let why = insert_text(Path::new("/x"), text, &[], "pam_jit.so", None).unwrap_err();
    assert!(why.starts_with("/x line 1 `session [success=1 default=ignore] pam_succeed_if.so quiet` jumps over 1 rule(s)"), "{why}");
    // A jump that lands before pam_loginuid is fine.
    let text = "session [success=1 default=ignore] pam_a.so\nsession optional pam_b.so\nsession required pam_loginuid.so\n";
    assert!(insert_text(Path::new("/x"), text, &[], "pam_jit.so", None).is_ok());
    // pam_loginuid's own jump.
    let text = "session [success=2 default=bad] pam_loginuid.so\nsession optional pam_b.so\nsession optional pam_c.so\n";
    assert!(insert_text(Path::new("/x"), text, &[], "pam_jit.so", None).is_err());
}

#[test]
fn crlf_files_and_dash_session_lines() {
    let text = "session required pam_loginuid.so\r\nsession optional pam_unix.so\r\n";
    let t = insert_text(Path::new("/x"), text, &[], "pam_jit.so", None)
        .unwrap()
        .unwrap();
    assert_eq!(
        t,
        format!(
            "session required pam_loginuid.so\r\n{SESSION_MARKER}\r\nsession optional pam_jit.so\r\nsession optional pam_unix.so\r\n"
        )
    );
    assert!(readiness(&t).problems(Path::new("/x")).is_empty());
    assert_eq!(
        insert_text(Path::new("/x"), &t, &[], "pam_jit.so", None),
        Ok(None)
    );
    assert_eq!(undo_text(&t), text);
    // `-session` for pam_jit and pam_loginuid.
    let t = "-session required pam_loginuid.so\n-session optional pam_jit.so\n";
    assert!(readiness(t).problems(Path::new("/x")).is_empty());
}

#[test]
fn undo_removes_a_custom_module_line_after_the_marker() {
    let t = insert_text(
        Path::new("/x"),
        DEBIAN12,
        &[],
        "/opt/x/jit.so",
        Some(Path::new("/etc/jit/h.toml")),
    )
    .unwrap()
    .unwrap();
    assert!(t.contains("session optional /opt/x/jit.so config=/etc/jit/h.toml\n"));
    assert_eq!(undo_text(&t), DEBIAN12);
    // Set up with that module: nothing more to do.
    assert_eq!(
        insert_text(Path::new("/x"), &t, &[], "/opt/x/jit.so", None),
        Ok(None)
    );
    // A line of the administrator's after the marker is kept.
    let t = format!("{SESSION_MARKER}\nsession required pam_unix.so nullok\n");
    assert_eq!(undo_text(&t), "session required pam_unix.so nullok\n");
    // Even one with setup's shape, when its module is not jit's.
    let t = format!("{SESSION_MARKER}\nsession optional pam_motd.so\n");
    assert_eq!(undo_text(&t), "session optional pam_motd.so\n");
}

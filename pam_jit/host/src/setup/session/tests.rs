use super::*;
use crate::setup::change::apply;

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

#[test]
fn inserts_right_after_pam_loginuid_and_undoes_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sshd");
    fs::write(&p, DEBIAN12).unwrap();
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
            readenv_before: false
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
    assert!(insert_text(&p, &commented, "pam_jit.so", None).is_err());
    assert_eq!(fs::read_to_string(&p).unwrap(), text, "nothing changed");
    assert!(!backup_path(&p).exists());
}

#[test]
fn refuses_when_pam_env_reads_the_users_environment_first() {
    let text = "session required pam_env.so user_readenv=1\nsession required pam_loginuid.so\n";
    let why = insert_text(Path::new("/x/sshd"), text, "pam_jit.so", None).unwrap_err();
    assert!(
        why.starts_with(
            "/x/sshd runs `session required pam_env.so user_readenv=1` before pam_loginuid"
        ),
        "{why}"
    );
    // Without user_readenv=1 (the default is 0) it is harmless.
    let text = "session required pam_env.so\nsession required pam_loginuid.so\n";
    assert!(insert_text(Path::new("/x/sshd"), text, "pam_jit.so", None).is_ok());
}

#[test]
fn bracketed_controls_optional_rules_and_full_paths_are_read() {
    let text = "session [success=ok default=bad] /usr/lib/security/pam_loginuid.so\n";
    let t = insert_text(Path::new("/x"), text, "pam_jit.so", None)
        .unwrap()
        .unwrap();
    assert_eq!(
        t,
        format!("{text}{SESSION_MARKER}\nsession optional pam_jit.so\n")
    );
    let text = "-session optional pam_loginuid.so\n";
    assert!(
        insert_text(Path::new("/x"), text, "pam_jit.so", None)
            .unwrap()
            .is_some()
    );
    // A pam_jit session line the administrator wrote is left alone (also cargo's name).
    let text = "session required pam_loginuid.so\nsession optional /opt/pam_jit.so\n";
    assert_eq!(
        insert_text(Path::new("/x"), text, "pam_jit.so", None),
        Ok(None)
    );
    let text = "session required pam_loginuid.so\nsession optional /b/libpam_jit.so config=/x\n";
    assert_eq!(
        insert_text(Path::new("/x"), text, "pam_jit.so", None),
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
            readenv_before: false
        }
    );
    let env = "session required pam_loginuid.so\nsession required pam_env.so user_readenv=1\nsession optional pam_jit.so\n";
    assert!(readiness(env).readenv_before);
    assert_eq!(
        readiness(DEBIAN12),
        Readiness {
            session_line: false,
            loginuid_before: true,
            readenv_before: false
        }
    );
}

#[test]
fn a_file_without_a_final_newline_after_pam_loginuid_is_refused() {
    let why = insert_text(
        Path::new("/x"),
        "session required pam_loginuid.so",
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
    std::os::unix::fs::chown(&dir, Some(1234), None).unwrap();
    let e = ensure_session_dir(&dir).unwrap_err();
    assert!(e.message.contains("owned by uid 1234, not root"), "{e}");
    fs::remove_dir(&dir).unwrap();
    std::os::unix::fs::symlink(tmp.path(), &dir).unwrap();
    let e = ensure_session_dir(&dir).unwrap_err();
    assert!(e.message.contains("is not a directory (a symlink?)"), "{e}");
}

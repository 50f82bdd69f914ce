use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::PathBuf;

use super::write::{mark_ended, remove_binding, write_binding};
use super::*;

pub(crate) fn sample(id: u32) -> Binding {
    Binding {
        version: BINDING_VERSION,
        session_id: id,
        user: "alice".into(),
        grant_id: "g-1".into(),
        role: "db-admin".into(),
        serial: 77,
        leader_pid: std::process::id(),
        leader_start: proc::own_start_time().unwrap(),
        boot_id: proc::boot_id().unwrap(),
        since: UnixTime::from_secs(1_800_000_000),
        client: "192.0.2.7".into(),
        tty: "ssh".into(),
        not_after: UnixTime::from_secs(1_800_003_600),
        ended_at: None,
        ended_by: None,
    }
}

/// `<tmp>/run/jit/sessions` under a fresh root-owned 0755 temp dir; `run/jit` and
/// `sessions` do not exist yet.
fn dirs() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir(t.path().join("run")).unwrap();
    fs::set_permissions(t.path().join("run"), fs::Permissions::from_mode(0o755)).unwrap();
    let s = t.path().join("run/jit/sessions");
    (t, s)
}

#[test]
fn bindings_round_trip_and_are_strict() {
    let b = sample(7);
    b.validate().unwrap();
    let bytes = b.to_bytes().unwrap();
    assert_eq!(Binding::from_bytes(&bytes).unwrap(), b);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("\"ended_at\":null"), "{text}");
    // Unknown fields are refused.
    let extra = text.replacen('{', "{\"admin\":true,", 1);
    assert!(
        Binding::from_bytes(extra.as_bytes())
            .unwrap_err()
            .contains("unknown field")
    );
    // Absent ended_* fields read as None.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut().unwrap().remove("ended_at");
    v.as_object_mut().unwrap().remove("ended_by");
    assert_eq!(Binding::from_bytes(v.to_string().as_bytes()).unwrap(), b);
    assert!(Binding::from_bytes(b"garbage").is_err());

    let bad = |f: &dyn Fn(&mut Binding), want: &str| {
        let mut b = sample(7);
        f(&mut b);
        let e = b.validate().unwrap_err();
        assert!(e.contains(want), "{e} lacks {want}");
    };
    bad(&|b| b.version = 2, "version 2");
    bad(&|b| b.session_id = 0, "session_id");
    bad(&|b| b.session_id = UNSET_SESSION_ID, "session_id");
    bad(&|b| b.user = "../root".into(), "login name");
    bad(&|b| b.grant_id = "a/b".into(), "grant_id");
    bad(&|b| b.role = String::new(), "role");
    bad(&|b| b.leader_pid = 1, "leader_pid");
    bad(&|b| b.boot_id = "x".into(), "boot_id");
    bad(&|b| b.client = "a\nb".into(), "client");
    bad(&|b| b.tty = String::new(), "tty");
    bad(&|b| b.ended_at = Some(UnixTime::from_secs(1)), "together");
    bad(&|b| b.ended_by = Some("logout".into()), "together");
}

#[test]
fn file_names() {
    assert_eq!(
        binding_path(Path::new("/run/jit/sessions"), 12),
        PathBuf::from("/run/jit/sessions/12.binding")
    );
    assert_eq!(id_of_file_name("12.binding"), Some(12));
    for bad in [
        "012.binding",
        "0.binding",
        "4294967295.binding",
        "4294967296.binding",
        "-1.binding",
        "+1.binding",
        "1.grant",
        ".binding",
        "12.binding.tmp",
        ".12.binding.5.tmp",
    ] {
        assert_eq!(id_of_file_name(bad), None, "{bad}");
    }
}

#[test]
fn liveness_order_and_reasons() {
    let b = sample(7);
    let boot = || Ok(b.boot_id.clone());
    assert_eq!(
        liveness_with(&b, boot(), |_| Ok(Some(b.leader_start))),
        Liveness::Alive
    );
    assert_eq!(
        liveness_with(&b, boot(), |_| Ok(Some(b.leader_start + 1))),
        Liveness::LeaderGone { pid: b.leader_pid }
    );
    assert_eq!(
        liveness_with(&b, boot(), |_| Ok(None)),
        Liveness::LeaderGone { pid: b.leader_pid }
    );
    assert!(matches!(
        liveness_with(&b, boot(), |_| Err("x".into())),
        Liveness::Unreadable(_)
    ));
    assert_eq!(
        liveness_with(
            &b,
            Ok("00000000-0000-0000-0000-000000000000".into()),
            |_| Ok(Some(b.leader_start))
        ),
        Liveness::OtherBoot
    );
    assert!(matches!(
        liveness_with(&b, Err("no /proc".into()), |_| Ok(None)),
        Liveness::Unreadable(_)
    ));
    let mut ended = b.clone();
    ended.ended_at = Some(UnixTime::from_secs(1_800_000_100));
    ended.ended_by = Some(ENDED_BY_LOGOUT.into());
    let l = liveness_with(&ended, boot(), |_| Ok(Some(b.leader_start)));
    assert_eq!(
        l,
        Liveness::Ended {
            at: UnixTime::from_secs(1_800_000_100),
            by: "logout".into()
        }
    );
    assert_eq!(l.describe(), "ended at 2027-01-15T08:01:40Z by logout");
    assert!(!l.is_alive());
    // This process is alive; a child that was reaped is gone.
    assert_eq!(liveness(&b), Liveness::Alive);
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let mut c = b.clone();
    c.leader_pid = child.id();
    c.leader_start = proc::start_time(child.id()).unwrap().unwrap();
    assert_eq!(liveness(&c), Liveness::Alive);
    let mut other_start = c.clone();
    other_start.leader_start += 1;
    assert_eq!(
        liveness(&other_start),
        Liveness::LeaderGone { pid: c.leader_pid }
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(liveness(&c), Liveness::LeaderGone { pid: c.leader_pid });
}

#[test]
#[ignore = "needs root"]
fn write_read_end_list_remove() {
    let (t, s) = dirs();
    assert_eq!(read_binding(&s, 7).unwrap(), None);
    assert_eq!(list_bindings(&s), (vec![], vec![]));
    let b = sample(7);
    write_binding(&s, &b).unwrap();
    let meta = |p: &Path| fs::symlink_metadata(p).unwrap();
    assert_eq!(meta(&s).mode() & 0o7777, 0o700);
    assert_eq!(meta(&t.path().join("run/jit")).mode() & 0o7777, 0o755);
    let f = binding_path(&s, 7);
    assert_eq!(meta(&f).mode() & 0o7777, 0o600);
    assert_eq!(meta(&f).uid(), 0);
    assert_eq!(read_binding(&s, 7).unwrap(), Some(b.clone()));
    // Replaced atomically, no temporary files left.
    let mut b2 = b.clone();
    b2.serial = 78;
    write_binding(&s, &b2).unwrap();
    assert_eq!(read_binding(&s, 7).unwrap(), Some(b2.clone()));
    assert_eq!(fs::read_dir(&s).unwrap().count(), 1);

    let at = UnixTime::from_secs(1_800_000_500);
    let ended = mark_ended(&s, 7, at, ENDED_BY_LOGOUT).unwrap();
    assert_eq!(ended.ended_at, Some(at));
    assert_eq!(read_binding(&s, 7).unwrap(), Some(ended.clone()));
    // The first end is kept.
    let again = mark_ended(&s, 7, UnixTime::from_secs(1_900_000_000), ENDED_BY_TOOL).unwrap();
    assert_eq!(again, ended);
    let e = mark_ended(&s, 8, at, ENDED_BY_TOOL).unwrap_err();
    assert!(e.contains("no binding for session 8"), "{e}");

    write_binding(&s, &sample(9)).unwrap();
    fs::write(s.join("junk"), b"x").unwrap();
    fs::write(s.join(".9.binding.1.tmp"), b"x").unwrap();
    fs::write(binding_path(&s, 11), b"{}").unwrap();
    fs::set_permissions(binding_path(&s, 11), fs::Permissions::from_mode(0o600)).unwrap();
    let (list, problems) = list_bindings(&s);
    assert_eq!(
        list.iter().map(|b| b.session_id).collect::<Vec<_>>(),
        vec![7, 9]
    );
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("not a binding file name"))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("11.binding") && p.contains("not a valid binding"))
    );

    assert!(remove_binding(&s, 9).unwrap());
    assert!(!remove_binding(&s, 9).unwrap());
    assert_eq!(read_binding(&s, 9).unwrap(), None);
}

#[test]
#[ignore = "needs root"]
fn unsafe_files_and_directories_are_refused() {
    let (_t, s) = dirs();
    write_binding(&s, &sample(7)).unwrap();
    let f = binding_path(&s, 7);
    // Another session's content under this name.
    fs::copy(&f, binding_path(&s, 8)).unwrap();
    let e = read_binding(&s, 8).unwrap_err();
    assert!(e.contains("session 7, not 8"), "{e}");
    // Group/world-writable file, foreign owner, symlink, oversized.
    fs::set_permissions(&f, fs::Permissions::from_mode(0o620)).unwrap();
    assert!(
        read_binding(&s, 7)
            .unwrap_err()
            .contains("writable by group or others")
    );
    fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&f, Some(4242), None).unwrap();
    assert!(read_binding(&s, 7).unwrap_err().contains("uid 4242"));
    fs::remove_file(&f).unwrap();
    symlink(binding_path(&s, 8), &f).unwrap();
    assert!(read_binding(&s, 7).unwrap_err().contains("symbolic link"));
    fs::remove_file(&f).unwrap();
    fs::write(&f, vec![b' '; MAX_BINDING_SIZE as usize + 1]).unwrap();
    assert!(read_binding(&s, 7).unwrap_err().contains("more than"));
    fs::remove_file(&f).unwrap();
    // A group-writable or foreign-owned session directory: nothing is read or written.
    fs::set_permissions(&s, fs::Permissions::from_mode(0o770)).unwrap();
    assert!(read_binding(&s, 8).is_err());
    assert!(
        write_binding(&s, &sample(7))
            .unwrap_err()
            .contains("writable by group or others")
    );
    assert!(!list_bindings(&s).1.is_empty());
    fs::set_permissions(&s, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&s, Some(4242), None).unwrap();
    assert!(
        write_binding(&s, &sample(7))
            .unwrap_err()
            .contains("uid 4242")
    );
    assert!(mark_ended(&s, 8, UnixTime::from_secs(1), ENDED_BY_TOOL).is_err());
    // A session directory that is a symlink.
    let (_t2, s2) = dirs();
    fs::create_dir_all(s2.parent().unwrap()).unwrap();
    symlink(&s, &s2).unwrap();
    assert!(write_binding(&s2, &sample(7)).is_err());
    // A relative session directory, and an invalid binding.
    assert!(
        write_binding(Path::new("run/sessions"), &sample(7))
            .unwrap_err()
            .contains("absolute")
    );
    let (_t3, s3) = dirs();
    let mut b = sample(7);
    b.user = "Root".into();
    assert!(write_binding(&s3, &b).unwrap_err().contains("refusing"));
}

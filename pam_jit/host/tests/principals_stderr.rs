//! `jit-host principals` run by hand: a refusal exits 1, prints nothing on stdout (sshd reads
//! only stdout) and exactly one line on stderr saying why (issue 13: it used to exit 1 in
//! silence when no syslog daemon was running). Needs no root: the configuration it is given
//! does not exist, which is itself a refusal with a reason.

use std::path::Path;
use std::process::Command;

#[test]
fn a_refusal_says_why_on_stderr_and_nothing_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("host.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_jit-host"))
        .arg("--config")
        .arg(&config)
        .args(["principals", "alice", "AAAA"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "stdout must stay empty for sshd");
    let err = String::from_utf8(out.stderr).unwrap();
    let reason = format!(
        "jit-host: principals: refused \"alice\": cannot use the host configuration: {} does not exist",
        config.display()
    );
    assert!(accepted(&err, &reason), "{err:?}");
}

#[test]
fn an_invalid_user_is_refused_with_the_reason() {
    let out = Command::new(env!("CARGO_BIN_EXE_jit-host"))
        .args([
            "--config",
            "/nonexistent/host.toml",
            "principals",
            "bad user",
            "AAAA",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    let reason = "jit-host: principals: refused \"bad user\": field \"user\" is invalid: \"bad user\" \
                  is not a valid login name (a-z 0-9 _ - ., starting with a letter or _)";
    assert!(accepted(&err, reason), "{err:?}");
}

/// `err` is exactly `reason` and a newline; without a syslog socket the line also says it
/// is the only record (with a socket, whether a daemon answers decides).
fn accepted(err: &str, reason: &str) -> bool {
    let unlogged = format!("{reason} (not logged: no syslog daemon on /dev/log)\n");
    if Path::new("/dev/log").exists() {
        err == format!("{reason}\n") || err == unlogged
    } else {
        err == unlogged
    }
}

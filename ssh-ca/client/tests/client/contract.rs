//! The command-line contract of `jit` (issue 13, "the first hour of a new user"): durations,
//! `--json` for every error, a closed pipe, an example in every subcommand's help.

use std::process::{Command, Output, Stdio};

use jit_test_kit::running::*;

/// Runs `cmd` with stdout a pipe whose reader is already closed: every write fails with EPIPE.
fn with_closed_stdout(cmd: &mut Command) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    cmd.stdout(writer).stderr(Stdio::piped()).output().unwrap()
}

#[test]
fn a_closed_pipe_ends_every_printing_command_quietly_with_141() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let (code, _, err) = out(ca.jit(&alice).args([
        "request",
        "db-admin",
        "--duration",
        "30m",
        "--reason",
        "INC-1",
        "--no-wait",
    ]));
    assert_eq!(code, 0, "{err}");
    for args in [
        &["roles"][..],
        &["roles", "--json"],
        &["list"],
        &["list", "--json"],
        &["whoami"],
        &["status"],
        &["status", "--json"],
    ] {
        let o = with_closed_stdout(ca.jit(&alice).args(args));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(141), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("failed printing"),
            "{args:?}: {err}"
        );
    }
}

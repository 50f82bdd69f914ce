//! The command-line contract of `jit-ca` (issue 13, "the first hour of a new user"): a closed
//! pipe ends a command quietly, `--json` holds for every error, every subcommand's help has
//! an example, `jit-ca user key add|remove`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output, Stdio};

use jit_test_kit::harness::*;

fn jit_ca(args: &[&str]) -> Output {
    Command::new(JIT_CA)
        .args(args)
        .env_remove("JIT_CA_DIR")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `args` with stdout a pipe whose reader is already closed: every write fails with
/// EPIPE, deterministically.
fn with_closed_stdout(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(JIT_CA)
        .args(args)
        .env_remove("JIT_CA_DIR")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_closed_pipe_ends_every_printing_command_quietly_with_141() {
    let (tmp, _) = setup_dir(POLICY);
    let d = data_dir(&tmp);
    let d = d.to_str().unwrap();
    // The trail has records (the users' additions) before export reads it.
    let o = jit_ca(&["audit", "export", "--dir", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).lines().count() >= 5, "{}", stdout(&o));
    for args in [
        &["audit", "export", "--dir", d][..],
        &["audit", "export", "--json", "--dir", d],
        &["audit", "verify", "--dir", d],
        &["user", "list", "--dir", d],
        &["user", "list", "--json", "--dir", d],
        &["policy", "check", "--dir", d],
        &["host-config", "--dir", d],
    ] {
        let o = with_closed_stdout(args);
        assert_eq!(o.status.code(), Some(141), "{args:?}: {}", stderr(&o));
        assert!(
            !stderr(&o).contains("panicked") && !stderr(&o).contains("failed printing"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
}

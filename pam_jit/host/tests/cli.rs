//! The command-line contract of `jit-host` (issue 13): a closed pipe ends a command quietly
//! with status 141, never a panic; every subcommand's help has an example; with `--json`,
//! every failure is one JSON error object on stdout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const JIT_HOST: &str = env!("CARGO_BIN_EXE_jit-host");

fn key_line(comment: &str) -> String {
    let key =
        ssh_key::PrivateKey::random(&mut rand_core::OsRng, ssh_key::Algorithm::Ed25519).unwrap();
    format!("{} {comment}", key.public_key().to_openssh().unwrap())
}

/// A host.toml with fresh keys and its state directory under `dir`.
fn host_toml(dir: &Path) -> PathBuf {
    let state = dir.join("state");
    std::fs::create_dir(&state).unwrap();
    let path = dir.join("host.toml");
    std::fs::write(
        &path,
        format!(
            "server = \"http://127.0.0.1:9\"\nstate_dir = {:?}\nuser_ca_keys = [{:?}]\n\
             grant_keys = [{:?}]\n",
            state.to_str().unwrap(),
            key_line("ca"),
            key_line("grant")
        ),
    )
    .unwrap();
    path
}

/// Runs jit-host with stdout a pipe whose reader is already closed.
fn with_closed_stdout(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(JIT_HOST)
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_closed_pipe_ends_every_printing_command_quietly_with_141() {
    let tmp = tempfile::tempdir().unwrap();
    let config = host_toml(tmp.path());
    let c = config.to_str().unwrap();
    let o = Command::new(JIT_HOST)
        .args(["--config", c, "list"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for args in [
        &["--config", c, "list"][..],
        &["--config", c, "list", "--json"],
        &["--config", c, "check", "root", "--json"],
        &["--config", c, "check", "root"],
    ] {
        let o = with_closed_stdout(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(141), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("failed printing"),
            "{args:?}: {err}"
        );
    }
}

/// Every subcommand (not hidden) of `cmd` with its full name, `cmd` itself first.
fn all_commands(cmd: &clap::Command, name: &str) -> Vec<(String, clap::Command)> {
    let mut out = vec![(name.to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        out.extend(all_commands(sub, &format!("{name} {}", sub.get_name())));
    }
    out
}

/// Each command's `--help` ends with an `Examples:` block that runs that very command, so a
/// new subcommand cannot ship without one.
fn assert_every_help_has_an_example(cli: clap::Command, program: &str) {
    // Not built: clap's generated `help` subcommand is not one of ours.
    let all = all_commands(&cli, program);
    assert!(all.len() > 5, "{all:?}");
    for (name, cmd) in all {
        let after = cmd
            .get_after_long_help()
            .or_else(|| cmd.get_after_help())
            .map(|s| s.to_string())
            .unwrap_or_default();
        let examples = after
            .split_once("Examples:\n")
            .map(|(_, e)| e)
            .unwrap_or_else(|| panic!("`{name} --help` has no Examples: block"));
        assert!(
            examples.lines().all(|l| l.starts_with("  ")) && examples.contains(&name),
            "`{name} --help`: the examples must be indented lines that run `{name}`:\n{examples}"
        );
    }
}

#[test]
fn every_subcommand_help_has_an_example() {
    use clap::CommandFactory as _;
    assert_every_help_has_an_example(jit_host::Cli::command(), "jit-host");
}

#[test]
fn with_json_every_failure_is_one_json_error_object_on_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(JIT_HOST).args(args).output().unwrap();
        (
            o.status.code().unwrap(),
            String::from_utf8(o.stdout).unwrap(),
            String::from_utf8(o.stderr).unwrap(),
        )
    };
    // A configuration that does not exist: exit 2, code "config".
    let missing = tmp.path().join("nope.toml");
    let m = missing.to_str().unwrap();
    let (code, out, err) = run(&["--config", m, "list", "--json"]);
    assert_eq!(code, 2, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["code"], "config");
    assert_eq!(
        format!("jit-host: {}\n", v["error"]["message"].as_str().unwrap()),
        err
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    // An argument error: exit 2, code "usage", one line.
    let (code, out, _) = run(&["check", "--json", "--no-such-flag"]);
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["code"], "usage");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--no-such-flag"),
        "{v}"
    );
    // Never on a principals command line: sshd reads its stdout as principals.
    let (code, out, _) = run(&["--config", m, "principals", "--json"]);
    assert_eq!((code, out.as_str()), (2, ""));
    // Without --json: nothing on stdout.
    let (code, out, _) = run(&["--config", m, "list"]);
    assert_eq!((code, out.as_str()), (2, ""));
}

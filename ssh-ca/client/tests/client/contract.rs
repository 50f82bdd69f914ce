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

#[test]
fn durations_30m_is_ambiguous_and_a_bare_number_suggests_minutes() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    for (given, said) in [
        (
            "30M",
            "invalid duration \"30M\": \"M\" is ambiguous (months or minutes?); write 30m for 30 \
             minutes, or days (e.g. 30d)",
        ),
        (
            "30",
            "invalid duration \"30\": 30 has no unit; did you mean 30m (minutes)? (examples: \
             30m, 1h, 1h30m, 90s, 2d)",
        ),
    ] {
        for cmd in [
            &["request", "db-admin", "--duration", given, "--reason", "x"][..],
            &["extend", "r-1", "--duration", given],
        ] {
            let (code, stdout, err) = out(ca.jit(&alice).args(cmd));
            assert_eq!(code, 2, "{cmd:?}: {err}");
            assert_eq!(stdout, "");
            assert_eq!(
                err.lines().next().unwrap(),
                format!("error: invalid value '{given}' for '--duration <DURATION>': {said}"),
                "{cmd:?}"
            );
        }
    }
    // Nothing was asked.
    let (_, listed, _) = out(ca.jit(&alice).args(["list", "--mine"]));
    assert!(!listed.contains("db-admin"), "{listed}");
}

#[test]
fn with_json_every_error_is_one_json_object_on_stdout() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let cases: [(&[&str], i32, &str); 5] = [
        // An argument error, --json after the mistake and before it.
        (
            &[
                "request",
                "db-admin",
                "--duration",
                "30M",
                "--reason",
                "x",
                "--json",
            ],
            2,
            r#"{"error":{"code":"usage","message":"invalid value '30M' for '--duration <DURATION>': invalid duration \"30M\": \"M\" is ambiguous (months or minutes?); write 30m for 30 minutes, or days (e.g. 30d)"}}"#,
        ),
        (
            &["--json", "lst"],
            2,
            r#"{"error":{"code":"usage","message":"unrecognized subcommand 'lst'; tip: a similar subcommand exists: 'list'"}}"#,
        ),
        (
            &["--json", "approve"],
            2,
            r#"{"error":{"code":"usage","message":"the following required arguments were not provided: <ID>"}}"#,
        ),
        // An API error.
        (
            &["show", "r-nope", "--json"],
            1,
            r#"{"error":{"code":"not_found","message":"server refused (not_found, HTTP 404): no request \"r-nope\""}}"#,
        ),
        // A local error: a missing key file.
        (
            &["whoami", "--json", "--identity", "/nonexistent/key"],
            1,
            r#"{"error":{"code":"identity","message":"/nonexistent/key: cannot read the identity key file: No such file or directory (os error 2) (pass --identity with an OpenSSH key file, or use an ssh-agent)"}}"#,
        ),
    ];
    for (args, want_code, want) in cases {
        let (code, stdout, err) = out(ca.jit(&alice).args(args));
        assert_eq!(code, want_code, "{args:?}: {err}");
        assert_eq!(stdout, format!("{want}\n"), "{args:?}");
        // People still get the text on stderr.
        assert!(!err.is_empty(), "{args:?}");
    }
    // --help and --version are not errors, with --json too.
    let (code, stdout, _) = out(ca.jit(&alice).args(["--json", "--version"]));
    assert_eq!(code, 0);
    assert!(stdout.starts_with("jit "), "{stdout}");
}

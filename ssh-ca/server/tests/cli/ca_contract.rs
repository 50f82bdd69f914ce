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

/// Every leaf subcommand of `cmd` (hidden ones too when `hidden`), with its full name.
fn leaves(cmd: &clap::Command, prefix: &str, hidden: bool) -> Vec<(String, clap::Command)> {
    let mut out = Vec::new();
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() && !hidden {
            continue;
        }
        let name = format!("{prefix} {}", sub.get_name());
        if sub.has_subcommands() {
            out.extend(leaves(sub, &name, hidden));
        } else {
            out.push((name, sub.clone()));
        }
    }
    out
}

#[test]
fn every_command_takes_json() {
    use clap::CommandFactory as _;
    let cli = jit_ca::cli::Cli::command();
    for (name, sub) in leaves(&cli, "jit-ca", false) {
        assert!(
            sub.get_arguments().any(|a| a.get_id() == "json"),
            "{name} has no --json"
        );
    }
}

#[test]
fn with_json_every_error_is_one_json_object_on_stdout() {
    let (tmp, _) = setup_dir(POLICY);
    let d = data_dir(&tmp);
    let d = d.to_str().unwrap();
    let cases: [(&[&str], i32, &str); 6] = [
        // Argument errors.
        (
            &["user", "list", "--json"],
            2,
            r#"{"error":{"code":"usage","message":"the following required arguments were not provided: --dir <DIR>"}}"#,
        ),
        (
            &["--json", "user", "lst"],
            2,
            r#"{"error":{"code":"usage","message":"unexpected argument '--json' found"}}"#,
        ),
        (
            &["user", "lst", "--json"],
            2,
            r#"{"error":{"code":"usage","message":"unrecognized subcommand 'lst'; tip: a similar subcommand exists: 'list'"}}"#,
        ),
        (
            &[
                "break-glass",
                "sign",
                "--key",
                "k",
                "--user",
                "u",
                "--hosts",
                "h",
                "--duration",
                "30M",
                "--reason",
                "r",
                "--out",
                "o",
                "--json",
            ],
            2,
            r#"{"error":{"code":"usage","message":"invalid value '30M' for '--duration <DURATION>': invalid duration \"30M\": \"M\" is ambiguous (months or minutes?); write 30m for 30 minutes, or days (e.g. 30d)"}}"#,
        ),
        // A refusal of the service (an operator revoke of an unknown request).
        (
            &["revoke", "r-nope", "--dir", d, "--json"],
            1,
            r#"{"error":{"code":"invalid_input","message":"no request \"r-nope\""}}"#,
        ),
        // A local error: a missing key file.
        (
            &[
                "user",
                "add",
                "zed",
                "--key",
                "/nonexistent/zed.pub",
                "--dir",
                d,
                "--json",
            ],
            1,
            r#"{"error":{"code":"file","message":"/nonexistent/zed.pub: No such file or directory (os error 2)"}}"#,
        ),
    ];
    for (args, want_code, want) in cases {
        let o = jit_ca(args);
        assert_eq!(o.status.code(), Some(want_code), "{args:?}: {}", stderr(&o));
        assert_eq!(stdout(&o), format!("{want}\n"), "{args:?}");
        assert!(
            !stderr(&o).is_empty(),
            "{args:?}: people still get text on stderr"
        );
    }
    // The commands that had no --json before: serve, backup, host-config.
    // (A directory with a config.toml that does not parse: serve would initialise a missing one.)
    let bad = tmp.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("config.toml"), "listen = [").unwrap();
    let o = jit_ca(&["serve", "--dir", bad.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["error"]["code"], "config", "{v}");
    let out = tmp.path().join("backup.db");
    let o = jit_ca(&[
        "backup",
        "--dir",
        d,
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    if jit_test_kit::pg::enabled() {
        // On PostgreSQL, backup refuses (pg_dump does it), as one JSON error too.
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(v["error"]["code"], "invalid_input", "{v}");
        assert!(!out.exists());
    } else {
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(v["out"], out.to_str().unwrap());
        assert!(v["bytes"].as_u64().unwrap() > 0);
    }
    let o = jit_ca(&["host-config", "--dir", d, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(
        v["host_toml"].as_str().unwrap().contains("grant_keys"),
        "{v}"
    );
    assert_eq!(v["warnings"].as_array().unwrap().len(), 1, "{v}");
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
    assert_every_help_has_an_example(jit_ca::cli::Cli::command(), "jit-ca");
}

#[test]
fn policy_and_config_durations_use_the_one_strict_parser() {
    let policy = POLICY.replacen("max_duration = \"1h\"", "max_duration = \"30M\"", 1);
    assert_ne!(policy, POLICY);
    let (tmp, _) = setup_dir(&policy);
    let d = data_dir(&tmp);
    let config = d.join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("\npending_expiry = \"1h\"\n"), "{text}");
    std::fs::write(
        &config,
        text.replace("\npending_expiry = \"1h\"\n", "\npending_expiry = \"30\"\n"),
    )
    .unwrap();
    let o = jit_ca(&["policy", "check", "--dir", d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let d = d.display();
    assert_eq!(
        stdout(&o),
        format!(
            "error: {d}/config.toml: pending_expiry: invalid duration \"30\": 30 has no unit; \
             did you mean 30m (minutes)? (examples: 30m, 1h, 1h30m, 90s, 2d)\n\
             error: {d}/policy.toml: roles.db-admin.max_duration: invalid duration \"30M\": \
             \"M\" is ambiguous (months or minutes?); write 30m for 30 minutes, or days (e.g. \
             30d)\n\
             {d}: 2 error(s); the service would refuse this configuration\n"
        )
    );
}

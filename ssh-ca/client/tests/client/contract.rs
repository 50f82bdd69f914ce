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

fn fingerprint(pub_file: &std::path::Path) -> String {
    ssh_key::PublicKey::read_openssh_file(pub_file)
        .unwrap()
        .fingerprint(ssh_key::HashAlg::Sha256)
        .to_string()
}

fn jit_ca(ca: &Ca, args: &[&str]) -> (i32, String, String) {
    out(Command::new(JIT_CA)
        .args(args)
        .arg("--dir")
        .arg(ca.data())
        .env_remove("JIT_CA_DIR"))
}

#[test]
fn user_key_add_and_remove_replace_a_key_without_removing_the_user() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let old_pub = alice.home.join(".ssh/id_ed25519.pub");
    let old_fp = fingerprint(&old_pub);
    let new_key = alice.home.join(".ssh/id_new");
    keygen(&new_key, "");
    let new_pub = alice.home.join(".ssh/id_new.pub");
    let new_fp = fingerprint(&new_pub);
    let old = old_pub.to_str().unwrap();

    // The last login key stays unless asked: alice could not sign anything again.
    let (code, stdout, err) = jit_ca(&ca, &["user", "key", "remove", "alice", "--key", old]);
    assert_eq!((code, stdout.as_str()), (1, ""), "{err}");
    assert_eq!(
        err,
        format!(
            "jit-ca: refusing to remove the last login key of alice ({old_fp}): alice could not \
             sign a request or any other call with a login key; add the new key first (jit-ca \
             user key add alice --key NEW.pub), or pass --allow-no-login-key to lock alice out \
             on purpose\n"
        )
    );
    // Unknown user, a key that is not theirs.
    let (code, _, err) = jit_ca(&ca, &["user", "key", "remove", "bob", "--key", old]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "jit-ca: there is no user \"bob\" (jit-ca user list shows the users)\n"
    );
    let (code, _, err) = jit_ca(&ca, &["user", "key", "remove", "alice", "--key", &new_fp]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "jit-ca: key {new_fp} is not registered to user \"alice\" (jit-ca user list shows \
             their keys)\n"
        )
    );

    // Add the new key, then remove the old one by its fingerprint.
    let (code, stdout, err) = jit_ca(
        &ca,
        &[
            "user",
            "key",
            "add",
            "alice",
            "--key",
            new_pub.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(stdout, format!("added 1 login key(s) to alice: {new_fp}\n"));
    // A certificate issued for the old key (self-serve is approved at once): named when its
    // key goes, since removing the key does not end it.
    let (code, issued, err) = out(ca.jit(&alice).args([
        "request",
        "self-serve",
        "--duration",
        "30m",
        "--reason",
        "x",
        "--json",
    ]));
    assert_eq!(code, 0, "{err}");
    let live = serde_json::from_str::<serde_json::Value>(&issued).unwrap()["request"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, stdout, err) = jit_ca(&ca, &["user", "key", "remove", "alice", "--key", &old_fp]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        stdout,
        format!(
            "removed 1 key(s) from alice: {old_fp} (login); alice has 1 login and 0 approval \
             key(s) left. Calls signed with a removed key are refused from now on; certificates \
             already issued stay valid until they expire (jit-ca revoke ID ends one)\n\
             live certificates for a removed key: request(s) {live} (jit-ca revoke ID --reason \
             ... --dir DIR ends each)\n"
        )
    );

    // The running service refuses the old key at the very next call, accepts the new one.
    let (code, _, err) = out(ca.jit(&alice).arg("whoami"));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "jit: server refused (unknown_key, HTTP 401): key {old_fp} is not registered; ask \
             an operator to run `jit-ca user add NAME --key FILE`\n"
        )
    );
    let (code, stdout, err) = out(ca
        .jit(&alice)
        .arg("--identity")
        .arg(&new_key)
        .args(["whoami", "--json"]));
    assert_eq!(code, 0, "{err}");
    let w: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(w["user"], "alice");

    // The user is still there with their groups; the removal is in the audit trail.
    let (_, listed, _) = jit_ca(&ca, &["user", "list", "--json"]);
    let users: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(users[0]["name"], "alice");
    assert_eq!(users[0]["groups"], serde_json::json!(["dev"]));
    assert_eq!(users[0]["fingerprints"], serde_json::json!([new_fp]));
    let (_, trail, _) = jit_ca(&ca, &["audit", "export", "--json"]);
    let last: serde_json::Value = serde_json::from_str(
        trail
            .lines()
            .rfind(|l| l.contains("user_remove_key"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        last["details"],
        serde_json::json!({"user": "alice", "keys": [{"fingerprint": old_fp, "purpose": "login"}],
            "login_keys_left": 1, "approval_keys_left": 0, "live_requests": [live],
            "denied_requests": []})
    );

    // The old spelling still works; --allow-no-login-key removes the last one on purpose.
    let (code, _, err) = jit_ca(&ca, &["user", "add-key", "alice", "--key", old]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = jit_ca(
        &ca,
        &["user", "key", "remove", "alice", "--key", old, "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, stdout, err) = jit_ca(
        &ca,
        &[
            "user",
            "key",
            "remove",
            "alice",
            "--key",
            new_pub.to_str().unwrap(),
            "--allow-no-login-key",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r["login_keys_left"], 0);
    let (code, _, err) = out(ca.jit(&alice).arg("--identity").arg(&new_key).arg("whoami"));
    assert_eq!(code, 1);
    assert!(err.contains("unknown_key"), "{err}");
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
    assert_every_help_has_an_example(jit::cli::Cli::command(), "jit");
}

#[test]
fn extend_refusals_say_how_much_is_left() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let bob = ca.user("bob", &["dba"]);
    let (code, stdout, err) = out(ca.jit(&alice).args([
        "request",
        "db-admin",
        "--duration",
        "30m",
        "--reason",
        "INC-1",
        "--no-wait",
        "--json",
    ]));
    assert_eq!(code, 0, "{err}");
    let id = serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _, err) = out(ca.jit(&bob).args(["approve", &id]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = out(ca.jit(&alice).args(["login", &id]));
    assert_eq!(code, 0, "{err}");
    // Past the role's 1h: what is left (just under 30m, by the real clock) and the most it
    // may still grow (30m).
    let (code, _, err) = out(ca.jit(&alice).args(["extend", &id, "--duration", "45m"]));
    assert_eq!(code, 1, "{err}");
    let prefix = "jit: server refused (duration_too_long, HTTP 403): the window would be 1h 15m \
                  from approval; role \"db-admin\" allows 1h (";
    let suffix = " left now; you may extend by at most 30m)\n";
    assert!(err.starts_with(prefix) && err.ends_with(suffix), "{err}");
    let left = &err[prefix.len()..err.len() - suffix.len()];
    assert!(left.starts_with("29m") || left == "30m", "{err}");
    // Past what bob approved (30m): what is left and what the approval still covers (0s).
    let (code, _, err) = out(ca.jit(&alice).args(["extend", &id, "--duration", "10m"]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(" left now; you may extend by at most 0s without a new approval); "),
        "{err}"
    );
}

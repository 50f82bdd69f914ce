//! `jit-ca policy test`: the real binary on a real data directory; exact output and exit
//! codes, and nothing written.

use std::process::{Command, Output};

use jit_test_kit::harness::*;

const POLICY_CONDITIONS: &str = r#"
[roles.db-admin]
hosts = ["db-*"]
sudo = true
max_duration = "2h"
requesters = ["group:dev"]
approvers = ["group:dba"]
reason_pattern = '^(?<ticket>(INC|CHG)-[0-9]+):'
reason_help = "Start the reason with the ticket, e.g. INC-123: disk full"
schedule = [{ days = ["mon-fri"], tz = "Europe/Berlin" }]

[[roles.db-admin.auto_approve_rules]]
name = "night"
groups = ["oncall"]
max_duration = "30m"
hosts = ["db-1"]
schedule = [{ days = ["mon-fri"], hours = "17:00-09:00", tz = "Europe/Berlin" }]
ticket_pattern = '^INC-'

[roles.two-man]
hosts = ["web-*"]
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["carol"]
approvals = 2
require_reason = false
"#;

fn jit_ca(args: &[&str]) -> Output {
    Command::new(JIT_CA)
        .args(args)
        .env_remove("JIT_CA_DIR")
        .output()
        .unwrap()
}

/// Runs `policy test --dir DIR ARGS...`: (exit code, stdout, stderr).
fn test(dir: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["policy", "test", "--dir", dir];
    all.extend_from_slice(args);
    let o = jit_ca(&all);
    (
        o.status.code().unwrap(),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

/// What the data directory's database holds: jit.db's bytes (SQLite), every row
/// (PostgreSQL).
fn stored(dir: &std::path::Path) -> Vec<u8> {
    match jit_test_kit::pg::Sql::of_dir(dir) {
        jit_test_kit::pg::Sql::Sqlite(path) => std::fs::read(path).unwrap(),
        pg => pg.everything_stored().into_bytes(),
    }
}

#[test]
fn policy_test_says_what_would_happen_and_why() {
    let (tmp, _) = setup_dir(POLICY_CONDITIONS);
    let dir = data_dir(&tmp);
    let d = dir.to_str().unwrap();
    let db = stored(&dir);

    // Monday 21:00 in Berlin: the on-call rule approves.
    let night = [
        "--user",
        "alice",
        "--role",
        "db-admin",
        "--duration",
        "30m",
        "--at",
        "2026-11-23T21:00:00+01:00",
        "--host",
        "db-1",
        "--reason",
        "INC-9: paged",
    ];
    assert_eq!(
        test(d, &night),
        (
            0,
            "alice asks for db-admin for 30m at 2026-11-23T20:00:00Z:\n\
             auto-approved by rule \"night\" (recorded as approver auto:night)\n  \
             hosts: db-1\n  ticket: INC-9\n  \
             conditions held: subjects group:oncall; max_duration 30m; hosts db-1; \
             schedule mon-fri 17:00-09:00 Europe/Berlin; ticket_pattern ^INC-\n"
                .to_string(),
            String::new()
        )
    );

    // Monday 13:00 in Berlin: humans approve; the rule says why it did not apply.
    assert_eq!(
        test(
            d,
            &[
                "--user",
                "alice",
                "--role",
                "db-admin",
                "--duration",
                "30m",
                "--at",
                "2026-11-23T12:00:00Z",
                "--host",
                "db-1",
                "--host",
                "db-2",
                "--reason",
                "CHG-1: rotate",
            ]
        ),
        (
            0,
            "alice asks for db-admin for 30m at 2026-11-23T12:00:00Z:\n\
             pending: needs 1 approval from group:dba (bob, carol, dave)\n  \
             hosts: db-1, db-2\n  ticket: CHG-1\n  \
             rule \"night\" does not apply: host \"db-2\" is not within its hosts (db-1)\n"
                .to_string(),
            String::new()
        )
    );

    // Refused: exactly what the API would answer, with its code.
    let saturday = ["--at", "2026-11-28T12:00:00Z"];
    let refusals: &[(&[&str], &str)] = &[
        (
            &[
                "--user",
                "alice",
                "--role",
                "db-admin",
                "--duration",
                "30m",
                "--reason",
                "disk full",
            ],
            "refused (reason_pattern_mismatch): Start the reason with the ticket, e.g. INC-123: \
             disk full (role \"db-admin\" needs a reason matching ^(?<ticket>(INC|CHG)-[0-9]+): \
             (--reason TEXT))",
        ),
        (
            &[
                "--user",
                "alice",
                "--role",
                "db-admin",
                "--duration",
                "30m",
                "--reason",
                "INC-1: x",
            ],
            "refused (outside_schedule): role \"db-admin\" may be requested only mon-fri all day \
             Europe/Berlin; the next window starts Mon 2026-11-30 00:00 +01:00 (Europe/Berlin)",
        ),
        (
            &["--user", "alice", "--role", "db-admn", "--duration", "30m"],
            "refused (unknown_role): there is no role \"db-admn\"; did you mean \"db-admin\"? \
             (jit roles lists the roles you may request)",
        ),
        (
            &["--user", "bob", "--role", "db-admin", "--duration", "30m"],
            "refused (not_a_requester): you (bob) may not request role \"db-admin\"",
        ),
        (
            &["--user", "alice", "--role", "two-man", "--duration", "2h"],
            "refused (duration_too_long): 2h is longer than role \"two-man\" allows (1h); ask for less",
        ),
    ];
    for (args, want) in refusals {
        let mut args = args.to_vec();
        args.extend_from_slice(&saturday);
        let (code, out, err) = test(d, &args);
        assert_eq!((code, err.as_str()), (0, ""), "{args:?}");
        let mut lines = out.lines();
        lines.next();
        assert_eq!(lines.next(), Some(*want), "{args:?}");
        assert_eq!(lines.next(), None);
    }

    // Too few people may approve: said plainly (alice is the requester; only carol).
    let (_, out, _) = test(
        d,
        &[
            "--user",
            "alice",
            "--role",
            "two-man",
            "--duration",
            "1h",
            "--at",
            "2026-11-23T12:00:00Z",
        ],
    );
    assert_eq!(
        out,
        "alice asks for two-man for 1h at 2026-11-23T12:00:00Z:\n\
         pending: needs 2 approvals from carol (carol)\n  \
         warning: only 1 registered user may approve it; it can never be approved\n  \
         hosts: web-*\n"
    );

    // --json: the same decision as an object.
    let mut json_args = night.to_vec();
    json_args.push("--json");
    let (code, out, _) = test(d, &json_args);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"decision": "auto_approved", "user": "alice", "role": "db-admin",
            "duration_secs": 1800, "at": 1_795_464_000u64, "hosts": ["db-1"], "ticket": "INC-9",
            "rule": "night", "approver": "auto:night", "conditions": {
                "subjects": ["group:oncall"], "max_duration_secs": 1800, "hosts": ["db-1"],
                "schedule": ["mon-fri 17:00-09:00 Europe/Berlin"], "ticket_pattern": "^INC-"}})
    );

    // Bad input: exit 2 and one line on stderr.
    for (args, want) in [
        (
            vec!["--user", "zed", "--role", "db-admin", "--duration", "30m"],
            format!(
                "jit-ca: no user \"zed\" in {d} (jit-ca user list --dir {d} shows who is registered)\n"
            ),
        ),
        (
            vec![
                "--user",
                "alice",
                "--role",
                "db-admin",
                "--duration",
                "30m",
                "--at",
                "tomorrow",
            ],
            "jit-ca: --at \"tomorrow\" is not an RFC 3339 time; write e.g. \
             2026-11-30T09:00:00+01:00 or 2026-11-30T08:00:00Z\n"
                .to_string(),
        ),
        (
            vec![
                "--user",
                "alice",
                "--role",
                "db-admin",
                "--duration",
                "forever",
            ],
            "jit-ca: --duration \"forever\": ".to_string(),
        ),
    ] {
        let (code, out, err) = test(d, &args);
        assert_eq!((code, out.as_str()), (2, ""), "{args:?}");
        assert!(err.starts_with(&want), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // With --json, bad input is also one JSON error object on stdout (as every jit-ca
    // failure), still exit 2.
    let (code, out, err) = test(
        d,
        &[
            "--user",
            "zed",
            "--role",
            "db-admin",
            "--duration",
            "30m",
            "--json",
        ],
    );
    assert_eq!(code, 2, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["code"], "invalid_input");
    assert_eq!(
        v["error"]["message"],
        format!("no user \"zed\" in {d} (jit-ca user list --dir {d} shows who is registered)")
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    // A missing required flag is a usage error: exit 2 too.
    let (code, _, err) = test(d, &["--user", "alice", "--role", "db-admin"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--duration"), "{err}");

    // Read only: the database is byte for byte what it was (no audit record, no migration).
    assert_eq!(stored(&dir), db);
}

#[test]
fn policy_test_refuses_an_invalid_policy_with_exit_2() {
    let (tmp, _) = setup_dir(POLICY_CONDITIONS);
    let dir = data_dir(&tmp);
    std::fs::remove_file(dir.join("policy.toml")).unwrap();
    std::fs::write(
        dir.join("policy.toml"),
        "[roles.r]\nhosts = [\"h\"]\nmax_duration = \"1h\"\nrequesters = [\"u\"]\napprovers = [\"v\"]\nreason_pattern = '(INC'\n",
    )
    .unwrap();
    let (code, out, err) = test(
        dir.to_str().unwrap(),
        &["--user", "alice", "--role", "r", "--duration", "1h"],
    );
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(
        err.contains(
            "roles.r.reason_pattern: \"(INC\" is not a regular expression: unclosed group"
        ),
        "{err}"
    );
}

#[test]
fn policy_test_says_a_rule_with_a_webhook_approves_only_on_its_yes() {
    use std::os::unix::fs::PermissionsExt as _;
    let policy = r#"
[[webhook]]
name = "oncall"
url = "https://oncall.example.com/jit/authorize"
secret_file = "webhooks/oncall.whsec"

[roles.quick]
hosts = ["web-*"]
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
require_reason = false
[[roles.quick.auto_approve_rules]]
name = "pager"
groups = ["oncall"]
max_duration = "15m"
webhook = "oncall"
"#;
    let (tmp, _) = setup_dir(policy);
    let dir = data_dir(&tmp);
    std::fs::create_dir(dir.join("webhooks")).unwrap();
    let secret = dir.join("webhooks/oncall.whsec");
    std::fs::write(
        &secret,
        "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n",
    )
    .unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let d = dir.to_str().unwrap();
    let args = [
        "--user",
        "alice",
        "--role",
        "quick",
        "--duration",
        "10m",
        "--at",
        "2026-11-23T12:00:00Z",
    ];
    // The service would ask the webhook and, on anything but a yes, leave the request to
    // the role's approvers: not "auto-approved".
    assert_eq!(
        test(d, &args),
        (
            0,
            "alice asks for quick for 10m at 2026-11-23T12:00:00Z:\n\
             auto-approved by rule \"pager\" only if its webhook oncall answers yes when the \
             request is made (recorded as approver auto:pager; not asked here)\n  \
             otherwise pending: needs 1 approval from group:dba (bob, carol, dave)\n  \
             hosts: web-*\n  \
             conditions held: subjects group:oncall; max_duration 15m\n"
                .to_string(),
            String::new()
        )
    );
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let (code, out, err) = test(d, &json_args);
    assert_eq!((code, err.as_str()), (0, ""));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"decision": "auto_approved_if_webhook_approves", "user": "alice",
            "role": "quick", "duration_secs": 600, "at": 1_795_435_200u64, "hosts": ["web-*"],
            "rule": "pager", "approver": "auto:pager", "webhook": "oncall",
            "conditions": {"subjects": ["group:oncall"], "max_duration_secs": 900,
                           "webhook": "oncall"},
            "approvers": ["group:dba"], "eligible_approvers": ["bob", "carol", "dave"],
            "approvals_required": 1})
    );
    // Longer than the rule allows: plainly pending, and the rule says why.
    let mut long = args.to_vec();
    long[5] = "30m";
    let (_, out, _) = test(d, &long);
    assert_eq!(
        out,
        "alice asks for quick for 30m at 2026-11-23T12:00:00Z:\n\
         pending: needs 1 approval from group:dba (bob, carol, dave)\n  \
         hosts: web-*\n  \
         rule \"pager\" does not apply: 30m is longer than its max_duration 15m\n"
    );
}

#[test]
fn policy_test_says_a_session_bound_role_binds_its_grant() {
    let (tmp, _) = setup_dir(
        "[roles.bound]\nhosts = [\"db-*\"]\nsudo = true\nsession_bound = true\nmax_duration = \"1h\"\n\
         requesters = [\"group:dev\"]\napprovers = [\"group:dba\"]\nrequire_reason = false\n",
    );
    let dir = data_dir(&tmp);
    let args = [
        "--user",
        "alice",
        "--role",
        "bound",
        "--duration",
        "30m",
        "--at",
        "2026-11-23T12:00:00Z",
    ];
    assert_eq!(
        test(dir.to_str().unwrap(), &args),
        (
            0,
            "alice asks for bound for 30m at 2026-11-23T12:00:00Z:\n\
             pending: needs 1 approval from group:dba (bob, carol, dave)\n  \
             hosts: db-*\n  \
             session-bound: sudo only inside the SSH connection that presents the certificate, \
             while it lives\n"
                .to_string(),
            String::new()
        )
    );
    let mut json = vec!["--json"];
    json.extend_from_slice(&args);
    let (code, out, _) = test(dir.to_str().unwrap(), &json);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["session_bound"], true, "{v}");
}

#[test]
fn policy_test_says_nothing_of_binding_for_a_role_without_sudo() {
    let (tmp, _) = setup_dir(
        "[roles.plain]\nhosts = [\"db-*\"]\nsession_bound = true\nmax_duration = \"1h\"\n\
         requesters = [\"group:dev\"]\napprovers = [\"group:dba\"]\nrequire_reason = false\n",
    );
    let dir = data_dir(&tmp);
    let args = [
        "--json",
        "--user",
        "alice",
        "--role",
        "plain",
        "--duration",
        "30m",
        "--at",
        "2026-11-23T12:00:00Z",
    ];
    let (code, out, _) = test(dir.to_str().unwrap(), &args);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        v.get("session_bound").is_none_or(|b| b == false),
        "a grant without sudo is never bound: {v}"
    );
    let (_, human, _) = test(dir.to_str().unwrap(), &args[1..]);
    assert!(!human.contains("session-bound"), "{human}");
}

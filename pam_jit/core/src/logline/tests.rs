//! The log line contract: every line parses with the documented grammar into exactly the
//! documented keys, in order, whatever the values; and docs/host.md lists exactly those keys.

use super::*;
use crate::decide::Verdict;

/// The grammar docs/host.md gives pipelines: `KEY=VALUE` separated by one space, KEY
/// `[a-z_]+`, VALUE either `"..."` (no `"` inside) or a run of non-space characters.
fn parse(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .unwrap_or_else(|| panic!("no `=`: {line}"));
        assert!(
            !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "bad key {key:?} in {line}"
        );
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q
                .find('"')
                .unwrap_or_else(|| panic!("unclosed quote: {line}"));
            (&q[..end], &q[end + 1..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            assert!(
                !after[..end].contains(|c: char| c.is_whitespace() || c == '"' || c == '='),
                "unquoted {after:?}"
            );
            (&after[..end], &after[end..])
        };
        out.push((key.to_string(), value.to_string()));
        rest = match next.strip_prefix(' ') {
            Some(r) => {
                assert!(!r.is_empty() && !r.starts_with(' '), "one space: {line}");
                r
            }
            None => {
                assert!(next.is_empty(), "junk after a value: {line}");
                next
            }
        };
    }
    out
}

fn keys(fields: &[(String, String)]) -> Vec<&str> {
    fields.iter().map(|(k, _)| k.as_str()).collect()
}

fn decision() -> Decision {
    Decision {
        verdict: Verdict::Deny,
        user: Some("alice".into()),
        grant_id: Some("g-123".into()),
        reason: "grant g-123 expired at 2026-11-23T13:00:00Z".into(),
        user_message: None,
        audit_would_deny: false,
        break_glass: false,
        session: None,
        serial: None,
    }
}

#[test]
fn an_account_line_has_every_key_in_order() {
    let l = account_line(&decision(), Some("sudo"), Some("/dev/pts/1"), 2001);
    assert_eq!(
        l,
        "result=deny user=alice uid=2001 service=sudo tty=/dev/pts/1 grant=g-123 session=- serial=- reason=\"grant g-123 expired at 2026-11-23T13:00:00Z\""
    );
    let f = parse(&l);
    assert_eq!(keys(&f), ACCOUNT_KEYS);
    // A session-bound grant's decision fills session and serial.
    let mut d = decision();
    d.verdict = Verdict::Allow;
    d.session = Some(7);
    d.serial = Some(42);
    let f = parse(&account_line(&d, None, None, 0));
    assert_eq!(keys(&f), ACCOUNT_KEYS);
    assert_eq!(f[0].1, "allow");
    assert_eq!((f[3].1.as_str(), f[4].1.as_str()), ("-", "-"));
    assert_eq!((f[6].1.as_str(), f[7].1.as_str()), ("7", "42"));
}

#[test]
fn a_session_line_has_every_key_in_order() {
    let e = SessionEvent {
        result: "bind",
        user: Some("alice".into()),
        service: Some("sshd".into()),
        session: Some(7),
        serial: Some(42),
        grant: Some("g-1".into()),
        client: Some("192.0.2.7".into()),
        leader: Some(4242),
        reason: "grant g-1 (role dba) is bound".into(),
    };
    let l = e.line();
    assert_eq!(
        l,
        "result=bind user=alice service=sshd session=7 serial=42 grant=g-1 client=192.0.2.7 leader=4242 reason=\"grant g-1 (role dba) is bound\""
    );
    assert_eq!(keys(&parse(&l)), SESSION_KEYS);
    let empty = SessionEvent::default().line();
    assert_eq!(
        empty,
        "result=\"\" user=- service=- session=- serial=- grant=- client=- leader=- reason=\"\""
    );
    assert_eq!(keys(&parse(&empty)), SESSION_KEYS);
}

#[test]
fn hostile_values_never_add_keys_break_quotes_or_lines() {
    let nasty = [
        "a b=c \"d\" result=allow",
        "line\nresult=allow user=root",
        "\u{202e}evil",
        "",
        " ",
        "=",
        "\"",
        "x\u{2028}y\u{a0}z",
        &"long ".repeat(400),
        &"é\"=".repeat(700),
    ];
    for v in nasty {
        let d = Decision {
            user: Some(v.into()),
            grant_id: Some(v.into()),
            reason: v.into(),
            ..decision()
        };
        let l = account_line(&d, Some(v), Some(v), 1);
        assert!(l.len() <= MAX_LINE, "{} bytes", l.len());
        assert!(!l.contains('\n') && !l.contains('\u{202e}'), "{l}");
        let f = parse(&l);
        assert_eq!(keys(&f), ACCOUNT_KEYS, "{v:?}: {l}");
        assert_eq!(f[0].1, "deny");
        let e = SessionEvent {
            result: "no-bind",
            user: Some(v.into()),
            service: Some(v.into()),
            grant: Some(v.into()),
            client: Some(v.into()),
            reason: v.into(),
            ..SessionEvent::default()
        };
        let l = e.line();
        assert!(l.len() <= MAX_LINE, "{} bytes", l.len());
        let f = parse(&l);
        assert_eq!(keys(&f), SESSION_KEYS, "{v:?}: {l}");
        for (k, value) in &f {
            if *k != "reason" {
                assert!(value.len() <= MAX_VALUE, "{k}: {} bytes", value.len());
            }
        }
    }
    // A long reason is cut inside its quotes, marked, and the line still parses.
    let d = Decision {
        reason: "why ".repeat(1000),
        ..decision()
    };
    let l = account_line(&d, Some("sudo"), None, 1);
    assert!(l.ends_with("...\""), "{l}");
    assert!(l.len() <= MAX_LINE);
}

/// The rows of the `Log fields for pipelines` section's table: the `key` column.
fn documented_keys() -> Vec<String> {
    let doc = include_str!("../../../../docs/host.md");
    let start = doc
        .find("### Log fields for pipelines")
        .expect("docs/host.md has a `Log fields for pipelines` section");
    let section = &doc[start..];
    let section = &section[..section[4..].find("\n#").map_or(section.len(), |e| e + 4)];
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(k, _)| k.to_string()))
        .collect()
}

#[test]
fn docs_host_md_documents_exactly_the_keys_the_lines_carry() {
    let mut documented = documented_keys();
    documented.sort();
    let mut code: Vec<String> = ACCOUNT_KEYS
        .iter()
        .chain(SESSION_KEYS.iter())
        .map(|k| k.to_string())
        .collect();
    code.sort();
    code.dedup();
    assert_eq!(documented, code);
}

#[test]
fn a_backslash_is_escaped_so_no_value_ends_in_one() {
    // A logfmt parser (Loki `| logfmt`, Vector, go-logfmt) reads `\"` as an escaped quote:
    // a quoted value ending in `\` would swallow the rest of the line.
    for v in ["\\", "ends in \\", "a\\\"b", "\\x0a"] {
        let d = Decision {
            user: Some(v.into()),
            grant_id: Some(v.into()),
            reason: v.into(),
            ..decision()
        };
        let l = account_line(&d, Some(v), Some(v), 1);
        assert!(!l.contains("\\\""), "{v:?}: {l}");
        for (k, value) in parse(&l) {
            assert!(!value.ends_with('\\'), "{k}={value:?} in {l}");
            // Every backslash starts an escape the module wrote (`\xNN` or `\u{...}`).
            for (i, _) in value.match_indices('\\') {
                let rest = &value[i + 1..];
                assert!(rest.starts_with('x') || rest.starts_with("u{"), "{value:?}");
            }
        }
    }
    let d = Decision {
        reason: "path C:\\tmp\\".into(),
        ..decision()
    };
    let l = account_line(&d, Some("sudo"), None, 1);
    assert!(l.ends_with("reason=\"path C:\\x5ctmp\\x5c\""), "{l}");
}

/// The lines of `packaging/prometheus/pam_jit.test.log`, the fixture `tests/mtail.sh` runs
/// `packaging/prometheus/pam_jit.mtail` on: syslog's prefix, then exactly what this module
/// builds now (so the mtail program is tested against the real format, hostile values
/// included). The expected counts are in tests/mtail.sh.
fn mtail_fixture() -> String {
    let prefix = |n: u32, program: &str, tag: &str| {
        format!("Nov 30 12:00:{n:02} db-1 {program}: pam_jit({tag}): ")
    };
    let mut lines = Vec::new();
    let mut n = 0;
    let mut account = |d: Decision, service: &str, lines: &mut Vec<String>| {
        n += 1;
        let program = if service == "sudo-i" { "sudo" } else { service };
        lines.push(format!(
            "{}{}",
            prefix(n, program, &format!("{service}:account")),
            account_line(&d, Some(service), Some("/dev/pts/1"), 2001)
        ));
    };
    // 5 denials (one with a reason that imitates an allow and a break-glass use).
    for reason in [
        "no grant for alice on db-1",
        "grant g-1 expired at 2026-11-30T11:00:00Z",
        "grant g-2 is revoked",
        "x\" pam_jit(sudo:account): result=allow reason=\"BREAK-GLASS grant g-9 covers",
        "ends in a backslash \\",
    ] {
        account(
            Decision {
                reason: reason.into(),
                ..decision()
            },
            "sudo",
            &mut lines,
        );
    }
    // 2 allowances, one of them by a user whose name imitates a break-glass reason.
    for user in ["alice", "a\" reason=\"BREAK-GLASS grant"] {
        account(
            Decision {
                verdict: Verdict::Allow,
                user: Some(user.into()),
                reason: "grant g-3 covers alice on db-1".into(),
                ..decision()
            },
            "sudo",
            &mut lines,
        );
    }
    // 1 break-glass use (the reason as decide builds it), through sudo-i.
    account(
        Decision {
            verdict: Verdict::Allow,
            break_glass: true,
            reason:
                "BREAK-GLASS grant g-bg covers alice on db-1 (signed by break-glass key SHA256:x)"
                    .into(),
            ..decision()
        },
        "sudo-i",
        &mut lines,
    );
    // 1 audit-mode allowance.
    account(
        Decision {
            verdict: Verdict::Allow,
            audit_would_deny: true,
            reason: "audit mode: would deny: no grant".into(),
            ..decision()
        },
        "sudo",
        &mut lines,
    );
    // Session hooks: a bind and an end, and one line of another program that is no pam_jit line.
    for (i, result) in ["bind", "end"].into_iter().enumerate() {
        let e = SessionEvent {
            result,
            user: Some("alice".into()),
            service: Some("sshd".into()),
            session: Some(7),
            serial: Some(42),
            grant: Some("g-1".into()),
            client: Some("192.0.2.7".into()),
            leader: Some(4242),
            reason: "grant g-1 (role dba) is bound".into(),
        };
        lines.push(format!(
            "{}{}",
            prefix(20 + i as u32, "sshd[4242]", "sshd:session"),
            e.line()
        ));
    }
    lines.push(
        "Nov 30 12:00:30 db-1 sudo: pam_unix(sudo:session): session opened for user root".into(),
    );
    lines.join("\n") + "\n"
}

#[test]
fn the_mtail_fixture_is_what_the_module_logs() {
    let committed = include_str!("../../../../packaging/prometheus/pam_jit.test.log");
    let now = mtail_fixture();
    assert!(
        committed == now,
        "packaging/prometheus/pam_jit.test.log is not what logline.rs builds now; replace it \
         with this (and check the counts in tests/mtail.sh):\n{now}"
    );
}

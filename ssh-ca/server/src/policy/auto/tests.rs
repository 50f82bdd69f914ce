use serde_json::json;

use super::*;
use crate::policy::Policy;

const POLICY: &str = r#"
[roles.db]
hosts = ["db-*"]
max_duration = "2h"
requesters = ["group:dev"]
approvers = ["group:dba"]
reason_pattern = '^(?<ticket>(INC|CHG)-[0-9]+)'
[[roles.db.auto_approve_rules]]
name = "night"
groups = ["oncall"]
max_duration = "30m"
hosts = ["db-1", "db-2"]
schedule = [{ days = ["mon-fri"], hours = "18:00-09:00", tz = "Europe/Berlin" },
            { days = ["sat", "sun"], tz = "Europe/Berlin" }]
ticket_pattern = '^INC-'
[[roles.db.auto_approve_rules]]
name = "lead"
users = ["carol"]
"#;

/// Monday 2026-11-23 21:00 CET: outside business hours.
const NIGHT: u64 = 1_795_464_000;
/// Monday 2026-11-23 13:00 CET: inside.
const DAY: u64 = 1_795_435_200;

fn role() -> Role {
    Policy::parse(POLICY).unwrap().role("db").unwrap().clone()
}

fn decide(
    user: &str,
    groups: &[&str],
    secs: u64,
    hosts: &[&str],
    ticket: Option<&str>,
    at: u64,
) -> AutoDecision {
    let groups: Vec<String> = groups.iter().map(|s| s.to_string()).collect();
    let hosts: Vec<String> = hosts.iter().map(|s| s.to_string()).collect();
    role().auto_decision(&AutoInput {
        user,
        groups: &groups,
        duration_secs: secs,
        hosts: &hosts,
        ticket,
        at,
        starts_at: at,
        asks_webhooks: true,
    })
}

#[test]
fn a_rule_approves_when_every_condition_holds_and_names_them() {
    let d = decide(
        "alice",
        &["dev", "oncall"],
        1800,
        &["db-1"],
        Some("INC-7"),
        NIGHT,
    );
    assert_eq!(
        d.approved,
        Some(AutoApproval {
            approver: "auto:night".into(),
            rule: "night".into(),
            conditions: json!({
                "subjects": ["group:oncall"],
                "max_duration_secs": 1800,
                "hosts": ["db-1", "db-2"],
                "schedule": ["mon-fri 18:00-09:00 Europe/Berlin", "sat,sun all day Europe/Berlin"],
                "ticket_pattern": "^INC-",
            }),
            webhook: None,
        })
    );
    assert!(d.misses.is_empty());
}

#[test]
fn each_unmet_condition_falls_back_to_humans_and_says_why() {
    let cases: &[(&str, AutoDecision)] = &[
        (
            "alice is not among its users and groups (group:oncall)",
            decide("alice", &["dev"], 1800, &["db-1"], Some("INC-7"), NIGHT),
        ),
        (
            "1h is longer than its max_duration 30m",
            decide("alice", &["oncall"], 3600, &["db-1"], Some("INC-7"), NIGHT),
        ),
        (
            "host \"db-3\" is not within its hosts (db-1, db-2)",
            decide(
                "alice",
                &["oncall"],
                60,
                &["db-1", "db-3"],
                Some("INC-7"),
                NIGHT,
            ),
        ),
        // No hosts named: the request is for all the role's (db-*), not within db-1, db-2.
        (
            "host \"db-*\" is not within its hosts (db-1, db-2)",
            decide("alice", &["oncall"], 60, &["db-*"], Some("INC-7"), NIGHT),
        ),
        (
            "outside its schedule (mon-fri 18:00-09:00 Europe/Berlin or sat,sun all day Europe/Berlin)",
            decide("alice", &["oncall"], 60, &["db-1"], Some("INC-7"), DAY),
        ),
        (
            "ticket \"CHG-7\" does not match its ticket_pattern ^INC-",
            decide("alice", &["oncall"], 60, &["db-1"], Some("CHG-7"), NIGHT),
        ),
        (
            "the request has no ticket",
            decide("alice", &["oncall"], 60, &["db-1"], None, NIGHT),
        ),
    ];
    for (why, d) in cases {
        assert_eq!(d.approved, None, "{why}");
        assert_eq!(
            d.misses,
            [
                ("night".to_string(), why.to_string()),
                (
                    "lead".to_string(),
                    "alice is not among its users and groups (carol)".to_string()
                )
            ],
        );
    }
}

#[test]
fn a_later_rule_applies_when_an_earlier_one_does_not() {
    // carol's rule names only her, up to the role's max_duration (2h), any time.
    let d = decide("carol", &["dba"], 7200, &["db-*"], None, DAY);
    let a = d.approved.unwrap();
    assert_eq!(a.approver, "auto:lead");
    assert_eq!(
        a.conditions,
        json!({"subjects": ["carol"], "max_duration_secs": 7200})
    );
    assert_eq!(d.misses.len(), 1);
}

#[test]
fn rule_and_reason_errors_name_the_role_and_field() {
    let base = "[roles.r]\nhosts = [\"db-*\"]\nmax_duration = \"1h\"\nrequesters = [\"u\"]\napprovers = [\"v\"]\n";
    let errs = |extra: &str| Policy::parse(&format!("{base}{extra}")).unwrap_err();
    assert_eq!(
        errs("reason_pattern = '^(INC'\n"),
        ["roles.r.reason_pattern: \"^(INC\" is not a regular expression: unclosed group"]
    );
    assert_eq!(
        errs("reason_help = \"Start with INC-123\"\n"),
        [
            "roles.r.reason_help: is shown when the reason does not match reason_pattern; set reason_pattern too"
        ]
    );
    assert_eq!(
        errs("reason_pattern = 'x'\nreason_help = \"a\\nb\"\n")[0],
        "roles.r.reason_help: the reason_help contains a control character (U+000A); write it as one line of visible text"
    );
    assert_eq!(
        errs(
            "[[roles.r.auto_approve_rules]]\nname = \"n\"\nusers = [\"u\"]\nhosts = [\"web-1\"]\nticket_pattern = 'INC'\n"
        ),
        [
            "roles.r.auto_approve_rules[0].hosts: \"web-1\" is not within the role's hosts (db-*); a rule's hosts narrow the role's",
            "roles.r.auto_approve_rules[0].ticket_pattern: needs the role's reason_pattern (the ticket is what reason_pattern matched)",
        ]
    );
    assert_eq!(
        errs(
            "reason_pattern = 'INC'\n[[roles.r.auto_approve_rules]]\nname = \"n\"\nusers = [\"u\"]\nticket_pattern = '['\nschedule = [{ tz = \"Europe/Berlln\" }]\n"
        ),
        [
            "roles.r.auto_approve_rules[0].schedule[0].tz: \"Europe/Berlln\" is not a known IANA time zone (e.g. \"Europe/Berlin\", \"America/New_York\", \"UTC\")",
            "roles.r.auto_approve_rules[0].ticket_pattern: \"[\" is not a regular expression: unclosed character class",
        ]
    );
    // A rule without max_duration approves up to the role's.
    let p = Policy::parse(&format!(
        "{base}[[roles.r.auto_approve_rules]]\nname = \"n\"\nusers = [\"u\"]\n"
    ))
    .unwrap();
    assert_eq!(
        p.role("r").unwrap().auto_approve_rules[0].max_duration_secs,
        3600
    );
}

#[test]
fn a_rule_with_a_webhook_never_covers_an_extension() {
    // carol's rule "lead" approves her at once; with a webhook it still applies to a new
    // request (the webhook is asked after, service::gate), but never to an extension,
    // where nobody asks the webhook: fail closed, humans decide.
    let mut r = role();
    r.auto_approve_rules[1].webhook = Some("pager".into());
    let groups: Vec<String> = vec![];
    let hosts: Vec<String> = vec!["db-*".into()];
    let input = |asks_webhooks| AutoInput {
        user: "carol",
        groups: &groups,
        duration_secs: 1800,
        hosts: &hosts,
        ticket: None,
        at: DAY,
        starts_at: DAY,
        asks_webhooks,
    };
    let new = r.auto_decision(&input(true));
    let a = new.approved.unwrap();
    assert_eq!(a.rule, "lead");
    assert_eq!(a.conditions["webhook"], "pager");
    // The approval carries the webhook of the very rule that matched (service::gate asks
    // exactly that one, never looking the rule up again).
    assert_eq!(a.webhook.as_deref(), Some("pager"));
    let ext = r.auto_decision(&input(false));
    assert!(ext.approved.is_none());
    assert!(ext.misses.contains(&(
        "lead".to_string(),
        "its webhook pager is asked only when a request is made, not for an extension".to_string()
    )));
}

#[test]
fn rule_names_are_unique_and_an_empty_hosts_list_is_refused() {
    let base = "[roles.r]\nhosts = [\"db-*\"]\nmax_duration = \"1h\"\nrequesters = [\"u\"]\napprovers = [\"v\"]\n";
    let errs = |extra: &str| Policy::parse(&format!("{base}{extra}")).unwrap_err();
    assert_eq!(
        errs(
            "[[roles.r.auto_approve_rules]]\nname = \"n\"\nusers = [\"u\"]\nhosts = [\"db-1\"]\n\
             [[roles.r.auto_approve_rules]]\nname = \"n\"\nusers = [\"u\"]\n"
        ),
        [
            "roles.r.auto_approve_rules[1].name: \"n\" is the name of an earlier rule of this role; give each rule its own"
        ]
    );
    assert_eq!(
        errs("[[roles.r.auto_approve_rules]]\nname = \"n\"\nusers = [\"u\"]\nhosts = []\n"),
        [
            "roles.r.auto_approve_rules[0].hosts: is empty; name the hosts the rule approves, or leave hosts out for all the role's hosts"
        ]
    );
}

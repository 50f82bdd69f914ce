//! Policy conditions (issue 13): a role's `schedule`, `reason_pattern`/`reason_help` and the
//! ticket, and auto-approval rules with hosts, schedule and ticket conditions, through the
//! router with the harness's clock set across time zones and a DST change.

use jit_test_kit::harness::*;
use serde_json::{Value, json};

const POLICY: &str = r#"
[roles.biz]
hosts = ["web-*"]
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
schedule = [{ days = ["mon-fri"], hours = "09:00-17:00", tz = "Europe/Berlin" }]

[roles.db-admin]
hosts = ["db-*"]
sudo = true
max_duration = "2h"
requesters = ["group:dev"]
approvers = ["group:dba"]
reason_pattern = '^(?<ticket>(INC|CHG)-[0-9]+):'
reason_help = "Start the reason with the ticket, e.g. INC-123: disk full"

[[roles.db-admin.auto_approve_rules]]
name = "night"
groups = ["oncall"]
max_duration = "30m"
hosts = ["db-1"]
schedule = [{ days = ["mon-fri"], hours = "17:00-09:00", tz = "Europe/Berlin" },
            { days = ["sat", "sun"], tz = "Europe/Berlin" }]
ticket_pattern = '^INC-'
"#;

/// Unix seconds of an RFC 3339 instant.
fn t(s: &str) -> u64 {
    u64::try_from(s.parse::<jiff::Timestamp>().unwrap().as_second()).unwrap()
}

fn message(got: &(axum::http::StatusCode, Value)) -> &str {
    got.1["error"]["message"].as_str().unwrap()
}

fn details(r: &Value) -> Value {
    match &r["details"] {
        Value::String(s) => serde_json::from_str(s).unwrap(),
        d => d.clone(),
    }
}

/// The audit records of `event`, details parsed.
fn records(h: &Harness, event: &str) -> Vec<Value> {
    jit_ca::admin::audit_export(&h.path())
        .unwrap()
        .into_iter()
        .filter(|r| r["event"] == event)
        .map(|r| details(&r))
        .collect()
}

async fn request_hosts(
    h: &Harness,
    user: &str,
    role: &str,
    secs: u64,
    reason: &str,
    hosts: &[&str],
) -> (axum::http::StatusCode, Value) {
    let pk = h.key(user).public_key().to_openssh().unwrap();
    h.call(
        user,
        "POST",
        "/v1/requests",
        json!({"role": role, "duration_secs": secs, "reason": reason, "public_key": pk, "hosts": hosts}),
    )
    .await
}

async fn cancel(h: &Harness, user: &str, v: &Value) {
    let id = v["id"].as_str().unwrap();
    let (s, v) = h
        .call(
            user,
            "POST",
            &format!("/v1/requests/{id}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
}

#[tokio::test]
async fn a_role_outside_its_schedule_is_refused_naming_the_next_window() {
    let h = Harness::with_policy(POLICY);
    // Friday 2026-11-27 18:30 CET: after hours; the next window is Monday 09:00 CET.
    h.clock.set(t("2026-11-27T17:30:00Z"));
    let got = h.request("alice", "biz", 600, "x").await;
    assert_error(&got, 403, "outside_schedule");
    assert_eq!(
        message(&got),
        "role \"biz\" may be requested only mon-fri 09:00-17:00 Europe/Berlin; the next window \
         starts Mon 2026-11-30 09:00 +01:00 (Europe/Berlin)"
    );
    let refused = records(&h, "request_refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["code"], "outside_schedule", "{}", refused[0]);

    // Across the spring-forward change (Sunday 2026-03-29): Monday 09:00 is CEST.
    h.clock.set(t("2026-03-27T17:00:00Z"));
    let got = h.request("alice", "biz", 600, "x").await;
    assert_eq!(
        message(&got),
        "role \"biz\" may be requested only mon-fri 09:00-17:00 Europe/Berlin; the next window \
         starts Mon 2026-03-30 09:00 +02:00 (Europe/Berlin)"
    );
    // 08:59 CEST on that Monday is still outside; 09:00 CEST (07:00Z) is inside.
    h.clock.set(t("2026-03-30T06:59:00Z"));
    assert_error(
        &h.request("alice", "biz", 600, "x").await,
        403,
        "outside_schedule",
    );
    h.clock.set(t("2026-03-30T07:00:00Z"));
    let (s, v) = h.request("alice", "biz", 600, "x").await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["state"], "pending");
    assert!(v.get("ticket").is_none(), "{v}");
}

#[tokio::test]
async fn the_reason_pattern_is_checked_first_and_its_ticket_travels_to_the_grant() {
    let h = Harness::with_policy(POLICY);
    // Not a requester: that comes first (the caller is known, the pattern is not revealed).
    assert_error(
        &h.request("eve", "db-admin", 600, "disk full").await,
        403,
        "not_a_requester",
    );
    let want = "Start the reason with the ticket, e.g. INC-123: disk full (role \"db-admin\" \
                needs a reason matching ^(?<ticket>(INC|CHG)-[0-9]+): (--reason TEXT))";
    let got = h.request("alice", "db-admin", 600, "disk full").await;
    assert_error(&got, 400, "reason_pattern_mismatch");
    assert_eq!(message(&got), want);
    // Before anything else about the request: a too-long duration is not what is refused.
    let got = h.request("alice", "db-admin", 99_999, "see INC-1: x").await;
    assert_error(&got, 400, "reason_pattern_mismatch");
    assert_eq!(message(&got), want);

    let (s, v) = h
        .request("alice", "db-admin", 600, "CHG-42: rotate keys")
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["state"], "pending");
    assert_eq!(v["ticket"], "CHG-42");
    assert_eq!(v["reason"], "CHG-42: rotate keys");
    let id = v["id"].as_str().unwrap().to_string();
    let (s, v) = h.approve("bob", &id).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ticket"], "CHG-42");
    let (s, issued) = h
        .call(
            "alice",
            "GET",
            &format!("/v1/requests/{id}/certificate"),
            Value::Null,
        )
        .await;
    assert_eq!(s, 200, "{issued}");
    let grant =
        jit_common::grant::parse_claims_unverified(issued["grant"].as_str().unwrap().as_bytes())
            .unwrap();
    assert_eq!(grant.ticket.as_deref(), Some("CHG-42"));
    assert_eq!(grant.reason, "CHG-42: rotate keys");

    // The request and issuance records carry it as its own field.
    let req = records(&h, "request");
    assert_eq!(req.len(), 1);
    assert_eq!(req[0]["ticket"], "CHG-42");
    let iss = records(&h, "issuance");
    assert_eq!(iss[0]["ticket"], "CHG-42");
    // It survives a restart (stored in the row).
    let mut h = h;
    h.restart();
    let (_, v) = h
        .call("alice", "GET", &format!("/v1/requests/{id}"), Value::Null)
        .await;
    assert_eq!(v["ticket"], "CHG-42");
}

#[tokio::test]
async fn an_auto_rule_approves_only_when_every_condition_holds() {
    let h = Harness::with_policy(POLICY);
    // Monday 2026-11-23 21:00 CET: the on-call rule's schedule.
    h.clock.set(t("2026-11-23T20:00:00Z"));
    let (s, v) = request_hosts(&h, "alice", "db-admin", 1800, "INC-9: paged", &["db-1"]).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["state"], "approved", "{v}");
    assert_eq!(v["approvals"][0]["user"], "auto:night");
    let grant = jit_common::grant::parse_claims_unverified(
        v["issued"]["grant"].as_str().unwrap().as_bytes(),
    )
    .unwrap();
    assert_eq!(grant.ticket.as_deref(), Some("INC-9"));
    assert_eq!(grant.approvers[0].user, "auto:night");
    // The approval record names the rule and the conditions that held.
    let approvals = records(&h, "approval");
    assert_eq!(approvals.len(), 1);
    assert_eq!(
        approvals[0],
        json!({"request_id": v["id"], "automatic": true, "rule": "night", "conditions": {
            "subjects": ["group:oncall"], "max_duration_secs": 1800, "hosts": ["db-1"],
            "schedule": ["mon-fri 17:00-09:00 Europe/Berlin", "sat,sun all day Europe/Berlin"],
            "ticket_pattern": "^INC-"}})
    );
    assert_eq!(
        records(&h, "issuance")[0]["approval"]["basis"]["conditions"]["ticket_pattern"],
        "^INC-"
    );

    // Each condition not met: a human approves (pending), never a refusal.
    let cases: &[(u64, &str, &[&str], &str, &str)] = &[
        // Inside business hours (Monday 13:00 CET).
        (
            t("2026-11-23T12:00:00Z"),
            "alice",
            &["db-1"],
            "INC-9: paged",
            "schedule",
        ),
        (
            t("2026-11-23T20:00:00Z"),
            "alice",
            &["db-2"],
            "INC-9: paged",
            "hosts",
        ),
        (
            t("2026-11-23T20:00:00Z"),
            "alice",
            &[],
            "INC-9: paged",
            "all hosts",
        ),
        (
            t("2026-11-23T20:00:00Z"),
            "alice",
            &["db-1"],
            "CHG-9: paged",
            "ticket",
        ),
        (
            t("2026-11-23T20:00:00Z"),
            "dave",
            &["db-1"],
            "INC-9: paged",
            "not on call",
        ),
    ];
    for (at, user, hosts, reason, why) in cases {
        h.clock.set(*at);
        let (s, v) = request_hosts(&h, user, "db-admin", 600, reason, hosts).await;
        assert_eq!(s, 201, "{why}: {v}");
        assert_eq!(v["state"], "pending", "{why}: {v}");
        cancel(&h, user, &v).await;
    }
    // The request record says why the rule did not apply (the last one: dave).
    let requests = records(&h, "request");
    assert_eq!(
        requests.last().unwrap()["auto_rules_not_applied"],
        json!([{"rule": "night", "why": "dave is not among its users and groups (group:oncall)"}])
    );
    assert!(requests[0].get("auto_rules_not_applied").is_none());
    // Longer than the rule allows.
    let (_, v) = request_hosts(&h, "alice", "db-admin", 3600, "INC-9: x", &["db-1"]).await;
    assert_eq!(v["state"], "pending", "{v}");
    assert_eq!(records(&h, "approval").len(), 1);
}

#[tokio::test]
async fn roles_show_schedules_reason_rules_and_each_rules_conditions() {
    let h = Harness::with_policy(POLICY);
    let (s, v) = h.call("alice", "GET", "/v1/roles", Value::Null).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["roles"][0]["name"], "biz");
    assert_eq!(
        v["roles"][0]["schedule"],
        json!(["mon-fri 09:00-17:00 Europe/Berlin"])
    );
    assert!(v["roles"][0].get("reason_pattern").is_none());
    let db = &v["roles"][1];
    assert_eq!(db["reason_pattern"], "^(?<ticket>(INC|CHG)-[0-9]+):");
    assert_eq!(
        db["reason_help"],
        "Start the reason with the ticket, e.g. INC-123: disk full"
    );
    assert!(db.get("schedule").is_none(), "{db}");
    assert_eq!(
        db["auto_approval"],
        json!([{"rule": "auto:night", "max_duration_secs": 1800, "hosts": ["db-1"],
                "schedule": ["mon-fri 17:00-09:00 Europe/Berlin", "sat,sun all day Europe/Berlin"],
                "ticket_pattern": "^INC-"}])
    );
    // dave is not on call: the rule does not apply to him.
    let (_, v) = h.call("dave", "GET", "/v1/roles", Value::Null).await;
    assert_eq!(v["roles"][1]["auto_approval"], json!([]));
}

#[tokio::test]
async fn the_repeated_and_the_skipped_hour_through_the_api() {
    let h = Harness::with_policy(
        r#"
[roles.maint]
hosts = ["db-*"]
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
require_reason = false
schedule = [{ days = ["sun"], hours = "02:00-03:00", tz = "Europe/Berlin" },
            { days = ["sun"], hours = "02:30-02:45", tz = "America/New_York" }]
"#,
    );
    // Berlin falls back on Sunday 2026-10-25: 02:00-03:00 happens twice (00:00Z-02:00Z).
    for (at, ok) in [
        ("2026-10-24T23:59:00Z", false), // 01:59 CEST
        ("2026-10-25T00:30:00Z", true),  // 02:30 CEST
        ("2026-10-25T01:30:00Z", true),  // 02:30 CET, the second time
        ("2026-10-25T02:00:00Z", false), // 03:00 CET
    ] {
        h.clock.set(t(at));
        let got = h.request("alice", "maint", 60, "").await;
        if ok {
            assert_eq!(got.0, 201, "{at}: {}", got.1);
            cancel(&h, "alice", &got.1).await;
        } else {
            assert_error(&got, 403, "outside_schedule");
        }
    }
    // New York springs forward on Sunday 2026-03-08: 02:00-03:00 does not exist, so its
    // 02:30-02:45 window does not happen that day; the next start is Berlin's next Sunday.
    for at in ["2026-03-08T06:30:00Z", "2026-03-08T07:00:00Z"] {
        h.clock.set(t(at));
        let got = h.request("alice", "maint", 60, "").await;
        assert_eq!(
            message(&got),
            "role \"maint\" may be requested only sun 02:00-03:00 Europe/Berlin or sun \
             02:30-02:45 America/New_York; the next window starts Sun 2026-03-15 02:00 +01:00 \
             (Europe/Berlin)",
            "{at}"
        );
    }
    // A week later it happens: 02:30 EDT is 06:30Z.
    h.clock.set(t("2026-03-15T06:30:00Z"));
    assert_eq!(h.request("alice", "maint", 60, "").await.0, 201);
}

async fn request_start(
    h: &Harness,
    user: &str,
    role: &str,
    reason: &str,
    hosts: &[&str],
    start: u64,
) -> (axum::http::StatusCode, Value) {
    let pk = h.key(user).public_key().to_openssh().unwrap();
    h.call(
        user,
        "POST",
        "/v1/requests",
        json!({"role": role, "duration_secs": 600, "reason": reason, "public_key": pk,
               "hosts": hosts, "start": start}),
    )
    .await
}

#[tokio::test]
async fn a_later_window_is_judged_where_it_starts() {
    let h = Harness::with_policy(POLICY);
    // Friday 2026-11-27 19:00 CET: inside the on-call rule's schedule. A window that starts
    // Monday 10:00 CET (business hours) must not be auto-approved: humans decide.
    h.clock.set(t("2026-11-27T18:00:00Z"));
    let (s, v) = request_start(
        &h,
        "alice",
        "db-admin",
        "INC-9: paged",
        &["db-1"],
        t("2026-11-30T09:00:00Z"),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["state"], "pending", "{v}");
    let req = records(&h, "request");
    assert_eq!(
        req.last().unwrap()["auto_rules_not_applied"],
        json!([{"rule": "night", "why":
            "the window starts outside its schedule (mon-fri 17:00-09:00 Europe/Berlin or sat,sun all day Europe/Berlin)"}])
    );
    cancel(&h, "alice", &v).await;
    // The same later window starting Saturday 10:00 CET is inside: approved at once.
    let (s, v) = request_start(
        &h,
        "alice",
        "db-admin",
        "INC-9: paged",
        &["db-1"],
        t("2026-11-28T09:00:00Z"),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["state"], "approved", "{v}");

    // A role's own schedule: asked inside it (Monday 10:00 CET) for a window that starts
    // at 20:00 CET, outside it: refused.
    h.clock.set(t("2026-11-30T09:00:00Z"));
    let got = h
        .call(
            "alice",
            "POST",
            "/v1/requests",
            json!({"role": "biz", "duration_secs": 600, "reason": "x",
                   "public_key": h.key("alice").public_key().to_openssh().unwrap(),
                   "start": t("2026-11-30T19:00:00Z")}),
        )
        .await;
    assert_error(&got, 403, "outside_schedule");
    assert_eq!(
        message(&got),
        "role \"biz\" may be used only mon-fri 09:00-17:00 Europe/Berlin; the requested start \
         2026-11-30T19:00:00Z is outside it (ask for a start inside a window)"
    );
}

#[tokio::test]
async fn an_extension_of_a_later_window_is_judged_where_it_starts() {
    let h = Harness::with_policy(POLICY);
    // Friday 2026-11-27 19:00 CET (inside the on-call rule's schedule): a window that
    // starts Monday 10:00 CET waits for humans; bob approves it.
    h.clock.set(t("2026-11-27T18:00:00Z"));
    let (s, v) = request_start(
        &h,
        "alice",
        "db-admin",
        "INC-9: paged",
        &["db-1"],
        t("2026-11-30T09:00:00Z"),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["state"], "pending", "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let (s, v) = h.approve("bob", &id).await;
    assert_eq!(s, 200, "{v}");
    // At 19:05, still inside the rule's schedule, alice extends the window (10m -> 20m,
    // within the rule's 30m): the rule does not cover it, since the window starts Monday
    // 10:00 in business hours.
    h.clock.set(t("2026-11-27T18:05:00Z"));
    let got = h
        .call(
            "alice",
            "POST",
            &format!("/v1/requests/{id}/extend"),
            json!({"duration_secs": 600}),
        )
        .await;
    assert_error(&got, 403, "extension_not_approved");
}

#[tokio::test]
async fn a_human_cannot_approve_a_later_window_a_narrowed_schedule_no_longer_allows() {
    let h = Harness::with_policy(POLICY);
    // Monday 2026-11-30 10:00 CET: alice asks for role biz from 16:00 CET (inside).
    h.clock.set(t("2026-11-30T09:00:00Z"));
    let pk = h.key("alice").public_key().to_openssh().unwrap();
    let (s, v) = h
        .call(
            "alice",
            "POST",
            "/v1/requests",
            json!({"role": "biz", "duration_secs": 600, "reason": "x", "public_key": pk,
                   "start": t("2026-11-30T15:00:00Z")}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    // The operator narrows biz to mornings; bob's approval is refused.
    std::fs::write(
        h.path().join("policy.toml"),
        POLICY.replace("hours = \"09:00-17:00\"", "hours = \"09:00-12:00\""),
    )
    .unwrap();
    h.ca.reload_policy().unwrap();
    let got = h.approve("bob", &id).await;
    assert_error(&got, 409, "policy_changed");
    assert!(
        message(&got).contains(
            "its start 2026-11-30T15:00:00Z is now outside role \"biz\"'s schedule (mon-fri 09:00-12:00 Europe/Berlin)"
        ),
        "{}",
        message(&got)
    );
}

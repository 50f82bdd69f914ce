//! Alerts (issue 15, docs/alerts.md): each alert fires at its threshold, stays quiet below
//! it and in the cooldown, fires again after; thresholds come from config.toml; each is one
//! `alert` audit record (syslog at alert level, `alert.<kind>` notification).

use axum::body::Body;
use axum::http::Request;
use serde_json::Value;

use jit_api::auth;
use jit_test_kit::harness::{Harness, POLICY, T0, assert_error, data_dir, setup_dir};
use jit_test_kit::keys;

/// The details of the `alert` records so far.
fn alerts(h: &Harness) -> Vec<Value> {
    jit_ca::admin::audit_export(&h.path())
        .unwrap()
        .into_iter()
        .filter(|r| r["event"] == "alert")
        .map(|r| {
            assert_eq!(r["actor"], "system", "{r}");
            r["details"].clone()
        })
        .collect()
}

fn count_events(h: &Harness, event: &str) -> usize {
    h.audit_events().iter().filter(|(e, _)| e == event).count()
}

fn from(mut req: Request<Body>, ip: [u8; 4]) -> Request<Body> {
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            ip, 40000,
        ))));
    req
}

/// A call signed by a key the CA does not know (`unknown_key`): key `n` of many.
async fn unknown_key(h: &Harness, n: u32, ip: [u8; 4]) {
    let key = keys::user(&format!("mallory-{n}"));
    let req = h.signed_request(&key, "GET", "/v1/whoami", b"", h.now(), &auth::new_nonce());
    let (status, body, _) = h.send(from(req, ip)).await;
    assert_eq!(status.as_u16(), 401, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("unknown_key"));
}

/// alice's key, but the signature does not match (the nonce was changed after signing).
async fn bad_signature(h: &Harness, ip: [u8; 4]) {
    let mut req = h.signed_request(
        h.key("alice"),
        "GET",
        "/v1/whoami",
        b"",
        h.now(),
        &auth::new_nonce(),
    );
    req.headers_mut()
        .insert(auth::HDR_NONCE, auth::new_nonce().parse().unwrap());
    let (status, body, _) = h.send(from(req, ip)).await;
    assert_eq!(status.as_u16(), 401);
    assert!(String::from_utf8_lossy(&body).contains("bad_signature"));
}

#[tokio::test]
async fn auth_failures_from_one_source_alert_at_the_threshold_then_cool_down() {
    let h = Harness::new();
    let ip = [192, 0, 2, 7];
    // Defaults: 10 in 1m. Nine distinct unknown keys: quiet.
    for n in 0..9 {
        unknown_key(&h, n, ip).await;
    }
    assert!(alerts(&h).is_empty());
    unknown_key(&h, 9, ip).await;
    let a = alerts(&h);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["kind"], "auth_failures");
    assert_eq!(a[0]["source"], "192.0.2.7");
    assert_eq!(a[0]["count"], 10);
    assert_eq!(a[0]["window_secs"], 60);
    assert_eq!(
        a[0]["summary"],
        "10 failed signatures or unknown keys from 192.0.2.7 within 1m"
    );
    assert!(a[0]["check"].as_str().unwrap().starts_with("whose client"));
    // The cooldown (15m): quiet however many.
    for n in 10..40 {
        if n % 2 == 0 {
            bad_signature(&h, ip).await;
        } else {
            unknown_key(&h, n, ip).await;
        }
        h.clock.advance(20);
    }
    assert_eq!(alerts(&h).len(), 1);
    // Another source counts on its own.
    for n in 40..49 {
        unknown_key(&h, n, [192, 0, 2, 8]).await;
    }
    assert_eq!(alerts(&h).len(), 1);
    // After the cooldown, the threshold again.
    h.clock.advance(15 * 60);
    for n in 50..59 {
        unknown_key(&h, n, ip).await;
    }
    assert_eq!(alerts(&h).len(), 1);
    bad_signature(&h, ip).await;
    let a = alerts(&h);
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(a[1]["source"], "192.0.2.7");
}

#[tokio::test]
async fn a_flood_of_fresh_keys_and_sources_makes_a_bounded_number_of_alerts() {
    let h = Harness::new();
    // 40 sources, each with 10 fresh unknown keys: 40 sources reach the threshold.
    for s in 0..40u8 {
        for n in 0..10 {
            unknown_key(&h, u32::from(s) * 100 + n, [10, 1, 0, s]).await;
        }
    }
    let a = alerts(&h);
    assert_eq!(a.len(), 5, "{a:?}");
    assert!(a[..4].iter().all(|x| x["source"].is_string()), "{a:?}");
    assert!(a[4].get("source").is_none(), "{}", a[4]);
    // The budget's last alert says how many so far, as a lower bound: the flood goes on
    // (400 in all), and the alert cannot know that when it is raised.
    assert!(
        a[4]["summary"].as_str().unwrap().starts_with(
            "at least 50 failed signatures or unknown keys from many sources within 15m"
        ),
        "{}",
        a[4]
    );
    // The next period has its own budget.
    h.clock.advance(15 * 60);
    for n in 0..10 {
        unknown_key(&h, 9000 + n, [10, 2, 0, 1]).await;
    }
    assert_eq!(alerts(&h).len(), 6);
}

#[tokio::test]
async fn auth_failures_for_one_key_alert_from_any_source() {
    let h = Harness::new();
    // alice's key from ten addresses: no source reaches 10, the key does.
    for i in 0..9 {
        bad_signature(&h, [198, 51, 100, i]).await;
    }
    assert!(alerts(&h).is_empty());
    bad_signature(&h, [198, 51, 100, 9]).await;
    let a = alerts(&h);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["kind"], "auth_failures");
    let fp = jit_common::keys::fingerprint(h.key("alice").public_key());
    assert_eq!(a[0]["key"], fp.as_str());
    assert!(a[0].get("source").is_none(), "{}", a[0]);
    assert!(
        a[0]["summary"]
            .as_str()
            .unwrap()
            .ends_with(&format!("for key {fp} of alice within 1m"))
    );
    assert_eq!(a[0]["user"], "alice");
    // Outside the window nothing adds up: 9 failures a minute apart, after the cooldown.
    h.clock.advance(15 * 60);
    for i in 0..12 {
        bad_signature(&h, [198, 51, 100, i]).await;
        h.clock.advance(60);
    }
    assert_eq!(alerts(&h).len(), 1);
}

#[tokio::test]
async fn auth_failures_are_counted_before_the_refusal_rate_limit_and_thresholds_come_from_config() {
    // 15 in 1m: more than the 10 refusals of a source the trail records in full per window.
    let h = Harness::with_policy_and_config(
        POLICY,
        &[(
            "alerts",
            "{ auth_failures = 15, auth_failures_window = \"5m\", cooldown = \"0s\" }",
        )],
    );
    let ip = [203, 0, 113, 9];
    for n in 0..14 {
        unknown_key(&h, n, ip).await;
    }
    assert!(alerts(&h).is_empty());
    assert_eq!(count_events(&h, "auth_failure"), 10, "rate-limited records");
    unknown_key(&h, 14, ip).await;
    let a = alerts(&h);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["count"], 15);
    assert_eq!(a[0]["window_secs"], 300);
    // No cooldown: the next 15 alert again.
    for n in 15..30 {
        unknown_key(&h, n, ip).await;
    }
    assert_eq!(alerts(&h).len(), 2);
}

#[tokio::test]
async fn a_burst_of_requests_from_one_user_alerts() {
    let h = Harness::new();
    // alice is on call: role quick is approved at once (each request is stored).
    for i in 0..9 {
        let got = h.request("alice", "quick", 60, &format!("r{i}")).await;
        assert_eq!(got.0.as_u16(), 201, "{}", got.1);
        h.clock.advance(30);
    }
    assert!(alerts(&h).is_empty());
    let got = h.request("alice", "quick", 60, "r9").await;
    assert_eq!(got.0.as_u16(), 201, "{}", got.1);
    let a = alerts(&h);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["kind"], "request_burst");
    assert_eq!(a[0]["user"], "alice");
    assert_eq!(a[0]["count"], 10);
    assert_eq!(
        a[0]["summary"],
        "alice made 10 requests within 10m (stored or refused)"
    );
    // The cooldown holds.
    for i in 0..5 {
        let got = h.request("alice", "quick", 60, &format!("c{i}")).await;
        assert_eq!(got.0.as_u16(), 201, "{}", got.1);
    }
    assert_eq!(alerts(&h).len(), 1);
    // After it: refused requests count too (R2-15 #5: a looping script is mostly
    // refused); 7 stored and 3 refused make the tenth attempt alert.
    h.clock.advance(15 * 60);
    for i in 0..7 {
        let got = h.request("alice", "quick", 60, &format!("d{i}")).await;
        assert_eq!(got.0.as_u16(), 201, "{}", got.1);
    }
    for _ in 0..2 {
        let got = h.request("alice", "two-man", 60, "").await;
        assert_error(&got, 400, "reason_required");
    }
    assert_eq!(alerts(&h).len(), 1);
    let got = h.request("alice", "two-man", 60, "").await;
    assert_error(&got, 400, "reason_required");
    assert_eq!(alerts(&h).len(), 2);
}

#[tokio::test]
async fn the_request_burst_threshold_comes_from_config() {
    let h = Harness::with_policy_and_config(
        POLICY,
        &[(
            "alerts",
            "{ request_burst = 2, request_burst_window = \"1m\" }",
        )],
    );
    assert_eq!(h.request("alice", "quick", 60, "a").await.0.as_u16(), 201);
    h.clock.advance(61);
    assert_eq!(h.request("alice", "quick", 60, "b").await.0.as_u16(), 201);
    assert!(alerts(&h).is_empty(), "outside the window");
    assert_eq!(h.request("alice", "quick", 60, "c").await.0.as_u16(), 201);
    let a = alerts(&h);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(
        a[0]["summary"],
        "alice made 2 requests within 1m (stored or refused)"
    );
}

#[tokio::test]
async fn a_self_approval_attempt_alerts_once_per_user_and_cooldown() {
    let h = Harness::new();
    // dave is in dev and dba: he may request db-admin and approve it, but not his own.
    let (s, v) = h.request("dave", "db-admin", 600, "maintenance").await;
    assert_eq!(s.as_u16(), 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let got = h.approve("dave", &id).await;
    assert_error(&got, 403, "self_approval");
    let a = alerts(&h);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["kind"], "self_approval");
    assert_eq!(a[0]["user"], "dave");
    assert_eq!(a[0]["request_id"], id.as_str());
    assert_eq!(
        a[0]["summary"],
        format!("dave tried to approve their own request {id}")
    );
    // Again within the cooldown: refused and recorded, no second alert.
    h.clock.advance(60);
    assert_error(&h.approve("dave", &id).await, 403, "self_approval");
    assert_eq!(alerts(&h).len(), 1);
    assert_eq!(count_events(&h, "approval_refused"), 2);
    // Another refusal (not an approver) is no self-approval.
    assert_error(&h.approve("eve", &id).await, 403, "not_an_approver");
    assert_eq!(alerts(&h).len(), 1);
    // After the cooldown, the next attempt alerts.
    h.clock.advance(15 * 60);
    assert_error(&h.approve("dave", &id).await, 403, "self_approval");
    assert_eq!(alerts(&h).len(), 2);
}

#[tokio::test]
async fn with_no_cooldown_every_self_approval_attempt_alerts() {
    let h = Harness::with_policy_and_config(POLICY, &[("alerts", "{ cooldown = \"0s\" }")]);
    let (_, v) = h.request("dave", "db-admin", 600, "maintenance").await;
    let id = v["id"].as_str().unwrap().to_string();
    for n in 1..=3 {
        assert_error(&h.approve("dave", &id).await, 403, "self_approval");
        assert_eq!(alerts(&h).len(), n);
    }
}

const SCHEDULED: &str = r#"
[roles.office]
hosts = ["db-*"]
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
approvals = 1
require_reason = false
schedule = [{ days = ["mon-fri"], hours = "09:00-13:00", tz = "UTC" }]

[roles.anytime]
hosts = ["db-*"]
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
approvals = 1
require_reason = false
"#;

#[tokio::test]
async fn an_approval_outside_the_schedule_is_given_and_alerts_in_its_transaction() {
    // T0 is Monday 12:00 UTC: inside 09:00-13:00.
    let h = Harness::with_policy(SCHEDULED);
    let (s, v) = h.request("alice", "office", 600, "").await;
    assert_eq!(s.as_u16(), 201, "{v}");
    let inside = v["id"].as_str().unwrap().to_string();
    h.clock.advance(30 * 60);
    let got = h.approve("bob", &inside).await;
    assert_eq!(got.0.as_u16(), 200, "{}", got.1);
    assert!(alerts(&h).is_empty(), "12:30 is inside the schedule");
    // Asked at 12:50, approved at 13:10: closed, but approved all the same; every
    // off-schedule approval alerts (no cooldown).
    h.clock.advance(20 * 60);
    let mut late = Vec::new();
    for user in ["alice", "dave"] {
        let (s, v) = h.request(user, "office", 600, "").await;
        assert_eq!(s.as_u16(), 201, "{v}");
        late.push(v["id"].as_str().unwrap().to_string());
    }
    h.clock.advance(20 * 60);
    for (approver, id) in ["carol", "bob"].iter().zip(&late) {
        let got = h.approve(approver, id).await;
        assert_eq!(got.0.as_u16(), 200, "{}", got.1);
        assert_eq!(got.1["state"], "approved");
    }
    let a = alerts(&h);
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(a[0]["kind"], "off_schedule_approval");
    assert_eq!(a[0]["user"], "carol");
    assert_eq!(a[0]["request_id"], late[0].as_str());
    assert_eq!(a[0]["role"], "office");
    assert_eq!(a[1]["user"], "bob");
    assert_eq!(a[1]["request_id"], late[1].as_str());
    assert!(
        a[0]["summary"]
            .as_str()
            .unwrap()
            .contains("outside its schedule (mon-fri 09:00-13:00 UTC)"),
        "{}",
        a[0]
    );
    // In the approval's transaction: right after its approval record, before the issuance.
    let ev: Vec<String> = h.audit_events().into_iter().map(|(e, _)| e).collect();
    let at = ev.iter().rposition(|e| e == "alert").unwrap();
    assert_eq!(ev[at - 1], "approval");
    assert_eq!(ev[at + 1], "issuance");
    // A role without a schedule never alerts, at any hour.
    let (_, v) = h.request("alice", "anytime", 600, "").await;
    let any = v["id"].as_str().unwrap().to_string();
    assert_eq!(h.approve("bob", &any).await.0.as_u16(), 200);
    assert_eq!(alerts(&h).len(), 2);
}

#[tokio::test]
async fn revoke_grant_makes_exactly_one_break_glass_alert_in_its_transaction() {
    let h = Harness::new();
    let r =
        h.ca.revoke_grant("admin:0", "bg-0001", "lost laptop")
            .unwrap();
    assert!(!r.issued_here);
    let a = alerts(&h);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["kind"], "break_glass");
    assert_eq!(a[0]["user"], "admin:0");
    assert_eq!(
        a[0]["summary"],
        "admin:0 used emergency tooling: jit-ca revoke-grant bg-0001"
    );
    let ev: Vec<String> = h.audit_events().into_iter().map(|(e, _)| e).collect();
    assert_eq!(&ev[ev.len() - 2..], ["grant_revocation", "alert"]);
    // A refused revoke-grant (already revoked) changes nothing and alerts nothing.
    assert!(h.ca.revoke_grant("admin:0", "bg-0001", "again").is_err());
    assert_eq!(alerts(&h).len(), 1);
    // A grant this CA issued: the alert names its request.
    let (_, v) = h.request("alice", "quick", 60, "").await;
    let serial = v["issued"]["serial"].as_u64().unwrap();
    h.ca.revoke_grant("admin:0", &serial.to_string(), "lost")
        .unwrap();
    let a = alerts(&h);
    assert_eq!(a.len(), 2);
    assert_eq!(a[1]["request_id"], v["id"]);
}

#[tokio::test]
async fn checkpoint_failures_alert_once_an_hour_while_failing() {
    let h = Harness::new();
    assert!(h.ca.report_checkpoint_failure("disk full"));
    let a = alerts(&h);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["kind"], "checkpoint_failure");
    assert_eq!(
        a[0]["summary"],
        "signing the audit checkpoint failed: disk full"
    );
    // The error's text stays one line in the alert.
    h.clock.advance(3600);
    assert!(h.ca.report_checkpoint_failure("disk\nfull"));
    let a = alerts(&h);
    assert_eq!(a.len(), 2);
    assert!(
        !a[1]["summary"].as_str().unwrap().contains('\n'),
        "{}",
        a[1]
    );
    // Every second while failing: quiet for the hour.
    for _ in 0..100 {
        h.clock.advance(30);
        assert!(!h.ca.report_checkpoint_failure("disk full"));
    }
    h.clock.advance(3600 - 3000);
    assert!(h.ca.report_checkpoint_failure("disk full"));
    assert_eq!(alerts(&h).len(), 3);
    // A success ends the failure: the next one alerts at once.
    h.clock.advance(1);
    h.ca.refresh_checkpoint().unwrap();
    h.clock.advance(1);
    assert!(h.ca.report_checkpoint_failure("disk full"));
    assert_eq!(alerts(&h).len(), 4);
}

#[tokio::test]
async fn a_real_checkpoint_failure_alerts_through_refresh_checkpoint() {
    let h = Harness::new();
    h.ca.refresh_checkpoint().unwrap();
    // A head record whose hash is not a record hash: the checkpoint cannot be signed (the
    // chain itself still takes records after it).
    h.sql(
        "INSERT INTO audit (seq, time, actor, event, details, prev_hash, hash) \
         SELECT seq + 1, time, 'x', 'service_start', '{}', hash, 'not-a-hash' FROM audit \
         ORDER BY seq DESC LIMIT 1",
        &[],
    );
    h.clock.advance(10);
    let err = h.ca.refresh_checkpoint().unwrap_err().to_string();
    assert!(err.contains("not a record hash"), "{err}");
    let a = alerts(&h);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["kind"], "checkpoint_failure");
    assert!(
        a[0]["summary"]
            .as_str()
            .unwrap()
            .contains("not a record hash"),
        "{}",
        a[0]
    );
    // The alert is the new head: the next checkpoint covers it, and a later failure alerts
    // at once (a success ended the failing spell).
    h.clock.advance(10);
    assert!(h.ca.refresh_checkpoint().unwrap());
    assert!(h.ca.report_checkpoint_failure("disk full"));
    assert_eq!(alerts(&h).len(), 2);
}

#[test]
fn bad_alert_thresholds_refuse_to_start_with_one_line_errors() {
    for (text, want) in [
        (
            "[alerts]\nrequest_burst = 0\n",
            "alerts.request_burst: 0 is not a count from 1 to 10000",
        ),
        (
            "[alerts]\nauth_failures_window = \"0s\"\n",
            "alerts.auth_failures_window: 0s is out of range; use 1s to 1d",
        ),
        (
            "[alerts]\nburst = 3\n",
            "alerts.burst: unknown key; [alerts] has auth_failures, auth_failures_window, request_burst, request_burst_window, cooldown",
        ),
    ] {
        let (dir, _) = setup_dir(POLICY);
        let cfg = data_dir(&dir).join("config.toml");
        let mut t = std::fs::read_to_string(&cfg).unwrap();
        t.push_str(text);
        std::fs::remove_file(&cfg).unwrap();
        std::fs::write(&cfg, t).unwrap();
        let clock = std::sync::Arc::new(jit_ca::clock::FixedClock::new(T0));
        let err = jit_ca::service::Ca::open(&data_dir(&dir), clock).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(want), "{msg}");
        let line = msg.lines().find(|l| l.contains(want)).unwrap();
        assert!(line.len() < want.len() + 16, "{line}");
    }
}

#[test]
fn the_alert_event_is_logged_at_alert_priority() {
    use jit_ca::audit::event::Event;
    use jit_common::log::Severity;
    assert_eq!(Event::severity_of("alert"), Severity::Alert);
}

/// Each alert is one outbox row `alert.<kind>` (through the store's hook), whose payload
/// carries the record's summary and check; the grant_revocation beside a break_glass alert
/// makes none of its own.
#[tokio::test]
async fn each_alert_is_one_outbox_row_of_its_kind() {
    let h = Harness::new();
    let rows = || -> Vec<(String, Value)> {
        h.sql(
            "SELECT type, payload FROM notify_outbox WHERE type LIKE 'alert.%' ORDER BY seq",
            &[],
        )
        .into_iter()
        .map(|r| {
            let (t, p) = (r[0].clone().unwrap(), r[1].clone().unwrap());
            let e = jit_ca::notify::event::Event::from_payload(p.as_bytes()).unwrap();
            (t, serde_json::to_value(e.data.alert.unwrap()).unwrap())
        })
        .collect()
    };
    let (_, v) = h.request("alice", "quick", 60, "").await;
    let serial = v["issued"]["serial"].as_u64().unwrap();
    h.ca.revoke_grant("admin:0", &serial.to_string(), "lost")
        .unwrap();
    let (_, v) = h.request("dave", "db-admin", 600, "maintenance").await;
    let id = v["id"].as_str().unwrap().to_string();
    assert_error(&h.approve("dave", &id).await, 403, "self_approval");
    let got = rows();
    let kinds: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(kinds, ["alert.break_glass", "alert.self_approval"]);
    let recorded = alerts(&h);
    assert_eq!(recorded.len(), 2);
    for ((_, facts), rec) in got.iter().zip(&recorded) {
        assert_eq!(facts["summary"], rec["summary"]);
        assert_eq!(facts["check"], rec["check"]);
        assert_eq!(facts["user"], rec["user"]);
    }
}

/// The `auth_failures` alerts whose `key` is `fp`.
fn key_alerts(h: &Harness, fp: &str) -> usize {
    alerts(h)
        .iter()
        .filter(|a| a["kind"] == "auth_failures" && a["key"] == fp)
        .count()
}

fn alice_fp(h: &Harness) -> String {
    jit_common::keys::fingerprint(h.key("alice").public_key()).to_string()
}

/// 5 sources x 10 unknown keys: the budget of sources and unknown keys is spent.
async fn spend_the_budget(h: &Harness) {
    for s in 0..5u8 {
        for n in 0..10 {
            unknown_key(h, u32::from(s) * 100 + n, [10, 9, 0, s]).await;
        }
    }
    let a = alerts(h);
    assert_eq!(a.len(), 5, "{a:?}");
    assert!(a[4]["summary"].as_str().unwrap().starts_with("at least 50"));
}

#[tokio::test]
async fn a_flood_does_not_hide_a_registered_key() {
    // R2-15 #1: the budget of sources and unknown keys does not silence a real user's key.
    let h = Harness::new();
    spend_the_budget(&h).await;
    h.clock.advance(1);
    let fp = alice_fp(&h);
    for _ in 0..10 {
        bad_signature(&h, [10, 9, 1, 1]).await;
    }
    assert_eq!(key_alerts(&h, &fp), 1, "{:?}", alerts(&h));
    let a = alerts(&h);
    let last = a.last().unwrap();
    assert_eq!(last["user"], "alice");
    // The sixth address also reached 10: named with the key, outside the budget.
    assert_eq!(last["source"], "10.9.1.1");
}

#[tokio::test]
async fn a_quiet_budget_leaves_no_cooldown() {
    // R2-15 #1: a detection held back by the budget starts no cooldown, so the source
    // alerts as soon as a new period begins.
    let h = Harness::new();
    spend_the_budget(&h).await;
    h.clock.advance(800);
    for n in 0..10 {
        unknown_key(&h, 7000 + n, [10, 9, 2, 2]).await;
    }
    assert_eq!(alerts(&h).len(), 5, "held back by the budget");
    // The next period (900 s after the first failure): not in a cooldown.
    h.clock.advance(110);
    for n in 0..10 {
        unknown_key(&h, 8000 + n, [10, 9, 2, 2]).await;
    }
    let a = alerts(&h);
    assert_eq!(a.len(), 6, "{a:?}");
    assert_eq!(a[5]["source"], "10.9.2.2");
}

#[tokio::test]
async fn replays_of_a_signed_call_alert_for_its_key() {
    // R2-15 #8: a captured call sent again has a valid signature; ten replays from ten
    // addresses alert for the key (and name its user).
    let h = Harness::new();
    let fp = alice_fp(&h);
    let nonce = auth::new_nonce();
    let ts = h.now();
    let call = || h.signed_request(h.key("alice"), "GET", "/v1/whoami", b"", ts, &nonce);
    let (status, _, _) = h.send(from(call(), [198, 51, 100, 200])).await;
    assert_eq!(status.as_u16(), 200);
    for i in 0..9u8 {
        let (status, body, _) = h.send(from(call(), [198, 51, 100, i])).await;
        assert_eq!(status.as_u16(), 401);
        assert!(String::from_utf8_lossy(&body).contains("replayed_nonce"));
    }
    assert_eq!(key_alerts(&h, &fp), 0);
    h.send(from(call(), [198, 51, 100, 9])).await;
    assert_eq!(key_alerts(&h, &fp), 1, "{:?}", alerts(&h));
    assert_eq!(alerts(&h)[0]["user"], "alice");
}

#[tokio::test]
async fn a_probe_spread_over_many_sources_and_fresh_keys_alerts() {
    // R2-15 #9: one failure per address and per fresh key stays under every per-source and
    // per-key threshold; all together they alert once (10 x the threshold in the window).
    let h = Harness::new();
    for n in 0..99u32 {
        let [_, _, a, b] = n.to_be_bytes();
        unknown_key(&h, n, [10, 50, a, b]).await;
    }
    assert!(alerts(&h).is_empty());
    unknown_key(&h, 99, [10, 51, 0, 1]).await;
    let a = alerts(&h);
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(a[0].get("source").is_none() && a[0].get("key").is_none());
    assert_eq!(a[0]["count"], 100);
    assert_eq!(
        a[0]["summary"],
        "100 failed signatures or unknown keys from many sources within 1m"
    );
    for n in 100..200u32 {
        let [_, _, a, b] = n.to_be_bytes();
        unknown_key(&h, n, [10, 52, a, b]).await;
    }
    assert_eq!(alerts(&h).len(), 1, "quiet in the cooldown");
    // Counted by kind in /metrics.
    let (_, metrics, _) = h.get("/metrics", None).await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("jit_ca_alerts_total{kind=\"auth_failures\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("jit_ca_alerts_total{kind=\"break_glass\"} 0"));
}

#[tokio::test]
async fn repeated_requests_for_one_role_alert() {
    // R2-15 #5: a loop on `jit request ops` stores one request and is refused the rest.
    let h = Harness::new();
    let (s, v) = h.request("alice", "db-admin", 600, "loop").await;
    assert_eq!(s.as_u16(), 201, "{v}");
    for _ in 0..9 {
        let got = h.request("alice", "db-admin", 600, "loop").await;
        assert_error(&got, 409, "duplicate_pending_request");
        h.clock.advance(10);
    }
    let a = alerts(&h);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["kind"], "request_burst");
    assert_eq!(a[0]["user"], "alice");
    assert_eq!(a[0]["count"], 10);
}

const SCHEDULED_AUTO: &str = r#"
[roles.office]
hosts = ["db-*"]
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
require_reason = false
schedule = [{ days = ["mon-fri"], hours = "09:00-13:00", tz = "UTC" }]
[[roles.office.auto_approve_rules]]
name = "oncall"
groups = ["oncall"]
max_duration = "1h"
"#;

#[tokio::test]
async fn an_auto_approved_extension_outside_the_schedule_alerts() {
    // R2-15 #7: the rule has no schedule of its own; extending past the approved window
    // at 13:05 (the role's schedule closed at 13:00) is approved by the rule and alerts.
    let h = Harness::with_policy(SCHEDULED_AUTO);
    h.clock.advance(50 * 60);
    let (s, v) = h.request("alice", "office", 20 * 60, "").await;
    assert_eq!(s.as_u16(), 201, "{v}");
    assert_eq!(v["state"], "approved", "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    // 12:55, inside the schedule: extended by the rule, no alert.
    h.clock.advance(5 * 60);
    let path = format!("/v1/requests/{id}/extend");
    let extend = |secs: u64| {
        h.call(
            "alice",
            "POST",
            &path,
            serde_json::json!({"duration_secs": secs}),
        )
    };
    let got = extend(300).await;
    assert_eq!(got.0.as_u16(), 200, "{}", got.1);
    assert!(alerts(&h).is_empty(), "{:?}", alerts(&h));
    // 13:05: closed.
    h.clock.advance(10 * 60);
    let got = extend(300).await;
    assert_eq!(got.0.as_u16(), 200, "{}", got.1);
    let a = alerts(&h);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["kind"], "off_schedule_approval");
    assert_eq!(a[0]["user"], "auto:oncall");
    assert_eq!(a[0]["request_id"], id.as_str());
    assert_eq!(a[0]["role"], "office");
    // In the extension's transaction, right after its extension record.
    let ev: Vec<String> = h.audit_events().into_iter().map(|(e, _)| e).collect();
    assert_eq!(&ev[ev.len() - 2..], ["extension", "alert"]);
}

#[tokio::test]
async fn a_postponed_checkpoint_is_not_a_success() {
    // R2-15 #11: after a good checkpoint, a failure alerts once; a refresh postponed while
    // the trail moves (the alert itself moved it) signed nothing and does not restart the
    // alerts.
    let h = Harness::new();
    assert!(h.ca.refresh_checkpoint().unwrap());
    h.clock.advance(1);
    assert!(h.ca.report_checkpoint_failure("disk full"));
    h.clock.advance(1);
    assert!(!h.ca.refresh_checkpoint().unwrap(), "postponed");
    h.clock.advance(1);
    assert!(!h.ca.report_checkpoint_failure("disk full"));
    assert_eq!(alerts(&h).len(), 1);
}

/// The budget of `auth_failures` alerts per period (service/alerting.rs
/// `AUTH_ALERTS_PER_PERIOD`): for sources and unknown keys, and apart for registered keys.
const BUDGET: usize = 5;

/// Registers `n` users `u00`, `u01`, ... (their keys: `keys::user(NAME)`).
fn register_many(h: &Harness, n: usize) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    (0..n)
        .map(|i| {
            let name = format!("u{i:02}");
            let (_, public) = keys::write_pair(tmp.path(), &name, &keys::user(&name));
            jit_ca::admin::user_add(&h.path(), &name, &public, &[], T0).unwrap();
            name
        })
        .collect()
}

/// `n` calls with `user`'s key and a timestamp of 0: refused (`stale_timestamp`) before
/// any signature check, so anyone holding the public key can make them.
async fn stale_calls(h: &Harness, user: &str, n: usize, ip: [u8; 4]) {
    let key = keys::user(user);
    for _ in 0..n {
        let req = h.signed_request(&key, "GET", "/v1/whoami", b"", 0, &auth::new_nonce());
        let (status, body, _) = h.send(from(req, ip)).await;
        assert_eq!(status.as_u16(), 401);
        assert!(String::from_utf8_lossy(&body).contains("stale_timestamp"));
    }
}

#[tokio::test]
async fn public_keys_alone_cannot_flood_the_sinks_and_every_attacked_key_is_named() {
    // R3-15 D1: 50 registered users' public keys, 10 stale calls each within a minute (one
    // user every 7 s, so the all-together count stays under its threshold): 5 alerts of
    // their own, then ONE summary for the period naming the others (first 20 and a count).
    let h = Harness::new();
    let users = register_many(&h, 50);
    let ip = [192, 0, 2, 50];
    for u in &users {
        stale_calls(&h, u, 10, ip).await;
        h.clock.advance(7);
    }
    let a = alerts(&h);
    assert_eq!(a.len(), BUDGET, "{a:?}");
    for (x, u) in a.iter().zip(&users) {
        assert_eq!(x["kind"], "auth_failures");
        assert_eq!(x["user"], u.as_str(), "{x}");
    }
    // The period (15m from its first failure) ends: the summary, once.
    h.clock.advance(15 * 60 - 50 * 7);
    h.ca.flush_alerts();
    h.ca.flush_alerts();
    let a = alerts(&h);
    assert!(a.len() <= BUDGET + 1, "{a:?}");
    assert_eq!(a.len(), BUDGET + 1, "{a:?}");
    let s = &a[BUDGET];
    assert_eq!(s["kind"], "auth_failures");
    assert_eq!(s["count"], 45, "{s}");
    assert!(s.get("user").is_none() && s.get("key").is_none(), "{s}");
    let summary = s["summary"].as_str().unwrap();
    let named: Vec<String> = users[BUDGET..BUDGET + 20].to_vec();
    assert!(
        summary.starts_with("45 more registered keys reached the auth_failures threshold"),
        "{summary}"
    );
    assert!(
        summary.ends_with(&format!(": {} and 25 more", named.join(", "))),
        "{summary}"
    );
    // Nothing more for the period, however often it is flushed.
    h.ca.flush_alerts();
    assert_eq!(alerts(&h).len(), BUDGET + 1);
    // Every attacked key is named: the record's `users` lists all 45, also the 25 the
    // text only counts (an attacker holding public keys cannot push a key out of it).
    let listed: Vec<String> = s["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    let mut want: Vec<String> = users[BUDGET..].to_vec();
    want.sort();
    assert_eq!(listed, want);
    // So each of them is in its cooldown, the one the text named (u05) and one it only
    // counted (u30): no alert of their own in the new period.
    // (5 calls from each of two new addresses: no source reaches the threshold.)
    for (u, ip) in [("u05", 60), ("u30", 62)] {
        stale_calls(&h, u, 5, [192, 0, 2, ip]).await;
        stale_calls(&h, u, 5, [192, 0, 2, ip + 1]).await;
    }
    let a = alerts(&h);
    assert_eq!(a.len(), BUDGET + 1, "{a:?}");
}

#[tokio::test]
async fn the_registered_key_summary_is_raised_by_the_next_failure_after_the_period() {
    // Without the housekeeping flush, the first failure of the next period raises it.
    let h = Harness::new();
    let users = register_many(&h, 7);
    for u in &users {
        stale_calls(&h, u, 10, [192, 0, 2, 51]).await;
    }
    // 70 failures at once: under the all-together threshold (100).
    assert_eq!(alerts(&h).len(), BUDGET, "{:?}", alerts(&h));
    h.clock.advance(15 * 60);
    unknown_key(&h, 1, [192, 0, 2, 52]).await;
    let a = alerts(&h);
    assert_eq!(a.len(), BUDGET + 1, "{a:?}");
    assert_eq!(a[BUDGET]["count"], 2);
    assert!(
        a[BUDGET]["summary"]
            .as_str()
            .unwrap()
            .ends_with(": u05, u06"),
        "{}",
        a[BUDGET]
    );
}

#[tokio::test]
async fn public_keys_all_at_once_make_a_constant_number_of_alerts() {
    // R3-15 D1, the burst form: 500 failures at one instant. The registered keys make their
    // budget and one summary; all failures together make one "from many sources" alert
    // (the budget of sources and unknown keys). Constant, whatever the number of keys.
    let h = Harness::new();
    let users = register_many(&h, 50);
    for u in &users {
        stale_calls(&h, u, 10, [192, 0, 2, 70]).await;
    }
    h.clock.advance(15 * 60);
    h.ca.flush_alerts();
    let a = alerts(&h);
    assert_eq!(a.iter().filter(|x| x["user"].is_string()).count(), BUDGET);
    let many: Vec<_> = a
        .iter()
        .filter(|x| x["summary"].as_str().unwrap().contains("from many sources"))
        .collect();
    assert_eq!(many.len(), 1, "{a:?}");
    assert_eq!(a.len(), BUDGET + 2, "{a:?}");
    let s = a.last().unwrap();
    assert_eq!(s["count"], 45, "{s}");
    assert!(
        s["summary"].as_str().unwrap().ends_with("u24 and 25 more"),
        "{s}"
    );
}

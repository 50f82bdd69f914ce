//! The notification outbox as the service's call sites fill it (issue 15): every state change
//! leaves exactly one event whose facts are the request as the change left it; refusals
//! leave none.

use jit_ca::notify::event::{Event, Kind};
use jit_ca::notify::filter::Filter;
use jit_test_kit::harness::*;
use serde_json::json;

/// The events written since the last call, in order (fanned out to one sink that takes
/// everything and read back as that sink would receive them, each marked delivered).
fn events(h: &Harness) -> Vec<Event> {
    // One write transaction, as an operator command would (either database).
    let mut out = h
        .store()
        .with_tx(|c| {
            c.notify_fan_out(&[("all", &Filter::all())], 0)?;
            let mut out = Vec::new();
            // One per request at a time (ordering): mark each delivered to see the next.
            loop {
                let due = c.notify_due("all", u64::MAX / 2, 1000)?;
                if due.is_empty() {
                    break;
                }
                let outcomes: Vec<_> = due
                    .iter()
                    .map(|d| jit_ca::store::Outcome {
                        seq: d.seq,
                        attempts: 1,
                        expected_attempts: Some(d.attempts),
                        state: jit_ca::store::DeliveryState::Delivered,
                        at: 0,
                        status: Some(200),
                        error: None,
                    })
                    .collect();
                c.notify_record("all", &outcomes)?;
                out.extend(due);
            }
            Ok::<_, jit_ca::error::CaError>(out)
        })
        .unwrap();
    out.sort_by_key(|d| d.seq);
    out.iter()
        .map(|d| {
            let e = Event::from_payload(d.payload.as_bytes()).unwrap();
            assert_eq!(e.id, d.id);
            assert_eq!(e.kind.as_str(), d.kind);
            e
        })
        .collect()
}

fn summary(evs: &[Event]) -> Vec<(Kind, String, String)> {
    evs.iter()
        .map(|e| {
            let r = e.data.request.as_ref().unwrap();
            (e.kind, r.id.clone(), r.state.clone())
        })
        .collect()
}

#[tokio::test]
async fn each_change_of_a_request_is_one_event_with_the_state_it_left() {
    let h = Harness::new();
    let before = events(&h).len();
    assert_eq!(before, 0, "user administration notifies nothing");
    let (s, req) = h.request("alice", "two-man", 1800, "INC-1 deploy").await;
    assert_eq!(s, 201, "{req}");
    let id = req["id"].as_str().unwrap().to_string();
    // Refused: self-approval (an alert.self_approval event, no request event), a stranger
    // (no event).
    let (s, _) = h.approve("alice", &id).await;
    assert_eq!(s, 403);
    assert_eq!(h.approve("eve", &id).await.0, 403);
    assert_eq!(h.approve("bob", &id).await.0, 200);
    h.clock.advance(10);
    assert_eq!(h.approve("dave", &id).await.0, 200);
    h.clock.advance(60);
    let (s, _) = h
        .call(
            "alice",
            "POST",
            &format!("/v1/requests/{id}/revoke"),
            json!({"reason": "done early"}),
        )
        .await;
    assert_eq!(s, 200);
    let evs = events(&h);
    let st = |k, s: &str| (k, id.clone(), s.to_string());
    assert_eq!(
        summary(&evs),
        [
            st(Kind::RequestCreated, "pending"),
            st(Kind::AlertSelfApproval, "pending"),
            st(Kind::RequestApproved, "pending"),
            // The approval that completes the count is appended before the row changes:
            // read from the row, it says pending with 2 of 2; the issuance says approved.
            st(Kind::RequestApproved, "pending"),
            st(Kind::RequestIssued, "approved"),
            st(Kind::RequestRevoked, "revoked"),
        ]
    );
    // The request's own events, in order (the alert is checked in tests/api/alerts.rs).
    let evs: Vec<_> = evs.into_iter().filter(|e| !e.kind.is_alert()).collect();
    let facts: Vec<_> = evs
        .iter()
        .map(|e| e.data.request.clone().unwrap())
        .collect();
    assert_eq!(facts[0].approvals.count, 0);
    assert_eq!(facts[1].approvals.by, ["bob"]);
    assert_eq!(facts[2].approvals.by, ["bob", "dave"]);
    assert_eq!(facts[2].approvals.required, 2);
    assert!(facts[3].valid_after.is_some() && facts[3].valid_before.is_some());
    assert_eq!(facts[2].valid_before, None);
    assert_eq!(facts[4].decision_reason.as_deref(), Some("done early"));
    assert_eq!(facts[0].reason, "INC-1 deploy");
    assert_eq!(evs[1].actor, "bob");
    assert_eq!(evs[4].actor, "alice");
    // Ids: evt_ + the audit record's hash, unique.
    let mut ids: Vec<_> = evs.iter().map(|e| e.id.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), evs.len());
    assert!(ids.iter().all(|i| i.starts_with("evt_") && i.len() == 36));
}

#[tokio::test]
async fn an_extension_says_the_new_window() {
    // db-admin approved at once up to max_duration, so its requester may extend alone.
    let h = Harness::with_policy(&POLICY.replacen(
        "approvals = 1\n",
        "approvals = 1\nauto_approve = true\n",
        1,
    ));
    let (_, req) = h.request("alice", "db-admin", 1800, "x").await;
    let id = req["id"].as_str().unwrap().to_string();
    h.clock.advance(300);
    let (s, v) = h
        .call(
            "alice",
            "POST",
            &format!("/v1/requests/{id}/extend"),
            json!({"duration_secs": 900}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let evs = events(&h);
    let kinds: Vec<_> = evs.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::RequestCreated,
            Kind::RequestApproved,
            Kind::RequestIssued,
            Kind::RequestExtended
        ]
    );
    let ext = evs[3].data.request.as_ref().unwrap();
    assert_eq!(ext.valid_before, v["valid_before"].as_u64());
    assert_ne!(
        ext.valid_before,
        evs[2].data.request.as_ref().unwrap().valid_before
    );
}

#[tokio::test]
async fn auto_approval_denial_cancellation_expiry_and_user_removal() {
    let h = Harness::new();
    // Auto-approved at once: created (as stored: approved), approved, issued.
    let (s, v) = h.request("alice", "quick", 600, "").await;
    assert_eq!(s, 201, "{v}");
    let quick = v["id"].as_str().unwrap().to_string();
    let (_, v) = h.request("alice", "db-admin", 600, "a").await;
    let denied = v["id"].as_str().unwrap().to_string();
    let (s, _) = h
        .call(
            "bob",
            "POST",
            &format!("/v1/requests/{denied}/deny"),
            json!({"reason": "not now"}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, v) = h.request("dave", "two-man", 600, "c").await;
    let cancelled = v["id"].as_str().unwrap().to_string();
    let (s, _) = h
        .call(
            "dave",
            "POST",
            &format!("/v1/requests/{cancelled}/cancel"),
            json!({"reason": "wrong role"}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, v) = h.request("dave", "two-man", 600, "e").await;
    let expiring = v["id"].as_str().unwrap().to_string();
    let (_, v) = h.request("alice", "db-admin", 600, "p").await;
    let pending = v["id"].as_str().unwrap().to_string();
    let evs = events(&h);
    h.clock.advance(24 * 3600);
    h.ca.sweep().unwrap();
    let later = events(&h);
    let swept = summary(&later);
    // The quick window ended (approved -> expired), the two pending ones expired.
    assert!(
        swept
            .iter()
            .all(|(k, _, s)| *k == Kind::RequestExpired && s == "expired"),
        "{swept:?}"
    );
    let mut ids: Vec<_> = swept.iter().map(|e| e.1.clone()).collect();
    ids.sort();
    let mut want = vec![quick.clone(), expiring.clone(), pending.clone()];
    want.sort();
    assert_eq!(ids, want);
    assert!(later.iter().all(|e| e.actor == "system"));
    // R1 D4: the payload tells an ended elevation from a request never decided.
    for e in &later {
        let r = e.data.request.as_ref().unwrap();
        let was = if r.id == quick { "approved" } else { "pending" };
        assert_eq!(r.previous_state.as_deref(), Some(was), "{e:?}");
        let msg = jit_ca::notify::slack::render(e, &[], None).to_string();
        assert_eq!(msg.contains("undecided"), was == "pending", "{msg}");
    }
    // Other events do not carry it.
    assert!(
        evs.iter()
            .all(|e| e.data.request.as_ref().unwrap().previous_state.is_none())
    );
    let s = summary(&evs);
    assert_eq!(
        &s[..3],
        [
            (Kind::RequestCreated, quick.clone(), "approved".to_string()),
            (Kind::RequestApproved, quick.clone(), "approved".to_string()),
            (Kind::RequestIssued, quick.clone(), "approved".to_string()),
        ]
    );
    assert_eq!(evs[1].actor, "auto:oncall");
    assert!(s.contains(&(Kind::RequestDenied, denied.clone(), "denied".into())));
    assert!(s.contains(&(
        Kind::RequestCancelled,
        cancelled.clone(),
        "cancelled".into()
    )));
    let d = evs
        .iter()
        .find(|e| e.kind == Kind::RequestCancelled)
        .unwrap();
    assert_eq!(
        d.data.request.as_ref().unwrap().decision_reason.as_deref(),
        Some("wrong role")
    );

    // user remove: one event per request it denied or revoked.
    let (_, v) = h.request("alice", "db-admin", 600, "x").await;
    let p2 = v["id"].as_str().unwrap().to_string();
    let (_, v) = h.request("alice", "quick", 600, "").await;
    let a2 = v["id"].as_str().unwrap().to_string();
    events(&h);
    h.ca.remove_user("operator", "alice").unwrap();
    let evs = events(&h);
    assert_eq!(
        summary(&evs),
        [
            (Kind::RequestDenied, p2, "denied".to_string()),
            (Kind::RequestRevoked, a2, "revoked".to_string()),
        ]
    );
    assert!(evs[0].id.ends_with("-1") && evs[1].id.ends_with("-2"));
    assert_eq!(evs[0].id[..36], evs[1].id[..36]);
    assert_eq!(evs[0].actor, "operator");
}

fn reminders(h: &Harness) -> Vec<(String, u64)> {
    events(h)
        .into_iter()
        .filter(|e| e.kind == Kind::RequestExpiring)
        .map(|e| {
            let r = e.data.request.unwrap();
            assert_eq!(r.state, "approved");
            assert_eq!(e.actor, "system");
            (r.id, r.valid_before.unwrap())
        })
        .collect()
}

/// One `expiry_reminder` per window end, `expiry_reminder` (10m by default) before it; an
/// extension's new end gets a new one; a revoked request, or a window no longer than the
/// reminder, gets none.
#[tokio::test]
async fn an_active_elevation_is_reminded_once_per_window_end() {
    let h = Harness::with_policy(&POLICY.replacen(
        "approvals = 1\n",
        "approvals = 1\nauto_approve = true\n",
        1,
    ));
    let (s, v) = h.request("alice", "db-admin", 1800, "x").await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let end = v["valid_before"].as_u64().unwrap();
    let (_, v) = h.request("dave", "db-admin", 1800, "y").await;
    let revoked = v["id"].as_str().unwrap().to_string();
    // A window no longer than the reminder: the requester was just told its end.
    let (s, v) = h.request("dave", "db-admin", 600, "short").await;
    assert_eq!(s, 201, "{v}");
    let (s, _) = h
        .call(
            "dave",
            "POST",
            &format!("/v1/requests/{revoked}/revoke"),
            json!({"reason": "done"}),
        )
        .await;
    assert_eq!(s, 200);
    h.ca.sweep().unwrap();
    h.clock.advance(300);
    h.ca.sweep().unwrap();
    assert_eq!(reminders(&h), []);
    // 11 minutes before the end: not yet; 10 minutes before: one; later sweeps: no more.
    h.clock.set(end - 660);
    h.ca.sweep().unwrap();
    assert_eq!(reminders(&h), []);
    h.clock.set(end - 600);
    h.ca.sweep().unwrap();
    assert_eq!(reminders(&h), [(id.clone(), end)]);
    for _ in 0..3 {
        h.clock.advance(60);
        h.ca.sweep().unwrap();
    }
    assert_eq!(reminders(&h), []);
    // Extended: the new end gets its own reminder, once.
    let (s, v) = h
        .call(
            "alice",
            "POST",
            &format!("/v1/requests/{id}/extend"),
            json!({"duration_secs": 900}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let new_end = v["valid_before"].as_u64().unwrap();
    assert!(new_end > end);
    h.ca.sweep().unwrap();
    assert_eq!(reminders(&h), []);
    h.clock.set(new_end - 300);
    h.ca.sweep().unwrap();
    h.ca.sweep().unwrap();
    assert_eq!(reminders(&h), [(id.clone(), new_end)]);
    let audited: Vec<_> = h
        .audit_events()
        .into_iter()
        .filter(|e| e.0 == "expiry_reminder")
        .collect();
    assert_eq!(audited.len(), 2);
    // Ended: expired, never reminded again.
    h.clock.set(new_end + 1);
    h.ca.sweep().unwrap();
    assert_eq!(reminders(&h), []);
}

#[tokio::test]
async fn expiry_reminder_0s_sends_none() {
    let policy = POLICY.replacen("approvals = 1\n", "approvals = 1\nauto_approve = true\n", 1);
    let h = Harness::with_policy_and_config(&policy, &[("expiry_reminder", "\"0s\"")]);
    let (s, v) = h.request("alice", "db-admin", 1800, "x").await;
    assert_eq!(s, 201, "{v}");
    let end = v["valid_before"].as_u64().unwrap();
    for t in [end - 600, end - 60, end - 1] {
        h.clock.set(t);
        h.ca.sweep().unwrap();
    }
    assert_eq!(reminders(&h), []);
    assert!(!h.audit_events().iter().any(|e| e.0 == "expiry_reminder"));
}

/// An approval refused after its audit record was appended (the grant bound is checked once
/// the count is reached) rolls back with its event: no `request.approved` leaves the CA.
#[tokio::test]
async fn a_change_refused_mid_transaction_leaves_no_event() {
    let h = Harness::with_policy_and_config(POLICY, &[("max_active_grants_per_user", "1")]);
    let (s, v) = h.request("alice", "db-admin", 600, "x").await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let (s, v) = h.request("alice", "quick", 600, "").await;
    assert_eq!(s, 201, "{v}");
    let before = events(&h);
    assert_eq!(before.len(), 4, "created, created+approved+issued");
    let got = h.approve("bob", &id).await;
    assert_error(&got, 409, "too_many_active_grants");
    assert_eq!(events(&h), []);
    assert!(
        h.audit_events()
            .iter()
            .all(|e| e.0 != "approval" || e.1 != "bob")
    );
}

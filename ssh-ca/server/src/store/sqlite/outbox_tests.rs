//! Tests of the notification outbox (migration 6, the hook in `append_audit`, the delivery
//! operations of `StoreOps`).

use serde_json::json;

use super::tests::{cert, request};
use super::*;
use crate::audit::event;
use crate::notify::event::{Event, Kind, event_id, event_id_at};
use crate::notify::filter::Filter;
use crate::store::{DeliveryState, Outcome};

/// (seq, id, type, request_id, time, payload) of every outbox row.
type Row = (u64, String, String, Option<String>, u64, String);

fn outbox(c: &Connection) -> Vec<Row> {
    c.prepare("SELECT seq, id, type, request_id, time, payload FROM notify_outbox ORDER BY seq")
        .unwrap()
        .query_map([], |r| {
            Ok((
                u(r.get(0)?),
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                u(r.get(4)?),
                r.get(5)?,
            ))
        })
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap()
}

fn event_of(row: &Row) -> Event {
    Event::from_payload(row.5.as_bytes()).unwrap()
}

fn store_with_alice() -> Store {
    let s = Store::open_in_memory().unwrap();
    add_user(
        s.conn(),
        "alice",
        &["dev".into()],
        &["ssh-ed25519 AAAA".into()],
        1,
    )
    .unwrap();
    s.conn()
        .execute(
            "UPDATE users SET contact = '@alice' WHERE name = 'alice'",
            [],
        )
        .unwrap();
    s
}

#[test]
fn migration_6_on_a_version_5_database_keeps_rows_and_adds_the_outbox() {
    let c = Connection::open_in_memory().unwrap();
    for m in &MIGRATIONS[..5] {
        c.execute_batch(m).unwrap();
    }
    c.pragma_update(None, "user_version", 5).unwrap();
    let key = jit_api::auth::key_header(&request("r-old", "alice", 10).public_key).unwrap();
    c.execute(
        "INSERT INTO users (name, groups, created_at) VALUES ('alice', '[\"dev\"]', 1)",
        [],
    )
    .unwrap();
    c.execute(
        "INSERT INTO requests (id, user, role, reason, duration_secs, hosts, principals, sudo, \
         public_key, created_at, pending_expires_at, approvals_required, state) \
         VALUES ('r-old', 'alice', 'db', 'r', 60, '[\"db-*\"]', '[\"alice\"]', 1, ?1, 10, 610, 1, 'approved')",
        [key],
    )
    .unwrap();
    let s = Store::init(c).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
    let c = s.conn();
    assert_eq!(
        c.get_request("r-old").unwrap().unwrap().state,
        RequestState::Approved
    );
    let (contact, reminded): (Option<String>, Option<i64>) = c
        .query_row(
            "SELECT u.contact, r.reminded_until FROM users u, requests r WHERE r.id = 'r-old'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((contact, reminded), (None, None));
    assert!(outbox(c).is_empty());
}

#[test]
fn a_notifying_record_writes_one_row_with_the_facts_as_stored_and_refusals_none() {
    let mut s = store_with_alice();
    let tx = s.tx().unwrap();
    let mut r = request("r-1", "alice", 100);
    r.ticket = Some("INC-1".into());
    tx.insert_request(&r).unwrap();
    let rec = append_audit(
        &tx,
        100,
        "alice",
        event::REQUEST,
        &json!({"request_id": "r-1"}),
    )
    .unwrap();
    append_audit(
        &tx,
        101,
        "bob",
        event::REQUEST_REFUSED,
        &json!({"request_id": "r-1"}),
    )
    .unwrap();
    append_audit(&tx, 101, "op", event::USER_ADD, &json!({"user": "carol"})).unwrap();
    append_audit(
        &tx,
        101,
        "system",
        event::POLICY_RELOAD,
        &json!({"ok": true}),
    )
    .unwrap();
    tx.commit().unwrap();
    let rows = outbox(s.conn());
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row.1, event_id(&rec.hash));
    assert_eq!(row.2, "request.created");
    assert_eq!(row.3.as_deref(), Some("r-1"));
    assert_eq!(row.4, 100);
    let ev = event_of(row);
    // The stored text is exactly Event::payload() (the bytes signed and sent).
    assert_eq!(row.5.as_bytes(), ev.payload().as_slice());
    assert_eq!(ev.id, row.1);
    assert_eq!(ev.kind, Kind::RequestCreated);
    assert_eq!(ev.actor, "alice");
    let f = ev.data.request.unwrap();
    assert_eq!(f.id, "r-1");
    assert_eq!(f.state, "pending");
    assert_eq!(f.ticket.as_deref(), Some("INC-1"));
    assert_eq!(f.contact.as_deref(), Some("@alice"));
    assert_eq!((f.approvals.count, f.approvals.required), (0, 1));
    assert_eq!((f.valid_after, f.valid_before), (None, None));
    assert!(ev.data.alert.is_none());
}

/// The hook reads the row as the transaction left it: an approval appended before the row
/// changes says pending with its count; the issuance after `update_request` says approved
/// with the window; a denial carries its reason.
#[test]
fn facts_are_read_in_the_transaction_not_assumed() {
    let mut s = store_with_alice();
    let tx = s.tx().unwrap();
    let mut r = request("r-1", "alice", 100);
    r.approvals_required = 2;
    tx.insert_request(&r).unwrap();
    append_audit(
        &tx,
        100,
        "alice",
        event::REQUEST,
        &json!({"request_id": "r-1"}),
    )
    .unwrap();
    tx.add_approval("r-1", "bob", 110, 0).unwrap();
    append_audit(
        &tx,
        110,
        "bob",
        event::APPROVAL,
        &json!({"request_id": "r-1"}),
    )
    .unwrap();
    tx.add_approval("r-1", "carol", 120, 0).unwrap();
    append_audit(
        &tx,
        120,
        "carol",
        event::APPROVAL,
        &json!({"request_id": "r-1"}),
    )
    .unwrap();
    r.state = RequestState::Approved;
    r.approved_at = Some(120);
    tx.insert_cert(&cert(7, "r-1", 180)).unwrap();
    tx.update_request(&r).unwrap();
    append_audit(
        &tx,
        120,
        "alice",
        event::ISSUANCE,
        &json!({"request_id": "r-1"}),
    )
    .unwrap();
    r.state = RequestState::Revoked;
    r.revocation_reason = Some("done early".into());
    tx.update_request(&r).unwrap();
    append_audit(
        &tx,
        130,
        "bob",
        event::REVOCATION,
        &json!({"request_id": "r-1"}),
    )
    .unwrap();
    tx.commit().unwrap();
    let evs: Vec<Event> = outbox(s.conn()).iter().map(event_of).collect();
    let kinds: Vec<Kind> = evs.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::RequestCreated,
            Kind::RequestApproved,
            Kind::RequestApproved,
            Kind::RequestIssued,
            Kind::RequestRevoked
        ]
    );
    let f: Vec<_> = evs
        .iter()
        .map(|e| e.data.request.clone().unwrap())
        .collect();
    assert_eq!((f[1].state.as_str(), f[1].approvals.count), ("pending", 1));
    assert_eq!(f[2].approvals.by, ["bob", "carol"]);
    assert_eq!(f[3].state, "approved");
    assert_eq!((f[3].valid_after, f[3].valid_before), (Some(1), Some(180)));
    assert_eq!(f[3].decision_reason, None);
    assert_eq!(f[4].state, "revoked");
    assert_eq!(f[4].decision_reason.as_deref(), Some("done early"));
}

#[test]
fn a_rolled_back_change_leaves_no_row() {
    let mut s = store_with_alice();
    {
        let tx = s.tx().unwrap();
        tx.insert_request(&request("r-1", "alice", 100)).unwrap();
        append_audit(
            &tx,
            100,
            "alice",
            event::REQUEST,
            &json!({"request_id": "r-1"}),
        )
        .unwrap();
        assert_eq!(outbox(&tx).len(), 1);
        // dropped: rolled back
    }
    assert!(outbox(s.conn()).is_empty());
    // A group commit's savepoint released on failure: the same.
    let mut tx = s.tx().unwrap();
    {
        let mut sp = tx.savepoint().unwrap();
        sp.insert_request(&request("r-2", "alice", 100)).unwrap();
        append_audit(
            &sp,
            100,
            "alice",
            event::REQUEST,
            &json!({"request_id": "r-2"}),
        )
        .unwrap();
        sp.rollback().unwrap();
    }
    tx.insert_request(&request("r-3", "alice", 100)).unwrap();
    append_audit(
        &tx,
        100,
        "alice",
        event::REQUEST,
        &json!({"request_id": "r-3"}),
    )
    .unwrap();
    tx.commit().unwrap();
    let rows = outbox(s.conn());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].3.as_deref(), Some("r-3"));
}

/// A request event whose request is not stored is an error (never an event without facts).
#[test]
fn a_request_event_without_its_row_fails_the_change() {
    let mut s = store_with_alice();
    let tx = s.tx().unwrap();
    let err = append_audit(&tx, 1, "a", event::DENIAL, &json!({"request_id": "r-x"})).unwrap_err();
    assert!(err.to_string().contains("r-x"), "{err}");
    let err = append_audit(&tx, 1, "a", event::DENIAL, &json!({})).unwrap_err();
    assert!(err.to_string().contains("request_id"), "{err}");
}

#[test]
fn user_remove_makes_one_row_per_affected_request_in_order() {
    let mut s = store_with_alice();
    let tx = s.tx().unwrap();
    for id in ["r-1", "r-2", "r-3"] {
        tx.insert_request(&request(id, "alice", 100)).unwrap();
    }
    let mut r2 = request("r-2", "alice", 100);
    r2.state = RequestState::Denied;
    r2.denial_reason = Some("user alice was removed".into());
    tx.update_request(&r2).unwrap();
    let mut r3 = request("r-3", "alice", 100);
    r3.state = RequestState::Revoked;
    tx.update_request(&r3).unwrap();
    tx.remove_user("alice").unwrap();
    let rec = append_audit(
        &tx,
        200,
        "op",
        event::USER_REMOVE,
        &json!({"user": "alice", "denied": ["r-2"], "revoked": ["r-3"], "serials": []}),
    )
    .unwrap();
    tx.commit().unwrap();
    let rows = outbox(s.conn());
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.1.clone(), r.2.as_str(), r.3.clone().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            (
                event_id_at(&rec.hash, 1),
                "request.denied",
                "r-2".to_string()
            ),
            (
                event_id_at(&rec.hash, 2),
                "request.revoked",
                "r-3".to_string()
            ),
        ]
    );
    let f = event_of(&rows[0]).data.request.unwrap();
    assert_eq!(f.decision_reason.as_deref(), Some("user alice was removed"));
    assert_eq!(f.contact, None, "the user is gone");
    assert_eq!(event_of(&rows[1]).actor, "op");
}

#[test]
fn alerts_carry_their_facts_and_are_not_ordered_by_request() {
    let mut s = store_with_alice();
    let tx = s.tx().unwrap();
    tx.insert_request(&request("r-1", "alice", 100)).unwrap();
    let rec = append_audit(
        &tx,
        100,
        "system",
        event::ALERT,
        &json!({"kind": "self_approval", "summary": "alice tried to approve r-1",
                "check": "ask alice", "user": "alice", "request_id": "r-1", "count": 1}),
    )
    .unwrap();
    append_audit(
        &tx,
        100,
        "system",
        event::ALERT,
        &json!({"kind": "nonsense"}),
    )
    .unwrap();
    // An alert about a request that does not read still goes out (without the request).
    append_audit(
        &tx,
        101,
        "op",
        event::ALERT,
        &json!({"kind": "break_glass", "summary": "s", "check": "c", "request_id": "r-gone"}),
    )
    .unwrap();
    append_audit(
        &tx,
        101,
        "op",
        event::GRANT_REVOCATION,
        &json!({"request_id": "r-1"}),
    )
    .unwrap();
    tx.commit().unwrap();
    let rows = outbox(s.conn());
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].1, event_id(&rec.hash));
    assert_eq!(rows[0].2, "alert.self_approval");
    assert_eq!(rows[0].3, None, "alerts are not ordered behind a request");
    let ev = event_of(&rows[0]);
    let a = ev.data.alert.unwrap();
    assert_eq!(a.summary, "alice tried to approve r-1");
    assert_eq!((a.user.as_deref(), a.count), (Some("alice"), Some(1)));
    assert_eq!(ev.data.request.unwrap().id, "r-1");
    let ev = event_of(&rows[1]);
    assert_eq!(ev.kind, Kind::AlertBreakGlass);
    assert!(ev.data.request.is_none());
}

/// Appends `n` request events (created) of requests `ids`, in that order; returns the seqs.
fn created(s: &mut Store, ids: &[&str], time: u64) -> Vec<u64> {
    let tx = s.tx().unwrap();
    for id in ids {
        if tx.get_request(id).unwrap().is_none() {
            tx.insert_request(&request(id, "alice", time)).unwrap();
        }
        append_audit(
            &tx,
            time,
            "alice",
            event::REQUEST,
            &json!({"request_id": id}),
        )
        .unwrap();
    }
    tx.commit().unwrap();
    outbox(s.conn()).iter().map(|r| r.0).collect()
}

fn alert(s: &mut Store, time: u64) {
    let tx = s.tx().unwrap();
    append_audit(
        &tx,
        time,
        "system",
        event::ALERT,
        &json!({"kind": "auth_failures", "summary": "s", "check": "c"}),
    )
    .unwrap();
    tx.commit().unwrap();
}

fn deliveries(c: &Connection) -> Vec<(u64, String, String, u64)> {
    c.prepare("SELECT seq, sink, state, next_at FROM notify_delivery ORDER BY seq, sink")
        .unwrap()
        .query_map([], |r| {
            Ok((u(r.get(0)?), r.get(1)?, r.get(2)?, u(r.get(3)?)))
        })
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap()
}

#[test]
fn fan_out_respects_filters_and_the_cursor() {
    let mut s = store_with_alice();
    created(&mut s, &["r-1"], 100);
    alert(&mut s, 101);
    let all = Filter::all();
    let alerts = Filter::parse(&["alert.*".into()]).unwrap();
    let c = s.conn();
    assert_eq!(
        c.notify_fan_out(&[("ops", &all), ("sec", &alerts)], 200)
            .unwrap(),
        3
    );
    assert_eq!(
        deliveries(c),
        [
            (1, "ops".into(), "pending".into(), 200),
            (2, "ops".into(), "pending".into(), 200),
            (2, "sec".into(), "pending".into(), 200),
        ]
    );
    assert_eq!(
        crate::store::meta_counter(c, "notify_fanout_seq").unwrap(),
        2
    );
    // Nothing new: nothing made, even for a sink added since (config changes apply to
    // events not fanned out yet).
    assert_eq!(
        c.notify_fan_out(&[("ops", &all), ("new", &all)], 201)
            .unwrap(),
        0
    );
    created(&mut s, &["r-2"], 300);
    let c = s.conn();
    assert_eq!(c.notify_fan_out(&[("sec", &alerts)], 301).unwrap(), 0);
    assert_eq!(
        crate::store::meta_counter(c, "notify_fanout_seq").unwrap(),
        3
    );
    assert_eq!(deliveries(c).len(), 3);
}

fn outcome(seq: u64, attempts: u32, state: DeliveryState, at: u64) -> Outcome {
    Outcome {
        seq,
        attempts,
        expected_attempts: None,
        state,
        at,
        status: match state {
            DeliveryState::Delivered => Some(200),
            _ => Some(500),
        },
        error: match state {
            DeliveryState::Delivered => None,
            _ => Some("status 500".into()),
        },
    }
}

/// A later event of a request waits while an earlier one to the same sink is pending (even
/// not due yet); other requests and alerts go on; a dead delivery blocks nothing.
#[test]
fn due_keeps_each_requests_order_per_sink() {
    let mut s = store_with_alice();
    created(&mut s, &["r-1", "r-1", "r-2"], 100); // seqs 1, 2, 3
    alert(&mut s, 101); // 4
    let all = Filter::all();
    let c = s.conn();
    c.notify_fan_out(&[("a", &all), ("b", &all)], 100).unwrap();
    let seqs = |v: Vec<crate::store::Due>| v.iter().map(|d| d.seq).collect::<Vec<_>>();
    assert_eq!(seqs(c.notify_due("a", 100, 64).unwrap()), [1, 3, 4]);
    assert_eq!(seqs(c.notify_due("a", 100, 2).unwrap()), [1, 3]);
    assert_eq!(seqs(c.notify_due("a", 99, 64).unwrap()), Vec::<u64>::new());
    // seq 1 fails and is retried later: seq 2 (same request) waits for it; sink b is
    // independent.
    c.notify_record(
        "a",
        &[outcome(1, 1, DeliveryState::Pending { next_at: 110 }, 100)],
    )
    .unwrap();
    assert_eq!(seqs(c.notify_due("a", 105, 64).unwrap()), [3, 4]);
    assert_eq!(seqs(c.notify_due("b", 105, 64).unwrap()), [1, 3, 4]);
    let due = c.notify_due("a", 110, 64).unwrap();
    assert_eq!(seqs(due.clone()), [1, 3, 4]);
    assert_eq!(due[0].attempts, 1);
    assert_eq!(due[0].kind, "request.created");
    assert_eq!(due[0].request_id.as_deref(), Some("r-1"));
    assert_eq!(due[0].payload, outbox(c)[0].5);
    assert_eq!(due[2].request_id, None);
    // Delivered: the next of the request is due.
    c.notify_record("a", &[outcome(1, 2, DeliveryState::Delivered, 110)])
        .unwrap();
    assert_eq!(seqs(c.notify_due("a", 110, 64).unwrap()), [2, 3, 4]);
    // Dead: it does not block the later one either.
    c.notify_record("b", &[outcome(1, 9, DeliveryState::Dead, 110)])
        .unwrap();
    assert_eq!(seqs(c.notify_due("b", 110, 64).unwrap()), [2, 3, 4]);
    // Outcomes apply to pending deliveries only: a late duplicate cannot revive a dead one.
    c.notify_record(
        "b",
        &[outcome(1, 10, DeliveryState::Pending { next_at: 0 }, 111)],
    )
    .unwrap();
    assert!(
        deliveries(c)
            .iter()
            .any(|d| d.0 == 1 && d.1 == "b" && d.2 == "dead")
    );
}

#[test]
fn status_retry_and_prune() {
    let mut s = store_with_alice();
    created(&mut s, &["r-1", "r-2"], 1000); // 1, 2
    alert(&mut s, 1001); // 3
    let all = Filter::all();
    let c = s.conn();
    c.notify_fan_out(&[("a", &all), ("b", &all)], 1000).unwrap();
    c.notify_record(
        "a",
        &[
            outcome(1, 1, DeliveryState::Delivered, 1010),
            outcome(2, 7, DeliveryState::Dead, 1020),
            outcome(3, 1, DeliveryState::Pending { next_at: 1040 }, 1030),
        ],
    )
    .unwrap();
    let st = c.notify_status(1100).unwrap();
    assert_eq!(st.sinks.len(), 2);
    let a = &st.sinks[0];
    assert_eq!(a.sink, "a");
    assert_eq!((a.pending, a.dead), (1, 1));
    assert_eq!(a.oldest_undelivered, Some(1001));
    assert_eq!(a.oldest_undelivered_secs, Some(99));
    let last = a.last_error.as_ref().unwrap();
    assert_eq!((last.at, last.status), (1030, Some(500)));
    let b = &st.sinks[1];
    assert_eq!((b.pending, b.oldest_undelivered), (3, Some(1000)));
    assert!(b.last_error.is_none());
    assert_eq!(st.dead_total, 1);
    let d = &st.dead[0];
    let id2 = outbox(c)[1].1.clone();
    assert_eq!(
        (
            d.id.as_str(),
            d.sink.as_str(),
            d.attempts,
            d.request_id.as_deref()
        ),
        (id2.as_str(), "a", 7, Some("r-2"))
    );
    assert_eq!(
        (d.kind.as_str(), d.dead_at, d.time),
        ("request.created", Some(1020), 1000)
    );

    // Retry: dead -> pending, attempts 0, due now; the same id.
    let err = c.notify_retry("evt_nope", None, 1200).unwrap_err();
    assert!(matches!(err, CaError::UnknownEvent { .. }), "{err:?}");
    assert!(err.to_string().contains("evt_nope"));
    assert_eq!(c.notify_retry(&id2, Some("b"), 1200).unwrap(), vec![]);
    assert_eq!(
        c.notify_retry(&id2, None, 1200).unwrap(),
        vec![(id2.clone(), "a".to_string())]
    );
    let due = c.notify_due("a", 1200, 64).unwrap();
    assert_eq!(due[0].id, id2);
    assert_eq!(due[0].attempts, 0);
    assert_eq!(
        c.notify_retry(&id2, None, 1200).unwrap(),
        vec![],
        "nothing dead now"
    );

    // Prune: a week after, rows delivered everywhere go; others stay until 30 days.
    let week = 1000 + 7 * 24 * 3600 + 1;
    assert_eq!(c.notify_prune(week).unwrap(), 0, "b has everything pending");
    c.notify_record(
        "b",
        &[
            outcome(1, 1, DeliveryState::Delivered, 1010),
            outcome(2, 1, DeliveryState::Delivered, 1010),
        ],
    )
    .unwrap();
    assert_eq!(
        c.notify_prune(week).unwrap(),
        1,
        "only seq 1 is delivered everywhere"
    );
    assert_eq!(outbox(c).iter().map(|r| r.0).collect::<Vec<_>>(), [2, 3]);
    assert!(deliveries(c).iter().all(|d| d.0 != 1));
    // 30 days after the event, seq 3 goes; seq 2 was resent at 1200 (pending again): it
    // stays 30 days from the resend (R3 D4; this test expected 2 before, which deleted a
    // resend still pending).
    let month = 1001 + 30 * 24 * 3600 + 1;
    assert_eq!(c.notify_prune(month).unwrap(), 1);
    assert_eq!(outbox(c).iter().map(|r| r.0).collect::<Vec<_>>(), [2]);
    assert_eq!(c.notify_prune(1200 + 30 * 24 * 3600 + 1).unwrap(), 1);
    assert!(outbox(c).is_empty());
    assert!(deliveries(c).is_empty());
    // A row no sink wanted is pruned after a week too.
    created(&mut s, &["r-9"], month);
    let c = s.conn();
    c.notify_fan_out(&[], month).unwrap();
    assert_eq!(c.notify_prune(month + 7 * 24 * 3600).unwrap(), 0);
    assert_eq!(c.notify_prune(month + 7 * 24 * 3600 + 1).unwrap(), 1);
}

/// An unknown stored delivery state is a named error, never a default.
#[test]
fn an_unknown_delivery_state_is_an_error() {
    let mut s = store_with_alice();
    created(&mut s, &["r-1"], 100);
    let c = s.conn();
    c.notify_fan_out(&[("a", &Filter::all())], 100).unwrap();
    c.execute("UPDATE notify_delivery SET state = 'paused'", [])
        .unwrap();
    let err = c.notify_status(100).unwrap_err();
    assert!(err.to_string().contains("paused"), "{err}");
    c.execute("UPDATE notify_outbox SET type = 'request.nope'", [])
        .unwrap();
    c.execute("DELETE FROM notify_delivery", []).unwrap();
    c.execute("DELETE FROM meta WHERE k = 'notify_fanout_seq'", [])
        .unwrap();
    // R1 D9: one row of an unknown type does not stop the fan-out: it is dead for every
    // sink with a named error, and a valid row after it still gets its delivery.
    drop(s);
}

/// R1 D9: a row of a type this build does not know is skipped as a dead letter (named,
/// listed), and the rows after it are fanned out.
#[test]
fn an_unknown_type_is_a_dead_letter_not_a_stop() {
    let mut s = store_with_alice();
    created(&mut s, &["r-1"], 100);
    s.conn()
        .execute("UPDATE notify_outbox SET type = 'request.nope'", [])
        .unwrap();
    created(&mut s, &["r-2"], 101);
    let c = s.conn();
    let all = Filter::all();
    assert_eq!(
        c.notify_fan_out(&[("a", &all), ("b", &all)], 200).unwrap(),
        2
    );
    assert_eq!(
        deliveries(c),
        [
            (1, "a".into(), "dead".into(), 200),
            (1, "b".into(), "dead".into(), 200),
            (2, "a".into(), "pending".into(), 200),
            (2, "b".into(), "pending".into(), 200),
        ]
    );
    let st = c.notify_status(200).unwrap();
    assert_eq!(st.dead_total, 2);
    assert!(
        st.dead[0]
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("unknown event type \"request.nope\""),
        "{st:?}"
    );
    assert_eq!(c.notify_backlog().unwrap(), (0, None));
    // The later row is due (the dead one does not hold its request's order).
    assert_eq!(c.notify_due("a", 200, 10).unwrap()[0].seq, 2);
}

/// R3 D5: an unknown type is dead only for the sinks whose filter could take it (`*`, its
/// family), and each is reported to the caller (to count and audit).
#[test]
fn an_unknown_type_is_dead_only_where_a_filter_could_take_it() {
    let mut s = store_with_alice();
    created(&mut s, &["r-1"], 100);
    s.conn()
        .execute("UPDATE notify_outbox SET type = 'request.nope'", [])
        .unwrap();
    let c = s.conn();
    let all = Filter::all();
    let requests = Filter::parse(&["request.*".into()]).unwrap();
    let alerts = Filter::parse(&["alert.*".into()]).unwrap();
    let exact = Filter::parse(&["request.created".into()]).unwrap();
    let mut dead = Vec::new();
    let sinks = [("a", &all), ("b", &requests), ("c", &alerts), ("d", &exact)];
    assert_eq!(c.notify_fan_out_with(&sinks, 200, &mut dead).unwrap(), 0);
    assert_eq!(
        dead.iter().map(|d| d.sink.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert_eq!(dead[0].kind, "request.nope");
    assert_eq!(dead[0].request_id.as_deref(), Some("r-1"));
    assert_eq!(dead[0].id, outbox(c)[0].1);
    assert!(dead[0].error.starts_with("unknown event type"));
    assert_eq!(
        deliveries(c),
        [
            (1, "a".into(), "dead".into(), 200),
            (1, "b".into(), "dead".into(), 200),
        ]
    );
    // A retry resends to those sinks only.
    let id = outbox(c)[0].1.clone();
    assert_eq!(c.notify_retry(&id, None, 300).unwrap().len(), 2);
}

/// Every audit event: exactly one row when `notify::map` maps it, none otherwise (refusals,
/// user administration, reloads, webhook answers, the notify_* records themselves).
#[test]
fn exactly_one_row_per_mapped_record_and_none_for_the_others() {
    let mut s = store_with_alice();
    let tx = s.tx().unwrap();
    tx.insert_request(&request("r-1", "alice", 100)).unwrap();
    let details = json!({"request_id": "r-1", "kind": "self_approval", "summary": "s",
        "check": "c", "denied": [], "revoked": []});
    let mut want = 0;
    for ev in crate::audit::event::Event::ALL {
        let before = outbox(&tx).len();
        append_audit(&tx, 100, "x", ev, &details).unwrap();
        let made = outbox(&tx).len() - before;
        let mapped = crate::notify::map::kind_of(*ev, &details);
        assert_eq!(made, usize::from(mapped.is_some()), "{ev:?}");
        if let Some(k) = mapped {
            assert_eq!(outbox(&tx).last().unwrap().2, k.as_str(), "{ev:?}");
            want += 1;
        }
    }
    assert!(want >= 10, "{want}");
    assert!(
        outbox(&tx)
            .iter()
            .all(|r| !r.2.contains("refused") && Kind::parse(&r.2).is_some())
    );
}

/// Reminders: approved, window begun, not ended, ends within the bound, not reminded of this
/// end; the latest issued certificate decides (a reserved serial does not, a revoked one
/// stops it).
#[test]
fn due_for_reminder_takes_the_current_window_once() {
    let s = store_with_alice();
    let c = s.conn();
    for (id, after, before) in [
        ("r-now", 100, 1000),
        ("r-later", 950, 1500),
        ("r-far", 100, 5000),
        ("r-revoked", 100, 1000),
    ] {
        let mut r = request(id, "alice", 100);
        r.state = RequestState::Approved;
        c.insert_request(&r).unwrap();
        let serial = c.reserve_serial_block(1).unwrap();
        let mut k = cert(serial, id, before);
        k.valid_after = after;
        c.insert_cert(&k).unwrap();
    }
    c.revoke_certs("r-revoked").unwrap();
    // Issued when its end was already within the bound: never reminded.
    let mut r = request("r-short", "alice", 850);
    r.state = RequestState::Approved;
    c.insert_request(&r).unwrap();
    let serial = c.reserve_serial_block(1).unwrap();
    let mut k = cert(serial, "r-short", 1400);
    (k.valid_after, k.issued_at) = (850, 850);
    c.insert_cert(&k).unwrap();
    let mut pending = request("r-pending", "alice", 100);
    pending.approvals_required = 2;
    c.insert_request(&pending).unwrap();
    assert_eq!(
        c.due_for_reminder(900, 600).unwrap(),
        [("r-now".to_string(), 1000)]
    );
    c.set_reminded("r-now", 1000).unwrap();
    assert!(c.due_for_reminder(900, 600).unwrap().is_empty());
    // A later window counts once begun; a serial reserved for an extension (not issued yet)
    // does not move the end.
    c.reserve_serial("r-now", "alice", 950).unwrap();
    assert_eq!(
        c.due_for_reminder(960, 600).unwrap(),
        [("r-later".to_string(), 1500)]
    );
    // An extension's new end is reminded again.
    let serial = c.reserve_serial_block(1).unwrap();
    c.insert_cert(&cert(serial, "r-now", 1400)).unwrap();
    assert_eq!(
        c.due_for_reminder(960, 600).unwrap(),
        [("r-later".to_string(), 1500), ("r-now".to_string(), 1400)]
    );
    // Ended windows are the expiry's, not the reminder's.
    assert!(c.due_for_reminder(1500, 600).unwrap().is_empty());
}

/// R1 D10: `notify retry` finds the id with a scan on a read; under the write lock it uses
/// the primary key only (a scan there would stall every writer of the running service).
#[test]
fn the_retry_statements_under_the_write_lock_use_the_primary_key() {
    let s = store_with_alice();
    let plan = |sql: &str, n: usize| -> String {
        let params: Vec<i64> = (0..n as i64).collect();
        s.conn()
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(rusqlite::params_from_iter(params), |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap()
            .join("; ")
    };
    for (sql, n) in [(outbox::RETRY_CHECK, 2), (outbox::RETRY_UPDATE, 3)] {
        let p = plan(sql, n);
        assert!(!p.contains("SCAN"), "{sql}: {p}");
    }
    assert!(plan(outbox::EVENT_SEQ, 1).contains("SCAN notify_outbox"));
}

fn alerts(s: &mut Store, n: usize, time: u64) {
    let tx = s.tx().unwrap();
    for _ in 0..n {
        append_audit(
            &tx,
            time,
            "system",
            event::ALERT,
            &json!({"kind": "auth_failures", "summary": "s", "check": "c"}),
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

/// R1 D8: dead letters at the head (kept 30 days) do not hold back the pruning of the
/// delivered rows after them; rows not fanned out are never pruned.
#[test]
fn prune_is_not_stuck_behind_head_rows_and_never_passes_the_cursor() {
    let mut s = store_with_alice();
    let t = 1000;
    let n = outbox::PRUNE_BATCH + 1;
    alerts(&mut s, n, t);
    let all = Filter::all();
    s.conn().notify_fan_out(&[("a", &all)], t).unwrap();
    let dead: Vec<Outcome> = (1..=n as u64)
        .map(|seq| outcome(seq, 3, DeliveryState::Dead, t))
        .collect();
    s.conn().notify_record("a", &dead).unwrap();
    alerts(&mut s, 10, t);
    s.conn().notify_fan_out(&[("a", &all)], t).unwrap();
    let done: Vec<Outcome> = (n as u64 + 1..=n as u64 + 10)
        .map(|seq| outcome(seq, 1, DeliveryState::Delivered, t))
        .collect();
    s.conn().notify_record("a", &done).unwrap();
    // Never fanned out: no deliveries, but not "delivered everywhere" either.
    alerts(&mut s, 5, t);
    let week = t + 8 * 24 * 3600;
    assert_eq!(s.conn().notify_prune(week).unwrap(), 10);
    assert_eq!(outbox(s.conn()).len(), n + 5);
    assert_eq!(s.conn().notify_backlog().unwrap(), (5, Some(t)));
    assert_eq!(s.conn().notify_prune(week).unwrap(), 0);
}

/// Prune reads a bounded window per call (it runs under the write lock) and moves on: rows
/// beyond a window of rows that stay are reached by the next call.
#[test]
fn prune_moves_window_by_window() {
    let mut s = store_with_alice();
    let t = 1000;
    let n = outbox::PRUNE_SCAN as usize + 5;
    alerts(&mut s, n, t);
    let all = Filter::all();
    while s.conn().notify_backlog().unwrap().0 > 0 {
        s.conn().notify_fan_out(&[("a", &all)], t).unwrap();
    }
    let dead: Vec<Outcome> = (1..=outbox::PRUNE_SCAN)
        .map(|seq| outcome(seq, 3, DeliveryState::Dead, t))
        .collect();
    s.conn().notify_record("a", &dead).unwrap();
    let done: Vec<Outcome> = (outbox::PRUNE_SCAN + 1..=n as u64)
        .map(|seq| outcome(seq, 1, DeliveryState::Delivered, t))
        .collect();
    s.conn().notify_record("a", &done).unwrap();
    let week = t + 8 * 24 * 3600;
    assert_eq!(s.conn().notify_prune(week).unwrap(), 0, "the first window");
    assert_eq!(s.conn().notify_prune(week).unwrap(), 5, "the next one");
    assert_eq!(
        s.conn().notify_prune(week).unwrap(),
        0,
        "wrapped to the head"
    );
    let month = t + 31 * 24 * 3600;
    // At most a batch a call, whichever window the call reads (the tail's is empty now).
    let pruned = s.conn().notify_prune(month).unwrap() + s.conn().notify_prune(month).unwrap();
    assert_eq!(pruned, outbox::PRUNE_BATCH);
    assert_eq!(
        s.conn().notify_prune(month).unwrap(),
        outbox::PRUNE_BATCH,
        "the next call goes on after the last row deleted"
    );
}

/// R3 D4: a dead letter resent near the end of the 30 days is not pruned under its pending
/// delivery: it is retried (and delivered) from the resend.
#[test]
fn prune_keeps_a_resent_delivery_still_pending() {
    let mut s = store_with_alice();
    let t = 1000;
    created(&mut s, &["r-1"], t);
    let all = Filter::all();
    let c = s.conn();
    c.notify_fan_out(&[("a", &all)], t).unwrap();
    c.notify_record("a", &[outcome(1, 5, DeliveryState::Dead, t + 3600)])
        .unwrap();
    let id = outbox(c)[0].1.clone();
    let day = 24 * 3600;
    let resent = t + 29 * day;
    assert_eq!(
        c.notify_retry(&id, None, resent).unwrap(),
        vec![(id.clone(), "a".to_string())]
    );
    assert_eq!(c.notify_prune(t + 30 * day + 1).unwrap(), 0);
    assert_eq!(
        deliveries(c),
        vec![(1, "a".into(), "pending".into(), resent)]
    );
    let due = c.notify_due("a", t + 30 * day + 1, 64).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, id);
    c.notify_record(
        "a",
        &[outcome(1, 1, DeliveryState::Delivered, t + 30 * day + 2)],
    )
    .unwrap();
    assert_eq!(deliveries(c)[0].2, "delivered");
    // Delivered: the usual rule (30 days after the event) lets it go.
    assert_eq!(c.notify_prune(t + 30 * day + 3).unwrap(), 1);
}

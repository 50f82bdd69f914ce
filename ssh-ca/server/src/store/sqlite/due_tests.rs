//! The expiry sweep's queries (migration 9): `window_end` is kept by the triggers whatever
//! writes a certificate, the due queries read ids by index in bounded batches, and an old
//! database gets the column right for the rows it already has.

use super::requests::{DUE_APPROVED, DUE_PENDING};
use super::tests::{cert, request};
use super::*;

fn window_end(c: &Connection, id: &str) -> i64 {
    c.query_row("SELECT window_end FROM requests WHERE id = ?1", [id], |r| {
        r.get(0)
    })
    .unwrap()
}

fn approved(c: &Connection, id: &str) {
    let mut r = request(id, "alice", 0);
    r.state = RequestState::Approved;
    c.insert_request(&r).unwrap();
}

#[test]
fn due_queries_use_their_index_not_a_scan() {
    let s = Store::open_in_memory().unwrap();
    let c = s.conn();
    for (q, index) in [
        (DUE_PENDING, "requests_pending_due"),
        (DUE_APPROVED, "requests_window_due"),
    ] {
        let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {q}")).unwrap();
        let plan: Vec<String> = st
            .query_map(rusqlite::params!["approved", 100, 500], |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let plan = plan.join(" | ");
        assert!(
            plan.contains(&format!("USING INDEX {index} (state=? AND "))
                || plan.contains(&format!("USING COVERING INDEX {index} (state=? AND ")),
            "{q}: {plan}"
        );
        assert!(!plan.contains("SCAN"), "{q}: {plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{q}: {plan}");
    }
    // Reminders look at approved requests with an open window only (a range of the index),
    // not every approved request.
    let mut st = c
        .prepare(
            "EXPLAIN QUERY PLAN SELECT r.id FROM requests r WHERE r.state = ?1 AND r.window_end > ?2",
        )
        .unwrap();
    let plan: Vec<String> = st
        .query_map(rusqlite::params!["approved", 100], |r| {
            r.get::<_, String>(3)
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(
        plan.join(" | ")
            .contains("requests_window_due (state=? AND window_end>?)"),
        "{plan:?}"
    );
}

#[test]
fn window_end_follows_every_writer_of_a_certificate() {
    let s = Store::open_in_memory().unwrap();
    let c = s.conn();
    approved(c, "r-1");
    assert_eq!(window_end(c, "r-1"), 0, "no certificate: ended");
    // Issuance (insert_cert), an extension (a later end), an earlier end stays the max.
    c.insert_cert(&cert(1, "r-1", 1000)).unwrap();
    assert_eq!(window_end(c, "r-1"), 1000);
    c.insert_cert(&cert(2, "r-1", 1600)).unwrap();
    assert_eq!(window_end(c, "r-1"), 1600);
    c.insert_cert(&cert(3, "r-1", 1200)).unwrap();
    assert_eq!(window_end(c, "r-1"), 1600);
    // The reserved-serial path: reserve (valid_before 0), then complete.
    approved(c, "r-2");
    let serial = c.reserve_serial("r-2", "alice", 5).unwrap();
    assert_eq!(window_end(c, "r-2"), 0);
    let mut done = cert(serial, "r-2", 700);
    done.grant_id = Some("g".into());
    c.complete_cert(&done).unwrap();
    assert_eq!(window_end(c, "r-2"), 700);
    approved(c, "r-3");
    c.insert_cert(&cert(10, "r-3", 900)).unwrap();
    assert_eq!(window_end(c, "r-3"), 900);
    // A deleted certificate no longer holds the window open.
    c.execute("DELETE FROM certs WHERE serial = 2", []).unwrap();
    assert_eq!(window_end(c, "r-1"), 1200);
    // Due exactly when no certificate is valid after `now`, as before migration 9.
    let due = |now| -> Vec<String> {
        c.due_ids_for_expiry(now, 100)
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    };
    assert!(due(699).is_empty());
    assert_eq!(due(700), ["r-2"]);
    assert_eq!(due(1199), ["r-2", "r-3"]);
    assert_eq!(due(1200), ["r-2", "r-3", "r-1"], "by window end");
}

#[test]
fn due_ids_come_in_bounded_batches_pending_first_each_by_its_due_time() {
    let s = Store::open_in_memory().unwrap();
    let c = s.conn();
    for k in 0..7u64 {
        let mut r = request(&format!("p-{k}"), "alice", 100 - k);
        r.pending_expires_at = 500 - k;
        c.insert_request(&r).unwrap();
        approved(c, &format!("a-{k}"));
        c.insert_cert(&cert(k + 1, &format!("a-{k}"), 300 + k))
            .unwrap();
    }
    // Not due: a pending request before its expiry, a window still open, other states.
    c.insert_request(&request("p-late", "alice", 900)).unwrap();
    approved(c, "a-open");
    c.insert_cert(&cert(99, "a-open", 5000)).unwrap();
    let mut revoked = request("x", "alice", 0);
    revoked.state = RequestState::Revoked;
    c.insert_request(&revoked).unwrap();

    let batch = c.due_ids_for_expiry(1000, 5).unwrap();
    assert_eq!(batch.len(), 5);
    let ids: Vec<&str> = batch.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["p-6", "p-5", "p-4", "p-3", "p-2"]);
    assert!(batch.iter().all(|(_, s)| *s == RequestState::Pending));
    let all = c.due_ids_for_expiry(1000, 100).unwrap();
    let ids: Vec<&str> = all.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "p-6", "p-5", "p-4", "p-3", "p-2", "p-1", "p-0", "a-0", "a-1", "a-2", "a-3", "a-4",
            "a-5", "a-6"
        ]
    );
    // The conditional update: once, and only from the state it was found in.
    assert!(!c.expire_request("a-0", RequestState::Pending).unwrap());
    assert!(c.expire_request("a-0", RequestState::Approved).unwrap());
    assert!(!c.expire_request("a-0", RequestState::Approved).unwrap());
    assert_eq!(
        c.get_request("a-0").unwrap().unwrap().state,
        RequestState::Expired
    );
    assert_eq!(c.due_ids_for_expiry(1000, 100).unwrap().len(), 13);
    assert!(c.due_ids_for_expiry(1000, 0).unwrap().is_empty());
}

#[test]
fn a_version_8_database_gets_window_end_for_the_rows_it_has() {
    let c = Connection::open_in_memory().unwrap();
    for m in &MIGRATIONS[..8] {
        c.execute_batch(m).unwrap();
    }
    c.pragma_update(None, "user_version", 8).unwrap();
    for r in ["r-two", "r-none", "r-pending"] {
        let mut row = request(r, "alice", 10);
        if r != "r-pending" {
            row.state = RequestState::Approved;
        }
        c.insert_request(&row).unwrap();
    }
    c.insert_cert(&cert(1, "r-two", 800)).unwrap();
    c.insert_cert(&cert(2, "r-two", 1300)).unwrap();
    let s = Store::init(c).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
    let c = s.conn();
    assert_eq!(window_end(c, "r-two"), 1300);
    assert_eq!(window_end(c, "r-none"), 0);
    assert_eq!(window_end(c, "r-pending"), 0);
    let due: Vec<String> = c
        .due_ids_for_expiry(600, 10)
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        due,
        ["r-none"],
        "r-pending expires at 610, r-two's window at 1300"
    );
    // The triggers work on the migrated database.
    c.insert_cert(&cert(3, "r-none", 2000)).unwrap();
    assert_eq!(window_end(c, "r-none"), 2000);
}

//! The audit page's data (issue 16): search with filters and paging, the chain's status
//! (incremental verification, tampering found and named), the checkpoint, the exports.

use jit_ca::audit::Record;
use jit_ca::service::audit_view::{AuditParams, AuditQuery, FULL_REVERIFY_SECS};
use jit_test_kit::harness::*;

fn query(f: impl FnOnce(&mut AuditParams)) -> AuditQuery {
    let mut p = AuditParams::default();
    f(&mut p);
    AuditQuery::parse(&p).unwrap()
}

fn events(records: &[Record]) -> Vec<(String, String)> {
    records
        .iter()
        .map(|r| (r.event.clone(), r.actor.clone()))
        .collect()
}

/// The data directory's database with its append-only triggers dropped, as someone with
/// the file could.
fn tamper(h: &Harness, sql: &str) {
    let c = rusqlite::Connection::open(h.path().join("jit.db")).unwrap();
    c.execute_batch(
        "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;",
    )
    .unwrap();
    c.execute_batch(sql).unwrap();
}

/// alice asks for db-admin, bob approves (request, approval, issuance); dave asks for
/// two-man (pending). Returns the two request ids.
async fn trail(h: &Harness) -> (String, String) {
    let (s, v) = h.request("alice", "db-admin", 1800, "INC-1 disk").await;
    assert_eq!(s, 201, "{v}");
    let a = v["id"].as_str().unwrap().to_string();
    h.clock.advance(60);
    assert_eq!(h.approve("bob", &a).await.0, 200);
    h.clock.advance(60);
    let (s, v) = h.request("dave", "two-man", 1800, "INC-2 deploy").await;
    assert_eq!(s, 201, "{v}");
    (a, v["id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn filters_by_user_role_event_and_time_newest_first() {
    let h = Harness::new();
    let (a, d) = trail(&h).await;
    let page = h.ca.audit_search(&query(|_| {})).unwrap();
    let seqs: Vec<u64> = page.records.iter().map(|r| r.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "newest first: {seqs:?}"
    );
    assert_eq!(page.next_before, None, "one page holds the whole trail");

    // alice: her request, bob's approval of it and the issuance (records of her request),
    // not dave's.
    let p =
        h.ca.audit_search(&query(|p| p.user = Some("alice".into())))
            .unwrap();
    let got = events(&p.records);
    assert!(got.contains(&("request".into(), "alice".into())), "{got:?}");
    assert!(got.contains(&("approval".into(), "bob".into())), "{got:?}");
    assert!(got.iter().any(|(e, _)| e == "issuance"), "{got:?}");
    // ... and her registration (details.user), nothing else.
    assert!(
        got.contains(&("user_add".into(), "admin:uid=0".into())),
        "{got:?}"
    );
    assert!(
        p.records.iter().all(|r| r.actor == "alice"
            || r.details.contains(&a)
            || r.details.contains("\"user\":\"alice\"")),
        "{got:?}"
    );
    assert!(!p.records.iter().any(|r| r.details.contains(&d)));
    // bob: his approval and his registration.
    let p =
        h.ca.audit_search(&query(|p| p.user = Some("bob".into())))
            .unwrap();
    assert_eq!(
        events(&p.records),
        [
            ("approval".to_string(), "bob".to_string()),
            ("user_add".to_string(), "admin:uid=0".to_string())
        ]
    );

    // Role: every record of two-man's request.
    let p =
        h.ca.audit_search(&query(|p| p.role = Some("two-man".into())))
            .unwrap();
    assert!(!p.records.is_empty());
    assert!(p.records.iter().all(|r| r.details.contains(&d)));

    // Event and time (RFC 3339 and Unix seconds).
    let p =
        h.ca.audit_search(&query(|p| p.event = Some("request".into())))
            .unwrap();
    assert_eq!(
        events(&p.records),
        [
            ("request".to_string(), "dave".to_string()),
            ("request".to_string(), "alice".to_string())
        ]
    );
    let p =
        h.ca.audit_search(&query(|p| {
            p.event = Some("request".into());
            p.since = Some("2026-11-23T12:01:30Z".into());
        }))
        .unwrap();
    assert_eq!(
        events(&p.records),
        [("request".to_string(), "dave".to_string())]
    );
    let p =
        h.ca.audit_search(&query(|p| {
            p.event = Some("request".into());
            p.until = Some((T0 + 30).to_string());
        }))
        .unwrap();
    assert_eq!(
        events(&p.records),
        [("request".to_string(), "alice".to_string())]
    );
    // Nobody: nothing.
    let p =
        h.ca.audit_search(&query(|p| p.user = Some("nobody".into())))
            .unwrap();
    assert!(p.records.is_empty());
}

#[tokio::test]
async fn pages_follow_each_other_by_seq_without_gaps_or_repeats() {
    let h = Harness::new();
    trail(&h).await;
    let all = h.ca.audit_search(&query(|_| {})).unwrap().records;
    assert!(all.len() >= 5, "{}", all.len());
    let mut seen = Vec::new();
    let mut q = query(|p| p.limit = Some("2".into()));
    loop {
        let page = h.ca.audit_search(&q).unwrap();
        assert!(page.records.len() <= 2);
        seen.extend(page.records.iter().map(|r| r.seq));
        match page.next_before {
            Some(b) => q.before = Some(b),
            None => break,
        }
    }
    assert_eq!(seen, all.iter().map(|r| r.seq).collect::<Vec<_>>());
    // A cursor past the head starts at the head; before=1 is an empty last page.
    let q = query(|p| p.before = Some("999999".into()));
    assert_eq!(h.ca.audit_search(&q).unwrap().records.len(), all.len());
    let q = query(|p| p.before = Some("1".into()));
    let page = h.ca.audit_search(&q).unwrap();
    assert!(page.records.is_empty() && page.next_before.is_none());
}

#[tokio::test]
async fn the_export_streams_every_match_in_the_cli_shape() {
    let h = Harness::new();
    trail(&h).await;
    let mut lines = Vec::new();
    let n =
        h.ca.audit_export(&query(|p| p.limit = Some("1".into())), |r| {
            lines.push(jit_ca::audit::export::json_value(r));
            true
        })
        .unwrap();
    // The page size does not cut an export; the records are those of `jit-ca audit export
    // --json`, newest first.
    let mut cli = jit_ca::admin::audit_export(&h.path()).unwrap();
    cli.reverse();
    assert_eq!(n as usize, cli.len());
    assert_eq!(lines, cli);
    // The consumer can stop it (a client that went away).
    let mut k = 0;
    let n =
        h.ca.audit_export(&query(|_| {}), |_| {
            k += 1;
            k < 2
        })
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn the_chain_is_verified_incrementally_and_tampering_is_named() {
    let h = Harness::new();
    trail(&h).await;
    let s = h.ca.audit_chain_status().unwrap();
    assert!(s.intact, "{s:?}");
    let head = jit_ca::admin::audit_export(&h.path()).unwrap().len() as u64;
    assert_eq!(s.verified, head);
    // New records: the next view verifies them too.
    h.ca.audit(
        "admin:0",
        jit_ca::audit::event::USER_ADD,
        serde_json::json!({"user": "x"}),
    )
    .unwrap();
    let s = h.ca.audit_chain_status().unwrap();
    assert!(s.intact && s.verified == head + 1, "{s:?}");

    // An edit of a record appended after the last view: named at the next view.
    h.ca.audit(
        "admin:0",
        jit_ca::audit::event::USER_ADD,
        serde_json::json!({"user": "y"}),
    )
    .unwrap();
    tamper(
        &h,
        &format!(
            "UPDATE audit SET actor = 'mallory' WHERE seq = {}",
            head + 2
        ),
    );
    let s = h.ca.audit_chain_status().unwrap();
    assert!(!s.intact, "{s:?}");
    assert_eq!(s.bad_record, Some(head + 2));
    assert!(s.problem.as_deref().unwrap().contains("altered"), "{s:?}");
    // It stays broken.
    assert!(!h.ca.audit_chain_status().unwrap().intact);
}

#[tokio::test]
async fn a_rewritten_or_cut_tail_and_old_edits_are_found() {
    // The verified head changed: found at the next view without re-hashing.
    let h = Harness::new();
    trail(&h).await;
    let s = h.ca.audit_chain_status().unwrap();
    assert!(s.intact);
    let head = s.verified;
    tamper(
        &h,
        &format!(
            "UPDATE audit SET hash = '{}' WHERE seq = {head}",
            "f".repeat(64)
        ),
    );
    let s = h.ca.audit_chain_status().unwrap();
    assert_eq!((s.intact, s.bad_record), (false, Some(head)), "{s:?}");

    // A cut tail.
    let h = Harness::new();
    trail(&h).await;
    let head = h.ca.audit_chain_status().unwrap().verified;
    tamper(&h, &format!("DELETE FROM audit WHERE seq = {head}"));
    let s = h.ca.audit_chain_status().unwrap();
    assert_eq!((s.intact, s.bad_record), (false, Some(head)), "{s:?}");
    assert!(s.problem.unwrap().contains("missing"));

    // An edit of a record verified earlier: the hourly full verification finds it.
    let h = Harness::new();
    trail(&h).await;
    assert!(h.ca.audit_chain_status().unwrap().intact);
    tamper(&h, "UPDATE audit SET details = '{}' WHERE seq = 2");
    h.clock.advance(FULL_REVERIFY_SECS);
    let s = h.ca.audit_chain_status().unwrap();
    assert_eq!((s.intact, s.bad_record), (false, Some(2)), "{s:?}");
}

#[tokio::test]
async fn a_signed_checkpoint_is_shown_and_checked_against_the_trail() {
    let h = Harness::new();
    trail(&h).await;
    h.clock.advance(10);
    h.ca.refresh_checkpoint().unwrap();
    let cp = h.ca.audit_checkpoint().expect("a checkpoint");
    let s = h.ca.audit_chain_status().unwrap();
    assert!(s.intact, "{s:?}");
    assert_eq!(cp.seq, s.verified);
    // A re-chained rewrite passes the chain but not the checkpoint: recompute the chain
    // from record 1 with an edited actor.
    let c = rusqlite::Connection::open(h.path().join("jit.db")).unwrap();
    c.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
        .unwrap();
    let rows: Vec<(u64, u64, String, String, String)> = c
        .prepare("SELECT seq, time, actor, event, details FROM audit ORDER BY seq")
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut prev = jit_ca::audit::GENESIS.to_string();
    for (seq, time, actor, event, details) in rows {
        let actor = if seq == 1 {
            "mallory".to_string()
        } else {
            actor
        };
        let hash = jit_ca::audit::hash(&prev, seq, time, &actor, &event, &details);
        c.execute(
            "UPDATE audit SET actor = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
            rusqlite::params![actor, prev, hash, seq],
        )
        .unwrap();
        prev = hash;
    }
    // A fresh view (a restarted service would verify from record 1): the chain verifies,
    // the checkpoint does not.
    h.clock.advance(FULL_REVERIFY_SECS);
    let s = h.ca.audit_chain_status().unwrap();
    assert!(!s.intact, "{s:?}");
    assert_eq!(s.bad_record, Some(cp.seq));
    assert!(s.problem.unwrap().contains("signed checkpoint"));
}

//! The StoreOps conformance suite: the same cases on SQLite and on PostgreSQL. Each case
//! asserts literal results (except serial numbers, which are dense on SQLite and handed out
//! in blocks on PostgreSQL: there the properties are asserted), so both backends must answer
//! alike. The PostgreSQL runs live in module `pg` (`#[ignore]`d: they need
//! `JIT_TEST_POSTGRES`, tests/pg-tests.sh; they fail, never skip, without it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Mutex;

use serde_json::json;
use ssh_key::PublicKey;
use ssh_key::public::{Ed25519PublicKey, KeyData};

use super::PgStore;
use crate::audit::{self, event};
use crate::error::{CaError, Result};
use crate::notify::event::{Event, Kind};
use crate::notify::filter::Filter;
use crate::store::sqlite::Store;
use crate::store::{
    CertKey, CertRow, DeliveryState, KeyPurpose, ListQuery, Outcome, RequestRow, StoreOps,
    WebLoginRow, WebSessionRow, views,
};
use jit_api::wire::RequestState;

/// One backend under test.
enum Db {
    Sqlite(Mutex<Store>),
    Pg(PgStore),
}

impl Db {
    fn sqlite() -> Self {
        Self::Sqlite(Mutex::new(Store::open_in_memory().unwrap()))
    }

    fn pg() -> Self {
        Self::Pg(super::testdb::store().0)
    }

    /// One write transaction: committed when `f` succeeds, rolled back when it fails.
    fn tx<R>(&self, f: impl FnOnce(&dyn StoreOps) -> Result<R>) -> Result<R> {
        match self {
            Self::Sqlite(s) => {
                let mut s = s.lock().unwrap();
                let tx = s.tx()?;
                let r = f(&*tx)?;
                tx.commit()?;
                Ok(r)
            }
            Self::Pg(p) => p.transact(f),
        }
    }

    /// `tx` that must succeed.
    fn w<R>(&self, f: impl FnOnce(&dyn StoreOps) -> Result<R>) -> R {
        self.tx(f).unwrap()
    }

    /// A read snapshot.
    fn r<R>(&self, f: impl FnOnce(&dyn StoreOps) -> Result<R>) -> R {
        match self {
            Self::Sqlite(s) => f(s.lock().unwrap().conn()).unwrap(),
            Self::Pg(p) => p.read(f).unwrap().unwrap(),
        }
    }
}

fn key(n: u8) -> PublicKey {
    PublicKey::from(KeyData::from(Ed25519PublicKey([n; 32])))
}

fn key_line(n: u8) -> String {
    jit_api::auth::key_header(&key(n)).unwrap()
}

fn request(id: &str, user: &str, created_at: u64) -> RequestRow {
    RequestRow {
        id: id.into(),
        user: user.into(),
        role: "db".into(),
        reason: "r".into(),
        duration_secs: 60,
        hosts: vec!["db-*".into()],
        principals: vec![user.into()],
        sudo: true,
        public_key: key(3),
        created_at,
        pending_expires_at: created_at + 600,
        approvals_required: 1,
        state: RequestState::Pending,
        denied_by: None,
        denial_reason: None,
        approved_at: None,
        revoked_at: None,
        revoked_by: None,
        approval_basis: None,
        approved_until: None,
        ticket: None,
        not_before: None,
        revocation_reason: None,
        cancelled_at: None,
        cancel_reason: None,
        denied_at: None,
        session_bound: false,
    }
}

fn cert(serial: u64, request_id: &str, valid_before: u64) -> CertRow {
    CertRow {
        serial,
        request_id: request_id.into(),
        user: "alice".into(),
        grant_id: Some(format!("{request_id}.{serial}")),
        valid_after: 1,
        valid_before,
        issued_at: 1,
        certificate: format!("cert-{serial}"),
        grant_doc: Some("doc".into()),
        grant_hosts: vec!["db-*".into()],
        revoked: false,
    }
}

fn ids(v: &[RequestRow]) -> Vec<&str> {
    v.iter().map(|r| r.id.as_str()).collect()
}

// ---- the cases ----

fn users_keys_and_contacts(db: &Db) {
    db.w(|c| {
        c.add_user("alice", &["dev".into()], &[key_line(1)], 1)?;
        c.add_user("Bob", &[], &[], 2)
    });
    // Taken name, taken key: errors naming the problem; nothing half-done.
    let e = db.tx(|c| c.add_user("alice", &[], &[], 3)).unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    let e = db
        .tx(|c| c.add_user("carol", &[], &[key_line(1)], 3))
        .unwrap_err();
    assert!(e.to_string().contains("already registered"), "{e}");
    assert!(!db.r(|c| c.user_exists("carol")));
    db.w(|c| c.add_user_key("alice", &key_line(2), KeyPurpose::Approval));
    let e = db
        .tx(|c| c.add_user_key("Bob", &key_line(2), KeyPurpose::Login))
        .unwrap_err();
    assert!(e.to_string().contains("approval key"), "{e}");
    let e = db
        .tx(|c| c.add_user_key("nobody", &key_line(9), KeyPurpose::Login))
        .unwrap_err();
    assert!(e.to_string().contains("no user"), "{e}");
    assert_eq!(
        db.r(|c| c.user_by_key(&key_line(2))),
        Some(("alice".into(), vec!["dev".into()], KeyPurpose::Approval))
    );
    assert_eq!(db.r(|c| c.user_by_key("ssh-ed25519 nope")), None);
    assert_eq!(db.r(|c| c.user_groups("alice")), Some(vec!["dev".into()]));
    assert_eq!(db.r(|c| c.user_groups("zed")), None);
    assert!(db.w(|c| c.set_contact("alice", Some("@alice"))));
    assert!(!db.w(|c| c.set_contact("zed", Some("@z"))));
    let users = db.r(|c| c.list_users());
    // Bytewise order (SQLite's; PostgreSQL's columns are COLLATE "C"): "Bob" < "alice".
    let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["Bob", "alice"]);
    assert_eq!(users[1].keys, vec![key_line(1)]);
    assert_eq!(users[1].approval_keys, vec![key_line(2)]);
    assert_eq!(users[1].contact.as_deref(), Some("@alice"));
    assert_eq!(users[1].created_at, 1);
    assert_eq!(db.r(|c| c.user_keys("alice")).len(), 2);
    assert!(db.w(|c| c.remove_user_key("alice", &key_line(2))));
    assert!(!db.w(|c| c.remove_user_key("alice", &key_line(2))));
    assert!(db.w(|c| c.remove_user("alice")));
    assert!(!db.w(|c| c.remove_user("alice")));
    assert_eq!(db.r(|c| c.user_by_key(&key_line(1))), None);
}

fn requests_round_trip_and_lists(db: &Db) {
    let mut full = request("r-full", "alice", 10);
    full.ticket = Some("INC-1".into());
    full.not_before = Some(50);
    full.session_bound = true;
    full.approvals_required = 2;
    db.w(|c| {
        c.insert_request(&full)?;
        c.insert_request(&request("r-B", "bob", 20))?;
        c.insert_request(&request("r-a", "bob", 20))?;
        let mut other = request("r-web", "carol", 30);
        other.role = "web".into();
        c.insert_request(&other)
    });
    assert_eq!(db.r(|c| c.get_request("r-full")), Some(full.clone()));
    assert_eq!(db.r(|c| c.get_request("r-none")), None);
    // Newest first, then id bytewise ("r-B" < "r-a").
    let all = db.r(|c| c.list_requests(None, 10));
    assert_eq!(ids(&all), ["r-web", "r-B", "r-a", "r-full"]);
    assert_eq!(ids(&db.r(|c| c.list_requests(None, 2))), ["r-web", "r-B"]);
    let mut changed = full.clone();
    changed.state = RequestState::Denied;
    changed.denied_by = Some("bob".into());
    changed.denial_reason = Some("no".into());
    changed.denied_at = Some(12);
    db.w(|c| c.update_request(&changed));
    assert_eq!(db.r(|c| c.get_request("r-full")), Some(changed));
    assert_eq!(
        ids(&db.r(|c| c.list_requests(Some(RequestState::Denied), 10))),
        ["r-full"]
    );
    assert_eq!(
        ids(&db.r(|c| c.list_requests_of("bob", 10))),
        ["r-B", "r-a"]
    );
    let roles = ["web"];
    let q = ListQuery {
        user: "alice",
        roles: &roles,
        pending_at: None,
        limit: 10,
    };
    assert_eq!(ids(&db.r(|c| c.list_visible(&q))), ["r-web", "r-full"]);
    let q = ListQuery {
        pending_at: Some(25),
        ..q
    };
    assert_eq!(ids(&db.r(|c| c.list_visible(&q))), ["r-web"]);
    let q = ListQuery {
        pending_at: Some(700),
        ..q
    };
    assert!(db.r(|c| c.list_visible(&q)).is_empty(), "expired");
    assert_eq!(
        db.r(|c| c.request_ids_of("bob", &[RequestState::Pending, RequestState::Approved])),
        vec!["r-B".to_string(), "r-a".to_string()]
    );
    assert!(
        db.r(|c| c.request_ids_of("bob", &[RequestState::Denied]))
            .is_empty()
    );
    assert_eq!(
        db.r(|c| c.pending_requests_of("bob", 100)),
        vec![("r-B".into(), "db".into()), ("r-a".into(), "db".into())]
    );
    // Pending past their expiry (600 after creation).
    let mut due: Vec<String> = db
        .r(|c| c.due_for_expiry(621))
        .into_iter()
        .map(|r| r.id)
        .collect();
    due.sort();
    assert_eq!(due, ["r-B", "r-a"], "r-web (created at 30) expires at 630");
}

fn approvals_once_in_order_and_withdrawn(db: &Db) {
    db.w(|c| {
        c.insert_request(&request("r-1", "alice", 1))?;
        c.insert_request(&request("r-2", "alice", 2))
    });
    assert!(db.w(|c| c.add_approval("r-1", "zoe", 5, 0)));
    assert!(db.w(|c| c.add_approval("r-1", "bob", 5, 3)));
    assert!(!db.w(|c| c.add_approval("r-1", "zoe", 6, 0)), "once");
    assert!(db.w(|c| c.add_approval("r-2", "bob", 4, 0)));
    let a = db.r(|c| c.approvals("r-1"));
    // Same time: in the order they were made.
    let who: Vec<(&str, u64)> = a.iter().map(|v| (v.user.as_str(), v.at)).collect();
    assert_eq!(who, [("zoe", 5), ("bob", 5)]);
    let k = db.r(|c| c.approvals_with_keys("r-1"));
    assert_eq!(k.iter().map(|x| x.1).collect::<Vec<_>>(), [0, 3]);
    let of = db.r(|c| c.approvals_of(&["r-1", "r-2", "r-9"]));
    assert_eq!(of.len(), 2);
    assert_eq!(of["r-2"][0].user, "bob");
    assert!(db.r(|c| c.approvals_of(&[])).is_empty());
    let mut approved = request("r-2", "alice", 2);
    approved.state = RequestState::Approved;
    db.w(|c| c.update_request(&approved));
    assert_eq!(
        db.w(|c| c.withdraw_pending_approvals("bob")),
        vec!["r-1".to_string()]
    );
    assert_eq!(db.r(|c| c.approvals("r-1")).len(), 1);
    assert_eq!(db.r(|c| c.approvals("r-2")).len(), 1, "not pending: kept");
}

fn serials_and_certificates(db: &Db) {
    db.w(|c| {
        c.insert_request(&request("r-1", "alice", 1))?;
        c.insert_request(&request("r-2", "alice", 2))
    });
    let b1 = db.w(|c| c.reserve_serial_block(1024));
    let b2 = db.w(|c| c.reserve_serial_block(1024));
    assert!(b2 >= b1 + 1024, "blocks never overlap: {b1} {b2}");
    let s1 = db.w(|c| c.reserve_serial("r-1", "alice", 5));
    assert!(
        s1 >= b2 + 1024,
        "a single serial is above every block: {s1}"
    );
    // A reserved serial is not a certificate yet.
    assert_eq!(db.r(|c| c.latest_serial("r-1")), None);
    assert_eq!(db.r(|c| c.latest_cert("r-1")), None);
    let mut done = cert(s1, "r-1", 100);
    done.issued_at = 5;
    db.w(|c| c.complete_cert(&done));
    assert_eq!(db.r(|c| c.latest_cert("r-1")), Some(done.clone()));
    db.w(|c| {
        c.insert_cert(&cert(b1, "r-2", 50))?;
        c.insert_cert(&cert(b1 + 1, "r-2", 200))
    });
    assert_eq!(db.r(|c| c.latest_serial("r-2")), Some(b1 + 1));
    let latest = db.r(|c| c.latest_certs_of(&["r-1", "r-2", "r-3"]));
    assert_eq!(
        (latest["r-1"].serial, latest["r-2"].serial, latest.len()),
        (s1, b1 + 1, 2)
    );
    assert_eq!(db.r(|c| c.active_grant_count("alice", 60)), 2);
    assert_eq!(db.r(|c| c.active_grant_count("alice", 150)), 1);
    let active: Vec<u64> = db
        .r(|c| c.active_grants(60))
        .iter()
        .map(|c| c.serial)
        .collect();
    assert_eq!(active, [b1 + 1, s1]);
    let found = db.r(|c| c.find_cert(&CertKey::Grant(format!("r-2.{b1}"))));
    assert_eq!(found.unwrap().serial, b1);
    assert_eq!(
        db.r(|c| c.find_cert(&CertKey::Serial(s1)))
            .unwrap()
            .request_id,
        "r-1"
    );
    assert_eq!(db.r(|c| c.find_cert(&CertKey::Serial(1 << 40))), None);
    // Revocations.
    let live = db.w(|c| c.revoke_live_certs("r-2"));
    assert_eq!(
        live.iter().map(|c| c.serial).collect::<Vec<_>>(),
        [b1, b1 + 1]
    );
    assert!(db.w(|c| c.revoke_live_certs("r-2")).is_empty());
    let revoked: Vec<u64> = db
        .r(|c| c.revoked_certs(60))
        .iter()
        .map(|c| c.serial)
        .collect();
    assert_eq!(revoked, [b1 + 1]);
    let by_user = db.w(|c| c.revoke_user_certs("alice", 60));
    assert_eq!(by_user.iter().map(|c| c.serial).collect::<Vec<_>>(), [s1]);
    assert!(!by_user[0].revoked, "as it was before");
    let all = db.w(|c| c.revoke_certs("r-1"));
    assert!(all.iter().all(|c| c.revoked));
    db.w(|c| c.revoke_cert(b1));
    assert!(db.r(|c| c.find_cert(&CertKey::Serial(b1))).unwrap().revoked);
    assert!(db.r(|c| c.active_grants(0)).is_empty());
}

fn meta_nonces_and_the_audit_chain(db: &Db) {
    assert_eq!(db.r(|c| c.meta_get("k")), None);
    db.w(|c| c.meta_set("k", "1"));
    db.w(|c| c.meta_set("k", "2"));
    assert_eq!(db.r(|c| c.meta_get("k")), Some("2".into()));
    db.w(|c| {
        c.log_nonce("n1", 10)?;
        c.log_nonce("n2", 11)
    });
    assert_eq!(db.r(|c| c.recent_nonces(11)), vec![("n2".into(), 11)]);
    assert_eq!(db.w(|c| c.expire_nonces(11)), 1);
    assert_eq!(db.r(|c| c.audit_head()), None);
    let r1 = db.w(|c| c.append_audit(5, "a", event::USER_ADD, &json!({"user": "x"})));
    assert_eq!((r1.seq, r1.prev_hash.as_str()), (1, audit::GENESIS));
    // A failed transaction leaves no record, and the chain goes on from the last committed.
    let e = db
        .tx(|c| {
            c.append_audit(6, "a", event::USER_ADD, &json!({}))?;
            Err::<(), _>(CaError::Input("no".into()))
        })
        .unwrap_err();
    assert!(matches!(e, CaError::Input(_)));
    let r2 = db.w(|c| c.append_audit(7, "b", event::USER_REMOVE, &json!({"request_id": "r-1"})));
    assert_eq!((r2.seq, r2.prev_hash.as_str()), (2, r1.hash.as_str()));
    let recs = db.r(|c| c.audit_records());
    assert_eq!(recs, vec![r1.clone(), r2.clone()]);
    assert_eq!(audit::verify(recs), Ok(2));
    assert_eq!(db.r(|c| c.audit_head()), Some((2, r2.hash.clone())));
    assert_eq!(db.r(|c| c.audit_after(1, 10)), vec![r2.clone()]);
    assert_eq!(db.r(|c| c.audit_record(1)), Some(r1.clone()));
    assert_eq!(db.r(|c| c.audit_record(3)), None);
    let f = crate::store::audit::AuditFilter {
        user: Some("x".into()),
        ..Default::default()
    };
    let w = crate::store::audit::AuditWindow {
        before: 100,
        floor: 1,
        limit: 10,
    };
    assert_eq!(db.r(|c| c.audit_search(&f, &w)), vec![r1.clone()]);
    let f = crate::store::audit::AuditFilter {
        event: Some(event::USER_REMOVE.name().into()),
        since: Some(7),
        until: Some(7),
        ..Default::default()
    };
    assert_eq!(db.r(|c| c.audit_search(&f, &w)), vec![r2.clone()]);
    let a = db.r(|c| c.request_audit("r-1", 10));
    assert_eq!((a.records, a.total), (vec![r2], 1));
    assert_eq!(db.r(|c| c.request_audit("r-2", 10)).total, 0);
}

/// (seq, payload) of every due delivery of sink `a` at `now`.
fn due_of(db: &Db, now: u64) -> Vec<(u64, String)> {
    db.r(|c| c.notify_due("a", now, 64))
        .into_iter()
        .map(|d| (d.seq, d.payload))
        .collect()
}

fn outbox_and_deliveries(db: &Db) {
    db.w(|c| {
        c.add_user("alice", &[], &[], 1)?;
        c.set_contact("alice", Some("@alice"))?;
        let mut r = request("r-1", "alice", 100);
        r.ticket = Some("INC-1".into());
        c.insert_request(&r)?;
        c.insert_request(&request("r-2", "alice", 100))?;
        c.add_approval("r-1", "bob", 100, 0)?;
        c.append_audit(100, "alice", event::REQUEST, &json!({"request_id": "r-1"}))?;
        c.append_audit(100, "alice", event::REQUEST, &json!({"request_id": "r-1"}))?;
        c.append_audit(100, "alice", event::REQUEST, &json!({"request_id": "r-2"}))?;
        c.append_audit(101, "op", event::USER_ADD, &json!({"user": "carol"}))?;
        c.append_audit(
            101,
            "system",
            event::ALERT,
            &json!({"kind": "auth_failures", "summary": "s", "check": "c"}),
        )
    });
    // A request event missing its row fails the change (nothing stored).
    assert!(
        db.tx(|c| c.append_audit(102, "x", event::REQUEST, &json!({"request_id": "r-9"})))
            .is_err()
    );
    assert_eq!(db.r(|c| c.notify_backlog()), (4, Some(100)));
    let all = Filter::all();
    let alerts = Filter::parse(&["alert.*".into()]).unwrap();
    assert_eq!(
        db.w(|c| c.notify_fan_out(&[("a", &all), ("b", &alerts)], 100)),
        5
    );
    assert_eq!(db.r(|c| c.notify_backlog()), (0, None));
    let due = due_of(db, 100);
    // Seq 2 waits behind seq 1 (same request).
    assert_eq!(due.iter().map(|d| d.0).collect::<Vec<_>>(), [1, 3, 4]);
    let ev = Event::from_payload(due[0].1.as_bytes()).unwrap();
    assert_eq!(ev.kind, Kind::RequestCreated);
    let f = ev.data.request.unwrap();
    assert_eq!(f.ticket.as_deref(), Some("INC-1"));
    assert_eq!(f.contact.as_deref(), Some("@alice"));
    assert_eq!((f.approvals.count, f.approvals.by), (1, vec!["bob".into()]));
    let outcome = |seq, state, at| Outcome {
        seq,
        attempts: 1,
        expected_attempts: Some(0),
        state,
        at,
        status: Some(500),
        error: Some("status 500".into()),
    };
    db.w(|c| {
        c.notify_record(
            "a",
            &[
                outcome(1, DeliveryState::Delivered, 110),
                outcome(3, DeliveryState::Dead, 120),
                outcome(4, DeliveryState::Pending { next_at: 140 }, 130),
            ],
        )
    });
    assert_eq!(due_of(db, 130).iter().map(|d| d.0).collect::<Vec<_>>(), [2]);
    let st = db.r(|c| c.notify_status(200));
    assert_eq!(st.sinks.len(), 2);
    assert_eq!((st.sinks[0].pending, st.sinks[0].dead), (2, 1));
    assert_eq!(st.sinks[0].last_error.as_ref().unwrap().at, 130);
    assert_eq!((st.sinks[1].sink.as_str(), st.sinks[1].pending), ("b", 1));
    assert_eq!((st.dead_total, st.dead.len()), (1, 1));
    let id3 = st.dead[0].id.clone();
    assert_eq!(db.r(|c| c.notify_event_seq(&id3)), Some(3));
    let e = db
        .tx(|c| c.notify_retry("evt_nope", None, 300))
        .unwrap_err();
    assert!(matches!(e, CaError::UnknownEvent { .. }), "{e:?}");
    assert_eq!(
        db.w(|c| c.notify_retry_seq(3, &id3, None, 300)),
        vec![(id3.clone(), "a".to_string())]
    );
    assert!(db.w(|c| c.notify_retry(&id3, None, 300)).is_empty());
    // Pruning: a week on, seq 1 (delivered to a; b takes only alerts); the rest after 30
    // days (the resend of seq 3 at 300 included).
    assert_eq!(db.w(|c| c.notify_prune(100 + 7 * 24 * 3600 + 1)), 1);
    assert_eq!(db.w(|c| c.notify_prune(300 + 30 * 24 * 3600 + 1)), 3);
}

fn web_logins_and_sessions(db: &Db) {
    let login = |hash: &str, expires_at: u64| WebLoginRow {
        token_hash: hash.into(),
        user: "alice".into(),
        key_fingerprint: "SHA256:k".into(),
        key_flags: 2,
        created_at: expires_at - 60,
        expires_at,
        used_at: None,
        audit_seq: Some(7),
    };
    let session = |id: &str, key: &str, created: u64| WebSessionRow {
        id: id.into(),
        secret_hash: format!("h-{id}"),
        user: "alice".into(),
        key_fingerprint: key.into(),
        key_flags: 0,
        created_at: created,
        last_seen: created,
        expires_at: created + 3600,
        idle_secs: 900,
        ended_at: None,
        ended_by: None,
    };
    db.w(|c| {
        c.web_login_insert(&login("a", 1060))?;
        c.web_login_insert(&login("b", 1060))
    });
    assert_eq!(db.r(|c| c.web_login_get("a")), Some(login("a", 1060)));
    assert_eq!(db.w(|c| c.web_login_consume("b", 1060)), None, "at expiry");
    assert_eq!(
        db.w(|c| c.web_login_consume("a", 1059)).unwrap().used_at,
        Some(1059)
    );
    assert_eq!(db.w(|c| c.web_login_consume("a", 1059)), None, "once");
    assert_eq!(db.r(|c| c.web_logins_outstanding("alice", 1000)), 1);
    assert_eq!(
        db.w(|c| c.web_logins_withdraw("alice", Some("SHA256:k"), 1001)),
        1
    );
    assert_eq!(db.r(|c| c.web_logins_outstanding("alice", 1001)), 0);
    db.w(|c| {
        c.web_session_insert(&session("ws-1", "SHA256:a", 1000))?;
        c.web_session_insert(&session("ws-2", "SHA256:b", 1001))?;
        c.web_session_insert(&session("ws-3", "SHA256:a", 1002))
    });
    assert_eq!(
        db.r(|c| c.web_session_by_secret("h-ws-2")).unwrap().id,
        "ws-2"
    );
    db.w(|c| c.web_session_touch("ws-2", 1500));
    db.w(|c| c.web_session_touch("ws-2", 1400));
    assert_eq!(
        db.r(|c| c.web_session_by_id("ws-2")).unwrap().last_seen,
        1500
    );
    assert_eq!(
        db.w(|c| c.web_sessions_end("alice", Some("SHA256:a"), None, 1903, "bob")),
        vec!["ws-1".to_string(), "ws-3".to_string()]
    );
    assert_eq!(
        db.w(|c| c.web_sessions_end("alice", None, Some("ws-2"), 1904, "alice")),
        vec!["ws-2".to_string()]
    );
    assert_eq!(db.w(|c| c.web_prune(1000)), 0);
    assert_eq!(db.w(|c| c.web_prune(5000)), 5);
    db.w(|c| c.add_user("alice", &[], &[key_line(4)], 1));
    let fp = key(4).fingerprint(ssh_key::HashAlg::Sha256).to_string();
    assert!(db.r(|c| c.web_key_registered("alice", &fp)));
    assert!(!db.r(|c| c.web_key_registered("alice", "SHA256:nope")));
}

fn elevations_and_the_access_page(db: &Db) {
    let approve = |c: &dyn StoreOps, id: &str, user: &str, role: &str, host: &str| {
        let mut r = request(id, user, 1);
        r.state = RequestState::Approved;
        r.role = role.into();
        r.hosts = vec![host.into()];
        c.insert_request(&r)
    };
    db.w(|c| {
        approve(c, "r-1", "alice", "db", "db-*")?;
        c.insert_cert(&cert(1, "r-1", 100))?;
        approve(c, "r-2", "bob", "web", "web-1")?;
        c.insert_cert(&cert(2, "r-2", 50))?;
        c.insert_cert(&cert(3, "r-2", 200))?;
        approve(c, "r-3", "carol", "db", "db-9")?;
        c.insert_cert(&cert(4, "r-3", 100))?;
        c.revoke_cert(4)
    });
    let el = db.r(|c| c.active_elevations(10));
    let got: Vec<(&str, u64)> = el
        .iter()
        .map(|e| (e.request_id.as_str(), e.serial))
        .collect();
    assert_eq!(got, [("r-1", 1), ("r-2", 3)]);
    let q = views::AccessQuery {
        now: 10,
        see_all: false,
        me: "bob".into(),
        approves: vec!["db".into()],
        limit: 10,
        ..Default::default()
    };
    let page = db.r(|c| c.access_page(&q));
    assert_eq!((page.rows.len(), page.total), (2, 2));
    let host = views::AccessQuery {
        host: Some("db-7".into()),
        ..q.clone()
    };
    let page = db.r(|c| c.access_page(&host));
    assert_eq!((page.rows[0].request_id.as_str(), page.total), ("r-1", 1));
    let paged = views::AccessQuery {
        limit: 1,
        offset: 1,
        ..q.clone()
    };
    let page = db.r(|c| c.access_page(&paged));
    assert_eq!((page.rows[0].request_id.as_str(), page.total), ("r-2", 2));
    let stranger = views::AccessQuery {
        me: "zed".into(),
        approves: vec![],
        ..q
    };
    assert_eq!(db.r(|c| c.access_page(&stranger)).total, 0);
}

fn expiry_and_reminders(db: &Db) {
    db.w(|c| {
        c.insert_request(&request("r-p", "alice", 0))?; // pending, expires at 600
        let mut a = request("r-a", "alice", 0);
        a.state = RequestState::Approved;
        c.insert_request(&a)?;
        let mut cert = cert(1, "r-a", 1000);
        cert.issued_at = 10;
        c.insert_cert(&cert)
    });
    assert!(db.r(|c| c.due_for_expiry(599)).is_empty());
    assert_eq!(ids(&db.r(|c| c.due_for_expiry(600))), ["r-p"]);
    let mut both: Vec<String> = db
        .r(|c| c.due_for_expiry(1000))
        .into_iter()
        .map(|r| r.id)
        .collect();
    both.sort();
    assert_eq!(both, ["r-a", "r-p"]);
    assert!(db.r(|c| c.due_for_reminder(800, 100)).is_empty());
    assert_eq!(
        db.r(|c| c.due_for_reminder(900, 100)),
        vec![("r-a".into(), 1000)]
    );
    db.w(|c| c.set_reminded("r-a", 1000));
    assert!(db.r(|c| c.due_for_reminder(950, 100)).is_empty(), "once");
}

/// The sweep's batches (migration 9): `window_end` kept by the triggers on certs, the due
/// ids by index, pending ones first, each by the time it became due, at most `limit`.
fn due_ids_in_batches_by_window_end(db: &Db) {
    db.w(|c| {
        for (k, end) in [(0u64, 1500u64), (1, 900), (2, 1200), (3, 5000)] {
            let id = format!("r-a{k}");
            let mut a = request(&id, "alice", 0);
            a.state = RequestState::Approved;
            c.insert_request(&a)?;
            c.insert_cert(&cert(10 + k, &id, end))?;
        }
        // An extension: a later certificate moves the window's end.
        c.insert_cert(&cert(20, "r-a1", 1300))?;
        let mut a = request("r-a9", "alice", 0);
        a.state = RequestState::Approved;
        c.insert_request(&a)?;
        c.insert_cert(&cert(21, "r-a9", 1100))?;
        // Approved without a certificate: its window is over.
        let mut a = request("r-none", "alice", 0);
        a.state = RequestState::Approved;
        c.insert_request(&a)?;
        c.insert_request(&request("r-p2", "alice", 2))?; // pending, expires at 602
        c.insert_request(&request("r-p1", "alice", 1))
    });
    let ids =
        |now, limit| -> Vec<(String, RequestState)> { db.r(|c| c.due_ids_for_expiry(now, limit)) };
    let names = |v: Vec<(String, RequestState)>| -> Vec<String> {
        v.into_iter().map(|(id, _)| id).collect()
    };
    assert_eq!(names(ids(100, 10)), ["r-none"]);
    let all = ids(2000, 10);
    assert_eq!(
        names(all.clone()),
        ["r-p1", "r-p2", "r-none", "r-a9", "r-a2", "r-a1", "r-a0"]
    );
    assert_eq!(all[0].1, RequestState::Pending);
    assert_eq!(all[2].1, RequestState::Approved);
    assert_eq!(names(ids(2000, 3)), ["r-p1", "r-p2", "r-none"]);
    assert!(ids(2000, 0).is_empty());
    assert_eq!(
        names(ids(1299, 10)),
        ["r-p1", "r-p2", "r-none", "r-a9", "r-a2"]
    );
    // The old query agrees.
    let mut old: Vec<String> = db
        .r(|c| c.due_for_expiry(1299))
        .into_iter()
        .map(|r| r.id)
        .collect();
    old.sort();
    assert_eq!(old, ["r-a2", "r-a9", "r-none", "r-p1", "r-p2"]);
    // Expired once, from the state it was found in.
    assert!(!db.w(|c| c.expire_request("r-a2", RequestState::Pending)));
    assert!(db.w(|c| c.expire_request("r-a2", RequestState::Approved)));
    assert!(!db.w(|c| c.expire_request("r-a2", RequestState::Approved)));
    assert_eq!(
        db.r(|c| c.get_request("r-a2")).unwrap().state,
        RequestState::Expired
    );
    assert_eq!(names(ids(1299, 10)), ["r-p1", "r-p2", "r-none", "r-a9"]);
    // Reminders: bounded too.
    assert!(db.r(|c| c.due_reminders(4500, 1000, 0)).is_empty());
}

fn an_unknown_state_is_an_error_never_pending(db: &Db) {
    // A request row is only ever written by insert_request; update_request with every
    // state round-trips its spelling.
    db.w(|c| c.insert_request(&request("r-1", "alice", 1)));
    for s in RequestState::ALL {
        let mut r = request("r-1", "alice", 1);
        r.state = s;
        db.w(|c| c.update_request(&r));
        assert_eq!(db.r(|c| c.get_request("r-1")).unwrap().state, s);
    }
}

/// The outbox rows of a few changes: (seq, id, type, request, payload) as `notify_due` and
/// `notify_status` give them.
fn outbox_of(db: &Db) -> Vec<(u64, String, String, Option<String>, String)> {
    db.w(|c| {
        c.add_user("alice", &["dev".into()], &[key_line(1)], 1)?;
        c.set_contact("alice", Some("@alice"))?;
        let mut r = request("r-1", "alice", 100);
        r.ticket = Some("INC-7".into());
        r.reason = "fix \"quotes\", ünïcode and <html>".into();
        c.insert_request(&r)?;
        c.append_audit(100, "alice", event::REQUEST, &json!({"request_id": "r-1"}))?;
        c.add_approval("r-1", "bob", 101, 0)?;
        c.add_approval("r-1", "carol", 101, 0)?;
        r.state = RequestState::Approved;
        r.approved_at = Some(102);
        c.update_request(&r)?;
        let mut cert = cert(1 << 20, "r-1", 700);
        cert.valid_after = 102;
        c.insert_cert(&cert)?;
        c.append_audit(102, "carol", event::APPROVAL, &json!({"request_id": "r-1"}))?;
        c.append_audit(
            103,
            "system",
            event::ALERT,
            &json!({"kind": "auth_failures", "summary": "s", "check": "c", "users": ["x"]}),
        )?;
        c.append_audit(
            104,
            "op",
            event::USER_REMOVE,
            &json!({"user": "alice", "revoked": ["r-1"]}),
        )
    });
    db.w(|c| c.notify_fan_out(&[("a", &Filter::all())], 200));
    // Each delivered in turn (a request's later events wait for its earlier ones).
    let mut all = Vec::new();
    loop {
        let due = db.r(|c| c.notify_due("a", 200, 64));
        if due.is_empty() {
            return all;
        }
        let done: Vec<Outcome> = due
            .iter()
            .map(|d| Outcome {
                seq: d.seq,
                attempts: 1,
                expected_attempts: Some(d.attempts),
                state: DeliveryState::Delivered,
                at: 200,
                status: Some(200),
                error: None,
            })
            .collect();
        db.w(|c| c.notify_record("a", &done));
        all.extend(
            due.into_iter()
                .map(|d| (d.seq, d.id, d.kind, d.request_id, d.payload)),
        );
    }
}

/// The same changes make byte-identical outbox rows (the payloads are signed and sent) on
/// SQLite and on the backend under test.
fn the_same_changes_make_the_same_notifications(db: &Db) {
    let here = outbox_of(db);
    assert_eq!(here.len(), 4, "{here:?}");
    assert_eq!(here, outbox_of(&Db::sqlite()));
}

/// Two notify leaders in a hand-over (the old one lost its lock mid-tick) read the same due
/// delivery and both attempt it: only the first record counts (the second finds the attempts
/// it read changed), so only one of them appends `notify_dead`.
fn a_delivery_outcome_is_recorded_once(db: &Db) {
    db.w(|c| {
        c.append_audit(
            100,
            "system",
            event::ALERT,
            &json!({"kind": "auth_failures", "summary": "s", "check": "c"}),
        )
    });
    db.w(|c| c.notify_fan_out(&[("a", &Filter::all())], 100));
    let read_by_old = db.r(|c| c.notify_due("a", 100, 64));
    let read_by_new = db.r(|c| c.notify_due("a", 100, 64));
    assert_eq!(read_by_old.len(), 1, "{read_by_old:?}");
    let outcome = |d: &crate::store::Due, state, at| Outcome {
        seq: d.seq,
        attempts: d.attempts + 1,
        expected_attempts: Some(d.attempts),
        state,
        at,
        status: Some(500),
        error: Some("status 500".into()),
    };
    // A failed attempt each: the first is recorded, the second is not.
    let pending = DeliveryState::Pending { next_at: 110 };
    assert_eq!(
        db.w(|c| c.notify_record("a", &[outcome(&read_by_old[0], pending, 101)])),
        [true]
    );
    assert_eq!(
        db.w(|c| c.notify_record("a", &[outcome(&read_by_new[0], pending, 102)])),
        [false]
    );
    let again = db.r(|c| c.notify_due("a", 110, 64));
    assert_eq!(again[0].attempts, 1, "one attempt counted");
    // Both give it up: one dead letter recorded.
    let a = db.w(|c| c.notify_record("a", &[outcome(&again[0], DeliveryState::Dead, 111)]));
    let b = db.w(|c| c.notify_record("a", &[outcome(&again[0], DeliveryState::Dead, 112)]));
    assert_eq!((a, b), (vec![true], vec![false]));
    let st = db.r(|c| c.notify_status(200));
    assert_eq!((st.dead_total, st.dead.len()), (1, 1));
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&super::Db::sqlite());
                }
            )*
        }
        mod pg {
            $(
                #[test]
                #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
                fn $name() {
                    super::$name(&super::Db::pg());
                }
            )*
        }
    };
}

cases!(
    users_keys_and_contacts,
    requests_round_trip_and_lists,
    approvals_once_in_order_and_withdrawn,
    serials_and_certificates,
    meta_nonces_and_the_audit_chain,
    outbox_and_deliveries,
    web_logins_and_sessions,
    elevations_and_the_access_page,
    expiry_and_reminders,
    due_ids_in_batches_by_window_end,
    an_unknown_state_is_an_error_never_pending,
    the_same_changes_make_the_same_notifications,
    a_delivery_outcome_is_recorded_once,
);

//! Tests of the SQLite backend.

use super::*;
use crate::audit;
use ssh_key::PublicKey;
use ssh_key::public::{Ed25519PublicKey, KeyData};

#[test]
fn migrates_and_chains() {
    let mut s = Store::open_in_memory().unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
    let tx = s.tx().unwrap();
    add_user(
        &tx,
        "alice",
        &["dev".into()],
        &["ssh-ed25519 AAAA".into()],
        1,
    )
    .unwrap();
    assert!(add_user(&tx, "alice", &[], &[], 1).is_err());
    assert!(add_user(&tx, "bob", &[], &["ssh-ed25519 AAAA".into()], 1).is_err());
    append_audit(
        &tx,
        5,
        "a",
        crate::audit::event::USER_ADD,
        &serde_json::json!({}),
    )
    .unwrap();
    append_audit(
        &tx,
        6,
        "a",
        crate::audit::event::USER_REMOVE,
        &serde_json::json!({"k": 1}),
    )
    .unwrap();
    tx.commit().unwrap();
    assert_eq!(audit::verify(audit_records(s.conn()).unwrap()), Ok(2));
    assert!(
        s.conn().execute("DELETE FROM audit", []).is_err(),
        "trigger refuses deletes"
    );
    log_nonce(s.conn(), "n1", 10).unwrap();
    log_nonce(s.conn(), "n2", 11).unwrap();
    assert_eq!(
        recent_nonces(s.conn(), 11).unwrap(),
        vec![("n2".to_string(), 11)]
    );
    assert_eq!(expire_nonces(s.conn(), 11).unwrap(), 1);
}

#[test]
fn a_version_1_database_keeps_its_nonces_through_migration_2() {
    let c = Connection::open_in_memory().unwrap();
    c.execute_batch(MIGRATIONS[0]).unwrap();
    c.pragma_update(None, "user_version", 1).unwrap();
    c.execute(
        "INSERT INTO nonces (nonce, seen_at) VALUES ('aa', 100), ('bb', 200)",
        [],
    )
    .unwrap();
    let s = Store::init(c).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
    let mut got = recent_nonces(s.conn(), 0).unwrap();
    got.sort();
    assert_eq!(got, vec![("aa".into(), 100), ("bb".into(), 200)]);
}

pub(super) fn request(id: &str, user: &str, created_at: u64) -> RequestRow {
    RequestRow {
        id: id.into(),
        user: user.into(),
        role: "db".into(),
        reason: "r".into(),
        duration_secs: 60,
        hosts: vec!["db-*".into()],
        principals: vec![user.into()],
        sudo: true,
        public_key: PublicKey::from(KeyData::from(Ed25519PublicKey([3; 32]))),
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

#[test]
fn a_version_4_request_survives_migration_5_unbound_and_the_flag_round_trips() {
    let c = Connection::open_in_memory().unwrap();
    for m in &MIGRATIONS[..4] {
        c.execute_batch(m).unwrap();
    }
    c.pragma_update(None, "user_version", 4).unwrap();
    let key = jit_api::auth::key_header(&request("r-old", "alice", 10).public_key).unwrap();
    c.execute(
        "INSERT INTO requests (id, user, role, reason, duration_secs, hosts, principals, sudo, \
         public_key, created_at, pending_expires_at, approvals_required, state) \
         VALUES ('r-old', 'alice', 'db', 'r', 60, '[\"db-*\"]', '[\"alice\"]', 1, ?1, 10, 610, 1, 'pending')",
        [key],
    )
    .unwrap();
    let s = Store::init(c).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
    let c = s.conn();
    let old = c.get_request("r-old").unwrap().unwrap();
    assert!(
        !old.session_bound,
        "requests made before migration 5 are not bound"
    );
    assert_eq!(old.hosts, vec!["db-*".to_string()]);
    // Stored on insert, and written by update (issuance binds a request).
    let mut bound = request("r-new", "alice", 20);
    bound.session_bound = true;
    c.insert_request(&bound).unwrap();
    assert!(c.get_request("r-new").unwrap().unwrap().session_bound);
    let mut old = old;
    old.session_bound = true;
    c.update_request(&old).unwrap();
    assert!(c.get_request("r-old").unwrap().unwrap().session_bound);
    // Any other stored value is an error naming the row, never a default.
    c.execute(
        "UPDATE requests SET session_bound = 7 WHERE id = 'r-new'",
        [],
    )
    .unwrap();
    let err = c.get_request("r-new").unwrap_err();
    assert!(
        matches!(
            &err,
            CaError::BadStoredValue {
                what: "request session_bound",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("r-new"), "{err}");
}

pub(super) fn cert(serial: u64, request_id: &str, valid_before: u64) -> CertRow {
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

#[test]
fn the_state_has_one_spelling_everywhere() {
    for s in RequestState::ALL {
        let wire = serde_json::to_string(&s).unwrap();
        assert_eq!(
            wire,
            format!("\"{}\"", s.as_str()),
            "serde and as_str agree"
        );
        assert_eq!(s.as_str().parse::<RequestState>(), Ok(s));
        assert_eq!(s.to_string(), s.as_str());
    }
    assert!("Pending".parse::<RequestState>().is_err());
    assert!("".parse::<RequestState>().is_err());
}

#[test]
fn an_unknown_state_in_the_database_is_an_error_never_pending() {
    let s = Store::open_in_memory().unwrap();
    let c = s.conn();
    c.insert_request(&request("r-1", "alice", 10)).unwrap();
    let row = c.get_request("r-1").unwrap().unwrap();
    assert_eq!(row.state, RequestState::Pending);
    assert_eq!(row.public_key, request("r-1", "alice", 10).public_key);
    c.execute("UPDATE requests SET state = 'on-hold' WHERE id = 'r-1'", [])
        .unwrap();
    let err = c.get_request("r-1").unwrap_err();
    assert!(
        matches!(&err, CaError::UnknownRequestState { request, source }
            if request == "r-1" && source.0 == "on-hold"),
        "{err:?}"
    );
    assert!(err.to_string().contains("on-hold"), "{err}");
    assert!(matches!(
        c.list_requests(None, 10),
        Err(CaError::UnknownRequestState { .. })
    ));
    assert!(matches!(
        c.list_requests_of("alice", 10),
        Err(CaError::UnknownRequestState { .. })
    ));
    // A key that does not parse is an error too.
    c.execute(
        "UPDATE requests SET state = 'pending', public_key = 'ssh-ed25519 nope' WHERE id = 'r-1'",
        [],
    )
    .unwrap();
    assert!(matches!(
        c.get_request("r-1"),
        Err(CaError::RequestKey { .. })
    ));
}

#[test]
fn a_page_loads_approvals_and_newest_certificates_in_one_query_each() {
    let s = Store::open_in_memory().unwrap();
    let c = s.conn();
    for (n, id) in ["r-a", "r-b", "r-c"].iter().enumerate() {
        c.insert_request(&request(id, "alice", n as u64)).unwrap();
    }
    c.add_approval("r-a", "bob", 5, 0).unwrap();
    c.add_approval("r-a", "carol", 6, 0).unwrap();
    c.add_approval("r-c", "dave", 7, 0).unwrap();
    c.insert_cert(&cert(10, "r-a", 100)).unwrap();
    c.insert_cert(&cert(11, "r-a", 200)).unwrap();
    c.insert_cert(&cert(12, "r-c", 300)).unwrap();
    let ids = ["r-a", "r-b", "r-c", "r-missing"];
    let approvals = c.approvals_of(&ids).unwrap();
    let users = |id: &str| -> Vec<String> {
        approvals
            .get(id)
            .map(|v| v.iter().map(|a| a.user.clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(users("r-a"), vec!["bob", "carol"]);
    assert!(users("r-b").is_empty());
    assert_eq!(users("r-c"), vec!["dave"]);
    for id in ids {
        assert_eq!(
            approvals.get(id).cloned().unwrap_or_default(),
            c.approvals(id).unwrap()
        );
    }
    let certs = c.latest_certs_of(&ids).unwrap();
    assert_eq!(certs.len(), 2);
    assert_eq!(certs["r-a"].serial, 11, "the newest certificate");
    assert_eq!(certs["r-c"].serial, 12);
    for id in ids {
        assert_eq!(certs.get(id).cloned(), c.latest_cert(id).unwrap());
    }
    assert!(c.approvals_of(&[]).unwrap().is_empty());
    assert!(c.latest_certs_of(&[]).unwrap().is_empty());
}

/// Request states reach SQL only as bound `RequestState::as_str()` values, never as
/// literals that could drift from the enum.
#[test]
fn no_request_state_literal_in_the_queries() {
    for (file, text) in [
        ("requests.rs", include_str!("requests.rs")),
        ("certs.rs", include_str!("certs.rs")),
        ("users.rs", include_str!("users.rs")),
        ("log.rs", include_str!("log.rs")),
        ("views.rs", include_str!("views.rs")),
        ("mod.rs", include_str!("mod.rs")),
    ] {
        for s in RequestState::ALL {
            let literal = format!("'{}'", s.as_str());
            assert!(!text.contains(&literal), "{file} has {literal}");
        }
    }
}

#[test]
fn approval_key_flags_that_do_not_fit_are_an_error_naming_the_request() {
    let s = Store::open_in_memory().unwrap();
    s.conn().execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    s.conn()
        .execute(
            "INSERT INTO approvals (request_id, user, at, key_flags) VALUES ('r-flags', 'bob', 1, -1)",
            [],
        )
        .unwrap();
    let e = approvals_with_keys(s.conn(), "r-flags").unwrap_err();
    assert!(
        matches!(e, CaError::BadStoredValue { .. }) && e.to_string().contains("r-flags"),
        "{e}"
    );
}

#[test]
fn stored_counters_that_do_not_parse_are_errors_not_zero() {
    let s = Store::open_in_memory().unwrap();
    let c: &dyn StoreOps = s.conn();
    assert_eq!(
        crate::store::meta_counter(c, "revocation_sequence").unwrap(),
        0
    );
    c.meta_set("revocation_sequence", "7").unwrap();
    assert_eq!(
        crate::store::meta_counter(c, "revocation_sequence").unwrap(),
        7
    );
    c.meta_set("revocation_sequence", "seven").unwrap();
    let e = crate::store::meta_counter(c, "revocation_sequence").unwrap_err();
    assert!(e.to_string().contains("revocation_sequence"), "{e}");
}

/// Migration 4: the ticket is stored with the request and read back; rows without one
/// (every request before the migration) read as None.
#[test]
fn the_ticket_is_stored_with_the_request() {
    let s = Store::open_in_memory().unwrap();
    let c = s.conn();
    let mut r = request("r-1", "alice", 10);
    r.ticket = Some("INC-42".into());
    c.insert_request(&r).unwrap();
    c.insert_request(&request("r-2", "alice", 11)).unwrap();
    assert_eq!(
        c.get_request("r-1").unwrap().unwrap().ticket.as_deref(),
        Some("INC-42")
    );
    assert_eq!(c.get_request("r-2").unwrap().unwrap().ticket, None);
    // The update of a request's mutable fields leaves the ticket as it was.
    let mut row = c.get_request("r-1").unwrap().unwrap();
    row.state = RequestState::Cancelled;
    c.update_request(&row).unwrap();
    assert_eq!(c.get_request("r-1").unwrap().unwrap(), row);
}

/// Issue 18: the per-user active-grant count (on the writer, every issuance) reads only
/// the covering index `certs_user`, with no temporary b-tree (the former
/// `COUNT(DISTINCT request_id)` built one per call over the user's whole active range).
#[test]
fn active_grant_count_is_an_index_range_without_a_temp_btree() {
    let s = Store::open_in_memory().unwrap();
    let plan: Vec<String> = s
        .conn()
        .prepare(&format!(
            "EXPLAIN QUERY PLAN {}",
            certs::ACTIVE_GRANT_COUNT_SQL
        ))
        .unwrap()
        .query_map(rusqlite::params!["alice", 5], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let plan = plan.join("\n");
    assert!(plan.contains("COVERING INDEX certs_user"), "{plan}");
    assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    assert_eq!(active_grant_count(s.conn(), "alice", 5).unwrap(), 0);
}

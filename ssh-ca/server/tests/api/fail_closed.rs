//! Stored values never silently become defaults (fail closed): a key purpose, a JSON list,
//! an approval count or the operator revocations that do not parse are errors, and the
//! operator's emergency tools (`user remove`, `revoke-grant`) still revoke what a damaged
//! request row would otherwise hide.

use jit_test_kit::harness::*;
use jit_test_kit::pg::{Sql, Val};
use jit_test_kit::sql_params;
use serde_json::Value;

/// The data directory's database (SQLite's jit.db, or PostgreSQL with JIT_TEST_POSTGRES).
fn db(h: &Harness) -> Sql {
    h.db()
}

fn sql(h: &Harness, statement: &str, arg: &str) {
    db(h).run(statement, sql_params![arg]);
}

/// An approved request of alice's and its certificate's serial.
async fn approved(h: &Harness) -> (String, u64) {
    let (s, r) = h.request("alice", "db-admin", 1800, "incident").await;
    assert_eq!(s.as_u16(), 201, "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    let (s, a) = h.approve("bob", &id).await;
    assert_eq!(s.as_u16(), 200, "{a}");
    let serial: i64 = db(h).one(
        "SELECT serial FROM certs WHERE request_id = ?1 AND certificate != ''",
        sql_params![id.as_str()],
    );
    (id, serial as u64)
}

fn cert_revoked(h: &Harness, serial: u64) -> bool {
    db(h).one::<i64>(
        "SELECT revoked FROM certs WHERE serial = ?1",
        sql_params![serial],
    ) != 0
}

#[tokio::test]
async fn a_key_with_an_unknown_purpose_does_not_authenticate() {
    let h = Harness::new();
    let got = h
        .call("alice", "GET", "/v1/requests?filter=mine", Value::Null)
        .await;
    assert_eq!(got.0.as_u16(), 200, "{}", got.1);
    sql(
        &h,
        "UPDATE user_keys SET purpose = ?1 WHERE user = 'alice'",
        "superuser",
    );
    let got = h
        .call("alice", "GET", "/v1/requests?filter=mine", Value::Null)
        .await;
    assert_error(&got, 500, "internal");
}

#[tokio::test]
async fn stored_lists_and_counts_that_do_not_parse_are_errors() {
    let h = Harness::new();
    let (s, r) = h.request("alice", "db-admin", 600, "incident").await;
    assert_eq!(s.as_u16(), 201, "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    let path = format!("/v1/requests/{id}");
    for (column, bad) in [
        ("hosts", "'not json'"),
        ("principals", "'{\"a\":1}'"),
        ("approvals_required", "-1"),
        ("approvals_required", "0"),
    ] {
        // The value as stored (an integer stays one), to put back.
        let stored = db(&h)
            .opt(
                &format!("SELECT {column} FROM requests WHERE id = ?1"),
                sql_params![id.as_str()],
            )
            .unwrap();
        let good = stored
            .parse::<i64>()
            .map_or_else(|_| Val::from(stored.as_str()), Val::from);
        sql(
            &h,
            &format!("UPDATE requests SET {column} = {bad} WHERE id = ?1"),
            &id,
        );
        let got = h.call("alice", "GET", &path, Value::Null).await;
        assert_error(&got, 500, "internal");
        db(&h).run(
            &format!("UPDATE requests SET {column} = ?2 WHERE id = ?1"),
            &[Val::from(&id), good],
        );
        let got = h.call("alice", "GET", &path, Value::Null).await;
        assert_eq!(got.0.as_u16(), 200, "{column} restored: {}", got.1);
    }
    // A user's groups: the key does not authenticate (never a user in no groups).
    sql(
        &h,
        "UPDATE users SET groups = ?1 WHERE name = 'alice'",
        "[1,",
    );
    let got = h.call("alice", "GET", &path, Value::Null).await;
    assert_error(&got, 500, "internal");
}

#[tokio::test]
async fn operator_revocations_that_do_not_decode_stop_publication_and_are_kept() {
    let h = Harness::new();
    let r =
        h.ca.revoke_grant("op", "bg-0001", "lost laptop")
            .expect("a break-glass grant id");
    assert!(!r.issued_here);
    let stored = "{\"grants\": [\"bg-0001\"], \"serials\": oops}";
    sql(
        &h,
        "UPDATE meta SET v = ?1 WHERE k = 'operator_revocations'",
        stored,
    );
    // revoke-grant refuses to overwrite what it cannot read.
    let err =
        h.ca.revoke_grant("op", "bg-0002", "lost phone")
            .expect_err("must not overwrite");
    assert_eq!(err.code.as_str(), "internal", "{err}");
    // A publication (here: user remove) fails rather than drop bg-0001 from the list.
    let err =
        h.ca.remove_user("op", "eve")
            .expect_err("publication fails");
    assert_eq!(err.code.as_str(), "internal", "{err}");
    let kept = db(&h)
        .opt("SELECT v FROM meta WHERE k = 'operator_revocations'", &[])
        .unwrap();
    let eve: i64 = db(&h).one("SELECT COUNT(*) FROM users WHERE name = 'eve'", &[]);
    assert_eq!(kept, stored, "nothing was overwritten");
    assert_eq!(eve, 1, "the failed removal changed nothing");
}

#[tokio::test]
async fn user_remove_revokes_certificates_of_a_request_with_a_bad_state() {
    let h = Harness::new();
    let (id, serial) = approved(&h).await;
    sql(&h, "UPDATE requests SET state = 'bogus' WHERE id = ?1", &id);
    let removal = h.ca.remove_user("op", "alice").unwrap();
    assert_eq!(removal.serials, vec![serial], "{removal:?}");
    assert_eq!(removal.grant_ids.len(), 1, "{removal:?}");
    assert!(cert_revoked(&h, serial));
    let (_, list, _) = h.get("/v1/revocations", None).await;
    assert!(
        String::from_utf8_lossy(&list).contains(&removal.grant_ids[0]),
        "the grant is on the published revocation list"
    );
}

#[tokio::test]
async fn revoke_grant_revokes_when_the_request_row_is_damaged_and_says_so() {
    let h = Harness::new();
    let (id, serial) = approved(&h).await;
    sql(&h, "UPDATE requests SET state = 'bogus' WHERE id = ?1", &id);
    let r =
        h.ca.revoke_grant("op", &serial.to_string(), "compromised")
            .unwrap();
    assert_eq!(r.serial, Some(serial));
    assert!(r.issued_here && !r.request_revoked, "{r:?}");
    let problem = r.request_problem.clone().unwrap_or_default();
    assert!(problem.contains("bogus"), "{r:?}");
    assert!(cert_revoked(&h, serial));
    let events = h.audit_events();
    // revoke-grant's record, then its break_glass alert in the same transaction (issue 15).
    let last: Vec<&str> = events[events.len() - 2..]
        .iter()
        .map(|e| e.0.as_str())
        .collect();
    assert_eq!(last, ["grant_revocation", "alert"], "{events:?}");
}

/// `user remove` on a user whose live request rows are damaged in columns other than the
/// state: the removal goes through, the damaged request is reported by id and its
/// certificate is revoked all the same.
#[tokio::test]
async fn user_remove_goes_through_damaged_request_rows_and_names_them() {
    for (column, bad) in [
        ("hosts", "'not json'"),
        ("public_key", "'junk'"),
        ("approvals_required", "0"),
    ] {
        for approve in [true, false] {
            let h = Harness::new();
            let (id, serial) = if approve {
                let (id, serial) = approved(&h).await;
                (id, Some(serial))
            } else {
                let (s, r) = h.request("alice", "db-admin", 600, "incident").await;
                assert_eq!(s.as_u16(), 201, "{r}");
                (r["id"].as_str().unwrap().to_string(), None)
            };
            sql(
                &h,
                &format!("UPDATE requests SET {column} = {bad} WHERE id = ?1"),
                &id,
            );
            let removal =
                h.ca.remove_user("op", "alice")
                    .unwrap_or_else(|e| panic!("{column} approved={approve}: {e}"));
            assert_eq!(removal.request_problems.len(), 1, "{removal:?}");
            assert_eq!(removal.request_problems[0].request, id, "{removal:?}");
            if let Some(serial) = serial {
                assert_eq!(removal.serials, vec![serial], "{removal:?}");
                assert!(cert_revoked(&h, serial), "{column}");
            }
            let events = h.audit_events();
            let last = events.last().unwrap();
            assert_eq!(last.0, "user_remove", "{events:?}");
            let n: i64 = db(&h).one("SELECT COUNT(*) FROM users WHERE name = 'alice'", &[]);
            assert_eq!(n, 0, "alice is removed ({column}, approved={approve})");
        }
    }
}

/// A user whose stored groups are damaged can still be removed.
#[tokio::test]
async fn user_remove_works_on_a_user_with_damaged_groups() {
    let h = Harness::new();
    let (_, serial) = approved(&h).await;
    sql(
        &h,
        "UPDATE users SET groups = ?1 WHERE name = 'alice'",
        "[1,",
    );
    let removal = h.ca.remove_user("op", "alice").unwrap();
    assert_eq!(removal.serials, vec![serial], "{removal:?}");
    assert!(cert_revoked(&h, serial));
}

/// A damaged `certs.grant_hosts` (of the target certificate and of another one) does not
/// stop the operator's revocations: they read only serial, grant id, user and window. `serve`
/// (`Ca::open`) still refuses to publish host documents from it (fail closed).
#[tokio::test]
async fn revocation_does_not_read_grant_hosts() {
    let h = Harness::new();
    let (_, target) = approved(&h).await;
    let (_, other) = approved(&h).await;
    for serial in [target, other] {
        db(&h).run(
            "UPDATE certs SET grant_hosts = 'not json' WHERE serial = ?1",
            sql_params![serial],
        );
    }
    let clock = std::sync::Arc::new(jit_ca::clock::FixedClock::new(h.now()));
    assert!(
        jit_ca::service::Ca::open(&h.path(), clock).is_err(),
        "serve does not publish host documents from a damaged grant"
    );
    let r = jit_ca::admin::revoke_grant(&h.path(), &target.to_string(), "compromised", h.now())
        .unwrap_or_else(|e| panic!("revoke-grant: {e}"));
    assert_eq!(r.serial, Some(target));
    assert!(r.request_revoked, "{r:?}");
    assert!(cert_revoked(&h, target));
    let removal = jit_ca::admin::user_remove(&h.path(), "alice", h.now())
        .unwrap_or_else(|e| panic!("user remove: {e}"));
    assert!(removal.serials.contains(&other), "{removal:?}");
    assert!(cert_revoked(&h, other));
}

/// The revocation sequence and the operator-change generation that do not parse are errors,
/// never 0 (a list published again from #1, an operator change never picked up).
#[tokio::test]
async fn stored_counters_that_do_not_parse_are_errors() {
    let h = Harness::new();
    sql(
        &h,
        "INSERT INTO meta (k, v) VALUES ('external_generation', ?1) \
         ON CONFLICT (k) DO UPDATE SET v = excluded.v",
        "many",
    );
    let err = h.ca.pick_up_external_changes().expect_err("generation");
    assert!(err.to_string().contains("external_generation"), "{err}");
    sql(
        &h,
        "INSERT INTO meta (k, v) VALUES ('revocation_sequence', ?1) \
         ON CONFLICT (k) DO UPDATE SET v = excluded.v",
        "12x",
    );
    let err = h.ca.sweep().expect_err("sweep reads the sequence");
    assert!(err.to_string().contains("revocation_sequence"), "{err}");
    let err =
        h.ca.revoke_grant("op", "bg-0003", "lost laptop")
            .expect_err("a new list needs the sequence");
    assert_eq!(err.code.as_str(), "internal", "{err}");
}

/// `jit-ca user list` does not leave out a key whose purpose it does not know: an error that
/// names the user.
#[tokio::test]
async fn user_list_fails_on_an_unknown_key_purpose_and_names_the_user() {
    let h = Harness::new();
    assert!(jit_ca::admin::user_list(&h.path()).is_ok());
    sql(
        &h,
        "UPDATE user_keys SET purpose = ?1 WHERE user = 'alice'",
        "superuser",
    );
    let err = jit_ca::admin::user_list(&h.path()).expect_err("unknown purpose");
    let msg = err.to_string();
    assert!(msg.contains("alice") && msg.contains("superuser"), "{msg}");
}

/// A damaged value's error names the row to repair.
#[tokio::test]
async fn damaged_value_errors_name_the_row() {
    let h = Harness::new();
    let (id, serial) = approved(&h).await;
    sql(
        &h,
        "UPDATE requests SET hosts = 'not json' WHERE id = ?1",
        &id,
    );
    let removal = h.ca.remove_user("op", "alice").unwrap();
    let p = &removal.request_problems[0].problem;
    assert!(p.contains(&id) && p.contains("hosts"), "{p}");
    db(&h).run(
        "UPDATE certs SET grant_hosts = 'not json' WHERE serial = ?1",
        sql_params![serial],
    );
    db(&h).run(
        "UPDATE certs SET revoked = 0 WHERE serial = ?1",
        sql_params![serial],
    );
    let clock = std::sync::Arc::new(jit_ca::clock::FixedClock::new(h.now()));
    let Err(err) = jit_ca::service::Ca::open(&h.path(), clock) else {
        panic!("a damaged active grant must stop Ca::open");
    };
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("serial {serial}")) && msg.contains("grant_hosts"),
        "{msg}"
    );
    sql(&h, "UPDATE users SET groups = '[1,' WHERE name = ?1", "bob");
    let err = jit_ca::admin::user_list(&h.path()).expect_err("bob's groups");
    assert!(err.to_string().contains("\"bob\""), "{err}");
}

/// Serial 0 never reaches a KRL, so `revoke-grant 0` is refused rather than reported done.
#[tokio::test]
async fn revoke_grant_refuses_serial_zero() {
    let h = Harness::new();
    for target in ["0", "000"] {
        let err =
            h.ca.revoke_grant("op", target, "typo")
                .expect_err("serial 0 is refused");
        assert_eq!(err.code.as_str(), "invalid_input", "{err}");
        assert!(
            err.message.contains("serial 0") && !err.message.contains('\n'),
            "{err}"
        );
    }
    let err = jit_ca::admin::revoke_grant(&h.path(), "0", "typo", h.now()).expect_err("cli");
    assert!(err.to_string().contains("serial 0"), "{err}");
    let events = h.audit_events();
    assert!(
        events.iter().all(|e| e.0 != "grant_revocation"),
        "nothing was recorded: {events:?}"
    );
}

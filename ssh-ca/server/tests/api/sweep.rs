//! The expiry sweep in bounded batches (issue 18): a run of expiries larger than one batch
//! goes through the group commit in several jobs, and every due request is expired exactly
//! once, audited once, in the order it became due; what is not due is left alone.

use jit_test_kit::harness::*;

/// More than twelve batches of the sweep (`SWEEP_BATCH` = 100).
const DUE: i64 = 1_234;

#[tokio::test]
async fn a_long_run_of_expiries_goes_in_batches_each_expired_and_audited_once_in_order() {
    let h = Harness::new();
    let key = jit_api::auth::key_header(h.key("alice").public_key()).unwrap();
    let now = h.now() as i64;
    let cols = "id, user, role, reason, duration_secs, hosts, principals, sudo, public_key, \
                created_at, pending_expires_at, approvals_required, state";
    // DUE approved requests, each with one certificate; their windows end at now + 10 +
    // (k * 7919 mod 97): not in id order, so the order checked below is the sweep's own.
    h.sql(
        &format!(
            "WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < ?1) \
             INSERT INTO requests ({cols}) SELECT 'r-' || (100000 + k), 'alice', 'db-admin', 'x', \
             60, '[\"db-1\"]', '[\"alice\"]', 1, ?2, ?3, ?3 + 3600, 1, 'approved' FROM n"
        ),
        &[(DUE - 1).into(), key.clone().into(), now.into()],
    );
    h.sql(
        "WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < ?1) \
         INSERT INTO certs (serial, request_id, user, valid_after, valid_before, issued_at, certificate) \
         SELECT 1000 + k, 'r-' || (100000 + k), 'alice', ?2, ?2 + 10 + ((k * 7919) % 97), ?2, 'c' FROM n",
        &[(DUE - 1).into(), now.into()],
    );
    // Not due: a window that ends later, and a pending request within its time.
    h.sql(
        &format!(
            "INSERT INTO requests ({cols}) VALUES ('r-open', 'alice', 'db-admin', 'x', 60, \
             '[\"db-1\"]', '[\"alice\"]', 1, ?1, ?2, ?2 + 3600, 1, 'approved'), \
             ('r-wait', 'alice', 'db-admin', 'x', 60, '[\"db-1\"]', '[\"alice\"]', 1, ?1, ?2, \
             ?2 + 3600, 1, 'pending'), \
             ('r-late', 'alice', 'db-admin', 'x', 60, '[\"db-1\"]', '[\"alice\"]', 1, ?1, ?2, \
             ?2 + 50, 1, 'pending')"
        ),
        &[key.into(), now.into()],
    );
    h.sql(
        "INSERT INTO certs (serial, request_id, user, valid_after, valid_before, issued_at, certificate) \
         VALUES (9000, 'r-open', 'alice', ?1, ?1 + 7200, ?1, 'c')",
        &[now.into()],
    );

    h.clock.advance(200);
    let (_, jobs_before) = h.ca.commit_counts();
    assert_eq!(h.ca.sweep().unwrap(), DUE as usize + 1);
    let (_, jobs_after) = h.ca.commit_counts();
    assert!(
        jobs_after - jobs_before > (DUE as u64) / 100,
        "the expiries went through the group commit in several jobs: {jobs_before} -> {jobs_after}"
    );
    assert_eq!(h.ca.sweep().unwrap(), 0, "nothing is expired twice");

    // Audited once each, pending first, then by window end.
    let ends: std::collections::HashMap<String, i64> = h
        .sql("SELECT request_id, valid_before FROM certs", &[])
        .into_iter()
        .map(|r| {
            (
                r[0].clone().unwrap(),
                r[1].as_deref().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let expired: Vec<(String, String)> = jit_ca::admin::audit_export(&h.path())
        .unwrap()
        .into_iter()
        .filter(|r| r["event"] == "expiry")
        .map(|r| {
            (
                r["details"]["request_id"].as_str().unwrap().to_string(),
                r["details"]["was"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(expired.len(), DUE as usize + 1);
    assert_eq!(expired[0], ("r-late".to_string(), "pending".to_string()));
    let mut seen = std::collections::HashSet::new();
    let mut last = 0;
    for (id, was) in &expired[1..] {
        assert_eq!(was, "approved", "{id}");
        assert!(seen.insert(id.clone()), "{id} audited twice");
        let end = ends[id];
        assert!(
            end >= last,
            "{id} ends at {end}, after one that ended at {last}"
        );
        last = end;
    }
    for (id, state) in [
        ("r-open", "approved"),
        ("r-wait", "pending"),
        ("r-100000", "expired"),
    ] {
        let got = h.sql("SELECT state FROM requests WHERE id = ?1", &[id.into()]);
        assert_eq!(got[0][0].as_deref(), Some(state), "{id}");
    }
}

//! Properties of the service split by concern (issue 12, part 2), through the API:
//! * a list of several requests shows each request's own approvals and certificate (they
//!   are loaded for the whole page at once, not per row);
//! * a request state the service does not know, read from the database, is an internal
//!   error, never shown as `pending`;
//! * the host grants document's rebuild (a database read) never runs on an async worker.

use jit_test_kit::harness::*;
use serde_json::Value;

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

fn approvers(v: &Value) -> Vec<String> {
    v["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["user"].as_str().unwrap().to_string())
        .collect()
}

async fn listed(h: &Harness, user: &str, filter: &str) -> Vec<Value> {
    let (status, body) = h
        .call(
            user,
            "GET",
            &format!("/v1/requests?filter={filter}"),
            Value::Null,
        )
        .await;
    assert_eq!(status.as_u16(), 200, "{body}");
    body["requests"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_list_shows_each_requests_own_approvals_and_certificate() {
    let h = Harness::new();
    // Approved by bob: one approval, a certificate.
    let (_, approved) = h.request("alice", "db-admin", 1800, "incident 1").await;
    let approved = id(&approved);
    let (s, _) = h.approve("bob", &approved).await;
    assert_eq!(s.as_u16(), 200);
    // Two approvals needed, one given: pending with one approval, no certificate.
    let (_, half) = h.request("alice", "two-man", 1800, "incident 2").await;
    let half = id(&half);
    let (s, _) = h.approve("dave", &half).await;
    assert_eq!(s.as_u16(), 200);
    // Approved at once by an auto-approval rule.
    let (s, auto) = h.request("alice", "quick", 600, "").await;
    assert_eq!(s.as_u16(), 201, "{auto}");
    let auto = id(&auto);
    // Pending, nothing yet.
    let (_, bare) = h.request("alice", "db-admin", 600, "incident 3").await;
    let bare = id(&bare);

    let mine = listed(&h, "alice", "mine").await;
    assert_eq!(mine.len(), 4);
    let by_id = |v: &[Value], i: &str| -> Value {
        v.iter()
            .find(|r| r["id"].as_str() == Some(i))
            .unwrap_or_else(|| panic!("{i} listed"))
            .clone()
    };
    let a = by_id(&mine, &approved);
    assert_eq!(approvers(&a), vec!["bob"]);
    assert_eq!(a["state"], "approved");
    assert!(a["serial"].is_u64() && a["grant_id"].is_string(), "{a}");
    let b = by_id(&mine, &half);
    assert_eq!(approvers(&b), vec!["dave"]);
    assert_eq!(b["state"], "pending");
    assert!(b.get("serial").is_none(), "{b}");
    let c = by_id(&mine, &auto);
    assert_eq!(approvers(&c), vec!["auto:oncall"]);
    assert!(c["serial"].is_u64(), "{c}");
    assert_ne!(c["serial"], a["serial"], "each request its own certificate");
    let d = by_id(&mine, &bare);
    assert!(approvers(&d).is_empty());
    assert!(d.get("serial").is_none(), "{d}");

    // Every listed view equals the request's own view (`GET /v1/requests/{id}`), for the
    // requester and for an approver who sees the same requests in `all`.
    for (user, filter) in [("alice", "mine"), ("bob", "all")] {
        for v in listed(&h, user, filter).await {
            let (s, one) = h
                .call(
                    user,
                    "GET",
                    &format!("/v1/requests/{}", id(&v)),
                    Value::Null,
                )
                .await;
            assert_eq!(s.as_u16(), 200);
            assert_eq!(v, one, "{user} {filter}");
        }
    }
}

#[tokio::test]
async fn an_unknown_state_in_the_database_is_an_internal_error_not_pending() {
    let h = Harness::new();
    let (_, r) = h.request("alice", "db-admin", 600, "incident").await;
    let rid = id(&r);
    assert_eq!(
        h.db().exec(
            "UPDATE requests SET state = 'paused' WHERE id = ?1",
            jit_test_kit::sql_params![rid.as_str()],
        ),
        1
    );
    let got = h
        .call("alice", "GET", &format!("/v1/requests/{rid}"), Value::Null)
        .await;
    assert_error(&got, 500, "internal");
    let got = h
        .call("alice", "GET", "/v1/requests?filter=mine", Value::Null)
        .await;
    assert_error(&got, 500, "internal");
    let got = h.approve("bob", &rid).await;
    assert_error(&got, 500, "internal");
    assert!(
        !got.1.to_string().contains("pending"),
        "never shown as pending: {}",
        got.1
    );
}

/// PostgreSQL only (tests/pg-tests.sh): on SQLite the grants read stays on the worker, as it
/// always was (api/public.rs says why).
mod pg {
    use super::*;

    /// A host's grants document may be rebuilt from the database (after any issuance): on
    /// PostgreSQL (a read over the network) that read runs on the blocking pool, never on an async worker. On a single-threaded runtime, with
    /// every read connection held, a health check is answered while the grants request waits
    /// for a connection (a read on the worker would stall the runtime until the connections are
    /// released).
    #[tokio::test(flavor = "current_thread")]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    async fn a_host_grants_rebuild_does_not_block_the_async_worker() {
        assert!(
            std::env::var_os(jit_test_kit::pg::VAR).is_some(),
            "JIT_TEST_POSTGRES is not set (run tests/pg-tests.sh)"
        );
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, mpsc};
        use tower::ServiceExt as _;
        let h = Harness::new();
        let (s, r) = h.request("alice", "db-admin", 1800, "incident").await;
        assert_eq!(s, 201, "{r}");
        let (s, a) = h.approve("bob", &id(&r)).await;
        assert_eq!(s, 200, "{a}");
        // Hold every read connection until told (or 20 s, so a regression fails, not hangs).
        let (held_tx, held) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let timed_out = Arc::new(AtomicBool::new(false));
        let holder = {
            let ca = h.ca.clone();
            let timed_out = timed_out.clone();
            std::thread::spawn(move || {
                ca.hold_read_connections_for_test(|| {
                    held_tx.send(()).unwrap();
                    if released
                        .recv_timeout(std::time::Duration::from_secs(20))
                        .is_err()
                    {
                        timed_out.store(true, Ordering::SeqCst);
                    }
                });
            })
        };
        held.recv().unwrap();
        let app = h.app.clone();
        let grants = tokio::spawn(async move {
            let req = axum::http::Request::builder()
                .uri("/v1/hosts/db-1/grants")
                .body(axum::body::Body::empty())
                .unwrap();
            app.oneshot(req).await.unwrap().status()
        });
        // Let the grants request start (and wait for a read connection).
        tokio::task::yield_now().await;
        let (s, _, _) = h.get("/v1/health", None).await;
        assert_eq!(s, 200);
        assert!(
            !timed_out.load(Ordering::SeqCst),
            "the health check waited for the read connections: the grants rebuild blocked the worker"
        );
        release.send(()).unwrap();
        assert_eq!(grants.await.unwrap(), 200);
        holder.join().unwrap();
    }
}

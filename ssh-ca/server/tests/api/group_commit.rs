//! The issuance fast path and its durability: group commit, nonces kept in memory and
//! written with the change they carried, serials reserved in blocks, the certificate in the
//! answer to `POST /v1/requests`. Everything against a real data directory (SQLite on disk),
//! with restarts to see what was really committed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use axum::http::StatusCode;
use jit_api::auth;
use jit_test_kit::harness::*;
use tower::ServiceExt as _;

/// A sudo role approved at once for group dev (alice, dave), plus one that needs a person.
const FAST_POLICY: &str = r#"
[roles.fast]
hosts = ["web-*"]
sudo = true
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
require_reason = false
[[roles.fast.auto_approve_rules]]
name = "everyone-in-dev"
groups = ["dev"]
max_duration = "1h"

[roles.slow]
hosts = ["web-*"]
sudo = true
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
approvals = 1
require_reason = false
"#;

fn create_body(h: &Harness, user: &str, role: &str) -> Vec<u8> {
    let pk = h.key(user).public_key().to_openssh().unwrap();
    serde_json::to_vec(&serde_json::json!({
        "role": role, "duration_secs": 600, "reason": "", "public_key": pk
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_issuances_are_all_committed_chained_and_answered_with_their_certificate() {
    // 24 active requests per user: above the default max_active_grants_per_user.
    let mut h =
        Harness::with_policy_and_config(FAST_POLICY, &[("max_active_grants_per_user", "100")]);
    let n = 48;
    let mut tasks = Vec::new();
    for k in 0..n {
        let user = if k % 2 == 0 { "alice" } else { "dave" };
        let body = create_body(&h, user, "fast");
        let req = h.signed_request(
            h.key(user),
            "POST",
            "/v1/requests",
            &body,
            h.now(),
            &auth::new_nonce(),
        );
        let app = h.app.clone();
        tasks.push(tokio::spawn(async move {
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
            )
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        let (status, v) = t.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{v}");
        assert_eq!(v["state"], "approved", "{v}");
        answers.push(v);
    }
    let serials: BTreeSet<u64> = answers
        .iter()
        .map(|v| v["issued"]["serial"].as_u64().unwrap())
        .collect();
    assert_eq!(serials.len(), n, "every certificate has its own serial");
    let (batches, jobs) = h.ca.commit_counts();
    assert!(
        jobs >= n as u64 && batches >= 1 && batches <= jobs,
        "{batches} {jobs}"
    );

    // A restart sees exactly what was answered: the request, its certificate, its grant.
    h.restart();
    for v in &answers {
        let id = v["id"].as_str().unwrap();
        let user = v["user"].as_str().unwrap();
        let issued = &v["issued"];
        assert_eq!(issued["request_id"], v["id"]);
        assert_eq!(issued["serial"], v["serial"]);
        assert!(
            issued["certificate"]
                .as_str()
                .unwrap()
                .starts_with("ssh-ed25519-cert-v01@openssh.com "),
            "{issued}"
        );
        assert!(
            issued["grant"]
                .as_str()
                .unwrap()
                .contains("BEGIN SSH SIGNATURE"),
            "{issued}"
        );
        let (status, stored) = h
            .call(
                user,
                "GET",
                &format!("/v1/requests/{id}/certificate"),
                serde_json::Value::Null,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{stored}");
        assert_eq!(&stored, issued, "the answer is what was committed");
    }
    // Three chained audit records per issuance, in one unbroken chain.
    let report = jit_ca::admin::audit_verify(&h.path()).unwrap();
    let events = h.audit_events();
    let count = |e: &str| events.iter().filter(|(ev, _)| ev == e).count();
    assert_eq!(count("request"), n);
    assert_eq!(count("approval"), n);
    assert_eq!(count("issuance"), n);
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, events.len() as u64);
}

#[tokio::test]
async fn a_replayed_call_is_refused_after_a_restart() {
    let mut h = Harness::with_policy(FAST_POLICY);
    // A mutating call: its nonce is committed with the request it created.
    let body = create_body(&h, "alice", "fast");
    let nonce = auth::new_nonce();
    let ts = h.now();
    let (status, _, _) = h
        .send(h.signed_request(h.key("alice"), "POST", "/v1/requests", &body, ts, &nonce))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // A read-only call: its nonce is written by the next write or the periodic flush.
    let read_nonce = auth::new_nonce();
    let (status, _, _) = h
        .send(h.signed_request(h.key("bob"), "GET", "/v1/whoami", b"", ts, &read_nonce))
        .await;
    assert_eq!(status, StatusCode::OK);
    h.ca.flush_nonces().unwrap();
    h.restart();
    for (key, method, path, body, nonce) in [
        (
            "alice",
            "POST",
            "/v1/requests",
            body.as_slice(),
            nonce.as_str(),
        ),
        (
            "bob",
            "GET",
            "/v1/whoami",
            b"".as_slice(),
            read_nonce.as_str(),
        ),
    ] {
        let (status, bytes, _) = h
            .send(h.signed_request(h.key(key), method, path, body, ts, nonce))
            .await;
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_error(&(status, v), 401, "replayed_nonce");
    }
    // Only one request exists: the replay created nothing.
    let events = h.audit_events();
    assert_eq!(events.iter().filter(|(e, _)| e == "request").count(), 1);
}

#[tokio::test]
async fn serials_are_never_reused_across_restarts_and_paths() {
    let mut h = Harness::with_policy(FAST_POLICY);
    let (s, v) = h.request("alice", "fast", 600, "").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let first = v["issued"]["serial"].as_u64().unwrap();
    // The approval path (serial from AUTOINCREMENT) lands above the reserved block.
    let (s, v) = h.request("alice", "slow", 600, "").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(
        v.get("issued").is_none(),
        "a pending request carries no certificate: {v}"
    );
    let id = v["id"].as_str().unwrap().to_string();
    let (s, v) = h.approve("bob", &id).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let approved = v["serial"].as_u64().unwrap();
    assert!(approved > first, "{approved} > {first}");
    // After a restart the fast path reserves a new block above everything issued.
    h.restart();
    let (s, v) = h.request("dave", "fast", 600, "").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let after = v["issued"]["serial"].as_u64().unwrap();
    assert!(after > approved, "{after} > {approved}");
    // And the certificate says so.
    let cert =
        ssh_key::Certificate::from_openssh(v["issued"]["certificate"].as_str().unwrap()).unwrap();
    assert_eq!(cert.serial(), after);
}

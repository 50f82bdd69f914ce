//! API tests of `jit-ca`: every rule and refusal through the real router, SQLite on disk and
//! real OpenSSH tools (`ssh-keygen -L` for every issued certificate, `ssh-keygen -Q` for the KRL).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jit_common::{KeyRing, UnverifiedGrant, UnverifiedRevocationList};
use jit_test_kit::harness::*;
use serde_json::{Value, json};

/// Checks a certificate with the real `ssh-keygen -L` and returns its text.
fn check_cert(
    h: &Harness,
    issued: &Value,
    key_id: &str,
    principals: &[&str],
    extensions: &[&str],
) -> String {
    let path = write(
        h.dir.path(),
        "cert.pub",
        issued["certificate"].as_str().unwrap().as_bytes(),
    );
    let (ok, text) = ssh_keygen(&["-L", "-f", path.to_str().unwrap()]);
    assert!(ok, "ssh-keygen -L failed: {text}");
    assert!(text.contains("user certificate"), "{text}");
    assert!(text.contains(&format!("Key ID: \"{key_id}\"")), "{text}");
    assert!(
        text.contains(&format!("Serial: {}", issued["serial"])),
        "{text}"
    );
    let window = format!(
        "Valid: from {} to {}",
        keygen_time(issued["valid_after"].as_u64().unwrap()),
        keygen_time(issued["valid_before"].as_u64().unwrap())
    );
    assert!(text.contains(&window), "expected {window:?} in {text}");
    let section = |name: &str| -> Vec<String> {
        let start = text
            .find(name)
            .unwrap_or_else(|| panic!("no {name} in {text}"));
        text[start + name.len()..]
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("                "))
            .map(|l| l.trim().split(' ').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(section("Principals:"), principals, "{text}");
    assert_eq!(section("Extensions:"), extensions, "{text}");
    text
}

async fn issued(h: &Harness, user: &str, id: &str) -> Value {
    let (s, v) = h
        .call(
            user,
            "GET",
            &format!("/v1/requests/{id}/certificate"),
            Value::Null,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

#[tokio::test]
async fn request_approve_issue_with_real_ssh_keygen() {
    let h = Harness::new();
    let (s, req) = h
        .request("alice", "db-admin", 1800, "fix replication")
        .await;
    assert_eq!(s, 201, "{req}");
    assert_eq!(req["state"], "pending");
    assert_eq!(req["principals"], json!(["alice", "dbadmin"]));
    let id = req["id"].as_str().unwrap().to_string();

    // Not approved yet: no certificate.
    let r = h
        .call(
            "alice",
            "GET",
            &format!("/v1/requests/{id}/certificate"),
            Value::Null,
        )
        .await;
    assert_error(&r, 409, "invalid_state");

    // The window starts at approval, not at request.
    h.clock.advance(600);
    let approved_at = h.now();
    let (s, v) = h.approve("bob", &id).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "approved");
    assert_eq!(v["valid_before"], approved_at + 1800);
    assert_eq!(v["valid_after"], approved_at - 60);

    let cert = issued(&h, "alice", &id).await;
    assert_eq!(cert["valid_before"], approved_at + 1800);
    let text = check_cert(
        &h,
        &cert,
        &format!("jit:{id}:alice"),
        &["alice", "dbadmin"],
        &["jit-grant@jit", "permit-pty"],
    );
    assert!(
        text.contains("source-address 127.0.0.1/32,10.0.0.0/8"),
        "{text}"
    );

    // The grant is embedded, and also returned on its own; it verifies against /v1/keys.
    let grant_doc = cert["grant"].as_str().unwrap();
    let parsed = ssh_key::Certificate::from_openssh(cert["certificate"].as_str().unwrap()).unwrap();
    assert_eq!(
        parsed.extensions().get("jit-grant@jit").map(String::as_str),
        Some(grant_doc)
    );
    let (_, keys, _) = h.get("/v1/keys", None).await;
    let keys: Value = serde_json::from_slice(&keys).unwrap();
    let ring = KeyRing::from_openssh_lines(
        &keys["grant_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let grant = UnverifiedGrant::parse(grant_doc.as_bytes())
        .unwrap()
        .verify_at(h.now(), &ring, 0)
        .unwrap();
    let g = grant.grant();
    assert_eq!(g.user, "alice");
    assert_eq!(g.hosts, vec!["db-*"]);
    assert_eq!(g.cert_serial, cert["serial"].as_u64());
    assert_eq!(
        g.approvers
            .iter()
            .map(|a| a.user.as_str())
            .collect::<Vec<_>>(),
        vec!["bob"]
    );
    assert_eq!(g.not_after.as_secs(), approved_at + 1800);
    assert!(grant.covers("alice", &["db-7"], h.now()).is_ok());

    // The certificate verifies against the published CA key.
    let (_, ca_pub, _) = h.get("/v1/ca.pub", None).await;
    let ca_key = ssh_key::PublicKey::from_openssh(
        String::from_utf8(ca_pub).unwrap().lines().next().unwrap(),
    )
    .unwrap();
    parsed
        .validate_at(h.now(), [&ca_key.fingerprint(ssh_key::HashAlg::Sha256)])
        .unwrap();

    // Only the requester may fetch it.
    let r = h
        .call(
            "bob",
            "GET",
            &format!("/v1/requests/{id}/certificate"),
            Value::Null,
        )
        .await;
    assert_error(&r, 403, "forbidden");

    let events: Vec<String> = h.audit_events().into_iter().map(|e| e.0).collect();
    for e in ["request", "approval", "issuance"] {
        assert!(
            events.contains(&e.to_string()),
            "{e} not audited: {events:?}"
        );
    }
    assert!(jit_ca::admin::audit_verify(&h.path()).unwrap().ok);
}

#[tokio::test]
async fn request_refusals_have_stable_codes() {
    let h = Harness::new();
    assert_error(
        &h.request("alice", "no-such-role", 600, "x").await,
        404,
        "unknown_role",
    );
    assert_error(
        &h.request("eve", "db-admin", 600, "x").await,
        403,
        "not_a_requester",
    );
    assert_error(
        &h.request("bob", "db-admin", 600, "x").await,
        403,
        "not_a_requester",
    );
    assert_error(
        &h.request("alice", "db-admin", 3601, "x").await,
        403,
        "duration_too_long",
    );
    assert_error(
        &h.request("alice", "db-admin", 0, "x").await,
        400,
        "invalid_input",
    );
    assert_error(
        &h.request("alice", "db-admin", 600, "   ").await,
        400,
        "reason_required",
    );
    assert_error(
        &h.request("alice", "db-admin", 600, "line\nbreak").await,
        400,
        "invalid_input",
    );
    // No reason needed where the role says so.
    assert_eq!(h.request("alice", "quick", 3000, "").await.0, 201);

    let pk = h.key("alice").public_key().to_openssh().unwrap();
    let with_hosts = |hosts: Value| json!({"role": "db-admin", "duration_secs": 600, "reason": "x", "public_key": pk, "hosts": hosts});
    assert_error(
        &h.call(
            "alice",
            "POST",
            "/v1/requests",
            with_hosts(json!(["web-1"])),
        )
        .await,
        403,
        "host_not_in_role",
    );
    assert_error(
        &h.call(
            "alice",
            "POST",
            "/v1/requests",
            with_hosts(json!(["db-1*"])),
        )
        .await,
        403,
        "host_not_in_role",
    );
    assert_error(
        &h.call("alice", "POST", "/v1/requests", with_hosts(json!(["*"])))
            .await,
        403,
        "host_not_in_role",
    );
    let (s, v) = h
        .call("alice", "POST", "/v1/requests", with_hosts(json!(["db-7"])))
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["hosts"], json!(["db-7"]));

    let bad_key = json!({"role": "db-admin", "duration_secs": 600, "reason": "x", "public_key": "ssh-ed25519 AAAAnotakey"});
    assert_error(
        &h.call("alice", "POST", "/v1/requests", bad_key).await,
        400,
        "malformed_public_key",
    );
    assert_error(
        &h.call("alice", "POST", "/v1/requests", json!({"role": "db-admin"}))
            .await,
        400,
        "invalid_json",
    );
    assert_error(&h.call("alice", "POST", "/v1/requests", json!({"role": "db-admin", "duration_secs": 1, "reason": "x", "public_key": pk, "extra": 1})).await, 400, "invalid_json");

    // Body limit: 413 with a JSON error, before authentication.
    let big = vec![b' '; 70 * 1024];
    let req = h.signed_request(
        h.key("alice"),
        "POST",
        "/v1/requests",
        &big,
        h.now(),
        &jit_api::auth::new_nonce(),
    );
    let (s, body, _) = h.send(req).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_error(&(s, v), 413, "body_too_large");

    // Each refusal is in the audit trail.
    let refused = h
        .audit_events()
        .iter()
        .filter(|e| e.0 == "request_refused")
        .count();
    assert!(refused >= 10, "refusals audited: {refused}");
}

#[tokio::test]
async fn approval_refusals() {
    let h = Harness::new();
    let (_, req) = h.request("dave", "db-admin", 600, "x").await;
    let id = req["id"].as_str().unwrap();
    // dave is in dba (approvers) but is the requester.
    assert_error(&h.approve("dave", id).await, 403, "self_approval");
    assert_error(&h.approve("eve", id).await, 403, "not_an_approver");
    assert_error(&h.approve("alice", id).await, 403, "not_an_approver");
    assert_error(
        &h.approve("bob", "r-0000000000000000").await,
        404,
        "not_found",
    );
    assert_eq!(h.approve("bob", id).await.0, 200);
    // Already approved and issued: nothing left to approve.
    assert_error(&h.approve("carol", id).await, 409, "invalid_state");

    // Deny: needs a reason; by an approver; then the request is closed.
    let (_, req) = h.request("alice", "db-admin", 600, "x").await;
    let id = req["id"].as_str().unwrap();
    let deny = |user: &'static str, reason: &'static str| {
        let id = id.to_string();
        let h = &h;
        async move {
            h.call(
                user,
                "POST",
                &format!("/v1/requests/{id}/deny"),
                json!({"reason": reason}),
            )
            .await
        }
    };
    assert_error(&deny("bob", "").await, 400, "reason_required");
    assert_error(&deny("eve", "no").await, 403, "not_an_approver");
    let (s, v) = deny("bob", "not during the freeze").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "denied");
    assert_eq!(v["denied_by"], "bob");
    assert_error(&h.approve("carol", id).await, 409, "invalid_state");
    assert!(
        h.audit_events()
            .iter()
            .any(|e| e.0 == "denial" && e.1 == "bob")
    );
    assert!(
        h.audit_events()
            .iter()
            .any(|e| e.0 == "approval_refused" && e.1 == "dave")
    );
}

#[tokio::test]
async fn k_of_n_two_approvals() {
    let h = Harness::new();
    // alice is in group dev, which is among the approvers of two-man: she never counts.
    let (s, req) = h.request("alice", "two-man", 3600, "migration").await;
    assert_eq!(s, 201, "{req}");
    assert_eq!(req["approvals_required"], 2);
    let id = req["id"].as_str().unwrap();
    assert_error(&h.approve("alice", id).await, 403, "self_approval");

    let (s, v) = h.approve("dave", id).await;
    assert_eq!(s, 200);
    assert_eq!(v["state"], "pending", "one approval of two is not enough");
    assert_eq!(v["approvals"].as_array().unwrap().len(), 1);

    assert_error(&h.approve("dave", id).await, 409, "already_approved");
    let (_, v) = h
        .call("bob", "GET", &format!("/v1/requests/{id}"), Value::Null)
        .await;
    assert_eq!(
        v["state"], "pending",
        "the same approver twice is not enough"
    );
    assert_error(
        &h.call(
            "alice",
            "GET",
            &format!("/v1/requests/{id}/certificate"),
            Value::Null,
        )
        .await,
        409,
        "invalid_state",
    );

    h.clock.advance(30);
    let (s, v) = h.approve("bob", id).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "approved");
    let cert = issued(&h, "alice", id).await;
    check_cert(
        &h,
        &cert,
        &format!("jit:{id}:alice"),
        &["alice"],
        &["jit-grant@jit", "permit-port-forwarding", "permit-pty"],
    );
    let grant = UnverifiedGrant::parse(cert["grant"].as_str().unwrap().as_bytes()).unwrap();
    let approvers: Vec<&str> = grant
        .claims_unverified()
        .approvers
        .iter()
        .map(|a| a.user.as_str())
        .collect();
    assert_eq!(approvers, vec!["dave", "bob"]);
}

#[tokio::test]
async fn authentication_refusals_are_audited() {
    let h = Harness::new();
    let body = br#"{}"#;
    let now = h.now();
    let failures = |h: &Harness| {
        h.audit_events()
            .iter()
            .filter(|e| e.0 == "auth_failure")
            .count()
    };
    let before = failures(&h);

    // Missing headers.
    let req = axum::http::Request::builder()
        .uri("/v1/whoami")
        .body(axum::body::Body::empty())
        .unwrap();
    let (s, b, _) = h.send(req).await;
    assert_error(
        &(s, serde_json::from_slice(&b).unwrap()),
        401,
        "unauthenticated",
    );

    let send = |req| async {
        let (s, b, _) = h.send(req).await;
        (s, serde_json::from_slice::<Value>(&b).unwrap())
    };
    // Unknown key.
    let stranger =
        ssh_key::PrivateKey::random(&mut rand_core::OsRng, ssh_key::Algorithm::Ed25519).unwrap();
    let r = send(h.signed_request(
        &stranger,
        "GET",
        "/v1/whoami",
        b"",
        now,
        &jit_api::auth::new_nonce(),
    ))
    .await;
    assert_error(&r, 401, "unknown_key");
    // Bad signature: signed for another body.
    let mut req = h.signed_request(
        h.key("alice"),
        "POST",
        "/v1/requests/r-1/approve",
        body,
        now,
        &jit_api::auth::new_nonce(),
    );
    *req.body_mut() = axum::body::Body::from(r#"{"x":1}"#);
    assert_error(&send(req).await, 401, "bad_signature");
    // Signature by another registered user's key under alice's key header.
    let nonce = jit_api::auth::new_nonce();
    let mut req = h.signed_request(h.key("bob"), "GET", "/v1/whoami", b"", now, &nonce);
    req.headers_mut().insert(
        jit_api::auth::HDR_KEY,
        jit_api::auth::key_header(h.key("alice").public_key())
            .unwrap()
            .parse()
            .unwrap(),
    );
    assert_error(&send(req).await, 401, "bad_signature");
    // Signed for another path.
    let mut req = h.signed_request(
        h.key("alice"),
        "GET",
        "/v1/whoami",
        b"",
        now,
        &jit_api::auth::new_nonce(),
    );
    *req.uri_mut() = "/v1/requests?filter=all".parse().unwrap();
    assert_error(&send(req).await, 401, "bad_signature");
    // Stale and future timestamps.
    let skew = jit_api::auth::MAX_SKEW_SECS;
    let r = send(h.signed_request(
        h.key("alice"),
        "GET",
        "/v1/whoami",
        b"",
        now - skew - 1,
        &jit_api::auth::new_nonce(),
    ))
    .await;
    assert_error(&r, 401, "stale_timestamp");
    let r = send(h.signed_request(
        h.key("alice"),
        "GET",
        "/v1/whoami",
        b"",
        now + skew + 1,
        &jit_api::auth::new_nonce(),
    ))
    .await;
    assert_error(&r, 401, "stale_timestamp");
    // At the edge of the window: accepted.
    let (s, v) = send(h.signed_request(
        h.key("alice"),
        "GET",
        "/v1/whoami",
        b"",
        now - skew,
        &jit_api::auth::new_nonce(),
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v, json!({"user": "alice", "groups": ["dev", "oncall"]}));
    // Replay: the same signed request twice.
    let nonce = jit_api::auth::new_nonce();
    let (s, _) =
        send(h.signed_request(h.key("alice"), "GET", "/v1/whoami", b"", now, &nonce)).await;
    assert_eq!(s, 200);
    let r = send(h.signed_request(h.key("alice"), "GET", "/v1/whoami", b"", now, &nonce)).await;
    assert_error(&r, 401, "replayed_nonce");
    // A removed user's key stops working.
    jit_ca::admin::user_remove(&h.path(), "eve", now).unwrap();
    let r = send(h.signed_request(
        h.key("eve"),
        "GET",
        "/v1/whoami",
        b"",
        now,
        &jit_api::auth::new_nonce(),
    ))
    .await;
    assert_error(&r, 401, "unknown_key");

    assert_eq!(failures(&h) - before, 9, "every failure is audited");
    let (_, metrics, _) = h.get("/metrics", None).await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("jit_ca_auth_failures_total 9"),
        "{metrics}"
    );
}

#[tokio::test]
async fn nonces_expire_after_the_window() {
    let h = Harness::new();
    let nonce = jit_api::auth::new_nonce();
    let (s, _, _) = h
        .send(h.signed_request(h.key("alice"), "GET", "/v1/whoami", b"", h.now(), &nonce))
        .await;
    assert_eq!(s, 200);
    h.clock.advance(3600);
    h.ca.sweep().unwrap();
    // The old signed request is refused for its timestamp, so forgetting the nonce is safe.
    let (s, b, _) = h
        .send(h.signed_request(
            h.key("alice"),
            "GET",
            "/v1/whoami",
            b"",
            h.now() - 3600,
            &nonce,
        ))
        .await;
    assert_error(
        &(s, serde_json::from_slice(&b).unwrap()),
        401,
        "stale_timestamp",
    );
    let (s, _, _) = h
        .send(h.signed_request(h.key("alice"), "GET", "/v1/whoami", b"", h.now(), &nonce))
        .await;
    assert_eq!(s, 200, "a nonce is forgotten after the window");
}

#[tokio::test]
async fn pending_requests_expire() {
    let h = Harness::new();
    let (_, req) = h.request("alice", "db-admin", 600, "x").await;
    let id = req["id"].as_str().unwrap();
    assert_eq!(req["pending_expires_at"], h.now() + 3600);
    h.clock.advance(3600);
    assert_error(&h.approve("bob", id).await, 409, "invalid_state");
    let (_, v) = h
        .call("alice", "GET", &format!("/v1/requests/{id}"), Value::Null)
        .await;
    assert_eq!(v["state"], "expired");
    assert_eq!(h.ca.sweep().unwrap(), 1);
    assert!(h.audit_events().iter().any(|e| e.0 == "expiry"));
    let (_, list) = h
        .call("bob", "GET", "/v1/requests?filter=pending", Value::Null)
        .await;
    assert_eq!(list["requests"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn auto_approval_rules() {
    let h = Harness::new();
    let (s, v) = h.request("alice", "quick", 900, "").await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["state"], "approved");
    assert_eq!(v["approvals"][0]["user"], "auto:oncall");
    let id = v["id"].as_str().unwrap();
    let cert = issued(&h, "alice", id).await;
    // Issue 11, item 1: a role without sudo still gets a grant (sudo = false): it carries
    // the certificate's host scope, which hosts check at login. It used to get none.
    let grant = UnverifiedGrant::parse(cert["grant"].as_str().unwrap().as_bytes()).unwrap();
    assert!(!grant.claims_unverified().sudo);
    assert_eq!(grant.claims_unverified().hosts, vec!["web-*"]);
    check_cert(
        &h,
        &cert,
        &format!("jit:{id}:alice"),
        &["alice"],
        &["jit-grant@jit"],
    );
    // Longer than the rule allows, or not in the rule's group: waits for a human.
    assert_eq!(
        h.request("alice", "quick", 901, "").await.1["state"],
        "pending"
    );
    assert_eq!(
        h.request("dave", "quick", 60, "").await.1["state"],
        "pending"
    );
}

#[tokio::test]
async fn lists_and_visibility() {
    let h = Harness::new();
    let (_, a) = h.request("alice", "db-admin", 600, "a").await;
    let (_, d) = h.request("dave", "two-man", 600, "d").await;
    let ids = |v: &Value| {
        v["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let (_, mine) = h
        .call("alice", "GET", "/v1/requests?filter=mine", Value::Null)
        .await;
    assert_eq!(ids(&mine), vec![a["id"].as_str().unwrap()]);
    let (_, pending) = h
        .call("bob", "GET", "/v1/requests?filter=pending", Value::Null)
        .await;
    assert_eq!(ids(&pending).len(), 2);
    // alice may approve two-man (group dev) but not her own; she sees dave's.
    let (_, pending) = h
        .call("alice", "GET", "/v1/requests?filter=pending", Value::Null)
        .await;
    assert_eq!(ids(&pending), vec![d["id"].as_str().unwrap()]);
    let (_, pending) = h
        .call("eve", "GET", "/v1/requests?filter=pending", Value::Null)
        .await;
    assert!(ids(&pending).is_empty());
    assert_error(
        &h.call(
            "eve",
            "GET",
            &format!("/v1/requests/{}", a["id"].as_str().unwrap()),
            Value::Null,
        )
        .await,
        403,
        "forbidden",
    );
    assert_error(
        &h.call("eve", "GET", "/v1/requests?filter=bogus", Value::Null)
            .await,
        400,
        "invalid_input",
    );
    let (s, _) = h.call("eve", "GET", "/v1/nothing-here", Value::Null).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn revocation_reaches_krl_and_revocation_list() {
    let h = Harness::new();
    let (_, req) = h.request("alice", "db-admin", 1800, "x").await;
    let id = req["id"].as_str().unwrap().to_string();
    h.approve("bob", &id).await;
    let cert = issued(&h, "alice", &id).await;
    let (_, other) = h.request("alice", "db-admin", 1800, "y").await;
    let other_id = other["id"].as_str().unwrap().to_string();
    h.approve("carol", &other_id).await;
    let other_cert = issued(&h, "alice", &other_id).await;

    let (s, _, hd) = h.get("/v1/krl", None).await;
    assert_eq!(s, 200);
    let krl_etag = hd["etag"].to_str().unwrap().to_string();
    assert_eq!(h.get("/v1/krl", Some(&krl_etag)).await.0, 304);
    let (_, _, hd) = h.get("/v1/revocations", None).await;
    let rev_etag = hd["etag"].to_str().unwrap().to_string();

    // Host grants include it before revocation.
    let (_, body, _) = h.get("/v1/hosts/db-1/grants", None).await;
    let grants: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(grants["grants"].as_array().unwrap().len(), 2);

    // Neither a stranger nor a non-approver may revoke; the requester may.
    assert_error(
        &h.call(
            "eve",
            "POST",
            &format!("/v1/requests/{id}/revoke"),
            json!({"reason": "x"}),
        )
        .await,
        403,
        "forbidden",
    );
    let (s, v) = h
        .call(
            "alice",
            "POST",
            &format!("/v1/requests/{id}/revoke"),
            json!({"reason": "done early"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "revoked");
    assert_error(
        &h.call(
            "alice",
            "POST",
            &format!("/v1/requests/{id}/revoke"),
            json!({}),
        )
        .await,
        409,
        "invalid_state",
    );
    assert_error(
        &h.call(
            "alice",
            "GET",
            &format!("/v1/requests/{id}/certificate"),
            Value::Null,
        )
        .await,
        409,
        "invalid_state",
    );

    // The KRL changed; ssh-keygen -Q says the certificate is revoked and the other is not.
    let (s, _, _) = h.get("/v1/krl", Some(&krl_etag)).await;
    assert_eq!(s, 200, "the KRL's ETag changes on revocation");
    let (_, krl, hd) = h.get("/v1/krl", None).await;
    assert_ne!(hd["etag"].to_str().unwrap(), krl_etag);
    let krl_path = write(h.dir.path(), "krl", &krl);
    let revoked = write(
        h.dir.path(),
        "revoked-cert.pub",
        cert["certificate"].as_str().unwrap().as_bytes(),
    );
    let fine = write(
        h.dir.path(),
        "fine-cert.pub",
        other_cert["certificate"].as_str().unwrap().as_bytes(),
    );
    let (ok, text) = ssh_keygen(&[
        "-Q",
        "-f",
        krl_path.to_str().unwrap(),
        revoked.to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("REVOKED"), "ssh-keygen -Q: {text}");
    let (ok, text) = ssh_keygen(&[
        "-Q",
        "-f",
        krl_path.to_str().unwrap(),
        fine.to_str().unwrap(),
    ]);
    assert!(ok && text.contains("ok"), "ssh-keygen -Q: {text}");
    let (ok, text) = ssh_keygen(&["-Q", "-l", "-f", krl_path.to_str().unwrap()]);
    assert!(
        ok && text.contains(&format!("serial: {}", cert["serial"])),
        "ssh-keygen -Ql: {text}"
    );

    // The signed revocation list names the grant and the serial, with a higher sequence.
    let (s, doc, _) = h.get("/v1/revocations", Some(&rev_etag)).await;
    assert_eq!(s, 200);
    let mut ring = KeyRing::new();
    ring.push(h.ca.signer().grant_key().public_key().clone());
    let list = UnverifiedRevocationList::parse(&doc)
        .unwrap()
        .verify(&ring)
        .unwrap();
    let grant_id = UnverifiedGrant::parse(cert["grant"].as_str().unwrap().as_bytes())
        .unwrap()
        .claims_unverified()
        .id
        .clone();
    assert!(list.is_grant_revoked(&grant_id));
    assert!(list.is_serial_revoked(cert["serial"].as_u64().unwrap()));
    assert!(!list.is_serial_revoked(other_cert["serial"].as_u64().unwrap()));
    let seq1 = list.list().sequence;

    // Host grants drop it.
    let (_, body, _) = h.get("/v1/hosts/db-1/grants", None).await;
    let grants: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(grants["grants"].as_array().unwrap().len(), 1);

    // An approver of the role may revoke too; the sequence grows.
    let (s, _) = h
        .call(
            "bob",
            "POST",
            &format!("/v1/requests/{other_id}/revoke"),
            Value::Null,
        )
        .await;
    assert_eq!(s, 200);
    let (_, doc, _) = h.get("/v1/revocations", None).await;
    let list = UnverifiedRevocationList::parse(&doc)
        .unwrap()
        .verify(&ring)
        .unwrap();
    assert!(list.list().sequence > seq1);
    assert!(list.is_serial_revoked(other_cert["serial"].as_u64().unwrap()));

    // A restart keeps the same published list.
    let mut h = h;
    h.restart();
    let (_, doc2, _) = h.get("/v1/revocations", None).await;
    assert_eq!(doc, doc2);
    assert!(
        h.audit_events()
            .iter()
            .filter(|e| e.0 == "revocation")
            .count()
            == 2
    );
}

#[tokio::test]
async fn extension_issues_new_certificate_within_max_duration() {
    // An extension beyond the approved window needs an approval that covers it (issue 11,
    // item 2: tests/api/ca_approvals.rs); a role that auto-approves any window up to
    // max_duration covers it, so the requester alone may extend up to max_duration.
    let h = Harness::with_policy(&POLICY.replacen(
        "approvals = 1\n",
        "approvals = 1\nauto_approve = true\n",
        1,
    ));
    let (_, req) = h.request("alice", "db-admin", 1800, "x").await;
    let id = req["id"].as_str().unwrap().to_string();
    let approved_at = h.now();
    h.approve("bob", &id).await;
    let first = issued(&h, "alice", &id).await;
    h.clock.advance(300);
    let ext = |user: &'static str, secs: u64| {
        let id = id.clone();
        let h = &h;
        async move {
            h.call(
                user,
                "POST",
                &format!("/v1/requests/{id}/extend"),
                json!({"duration_secs": secs}),
            )
            .await
        }
    };
    assert_error(&ext("bob", 600).await, 403, "forbidden");
    assert_error(&ext("alice", 1801).await, 403, "duration_too_long");
    let (s, v) = ext("alice", 900).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["valid_before"], approved_at + 2700);
    let second = issued(&h, "alice", &id).await;
    assert!(second["serial"].as_u64() > first["serial"].as_u64());
    assert_eq!(second["valid_after"], h.now() - 60);
    check_cert(
        &h,
        &second,
        &format!("jit:{id}:alice"),
        &["alice", "dbadmin"],
        &["jit-grant@jit", "permit-pty"],
    );
    let g = UnverifiedGrant::parse(second["grant"].as_str().unwrap().as_bytes()).unwrap();
    assert_eq!(
        g.claims_unverified().not_after.as_secs(),
        approved_at + 2700
    );
    // Up to exactly max_duration from approval, then no more.
    assert_eq!(ext("alice", 900).await.0, 200);
    assert_error(&ext("alice", 1).await, 403, "duration_too_long");
    assert!(
        h.audit_events()
            .iter()
            .filter(|e| e.0 == "extension")
            .count()
            == 2
    );
    // After the window ends, extension is refused.
    h.clock.advance(3600);
    assert_error(&ext("alice", 1).await, 409, "invalid_state");
}

#[tokio::test]
async fn host_grants_etag_and_expiry() {
    let h = Harness::new();
    let (_, req) = h.request("alice", "db-admin", 600, "x").await;
    let id = req["id"].as_str().unwrap();
    let (_, body, hd) = h.get("/v1/hosts/db-1/grants", None).await;
    let empty_etag = hd["etag"].to_str().unwrap().to_string();
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["grants"],
        json!([])
    );
    assert_eq!(
        h.get("/v1/hosts/db-1/grants", Some(&empty_etag)).await.0,
        304
    );
    h.approve("bob", id).await;
    let (s, body, hd) = h.get("/v1/hosts/DB-1/grants", Some(&empty_etag)).await;
    assert_eq!(s, 200, "a new grant changes the ETag");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["host"], "db-1");
    assert_eq!(v["grants"].as_array().unwrap().len(), 1);
    let etag = hd["etag"].to_str().unwrap().to_string();
    assert_eq!(h.get("/v1/hosts/db-1/grants", Some(&etag)).await.0, 304);
    assert_eq!(
        h.get("/v1/hosts/db-1/grants", Some(&format!("\"x\", W/{etag}")))
            .await
            .0,
        304
    );
    // Other hosts see nothing.
    let (_, body, _) = h.get("/v1/hosts/web-1/grants", None).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["grants"],
        json!([])
    );
    // Bad host names are refused.
    assert_eq!(h.get("/v1/hosts/db-*/grants", None).await.0, 400);
    // When the window ends, the grant disappears (and the ETag changes).
    h.clock.advance(601);
    let (s, body, _) = h.get("/v1/hosts/db-1/grants", Some(&etag)).await;
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["grants"],
        json!([])
    );
}

#[tokio::test]
async fn serials_strictly_increase_across_restarts() {
    let mut h = Harness::new();
    let mut serials = Vec::new();
    for round in 0..2 {
        for _ in 0..3 {
            let (_, v) = h.request("alice", "quick", 600, "").await;
            serials.push(v["serial"].as_u64().unwrap());
        }
        if round == 0 {
            h.restart();
        }
    }
    assert!(serials.windows(2).all(|w| w[0] < w[1]), "{serials:?}");
    assert!(serials[0] >= 1);
}

#[tokio::test]
async fn policy_reload_keeps_old_policy_on_error() {
    let h = Harness::new();
    let path = h.path().join("policy.toml");
    std::fs::write(&path, "[roles.x]\nhosts = []\n").unwrap();
    assert!(h.ca.reload_policy().is_err());
    assert_eq!(
        h.request("alice", "db-admin", 60, "still works").await.0,
        201
    );
    std::fs::write(&path, "[roles.only]\nhosts=[\"h\"]\nmax_duration=\"5m\"\nrequesters=[\"alice\"]\napprovers=[\"bob\"]\n").unwrap();
    h.ca.reload_policy().unwrap();
    assert_error(
        &h.request("alice", "db-admin", 60, "x").await,
        404,
        "unknown_role",
    );
    assert_eq!(h.request("alice", "only", 60, "x").await.0, 201);
    let reloads: Vec<_> = jit_ca::admin::audit_export(&h.path())
        .unwrap()
        .into_iter()
        .filter(|r| r["event"] == "policy_reload")
        .collect();
    assert_eq!(reloads.len(), 2);
    assert_eq!(reloads[0]["details"]["ok"], false);
    assert_eq!(reloads[1]["details"]["ok"], true);
}

#[tokio::test]
async fn several_ca_keys_first_signs_all_published() {
    let (tmp, keys) = setup_dir(POLICY);
    let dir = data_dir(&tmp);
    let (new_priv, _) = jit_ca::signer::generate("jit-user-ca-2027").unwrap();
    jit_ca::files::create_new(&dir.join("keys/user_ca_2027"), new_priv.as_bytes(), 0o600).unwrap();
    let cfg = std::fs::read_to_string(dir.join("config.toml"))
        .unwrap()
        .replace(
            "user_ca_keys = [\"keys/user_ca\"]",
            "user_ca_keys = [\"keys/user_ca_2027\", \"keys/user_ca\"]",
        );
    std::fs::remove_file(dir.join("config.toml")).unwrap();
    std::fs::write(dir.join("config.toml"), cfg).unwrap();
    let clock = std::sync::Arc::new(jit_ca::clock::FixedClock::new(T0));
    let ca = std::sync::Arc::new(jit_ca::service::Ca::open(&dir, clock.clone()).unwrap());
    let h = Harness {
        app: jit_ca::api::router(ca.clone()),
        dir: tmp,
        clock,
        ca,
        keys,
    };
    let (_, ca_pub, _) = h.get("/v1/ca.pub", None).await;
    let lines: Vec<String> = String::from_utf8(ca_pub)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].ends_with("jit-user-ca-2027"));
    let (_, v) = h.request("alice", "quick", 60, "").await;
    let cert = issued(&h, "alice", v["id"].as_str().unwrap()).await;
    let (ok, text) = ssh_keygen(&[
        "-L",
        "-f",
        write(
            h.dir.path(),
            "c.pub",
            cert["certificate"].as_str().unwrap().as_bytes(),
        )
        .to_str()
        .unwrap(),
    ]);
    let new_fp = ssh_key::PublicKey::from_openssh(&lines[0])
        .unwrap()
        .fingerprint(ssh_key::HashAlg::Sha256)
        .to_string();
    assert!(
        ok && text.contains(&format!("Signing CA: ED25519 {new_fp}")),
        "{text}"
    );
    let host_toml = jit_ca::admin::host_config(&h.path()).unwrap();
    assert!(host_toml.contains(&lines[0]) && host_toml.contains(&lines[1]));
}

#[tokio::test]
async fn metrics_in_prometheus_format() {
    let h = Harness::new();
    h.request("alice", "quick", 60, "").await;
    h.get("/v1/keys", None).await;
    let (s, body, hd) = h.get("/metrics", None).await;
    assert_eq!(s, 200);
    assert!(
        hd["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = String::from_utf8(body).unwrap();
    for needle in [
        "jit_ca_http_requests_total{method=\"POST\",route=\"/v1/requests\",status=\"201\"} 1",
        "jit_ca_http_requests_total{method=\"GET\",route=\"/v1/keys\",status=\"200\"} 1",
        "jit_ca_http_request_duration_seconds_bucket{route=\"/v1/requests\",le=\"+Inf\"} 1",
        "jit_ca_certificates_issued_total 1",
        "# TYPE jit_ca_http_request_duration_seconds histogram",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

#[tokio::test]
async fn revocation_list_is_re_signed_before_hosts_call_it_stale() {
    let h = Harness::new();
    let mut ring = KeyRing::new();
    ring.push(h.ca.signer().grant_key().public_key().clone());
    let fetch = || async {
        let (_, doc, hd) = h.get("/v1/revocations", None).await;
        let list = UnverifiedRevocationList::parse(&doc)
            .unwrap()
            .verify(&ring)
            .unwrap();
        (list, hd["etag"].to_str().unwrap().to_string())
    };
    let (first, etag) = fetch().await;
    h.clock.advance(300);
    h.ca.sweep().unwrap();
    assert_eq!(
        h.get("/v1/revocations", Some(&etag)).await.0,
        304,
        "not yet due"
    );
    h.clock.advance(300);
    h.ca.sweep().unwrap();
    let (second, etag2) = fetch().await;
    assert_ne!(etag, etag2);
    assert!(second.list().sequence > first.list().sequence);
    assert_eq!(second.list().issued_at.as_secs(), h.now());
    assert!(!second.is_stale(h.now() + 599, 600));
}

#[tokio::test]
async fn every_refused_call_leaves_exactly_one_audit_record() {
    let h = Harness::new();
    let (_, req) = h.request("alice", "db-admin", 600, "x").await;
    let id = req["id"].as_str().unwrap().to_string();
    let cases: Vec<(&str, &str, String, Value, &str)> = vec![
        (
            "alice",
            "POST",
            "/v1/requests".into(),
            json!({"role": 1}),
            "request_refused",
        ),
        (
            "bob",
            "POST",
            format!("/v1/requests/{id}/deny"),
            json!({}),
            "denial_refused",
        ),
        (
            "eve",
            "POST",
            format!("/v1/requests/{id}/revoke"),
            json!({}),
            "revocation_refused",
        ),
        (
            "alice",
            "POST",
            format!("/v1/requests/{id}/extend"),
            json!({"duration_secs": 60}),
            "extension_refused",
        ),
        (
            "eve",
            "GET",
            format!("/v1/requests/{id}"),
            Value::Null,
            "access_refused",
        ),
        (
            "bob",
            "GET",
            format!("/v1/requests/{id}/certificate"),
            Value::Null,
            "access_refused",
        ),
        (
            "eve",
            "POST",
            format!("/v1/requests/{id}/approve"),
            json!({}),
            "approval_refused",
        ),
    ];
    for (user, method, path, body, event) in cases {
        let before = h.audit_events().len();
        let (s, v) = h.call(user, method, &path, body).await;
        assert!(s.is_client_error(), "{path}: {s} {v}");
        let events = h.audit_events();
        assert_eq!(events.len(), before + 1, "{path}");
        assert_eq!(
            events.last().unwrap(),
            &(event.to_string(), user.to_string()),
            "{path}"
        );
    }
    let before = h.audit_events().len();
    let req = h.signed_request(
        h.key("alice"),
        "POST",
        "/v1/requests",
        &vec![b' '; 70 * 1024],
        h.now(),
        &jit_api::auth::new_nonce(),
    );
    assert_eq!(h.send(req).await.0, 413);
    let events = h.audit_events();
    assert_eq!(events.len(), before + 1);
    assert_eq!(events.last().unwrap().0, "rejected");
    assert!(jit_ca::admin::audit_verify(&h.path()).unwrap().ok);
}

#[tokio::test]
async fn a_locked_database_answers_503_unavailable() {
    if jit_test_kit::pg::sqlite_only(
        "SQLite's write lock held by another connection (busy timeout)",
    ) {
        return;
    }
    let h = Harness::new();
    let db = rusqlite::Connection::open(h.path().join("jit.db")).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    // The service waits for its busy timeout (5 s), then tells the client to retry.
    let r = h.request("alice", "db-admin", 600, "x").await;
    assert_error(&r, 503, "unavailable");
    db.execute_batch("ROLLBACK").unwrap();
    assert_eq!(h.request("alice", "db-admin", 600, "x").await.0, 201);
    assert!(!h.audit_events().iter().any(|e| e.0 == "auth_failure"));
}

#[tokio::test]
async fn withdraw_and_approvals_under_changed_policy_or_users() {
    let h = Harness::new();
    // The requester may withdraw their own pending request.
    let (_, req) = h.request("alice", "db-admin", 600, "x").await;
    let id = req["id"].as_str().unwrap();
    let (s, v) = h
        .call(
            "alice",
            "POST",
            &format!("/v1/requests/{id}/deny"),
            json!({"reason": "not needed"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "denied");
    assert_eq!(v["denied_by"], "alice");

    // A requester removed before approval: nothing is issued.
    let (_, req) = h.request("dave", "two-man", 600, "x").await;
    let id = req["id"].as_str().unwrap();
    jit_ca::admin::user_remove(&h.path(), "dave", h.now()).unwrap();
    assert_error(&h.approve("bob", id).await, 409, "invalid_state");

    // A role removed from the policy before approval: nothing is issued.
    let (_, req) = h.request("alice", "two-man", 600, "x").await;
    let id = req["id"].as_str().unwrap();
    let policy = POLICY.replace("[roles.two-man]", "[roles.renamed]");
    std::fs::write(h.path().join("policy.toml"), policy).unwrap();
    h.ca.reload_policy().unwrap();
    assert_error(&h.approve("bob", id).await, 409, "invalid_state");
}

#[tokio::test]
async fn operator_revocation_from_the_cli_reaches_the_running_service() {
    let h = Harness::new();
    let (_, req) = h.request("alice", "db-admin", 1800, "x").await;
    let id = req["id"].as_str().unwrap().to_string();
    h.approve("bob", &id).await;
    let cert = issued(&h, "alice", &id).await;
    let (_, _, hd) = h.get("/v1/krl", None).await;
    let etag = hd["etag"].to_str().unwrap().to_string();

    let out = std::process::Command::new(JIT_CA)
        .args([
            "revoke",
            &id,
            "--reason",
            "laptop stolen",
            "--json",
            "--dir",
            h.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "revoked");
    let again = std::process::Command::new(JIT_CA)
        .args(["revoke", &id, "--dir", h.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("only approved requests"));

    // The running service publishes it at its next sweep.
    h.ca.sweep().unwrap();
    let (s, krl, _) = h.get("/v1/krl", Some(&etag)).await;
    assert_eq!(s, 200);
    let krl_path = write(h.dir.path(), "krl", &krl);
    let cert_path = write(
        h.dir.path(),
        "c.pub",
        cert["certificate"].as_str().unwrap().as_bytes(),
    );
    let (ok, text) = ssh_keygen(&[
        "-Q",
        "-f",
        krl_path.to_str().unwrap(),
        cert_path.to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("REVOKED"), "{text}");
    let (_, body, _) = h.get("/v1/hosts/db-1/grants", None).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["grants"],
        json!([])
    );
    let rec = jit_ca::admin::audit_export(&h.path())
        .unwrap()
        .into_iter()
        .rfind(|r| r["event"] == "revocation")
        .unwrap();
    assert!(rec["actor"].as_str().unwrap().starts_with("admin:uid="));
    assert_eq!(rec["details"]["reason"], "laptop stolen");
}

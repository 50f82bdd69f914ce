//! Issue 11, items 1 and 7 (CA side): every certificate carries its host scope as a
//! CA-signed grant; the CA refuses to sign a grant hosts would refuse, and no requester can
//! grow a host's grants document past the cap.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jit_common::UnverifiedGrant;
use jit_common::envelope::MAX_GRANT_SIZE;
use jit_test_kit::harness::*;
use ssh_key::{Algorithm, PrivateKey};

use serde_json::{Value, json};

/// A role whose hosts are anything, approved at once for `dev`, plus the harness's roles.
fn policy() -> String {
    format!(
        "{POLICY}
[roles.fleet]
principals = [\"ops\"]
hosts = [\"*\"]
sudo = false
max_duration = \"1h\"
requesters = [\"group:dev\"]
approvers = [\"group:dba\"]
require_reason = false
auto_approve = true

[roles.fleet-reviewed]
hosts = [\"*\"]
sudo = true
max_duration = \"1h\"
requesters = [\"group:dev\"]
approvers = [\"group:dba\"]
approvals = 3
require_reason = false
"
    )
}

async fn create(
    h: &Harness,
    user: &str,
    role: &str,
    hosts: &[String],
    reason: &str,
) -> (u16, Value) {
    let pk = h.key(user).public_key().to_openssh().unwrap();
    let (s, v) = h
        .call(
            user,
            "POST",
            "/v1/requests",
            json!({"role": role, "duration_secs": 600, "reason": reason, "hosts": hosts, "public_key": pk}),
        )
        .await;
    (s.as_u16(), v)
}

fn grant_of(issued: &Value) -> jit_common::Grant {
    let doc = issued["grant"]
        .as_str()
        .expect("every certificate carries a grant");
    let cert = ssh_key::Certificate::from_openssh(issued["certificate"].as_str().unwrap()).unwrap();
    assert_eq!(
        cert.extensions().get("jit-grant@jit").map(String::as_str),
        Some(doc),
        "the grant travels in the certificate"
    );
    UnverifiedGrant::parse(doc.as_bytes())
        .unwrap()
        .claims_unverified()
        .clone()
}

#[tokio::test]
async fn roles_without_sudo_get_a_grant_with_sudo_false() {
    let h = Harness::new();
    // `quick` (web-*, no sudo) is approved at once by a rule.
    let (s, v) = h.request("alice", "quick", 900, "").await;
    assert_eq!(s, 201, "{v}");
    let g = grant_of(&v["issued"]);
    assert!(!g.sudo);
    assert_eq!(g.hosts, vec!["web-*"]);
    assert_eq!(g.user, "alice");
    assert_eq!(g.cert_serial, v["issued"]["serial"].as_u64());
    assert_eq!(g.approvers[0].user, "auto:oncall");
    assert_eq!(v["grant_id"], json!(g.id));
    // It is published to the hosts it covers.
    let (_, body, _) = h.get("/v1/hosts/web-1/grants", None).await;
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["grants"][0], v["issued"]["grant"]);
    // A sudo role's grant says so.
    let (_, req) = h.request("alice", "db-admin", 600, "x").await;
    let id = req["id"].as_str().unwrap();
    h.approve("bob", id).await;
    let (_, c) = h
        .call(
            "alice",
            "GET",
            &format!("/v1/requests/{id}/certificate"),
            Value::Null,
        )
        .await;
    assert!(grant_of(&c).sudo);
}

fn long_hosts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("h{i:03}{}", ".x".repeat(120)))
        .collect()
}

#[tokio::test]
async fn grants_that_hosts_would_refuse_are_not_signed() {
    let h = Harness::with_policy(&policy());
    let stored = |h: &Harness| {
        h.audit_events()
            .into_iter()
            .filter(|(e, _)| ["request", "approval", "issuance"].contains(&e.as_str()))
            .count()
    };
    assert_eq!(stored(&h), 0);
    // Many long host names, a reason full of characters JSON escapes: each within the API's
    // limits (64 selectors of at most 253 bytes, 1024 bytes of reason), together over the
    // host's 16 KiB grant limit. Both for a role approved at once and for a pending one.
    let quoted = "\"".repeat(1024);
    let cases: Vec<(Vec<String>, &str)> =
        vec![(long_hosts(64), ""), (long_hosts(58), quoted.as_str())];
    for (hosts, reason) in &cases {
        for role in ["fleet", "fleet-reviewed"] {
            let got = create(&h, "alice", role, hosts, reason).await;
            let brief = format!("{role} {} hosts: {} {}", hosts.len(), got.0, got.1["error"]);
            assert_eq!(got.0, 400, "{brief}");
            assert_eq!(got.1["error"]["code"], "grant_not_acceptable", "{brief}");
            let msg = got.1["error"]["message"].as_str().unwrap();
            assert!(
                msg.contains("hosts would refuse") && msg.contains("bytes"),
                "{msg}"
            );
        }
    }
    // Nothing was stored: no request, approval or issuance (the refusals are audited).
    assert_eq!(stored(&h), 0);
    assert!(h.audit_events().iter().any(|(e, _)| e == "request_refused"));
    let (_, list) = h
        .call("alice", "GET", "/v1/requests?filter=mine", Value::Null)
        .await;
    assert_eq!(list["requests"], json!([]));
    // Just under the limit is fine, and the grant parses on a host.
    let (s, v) = create(&h, "alice", "fleet", &long_hosts(58), "short").await;
    assert_eq!(s, 201, "{}", v["error"]);
    let doc = v["issued"]["grant"].as_str().unwrap();
    assert!(doc.len() <= MAX_GRANT_SIZE);
    UnverifiedGrant::parse(doc.as_bytes()).unwrap();
}

/// Adds users `u00..` (group dev) to the harness's CA.
fn add_users(h: &mut Harness, n: usize) -> Vec<String> {
    let mut names = Vec::new();
    for i in 0..n {
        let name = format!("u{i:02}");
        let key = PrivateKey::random(&mut rand_core::OsRng, Algorithm::Ed25519).unwrap();
        let pub_path = h.dir.path().join(format!("{name}.pub"));
        std::fs::write(&pub_path, key.public_key().to_openssh().unwrap()).unwrap();
        jit_ca::admin::user_add(&h.path(), &name, &pub_path, &["dev".to_string()], T0).unwrap();
        h.keys.insert(name.clone(), key);
        names.push(name);
    }
    h.restart();
    names
}

#[tokio::test]
async fn a_hosts_grants_document_stays_under_the_cap() {
    let mut h = Harness::with_policy(&policy());
    // Spread over many requesters: the cap must hold whoever asks.
    let users = add_users(&mut h, 40);
    let hosts = long_hosts(50);
    let mut issued = 0;
    let refusal = loop {
        let user = &users[issued % users.len()];
        let (s, v) = create(&h, user, "fleet", &hosts, "").await;
        if s != 201 {
            break v;
        }
        issued += 1;
        assert!(issued < 1000, "never refused");
    };
    assert_eq!(refusal["error"]["code"], "host_grants_full", "{refusal}");
    let msg = refusal["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains(&jit_ca::service::MAX_HOST_DOCUMENT.to_string()) && msg.contains("revoke"),
        "{msg}"
    );
    // The document of a host every grant reaches is under the cap (and sync's 8 MiB).
    let (s, body, _) = h.get(&format!("/v1/hosts/{}/grants", hosts[0]), None).await;
    assert_eq!(s, 200);
    assert!(
        body.len() as u64 <= jit_ca::service::MAX_HOST_DOCUMENT,
        "{}",
        body.len()
    );
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["grants"].as_array().unwrap().len(), issued);
    assert!(
        issued >= 100,
        "the cap leaves room for {issued} large grants only"
    );
    // Other hosts are not affected.
    let (s, v) = create(&h, &users[0], "fleet", &["elsewhere-1".to_string()], "").await;
    assert_eq!(s, 201, "{v}");
    // When grants end, room comes back.
    h.clock.advance(601);
    let (s, v) = create(&h, &users[1], "fleet", &hosts, "").await;
    assert_eq!(s, 201, "{v}");
}

/// Item 7 with items 4 and 5: a revoked, superseded or never-stored grant stops counting
/// against a host's document at once. Before, each stayed reserved for two minutes (even
/// across rebuilds), so one requester extending, revoking, or asking past the active-grant
/// bound in a loop filled the budget and everyone else got `host_grants_full`.
#[tokio::test]
async fn revoked_superseded_and_refused_grants_do_not_fill_a_hosts_budget() {
    let mut h = Harness::with_policy(&policy());
    let users = add_users(&mut h, 2);
    let (mallory, other) = (&users[0], &users[1]);
    let hosts = long_hosts(50);
    let post = |user: &str, path: String, body: Value| {
        let h = &h;
        let user = user.to_string();
        async move { h.call(&user, "POST", &path, body).await }
    };
    // 120 of each below: together more than the about 320 grants this large a host takes.
    // Extensions: one live grant, 120 superseded ones.
    let (s, v) = create(&h, mallory, "fleet", &hosts, "").await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    for i in 0..120 {
        let (s, v) = post(
            mallory,
            format!("/v1/requests/{id}/extend"),
            json!({"duration_secs": 1}),
        )
        .await;
        assert_eq!(s.as_u16(), 200, "extension {i}: {v}");
    }
    // Request and revoke: no live grant at all.
    for i in 0..120 {
        let (s, v) = create(&h, mallory, "fleet", &hosts, "").await;
        assert_eq!(s, 201, "request {i}: {v}");
        let id = v["id"].as_str().unwrap();
        let (s, v) = post(
            mallory,
            format!("/v1/requests/{id}/revoke"),
            json!({"reason": "again"}),
        )
        .await;
        assert_eq!(s.as_u16(), 200, "revoke {i}: {v}");
    }
    // Requests refused by the active-grant bound (20) after the grant was signed.
    for _ in 0..19 {
        assert_eq!(
            create(&h, mallory, "fleet", &["elsewhere-1".into()], "")
                .await
                .0,
            201
        );
    }
    for i in 0..120 {
        let (s, v) = create(&h, mallory, "fleet", &hosts, "").await;
        assert_eq!(
            v["error"]["code"], "too_many_active_grants",
            "refusal {i}: {s} {v}"
        );
    }
    // Someone else still gets a grant for these hosts.
    let (s, v) = create(&h, other, "fleet", &hosts, "").await;
    assert_eq!(s, 201, "{v}");
}

//! Issue 14 (CA side): a role with `session_bound = true` issues grants that carry
//! `"session_bound": true` and the certificate's serial; the request keeps the role's setting
//! from its creation, and issuance binds it when the role says so then (binding only
//! narrows); extensions stay bound; the views and `GET /v1/roles` say so.

use jit_common::UnverifiedGrant;
use jit_test_kit::harness::*;
use serde_json::{Value, json};

/// `bound`: session-bound, approved at once for alice (oncall); `bound-reviewed`:
/// session-bound, a human approves, the requester may extend up to max_duration.
const EXTRA: &str = r#"
[roles.bound]
hosts = ["db-*"]
sudo = true
session_bound = true
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
require_reason = false
auto_approve = true

[roles.bound-reviewed]
hosts = ["db-*"]
sudo = true
session_bound = true
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
require_reason = false
"#;

fn harness() -> Harness {
    Harness::with_policy(&format!("{POLICY}{EXTRA}"))
}

fn set_policy(h: &Harness, text: &str) {
    std::fs::write(h.path().join("policy.toml"), text).unwrap();
    h.ca.reload_policy().unwrap();
}

fn grant_of(issued: &Value) -> (jit_common::Grant, Value) {
    let doc = issued["grant"].as_str().expect("a grant");
    let g = UnverifiedGrant::parse(doc.as_bytes())
        .unwrap()
        .claims_unverified()
        .clone();
    // The signed JSON itself, to see which fields it carries.
    let (body, _) = doc.split_once("\n-----BEGIN SSH SIGNATURE-----").unwrap();
    let json: Value = serde_json::from_str(body.trim()).unwrap_or(Value::Null);
    (g, json)
}

/// The details of every audit record of `event`, oldest first.
fn details(h: &Harness, event: &str) -> Vec<Value> {
    jit_ca::admin::audit_export(&h.path())
        .unwrap()
        .into_iter()
        .filter(|r| r["event"] == event)
        .map(|r| r["details"].clone())
        .collect()
}

async fn certificate(h: &Harness, user: &str, id: &str) -> Value {
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

async fn show(h: &Harness, user: &str, id: &str) -> Value {
    let (s, v) = h
        .call(user, "GET", &format!("/v1/requests/{id}"), Value::Null)
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

#[tokio::test]
async fn a_session_bound_role_issues_bound_grants_that_name_their_certificate() {
    let h = harness();
    let (s, v) = h.request("alice", "bound", 600, "").await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["state"], "approved", "{v}");
    assert_eq!(v["session_bound"], true, "{v}");
    let (g, _) = grant_of(&v["issued"]);
    assert!(g.session_bound);
    assert_eq!(g.cert_serial, v["issued"]["serial"].as_u64());
    let id = v["id"].as_str().unwrap();
    assert_eq!(show(&h, "alice", id).await["session_bound"], true);
    // The issuance record says so.
    let issuance = &details(&h, "issuance")[0];
    assert_eq!(issuance["session_bound"], true, "{issuance}");
    // A role without the key: the grant and the view say nothing of it (absent, not false).
    let (_, req) = h.request("alice", "db-admin", 600, "x").await;
    let id = req["id"].as_str().unwrap();
    assert!(req.get("session_bound").is_none(), "{req}");
    h.approve("bob", id).await;
    let (g, json) = grant_of(&certificate(&h, "alice", id).await);
    assert!(!g.session_bound);
    assert!(json.get("session_bound").is_none(), "{json}");
    let issuances = details(&h, "issuance");
    assert_eq!(issuances.len(), 2);
    assert!(
        issuances[1].get("session_bound").is_none(),
        "{}",
        issuances[1]
    );
    assert!(show(&h, "alice", id).await.get("session_bound").is_none());
}

#[tokio::test]
async fn roles_view_says_which_roles_are_session_bound() {
    let h = harness();
    let (s, v) = h.call("alice", "GET", "/v1/roles", Value::Null).await;
    assert_eq!(s, 200, "{v}");
    let role = |name: &str| {
        v["roles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(role("bound")["session_bound"], true);
    assert_eq!(role("bound-reviewed")["session_bound"], true);
    assert!(role("db-admin").get("session_bound").is_none());
}

#[tokio::test]
async fn a_policy_that_turns_binding_on_binds_pending_requests_at_issuance() {
    let h = harness();
    let (_, req) = h.request("alice", "db-admin", 600, "x").await;
    let id = req["id"].as_str().unwrap().to_string();
    assert!(req.get("session_bound").is_none());
    // The operator binds db-admin while the request waits.
    set_policy(
        &h,
        &format!(
            "{}{EXTRA}",
            POLICY.replacen("sudo = true\n", "sudo = true\nsession_bound = true\n", 1)
        ),
    );
    let (s, v) = h.approve("bob", &id).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["session_bound"], true, "{v}");
    let c = certificate(&h, "alice", &id).await;
    let (g, _) = grant_of(&c);
    assert!(
        g.session_bound,
        "the role's current setting binds the grant"
    );
    assert_eq!(g.cert_serial, c["serial"].as_u64());
    assert_eq!(show(&h, "alice", &id).await["session_bound"], true);
}

#[tokio::test]
async fn a_policy_that_turns_binding_off_never_unbinds_a_request_made_bound() {
    let h = harness();
    let (_, req) = h.request("alice", "bound-reviewed", 600, "").await;
    let id = req["id"].as_str().unwrap().to_string();
    assert_eq!(req["session_bound"], true, "{req}");
    set_policy(
        &h,
        &format!(
            "{POLICY}{}",
            EXTRA.replace("session_bound = true\n", "session_bound = false\n")
        ),
    );
    let (s, v) = h.approve("bob", &id).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["session_bound"], true, "{v}");
    let (g, _) = grant_of(&certificate(&h, "alice", &id).await);
    assert!(g.session_bound, "the request's snapshot keeps it bound");
}

#[tokio::test]
async fn extensions_of_a_bound_request_are_bound_under_a_new_grant_and_certificate() {
    let h = harness();
    // Approved at once by `auto_approve`, which also covers extensions up to max_duration.
    let (_, req) = h.request("alice", "bound", 600, "").await;
    let id = req["id"].as_str().unwrap().to_string();
    let first = certificate(&h, "alice", &id).await;
    // Even if the operator unbinds the role meanwhile.
    set_policy(
        &h,
        &format!(
            "{POLICY}{}",
            EXTRA.replace("session_bound = true\n", "session_bound = false\n")
        ),
    );
    h.clock.advance(60);
    let (s, v) = h
        .call(
            "alice",
            "POST",
            &format!("/v1/requests/{id}/extend"),
            json!({"duration_secs": 600}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["session_bound"], true, "{v}");
    let second = certificate(&h, "alice", &id).await;
    let (g1, _) = grant_of(&first);
    let (g2, _) = grant_of(&second);
    assert!(g2.session_bound);
    assert_ne!(
        g1.id, g2.id,
        "a new grant: the old connection's binding names the old one"
    );
    assert_ne!(first["serial"], second["serial"]);
    assert_eq!(g2.cert_serial, second["serial"].as_u64());
    let ext = &details(&h, "extension")[0];
    assert_eq!(ext["session_bound"], true, "{ext}");
}

/// The views of a request not issued yet say what issuance will do under the role as it is
/// now (`jit show`, the approver's `jit list`): an operator who binds the role while the
/// request waits is shown binding it before anyone approves.
#[tokio::test]
async fn a_pending_request_shows_the_binding_issuance_will_apply() {
    let h = harness();
    let (_, req) = h.request("alice", "db-admin", 600, "x").await;
    let id = req["id"].as_str().unwrap().to_string();
    assert!(req.get("session_bound").is_none(), "{req}");
    set_policy(
        &h,
        &format!(
            "{}{EXTRA}",
            POLICY.replacen("sudo = true\n", "sudo = true\nsession_bound = true\n", 1)
        ),
    );
    assert_eq!(show(&h, "alice", &id).await["session_bound"], true);
    assert_eq!(show(&h, "bob", &id).await["session_bound"], true);
    let (s, list) = h
        .call("bob", "GET", "/v1/requests?filter=pending", Value::Null)
        .await;
    assert_eq!(s, 200, "{list}");
    let mine = list["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .cloned()
        .expect("the pending request in bob's list");
    assert_eq!(mine["session_bound"], true, "{mine}");
    // And it is issued bound, as shown.
    let (s, v) = h.approve("bob", &id).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["session_bound"], true, "{v}");
    // Turned off again: an issued request keeps what its grant carries.
    set_policy(&h, &format!("{POLICY}{EXTRA}"));
    assert_eq!(show(&h, "alice", &id).await["session_bound"], true);
}

/// A binding limits only sudo: a role with `session_bound` but without sudo issues grants
/// that do not carry `"session_bound": true` (hosts older than session binding refuse such a
/// grant at login), and every view, record and question says unbound, as issuance does.
#[tokio::test]
async fn a_role_without_sudo_never_binds_its_grants() {
    let h = Harness::with_policy(&format!(
        "{POLICY}{EXTRA}{}",
        r#"
[roles.plain]
hosts = ["db-*"]
session_bound = true
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
require_reason = false
"#
    ));
    let (s, v) = h.call("alice", "GET", "/v1/roles", Value::Null).await;
    assert_eq!(s, 200, "{v}");
    let plain = v["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "plain")
        .cloned()
        .unwrap();
    assert!(plain.get("session_bound").is_none(), "{plain}");
    let (s, req) = h.request("alice", "plain", 600, "").await;
    assert_eq!(s, 201, "{req}");
    let id = req["id"].as_str().unwrap().to_string();
    assert!(req.get("session_bound").is_none(), "{req}");
    assert!(show(&h, "bob", &id).await.get("session_bound").is_none());
    let (s, v) = h.approve("bob", &id).await;
    assert_eq!(s, 200, "{v}");
    assert!(v.get("session_bound").is_none(), "{v}");
    let (g, json) = grant_of(&certificate(&h, "alice", &id).await);
    assert!(!g.sudo);
    assert!(!g.session_bound);
    assert!(json.get("session_bound").is_none(), "{json}");
    for ev in ["request", "issuance"] {
        let d = details(&h, ev);
        assert!(d[0].get("session_bound").is_none(), "{ev}: {}", d[0]);
    }
}

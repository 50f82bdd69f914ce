//! The requester's workflow: discovering roles, cancelling, one pending request per role,
//! dropping an active elevation.

use jit_test_kit::harness::*;
use serde_json::{Value, json};

#[tokio::test]
async fn roles_lists_what_the_caller_may_request_as_it_applies_to_them() {
    let h = Harness::new();
    let (s, v) = h.call("alice", "GET", "/v1/roles", Value::Null).await;
    assert_eq!(s, 200, "{v}");
    let names: Vec<&str> = v["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db-admin", "quick", "two-man"]);
    assert_eq!(
        v["roles"][0],
        json!({"name": "db-admin", "hosts": ["db-*"], "principals": ["alice", "dbadmin"],
               "sudo": true, "max_duration_secs": 3600, "approvers": ["group:dba"],
               "approvals_required": 1, "require_reason": true, "auto_approval": []})
    );
    // alice is on call: the quick role's rule applies to her, up to 15 minutes.
    assert_eq!(
        v["roles"][1]["auto_approval"],
        json!([{"rule": "auto:oncall", "max_duration_secs": 900}])
    );
    assert_eq!(v["roles"][2]["approvals_required"], 2);

    // dave is a developer but not on call: no auto-approval for him.
    let (_, v) = h.call("dave", "GET", "/v1/roles", Value::Null).await;
    assert_eq!(v["roles"][1]["name"], "quick");
    assert_eq!(v["roles"][1]["auto_approval"], json!([]));
    // bob may request nothing; eve neither.
    for who in ["bob", "eve"] {
        let (s, v) = h.call(who, "GET", "/v1/roles", Value::Null).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["roles"], json!([]), "{who}");
    }
    // Signed like every other call.
    let (s, _, _) = h.get("/v1/roles", None).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn an_unknown_role_names_the_close_matches_the_caller_may_request() {
    let h = Harness::new();
    let got = h.request("alice", "db-admn", 600, "x").await;
    assert_error(&got, 404, "unknown_role");
    assert_eq!(
        got.1["error"]["message"],
        "there is no role \"db-admn\"; did you mean \"db-admin\"? (jit roles lists the roles you may request)"
    );
    // eve may request nothing: no role is named to her.
    let got = h.request("eve", "db-admn", 600, "x").await;
    assert_eq!(
        got.1["error"]["message"],
        "there is no role \"db-admn\" (jit roles lists the roles you may request)"
    );
}

fn message(got: &(axum::http::StatusCode, Value)) -> &str {
    got.1["error"]["message"].as_str().unwrap()
}

#[tokio::test]
async fn the_requester_cancels_a_pending_request_audited_apart_from_denials() {
    let h = Harness::new();
    let (_, req) = h.request("alice", "db-admin", 600, "x").await;
    let id = req["id"].as_str().unwrap().to_string();
    let cancel = format!("/v1/requests/{id}/cancel");
    let revoke = format!("/v1/requests/{id}/revoke");

    // Revoking a pending request says what to do instead, to each.
    let got = h.call("alice", "POST", &revoke, json!({})).await;
    assert_error(&got, 409, "invalid_state");
    assert_eq!(
        message(&got),
        format!(
            "request {id} is pending, nothing was issued to revoke; to withdraw it use jit cancel {id}"
        )
    );
    let got = h.call("bob", "POST", &revoke, json!({})).await;
    assert_error(&got, 409, "invalid_state");
    assert_eq!(
        message(&got),
        format!(
            "request {id} is pending, nothing was issued to revoke; an approver denies it with \
             jit deny {id} --reason TEXT"
        )
    );

    // Only the requester cancels; an approver denies.
    let got = h.call("bob", "POST", &cancel, json!({})).await;
    assert_error(&got, 403, "forbidden");
    assert_eq!(
        message(&got),
        format!(
            "only the requester may cancel request {id}; an approver denies it (jit deny {id} \
             --reason TEXT)"
        )
    );

    let (s, v) = h
        .call(
            "alice",
            "POST",
            &cancel,
            json!({"reason": "fixed it myself"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "cancelled");
    assert!(v.get("denied_by").is_none(), "{v}");

    // Cancelled is final: not pending for approvers, not approvable, not cancellable again.
    let (_, l) = h
        .call("bob", "GET", "/v1/requests?filter=pending", Value::Null)
        .await;
    assert_eq!(l["requests"], json!([]));
    assert_error(&h.approve("bob", &id).await, 409, "invalid_state");
    let got = h.call("alice", "POST", &cancel, Value::Null).await;
    assert_error(&got, 409, "invalid_state");
    assert_eq!(
        message(&got),
        format!("request {id} is cancelled, not pending")
    );

    // Audited as its own event, with the reason, and never as a denial.
    let records = jit_ca::admin::audit_export(&h.path()).unwrap();
    let cancelled: Vec<&Value> = records
        .iter()
        .filter(|r| r["event"] == "cancellation")
        .collect();
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0]["actor"], "alice");
    let details: Value = match &cancelled[0]["details"] {
        Value::String(s) => serde_json::from_str(s).unwrap(),
        d => d.clone(),
    };
    assert_eq!(details["request_id"], id.as_str());
    assert_eq!(details["reason"], "fixed it myself");
    assert!(!records.iter().any(|r| r["event"] == "denial"));
    let refused = records
        .iter()
        .filter(|r| r["event"] == "cancellation_refused")
        .count();
    assert_eq!(refused, 2, "bob's and the second cancel");
    assert!(jit_ca::admin::audit_verify(&h.path()).unwrap().ok);

    // An approved request is not cancelled: it is dropped.
    let (_, req) = h.request("alice", "db-admin", 600, "x").await;
    let id = req["id"].as_str().unwrap().to_string();
    assert_eq!(h.approve("bob", &id).await.0, 200);
    let got = h
        .call(
            "alice",
            "POST",
            &format!("/v1/requests/{id}/cancel"),
            Value::Null,
        )
        .await;
    assert_error(&got, 409, "invalid_state");
    assert_eq!(
        message(&got),
        format!("request {id} is approved, not pending; to end it early use jit drop {id}")
    );
}

#[tokio::test]
async fn a_second_pending_request_for_a_role_is_refused_naming_the_first() {
    let h = Harness::new();
    let (_, first) = h.request("alice", "db-admin", 600, "x").await;
    let first = first["id"].as_str().unwrap().to_string();
    let got = h.request("alice", "db-admin", 1200, "again").await;
    assert_error(&got, 409, "duplicate_pending_request");
    assert_eq!(
        message(&got),
        format!(
            "you already have request {first} pending for role \"db-admin\"; wait for it (jit \
             show {first}), or withdraw it first (jit cancel {first})"
        )
    );
    // Refused and audited; nothing stored.
    let (_, mine) = h
        .call("alice", "GET", "/v1/requests?filter=mine", Value::Null)
        .await;
    assert_eq!(mine["requests"].as_array().unwrap().len(), 1);
    assert!(
        h.audit_events()
            .iter()
            .any(|e| e.0 == "request_refused" && e.1 == "alice")
    );
    // Another user, or another role: not a duplicate.
    assert_eq!(h.request("dave", "db-admin", 600, "x").await.0, 201);
    assert_eq!(h.request("alice", "two-man", 600, "x").await.0, 201);
    // An auto-approved request is never pending: not refused.
    assert_eq!(
        h.request("alice", "quick", 600, "").await.1["state"],
        "approved"
    );
    assert_eq!(
        h.request("alice", "quick", 600, "").await.1["state"],
        "approved"
    );

    // Once the first is decided (or cancelled, or expired), a new one is accepted.
    let (s, v) = h
        .call(
            "alice",
            "POST",
            &format!("/v1/requests/{first}/cancel"),
            Value::Null,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = h.request("alice", "db-admin", 600, "x").await;
    assert_eq!(s, 201, "{v}");
    h.clock.advance(3601);
    let (s, v) = h.request("alice", "db-admin", 600, "x").await;
    assert_eq!(s, 201, "an expired request does not count: {v}");
}

#[tokio::test]
async fn pending_requests_per_user_are_bounded() {
    let policy = format!(
        "{POLICY}\n{}",
        (0..3)
            .map(|i| format!(
                "[roles.extra-{i}]\nhosts = [\"x-*\"]\nmax_duration = \"1h\"\n\
                 requesters = [\"group:dev\"]\napprovers = [\"group:dba\"]\n"
            ))
            .collect::<String>()
    );
    let h = Harness::with_policy_and_config(&policy, &[("max_pending_requests_per_user", "3")]);
    let mut ids = Vec::new();
    for role in ["db-admin", "two-man", "extra-0"] {
        let (s, v) = h.request("alice", role, 600, "x").await;
        assert_eq!(s, 201, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
        // Listed oldest first.
        h.clock.advance(1);
    }
    let got = h.request("alice", "extra-1", 600, "x").await;
    assert_error(&got, 409, "too_many_pending_requests");
    assert_eq!(
        message(&got),
        format!(
            "alice already has 3 pending request(s) ({}, {}, {}), the most \
             max_pending_requests_per_user in the CA's config.toml allows (3); cancel one that \
             is no longer needed (jit cancel ID) or wait until one is decided",
            ids[0], ids[1], ids[2]
        )
    );
    // Others are not affected; an approval frees a place.
    assert_eq!(h.request("dave", "extra-1", 600, "x").await.0, 201);
    assert_eq!(h.approve("bob", &ids[0]).await.1["state"], "approved");
    assert_eq!(h.request("alice", "extra-1", 600, "x").await.0, 201);
}

#[tokio::test]
async fn the_requester_drops_an_active_elevation_as_a_revocation() {
    let h = Harness::new();
    let (_, req) = h.request("alice", "db-admin", 600, "x").await;
    let id = req["id"].as_str().unwrap().to_string();
    let drop = format!("/v1/requests/{id}/drop");
    // Pending: nothing to drop; the requester cancels.
    let got = h.call("alice", "POST", &drop, Value::Null).await;
    assert_error(&got, 409, "invalid_state");
    assert_eq!(
        message(&got),
        format!(
            "request {id} is pending, nothing was issued to revoke; to withdraw it use jit cancel {id}"
        )
    );
    let (_, approved) = h.approve("bob", &id).await;
    let serial = approved["serial"].as_u64().unwrap();
    // Only the requester drops; an approver revokes.
    let got = h.call("bob", "POST", &drop, json!({})).await;
    assert_error(&got, 403, "forbidden");
    assert_eq!(
        message(&got),
        format!(
            "only the requester may drop request {id}; an approver revokes it (jit revoke {id})"
        )
    );
    let (s, v) = h.call("alice", "POST", &drop, json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "revoked");
    // Dropped twice: already revoked.
    assert_error(
        &h.call("alice", "POST", &drop, Value::Null).await,
        409,
        "invalid_state",
    );
    // A revocation by the requester, with its reason, and on the KRL like any other.
    let records = jit_ca::admin::audit_export(&h.path()).unwrap();
    let revocations: Vec<&Value> = records
        .iter()
        .filter(|r| r["event"] == "revocation")
        .collect();
    assert_eq!(revocations.len(), 1);
    assert_eq!(revocations[0]["actor"], "alice");
    let details = &revocations[0]["details"];
    assert_eq!(details["reason"], "dropped by requester");
    assert_eq!(details["dropped"], true);
    assert_eq!(details["serials"], json!([serial]));
    let grant = approved["grant_id"].as_str().unwrap();
    let (s, body, _) = h.get("/v1/revocations", None).await;
    assert_eq!(s, 200);
    assert!(
        String::from_utf8_lossy(&body).contains(grant),
        "the grant is on the revocation list"
    );
    assert!(jit_ca::admin::audit_verify(&h.path()).unwrap().ok);
}

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

//! The requester's side of issue 13: lists filtered before their limit, `--start` windows,
//! `pending_ttl`, and what `show` says about how a request ended.

use jit_test_kit::harness::*;
use serde_json::{Value, json};

/// The kit's roles plus one that bob (dba) may not approve.
fn policy_with_other() -> String {
    format!(
        "{POLICY}\n[roles.other]\nhosts = [\"other-*\"]\nmax_duration = \"1h\"\n\
         requesters = [\"group:dev\"]\napprovers = [\"alice\"]\n"
    )
}

fn ids(v: &Value) -> Vec<String> {
    v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn another_roles_flood_does_not_push_a_request_out_of_an_approvers_list() {
    let h = Harness::with_policy(&policy_with_other());
    let (s, req) = h.request("dave", "db-admin", 600, "x").await;
    assert_eq!(s, 201, "{req}");
    let id = req["id"].as_str().unwrap().to_string();
    // 600 newer pending requests (more than the 500 a list returns) for a role bob may not
    // approve, written straight into the database as a flood of many users would leave it.
    let conn = rusqlite::Connection::open(h.path().join("jit.db")).unwrap();
    let n = conn
        .execute(
            "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 600) \
             INSERT INTO requests (id, user, role, reason, duration_secs, hosts, principals, \
               sudo, public_key, created_at, pending_expires_at, approvals_required, state) \
             SELECT 'flood-' || n, 'carol', 'other', 'x', 600, '[\"other-1\"]', '[\"carol\"]', 0, \
               public_key, created_at + n, pending_expires_at + n, 1, 'pending' \
             FROM requests, seq WHERE id = ?1",
            [&id],
        )
        .unwrap();
    assert_eq!(n, 600);
    drop(conn);

    for filter in ["pending", "all"] {
        let (s, v) = h
            .call(
                "bob",
                "GET",
                &format!("/v1/requests?filter={filter}"),
                Value::Null,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(ids(&v), vec![id.clone()], "filter={filter}");
    }
    // alice may approve "other": her list is full (500, newest first), none of them dave's.
    let (_, v) = h
        .call("alice", "GET", "/v1/requests?filter=pending", Value::Null)
        .await;
    let got = ids(&v);
    assert_eq!(got.len(), 500);
    assert_eq!(got[0], "flood-600");
    // dave sees his own request among everything else he may see (he approves db-admin,
    // quick and two-man, not "other").
    let (_, v) = h
        .call("dave", "GET", "/v1/requests?filter=all", Value::Null)
        .await;
    assert_eq!(ids(&v), vec![id.clone()]);
    // eve approves nothing and requested nothing: empty, not someone else's.
    let (_, v) = h
        .call("eve", "GET", "/v1/requests?filter=all", Value::Null)
        .await;
    assert_eq!(v, json!({"requests": []}));
}

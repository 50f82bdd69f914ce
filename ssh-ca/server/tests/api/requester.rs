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
    let n = h.db().exec(
        "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 600) \
             INSERT INTO requests (id, user, role, reason, duration_secs, hosts, principals, \
               sudo, public_key, created_at, pending_expires_at, approvals_required, state) \
             SELECT 'flood-' || n, 'carol', 'other', 'x', 600, '[\"other-1\"]', '[\"carol\"]', 0, \
               public_key, created_at + n, pending_expires_at + n, 1, 'pending' \
             FROM requests, seq WHERE id = ?1",
        jit_test_kit::sql_params![&id],
    );
    assert_eq!(n, 600);

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

/// `POST /v1/requests` as `user` for a window starting at `start`.
async fn request_at(
    h: &Harness,
    user: &str,
    role: &str,
    duration: u64,
    start: u64,
) -> (axum::http::StatusCode, Value) {
    let pk = h.key(user).public_key().to_openssh().unwrap();
    h.call(
        user,
        "POST",
        "/v1/requests",
        json!({"role": role, "duration_secs": duration, "reason": "CHG-7", "public_key": pk,
               "start": start}),
    )
    .await
}

fn grant_window(issued: &Value) -> (u64, u64) {
    let g =
        jit_common::UnverifiedGrant::parse(issued["grant"].as_str().unwrap().as_bytes()).unwrap();
    let c = g.claims_unverified();
    (c.not_before.into(), c.not_after.into())
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

fn keygen_window(h: &Harness, issued: &Value) -> String {
    let path = write(
        h.dir.path(),
        "cert.pub",
        issued["certificate"].as_str().unwrap().as_bytes(),
    );
    let (ok, text) = ssh_keygen(&["-L", "-f", path.to_str().unwrap()]);
    assert!(ok, "{text}");
    text.lines()
        .find(|l| l.trim_start().starts_with("Valid:"))
        .unwrap()
        .trim()
        .to_string()
}

#[tokio::test]
async fn a_later_window_approved_before_its_start_is_valid_only_from_its_start() {
    let h = Harness::new();
    let start = T0 + 7200;
    let (s, v) = request_at(&h, "alice", "db-admin", 1800, start).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["state"], "pending");
    assert_eq!(v["start"], start);
    // Pending until the default pending_expiry (1h) after its start, but never after its
    // window ends (start + 30m).
    assert_eq!(v["pending_expires_at"], start + 1800);
    let id = v["id"].as_str().unwrap().to_string();

    // Approved now, two hours before the start.
    h.clock.advance(60);
    let (s, v) = h.approve("bob", &id).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "approved");
    assert_eq!(v["valid_after"], start);
    assert_eq!(v["valid_before"], start + 1800);
    let cert = certificate(&h, "alice", &id).await;
    assert_eq!(cert["valid_after"], start);
    assert_eq!(cert["valid_before"], start + 1800);
    assert_eq!(grant_window(&cert), (start, start + 1800));
    assert_eq!(
        keygen_window(&h, &cert),
        format!(
            "Valid: from {} to {}",
            keygen_time(start),
            keygen_time(start + 1800)
        )
    );
    // The request's audit record names the start.
    let rec = jit_ca::admin::audit_export(&h.path())
        .unwrap()
        .into_iter()
        .find(|r| r["event"] == "request")
        .unwrap();
    assert_eq!(rec["details"]["start"], start);
}

#[tokio::test]
async fn approved_after_its_start_the_window_still_ends_at_start_plus_duration() {
    let h = Harness::new();
    let start = T0 + 600;
    let (_, v) = request_at(&h, "alice", "db-admin", 1800, start).await;
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["pending_expires_at"], start + 1800);
    // Approved 10 minutes after the start: valid from now (backdated 60s, not before the
    // start) to start + 30m: 20 minutes are left.
    h.clock.set(start + 600);
    let (s, v) = h.approve("bob", &id).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["valid_after"], start + 540);
    assert_eq!(v["valid_before"], start + 1800);
    assert_eq!(
        grant_window(&certificate(&h, "alice", &id).await),
        (start + 540, start + 1800)
    );

    // A second one, never approved: it expires when its window would end.
    let (_, v) = request_at(&h, "alice", "two-man", 1800, start + 1200).await;
    let id = v["id"].as_str().unwrap().to_string();
    h.clock.set(start + 1200 + 1800);
    let got = h.approve("bob", &id).await;
    assert_error(&got, 409, "invalid_state");
    let (_, v) = h
        .call("alice", "GET", &format!("/v1/requests/{id}"), Value::Null)
        .await;
    assert_eq!(v["state"], "expired");
}

#[tokio::test]
async fn an_auto_approved_later_window_is_issued_at_once_valid_from_its_start() {
    let h = Harness::new();
    let start = T0 + 3600;
    let (s, v) = request_at(&h, "alice", "quick", 900, start).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["state"], "approved");
    assert_eq!(v["issued"]["valid_after"], start);
    assert_eq!(v["issued"]["valid_before"], start + 900);
    assert_eq!(grant_window(&v["issued"]), (start, start + 900));
}

#[tokio::test]
async fn a_start_in_the_past_or_too_far_ahead_is_refused_clearly() {
    let h = Harness::with_policy_and_config(POLICY, &[("max_start_ahead", "\"2d\"")]);
    let got = request_at(&h, "alice", "db-admin", 600, T0 - 301).await;
    assert_error(&got, 400, "invalid_input");
    assert_eq!(
        got.1["error"]["message"],
        "the start 2026-11-23T11:54:59Z is 5m 1s in the past (the CA's clock says \
         2026-11-23T12:00:00Z); give a later time, or leave out --start to begin at approval"
    );
    let got = request_at(&h, "alice", "db-admin", 600, T0 + 2 * 86_400 + 1).await;
    assert_error(&got, 400, "invalid_input");
    assert_eq!(
        got.1["error"]["message"],
        "the start 2026-11-25T12:00:01Z is 2days 1s ahead; this CA accepts at most 2days \
         (max_start_ahead in its config.toml): ask again closer to the time"
    );
    // Nothing was stored.
    let (_, v) = h
        .call("alice", "GET", "/v1/requests?filter=mine", Value::Null)
        .await;
    assert_eq!(v, json!({"requests": []}));
    // Within the 5 minutes of clock skew: a start in the past means now.
    let (s, v) = request_at(&h, "alice", "db-admin", 600, T0 - 300).await;
    assert_eq!(s, 201, "{v}");
    assert!(v.get("start").is_none(), "{v}");
    assert_eq!(v["pending_expires_at"], T0 + 3600);
    // Exactly at the bound: accepted.
    let (s, v) = request_at(&h, "alice", "two-man", 600, T0 + 2 * 86_400).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["start"], T0 + 2 * 86_400);
}

#[tokio::test]
async fn max_start_ahead_is_checked_in_config() {
    for (v, want) in [
        ("\"30m\"", "max_start_ahead is 1800s; use 1h to 365d"),
        ("\"400d\"", "max_start_ahead is 34560000s; use 1h to 365d"),
    ] {
        let text = format!("max_start_ahead = {v}\n");
        let errs = jit_ca::config::Config::parse(std::path::Path::new("/x"), &text).unwrap_err();
        assert!(errs.iter().any(|e| e == want), "{errs:?}");
    }
    let c = jit_ca::config::Config::parse(std::path::Path::new("/x"), "").unwrap();
    assert_eq!(c.max_start_ahead_secs, 30 * 86_400);
}

fn policy_with_ttl(ttl: &str) -> String {
    POLICY.replace(
        "[roles.db-admin]\n",
        &format!("[roles.db-admin]\npending_ttl = {ttl:?}\n"),
    )
}

#[tokio::test]
async fn a_pending_request_expires_after_its_roles_pending_ttl() {
    let h = Harness::with_policy(&policy_with_ttl("10m"));
    // jit roles shows a role's own pending_ttl (none: the CA's pending_expiry applies).
    let (_, roles) = h.call("alice", "GET", "/v1/roles", Value::Null).await;
    let ttl = |name: &str| {
        roles["roles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| r["pending_ttl_secs"].clone())
            .unwrap()
    };
    assert_eq!(ttl("db-admin"), 600);
    assert_eq!(ttl("two-man"), Value::Null);
    let (_, v) = h.request("alice", "db-admin", 600, "x").await;
    assert_eq!(v["pending_expires_at"], T0 + 600);
    let id = v["id"].as_str().unwrap().to_string();
    // Other roles keep the CA's pending_expiry (1h).
    let (_, v) = h.request("alice", "two-man", 600, "x").await;
    assert_eq!(v["pending_expires_at"], T0 + 3600);
    // A later window: 10 minutes from its start.
    let (_, v) = request_at(&h, "dave", "db-admin", 1800, T0 + 7200).await;
    assert_eq!(v["pending_expires_at"], T0 + 7200 + 600);

    h.clock.advance(600);
    let got = h.approve("bob", &id).await;
    assert_error(&got, 409, "invalid_state");
    assert_eq!(
        got.1["error"]["message"],
        format!("request {id} expired before it was approved; ask for a new one")
    );
    // The approver and the requester both see it expired, with when it was created and
    // when it expired (the client says why: not approved within 10m, the role's pending_ttl).
    for who in ["alice", "bob"] {
        let (_, v) = h
            .call(who, "GET", &format!("/v1/requests/{id}"), Value::Null)
            .await;
        assert_eq!(v["state"], "expired");
        assert_eq!(v["created_at"], T0);
        assert_eq!(v["pending_expires_at"], T0 + 600);
    }
}

#[test]
fn pending_ttl_is_parsed_with_bounds() {
    use jit_ca::policy::Policy;
    let p = Policy::parse(&policy_with_ttl("2h")).unwrap();
    assert_eq!(p.role("db-admin").unwrap().pending_ttl_secs, Some(7200));
    assert_eq!(p.role("two-man").unwrap().pending_ttl_secs, None);
    for (ttl, want) in [
        (
            "30s",
            "roles.db-admin.pending_ttl: \"30s\" is out of range; use 1m to 30d (e.g. pending_ttl = \"1h\")",
        ),
        (
            "31d",
            "roles.db-admin.pending_ttl: \"31d\" is out of range; use 1m to 30d (e.g. pending_ttl = \"1h\")",
        ),
    ] {
        let errs = Policy::parse(&policy_with_ttl(ttl)).unwrap_err();
        assert_eq!(errs, vec![want.to_string()], "{ttl}");
    }
    // Not a duration: the duration parser's own message (with examples), under the key.
    let errs = Policy::parse(&policy_with_ttl("soon")).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("roles.db-admin.pending_ttl: invalid duration \"soon\""),
        "{errs:?}"
    );
}

#[tokio::test]
async fn a_closed_request_says_who_closed_it_when_and_why() {
    let h = Harness::new();
    // Revoked by an approver.
    let (_, v) = h.request("alice", "db-admin", 600, "x").await;
    let id = v["id"].as_str().unwrap().to_string();
    h.approve("bob", &id).await;
    h.clock.advance(30);
    let (s, v) = h
        .call(
            "bob",
            "POST",
            &format!("/v1/requests/{id}/revoke"),
            json!({"reason": "done early"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["revoked_by"], "bob");
    assert_eq!(v["revoked_at"], T0 + 30);
    assert_eq!(v["revocation_reason"], "done early");
    // Dropped by the requester.
    let (_, v) = h.request("alice", "db-admin", 600, "x").await;
    let id = v["id"].as_str().unwrap().to_string();
    h.approve("bob", &id).await;
    let (_, v) = h
        .call(
            "alice",
            "POST",
            &format!("/v1/requests/{id}/drop"),
            json!({}),
        )
        .await;
    assert_eq!(v["revoked_by"], "alice");
    assert_eq!(v["revocation_reason"], "dropped by requester");
    // Cancelled, with and without a reason.
    let (_, v) = h.request("alice", "db-admin", 600, "x").await;
    let id = v["id"].as_str().unwrap().to_string();
    h.clock.advance(5);
    let (_, v) = h
        .call(
            "alice",
            "POST",
            &format!("/v1/requests/{id}/cancel"),
            json!({"reason": "fixed it"}),
        )
        .await;
    assert_eq!(v["state"], "cancelled");
    assert_eq!(v["cancelled_at"], T0 + 35);
    assert_eq!(v["cancel_reason"], "fixed it");
    let (_, v) = h.request("alice", "db-admin", 600, "x").await;
    let id = v["id"].as_str().unwrap().to_string();
    let (_, v) = h
        .call(
            "alice",
            "POST",
            &format!("/v1/requests/{id}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(v["cancelled_at"], T0 + 35);
    assert!(v.get("cancel_reason").is_none(), "{v}");
    // Denied: by whom, when, why.
    let (_, v) = h.request("alice", "db-admin", 600, "x").await;
    let id_denied = v["id"].as_str().unwrap().to_string();
    let (_, v) = h
        .call(
            "bob",
            "POST",
            &format!("/v1/requests/{id_denied}/deny"),
            json!({"reason": "freeze"}),
        )
        .await;
    assert_eq!(v["denied_by"], "bob");
    assert_eq!(v["denied_at"], T0 + 35);
    assert_eq!(v["denial_reason"], "freeze");
    // The approver sees the same (through a restart: it is stored, not computed).
    let mut h = h;
    h.restart();
    let (_, v) = h
        .call("bob", "GET", &format!("/v1/requests/{id}"), Value::Null)
        .await;
    assert_eq!(v["state"], "cancelled");
    assert_eq!(v["cancelled_at"], T0 + 35);
}

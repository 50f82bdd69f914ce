//! Web sessions (issue 16): the one-time login link (`POST /v1/web/login`), sessions and
//! their ends, web approvals and their records, through the real router and the service
//! with the injected clock.

use jit_api::wire::ErrorCode;
use jit_ca::service::{WebSession, csrf_matches, web::csrf_token};
use jit_test_kit::harness::*;
use serde_json::{Value, json};
use ssh_key::HashAlg;

/// The kit's roles plus the key-only ones.
fn policy() -> String {
    format!(
        "auditors = [\"group:audit\"]\n{POLICY}
[roles.keyed]
hosts = [\"k-*\"]
max_duration = \"1h\"
requesters = [\"group:dev\"]
approvers = [\"group:dba\"]
require_reason = false
approve_with_key = true

[roles.dedicated]
hosts = [\"d-*\"]
max_duration = \"1h\"
requesters = [\"group:dev\"]
approvers = [\"group:dba\"]
require_reason = false
approval_key = \"dedicated\"
"
    )
}

fn harness() -> Harness {
    Harness::with_policy(&policy())
}

/// `[web]` settings (and top-level ones) in config.toml.
fn harness_with(settings: &[(&str, &str)]) -> Harness {
    Harness::with_policy_and_config(&policy(), settings)
}

fn fp(h: &Harness, user: &str) -> String {
    h.key(user)
        .public_key()
        .fingerprint(HashAlg::Sha256)
        .to_string()
}

/// `jit web` as `user`: the login view.
async fn link(h: &Harness, user: &str) -> Value {
    let (status, v) = h.call(user, "POST", "/v1/web/login", json!({})).await;
    assert_eq!(status.as_u16(), 200, "{v}");
    v
}

fn token_of(view: &Value) -> String {
    let path = view["path"].as_str().unwrap();
    assert!(path.starts_with("/ui/login?token="), "{path}");
    path["/ui/login?token=".len()..].to_string()
}

/// A logged-in session of `user` and its cookie secret.
async fn login(h: &Harness, user: &str) -> (WebSession, String) {
    let token = token_of(&link(h, user).await);
    h.ca.web_login(&token, None).unwrap()
}

fn records(h: &Harness, event: &str) -> Vec<Value> {
    jit_ca::admin::audit_export(&h.path())
        .unwrap()
        .into_iter()
        .filter(|r| r["event"] == event)
        .collect()
}

#[track_caller]
fn assert_code<T: std::fmt::Debug>(r: Result<T, jit_ca::error::ApiError>, code: ErrorCode) {
    match r {
        Err(e) => assert_eq!(e.code, code, "{}", e.message),
        Ok(v) => panic!("expected {code:?}, got {v:?}"),
    }
}

#[tokio::test]
async fn a_login_link_logs_in_once_and_is_audited_with_the_signed_call() {
    let h = harness();
    let view = link(&h, "bob").await;
    assert_eq!(view["expires_in_secs"], 60);
    assert_eq!(view["expires_at"], h.now() + 60);
    assert!(view.get("url").is_none(), "no public_url: no url, {view}");
    let token = token_of(&view);
    assert_eq!(token.len(), 43, "32 bytes, base64url without padding");
    let preview = h.ca.web_login_preview(&token).unwrap();
    assert_eq!(preview.user, "bob");
    assert_eq!(preview.key_fingerprint, fp(&h, "bob"));
    // Previewing does not use it up.
    h.ca.web_login_preview(&token).unwrap();
    let source = Some("192.0.2.7".parse().unwrap());
    let (s, secret) = h.ca.web_login(&token, source).unwrap();
    assert!(s.id.starts_with("ws-") && s.id.len() == 19, "{}", s.id);
    assert_eq!(
        (s.user.as_str(), s.groups.clone()),
        ("bob", vec!["dba".to_string()])
    );
    assert_eq!(s.key.fingerprint, fp(&h, "bob"));
    assert_eq!(s.expires_at, h.now() + 8 * 3600);
    assert_ne!(secret, token);
    // Single use: the second POST with it is refused, and so is its preview.
    assert_code(h.ca.web_login(&token, source), ErrorCode::LoginLinkInvalid);
    assert_code(h.ca.web_login_preview(&token), ErrorCode::LoginLinkInvalid);
    assert_code(
        h.ca.web_login(&"x".repeat(43), None),
        ErrorCode::LoginLinkInvalid,
    );
    assert_code(h.ca.web_login("short", None), ErrorCode::LoginLinkInvalid);

    let links = records(&h, "web_login_link");
    assert_eq!(links.len(), 1);
    let l = &links[0];
    assert_eq!(l["actor"], "bob");
    assert_eq!(l["details"]["key"], fp(&h, "bob"));
    let ev = &l["details"]["evidence"];
    assert!(
        ev["message"].as_str().unwrap().contains("/v1/web/login"),
        "{ev}"
    );
    assert!(
        ev["signature"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN SSH SIGNATURE-----")
    );
    assert!(ev["key"].as_str().unwrap().starts_with("ssh-ed25519 "));
    let logins = records(&h, "web_login");
    assert_eq!(logins.len(), 1);
    let d = &logins[0]["details"];
    assert_eq!(d["session"], s.id.as_str());
    assert_eq!(d["key"], fp(&h, "bob"));
    assert_eq!(d["source"], "192.0.2.7");
    assert_eq!(d["link"], l["details"]["link"]);
    assert_eq!(d["link_seq"], l["seq"]);
    let refused = records(&h, "web_login_refused");
    let reasons: Vec<&str> = refused
        .iter()
        .map(|r| r["details"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["used", "unknown", "unknown"], "{refused:?}");
    assert_eq!(refused[0]["actor"], "bob");
    assert_eq!(refused[0]["details"]["code"], "login_link_invalid");
}

#[tokio::test]
async fn a_login_link_expires_at_60_seconds_exactly() {
    let h = harness();
    let t1 = token_of(&link(&h, "bob").await);
    let t2 = token_of(&link(&h, "bob").await);
    h.clock.advance(59);
    h.ca.web_login(&t1, None).unwrap();
    h.clock.advance(1);
    assert_code(h.ca.web_login_preview(&t2), ErrorCode::LoginLinkInvalid);
    let e = h.ca.web_login(&t2, None).unwrap_err();
    assert_eq!(e.code, ErrorCode::LoginLinkInvalid);
    assert!(
        e.message.contains("expired") && e.message.contains("jit web"),
        "{}",
        e.message
    );
    let refused = records(&h, "web_login_refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["details"]["reason"], "expired");
}

#[tokio::test]
async fn public_url_makes_the_absolute_url() {
    let h = harness_with(&[("public_url", "\"https://ca.example.com:8443/\"")]);
    let v = link(&h, "bob").await;
    let url = v["url"].as_str().unwrap();
    assert_eq!(
        url,
        format!("https://ca.example.com:8443{}", v["path"].as_str().unwrap())
    );
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_their_maximum_age() {
    let h = harness_with(&[(
        "[web]\nsession_idle_timeout",
        "\"15m\"\nsession_max_age = \"1h\"",
    )]);
    let (a, sa) = login(&h, "bob").await;
    assert_eq!(a.expires_at, h.now() + 3600);
    // Seen at +30 s: not written (at most once per minute), so idleness still counts from
    // the login.
    h.clock.advance(30);
    assert_eq!(h.ca.web_session(&sa).unwrap().id, a.id);
    h.clock.advance(869);
    h.ca.web_session(&sa).unwrap();
    let (b, sb) = login(&h, "carol").await;
    h.clock.advance(900);
    // a: last written at +899, now +1799: idle 900 s exactly: over.
    let e = h.ca.web_session(&sa).unwrap_err();
    assert_eq!(e.code, ErrorCode::Unauthenticated);
    assert!(
        e.message.contains("idle") && e.message.contains("jit web"),
        "{}",
        e.message
    );
    assert_code(h.ca.web_session(&sb), ErrorCode::Unauthenticated);
    // A session used every 10 minutes still ends at its maximum age.
    let (c, sc) = login(&h, "bob").await;
    let start = h.now();
    for _ in 0..5 {
        h.clock.advance(600);
        assert_eq!(h.ca.web_session(&sc).unwrap().id, c.id);
    }
    h.clock.set(start + 3599);
    h.ca.web_session(&sc).unwrap();
    h.clock.set(start + 3600);
    let e = h.ca.web_session(&sc).unwrap_err();
    assert!(e.message.contains("maximum age"), "{}", e.message);
    let _ = b;
    assert_code(h.ca.web_session(""), ErrorCode::Unauthenticated);
    assert_code(
        h.ca.web_session(&"A".repeat(43)),
        ErrorCode::Unauthenticated,
    );
}

#[tokio::test]
async fn removing_the_user_or_the_key_ends_their_sessions() {
    let h = harness();
    let (a1, s1) = login(&h, "alice").await;
    let (a2, s2) = login(&h, "alice").await;
    let (b, sb) = login(&h, "bob").await;
    let (c, sc) = login(&h, "carol").await;
    h.ca.remove_user("admin:0", "alice").unwrap();
    assert_code(h.ca.web_session(&s1), ErrorCode::Unauthenticated);
    assert_code(h.ca.web_session(&s2), ErrorCode::Unauthenticated);
    let out = records(&h, "web_logout");
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0]["actor"], "admin:0");
    assert_eq!(out[0]["details"]["by"], "admin:0");
    assert_eq!(out[0]["details"]["user"], "alice");
    let mut ids = vec![a1.id.clone(), a2.id.clone()];
    ids.sort();
    let mut got: Vec<String> =
        serde_json::from_value(out[0]["details"]["sessions"].clone()).unwrap();
    got.sort();
    assert_eq!(got, ids);

    let removed =
        jit_ca::admin::user_remove_key(&h.path(), "bob", &fp(&h, "bob"), true, h.now()).unwrap();
    assert_eq!(removed.removed.len(), 1);
    let e = h.ca.web_session(&sb).unwrap_err();
    assert_eq!(e.code, ErrorCode::Unauthenticated);
    let out = records(&h, "web_logout");
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[1]["details"]["sessions"], json!([b.id]));
    assert_eq!(out[1]["details"]["removed_key"], fp(&h, "bob"));
    assert!(
        out[1]["details"]["by"]
            .as_str()
            .unwrap()
            .starts_with("admin:")
    );
    // Carol is untouched.
    assert_eq!(h.ca.web_session(&sc).unwrap().id, c.id);
}

#[tokio::test]
async fn a_session_is_checked_against_the_keys_on_every_view() {
    // A key removed behind the service's back (no web_logout record) still ends the session.
    let h = harness();
    let (_, sb) = login(&h, "bob").await;
    h.db().exec("DELETE FROM user_keys WHERE user = 'bob'", &[]);
    let e = h.ca.web_session(&sb).unwrap_err();
    assert!(e.message.contains("key"), "{}", e.message);
    // A link whose key went before it was used is spent and refused.
    let h = harness();
    let t = token_of(&link(&h, "carol").await);
    h.db()
        .exec("DELETE FROM user_keys WHERE user = 'carol'", &[]);
    assert_code(h.ca.web_login(&t, None), ErrorCode::LoginLinkInvalid);
    assert_code(h.ca.web_login(&t, None), ErrorCode::LoginLinkInvalid);
    let reasons: Vec<Value> = records(&h, "web_login_refused")
        .iter()
        .map(|r| r["details"]["reason"].clone())
        .collect();
    assert_eq!(reasons, [json!("key_removed"), json!("used")]);
}

#[tokio::test]
async fn logout_ends_one_session_and_web_logout_all_of_them() {
    let h = harness();
    let (a, sa) = login(&h, "bob").await;
    let (b, sb) = login(&h, "bob").await;
    let (c, sc) = login(&h, "bob").await;
    let (_, sd) = login(&h, "carol").await;
    h.ca.web_logout(&a).unwrap();
    assert_code(h.ca.web_session(&sa), ErrorCode::Unauthenticated);
    h.ca.web_session(&sb).unwrap();
    let (status, v) = h.call("bob", "POST", "/v1/web/logout", json!({})).await;
    assert_eq!(status.as_u16(), 200, "{v}");
    assert_eq!(v, json!({"ended": 2}));
    assert_code(h.ca.web_session(&sb), ErrorCode::Unauthenticated);
    assert_code(h.ca.web_session(&sc), ErrorCode::Unauthenticated);
    h.ca.web_session(&sd).unwrap();
    let (_, v) = h.call("bob", "POST", "/v1/web/logout", json!({})).await;
    assert_eq!(v, json!({"ended": 0}));
    let out = records(&h, "web_logout");
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0]["details"]["sessions"], json!([a.id]));
    assert_eq!(out[0]["details"]["by"], "bob");
    let mut ids = vec![b.id.clone(), c.id.clone()];
    ids.sort();
    let mut got: Vec<String> =
        serde_json::from_value(out[1]["details"]["sessions"].clone()).unwrap();
    got.sort();
    assert_eq!(got, ids);
    // Unsigned: refused like every call.
    let (status, _, _) = h
        .send(
            axum::http::Request::builder()
                .method("POST")
                .uri("/v1/web/login")
                .body(axum::body::Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(status.as_u16(), 401);
}

async fn pending(h: &Harness, user: &str, role: &str) -> (String, String) {
    let (status, v) = h.request(user, role, 600, "INC-1 web approval").await;
    assert_eq!(status.as_u16(), 201, "{v}");
    (
        v["id"].as_str().unwrap().to_string(),
        v["request_digest"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn a_web_approval_records_the_session_key_and_evidence_and_counts() {
    let h = harness();
    let (id, digest) = pending(&h, "alice", "db-admin").await;
    let (s, _) = login(&h, "bob").await;
    let v =
        h.ca.approve_web(&s, &id, &digest, "  looks right  ")
            .unwrap();
    assert_eq!(v.state, jit_api::wire::RequestState::Approved);
    let appr = records(&h, "approval");
    assert_eq!(appr.len(), 1);
    let d = &appr[0]["details"];
    assert_eq!(appr[0]["actor"], "bob");
    assert_eq!(d["session"], s.id.as_str());
    assert_eq!(d["key"], fp(&h, "bob"));
    assert_eq!(d["evidence"]["via"], "web");
    assert_eq!(d["evidence"]["session"], s.id.as_str());
    assert_eq!(d["evidence"]["request_digest"], digest.as_str());
    assert_eq!(d["evidence"]["named_digest"], digest.as_str());
    assert_eq!(d["evidence"]["reason"], "looks right");
    assert!(d["evidence"]["request"].as_str().unwrap().contains(&id));
    assert!(d["evidence"].get("signature").is_none(), "{d}");

    // k-of-n: one web approval and one signed approval make two.
    let (id, digest) = pending(&h, "alice", "two-man").await;
    let v = h.ca.approve_web(&s, &id, &digest, "").unwrap();
    assert_eq!(v.state, jit_api::wire::RequestState::Pending);
    assert_eq!(v.approvals.len(), 1);
    // The same approver again through the API: already approved.
    assert_error(&h.approve("bob", &id).await, 409, "already_approved");
    let (status, v) = h.approve("carol", &id).await;
    assert_eq!(status.as_u16(), 200, "{v}");
    assert_eq!(v["state"], "approved");

    // A changed request (another digest) is refused.
    let (id, _) = pending(&h, "dave", "db-admin").await;
    let other = format!("sha256:{}", "0".repeat(64));
    assert_code(
        h.ca.approve_web(&s, &id, &other, ""),
        ErrorCode::RequestDigestMismatch,
    );
    assert_code(
        h.ca.approve_web(&s, &id, "nope", ""),
        ErrorCode::InvalidInput,
    );
    assert_code(
        h.ca.approve_web(&s, &id, &other, "bad\u{202e}reason"),
        ErrorCode::InvalidInput,
    );
}

#[tokio::test]
async fn the_requester_cannot_approve_their_own_request_from_the_web() {
    let h = harness();
    // dave is in dev (requester) and dba (approver).
    let (id, digest) = pending(&h, "dave", "db-admin").await;
    let (s, _) = login(&h, "dave").await;
    assert_code(
        h.ca.approve_web(&s, &id, &digest, ""),
        ErrorCode::SelfApproval,
    );
    // eve approves nothing.
    let (e, _) = login(&h, "eve").await;
    assert_code(
        h.ca.approve_web(&e, &id, &digest, ""),
        ErrorCode::NotAnApprover,
    );
    assert!(records(&h, "approval").is_empty());
}

#[tokio::test]
async fn roles_that_need_the_key_refuse_web_approvals_but_not_denials() {
    let h = harness();
    assert!(h.ca.web_needs_key("keyed"));
    assert!(h.ca.web_needs_key("dedicated"));
    assert!(!h.ca.web_needs_key("db-admin"));
    assert!(!h.ca.web_needs_key("no-such-role"));
    let (s, _) = login(&h, "bob").await;
    for role in ["keyed", "dedicated"] {
        let (id, digest) = pending(&h, "alice", role).await;
        let e = h.ca.approve_web(&s, &id, &digest, "").unwrap_err();
        assert_eq!(e.code, ErrorCode::ApprovalKeyRequired);
        assert!(
            e.message.contains(&format!("`jit approve {id}`")),
            "{}",
            e.message
        );
        // Denial from the page stays possible, and says which session made it.
        let v = h.ca.deny(&s.caller(), &id, "not now").unwrap();
        assert_eq!(v.state, jit_api::wire::RequestState::Denied);
    }
    // A keyed role: the key itself approves.
    let (id, _) = pending(&h, "alice", "keyed").await;
    let (status, v) = h.approve("bob", &id).await;
    assert_eq!(status.as_u16(), 200, "{v}");
    assert!(
        records(&h, "approval")
            .iter()
            .all(|r| r["details"].get("session").is_none())
    );
    let denials = records(&h, "denial");
    assert_eq!(denials.len(), 2);
    assert!(
        denials
            .iter()
            .all(|d| d["details"]["session"] == s.id.as_str())
    );
}

#[tokio::test]
async fn cancel_and_drop_from_a_session_carry_it() {
    let h = harness();
    let (s, _) = login(&h, "alice").await;
    let (id, _) = pending(&h, "alice", "db-admin").await;
    h.ca.cancel(&s.caller(), &id, "no longer needed").unwrap();
    let (id, _) = pending(&h, "alice", "db-admin").await;
    assert_eq!(h.approve("bob", &id).await.0.as_u16(), 200);
    h.ca.drop_own(&s.caller(), &id).unwrap();
    assert_eq!(
        records(&h, "cancellation")[0]["details"]["session"],
        s.id.as_str()
    );
    let rev = records(&h, "revocation");
    assert_eq!(rev[0]["details"]["session"], s.id.as_str());
    assert_eq!(rev[0]["details"]["dropped"], true);
    // Signed calls carry none.
    let (id, _) = pending(&h, "alice", "db-admin").await;
    let (status, _) = h
        .call(
            "alice",
            "POST",
            &format!("/v1/requests/{id}/cancel"),
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(status.as_u16(), 200);
    assert!(
        records(&h, "cancellation")[1]["details"]
            .get("session")
            .is_none()
    );
}

#[tokio::test]
async fn the_csrf_token_is_derived_from_the_cookie_and_compared_exactly() {
    let h = harness();
    let (s, secret) = login(&h, "bob").await;
    assert_eq!(s.csrf, csrf_token(&secret));
    assert_ne!(s.csrf, secret);
    assert!(csrf_matches(&s, &s.csrf));
    assert!(!csrf_matches(&s, ""));
    assert!(!csrf_matches(&s, &secret));
    let (other, _) = login(&h, "bob").await;
    assert!(!csrf_matches(&s, &other.csrf));
    // The session as read back from its cookie has the same token.
    assert_eq!(h.ca.web_session(&secret).unwrap().csrf, s.csrf);
}

#[tokio::test]
async fn secrets_never_reach_the_audit_trail() {
    let h = harness();
    let view = link(&h, "bob").await;
    let token = token_of(&view);
    let (s, secret) = h.ca.web_login(&token, None).unwrap();
    let _ = h.ca.web_login(&token, None);
    let (id, digest) = pending(&h, "alice", "db-admin").await;
    h.ca.approve_web(&s, &id, &digest, "ok").unwrap();
    h.ca.web_logout(&s).unwrap();
    let out = std::process::Command::new(JIT_CA)
        .args(["audit", "export", "--json", "--dir"])
        .arg(h.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let trail = String::from_utf8(out.stdout).unwrap();
    for ev in [
        "web_login_link",
        "web_login",
        "web_login_refused",
        "web_logout",
    ] {
        assert!(trail.contains(&format!("\"{ev}\"")), "{ev} missing");
    }
    for secret in [&token, &secret, &s.csrf] {
        assert!(!trail.contains(secret.as_str()), "a secret in the trail");
    }
    // Nor in the database: only hashes; the WAL too, where fresh rows sit until a
    // checkpoint (R1-16 F10: reading jit.db alone could pass without seeing the rows).
    // (On PostgreSQL: every row of every table, as text.)
    let stored = h.db().everything_stored();
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()));
    assert!(stored.contains(&hash), "the link's row (its hash) was read");
    assert!(!stored.contains(&token) && !stored.contains(&secret));
}

#[tokio::test]
async fn auditors_are_named_in_the_policy() {
    let h = harness();
    assert!(h.ca.is_auditor("zed", &["audit".to_string()]));
    assert!(!h.ca.is_auditor("bob", &["dba".to_string()]));
}

#[tokio::test]
async fn web_enabled_false_refuses_links_and_sessions() {
    let h = harness_with(&[("[web]\nenabled", "false")]);
    let (status, v) = h.call("bob", "POST", "/v1/web/login", json!({})).await;
    assert_eq!(status.as_u16(), 403, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("enabled = false"),
        "{v}"
    );
    assert!(records(&h, "web_login_link").is_empty());
    assert!(h.ca.web_login(&"A".repeat(43), None).is_err());
    assert!(h.ca.web_session(&"A".repeat(43)).is_err());
}

#[tokio::test]
async fn two_browsers_racing_for_one_link_get_one_session() {
    let h = harness();
    for _ in 0..5 {
        let token = token_of(&link(&h, "bob").await);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (ca, token) = (h.ca.clone(), token.clone());
                std::thread::spawn(move || ca.web_login(&token, None).is_ok())
            })
            .collect();
        let won = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(won, 1, "exactly one login per link");
    }
    assert_eq!(records(&h, "web_login").len(), 5);
}

/// R1-16 F1: a refused login link (made up, used or expired) is judged on a read
/// connection: no write transaction, and the refusal records are rate-limited, so a flood
/// of tokens cannot serialise issuance behind junk transactions.
#[tokio::test]
async fn refused_login_links_take_no_write_transaction() {
    use std::sync::atomic::Ordering::Relaxed;
    let h = harness();
    let used = token_of(&link(&h, "bob").await);
    h.ca.web_login(&used, None).unwrap();
    let expired = token_of(&link(&h, "carol").await);
    h.clock.advance(60);
    let tx0 = h.ca.stats().transactions.load(Relaxed);
    let (batches0, _) = h.ca.commit_counts();
    let source = Some("192.0.2.9".parse().unwrap());
    for i in 0..1000 {
        let t = match i % 3 {
            0 => "A".repeat(43),
            1 => used.clone(),
            _ => expired.clone(),
        };
        assert_code(h.ca.web_login(&t, source), ErrorCode::LoginLinkInvalid);
    }
    assert_eq!(
        h.ca.stats().transactions.load(Relaxed),
        tx0,
        "a refused link takes no transaction"
    );
    let (batches1, _) = h.ca.commit_counts();
    assert!(batches1 - batches0 <= 12, "{batches0} -> {batches1}");
    let refused = records(&h, "web_login_refused");
    assert!(refused.len() <= 10, "{}", refused.len());
    let reasons: Vec<&str> = refused
        .iter()
        .map(|r| r["details"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(&reasons[..3], ["unknown", "used", "expired"]);
    // A valid link still logs in (through the transaction).
    let t = token_of(&link(&h, "bob").await);
    h.ca.web_login(&t, source).unwrap();
}

/// Rewrites `key = ...` lines of the harness's config.toml and restarts the CA.
fn reconfigure(h: &mut Harness, settings: &[(&str, &str)]) {
    let cfg = h.path().join("config.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    for (k, v) in settings {
        let prefix = format!("{k} = ");
        text = text
            .lines()
            .map(|l| {
                if l.starts_with(&prefix) {
                    format!("{k} = {v}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
    }
    std::fs::write(&cfg, text).unwrap();
    h.restart();
}

/// R1-16 F2: `jit web --logout` ends idle sessions too, and a longer idle timeout later
/// does not bring them back.
#[tokio::test]
async fn a_logged_out_idle_session_stays_ended_when_the_idle_timeout_grows() {
    let mut h = harness_with(&[("[web]\nsession_idle_timeout", "\"15m\"")]);
    let (_, secret) = login(&h, "bob").await;
    h.clock.advance(16 * 60);
    assert_code(h.ca.web_session(&secret), ErrorCode::Unauthenticated);
    let (status, v) = h.call("bob", "POST", "/v1/web/logout", json!({})).await;
    assert_eq!(status.as_u16(), 200, "{v}");
    assert_eq!(
        v,
        json!({"ended": 1}),
        "the idle session is ended and counted"
    );
    reconfigure(&mut h, &[("session_idle_timeout", "\"1h\"")]);
    assert_code(h.ca.web_session(&secret), ErrorCode::Unauthenticated);
}

/// R1-16 F2: a session idle under the settings at login stays over when the idle timeout
/// grows (the shorter of the stored and the current one counts), and user removal ends
/// idle sessions so a re-created user with the same key does not get them back.
#[tokio::test]
async fn idle_sessions_end_with_their_user_and_never_revive() {
    let mut h = harness_with(&[("[web]\nsession_idle_timeout", "\"15m\"")]);
    let (_, idle) = login(&h, "carol").await;
    let (_, removed) = login(&h, "bob").await;
    h.clock.advance(16 * 60);
    h.ca.remove_user("admin:0", "bob").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pub_path = dir.path().join("bob.pub");
    std::fs::write(&pub_path, h.key("bob").public_key().to_openssh().unwrap()).unwrap();
    jit_ca::admin::user_add(&h.path(), "bob", &pub_path, &["dba".to_string()], h.now()).unwrap();
    reconfigure(&mut h, &[("session_idle_timeout", "\"1h\"")]);
    assert_code(h.ca.web_session(&removed), ErrorCode::Unauthenticated);
    let e = h.ca.web_session(&idle).unwrap_err();
    assert!(e.message.contains("idle"), "{}", e.message);
}

/// R1-16 F2: lowering session_max_age shortens existing sessions.
#[tokio::test]
async fn a_lower_max_age_applies_to_existing_sessions() {
    let mut h = harness_with(&[("[web]\nsession_max_age", "\"8h\"")]);
    let (_, secret) = login(&h, "bob").await;
    let start = h.now();
    reconfigure(&mut h, &[("session_max_age", "\"1h\"")]);
    assert_eq!(h.ca.web_session(&secret).unwrap().expires_at, start + 3600);
    for _ in 0..5 {
        h.clock.advance(600);
        h.ca.web_session(&secret).unwrap();
    }
    h.clock.set(start + 3600);
    let e = h.ca.web_session(&secret).unwrap_err();
    assert!(e.message.contains("maximum age"), "{}", e.message);
}

/// R1-16 F3: a web approval cast before the role needed the key does not count after.
#[tokio::test]
async fn a_web_approval_stops_counting_when_the_role_comes_to_need_the_key() {
    let h = harness();
    let (id, digest) = pending(&h, "alice", "two-man").await;
    let (s, _) = login(&h, "bob").await;
    let v = h.ca.approve_web(&s, &id, &digest, "").unwrap();
    assert_eq!(v.state, jit_api::wire::RequestState::Pending);
    let path = h.path().join("policy.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let tightened = text.replacen(
        "approvals = 2\n",
        "approvals = 2\napprove_with_key = true\n",
        1,
    );
    assert_ne!(text, tightened);
    std::fs::write(&path, tightened).unwrap();
    h.ca.reload_policy().unwrap();
    assert!(h.ca.web_needs_key("two-man"));
    let (status, v) = h.approve("carol", &id).await;
    assert_eq!(status.as_u16(), 200, "{v}");
    assert_eq!(
        v["state"], "pending",
        "the click does not stand in for a key: {v}"
    );
    let (status, v) = h.approve("dave", &id).await;
    assert_eq!(status.as_u16(), 200, "{v}");
    assert_eq!(v["state"], "approved", "{v}");
}

/// R1-16 F4: with the shortest idle timeout (1m), a session used every 30 s stays valid
/// and ends 60 s after its last use.
#[tokio::test]
async fn the_shortest_idle_timeout_keeps_a_session_in_use_alive() {
    let h = harness_with(&[("[web]\nsession_idle_timeout", "\"1m\"")]);
    let (_, secret) = login(&h, "bob").await;
    for _ in 0..6 {
        h.clock.advance(30);
        h.ca.web_session(&secret).unwrap();
    }
    h.clock.advance(59);
    h.ca.web_session(&secret).unwrap();
    h.clock.advance(60);
    let e = h.ca.web_session(&secret).unwrap_err();
    assert!(e.message.contains("idle"), "{}", e.message);
}

/// R1-16 F5: at most 5 unused login links per user; the sixth is refused (audited like
/// every refused call) until one is used or expires.
#[tokio::test]
async fn a_user_has_at_most_five_unused_login_links() {
    let h = harness();
    let mut tokens = Vec::new();
    for _ in 0..5 {
        tokens.push(token_of(&link(&h, "bob").await));
    }
    for _ in 0..15 {
        let (status, v) = h.call("bob", "POST", "/v1/web/login", json!({})).await;
        assert_eq!(status.as_u16(), 409, "{v}");
        assert_eq!(v["error"]["code"], "invalid_state");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(
            m.contains("5 unused login links") && m.contains("jit web"),
            "{m}"
        );
    }
    assert_eq!(records(&h, "web_login_link").len(), 5);
    assert!(!records(&h, "access_refused").is_empty());
    // Others are not affected; using one frees a place; so does expiry.
    link(&h, "carol").await;
    h.ca.web_login(&tokens[0], None).unwrap();
    link(&h, "bob").await;
    h.clock.advance(60);
    for _ in 0..5 {
        link(&h, "bob").await;
    }
}

/// R1-16 F6: a decision from a session re-checks the session in its transaction.
#[tokio::test]
async fn a_session_ended_after_the_page_loaded_decides_nothing() {
    let h = harness();
    let (id, digest) = pending(&h, "alice", "db-admin").await;
    let (s, _) = login(&h, "carol").await;
    jit_ca::admin::user_remove_key(&h.path(), "carol", &fp(&h, "carol"), true, h.now()).unwrap();
    assert_code(
        h.ca.approve_web(&s, &id, &digest, ""),
        ErrorCode::Unauthenticated,
    );
    let (b, _) = login(&h, "bob").await;
    h.ca.web_logout(&b).unwrap();
    assert_code(
        h.ca.approve_web(&b, &id, &digest, ""),
        ErrorCode::Unauthenticated,
    );
    assert_code(
        h.ca.deny(&b.caller(), &id, "no"),
        ErrorCode::Unauthenticated,
    );
    let (a, _) = login(&h, "alice").await;
    h.ca.web_logout(&a).unwrap();
    assert_code(
        h.ca.cancel(&a.caller(), &id, "no"),
        ErrorCode::Unauthenticated,
    );
    assert!(records(&h, "approval").is_empty());
    assert!(records(&h, "denial").is_empty());
    // Dropping an active elevation from an ended session is refused too.
    let (status, v) = h.approve("bob", &id).await;
    assert_eq!(v["state"], "approved", "{status} {v}");
    assert_code(h.ca.drop_own(&a.caller(), &id), ErrorCode::Unauthenticated);
    let (a2, _) = login(&h, "alice").await;
    h.ca.drop_own(&a2.caller(), &id).unwrap();
}

/// R1-16 F7: removing a user or a key withdraws their unused login links.
#[tokio::test]
async fn removing_the_user_or_the_key_withdraws_unused_links() {
    let h = harness();
    let t = token_of(&link(&h, "bob").await);
    h.ca.remove_user("admin:0", "bob").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pub_path = dir.path().join("bob.pub");
    std::fs::write(&pub_path, h.key("bob").public_key().to_openssh().unwrap()).unwrap();
    jit_ca::admin::user_add(&h.path(), "bob", &pub_path, &["dba".to_string()], h.now()).unwrap();
    let e = h.ca.web_login(&t, None).unwrap_err();
    assert_eq!(e.code, ErrorCode::LoginLinkInvalid);
    assert!(e.message.contains("withdrawn"), "{}", e.message);

    let t = token_of(&link(&h, "carol").await);
    jit_ca::admin::user_remove_key(&h.path(), "carol", &fp(&h, "carol"), true, h.now()).unwrap();
    let pub_path = dir.path().join("carol.pub");
    std::fs::write(&pub_path, h.key("carol").public_key().to_openssh().unwrap()).unwrap();
    jit_ca::admin::user_add_key(&h.path(), "carol", &pub_path, false, h.now()).unwrap();
    assert_code(h.ca.web_login(&t, None), ErrorCode::LoginLinkInvalid);
    let reasons: Vec<Value> = records(&h, "web_login_refused")
        .iter()
        .map(|r| r["details"]["reason"].clone())
        .collect();
    assert_eq!(reasons, [json!("withdrawn"), json!("withdrawn")]);
}

/// R1-16 F8: the refusal of a used link tells a victim who lost the race what to do.
#[tokio::test]
async fn a_used_link_tells_to_run_jit_web_logout() {
    let h = harness();
    let t = token_of(&link(&h, "bob").await);
    h.ca.web_login(&t, None).unwrap();
    let e = h.ca.web_login(&t, None).unwrap_err();
    assert!(e.message.contains("`jit web --logout`"), "{}", e.message);
}

/// R1-16 F9: the answer carrying the token is not cached.
#[tokio::test]
async fn the_login_link_answer_is_not_cached() {
    let h = harness();
    let req = h.signed_request(
        h.key("bob"),
        "POST",
        "/v1/web/login",
        b"{}",
        h.now(),
        &jit_api::auth::new_nonce(),
    );
    let (status, _, headers) = h.send(req).await;
    assert_eq!(status.as_u16(), 200);
    assert_eq!(headers["cache-control"], "no-store");
}

/// Links and sessions are deleted by the sweep a day after they ended.
#[tokio::test]
async fn the_sweep_prunes_links_and_sessions_a_day_after_their_end() {
    let h = harness();
    let (a, _) = login(&h, "bob").await;
    let _unused = link(&h, "bob").await;
    h.ca.web_logout(&a).unwrap();
    let (_, live) = login(&h, "carol").await;
    let count = |table: &str| -> i64 { h.db().one(&format!("SELECT COUNT(*) FROM {table}"), &[]) };
    assert_eq!((count("web_logins"), count("web_sessions")), (3, 2));
    h.ca.sweep().unwrap();
    assert_eq!((count("web_logins"), count("web_sessions")), (3, 2));
    // A day after their end (the logout, the links' expiry), not before: carol's session
    // (idle since its login, 15 min) ends later and stays.
    h.clock.advance(24 * 3600);
    h.ca.sweep().unwrap();
    assert_eq!((count("web_logins"), count("web_sessions")), (3, 2));
    h.clock.advance(61);
    h.ca.sweep().unwrap();
    assert_eq!((count("web_logins"), count("web_sessions")), (0, 1));
    let _ = live;
}

/// Denials, cancellations and drops made from a session name the key that established it
/// (the issue: "audited as the user, with the session id and the key fingerprint"), as web
/// approvals do.
#[tokio::test]
async fn decisions_from_a_session_name_its_key() {
    let h = harness();
    let (s, _) = login(&h, "alice").await;
    let (bob, _) = login(&h, "bob").await;
    assert!(!s.key.fingerprint.is_empty());
    let (id, _) = pending(&h, "alice", "db-admin").await;
    h.ca.deny(&bob.caller(), &id, "not now").unwrap();
    let (id, _) = pending(&h, "alice", "db-admin").await;
    h.ca.cancel(&s.caller(), &id, "no longer needed").unwrap();
    let (id, _) = pending(&h, "alice", "db-admin").await;
    assert_eq!(h.approve("bob", &id).await.0.as_u16(), 200);
    h.ca.drop_own(&s.caller(), &id).unwrap();
    let d = &records(&h, "denial")[0]["details"];
    assert_eq!(d["session"], bob.id.as_str());
    assert_eq!(d["key"], bob.key.fingerprint.as_str());
    let c = &records(&h, "cancellation")[0]["details"];
    assert_eq!(c["key"], s.key.fingerprint.as_str());
    let r = &records(&h, "revocation")[0]["details"];
    assert_eq!(r["key"], s.key.fingerprint.as_str());
}

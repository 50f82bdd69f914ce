//! Hostile API traffic (issue 11): refusals cannot flood the audit trail (item 11), and a
//! signed call is bound to one CA (item 12). Messages are built by hand here, from the
//! documented scheme, so the tests do not depend on the client's own signing code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::Request;
use jit_api::auth;
use jit_test_kit::harness::*;
use sha2::{Digest as _, Sha256};
use ssh_key::{Algorithm, HashAlg, PrivateKey};

/// A call signed by `user` over `prefix` (the scheme's first lines) and the rest of the
/// documented message; `audience` is sent as `X-Jit-Audience` when given.
fn hand_signed(
    h: &Harness,
    user: &str,
    prefix: &str,
    audience: Option<&str>,
    method: &str,
    path: &str,
) -> Request<Body> {
    let key = h.key(user);
    let ts = h.now();
    let nonce = auth::new_nonce();
    let digest = hex::encode(Sha256::digest(b""));
    let msg = format!("{prefix}{method}\n{path}\n{digest}\n{ts}\n{nonce}\n");
    let sig = auth::sign_with_key(key, msg.as_bytes()).unwrap();
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header(auth::HDR_KEY, auth::key_header(key.public_key()).unwrap())
        .header(auth::HDR_TIMESTAMP, ts.to_string())
        .header(auth::HDR_NONCE, nonce)
        .header(auth::HDR_SIGNATURE, auth::encode_signature(&sig).unwrap());
    if let Some(a) = audience {
        b = b.header("x-jit-audience", a);
    }
    b.body(Body::empty()).unwrap()
}

fn fingerprint(k: &ssh_key::PublicKey) -> String {
    k.fingerprint(HashAlg::Sha256).to_string()
}

/// This CA's audience: the fingerprint of the first key of `GET /v1/ca.pub`.
async fn own_audience(h: &Harness) -> String {
    let (status, body, _) = h
        .send(Request::get("/v1/ca.pub").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status.as_u16(), 200);
    let text = String::from_utf8(body).unwrap();
    let first = text.lines().next().unwrap();
    fingerprint(&ssh_key::PublicKey::from_openssh(first).unwrap())
}

async fn answer(h: &Harness, req: Request<Body>) -> (axum::http::StatusCode, serde_json::Value) {
    let (status, body, _) = h.send(req).await;
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

#[tokio::test]
async fn a_call_signed_for_another_ca_is_refused_and_audited() {
    let h = Harness::new();
    let own = own_audience(&h).await;
    // Signed for this CA: accepted.
    let ok = answer(
        &h,
        hand_signed(
            &h,
            "alice",
            &format!("jit-api-v2\n{own}\n"),
            Some(&own),
            "GET",
            "/v1/whoami",
        ),
    )
    .await;
    assert_eq!(ok.0.as_u16(), 200, "{}", ok.1);
    assert_eq!(ok.1["user"], "alice");

    // Signed (validly) for another CA, e.g. captured from staging and replayed here.
    let staging = PrivateKey::random(&mut rand_core::OsRng, Algorithm::Ed25519).unwrap();
    let other = fingerprint(staging.public_key());
    let before = h.audit_events().len();
    let got = answer(
        &h,
        hand_signed(
            &h,
            "alice",
            &format!("jit-api-v2\n{other}\n"),
            Some(&other),
            "GET",
            "/v1/whoami",
        ),
    )
    .await;
    assert_error(&got, 401, "wrong_audience");
    let msg = got.1["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&own) && msg.contains(&other), "{msg}");
    let events = h.audit_events();
    assert_eq!(events.len(), before + 1, "{events:?}");
    let (ev, actor) = events.last().unwrap();
    assert_eq!(ev, "auth_failure");
    assert!(actor.starts_with("alice ("), "{actor}");

    // Claiming this CA's audience over a message signed for the other: a bad signature.
    let got = answer(
        &h,
        hand_signed(
            &h,
            "alice",
            &format!("jit-api-v2\n{other}\n"),
            Some(&own),
            "GET",
            "/v1/whoami",
        ),
    )
    .await;
    assert_error(&got, 401, "bad_signature");
}

#[tokio::test]
async fn a_v1_call_is_refused_by_default() {
    let h = Harness::new();
    let before = h.audit_events().len();
    let got = answer(
        &h,
        hand_signed(&h, "alice", "jit-api-v1\n", None, "GET", "/v1/whoami"),
    )
    .await;
    assert_error(&got, 401, "legacy_signature");
    let msg = got.1["error"]["message"].as_str().unwrap();
    assert!(msg.contains("accept_v1_signatures"), "{msg}");
    let events = h.audit_events();
    assert_eq!(events.len(), before + 1);
    assert_eq!(events.last().unwrap().0, "auth_failure");
}

#[tokio::test]
async fn v1_calls_are_accepted_only_when_enabled_and_then_audited() {
    let mut h = Harness::new();
    let cfg = h.path().join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "accept_v1_signatures = false",
        "accept_v1_signatures = true",
    );
    assert!(text.contains("accept_v1_signatures = true"));
    std::fs::write(&cfg, text).unwrap();
    h.restart();
    for _ in 0..3 {
        let got = answer(
            &h,
            hand_signed(&h, "alice", "jit-api-v1\n", None, "GET", "/v1/whoami"),
        )
        .await;
        assert_eq!(got.0.as_u16(), 200, "{}", got.1);
    }
    // Recorded once per user and hour, counted every time.
    let legacy = h
        .audit_events()
        .into_iter()
        .filter(|(e, _)| e == "legacy_signature")
        .collect::<Vec<_>>();
    assert_eq!(
        legacy,
        vec![("legacy_signature".to_string(), "alice".to_string())]
    );
    let (_, metrics, _) = h
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("jit_ca_legacy_signatures_total 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_flood_of_bad_calls_leaves_a_bounded_trail() {
    let h = Harness::new();
    let before = h.audit_events().len();
    let long = "a".repeat(8000);
    let fakes: Vec<String> = (0..200)
        .map(|_| {
            let k = PrivateKey::random(&mut rand_core::OsRng, Algorithm::Ed25519).unwrap();
            auth::key_header(k.public_key()).unwrap()
        })
        .collect();
    for i in 0..10_000usize {
        let req = if i % 2 == 0 {
            // Unsigned, with a long path and query.
            Request::get(format!("/v1/whoami?{long}{i}"))
                .body(Body::empty())
                .unwrap()
        } else {
            // Signed with keys nobody registered (each a different actor).
            Request::get(format!("/v1/requests/{long}"))
                .header(auth::HDR_KEY, &fakes[i % fakes.len()])
                .header(auth::HDR_TIMESTAMP, h.now().to_string())
                .header(auth::HDR_NONCE, auth::new_nonce())
                .header(auth::HDR_SIGNATURE, "AAAA")
                .body(Body::empty())
                .unwrap()
        };
        let (status, _, _) = h.send(req).await;
        assert_eq!(status.as_u16(), 401);
    }
    let during = h.audit_events().len() - before;
    assert!(
        during <= 20,
        "10,000 refusals from one source left {during} audit records"
    );

    // The first records are there, with the path cut short.
    let records = jit_ca::admin::audit_export(&h.path()).unwrap();
    let first = records
        .iter()
        .find(|r| r["event"] == "auth_failure")
        .expect("the first refusals are recorded");
    let path = first["details"]["path"].as_str().unwrap();
    assert!(
        path.starts_with("/v1/whoami?aaa") && path.len() < 400,
        "{} bytes",
        path.len()
    );
    for r in &records {
        assert!(
            r.to_string().len() < 2048,
            "a record of {} bytes",
            r.to_string().len()
        );
    }

    // When the window ends the rest are summarised in one record with their count.
    h.clock.advance(120);
    let (status, _, _) = h
        .send(Request::get("/v1/whoami").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status.as_u16(), 401);
    let records = jit_ca::admin::audit_export(&h.path()).unwrap();
    let summaries: Vec<_> = records
        .iter()
        .filter(|r| r["event"] == "refusals_summarised")
        .collect();
    let counted: u64 = summaries
        .iter()
        .map(|r| r["details"]["count"].as_u64().unwrap())
        .sum();
    let full = records[before..]
        .iter()
        .filter(|r| r["event"] == "auth_failure")
        .count() as u64;
    assert_eq!(
        counted + full,
        10_001,
        "every refusal is recorded or counted"
    );
    assert!(summaries.len() <= 2, "{summaries:?}");
    assert!(records.len() - before <= 25);
    assert!(jit_ca::admin::audit_verify(&h.path()).unwrap().ok);
    let (_, metrics, _) = h
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("jit_ca_auth_failures_total 10001"),
        "{metrics}"
    );
}

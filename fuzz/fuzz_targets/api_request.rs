//! The `jit-ca` HTTP API with fuzzed request bodies: the real router (axum), the real
//! authentication (every call is signed here exactly as `jit` signs it, so the body reaches
//! JSON parsing and the service's validation), SQLite in $JIT_FUZZ_SCRATCH (else /dev/shm), a fixed clock.
//!
//! Input: `OP` byte, then the body (for `list`: the query string). Invariants: never a 5xx,
//! and every refusal is a JSON `{"error":{"code","message"}}` with a stable code.
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use jit_api::auth;
use jit_ca::clock::FixedClock;
use jit_ca::service::Ca;
use jit_api::wire::{ErrorBody, ErrorCode};
use libfuzzer_sys::fuzz_target;
use ssh_key::PrivateKey;
use ssh_key::private::Ed25519Keypair;
use tower::ServiceExt as _;

const T0: u64 = 1_795_435_200;
const POLICY: &str = r#"
[roles.db-admin]
principals = ["dbadmin"]
hosts = ["db-*"]
sudo = true
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
approvals = 1
require_reason = true
extensions = ["permit-pty"]

[roles.quick]
hosts = ["web-*"]
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
require_reason = false
[[roles.quick.auto_approve_rules]]
name = "oncall"
groups = ["dev"]
max_duration = "15m"
"#;

struct Env {
    rt: tokio::runtime::Runtime,
    app: Router,
    alice: PrivateKey,
    bob: PrivateKey,
    audience: String,
    pending: String,
}

fn key(seed: u8) -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let scratch = std::env::var_os("JIT_FUZZ_SCRATCH").map_or_else(
            || std::path::PathBuf::from("/dev/shm"),
            std::path::PathBuf::from,
        );
        let root = scratch.join(format!("jit-fuzz-api-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("scratch dir");
        let dir = root.join("ca");
        jit_ca::admin::init(&dir).expect("jit-ca init");
        std::fs::write(dir.join("policy.toml"), POLICY).expect("policy");
        let (alice, bob) = (key(1), key(2));
        for (name, k, group) in [("alice", &alice, "dev"), ("bob", &bob, "dba")] {
            let p = root.join(format!("{name}.pub"));
            std::fs::write(&p, k.public_key().to_openssh().expect("pub")).expect("pub file");
            jit_ca::admin::user_add(&dir, name, &p, &[group.to_string()], T0).expect("user add");
        }
        let ca = Arc::new(Ca::open(&dir, Arc::new(FixedClock::new(T0))).expect("Ca::open"));
        let audience = ca.audience().to_string();
        let app = jit_ca::api::router(ca);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut e = Env {
            rt,
            app,
            alice,
            bob,
            audience,
            pending: String::new(),
        };
        let body = serde_json::json!({"role": "db-admin", "duration_secs": 600, "reason": "fuzz",
            "public_key": e.alice.public_key().to_openssh().expect("pub")});
        let (status, resp) = send(
            &e,
            &e.alice,
            "POST",
            "/v1/requests",
            body.to_string().as_bytes(),
        );
        assert_eq!(
            status,
            201,
            "setup request: {}",
            String::from_utf8_lossy(&resp)
        );
        let v: serde_json::Value = serde_json::from_slice(&resp).expect("json");
        e.pending = v["id"].as_str().expect("id").to_string();
        e
    })
}

fn send(e: &Env, k: &PrivateKey, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    static NONCE: AtomicU64 = AtomicU64::new(1);
    let nonce = format!("{:032x}", NONCE.fetch_add(1, Ordering::Relaxed));
    let msg = auth::message(&e.audience, method, path, body, T0, &nonce);
    let sig = auth::sign_with_key(k, &msg).expect("sign");
    let Ok(req) = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header(auth::HDR_AUDIENCE, &e.audience)
        .header(
            auth::HDR_KEY,
            auth::key_header(k.public_key()).expect("key"),
        )
        .header(auth::HDR_TIMESTAMP, T0.to_string())
        .header(auth::HDR_NONCE, nonce)
        .header(
            auth::HDR_SIGNATURE,
            auth::encode_signature(&sig).expect("sig"),
        )
        .body(Body::from(body.to_vec()))
    else {
        return (0, Vec::new());
    };
    e.rt.block_on(async {
        let resp = e.app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, bytes.to_vec())
    })
}

fuzz_target!(|data: &[u8]| {
    let e = env();
    let Some((&op, body)) = data.split_first() else {
        return;
    };
    let id = &e.pending;
    let (k, method, path) = match op % 7 {
        0 => (&e.alice, "POST", "/v1/requests".to_string()),
        1 => (&e.bob, "POST", format!("/v1/requests/{id}/deny")),
        2 => (&e.alice, "POST", format!("/v1/requests/{id}/revoke")),
        3 => (&e.alice, "POST", format!("/v1/requests/{id}/extend")),
        4 => (&e.bob, "POST", format!("/v1/requests/{id}/approve")),
        5 => (
            &e.alice,
            "GET",
            format!("/v1/requests/{}", String::from_utf8_lossy(body)),
        ),
        _ => (
            &e.alice,
            "GET",
            format!("/v1/requests?{}", String::from_utf8_lossy(body)),
        ),
    };
    let body = if method == "GET" { &[][..] } else { body };
    let (status, resp) = send(e, k, method, &path, body);
    if status == 0 {
        return; // not a valid URI: the HTTP layer never sees it
    }
    assert!(
        status < 500,
        "{status} for {method} {path}: {}",
        String::from_utf8_lossy(&resp)
    );
    if status >= 400 {
        let err: ErrorBody = serde_json::from_slice(&resp).unwrap_or_else(|_| {
            panic!(
                "{status} without a JSON error: {}",
                String::from_utf8_lossy(&resp)
            )
        });
        let code: Result<ErrorCode, _> =
            serde_json::from_value(serde_json::Value::String(err.error.code.clone()));
        assert!(code.is_ok(), "unknown error code {:?}", err.error.code);
        assert!(!err.error.message.is_empty());
    }
});

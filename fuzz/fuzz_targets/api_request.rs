//! The `jit-ca` HTTP API with fuzzed request bodies: the real router (axum), the real
//! authentication (every call is signed here exactly as `jit` signs it, so the body reaches
//! JSON parsing and the service's validation), SQLite in $JIT_FUZZ_SCRATCH (else /dev/shm), a fixed clock:
//! the test kit's harness (`jit_test_kit::harness`) and signed calls (`jit_test_kit::request`).
//!
//! Input: `OP` byte, then the body (for `list`: the query string). Invariants: never a 5xx,
//! and every refusal is a JSON `{"error":{"code","message"}}` with a stable code.
#![no_main]

use std::sync::OnceLock;

use jit_api::wire::{ErrorBody, ErrorCode};
use jit_test_kit::harness::{Harness, POLICY};
use libfuzzer_sys::fuzz_target;
use ssh_key::PrivateKey;

/// The kit's in-process CA (its policy and users, keys from the kit, a fixed clock) with one
/// pending request of alice's, and a runtime to drive the router.
struct Env {
    rt: tokio::runtime::Runtime,
    h: Harness,
    alice: PrivateKey,
    bob: PrivateKey,
    pending: String,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let scratch = std::env::var_os("JIT_FUZZ_SCRATCH").map_or_else(
            || std::path::PathBuf::from("/dev/shm"),
            std::path::PathBuf::from,
        );
        let h = Harness::with_policy_in(&scratch, POLICY);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (status, v) = rt.block_on(h.request("alice", "db-admin", 600, "fuzz"));
        assert_eq!(status, 201, "setup request: {v}");
        let pending = v["id"].as_str().expect("id").to_string();
        let (alice, bob) = (h.key("alice").clone(), h.key("bob").clone());
        Env {
            rt,
            h,
            alice,
            bob,
            pending,
        }
    })
}

fn send(e: &Env, k: &PrivateKey, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let call = e.h.call_of(k, method, path, body, e.h.now());
    let Some(req) = call.try_request() else {
        return (0, Vec::new());
    };
    e.rt.block_on(async {
        let (status, bytes, _) = e.h.send(req).await;
        (status.as_u16(), bytes)
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

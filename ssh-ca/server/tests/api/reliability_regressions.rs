//! Regression tests for bugs found by the reliability work (fuzzing, bad-input matrices).
//! One test per bug; each names the fuzz target or matrix that found it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jit_api::auth;
use jit_test_kit::harness::*;

/// Found by the `api_request` fuzz target (fuzz/corpus/api_request/path-invalid-utf8): a
/// request whose path parameter or query string is rejected by axum's extractors (here a
/// percent-encoded byte that is not UTF-8) got a `text/plain` 400 ("Invalid URL: Invalid
/// UTF-8 in `id`") instead of the API's JSON error with a stable code, and left no audit
/// record, although the wire contract says every error is `{"error":{"code","message"}}`.
#[tokio::test]
async fn extractor_rejections_are_json_errors() {
    let h = Harness::new();
    for path in ["/v1/requests/%FF%FE", "/v1/requests?filter=%FF"] {
        let req = h.signed_request(
            h.key("alice"),
            "GET",
            path,
            b"",
            h.now(),
            &auth::new_nonce(),
        );
        let (status, bytes, _) = h.send(req).await;
        assert!(
            status.is_client_error(),
            "{path}: status {status} for a malformed path"
        );
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{path}: {status} is not a JSON error: {:?}",
                String::from_utf8_lossy(&bytes)
            )
        });
        assert!(
            v["error"]["code"].as_str().is_some_and(|c| !c.is_empty()),
            "{path}: no stable code in {v}"
        );
    }
}

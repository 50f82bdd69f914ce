//! The public documents (no authentication): health, keys, the KRL and revocation list,
//! host grants, the audit checkpoint and metrics, with ETags for conditional GETs.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::metrics;
use super::state::{AppState, path_param};
use crate::service::Doc;

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

fn serve_doc(headers: &HeaderMap, doc: &Doc, content_type: &'static str) -> Response {
    let etag =
        HeaderValue::from_str(&doc.etag).unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    let cache = HeaderValue::from_static("no-cache");
    if etag_matches(headers, &doc.etag) {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    (
        StatusCode::OK,
        [
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cache),
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        ],
        Body::from(Bytes::from_owner(doc.body.clone())),
    )
        .into_response()
}

/// Like [`serve_doc`], building the body only when it is sent (not for a 304), from the
/// cached set's shared bytes.
fn serve_host_doc(headers: &HeaderMap, doc: &crate::service::HostDoc) -> Response {
    let etag =
        HeaderValue::from_str(doc.etag()).unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    let cache = HeaderValue::from_static("no-cache");
    if etag_matches(headers, doc.etag()) {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    (
        StatusCode::OK,
        [
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cache),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        Body::new(super::host_body::HostBody::new(doc)),
    )
        .into_response()
}

/// 200 while this replica reaches its database; 503 `unavailable` after a round trip to
/// PostgreSQL failed and none has succeeded since (load balancers take it out of rotation).
pub(super) async fn health(State(st): State<AppState>) -> Response {
    if st.ca.database_healthy() {
        Json(serde_json::json!({"status": "ok"})).into_response()
    } else {
        crate::error::ApiError::new(
            jit_api::wire::ErrorCode::Unavailable,
            "the CA's database is unreachable; retry (or another replica)",
        )
        .into_response()
    }
}

pub(super) async fn keys(State(st): State<AppState>, headers: HeaderMap) -> Response {
    serve_doc(&headers, &st.ca.published().keys, "application/json")
}

pub(super) async fn ca_pub(State(st): State<AppState>, headers: HeaderMap) -> Response {
    serve_doc(
        &headers,
        &st.ca.published().ca_pub,
        "text/plain; charset=utf-8",
    )
}

pub(super) async fn krl(State(st): State<AppState>, headers: HeaderMap) -> Response {
    serve_doc(&headers, &st.ca.published().krl, "application/octet-stream")
}

pub(super) async fn revocations(State(st): State<AppState>, headers: HeaderMap) -> Response {
    serve_doc(
        &headers,
        &st.ca.published().revocations,
        "text/plain; charset=utf-8",
    )
}

/// `GET /v1/audit/checkpoint`: the latest signed audit checkpoint (see docs/api.md).
pub(super) async fn audit_checkpoint(State(st): State<AppState>, headers: HeaderMap) -> Response {
    match st.ca.checkpoint_doc() {
        Ok(doc) => serve_doc(&headers, &doc, "text/plain; charset=utf-8"),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn host_grants(
    State(st): State<AppState>,
    host: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let host = match path_param(host) {
        Ok(h) => h,
        Err(e) => return e.into_response(),
    };
    // It may rebuild the grant snapshot from the database (after any issuance or
    // revocation). On PostgreSQL that read crosses the network: on the blocking pool, never
    // on an async worker. On SQLite it stays where it always was (a local read; moved to the
    // blocking pool, the snapshots were allocated in more malloc arenas and the CA's RSS under
    // tests/system/54-load.sh grew past its bound).
    let doc = if st.ca.postgres().is_some() {
        let ca = st.ca.clone();
        super::blocking(move || ca.host_grants(&host)).await
    } else {
        st.ca.host_grants(&host)
    };
    match doc {
        Ok(doc) => serve_host_doc(&headers, &doc),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn metrics_text(State(st): State<AppState>) -> Response {
    let seq = st.ca.published().revocation_sequence;
    // A read of the outbox: on the blocking pool, like every storage call.
    let ca = st.ca.clone();
    let gauges = tokio::task::spawn_blocking(move || ca.notify_gauges())
        .await
        .ok()
        .and_then(Result::ok);
    let notify = metrics::NotifyGauges {
        deliveries: st.ca.notify_hub().counts(),
        depth: gauges.map(|g| g.0),
        oldest_undelivered_secs: gauges.map(|g| g.1),
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(
            st.ca.stats(),
            seq,
            metrics::StoreGauges {
                commits: st.ca.commit_counts(),
                nonces: st.ca.nonces_remembered(),
                revocation_lag: st.ca.revocation_lag(),
                host_cache: st.ca.host_cache_stats(),
                notify,
            },
        ),
    )
        .into_response()
}

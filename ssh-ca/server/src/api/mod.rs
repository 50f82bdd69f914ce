//! The HTTP layer: routes of [`jit_api::wire`], request signing via [`jit_api::auth`], JSON
//! errors with stable codes, body limits, ETags, metrics. Decisions live in
//! [`crate::service`]; every call into it runs on the blocking pool.

mod host_body;
pub mod metrics;
mod public;
mod state;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::audit::event;
use crate::error::ApiError;
use crate::service::{AuthHeaders, Ca, Caller};
use jit_api::auth;
use jit_api::wire::{
    ApproveRequest, CancelRequest, CreateRequest, DenyRequest, ErrorCode, ExtendRequest,
    RevokeRequest,
};

pub use metrics::Metrics;
pub use state::AppState;
use state::path_param;

/// The router with all routes, for `serve` and for tests (`tower::ServiceExt::oneshot`).
pub fn router(ca: Arc<Ca>) -> Router {
    let state = AppState {
        ca,
        metrics: Arc::new(Metrics::default()),
    };
    Router::new()
        .route("/v1/health", get(public::health))
        .route("/v1/keys", get(public::keys))
        .route("/v1/ca.pub", get(public::ca_pub))
        .route("/v1/krl", get(public::krl))
        .route("/v1/revocations", get(public::revocations))
        .route("/v1/audit/checkpoint", get(public::audit_checkpoint))
        .route("/v1/hosts/{host}/grants", get(public::host_grants))
        .route("/metrics", get(public::metrics_text))
        .route("/v1/whoami", get(whoami))
        .route("/v1/roles", get(roles))
        .route("/v1/requests", post(create).get(list))
        .route("/v1/requests/{id}", get(show))
        .route("/v1/requests/{id}/approve", post(approve))
        .route("/v1/requests/{id}/deny", post(deny))
        .route("/v1/requests/{id}/certificate", get(certificate))
        .route("/v1/requests/{id}/revoke", post(revoke))
        .route("/v1/requests/{id}/cancel", post(cancel))
        .route("/v1/requests/{id}/drop", post(drop_own))
        .route("/v1/requests/{id}/extend", post(extend))
        .route("/v1/web/login", post(web_login))
        .route("/v1/web/logout", post(web_logout))
        .merge(crate::ui::router(state.clone()))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn observe(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let resp = next.run(req).await;
    // Methods are client-chosen strings: keep the label set bounded.
    let method = match method.as_str() {
        m @ ("GET" | "POST" | "HEAD" | "PUT" | "DELETE" | "PATCH" | "OPTIONS") => m,
        _ => "OTHER",
    };
    st.metrics.observe(
        method,
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such endpoint; see docs/api.md")
}

pub(super) async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("worker: {e}")))?
}

// ---- signed calls ----

fn hdr(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The method and path of a call, for the audit trail.
#[derive(Debug, Clone)]
struct Target {
    method: String,
    path: String,
}

impl Target {
    fn details(&self) -> serde_json::Value {
        serde_json::json!({"method": self.method, "path": self.path})
    }
}

/// The peer's address, when the server recorded it (`jit-ca serve` does; the in-process test
/// router does not).
fn source_of(req: &Request) -> Option<std::net::IpAddr> {
    req.extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
}

/// Reads the body (within the size limit and `body_read_timeout`) and the authentication
/// headers; the caller checks them on the blocking pool together with the call's own work
/// (one hand-off per call). A body over the limit is refused (and audited as `rejected`)
/// before authentication; a body not received in time likewise (408, and the connection is
/// closed).
async fn signed(st: &AppState, req: Request) -> Result<(AuthHeaders, Bytes, Target), ApiError> {
    let limit = st.ca.config().max_body_bytes;
    let body_timeout = std::time::Duration::from_secs(st.ca.config().body_read_timeout_secs);
    let target = Target {
        method: req.method().as_str().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string()),
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let source = source_of(&req);
    let h = AuthHeaders {
        key: hdr(req.headers(), auth::HDR_KEY),
        timestamp: hdr(req.headers(), auth::HDR_TIMESTAMP),
        nonce: hdr(req.headers(), auth::HDR_NONCE),
        signature: hdr(req.headers(), auth::HDR_SIGNATURE),
        audience: hdr(req.headers(), auth::HDR_AUDIENCE),
        source,
    };
    let body = match declared {
        Some(len) if len > limit => Err(ApiError::new(
            ErrorCode::BodyTooLarge,
            format!("the request body is larger than {limit} bytes"),
        )),
        _ => match tokio::time::timeout(body_timeout, axum::body::to_bytes(req.into_body(), limit))
            .await
        {
            Ok(Ok(b)) => Ok(b),
            Ok(Err(_)) => Err(ApiError::new(
                ErrorCode::BodyTooLarge,
                format!("the request body is larger than {limit} bytes"),
            )),
            Err(_) => Err(ApiError::new(
                ErrorCode::RequestTimeout,
                format!(
                    "the request body did not arrive within {}s (body_read_timeout); the connection is closed",
                    body_timeout.as_secs()
                ),
            )),
        },
    };
    let e = match body {
        Ok(body) => return Ok((h, body, target)),
        Err(e) => e,
    };
    let ca = st.ca.clone();
    let details = target.details();
    let recorded = blocking(move || {
        Ok(ca.record_refusal_from(source, "unknown", event::REJECTED, details, e))
    })
    .await;
    Err(recorded.unwrap_or_else(|e| e))
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("the body is not the expected JSON: {e}"),
        )
    })
}

fn reply<T: Serialize>(r: Result<T, ApiError>, ok: StatusCode) -> Response {
    match r {
        Ok(v) => (ok, Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Runs `op` for an authenticated caller on the blocking pool. Every refusal (4xx) is
/// recorded once in the audit trail as `refusal_event`.
async fn call<T, F>(
    st: AppState,
    req: Request,
    ok: StatusCode,
    refusal_event: &'static crate::audit::event::Event,
    op: F,
) -> Response
where
    T: Serialize + Send + 'static,
    F: FnOnce(&Ca, &Caller, &[u8]) -> Result<T, ApiError> + Send + 'static,
{
    let (headers, body, target) = match signed(&st, req).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let ca = st.ca.clone();
    let result = blocking(move || {
        let caller = ca.authenticate(&target.method, &target.path, &headers, &body)?;
        call_op(
            &ca,
            headers.source,
            &caller,
            &body,
            &target,
            refusal_event,
            op,
        )
    })
    .await;
    reply(result, ok)
}

/// The call's own work, for an authenticated caller; a refusal is audited.
fn call_op<T, F>(
    ca: &Ca,
    source: Option<std::net::IpAddr>,
    caller: &Caller,
    body: &[u8],
    target: &Target,
    refusal_event: &'static crate::audit::event::Event,
    op: F,
) -> Result<T, ApiError>
where
    F: FnOnce(&Ca, &Caller, &[u8]) -> Result<T, ApiError>,
{
    match op(ca, caller, body) {
        Err(e) if !e.code.is_server_fault() => {
            let mut details = target.details();
            if let Ok(serde_json::Value::Object(b)) =
                serde_json::from_slice::<serde_json::Value>(body)
                && let Some(obj) = details.as_object_mut()
            {
                for k in ["role", "duration_secs", "hosts"] {
                    if let Some(v) = b.get(k) {
                        obj.insert(k.to_string(), v.clone());
                    }
                }
            }
            Err(ca.record_refusal_from(source, &caller.user, refusal_event, details, e))
        }
        other => other,
    }
}

/// `POST /v1/web/login` (`jit web`): a one-time browser login URL. A refusal is audited
/// `access_refused` like any signed call's. The answer carries a bearer credential (the
/// token): `Cache-Control: no-store`.
async fn web_login(State(st): State<AppState>, req: Request) -> Response {
    let mut r = call(
        st,
        req,
        StatusCode::OK,
        event::ACCESS_REFUSED,
        |ca, c, _| ca.web_login_link(c),
    )
    .await;
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}

/// `POST /v1/web/logout` (`jit web --logout`): ends the caller's web sessions.
async fn web_logout(State(st): State<AppState>, req: Request) -> Response {
    call(
        st,
        req,
        StatusCode::OK,
        event::ACCESS_REFUSED,
        |ca, c, _| ca.web_logout_all(c),
    )
    .await
}

async fn whoami(State(st): State<AppState>, req: Request) -> Response {
    call(
        st,
        req,
        StatusCode::OK,
        event::ACCESS_REFUSED,
        |ca, c, _| Ok(ca.whoami(c)),
    )
    .await
}

async fn roles(State(st): State<AppState>, req: Request) -> Response {
    call(
        st,
        req,
        StatusCode::OK,
        event::ACCESS_REFUSED,
        |ca, c, _| Ok(ca.roles(c)),
    )
    .await
}

async fn create(State(st): State<AppState>, req: Request) -> Response {
    call(
        st,
        req,
        StatusCode::CREATED,
        event::REQUEST_REFUSED,
        |ca, c, body| {
            let r: CreateRequest = parse(body)?;
            ca.create_request(c, &r)
        },
    )
    .await
}

#[derive(Debug, serde::Deserialize)]
struct ListQuery {
    #[serde(default)]
    filter: Option<String>,
}

async fn list(
    State(st): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
    req: Request,
) -> Response {
    // A malformed query is refused after authentication, so that it is audited like any
    // other refused call, and as a JSON error with a stable code.
    let filter = q
        .map(|Query(q)| q.filter.unwrap_or_else(|| "all".into()))
        .map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidInput,
                format!("malformed query string: {e}"),
            )
        });
    call(
        st,
        req,
        StatusCode::OK,
        event::ACCESS_REFUSED,
        move |ca, c, _| ca.list(c, &filter?),
    )
    .await
}

async fn show(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    req: Request,
) -> Response {
    let id = path_param(id);
    call(
        st,
        req,
        StatusCode::OK,
        event::ACCESS_REFUSED,
        move |ca, c, _| ca.get(c, &id?),
    )
    .await
}

async fn approve(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    req: Request,
) -> Response {
    let id = path_param(id);
    // What was signed: the path and query as sent (the id in `id` is percent-decoded).
    let signed_path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string());
    call(
        st,
        req,
        StatusCode::OK,
        event::APPROVAL_REFUSED,
        move |ca, c, body| {
            let r: ApproveRequest = if body.is_empty() {
                ApproveRequest::default()
            } else {
                parse(body)?
            };
            ca.approve(c, &id?, &signed_path, &r, body)
        },
    )
    .await
}

async fn deny(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    req: Request,
) -> Response {
    let id = path_param(id);
    call(
        st,
        req,
        StatusCode::OK,
        event::DENIAL_REFUSED,
        move |ca, c, body| {
            let r: DenyRequest = parse(body)?;
            ca.deny(c, &id?, &r.reason)
        },
    )
    .await
}

async fn certificate(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    req: Request,
) -> Response {
    let id = path_param(id);
    call(
        st,
        req,
        StatusCode::OK,
        event::ACCESS_REFUSED,
        move |ca, c, _| ca.certificate(c, &id?),
    )
    .await
}

async fn revoke(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    req: Request,
) -> Response {
    let id = path_param(id);
    call(
        st,
        req,
        StatusCode::OK,
        event::REVOCATION_REFUSED,
        move |ca, c, body| {
            let r: RevokeRequest = if body.is_empty() {
                RevokeRequest::default()
            } else {
                parse(body)?
            };
            ca.revoke(c, &id?, &r.reason)
        },
    )
    .await
}

async fn cancel(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    req: Request,
) -> Response {
    let id = path_param(id);
    call(
        st,
        req,
        StatusCode::OK,
        event::CANCELLATION_REFUSED,
        move |ca, c, body| {
            let r: CancelRequest = if body.is_empty() {
                CancelRequest::default()
            } else {
                parse(body)?
            };
            ca.cancel(c, &id?, &r.reason)
        },
    )
    .await
}

async fn drop_own(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    req: Request,
) -> Response {
    let id = path_param(id);
    call(
        st,
        req,
        StatusCode::OK,
        event::REVOCATION_REFUSED,
        move |ca, c, body| {
            if !body.is_empty() {
                let _: serde_json::Map<String, serde_json::Value> = parse(body)?;
            }
            ca.drop_own(c, &id?)
        },
    )
    .await
}

async fn extend(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    req: Request,
) -> Response {
    let id = path_param(id);
    call(
        st,
        req,
        StatusCode::OK,
        event::EXTENSION_REFUSED,
        move |ca, c, body| {
            let r: ExtendRequest = parse(body)?;
            ca.extend(c, &id?, r.duration_secs)
        },
    )
    .await
}

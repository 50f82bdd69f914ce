//! What every handler shares: the state, the JSON error response, path parameters.

use std::sync::Arc;

use axum::Json;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::metrics::Metrics;
use crate::error::ApiError;
use crate::service::Ca;
use jit_api::wire::{ErrorBody, ErrorCode, ErrorDetail};

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The CA.
    pub ca: Arc<Ca>,
    /// HTTP metrics.
    pub metrics: Arc<Metrics>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: ErrorDetail::new(self.code, self.message),
        };
        if status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may never come: do not wait for it on this connection.
            return (
                status,
                [(header::CONNECTION, HeaderValue::from_static("close"))],
                Json(body),
            )
                .into_response();
        }
        (status, Json(body)).into_response()
    }
}

/// A path parameter, or the JSON `invalid_input` error that replaces axum's plain-text
/// rejection (for example a percent-encoded byte sequence that is not UTF-8).
pub(super) fn path_param(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(v)| v)
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("malformed path: {e}")))
}

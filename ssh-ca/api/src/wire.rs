//! The HTTP API contract between `jit-ca` and its clients (`jit`, `jit-host sync`).
//!
//! All bodies are JSON. Errors are `{"error": {"code": "...", "message": "..."}}` with a
//! stable `code` (see [`ErrorCode`]) and a 4xx/5xx status.
//!
//! Unauthenticated (for hosts and monitoring):
//! ```text
//! GET  /v1/health                         -> {"status":"ok"}
//! GET  /v1/keys                           -> KeysView
//! GET  /v1/ca.pub                         -> text: user-CA public keys, one per line (TrustedUserCAKeys)
//! GET  /v1/krl                            -> application/octet-stream: OpenSSH binary KRL      (ETag)
//! GET  /v1/revocations                    -> text: signed revocation list (common::revocation) (ETag)
//! GET  /v1/hosts/{host}/grants            -> HostGrantsView                                   (ETag)
//! GET  /v1/audit/checkpoint               -> text: signed audit checkpoint (audit::checkpoint) (ETag)
//! GET  /metrics                           -> Prometheus text
//! ```
//! Authenticated (every call signed, see [`crate::auth`]):
//! ```text
//! GET  /v1/whoami                         -> WhoamiView
//! POST /v1/requests                       CreateRequest -> RequestView (201)
//! GET  /v1/requests?filter=pending|mine|all -> RequestList
//! GET  /v1/requests/{id}                  -> RequestView
//! POST /v1/requests/{id}/approve          {} -> RequestView
//! POST /v1/requests/{id}/deny             DenyRequest -> RequestView
//! GET  /v1/requests/{id}/certificate      -> IssuedView (requester only, once approved)
//! POST /v1/requests/{id}/revoke           RevokeRequest -> RequestView
//! POST /v1/requests/{id}/extend           ExtendRequest -> RequestView
//! ```

use serde::{Deserialize, Serialize};

/// `POST /v1/requests`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// Role name from policy.toml.
    pub role: String,
    /// Requested duration in seconds (the window starts at approval).
    pub duration_secs: u64,
    /// Why. Required when the role says `require_reason`.
    pub reason: String,
    /// Narrow the role's host selectors to these (each must be covered by the role).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// The OpenSSH public key to certify (`ssh-ed25519 AAAA...`). Usually the caller's own.
    pub public_key: String,
}

/// `POST /v1/requests/{id}/deny`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenyRequest {
    /// Why it was denied (shown to the requester).
    pub reason: String,
}

/// `POST /v1/requests/{id}/revoke`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Why (recorded in the audit trail).
    #[serde(default)]
    pub reason: String,
}

/// `POST /v1/requests/{id}/extend`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendRequest {
    /// Seconds to add to the current end of the window.
    pub duration_secs: u64,
}

/// State of an access request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Waiting for approvals.
    Pending,
    /// Approved; certificate (and grant) issued.
    Approved,
    /// Denied by an approver.
    Denied,
    /// Pending too long, or its window has ended.
    Expired,
    /// Revoked after approval.
    Revoked,
}

impl RequestState {
    /// Every state, in lifecycle order.
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Approved,
        Self::Denied,
        Self::Expired,
        Self::Revoked,
    ];

    /// The one spelling of a state: on the wire (serde), in the CA's database, in audit
    /// records and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

impl std::fmt::Display for RequestState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state spelling that is none of [`RequestState::as_str`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownState(pub String);

impl std::fmt::Display for UnknownState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown request state {:?}", self.0)
    }
}

impl std::error::Error for UnknownState {}

impl std::str::FromStr for RequestState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}

/// One approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalView {
    /// Approver (user name, or `auto:<rule>`).
    pub user: String,
    /// Unix seconds.
    pub at: u64,
}

/// An access request as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestView {
    pub id: String,
    pub user: String,
    pub role: String,
    pub reason: String,
    pub state: RequestState,
    pub duration_secs: u64,
    pub hosts: Vec<String>,
    pub principals: Vec<String>,
    pub sudo: bool,
    pub created_at: u64,
    /// When a pending request expires if not decided.
    pub pending_expires_at: u64,
    pub approvals: Vec<ApprovalView>,
    pub approvals_required: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denial_reason: Option<String>,
    /// Certificate window (set once approved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_after: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_before: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    /// Only in the answer to `POST /v1/requests` when the request was approved at once
    /// (auto-approval): the certificate, so the client needs no second call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<IssuedView>,
}

/// `GET /v1/requests`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestList {
    pub requests: Vec<RequestView>,
}

/// `GET /v1/requests/{id}/certificate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedView {
    pub request_id: String,
    /// OpenSSH certificate line (`ssh-ed25519-cert-v01@openssh.com AAAA... key-id`).
    pub certificate: String,
    pub serial: u64,
    pub valid_after: u64,
    pub valid_before: u64,
    /// The signed grant document (common format), for sudo roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
}

/// `GET /v1/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysView {
    /// All published user-CA public keys (the first signs new certificates).
    pub user_ca_keys: Vec<String>,
    /// All published grant-signing public keys (the first signs new grants).
    pub grant_keys: Vec<String>,
}

/// `GET /v1/hosts/{host}/grants`: the signed grant documents whose selectors match `host`
/// and whose window has not ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostGrantsView {
    pub host: String,
    pub grants: Vec<String>,
}

/// `GET /v1/whoami`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoamiView {
    pub user: String,
    pub groups: Vec<String>,
    /// True when the call was signed with an approval key (which may approve but never
    /// request); absent for login keys.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approval_key: bool,
}

/// The error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// Inside [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code, one of [`ErrorCode`] in snake_case.
    pub code: String,
    /// One line for people: what is wrong and what to do.
    pub message: String,
}

/// Stable error codes. Never renumber or rename: scripts match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // Authentication (401).
    Unauthenticated,
    UnknownKey,
    BadSignature,
    StaleTimestamp,
    ReplayedNonce,
    WrongAudience,
    LegacySignature,
    // Input (400, 413, 415).
    InvalidJson,
    InvalidInput,
    BodyTooLarge,
    RequestTimeout,
    MalformedPublicKey,
    ReasonRequired,
    // Policy (403, 404, 409).
    UnknownRole,
    NotARequester,
    NotAnApprover,
    SelfApproval,
    AlreadyApproved,
    DurationTooLong,
    HostNotInRole,
    NotFound,
    Forbidden,
    InvalidState,
    /// The role changed since the request was made; it no longer fits (409).
    PolicyChanged,
    /// An extension beyond the window that was approved (403): request anew.
    ExtensionNotApproved,
    /// The requester has as many active grants as `max_active_grants_per_user` allows (409).
    TooManyActiveGrants,
    /// The role requires approvals signed with an approval key and/or a touched FIDO key (403).
    ApprovalKeyRequired,
    /// An approval key was used to request or extend (403).
    ApprovalKeyNotForRequests,
    // Scope of a grant hosts would refuse (400) or a full host document (409).
    GrantNotAcceptable,
    HostGrantsFull,
    // Server (500, 503).
    Internal,
    Unavailable,
}

impl ErrorCode {
    /// The snake_case code string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::StaleTimestamp => "stale_timestamp",
            Self::ReplayedNonce => "replayed_nonce",
            Self::WrongAudience => "wrong_audience",
            Self::LegacySignature => "legacy_signature",
            Self::InvalidJson => "invalid_json",
            Self::InvalidInput => "invalid_input",
            Self::BodyTooLarge => "body_too_large",
            Self::RequestTimeout => "request_timeout",
            Self::MalformedPublicKey => "malformed_public_key",
            Self::ReasonRequired => "reason_required",
            Self::UnknownRole => "unknown_role",
            Self::NotARequester => "not_a_requester",
            Self::NotAnApprover => "not_an_approver",
            Self::SelfApproval => "self_approval",
            Self::AlreadyApproved => "already_approved",
            Self::DurationTooLong => "duration_too_long",
            Self::HostNotInRole => "host_not_in_role",
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::InvalidState => "invalid_state",
            Self::PolicyChanged => "policy_changed",
            Self::ExtensionNotApproved => "extension_not_approved",
            Self::TooManyActiveGrants => "too_many_active_grants",
            Self::ApprovalKeyRequired => "approval_key_required",
            Self::ApprovalKeyNotForRequests => "approval_key_not_for_requests",
            Self::GrantNotAcceptable => "grant_not_acceptable",
            Self::HostGrantsFull => "host_grants_full",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
        }
    }
}

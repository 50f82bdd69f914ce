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
//! GET  /v1/roles                          -> RolesView (the roles the caller may request)
//! POST /v1/requests                       CreateRequest -> RequestView (201)
//! GET  /v1/requests?filter=pending|mine|all -> RequestList
//! GET  /v1/requests/{id}                  -> RequestView
//! POST /v1/requests/{id}/approve          {} -> RequestView
//! POST /v1/requests/{id}/deny             DenyRequest -> RequestView
//! GET  /v1/requests/{id}/certificate      -> IssuedView (requester only, once approved)
//! POST /v1/requests/{id}/revoke           RevokeRequest -> RequestView
//! POST /v1/requests/{id}/cancel           CancelRequest -> RequestView (requester, pending)
//! POST /v1/requests/{id}/drop             {} -> RequestView (requester, approved: revoked)
//! POST /v1/requests/{id}/extend           ExtendRequest -> RequestView
//! POST /v1/web/login                      {} -> WebLoginView (a one-time browser login URL)
//! POST /v1/web/logout                     {} -> WebLogoutView (ends the caller's web sessions)
//! ```
//! The web pages (`/ui/...`, HTML, docs/web.md) are not part of this JSON contract; they
//! authenticate with the session cookie a one-time login URL establishes.

use std::fmt;

use serde::{Deserialize, Serialize};

// ---- The jit-ca <-> jit-host sync contract (one definition, used by both sides). ----

/// Largest `GET /v1/krl` body `jit-host sync` accepts.
pub const MAX_KRL: usize = 16 * 1024 * 1024;
/// Largest `GET /v1/hosts/{host}/grants` body `jit-host sync` accepts; the CA keeps every
/// host's document below it (`jit_ca::service::MAX_HOST_DOCUMENT`, checked at compile time).
pub const MAX_GRANTS_RESPONSE: usize = 8 * 1024 * 1024;
/// The first 8 bytes of an OpenSSH binary KRL (`"SSHKRL\n\0"`): what the CA writes and
/// what `jit-host sync` requires of what it fetches.
pub const KRL_MAGIC: &[u8; 8] = b"SSHKRL\n\0";

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
    /// A later start (Unix seconds, `jit request --start TIME` / `--in DURATION`): the
    /// window is `start` to `start + duration_secs`, the certificate and grant are valid
    /// only from `start`. Absent: the window starts at approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<u64>,
}

/// `POST /v1/requests/{id}/approve` (`{}` or an empty body is accepted: no digest).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    /// The digest of the request being approved ([`crate::evidence`]): the CA refuses the
    /// approval (`request_digest_mismatch`) unless it is the request's, so the signed call
    /// kept in the audit record names the exact request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_digest: Option<String>,
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

/// `POST /v1/requests/{id}/cancel`: the requester withdraws a pending request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Why (recorded in the audit trail); may be empty.
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
    /// Withdrawn by the requester while pending.
    Cancelled,
}

impl RequestState {
    /// Every state, in lifecycle order.
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::Approved,
        Self::Denied,
        Self::Expired,
        Self::Revoked,
        Self::Cancelled,
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
            Self::Cancelled => "cancelled",
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
    /// SHA-256 fingerprint of the key the certificate is for (absent from older servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_fingerprint: Option<String>,
    /// The request's digest ([`crate::evidence`]), which an approval names (absent from
    /// older servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_digest: Option<String>,
    /// Only in the answer to `POST /v1/requests` when the request was approved at once
    /// (auto-approval): the certificate, so the client needs no second call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<IssuedView>,
    /// The ticket the reason carries: what the role's `reason_pattern` matched (absent when
    /// the role has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// The requested start of a later window (Unix seconds); absent: the window starts at
    /// approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<u64>,
    /// Who revoked it (a revoked request; the requester when they dropped it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
    /// When it was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<u64>,
    /// Why it was revoked (`dropped by requester` when dropped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<String>,
    /// When its requester cancelled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<u64>,
    /// Why its requester cancelled it (when they said).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    /// When it was denied (`denied_by`, `denial_reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_at: Option<u64>,
    /// Whether its grant is bound to the SSH connection that presents the certificate
    /// (the role's `session_bound`): sudo works only inside SSH connections made with that
    /// certificate, until they close. For a pending request, the role's setting when it was
    /// made (issuance also binds it when the role says so then). Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub session_bound: bool,
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

/// `POST /v1/web/login`: a one-time URL that logs a browser in as the caller (single use,
/// valid for `expires_in_secs`). `path` is relative to the CA's base URL (what `jit` joins to
/// its own `server`); `url` is the absolute URL when the CA knows its `public_url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebLoginView {
    /// `/ui/login?token=...`.
    pub path: String,
    /// `public_url` + `path`, when config.toml sets `public_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Unix seconds after which the URL is refused.
    pub expires_at: u64,
    /// Seconds the URL stays valid from now (60).
    pub expires_in_secs: u64,
}

/// `POST /v1/web/logout`: how many of the caller's web sessions were ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebLogoutView {
    pub ended: u64,
}

/// `GET /v1/roles`: the roles the caller may request, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolesView {
    pub roles: Vec<RoleView>,
}

/// One role as a requester sees it: what a certificate of it carries for the caller, who
/// approves it, and whether an auto-approval rule applies to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleView {
    pub name: String,
    /// Host selectors (globs) the certificate and grant are scoped to.
    pub hosts: Vec<String>,
    /// The principals a certificate of this role carries for the caller.
    pub principals: Vec<String>,
    pub sudo: bool,
    /// Whether its grants are bound to the SSH connection that presents the certificate
    /// (`session_bound`). Absent when false (and from older servers).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub session_bound: bool,
    /// Longest window that may be requested, seconds.
    pub max_duration_secs: u64,
    /// Who may approve: user names and `group:NAME`.
    pub approvers: Vec<String>,
    /// Distinct approvals needed.
    pub approvals_required: u32,
    /// Whether a request needs a reason.
    pub require_reason: bool,
    /// The auto-approval rules that apply to the caller (empty: a human approves).
    #[serde(default)]
    pub auto_approval: Vec<AutoApprovalView>,
    /// When the role may be requested: windows such as `mon-fri 09:00-17:00 Europe/Berlin`
    /// (empty: any time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<String>,
    /// The regular expression the reason must match (`reason_pattern`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_pattern: Option<String>,
    /// What the policy says to write when the reason does not match (`reason_help`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_help: Option<String>,
    /// How long a request of this role may wait for approval (`pending_ttl`), when the role
    /// sets its own (absent: the CA's `pending_expiry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_ttl_secs: Option<u64>,
}

/// An auto-approval rule that applies to the caller: every condition it names must hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoApprovalView {
    /// Recorded as approver (`auto:<rule>`).
    pub rule: String,
    /// Requests up to this long are approved at once.
    pub max_duration_secs: u64,
    /// The request's hosts must be within these selectors (empty: any of the role's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// When the rule may approve (empty: any time).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<String>,
    /// The regular expression the request's ticket must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_pattern: Option<String>,
    /// The authorizing webhook whose explicit yes the rule also needs (by name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
}

/// The error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// Inside [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code, one of [`ErrorCode`] in snake_case; read it typed with
    /// [`ErrorDetail::received_code`].
    pub code: String,
    /// One line for people: what is wrong and what to do.
    pub message: String,
}

/// Declares [`ErrorCode`] from one table: each variant with its stable string. The string
/// is the only spelling: serde, [`ErrorCode::as_str`], [`ErrorCode::parse`] and `Display`
/// all read it from here.
macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $text:literal, )*) => {
        /// Stable error codes. Never renumber or rename: scripts match on them. To add one,
        /// see CONTRIBUTING.md ("Adding an error code").
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The stable snake_case code string.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( ErrorCode::$variant => $text, )*
                }
            }

            /// The code with this string, if it is one of ours.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $( $text => Some(ErrorCode::$variant), )*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    // Authentication (401).
    /// Signing headers missing.
    Unauthenticated = "unauthenticated",
    /// The key is not registered.
    UnknownKey = "unknown_key",
    /// The signature does not match the request.
    BadSignature = "bad_signature",
    /// The timestamp is too far from the server's clock.
    StaleTimestamp = "stale_timestamp",
    /// The nonce was used before.
    ReplayedNonce = "replayed_nonce",
    /// The call was signed for another CA.
    WrongAudience = "wrong_audience",
    /// The legacy scheme v1, which this CA refuses.
    LegacySignature = "legacy_signature",
    // Input (400, 413, 415).
    /// The body is not the expected JSON.
    InvalidJson = "invalid_json",
    /// A field's value is not acceptable.
    InvalidInput = "invalid_input",
    /// The body is larger than `max_body_bytes` (413).
    BodyTooLarge = "body_too_large",
    /// The body did not arrive within `body_read_timeout` (408).
    RequestTimeout = "request_timeout",
    /// `public_key` is not an OpenSSH public key line.
    MalformedPublicKey = "malformed_public_key",
    /// The role requires a reason.
    ReasonRequired = "reason_required",
    /// The reason does not match the role's `reason_pattern`; the message carries the
    /// role's `reason_help`.
    ReasonPatternMismatch = "reason_pattern_mismatch",
    // Policy (403, 404, 409).
    /// No such role.
    UnknownRole = "unknown_role",
    /// The caller may not request this role.
    NotARequester = "not_a_requester",
    /// The caller may not approve this role.
    NotAnApprover = "not_an_approver",
    /// The requester tried to approve their own request.
    SelfApproval = "self_approval",
    /// This approver already approved.
    AlreadyApproved = "already_approved",
    /// Beyond the role's `max_duration`.
    DurationTooLong = "duration_too_long",
    /// A requested host is not within the role's selectors.
    HostNotInRole = "host_not_in_role",
    /// The role may not be requested now (its `schedule`); the message names the next
    /// window's start (403).
    OutsideSchedule = "outside_schedule",
    /// No such request or endpoint.
    NotFound = "not_found",
    /// Not the caller's to see or change.
    Forbidden = "forbidden",
    /// The request is not in a state that allows this.
    InvalidState = "invalid_state",
    /// The role changed since the request was made; it no longer fits (409).
    PolicyChanged = "policy_changed",
    /// An extension beyond the window that was approved (403): request anew.
    ExtensionNotApproved = "extension_not_approved",
    /// The requester has as many active grants as `max_active_grants_per_user` allows (409).
    TooManyActiveGrants = "too_many_active_grants",
    /// The requester already has a pending request for this role (409); the message names
    /// its id.
    DuplicatePendingRequest = "duplicate_pending_request",
    /// The requester has as many pending requests as `max_pending_requests_per_user` allows
    /// (409).
    TooManyPendingRequests = "too_many_pending_requests",
    /// The role requires approvals signed with an approval key and/or a touched FIDO key (403).
    ApprovalKeyRequired = "approval_key_required",
    /// An approval key was used to request or extend (403).
    ApprovalKeyNotForRequests = "approval_key_not_for_requests",
    /// The approval names another request digest than the request's (409): the approver
    /// was shown something else; look again and approve again.
    RequestDigestMismatch = "request_digest_mismatch",
    /// A one-time web login URL that is unknown, already used or expired (403): run
    /// `jit web` again.
    LoginLinkInvalid = "login_link_invalid",
    /// A web page's form without a valid CSRF token, or posted from another origin (403).
    CsrfRejected = "csrf_rejected",
    // Scope of a grant hosts would refuse (400) or a full host document (409).
    /// The grant would be refused by hosts.
    GrantNotAcceptable = "grant_not_acceptable",
    /// A host's grants document would grow too large.
    HostGrantsFull = "host_grants_full",
    // Server (500, 503).
    /// A server fault (the message carries a reference the CA logs).
    Internal = "internal",
    /// The database is busy; retry.
    Unavailable = "unavailable",
}

impl ErrorCode {
    /// Whether the code reports the server's own fault (a 5xx: `internal`, `unavailable`),
    /// not something the caller did: the CA neither audits it as the caller's failure nor
    /// counts it against them.
    pub const fn is_server_fault(self) -> bool {
        matches!(self, Self::Internal | Self::Unavailable)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ErrorCode {
    type Err = UnknownCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| UnknownCode(s.to_string()))
    }
}

/// A code string that is not one of [`ErrorCode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCode(pub String);

impl fmt::Display for UnknownCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown error code {:?}", self.0)
    }
}

impl std::error::Error for UnknownCode {}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::custom(UnknownCode(s.into_owned())))
    }
}

/// An error code as a client reads it from an [`ErrorDetail`]: one of [`ErrorCode`], or a
/// code this build does not know (a newer server), kept verbatim so it can be shown and
/// passed on. Decide on [`ReceivedCode::Known`]; never match on strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReceivedCode {
    /// One of ours.
    Known(ErrorCode),
    /// A code this build does not know.
    Unknown(String),
}

impl ReceivedCode {
    /// Reads a code string.
    pub fn parse(s: &str) -> Self {
        ErrorCode::parse(s).map_or_else(|| Self::Unknown(s.to_string()), Self::Known)
    }

    /// The code string as received.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Known(c) => c.as_str(),
            Self::Unknown(s) => s,
        }
    }

    /// The code, if it is one of ours.
    pub fn known(&self) -> Option<ErrorCode> {
        match self {
            Self::Known(c) => Some(*c),
            Self::Unknown(_) => None,
        }
    }
}

impl From<ErrorCode> for ReceivedCode {
    fn from(c: ErrorCode) -> Self {
        Self::Known(c)
    }
}

impl PartialEq<ErrorCode> for ReceivedCode {
    fn eq(&self, other: &ErrorCode) -> bool {
        self.known() == Some(*other)
    }
}

impl fmt::Display for ReceivedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ErrorDetail {
    /// A detail with one of our codes.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code.as_str().to_string(),
            message: message.into(),
        }
    }

    /// The code, typed.
    pub fn received_code(&self) -> ReceivedCode {
        ReceivedCode::parse(&self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published strings, in order: renaming or dropping one breaks scripts that match on
    /// it. Adding a code adds a line here (and a row in docs/api.md).
    const PUBLISHED: &[&str] = &[
        "unauthenticated",
        "unknown_key",
        "bad_signature",
        "stale_timestamp",
        "replayed_nonce",
        "wrong_audience",
        "legacy_signature",
        "invalid_json",
        "invalid_input",
        "body_too_large",
        "request_timeout",
        "malformed_public_key",
        "reason_required",
        "reason_pattern_mismatch",
        "unknown_role",
        "not_a_requester",
        "not_an_approver",
        "self_approval",
        "already_approved",
        "duration_too_long",
        "host_not_in_role",
        "outside_schedule",
        "not_found",
        "forbidden",
        "invalid_state",
        "policy_changed",
        "extension_not_approved",
        "too_many_active_grants",
        "duplicate_pending_request",
        "too_many_pending_requests",
        "approval_key_required",
        "approval_key_not_for_requests",
        "request_digest_mismatch",
        "login_link_invalid",
        "csrf_rejected",
        "grant_not_acceptable",
        "host_grants_full",
        "internal",
        "unavailable",
    ];

    /// The sync contract's values (changing one changes what deployed hosts accept).
    #[test]
    fn sync_contract_values() {
        assert_eq!(u64::from_be_bytes(*KRL_MAGIC), 0x5353_484b_524c_0a00);
        assert_eq!(MAX_KRL, 16 << 20);
        assert_eq!(MAX_GRANTS_RESPONSE, 8 << 20);
    }

    #[test]
    fn codes_keep_their_published_strings() {
        let table: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(table, PUBLISHED);
    }

    #[test]
    fn serde_display_and_parse_use_the_table() {
        for &c in ErrorCode::ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), c);
            assert_eq!(c.to_string(), c.as_str());
            assert_eq!(c.as_str().parse::<ErrorCode>(), Ok(c));
            assert_eq!(ReceivedCode::parse(c.as_str()), ReceivedCode::Known(c));
        }
        assert!(serde_json::from_str::<ErrorCode>("\"no_such_code\"").is_err());
        assert!(serde_json::from_str::<ErrorCode>("\"Internal\"").is_err());
        assert!("".parse::<ErrorCode>().is_err());
    }

    #[test]
    fn an_unknown_code_is_kept_verbatim() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"from_the_future","message":"m"}}"#).unwrap();
        let code = body.error.received_code();
        assert_eq!(code, ReceivedCode::Unknown("from_the_future".into()));
        assert_eq!(code.as_str(), "from_the_future");
        assert_eq!(code.known(), None);
        assert_ne!(code, ErrorCode::Internal);
        let known = ErrorDetail::new(ErrorCode::UnknownKey, "m").received_code();
        assert_eq!(known, ErrorCode::UnknownKey);
        assert_eq!(known.to_string(), "unknown_key");
    }
}

//! The rows of the web sessions (issue 16): what [`super::StoreOps`]'s web methods read and
//! write. Only hashes of the secrets are stored.

/// A one-time web login link as stored (`web_logins`): the token itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebLoginRow {
    /// SHA-256 (hex) of the token.
    pub token_hash: String,
    /// Whose login it is.
    pub user: String,
    /// The key that signed `jit web` (SHA-256 fingerprint).
    pub key_fingerprint: String,
    /// That key's `KEY_*` bits.
    pub key_flags: u32,
    /// When it was issued.
    pub created_at: u64,
    /// Refused from this time on.
    pub expires_at: u64,
    /// When it was used (None: not yet).
    pub used_at: Option<u64>,
    /// The `web_login_link` audit record's sequence number.
    pub audit_seq: Option<u64>,
}

/// A web session as stored (`web_sessions`): the cookie secret itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSessionRow {
    /// `ws-` + 16 hex: public (audit records, the page footer).
    pub id: String,
    /// SHA-256 (hex) of the cookie secret.
    pub secret_hash: String,
    /// Whose session it is.
    pub user: String,
    /// The key that established it (SHA-256 fingerprint).
    pub key_fingerprint: String,
    /// That key's `KEY_*` bits.
    pub key_flags: u32,
    /// When it was established.
    pub created_at: u64,
    /// Last use recorded (written at most once a minute).
    pub last_seen: u64,
    /// Its absolute end (created_at + session_max_age as configured at login).
    pub expires_at: u64,
    /// session_idle_timeout as configured at login (seconds).
    pub idle_secs: u64,
    /// When it was ended early (logout, user or key removal).
    pub ended_at: Option<u64>,
    /// Who ended it.
    pub ended_by: Option<String>,
}

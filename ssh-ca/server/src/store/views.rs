//! What the web pages read (issue 16) that no API call needed: who holds access now, and the
//! audit records of one request. Backend-neutral types; [`super::sqlite`] implements them.

/// One elevation in force: an approved request whose newest certificate is valid now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elevation {
    pub request_id: String,
    pub user: String,
    pub role: String,
    /// The request's host selectors.
    pub hosts: Vec<String>,
    pub sudo: bool,
    pub serial: u64,
    pub valid_after: u64,
    pub valid_before: u64,
}

/// Most audit records shown for one request.
pub const REQUEST_AUDIT_LIMIT: u32 = 500;

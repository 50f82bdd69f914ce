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

/// What the access page asks for: who looks (the visibility rule of
/// `lifecycle::authorize(See)`, widened for auditors), the filters, and which page.
#[derive(Debug, Clone, Default)]
pub struct AccessQuery {
    pub now: u64,
    /// An auditor: every elevation.
    pub see_all: bool,
    /// The viewer: their own elevations.
    pub me: String,
    /// The roles the viewer may approve: every elevation of these.
    pub approves: Vec<String>,
    /// Exact role.
    pub role: Option<String>,
    /// A host name or selector: an elevation one of whose selectors equals it or matches it.
    pub host: Option<String>,
    /// Exact user.
    pub user: Option<String>,
    /// Rows to skip (page * limit) and the page size.
    pub offset: u64,
    pub limit: u32,
}

/// One page of the access list and how many rows match in all.
#[derive(Debug, Clone, Default)]
pub struct AccessPage {
    pub rows: Vec<Elevation>,
    pub total: u64,
}

/// Rows of one access page.
pub const ACCESS_PAGE_SIZE: u32 = 200;

/// One request's audit records as its page shows them.
#[derive(Debug, Clone, Default)]
pub struct RequestAudit {
    /// The newest records naming the request, in chain order.
    pub records: Vec<crate::audit::Record>,
    /// How many records name the request in all (more than `records.len()` when some of the
    /// oldest were left out).
    pub total: u64,
}

/// Most audit records shown for one request (the newest; the page says when more exist).
pub const REQUEST_AUDIT_LIMIT: u32 = 500;

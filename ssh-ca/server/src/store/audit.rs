//! What an audit search asks of the store (issue 16, the audit page): the filters, applied in
//! SQL, over a bounded window of records (`seq` range), newest first.

/// The filters of an audit search. Every `Some` must hold for a record to match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// The record's actor is this user, or the request it names (`details.request_id`) is
    /// this user's, or its `details.user` is this user.
    pub user: Option<String>,
    /// The request it names is of this role, or its `details.role` is this role.
    pub role: Option<String>,
    /// The stored event name.
    pub event: Option<String>,
    /// Recorded at or after this time (Unix seconds).
    pub since: Option<u64>,
    /// Recorded at or before this time (Unix seconds).
    pub until: Option<u64>,
}

/// One window of a search: records with `floor <= seq < before`, newest first, at most
/// `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditWindow {
    /// Only records below this seq.
    pub before: u64,
    /// Only records at or above this seq (1: to the first record).
    pub floor: u64,
    /// At most this many.
    pub limit: u32,
}

//! Errors of the service. [`ApiError`] is what a client sees (a stable code and one line);
//! [`CaError`] is what operators see from the admin commands and at startup.

use std::fmt;
use std::path::PathBuf;

use jit_api::wire::ErrorCode;

/// `Result` with [`CaError`].
pub type Result<T> = std::result::Result<T, CaError>;

/// Operator-facing errors (startup, admin CLI, storage).
#[derive(Debug)]
#[non_exhaustive]
pub enum CaError {
    /// A file is missing.
    NotFound(PathBuf),
    /// A file exists where we would create one.
    Exists(PathBuf),
    /// A file is not trusted or could not be read.
    File { path: PathBuf, detail: String },
    /// config.toml or policy.toml has problems.
    Config {
        path: PathBuf,
        problems: Vec<String>,
    },
    /// A key could not be parsed or used.
    Key { path: PathBuf, detail: String },
    /// The database failed.
    Db(String),
    /// The database stayed locked by another writer past the busy timeout.
    Busy(String),
    /// Bad input to an admin command.
    Input(String),
    /// Something else.
    Other(String),
    // Signer (H4)
    /// The CA's keys or a signature ([`crate::signer::SignerError`]).
    Signer(crate::signer::SignerError),
    // Service (H1)
    /// A stored request has a state this version does not know (never read as pending).
    UnknownRequestState {
        request: String,
        source: jit_api::wire::UnknownState,
    },
    /// A request's public key could not be read from or written to storage.
    RequestKey {
        request: String,
        source: ssh_key::Error,
    },
    /// A background thread of the service could not start.
    Thread {
        name: &'static str,
        source: std::io::Error,
    },
    /// A document the service publishes or signs could not be made.
    Publish {
        what: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A change could not be committed (through the group commit).
    NotWritten {
        what: &'static str,
        source: ApiError,
    },
    /// The signer holds no user-CA key.
    NoUserCaKey,
}

impl fmt::Display for CaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound(p) => write!(f, "{} does not exist", p.display()),
            Self::Exists(p) => write!(
                f,
                "{} already exists; refusing to overwrite it (move it away first if you mean to replace it)",
                p.display()
            ),
            Self::File { path, detail } => write!(f, "{}: {detail}", path.display()),
            Self::Config { path, problems } => {
                write!(f, "{} has {} problem(s):", path.display(), problems.len())?;
                for p in problems {
                    write!(f, "\n  - {p}")?;
                }
                Ok(())
            }
            Self::Key { path, detail } => write!(f, "key {}: {detail}", path.display()),
            Self::Db(d) => write!(f, "database: {d}"),
            Self::Busy(d) => write!(
                f,
                "database busy: {d} (another writer holds the lock; retry)"
            ),
            Self::Input(d) | Self::Other(d) => write!(f, "{d}"),
            // Signer (H4)
            Self::Signer(e) => write!(f, "{e}"),
            // Service (H1)
            Self::UnknownRequestState { request, source } => {
                write!(f, "request {request}: {source} in the database")
            }
            Self::RequestKey { request, source } => {
                write!(f, "request {request}: public key: {source}")
            }
            Self::Thread { name, source } => write!(f, "cannot start the {name} thread: {source}"),
            Self::Publish { what, source } => write!(f, "{what}: {source}"),
            Self::NotWritten { what, source } => {
                write!(f, "{what} not written: {}", source.message)
            }
            Self::NoUserCaKey => write!(f, "no user-CA key loaded"),
        }
    }
}

impl std::error::Error for CaError {}

impl From<rusqlite::Error> for CaError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                Self::Busy(e.to_string())
            }
            _ => Self::Db(e.to_string()),
        }
    }
}

/// An error returned to an API client: HTTP status, stable code, one line for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Stable code.
    pub code: ErrorCode,
    /// What is wrong and what to do.
    pub message: String,
}

impl ApiError {
    /// A new error with the status that belongs to `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: status_of(code),
            code,
            message: message.into(),
        }
    }

    /// An internal error: the detail goes to the service's stderr (the journal) under a
    /// reference; the client sees only the reference, never internals.
    pub fn internal(detail: impl fmt::Display) -> Self {
        let reference = crate::service::new_id(jit_common::now().as_secs()).replacen("r-", "e-", 1);
        eprintln!("jit-ca: internal error {reference}: {detail}");
        Self::new(
            ErrorCode::Internal,
            format!(
                "internal error (reference {reference}); the operator can find it in the CA's log"
            ),
        )
    }
}

impl From<CaError> for ApiError {
    fn from(e: CaError) -> Self {
        match e {
            CaError::Busy(_) => Self::new(
                ErrorCode::Unavailable,
                "the CA's database is busy; retry in a moment",
            ),
            other => Self::internal(other),
        }
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        CaError::from(e).into()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code.as_str(),
            self.status,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

/// The HTTP status for each code (stable, documented in docs/api.md).
pub fn status_of(code: ErrorCode) -> u16 {
    use ErrorCode as C;
    match code {
        C::Unauthenticated
        | C::UnknownKey
        | C::BadSignature
        | C::StaleTimestamp
        | C::ReplayedNonce
        | C::WrongAudience
        | C::LegacySignature => 401,
        C::InvalidJson
        | C::InvalidInput
        | C::MalformedPublicKey
        | C::ReasonRequired
        | C::GrantNotAcceptable => 400,
        C::BodyTooLarge => 413,
        C::RequestTimeout => 408,
        C::UnknownRole | C::NotFound => 404,
        C::NotARequester
        | C::NotAnApprover
        | C::SelfApproval
        | C::DurationTooLong
        | C::HostNotInRole
        | C::Forbidden
        | C::ExtensionNotApproved
        | C::ApprovalKeyRequired
        | C::ApprovalKeyNotForRequests => 403,
        C::AlreadyApproved
        | C::InvalidState
        | C::PolicyChanged
        | C::TooManyActiveGrants
        | C::HostGrantsFull => 409,
        C::Internal => 500,
        C::Unavailable => 503,
    }
}

//! Errors of the service. [`ApiError`] is what a client sees (a stable code and one line);
//! [`CaError`] is what operators see from the admin commands and at startup.

use std::fmt;
use std::net::SocketAddr;
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
    /// The database cannot be reached (PostgreSQL: connection refused or lost before the
    /// change was sent, or the backend is not built): nothing was stored, the call may be
    /// sent again (to this replica or another). Answered as 503 `unavailable`.
    Unavailable(String),
    /// Bad input to an admin command.
    Input(String),
    /// Another `jit-ca serve` holds the data directory's service lock.
    ServiceRunning {
        /// The data directory.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// The async runtime could not be started.
    Runtime(std::io::Error),
    /// The listening socket could not be opened.
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS configuration was refused by rustls.
    Tls {
        /// What was being set up.
        what: &'static str,
        /// What rustls said.
        source: rustls::Error,
    },
    /// A key or certificate could not be encoded or parsed by `ssh-key`.
    SshEncoding {
        /// What was being encoded.
        what: &'static str,
        /// What `ssh-key` said.
        source: ssh_key::Error,
    },
    /// A KRL section does not fit its 32-bit length.
    KrlTooLarge(std::num::TryFromIntError),
    /// A command's `--json` output could not be encoded.
    JsonOutput(serde_json::Error),
    /// The CA's keys or a signature ([`SignerError`]).
    Signer(SignerError),
    /// A stored request has a state this version does not know (never read as pending).
    UnknownRequestState {
        request: String,
        source: jit_api::wire::UnknownState,
    },
    /// A registered key's stored purpose is not one this version knows (the key does not
    /// authenticate: never read as a login key).
    UnknownKeyPurpose { user: String, purpose: String },
    /// A stored value does not parse (a JSON list, a count, the operator revocations): an
    /// error, never read as an empty or default value.
    BadStoredValue { what: &'static str, detail: String },
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
    /// No notification has this event id (`jit-ca notify retry ID`).
    UnknownEvent { id: String },
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
            Self::Unavailable(d) => write!(
                f,
                "the CA's database is unreachable: {d} (nothing was stored; retry)"
            ),
            Self::Input(d) => write!(f, "{d}"),
            Self::ServiceRunning { dir, lock } => write!(
                f,
                "another `jit-ca serve` is already running on {} (it holds {}); stop it first: one service per data directory",
                dir.display(),
                lock.display()
            ),
            Self::Runtime(e) => write!(f, "runtime: {e}"),
            Self::Listen { addr, source } => {
                write!(f, "cannot listen on {addr}: {source} (use --listen ADDR)")
            }
            Self::Tls { what, source } => write!(f, "{what}: {source}"),
            Self::SshEncoding { what, source } => write!(f, "{what}: {source}"),
            Self::KrlTooLarge(_) => write!(f, "KRL section too large"),
            Self::JsonOutput(e) => write!(f, "JSON output: {e}"),
            Self::Signer(e) => write!(f, "{e}"),
            Self::UnknownRequestState { request, source } => {
                write!(f, "request {request}: {source} in the database")
            }
            Self::UnknownKeyPurpose { user, purpose } => write!(
                f,
                "a registered key of user {user:?} has the purpose {purpose:?} in the database (user_keys), which this version does not know"
            ),
            Self::BadStoredValue { what, detail } => {
                write!(f, "database: the stored {what} does not parse: {detail}")
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
            Self::UnknownEvent { id } => write!(
                f,
                "there is no notification {id:?} in the outbox (jit-ca notify status lists the dead ones; ids look like evt_...)"
            ),
        }
    }
}

impl CaError {
    /// The stable code of this error in `jit-ca --json` error output
    /// (`{"error": {"code": CODE, "message": ...}}`, docs/operations.md).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::Exists(_) => "exists",
            Self::File { .. } => "file",
            Self::Config { .. } => "config",
            Self::Key { .. } | Self::NoUserCaKey => "key",
            Self::Db(_) => "database",
            Self::Busy(_) => "busy",
            Self::Unavailable(_) => "unavailable",
            Self::Input(_) => "invalid_input",
            Self::ServiceRunning { .. } => "service_running",
            Self::Runtime(_) | Self::Thread { .. } => "runtime",
            Self::Listen { .. } => "listen",
            Self::Tls { .. } => "tls",
            Self::SshEncoding { .. } | Self::KrlTooLarge(_) | Self::Publish { .. } => "encoding",
            Self::JsonOutput(_) => "json_output",
            Self::Signer(_) => "signer",
            Self::UnknownRequestState { .. }
            | Self::UnknownKeyPurpose { .. }
            | Self::BadStoredValue { .. }
            | Self::RequestKey { .. } => "bad_stored_value",
            Self::NotWritten { source, .. } => source.code.as_str(),
            Self::UnknownEvent { .. } => "unknown_event",
        }
    }
}

impl std::error::Error for CaError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Runtime(e) | Self::Listen { source: e, .. } => Some(e),
            Self::Tls { source, .. } => Some(source),
            Self::SshEncoding { source, .. } => Some(source),
            Self::KrlTooLarge(e) => Some(e),
            Self::JsonOutput(e) => Some(e),
            Self::Signer(e) => Some(e),
            Self::UnknownRequestState { source, .. } => Some(source),
            Self::RequestKey { source, .. } => Some(source),
            Self::Thread { source, .. } => Some(source),
            Self::Publish { source, .. } => Some(source.as_ref()),
            Self::NotWritten { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for CaError {
    fn from(e: rusqlite::Error) -> Self {
        // A row closure's own error (a stored value that does not parse) travels through
        // rusqlite as a conversion failure carrying the `CaError`: unpack it.
        let e = match e {
            rusqlite::Error::FromSqlConversionFailure(col, ty, source) => {
                match source.downcast::<CaError>() {
                    Ok(ca) => return *ca,
                    Err(source) => rusqlite::Error::FromSqlConversionFailure(col, ty, source),
                }
            }
            other => other,
        };
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
        let reference = error_reference();
        jit_common::errln!("jit-ca: internal error {reference}: {detail}");
        Self::new(
            ErrorCode::Internal,
            format!(
                "internal error (reference {reference}); the operator can find it in the CA's log"
            ),
        )
    }
}

impl ApiError {
    /// The CA's database cannot be reached: 503 `unavailable`, nothing stored, safe to send
    /// again (also a POST). The detail goes to the service's log only.
    pub fn unavailable(detail: impl fmt::Display) -> Self {
        jit_common::errln!("jit-ca: database unreachable: {detail}");
        Self::new(
            ErrorCode::Unavailable,
            "the CA's database is unreachable; retry",
        )
    }
}

/// A fresh reference for an internal error: `e-` and 20 random hex digits (the shape of a
/// request id, so operators grep for it the same way). Made here, not by the service, so that
/// this module depends on nothing of the crate's.
fn error_reference() -> String {
    use rand_core::RngCore as _;
    let mut b = [0u8; 10];
    rand_core::OsRng.fill_bytes(&mut b);
    format!("e-{}", hex::encode(b))
}

impl From<CaError> for ApiError {
    fn from(e: CaError) -> Self {
        match e {
            CaError::Busy(_) => Self::new(
                ErrorCode::Unavailable,
                "the CA's database is busy; retry in a moment",
            ),
            CaError::Unavailable(detail) => Self::unavailable(&detail),
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
        | C::ReasonPatternMismatch
        | C::GrantNotAcceptable => 400,
        C::BodyTooLarge => 413,
        C::RequestTimeout => 408,
        C::UnknownRole | C::NotFound => 404,
        C::NotARequester
        | C::NotAnApprover
        | C::SelfApproval
        | C::DurationTooLong
        | C::HostNotInRole
        | C::OutsideSchedule
        | C::Forbidden
        | C::ExtensionNotApproved
        | C::ApprovalKeyRequired
        | C::ApprovalKeyNotForRequests
        | C::LoginLinkInvalid
        | C::CsrfRejected => 403,
        C::AlreadyApproved
        | C::InvalidState
        | C::PolicyChanged
        | C::TooManyActiveGrants
        | C::DuplicatePendingRequest
        | C::TooManyPendingRequests
        | C::RequestDigestMismatch
        | C::HostGrantsFull => 409,
        C::Internal => 500,
        C::Unavailable => 503,
    }
}

/// What can go wrong with the CA's keys and signatures.
#[derive(Debug)]
#[non_exhaustive]
pub enum SignerError {
    /// No user-CA key or no grant key was configured.
    MissingKeys,
    /// An Ed25519 private key whose public half is not the one its private half derives.
    KeyHalves {
        fingerprint: String,
        source: ssh_key::Error,
    },
    /// Generating a key failed (the OS random generator).
    Generate(ssh_key::Error),
    /// Encoding a key in OpenSSH format failed.
    Encode(ssh_key::Error),
    /// Building or signing a certificate failed.
    Certificate(ssh_key::Error),
}

impl fmt::Display for SignerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingKeys => {
                write!(f, "at least one user-CA key and one grant key are required")
            }
            Self::KeyHalves {
                fingerprint,
                source,
            } => write!(
                f,
                "Ed25519 key {fingerprint}: private and public halves do not match ({source})"
            ),
            Self::Generate(e) => write!(f, "key generation failed: {e}"),
            Self::Encode(e) => write!(f, "key encoding failed: {e}"),
            Self::Certificate(e) => write!(f, "certificate: {e}"),
        }
    }
}

impl std::error::Error for SignerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::MissingKeys => None,
            Self::KeyHalves { source, .. } => Some(source),
            Self::Generate(e) | Self::Encode(e) | Self::Certificate(e) => Some(e),
        }
    }
}

impl From<SignerError> for CaError {
    fn from(e: SignerError) -> Self {
        CaError::Signer(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn internal_errors_carry_a_fresh_reference_and_no_detail() {
        let a = ApiError::internal("secret detail");
        let b = ApiError::internal("secret detail");
        assert_eq!((a.status, a.code), (500, ErrorCode::Internal));
        assert!(!a.message.contains("secret"), "{}", a.message);
        let reference = |e: &ApiError| {
            let start = e.message.find("e-").unwrap();
            e.message[start..start + 22].to_string()
        };
        let (ra, rb) = (reference(&a), reference(&b));
        assert_ne!(ra, rb);
        assert!(ra[2..].bytes().all(|c| c.is_ascii_hexdigit()), "{ra}");
    }

    /// The server-fault class of a code and its status agree (callers branch on the class).
    #[test]
    fn server_faults_are_the_5xx_codes() {
        for &c in ErrorCode::ALL {
            assert_eq!(c.is_server_fault(), status_of(c) >= 500, "{c}");
        }
        assert!(ErrorCode::Unavailable.is_server_fault());
        assert!(!ErrorCode::InvalidState.is_server_fault());
    }

    /// Every code has its row in docs/api.md's error table, with the status it is sent with.
    #[test]
    fn every_error_code_is_in_docs_api_md_with_its_status() {
        let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md"));
        let missing: Vec<String> = ErrorCode::ALL
            .iter()
            .map(|&c| format!("| `{}` | {} |", c.as_str(), status_of(c)))
            .filter(|row| !doc.contains(row.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/api.md's error table lacks these rows (code and status): {missing:?}"
        );
    }

    /// An unreachable database is 503 `unavailable` (nothing stored: safe to send again),
    /// never an internal error, and its detail stays in the log.
    #[test]
    fn an_unreachable_database_is_503_unavailable() {
        let e = CaError::Unavailable("connection refused to db.internal:5432".into());
        assert_eq!(e.code(), "unavailable");
        assert!(e.to_string().contains("unreachable"), "{e}");
        let a = ApiError::from(e);
        assert_eq!((a.status, a.code), (503, ErrorCode::Unavailable));
        assert_eq!(a.message, "the CA's database is unreachable; retry");
    }

    #[test]
    fn named_variants_keep_their_source() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "in use");
        let e = CaError::Listen {
            addr: "127.0.0.1:8443".parse().unwrap(),
            source: io,
        };
        assert_eq!(
            e.to_string(),
            "cannot listen on 127.0.0.1:8443: in use (use --listen ADDR)"
        );
        assert_eq!(e.source().unwrap().to_string(), "in use");
        let e = CaError::ServiceRunning {
            dir: "/d".into(),
            lock: "/d/serve.lock".into(),
        };
        assert!(
            e.to_string()
                .starts_with("another `jit-ca serve` is already running on /d")
        );
        assert!(e.source().is_none());
        let too_big = u8::try_from(300u32).unwrap_err();
        assert_eq!(
            CaError::KrlTooLarge(too_big).to_string(),
            "KRL section too large"
        );
        assert!(CaError::KrlTooLarge(too_big).source().is_some());
    }
}

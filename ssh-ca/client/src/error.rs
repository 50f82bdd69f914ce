//! The client's errors: each says what went wrong and what to do, and maps to an exit code.

use std::fmt;
use std::path::PathBuf;

/// Exit code: success.
pub const EXIT_OK: i32 = 0;
/// Exit code: any error (server refusal, network, files, identity).
pub const EXIT_ERROR: i32 = 1;
/// Exit code: bad command line or configuration (clap also exits 2 on usage errors).
pub const EXIT_USAGE: i32 = 2;
/// Exit code: `request` waited and the request was denied, expired or revoked.
pub const EXIT_NOT_GRANTED: i32 = 3;

/// Result alias for the client.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `jit`.
#[derive(Debug)]
pub enum Error {
    /// The command line or the configuration is unusable.
    Usage(String),
    /// No usable signing identity (key file or ssh-agent).
    Identity(String),
    /// The server answered with a JSON error body (`wire::ErrorBody`).
    Api {
        /// HTTP status.
        status: u16,
        /// Stable error code (`wire::ErrorCode` in snake_case).
        code: String,
        /// The server's one-line message.
        message: String,
    },
    /// The server answered something that is not the API (wrong URL, proxy page, ...).
    Protocol(String),
    /// The server could not be reached.
    Transport {
        /// The server URL.
        server: String,
        /// What the HTTP library said.
        detail: String,
    },
    /// A local file could not be read or written.
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        detail: String,
    },
    /// The ssh-agent failed.
    Agent(String),
    /// The request is not in a state that allows this (e.g. `login` while still pending).
    State(String),
    /// The request ended without a certificate (denied, expired, revoked) while waiting.
    NotGranted(String),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Usage(_) => EXIT_USAGE,
            Self::NotGranted(_) => EXIT_NOT_GRANTED,
            _ => EXIT_ERROR,
        }
    }

    /// The stable code for `--json` error output.
    pub fn code(&self) -> &str {
        match self {
            Self::Usage(_) => "usage",
            Self::Identity(_) => "identity",
            Self::Api { code, .. } => code,
            Self::Protocol(_) => "protocol",
            Self::Transport { .. } => "unreachable",
            Self::File { .. } => "file",
            Self::Agent(_) => "agent",
            Self::State(_) => "invalid_state",
            Self::NotGranted(_) => "not_granted",
        }
    }

    pub(crate) fn file(path: impl Into<PathBuf>, detail: impl fmt::Display) -> Self {
        Self::File {
            path: path.into(),
            detail: detail.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(m)
            | Self::Identity(m)
            | Self::Protocol(m)
            | Self::State(m)
            | Self::NotGranted(m) => f.write_str(m),
            Self::Api {
                status,
                code,
                message,
            } => write!(f, "server refused ({code}, HTTP {status}): {message}"),
            Self::Transport { server, detail } => write!(
                f,
                "cannot reach the CA at {server}: {detail} (check --server, JIT_SERVER or \
                 ~/.config/jit/config.toml, and that jit-ca is running)"
            ),
            Self::File { path, detail } => write!(f, "{}: {detail}", path.display()),
            Self::Agent(m) => write!(f, "ssh-agent: {m}"),
        }
    }
}

impl std::error::Error for Error {}

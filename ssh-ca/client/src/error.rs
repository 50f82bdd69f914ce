//! The client's errors: each says what went wrong and what to do, and maps to an exit code.

use std::fmt;
use std::path::PathBuf;

use jit_api::wire::ReceivedCode;

/// Exit code: success.
pub const EXIT_OK: i32 = 0;
/// Exit code: any error (server refusal, network, files, identity).
pub const EXIT_ERROR: i32 = 1;
/// Exit code: bad command line or configuration (clap also exits 2 on usage errors).
pub const EXIT_USAGE: i32 = 2;
/// Exit code: `request` waited and the request was denied, expired or revoked.
pub const EXIT_NOT_GRANTED: i32 = 3;
/// Exit code: stopped by Ctrl-C (SIGINT) while waiting: 128 + 2, as shells report it.
pub const EXIT_INTERRUPTED: i32 = 130;

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
        /// The stable error code, typed (a code this build does not know is kept verbatim).
        code: ReceivedCode,
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
    /// A change was sent but its answer was lost: the CA may or may not have stored it
    /// (not resent, not even to another replica).
    Unsure(String),
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
    /// Ctrl-C while waiting: what to do next (the request is left as it is).
    Interrupted(String),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Usage(_) => EXIT_USAGE,
            Self::NotGranted(_) => EXIT_NOT_GRANTED,
            Self::Interrupted(_) => EXIT_INTERRUPTED,
            Self::Api { code, .. } => api_exit_code(code),
            _ => EXIT_ERROR,
        }
    }

    /// The server's error code, when the server refused.
    pub fn api_code(&self) -> Option<&ReceivedCode> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The stable code for `--json` error output.
    pub fn code(&self) -> &str {
        match self {
            Self::Usage(_) => "usage",
            Self::Identity(_) => "identity",
            Self::Api { code, .. } => code.as_str(),
            Self::Protocol(_) => "protocol",
            Self::Transport { .. } => "unreachable",
            Self::Unsure(_) => "outcome_unknown",
            Self::File { .. } => "file",
            Self::Agent(_) => "agent",
            Self::State(_) => "invalid_state",
            Self::NotGranted(_) => "not_granted",
            Self::Interrupted(_) => "interrupted",
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
            | Self::Unsure(m)
            | Self::NotGranted(m)
            | Self::Interrupted(m) => f.write_str(m),
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

/// The exit code for a server refusal, by its typed code. Every refusal exits 1 today, a code
/// this build does not know too; a code that should get its own exit code gets an arm here
/// (and a line in `jit --help`).
fn api_exit_code(code: &ReceivedCode) -> i32 {
    match code {
        ReceivedCode::Known(_) | ReceivedCode::Unknown(_) => EXIT_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jit_api::wire::{ErrorBody, ErrorCode};

    fn api_error(body: &str) -> Error {
        let b: ErrorBody = serde_json::from_str(body).unwrap();
        Error::Api {
            status: 403,
            code: b.error.received_code(),
            message: b.error.message,
        }
    }

    #[test]
    fn a_refusal_carries_a_typed_code() {
        let e = api_error(r#"{"error":{"code":"self_approval","message":"no"}}"#);
        assert_eq!(
            e.api_code(),
            Some(&ReceivedCode::Known(ErrorCode::SelfApproval))
        );
        assert_eq!(e.code(), "self_approval");
        assert_eq!(e.exit_code(), EXIT_ERROR);
        assert_eq!(
            e.to_string(),
            "server refused (self_approval, HTTP 403): no"
        );
    }

    #[test]
    fn an_unknown_code_is_kept_and_exits_1() {
        let e = api_error(r#"{"error":{"code":"new_in_v9","message":"later"}}"#);
        assert_eq!(
            e.api_code(),
            Some(&ReceivedCode::Unknown("new_in_v9".into()))
        );
        assert_eq!(e.code(), "new_in_v9");
        assert_eq!(e.exit_code(), EXIT_ERROR);
        assert_eq!(Error::Usage("x".into()).api_code(), None);
    }
}

//! The one error type of `jit-host`: a message for people and an exit code.

use std::fmt;

/// What went wrong, said so that the reader knows what to do.
#[derive(Debug)]
pub struct Failure {
    /// One or more lines for stderr.
    pub message: String,
    /// Exit code (1 = refused/failed, 2 = configuration or usage problem).
    pub code: u8,
    /// Print nothing (the `principals` hook must never write to sshd).
    pub silent: bool,
}

impl Failure {
    /// Exit 1.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 1,
            silent: false,
        }
    }

    /// Exit 2: the configuration or the invocation is wrong.
    pub fn config(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 2,
            silent: false,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// `Result` of a subcommand.
pub type Result<T> = std::result::Result<T, Failure>;

/// Loads the configuration or fails with exit code 2.
pub fn load_config(path: &std::path::Path) -> Result<pam_jit_core::config::Config> {
    pam_jit_core::config::Config::load(path).map_err(|e| Failure::config(e.to_string()))
}

/// The names this host answers to: the kernel host name, then host.toml's `hostnames` (as
/// pam_jit.so sees them: [`pam_jit_core::host_names`]).
pub use pam_jit_core::host_names;

//! Errors of the shared formats. Each names the problem and, where it helps, what to do.

use std::fmt;

use crate::time::{UnixTime, format_utc};

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can be wrong with a grant or revocation list. Each variant is distinct so
/// that callers (and the test vectors) can tell them apart.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input is larger than the format allows.
    Oversized { len: usize, max: usize },
    /// The input ends before the signature block is complete (or has none).
    Truncated { detail: &'static str },
    /// Bytes follow the end of the signature block.
    TrailingData { len: usize },
    /// The SSHSIG block is not a valid OpenSSH signature.
    MalformedSignature { detail: String },
    /// The body is not the JSON object the format describes.
    Malformed { detail: String },
    /// The body's `version` is not one this build understands.
    UnknownVersion { found: u64 },
    /// The body has a field this version does not define.
    UnknownField { name: String },
    /// A field is present but its value is not acceptable.
    InvalidField { name: &'static str, detail: String },
    /// The signature was made for another kind of document.
    WrongNamespace {
        expected: &'static str,
        found: String,
    },
    /// The signing key is not one of the trusted keys.
    UntrustedKey { fingerprint: String },
    /// The body's `key_id` does not name the key that signed it.
    KeyIdMismatch { key_id: String, signer: String },
    /// The signature does not match the body.
    BadSignature,
    /// The grant's window has not started yet.
    NotYetValid { not_before: UnixTime, now: UnixTime },
    /// The grant's window has ended.
    Expired { not_after: UnixTime, now: UnixTime },
    /// Signing failed (a key problem on the CA side).
    Signing { detail: String },
    /// A key could not be parsed.
    BadKey { detail: String },
    /// A verified-document record (see [`crate::record`]) does not apply to this document.
    Record { detail: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Oversized { len, max } => {
                write!(f, "document is {len} bytes, more than the {max} allowed")
            }
            Self::Truncated { detail } => write!(f, "document is truncated: {detail}"),
            Self::TrailingData { len } => write!(
                f,
                "{len} unexpected bytes after the signature block (the file was edited or concatenated)"
            ),
            Self::MalformedSignature { detail } => {
                write!(f, "the SSH signature block is malformed: {detail}")
            }
            Self::Malformed { detail } => write!(f, "the document body is malformed: {detail}"),
            Self::UnknownVersion { found } => write!(
                f,
                "unknown format version {found} (this build reads version 1; upgrade jit on this host)"
            ),
            Self::UnknownField { name } => {
                write!(f, "unknown field {name:?} (not part of format version 1)")
            }
            Self::InvalidField { name, detail } => write!(f, "field {name:?} is invalid: {detail}"),
            Self::WrongNamespace { expected, found } => write!(
                f,
                "signature namespace is {found:?}, expected {expected:?} (a signature for another kind of document)"
            ),
            Self::UntrustedKey { fingerprint } => write!(
                f,
                "signed by {fingerprint}, which is not a trusted key (check trusted keys in host.toml)"
            ),
            Self::KeyIdMismatch { key_id, signer } => {
                write!(
                    f,
                    "key_id {key_id:?} does not name the signing key {signer}"
                )
            }
            Self::BadSignature => write!(
                f,
                "the signature does not match the document (it was altered)"
            ),
            Self::NotYetValid { not_before, now } => write!(
                f,
                "not valid until {} (now {}; check the clocks)",
                format_utc(*not_before),
                format_utc(*now)
            ),
            Self::Expired { not_after, now } => write!(
                f,
                "expired at {} (now {})",
                format_utc(*not_after),
                format_utc(*now)
            ),
            Self::Signing { detail } => write!(f, "signing failed: {detail}"),
            Self::BadKey { detail } => write!(f, "bad key: {detail}"),
            Self::Record { detail } => write!(
                f,
                "verified-document record not usable: {detail} (the signature is checked instead)"
            ),
        }
    }
}

impl std::error::Error for Error {}

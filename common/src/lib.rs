//! The one format both sides of jit share, and the small pieces both need.
//!
//! * [`grant`]: the CA's signed statement "user U may use sudo on hosts matching H from
//!   T1 to T2, because request R with reason X was approved by A1..Ak".
//! * [`revocation`]: the CA's signed list of revoked grant ids and certificate serials.
//! * [`envelope`]: the on-disk encoding of both (JSON body + OpenSSH SSHSIG armour),
//!   checkable with stock `ssh-keygen -Y verify`. See `docs/grant-format.md`.
//! * [`document`]: the one reader of both: envelope, version, namespace-bound signature,
//!   typed body ([`Signed`]).
//! * [`keys`]: the set of public keys a verifier trusts.
//! * [`host`]: host selector matching (`db-*`, `web-[0-9]?`).
//! * [`secure_file`]: reading files that grant power (no symlinks, trusted owner, not
//!   group/world-writable, size cap) and writing them atomically.
//! * [`log`]: syslog line hygiene (control characters escaped, long lines cut).
//! * [`text`]: the one check of text shown to people (no control, bidi or invisible
//!   format characters).
//! * `stdout` (feature `stdout`): the programs' stdout writers; a closed pipe ends the
//!   program quietly (status 141), never a panic.
//! * [`record`]: root's verified-document records, which let a fresh process skip an
//!   Ed25519 verification root already made for the same bytes under the same keys.
//!
//! Time is always a parameter ([`UnixTime`], lengths of time [`Secs`]); nothing in this
//! crate reads the clock except [`now`], which entry points call once.
#![forbid(unsafe_code)]

pub mod document;
pub mod envelope;
pub mod error;
pub mod grant;
pub mod host;
pub mod keys;
pub mod log;
pub mod record;
pub mod revocation;
pub mod secure_file;
#[cfg(any(test, feature = "stdout"))]
pub mod stdout;
pub mod text;
pub mod time;

pub use document::Signed;
pub use error::{Error, Result};
pub use grant::{Approval, Grant, NotCovered, SignedGrant, UnverifiedGrant, VerifiedGrant};
pub use keys::KeyRing;
pub use revocation::{RevocationList, UnverifiedRevocationList, VerifiedRevocationList};
pub use time::{Secs, UnixTime, now};

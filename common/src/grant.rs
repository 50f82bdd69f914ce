//! Grants: the CA's signed statement that a user may use sudo on some hosts for a while.
//!
//! The type states make the difference between "well-formed", "signed by a trusted key and
//! inside its window" and "authorises this user on this host now" explicit:
//!
//! ```text
//! Grant --SignedGrant::sign(key)--> SignedGrant          (the CA's signer; embedded in the
//!                                                          certificate's `jit-grant@jit`)
//! bytes --SignedGrant::parse-------> SignedGrant --verify_at(now, keys, skew)--> VerifiedGrant
//!                                               VerifiedGrant::covers(user, host, now) -> Ok(()) | NotCovered
//! bytes + root's TrustedRecord --VerifiedGrant::from_record(now, keyring, skew)-----> VerifiedGrant
//! ```
//!
//! [`SignedGrant`] (also named [`UnverifiedGrant`] where the reader wants the warning) is one
//! type from the CA's signer to the host: the document bytes and the parsed body, read by the
//! one signed-document reader ([`crate::document`]) that revocation lists share.
//!
//! The second path to a [`VerifiedGrant`] is narrow on purpose: it needs a
//! [`crate::record::TrustedRecord`] (only obtainable from a root-owned record file) that
//! names the SHA-256 of these exact bytes and the digest of the keys in force; it replaces
//! the Ed25519 check only, and still checks `key_id` and the window.
//!
//! A [`VerifiedGrant`] only says the CA signed it and it is inside its window: it is **not**
//! an authorisation. Only [`VerifiedGrant::covers`] answers "may this user use sudo here now",
//! and revocation is checked separately against a [`crate::VerifiedRevocationList`].

use std::fmt;

use serde::{Deserialize, Serialize};
use ssh_key::SigningKey;

use crate::document::{self, Document, Signed};
use crate::envelope::MAX_GRANT_SIZE;
#[cfg(test)]
use crate::envelope::split_body;
use crate::error::{Error, Result};
use crate::host;
use crate::keys::KeyRing;
use crate::record::{KeyringDigest, Kind, TrustedRecord};
use crate::time::{Secs, UnixTime, format_utc};

/// The SSHSIG namespace of grants (`ssh-keygen -Y verify -n jit-grant@jit`).
pub const NAMESPACE: &str = "jit-grant@jit";
/// The OpenSSH certificate extension whose value is the grant document, as the CA's signer
/// writes it and hosts read it. The one definition of the name (it is spelled as the
/// namespace).
pub const CERT_EXTENSION: &str = NAMESPACE;
/// The format version this build writes and reads.
pub const VERSION: u64 = 1;
/// Longest reason kept in a grant, in bytes.
pub const MAX_REASON_LEN: usize = 1024;
/// Longest ticket kept in a grant, in bytes.
pub const MAX_TICKET_LEN: usize = 128;
/// Most host selectors in one grant.
pub const MAX_HOSTS: usize = 64;
/// Most approvers recorded in one grant.
pub const MAX_APPROVERS: usize = 32;

const FIELDS: &[&str] = &[
    "version",
    "id",
    "user",
    "role",
    "hosts",
    "sudo",
    "not_before",
    "not_after",
    "issued_at",
    "request_id",
    "reason",
    "ticket",
    "approvers",
    "cert_serial",
    "session_bound",
    "key_id",
];

/// One approval recorded in a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// Who approved (a CA user name, or `auto:<rule>` for an auto-approval).
    pub user: String,
    /// When.
    pub at: UnixTime,
}

/// The statement a grant makes. Field order here is the order in the signed body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Format version, always [`VERSION`].
    pub version: u64,
    /// Unique grant id (`[A-Za-z0-9._-]`, at most 64 bytes); also its file name on hosts.
    pub id: String,
    /// Login name on the hosts.
    pub user: String,
    /// The role it was granted under.
    pub role: String,
    /// Host selectors: exact names or shell-style globs (`db-*`).
    pub hosts: Vec<String>,
    /// Whether sudo is allowed.
    pub sudo: bool,
    /// Start of the window (inclusive).
    pub not_before: UnixTime,
    /// End of the window (exclusive).
    pub not_after: UnixTime,
    /// When the CA signed it.
    pub issued_at: UnixTime,
    /// The access request it answers.
    pub request_id: String,
    /// Why access was asked for.
    pub reason: String,
    /// The ticket the reason carries (what the role's `reason_pattern` matched); absent when
    /// the role has no pattern. A host older than this field refuses a grant carrying one
    /// (unknown field): upgrade hosts before the CA starts issuing tickets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// Who approved, and when.
    pub approvers: Vec<Approval>,
    /// Serial of the certificate issued with it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_serial: Option<u64>,
    /// Sudo only from the SSH connection that presented the certificate carrying this grant
    /// (`cert_serial`), while that connection lives (issue 14; the role's `session_bound`).
    /// Absent when false, so other grants are what older CAs wrote; a host older than this
    /// field refuses a grant carrying it (unknown field), which fails closed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub session_bound: bool,
    /// Fingerprint (`SHA256:...`) of the key that signs it; set by [`Grant::sign`].
    pub key_id: String,
}

impl Grant {
    /// Checks every field's shape (not the signature, not the time).
    pub fn validate(&self) -> Result<()> {
        if self.version != VERSION {
            return Err(Error::UnknownVersion {
                found: self.version,
            });
        }
        check_id("id", &self.id)?;
        check_id("request_id", &self.request_id)?;
        check_user("user", &self.user)?;
        check_id("role", &self.role)?;
        if self.hosts.is_empty() {
            return Err(invalid("hosts", "at least one host selector is required"));
        }
        if self.hosts.len() > MAX_HOSTS {
            return Err(invalid("hosts", format!("at most {MAX_HOSTS} selectors")));
        }
        for h in &self.hosts {
            host::validate_selector(h).map_err(|d| invalid("hosts", d))?;
        }
        if self.not_after <= self.not_before {
            return Err(invalid("not_after", "must be later than not_before"));
        }
        if self.reason.len() > MAX_REASON_LEN {
            return Err(invalid(
                "reason",
                format!("longer than {MAX_REASON_LEN} bytes"),
            ));
        }
        // The same rule as the CA's input check (`text::check_line`): no control characters
        // and no invisible or bidi format characters (Unicode Cf), which would make the reason
        // read differently in logs and denials from what was approved.
        if let Some(c) = self.reason.chars().find(|&c| crate::text::is_hidden(c)) {
            return Err(invalid(
                "reason",
                format!(
                    "contains the control or format character U+{:04X}",
                    u32::from(c)
                ),
            ));
        }
        if let Some(t) = &self.ticket {
            if t.is_empty() || t.len() > MAX_TICKET_LEN {
                return Err(invalid(
                    "ticket",
                    format!("must be 1 to {MAX_TICKET_LEN} bytes"),
                ));
            }
            if let Some(c) = t.chars().find(|&c| crate::text::is_hidden(c)) {
                return Err(invalid(
                    "ticket",
                    format!(
                        "contains the control or format character U+{:04X}",
                        u32::from(c)
                    ),
                ));
            }
        }
        if self.session_bound && self.cert_serial.is_none() {
            return Err(invalid(
                "session_bound",
                "a session-bound grant must name the serial of the certificate that carries it",
            ));
        }
        if self.approvers.len() > MAX_APPROVERS {
            return Err(invalid("approvers", format!("at most {MAX_APPROVERS}")));
        }
        for a in &self.approvers {
            if a.user.is_empty() || a.user.len() > 128 || a.user.chars().any(|c| c.is_control()) {
                return Err(invalid(
                    "approvers",
                    "approver names must be 1-128 printable characters",
                ));
            }
        }
        if !self.key_id.is_empty() && !self.key_id.starts_with("SHA256:") {
            return Err(invalid("key_id", "must be an OpenSSH SHA256 fingerprint"));
        }
        Ok(())
    }

    /// Signs the grant with `key` (setting `key_id` to its fingerprint) and returns the
    /// document to store or send; [`SignedGrant::sign`] also returns what hosts parse from it.
    ///
    /// `key` is an `ssh_key::PrivateKey` or any other [`SigningKey`].
    pub fn sign<S: SigningKey>(self, key: &S) -> Result<Vec<u8>> {
        document::seal(self, key)
    }
}

impl Document for Grant {
    const NAMESPACE: &'static str = NAMESPACE;
    const MAX_SIZE: usize = MAX_GRANT_SIZE;
    const FIELDS: &'static [&'static str] = FIELDS;
    const KIND: Kind = Kind::Grant;

    fn check(&self) -> Result<()> {
        self.validate()
    }

    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn set_key_id(&mut self, key_id: String) {
        self.key_id = key_id;
    }
}

/// A grant document and its parsed body: what the CA's signer produces
/// ([`SignedGrant::sign`]), what a certificate carries in its [`CERT_EXTENSION`] and what a
/// host parses ([`SignedGrant::parse`]). Well-formed, but its signature and window have not
/// been checked: its contents may be shown to people (for example by `jit-host list`) but
/// never trusted before [`SignedGrant::verify_at`].
pub type SignedGrant = Signed<Grant>;

/// [`SignedGrant`], named for readers that must not forget it is not verified yet.
pub type UnverifiedGrant = SignedGrant;

impl Signed<Grant> {
    /// Checks the signature against `trusted` and the window against `now`, allowing `skew`
    /// of clock difference at both ends.
    pub fn verify_at(
        self,
        now: impl Into<UnixTime>,
        trusted: &KeyRing,
        skew: impl Into<Secs>,
    ) -> Result<VerifiedGrant> {
        let skew = skew.into();
        let signer = self.verify_signature(trusted)?;
        let grant = self.into_claims();
        check_window(&grant, now.into(), skew)?;
        Ok(VerifiedGrant {
            grant,
            signer,
            skew,
        })
    }
}

/// The few claims a pre-filter looks at (user, sudo, end of window, host selectors), read
/// from the JSON body without decoding the signature block, borrowed where possible, other
/// fields skipped, nothing validated. Unverified: only for choosing which grants are worth
/// verifying (a document this refuses is simply not pre-selected), never for deciding.
#[derive(Debug, PartialEq, Eq, Deserialize)]
pub struct ClaimsPeek<'a> {
    /// Login name the grant claims to be for.
    #[serde(borrow)]
    pub user: std::borrow::Cow<'a, str>,
    /// Whether it claims to allow sudo.
    pub sudo: bool,
    /// Claimed end of the window.
    pub not_after: UnixTime,
    /// Claimed host selectors.
    #[serde(borrow)]
    pub hosts: Vec<std::borrow::Cow<'a, str>>,
    /// Whether it claims to be session-bound (absent: false, as in [`Grant`]).
    #[serde(default)]
    pub session_bound: bool,
}

/// Peeks at a grant document's claims ([`ClaimsPeek`]); `None` if the body cannot be read so.
/// One forward scan of the body ([`peek`]), not a serde parse.
pub fn peek_claims_unverified(input: &[u8]) -> Option<ClaimsPeek<'_>> {
    peek::peek(input)
}

/// The serde reading of the claims, which [`peek_claims_unverified`]'s scan is tested
/// against.
#[cfg(test)]
pub(crate) fn peek_claims_serde(input: &[u8]) -> Option<ClaimsPeek<'_>> {
    serde_json::from_slice(split_body(input, MAX_GRANT_SIZE).ok()?).ok()
}

mod peek;

/// The claims of a grant document, read from its JSON body only: the signature block is
/// neither decoded nor checked. Strict on the body (same rules as [`UnverifiedGrant::parse`]),
/// so it accepts nothing `parse` would refuse for its body. Use only to choose which grants
/// to verify; cheaper than `parse` (no base64/PEM decode, no canonical re-encoding).
pub fn parse_claims_unverified(input: &[u8]) -> Result<Grant> {
    document::claims_unverified(input)
}

/// A grant signed by a trusted key and inside its window at verification time.
///
/// This is **not** an authorisation: ask [`VerifiedGrant::covers`], and check revocation.
#[derive(Debug, Clone)]
pub struct VerifiedGrant {
    grant: Grant,
    signer: String,
    skew: Secs,
}

impl VerifiedGrant {
    /// A grant whose exact bytes root already verified under the keys in force, as `record`
    /// (read from a root-owned file by [`crate::record::read_trusted`]) states. Fails unless
    /// the record is about a grant, names `input`'s SHA-256 and `keyring`; then the claims
    /// are read from `input`'s body, their `key_id` must name the recorded signer, and the
    /// window is checked at `now` with `skew`, exactly as [`UnverifiedGrant::verify_at`]
    /// does. Which ring verified it (grant or break-glass keys) is `record.ring()`.
    ///
    /// This replaces the Ed25519 verification and nothing else.
    pub fn from_record(
        input: &[u8],
        record: &TrustedRecord,
        keyring: &KeyringDigest,
        now: impl Into<UnixTime>,
        skew: impl Into<Secs>,
    ) -> Result<Self> {
        let skew = skew.into();
        let grant: Grant = document::from_record(input, record, keyring)?;
        check_window(&grant, now.into(), skew)?;
        Ok(Self {
            grant,
            signer: record.signer().to_string(),
            skew,
        })
    }

    /// The verified claims.
    pub fn grant(&self) -> &Grant {
        &self.grant
    }

    /// Fingerprint of the key that signed it.
    pub fn signer(&self) -> &str {
        &self.signer
    }

    /// Whether this grant lets `user` use sudo on a host known by any of `host_names` at
    /// `now` (with the skew given to `verify_at`). Revocation is not checked here.
    pub fn covers(
        &self,
        user: &str,
        host_names: &[&str],
        now: impl Into<UnixTime>,
    ) -> std::result::Result<(), NotCovered> {
        let now = now.into();
        let g = &self.grant;
        if g.user != user {
            return Err(NotCovered::OtherUser {
                grant_user: g.user.clone(),
            });
        }
        if !g.sudo {
            return Err(NotCovered::NoSudo);
        }
        match check_window(g, now, self.skew) {
            Err(Error::NotYetValid { not_before, .. }) => {
                return Err(NotCovered::NotYetValid { not_before });
            }
            Err(_) => {
                return Err(NotCovered::Expired {
                    not_after: g.not_after,
                });
            }
            Ok(()) => {}
        }
        let matched = g
            .hosts
            .iter()
            .any(|sel| host_names.iter().any(|h| host::matches(sel, h)));
        if !matched {
            return Err(NotCovered::OtherHost {
                selectors: g.hosts.clone(),
            });
        }
        Ok(())
    }
}

/// Why a verified grant does not authorise a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotCovered {
    /// The grant is for someone else.
    OtherUser { grant_user: String },
    /// The grant does not allow sudo.
    NoSudo,
    /// The grant's host selectors do not match this host.
    OtherHost { selectors: Vec<String> },
    /// The window has not started.
    NotYetValid { not_before: UnixTime },
    /// The window has ended.
    Expired { not_after: UnixTime },
}

impl fmt::Display for NotCovered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OtherUser { grant_user } => write!(f, "it is for user {grant_user:?}"),
            Self::NoSudo => write!(f, "its role does not allow sudo"),
            Self::OtherHost { selectors } => {
                write!(f, "it covers hosts {}, not this one", selectors.join(","))
            }
            Self::NotYetValid { not_before } => {
                write!(f, "it starts at {}", format_utc(*not_before))
            }
            Self::Expired { not_after } => write!(f, "it expired at {}", format_utc(*not_after)),
        }
    }
}

fn check_window(g: &Grant, now: UnixTime, skew: Secs) -> Result<()> {
    if now.saturating_add(skew) < g.not_before {
        return Err(Error::NotYetValid {
            not_before: g.not_before,
            now,
        });
    }
    if now >= g.not_after.saturating_add(skew) {
        return Err(Error::Expired {
            not_after: g.not_after,
            now,
        });
    }
    Ok(())
}

fn invalid(name: &'static str, detail: impl Into<String>) -> Error {
    Error::InvalidField {
        name,
        detail: detail.into(),
    }
}

/// Ids: 1-64 bytes of `[A-Za-z0-9._-]`, not starting with `.` or `-` (safe as file names).
pub fn check_id(name: &'static str, v: &str) -> Result<()> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && !v.starts_with(['.', '-'])
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            name,
            format!("{v:?} must be 1-64 characters of A-Z a-z 0-9 . _ -, not starting with . or -"),
        ))
    }
}

/// Login names: 1-32 bytes of `[a-z0-9_.-]` starting with a letter or `_` (POSIX portable
/// user names, lower case, as `useradd` accepts by default).
pub fn check_user(name: &'static str, v: &str) -> Result<()> {
    let ok = !v.is_empty()
        && v.len() <= 32
        && v.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && v.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            name,
            format!("{v:?} is not a valid login name (a-z 0-9 _ - ., starting with a letter or _)"),
        ))
    }
}

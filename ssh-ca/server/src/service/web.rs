//! Web sessions (issue 16, docs/web.md): a signed call (`jit web`) gets a one-time login
//! link; the browser that opens it gets a session cookie bound to that user and the key that
//! signed the call. The pages (`crate::ui`) build on what is here.
//!
//! * The login token: 32 random bytes, base64url; valid [`LINK_TTL_SECS`], single use
//!   (consumed in one statement of one transaction). Only its SHA-256 is stored.
//! * The session: id `ws-` + 16 hex (public: audit records, the page footer); the cookie
//!   secret is 32 random bytes, base64url, stored as its SHA-256. The CSRF token is derived
//!   from the secret ([`csrf_token`]) and compared in constant time ([`csrf_matches`]).
//! * A session is valid while it is not ended, not older than `session_max_age`, not idle
//!   longer than `session_idle_timeout` (each the shorter of the setting at login, stored
//!   with the session, and the current one: raising a limit never revives or extends a
//!   session), and its user still exists holding the key that established it (checked on
//!   every page and again inside every decision's transaction; groups are read fresh).
//! * `last_seen` is written at most once per [`touch_interval`] (min(60 s, idle / 4)).
//! * A refused login link costs a read and a rate-limited refusal record: only a link that
//!   exists, unused and unexpired, takes the writer. A user has at most
//!   [`MAX_OUTSTANDING_LINKS`] unused links at a time.
//!
//! Neither the token nor the cookie secret ever appears in an audit record or a log line.

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::approve::Via;
use super::{ApiResult, Ca, Caller, CallerKey, check_text, refuse};
use crate::audit::{Record, event};
use crate::error::ApiError;
use crate::policy::Role;
use crate::store::{WebLoginRow, WebSessionRow};
use jit_api::wire::{ErrorCode as C, RequestView, WebLoginView};

mod sessions;
pub use sessions::{end_sessions, touch_interval};

/// How long a login link is valid.
pub const LINK_TTL_SECS: u64 = 60;
/// `last_seen` is written at most this often per session (less for short idle timeouts:
/// [`touch_interval`]).
pub const TOUCH_SECS: u64 = 60;
/// Login links and sessions are deleted (by the sweep) this long after their end.
pub const PRUNE_AFTER_SECS: u64 = 24 * 3600;
/// At most this many unused, unexpired login links per user.
pub const MAX_OUTSTANDING_LINKS: u64 = 5;
/// Length of a token or cookie secret: base64url of 32 bytes, no padding.
const SECRET_LEN: usize = 43;
/// The prefix of the CSRF token's hash input.
const CSRF_CONTEXT: &[u8] = b"jit-csrf-v1\0";

/// A valid web session, as a page sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// `ws-` + 16 lowercase hex.
    pub id: String,
    /// The user it is bound to.
    pub user: String,
    /// The user's groups, read now.
    pub groups: Vec<String>,
    /// The key that established it (`touched` is always false: a touch was for the login).
    pub key: CallerKey,
    /// The CSRF token of its forms.
    pub csrf: String,
    /// Its absolute end (login + `session_max_age`), Unix seconds.
    pub expires_at: u64,
}

impl WebSession {
    /// The caller the service's operations see: no signed call (`proof` None), the session
    /// id in `session`.
    pub fn caller(&self) -> Caller {
        Caller {
            user: self.user.clone(),
            groups: self.groups.clone(),
            key: self.key.clone(),
            proof: None,
            session: Some(self.id.clone()),
        }
    }
}

/// What a login link's page shows before it is used (`GET /ui/login?token=`): read only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginPreview {
    /// Who will be logged in.
    pub user: String,
    /// The key that asked for the link.
    pub key_fingerprint: String,
    /// The link is refused from this time on.
    pub expires_at: u64,
}

/// The CSRF token of a session: base64url(SHA-256("jit-csrf-v1\0" || secret)).
pub fn csrf_token(secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(CSRF_CONTEXT);
    h.update(secret.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

/// Whether a form's `csrf` field is the session's token (constant time).
pub fn csrf_matches(s: &WebSession, presented: &str) -> bool {
    constant_time_eq(s.csrf.as_bytes(), presented.as_bytes())
}

/// Compares two byte strings in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    std::hint::black_box(diff) == 0
}

pub(crate) fn random_secret() -> String {
    use rand_core::RngCore as _;
    let mut b = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

fn new_session_id() -> String {
    use rand_core::RngCore as _;
    let mut b = [0u8; 8];
    rand_core::OsRng.fill_bytes(&mut b);
    format!("ws-{}", hex::encode(b))
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The public name of a login link in audit records: `wl-` + the first 16 hex of the
/// token's hash (the hash of 32 random bytes reveals nothing of them).
fn link_id(token_hash: &str) -> String {
    format!("wl-{}", token_hash.get(..16).unwrap_or(token_hash))
}

/// Whether `s` has the shape of a token or cookie secret (checked before hashing or
/// storing anything of it).
fn well_formed(s: &str) -> bool {
    s.len() == SECRET_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The refusal of a web approval for a role whose approvals need the key itself.
pub(super) fn key_required(role: &Role, id: &str) -> ApiError {
    let why = if role.approve_with_key {
        "approve_with_key = true".to_string()
    } else {
        format!("approval_key = \"{}\"", role.approval_key.as_str())
    };
    refuse(
        C::ApprovalKeyRequired,
        format!(
            "role {:?} needs approvals made with the approver's key itself ({why}); a click on \
             the web page is not one: approve with `jit approve {id}`",
            role.name
        ),
    )
}

fn disabled() -> ApiError {
    refuse(
        C::Forbidden,
        "the web pages are turned off on this CA ([web] enabled = false in config.toml); \
         an operator turns them on with enabled = true",
    )
}

fn invalid_link(why: &str) -> ApiError {
    refuse(
        C::LoginLinkInvalid,
        format!("this login link {why}; run `jit web` again for a new one"),
    )
}

fn no_session(why: &str) -> ApiError {
    refuse(
        C::Unauthenticated,
        format!("no valid web session ({why}); run `jit web` to log in"),
    )
}

/// Why a login link does not log in, for the refusal and its record.
fn link_problem(row: Option<&WebLoginRow>, now: u64) -> (&'static str, &'static str) {
    match row {
        None => ("unknown", "is not known to this CA"),
        Some(r) if r.used_at.is_some() => (
            "used",
            "was already used (each link logs in once); if you did not use it, someone else \
             did: run `jit web --logout` now to end your web sessions",
        ),
        Some(r) if now >= r.expires_at && r.expires_at < r.created_at + LINK_TTL_SECS => (
            "withdrawn",
            "was withdrawn (its user or key was removed, or `jit web --logout` ran)",
        ),
        Some(r) if now >= r.expires_at => ("expired", "has expired (a link is valid for 60 s)"),
        Some(_) => ("unknown", "is not valid"),
    }
}

/// What a consumed link led to (inside the login's transaction).
enum LoginOutcome {
    In(Box<(WebSessionRow, Record)>),
    Refused {
        reason: &'static str,
        why: String,
        actor: String,
        link: Option<String>,
    },
}

impl Ca {
    fn web_idle(&self) -> u64 {
        self.config.web.session_idle_timeout_secs
    }

    fn web_max_age(&self) -> u64 {
        self.config.web.session_max_age_secs
    }

    fn too_many_links(&self, caller: &Caller) -> ApiError {
        refuse(
            C::InvalidState,
            format!(
                "{} already has {MAX_OUTSTANDING_LINKS} unused login links (each is valid for \
                 {LINK_TTL_SECS} s): open one of them, or wait a minute and run `jit web` again",
                caller.user
            ),
        )
    }

    /// `POST /v1/web/login`: a one-time URL that logs a browser in as the caller. Audited
    /// `web_login_link` with the signed call that asked for it (message, signature, key).
    pub fn web_login_link(&self, caller: &Caller) -> ApiResult<WebLoginView> {
        if !self.config.web.enabled {
            return Err(disabled());
        }
        if caller.session.is_some() {
            return Err(refuse(
                C::Forbidden,
                "a login link is asked for with a signed call (jit web), not from a web session",
            ));
        }
        let now = self.now();
        // Checked on a read connection first (a flood of calls takes no writer), then
        // again in the transaction (two calls racing).
        if self.read_db(|c| c.web_logins_outstanding(&caller.user, now))? >= MAX_OUTSTANDING_LINKS {
            return Err(self.too_many_links(caller));
        }
        let token = random_secret();
        let token_hash = sha256_hex(&token);
        let expires_at = now.saturating_add(LINK_TTL_SECS);
        let link = link_id(&token_hash);
        let proof = caller.proof.as_ref();
        let details = json!({
            "link": link,
            "key": caller.key.fingerprint,
            "approval_key": caller.key.approval,
            "sk": caller.key.sk,
            "touched": caller.key.touched,
            "expires_at": expires_at,
            "evidence": {
                "scheme": proof.and_then(|p| p.message.split('\n').next()),
                "namespace": jit_api::auth::NAMESPACE,
                "message": proof.map(|p| p.message.as_str()),
                "signature": proof.map(|p| p.signature.as_str()),
                "key": proof.map(|p| p.key.as_str()),
            },
        });
        let rec = self.transact(|tx| {
            if tx.web_logins_outstanding(&caller.user, now)? >= MAX_OUTSTANDING_LINKS {
                return Err(self.too_many_links(caller));
            }
            let rec = tx.append_audit(now, &caller.user, event::WEB_LOGIN_LINK, &details)?;
            tx.web_login_insert(&WebLoginRow {
                token_hash,
                user: caller.user.clone(),
                key_fingerprint: caller.key.fingerprint.clone(),
                key_flags: caller.key.flags(),
                created_at: now,
                expires_at,
                used_at: None,
                audit_seq: Some(rec.seq),
            })?;
            Ok::<_, ApiError>(rec)
        })?;
        self.log(&[rec]);
        let path = format!("/ui/login?token={token}");
        let url = self
            .config
            .public_url
            .as_ref()
            .map(|u| format!("{}{path}", u.trim_end_matches('/')));
        Ok(WebLoginView {
            path,
            url,
            expires_at,
            expires_in_secs: LINK_TTL_SECS,
        })
    }

    /// What a login link would log in as, without using it (read only, not audited).
    pub fn web_login_preview(&self, token: &str) -> ApiResult<LoginPreview> {
        if !self.config.web.enabled {
            return Err(disabled());
        }
        let now = self.now();
        if !well_formed(token) {
            return Err(invalid_link(link_problem(None, now).1));
        }
        let hash = sha256_hex(token);
        let row = self.read_db(|c| c.web_login_get(&hash))?;
        match row {
            Some(r) if r.used_at.is_none() && now < r.expires_at => Ok(LoginPreview {
                user: r.user,
                key_fingerprint: r.key_fingerprint,
                expires_at: r.expires_at,
            }),
            other => Err(invalid_link(link_problem(other.as_ref(), now).1)),
        }
    }

    /// Uses a login link: consumes it (single use) and establishes a session; returns it and
    /// the cookie secret. Audited `web_login` (session id, key, source, the link's record);
    /// a refusal is audited `web_login_refused` through the refusal rate limit.
    pub fn web_login(
        &self,
        token: &str,
        source: Option<IpAddr>,
    ) -> ApiResult<(WebSession, String)> {
        if !self.config.web.enabled {
            return Err(disabled());
        }
        let now = self.now();
        let (idle, max_age) = (self.web_idle(), self.web_max_age());
        // Read first: only a link that exists, unused and unexpired, takes the writer; a
        // flood of made-up, used or expired tokens costs reads and rate-limited refusals.
        let known = if well_formed(token) {
            let hash = sha256_hex(token);
            let row = self.read_db(|c| c.web_login_get(&hash))?;
            match row {
                Some(r) if r.used_at.is_none() && now < r.expires_at => Ok(hash),
                other => Err(other),
            }
        } else {
            Err(None)
        };
        let outcome = if let Ok(hash) = known {
            let secret = random_secret();
            let secret_hash = sha256_hex(&secret);
            let outcome = self.transact(|tx| {
                let Some(link) = tx.web_login_consume(&hash, now)? else {
                    let row = tx.web_login_get(&hash)?;
                    let (reason, why) = link_problem(row.as_ref(), now);
                    return Ok::<_, ApiError>(LoginOutcome::Refused {
                        reason,
                        why: why.to_string(),
                        actor: row.as_ref().map_or("unknown".into(), |r| r.user.clone()),
                        link: row.map(|r| link_id(&r.token_hash)),
                    });
                };
                let link_name = link_id(&link.token_hash);
                // Consumed either way (committed): a link whose key went meanwhile is spent.
                if !tx.web_key_registered(&link.user, &link.key_fingerprint)? {
                    return Ok(LoginOutcome::Refused {
                        reason: "key_removed",
                        why: format!(
                            "was asked for with key {} of {}, which is no longer registered",
                            link.key_fingerprint, link.user
                        ),
                        actor: link.user,
                        link: Some(link_name),
                    });
                }
                let row = WebSessionRow {
                    id: new_session_id(),
                    secret_hash,
                    user: link.user.clone(),
                    key_fingerprint: link.key_fingerprint.clone(),
                    key_flags: link.key_flags,
                    created_at: now,
                    last_seen: now,
                    expires_at: now.saturating_add(max_age),
                    idle_secs: idle,
                    ended_at: None,
                    ended_by: None,
                };
                tx.web_session_insert(&row)?;
                let rec = tx.append_audit(
                    now,
                    &link.user,
                    event::WEB_LOGIN,
                    &json!({"session": row.id, "key": row.key_fingerprint,
                            "source": source.map(|s| s.to_string()),
                            "link": link_name, "link_seq": link.audit_seq,
                            "expires_at": row.expires_at, "idle_timeout_secs": idle}),
                )?;
                Ok(LoginOutcome::In(Box::new((row, rec))))
            })?;
            (outcome, Some(secret))
        } else {
            let row = known.err().flatten();
            let (reason, why) = link_problem(row.as_ref(), now);
            let refused = LoginOutcome::Refused {
                reason,
                why: why.to_string(),
                actor: row.as_ref().map_or("unknown".into(), |r| r.user.clone()),
                link: row.map(|r| link_id(&r.token_hash)),
            };
            (refused, None)
        };
        match outcome {
            (LoginOutcome::In(b), Some(secret)) => {
                let (row, rec) = *b;
                self.log(&[rec]);
                let groups = self
                    .read_db(|c| c.user_groups(&row.user))?
                    .unwrap_or_default();
                let session = self.session_of(&row, groups, &secret, max_age);
                Ok((session, secret))
            }
            (
                LoginOutcome::Refused {
                    reason,
                    why,
                    actor,
                    link,
                },
                _,
            ) => {
                let details = json!({"reason": reason, "link": link,
                                     "source": source.map(|s| s.to_string())});
                let e = invalid_link(&why);
                Err(self.refusal_at(now, source, &actor, event::WEB_LOGIN_REFUSED, details, e))
            }
            (LoginOutcome::In(..), None) => Err(ApiError::internal("a login without a secret")),
        }
    }

    /// An approval from a web page: the form names the digest of the request it showed
    /// (`request_digest_mismatch` when it changed). Refused with `approval_key_required` for
    /// a role whose approvals need the key itself ([`Ca::web_needs_key`]). The `approval`
    /// record carries the session, its key and `evidence.via = "web"`.
    pub fn approve_web(
        &self,
        s: &WebSession,
        id: &str,
        request_digest: &str,
        reason: &str,
    ) -> ApiResult<RequestView> {
        if !self.config.web.enabled {
            return Err(disabled());
        }
        let reason = reason.trim();
        check_text("approval reason", reason)?;
        if !jit_api::evidence::is_digest(request_digest) {
            return Err(refuse(
                C::InvalidInput,
                format!(
                    "request_digest {:?} is not a digest (sha256: and 64 lowercase hex characters); \
                     reload the request's page and approve again",
                    jit_common::log::sanitize(request_digest, 80)
                ),
            ));
        }
        let caller = s.caller();
        let via = Via::Web {
            session: &s.id,
            reason,
        };
        self.approve_via(&caller, id, Some(request_digest), via)
    }

    /// Whether approvals of `role` must be made with the key itself (`approve_with_key`, or
    /// an `approval_key` other than "any"): the page shows `jit approve ID` instead of a
    /// button. False for a role not in the policy (the approval is refused for that).
    pub fn web_needs_key(&self, role: &str) -> bool {
        self.policy()
            .role(role)
            .is_some_and(Role::needs_key_to_approve)
    }

    /// Whether `user` with `groups` is one of the policy's `auditors`.
    pub fn is_auditor(&self, user: &str, groups: &[String]) -> bool {
        self.policy().is_auditor(user, groups)
    }
}

#[cfg(test)]
#[path = "web_tests.rs"]
mod tests;

//! Web sessions once established (issue 16): their validity, their use (`last_seen`), and
//! their end. The login link that establishes one is `super` (service/web.rs).

use serde_json::{Value, json};

use super::{TOUCH_SECS, WebSession, csrf_token, disabled, no_session, sha256_hex, well_formed};
use crate::audit::{Record, event};
use crate::error::{ApiError, CaError};
use crate::service::{ApiResult, Ca, Caller, CallerKey};
use crate::store::{StoreOps, WebSessionRow};
use jit_api::wire::WebLogoutView;

/// How often `last_seen` is written for a session with idle timeout `idle`: min(60 s,
/// idle / 4), so a session in use is never judged idle (the idle timeout holds to within
/// this interval: a session ends between `idle - interval` and `idle` after its last use).
pub fn touch_interval(idle: u64) -> u64 {
    TOUCH_SECS.min(idle / 4).max(1)
}

/// A session's end and idle timeout under the current settings (`max_age`, `idle`): the
/// shorter of those stored at login and the current ones.
fn limits(row: &WebSessionRow, idle: u64, max_age: u64) -> (u64, u64) {
    (
        row.expires_at.min(row.created_at.saturating_add(max_age)),
        row.idle_secs.min(idle),
    )
}

/// Why a session is not valid at `now` (None: it is, as far as its row tells).
fn session_problem(row: &WebSessionRow, now: u64, idle: u64, max_age: u64) -> Option<&'static str> {
    let (end, idle) = limits(row, idle, max_age);
    if row.ended_at.is_some() {
        Some("the session was ended")
    } else if now >= end {
        Some("the session reached its maximum age")
    } else if now >= row.last_seen.saturating_add(idle) {
        Some("the session was idle too long")
    } else {
        None
    }
}

/// Ends `user`'s web sessions (only those of the key `key`, when given; idle ones too, so
/// that a longer idle timeout later cannot revive them) and withdraws their unused login
/// links, in `tx`; records one `web_logout` naming the sessions not past their maximum age
/// and `by`; None when there were none.
pub fn end_sessions(
    tx: &dyn StoreOps,
    user: &str,
    key: Option<&str>,
    now: u64,
    by: &str,
    extra: Value,
) -> Result<Option<Record>, CaError> {
    tx.web_logins_withdraw(user, key, now)?;
    let ended = tx.web_sessions_end(user, key, None, now, by)?;
    if ended.is_empty() {
        return Ok(None);
    }
    let mut details = json!({"user": user, "sessions": ended, "by": by});
    if let (Some(d), Value::Object(x)) = (details.as_object_mut(), extra) {
        d.extend(x);
    }
    Ok(Some(tx.append_audit(
        now,
        by,
        event::WEB_LOGOUT,
        &details,
    )?))
}

impl Ca {
    /// Inside a decision's transaction: a caller from a web session (`caller.session`) is
    /// refused unless that session is still valid now (not ended, expired or idle, its
    /// user and key still registered). A page checked it when it loaded; this closes the
    /// window between that check and the decision. Signed calls pass.
    pub(in crate::service) fn check_session_in(
        &self,
        tx: &dyn StoreOps,
        caller: &Caller,
        now: u64,
    ) -> ApiResult<()> {
        let Some(id) = &caller.session else {
            return Ok(());
        };
        let Some(row) = tx.web_session_by_id(id)? else {
            return Err(no_session("unknown session"));
        };
        if row.user != caller.user {
            return Err(no_session("the session is another user's"));
        }
        if let Some(why) = session_problem(&row, now, self.web_idle(), self.web_max_age()) {
            return Err(no_session(why));
        }
        if tx.user_groups(&row.user)?.is_none() {
            return Err(no_session("its user was removed"));
        }
        if !tx.web_key_registered(&row.user, &row.key_fingerprint)? {
            return Err(no_session("the key that established it was removed"));
        }
        Ok(())
    }

    pub(super) fn session_of(
        &self,
        row: &WebSessionRow,
        groups: Vec<String>,
        secret: &str,
        max_age: u64,
    ) -> WebSession {
        let mut key = CallerKey::from_flags(row.key_flags);
        key.fingerprint = row.key_fingerprint.clone();
        key.touched = false;
        WebSession {
            id: row.id.clone(),
            user: row.user.clone(),
            groups,
            key,
            csrf: csrf_token(secret),
            expires_at: limits(row, 0, max_age).0,
        }
    }

    /// The session a cookie secret names, if it is valid now (see the module docs); records
    /// its use (`last_seen`) at most once per [`TOUCH_SECS`].
    pub fn web_session(&self, secret: &str) -> ApiResult<WebSession> {
        if !self.config.web.enabled {
            return Err(disabled());
        }
        if !well_formed(secret) {
            return Err(no_session("no session cookie"));
        }
        let now = self.now();
        let (idle, max_age) = (self.web_idle(), self.web_max_age());
        let hash = sha256_hex(secret);
        let (row, groups) = self.read_db(|c| {
            let Some(row) = c.web_session_by_secret(&hash)? else {
                return Err(no_session("unknown session"));
            };
            if let Some(why) = session_problem(&row, now, idle, max_age) {
                return Err(no_session(why));
            }
            let Some(groups) = c.user_groups(&row.user)? else {
                return Err(no_session("its user was removed"));
            };
            if !c.web_key_registered(&row.user, &row.key_fingerprint)? {
                return Err(no_session("the key that established it was removed"));
            }
            Ok((row, groups))
        })?;
        let interval = touch_interval(limits(&row, idle, max_age).1);
        if now >= row.last_seen.saturating_add(interval) {
            let id = row.id.clone();
            self.write(move |c| Ok(c.web_session_touch(&id, now)?))?;
        }
        Ok(self.session_of(&row, groups, secret, max_age))
    }

    /// `POST /ui/logout`: ends this session. Audited `web_logout`.
    pub fn web_logout(&self, s: &WebSession) -> ApiResult<()> {
        let now = self.now();
        let rec = self.transact(|tx| {
            let ended = tx.web_sessions_end(&s.user, None, Some(&s.id), now, &s.user)?;
            if ended.is_empty() {
                return Ok::<_, ApiError>(None);
            }
            Ok(Some(tx.append_audit(
                now,
                &s.user,
                event::WEB_LOGOUT,
                &json!({"user": s.user, "sessions": ended, "by": s.user}),
            )?))
        })?;
        self.log(&rec.into_iter().collect::<Vec<_>>());
        Ok(())
    }

    /// `POST /v1/web/logout` (`jit web --logout`): ends every live session of the caller.
    /// Audited `web_logout` when there was one.
    pub fn web_logout_all(&self, caller: &Caller) -> ApiResult<WebLogoutView> {
        let now = self.now();
        let rec = self.transact(|tx| {
            Ok::<_, ApiError>(end_sessions(
                tx,
                &caller.user,
                None,
                now,
                &caller.user,
                json!({}),
            )?)
        })?;
        let ended = rec
            .as_ref()
            .and_then(|r| serde_json::from_str::<Value>(&r.details).ok())
            .and_then(|d| d.get("sessions").and_then(Value::as_array).map(Vec::len))
            .unwrap_or(0);
        self.log(&rec.into_iter().collect::<Vec<_>>());
        Ok(WebLogoutView {
            ended: ended as u64,
        })
    }
}

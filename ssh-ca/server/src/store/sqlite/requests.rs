//! Requests and their approvals.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension as _, params};

use super::{i, json_vec, stored_error, to_json, u};
use ssh_key::PublicKey;

use crate::error::{CaError, Result};
use crate::store::RequestRow;
use jit_api::wire::{ApprovalView, RequestState};

const REQUEST_COLS: &str = "id, user, role, reason, duration_secs, hosts, principals, sudo, public_key, created_at, \
     pending_expires_at, approvals_required, state, denied_by, denial_reason, approved_at, revoked_at, revoked_by, \
     approval_basis, approved_until, ticket, not_before, revocation_reason, cancelled_at, cancel_reason, denied_at, session_bound";

/// A request from a row: the state and public key are parsed here, once; an unknown state
/// or a key that does not parse is an error (the outer `Result`: SQLite's own).
fn request_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<RequestRow>> {
    let id: String = r.get(0)?;
    let state_text: String = r.get(12)?;
    let state = match state_text.parse::<RequestState>() {
        Ok(s) => s,
        Err(source) => {
            return Ok(Err(CaError::UnknownRequestState {
                request: id,
                source,
            }));
        }
    };
    let public_key = match PublicKey::from_openssh(&r.get::<_, String>(8)?) {
        Ok(k) => k,
        Err(source) => {
            return Ok(Err(CaError::RequestKey {
                request: id,
                source,
            }));
        }
    };
    let required: i64 = r.get(11)?;
    let approvals_required = match u32::try_from(required) {
        Ok(n) if n >= 1 => n,
        _ => {
            return Ok(Err(CaError::BadStoredValue {
                what: "request approvals_required",
                detail: format!("request {id}: {required} (at least 1)"),
            }));
        }
    };
    let row = format!("request {id}");
    Ok(Ok(RequestRow {
        id,
        user: r.get(1)?,
        role: r.get(2)?,
        reason: r.get(3)?,
        duration_secs: u(r.get(4)?),
        hosts: json_vec(5, "request hosts", &row, &r.get::<_, String>(5)?)?,
        principals: json_vec(6, "request principals", &row, &r.get::<_, String>(6)?)?,
        sudo: r.get::<_, i64>(7)? != 0,
        public_key,
        created_at: u(r.get(9)?),
        pending_expires_at: u(r.get(10)?),
        approvals_required,
        state,
        denied_by: r.get(13)?,
        denial_reason: r.get(14)?,
        approved_at: r.get::<_, Option<i64>>(15)?.map(u),
        revoked_at: r.get::<_, Option<i64>>(16)?.map(u),
        revoked_by: r.get(17)?,
        approval_basis: r.get(18)?,
        approved_until: r.get::<_, Option<i64>>(19)?.map(u),
        ticket: r.get(20)?,
        not_before: r.get::<_, Option<i64>>(21)?.map(u),
        revocation_reason: r.get(22)?,
        cancelled_at: r.get::<_, Option<i64>>(23)?.map(u),
        cancel_reason: r.get(24)?,
        denied_at: r.get::<_, Option<i64>>(25)?.map(u),
        session_bound: flag(r, 26, &row)?,
    }))
}

/// A stored 0/1 flag (column `col` of `row`); any other value is an error, never a default.
fn flag(r: &rusqlite::Row<'_>, col: usize, row: &str) -> rusqlite::Result<bool> {
    match r.get::<_, i64>(col)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(stored_error(
            col,
            CaError::BadStoredValue {
                what: "request session_bound",
                detail: format!("{row}: {v} (0 or 1)"),
            },
        )),
    }
}

/// Runs a request query and parses every row (the first bad row is the error).
fn requests(c: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<RequestRow>> {
    c.prepare_cached(sql)?
        .query_map(params, request_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .collect()
}

/// The stored form of a request's key: its line without comment.
fn key_line(r: &RequestRow) -> Result<String> {
    jit_api::auth::key_header(&r.public_key).map_err(|source| CaError::RequestKey {
        request: r.id.clone(),
        source,
    })
}

/// Inserts a new request.
pub fn insert_request(c: &Connection, r: &RequestRow) -> Result<()> {
    c.prepare_cached(&format!(
        "INSERT INTO requests ({REQUEST_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27)"
    ))?
    .execute(params![
        r.id,
        r.user,
        r.role,
        r.reason,
        i(r.duration_secs),
        to_json(&r.hosts),
        to_json(&r.principals),
        r.sudo as i64,
        key_line(r)?,
        i(r.created_at),
        i(r.pending_expires_at),
        i64::from(r.approvals_required),
        r.state.as_str(),
        r.denied_by,
        r.denial_reason,
        r.approved_at.map(i),
        r.revoked_at.map(i),
        r.revoked_by,
        r.approval_basis,
        r.approved_until.map(i),
        r.ticket,
        r.not_before.map(i),
        r.revocation_reason,
        r.cancelled_at.map(i),
        r.cancel_reason,
        r.denied_at.map(i),
        r.session_bound as i64,
    ])?;
    Ok(())
}

/// Writes the mutable fields of a request.
pub fn update_request(c: &Connection, r: &RequestRow) -> Result<()> {
    c.prepare_cached(
        "UPDATE requests SET state = ?2, denied_by = ?3, denial_reason = ?4, approved_at = ?5, \
         revoked_at = ?6, revoked_by = ?7, duration_secs = ?8, approval_basis = ?9, \
         approved_until = ?10, revocation_reason = ?11, cancelled_at = ?12, cancel_reason = ?13, \
         denied_at = ?14, session_bound = ?15 \
         WHERE id = ?1",
    )?
    .execute(params![
        r.id,
        r.state.as_str(),
        r.denied_by,
        r.denial_reason,
        r.approved_at.map(i),
        r.revoked_at.map(i),
        r.revoked_by,
        i(r.duration_secs),
        r.approval_basis,
        r.approved_until.map(i),
        r.revocation_reason,
        r.cancelled_at.map(i),
        r.cancel_reason,
        r.denied_at.map(i),
        r.session_bound as i64,
    ])?;
    Ok(())
}

/// One request.
pub fn get_request(c: &Connection, id: &str) -> Result<Option<RequestRow>> {
    c.prepare_cached(&format!(
        "SELECT {REQUEST_COLS} FROM requests WHERE id = ?1"
    ))?
    .query_row([id], request_from_row)
    .optional()?
    .transpose()
}

/// Requests, newest first, optionally only in one state; at most `limit`.
pub fn list_requests(
    c: &Connection,
    state: Option<RequestState>,
    limit: u32,
) -> Result<Vec<RequestRow>> {
    match state {
        Some(s) => requests(
            c,
            &format!(
                "SELECT {REQUEST_COLS} FROM requests WHERE state = ?1 ORDER BY created_at DESC, id LIMIT ?2"
            ),
            params![s.as_str(), limit],
        ),
        None => requests(
            c,
            &format!("SELECT {REQUEST_COLS} FROM requests ORDER BY created_at DESC, id LIMIT ?1"),
            params![limit],
        ),
    }
}

/// The requests a caller may see, newest first, at most `limit`, filtered in SQL before the
/// limit applies (so other roles' requests cannot push these out of the page): requests of
/// the roles in `q.roles` (those the caller may approve) and, unless `q.pending_at` is set,
/// the caller's own. With `q.pending_at`, only pending requests not expired at that time
/// and not the caller's own (what the caller may decide on).
pub fn list_visible(c: &Connection, q: &crate::store::ListQuery<'_>) -> Result<Vec<RequestRow>> {
    let roles = id_list(q.roles);
    match q.pending_at {
        Some(now) => requests(
            c,
            &format!(
                "SELECT {REQUEST_COLS} FROM requests WHERE state = ?1 AND pending_expires_at > ?2 \
                 AND user != ?3 AND role IN (SELECT value FROM json_each(?4)) \
                 ORDER BY created_at DESC, id LIMIT ?5"
            ),
            params![
                RequestState::Pending.as_str(),
                i(now),
                q.user,
                roles,
                q.limit
            ],
        ),
        None => requests(
            c,
            &format!(
                "SELECT {REQUEST_COLS} FROM requests WHERE user = ?1 \
                 OR role IN (SELECT value FROM json_each(?2)) \
                 ORDER BY created_at DESC, id LIMIT ?3"
            ),
            params![q.user, roles, q.limit],
        ),
    }
}

/// One user's requests, newest first; at most `limit`.
pub fn list_requests_of(c: &Connection, user: &str, limit: u32) -> Result<Vec<RequestRow>> {
    requests(
        c,
        &format!(
            "SELECT {REQUEST_COLS} FROM requests WHERE user = ?1 ORDER BY created_at DESC, id LIMIT ?2"
        ),
        params![user, limit],
    )
}

/// Ids of `user`'s requests in one of `states`, by id.
pub fn request_ids_of(c: &Connection, user: &str, states: &[RequestState]) -> Result<Vec<String>> {
    let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    let states = serde_json::to_string(&states).unwrap_or_else(|_| "[]".into());
    Ok(c
        .prepare_cached(
            "SELECT id FROM requests WHERE user = ?1              AND state IN (SELECT value FROM json_each(?2)) ORDER BY id",
        )?
        .query_map(params![user, states], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

/// `user`'s pending requests not expired at `now`, as (id, role), oldest first.
pub fn pending_requests_of(c: &Connection, user: &str, now: u64) -> Result<Vec<(String, String)>> {
    Ok(c.prepare_cached(
        "SELECT id, role FROM requests WHERE user = ?1 AND state = ?2 \
             AND pending_expires_at > ?3 ORDER BY created_at, id",
    )?
    .query_map(params![user, RequestState::Pending.as_str(), i(now)], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?
    .collect::<rusqlite::Result<_>>()?)
}

/// Pending requests whose expiry has passed, and approved ones whose window has ended
/// (`window_end`, migration 9: no certificate valid after `now`).
pub fn due_for_expiry(c: &Connection, now: u64) -> Result<Vec<RequestRow>> {
    requests(
        c,
        &format!(
            "SELECT {REQUEST_COLS} FROM requests WHERE (state = ?2 AND pending_expires_at <= ?1) \
             OR (state = ?3 AND window_end <= ?1)"
        ),
        params![
            i(now),
            RequestState::Pending.as_str(),
            RequestState::Approved.as_str()
        ],
    )
}

/// Pending requests whose expiry has passed, by that expiry (index `requests_pending_due`).
pub(crate) const DUE_PENDING: &str = "SELECT id FROM requests WHERE state = ?1 AND pending_expires_at <= ?2 \
     ORDER BY pending_expires_at LIMIT ?3";
/// Approved requests whose window has ended, by that end (index `requests_window_due`).
pub(crate) const DUE_APPROVED: &str =
    "SELECT id FROM requests WHERE state = ?1 AND window_end <= ?2 ORDER BY window_end LIMIT ?3";

/// At most `limit` requests due for expiry at `now`, as (id, state): pending ones whose
/// expiry passed (by that expiry), then approved ones whose window ended (by its end). Reads
/// the ids only, by index: the cost is the due rows', not every approved request's.
pub fn due_ids_for_expiry(
    c: &Connection,
    now: u64,
    limit: usize,
) -> Result<Vec<(String, RequestState)>> {
    let mut out: Vec<(String, RequestState)> = Vec::new();
    for (sql, state) in [
        (DUE_PENDING, RequestState::Pending),
        (DUE_APPROVED, RequestState::Approved),
    ] {
        let left = limit.saturating_sub(out.len());
        if left == 0 {
            break;
        }
        let ids = c
            .prepare_cached(sql)?
            .query_map(
                params![
                    state.as_str(),
                    i(now),
                    i64::try_from(left).unwrap_or(i64::MAX)
                ],
                |r| r.get::<_, String>(0),
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.extend(ids.into_iter().map(|id| (id, state)));
    }
    Ok(out)
}

/// Expires request `id` if it is still in state `was`; true if it was.
pub fn expire_request(c: &Connection, id: &str, was: RequestState) -> Result<bool> {
    let n = c
        .prepare_cached("UPDATE requests SET state = ?3 WHERE id = ?1 AND state = ?2")?
        .execute(params![id, was.as_str(), RequestState::Expired.as_str()])?;
    Ok(n == 1)
}

/// Approved requests whose current window (their latest issued, unrevoked certificate) has
/// begun and ends within `within` seconds after `now` (not yet ended), and that were not
/// reminded of that end yet (`reminded_until`): (id, window end), by id. An end that was
/// already within `within` when its certificate was issued (a window no longer than the
/// reminder, an extension by less) is not reminded: the requester has just been told it.
pub fn due_for_reminder(c: &Connection, now: u64, within: u64) -> Result<Vec<(String, u64)>> {
    due_reminders(c, now, within, usize::MAX)
}

/// [`due_for_reminder`], at most `limit` of them. Only approved requests with a window
/// still open (`window_end > now`, by index) are looked at, not every approved one.
pub fn due_reminders(
    c: &Connection,
    now: u64,
    within: u64,
    limit: usize,
) -> Result<Vec<(String, u64)>> {
    Ok(c
        .prepare_cached(
            "SELECT r.id, c.valid_before FROM requests r JOIN certs c ON c.serial = \
                 (SELECT MAX(serial) FROM certs x WHERE x.request_id = r.id AND x.valid_before > 0) \
             WHERE r.state = ?1 AND r.window_end > ?2 \
             AND c.revoked = 0 AND c.valid_after <= ?2 AND c.valid_before > ?2 \
             AND c.valid_before <= ?3 AND c.valid_before - ?4 > c.issued_at \
             AND (r.reminded_until IS NULL OR r.reminded_until != c.valid_before) \
             ORDER BY r.id LIMIT ?5",
        )?
        .query_map(
            params![
                RequestState::Approved.as_str(),
                i(now),
                i(now.saturating_add(within)),
                i(within),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |r| Ok((r.get::<_, String>(0)?, u(r.get(1)?))),
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Records that a request was reminded of the window end `until`.
pub fn set_reminded(c: &Connection, id: &str, until: u64) -> Result<()> {
    c.prepare_cached("UPDATE requests SET reminded_until = ?2 WHERE id = ?1")?
        .execute(params![id, i(until)])?;
    Ok(())
}

/// Records an approval (`key_flags`: KEY_* bits of the key that signed it); false if this
/// user already approved.
pub fn add_approval(
    c: &Connection,
    request_id: &str,
    user: &str,
    at: u64,
    key_flags: u32,
) -> Result<bool> {
    let n = c
        .prepare_cached(
            "INSERT OR IGNORE INTO approvals (request_id, user, at, key_flags) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![request_id, user, i(at), i64::from(key_flags)])?;
    Ok(n == 1)
}

/// Approvals of a request with the KEY_* flags of the key that signed each, oldest first.
pub fn approvals_with_keys(c: &Connection, request_id: &str) -> Result<Vec<(ApprovalView, u32)>> {
    Ok(c.prepare_cached(
        "SELECT user, at, key_flags FROM approvals WHERE request_id = ?1 ORDER BY at, rowid",
    )?
    .query_map([request_id], |r| {
        Ok((
            ApprovalView {
                user: r.get(0)?,
                at: u(r.get(1)?),
            },
            {
                let flags: i64 = r.get(2)?;
                u32::try_from(flags).map_err(|e| {
                    super::stored_error(
                        2,
                        CaError::BadStoredValue {
                            what: "approval key_flags",
                            detail: format!("approval of request {request_id}: {flags}: {e}"),
                        },
                    )
                })?
            },
        ))
    })?
    .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Approvals of a request, oldest first.
pub fn approvals(c: &Connection, request_id: &str) -> Result<Vec<ApprovalView>> {
    Ok(
        c.prepare_cached(
            "SELECT user, at FROM approvals WHERE request_id = ?1 ORDER BY at, rowid",
        )?
        .query_map([request_id], |r| {
            Ok(ApprovalView {
                user: r.get(0)?,
                at: u(r.get(1)?),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?,
    )
}

/// Approvals of every request in `ids`, oldest first, in one query.
pub fn approvals_of(c: &Connection, ids: &[&str]) -> Result<HashMap<String, Vec<ApprovalView>>> {
    let mut out: HashMap<String, Vec<ApprovalView>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut st = c.prepare_cached(
        "SELECT request_id, user, at FROM approvals \
         WHERE request_id IN (SELECT value FROM json_each(?1)) ORDER BY request_id, at, rowid",
    )?;
    let rows = st.query_map([id_list(ids)], |r| {
        Ok((
            r.get::<_, String>(0)?,
            ApprovalView {
                user: r.get(1)?,
                at: u(r.get(2)?),
            },
        ))
    })?;
    for row in rows {
        let (id, a) = row?;
        out.entry(id).or_default().push(a);
    }
    Ok(out)
}

/// Withdraws `user`'s approvals of pending requests; returns those requests' ids, by id.
pub fn withdraw_pending_approvals(c: &Connection, user: &str) -> Result<Vec<String>> {
    let ids: Vec<String> = c
        .prepare_cached(
            "SELECT a.request_id FROM approvals a JOIN requests r ON r.id = a.request_id \
             WHERE a.user = ?1 AND r.state = ?2 ORDER BY a.request_id",
        )?
        .query_map(params![user, RequestState::Pending.as_str()], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut del = c.prepare_cached("DELETE FROM approvals WHERE request_id = ?1 AND user = ?2")?;
    for id in &ids {
        del.execute(params![id, user])?;
    }
    Ok(ids)
}

/// `ids` as a JSON array, for `json_each` (one bound parameter however many ids).
pub(super) fn id_list(ids: &[&str]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

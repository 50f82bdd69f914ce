//! Requests and their approvals (as store/sqlite/requests.rs).

use std::collections::HashMap;

use ssh_key::PublicKey;
use tokio_postgres::Row;

use super::conn::{Params, PgConn, get};
use super::{i, json_vec, to_json, u};
use crate::error::{CaError, Result};
use crate::store::{ListQuery, RequestRow};
use jit_api::wire::{ApprovalView, RequestState};

pub(crate) const REQUEST_COLS: &str = "id, \"user\", role, reason, duration_secs, hosts, principals, sudo, public_key, created_at, \
     pending_expires_at, approvals_required, state, denied_by, denial_reason, approved_at, revoked_at, revoked_by, \
     approval_basis, approved_until, ticket, not_before, revocation_reason, cancelled_at, cancel_reason, denied_at, session_bound";

fn opt_u(r: &Row, col: usize) -> Result<Option<u64>> {
    Ok(get::<Option<i64>>(r, col)?.map(u))
}

pub(crate) fn request_from_row(r: &Row) -> Result<RequestRow> {
    let id: String = get(r, 0)?;
    let state_text: String = get(r, 12)?;
    let state =
        state_text
            .parse::<RequestState>()
            .map_err(|source| CaError::UnknownRequestState {
                request: id.clone(),
                source,
            })?;
    let public_key =
        PublicKey::from_openssh(&get::<String>(r, 8)?).map_err(|source| CaError::RequestKey {
            request: id.clone(),
            source,
        })?;
    let required: i64 = get(r, 11)?;
    let approvals_required = match u32::try_from(required) {
        Ok(n) if n >= 1 => n,
        _ => {
            return Err(CaError::BadStoredValue {
                what: "request approvals_required",
                detail: format!("request {id}: {required} (at least 1)"),
            });
        }
    };
    let row = format!("request {id}");
    let session_bound = match get::<i64>(r, 26)? {
        0 => false,
        1 => true,
        v => {
            return Err(CaError::BadStoredValue {
                what: "request session_bound",
                detail: format!("{row}: {v} (0 or 1)"),
            });
        }
    };
    Ok(RequestRow {
        user: get(r, 1)?,
        role: get(r, 2)?,
        reason: get(r, 3)?,
        duration_secs: u(get(r, 4)?),
        hosts: json_vec("request hosts", &row, &get::<String>(r, 5)?)?,
        principals: json_vec("request principals", &row, &get::<String>(r, 6)?)?,
        sudo: get::<i64>(r, 7)? != 0,
        public_key,
        created_at: u(get(r, 9)?),
        pending_expires_at: u(get(r, 10)?),
        approvals_required,
        state,
        denied_by: get(r, 13)?,
        denial_reason: get(r, 14)?,
        approved_at: opt_u(r, 15)?,
        revoked_at: opt_u(r, 16)?,
        revoked_by: get(r, 17)?,
        approval_basis: get(r, 18)?,
        approved_until: opt_u(r, 19)?,
        ticket: get(r, 20)?,
        not_before: opt_u(r, 21)?,
        revocation_reason: get(r, 22)?,
        cancelled_at: opt_u(r, 23)?,
        cancel_reason: get(r, 24)?,
        denied_at: opt_u(r, 25)?,
        session_bound,
        id,
    })
}

fn requests(c: &PgConn, sql: &str, p: Params<'_>) -> Result<Vec<RequestRow>> {
    c.rows(sql, p)?.iter().map(request_from_row).collect()
}

fn key_line(r: &RequestRow) -> Result<String> {
    jit_api::auth::key_header(&r.public_key).map_err(|source| CaError::RequestKey {
        request: r.id.clone(),
        source,
    })
}

pub(crate) fn insert_request(c: &PgConn, r: &RequestRow) -> Result<()> {
    let sql = format!(
        "INSERT INTO requests ({REQUEST_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)"
    );
    c.exec(
        &sql,
        &[
            &r.id,
            &r.user,
            &r.role,
            &r.reason,
            &i(r.duration_secs),
            &to_json(&r.hosts),
            &to_json(&r.principals),
            &(r.sudo as i64),
            &key_line(r)?,
            &i(r.created_at),
            &i(r.pending_expires_at),
            &i64::from(r.approvals_required),
            &r.state.as_str(),
            &r.denied_by,
            &r.denial_reason,
            &r.approved_at.map(i),
            &r.revoked_at.map(i),
            &r.revoked_by,
            &r.approval_basis,
            &r.approved_until.map(i),
            &r.ticket,
            &r.not_before.map(i),
            &r.revocation_reason,
            &r.cancelled_at.map(i),
            &r.cancel_reason,
            &r.denied_at.map(i),
            &(r.session_bound as i64),
        ],
    )?;
    Ok(())
}

pub(crate) fn update_request(c: &PgConn, r: &RequestRow) -> Result<()> {
    c.exec(
        "UPDATE requests SET state = $2, denied_by = $3, denial_reason = $4, approved_at = $5, \
         revoked_at = $6, revoked_by = $7, duration_secs = $8, approval_basis = $9, \
         approved_until = $10, revocation_reason = $11, cancelled_at = $12, cancel_reason = $13, \
         denied_at = $14, session_bound = $15 WHERE id = $1",
        &[
            &r.id,
            &r.state.as_str(),
            &r.denied_by,
            &r.denial_reason,
            &r.approved_at.map(i),
            &r.revoked_at.map(i),
            &r.revoked_by,
            &i(r.duration_secs),
            &r.approval_basis,
            &r.approved_until.map(i),
            &r.revocation_reason,
            &r.cancelled_at.map(i),
            &r.cancel_reason,
            &r.denied_at.map(i),
            &(r.session_bound as i64),
        ],
    )?;
    Ok(())
}

pub(crate) fn get_request(c: &PgConn, id: &str) -> Result<Option<RequestRow>> {
    c.opt(
        &format!("SELECT {REQUEST_COLS} FROM requests WHERE id = $1"),
        &[&id],
    )?
    .as_ref()
    .map(request_from_row)
    .transpose()
}

pub(crate) fn list_requests(
    c: &PgConn,
    state: Option<RequestState>,
    limit: u32,
) -> Result<Vec<RequestRow>> {
    let limit = i64::from(limit);
    match state {
        Some(s) => requests(
            c,
            &format!(
                "SELECT {REQUEST_COLS} FROM requests WHERE state = $1 ORDER BY created_at DESC, id LIMIT $2"
            ),
            &[&s.as_str(), &limit],
        ),
        None => requests(
            c,
            &format!("SELECT {REQUEST_COLS} FROM requests ORDER BY created_at DESC, id LIMIT $1"),
            &[&limit],
        ),
    }
}

pub(crate) fn list_visible(c: &PgConn, q: &ListQuery<'_>) -> Result<Vec<RequestRow>> {
    let roles: Vec<&str> = q.roles.to_vec();
    let limit = i64::from(q.limit);
    match q.pending_at {
        Some(now) => requests(
            c,
            &format!(
                "SELECT {REQUEST_COLS} FROM requests WHERE state = $1 AND pending_expires_at > $2 \
                 AND \"user\" != $3 AND role = ANY($4::text[]) \
                 ORDER BY created_at DESC, id LIMIT $5"
            ),
            &[
                &RequestState::Pending.as_str(),
                &i(now),
                &q.user,
                &roles,
                &limit,
            ],
        ),
        None => requests(
            c,
            &format!(
                "SELECT {REQUEST_COLS} FROM requests WHERE \"user\" = $1 \
                 OR role = ANY($2::text[]) ORDER BY created_at DESC, id LIMIT $3"
            ),
            &[&q.user, &roles, &limit],
        ),
    }
}

pub(crate) fn list_requests_of(c: &PgConn, user: &str, limit: u32) -> Result<Vec<RequestRow>> {
    requests(
        c,
        &format!(
            "SELECT {REQUEST_COLS} FROM requests WHERE \"user\" = $1 ORDER BY created_at DESC, id LIMIT $2"
        ),
        &[&user, &i64::from(limit)],
    )
}

pub(crate) fn request_ids_of(
    c: &PgConn,
    user: &str,
    states: &[RequestState],
) -> Result<Vec<String>> {
    let states: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    c.rows(
        "SELECT id FROM requests WHERE \"user\" = $1 AND state = ANY($2::text[]) ORDER BY id",
        &[&user, &states],
    )?
    .iter()
    .map(|r| get(r, 0))
    .collect()
}

pub(crate) fn pending_requests_of(
    c: &PgConn,
    user: &str,
    now: u64,
) -> Result<Vec<(String, String)>> {
    c.rows(
        "SELECT id, role FROM requests WHERE \"user\" = $1 AND state = $2 \
         AND pending_expires_at > $3 ORDER BY created_at, id",
        &[&user, &RequestState::Pending.as_str(), &i(now)],
    )?
    .iter()
    .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
    .collect()
}

pub(crate) fn due_for_expiry(c: &PgConn, now: u64) -> Result<Vec<RequestRow>> {
    requests(
        c,
        &format!(
            "SELECT {REQUEST_COLS} FROM requests WHERE (state = $2 AND pending_expires_at <= $1) \
             OR (state = $3 AND window_end <= $1)"
        ),
        &[
            &i(now),
            &RequestState::Pending.as_str(),
            &RequestState::Approved.as_str(),
        ],
    )
}

/// SQLite's `DUE_PENDING` / `DUE_APPROVED` (indexes `requests_pending_due`,
/// `requests_window_due`).
pub(crate) const DUE_PENDING: &str = "SELECT id FROM requests WHERE state = $1 AND pending_expires_at <= $2 \
     ORDER BY pending_expires_at LIMIT $3";
pub(crate) const DUE_APPROVED: &str =
    "SELECT id FROM requests WHERE state = $1 AND window_end <= $2 ORDER BY window_end LIMIT $3";

pub(crate) fn due_ids_for_expiry(
    c: &PgConn,
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
        let left = i64::try_from(left).unwrap_or(i64::MAX);
        for r in c.rows(sql, &[&state.as_str(), &i(now), &left])? {
            out.push((get(&r, 0)?, state));
        }
    }
    Ok(out)
}

pub(crate) fn expire_request(c: &PgConn, id: &str, was: RequestState) -> Result<bool> {
    let n = c.exec(
        "UPDATE requests SET state = $3 WHERE id = $1 AND state = $2",
        &[&id, &was.as_str(), &RequestState::Expired.as_str()],
    )?;
    Ok(n == 1)
}

pub(crate) fn due_for_reminder(c: &PgConn, now: u64, within: u64) -> Result<Vec<(String, u64)>> {
    due_reminders(c, now, within, usize::MAX)
}

pub(crate) fn due_reminders(
    c: &PgConn,
    now: u64,
    within: u64,
    limit: usize,
) -> Result<Vec<(String, u64)>> {
    c.rows(
        "SELECT r.id, c.valid_before FROM requests r JOIN LATERAL \
             (SELECT x.revoked, x.valid_after, x.valid_before, x.issued_at FROM certs x \
              WHERE x.request_id = r.id AND x.valid_before > 0 ORDER BY x.serial DESC LIMIT 1) c ON TRUE \
         WHERE r.state = $1 AND r.window_end > $2 \
         AND c.revoked = 0 AND c.valid_after <= $2 AND c.valid_before > $2 \
         AND c.valid_before <= $3 AND c.valid_before - $4::bigint > c.issued_at \
         AND (r.reminded_until IS NULL OR r.reminded_until != c.valid_before) \
         ORDER BY r.id LIMIT $5",
        &[
            &RequestState::Approved.as_str(),
            &i(now),
            &i(now.saturating_add(within)),
            &i(within),
            &i64::try_from(limit).unwrap_or(i64::MAX),
        ],
    )?
    .iter()
    .map(|r| Ok((get(r, 0)?, u(get(r, 1)?))))
    .collect()
}

pub(crate) fn set_reminded(c: &PgConn, id: &str, until: u64) -> Result<()> {
    c.exec(
        "UPDATE requests SET reminded_until = $2 WHERE id = $1",
        &[&id, &i(until)],
    )?;
    Ok(())
}

pub(crate) fn add_approval(
    c: &PgConn,
    request_id: &str,
    user: &str,
    at: u64,
    key_flags: u32,
) -> Result<bool> {
    Ok(c.exec(
        "INSERT INTO approvals (request_id, \"user\", at, key_flags) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (request_id, \"user\") DO NOTHING",
        &[&request_id, &user, &i(at), &i64::from(key_flags)],
    )? == 1)
}

pub(crate) fn approvals_with_keys(
    c: &PgConn,
    request_id: &str,
) -> Result<Vec<(ApprovalView, u32)>> {
    c.rows(
        "SELECT \"user\", at, key_flags FROM approvals WHERE request_id = $1 ORDER BY at, ord",
        &[&request_id],
    )?
    .iter()
    .map(|r| {
        let flags: i64 = get(r, 2)?;
        let flags = u32::try_from(flags).map_err(|e| CaError::BadStoredValue {
            what: "approval key_flags",
            detail: format!("approval of request {request_id}: {flags}: {e}"),
        })?;
        Ok((
            ApprovalView {
                user: get(r, 0)?,
                at: u(get(r, 1)?),
            },
            flags,
        ))
    })
    .collect()
}

pub(crate) fn approvals(c: &PgConn, request_id: &str) -> Result<Vec<ApprovalView>> {
    c.rows(
        "SELECT \"user\", at FROM approvals WHERE request_id = $1 ORDER BY at, ord",
        &[&request_id],
    )?
    .iter()
    .map(|r| {
        Ok(ApprovalView {
            user: get(r, 0)?,
            at: u(get(r, 1)?),
        })
    })
    .collect()
}

pub(crate) fn approvals_of(c: &PgConn, ids: &[&str]) -> Result<HashMap<String, Vec<ApprovalView>>> {
    let mut out: HashMap<String, Vec<ApprovalView>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let ids: Vec<&str> = ids.to_vec();
    for r in c.rows(
        "SELECT request_id, \"user\", at FROM approvals WHERE request_id = ANY($1::text[]) \
         ORDER BY request_id, at, ord",
        &[&ids],
    )? {
        out.entry(get(&r, 0)?).or_default().push(ApprovalView {
            user: get(&r, 1)?,
            at: u(get(&r, 2)?),
        });
    }
    Ok(out)
}

pub(crate) fn withdraw_pending_approvals(c: &PgConn, user: &str) -> Result<Vec<String>> {
    let ids: Vec<String> = c
        .rows(
            "SELECT a.request_id FROM approvals a JOIN requests r ON r.id = a.request_id \
             WHERE a.\"user\" = $1 AND r.state = $2 ORDER BY a.request_id",
            &[&user, &RequestState::Pending.as_str()],
        )?
        .iter()
        .map(|r| get(r, 0))
        .collect::<Result<_>>()?;
    for id in &ids {
        c.exec(
            "DELETE FROM approvals WHERE request_id = $1 AND \"user\" = $2",
            &[id, &user],
        )?;
    }
    Ok(ids)
}

//! Web sessions and the web pages' reads (as store/sqlite/web.rs and views.rs).

use tokio_postgres::Row;

use super::conn::{PgConn, get};
use super::{i, json_vec, u};
use crate::error::Result;
use crate::store::views::{AccessPage, AccessQuery, Elevation, RequestAudit};
use crate::store::{WebLoginRow, WebSessionRow};
use jit_api::wire::RequestState;

const LOGIN_COLS: &str =
    "token_hash, \"user\", key_fingerprint, key_flags, created_at, expires_at, used_at, audit_seq";
const SESSION_COLS: &str = "id, secret_hash, \"user\", key_fingerprint, key_flags, created_at, \
                            last_seen, expires_at, ended_at, ended_by, idle_timeout_secs";

fn flags(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn login_row(r: &Row) -> Result<WebLoginRow> {
    Ok(WebLoginRow {
        token_hash: get(r, 0)?,
        user: get(r, 1)?,
        key_fingerprint: get(r, 2)?,
        key_flags: flags(get(r, 3)?),
        created_at: u(get(r, 4)?),
        expires_at: u(get(r, 5)?),
        used_at: get::<Option<i64>>(r, 6)?.map(u),
        audit_seq: get::<Option<i64>>(r, 7)?.map(u),
    })
}

fn session_row(r: &Row) -> Result<WebSessionRow> {
    Ok(WebSessionRow {
        id: get(r, 0)?,
        secret_hash: get(r, 1)?,
        user: get(r, 2)?,
        key_fingerprint: get(r, 3)?,
        key_flags: flags(get(r, 4)?),
        created_at: u(get(r, 5)?),
        last_seen: u(get(r, 6)?),
        expires_at: u(get(r, 7)?),
        ended_at: get::<Option<i64>>(r, 8)?.map(u),
        ended_by: get(r, 9)?,
        idle_secs: u(get(r, 10)?),
    })
}

pub(crate) fn login_insert(c: &PgConn, w: &WebLoginRow) -> Result<()> {
    c.exec(
        &format!("INSERT INTO web_logins ({LOGIN_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
        &[
            &w.token_hash,
            &w.user,
            &w.key_fingerprint,
            &i64::from(w.key_flags),
            &i(w.created_at),
            &i(w.expires_at),
            &w.used_at.map(i),
            &w.audit_seq.map(i),
        ],
    )?;
    Ok(())
}

pub(crate) fn login_get(c: &PgConn, token_hash: &str) -> Result<Option<WebLoginRow>> {
    c.opt(
        &format!("SELECT {LOGIN_COLS} FROM web_logins WHERE token_hash = $1"),
        &[&token_hash],
    )?
    .as_ref()
    .map(login_row)
    .transpose()
}

pub(crate) fn login_consume(c: &PgConn, token_hash: &str, now: u64) -> Result<Option<WebLoginRow>> {
    c.opt(
        &format!(
            "UPDATE web_logins SET used_at = $2 \
             WHERE token_hash = $1 AND used_at IS NULL AND $2 < expires_at RETURNING {LOGIN_COLS}"
        ),
        &[&token_hash, &i(now)],
    )?
    .as_ref()
    .map(login_row)
    .transpose()
}

pub(crate) fn session_insert(c: &PgConn, s: &WebSessionRow) -> Result<()> {
    c.exec(
        &format!(
            "INSERT INTO web_sessions ({SESSION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ),
        &[
            &s.id,
            &s.secret_hash,
            &s.user,
            &s.key_fingerprint,
            &i64::from(s.key_flags),
            &i(s.created_at),
            &i(s.last_seen),
            &i(s.expires_at),
            &s.ended_at.map(i),
            &s.ended_by,
            &i(s.idle_secs),
        ],
    )?;
    Ok(())
}

pub(crate) fn session_by_secret(c: &PgConn, secret_hash: &str) -> Result<Option<WebSessionRow>> {
    c.opt(
        &format!("SELECT {SESSION_COLS} FROM web_sessions WHERE secret_hash = $1"),
        &[&secret_hash],
    )?
    .as_ref()
    .map(session_row)
    .transpose()
}

pub(crate) fn session_touch(c: &PgConn, id: &str, now: u64) -> Result<()> {
    c.exec(
        "UPDATE web_sessions SET last_seen = $2 WHERE id = $1 AND ended_at IS NULL AND last_seen < $2",
        &[&id, &i(now)],
    )?;
    Ok(())
}

pub(crate) fn session_by_id(c: &PgConn, id: &str) -> Result<Option<WebSessionRow>> {
    c.opt(
        &format!("SELECT {SESSION_COLS} FROM web_sessions WHERE id = $1"),
        &[&id],
    )?
    .as_ref()
    .map(session_row)
    .transpose()
}

pub(crate) fn sessions_end(
    c: &PgConn,
    user: &str,
    key_fingerprint: Option<&str>,
    id: Option<&str>,
    now: u64,
    by: &str,
) -> Result<Vec<String>> {
    let mut ids: Vec<(i64, String)> = Vec::new();
    for r in c.rows(
        "UPDATE web_sessions SET ended_at = $3, ended_by = $5 \
         WHERE \"user\" = $1 AND ended_at IS NULL \
           AND ($2::text IS NULL OR key_fingerprint = $2) AND ($4::text IS NULL OR id = $4) \
         RETURNING created_at, id, expires_at",
        &[&user, &key_fingerprint, &i(now), &id, &by],
    )? {
        let end: i64 = get(&r, 2)?;
        if u(end) > now {
            ids.push((get(&r, 0)?, get(&r, 1)?));
        }
    }
    ids.sort();
    Ok(ids.into_iter().map(|(_, id)| id).collect())
}

pub(crate) fn logins_withdraw(
    c: &PgConn,
    user: &str,
    key_fingerprint: Option<&str>,
    now: u64,
) -> Result<usize> {
    Ok(c.exec(
        "UPDATE web_logins SET expires_at = $3 \
         WHERE \"user\" = $1 AND used_at IS NULL AND $3 < expires_at \
           AND ($2::text IS NULL OR key_fingerprint = $2)",
        &[&user, &key_fingerprint, &i(now)],
    )? as usize)
}

pub(crate) fn logins_outstanding(c: &PgConn, user: &str, now: u64) -> Result<u64> {
    let n: i64 = get(
        &c.one(
            "SELECT COUNT(*) FROM web_logins WHERE \"user\" = $1 AND used_at IS NULL AND $2 < expires_at",
            &[&user, &i(now)],
        )?,
        0,
    )?;
    Ok(u(n))
}

pub(crate) fn key_registered(c: &PgConn, user: &str, key_fingerprint: &str) -> Result<bool> {
    let keys = super::ops_users::user_keys(c, user)?;
    Ok(keys.iter().any(|(line, _)| {
        ssh_key::PublicKey::from_openssh(line)
            .map(|k| k.fingerprint(ssh_key::HashAlg::Sha256).to_string() == key_fingerprint)
            .unwrap_or(false)
    }))
}

pub(crate) fn prune(c: &PgConn, cutoff: u64) -> Result<usize> {
    let a = c.exec(
        "DELETE FROM web_logins WHERE expires_at < $1",
        &[&i(cutoff)],
    )?;
    let b = c.exec(
        "DELETE FROM web_sessions WHERE expires_at < $1 OR (ended_at IS NOT NULL AND ended_at < $1) \
         OR last_seen + idle_timeout_secs < $1",
        &[&i(cutoff)],
    )?;
    Ok((a + b) as usize)
}

// ---- the web pages' reads ----

const IN_FORCE: &str = "FROM requests r JOIN certs c ON c.request_id = r.id \
     WHERE r.state = $2 AND c.revoked = 0 AND c.certificate != '' \
       AND c.valid_after <= $1 AND c.valid_before > $1 \
       AND c.serial = (SELECT MAX(serial) FROM certs WHERE request_id = r.id AND certificate != '')";
const ORDER: &str = "ORDER BY r.role, r.hosts, r.\"user\", c.valid_before, r.id";
const COLUMNS: &str =
    "r.id, r.\"user\", r.role, r.hosts, r.sudo, c.serial, c.valid_after, c.valid_before";

fn elevation(r: &Row) -> Result<Elevation> {
    let id: String = get(r, 0)?;
    Ok(Elevation {
        hosts: json_vec(
            "requests.hosts",
            &format!("request {id}"),
            &get::<String>(r, 3)?,
        )?,
        request_id: id,
        user: get(r, 1)?,
        role: get(r, 2)?,
        sudo: get::<i64>(r, 4)? != 0,
        serial: u(get(r, 5)?),
        valid_after: u(get(r, 6)?),
        valid_before: u(get(r, 7)?),
    })
}

pub(crate) fn active_elevations(c: &PgConn, now: u64) -> Result<Vec<Elevation>> {
    c.rows(
        &format!("SELECT {COLUMNS} {IN_FORCE} {ORDER}"),
        &[&i(now), &RequestState::Approved.as_str()],
    )?
    .iter()
    .map(elevation)
    .collect()
}

/// The access page: visibility and the exact filters in SQL; the host filter (the hosts'
/// own matching rule, `jit_common::host::matches`, which SQLite runs as a registered
/// function) here, then the count and the page. The caller's read is one snapshot.
pub(crate) fn access_page(c: &PgConn, q: &AccessQuery) -> Result<AccessPage> {
    let rows = c.rows(
        &format!(
            "SELECT {COLUMNS} {IN_FORCE} AND ($3::boolean OR r.\"user\" = $4 \
               OR r.role = ANY($5::text[])) \
             AND ($6::text IS NULL OR r.role = $6) AND ($7::text IS NULL OR r.\"user\" = $7) {ORDER}"
        ),
        &[
            &i(q.now),
            &RequestState::Approved.as_str(),
            &q.see_all,
            &q.me,
            &q.approves,
            &q.role,
            &q.user,
        ],
    )?;
    let mut all = Vec::with_capacity(rows.len());
    for r in &rows {
        let e = elevation(r)?;
        if let Some(h) = &q.host
            && !e
                .hosts
                .iter()
                .any(|sel| sel == h || jit_common::host::matches(sel, h))
        {
            continue;
        }
        all.push(e);
    }
    let total = all.len() as u64;
    let offset = usize::try_from(q.offset).unwrap_or(usize::MAX);
    let rows = all
        .into_iter()
        .skip(offset)
        .take(q.limit as usize)
        .collect();
    Ok(AccessPage { rows, total })
}

pub(crate) fn request_audit(c: &PgConn, id: &str, limit: u32) -> Result<RequestAudit> {
    let total: i64 = get(
        &c.one(
            "SELECT COUNT(*) FROM audit WHERE jit_json_text(details, 'request_id') = $1",
            &[&id],
        )?,
        0,
    )?;
    let mut records = c
        .rows(
            "SELECT seq, time, actor, event, details, prev_hash, hash FROM audit \
             WHERE jit_json_text(details, 'request_id') = $1 ORDER BY seq DESC LIMIT $2",
            &[&id, &i64::from(limit)],
        )?
        .iter()
        .map(super::ops_log::record)
        .collect::<Result<Vec<_>>>()?;
    records.reverse();
    Ok(RequestAudit {
        records,
        total: u(total),
    })
}

//! Meta values, nonces and the audit chain (as store/sqlite/log.rs). Every write
//! transaction holds the audit advisory lock (taken first), so the head read here is the
//! chain's head across replicas; it is read from the table each time (correct across
//! savepoint rollbacks).

use super::conn::{PgConn, get};
use super::{i, u};
use crate::audit::event::Event;
use crate::audit::{self, GENESIS, Record};
use crate::error::Result;

pub(crate) fn meta_get(c: &PgConn, k: &str) -> Result<Option<String>> {
    match c.opt("SELECT v FROM meta WHERE k = $1", &[&k])? {
        Some(r) => Ok(Some(get(&r, 0)?)),
        None => Ok(None),
    }
}

pub(crate) fn meta_set(c: &PgConn, k: &str, v: &str) -> Result<()> {
    c.exec(
        "INSERT INTO meta (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
        &[&k, &v],
    )?;
    Ok(())
}

/// Records a nonce (one already claimed stays as it was).
pub(crate) fn log_nonce(c: &PgConn, nonce: &str, now: u64) -> Result<()> {
    c.exec(
        "INSERT INTO nonce_log (nonce, seen_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING",
        &[&nonce, &i(now)],
    )?;
    Ok(())
}

/// Claims a nonce: true when this call stored it, false when it was there (a replay).
pub(crate) fn claim_nonce(c: &PgConn, nonce: &str, now: u64) -> Result<bool> {
    Ok(c.exec(
        "INSERT INTO nonce_log (nonce, seen_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING",
        &[&nonce, &i(now)],
    )? == 1)
}

pub(crate) fn recent_nonces(c: &PgConn, since: u64) -> Result<Vec<(String, u64)>> {
    c.rows(
        "SELECT nonce, seen_at FROM nonce_log WHERE seen_at >= $1",
        &[&i(since)],
    )?
    .iter()
    .map(|r| Ok((get(r, 0)?, u(get(r, 1)?))))
    .collect()
}

pub(crate) fn expire_nonces(c: &PgConn, cutoff: u64) -> Result<usize> {
    Ok(c.exec("DELETE FROM nonce_log WHERE seen_at < $1", &[&i(cutoff)])? as usize)
}

pub(crate) fn append_audit(
    c: &PgConn,
    time: u64,
    actor: &str,
    event: &Event,
    details: &serde_json::Value,
) -> Result<Record> {
    let details_value = details;
    let (seq, prev_hash) = match audit_head(c)? {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_string()),
    };
    let details = details.to_string();
    let hash = audit::hash(&prev_hash, seq, time, actor, event.name(), &details);
    c.exec(
        "INSERT INTO audit (seq, time, actor, event, details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &i(seq),
            &i(time),
            &actor,
            &event.name(),
            &details,
            &prev_hash,
            &hash,
        ],
    )?;
    let rec = Record {
        seq,
        time,
        actor: actor.to_string(),
        event: event.name().to_string(),
        details,
        prev_hash,
        hash,
    };
    super::ops_outbox::on_audit(c, &rec, *event, details_value)?;
    Ok(rec)
}

const RECORD_COLS: &str = "seq, time, actor, event, details, prev_hash, hash";

pub(crate) fn record(r: &tokio_postgres::Row) -> Result<Record> {
    Ok(Record {
        seq: u(get(r, 0)?),
        time: u(get(r, 1)?),
        actor: get(r, 2)?,
        event: get(r, 3)?,
        details: get(r, 4)?,
        prev_hash: get(r, 5)?,
        hash: get(r, 6)?,
    })
}

/// Every audit record in chain order.
pub(crate) fn audit_records(c: &PgConn) -> Result<Vec<Record>> {
    c.rows(
        &format!("SELECT {RECORD_COLS} FROM audit ORDER BY seq"),
        &[],
    )?
    .iter()
    .map(record)
    .collect()
}

pub(crate) fn audit_head(c: &PgConn) -> Result<Option<(u64, String)>> {
    match c.opt("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", &[])? {
        Some(r) => Ok(Some((u(get(&r, 0)?), get(&r, 1)?))),
        None => Ok(None),
    }
}

pub(crate) fn audit_after(c: &PgConn, after: u64, limit: u32) -> Result<Vec<Record>> {
    c.rows(
        &format!("SELECT {RECORD_COLS} FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2"),
        &[&i(after), &i64::from(limit)],
    )?
    .iter()
    .map(record)
    .collect()
}

pub(crate) fn audit_record(c: &PgConn, seq: u64) -> Result<Option<Record>> {
    c.opt(
        &format!("SELECT {RECORD_COLS} FROM audit WHERE seq = $1"),
        &[&i(seq)],
    )?
    .as_ref()
    .map(record)
    .transpose()
}

/// As store/sqlite/audit_search.rs: filters applied in SQL over a window of `seq`.
pub(crate) fn audit_search(
    c: &PgConn,
    f: &crate::store::audit::AuditFilter,
    w: &crate::store::audit::AuditWindow,
) -> Result<Vec<Record>> {
    let sql = "SELECT a.seq, a.time, a.actor, a.event, a.details, a.prev_hash, a.hash FROM audit a \
         LEFT JOIN requests r ON r.id = jit_json_text(a.details, 'request_id') \
         WHERE a.seq < $1 AND a.seq >= $2 \
           AND ($3::text IS NULL OR a.actor = $3 OR r.\"user\" = $3 \
                OR jit_json_text(a.details, 'user') = $3) \
           AND ($4::text IS NULL OR r.role = $4 OR jit_json_text(a.details, 'role') = $4) \
           AND ($5::text IS NULL OR a.event = $5) \
           AND ($6::bigint IS NULL OR a.time >= $6) \
           AND ($7::bigint IS NULL OR a.time <= $7) \
         ORDER BY a.seq DESC LIMIT $8";
    c.rows(
        sql,
        &[
            &i(w.before),
            &i(w.floor),
            &f.user,
            &f.role,
            &f.event,
            &f.since.map(i),
            &f.until.map(i),
            &i64::from(w.limit),
        ],
    )?
    .iter()
    .map(record)
    .collect()
}

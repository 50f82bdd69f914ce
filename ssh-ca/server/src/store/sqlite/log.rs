//! Meta values, accepted nonces and the audit chain.

use rusqlite::{Connection, OptionalExtension as _, params};

use super::{i, u};
use crate::audit::event::Event;
use crate::audit::{self, GENESIS, Record};
use crate::error::Result;

// ---- meta ----

/// A meta value.
pub fn meta_get(c: &Connection, k: &str) -> Result<Option<String>> {
    Ok(c.prepare_cached("SELECT v FROM meta WHERE k = ?1")?
        .query_row([k], |r| r.get(0))
        .optional()?)
}

/// Sets a meta value.
pub fn meta_set(c: &Connection, k: &str, v: &str) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO meta (k, v) VALUES (?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
    )?
    .execute([k, v])?;
    Ok(())
}

// ---- nonces ----

/// Records a nonce the service accepted (it checks uniqueness in memory, against the
/// nonces it loaded with [`recent_nonces`] at startup and those it accepted since).
pub fn log_nonce(c: &Connection, nonce: &str, now: u64) -> Result<()> {
    c.prepare_cached("INSERT INTO nonce_log (seen_at, nonce) VALUES (?1, ?2)")?
        .execute(params![i(now), nonce])?;
    Ok(())
}

/// The nonces seen at or after `since`.
pub fn recent_nonces(c: &Connection, since: u64) -> Result<Vec<(String, u64)>> {
    let mut st = c.prepare_cached("SELECT nonce, seen_at FROM nonce_log WHERE seen_at >= ?1")?;
    let rows = st.query_map([i(since)], |r| Ok((r.get::<_, String>(0)?, u(r.get(1)?))))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Forgets nonces seen before `cutoff` (they would fail the timestamp check anyway).
pub fn expire_nonces(c: &Connection, cutoff: u64) -> Result<usize> {
    Ok(
        c.prepare_cached("DELETE FROM nonce_log WHERE seen_at < ?1")?
            .execute([i(cutoff)])?,
    )
}

// ---- audit ----

/// Appends an audit record (in the caller's transaction) and returns it; a record that
/// notifies also gets its outbox row(s) here, in the same transaction (`outbox::on_audit`).
pub fn append_audit(
    c: &Connection,
    time: u64,
    actor: &str,
    event: &Event,
    details: &serde_json::Value,
) -> Result<Record> {
    let details_value = details;
    let last: Option<(i64, String)> = c
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev_hash) = match last {
        Some((s, h)) => (u(s) + 1, h),
        None => (1, GENESIS.to_string()),
    };
    let details = details.to_string();
    let hash = audit::hash(&prev_hash, seq, time, actor, event.name(), &details);
    c.prepare_cached(
        "INSERT INTO audit (seq, time, actor, event, details, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![i(seq), i(time), actor, event.name(), details, prev_hash, hash])?;
    let rec = Record {
        seq,
        time,
        actor: actor.to_string(),
        event: event.name().to_string(),
        details,
        prev_hash,
        hash,
    };
    // The notification of the change, in its transaction (see `outbox`).
    super::outbox::on_audit(c, &rec, *event, details_value)?;
    Ok(rec)
}

/// Every audit record in storage order (rowid), for verification and export.
pub fn audit_records(c: &Connection) -> Result<Vec<Record>> {
    Ok(c.prepare(
        "SELECT seq, time, actor, event, details, prev_hash, hash FROM audit ORDER BY rowid",
    )?
    .query_map([], |r| {
        Ok(Record {
            seq: u(r.get(0)?),
            time: u(r.get(1)?),
            actor: r.get(2)?,
            event: r.get(3)?,
            details: r.get(4)?,
            prev_hash: r.get(5)?,
            hash: r.get(6)?,
        })
    })?
    .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The newest audit record's (seq, hash).
pub fn audit_head(c: &Connection) -> Result<Option<(u64, String)>> {
    Ok(
        c.prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
            .query_row([], |r| Ok((u(r.get(0)?), r.get(1)?)))
            .optional()?,
    )
}

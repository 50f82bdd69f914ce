//! Pruning the outbox (the sweep): delivered rows after a week, any after 30 days.

use rusqlite::{Connection, params};

use super::super::{i, u};
use super::{
    FANOUT_SEQ, KEEP_ANY_SECS, KEEP_DELIVERED_SECS, PRUNE_BATCH, PRUNE_SCAN, PRUNE_SEQ,
    meta_counter,
};
use crate::error::Result;

/// See [`crate::store::StoreOps::notify_prune`]. Never past the fan-out cursor (a row not
/// fanned out has no deliveries yet: it is not "delivered everywhere"). It runs under the
/// write lock (the sweep's transaction), so each call reads a bounded window of at most
/// [`PRUNE_SCAN`] rows by primary key, starting where the last call stopped (meta
/// `notify_prune_seq`) and wrapping to the oldest row: rows that must stay (dead letters,
/// pending deliveries) never hold back the pruning of the rows after them, and the whole
/// outbox is looked at, window after window. At most [`PRUNE_BATCH`] rows are deleted a call.
pub fn prune(c: &Connection, now: u64) -> Result<usize> {
    let delivered_before = i(now.saturating_sub(KEEP_DELIVERED_SECS));
    let any_before = i(now.saturating_sub(KEEP_ANY_SECS));
    let cursor = meta_counter(c, FANOUT_SEQ)?;
    let oldest: Option<i64> = c
        .prepare_cached("SELECT MIN(seq) FROM notify_outbox")?
        .query_row([], |r| r.get(0))?;
    let Some(oldest) = oldest.map(u) else {
        return Ok(0);
    };
    let mut from = meta_counter(c, PRUNE_SEQ)?.max(oldest);
    if from > cursor {
        from = oldest;
    }
    // Exclusive end of the window: never past the cursor.
    let to = from
        .saturating_add(PRUNE_SCAN)
        .min(cursor.saturating_add(1));
    // Past KEEP_ANY_SECS a row goes whatever its deliveries' state, except while one that
    // is not delivered was resent (`since`) within KEEP_ANY_SECS: a resend is retried for
    // notify_max_age from the resend, then listed as long as a fresh dead letter. (A
    // first send is dead long before: NOTIFY_MAX_AGE_MAX < KEEP_ANY_SECS; pending rows of
    // a sink removed from config.toml still go.)
    const GONE: &str = "SELECT o.seq FROM notify_outbox o WHERE o.seq >= ?4 AND o.seq < ?5 \
         AND ((o.time < ?2 AND NOT EXISTS (SELECT 1 FROM notify_delivery x \
         WHERE x.seq = o.seq AND x.state != 'delivered' AND COALESCE(x.since, 0) >= ?2)) \
         OR (o.time < ?1 AND NOT EXISTS (SELECT 1 FROM notify_delivery x \
         WHERE x.seq = o.seq AND x.state != 'delivered'))) ORDER BY o.seq LIMIT ?3";
    let gone: Vec<i64> = c
        .prepare_cached(GONE)?
        .query_map(
            params![
                delivered_before,
                any_before,
                i(PRUNE_BATCH as u64),
                i(from),
                i(to)
            ],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut deliveries = c.prepare_cached("DELETE FROM notify_delivery WHERE seq = ?1")?;
    let mut rows = c.prepare_cached("DELETE FROM notify_outbox WHERE seq = ?1")?;
    let mut n = 0;
    for seq in &gone {
        deliveries.execute([seq])?;
        n += rows.execute([seq])?;
    }
    // Where the next call looks: after the last row deleted when the batch was full, else
    // the next window (or the oldest row again once the cursor is reached).
    let next = match gone.last() {
        Some(last) if gone.len() == PRUNE_BATCH => u(*last).saturating_add(1),
        _ if to > cursor => 0,
        _ => to,
    };
    super::super::log::meta_set(c, PRUNE_SEQ, &next.to_string())?;
    Ok(n)
}

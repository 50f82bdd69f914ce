//! The notification outbox (issue 15, migration 6).
//!
//! **Writing.** [`on_audit`] runs inside `append_audit`, in the transaction of the change the
//! record audits: for every record that notifies (`notify::map::kind_of`, and `user_remove`:
//! one event per request it denied or revoked) it reads the request's facts on the same
//! connection (so it sees the change itself: the state is read from the row, never assumed)
//! and inserts one `notify_outbox` row whose payload is `Event::payload()`, the exact bytes
//! later signed and sent. A change rolled back leaves no row; a committed one always has
//! its rows; outbox order follows the audit chain. Only SQL: no outgoing call.
//!
//! **Delivering.** The worker fans rows out to its sinks ([`fan_out`], cursor: the meta
//! counter `notify_fanout_seq`), reads what is due per sink ([`due`]), records outcomes
//! ([`record`]); operators read [`status`] and resend dead letters ([`retry`]); the sweep
//! prunes ([`prune`]). `notify_delivery.done_at` is when the last attempt was made (the
//! final one for `delivered` and `dead`).

use rusqlite::{Connection, OptionalExtension as _, params};
use serde_json::Value;

use super::{i, json_vec, u};
use crate::audit::Record;
use crate::audit::event::Event as Audit;
use crate::error::{CaError, Result};
use crate::notify::event::{
    AlertFacts, Approvals, Data, Event, Kind, RequestFacts, event_id, event_id_at,
};
use crate::notify::filter::Filter;
use crate::store::{
    DEAD_LETTERS_SHOWN, DeadLetter, DeliveryState, Due, LastError, NotifyStatus, Outcome,
    SinkStatus, meta_counter,
};
use jit_api::wire::RequestState;

#[path = "outbox_prune.rs"]
mod prune;
pub use prune::prune;

/// The meta counter of the fan-out: the last outbox `seq` made into deliveries.
pub const FANOUT_SEQ: &str = "notify_fanout_seq";
/// At most this many outbox rows are fanned out per call (the worker calls again).
pub const FANOUT_BATCH: usize = 5000;
/// Rows delivered everywhere (or wanted by no sink) are kept this long.
pub const KEEP_DELIVERED_SECS: u64 = 7 * 24 * 3600;
/// Every row, dead letters included, is kept at most this long.
pub const KEEP_ANY_SECS: u64 = 30 * 24 * 3600;
/// [`prune`] deletes at most this many rows per call.
pub const PRUNE_BATCH: usize = 2000;
/// [`prune`] reads at most this many rows (a window of `seq`) per call.
pub const PRUNE_SCAN: u64 = 20_000;
/// The meta counter of [`prune`]: the `seq` its next window starts at.
pub const PRUNE_SEQ: &str = "notify_prune_seq";

// ---- writing: the hook of append_audit ----

/// Writes the outbox rows of the audit record `rec` (of `event`, with `details`), if it
/// notifies. Called by `append_audit` after its INSERT, on the same connection.
pub fn on_audit(c: &Connection, rec: &Record, event: Audit, details: &Value) -> Result<()> {
    if event == Audit::UserRemove {
        // One event per request the removal denied or revoked, in the record's order.
        let listed = |key: &str| -> Vec<String> {
            details
                .get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        let affected = listed("denied")
            .into_iter()
            .map(|id| (Kind::RequestDenied, id))
            .chain(
                listed("revoked")
                    .into_iter()
                    .map(|id| (Kind::RequestRevoked, id)),
            );
        for (n, (kind, id)) in affected.enumerate() {
            let facts = required_facts(c, kind, &id)?;
            let ev = Event::new(
                event_id_at(&rec.hash, n + 1),
                kind,
                rec.time,
                &rec.actor,
                Data {
                    request: Some(facts),
                    alert: None,
                },
            );
            insert(c, &ev, Some(&id))?;
        }
        return Ok(());
    }
    let Some(kind) = crate::notify::map::kind_of(event, details) else {
        return Ok(());
    };
    let request_id = details.get("request_id").and_then(Value::as_str);
    let (data, ordered_by) = if kind.is_alert() {
        // An alert about a request carries its facts too, when they read; an alert is never
        // lost to a damaged request row (alerts accompany emergency tooling), and alerts
        // are not ordered behind a request's other events.
        let request = match request_id {
            Some(id) => request_facts(c, id).ok().flatten(),
            None => None,
        };
        let alert = alert_facts(kind, details);
        (
            Data {
                request,
                alert: Some(alert),
            },
            None,
        )
    } else {
        let id = request_id.ok_or_else(|| CaError::BadStoredValue {
            what: "notification",
            detail: format!("a {} record without a request_id", event.name()),
        })?;
        let mut facts = required_facts(c, kind, id)?;
        if kind == Kind::RequestExpired {
            // The expiry record says what the request was: pending (never decided) or
            // approved (its window ended).
            facts.previous_state = details.get("was").and_then(Value::as_str).map(String::from);
        }
        (
            Data {
                request: Some(facts),
                alert: None,
            },
            Some(id),
        )
    };
    let ev = Event::new(event_id(&rec.hash), kind, rec.time, &rec.actor, data);
    insert(c, &ev, ordered_by)
}

fn insert(c: &Connection, ev: &Event, request_id: Option<&str>) -> Result<()> {
    let payload = String::from_utf8(ev.payload()).map_err(|e| CaError::BadStoredValue {
        what: "notification payload",
        detail: e.to_string(),
    })?;
    c.prepare_cached(
        "INSERT INTO notify_outbox (id, type, request_id, time, payload) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![ev.id, ev.kind.as_str(), request_id, i(ev.time), payload])?;
    Ok(())
}

/// The facts of a request a `request.*` event is about: it exists in this transaction.
fn required_facts(c: &Connection, kind: Kind, id: &str) -> Result<RequestFacts> {
    request_facts(c, id)?.ok_or_else(|| CaError::BadStoredValue {
        what: "notification",
        detail: format!("{kind} of request {id}, which is not stored"),
    })
}

/// A request's facts as stored now (in the transaction of the change): the row, its
/// approvals, its latest certificate's window, and the requester's contact, in one query
/// (it runs in the writer for every notifying record).
pub fn request_facts(c: &Connection, id: &str) -> Result<Option<RequestFacts>> {
    // The latest certificate actually issued: a serial reserved by `reserve_serial` and not
    // completed yet has valid_before 0 (and no certificate).
    let row = c
        .prepare_cached(
            "SELECT r.user, r.role, r.hosts, r.duration_secs, r.reason, r.ticket, r.state, r.sudo, \
             r.session_bound, r.approvals_required, r.pending_expires_at, r.not_before, \
             r.denial_reason, r.revocation_reason, r.cancel_reason, \
             (SELECT contact FROM users WHERE name = r.user), \
             (SELECT json_group_array(user) FROM \
                 (SELECT user FROM approvals WHERE request_id = r.id ORDER BY at, rowid)), \
             c.valid_after, c.valid_before \
             FROM requests r LEFT JOIN certs c ON c.serial = (SELECT MAX(serial) FROM certs x \
                 WHERE x.request_id = r.id AND x.valid_before > 0) \
             WHERE r.id = ?1",
        )?
        .query_row([id], |r| {
            let what = format!("request {id}");
            Ok((
                (
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    json_vec(2, "request hosts", &what, &r.get::<_, String>(2)?)?,
                    u(r.get(3)?),
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, i64>(7)? != 0,
                    r.get::<_, i64>(8)? != 0,
                ),
                (
                    r.get::<_, i64>(9)?,
                    u(r.get(10)?),
                    r.get::<_, Option<i64>>(11)?.map(u),
                    r.get::<_, Option<String>>(12)?,
                    r.get::<_, Option<String>>(13)?,
                    r.get::<_, Option<String>>(14)?,
                    r.get::<_, Option<String>>(15)?,
                    json_vec(16, "request approvals", &what, &r.get::<_, String>(16)?)?,
                    r.get::<_, Option<i64>>(17)?.map(u),
                    r.get::<_, Option<i64>>(18)?.map(u),
                ),
            ))
        })
        .optional()?;
    let Some((
        (user, role, hosts, duration_secs, reason, ticket, state, sudo, session_bound),
        (
            required,
            pending_expires_at,
            not_before,
            denial,
            revocation,
            cancel,
            contact,
            by,
            valid_after,
            valid_before,
        ),
    )) = row
    else {
        return Ok(None);
    };
    let state: RequestState = state
        .parse()
        .map_err(|source| CaError::UnknownRequestState {
            request: id.to_string(),
            source,
        })?;
    let required = u32::try_from(required).map_err(|_| CaError::BadStoredValue {
        what: "request approvals_required",
        detail: format!("request {id}: {required}"),
    })?;
    let decision_reason = match state {
        RequestState::Denied => denial,
        RequestState::Revoked => revocation,
        RequestState::Cancelled => cancel,
        _ => None,
    };
    Ok(Some(RequestFacts {
        id: id.to_string(),
        user,
        role,
        hosts,
        duration_secs,
        reason,
        ticket,
        state: state.as_str().to_string(),
        sudo,
        session_bound,
        approvals: Approvals {
            count: u32::try_from(by.len()).unwrap_or(u32::MAX),
            required,
            by,
        },
        pending_expires_at,
        not_before,
        valid_after,
        valid_before,
        decision_reason,
        contact,
        previous_state: None,
    }))
}

/// An `alert` record's facts (its details: `summary`, `check`, `source`, `user`, `key`,
/// `count`, `window_secs`).
fn alert_facts(kind: Kind, d: &Value) -> AlertFacts {
    let text = |k: &str| d.get(k).and_then(Value::as_str).map(String::from);
    let num = |k: &str| d.get(k).and_then(Value::as_u64);
    AlertFacts {
        summary: text("summary").unwrap_or_else(|| kind.as_str().to_string()),
        check: text("check").unwrap_or_default(),
        source: text("source"),
        user: text("user"),
        key: text("key"),
        count: num("count"),
        window_secs: num("window_secs"),
        users: d
            .get("users")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
    }
}

// ---- delivering ----

fn state_of(s: &str, seq: u64, sink: &str) -> Result<&'static str> {
    match s {
        "pending" => Ok("pending"),
        "delivered" => Ok("delivered"),
        "dead" => Ok("dead"),
        other => Err(CaError::BadStoredValue {
            what: "notification delivery state",
            detail: format!("delivery of outbox row {seq} to sink {sink:?}: {other:?}"),
        }),
    }
}

/// See [`crate::store::StoreOps::notify_fan_out`].
pub fn fan_out(
    c: &Connection,
    sinks: &[(&str, &Filter)],
    now: u64,
    dead: &mut Vec<crate::store::FanOutDead>,
) -> Result<usize> {
    let from = meta_counter(c, FANOUT_SEQ)?;
    let rows = c
        .prepare_cached(
            "SELECT seq, type, id, request_id FROM notify_outbox WHERE seq > ?1 \
             ORDER BY seq LIMIT ?2",
        )?
        .query_map(params![i(from), i(FANOUT_BATCH as u64)], |r| {
            Ok((
                u(r.get(0)?),
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let Some(last) = rows.last().map(|r| r.0) else {
        return Ok(0);
    };
    let mut made = 0;
    let mut st = c.prepare_cached(
        "INSERT OR IGNORE INTO notify_delivery (seq, sink, state, attempts, next_at) \
         VALUES (?1, ?2, 'pending', 0, ?3)",
    )?;
    let mut skip = c.prepare_cached(
        "INSERT OR IGNORE INTO notify_delivery \
         (seq, sink, state, attempts, next_at, last_error, done_at) \
         VALUES (?1, ?2, 'dead', 0, ?3, ?4, ?3)",
    )?;
    for (seq, ty, id, request_id) in &rows {
        let Some(kind) = Kind::parse(ty) else {
            // A type this build does not know (a row of a later version after a rollback,
            // or damage): one bad row must not stop every notification. It is dead at once
            // for each sink whose filter could take it (`*`, its family's `FAMILY.*`),
            // counted and audited by the caller, listed by `notify status` with the reason,
            // and can be resent (`notify retry`) by a build that knows it.
            let why = format!(
                "unknown event type {:?}: not fanned out by this version of jit-ca",
                ty.chars().take(64).collect::<String>()
            );
            for (sink, filter) in sinks {
                if filter.may_take_unknown(ty)
                    && skip.execute(params![i(*seq), sink, i(now), why])? > 0
                {
                    dead.push(crate::store::FanOutDead {
                        id: id.clone(),
                        kind: ty.clone(),
                        request_id: request_id.clone(),
                        sink: sink.to_string(),
                        error: why.clone(),
                    });
                }
            }
            continue;
        };
        for (sink, filter) in sinks {
            if filter.matches(kind) {
                made += st.execute(params![i(*seq), sink, i(now)])?;
            }
        }
    }
    super::log::meta_set(c, FANOUT_SEQ, &last.to_string())?;
    Ok(made)
}

/// See [`crate::store::StoreOps::notify_backlog`].
pub fn backlog(c: &Connection) -> Result<(u64, Option<u64>)> {
    let from = meta_counter(c, FANOUT_SEQ)?;
    let (n, oldest) = c
        .prepare_cached("SELECT COUNT(*), MIN(time) FROM notify_outbox WHERE seq > ?1")?
        .query_row(params![i(from)], |r| {
            Ok((u(r.get(0)?), r.get::<_, Option<i64>>(1)?.map(u)))
        })?;
    Ok((n, oldest))
}

/// See [`crate::store::StoreOps::notify_due`].
pub fn due(c: &Connection, sink: &str, now: u64, limit: usize) -> Result<Vec<Due>> {
    Ok(c.prepare_cached(
        "SELECT o.seq, o.id, o.type, o.request_id, o.time, o.payload, d.attempts, \
             MAX(o.time, COALESCE(d.since, 0)) \
             FROM notify_delivery d JOIN notify_outbox o ON o.seq = d.seq \
             WHERE d.sink = ?1 AND d.state = 'pending' AND d.next_at <= ?2 \
             AND (o.request_id IS NULL OR NOT EXISTS ( \
                 SELECT 1 FROM notify_outbox o2 JOIN notify_delivery d2 ON d2.seq = o2.seq \
                 WHERE o2.request_id = o.request_id AND o2.seq < o.seq \
                 AND d2.sink = d.sink AND d2.state = 'pending')) \
             ORDER BY d.seq LIMIT ?3",
    )?
    .query_map(params![sink, i(now), i(limit as u64)], |r| {
        Ok(Due {
            seq: u(r.get(0)?),
            id: r.get(1)?,
            kind: r.get(2)?,
            request_id: r.get(3)?,
            time: u(r.get(4)?),
            payload: r.get(5)?,
            attempts: u32::try_from(r.get::<_, i64>(6)?).unwrap_or(u32::MAX),
            since: u(r.get(7)?),
        })
    })?
    .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// See [`crate::store::StoreOps::notify_record`].
pub fn record(c: &Connection, sink: &str, outcomes: &[Outcome]) -> Result<Vec<bool>> {
    let mut st = c.prepare_cached(
        "UPDATE notify_delivery SET state = ?3, attempts = ?4, next_at = ?5, last_status = ?6, \
         last_error = ?7, done_at = ?8 WHERE seq = ?1 AND sink = ?2 AND state = 'pending' \
         AND attempts = COALESCE(?9, attempts)",
    )?;
    let mut changed = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        let next_at = match o.state {
            DeliveryState::Pending { next_at } => next_at,
            DeliveryState::Delivered | DeliveryState::Dead => o.at,
        };
        let n = st.execute(params![
            i(o.seq),
            sink,
            o.state.as_str(),
            i64::from(o.attempts),
            i(next_at),
            o.status.map(i64::from),
            o.error,
            i(o.at),
            o.expected_attempts.map(i64::from),
        ])?;
        changed.push(n > 0);
    }
    Ok(changed)
}

/// See [`crate::store::StoreOps::notify_status`].
pub fn status(c: &Connection, now: u64) -> Result<NotifyStatus> {
    // Every state but `delivered` (two index ranges, so delivered rows are not read; an
    // unknown state is read, and is an error).
    let counts = c
        .prepare_cached(
            "SELECT d.sink, d.state, COUNT(*), MIN(o.time) FROM notify_delivery d \
             JOIN notify_outbox o ON o.seq = d.seq \
             WHERE (d.state < 'delivered' OR d.state > 'delivered') \
             GROUP BY d.sink, d.state ORDER BY d.sink",
        )?
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                u(r.get(2)?),
                u(r.get(3)?),
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = NotifyStatus::default();
    for (sink, state, n, oldest) in counts {
        if out.sinks.last().is_none_or(|s| s.sink != sink) {
            out.sinks.push(SinkStatus {
                sink: sink.clone(),
                pending: 0,
                dead: 0,
                oldest_undelivered: None,
                oldest_undelivered_secs: None,
                last_error: None,
            });
        }
        let Some(s) = out.sinks.last_mut() else {
            continue;
        };
        match state_of(&state, 0, &sink)? {
            "pending" => {
                s.pending = n;
                s.oldest_undelivered = Some(oldest);
                s.oldest_undelivered_secs = Some(now.saturating_sub(oldest));
            }
            "dead" => {
                s.dead = n;
                out.dead_total += n;
            }
            _ => {}
        }
    }
    let mut last = c.prepare_cached(
        "SELECT d.done_at, o.id, d.last_status, d.last_error FROM notify_delivery d \
         JOIN notify_outbox o ON o.seq = d.seq \
         WHERE d.state IN ('pending', 'dead') AND d.sink = ?1 AND d.last_error IS NOT NULL \
         ORDER BY d.done_at DESC, d.seq DESC LIMIT 1",
    )?;
    for s in &mut out.sinks {
        s.last_error = last
            .query_row([&s.sink], |r| {
                Ok(LastError {
                    at: u(r.get::<_, Option<i64>>(0)?.unwrap_or(0)),
                    id: r.get(1)?,
                    status: r
                        .get::<_, Option<i64>>(2)?
                        .and_then(|v| u16::try_from(v).ok()),
                    error: r.get(3)?,
                })
            })
            .optional()?;
    }
    let mut dead = c
        .prepare_cached(
            "SELECT o.id, o.type, o.request_id, d.sink, d.attempts, d.last_status, d.last_error, \
             o.time, d.done_at FROM notify_delivery d JOIN notify_outbox o ON o.seq = d.seq \
             WHERE d.state = 'dead' ORDER BY d.seq DESC, d.sink DESC LIMIT ?1",
        )?
        .query_map([i(DEAD_LETTERS_SHOWN as u64)], |r| {
            Ok(DeadLetter {
                id: r.get(0)?,
                kind: r.get(1)?,
                request_id: r.get(2)?,
                sink: r.get(3)?,
                attempts: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(u32::MAX),
                last_status: r
                    .get::<_, Option<i64>>(5)?
                    .and_then(|v| u16::try_from(v).ok()),
                last_error: r.get(6)?,
                time: u(r.get(7)?),
                dead_at: r.get::<_, Option<i64>>(8)?.map(u),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    dead.reverse();
    out.dead = dead;
    (out.backlog, out.backlog_oldest) = backlog(c)?;
    Ok(out)
}

/// See [`crate::store::StoreOps::notify_event_seq`]: a scan of the outbox (no index on
/// `id`), so made on a read, before any write transaction.
pub fn event_seq(c: &Connection, id: &str) -> Result<Option<u64>> {
    Ok(c.prepare_cached(EVENT_SEQ)?
        .query_row([id], |r| r.get::<_, i64>(0))
        .optional()?
        .map(u))
}

/// Finds an event's row by id (a scan).
pub const EVENT_SEQ: &str = "SELECT seq FROM notify_outbox WHERE id = ?1";
/// Re-checks, by primary key, that row `seq` is still event `id`.
pub const RETRY_CHECK: &str = "SELECT 1 FROM notify_outbox WHERE seq = ?1 AND id = ?2";
/// Makes the dead deliveries of row `seq` pending again (by primary key).
pub const RETRY_UPDATE: &str = "UPDATE notify_delivery SET state = 'pending', attempts = 0, \
     next_at = ?2, since = ?2 WHERE seq = ?1 AND state = 'dead' AND (?3 IS NULL OR sink = ?3) \
     RETURNING sink";

/// See [`crate::store::StoreOps::notify_retry`].
pub fn retry(
    c: &Connection,
    id: &str,
    sink: Option<&str>,
    now: u64,
) -> Result<Vec<(String, String)>> {
    let Some(seq) = event_seq(c, id)? else {
        return Err(CaError::UnknownEvent { id: id.to_string() });
    };
    retry_seq(c, seq, id, sink, now)
}

/// See [`crate::store::StoreOps::notify_retry_seq`].
pub fn retry_seq(
    c: &Connection,
    seq: u64,
    id: &str,
    sink: Option<&str>,
    now: u64,
) -> Result<Vec<(String, String)>> {
    let seq = i(seq);
    let found = c
        .prepare_cached(RETRY_CHECK)?
        .query_row(params![seq, id], |_| Ok(()))
        .optional()?;
    if found.is_none() {
        return Err(CaError::UnknownEvent { id: id.to_string() });
    }
    let sinks = c
        .prepare_cached(RETRY_UPDATE)?
        .query_map(params![seq, i(now), sink], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out: Vec<(String, String)> = sinks.into_iter().map(|s| (id.to_string(), s)).collect();
    out.sort();
    Ok(out)
}

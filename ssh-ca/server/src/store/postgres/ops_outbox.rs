//! The notification outbox on PostgreSQL: the same rows and rules as store/sqlite/outbox.rs
//! (read that module's documentation), in PostgreSQL's SQL. `on_audit` mirrors SQLite's hook
//! line for line; the conformance suite checks both backends write the same payloads.

use serde_json::Value;

use super::conn::{PgConn, get};
use super::{i, json_vec, u};
use crate::audit::Record;
use crate::audit::event::Event as Audit;
use crate::error::{CaError, Result};
use crate::notify::event::{
    AlertFacts, Approvals, Data, Event, Kind, RequestFacts, event_id, event_id_at,
};
use crate::notify::filter::Filter;
use crate::store::sqlite::outbox::{
    FANOUT_BATCH, FANOUT_SEQ, KEEP_ANY_SECS, KEEP_DELIVERED_SECS, PRUNE_BATCH, PRUNE_SCAN,
    PRUNE_SEQ,
};
use crate::store::{
    DEAD_LETTERS_SHOWN, DeadLetter, DeliveryState, Due, FanOutDead, LastError, NotifyStatus,
    Outcome, SinkStatus,
};
use jit_api::wire::RequestState;

fn counter(c: &PgConn, key: &'static str) -> Result<u64> {
    match super::ops_log::meta_get(c, key)? {
        None => Ok(0),
        Some(s) => s.trim().parse().map_err(|e| CaError::BadStoredValue {
            what: key,
            detail: format!("meta key {key}: {s:?}: {e}"),
        }),
    }
}

pub(crate) fn on_audit(c: &PgConn, rec: &Record, event: Audit, details: &Value) -> Result<()> {
    if event == Audit::UserRemove {
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
        let request = match request_id {
            Some(id) => request_facts(c, id).ok().flatten(),
            None => None,
        };
        (
            Data {
                request,
                alert: Some(alert_facts(kind, details)),
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

fn insert(c: &PgConn, ev: &Event, request_id: Option<&str>) -> Result<()> {
    let payload = String::from_utf8(ev.payload()).map_err(|e| CaError::BadStoredValue {
        what: "notification payload",
        detail: e.to_string(),
    })?;
    c.exec(
        "INSERT INTO notify_outbox (id, type, request_id, time, payload) VALUES ($1, $2, $3, $4, $5)",
        &[&ev.id, &ev.kind.as_str(), &request_id, &i(ev.time), &payload],
    )?;
    Ok(())
}

fn required_facts(c: &PgConn, kind: Kind, id: &str) -> Result<RequestFacts> {
    request_facts(c, id)?.ok_or_else(|| CaError::BadStoredValue {
        what: "notification",
        detail: format!("{kind} of request {id}, which is not stored"),
    })
}

fn request_facts(c: &PgConn, id: &str) -> Result<Option<RequestFacts>> {
    let Some(r) = c.opt(
        "SELECT r.\"user\", r.role, r.hosts, r.duration_secs, r.reason, r.ticket, r.state, r.sudo, \
         r.session_bound, r.approvals_required, r.pending_expires_at, r.not_before, \
         r.denial_reason, r.revocation_reason, r.cancel_reason, \
         (SELECT contact FROM users WHERE name = r.\"user\"), \
         (SELECT COALESCE(json_agg(a.\"user\" ORDER BY a.at, a.ord), '[]'::json)::text \
             FROM approvals a WHERE a.request_id = r.id), \
         c.valid_after, c.valid_before \
         FROM requests r LEFT JOIN LATERAL (SELECT x.valid_after, x.valid_before FROM certs x \
             WHERE x.request_id = r.id AND x.valid_before > 0 ORDER BY x.serial DESC LIMIT 1) c ON TRUE \
         WHERE r.id = $1",
        &[&id],
    )?
    else {
        return Ok(None);
    };
    let what = format!("request {id}");
    let state: String = get(&r, 6)?;
    let state: RequestState = state
        .parse()
        .map_err(|source| CaError::UnknownRequestState {
            request: id.to_string(),
            source,
        })?;
    let required: i64 = get(&r, 9)?;
    let required = u32::try_from(required).map_err(|_| CaError::BadStoredValue {
        what: "request approvals_required",
        detail: format!("request {id}: {required}"),
    })?;
    let (denial, revocation, cancel): (Option<String>, Option<String>, Option<String>) =
        (get(&r, 12)?, get(&r, 13)?, get(&r, 14)?);
    let decision_reason = match state {
        RequestState::Denied => denial,
        RequestState::Revoked => revocation,
        RequestState::Cancelled => cancel,
        _ => None,
    };
    let by = json_vec("request approvals", &what, &get::<String>(&r, 16)?)?;
    Ok(Some(RequestFacts {
        id: id.to_string(),
        user: get(&r, 0)?,
        role: get(&r, 1)?,
        hosts: json_vec("request hosts", &what, &get::<String>(&r, 2)?)?,
        duration_secs: u(get(&r, 3)?),
        reason: get(&r, 4)?,
        ticket: get(&r, 5)?,
        state: state.as_str().to_string(),
        sudo: get::<i64>(&r, 7)? != 0,
        session_bound: get::<i64>(&r, 8)? != 0,
        approvals: Approvals {
            count: u32::try_from(by.len()).unwrap_or(u32::MAX),
            required,
            by,
        },
        pending_expires_at: u(get(&r, 10)?),
        not_before: get::<Option<i64>>(&r, 11)?.map(u),
        valid_after: get::<Option<i64>>(&r, 17)?.map(u),
        valid_before: get::<Option<i64>>(&r, 18)?.map(u),
        decision_reason,
        contact: get(&r, 15)?,
        previous_state: None,
    }))
}

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

pub(crate) fn fan_out(
    c: &PgConn,
    sinks: &[(&str, &Filter)],
    now: u64,
    dead: &mut Vec<FanOutDead>,
) -> Result<usize> {
    let from = counter(c, FANOUT_SEQ)?;
    let rows = c.rows(
        "SELECT seq, type, id, request_id FROM notify_outbox WHERE seq > $1 ORDER BY seq LIMIT $2",
        &[&i(from), &i(FANOUT_BATCH as u64)],
    )?;
    let Some(last) = rows.last() else {
        return Ok(0);
    };
    let last = u(get(last, 0)?);
    let mut made = 0;
    for r in &rows {
        let seq: i64 = get(r, 0)?;
        let ty: String = get(r, 1)?;
        let id: String = get(r, 2)?;
        let request_id: Option<String> = get(r, 3)?;
        let Some(kind) = Kind::parse(&ty) else {
            let why = format!(
                "unknown event type {:?}: not fanned out by this version of jit-ca",
                ty.chars().take(64).collect::<String>()
            );
            for (sink, filter) in sinks {
                if filter.may_take_unknown(&ty)
                    && c.exec(
                        "INSERT INTO notify_delivery \
                         (seq, sink, state, attempts, next_at, last_error, done_at) \
                         VALUES ($1, $2, 'dead', 0, $3, $4, $3) ON CONFLICT DO NOTHING",
                        &[&seq, sink, &i(now), &why],
                    )? > 0
                {
                    dead.push(FanOutDead {
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
                made += c.exec(
                    "INSERT INTO notify_delivery (seq, sink, state, attempts, next_at) \
                     VALUES ($1, $2, 'pending', 0, $3) ON CONFLICT DO NOTHING",
                    &[&seq, sink, &i(now)],
                )? as usize;
            }
        }
    }
    super::ops_log::meta_set(c, FANOUT_SEQ, &last.to_string())?;
    Ok(made)
}

pub(crate) fn backlog(c: &PgConn) -> Result<(u64, Option<u64>)> {
    let from = counter(c, FANOUT_SEQ)?;
    let r = c.one(
        "SELECT COUNT(*), MIN(time) FROM notify_outbox WHERE seq > $1",
        &[&i(from)],
    )?;
    Ok((u(get(&r, 0)?), get::<Option<i64>>(&r, 1)?.map(u)))
}

pub(crate) fn due(c: &PgConn, sink: &str, now: u64, limit: usize) -> Result<Vec<Due>> {
    c.rows(
        "SELECT o.seq, o.id, o.type, o.request_id, o.time, o.payload, d.attempts, \
             GREATEST(o.time, COALESCE(d.since, 0)) \
             FROM notify_delivery d JOIN notify_outbox o ON o.seq = d.seq \
             WHERE d.sink = $1 AND d.state = 'pending' AND d.next_at <= $2 \
             AND (o.request_id IS NULL OR NOT EXISTS ( \
                 SELECT 1 FROM notify_outbox o2 JOIN notify_delivery d2 ON d2.seq = o2.seq \
                 WHERE o2.request_id = o.request_id AND o2.seq < o.seq \
                 AND d2.sink = d.sink AND d2.state = 'pending')) \
             ORDER BY d.seq LIMIT $3",
        &[&sink, &i(now), &i(limit as u64)],
    )?
    .iter()
    .map(|r| {
        Ok(Due {
            seq: u(get(r, 0)?),
            id: get(r, 1)?,
            kind: get(r, 2)?,
            request_id: get(r, 3)?,
            time: u(get(r, 4)?),
            payload: get(r, 5)?,
            attempts: u32::try_from(get::<i64>(r, 6)?).unwrap_or(u32::MAX),
            since: u(get(r, 7)?),
        })
    })
    .collect()
}

pub(crate) fn record(c: &PgConn, sink: &str, outcomes: &[Outcome]) -> Result<Vec<bool>> {
    let mut changed = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        let next_at = match o.state {
            DeliveryState::Pending { next_at } => next_at,
            DeliveryState::Delivered | DeliveryState::Dead => o.at,
        };
        let n = c.exec(
            "UPDATE notify_delivery SET state = $3, attempts = $4, next_at = $5, last_status = $6, \
             last_error = $7, done_at = $8 WHERE seq = $1 AND sink = $2 AND state = 'pending' \
             AND attempts = COALESCE($9, attempts)",
            &[
                &i(o.seq),
                &sink,
                &o.state.as_str(),
                &i64::from(o.attempts),
                &i(next_at),
                &o.status.map(i64::from),
                &o.error,
                &i(o.at),
                &o.expected_attempts.map(i64::from),
            ],
        )?;
        changed.push(n > 0);
    }
    Ok(changed)
}

pub(crate) fn status(c: &PgConn, now: u64) -> Result<NotifyStatus> {
    let counts = c.rows(
        "SELECT d.sink, d.state, COUNT(*), MIN(o.time) FROM notify_delivery d \
         JOIN notify_outbox o ON o.seq = d.seq WHERE d.state <> 'delivered' \
         GROUP BY d.sink, d.state ORDER BY d.sink, d.state",
        &[],
    )?;
    let mut out = NotifyStatus::default();
    for r in &counts {
        let sink: String = get(r, 0)?;
        let state: String = get(r, 1)?;
        let n = u(get(r, 2)?);
        let oldest = u(get(r, 3)?);
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
        match state.as_str() {
            "pending" => {
                s.pending = n;
                s.oldest_undelivered = Some(oldest);
                s.oldest_undelivered_secs = Some(now.saturating_sub(oldest));
            }
            "dead" => {
                s.dead = n;
                out.dead_total += n;
            }
            other => {
                return Err(CaError::BadStoredValue {
                    what: "notification delivery state",
                    detail: format!("delivery of outbox row 0 to sink {sink:?}: {other:?}"),
                });
            }
        }
    }
    for s in &mut out.sinks {
        s.last_error = match c.opt(
            "SELECT d.done_at, o.id, d.last_status, d.last_error FROM notify_delivery d \
             JOIN notify_outbox o ON o.seq = d.seq \
             WHERE d.state IN ('pending', 'dead') AND d.sink = $1 AND d.last_error IS NOT NULL \
             ORDER BY d.done_at DESC NULLS LAST, d.seq DESC LIMIT 1",
            &[&s.sink],
        )? {
            Some(r) => Some(LastError {
                at: u(get::<Option<i64>>(&r, 0)?.unwrap_or(0)),
                id: get(&r, 1)?,
                status: get::<Option<i64>>(&r, 2)?.and_then(|v| u16::try_from(v).ok()),
                error: get(&r, 3)?,
            }),
            None => None,
        };
    }
    let mut dead = c
        .rows(
            "SELECT o.id, o.type, o.request_id, d.sink, d.attempts, d.last_status, d.last_error, \
             o.time, d.done_at FROM notify_delivery d JOIN notify_outbox o ON o.seq = d.seq \
             WHERE d.state = 'dead' ORDER BY d.seq DESC, d.sink DESC LIMIT $1",
            &[&i(DEAD_LETTERS_SHOWN as u64)],
        )?
        .iter()
        .map(|r| {
            Ok(DeadLetter {
                id: get(r, 0)?,
                kind: get(r, 1)?,
                request_id: get(r, 2)?,
                sink: get(r, 3)?,
                attempts: u32::try_from(get::<i64>(r, 4)?).unwrap_or(u32::MAX),
                last_status: get::<Option<i64>>(r, 5)?.and_then(|v| u16::try_from(v).ok()),
                last_error: get(r, 6)?,
                time: u(get(r, 7)?),
                dead_at: get::<Option<i64>>(r, 8)?.map(u),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    dead.reverse();
    out.dead = dead;
    (out.backlog, out.backlog_oldest) = backlog(c)?;
    Ok(out)
}

pub(crate) fn event_seq(c: &PgConn, id: &str) -> Result<Option<u64>> {
    match c.opt(
        "SELECT seq FROM notify_outbox WHERE id = $1 ORDER BY seq LIMIT 1",
        &[&id],
    )? {
        Some(r) => Ok(Some(u(get(&r, 0)?))),
        None => Ok(None),
    }
}

pub(crate) fn retry(
    c: &PgConn,
    id: &str,
    sink: Option<&str>,
    now: u64,
) -> Result<Vec<(String, String)>> {
    let Some(seq) = event_seq(c, id)? else {
        return Err(CaError::UnknownEvent { id: id.to_string() });
    };
    retry_seq(c, seq, id, sink, now)
}

pub(crate) fn retry_seq(
    c: &PgConn,
    seq: u64,
    id: &str,
    sink: Option<&str>,
    now: u64,
) -> Result<Vec<(String, String)>> {
    let seq = i(seq);
    if c.opt(
        "SELECT 1 FROM notify_outbox WHERE seq = $1 AND id = $2",
        &[&seq, &id],
    )?
    .is_none()
    {
        return Err(CaError::UnknownEvent { id: id.to_string() });
    }
    let mut out = c
        .rows(
            "UPDATE notify_delivery SET state = 'pending', attempts = 0, next_at = $2, since = $2 \
             WHERE seq = $1 AND state = 'dead' AND ($3::text IS NULL OR sink = $3) RETURNING sink",
            &[&seq, &i(now), &sink],
        )?
        .iter()
        .map(|r| Ok((id.to_string(), get::<String>(r, 0)?)))
        .collect::<Result<Vec<_>>>()?;
    out.sort();
    Ok(out)
}

/// As store/sqlite/outbox_prune.rs.
pub(crate) fn prune(c: &PgConn, now: u64) -> Result<usize> {
    let delivered_before = i(now.saturating_sub(KEEP_DELIVERED_SECS));
    let any_before = i(now.saturating_sub(KEEP_ANY_SECS));
    let cursor = counter(c, FANOUT_SEQ)?;
    let oldest: Option<i64> = get(&c.one("SELECT MIN(seq) FROM notify_outbox", &[])?, 0)?;
    let Some(oldest) = oldest.map(u) else {
        return Ok(0);
    };
    let mut from = counter(c, PRUNE_SEQ)?.max(oldest);
    if from > cursor {
        from = oldest;
    }
    let to = from
        .saturating_add(PRUNE_SCAN)
        .min(cursor.saturating_add(1));
    let gone: Vec<i64> = c
        .rows(
            "SELECT o.seq FROM notify_outbox o WHERE o.seq >= $4 AND o.seq < $5 \
             AND ((o.time < $2 AND NOT EXISTS (SELECT 1 FROM notify_delivery x \
             WHERE x.seq = o.seq AND x.state != 'delivered' AND COALESCE(x.since, 0) >= $2)) \
             OR (o.time < $1 AND NOT EXISTS (SELECT 1 FROM notify_delivery x \
             WHERE x.seq = o.seq AND x.state != 'delivered'))) ORDER BY o.seq LIMIT $3",
            &[
                &delivered_before,
                &any_before,
                &i(PRUNE_BATCH as u64),
                &i(from),
                &i(to),
            ],
        )?
        .iter()
        .map(|r| get(r, 0))
        .collect::<Result<_>>()?;
    let mut n = 0;
    for seq in &gone {
        c.exec("DELETE FROM notify_delivery WHERE seq = $1", &[seq])?;
        n += c.exec("DELETE FROM notify_outbox WHERE seq = $1", &[seq])? as usize;
    }
    let next = match gone.last() {
        Some(last) if gone.len() == PRUNE_BATCH => u(*last).saturating_add(1),
        _ if to > cursor => 0,
        _ => to,
    };
    super::ops_log::meta_set(c, PRUNE_SEQ, &next.to_string())?;
    Ok(n)
}

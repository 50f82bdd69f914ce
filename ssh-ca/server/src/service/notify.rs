//! The service side of notification delivery (`notify::worker` runs it): the fan-out and
//! one sink's tick, each a synchronous entry point that reads the clock itself (tests drive
//! them with the injected clock), writes through the group commit and reads on a read
//! connection. No HTTP call happens inside a transaction: a tick reads what is due, sends
//! outside any transaction, then records the outcomes in one write.

use std::sync::Arc;

use serde_json::json;

use super::{Ca, lifecycle};
use crate::audit::event;
use crate::error::CaError;
use crate::notify::config::Format;
use crate::notify::event::Event;
use crate::notify::filter::Filter;
use crate::notify::worker::{self, Counted, Hub, Tick};

/// At most this many fan-out batches (`FANOUT_BATCH` rows each) per [`Ca::notify_fan_out`].
pub const FAN_OUT_ROUNDS: usize = 100;

impl Ca {
    /// The worker's state: sinks, counters, wake-ups.
    pub fn notify_hub(&self) -> &Hub {
        &self.notify
    }

    /// Makes the deliveries of outbox rows not fanned out yet (one per sink whose filter
    /// takes the event), due now; returns how many. Batch after batch until no row is left
    /// past the cursor (at most [`FAN_OUT_ROUNDS`] batches a call: the worker calls again),
    /// so a burst or a backlog never waits for the next commit. A row of a type this build
    /// does not know is dead at once for the sinks that could take it: counted and audited
    /// (`notify_dead`) like any dead letter, in the same write.
    ///
    /// Without sinks the cursor still advances: a sink gets the events written while it is
    /// configured (a sink configured later, or added next to others, gets no backlog of
    /// stale events: docs/notify.md "Configuration").
    pub fn notify_fan_out(&self) -> Result<usize, CaError> {
        let sinks = self.notify.sinks();
        // Outbox rows come only with audit records: while the trail's head is where the last
        // fan-out saw it, there is nothing to fan out, and no write is made (an empty write
        // a second would dilute the group-commit metrics).
        let head = self.read_db(|c| c.audit_head())?.map_or(0, |(seq, _)| seq);
        if self.notify.fanned_out_at() == Some(head) {
            return Ok(0);
        }
        let now = self.now();
        let pairs: Arc<Vec<(String, Filter)>> = Arc::new(
            sinks
                .iter()
                .map(|s| (s.name.clone(), s.filter.clone()))
                .collect(),
        );
        let mut made = 0;
        let mut caught_up = false;
        for _ in 0..FAN_OUT_ROUNDS {
            let pairs = pairs.clone();
            let (n, dead, records) = self
                .write(move |c| {
                    let refs: Vec<(&str, &Filter)> =
                        pairs.iter().map(|(n, f)| (n.as_str(), f)).collect();
                    let mut dead = Vec::new();
                    let n = c.notify_fan_out_with(&refs, now, &mut dead)?;
                    // Dead at once (a type this build does not know): audited like any
                    // dead letter, in the same write.
                    let mut records = Vec::with_capacity(dead.len());
                    for d in &dead {
                        let details = json!({
                            "id": d.id,
                            "type": d.kind,
                            "request_id": d.request_id,
                            "sink": d.sink,
                            "attempts": 0,
                            "last_status": null,
                            "last_error": d.error,
                        });
                        records.push(c.append_audit(
                            now,
                            "system",
                            event::NOTIFY_DEAD,
                            &details,
                        )?);
                    }
                    Ok((n, dead, records))
                })
                .map_err(|source| CaError::NotWritten {
                    what: "notification deliveries",
                    source,
                })?;
            for d in &dead {
                self.notify.count(&d.sink, Counted::Dead);
            }
            self.log(&records);
            made += n;
            if made > 0 {
                self.notify.poke_due();
            }
            if self.read_db(|c| c.notify_backlog())?.0 == 0 {
                caught_up = true;
                break;
            }
        }
        // The head is covered only when no row is left past the cursor (rows of records
        // after `head` may be fanned out already: harmless, the next call looks again).
        if caught_up {
            self.notify.set_fanned_out_at(head);
        }
        Ok(made)
    }

    /// One tick of `sink`: its deliveries due now, in order, each attempted once (outside
    /// any transaction; a failed call ends the tick, a delivery past `notify_max_age`, dead
    /// without a call, does not), then the outcomes recorded in one write with a
    /// `notify_dead` audit record for each delivery given up. A sink not configured has
    /// nothing to do.
    pub fn notify_tick(&self, sink: &str) -> Result<Tick, CaError> {
        let sinks = self.notify.sinks();
        let Some(s) = sinks.iter().find(|s| s.name == sink) else {
            return Ok(Tick::default());
        };
        let now = self.now();
        let due = self.read_db(|c| c.notify_due(sink, now, worker::BATCH))?;
        if due.is_empty() {
            return Ok(Tick::default());
        }
        let mut tick = Tick::default();
        let mut outcomes = Vec::with_capacity(due.len());
        let mut dead = Vec::new();
        for d in &due {
            // The attempt's own time: the signature's timestamp is when it is sent.
            let at = self.now();
            let max_age = self.notify.max_age();
            // Past notify_max_age: a dead letter without a call, which does not end the
            // tick (after a long stop, fresh events are not held behind stale ones).
            let (outcome, counted, called) = match worker::expired(d, at, max_age) {
                Some(outcome) => {
                    tick.expired += 1;
                    (outcome, Counted::Dead, false)
                }
                None => {
                    let approvers = if s.format == Format::Slack {
                        self.approver_handles(&d.payload)
                    } else {
                        Vec::new()
                    };
                    let (outcome, counted) = worker::attempt(
                        s,
                        d,
                        &approvers,
                        at,
                        max_age,
                        self.config.public_url.as_deref(),
                    );
                    (outcome, counted, true)
                }
            };
            self.notify.count(sink, counted);
            match counted {
                Counted::Delivered => tick.delivered += 1,
                Counted::Failed => tick.failed += 1,
                Counted::Dead => {
                    tick.dead += 1;
                    dead.push((
                        outcomes.len(),
                        json!({
                            "id": d.id,
                            "type": d.kind,
                            "request_id": d.request_id,
                            "sink": sink,
                            "attempts": outcome.attempts,
                            "last_status": outcome.status,
                            "last_error": outcome.error,
                        }),
                    ));
                }
            }
            outcomes.push(outcome);
            if called && counted != Counted::Delivered {
                break;
            }
        }
        let name = sink.to_string();
        let records = self
            .write(move |c| {
                let recorded = c.notify_record(&name, &outcomes)?;
                let mut records = Vec::with_capacity(dead.len());
                // Only for a delivery this tick recorded: a replica that led the job a moment
                // before may have recorded (and audited) the same one first.
                for (at, details) in &dead {
                    if recorded.get(*at).copied().unwrap_or(false) {
                        records.push(c.append_audit(now, "system", event::NOTIFY_DEAD, details)?);
                    }
                }
                Ok(records)
            })
            .map_err(|source| CaError::NotWritten {
                what: "notification outcomes",
                source,
            })?;
        self.log(&records);
        Ok(tick)
    }

    /// The contact handles of the users who may approve the request in `payload` (stored
    /// event JSON) as the policy is now, while the event says it is pending; none for other
    /// events, or when the role is gone. The one rule is `lifecycle::may_approve`.
    fn approver_handles(&self, payload: &str) -> Vec<String> {
        let Ok(e) = Event::from_payload(payload.as_bytes()) else {
            return Vec::new();
        };
        let Some(r) = e
            .data
            .request
            .as_ref()
            .filter(|_| crate::notify::slack::awaits_decision(&e))
        else {
            return Vec::new();
        };
        let policy = self.policy();
        let Some(role) = policy.role(&r.role) else {
            return Vec::new();
        };
        let users = self.read_db(|c| c.list_users());
        let Ok(users) = users else {
            return Vec::new();
        };
        users
            .into_iter()
            .filter(|u| lifecycle::may_approve(&r.user, role, &u.name, &u.groups))
            .filter_map(|u| u.contact)
            .collect()
    }

    /// Re-reads the sinks' secret files (SIGHUP); returns the problems (the sinks concerned
    /// keep their previous secret).
    pub fn reload_notify_secrets(&self) -> Vec<String> {
        self.notify.reload_secrets(&self.config.dir)
    }

    /// For the metrics: pending deliveries to the configured sinks plus the outbox rows not
    /// fanned out yet (a stuck or dead fan-out shows as depth), and the age (seconds) of the
    /// oldest event not delivered to one of them (or not fanned out).
    pub fn notify_gauges(&self) -> Result<(u64, u64), CaError> {
        let sinks = self.notify.sinks();
        if sinks.is_empty() {
            return Ok((0, 0));
        }
        let now = self.now();
        let status = self.read_db(|c| c.notify_status(now))?;
        let mut depth = status.backlog;
        let mut oldest = status.backlog_oldest.map_or(0, |t| now.saturating_sub(t));
        for s in status
            .sinks
            .iter()
            .filter(|s| sinks.iter().any(|c| c.name == s.sink))
        {
            depth += s.pending;
            oldest = oldest.max(s.oldest_undelivered_secs.unwrap_or(0));
        }
        Ok((depth, oldest))
    }
}

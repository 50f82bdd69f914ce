//! The audit trail as the service writes it: one record per event in the transaction that
//! makes the event happen (see the callers), records of refused calls (bounded and
//! rate-limited, see `refusals`), and the syslog copy of every record, sent after commit.

use std::sync::atomic::Ordering;

use serde_json::json;

use super::{Ca, lock, refusals};
use crate::audit::Record;
use crate::audit::event::{self, Event};
use crate::error::{ApiError, CaError};

impl Ca {
    /// Sends the syslog copy of committed records.
    pub(super) fn log(&self, records: &[Record]) {
        // One line format and one severity table for every audit record (audit::event).
        crate::audit::log(&mut lock(&self.syslog), records);
        self.count_alerts(records);
        // Committed: wake the notification fan-out if a record made an outbox row.
        self.notify.notice(records);
    }

    /// Appends one audit record in its own transaction (for events with no other change).
    pub fn audit(
        &self,
        actor: &str,
        ev: &Event,
        details: serde_json::Value,
    ) -> Result<Record, CaError> {
        self.audit_at(self.now(), actor, ev, details)
    }

    /// [`Ca::audit`] at `now`.
    pub(super) fn audit_at(
        &self,
        now: u64,
        actor: &str,
        ev: &Event,
        details: serde_json::Value,
    ) -> Result<Record, CaError> {
        let (actor, ev) = (actor.to_string(), *ev);
        let rec = self
            .write(move |c| Ok(c.append_audit(now, &actor, &ev, &details)?))
            .map_err(|source| CaError::NotWritten {
                what: "audit record",
                source,
            })?;
        self.log(std::slice::from_ref(&rec));
        Ok(rec)
    }

    /// Records a refused call (event `ev`, the error's code and message added to `what`) and
    /// returns the error the client sees. The HTTP layer calls it once for every 4xx answer.
    /// Same as [`Ca::record_refusal_from`] with no known source address.
    pub fn record_refusal(
        &self,
        actor: &str,
        ev: &Event,
        what: serde_json::Value,
        e: ApiError,
    ) -> ApiError {
        self.record_refusal_from(None, actor, ev, what, e)
    }

    /// Records a refused call from `source`. What a record holds is bounded (strings and
    /// lists truncated, see `refusals::bound`), and refusals are rate-limited per source
    /// address: the first few of a window are recorded in full, the rest are counted and
    /// recorded as one `refusals_summarised` record per source and event when the window
    /// ends (the metrics count every one), so a flood of bad calls cannot flood the trail.
    pub fn record_refusal_from(
        &self,
        source: Option<std::net::IpAddr>,
        actor: &str,
        ev: &Event,
        what: serde_json::Value,
        e: ApiError,
    ) -> ApiError {
        self.refusal_at(self.now(), source, actor, ev, what, e)
    }

    /// [`Ca::record_refusal_from`] at `now`.
    pub(super) fn refusal_at(
        &self,
        now: u64,
        source: Option<std::net::IpAddr>,
        actor: &str,
        ev: &Event,
        what: serde_json::Value,
        e: ApiError,
    ) -> ApiError {
        // A self-approval attempt is an alert (bounded per user by the cooldown), after its
        // refusal record and whether or not the rate limit lets that record through.
        let self_approval = (e.code == jit_api::wire::ErrorCode::SelfApproval).then(|| {
            what.get("path")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        });
        let out = self.refusal_record(now, source, actor, ev, what, e);
        if let Some(path) = self_approval {
            self.alert_self_approval(now, actor, path.as_deref());
        }
        out
    }

    fn refusal_record(
        &self,
        now: u64,
        source: Option<std::net::IpAddr>,
        actor: &str,
        ev: &Event,
        what: serde_json::Value,
        e: ApiError,
    ) -> ApiError {
        let (admit, due) = lock(&self.refusals).admit(now, source, actor, ev);
        if let Err(err) = self.write_summaries(now, due) {
            return ApiError::internal(err);
        }
        if !admit {
            self.stats
                .refusals_summarised
                .fetch_add(1, Ordering::Relaxed);
            return e;
        }
        let mut details = refusals::bound(what);
        if let Some(obj) = details.as_object_mut() {
            obj.insert("code".into(), json!(e.code.as_str()));
            obj.insert(
                "message".into(),
                json!(refusals::truncate(&e.message, refusals::MAX_TEXT)),
            );
            if let Some(src) = source {
                obj.insert("source".into(), json!(src.to_string()));
            }
        }
        let actor = refusals::truncate(actor, refusals::MAX_TEXT);
        if let Err(err) = self.audit_at(now, &actor, ev, details) {
            return ApiError::internal(err);
        }
        e
    }

    /// Writes the summary records of refusal windows that have ended (the server calls it
    /// every second; a no-op when none has).
    pub fn flush_refusals(&self) -> Result<(), CaError> {
        let now = self.now();
        let due = lock(&self.refusals).due(now);
        self.write_summaries(now, due)
    }

    fn write_summaries(&self, now: u64, due: Vec<refusals::Summary>) -> Result<(), CaError> {
        for s in due {
            self.audit_at(now, "system", event::REFUSALS_SUMMARISED, s.details())?;
        }
        Ok(())
    }
}

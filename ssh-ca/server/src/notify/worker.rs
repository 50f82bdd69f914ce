//! The delivery worker: takes the outbox rows that state changes wrote (in their own
//! transactions, see `store::sqlite::outbox`) to the `[[notify]]` sinks, with retries, and
//! gives up on a delivery when `notify_max_age` has passed since its event (a dead letter,
//! audited as `notify_dead`; `jit-ca notify retry ID` sends it again).
//!
//! Threads, not the async runtime's blocking pool: one fan-out thread (every second, and
//! when a commit wrote an outbox row: [`Hub::notice`]) makes the deliveries of new rows, one
//! small write through the group commit; one thread per sink sends that sink's due
//! deliveries (`Ca::notify_tick`). A receiver that hangs holds its own sink's thread for at
//! most the call deadline ([`super::deliver::TIMEOUT`]; name resolution comes before it and
//! is bounded only by the system resolver's timeouts) and nothing else: not the requests
//! (which only write an outbox row), not another sink, not the blocking pool that storage
//! and the authorizing webhook use. A failed attempt ends its sink's tick (the receiver is
//! likely down; the rest waits for the next tick), so one tick costs at most one deadline.
//!
//! Order: a sink receives one request's events in the order they happened (a delivery waits
//! while an earlier one of the same request to the same sink is pending; a dead one no
//! longer holds the later ones back). Alerts concern no request and are not ordered.
//! Delivery is at least once: a crash between the receiver's answer and the recorded
//! outcome sends the event again, with the same id (`webhook-id`), which receivers
//! deduplicate on.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use super::backoff::{self, Next};
use super::config::Sink;
use super::deliver::{self, Attempt};
use super::event::Event;
use crate::audit::Record;
use crate::store::{DeliveryState, Due, Outcome};

/// How often the worker looks for new outbox rows and due deliveries without being woken
/// (operator commands write rows from another process: polling finds them).
pub const TICK: Duration = Duration::from_secs(1);
/// Most deliveries one sink's tick reads.
pub const BATCH: usize = 64;

/// How a delivery attempt counted (`jit_ca_notify_deliveries_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// A 2xx answer.
    Delivered,
    /// Anything else; retried.
    Failed,
    /// Failed and given up.
    Dead,
}

impl Counted {
    /// Every outcome, in the metrics' order.
    pub const ALL: [Counted; 3] = [Counted::Delivered, Counted::Failed, Counted::Dead];

    /// The `outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Delivered => 0,
            Self::Failed => 1,
            Self::Dead => 2,
        }
    }
}

/// A wake-up signal: a generation counter and its condition variable.
#[derive(Debug, Default)]
struct Wake {
    generation: Mutex<u64>,
    cond: Condvar,
}

impl Wake {
    fn poke(&self) {
        let mut g = self
            .generation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *g = g.wrapping_add(1);
        self.cond.notify_all();
    }

    /// Waits until poked after `seen` (or `timeout`); updates `seen`.
    fn wait(&self, seen: &mut u64, timeout: Duration) {
        let g = self
            .generation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (g, _) = self
            .cond
            .wait_timeout_while(g, timeout, |g| *g == *seen)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *seen = *g;
    }

    fn current(&self) -> u64 {
        *self
            .generation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The worker's shared state, kept by the `Ca`: the sinks (secrets re-read on SIGHUP), the
/// retry horizon, the delivery counters and the wake-ups.
#[derive(Debug)]
pub struct Hub {
    sinks: RwLock<Arc<Vec<Sink>>>,
    max_age: u64,
    counters: Mutex<BTreeMap<String, [u64; 3]>>,
    /// Poked when a commit wrote an outbox row.
    fresh: Wake,
    /// Poked when the fan-out made deliveries.
    due: Wake,
    /// The audit trail's head (seq) when the last fan-out began: rows written before it
    /// have their deliveries.
    fanned_out_at: Mutex<Option<u64>>,
}

impl Hub {
    /// The hub of `sinks` (as configured, secrets read) retrying for `max_age` seconds.
    pub fn new(sinks: Vec<Sink>, max_age: u64) -> Self {
        let counters = sinks.iter().map(|s| (s.name.clone(), [0; 3])).collect();
        Self {
            sinks: RwLock::new(Arc::new(sinks)),
            max_age,
            counters: Mutex::new(counters),
            fresh: Wake::default(),
            due: Wake::default(),
            fanned_out_at: Mutex::new(None),
        }
    }

    /// The sinks, in config order.
    pub fn sinks(&self) -> Arc<Vec<Sink>> {
        self.sinks
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Seconds after an event's time within which it is retried.
    pub fn max_age(&self) -> u64 {
        self.max_age
    }

    /// Re-reads the sinks' secret files (SIGHUP; a rotated secret is replaced by writing the
    /// file). A sink whose file cannot be read keeps the secret it had, so a botched
    /// rotation does not stop its deliveries; every problem is returned.
    pub fn reload_secrets(&self, dir: &std::path::Path) -> Vec<String> {
        let mut sinks: Vec<Sink> = self.sinks().as_ref().clone();
        let mut problems = Vec::new();
        for s in &mut sinks {
            let old = (s.secret.clone(), s.ca_pem.clone());
            let errs = super::config::load_secrets(std::slice::from_mut(s), dir);
            if !errs.is_empty() {
                (s.secret, s.ca_pem) = old;
                problems.extend(errs);
            }
        }
        *self
            .sinks
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(sinks);
        problems
    }

    /// Counts an attempt's outcome.
    pub fn count(&self, sink: &str, outcome: Counted) {
        let mut c = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(row) = c.get_mut(sink) {
            row[outcome.index()] += 1;
        } else {
            let mut row = [0; 3];
            row[outcome.index()] = 1;
            c.insert(sink.to_string(), row);
        }
    }

    /// The counters: per sink, (outcome, count) for every outcome.
    pub fn counts(&self) -> Vec<(String, [(Counted, u64); 3])> {
        let c = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        c.iter()
            .map(|(sink, row)| (sink.clone(), Counted::ALL.map(|o| (o, row[o.index()]))))
            .collect()
    }

    /// The audit head the last fan-out covered.
    pub(crate) fn fanned_out_at(&self) -> Option<u64> {
        *self
            .fanned_out_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that a fan-out covered the trail up to `head`.
    pub(crate) fn set_fanned_out_at(&self, head: u64) {
        *self
            .fanned_out_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(head);
    }

    /// Wakes the sinks' threads (the fan-out made deliveries).
    pub(crate) fn poke_due(&self) {
        self.due.poke();
    }

    /// Wakes the fan-out when committed `records` made outbox rows (the poke after a
    /// commit; polling finds the rest).
    pub fn notice(&self, records: &[Record]) {
        let notifies = records.iter().any(|r| {
            r.kind().is_some_and(|ev| {
                // A user removal makes one row per request it denied or revoked (the
                // outbox hook reads its details; kind_of maps it to none).
                if ev == crate::audit::event::Event::UserRemove {
                    return true;
                }
                let details = if ev == crate::audit::event::Event::Alert {
                    serde_json::from_str(&r.details).unwrap_or_default()
                } else {
                    serde_json::Value::Null
                };
                super::map::kind_of(ev, &details).is_some()
            })
        });
        if notifies {
            self.fresh.poke();
        }
    }
}

/// What `due` becomes when it is past `notify_max_age` at `at` (a dead letter, no call
/// made), or `None` when it may still be sent. The horizon runs from the event's time, or
/// from a resend's (a fresh schedule).
pub fn expired(due: &Due, at: u64, max_age: u64) -> Option<Outcome> {
    let since = due.time.max(due.since);
    // Never sent this late (a CA stopped for longer than notify_max_age, a backlog): a
    // stale event, such as "decide with your own key" for a request decided since, is not
    // posted; it is a dead letter, listed and resendable (`jit-ca notify retry`).
    (at > since.saturating_add(max_age)).then(|| Outcome {
        seq: due.seq,
        attempts: due.attempts,
        expected_attempts: Some(due.attempts),
        state: DeliveryState::Dead,
        at,
        status: None,
        error: Some(
            "not sent: older than notify_max_age (resend with jit-ca notify retry ID)".into(),
        ),
    })
}

/// One attempt to deliver `due` to `sink` at `at` (the attempt's time: `webhook-timestamp`),
/// mentioning `approvers` (contact handles) in Slack messages; what the delivery becomes.
/// Makes the HTTP call (bounded by the sink's deadline); writes nothing.
pub fn attempt(
    sink: &Sink,
    due: &Due,
    approvers: &[String],
    at: u64,
    max_age: u64,
    public_url: Option<&str>,
) -> (Outcome, Counted) {
    if let Some(outcome) = expired(due, at, max_age) {
        return (outcome, Counted::Dead);
    }
    // The horizon runs from the event's time, or from a resend's (a fresh schedule).
    let since = due.time.max(due.since);
    let attempts = due.attempts.saturating_add(1);
    let bytes = due.payload.as_bytes();
    let out = match sink.format {
        // Sent as stored, signed with the row's id: any JSON object is sent (fields added by
        // a later version included); only what is no JSON at all is refused.
        super::config::Format::Standard => serde_json::from_slice::<serde_json::Map<_, _>>(bytes)
            .map_err(|e| format!("not a notification payload: {e}"))
            .and_then(|_| {
                let body = super::link::with_url(bytes, public_url);
                deliver::signed(sink, &due.id, &body, at)
            }),
        super::config::Format::Slack => Event::from_payload(bytes)
            .and_then(|event| deliver::outgoing(sink, &event, bytes, approvers, at, public_url)),
    };
    let result = out.map(|out| {
        deliver::classify(crate::webhook::client::post(
            &deliver::target(sink),
            &out.headers,
            &out.body,
        ))
    });
    let (status, error) = match result {
        Ok(Attempt::Delivered { status }) => {
            return (
                Outcome {
                    seq: due.seq,
                    attempts,
                    expected_attempts: Some(due.attempts),
                    state: DeliveryState::Delivered,
                    at,
                    status: Some(status),
                    error: None,
                },
                Counted::Delivered,
            );
        }
        Ok(Attempt::Failed { status, error }) => (status, error),
        // Nothing was sent (an unreadable stored payload, a secret not loaded): retried the
        // same way, so it is visible in `notify status` and ends as a dead letter.
        Err(e) => (None, format!("not sent: {e}")),
    };
    let (state, counted) = match backoff::after_failure(&due.id, since, attempts, at, max_age) {
        Next::RetryAt(next_at) => (DeliveryState::Pending { next_at }, Counted::Failed),
        Next::Dead => (DeliveryState::Dead, Counted::Dead),
    };
    (
        Outcome {
            seq: due.seq,
            attempts,
            expected_attempts: Some(due.attempts),
            state,
            at,
            status,
            error: Some(error),
        },
        counted,
    )
}

/// The running worker's threads; dropping it (or [`Workers::stop`]) stops them at their next
/// wait (a call in progress finishes first, within its deadline, or is cut by the process's
/// exit: it stays pending and is sent again, with the same id, after a restart).
#[derive(Debug, Default)]
pub struct Workers {
    stop: Arc<AtomicBool>,
    ca: Option<Arc<crate::service::Ca>>,
    threads: Vec<JoinHandle<()>>,
}

/// Starts the fan-out thread (also without sinks: it moves the cursor past events no sink
/// is configured for) and one thread per sink.
pub fn start(ca: Arc<crate::service::Ca>) -> Result<Workers, crate::error::CaError> {
    let sinks = ca.notify_hub().sinks();
    let stop = Arc::new(AtomicBool::new(false));
    let mut w = Workers {
        stop: stop.clone(),
        ca: Some(ca.clone()),
        threads: Vec::new(),
    };
    let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name)
            .spawn(f)
            .map_err(|source| crate::error::CaError::Thread {
                name: "notification worker",
                source,
            })
    };
    {
        let (ca, stop) = (ca.clone(), stop.clone());
        w.threads.push(spawn(
            "jit-notify".into(),
            Box::new(move || fan_out_loop(&ca, &stop)),
        )?);
    }
    for s in sinks.iter() {
        let (ca, stop, name) = (ca.clone(), stop.clone(), s.name.clone());
        w.threads.push(spawn(
            format!("jit-notify-{}", s.name.chars().take(4).collect::<String>()),
            Box::new(move || sink_loop(&ca, &stop, &name)),
        )?);
    }
    Ok(w)
}

impl Workers {
    /// Asks the threads to stop (they do at their next wait).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(ca) = &self.ca {
            ca.notify_hub().fresh.poke();
            ca.notify_hub().due.poke();
        }
    }

    /// How many threads run (the fan-out and one per sink).
    pub fn threads(&self) -> usize {
        self.threads.len()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}

fn fan_out_loop(ca: &crate::service::Ca, stop: &AtomicBool) {
    let hub = ca.notify_hub();
    let mut seen = hub.fresh.current();
    while !stop.load(Ordering::SeqCst) {
        // With several replicas, one fans out (the others' events are in the same outbox).
        if !ca.leads(crate::store::postgres::Job::Notify) {
            hub.fresh.wait(&mut seen, TICK);
            continue;
        }
        match ca.notify_fan_out() {
            Ok(_) => {}
            Err(e) => {
                jit_common::errln!(
                    "jit-ca: notifications: fan-out failed (retried in a second): {e}"
                );
            }
        }
        hub.fresh.wait(&mut seen, TICK);
    }
}

fn sink_loop(ca: &crate::service::Ca, stop: &AtomicBool, sink: &str) {
    let hub = ca.notify_hub();
    let mut seen = hub.due.current();
    while !stop.load(Ordering::SeqCst) {
        // With several replicas, the notify leader delivers (each delivery once, in order).
        if !ca.leads(crate::store::postgres::Job::Notify) {
            hub.due.wait(&mut seen, TICK);
            continue;
        }
        match ca.notify_tick(sink) {
            // Delivered (or expired) something and no call failed: more may be due at once
            // (the next event of a request waits for the previous one).
            Ok(t) if t.delivered + t.expired > 0 && t.failed == 0 && t.dead == t.expired => {
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                jit_common::errln!("jit-ca: notifications to {sink}: {e} (retried in a second)");
            }
        }
        hub.due.wait(&mut seen, TICK);
    }
}

/// What one sink's tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick {
    /// Deliveries made.
    pub delivered: usize,
    /// Attempts that failed (to be retried).
    pub failed: usize,
    /// Deliveries given up (`expired` included).
    pub dead: usize,
    /// Of `dead`: deliveries past `notify_max_age`, given up without a call (they do not
    /// end the tick: the receiver was not asked).
    pub expired: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::config::Format;
    use crate::notify::event::tests::approved;
    use crate::notify::filter::Filter;

    fn sink(url: &str) -> Sink {
        Sink {
            name: "ops".into(),
            url: url.into(),
            format: Format::Standard,
            secret_file: None,
            filter: Filter::all(),
            secret: crate::webhook::Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").ok(),
            ca_file: None,
            ca_pem: None,
        }
    }

    fn due(payload: String, attempts: u32) -> Due {
        Due {
            seq: 7,
            id: "evt_5f0c9d2e8a7b6c5d4e3f2a1b0c9d8e7f".into(),
            kind: "request.approved".into(),
            request_id: Some("r-692b7a40a1b2c3d4e5f6".into()),
            time: 1_795_992_000,
            payload,
            attempts,
            since: 0,
        }
    }

    /// A port nothing listens on.
    fn closed() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/x", l.local_addr().unwrap());
        drop(l);
        url
    }

    #[test]
    fn a_failed_attempt_is_retried_then_dead_after_max_age() {
        let payload = String::from_utf8(approved().payload()).unwrap();
        let s = sink(&closed());
        let t = 1_795_992_000;
        let (o, c) = attempt(&s, &due(payload.clone(), 0), &[], t + 1, 3600, None);
        assert_eq!(c, Counted::Failed);
        assert_eq!(o.attempts, 1);
        assert!(
            matches!(o.state, DeliveryState::Pending { next_at } if (t + 11..=t + 12).contains(&next_at)),
            "{o:?}"
        );
        assert!(o.error.as_deref().unwrap().starts_with("connect"), "{o:?}");
        assert_eq!(o.status, None);
        let (o, c) = attempt(&s, &due(payload, 9), &[], t + 3500, 3600, None);
        assert_eq!(
            (c, o.state, o.attempts),
            (Counted::Dead, DeliveryState::Dead, 10)
        );
    }

    #[test]
    fn what_cannot_be_sent_is_a_failure_never_a_panic() {
        let s = sink(&closed());
        let (o, c) = attempt(
            &s,
            &due("{not json".into(), 0),
            &[],
            1_795_992_001,
            3600,
            None,
        );
        assert_eq!(c, Counted::Failed);
        assert!(
            o.error
                .unwrap()
                .starts_with("not sent: not a notification payload")
        );
        let mut unsigned = sink(&closed());
        unsigned.secret = None;
        let payload = String::from_utf8(approved().payload()).unwrap();
        let (o, _) = attempt(&unsigned, &due(payload, 0), &[], 1_795_992_001, 3600, None);
        assert!(o.error.unwrap().ends_with("nothing is sent unsigned"));
    }

    /// R1 D9: a standard sink sends the stored bytes as they are, signed with the row's id,
    /// even when this build could not parse them (a field of a later version).
    #[test]
    fn a_standard_sink_sends_a_later_versions_payload_as_stored() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/x", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            use std::io::{Read as _, Write as _};
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 65536];
            let mut got = Vec::new();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            while let Ok(n) = s.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
                if n == 0 || String::from_utf8_lossy(&got).contains("\"later\":true}") {
                    break;
                }
            }
            s.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
            String::from_utf8_lossy(&got).to_string()
        });
        let payload = String::from_utf8(approved().payload()).unwrap();
        let later = format!("{},\"later\":true}}", &payload[..payload.len() - 1]);
        assert!(Event::from_payload(later.as_bytes()).is_ok());
        let (o, c) = attempt(
            &sink(&url),
            &due(later.clone(), 0),
            &[],
            1_795_992_001,
            3600,
            None,
        );
        assert_eq!(c, Counted::Delivered, "{o:?}");
        let got = server.join().unwrap();
        assert!(got.ends_with(&later), "{got}");
        assert!(
            got.contains("webhook-id: evt_5f0c9d2e8a7b6c5d4e3f2a1b0c9d8e7f"),
            "{got}"
        );
    }

    #[test]
    fn counters_and_wake_ups() {
        let hub = Hub::new(vec![sink("https://h.example.com/")], 3600);
        hub.count("ops", Counted::Delivered);
        hub.count("ops", Counted::Delivered);
        hub.count("gone", Counted::Dead);
        let counts = hub.counts();
        assert_eq!(counts[0].0, "gone");
        assert_eq!(counts[0].1[2], (Counted::Dead, 1));
        assert_eq!(
            counts[1].1,
            [
                (Counted::Delivered, 2),
                (Counted::Failed, 0),
                (Counted::Dead, 0)
            ]
        );
        // A poke wakes a waiter at once; a wait without one ends at its timeout.
        let mut seen = hub.fresh.current();
        hub.fresh.poke();
        hub.fresh.wait(&mut seen, Duration::from_secs(600));
        assert_eq!(seen, hub.fresh.current());
    }

    #[test]
    fn only_records_that_notify_wake_the_fan_out() {
        let hub = Hub::new(Vec::new(), 3600);
        let rec = |event: &str, details: &str| Record {
            seq: 1,
            time: 0,
            actor: "system".into(),
            event: event.into(),
            details: details.into(),
            prev_hash: String::new(),
            hash: String::new(),
        };
        let before = hub.fresh.current();
        hub.notice(&[
            rec("auth_failure", "{}"),
            rec("alert", r#"{"kind":"nonsense"}"#),
        ]);
        assert_eq!(hub.fresh.current(), before);
        hub.notice(&[rec("alert", r#"{"kind":"self_approval"}"#)]);
        assert_eq!(hub.fresh.current(), before + 1);
        hub.notice(&[rec("request", "{}")]);
        assert_eq!(hub.fresh.current(), before + 2);
        // R1 N4: a user removal's rows wake it too.
        hub.notice(&[rec("user_remove", r#"{"denied":["r-1"]}"#)]);
        assert_eq!(hub.fresh.current(), before + 3);
    }
}

//! Alerts (issue 15; docs/alerts.md): the detectors of [`crate::notify::alerts`] fed by the
//! service, and the `alert` audit records they write. Each record is logged to syslog at
//! alert level (`audit::event`: `alert` is `Severity::Alert`) and becomes an `alert.<kind>`
//! notification through the store's outbox hook.
//!
//! Where each alert comes from:
//! * `auth_failures`: every failed authentication of a signed call with a key
//!   (`unknown_key`; and for a registered key `bad_signature`, `stale_timestamp`,
//!   `wrong_audience`, `replayed_nonce`), counted *before* the refusal rate limit of
//!   `refusals` (which records only the first few of a flood) per source address (IPv6:
//!   its /64), per key fingerprint, and all together ("from many sources", at
//!   [`GLOBAL_FACTOR`] times the threshold). Alerts for sources and unknown keys, which
//!   cost an attacker nothing, share a budget of [`AUTH_ALERTS_PER_PERIOD`] per period,
//!   the last saying "at least N … from many sources". Registered keys have a budget of
//!   their own, as large (their failures need only the public key, which is often
//!   public): beyond it, the keys that reach the threshold are held and named in ONE
//!   summary when the period ends ([`Ca::flush_alerts`], or the next failure), so a real
//!   key under attack is always named. A detection that is not raised starts no cooldown;
//! * `request_burst`: every authenticated request attempt (`POST /v1/requests`), stored or
//!   refused, per user;
//! * `self_approval`: every refusal with `self_approval`, at most one alert per user per
//!   cooldown (an approver looping on their own request cannot flood the sinks; every
//!   attempt is still an `approval_refused` record);
//! * `off_schedule_approval`: an approval given while its role's schedule is closed, in the
//!   approval's transaction ([`off_schedule`]); every one;
//! * `break_glass`: `jit-ca revoke-grant`, in the revocation's transaction
//!   ([`break_glass`]); every one;
//! * `checkpoint_failure`: a failed audit checkpoint, once an hour while it keeps failing.
//!
//! An alert that cannot be written to the audit trail (the database is the problem) is sent
//! to syslog directly, at alert level, so it is never lost silently.

use std::net::IpAddr;

use jit_common::log::Severity;
use serde_json::Value;

use super::{Ca, lock, refusals};
use crate::audit::event;
use crate::notify::alerts::{self, Detector, Settings, Threshold};
use crate::notify::event::{AlertFacts, Kind};
use crate::policy::Role;

/// While audit checkpoints keep failing, one alert per this many seconds.
pub const CHECKPOINT_ALERT_EVERY: u64 = 3600;
/// Most `auth_failures` alerts for sources and unknown keys per period (the cooldown, at
/// least the window): the last of them says "at least N … from many sources", and the
/// rest of the period raises nothing more for sources and unknown keys. Unknown keys and
/// addresses cost an attacker little, so without this a flood of fresh keys would be a
/// flood of alerts (and of messages to every sink). Registered keys have a budget of
/// their own of the same size, then one summary per period naming the rest (a flood of
/// unknown keys must not hide the failures of a real user's key, and a flood made with
/// users' public keys must not become one alert per key).
pub const AUTH_ALERTS_PER_PERIOD: u32 = 5;
/// All failed authentications together alert at this many times the `auth_failures`
/// threshold within its window, whatever their sources and keys (a probe spread over many
/// addresses and fresh keys).
pub const GLOBAL_FACTOR: u32 = 10;
/// The key of the detector of all failures.
const ALL: &str = "all";

/// What one more `auth_failures` detection becomes within the period's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Budget {
    /// An alert of its own.
    Alert,
    /// The budget's last alert: failures from many sources, this many in the period.
    Flood(u32),
    /// Nothing (the period's flood alert was raised).
    Quiet,
}

/// The period behind [`AUTH_ALERTS_PER_PERIOD`].
#[derive(Debug, Default)]
struct AuthPeriod {
    start: u64,
    failures: u32,
    alerts: u32,
    /// Alerts of registered keys raised in the period.
    key_alerts: u32,
    /// Registered keys that reached the threshold after `key_alerts` was spent.
    held: Held,
}

/// Registered keys whose alerts were held back in a period, for its summary.
#[derive(Debug, Default)]
struct Held {
    /// Fingerprints (each key once; at most `alerts::MAX_KEYS`).
    seen: std::collections::HashSet<String>,
    /// Keys beyond `seen`'s bound (counted, maybe twice).
    beyond: u32,
    /// Every key in `seen`, in the order held: (user, fingerprint). The summary's text
    /// shows at most `alerts::SUMMARY_NAMES` of their users; its record lists them all.
    named: Vec<(String, String)>,
}

impl Held {
    fn add(&mut self, user: &str, fp: &str) {
        if self.seen.contains(fp) {
            return;
        }
        if self.seen.len() >= alerts::MAX_KEYS {
            self.beyond = self.beyond.saturating_add(1);
            return;
        }
        self.seen.insert(fp.to_string());
        self.named.push((user.to_string(), fp.to_string()));
    }

    fn keys(&self) -> u32 {
        u32::try_from(self.seen.len())
            .unwrap_or(u32::MAX)
            .saturating_add(self.beyond)
    }
}

/// The service's detectors (one `Mutex` on [`Ca`], like the refusal limiter).
#[derive(Debug)]
pub(super) struct Alerts {
    settings: Settings,
    auth_by_source: Detector,
    /// Unknown keys (free to make: may fill the detector and overflow).
    auth_by_key: Detector,
    /// Registered keys, apart: a flood of fresh keys cannot push a real key into the
    /// overflow count (there are fewer registered keys than `alerts::MAX_KEYS`).
    auth_by_registered_key: Detector,
    auth_all: Detector,
    request_burst: Detector,
    self_approval: Detector,
    auth_period: AuthPeriod,
    /// The registered keys the previous summary's text showed (shown last next time).
    auth_last_shown: std::collections::HashSet<String>,
    /// When the last checkpoint-failure alert was raised; None while checkpoints succeed.
    checkpoint_alerted: Option<u64>,
}

impl Alerts {
    /// Detectors with the thresholds of config.toml's `[alerts]`.
    pub(super) fn new(settings: Settings) -> Self {
        let every = Threshold {
            cooldown_secs: settings.request_burst.cooldown_secs,
            ..alerts::defaults::EVERY
        };
        Self {
            settings,
            auth_by_source: Detector::new(settings.auth_failures),
            auth_by_key: Detector::new(settings.auth_failures),
            auth_by_registered_key: Detector::new(settings.auth_failures),
            auth_all: Detector::new(Threshold {
                count: settings.auth_failures.count.saturating_mul(GLOBAL_FACTOR),
                ..settings.auth_failures
            }),
            request_burst: Detector::new(settings.request_burst),
            self_approval: Detector::new(every),
            auth_period: AuthPeriod::default(),
            auth_last_shown: std::collections::HashSet::new(),
            checkpoint_alerted: None,
        }
    }

    /// Length of the auth-alert budget's period.
    fn auth_period_secs(&self) -> u64 {
        let t = self.settings.auth_failures;
        t.cooldown_secs.max(t.window_secs)
    }

    /// Counts one authentication failure at `now` in the budget's period. Returns the
    /// summary of the registered keys held back in the period that ended, if any.
    fn auth_failure_seen(&mut self, now: u64) -> Option<(Kind, AlertFacts)> {
        let period = self.auth_period_secs();
        let ended =
            now.saturating_sub(self.auth_period.start) >= period || now < self.auth_period.start;
        let summary = if ended { self.held_summary(now) } else { None };
        let p = &mut self.auth_period;
        if ended {
            *p = AuthPeriod {
                start: now,
                ..AuthPeriod::default()
            };
        }
        p.failures = p.failures.saturating_add(1);
        summary
    }

    /// Whether one more registered key's detection gets an alert of its own in the period
    /// (then counted); otherwise it is held for the period's summary.
    fn key_alert_allowed(&mut self) -> bool {
        let p = &mut self.auth_period;
        if p.key_alerts < AUTH_ALERTS_PER_PERIOD {
            p.key_alerts += 1;
            true
        } else {
            false
        }
    }

    /// The summary of the registered keys held back in the period (taken: once), when
    /// there are any. Its record lists every held key's user (`users`), so every key it
    /// stands for is named and starts its cooldown now. Its text shows the users of the
    /// keys not shown in the previous summary first: an attacker who holds many users'
    /// public keys cannot keep one key out of the text by spending the budget and the
    /// shown places on decoys every period.
    fn held_summary(&mut self, now: u64) -> Option<(Kind, AlertFacts)> {
        let mut held = std::mem::take(&mut self.auth_period.held);
        if held.named.is_empty() {
            return None;
        }
        for (_, fp) in &held.named {
            self.auth_by_registered_key.fired(now, fp);
        }
        let last = std::mem::take(&mut self.auth_last_shown);
        // Stable: within each group, the order held.
        held.named.sort_by_key(|(_, fp)| last.contains(fp));
        self.auth_last_shown = held
            .named
            .iter()
            .take(alerts::SUMMARY_NAMES)
            .map(|(_, fp)| fp.clone())
            .collect();
        let names: Vec<&str> = held.named.iter().map(|(u, _)| u.as_str()).collect();
        let mut users: Vec<String> = held.named.iter().map(|(u, _)| u.clone()).collect();
        users.sort();
        users.dedup();
        let (kind, mut facts) = alerts::auth_registered_summary(
            &names,
            held.keys(),
            AUTH_ALERTS_PER_PERIOD,
            self.auth_period_secs(),
        );
        facts.users = users;
        Some((kind, facts))
    }

    /// The summary of the period's held registered keys if the period has ended at `now`.
    fn flush(&mut self, now: u64) -> Option<(Kind, AlertFacts)> {
        let over = now.saturating_sub(self.auth_period.start) >= self.auth_period_secs();
        if over { self.held_summary(now) } else { None }
    }

    /// What a detection at this point of the period becomes.
    fn auth_budget(&mut self) -> Budget {
        let p = &mut self.auth_period;
        p.alerts = p.alerts.saturating_add(1);
        match p.alerts {
            n if n < AUTH_ALERTS_PER_PERIOD => Budget::Alert,
            n if n == AUTH_ALERTS_PER_PERIOD => Budget::Flood(p.failures),
            _ => Budget::Quiet,
        }
    }

    /// The period's budget is spent (a "from many sources" alert was raised).
    fn auth_budget_spent(&mut self) {
        self.auth_period.alerts = self.auth_period.alerts.max(AUTH_ALERTS_PER_PERIOD);
    }

    /// A checkpoint failed at `now`: whether to alert (the first failure, then once every
    /// [`CHECKPOINT_ALERT_EVERY`] while failing).
    fn checkpoint_failed(&mut self, now: u64) -> bool {
        match self.checkpoint_alerted {
            Some(t) if now.saturating_sub(t) < CHECKPOINT_ALERT_EVERY => false,
            _ => {
                self.checkpoint_alerted = Some(now);
                true
            }
        }
    }
}

/// The `alert` record's details of an approval of `request_id` (role `role`) by `approver`
/// at `now`, when the role has a schedule that is closed at `now`.
pub(super) fn off_schedule(
    role: &Role,
    approver: &str,
    request_id: &str,
    now: u64,
) -> Option<Value> {
    let schedule = role.schedule.as_ref().filter(|s| !s.contains(now))?;
    let (kind, facts) =
        alerts::off_schedule_approval(approver, request_id, &role.name, &schedule.describe());
    Some(alerts::record_details(
        kind,
        &facts,
        Some(request_id),
        Some(&role.name),
    ))
}

/// The `alert` record's details of `jit-ca revoke-grant TARGET` by `actor`.
pub(super) fn break_glass(actor: &str, target: &str, request_id: Option<&str>) -> Value {
    let (kind, facts) = alerts::operator_revocation(actor, target);
    alerts::record_details(kind, &facts, request_id, None)
}

/// The request id of a refused approval's path (`/v1/requests/{id}/approve`), bounded.
fn request_of(path: Option<&str>) -> Option<String> {
    let id = path?
        .strip_prefix("/v1/requests/")?
        .strip_suffix("/approve")?;
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| id.to_string())
}

impl Ca {
    /// Appends an `alert` record (its own write) and sends its syslog line; when the write
    /// fails, the alert goes to syslog directly.
    fn raise(&self, now: u64, (kind, facts): (Kind, AlertFacts), request_id: Option<&str>) {
        let details = alerts::record_details(kind, &facts, request_id, None);
        if let Err(e) = self.audit_at(now, "system", event::ALERT, details) {
            self.raise_unrecorded(kind, &facts, &e.to_string());
        }
    }

    /// Counts the committed `alert` records among `records` (`jit_ca_alerts_total`).
    pub(super) fn count_alerts(&self, records: &[crate::audit::Record]) {
        for r in records.iter().filter(|r| r.event == event::ALERT.name()) {
            let details: Value = serde_json::from_str(&r.details).unwrap_or(Value::Null);
            self.count_alert(details["kind"].as_str().unwrap_or_default());
        }
    }

    fn count_alert(&self, kind: &str) {
        if let Some(c) = alerts::KINDS
            .iter()
            .position(|k| *k == kind)
            .and_then(|i| self.stats.alerts.get(i))
        {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// An alert that could not be recorded: syslog at alert level, and stderr.
    fn raise_unrecorded(&self, kind: Kind, facts: &AlertFacts, why: &str) {
        self.count_alert(kind.as_str().trim_start_matches("alert."));
        let line = format!(
            "{kind}: {} (check {}); not recorded in the audit trail: {why}",
            facts.summary, facts.check
        );
        lock(&self.syslog).log(Severity::Alert, &line);
        jit_common::errln!("jit-ca: {line}");
    }

    /// Counts one failed authentication from `source` with the key `fingerprint`
    /// (registered to `user`, if it is); alerts when a count reaches its threshold (one
    /// alert naming source and key when both do). See the module docs for the budget.
    pub(super) fn alert_auth_failure(
        &self,
        now: u64,
        source: Option<IpAddr>,
        fingerprint: Option<&str>,
        user: Option<&str>,
    ) {
        let source = source.map(|s| refusals::source_key(Some(s)));
        let facts = {
            let mut a = lock(&self.alerts);
            let ended = a.auth_failure_seen(now);
            let s = source
                .as_deref()
                .and_then(|s| a.auth_by_source.detect(now, s));
            let keys = if user.is_some() {
                &mut a.auth_by_registered_key
            } else {
                &mut a.auth_by_key
            };
            let mut k = fingerprint.and_then(|k| keys.detect(now, k));
            // A registered key beyond its budget: held for the period's summary (no alert
            // of its own, no cooldown).
            if let (Some(_), Some(u), Some(fp)) = (k, user, fingerprint)
                && !a.key_alert_allowed()
            {
                a.auth_period.held.add(u, fp);
                k = None;
            }
            let all = a.auth_all.detect(now, ALL);
            let window = a.settings.auth_failures.window_secs;
            let registered = k.is_some() && user.is_some();
            let budget = if registered || (s.is_none() && k.is_none()) {
                None
            } else {
                Some(a.auth_budget())
            };
            let mut fire_source = s.is_some();
            let mut fire_key = k.is_some();
            let facts = match budget {
                Some(Budget::Quiet) => {
                    fire_source = false;
                    fire_key = false;
                    None
                }
                Some(Budget::Flood(total)) => {
                    fire_source = false;
                    fire_key = false;
                    Some(alerts::auth_flood(total, a.auth_period_secs()))
                }
                Some(Budget::Alert) | None if s.is_some() || k.is_some() => {
                    Some(alerts::auth_failures(
                        s.and(source.as_deref()),
                        k.and(fingerprint),
                        user,
                        s.max(k).unwrap_or(0),
                        window,
                    ))
                }
                _ => None,
            };
            if let Some(src) = source.as_deref().filter(|_| fire_source) {
                a.auth_by_source.fired(now, src);
            }
            if let Some(fp) = fingerprint.filter(|_| fire_key) {
                if user.is_some() {
                    a.auth_by_registered_key.fired(now, fp);
                } else {
                    a.auth_by_key.fired(now, fp);
                }
            }
            let is_flood = matches!(budget, Some(Budget::Flood(_)));
            if is_flood {
                // The flood was told: the detector of all failures is quiet for its cooldown.
                a.auth_all.fired(now, ALL);
            }
            // All failures together: a "from many sources" alert of its own, unless this
            // very failure already raised one; it spends the period's budget.
            let flood = match all {
                Some(n) if !is_flood => {
                    a.auth_all.fired(now, ALL);
                    a.auth_budget_spent();
                    Some(alerts::auth_failures(None, None, None, n, window))
                }
                _ => None,
            };
            [ended, facts, flood]
        };
        for f in facts.into_iter().flatten() {
            self.raise(now, f, None);
        }
    }

    /// Raises the summary of the registered keys held back in an `auth_failures` period
    /// that has ended (the server's housekeeping calls it every second; the next failure
    /// does too). Returns whether one was raised.
    pub fn flush_alerts(&self) -> bool {
        let now = self.now();
        let summary = lock(&self.alerts).flush(now);
        let raised = summary.is_some();
        if let Some(f) = summary {
            self.raise(now, f, None);
        }
        raised
    }

    /// Counts one request attempt of `user` (stored or refused); alerts at the burst
    /// threshold.
    pub(super) fn alert_request(&self, now: u64, user: &str) {
        let (fired, window) = {
            let mut a = lock(&self.alerts);
            let n = a.request_burst.observe(now, user);
            (n, a.settings.request_burst.window_secs)
        };
        if let Some(n) = fired {
            self.raise(now, alerts::request_burst(user, n, window), None);
        }
    }

    /// A self-approval attempt by `user` (refused); `path` is the call's path.
    pub(super) fn alert_self_approval(&self, now: u64, user: &str, path: Option<&str>) {
        if lock(&self.alerts)
            .self_approval
            .observe(now, user)
            .is_none()
        {
            return;
        }
        let request = request_of(path);
        let facts = alerts::self_approval(user, request.as_deref().unwrap_or("(unknown)"));
        self.raise(now, facts, request.as_deref());
    }

    /// The outcome of one audit checkpoint refresh at `now`: `Ok(true)` a checkpoint covers
    /// the head (ends a failure), `Ok(false)` postponed (changes nothing), `Err` a failure,
    /// which alerts at once, then once every [`CHECKPOINT_ALERT_EVERY`] while it keeps
    /// failing. Returns whether an alert was raised.
    pub(super) fn checkpoint_outcome(&self, now: u64, outcome: Result<bool, String>) -> bool {
        let detail = match outcome {
            Ok(true) => {
                lock(&self.alerts).checkpoint_alerted = None;
                return false;
            }
            Ok(false) => return false,
            Err(detail) => detail,
        };
        if !lock(&self.alerts).checkpoint_failed(now) {
            return false;
        }
        // One line, bounded: the error's text comes from the database or the signer.
        let detail = jit_common::log::sanitize(&detail, 300);
        self.raise(now, alerts::checkpoint_failure(&detail), None);
        true
    }

    /// The audit page found the hash chain broken (`detail` names the first bad record): an
    /// `alert` of kind `checkpoint_failure`, raised once per finding (the page keeps showing
    /// it broken until a restart).
    pub(super) fn alert_chain_broken(&self, now: u64, detail: &str) {
        let detail = jit_common::log::sanitize(detail, 300);
        self.raise(now, alerts::chain_broken(&detail), None);
    }

    /// Reports a failed audit checkpoint (what the server's housekeeping does when
    /// [`Ca::refresh_checkpoint`] fails): alerts as [`Ca::refresh_checkpoint`] does.
    /// Returns whether an alert was raised.
    pub fn report_checkpoint_failure(&self, detail: &str) -> bool {
        self.checkpoint_outcome(self.now(), Err(detail.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_alerts_once_an_hour_while_failing() {
        let mut a = Alerts::new(Settings::default());
        assert!(a.checkpoint_failed(100));
        assert!(!a.checkpoint_failed(101));
        assert!(!a.checkpoint_failed(100 + CHECKPOINT_ALERT_EVERY - 1));
        assert!(a.checkpoint_failed(100 + CHECKPOINT_ALERT_EVERY));
        a.checkpoint_alerted = None;
        assert!(a.checkpoint_failed(100 + CHECKPOINT_ALERT_EVERY + 1));
    }

    #[test]
    fn auth_alerts_are_bounded_per_period() {
        let mut a = Alerts::new(Settings::default());
        let period = a.auth_period_secs();
        assert_eq!(period, 900);
        for t in 0..3 {
            a.auth_failure_seen(t);
        }
        for _ in 1..AUTH_ALERTS_PER_PERIOD {
            assert_eq!(a.auth_budget(), Budget::Alert);
        }
        assert_eq!(a.auth_budget(), Budget::Flood(3));
        a.auth_failure_seen(period - 1);
        assert_eq!(a.auth_budget(), Budget::Quiet);
        // A new period, a new budget.
        a.auth_failure_seen(period);
        assert_eq!(a.auth_budget(), Budget::Alert);
    }

    #[test]
    fn registered_keys_have_their_own_budget_then_one_summary() {
        let mut a = Alerts::new(Settings::default());
        assert!(a.auth_failure_seen(0).is_none());
        for _ in 0..AUTH_ALERTS_PER_PERIOD {
            assert!(a.key_alert_allowed());
        }
        assert!(!a.key_alert_allowed());
        // The budget of sources and unknown keys is apart.
        assert_eq!(a.auth_budget(), Budget::Alert);
        for i in 0..30 {
            // Each key at its threshold (detected, not raised), then held.
            let fp = format!("fp{i}");
            let n = (0..10).filter_map(|t| a.auth_by_registered_key.detect(t, &fp));
            assert_eq!(n.count(), 1);
            a.auth_period
                .held
                .add(&format!("u{i:02}"), &format!("fp{i}"));
            a.auth_period
                .held
                .add(&format!("u{i:02}"), &format!("fp{i}"));
        }
        assert!(a.flush(899).is_none(), "the period has not ended");
        let (_, facts) = a.flush(900).unwrap();
        assert_eq!(facts.count, Some(30));
        assert!(
            facts.summary.ends_with("u19 and 10 more"),
            "{}",
            facts.summary
        );
        // The record names every held key's user, not only the 20 of the text.
        let want: Vec<String> = (0..30).map(|i| format!("u{i:02}")).collect();
        assert_eq!(facts.users, want);
        assert!(a.flush(901).is_none(), "once per period");
        // Every key the record names starts its cooldown (the 21st too: it is named in
        // `users`, no longer only counted).
        for fp in ["fp0", "fp25"] {
            for t in 0..10 {
                assert!(a.auth_by_registered_key.detect(1000 + t, fp).is_none());
            }
        }
        // The next failure starts a new period with a new budget.
        assert!(a.auth_failure_seen(1000).is_none());
        assert!(a.key_alert_allowed());
    }

    /// R4 E1: an attacker holding many users' public keys spends the budget and the
    /// summary's shown places on decoys, alternating two sets so each decoy is past its
    /// cooldown again; the attacked key is still in the `users` of every summary it was
    /// held for (the text shows at most 20 users, those not shown last time first).
    #[test]
    fn decoys_cannot_keep_a_key_out_of_the_summary() {
        let mut a = Alerts::new(Settings::default());
        let period = a.auth_period_secs();
        for round in 0..4u64 {
            let now = round * period;
            assert!(a.auth_failure_seen(now).is_none() || round > 0);
            let set = if round % 2 == 0 { "a" } else { "b" };
            // 25 decoys held first (the budget of 5 is taken by others), then the victim.
            for i in 0..25 {
                a.auth_period
                    .held
                    .add(&format!("{set}{i:02}"), &format!("fp-{set}{i}"));
            }
            a.auth_period.held.add("victim", "fp-victim");
            let (_, facts) = a.flush(now + period).unwrap();
            assert!(
                facts.users.iter().any(|u| u == "victim"),
                "{:?}",
                facts.users
            );
            a.auth_period = AuthPeriod {
                start: now + period,
                ..AuthPeriod::default()
            };
        }
    }

    #[test]
    fn the_request_of_a_refused_approval() {
        assert_eq!(
            request_of(Some("/v1/requests/r-20261123-ab12/approve")).as_deref(),
            Some("r-20261123-ab12")
        );
        assert_eq!(request_of(Some("/v1/requests/a/b/approve")), None);
        assert_eq!(request_of(Some("/v1/requests/x/deny")), None);
        assert_eq!(request_of(None), None);
    }

    #[test]
    fn an_alert_record_is_logged_at_alert_priority() {
        let rec = crate::audit::Record {
            seq: 1,
            time: 0,
            actor: "system".into(),
            event: event::ALERT.to_string(),
            details: "{}".into(),
            prev_hash: String::new(),
            hash: String::new(),
        };
        assert_eq!(crate::audit::syslog_line(&rec).0, Severity::Alert);
    }
}

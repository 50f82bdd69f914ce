//! Alert detection, pure: counts of occurrences per key (a source address, a key
//! fingerprint, a user) in a sliding window; an alert fires once when a count reaches its
//! threshold, then the key is quiet for a cooldown. No clock: every call takes `now`, so
//! tests drive it with an injected clock.
//!
//! Memory is bounded: at most [`MAX_KEYS`] keys are tracked, each with at most its
//! threshold's `count` timestamps (in a cooldown too); when full, stale keys are dropped, and if none is stale, further keys are counted together under [`OVERFLOW`] (a
//! flood from many sources is itself an alert).
//!
//! The service keeps one [`Detector`] per kind of alert (`crate::service` feeds them: see
//! docs/alerts.md for where each is fed) and writes what fires as an `alert` audit record, which the outbox hook turns
//! into an `alert.*` event.

use std::collections::{HashMap, VecDeque};

use super::event::{AlertFacts, Kind};

/// The alert kinds (the part of `alert.<kind>` after the dot), as `jit_ca_alerts_total`
/// labels them.
pub const KINDS: [&str; 6] = [
    "auth_failures",
    "request_burst",
    "off_schedule_approval",
    "self_approval",
    "break_glass",
    "checkpoint_failure",
];

/// Most keys tracked by one detector.
pub const MAX_KEYS: usize = 10_000;
/// The key counted for when [`MAX_KEYS`] are tracked and none is stale.
pub const OVERFLOW: &str = "*";

/// When a detector fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    /// Occurrences within the window that fire (1: every occurrence).
    pub count: u32,
    /// The window, seconds.
    pub window_secs: u64,
    /// After firing, the key stays quiet this long, seconds.
    pub cooldown_secs: u64,
}

/// Defaults (config.toml `[alerts]` overrides them).
pub mod defaults {
    use super::Threshold;

    /// Failed signatures or unknown keys from one source, or for one key.
    pub const AUTH_FAILURES: Threshold = Threshold {
        count: 10,
        window_secs: 60,
        cooldown_secs: 900,
    };
    /// Requests from one user.
    pub const REQUEST_BURST: Threshold = Threshold {
        count: 10,
        window_secs: 600,
        cooldown_secs: 900,
    };
    /// Events that alert every time (self-approval, break-glass): a short cooldown only
    /// against a loop of the same key.
    pub const EVERY: Threshold = Threshold {
        count: 1,
        window_secs: 1,
        cooldown_secs: 0,
    };
}

/// The thresholds of config.toml's `[alerts]` table.
///
/// ```toml
/// [alerts]
/// auth_failures = 10             # failed signatures or unknown keys, per source or key
/// auth_failures_window = "1m"
/// request_burst = 10             # requests of one user
/// request_burst_window = "10m"
/// cooldown = "15m"               # after an alert, the same key is quiet this long
/// ```
/// Self-approval attempts, off-schedule approvals, operator revocations and checkpoint
/// failures alert every time: they have no threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `alert.auth_failures`.
    pub auth_failures: Threshold,
    /// `alert.request_burst`.
    pub request_burst: Threshold,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            auth_failures: defaults::AUTH_FAILURES,
            request_burst: defaults::REQUEST_BURST,
        }
    }
}

/// The keys of `[alerts]`.
pub const KEYS: &[&str] = &[
    "auth_failures",
    "auth_failures_window",
    "request_burst",
    "request_burst_window",
    "cooldown",
];

impl Settings {
    /// Validates the `[alerts]` table (None: the defaults); every problem is pushed to
    /// `errs` as one line naming the key.
    pub fn from_table(table: Option<&toml::Table>, errs: &mut Vec<String>) -> Self {
        let mut out = Self::default();
        let Some(t) = table else {
            return out;
        };
        for k in t.keys().filter(|k| !KEYS.contains(&k.as_str())) {
            errs.push(format!(
                "alerts.{k}: unknown key; [alerts] has {}",
                KEYS.join(", ")
            ));
        }
        let mut count = |key: &str, default: u32| -> u32 {
            match t.get(key) {
                None => default,
                Some(toml::Value::Integer(n)) if (1..=10_000).contains(n) => {
                    u32::try_from(*n).unwrap_or(default)
                }
                Some(v) => {
                    errs.push(format!("alerts.{key}: {v} is not a count from 1 to 10000"));
                    default
                }
            }
        };
        out.auth_failures.count = count("auth_failures", out.auth_failures.count);
        out.request_burst.count = count("request_burst", out.request_burst.count);
        let mut secs = |key: &str, default: u64, min: u64| -> u64 {
            let Some(v) = t.get(key) else {
                return default;
            };
            let parsed = v
                .as_str()
                .ok_or_else(|| format!("{v} is not a duration such as \"10m\""))
                .and_then(|s| jit_common::time::parse_duration(s).map(u64::from));
            match parsed {
                Ok(d) if (min..=24 * 3600).contains(&d) => d,
                Ok(d) => {
                    errs.push(format!(
                        "alerts.{key}: {d}s is out of range; use {min}s to 1d"
                    ));
                    default
                }
                Err(e) => {
                    errs.push(format!("alerts.{key}: {e}"));
                    default
                }
            }
        };
        out.auth_failures.window_secs =
            secs("auth_failures_window", out.auth_failures.window_secs, 1);
        out.request_burst.window_secs =
            secs("request_burst_window", out.request_burst.window_secs, 1);
        let cooldown = secs("cooldown", defaults::AUTH_FAILURES.cooldown_secs, 0);
        out.auth_failures.cooldown_secs = cooldown;
        out.request_burst.cooldown_secs = cooldown;
        out
    }
}

#[derive(Debug, Default)]
struct Seen {
    times: VecDeque<u64>,
    quiet_until: u64,
}

/// One kind of alert's counts.
#[derive(Debug)]
pub struct Detector {
    threshold: Threshold,
    keys: HashMap<String, Seen>,
    /// When stale keys were last dropped: at most once a second, so a flood of new keys
    /// does not make every observation scan every key.
    pruned_at: Option<u64>,
}

impl Detector {
    /// A detector that fires at `threshold`.
    pub fn new(threshold: Threshold) -> Self {
        Self {
            threshold,
            keys: HashMap::new(),
            pruned_at: None,
        }
    }

    /// Keys tracked now.
    pub fn tracked(&self) -> usize {
        self.keys.len()
    }

    /// Records one occurrence for `key` at `now`; returns the count in the window when this
    /// occurrence makes the alert fire, and starts the key's cooldown (use it when every
    /// detection is raised).
    pub fn observe(&mut self, now: u64, key: &str) -> Option<u32> {
        let n = self.detect(now, key)?;
        self.fired(now, key);
        Some(n)
    }

    /// Records one occurrence for `key` at `now`; returns the count in the window when the
    /// key is at its threshold and not in its cooldown. The cooldown starts only with
    /// [`Detector::fired`], called when the alert was actually raised: a detection that is
    /// not raised (the service's alert budget) leaves no cooldown behind, so the key's next
    /// occurrence is detected again.
    pub fn detect(&mut self, now: u64, key: &str) -> Option<u32> {
        let t = self.threshold;
        let key = if self.keys.contains_key(key) || self.keys.len() < MAX_KEYS {
            key
        } else if self.pruned_at == Some(now) {
            OVERFLOW
        } else {
            self.pruned_at = Some(now);
            self.keys.retain(|_, s| {
                s.quiet_until > now
                    || s.times
                        .back()
                        .is_some_and(|last| now.saturating_sub(*last) < t.window_secs)
            });
            if self.keys.len() < MAX_KEYS {
                key
            } else {
                OVERFLOW
            }
        };
        let seen = self.keys.entry(key.to_string()).or_default();
        while seen
            .times
            .front()
            .is_some_and(|first| now.saturating_sub(*first) >= t.window_secs)
        {
            seen.times.pop_front();
        }
        seen.times.push_back(now);
        // Only the newest `count` matter for "at least `count` within the window": memory
        // per key is bounded whatever the rate, in a cooldown too.
        let keep = usize::try_from(t.count.max(1)).unwrap_or(usize::MAX);
        while seen.times.len() > keep {
            seen.times.pop_front();
        }
        if now < seen.quiet_until {
            return None;
        }
        let n = u32::try_from(seen.times.len()).unwrap_or(u32::MAX);
        (n >= t.count.max(1)).then_some(n)
    }

    /// The alert of `key`'s detection at `now` was raised: its count starts afresh and it
    /// is quiet for the cooldown. A key that is not tracked was counted under [`OVERFLOW`].
    pub fn fired(&mut self, now: u64, key: &str) {
        let cooldown = self.threshold.cooldown_secs;
        let seen = match self.keys.get_mut(key) {
            Some(s) => Some(s),
            None => self.keys.get_mut(OVERFLOW),
        };
        if let Some(seen) = seen {
            seen.times.clear();
            seen.quiet_until = now.saturating_add(cooldown);
        }
    }

    /// Timestamps held for `key` (tests: memory per key).
    #[cfg(test)]
    fn held(&self, key: &str) -> usize {
        self.keys.get(key).map_or(0, |s| s.times.len())
    }
}

/// What an `alert.auth_failures` says: `source` (an address) or `key` (a fingerprint,
/// with the `user` it is registered to when it is); neither: from many sources.
pub fn auth_failures(
    source: Option<&str>,
    key: Option<&str>,
    user: Option<&str>,
    count: u32,
    window_secs: u64,
) -> (Kind, AlertFacts) {
    let key_of = |k: &str| match user {
        Some(u) => format!("key {k} of {u}"),
        None => format!("key {k}"),
    };
    let whom = match (source, key) {
        (Some(s), Some(k)) => format!("from {s} with {}", key_of(k)),
        (Some(s), None) => format!("from {s}"),
        (None, Some(k)) => format!("for {}", key_of(k)),
        (None, None) => "from many sources".to_string(),
    };
    (
        Kind::AlertAuthFailures,
        AlertFacts {
            summary: format!(
                "{count} failed signatures or unknown keys {whom} within {}",
                jit_common::time::format_duration(window_secs)
            ),
            check: "whose client this is (a wrong or removed key, a clock far off) or whether \
                    someone is probing the CA or replaying captured calls; the auth_failure \
                    records of the audit trail name each call"
                .into(),
            source: source.map(str::to_string),
            user: key.and(user).map(str::to_string),
            key: key.map(str::to_string),
            count: Some(u64::from(count)),
            window_secs: Some(window_secs),
            users: Vec::new(),
        },
    )
}

/// What the `alert.auth_failures` of a flood says when the alert budget of a period is
/// spent: at least `count` failures from many sources since the period began
/// `period_secs` ago (more may follow; the period's later failures raise nothing more from
/// sources or unknown keys; registered keys have a budget of their own).
pub fn auth_flood(count: u32, period_secs: u64) -> (Kind, AlertFacts) {
    let (kind, mut facts) = auth_failures(None, None, None, count, period_secs);
    facts.summary = format!(
        "at least {count} failed signatures or unknown keys from many sources within {}; \
         further alerts for sources and unknown keys are held back until that much time has \
         passed",
        jit_common::time::format_duration(period_secs)
    );
    (kind, facts)
}

/// How many users the summary of held-back registered-key alerts names (the rest are
/// counted).
pub const SUMMARY_NAMES: usize = 20;

/// What the `alert.auth_failures` summary of a period says when registered keys reached the
/// threshold after the period's `budget` alerts for registered keys: `keys` keys in all,
/// `named` the users of the first of them (at most [`SUMMARY_NAMES`] are shown, the rest
/// counted). `count` is the number of keys.
pub fn auth_registered_summary(
    named: &[&str],
    keys: u32,
    budget: u32,
    period_secs: u64,
) -> (Kind, AlertFacts) {
    let shown = named.get(..SUMMARY_NAMES).unwrap_or(named);
    let rest = usize::try_from(keys)
        .unwrap_or(usize::MAX)
        .saturating_sub(shown.len());
    let more = if rest > 0 {
        format!(" and {rest} more")
    } else {
        String::new()
    };
    (
        Kind::AlertAuthFailures,
        AlertFacts {
            summary: format!(
                "{keys} more registered keys reached the auth_failures threshold within {} \
                 (alerts of their own held back: the period's {budget} alerts for registered \
                 keys were spent): {}{more}",
                jit_common::time::format_duration(period_secs),
                shown.join(", ")
            ),
            check: "whose clients these are (wrong or removed keys, clocks far off) or whether \
                    someone holding these users' public keys is probing the CA; the record's \
                    `users` lists every user whose key was held back"
                .into(),
            source: None,
            user: None,
            key: None,
            count: Some(u64::from(keys)),
            window_secs: Some(period_secs),
            users: Vec::new(),
        },
    )
}

/// What an `alert.request_burst` says.
pub fn request_burst(user: &str, count: u32, window_secs: u64) -> (Kind, AlertFacts) {
    (
        Kind::AlertRequestBurst,
        AlertFacts {
            summary: format!(
                "{user} made {count} requests within {} (stored or refused)",
                jit_common::time::format_duration(window_secs)
            ),
            check: format!(
                "whether {user} is scripting requests or their key is used by someone else \
                 (jit-ca user list; the request and request_refused records of the audit \
                 trail)"
            ),
            source: None,
            user: Some(user.to_string()),
            key: None,
            count: Some(u64::from(count)),
            window_secs: Some(window_secs),
            users: Vec::new(),
        },
    )
}

/// What an `alert.self_approval` says.
pub fn self_approval(user: &str, request_id: &str) -> (Kind, AlertFacts) {
    (
        Kind::AlertSelfApproval,
        AlertFacts {
            summary: format!("{user} tried to approve their own request {request_id}"),
            check: format!(
                "whether {user} misunderstands the process or is trying to bypass approval \
                 (the approval_refused record names the key used)"
            ),
            source: None,
            user: Some(user.to_string()),
            key: None,
            count: Some(1),
            window_secs: None,
            users: Vec::new(),
        },
    )
}

/// What an `alert.off_schedule_approval` says: `approver` approved `request_id` (role
/// `role`) at a time its schedule (`schedule`, as written) says is closed. Not refused: the
/// schedule says when a role may be requested; an approval given outside it is unusual
/// (an approver's key used at night, a request left pending across the window's end).
pub fn off_schedule_approval(
    approver: &str,
    request_id: &str,
    role: &str,
    schedule: &str,
) -> (Kind, AlertFacts) {
    (
        Kind::AlertOffSchedule,
        AlertFacts {
            summary: format!(
                "{approver} approved request {request_id} for role {role} outside its schedule \
                 ({schedule})"
            ),
            check: format!(
                "with {approver} that they gave this approval (its approval record keeps the \
                 signed call) and why it could not wait for the role's hours"
            ),
            source: None,
            user: Some(approver.to_string()),
            key: None,
            count: Some(1),
            window_secs: None,
            users: Vec::new(),
        },
    )
}

/// The details of the `alert` audit record of an alert: `kind` (the part after `alert.`),
/// the facts' fields that are set, and the request and role it concerns, if any.
pub fn record_details(
    kind: Kind,
    facts: &AlertFacts,
    request_id: Option<&str>,
    role: Option<&str>,
) -> serde_json::Value {
    let name = kind
        .as_str()
        .strip_prefix("alert.")
        .unwrap_or(kind.as_str());
    let mut d = serde_json::Map::new();
    d.insert("kind".into(), name.into());
    d.insert("summary".into(), facts.summary.clone().into());
    d.insert("check".into(), facts.check.clone().into());
    for (k, v) in [
        ("source", facts.source.as_deref()),
        ("user", facts.user.as_deref()),
        ("key", facts.key.as_deref()),
        ("request_id", request_id),
        ("role", role),
    ] {
        if let Some(v) = v {
            d.insert(k.into(), v.into());
        }
    }
    for (k, v) in [("count", facts.count), ("window_secs", facts.window_secs)] {
        if let Some(v) = v {
            d.insert(k.into(), v.into());
        }
    }
    if !facts.users.is_empty() {
        d.insert("users".into(), facts.users.clone().into());
    }
    serde_json::Value::Object(d)
}

/// What an `alert.break_glass` says about an operator revocation (`jit-ca revoke-grant`).
pub fn operator_revocation(actor: &str, target: &str) -> (Kind, AlertFacts) {
    (
        Kind::AlertBreakGlass,
        AlertFacts {
            summary: format!("{actor} used emergency tooling: jit-ca revoke-grant {target}"),
            check: "that the revocation was intended and who holds the grant's certificate \
                    (the grant_revocation record)"
                .into(),
            source: None,
            user: Some(actor.to_string()),
            key: None,
            count: Some(1),
            window_secs: None,
            users: Vec::new(),
        },
    )
}

/// What an `alert.checkpoint_failure` says; `detail` is the error's text.
pub fn checkpoint_failure(detail: &str) -> (Kind, AlertFacts) {
    (
        Kind::AlertCheckpointFailure,
        AlertFacts {
            summary: format!("signing the audit checkpoint failed: {detail}"),
            check: "the CA's disk, database and grant key (jit-ca audit verify); without fresh \
                    checkpoints a rewritten audit tail goes unnoticed"
                .into(),
            source: None,
            user: None,
            key: None,
            count: None,
            window_secs: None,
            users: Vec::new(),
        },
    )
}

/// What an `alert.checkpoint_failure` says when the audit page found the hash chain broken;
/// `detail` names the first bad record.
pub fn chain_broken(detail: &str) -> (Kind, AlertFacts) {
    (
        Kind::AlertCheckpointFailure,
        AlertFacts {
            summary: format!("the audit hash chain is broken: {detail}"),
            check: "the trail with jit-ca audit verify (--checkpoint FILE with a checkpoint kept \
                    elsewhere); the audit page shows the chain broken until jit-ca restarts"
                .into(),
            source: None,
            user: None,
            key: None,
            count: None,
            window_secs: None,
            users: Vec::new(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Threshold = Threshold {
        count: 3,
        window_secs: 60,
        cooldown_secs: 600,
    };

    #[test]
    fn quiet_below_the_threshold_fires_once_then_cools_down() {
        let mut d = Detector::new(T);
        assert_eq!(d.observe(0, "10.0.0.7"), None);
        assert_eq!(d.observe(10, "10.0.0.7"), None);
        // Another key counts on its own.
        assert_eq!(d.observe(20, "10.0.0.8"), None);
        assert_eq!(d.observe(59, "10.0.0.7"), Some(3));
        // Quiet in the cooldown, however many.
        for t in 60..120 {
            assert_eq!(d.observe(t, "10.0.0.7"), None);
        }
        // After it, the window counts afresh (only what is in the window).
        assert_eq!(d.observe(659, "10.0.0.7"), None);
        assert_eq!(d.observe(700, "10.0.0.7"), None);
        assert_eq!(d.observe(701, "10.0.0.7"), Some(3));
    }

    #[test]
    fn occurrences_outside_the_window_do_not_count() {
        let mut d = Detector::new(T);
        for t in [0, 60, 120, 180, 240] {
            assert_eq!(d.observe(t, "k"), None, "{t}");
        }
        assert_eq!(d.observe(241, "k"), None);
        assert_eq!(d.observe(242, "k"), Some(3));
    }

    #[test]
    fn every_occurrence_alerts_with_count_one() {
        let mut d = Detector::new(defaults::EVERY);
        assert_eq!(d.observe(5, "alice"), Some(1));
        assert_eq!(d.observe(5, "alice"), Some(1));
        assert_eq!(d.observe(6, "bob"), Some(1));
    }

    #[test]
    fn memory_is_bounded_and_a_flood_still_alerts() {
        let mut d = Detector::new(T);
        for i in 0..MAX_KEYS {
            assert_eq!(d.observe(0, &format!("k{i}")), None);
        }
        assert_eq!(d.tracked(), MAX_KEYS);
        // Full, none stale: new keys count together.
        assert_eq!(d.observe(1, "new1"), None);
        assert_eq!(d.observe(1, "new2"), None);
        assert_eq!(d.observe(1, "new3"), Some(3));
        assert_eq!(d.tracked(), MAX_KEYS + 1);
        // Later, stale keys are dropped to make room.
        assert_eq!(d.observe(100, "late"), None);
        assert!(d.tracked() <= 3, "{}", d.tracked());
    }

    #[test]
    fn kinds_are_the_alert_kinds() {
        let all: Vec<_> = Kind::ALL
            .iter()
            .filter(|k| k.is_alert())
            .map(|k| k.as_str().trim_start_matches("alert.").to_string())
            .collect();
        let mut all = all;
        all.sort();
        let mut ours: Vec<_> = KINDS.iter().map(|k| (*k).to_string()).collect();
        ours.sort();
        assert_eq!(all, ours);
    }

    #[test]
    fn a_key_in_cooldown_keeps_at_most_count_times() {
        let t = Threshold {
            count: 3,
            window_secs: 1000,
            cooldown_secs: 1000,
        };
        let mut d = Detector::new(t);
        for _ in 0..2 {
            assert_eq!(d.observe(0, "k"), None);
        }
        assert_eq!(d.observe(0, "k"), Some(3));
        for i in 0..100_000u64 {
            assert_eq!(d.observe(1 + i % 900, "k"), None);
        }
        assert!(d.held("k") <= 3, "{}", d.held("k"));
        // The overflow key too.
        let mut d = Detector::new(t);
        for i in 0..MAX_KEYS {
            d.observe(0, &format!("k{i}"));
        }
        for i in 0..100_000u64 {
            d.observe(1, &format!("fresh{i}"));
        }
        assert!(d.held(OVERFLOW) <= 3, "{}", d.held(OVERFLOW));
    }

    #[test]
    fn a_detection_not_raised_leaves_no_cooldown() {
        let mut d = Detector::new(T);
        assert_eq!(d.detect(0, "k"), None);
        assert_eq!(d.detect(1, "k"), None);
        assert_eq!(d.detect(2, "k"), Some(3));
        // Not raised: the next occurrence is detected again.
        assert_eq!(d.detect(3, "k"), Some(3));
        d.fired(3, "k");
        assert_eq!(d.detect(4, "k"), None);
        assert_eq!(d.detect(603, "k"), None);
        // fired() on a key counted under the overflow key cools the overflow key down.
        let mut d = Detector::new(T);
        for i in 0..MAX_KEYS {
            d.detect(0, &format!("k{i}"));
        }
        d.detect(1, "a");
        d.detect(1, "b");
        assert_eq!(d.detect(1, "c"), Some(3));
        d.fired(1, "c");
        assert_eq!(d.detect(1, "d"), None);
    }

    fn settings(text: &str) -> Result<Settings, Vec<String>> {
        let doc: toml::Table = toml::from_str(text).unwrap();
        let table = doc.get("alerts").and_then(toml::Value::as_table);
        let mut errs = Vec::new();
        let s = Settings::from_table(table, &mut errs);
        if errs.is_empty() { Ok(s) } else { Err(errs) }
    }

    #[test]
    fn the_alerts_table_with_its_defaults_and_one_line_errors() {
        assert_eq!(settings("").unwrap(), Settings::default());
        let s = settings(
            "[alerts]\nauth_failures = 5\nauth_failures_window = \"30s\"\nrequest_burst = 3\n\
             request_burst_window = \"1h\"\ncooldown = \"0s\"\n",
        )
        .unwrap();
        assert_eq!(
            s.auth_failures,
            Threshold {
                count: 5,
                window_secs: 30,
                cooldown_secs: 0
            }
        );
        assert_eq!(
            s.request_burst,
            Threshold {
                count: 3,
                window_secs: 3600,
                cooldown_secs: 0
            }
        );
        let e = settings(
            "[alerts]\nauth_failure = 5\nrequest_burst = 0\nauth_failures_window = 60\ncooldown = \"2d\"\n",
        )
        .unwrap_err();
        assert_eq!(e.len(), 4, "{e:?}");
        assert_eq!(
            e[0],
            "alerts.auth_failure: unknown key; [alerts] has auth_failures, auth_failures_window, request_burst, request_burst_window, cooldown"
        );
        assert_eq!(
            e[1],
            "alerts.request_burst: 0 is not a count from 1 to 10000"
        );
        assert_eq!(
            e[2],
            "alerts.auth_failures_window: 60 is not a duration such as \"10m\""
        );
        assert_eq!(
            e[3],
            "alerts.cooldown: 172800s is out of range; use 0s to 1d"
        );
        assert!(e.iter().all(|l| !l.contains('\n')));
    }

    /// docs/alerts.md describes every alert kind, and its `[alerts]` example is the defaults.
    #[test]
    fn docs_alerts_md_names_every_kind_and_the_defaults() {
        const DOC: &str =
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/alerts.md"));
        for k in Kind::ALL.iter().filter(|k| k.is_alert()) {
            let name = k.as_str().trim_start_matches("alert.");
            assert!(
                DOC.contains(&format!("### `{name}`")),
                "docs/alerts.md misses {name}"
            );
            assert!(
                DOC.contains(&format!("{{\"kind\": \"{name}\"")),
                "no example of {name}"
            );
        }
        let block = DOC
            .split("```toml\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .unwrap();
        for key in KEYS {
            assert!(block.contains(&format!("\n{key} = ")), "{key}");
        }
        assert_eq!(settings(block).unwrap(), Settings::default());
        // Hosts write no metric about pam_jit denials: they come from its syslog lines.
        let flat = DOC.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            !flat.contains("pam_jit denials) is reported by host metrics"),
            "docs/alerts.md says host metrics report pam_jit denials"
        );
        assert!(flat.contains("packaging/prometheus/pam_jit.mtail"));
        // Each example is exactly what the CA writes for those facts.
        let mut seen = 0;
        for ex in DOC.split("```json\n").skip(1) {
            let ex = ex.split("```").next().unwrap();
            let v: serde_json::Value = serde_json::from_str(ex).unwrap();
            let st = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            let n = u32::try_from(v["count"].as_u64().unwrap_or(0)).unwrap();
            let w = v["window_secs"].as_u64().unwrap_or(0);
            let summary = st("summary");
            let after = |pre: &str| summary.rsplit(pre).next().unwrap().to_string();
            let (kind, facts) = match st("kind").as_str() {
                "auth_failures" if summary.starts_with("at least") => auth_flood(n, w),
                "auth_failures" => auth_failures(
                    v["source"].as_str(),
                    v["key"].as_str(),
                    v["user"].as_str(),
                    n,
                    w,
                ),
                "request_burst" => request_burst(&st("user"), n, w),
                "self_approval" => self_approval(&st("user"), &st("request_id")),
                "off_schedule_approval" => {
                    let sched = after("schedule (");
                    let sched = sched.trim_end_matches(')');
                    off_schedule_approval(&st("user"), &st("request_id"), &st("role"), sched)
                }
                "break_glass" => operator_revocation(&st("user"), &after("revoke-grant ")),
                "checkpoint_failure" => checkpoint_failure(&after("failed: ")),
                other => panic!("unknown kind {other}"),
            };
            let want = record_details(kind, &facts, v["request_id"].as_str(), v["role"].as_str());
            assert_eq!(v, want, "docs/alerts.md example");
            seen += 1;
        }
        assert_eq!(seen, 6);
    }

    #[test]
    fn alerts_say_what_happened_and_what_to_check() {
        let (k, a) = auth_failures(Some("10.0.0.7"), None, None, 12, 60);
        assert_eq!(k, Kind::AlertAuthFailures);
        assert_eq!(
            a.summary,
            "12 failed signatures or unknown keys from 10.0.0.7 within 1m"
        );
        assert!(a.check.starts_with("whose client this is"));
        let (_, a) = auth_failures(None, Some("SHA256:abc"), None, 10, 60);
        assert!(a.summary.ends_with("for key SHA256:abc within 1m"));
        let (_, a) = auth_failures(None, Some("SHA256:abc"), Some("alice"), 10, 60);
        assert!(a.summary.ends_with("for key SHA256:abc of alice within 1m"));
        assert_eq!(a.user.as_deref(), Some("alice"));
        let (_, a) = auth_flood(50, 900);
        assert!(
            a.summary.starts_with("at least 50 failed signatures"),
            "{}",
            a.summary
        );
        assert!(a.source.is_none() && a.key.is_none());
        let (k, a) = request_burst("alice", 10, 600);
        assert_eq!(k, Kind::AlertRequestBurst);
        assert_eq!(
            a.summary,
            "alice made 10 requests within 10m (stored or refused)"
        );
        assert_eq!(self_approval("alice", "r-1").0, Kind::AlertSelfApproval);
        assert_eq!(operator_revocation("root", "g-1").0, Kind::AlertBreakGlass);
        assert_eq!(
            checkpoint_failure("disk full").1.summary,
            "signing the audit checkpoint failed: disk full"
        );
        let (k, a) = off_schedule_approval("bob", "r-1", "db-admin", "mon-fri 09:00-17:00 UTC");
        assert_eq!(k, Kind::AlertOffSchedule);
        assert_eq!(
            a.summary,
            "bob approved request r-1 for role db-admin outside its schedule (mon-fri 09:00-17:00 UTC)"
        );
        assert_eq!(
            record_details(k, &a, Some("r-1"), Some("db-admin")),
            serde_json::json!({"kind": "off_schedule_approval", "summary": a.summary,
                "check": a.check, "user": "bob", "request_id": "r-1", "role": "db-admin",
                "count": 1})
        );
        let (k, a) = checkpoint_failure("disk full");
        assert_eq!(
            record_details(k, &a, None, None),
            serde_json::json!({"kind": "checkpoint_failure", "summary": a.summary, "check": a.check})
        );
        for (_, a) in [
            auth_failures(None, None, None, 1, 1),
            auth_flood(1, 1),
            request_burst("u", 1, 1),
            self_approval("u", "r"),
            operator_revocation("u", "g"),
            checkpoint_failure("d"),
            off_schedule_approval("u", "r", "x", "s"),
        ] {
            assert!(!a.summary.is_empty() && !a.check.is_empty());
            assert!(!a.summary.contains('\n') && !a.check.contains('\n'));
        }
    }
}

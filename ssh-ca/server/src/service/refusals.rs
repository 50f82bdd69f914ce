//! What refused calls leave in the audit trail: bounded records, rate-limited per source.
//!
//! Anyone who can reach the port can make the CA refuse a call, and every refusal used to
//! append a record holding the path and query as sent: a flood of bad calls filled the
//! trail. Now every record's strings and lists are cut to a small size ([`bound`]), and in
//! each window of [`WINDOW_SECS`] only the first [`PER_SOURCE`] refusals of a source address
//! (IPv6: its /64) are recorded in full, at most [`GLOBAL`] from all sources; the others are
//! counted per source and event and written as one `refusals_summarised` record when the
//! window ends. The summaries of a window are bounded too ([`MAX_SUMMARIES`], then one
//! catch-all entry per event), so the trail grows by a bounded number of records per window
//! however the calls are spread (many IPv6 /64s included). The metrics still count every refusal.

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::{Value, json};

/// Length of a rate-limit window, in seconds.
pub const WINDOW_SECS: u64 = 60;
/// Refusals of one source recorded in full per window.
pub const PER_SOURCE: u32 = 10;
/// Refusals of all sources recorded in full per window.
pub const GLOBAL: u32 = 200;
/// Sources tracked per window for the per-source limit; beyond, one catch-all source.
pub const MAX_TRACKED: usize = 1000;
/// Source-event pairs summarised one by one per window; beyond, one catch-all summary per
/// event (so the summaries themselves cannot flood the trail from many addresses).
pub const MAX_SUMMARIES: usize = 32;
/// Longest string kept in a refusal record, in bytes.
pub const MAX_TEXT: usize = 256;
/// Most elements of a list (or members of an object) kept in a refusal record.
const MAX_LIST: usize = 16;
/// Deepest nesting kept in a refusal record.
const MAX_DEPTH: usize = 4;
/// Distinct actors named in a summary.
const MAX_ACTORS: usize = 5;
/// The source key of refusals whose peer address is unknown.
const UNKNOWN: &str = "unknown";
/// The catch-all source key once [`MAX_TRACKED`] sources are tracked.
const OTHER: &str = "other";

/// Cuts `s` to at most `max` bytes (on a character boundary), saying how much was cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...[{} more bytes]", &s[..end], s.len() - end)
}

/// Bounds a JSON value for a refusal record: strings to [`MAX_TEXT`] bytes, lists and
/// objects to [`MAX_LIST`] entries, nesting to [`MAX_DEPTH`].
pub fn bound(v: Value) -> Value {
    bound_at(v, 0)
}

fn bound_at(v: Value, depth: usize) -> Value {
    match v {
        Value::String(s) => Value::String(truncate(&s, MAX_TEXT)),
        Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => json!("...[nested too deep]"),
        Value::Array(a) => {
            let n = a.len();
            let mut out: Vec<Value> = a
                .into_iter()
                .take(MAX_LIST)
                .map(|x| bound_at(x, depth + 1))
                .collect();
            if n > MAX_LIST {
                out.push(json!(format!("...[{} more]", n - MAX_LIST)));
            }
            Value::Array(out)
        }
        Value::Object(o) => {
            let n = o.len();
            let mut out = serde_json::Map::new();
            for (k, x) in o.into_iter().take(MAX_LIST) {
                out.insert(truncate(&k, MAX_TEXT), bound_at(x, depth + 1));
            }
            if n > MAX_LIST {
                out.insert(
                    "...".into(),
                    json!(format!("{} more members", n - MAX_LIST)),
                );
            }
            Value::Object(out)
        }
        other => other,
    }
}

/// The rate-limit key of a peer address: IPv4 as is, IPv6 by its /64 (one host usually
/// owns a whole /64).
pub(super) fn source_key(source: Option<IpAddr>) -> String {
    match source.map(|a| a.to_canonical()) {
        None => UNKNOWN.to_string(),
        Some(IpAddr::V4(a)) => a.to_string(),
        Some(IpAddr::V6(a)) => {
            let s = a.segments();
            let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{prefix}/64")
        }
    }
}

#[derive(Debug, Default)]
struct Suppressed {
    count: u64,
    actors: Vec<String>,
}

/// One summary record: refusals of one source and event not recorded in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    source: String,
    event: String,
    count: u64,
    actors: Vec<String>,
    window_start: u64,
    window_end: u64,
}

impl Summary {
    /// The record's details.
    pub fn details(&self) -> Value {
        json!({
            "source": self.source,
            "event": self.event,
            "count": self.count,
            "actors": self.actors,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "note": format!(
                "refusals beyond the first {PER_SOURCE} per source (or {GLOBAL} in all) per {WINDOW_SECS}s window are counted, not recorded one by one"
            ),
        })
    }

    /// How many refusals it stands for.
    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// The state of the current window.
#[derive(Debug, Default)]
pub struct Limiter {
    window_start: u64,
    full_total: u32,
    per_source: HashMap<String, u32>,
    suppressed: HashMap<(String, String), Suppressed>,
}

impl Limiter {
    /// Whether a refusal from `source` by `actor` (event `ev`) at `now` is recorded in full;
    /// also returns the summaries of a window that ended (to be written first).
    pub fn admit(
        &mut self,
        now: u64,
        source: Option<IpAddr>,
        actor: &str,
        ev: &str,
    ) -> (bool, Vec<Summary>) {
        let due = self.due(now);
        let mut src = source_key(source);
        if !self.per_source.contains_key(&src) && self.per_source.len() >= MAX_TRACKED {
            src = OTHER.to_string();
        }
        let n = self.per_source.entry(src.clone()).or_insert(0);
        if *n < PER_SOURCE && self.full_total < GLOBAL {
            *n += 1;
            self.full_total += 1;
            return (true, due);
        }
        let mut key = (src, ev.to_string());
        if !self.suppressed.contains_key(&key) && self.suppressed.len() >= MAX_SUMMARIES {
            key.0 = OTHER.to_string();
        }
        let entry = self.suppressed.entry(key).or_default();
        entry.count += 1;
        if entry.actors.len() < MAX_ACTORS && !entry.actors.iter().any(|a| a == actor) {
            entry.actors.push(truncate(actor, MAX_TEXT));
        }
        (false, due)
    }

    /// The summaries of the window if it has ended at `now` (and starts a new one).
    pub fn due(&mut self, now: u64) -> Vec<Summary> {
        if now < self.window_start.saturating_add(WINDOW_SECS) {
            return Vec::new();
        }
        let (start, end) = (self.window_start, self.window_start + WINDOW_SECS);
        let mut out: Vec<Summary> = self
            .suppressed
            .drain()
            .map(|((source, event), s)| Summary {
                source,
                event,
                count: s.count,
                actors: s.actors,
                window_start: start,
                window_end: end,
            })
            .collect();
        out.sort_by(|a, b| (&a.source, &a.event).cmp(&(&b.source, &b.event)));
        self.window_start = now - now % WINDOW_SECS;
        self.full_total = 0;
        self.per_source.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_from_one_source_is_summarised() {
        let mut l = Limiter::default();
        let src = Some(IpAddr::from([192, 0, 2, 7]));
        let t = 1_000_020;
        let _ = l.due(t);
        let full = (0..10_000)
            .filter(|i| {
                l.admit(t + i % 30, src, &format!("SHA256:k{i}"), "auth_failure")
                    .0
            })
            .count();
        assert_eq!(full, PER_SOURCE as usize);
        let due = l.due(t + WINDOW_SECS);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].count(), 10_000 - u64::from(PER_SOURCE));
        assert_eq!(due[0].actors.len(), MAX_ACTORS);
        // A new window records in full again.
        assert!(l.admit(t + WINDOW_SECS, src, "x", "auth_failure").0);
    }

    #[test]
    fn many_sources_are_bounded() {
        let mut l = Limiter::default();
        let _ = l.due(60);
        let mut full = 0;
        for i in 0u32..20_000 {
            let src = Some(IpAddr::from(i.to_be_bytes()));
            if l.admit(60, src, "a", "rejected").0 {
                full += 1;
            }
        }
        assert_eq!(full, GLOBAL as usize);
        let due = l.due(120);
        assert!(due.len() <= MAX_SUMMARIES + 1, "{}", due.len());
        assert_eq!(
            due.iter().map(Summary::count).sum::<u64>(),
            20_000 - u64::from(GLOBAL)
        );
    }

    #[test]
    fn summaries_are_bounded_however_many_sources() {
        // One refusal from each of 20,000 IPv6 /64s (a /48), two kinds of refusal.
        let mut l = Limiter::default();
        let _ = l.due(60);
        let mut full = 0u64;
        for i in 0u16..20_000 {
            let src: IpAddr = format!("2001:db8:7:{i:x}::1").parse().unwrap();
            let ev = ["auth_failure", "rejected"][usize::from(i % 2)];
            if l.admit(60, Some(src), "a", ev).0 {
                full += 1;
            }
        }
        let due = l.due(120);
        assert!(due.len() <= MAX_SUMMARIES + 2, "{} summaries", due.len());
        assert_eq!(due.iter().map(Summary::count).sum::<u64>() + full, 20_000);
    }

    #[test]
    fn ipv6_sources_share_their_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(source_key(Some(a)), source_key(Some(b)));
        let m: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(source_key(Some(m)), "192.0.2.1");
    }

    #[test]
    fn records_are_bounded() {
        let long = "x".repeat(100_000);
        let v = bound(json!({"path": format!("/v1/{long}"), "hosts": vec![long.clone(); 100]}));
        let text = v.to_string();
        assert!(text.len() < 8 * 1024, "{}", text.len());
        assert!(v["path"].as_str().unwrap().starts_with("/v1/xxx"));
        assert_eq!(truncate("é", 1), "...[2 more bytes]");
    }
}

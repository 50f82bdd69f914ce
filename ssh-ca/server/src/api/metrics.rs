//! Prometheus text exposition (format 0.0.4) of request counts by route and status, a
//! latency histogram, and the CA's counters. Small enough to write by hand.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use crate::service::Stats;

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Route {
    /// (method, status) -> count.
    requests: BTreeMap<(String, u16), u64>,
    latency: Histogram,
}

/// By route; looked up by `&str`, so the steady state allocates nothing per request.
#[derive(Debug, Default)]
struct Inner {
    routes: HashMap<String, Route>,
}

/// HTTP metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// Notification delivery figures (`notify::worker`).
#[derive(Debug, Clone, Default)]
pub struct NotifyGauges {
    /// Per sink: attempts by outcome.
    pub deliveries: Vec<(String, [(crate::notify::worker::Counted, u64); 3])>,
    /// Pending deliveries (None: could not be read; the sample is left out).
    pub depth: Option<u64>,
    /// Age of the oldest event not delivered to a sink, seconds (0: none).
    pub oldest_undelivered_secs: Option<u64>,
}

/// Store figures shown next to the counters.
#[derive(Debug, Clone, Default)]
pub struct StoreGauges {
    /// (group-commit batches, changes in them).
    pub commits: (u64, u64),
    /// Nonces remembered.
    pub nonces: usize,
    /// Stored minus served revocation sequence (replicas on PostgreSQL; 0 on SQLite).
    pub revocation_lag: u64,
    /// The host-document cache.
    pub host_cache: crate::service::CacheStats,
    /// Notification deliveries.
    pub notify: NotifyGauges,
}

impl Metrics {
    /// Records one request.
    pub fn observe(&self, method: &str, route: &str, status: u16, secs: f64) {
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !g.routes.contains_key(route) {
            g.routes.insert(route.to_string(), Route::default());
        }
        let Some(r) = g.routes.get_mut(route) else {
            return;
        };
        match r
            .requests
            .iter_mut()
            .find(|((m, s), _)| m == method && *s == status)
        {
            Some((_, n)) => *n += 1,
            None => {
                r.requests.insert((method.to_string(), status), 1);
            }
        }
        let h = &mut r.latency;
        if h.counts.is_empty() {
            h.counts = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// The exposition text.
    pub fn render(&self, stats: &Stats, revocation_sequence: u64, store: StoreGauges) -> String {
        let g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP jit_ca_http_requests_total HTTP requests by method, route and status."
        );
        let _ = writeln!(out, "# TYPE jit_ca_http_requests_total counter");
        let mut routes: Vec<(&String, &Route)> = g.routes.iter().collect();
        routes.sort_by(|a, b| a.0.cmp(b.0));
        for (r, route) in &routes {
            for ((m, s), n) in &route.requests {
                let _ = writeln!(
                    out,
                    "jit_ca_http_requests_total{{method=\"{m}\",route=\"{}\",status=\"{s}\"}} {n}",
                    escape(r)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP jit_ca_http_request_duration_seconds HTTP request latency by route."
        );
        let _ = writeln!(out, "# TYPE jit_ca_http_request_duration_seconds histogram");
        for (r, route) in &routes {
            let h = &route.latency;
            let r = escape(r);
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "jit_ca_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "jit_ca_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "jit_ca_http_request_duration_seconds_sum{{route=\"{r}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "jit_ca_http_request_duration_seconds_count{{route=\"{r}\"}} {}",
                h.count
            );
        }
        let counters = [
            (
                "jit_ca_certificates_issued_total",
                "Certificates issued (including extensions).",
                &stats.issuances,
            ),
            (
                "jit_ca_auth_failures_total",
                "Rejected API authentications.",
                &stats.auth_failures,
            ),
            (
                "jit_ca_revocations_total",
                "Requests revoked.",
                &stats.revocations,
            ),
            (
                "jit_ca_refusals_summarised_total",
                "Refused calls counted in a refusals_summarised audit record instead of one record each.",
                &stats.refusals_summarised,
            ),
            (
                "jit_ca_legacy_signatures_total",
                "Signed calls accepted with the legacy scheme v1 (accept_v1_signatures = true).",
                &stats.legacy_signatures,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            out,
            "# HELP jit_ca_alerts_total Alerts raised by this CA process, by kind (docs/alerts.md)."
        );
        let _ = writeln!(out, "# TYPE jit_ca_alerts_total counter");
        for (kind, v) in crate::notify::alerts::KINDS.iter().zip(&stats.alerts) {
            let _ = writeln!(
                out,
                "jit_ca_alerts_total{{kind=\"{kind}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP jit_ca_revocation_sequence Sequence number of the published revocation list."
        );
        let _ = writeln!(out, "# TYPE jit_ca_revocation_sequence gauge");
        let _ = writeln!(out, "jit_ca_revocation_sequence {revocation_sequence}");
        let _ = writeln!(
            out,
            "# HELP jit_ca_revocation_lag Stored minus served revocation sequence (another replica's revocation not yet served here; 0 on SQLite)."
        );
        let _ = writeln!(out, "# TYPE jit_ca_revocation_lag gauge");
        let _ = writeln!(out, "jit_ca_revocation_lag {}", store.revocation_lag);
        let (batches, changes) = store.commits;
        let _ = writeln!(
            out,
            "# HELP jit_ca_commit_batches_total Durable SQLite commits made by the group commit."
        );
        let _ = writeln!(out, "# TYPE jit_ca_commit_batches_total counter");
        let _ = writeln!(out, "jit_ca_commit_batches_total {batches}");
        let _ = writeln!(
            out,
            "# HELP jit_ca_commit_changes_total Changes committed by those batches (changes / batches = mean batch size)."
        );
        let _ = writeln!(out, "# TYPE jit_ca_commit_changes_total counter");
        let _ = writeln!(out, "jit_ca_commit_changes_total {changes}");
        let _ = writeln!(
            out,
            "# HELP jit_ca_nonces_remembered Nonces of signed calls held for the replay window."
        );
        let _ = writeln!(out, "# TYPE jit_ca_nonces_remembered gauge");
        let _ = writeln!(out, "jit_ca_nonces_remembered {}", store.nonces);
        let c = store.host_cache;
        for (name, help, v) in [
            (
                "jit_ca_host_grants_cache_documents",
                "Distinct host grants documents (grant sets) cached.",
                c.documents,
            ),
            (
                "jit_ca_host_grants_cache_bytes",
                "Bytes of the cached host grants documents.",
                c.bytes,
            ),
            (
                "jit_ca_host_grants_cache_names",
                "Host names remembered by the host grants cache.",
                c.names,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {v}");
        }
        render_notify(&mut out, &store.notify);
        out
    }
}

/// The notification metrics: attempts by sink and outcome, the outbox depth and the age of
/// the oldest undelivered event (an alert on it finds a stuck receiver).
fn render_notify(out: &mut String, n: &NotifyGauges) {
    let _ = writeln!(
        out,
        "# HELP jit_ca_notify_deliveries_total Notification delivery attempts by sink and outcome (delivered, failed: retried, dead: given up)."
    );
    let _ = writeln!(out, "# TYPE jit_ca_notify_deliveries_total counter");
    for (sink, row) in &n.deliveries {
        for (outcome, v) in row {
            let _ = writeln!(
                out,
                "jit_ca_notify_deliveries_total{{sink=\"{}\",outcome=\"{}\"}} {v}",
                escape(sink),
                outcome.as_str()
            );
        }
    }
    for (name, help, v) in [
        (
            "jit_ca_notify_outbox_depth",
            "Notification deliveries pending (not delivered, not given up).",
            n.depth,
        ),
        (
            "jit_ca_notify_oldest_undelivered_seconds",
            "Age of the oldest event not yet delivered to a sink (0 when none).",
            n.oldest_undelivered_secs,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        if let Some(v) = v {
            let _ = writeln!(out, "{name} {v}");
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/api.md, the published description of the API.
    const API_MD: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md"));

    /// Whether `doc` names `name` as a whole word (not only as a prefix of a longer name).
    fn names(doc: &str, name: &str) -> bool {
        doc.match_indices(name).any(|(i, _)| {
            let next = doc[i + name.len()..].chars().next();
            !matches!(next, Some(c) if c.is_ascii_alphanumeric() || c == '_')
        })
    }

    #[test]
    fn every_metric_is_in_docs_api_md() {
        let m = Metrics::default();
        m.observe("GET", "/v1/health", 200, 0.001);
        let text = m.render(&Stats::default(), 1, StoreGauges::default());
        let metrics: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert!(metrics.len() >= 17, "{metrics:?}");
        for name in [
            "jit_ca_notify_deliveries_total",
            "jit_ca_notify_outbox_depth",
            "jit_ca_notify_oldest_undelivered_seconds",
        ] {
            assert!(metrics.contains(&name), "{name}: {metrics:?}");
        }
        let missing: Vec<&&str> = metrics.iter().filter(|n| !names(API_MD, n)).collect();
        assert!(
            missing.is_empty(),
            "docs/api.md does not name these metrics (add them to the GET /metrics row): {missing:?}"
        );
    }

    #[test]
    fn the_word_check_is_not_fooled_by_prefixes() {
        assert!(names("a `jit_ca_x_total` b", "jit_ca_x_total"));
        assert!(!names("a `jit_ca_x_total_more` b", "jit_ca_x_total"));
        assert!(!names("nothing", "jit_ca_x_total"));
    }
}

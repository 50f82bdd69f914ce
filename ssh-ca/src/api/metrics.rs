//! Prometheus text exposition (format 0.0.4) of request counts by route and status, a
//! latency histogram, and the CA's counters. Small enough to write by hand.

use std::collections::BTreeMap;
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
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
}

/// HTTP metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    /// Records one request.
    pub fn observe(&self, method: &str, route: &str, status: u16, secs: f64) {
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *g.requests
            .entry((method.to_string(), route.to_string(), status))
            .or_insert(0) += 1;
        let h = g.latency.entry(route.to_string()).or_default();
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
    pub fn render(&self, stats: &Stats, revocation_sequence: u64) -> String {
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
        for ((m, r, s), n) in &g.requests {
            let _ = writeln!(
                out,
                "jit_ca_http_requests_total{{method=\"{m}\",route=\"{}\",status=\"{s}\"}} {n}",
                escape(r)
            );
        }
        let _ = writeln!(
            out,
            "# HELP jit_ca_http_request_duration_seconds HTTP request latency by route."
        );
        let _ = writeln!(out, "# TYPE jit_ca_http_request_duration_seconds histogram");
        for (r, h) in &g.latency {
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
        ];
        for (name, help, v) in counters {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            out,
            "# HELP jit_ca_revocation_sequence Sequence number of the published revocation list."
        );
        let _ = writeln!(out, "# TYPE jit_ca_revocation_sequence gauge");
        let _ = writeln!(out, "jit_ca_revocation_sequence {revocation_sequence}");
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

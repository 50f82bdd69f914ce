//! Percentiles and CPU time of the benchmark's measurements.

use serde_json::json;

/// Percentile (0..=100) of sorted microsecond samples, in milliseconds.
pub(crate) fn pct_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

pub(crate) fn summary(mut us: Vec<u64>) -> serde_json::Value {
    us.sort_unstable();
    let mean = if us.is_empty() {
        f64::NAN
    } else {
        us.iter().sum::<u64>() as f64 / us.len() as f64 / 1000.0
    };
    json!({
        "n": us.len(),
        "p50_ms": pct_ms(&us, 50.0),
        "p90_ms": pct_ms(&us, 90.0),
        "p99_ms": pct_ms(&us, 99.0),
        "max_ms": us.last().map_or(f64::NAN, |m| *m as f64 / 1000.0),
        "mean_ms": mean,
    })
}

/// [`summary`] of the successful operations' latencies with `failed` operations (errors,
/// starts the load generator could not make) counted as infinitely slow: they sort after
/// every sample, so a percentile that lands on one is `null` (+inf) in the JSON, and a run
/// with 1 % failures cannot show a p99. `n` counts both; `failed` says how many failed;
/// `max_ms` and `mean_ms` are `null` (+inf) as soon as one failed.
pub(crate) fn summary_with_failures(mut us: Vec<u64>, failed: u64) -> serde_json::Value {
    us.sort_unstable();
    let ok = us.len();
    let n = ok + failed as usize;
    let pct = |p: f64| -> Option<f64> {
        if n == 0 {
            return None;
        }
        let idx = ((p / 100.0) * (n - 1) as f64).round() as usize;
        us.get(idx).map(|v| *v as f64 / 1000.0)
    };
    let (max, mean) = if failed > 0 || ok == 0 {
        (None, None)
    } else {
        (
            us.last().map(|m| *m as f64 / 1000.0),
            Some(us.iter().sum::<u64>() as f64 / ok as f64 / 1000.0),
        )
    };
    json!({
        "n": n,
        "failed": failed,
        "p50_ms": pct(50.0),
        "p90_ms": pct(90.0),
        "p99_ms": pct(99.0),
        "max_ms": max,
        "mean_ms": mean,
    })
}

/// CPU seconds (user + system) this process has used.
pub(crate) fn self_cpu_secs() -> f64 {
    proc_cpu_secs("self").unwrap_or(f64::NAN)
}

/// utime + stime of /proc/PID/stat, in seconds.
pub(crate) fn proc_cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux ABI.
    Some((utime + stime) / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_nearest_rank() {
        let us: Vec<u64> = (1..=100).collect();
        assert_eq!(pct_ms(&us, 0.0), 0.001);
        assert_eq!(pct_ms(&us, 100.0), 0.1);
        assert_eq!(pct_ms(&us, 99.0), 0.099);
        assert!(pct_ms(&[], 50.0).is_nan());
        let s = summary(vec![3000, 1000, 2000]);
        assert_eq!(s["p50_ms"], 2.0);
        assert_eq!(s["max_ms"], 3.0);
        assert_eq!(s["n"], 3);
    }

    #[test]
    fn failures_count_as_infinitely_slow() {
        // No failure: the same figures as `summary`.
        let us: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        let s = summary_with_failures(us.clone(), 0);
        assert_eq!(s["p99_ms"], summary(us.clone())["p99_ms"]);
        assert_eq!(s["failed"], 0);
        assert_eq!(s["max_ms"], 100.0);
        // 2 failures in 102: p99 lands on a failure (+inf, null), p50 does not move far.
        let s = summary_with_failures(us.clone(), 2);
        assert_eq!(s["n"], 102);
        assert_eq!(s["failed"], 2);
        assert!(s["p99_ms"].is_null(), "{s}");
        assert_eq!(s["p50_ms"], 52.0);
        assert!(s["max_ms"].is_null() && s["mean_ms"].is_null());
        // 1 failure in 1,001: p99 is still a sample, but the max is +inf.
        let many: Vec<u64> = (1..=1000).collect();
        let s = summary_with_failures(many, 1);
        assert_eq!(s["p99_ms"], 0.991);
        assert!(s["max_ms"].is_null());
        // Only failures: every percentile is +inf.
        let s = summary_with_failures(Vec::new(), 3);
        assert!(s["p50_ms"].is_null() && s["p99_ms"].is_null());
        assert_eq!(s["n"], 3);
        // Nothing at all: no figure.
        assert!(summary_with_failures(Vec::new(), 0)["p50_ms"].is_null());
    }

    #[test]
    fn proc_stat_parses_this_process() {
        assert!(proc_cpu_secs("self").is_some_and(|s| s >= 0.0));
    }
}

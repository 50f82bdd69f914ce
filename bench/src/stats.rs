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
    fn proc_stat_parses_this_process() {
        assert!(proc_cpu_secs("self").is_some_and(|s| s >= 0.0));
    }
}

//! Seconds since the Unix epoch, and their human forms.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since 1970-01-01T00:00:00Z. Every check in this crate takes one as a parameter.
pub type UnixTime = u64;

/// The current time. Only entry points (the PAM hooks, `main`s) should call this.
pub fn now() -> UnixTime {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `2026-11-23T13:21:32Z`
pub fn format_utc(t: UnixTime) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t)).to_string()
}

/// Parses `30m`, `1h`, `1h 30m`, `90s`, `2d` into seconds.
pub fn parse_duration(s: &str) -> std::result::Result<u64, String> {
    humantime::parse_duration(s.trim())
        .map(|d| d.as_secs())
        .map_err(|e| format!("invalid duration {s:?}: {e} (examples: 30m, 1h, 1h30m, 90s)"))
}

/// `1h 30m`: a duration for people.
pub fn format_duration(secs: u64) -> String {
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("1h 30m"), Ok(5400));
        assert!(parse_duration("soon").is_err());
        assert_eq!(format_duration(5400), "1h 30m");
    }
}

//! Times given on the command line: `jit request --start TIME`.

/// Parses `--start TIME` in the local time zone (TZ, else /etc/localtime): see
/// [`parse_start`].
pub fn start_time(s: &str) -> Result<u64, String> {
    parse_start(s, &jiff::tz::TimeZone::system())
}

/// Parses a start time into Unix seconds: RFC 3339 (`2026-12-01T09:00:00Z`,
/// `2026-12-01T10:00:00+01:00`), or `YYYY-MM-DD HH:MM` in `tz` (a local time a
/// daylight-saving change skips is moved forward by the gap; one it repeats is its first
/// occurrence: jiff's `compatible` rule).
pub fn parse_start(s: &str, tz: &jiff::tz::TimeZone) -> Result<u64, String> {
    let s = s.trim();
    let ts = match s.parse::<jiff::Timestamp>() {
        Ok(ts) => ts,
        Err(_) => {
            let local = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M", s).map_err(|_| {
                format!(
                    "invalid start time {s:?}: use RFC 3339 (2026-12-01T09:00:00Z) or \
                     YYYY-MM-DD HH:MM in your local time zone (or --in 2h)"
                )
            })?;
            local
                .to_zoned(tz.clone())
                .map_err(|e| format!("invalid start time {s:?}: {e}"))?
                .timestamp()
        }
    };
    u64::try_from(ts.as_second())
        .map_err(|_| format!("invalid start time {s:?}: before 1970 (give a later time)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::tz::TimeZone;

    fn ny() -> TimeZone {
        TimeZone::get("America/New_York").unwrap()
    }

    fn utc(s: &str) -> u64 {
        s.parse::<jiff::Timestamp>().unwrap().as_second() as u64
    }

    #[test]
    fn rfc3339_and_local_times() {
        let z = ny();
        assert_eq!(
            parse_start("2026-12-01T09:00:00Z", &z),
            Ok(utc("2026-12-01T09:00:00Z"))
        );
        assert_eq!(
            parse_start("2026-12-01T10:00:00+01:00", &z),
            Ok(utc("2026-12-01T09:00:00Z"))
        );
        // Winter in New York: UTC-5; summer: UTC-4.
        assert_eq!(
            parse_start("2026-12-01 10:00", &z),
            Ok(utc("2026-12-01T15:00:00Z"))
        );
        assert_eq!(
            parse_start(" 2026-07-01 10:00 ", &z),
            Ok(utc("2026-07-01T14:00:00Z"))
        );
        assert_eq!(
            parse_start("2026-12-01 10:00", &TimeZone::UTC),
            Ok(utc("2026-12-01T10:00:00Z"))
        );
    }

    #[test]
    fn daylight_saving_gaps_and_folds() {
        let z = ny();
        // 2026-03-08 02:30 does not exist in New York (02:00 -> 03:00): moved forward.
        assert_eq!(
            parse_start("2026-03-08 02:30", &z),
            Ok(utc("2026-03-08T07:30:00Z"))
        );
        // 2026-11-01 01:30 happens twice: the first (EDT, UTC-4).
        assert_eq!(
            parse_start("2026-11-01 01:30", &z),
            Ok(utc("2026-11-01T05:30:00Z"))
        );
    }

    #[test]
    fn other_spellings_are_refused_with_the_accepted_ones() {
        let want = "invalid start time \"tomorrow\": use RFC 3339 (2026-12-01T09:00:00Z) or \
                    YYYY-MM-DD HH:MM in your local time zone (or --in 2h)";
        assert_eq!(parse_start("tomorrow", &ny()), Err(want.to_string()));
        assert!(parse_start("2026-12-01", &ny()).is_err());
        assert!(parse_start("2026-13-01 10:00", &ny()).is_err());
        assert_eq!(
            parse_start("1969-12-31T23:00:00Z", &ny()),
            Err(
                "invalid start time \"1969-12-31T23:00:00Z\": before 1970 (give a later time)"
                    .into()
            )
        );
    }
}

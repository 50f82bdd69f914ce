//! Points in time ([`UnixTime`]) and lengths of time ([`Secs`]), both whole seconds, and
//! their human forms.
//!
//! Both are newtypes over `u64` so that a duration cannot be passed where a time is expected
//! (and the other way round), while every file and wire format stays a plain integer:
//! they serialize, deserialize, `Display` and `Debug` exactly as the `u64` they wrap.
//! The human forms are [`format_utc`] / [`UnixTime::utc`] and [`format_duration`] /
//! [`Secs::human`].
//!
//! Arithmetic never panics and never wraps: the operators (`t + secs`, `t - secs`,
//! `t - earlier`) saturate, and [`UnixTime::checked_add`] / [`UnixTime::checked_sub`] say
//! when a result does not fit. A bare `u64` operand counts as seconds.
//!
//! The clock is read in one place, [`now`], which only entry points call (a clippy
//! `disallowed-methods` rule in `clippy.toml` refuses `SystemTime::now` elsewhere).

use std::fmt;
use std::ops::{Add, Sub};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Seconds since 1970-01-01T00:00:00Z. Every check in this crate takes one as a parameter.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixTime(u64);

/// A length of time in whole seconds (a validity window, a clock skew, a staleness bound).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secs(u64);

impl UnixTime {
    /// The epoch.
    pub const EPOCH: Self = Self(0);
    /// The latest representable time.
    pub const MAX: Self = Self(u64::MAX);

    /// The time `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs)
    }

    /// Seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// `self + d`, or `None` past [`UnixTime::MAX`].
    pub fn checked_add(self, d: Secs) -> Option<Self> {
        self.0.checked_add(d.0).map(Self)
    }

    /// `self - d`, or `None` before the epoch.
    pub fn checked_sub(self, d: Secs) -> Option<Self> {
        self.0.checked_sub(d.0).map(Self)
    }

    /// `self + d`, at most [`UnixTime::MAX`].
    pub const fn saturating_add(self, d: Secs) -> Self {
        Self(self.0.saturating_add(d.0))
    }

    /// `self - d`, at least the epoch.
    pub const fn saturating_sub(self, d: Secs) -> Self {
        Self(self.0.saturating_sub(d.0))
    }

    /// How long after `earlier` this is; zero if it is not later.
    pub const fn saturating_since(self, earlier: Self) -> Secs {
        Secs(self.0.saturating_sub(earlier.0))
    }

    /// The RFC 3339 form for people, `2026-11-23T13:21:32Z` (see [`format_utc`]).
    pub fn utc(self) -> Utc {
        Utc(self)
    }
}

impl Secs {
    /// Zero seconds.
    pub const ZERO: Self = Self(0);
    /// The longest representable length.
    pub const MAX: Self = Self(u64::MAX);

    /// `secs` seconds.
    pub const fn new(secs: u64) -> Self {
        Self(secs)
    }

    /// `mins` minutes (saturating).
    pub const fn from_mins(mins: u64) -> Self {
        Self(mins.saturating_mul(60))
    }

    /// `hours` hours (saturating).
    pub const fn from_hours(hours: u64) -> Self {
        Self(hours.saturating_mul(3600))
    }

    /// The number of seconds.
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self)
    }

    /// `self + other`, at most [`Secs::MAX`].
    pub const fn saturating_add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }

    /// `self * n`, at most [`Secs::MAX`].
    pub const fn saturating_mul(self, n: u64) -> Self {
        Self(self.0.saturating_mul(n))
    }

    /// The human form, `1h 30m` (see [`format_duration`]).
    pub fn human(self) -> Human {
        Human(self)
    }
}

impl From<u64> for UnixTime {
    fn from(secs: u64) -> Self {
        Self(secs)
    }
}

impl From<UnixTime> for u64 {
    fn from(t: UnixTime) -> Self {
        t.0
    }
}

impl From<u64> for Secs {
    fn from(secs: u64) -> Self {
        Self(secs)
    }
}

impl From<Secs> for u64 {
    fn from(d: Secs) -> Self {
        d.0
    }
}

impl From<Secs> for Duration {
    fn from(d: Secs) -> Self {
        Duration::from_secs(d.0)
    }
}

impl Add<Secs> for UnixTime {
    type Output = UnixTime;
    /// Saturates at [`UnixTime::MAX`].
    fn add(self, d: Secs) -> UnixTime {
        self.saturating_add(d)
    }
}

impl Sub<Secs> for UnixTime {
    type Output = UnixTime;
    /// Saturates at the epoch.
    fn sub(self, d: Secs) -> UnixTime {
        self.saturating_sub(d)
    }
}

impl Add<u64> for UnixTime {
    type Output = UnixTime;
    /// `u64` seconds; saturates at [`UnixTime::MAX`].
    fn add(self, secs: u64) -> UnixTime {
        self.saturating_add(Secs(secs))
    }
}

impl Sub<u64> for UnixTime {
    type Output = UnixTime;
    /// `u64` seconds; saturates at the epoch.
    fn sub(self, secs: u64) -> UnixTime {
        self.saturating_sub(Secs(secs))
    }
}

impl Sub<UnixTime> for UnixTime {
    type Output = Secs;
    /// The time between two points; zero if `earlier` is not earlier (as `Instant` does).
    fn sub(self, earlier: UnixTime) -> Secs {
        self.saturating_since(earlier)
    }
}

impl Add for Secs {
    type Output = Secs;
    /// Saturates at [`Secs::MAX`].
    fn add(self, other: Secs) -> Secs {
        self.saturating_add(other)
    }
}

impl Sub for Secs {
    type Output = Secs;
    /// Saturates at zero.
    fn sub(self, other: Secs) -> Secs {
        Secs(self.0.saturating_sub(other.0))
    }
}

/// Plain seconds, as the `u64` always printed.
impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Plain seconds, as the `u64` always printed.
impl fmt::Debug for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Plain seconds, as the `u64` always printed.
impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Plain seconds, as the `u64` always printed.
impl fmt::Debug for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// [`UnixTime::utc`]: displays `2026-11-23T13:21:32Z`.
#[derive(Debug, Clone, Copy)]
pub struct Utc(UnixTime);

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // humantime formats up to the last second of year 9999 (and fails, which
        // `to_string` would turn into a panic, after it).
        const LAST: u64 = 253_402_300_799;
        let t = UNIX_EPOCH.checked_add(Duration::from_secs(self.0.0));
        match t {
            Some(t) if self.0.0 <= LAST => {
                fmt::Display::fmt(&humantime::format_rfc3339_seconds(t), f)
            }
            // Beyond that: the seconds, marked as such, never a panic.
            _ => write!(f, "@{}", self.0.0),
        }
    }
}

/// [`Secs::human`]: displays `1h 30m`.
#[derive(Debug, Clone, Copy)]
pub struct Human(Secs);

impl fmt::Display for Human {
    /// Days, hours, minutes and seconds only (`45days 1h`, `1h 30m`, `0s`): every unit one
    /// that [`parse_duration`] accepts, so a printed duration can be copied back into a flag
    /// or a config file. (humantime's own form prints months and years past ~30 days, which
    /// the parser refuses as having no fixed length.) Below 30 days it is humantime's form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.0;
        if secs == 0 {
            return f.write_str("0s");
        }
        let days = secs / 86_400;
        let parts = [
            (days, if days == 1 { "day" } else { "days" }),
            (secs % 86_400 / 3600, "h"),
            (secs % 3600 / 60, "m"),
            (secs % 60, "s"),
        ];
        let mut first = true;
        for (n, unit) in parts {
            if n == 0 {
                continue;
            }
            if !first {
                f.write_str(" ")?;
            }
            write!(f, "{n}{unit}")?;
            first = false;
        }
        Ok(())
    }
}

/// The current time. Only entry points (the PAM hooks, `main`s, the CA's system clock)
/// call this; everything else takes the time as a parameter.
pub fn now() -> UnixTime {
    // The one clock read of the shared code: see the module documentation.
    #[allow(clippy::disallowed_methods)]
    let t = SystemTime::now();
    UnixTime(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// `2026-11-23T13:21:32Z`
pub fn format_utc(t: impl Into<UnixTime>) -> String {
    t.into().utc().to_string()
}

/// Parses a duration: one or more NUMBER UNIT pairs, e.g. `30m`, `1h`, `1h30m`, `1h 30m`,
/// `90s`, `2d`, `1w`. The one duration parser of every program (client flags, `policy.toml`,
/// `config.toml`, `jit-ca` flags), so all of them accept and refuse the same text.
///
/// Units: `s`/`sec`/`second(s)`, `m`/`min`/`minute(s)`, `h`/`hr`/`hour(s)`, `d`/`day(s)`,
/// `w`/`week(s)`. Refused with a message that names the fix: `M` (months in some tools,
/// minutes in others: `30m` is minutes), a bare number (`30`: did you mean `30m`?), months
/// and years (no fixed length: write days), units below the second.
pub fn parse_duration(s: &str) -> std::result::Result<Secs, String> {
    parse_units(s.trim()).map_err(|why| format!("invalid duration {s:?}: {why}"))
}

const DURATION_EXAMPLES: &str = "examples: 30m, 1h, 1h30m, 90s, 2d";

fn parse_units(s: &str) -> std::result::Result<Secs, String> {
    if s.is_empty() {
        return Err(format!("it is empty ({DURATION_EXAMPLES})"));
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(format!(
                "expected a number and a unit ({DURATION_EXAMPLES})"
            ));
        }
        let (num, after) = rest.split_at(digits);
        let after = after.trim_start();
        let unit_len = after.len()
            - after
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        let (unit, after) = after.split_at(unit_len);
        let n: u64 = num
            .parse()
            .map_err(|_| "the number is too large".to_string())?;
        let per = match unit {
            "" if after.is_empty() => {
                return Err(format!(
                    "{num} has no unit; did you mean {s}m (minutes)? ({DURATION_EXAMPLES})"
                ));
            }
            "" => {
                return Err(format!(
                    "expected a number and a unit ({DURATION_EXAMPLES})"
                ));
            }
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 604_800,
            "M" => {
                return Err(format!(
                    "\"M\" is ambiguous (months or minutes?); write {num}m for {num} minutes, \
                     or days (e.g. {num}d)"
                ));
            }
            "month" | "months" | "y" | "year" | "years" => {
                return Err(format!(
                    "{unit:?}: months and years have no fixed length; write days (e.g. 30d)"
                ));
            }
            "ms" | "msec" | "us" | "usec" | "ns" | "nsec" => {
                return Err(format!(
                    "{unit:?}: the smallest unit is the second (e.g. 90s)"
                ));
            }
            other if matches!(other.to_ascii_lowercase().as_str(), "s" | "h" | "d" | "w") => {
                return Err(format!(
                    "unknown unit {other:?}; units are lowercase: {num}{}",
                    other.to_ascii_lowercase()
                ));
            }
            other => {
                return Err(format!(
                    "unknown unit {other:?} (units: s, m, h, d, w; {DURATION_EXAMPLES})"
                ));
            }
        };
        total = n
            .checked_mul(per)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| "it is too long".to_string())?;
        rest = after.trim_start();
    }
    Ok(Secs(total))
}

/// `1h 30m`: a duration for people.
pub fn format_duration(d: impl Into<Secs>) -> String {
    d.into().human().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_utc(UnixTime::from_secs(1_800_000_000)),
            "2027-01-15T08:00:00Z"
        );
        assert_eq!(parse_duration("30m"), Ok(Secs::new(1800)));
        assert_eq!(parse_duration("1h 30m"), Ok(Secs::new(5400)));
        assert!(parse_duration("soon").is_err());
        assert_eq!(format_duration(5400), "1h 30m");
        assert_eq!(Secs::from_hours(1).human().to_string(), "1h");
        // Beyond SystemTime: still printable, never a panic.
        assert_eq!(UnixTime::MAX.utc().to_string(), format!("@{}", u64::MAX));
        assert_eq!(format_utc(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(format_utc(253_402_300_800), "@253402300800");
    }

    #[test]
    fn formatted_durations_parse_back_to_themselves() {
        // Below 30 days: humantime's form, unchanged (exact-output tests rely on it).
        for (secs, text) in [
            (0, "0s"),
            (59, "59s"),
            (90, "1m 30s"),
            (3600, "1h"),
            (5400, "1h 30m"),
            (86_400, "1day"),
            (90_061, "1day 1h 1m 1s"),
            (30 * 86_400, "30days"),
        ] {
            assert_eq!(format_duration(secs), text, "{secs}");
            assert_eq!(
                format_duration(secs),
                humantime::format_duration(Duration::from_secs(secs)).to_string()
            );
        }
        // Past ~30.44 days humantime says months and years; these stay in days.
        assert_eq!(format_duration(31 * 86_400), "31days");
        assert_eq!(format_duration(365 * 86_400), "365days");
        assert_eq!(format_duration(400 * 86_400 + 7261), "400days 2h 1m 1s");
        let mut values = vec![u64::MAX, u64::MAX / 86_400 * 86_400, 2_630_016, 31_557_600];
        let mut x = 1u64;
        while x < u64::MAX / 3 {
            values.extend([x, x + 1, x.saturating_mul(7) / 3]);
            x = x.saturating_mul(3);
        }
        values.extend((0..2000).map(|i| i * 86_400 + i * 37));
        for secs in values {
            let text = format_duration(secs);
            assert_eq!(parse_duration(&text), Ok(Secs::new(secs)), "{text}");
        }
    }

    #[test]
    fn overflow_saturates_or_is_refused() {
        let end = UnixTime::MAX;
        assert_eq!(end + Secs::new(1), UnixTime::MAX);
        assert_eq!(end + 1, UnixTime::MAX);
        assert_eq!(end.saturating_add(Secs::MAX), UnixTime::MAX);
        assert_eq!(end.checked_add(Secs::new(1)), None);
        assert_eq!(
            UnixTime::from_secs(10).checked_add(Secs::new(5)),
            Some(UnixTime::from_secs(15))
        );
        assert_eq!(UnixTime::EPOCH - Secs::new(1), UnixTime::EPOCH);
        assert_eq!(UnixTime::EPOCH - 1, UnixTime::EPOCH);
        assert_eq!(UnixTime::EPOCH.checked_sub(Secs::new(1)), None);
        // A difference of times is a duration, never negative.
        let (a, b) = (UnixTime::from_secs(100), UnixTime::from_secs(160));
        assert_eq!(b - a, Secs::new(60));
        assert_eq!(a - b, Secs::ZERO);
        assert_eq!(Secs::MAX + Secs::new(1), Secs::MAX);
        assert_eq!(Secs::MAX.checked_add(Secs::new(1)), None);
        assert_eq!(Secs::new(1) - Secs::new(2), Secs::ZERO);
        assert_eq!(Secs::MAX.saturating_mul(2), Secs::MAX);
        assert_eq!(Secs::from_mins(u64::MAX), Secs::MAX);
        assert!(a < b && Secs::new(1) < Secs::new(2));
    }

    #[test]
    fn serde_and_display_are_the_plain_integer() {
        let t = UnixTime::from_secs(1_800_000_000);
        assert_eq!(serde_json::to_string(&t).unwrap(), "1800000000");
        assert_eq!(serde_json::from_str::<UnixTime>("1800000000").unwrap(), t);
        assert_eq!(serde_json::to_string(&Secs::new(90)).unwrap(), "90");
        assert_eq!(serde_json::from_str::<Secs>("90").unwrap(), Secs::new(90));
        // Not a string, not negative, not a float: what a u64 refuses.
        assert!(serde_json::from_str::<UnixTime>("\"1800000000\"").is_err());
        assert!(serde_json::from_str::<UnixTime>("-1").is_err());
        assert!(serde_json::from_str::<Secs>("1.5").is_err());
        assert_eq!(
            format!("{t} {t:?} {}", Secs::new(7)),
            "1800000000 1800000000 7"
        );
        assert_eq!(format!("{:>4}", Secs::new(7)), "   7");
    }

    #[test]
    fn durations_parse_strictly_with_messages_that_name_the_fix() {
        for (text, secs) in [
            ("30m", 1800),
            ("1h30m", 5400),
            ("1h 30m", 5400),
            (" 2d ", 172_800),
            ("90s", 90),
            ("0s", 0),
            ("1w", 604_800),
            ("15 min", 900),
            ("2hours", 7200),
        ] {
            assert_eq!(parse_duration(text), Ok(Secs::new(secs)), "{text}");
        }
        for (text, message) in [
            (
                "30M",
                r#"invalid duration "30M": "M" is ambiguous (months or minutes?); write 30m for 30 minutes, or days (e.g. 30d)"#,
            ),
            (
                "30",
                r#"invalid duration "30": 30 has no unit; did you mean 30m (minutes)? (examples: 30m, 1h, 1h30m, 90s, 2d)"#,
            ),
            (
                "1h30",
                r#"invalid duration "1h30": 30 has no unit; did you mean 1h30m (minutes)? (examples: 30m, 1h, 1h30m, 90s, 2d)"#,
            ),
            (
                "2months",
                r#"invalid duration "2months": "months": months and years have no fixed length; write days (e.g. 30d)"#,
            ),
            (
                "1y",
                r#"invalid duration "1y": "y": months and years have no fixed length; write days (e.g. 30d)"#,
            ),
            (
                "500ms",
                r#"invalid duration "500ms": "ms": the smallest unit is the second (e.g. 90s)"#,
            ),
            (
                "soon",
                r#"invalid duration "soon": expected a number and a unit (examples: 30m, 1h, 1h30m, 90s, 2d)"#,
            ),
            (
                "3x",
                r#"invalid duration "3x": unknown unit "x" (units: s, m, h, d, w; examples: 30m, 1h, 1h30m, 90s, 2d)"#,
            ),
            (
                "2H",
                r#"invalid duration "2H": unknown unit "H"; units are lowercase: 2h"#,
            ),
            (
                "",
                r#"invalid duration "": it is empty (examples: 30m, 1h, 1h30m, 90s, 2d)"#,
            ),
            (
                "-5m",
                r#"invalid duration "-5m": expected a number and a unit (examples: 30m, 1h, 1h30m, 90s, 2d)"#,
            ),
            (
                "1.5h",
                r#"invalid duration "1.5h": expected a number and a unit (examples: 30m, 1h, 1h30m, 90s, 2d)"#,
            ),
            (
                "99999999999999999999s",
                r#"invalid duration "99999999999999999999s": the number is too large"#,
            ),
            (
                "9999999999999999w",
                r#"invalid duration "9999999999999999w": it is too long"#,
            ),
        ] {
            assert_eq!(parse_duration(text), Err(message.to_string()), "{text}");
        }
    }
}

//! Schedules (`schedule = [...]` on a role or an auto-approval rule): windows of days of the
//! week and wall-clock hours in an IANA time zone, pure (the instant is a parameter).
//!
//! ```toml
//! schedule = [
//!   { days = ["mon-fri"], hours = "09:00-17:00", tz = "Europe/Berlin" },
//!   { days = ["sat"], hours = "22:00-02:00", tz = "UTC" },   # crosses midnight
//! ]
//! ```
//!
//! Several windows are a union. `days` names the day a window *starts* (a window that
//! crosses midnight runs into the next day); omitted, every day. `hours` is `HH:MM-HH:MM`,
//! end exclusive, `24:00` allowed as an end; omitted, the whole day. `tz` is required.
//!
//! Hours are wall-clock times in the zone. Across a daylight-saving change: in the
//! spring-forward gap the skipped times do not exist, so a window that starts inside the gap
//! opens at the first instant after it (02:30 on the day 02:00 becomes 03:00 opens at 03:00),
//! and a window wholly inside the skipped hour (02:15-02:45) does not happen that day;
//! in the fall-back repeated hour both occurrences are inside a window that covers the hour,
//! and a window that starts in it opens at the first occurrence.

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan as _};
use serde::Deserialize;

/// One window as written in policy.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWindow {
    #[serde(default)]
    days: Option<Vec<String>>,
    #[serde(default)]
    hours: Option<String>,
    #[serde(default)]
    tz: Option<String>,
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MINUTES_PER_DAY: u16 = 24 * 60;

/// One window: on `days` (Monday first), from `start` to `end` minutes after local midnight
/// (end exclusive; `end <= start` crosses midnight), in `tz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    days: [bool; 7],
    start: u16,
    end: u16,
    tz_name: String,
    tz: TimeZone,
    spelling: String,
}

/// A union of windows (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    windows: Vec<Window>,
}

/// When the next window opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextStart {
    /// Unix seconds.
    pub at: u64,
    /// The instant in the window's zone: `Mon 2026-11-30 09:00 +01:00 (Europe/Berlin)`.
    pub local: String,
}

fn day_index(d: Weekday) -> usize {
    usize::from(d.to_monday_zero_offset().unsigned_abs())
}

fn parse_day(s: &str) -> Option<usize> {
    let s = s.trim().to_ascii_lowercase();
    DAY_NAMES.iter().position(|d| *d == s)
}

fn parse_days(list: &[String]) -> Result<[bool; 7], String> {
    if list.is_empty() {
        return Err(
            "is empty; omit days for every day, or name some (e.g. days = [\"mon-fri\"])".into(),
        );
    }
    let mut days = [false; 7];
    for item in list {
        let bad = || {
            format!(
                "{item:?} is not a day; use mon, tue, wed, thu, fri, sat, sun or a range such as mon-fri"
            )
        };
        match item.split_once('-') {
            None => days[parse_day(item).ok_or_else(bad)?] = true,
            Some((a, b)) => {
                let (a, b) = (parse_day(a).ok_or_else(bad)?, parse_day(b).ok_or_else(bad)?);
                // A range runs forward through the week and may wrap (fri-mon).
                let mut d = a;
                loop {
                    days[d] = true;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
        }
    }
    Ok(days)
}

fn parse_clock(s: &str, end: bool) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if end => Some(MINUTES_PER_DAY),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn parse_hours(s: &str) -> Result<(u16, u16), String> {
    let bad = || {
        format!(
            "{s:?} is not a range of hours; write HH:MM-HH:MM (e.g. \"09:00-17:00\", or \"22:00-06:00\" across midnight; 24:00 may end a range)"
        )
    };
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let start = parse_clock(a, false).ok_or_else(bad)?;
    let end = parse_clock(b, true).ok_or_else(bad)?;
    if start == end {
        return Err(format!(
            "{s:?} is empty (start and end are the same); for the whole day omit hours or write \"00:00-24:00\""
        ));
    }
    Ok((start, end))
}

/// Parses the windows of one `schedule` key; `field` names it in errors
/// (`roles.R.schedule`); every problem goes to `err`.
pub(super) fn parse(
    raw: &[RawWindow],
    field: &str,
    err: &mut dyn FnMut(&str, String),
) -> Option<Schedule> {
    if raw.is_empty() {
        err(
            field,
            "is empty; omit schedule for any time, or give windows (e.g. schedule = [{ days = [\"mon-fri\"], hours = \"09:00-17:00\", tz = \"Europe/Berlin\" }])".into(),
        );
        return None;
    }
    let mut windows = Vec::new();
    for (i, w) in raw.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let mut ok = true;
        let days = match w.days.as_deref() {
            None => [true; 7],
            Some(list) => parse_days(list).unwrap_or_else(|e| {
                err(&format!("{at}.days"), e);
                ok = false;
                [true; 7]
            }),
        };
        let (start, end) = match w.hours.as_deref() {
            None => (0, MINUTES_PER_DAY),
            Some(h) => parse_hours(h).unwrap_or_else(|e| {
                err(&format!("{at}.hours"), e);
                ok = false;
                (0, MINUTES_PER_DAY)
            }),
        };
        let tz = match w.tz.as_deref() {
            None => {
                err(
                    &format!("{at}.tz"),
                    "is required: an IANA time zone such as \"Europe/Berlin\" or \"UTC\"".into(),
                );
                None
            }
            Some(name) => match TimeZone::get(name) {
                Ok(tz) => Some((name.to_string(), tz)),
                Err(_) => {
                    err(
                        &format!("{at}.tz"),
                        format!(
                            "{name:?} is not a known IANA time zone (e.g. \"Europe/Berlin\", \"America/New_York\", \"UTC\")"
                        ),
                    );
                    None
                }
            },
        };
        if let (true, Some((tz_name, tz))) = (ok, tz) {
            let day_text = match w.days.as_deref() {
                None => "every day".to_string(),
                Some(list) => list
                    .iter()
                    .map(|d| d.trim().to_ascii_lowercase())
                    .collect::<Vec<_>>()
                    .join(","),
            };
            let hours_text = w.hours.as_deref().map_or("all day", str::trim);
            windows.push(Window {
                days,
                start,
                end,
                spelling: format!("{day_text} {hours_text} {tz_name}"),
                tz_name,
                tz,
            });
        }
    }
    (windows.len() == raw.len()).then_some(Schedule { windows })
}

impl Window {
    /// Whether the instant `ts` is inside this window.
    fn contains(&self, ts: Timestamp) -> bool {
        let dt = ts.to_zoned(self.tz.clone()).datetime();
        let tod =
            u16::try_from(dt.hour()).unwrap_or(0) * 60 + u16::try_from(dt.minute()).unwrap_or(0);
        let today = day_index(dt.weekday());
        let yesterday = (today + 6) % 7;
        if self.start < self.end {
            self.days[today] && tod >= self.start && tod < self.end
        } else {
            (self.days[today] && tod >= self.start) || (self.days[yesterday] && tod < self.end)
        }
    }

    /// The first instant at which the window that starts on `date` opens: its start time
    /// (the first occurrence in a repeated hour; the end of the gap if the start is skipped).
    fn opening(&self, date: Date) -> Option<Timestamp> {
        let dt = DateTime::from_parts(
            date,
            jiff::civil::Time::new(
                i8::try_from(self.start / 60).ok()?,
                i8::try_from(self.start % 60).ok()?,
                0,
                0,
            )
            .ok()?,
        );
        match self.tz.to_ambiguous_timestamp(dt).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok(),
            // The earlier instant: the larger offset (before the clocks go back).
            AmbiguousOffset::Fold { before, .. } => before.to_timestamp(dt).ok(),
            // The clocks jump over the start: the window opens at the jump.
            AmbiguousOffset::Gap { after, .. } => {
                let probe = after.to_timestamp(dt).ok()?;
                self.tz.following(probe).next().map(|t| t.timestamp())
            }
        }
    }

    /// The first opening strictly after `ts`, within the next eight days.
    fn next_opening(&self, ts: Timestamp) -> Option<Timestamp> {
        let today = ts.to_zoned(self.tz.clone()).date();
        (-1..=8)
            .filter_map(|d| today.checked_add(d.days()).ok())
            .filter(|date| self.days[day_index(date.weekday())])
            .filter_map(|date| self.opening(date))
            // A window wholly inside a skipped hour does not happen that day.
            .find(|t| *t > ts && self.contains(*t))
    }
}

fn timestamp(at: u64) -> Timestamp {
    i64::try_from(at)
        .ok()
        .and_then(|s| Timestamp::from_second(s).ok())
        .unwrap_or(Timestamp::MAX)
}

impl Schedule {
    /// Whether unix time `at` is inside one of the windows.
    pub fn contains(&self, at: u64) -> bool {
        let ts = timestamp(at);
        self.windows.iter().any(|w| w.contains(ts))
    }

    /// When the next window opens after `at` (None: never within a week, which a valid
    /// schedule cannot be).
    pub fn next_start(&self, at: u64) -> Option<NextStart> {
        let ts = timestamp(at);
        let (w, t) = self
            .windows
            .iter()
            .filter_map(|w| w.next_opening(ts).map(|t| (w, t)))
            .min_by_key(|(_, t)| *t)?;
        let local = t
            .to_zoned(w.tz.clone())
            .strftime("%a %Y-%m-%d %H:%M %:z")
            .to_string();
        Some(NextStart {
            at: u64::try_from(t.as_second()).unwrap_or(0),
            local: format!("{local} ({})", w.tz_name),
        })
    }

    /// Each window as written: `mon-fri 09:00-17:00 Europe/Berlin`.
    pub fn spellings(&self) -> Vec<String> {
        self.windows.iter().map(|w| w.spelling.clone()).collect()
    }

    /// The windows joined for a message: `a; or b`.
    pub fn describe(&self) -> String {
        self.spellings().join(" or ")
    }
}

#[cfg(test)]
mod tests;

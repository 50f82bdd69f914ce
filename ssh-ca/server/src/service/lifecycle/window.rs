//! Later windows (`jit request --start`): where a request's window starts, and which
//! requested starts are accepted. Pure, like the rest of `lifecycle`.

use super::{Ruling, refuse};
use crate::store::RequestRow;
use jit_api::wire::ErrorCode as C;

/// How far in the past a requested start may be (clock skew between client and CA): such
/// a start means "now".
pub const START_SKEW_SECS: u64 = 300;

/// The start of a later window from a requested `start`: None for none, or for a start
/// now or in the past within [`START_SKEW_SECS`] (clock skew: it means now); refused when
/// further in the past or more than `max_ahead` seconds ahead.
pub fn check_start(start: Option<u64>, max_ahead: u64, now: u64) -> Ruling<Option<u64>> {
    let Some(start) = start else {
        return Ok(None);
    };
    let utc = jit_common::time::format_utc;
    let dur = jit_common::time::format_duration;
    if start.saturating_add(START_SKEW_SECS) < now {
        return Err(refuse(
            C::InvalidInput,
            format!(
                "the start {} is {} in the past (the CA's clock says {}); give a later time, or \
                 leave out --start to begin at approval",
                utc(start),
                dur(now - start),
                utc(now)
            ),
        ));
    }
    if start <= now {
        return Ok(None);
    }
    if start - now > max_ahead {
        return Err(refuse(
            C::InvalidInput,
            format!(
                "the start {} is {} ahead; this CA accepts at most {} (max_start_ahead in its \
                 config.toml): ask again closer to the time",
                utc(start),
                dur(start - now),
                dur(max_ahead)
            ),
        ));
    }
    Ok(Some(start))
}

/// Where the window of `row` approved at `approved_at` starts: its requested start, else
/// the approval.
pub fn window_start(row: &RequestRow, approved_at: u64) -> u64 {
    row.not_before.unwrap_or(approved_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_435_200;
    const DAY: u64 = 86_400;

    #[test]
    fn a_start_is_none_now_or_later_within_the_bound() {
        assert_eq!(check_start(None, DAY, NOW), Ok(None));
        // Within the clock skew: now.
        assert_eq!(check_start(Some(NOW - START_SKEW_SECS), DAY, NOW), Ok(None));
        assert_eq!(check_start(Some(NOW), DAY, NOW), Ok(None));
        assert_eq!(check_start(Some(NOW + 1), DAY, NOW), Ok(Some(NOW + 1)));
        assert_eq!(check_start(Some(NOW + DAY), DAY, NOW), Ok(Some(NOW + DAY)));
    }

    #[test]
    fn a_start_too_far_in_the_past_or_ahead_is_refused() {
        let past = check_start(Some(NOW - START_SKEW_SECS - 1), DAY, NOW).unwrap_err();
        assert_eq!(past.code(), C::InvalidInput);
        assert_eq!(
            past.to_string(),
            "invalid_input (400): the start 2026-11-23T11:54:59Z is 5m 1s in the past (the CA's \
             clock says 2026-11-23T12:00:00Z); give a later time, or leave out --start to begin \
             at approval"
        );
        let ahead = check_start(Some(NOW + DAY + 1), DAY, NOW).unwrap_err();
        assert_eq!(ahead.code(), C::InvalidInput);
        assert!(
            ahead.to_string().ends_with(
                "is 1day 1s ahead; this CA accepts at most 1day (max_start_ahead in its \
                 config.toml): ask again closer to the time"
            ),
            "{ahead}"
        );
        // No overflow at the edges.
        assert!(check_start(Some(u64::MAX), DAY, NOW).is_err());
        assert!(check_start(Some(0), DAY, NOW).is_err());
    }
}

//! When a failed delivery is tried again, and when it is given up (dead letter). Pure: the
//! worker passes the event's time, the attempts made and `now`.
//!
//! Schedule after the Nth failure: 10 s, 30 s, 1 m, 2 m, 5 m, 10 m, then every 15 m, each
//! plus up to 10 % jitter derived from the event id (deterministic, so tests know the time,
//! and receivers coming back are not hit by every sink's backlog in the same second). A
//! delivery is dead when its next attempt would fall after `max_age` from the event's time:
//! a receiver down for an hour still gets everything with the default of a day.

use sha2::{Digest as _, Sha256};

/// Delays after the first failures, seconds; then [`STEADY`].
pub const SCHEDULE: &[u64] = &[10, 30, 60, 120, 300, 600];
/// The delay once the schedule is used up.
pub const STEADY: u64 = 900;
/// Default time after an event's time within which it is retried.
pub const DEFAULT_MAX_AGE: u64 = 24 * 3600;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Next {
    /// Try again at this Unix time.
    RetryAt(u64),
    /// Give up: the delivery becomes a dead letter (`jit-ca notify retry ID` resends it).
    Dead,
}

/// Whether an answer's status counts as delivered: 2xx only (redirects are not followed,
/// so a 3xx is a failure).
pub fn delivered(status: u16) -> bool {
    (200..300).contains(&status)
}

/// The delay after `failures` failed attempts (1 = the first failed), before jitter.
pub fn base_delay(failures: u32) -> u64 {
    let i = usize::try_from(failures.saturating_sub(1)).unwrap_or(usize::MAX);
    SCHEDULE.get(i).copied().unwrap_or(STEADY)
}

/// Up to 10 % of `delay`, from the event id and the attempt.
fn jitter(id: &str, failures: u32, delay: u64) -> u64 {
    let h = Sha256::new()
        .chain_update(id.as_bytes())
        .chain_update(failures.to_be_bytes())
        .finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    let span = delay / 10;
    if span == 0 {
        return 0;
    }
    u64::from_be_bytes(b) % (span + 1)
}

/// After the `failures`th failed attempt of event `id` (made at `event_time`), at `now`.
pub fn after_failure(id: &str, event_time: u64, failures: u32, now: u64, max_age: u64) -> Next {
    let delay = base_delay(failures);
    let at = now
        .saturating_add(delay)
        .saturating_add(jitter(id, failures, delay));
    if at > event_time.saturating_add(max_age) {
        Next::Dead
    } else {
        Next::RetryAt(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_then_steady() {
        let d: Vec<_> = (1..=8).map(base_delay).collect();
        assert_eq!(d, [10, 30, 60, 120, 300, 600, 900, 900]);
        assert_eq!(base_delay(0), 10);
        assert_eq!(base_delay(u32::MAX), 900);
        assert!(delivered(200) && delivered(204) && delivered(299));
        assert!(!delivered(301) && !delivered(429) && !delivered(500) && !delivered(199));
    }

    #[test]
    fn jitter_is_bounded_and_deterministic() {
        for f in 1..20 {
            let Next::RetryAt(at) = after_failure("evt_a", 0, f, 100, DEFAULT_MAX_AGE) else {
                panic!("dead too early");
            };
            let base = base_delay(f);
            assert!(
                (100 + base..=100 + base + base / 10).contains(&at),
                "{f}: {at}"
            );
            assert_eq!(
                after_failure("evt_a", 0, f, 100, DEFAULT_MAX_AGE),
                Next::RetryAt(at)
            );
        }
        // Different events spread out.
        let times: std::collections::BTreeSet<_> = (0..50)
            .map(|i| after_failure(&format!("evt_{i}"), 0, 7, 0, DEFAULT_MAX_AGE))
            .collect();
        assert!(times.len() > 10, "{times:?}");
    }

    /// A receiver down for an hour gets the event afterwards; one down for longer than
    /// max_age does not, and the delivery is dead.
    #[test]
    fn an_hour_down_is_retried_a_day_is_dead() {
        let (t0, mut now, mut failures) = (1_000_000u64, 1_000_000u64, 0u32);
        let mut attempts = vec![];
        while now < t0 + 3600 {
            failures += 1;
            match after_failure("evt_x", t0, failures, now, DEFAULT_MAX_AGE) {
                Next::RetryAt(at) => {
                    assert!(at > now);
                    now = at;
                    attempts.push(at);
                }
                Next::Dead => panic!("dead after {failures} failures at {}", now - t0),
            }
        }
        // Within the hour after it came back, the next attempt is at most 15 m (+10 %) away.
        assert!(attempts.windows(2).all(|w| w[1] - w[0] <= 990));
        loop {
            failures += 1;
            match after_failure("evt_x", t0, failures, now, DEFAULT_MAX_AGE) {
                Next::RetryAt(at) => now = at,
                Next::Dead => break,
            }
        }
        assert!(now <= t0 + DEFAULT_MAX_AGE);
        assert!(now + 990 > t0 + DEFAULT_MAX_AGE);
        assert_eq!(after_failure("evt_x", t0, 1, t0, 5), Next::Dead);
    }
}

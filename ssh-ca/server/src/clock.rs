//! Time as a parameter: the service asks a [`Clock`] at its entry points (each public `Ca`
//! method reads it once and passes the time down); tests use [`FixedClock`].

use std::sync::atomic::{AtomicU64, Ordering};

/// A source of Unix seconds.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in Unix seconds.
    fn now(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The entry point: the one place the service reads the system clock. Everything else
    // gets the time from a `Clock` (clippy's `disallowed-methods` refuses
    // `SystemTime::now` elsewhere).
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> u64 {
        jit_common::now().as_secs()
    }
}

/// A clock that only moves when told (tests).
#[derive(Debug, Default)]
pub struct FixedClock(AtomicU64);

impl FixedClock {
    /// Starts at `t`.
    pub fn new(t: u64) -> Self {
        Self(AtomicU64::new(t))
    }

    /// Sets the time.
    pub fn set(&self, t: u64) {
        self.0.store(t, Ordering::SeqCst);
    }

    /// Moves the time forward.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

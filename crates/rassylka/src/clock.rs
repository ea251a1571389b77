use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};

/// Where the dispatcher gets «now»: the system clock in production, a settable one in tests
/// and in the `--now` of the command line.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that starts at a given instant and runs at real speed from there, so retries and
/// rate limits still see time pass; [`ManualClock::advance`] jumps it forward.
#[derive(Debug)]
pub struct ManualClock {
    base: Mutex<(DateTime<Utc>, std::time::Instant)>,
}

impl ManualClock {
    /// A clock reading `start` now.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        ManualClock {
            base: Mutex::new((start, std::time::Instant::now())),
        }
    }

    /// Sets the clock to read `at` now (and run on from there).
    pub fn set(&self, at: DateTime<Utc>) {
        let mut base = self.base.lock().unwrap_or_else(|e| e.into_inner());
        *base = (at, std::time::Instant::now());
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: TimeDelta) {
        let mut base = self.base.lock().unwrap_or_else(|e| e.into_inner());
        base.0 += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        let base = self.base.lock().unwrap_or_else(|e| e.into_inner());
        base.0 + TimeDelta::from_std(base.1.elapsed()).unwrap_or_default()
    }
}

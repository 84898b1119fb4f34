//! The simulator's notion of "now", which tests can freeze and move forward instead of sleeping.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Wall-clock time plus an offset, optionally frozen; cloning shares the same clock.
#[derive(Debug, Clone, Default)]
pub struct Clock(Arc<Mutex<ClockState>>);

#[derive(Debug, Default)]
struct ClockState {
    offset: chrono::Duration,
    frozen_at: Option<DateTime<Utc>>,
}

impl Clock {
    /// The simulated current time.
    pub fn now(&self) -> DateTime<Utc> {
        let state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        state.frozen_at.unwrap_or_else(Utc::now) + state.offset
    }

    /// Stops the clock at the current simulated time; only [`Clock::advance`] moves it afterwards.
    pub fn freeze(&self) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if state.frozen_at.is_none() {
            state.frozen_at = Some(Utc::now());
        }
    }

    /// Moves simulated time forward: tokens, codes and session tokens age, throttle buckets refill.
    pub fn advance(&self, by: Duration) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        state.offset += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
    }
}

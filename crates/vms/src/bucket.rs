//! A token bucket with reservations, driven by the caller's clock (no clock inside).

use std::time::{Duration, Instant};

/// Allows `per_minute` operations per minute with bursts of up to `burst`. [`TokenBucket::reserve`]
/// always takes a token, possibly borrowing from the future, and says how long the caller must
/// wait before using it; so waiters are served in order and a caller that sleeps the returned
/// time never has to ask again (which also works when the clock is simulated).
#[derive(Clone, Debug)]
pub struct TokenBucket {
    per_minute: u32,
    burst: f64,
    /// Tokens available at `at`; negative while reservations are outstanding.
    tokens: f64,
    at: Option<Instant>,
}

impl TokenBucket {
    /// `per_minute` 0 means unlimited. The bucket starts full.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            per_minute,
            burst,
            tokens: burst,
            at: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        let rate = f64::from(self.per_minute) / 60.0;
        if let Some(at) = self.at {
            let dt = now.saturating_duration_since(at).as_secs_f64();
            self.tokens = (self.tokens + dt * rate).min(self.burst);
        }
        if self.at.is_none_or(|at| now > at) {
            self.at = Some(now);
        }
    }

    /// Takes one token; returns how long to wait before using it (zero if available now).
    pub fn reserve(&mut self, now: Instant) -> Duration {
        if self.per_minute == 0 {
            return Duration::ZERO;
        }
        self.refill(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            let rate = f64::from(self.per_minute) / 60.0;
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }

    /// How long a [`TokenBucket::reserve`] at `now` would wait, without taking anything.
    pub fn wait_time(&self, now: Instant) -> Duration {
        let mut probe = self.clone();
        probe.reserve(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_minute() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1, 1);
        assert_eq!(b.reserve(t0), Duration::ZERO);
        let w = b.reserve(t0 + Duration::from_secs(10));
        assert_eq!(w.as_secs(), 50);
        // A third caller queues behind the second.
        let w = b.reserve(t0 + Duration::from_secs(10));
        assert_eq!(w.as_secs(), 110);
        // Long idle refills to the burst, not beyond.
        assert_eq!(b.reserve(t0 + Duration::from_secs(1000)), Duration::ZERO);
        assert_eq!(b.wait_time(t0 + Duration::from_secs(1000)).as_secs(), 60);
    }

    #[test]
    fn hundred_per_minute_with_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100, 100);
        for _ in 0..100 {
            assert_eq!(b.reserve(t0), Duration::ZERO);
        }
        let w = b.reserve(t0);
        assert!((w.as_secs_f64() - 0.6).abs() < 1e-9, "{w:?}");
        // 0.6 s later that reserved token is due; the next one 0.6 s after.
        let w = b.reserve(t0 + Duration::from_millis(600));
        assert!((w.as_secs_f64() - 0.6).abs() < 1e-9, "{w:?}");
    }

    #[test]
    fn unlimited_and_clock_going_back() {
        let t0 = Instant::now() + Duration::from_secs(100);
        let mut b = TokenBucket::new(0, 1);
        for _ in 0..1000 {
            assert_eq!(b.reserve(t0), Duration::ZERO);
        }
        let mut b = TokenBucket::new(60, 1);
        assert_eq!(b.reserve(t0), Duration::ZERO);
        // An earlier `now` (monotonic clocks do not do this, but be safe) adds nothing.
        assert_eq!(b.reserve(t0 - Duration::from_secs(50)).as_secs(), 1);
    }
}

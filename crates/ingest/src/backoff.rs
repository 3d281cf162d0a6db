//! Reconnect backoff as a pure core: no clock, no randomness of its own. The supervisor hands it
//! `now` and a jitter sample, so tests check the schedule exactly.

use std::time::{Duration, Instant};

/// How reconnect delays grow.
#[derive(Clone, Debug, PartialEq)]
pub struct BackoffPolicy {
    /// The first delay after a failure.
    pub min: Duration,
    /// The delay never grows beyond this (before jitter).
    pub max: Duration,
    /// Each consecutive failure multiplies the delay by this.
    pub factor: f64,
    /// Full-range jitter as a fraction: a delay `d` becomes a value in `[d(1-j), d(1+j)]`.
    pub jitter: f64,
    /// A session that stayed online at least this long resets the schedule to `min`.
    pub reset_after: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            min: Duration::from_secs(1),
            max: Duration::from_secs(30),
            factor: 2.0,
            jitter: 0.2,
            reset_after: Duration::from_secs(30),
        }
    }
}

impl BackoffPolicy {
    /// A fixed, tiny delay without jitter: for tests that cycle connections quickly.
    pub fn fixed(d: Duration) -> Self {
        BackoffPolicy {
            min: d,
            max: d,
            factor: 1.0,
            jitter: 0.0,
            reset_after: Duration::ZERO,
        }
    }
}

/// The backoff state of one camera.
#[derive(Clone, Debug)]
pub struct Backoff {
    policy: BackoffPolicy,
    /// Consecutive failures since the last reset.
    failures: u32,
    /// When the current session went online, if it did.
    online_since: Option<Instant>,
}

impl Backoff {
    pub fn new(policy: BackoffPolicy) -> Self {
        Backoff {
            policy,
            failures: 0,
            online_since: None,
        }
    }

    pub fn policy(&self) -> &BackoffPolicy {
        &self.policy
    }

    /// Consecutive failures counted so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The delay before the next attempt, counting one more failure. `jitter_sample` is a uniform
    /// value in `[0, 1)` (values outside are clamped); 0.5 means no jitter.
    pub fn next_delay(&mut self, jitter_sample: f64) -> Duration {
        let p = &self.policy;
        let min = p.min.as_secs_f64();
        let max = p.max.as_secs_f64().max(min);
        let factor = if p.factor.is_finite() && p.factor >= 1.0 {
            p.factor
        } else {
            1.0
        };
        // factor^failures, computed without overflow: stop growing once past max.
        let mut base = min;
        for _ in 0..self.failures {
            base *= factor;
            if base >= max {
                break;
            }
        }
        let base = base.min(max);
        self.failures = self.failures.saturating_add(1);
        let jitter = if p.jitter.is_finite() {
            p.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let s = if jitter_sample.is_finite() {
            jitter_sample.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let d = base * (1.0 + jitter * (2.0 * s - 1.0));
        Duration::try_from_secs_f64(d.max(0.0)).unwrap_or(p.max)
    }

    /// The session delivered its first frame at `now`.
    pub fn on_online(&mut self, now: Instant) {
        self.online_since = Some(now);
    }

    /// The session ended at `now`: if it had been online for at least `reset_after`, the schedule
    /// starts again from `min`.
    pub fn on_session_end(&mut self, now: Instant) {
        if let Some(t) = self.online_since.take()
            && now.saturating_duration_since(t) >= self.policy.reset_after
        {
            self.failures = 0;
        }
    }

    /// Starts the schedule again from `min` (e.g. after demand ended and the camera went idle).
    pub fn reset(&mut self) {
        self.failures = 0;
        self.online_since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn schedule_without_jitter() {
        let mut b = Backoff::new(BackoffPolicy::default());
        let got: Vec<f64> = (0..8).map(|_| secs(b.next_delay(0.5))).collect();
        assert_eq!(got, vec![1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]);
        assert_eq!(b.failures(), 8);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let expected = [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0];
        for sample in [0.0, 0.1, 0.5, 0.9, 0.999_999, 1.0, -3.0, 7.0, f64::NAN] {
            let mut b = Backoff::new(BackoffPolicy::default());
            for e in expected {
                let d = secs(b.next_delay(sample));
                assert!(
                    d >= e * 0.8 - 1e-9 && d <= e * 1.2 + 1e-9,
                    "{d} not within 20% of {e} (sample {sample})"
                );
            }
        }
        let mut lo = Backoff::new(BackoffPolicy::default());
        let mut hi = Backoff::new(BackoffPolicy::default());
        assert!((secs(lo.next_delay(0.0)) - 0.8).abs() < 1e-9);
        assert!((secs(hi.next_delay(1.0)) - 1.2).abs() < 1e-9);
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let mut b = Backoff::new(BackoffPolicy::default());
        for _ in 0..10_000 {
            b.next_delay(0.5);
        }
        assert_eq!(secs(b.next_delay(0.5)), 30.0);
    }

    #[test]
    fn resets_after_being_online_long_enough() {
        let t0 = Instant::now();
        let mut b = Backoff::new(BackoffPolicy::default());
        for _ in 0..4 {
            b.next_delay(0.5);
        }
        // Online only briefly: the schedule continues.
        b.on_online(t0);
        b.on_session_end(t0 + Duration::from_secs(29));
        assert_eq!(secs(b.next_delay(0.5)), 16.0);
        // Online for 30 s: back to the start.
        b.on_online(t0 + Duration::from_secs(40));
        b.on_session_end(t0 + Duration::from_secs(70));
        assert_eq!(secs(b.next_delay(0.5)), 1.0);
        assert_eq!(secs(b.next_delay(0.5)), 2.0);
        // A session that never went online does not reset.
        b.on_session_end(t0 + Duration::from_secs(1000));
        assert_eq!(secs(b.next_delay(0.5)), 4.0);
        b.reset();
        assert_eq!(secs(b.next_delay(0.5)), 1.0);
    }

    #[test]
    fn fixed_policy_and_odd_values() {
        let mut b = Backoff::new(BackoffPolicy::fixed(Duration::from_millis(1)));
        for _ in 0..5 {
            assert_eq!(b.next_delay(0.3), Duration::from_millis(1));
        }
        let mut odd = Backoff::new(BackoffPolicy {
            min: Duration::from_secs(2),
            max: Duration::from_secs(1), // max < min: min wins
            factor: f64::NAN,
            jitter: 5.0,
            reset_after: Duration::ZERO,
        });
        let d = secs(odd.next_delay(0.5));
        assert_eq!(d, 2.0);
    }
}

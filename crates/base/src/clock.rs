//! Time as an input. Cores never read the clock themselves: they are handed `now` by their callers,
//! and the async shells get it from a [`Clocks`] implementation. Tests use [`SimulatedClocks`] so that
//! timeouts, leases and backoff are exercised without sleeping.

use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of monotonic and wall-clock time.
pub trait Clocks: Send + Sync + 'static {
    /// Monotonic time, for deadlines and intervals.
    fn monotonic(&self) -> Instant;
    /// Wall-clock time, for timestamps shown to people and stored on disk.
    fn realtime(&self) -> SystemTime;
}

/// The process's real clocks.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealClocks;

impl Clocks for RealClocks {
    fn monotonic(&self) -> Instant {
        Instant::now()
    }
    fn realtime(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Clocks that move only when told to. Cloning shares the same time.
#[derive(Clone, Debug)]
pub struct SimulatedClocks(Arc<Mutex<(Instant, SystemTime)>>);

impl SimulatedClocks {
    /// Starts at the given wall-clock time; monotonic time starts at the real `Instant::now()` (an
    /// `Instant` cannot be built from nothing) and only moves through [`SimulatedClocks::advance`].
    pub fn new(boot: SystemTime) -> Self {
        SimulatedClocks(Arc::new(Mutex::new((Instant::now(), boot))))
    }

    pub fn advance(&self, d: Duration) {
        let mut g = self.0.lock();
        g.0 += d;
        g.1 += d;
    }
}

impl Clocks for SimulatedClocks {
    fn monotonic(&self) -> Instant {
        self.0.lock().0
    }
    fn realtime(&self) -> SystemTime {
        self.0.lock().1
    }
}

/// Milliseconds since the Unix epoch, negative before it, saturating at the `i64` range.
pub fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// The inverse of [`unix_ms`]; saturates at what `SystemTime` can hold on this platform.
pub fn from_unix_ms(ms: i64) -> SystemTime {
    let d = Duration::from_millis(ms.unsigned_abs());
    let t = if ms >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    };
    t.unwrap_or(UNIX_EPOCH)
}

/// Formats a wall-clock time as RFC 3339 UTC with millisecond precision (`2026-11-21T14:02:11.123Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    dt.format(&fmt)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_owned())
}

/// [`rfc3339`] of a time in ms since the Unix epoch (the unit SQLite rows store).
pub fn rfc3339_ms(ms: i64) -> String {
    rfc3339(from_unix_ms(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_clock_moves_only_when_advanced() {
        let c = SimulatedClocks::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let m0 = c.monotonic();
        assert_eq!(c.monotonic(), m0);
        c.advance(Duration::from_secs(5));
        assert_eq!(c.monotonic() - m0, Duration::from_secs(5));
        assert_eq!(rfc3339(c.realtime()), "2023-11-14T22:13:25.000Z");
    }

    #[test]
    fn times_convert_unix_ms() {
        assert_eq!(unix_ms(UNIX_EPOCH), 0);
        let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(unix_ms(t), 1_700_000_000_123);
        assert_eq!(
            from_unix_ms(unix_ms(t)),
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
        );
        let before = UNIX_EPOCH - Duration::from_millis(5);
        assert_eq!(unix_ms(before), -5);
        assert_eq!(from_unix_ms(-5), before);
    }
}

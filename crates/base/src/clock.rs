//! Time as an input. Cores never read the clock themselves: they are handed `now` by their callers,
//! and the async shells get it — and wait on it — through a [`Clocks`] implementation. Tests use
//! [`SimulatedClocks`] so that timeouts, leases, backoff and polling loops are exercised without
//! sleeping: an async wait on a simulated clock ends when the test advances the clock past its
//! deadline, and a blocking wait advances the clock itself (as Moonfire NVR's simulated clocks do).

use parking_lot::Mutex;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A wait handed out by [`Clocks::sleep_until`]: `'static`, so it can live in a `select!` of a
/// spawned task.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of monotonic and wall-clock time, and of waits measured on it.
pub trait Clocks: Send + Sync + 'static {
    /// Monotonic time, for deadlines and intervals.
    fn monotonic(&self) -> Instant;
    /// Wall-clock time, for timestamps shown to people and stored on disk.
    fn realtime(&self) -> SystemTime;
    /// Completes once [`Clocks::monotonic`] has reached `deadline` (at once if it has). For tasks
    /// on the async runtime.
    fn sleep_until(&self, deadline: Instant) -> Sleep;
    /// Waits `d` of this clock's time on the calling thread. For plain threads (the recorder's
    /// writers, retention), never on the async runtime.
    fn sleep_blocking(&self, d: Duration);

    /// [`Clocks::sleep_until`] `now + d`.
    fn sleep(&self, d: Duration) -> Sleep {
        self.sleep_until(self.monotonic() + d)
    }
}

/// The process's real clocks. Async waits use tokio's timer (so `tokio::time::pause` in a test
/// does not apply to them: tests that need simulated time use [`SimulatedClocks`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct RealClocks;

impl Clocks for RealClocks {
    fn monotonic(&self) -> Instant {
        Instant::now()
    }
    fn realtime(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep_until(&self, deadline: Instant) -> Sleep {
        tokio_sleep_until(deadline)
    }
    fn sleep_blocking(&self, d: Duration) {
        std::thread::sleep(d)
    }
}

/// A wait on tokio's timer (which `tokio::time::pause` controls in tests).
fn tokio_sleep_until(deadline: Instant) -> Sleep {
    Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(
        deadline,
    )))
}

/// Real wall-clock time, with monotonic time and waits on tokio's clock: the same as
/// [`RealClocks`] in a running process, but a test that pauses tokio's time
/// (`tokio::time::pause`, `start_paused`) moves `monotonic` and the waits together. The hub's
/// channels use it unless given other clocks.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioClocks;

impl Clocks for TokioClocks {
    fn monotonic(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
    fn realtime(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep_until(&self, deadline: Instant) -> Sleep {
        tokio_sleep_until(deadline)
    }
    fn sleep_blocking(&self, d: Duration) {
        std::thread::sleep(d)
    }
}

/// Clocks that move only when told to: by [`SimulatedClocks::advance`], or by a blocking
/// [`Clocks::sleep_blocking`], which advances them by the time slept. Async waits end when the
/// clock is advanced past their deadline. Cloning shares the same time.
#[derive(Clone, Debug)]
pub struct SimulatedClocks(Arc<SimInner>);

#[derive(Debug)]
struct SimInner {
    now: Mutex<(Instant, SystemTime)>,
    advanced: tokio::sync::Notify,
}

impl SimulatedClocks {
    /// Starts at the given wall-clock time; monotonic time starts at the real `Instant::now()` (an
    /// `Instant` cannot be built from nothing) and only moves through [`SimulatedClocks::advance`]
    /// or a blocking sleep.
    pub fn new(boot: SystemTime) -> Self {
        SimulatedClocks(Arc::new(SimInner {
            now: Mutex::new((Instant::now(), boot)),
            advanced: tokio::sync::Notify::new(),
        }))
    }

    /// Moves both clocks forward by `d` and wakes the async waits whose deadline has come.
    pub fn advance(&self, d: Duration) {
        {
            let mut g = self.0.now.lock();
            g.0 += d;
            g.1 += d;
        }
        self.0.advanced.notify_waiters();
    }
}

impl Clocks for SimulatedClocks {
    fn monotonic(&self) -> Instant {
        self.0.now.lock().0
    }
    fn realtime(&self) -> SystemTime {
        self.0.now.lock().1
    }
    fn sleep_until(&self, deadline: Instant) -> Sleep {
        let inner = self.0.clone();
        Box::pin(async move {
            loop {
                let advanced = inner.advanced.notified();
                let mut advanced = std::pin::pin!(advanced);
                // Registered before the check, so an advance between the check and the await
                // is not missed.
                advanced.as_mut().enable();
                if inner.now.lock().0 >= deadline {
                    return;
                }
                advanced.await;
            }
        })
    }
    fn sleep_blocking(&self, d: Duration) {
        self.advance(d)
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
/// The same as [`crate::time::rfc3339::format`], kept here for its callers.
pub fn rfc3339(t: SystemTime) -> String {
    crate::time::rfc3339::format(t)
}

/// [`rfc3339`] of a time in ms since the Unix epoch (the unit SQLite rows store).
pub fn rfc3339_ms(ms: i64) -> String {
    crate::time::rfc3339::format_ms(ms)
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

    #[tokio::test]
    async fn simulated_sleep_ends_when_advanced_past_its_deadline() {
        let c = SimulatedClocks::new(SystemTime::UNIX_EPOCH);
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let task = tokio::spawn({
            let (c, done) = (c.clone(), done.clone());
            async move {
                c.sleep(Duration::from_secs(10)).await;
                done.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        });
        tokio::task::yield_now().await;
        c.advance(Duration::from_secs(9));
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(
            !done.load(std::sync::atomic::Ordering::SeqCst),
            "woke 1 s early"
        );
        c.advance(Duration::from_secs(1));
        task.await.unwrap();
        assert!(done.load(std::sync::atomic::Ordering::SeqCst));
        // A deadline already passed completes at once.
        c.sleep_until(c.monotonic()).await;
    }

    #[test]
    fn simulated_blocking_sleep_advances_the_clock() {
        let c = SimulatedClocks::new(SystemTime::UNIX_EPOCH);
        let (m0, r0) = (c.monotonic(), c.realtime());
        c.sleep_blocking(Duration::from_millis(250));
        assert_eq!(c.monotonic() - m0, Duration::from_millis(250));
        assert_eq!(
            c.realtime().duration_since(r0).unwrap(),
            Duration::from_millis(250)
        );
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

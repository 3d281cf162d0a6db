//! Helpers shared by the crate's tests.

use media::{Codec, VideoParams};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A fresh directory under the system temp dir, removed on drop. Unique per test thread.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "recorder-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("creating a temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fixture clip's access units `(annexb, is_key)` and parameters (25 fps, 2 s GOPs).
pub fn clip(name: &str, codec: Codec) -> (Vec<(bytes::Bytes, bool)>, Arc<VideoParams>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/clips")
        .join(name);
    let c = rtsp_server::ClipSource::from_file(path, codec).expect("fixture clip");
    let frames = c.aus().map(|(d, k)| (d.clone(), k)).collect();
    (frames, Arc::new(c.params().clone()))
}

/// Simulated time for the recorder's threads, stepped by the test: `SimulatedClocks` whose
/// blocking sleeps wait until the test advances the clock past their deadline (a plain
/// `SimulatedClocks` advances itself on a blocking sleep, so threads that poll in a loop would
/// race time forward). [`SteppedClocks::settle`] waits until the threads are all asleep with a
/// deadline still ahead, so every step of the test is seen by every thread, deterministically.
pub struct SteppedClocks {
    sim: base::SimulatedClocks,
    state: parking_lot::Mutex<Stepped>,
    changed: parking_lot::Condvar,
}

#[derive(Default)]
struct Stepped {
    /// Sleeps return at once (shutdown).
    free: bool,
    next_token: u64,
    /// Deadlines of the threads asleep now.
    sleepers: std::collections::HashMap<u64, std::time::Instant>,
}

impl SteppedClocks {
    pub fn new(boot: std::time::SystemTime) -> Arc<Self> {
        Arc::new(SteppedClocks {
            sim: base::SimulatedClocks::new(boot),
            state: parking_lot::Mutex::new(Stepped::default()),
            changed: parking_lot::Condvar::new(),
        })
    }

    /// Moves simulated time forward by `d`, waking the sleeps it ends.
    pub fn advance(&self, d: std::time::Duration) {
        self.sim.advance(d);
        let _g = self.state.lock();
        self.changed.notify_all();
    }

    /// Waits until `n` threads are asleep and none of them is due: whatever the last step
    /// caused has been done. Fails (rather than hang) if that takes a minute of real time.
    pub fn settle(&self, n: usize) {
        use base::Clocks;
        let guard = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut g = self.state.lock();
        loop {
            let now = self.sim.monotonic();
            if g.sleepers.len() >= n && g.sleepers.values().all(|d| *d > now) {
                return;
            }
            assert!(
                std::time::Instant::now() < guard,
                "{} of {n} threads asleep after a minute",
                g.sleepers.len()
            );
            self.changed
                .wait_for(&mut g, std::time::Duration::from_millis(100));
        }
    }

    /// From now on sleeps return at once (so threads see a shutdown).
    pub fn free_run(&self) {
        self.state.lock().free = true;
        self.changed.notify_all();
    }
}

impl base::Clocks for SteppedClocks {
    fn monotonic(&self) -> std::time::Instant {
        self.sim.monotonic()
    }

    fn realtime(&self) -> std::time::SystemTime {
        self.sim.realtime()
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> base::clock::Sleep {
        self.sim.sleep_until(deadline)
    }

    fn sleep_blocking(&self, d: std::time::Duration) {
        let deadline = self.sim.monotonic() + d;
        let mut g = self.state.lock();
        let token = g.next_token;
        g.next_token += 1;
        g.sleepers.insert(token, deadline);
        self.changed.notify_all();
        while !g.free && self.sim.monotonic() < deadline {
            self.changed.wait(&mut g);
        }
        g.sleepers.remove(&token);
        self.changed.notify_all();
    }
}

/// Steps simulated time by `step` until `f` holds, letting the (at least `n`) sleeping
/// threads finish each step; fails after 10 s of simulated time.
pub fn step_until(
    clocks: &SteppedClocks,
    n: usize,
    step: Duration,
    what: &str,
    mut f: impl FnMut() -> bool,
) {
    let mut waited = Duration::ZERO;
    loop {
        clocks.settle(n);
        if f() {
            return;
        }
        assert!(
            waited < Duration::from_secs(10),
            "{what}: not after 10 s of simulated time"
        );
        clocks.advance(step);
        waited += step;
    }
}

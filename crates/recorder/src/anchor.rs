//! Wall-clock anchoring of a camera's 90 kHz media timeline (design 0006, "Anchoring rule").
//!
//! A camera stamps frames with a 90 kHz `pts` from its own clock; we stamp each frame with the
//! wall-clock time it was received. Neither is right on its own: `pts` is smooth but drifts from
//! wall time (cheap camera oscillators are off by tens to ~1000 ppm) and restarts on reconnect;
//! receive times follow wall time but carry network and scheduling jitter (always late, never
//! early). [`Anchor`] produces one *anchored time* per frame, in 90 kHz ticks since the Unix epoch:
//!
//! `out = pts + c`, where the per-run offset `c` starts at `recv − pts` of the run's first frame and
//! is then slewed towards the target offset `ĉ = min(recv − pts)` over the frames of the last
//! [`AnchorConfig::window`] of media time, by at most [`AnchorConfig::max_slew_ppm`] of the media time
//! elapsed. Taking the minimum discards jitter (which only ever delays a frame). Because each
//! frame's correction is smaller than its `pts` step, the anchored time never goes backwards within a
//! run; a new run re-anchors to its first receive time but never before the previous output.

use std::collections::VecDeque;

/// Tuning of [`Anchor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnchorConfig {
    /// Largest correction applied, in parts per million of media time elapsed. Must exceed the
    /// worst camera drift for the error to stay bounded (a camera 0.1 % fast needs > 1000).
    pub max_slew_ppm: i64,
    /// Media time (90 kHz ticks) over which the minimum of `recv − pts` is taken.
    pub window: i64,
}

impl Default for AnchorConfig {
    fn default() -> Self {
        AnchorConfig {
            max_slew_ppm: 2_000,
            window: 5 * crate::TICKS_PER_SEC,
        }
    }
}

/// The anchored time of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Anchored {
    /// Wall-clock-anchored decode time, 90 kHz ticks since the Unix epoch.
    pub time_90k: i64,
    /// True when this frame started a new anchoring (new run, or `pts` went backwards).
    pub reanchored: bool,
    /// Target offset minus applied offset after this frame (ticks): how far the anchored time is
    /// from the jitter-filtered wall clock. Positive: we are behind wall time.
    pub error_90k: i64,
}

/// Per-camera anchoring state. Feed every frame of the camera, in order, to [`Anchor::push`].
#[derive(Debug)]
pub struct Anchor {
    cfg: AnchorConfig,
    run: Option<RunState>,
    last_out: Option<i64>,
}

#[derive(Debug)]
struct RunState {
    run_id: u64,
    last_pts: i64,
    /// Applied offset `c`: `out = pts + c`.
    offset: i64,
    /// Unused slew allowance below one tick, in micro-ticks (< 1_000_000).
    carry: i64,
    /// Monotonic deque of `(pts, recv − pts)` with increasing offsets: front is the window minimum.
    window: VecDeque<(i64, i64)>,
}

impl Anchor {
    /// `max_slew_ppm` is clamped to `[0, 1_000_000]` (beyond that monotonicity could not hold)
    /// and `window` to at least 0.
    pub fn new(mut cfg: AnchorConfig) -> Self {
        cfg.max_slew_ppm = cfg.max_slew_ppm.clamp(0, 1_000_000);
        cfg.window = cfg.window.max(0);
        Anchor {
            cfg,
            run: None,
            last_out: None,
        }
    }

    /// Anchors one frame. `run_id` identifies the upstream session (it changes on reconnect);
    /// `pts` is the frame's 90 kHz media time; `recv_90k` its receive time in 90 kHz ticks since
    /// the Unix epoch ([`crate::wall_90k`]).
    pub fn push(&mut self, run_id: u64, pts: i64, recv_90k: i64) -> Anchored {
        let raw = recv_90k.saturating_sub(pts);
        let continuing = matches!(&self.run, Some(r) if r.run_id == run_id && pts >= r.last_pts);
        if !continuing {
            // Re-anchor to wall time, but never before what was already output.
            let out = match self.last_out {
                Some(prev) => recv_90k.max(prev.saturating_add(1)),
                None => recv_90k,
            };
            let mut window = VecDeque::new();
            window.push_back((pts, raw));
            let offset = out.saturating_sub(pts);
            self.run = Some(RunState {
                run_id,
                last_pts: pts,
                offset,
                carry: 0,
                window,
            });
            self.last_out = Some(out);
            return Anchored {
                time_90k: out,
                reanchored: true,
                error_90k: raw - offset,
            };
        }
        let Some(r) = self.run.as_mut() else {
            unreachable!("continuing implies a run")
        };
        let dpts = pts - r.last_pts;
        r.last_pts = pts;
        while r.window.back().is_some_and(|&(_, o)| o >= raw) {
            r.window.pop_back();
        }
        r.window.push_back((pts, raw));
        while r
            .window
            .front()
            .is_some_and(|&(p, _)| p < pts - self.cfg.window)
        {
            r.window.pop_front();
        }
        let target = r.window.front().map_or(raw, |&(_, o)| o);
        let err = target - r.offset;
        // Allowance for this step: max_slew_ppm of the media time elapsed, plus the carried
        // fraction of a tick; the unused fraction below one tick carries over.
        let avail = r
            .carry
            .saturating_add(dpts.saturating_mul(self.cfg.max_slew_ppm));
        let limit = avail / 1_000_000;
        let corr = err.clamp(-limit, limit);
        r.carry = (avail - corr.abs() * 1_000_000).min(999_999);
        r.offset += corr;
        let out = pts.saturating_add(r.offset);
        debug_assert!(self.last_out.is_none_or(|p| out >= p));
        self.last_out = Some(out);
        Anchored {
            time_90k: out,
            reanchored: false,
            error_90k: target - r.offset,
        }
    }

    /// The last anchored time output, if any.
    pub fn last_out(&self) -> Option<i64> {
        self.last_out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TICKS_PER_SEC;

    /// xorshift64*: deterministic jitter without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: i64) -> i64 {
            (self.next() % n as u64) as i64
        }
    }

    const EPOCH: i64 = 1_700_000_000 * TICKS_PER_SEC;
    const FRAME: i64 = 3_000; // 30 fps in camera ticks

    /// Simulates a camera whose clock runs `ppm` fast (positive) or slow, for `secs` of camera
    /// time at 30 fps, with receive jitter up to `jitter` ticks. Returns the worst absolute
    /// difference between anchored time and true capture wall time after `settle` seconds, and
    /// asserts monotonicity and the slew bound on the way.
    fn simulate(cfg: AnchorConfig, ppm: i64, secs: i64, jitter: i64, settle: i64) -> i64 {
        let mut a = Anchor::new(cfg);
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let pts0 = 123_456_789;
        let mut prev: Option<(i64, i64)> = None; // (pts, out)
        let mut worst = 0;
        let n = secs * TICKS_PER_SEC / FRAME;
        for i in 0..n {
            let cam = i * FRAME; // camera ticks since start
            let pts = pts0 + cam;
            // Camera runs fast by ppm: true elapsed wall = cam * 1e6 / (1e6 + ppm).
            let truth = EPOCH + cam * 1_000_000 / (1_000_000 + ppm);
            let recv = truth + 9_000 + rng.below(jitter.max(1)); // 100 ms fixed latency + jitter
            let r = a.push(1, pts, recv);
            assert_eq!(r.reanchored, i == 0);
            if let Some((ppts, pout)) = prev {
                let d_out = r.time_90k - pout;
                let d_pts = pts - ppts;
                assert!(d_out >= 0, "went backwards at frame {i}");
                // Correction per step bounded by max_slew_ppm (+1 tick of carried fraction).
                let corr = (d_out - d_pts).abs();
                assert!(
                    corr <= d_pts * cfg.max_slew_ppm / 1_000_000 + 1,
                    "slew {corr} at {i}"
                );
            }
            prev = Some((pts, r.time_90k));
            if cam >= settle * TICKS_PER_SEC {
                // The fixed latency cannot be observed; compare against truth + latency.
                worst = worst.max((r.time_90k - (truth + 9_000)).abs());
            }
        }
        worst
    }

    #[test]
    fn fast_camera_over_hours_stays_within_jitter() {
        // 0.1 % fast, 3 hours, up to 50 ms of jitter: the minimum filter keeps the error within
        // 10 ms (900 ticks), far below the jitter itself.
        let worst = simulate(AnchorConfig::default(), 1_000, 3 * 3600, 4_500, 60);
        assert!(worst <= 900, "worst error {worst} ticks");
    }

    #[test]
    fn slow_camera_over_hours_stays_within_jitter() {
        let worst = simulate(AnchorConfig::default(), -1_000, 3 * 3600, 4_500, 60);
        // A slow camera's minimum lags by window * drift (5 s * 0.1 % = 5 ms = 450 ticks).
        assert!(worst <= 900, "worst error {worst} ticks");
    }

    #[test]
    fn steady_camera_error_settles_below_jitter() {
        let worst = simulate(AnchorConfig::default(), 0, 3600, 4_500, 60);
        assert!(worst <= 450, "worst error {worst} ticks");
    }

    #[test]
    fn slew_is_bounded_even_when_drift_exceeds_it() {
        // 500 ppm cannot follow a 1000 ppm camera: the error grows by ~500 ppm, never faster,
        // and time never goes backwards (both asserted inside `simulate`).
        let cfg = AnchorConfig {
            max_slew_ppm: 500,
            ..AnchorConfig::default()
        };
        let worst = simulate(cfg, 1_000, 3600, 4_500, 0);
        // 1 h at ~500 ppm uncorrected drift = 1.8 s = 162_000 ticks (+ jitter).
        assert!(
            worst > 150_000 && worst < 175_000,
            "worst error {worst} ticks"
        );
    }

    #[test]
    fn new_run_reanchors_to_wall_time_and_never_goes_back() {
        let mut a = Anchor::new(AnchorConfig::default());
        let r = a.push(1, 1_000, EPOCH);
        assert_eq!(r.time_90k, EPOCH);
        let r = a.push(1, 1_000 + 90_000, EPOCH + 90_000);
        assert_eq!(r.time_90k, EPOCH + 90_000);
        // Reconnect: pts restarts from an unrelated value, 10 s later by wall clock.
        let r = a.push(2, 77, EPOCH + 11 * 90_000);
        assert!(r.reanchored);
        assert_eq!(r.time_90k, EPOCH + 11 * 90_000);
        let r = a.push(2, 77 + 3_000, EPOCH + 11 * 90_000 + 3_000);
        assert_eq!(r.time_90k, EPOCH + 11 * 90_000 + 3_000);
        // Wall clock stepped back 1 min on the next reconnect: output stays after the last one.
        let last = r.time_90k;
        let r = a.push(3, 5, EPOCH);
        assert!(r.reanchored);
        assert_eq!(r.time_90k, last + 1);
        // ... and then slews towards wall time at the bounded rate, still never going back.
        let mut prev = r.time_90k;
        for i in 1..100 {
            let r = a.push(3, 5 + i * 3_000, EPOCH + i * 3_000);
            assert!(r.time_90k >= prev);
            assert!(r.time_90k - prev >= 3_000 - 6);
            prev = r.time_90k;
        }
    }

    #[test]
    fn pts_going_backwards_within_a_run_reanchors_monotonically() {
        let mut a = Anchor::new(AnchorConfig::default());
        a.push(1, 900_000, EPOCH);
        let r = a.push(1, 903_000, EPOCH + 3_000);
        let r2 = a.push(1, 10, EPOCH + 6_000);
        assert!(r2.reanchored);
        assert!(r2.time_90k > r.time_90k);
        assert_eq!(r2.time_90k, EPOCH + 6_000);
    }

    #[test]
    fn late_first_frame_is_slewed_back_without_going_backwards() {
        // The first frame arrives 80 ms late; later frames are on time. The anchor converges to
        // the on-time wall clock at max_slew (2000 ppm: 80 ms takes 40 s of media time).
        let mut a = Anchor::new(AnchorConfig::default());
        a.push(1, 0, EPOCH + 7_200);
        let mut prev = EPOCH + 7_200;
        let mut last = None;
        for i in 1..=(60 * 30) {
            let r = a.push(1, i * FRAME, EPOCH + i * FRAME);
            assert!(r.time_90k >= prev);
            prev = r.time_90k;
            last = Some(r);
        }
        let last = last.unwrap();
        assert_eq!(last.error_90k, 0);
        assert_eq!(last.time_90k, EPOCH + 60 * 30 * FRAME);
    }
}

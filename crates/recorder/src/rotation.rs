//! Segment rotation schedule (design 0006, "Rotation").
//!
//! Segments are cut only at key frames, target at most [`RotationConfig::period`] (60 s), and end
//! near per-camera *staggered boundaries* `offset(camera) + k·period` (anchored wall time), where
//! `offset(camera) = mix(fnv1a64(camera_id)) mod period`, so that hundreds of cameras do not all close
//! and open files in the same second.
//!
//! For a segment that started at `s`, the target boundary `b` is the first boundary strictly after
//! `s + g` (`g`: the last observed key-frame interval, 0 until two key frames have been seen; this
//! keeps a segment that started just before a boundary from being cut again one GOP later). At a
//! key frame at time `t` the segment is cut when
//! - `t ≥ b` (the boundary was reached), or
//! - `t + g > s + period` (waiting for the next key frame would exceed the period).
//!
//! With a GOP longer than the period no rule can keep segments within it; each key frame then
//! starts a segment and [`Decision::Rotate::overlong`] reports it.

use crate::TICKS_PER_SEC;

/// How much longer than the period an anchored segment may measure: the anchor's default slew
/// bound ([`crate::anchor::AnchorConfig`]), 0.2 % (120 ms per minute).
pub const SLACK_PPM: i64 = 2_000;

/// Tuning of [`Rotator`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationConfig {
    /// Target maximum segment duration, 90 kHz ticks.
    pub period: i64,
}

impl Default for RotationConfig {
    fn default() -> Self {
        RotationConfig {
            period: 60 * TICKS_PER_SEC,
        }
    }
}

/// What to do with one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No segment is open and this is not a key frame: it cannot be recorded (count the drop).
    Skip,
    /// Open the first segment of a run with this key frame.
    Start,
    /// Append to the open segment.
    Append,
    /// Close the open segment (its end is this frame's time) and open a new one with this key frame.
    Rotate {
        /// The closed segment was longer than the period (GOP longer than expected).
        overlong: bool,
    },
}

/// FNV-1a, 64 bit: a stable hash (unlike `std`'s `DefaultHasher`, fixed across releases).
pub fn fnv1a64(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The camera's boundary offset within the period, `[0, period)` ticks: FNV-1a of the id, mixed
/// with the MurmurHash3 64-bit finalizer (FNV alone spreads similar short ids poorly), modulo the
/// period.
pub fn stagger_offset(camera_id: &str, period: i64) -> i64 {
    let mut h = fnv1a64(camera_id);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h % period.max(1) as u64) as i64
}

/// The first staggered boundary strictly after `t`.
pub fn next_boundary(t: i64, offset: i64, period: i64) -> i64 {
    offset + ((t - offset).div_euclid(period) + 1) * period
}

/// Per-camera rotation state. Feed every anchored frame of the camera to [`Rotator::push`]; call
/// [`Rotator::end_run`] when the run ends (the writer closes the open segment itself).
#[derive(Debug)]
pub struct Rotator {
    period: i64,
    offset: i64,
    open: Option<OpenSegment>,
    last_key: Option<i64>,
    gop: i64,
}

#[derive(Clone, Copy, Debug)]
struct OpenSegment {
    start: i64,
    boundary: i64,
}

impl Rotator {
    pub fn new(camera_id: &str, cfg: RotationConfig) -> Self {
        let period = cfg.period.max(1);
        Rotator {
            period,
            offset: stagger_offset(camera_id, period),
            open: None,
            last_key: None,
            gop: 0,
        }
    }

    /// This camera's boundary offset.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// The target boundary of the open segment, if one is open.
    pub fn target_boundary(&self) -> Option<i64> {
        self.open.map(|o| o.boundary)
    }

    /// Decides for one frame at anchored time `t` (non-decreasing, [`crate::anchor`]).
    pub fn push(&mut self, t: i64, is_key: bool) -> Decision {
        if is_key {
            if let Some(k) = self.last_key
                && t > k
            {
                self.gop = t - k;
            }
            self.last_key = Some(t);
        }
        let Some(open) = self.open else {
            if !is_key {
                return Decision::Skip;
            }
            self.open_at(t);
            return Decision::Start;
        };
        if !is_key {
            return Decision::Append;
        }
        let reached = t >= open.boundary;
        // Anchored times carry the anchor's slew (up to 2000 ppm), so a GOP may measure a few
        // ticks longer than the last one. Without this slack a period that is a whole number of
        // GOPs would be cut one GOP early, off the camera's boundary, and the cuts would drift.
        let slack = self.period * SLACK_PPM / 1_000_000;
        let would_overrun = t + self.gop > open.start + self.period + slack;
        if reached || would_overrun {
            let overlong = t - open.start > self.period + slack;
            self.open_at(t);
            Decision::Rotate { overlong }
        } else {
            Decision::Append
        }
    }

    /// Ends the run: the next frame must be a key frame and starts a new segment.
    pub fn end_run(&mut self) {
        self.open = None;
        self.last_key = None;
        self.gop = 0;
    }

    fn open_at(&mut self, t: i64) {
        self.open = Some(OpenSegment {
            start: t,
            boundary: next_boundary(t + self.gop, self.offset, self.period),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = TICKS_PER_SEC;
    const EPOCH: i64 = 1_700_000_000 * S;

    /// Runs `secs` of 30 fps video with a key frame every `gop_frames` frames starting at `t0`;
    /// returns segment start times (the final open segment is closed at the last frame's time).
    fn run(r: &mut Rotator, t0: i64, secs: i64, gop_frames: i64) -> (Vec<(i64, i64)>, usize) {
        let mut segs = Vec::new();
        let mut start = None;
        let mut overlong = 0;
        let mut last = t0;
        for i in 0..secs * 30 {
            let t = t0 + i * 3_000;
            last = t;
            match r.push(t, i % gop_frames == 0) {
                Decision::Skip => panic!("skip at {i}"),
                Decision::Start => start = Some(t),
                Decision::Append => {}
                Decision::Rotate { overlong: o } => {
                    overlong += usize::from(o);
                    segs.push((start.unwrap(), t));
                    start = Some(t);
                }
            }
        }
        segs.push((start.unwrap(), last));
        (segs, overlong)
    }

    #[test]
    fn offsets_are_stable_and_spread_across_the_period() {
        let p = 60 * S;
        assert_eq!(
            stagger_offset("cam-001-sheikh-zayed", p),
            stagger_offset("cam-001-sheikh-zayed", p)
        );
        assert_eq!(fnv1a64(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64("a"), 0xaf63_dc4c_8601_ec8c);
        // 200 cameras into 60 one-second buckets (3.3 per bucket on average): well spread.
        let mut buckets = [0u32; 60];
        for i in 0..200 {
            let o = stagger_offset(&format!("cam-{i:03}"), p);
            assert!((0..p).contains(&o));
            buckets[(o / S) as usize] += 1;
        }
        assert!(
            buckets.iter().filter(|&&n| n > 0).count() >= 50,
            "{buckets:?}"
        );
        assert!(buckets.iter().all(|&n| n <= 10), "{buckets:?}");
    }

    #[test]
    fn next_boundary_is_strictly_after() {
        let p = 60 * S;
        assert_eq!(next_boundary(0, 7 * S, p), 7 * S);
        assert_eq!(next_boundary(7 * S, 7 * S, p), 67 * S);
        assert_eq!(next_boundary(7 * S - 1, 7 * S, p), 7 * S);
        assert_eq!(next_boundary(-1, 0, p), 0);
    }

    #[test]
    fn segments_cut_at_key_frames_near_staggered_boundaries_and_never_exceed_60s() {
        let mut r = Rotator::new("cam-001-sheikh-zayed", RotationConfig::default());
        let off = r.offset();
        // 2 s GOP, one hour.
        let (segs, overlong) = run(&mut r, EPOCH, 3600, 60);
        assert_eq!(overlong, 0);
        for (i, &(s, e)) in segs.iter().enumerate() {
            assert!(e - s <= 60 * S, "segment {i} is {} ticks", e - s);
            assert_eq!(
                (s - EPOCH) % (2 * S),
                0,
                "segment {i} does not start at a key frame"
            );
            if i > 0 {
                // Every cut is within one GOP of a staggered boundary.
                let phase = (s - off).rem_euclid(60 * S);
                let dist = phase.min(60 * S - phase);
                assert!(dist <= 2 * S, "cut {i} is {dist} ticks from a boundary");
            }
        }
        // Steady state: full-length segments (the first and last are partial).
        assert!(
            segs[1..segs.len() - 1]
                .iter()
                .all(|&(s, e)| e - s >= 58 * S)
        );
        assert!((59..=61).contains(&segs.len()), "{}", segs.len());
    }

    #[test]
    fn cameras_rotate_at_different_times() {
        let cut_phases: Vec<i64> = ["cam-a", "cam-b", "cam-c", "cam-d"]
            .iter()
            .map(|id| {
                let mut r = Rotator::new(id, RotationConfig::default());
                let (segs, _) = run(&mut r, EPOCH, 300, 30);
                (segs[2].0 - EPOCH).rem_euclid(60 * S) / S
            })
            .collect();
        let mut distinct = cut_phases.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() >= 3, "{cut_phases:?}");
    }

    #[test]
    fn waits_for_a_key_frame_and_rotates_only_on_key_frames() {
        let mut r = Rotator::new("cam-x", RotationConfig::default());
        assert_eq!(r.push(EPOCH, false), Decision::Skip);
        assert_eq!(r.push(EPOCH + 3_000, true), Decision::Start);
        let b = r.target_boundary().unwrap();
        // Past the boundary but not a key frame: append.
        assert_eq!(r.push(b + 10, false), Decision::Append);
        assert_eq!(r.push(b + 20, true), Decision::Rotate { overlong: false });
        r.end_run();
        assert_eq!(r.push(b + 30, false), Decision::Skip);
        assert_eq!(r.push(b + 40, true), Decision::Start);
    }

    #[test]
    fn gop_longer_than_period_reports_overlong_segments() {
        let cfg = RotationConfig { period: 10 * S };
        let mut r = Rotator::new("cam-long-gop", cfg);
        // Key frame every 15 s.
        let (segs, overlong) = run(&mut r, EPOCH, 120, 450);
        assert!(overlong >= 6, "{overlong}");
        assert!(segs.iter().all(|&(s, e)| e - s <= 15 * S));
    }

    #[test]
    fn first_segment_of_a_run_ends_at_the_next_boundary() {
        let mut r = Rotator::new("cam-y", RotationConfig::default());
        let off = r.offset();
        // Start 5 s before this camera's boundary.
        let t0 = next_boundary(EPOCH, off, 60 * S) - 5 * S;
        let (segs, _) = run(&mut r, t0, 130, 30);
        assert_eq!(segs[0], (t0, t0 + 5 * S));
        assert_eq!(segs[1].1 - segs[1].0, 60 * S);
    }

    #[test]
    fn slew_jitter_does_not_pull_cuts_off_the_boundary() {
        // 2 s GOPs whose anchored length wobbles by a few ticks (the anchor's slew): cuts stay
        // within one GOP after the camera's boundary, and segments within period + slack.
        let period = 60 * TICKS_PER_SEC;
        let mut r = Rotator::new("cam-jitter", RotationConfig { period });
        let off = r.offset();
        let mut t = 1_700_000_000 * TICKS_PER_SEC;
        let mut start = None;
        let mut cuts = 0;
        for k in 0..2_000i64 {
            t += 2 * TICKS_PER_SEC + [1, -1, 3, 0, 2][(k % 5) as usize];
            match r.push(t, true) {
                Decision::Start => start = Some(t),
                Decision::Rotate { overlong } => {
                    assert!(!overlong);
                    let s = start.replace(t).unwrap();
                    assert!(
                        t - s <= period + period * SLACK_PPM / 1_000_000,
                        "{}",
                        t - s
                    );
                    let since = (t - off).rem_euclid(period);
                    assert!(
                        since < 2 * TICKS_PER_SEC + 10,
                        "cut {since} ticks after the boundary"
                    );
                    cuts += 1;
                }
                d => assert_eq!(d, Decision::Append),
            }
        }
        assert!(cuts >= 60, "{cuts} cuts in 4000 s");
    }
}

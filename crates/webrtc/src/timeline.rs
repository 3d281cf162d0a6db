//! Mapping frame presentation times to one continuous RTP timeline per session.

use std::time::{Duration, Instant};

/// Jumps larger than this (or any backwards jump) mean the upstream restarted.
const MAX_JUMP: i64 = 5 * media::VIDEO_CLOCK_RATE as i64;

/// Fallback frame interval when neither the stream nor history says (30 fps).
const DEFAULT_INTERVAL: i64 = 3000;

/// Maps a channel's 90 kHz `pts` to RTP time. The output always advances: when `pts` goes
/// backwards or jumps forward by more than 5 s (the upstream reconnected and started a new
/// timeline), the mapping is re-anchored. Without that, a receiver would hold or drop the new
/// frames as far in the past or future, and the viewer would need to re-signal to see video again.
///
/// A re-anchored run starts where the wall clock says, not one frame after the last one: the RTP
/// time advances by the time that passed since the last frame was sent, in whole frame intervals
/// (at least one). A receiver paces playout by RTP time against arrival time (libwebrtc's timestamp
/// extrapolator and jitter estimator, and the RTCP sender reports str0m derives from the same
/// pair); an outage of seconds squeezed into one frame interval looks to it like every later frame
/// arriving seconds late, so Chromium kept receiving 25 fps after a camera reconnect but decoded
/// fewer, and its jitter-buffer delay grew past 800 ms. With the gap kept, the new run looks like
/// a pause in the stream, which receivers handle like any loss.
#[derive(Debug, Clone)]
pub struct RtpTimeline {
    /// `rtp = pts + offset`.
    offset: i64,
    last_pts: Option<i64>,
    last_rtp: i64,
    /// When the last frame was mapped.
    last_wall: Option<Instant>,
    /// The last positive pts step seen within one run.
    last_step: i64,
    /// The timeline was re-anchored this many times.
    pub reanchors: u64,
}

impl RtpTimeline {
    /// `start` is the RTP time of the first frame (random in production).
    pub fn new(start: u32) -> Self {
        RtpTimeline {
            offset: 0,
            last_pts: None,
            last_rtp: i64::from(start),
            last_wall: None,
            last_step: 0,
            reanchors: 0,
        }
    }

    /// The RTP time (90 kHz, not wrapped) for a frame sent at `now`; `interval` is the nominal
    /// frame interval in 90 kHz units when the stream declares a frame rate.
    pub fn map(&mut self, pts: i64, now: Instant, interval: Option<i64>) -> u64 {
        match self.last_pts {
            None => self.offset = self.last_rtp.saturating_sub(pts),
            Some(last) => {
                let step = pts.saturating_sub(last);
                if !(0..=MAX_JUMP).contains(&step) {
                    let interval = interval
                        .filter(|i| *i > 0)
                        .or((self.last_step > 0).then_some(self.last_step))
                        .unwrap_or(DEFAULT_INTERVAL);
                    let elapsed = self
                        .last_wall
                        .map(|w| ticks(now.saturating_duration_since(w)))
                        .unwrap_or(0);
                    // Whole frame intervals (at least one), so that a restart without an
                    // outage stays exactly one frame step, whatever the scheduling jitter.
                    let frames = (elapsed.saturating_add(interval / 2) / interval).max(1);
                    self.offset = self
                        .last_rtp
                        .saturating_add(frames.saturating_mul(interval))
                        .saturating_sub(pts);
                    self.reanchors += 1;
                } else if step > 0 {
                    self.last_step = step;
                }
            }
        }
        self.last_pts = Some(pts);
        self.last_wall = Some(now);
        self.last_rtp = pts.saturating_add(self.offset).max(0);
        self.last_rtp as u64
    }
}

/// A duration in 90 kHz ticks (saturating).
fn ticks(d: Duration) -> i64 {
    let t = d
        .as_micros()
        .saturating_mul(u128::from(media::VIDEO_CLOCK_RATE))
        / 1_000_000;
    i64::try_from(t).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuous_and_reanchored() {
        // Frames mapped 40 ms apart, as a 25 fps camera delivers them.
        let t0 = Instant::now();
        let at = |n: u64| t0 + Duration::from_millis(40 * n);
        let mut t = RtpTimeline::new(1000);
        assert_eq!(t.map(500_000, at(0), None), 1000);
        assert_eq!(t.map(503_600, at(1), None), 4600);
        // Upstream restarted at pts 0: one interval (last step) later.
        assert_eq!(t.map(0, at(2), None), 8200);
        assert_eq!(t.map(3600, at(3), None), 11_800);
        // Forward jump beyond 5 s, declared 25 fps.
        assert_eq!(t.map(3600 + 10 * 90_000, at(4), Some(3600)), 15_400);
        // A 4 s gap (frames lost) is kept as is.
        assert_eq!(
            t.map(3600 + 14 * 90_000, at(5), Some(3600)),
            15_400 + 4 * 90_000
        );
        assert_eq!(t.reanchors, 2);
        // Extreme values do not panic.
        let mut t = RtpTimeline::new(u32::MAX);
        t.map(i64::MIN, t0, None);
        t.map(i64::MAX, t0 + Duration::from_secs(u64::MAX / 4), None);
        t.map(i64::MIN, t0, None);
    }

    /// A camera that reconnects after an outage: the new run's RTP time is the old run's plus
    /// the wall-clock time in between, so RTP time keeps pace with arrival time (the frames of
    /// both runs are on one line of slope 90 kHz per second).
    #[test]
    fn restart_after_an_outage_keeps_rtp_in_step_with_wall_time() {
        let t0 = Instant::now();
        let mut t = RtpTimeline::new(0);
        let mut sent = Vec::new();
        // Run 1: 100 frames at 25 fps from pts 7_000_000.
        for n in 0..100u64 {
            let now = t0 + Duration::from_millis(40 * n);
            sent.push((now, t.map(7_000_000 + 3600 * n as i64, now, Some(3600))));
        }
        // A 2.51 s outage; run 2 restarts at pts 0, its frames 40.3 ms apart (a camera clock
        // a little slow, scheduling jitter).
        let resume = t0 + Duration::from_millis(40 * 99 + 2510);
        for n in 0..100u64 {
            let now = resume + Duration::from_micros(40_300 * n);
            sent.push((now, t.map(3600 * n as i64, now, Some(3600))));
        }
        assert_eq!(t.reanchors, 1);
        // RTP time follows wall time across the restart, within half a frame interval where
        // the run starts (then as the camera's clock says).
        let (first_now, first_rtp) = sent[100];
        let wall = ticks(first_now.saturating_duration_since(t0));
        assert!(
            (first_rtp as i64 - wall).abs() <= 1800,
            "{first_rtp} vs {wall}"
        );
        assert_eq!(first_rtp, 3600 * (99 + 63));
        for (now, rtp) in &sent[..100] {
            assert_eq!(*rtp, ticks(now.saturating_duration_since(t0)) as u64);
        }
        // Strictly increasing.
        assert!(sent.windows(2).all(|w| w[1].1 > w[0].1));
    }
}

//! Mapping frame presentation times to one continuous RTP timeline per session.

/// Jumps larger than this (or any backwards jump) mean the upstream restarted.
const MAX_JUMP: i64 = 5 * media::VIDEO_CLOCK_RATE as i64;

/// Fallback frame interval when neither the stream nor history says (30 fps).
const DEFAULT_INTERVAL: i64 = 3000;

/// Maps a channel's 90 kHz `pts` to RTP time. The output always advances: when `pts` goes
/// backwards or jumps forward by more than 5 s (the upstream reconnected and started a new
/// timeline), the mapping is re-anchored so the next RTP time is the previous one plus one frame
/// interval. Without that, a receiver would hold or drop the new frames as far in the past or
/// future, and the viewer would need to re-signal to see video again.
#[derive(Debug, Clone)]
pub struct RtpTimeline {
    /// `rtp = pts + offset`.
    offset: i64,
    last_pts: Option<i64>,
    last_rtp: i64,
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
            last_step: 0,
            reanchors: 0,
        }
    }

    /// The RTP time (90 kHz, not wrapped) for a frame; `interval` is the nominal frame interval in
    /// 90 kHz units when the stream declares a frame rate.
    pub fn map(&mut self, pts: i64, interval: Option<i64>) -> u64 {
        match self.last_pts {
            None => self.offset = self.last_rtp.saturating_sub(pts),
            Some(last) => {
                let step = pts.saturating_sub(last);
                if !(0..=MAX_JUMP).contains(&step) {
                    let interval = interval
                        .filter(|i| *i > 0)
                        .or((self.last_step > 0).then_some(self.last_step))
                        .unwrap_or(DEFAULT_INTERVAL);
                    self.offset = self.last_rtp.saturating_add(interval).saturating_sub(pts);
                    self.reanchors += 1;
                } else if step > 0 {
                    self.last_step = step;
                }
            }
        }
        self.last_pts = Some(pts);
        self.last_rtp = pts.saturating_add(self.offset).max(0);
        self.last_rtp as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuous_and_reanchored() {
        let mut t = RtpTimeline::new(1000);
        assert_eq!(t.map(500_000, None), 1000);
        assert_eq!(t.map(503_600, None), 4600);
        // Upstream restarted at pts 0: one interval (last step) later.
        assert_eq!(t.map(0, None), 8200);
        assert_eq!(t.map(3600, None), 11_800);
        // Forward jump beyond 5 s, declared 25 fps.
        assert_eq!(t.map(3600 + 10 * 90_000, Some(3600)), 15_400);
        // A 4 s gap (frames lost) is kept as is.
        assert_eq!(t.map(3600 + 14 * 90_000, Some(3600)), 15_400 + 4 * 90_000);
        assert_eq!(t.reanchors, 2);
        // Extreme values do not panic.
        let mut t = RtpTimeline::new(u32::MAX);
        t.map(i64::MIN, None);
        t.map(i64::MAX, None);
        t.map(i64::MIN, None);
    }
}

//! The channel core: GOP cache, subscriber queues and demand, with no I/O and no clock. Time comes
//! in as `now` arguments, so tests drive it with simulated time.

use media::{AudioFrame, Frame};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Tunables of a channel.
#[derive(Clone, Debug)]
pub struct ChannelConfig {
    /// How long the upstream keeps running after the last subscriber leaves.
    pub idle_grace: Duration,
    /// The GOP cache is dropped (and a new one starts at the next key frame) beyond this size.
    pub gop_cache_max_bytes: usize,
    /// A subscriber's queue holds at most this many frames; past it, the subscriber skips to the
    /// next key frame.
    pub queue_max_frames: usize,
    /// An audio queue holds at most this many frames (AAC at 48 kHz makes 47 a second); past it,
    /// the oldest are dropped.
    pub audio_queue_max_frames: usize,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            idle_grace: Duration::from_secs(10),
            gop_cache_max_bytes: 8 << 20,
            queue_max_frames: 150,
            audio_queue_max_frames: 500,
        }
    }
}

/// Counters of one subscriber, as shown in stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubscriberStats {
    /// Frames handed to the subscriber.
    pub delivered: u64,
    /// Times the subscriber fell behind and was moved to the next key frame.
    pub skips: u64,
    /// Frames dropped because of those skips (queued frames discarded and frames not queued while
    /// waiting for a key frame).
    pub dropped: u64,
    /// Audio frames dropped because the audio queue was full.
    pub audio_dropped: u64,
}

struct SubQueue {
    id: u64,
    queue: VecDeque<Frame>,
    /// Audio frames, for subscribers that asked for audio ([`ChannelCore::subscribe_av`]).
    audio: Option<VecDeque<AudioFrame>>,
    /// Drop everything until the next key frame (set after a skip or a key frame request).
    waiting_for_key: bool,
    stats: SubscriberStats,
    wake: Arc<Notify>,
}

/// Counters of a channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelStats {
    pub frames_in: u64,
    pub bytes_in: u64,
    pub key_frames_in: u64,
    pub audio_frames_in: u64,
    /// Times the GOP cache outgrew its limit and was dropped.
    pub gop_cache_overflows: u64,
    /// Video frames whose pts the upstream had to rewrite because the camera's clock did not
    /// advance (a timestamp equal to or before the previous one): their timing is not the
    /// camera's.
    pub pts_rewritten: u64,
}

/// The state of one channel. Not thread-safe by itself; the shell wraps it in a mutex.
pub struct ChannelCore {
    cfg: ChannelConfig,
    gop: Vec<Frame>,
    gop_bytes: usize,
    /// Audio frames from the start of the cached GOP on, so an audio subscriber starting at the
    /// cached key frame gets the audio that goes with it.
    gop_audio: VecDeque<AudioFrame>,
    subs: Vec<SubQueue>,
    next_id: u64,
    /// Holders that want the upstream running without consuming frames through a queue (recorder).
    pins: usize,
    /// When the last subscriber or pin went away, while none is present.
    idle_since: Option<Instant>,
    stats: ChannelStats,
}

impl ChannelCore {
    pub fn new(cfg: ChannelConfig) -> Self {
        ChannelCore {
            cfg,
            gop: Vec::new(),
            gop_bytes: 0,
            gop_audio: VecDeque::new(),
            subs: Vec::new(),
            next_id: 1,
            pins: 0,
            idle_since: None,
            stats: ChannelStats::default(),
        }
    }

    pub fn config(&self) -> &ChannelConfig {
        &self.cfg
    }

    /// Adds a subscriber whose queue starts with the cached GOP (so it begins at the latest key
    /// frame at once); `wake` is notified whenever a frame is queued for it.
    pub fn subscribe(&mut self, wake: Arc<Notify>) -> u64 {
        self.subscribe_inner(wake, false)
    }

    /// Like [`ChannelCore::subscribe`], and the subscriber also gets the audio frames (starting
    /// with those of the cached GOP).
    pub fn subscribe_av(&mut self, wake: Arc<Notify>) -> u64 {
        self.subscribe_inner(wake, true)
    }

    fn subscribe_inner(&mut self, wake: Arc<Notify>, audio: bool) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let queue: VecDeque<Frame> = self.gop.iter().cloned().collect();
        let waiting_for_key = queue.is_empty();
        if !queue.is_empty() {
            wake.notify_one();
        }
        let audio = audio.then(|| {
            if self.gop.is_empty() {
                VecDeque::new()
            } else {
                self.gop_audio.clone()
            }
        });
        self.subs.push(SubQueue {
            id,
            queue,
            audio,
            waiting_for_key,
            stats: SubscriberStats::default(),
            wake,
        });
        self.idle_since = None;
        id
    }

    /// Removes a subscriber; returns false if it was not there.
    pub fn unsubscribe(&mut self, id: u64, now: Instant) -> bool {
        let before = self.subs.len();
        self.subs.retain(|s| s.id != id);
        let removed = self.subs.len() != before;
        if removed {
            self.mark_idle_if_unused(now);
        }
        removed
    }

    /// Keeps the upstream wanted without a queue (e.g. continuous recording).
    pub fn pin(&mut self) {
        self.pins += 1;
        self.idle_since = None;
    }

    pub fn unpin(&mut self, now: Instant) {
        self.pins = self.pins.saturating_sub(1);
        self.mark_idle_if_unused(now);
    }

    fn mark_idle_if_unused(&mut self, now: Instant) {
        if self.subs.is_empty() && self.pins == 0 && self.idle_since.is_none() {
            self.idle_since = Some(now);
        }
    }

    pub fn subscriber_count(&self) -> usize {
        self.subs.len()
    }

    /// Whether the upstream should be running at `now`.
    pub fn wanted(&self, now: Instant) -> bool {
        if !self.subs.is_empty() || self.pins > 0 {
            return true;
        }
        match self.idle_since {
            Some(t) => now.saturating_duration_since(t) < self.cfg.idle_grace,
            None => false,
        }
    }

    /// When the upstream stops being wanted if nothing changes, if that is in the future.
    pub fn idle_deadline(&self) -> Option<Instant> {
        if !self.subs.is_empty() || self.pins > 0 {
            return None;
        }
        self.idle_since.map(|t| t + self.cfg.idle_grace)
    }

    /// Takes one frame from the upstream: updates the GOP cache and every subscriber queue.
    pub fn publish(&mut self, frame: Frame) {
        self.stats.frames_in += 1;
        self.stats.bytes_in += frame.data.len() as u64;
        if frame.is_key {
            self.stats.key_frames_in += 1;
            self.gop.clear();
            self.gop_bytes = 0;
            while self.gop_audio.front().is_some_and(|a| a.pts < frame.pts) {
                self.gop_audio.pop_front();
            }
        }
        if frame.is_key || !self.gop.is_empty() {
            self.gop_bytes += frame.data.len();
            if self.gop_bytes > self.cfg.gop_cache_max_bytes {
                self.stats.gop_cache_overflows += 1;
                self.gop.clear();
                self.gop_bytes = 0;
            } else {
                self.gop.push(frame.clone());
            }
        }
        let max = self.cfg.queue_max_frames;
        for s in &mut self.subs {
            if s.waiting_for_key {
                if !frame.is_key {
                    s.stats.dropped += 1;
                    continue;
                }
                s.waiting_for_key = false;
            }
            if s.queue.len() >= max {
                // Too slow: drop what is queued and resume at the next key frame.
                s.stats.skips += 1;
                s.stats.dropped += s.queue.len() as u64;
                s.queue.clear();
                if !frame.is_key {
                    s.waiting_for_key = true;
                    s.stats.dropped += 1;
                    continue;
                }
            }
            s.queue.push_back(frame.clone());
            s.wake.notify_one();
        }
    }

    /// Takes one audio frame from the upstream: queued for the subscribers that want audio.
    pub fn publish_audio(&mut self, frame: AudioFrame) {
        self.stats.audio_frames_in += 1;
        self.stats.bytes_in += frame.data.len() as u64;
        let max = self.cfg.audio_queue_max_frames.max(1);
        if self.gop_audio.len() >= max {
            self.gop_audio.pop_front();
        }
        self.gop_audio.push_back(frame.clone());
        for s in &mut self.subs {
            let Some(q) = &mut s.audio else { continue };
            if q.len() >= max {
                q.pop_front();
                s.stats.audio_dropped += 1;
            }
            q.push_back(frame.clone());
            s.wake.notify_one();
        }
    }

    /// The upstream ended: the cached GOP belongs to a session that is gone, so a new subscriber
    /// must wait for the next session's first key frame. Queued frames are still delivered.
    pub fn upstream_ended(&mut self) {
        self.gop.clear();
        self.gop_bytes = 0;
        self.gop_audio.clear();
    }

    /// Pops the next audio frame for subscriber `id` (none unless it subscribed with audio).
    pub fn pop_audio(&mut self, id: u64) -> Option<AudioFrame> {
        let s = self.subs.iter_mut().find(|s| s.id == id)?;
        s.audio.as_mut()?.pop_front()
    }

    /// Pops the next frame for subscriber `id`.
    pub fn pop(&mut self, id: u64) -> Option<Frame> {
        let s = self.subs.iter_mut().find(|s| s.id == id)?;
        let f = s.queue.pop_front()?;
        s.stats.delivered += 1;
        Some(f)
    }

    /// A viewer lost its decoder state (PLI/FIR). If the queue already starts with a key frame the
    /// request is served by it; otherwise queued frames are dropped and delivery resumes with the
    /// next key frame from the upstream (cameras cannot be asked for one over RTSP).
    pub fn request_key_frame(&mut self, id: u64) {
        let Some(s) = self.subs.iter_mut().find(|s| s.id == id) else {
            return;
        };
        match s.queue.iter().position(|f| f.is_key) {
            Some(i) => {
                s.stats.dropped += i as u64;
                s.queue.drain(..i);
            }
            None => {
                s.stats.dropped += s.queue.len() as u64;
                s.queue.clear();
                s.waiting_for_key = true;
            }
        }
    }

    pub fn subscriber_stats(&self, id: u64) -> Option<SubscriberStats> {
        self.subs.iter().find(|s| s.id == id).map(|s| s.stats)
    }

    pub fn stats(&self) -> ChannelStats {
        self.stats
    }

    /// The upstream rewrote the pts of `n` frames (see [`ChannelStats::pts_rewritten`]).
    pub fn note_pts_rewritten(&mut self, n: u64) {
        self.stats.pts_rewritten = self.stats.pts_rewritten.saturating_add(n);
    }

    /// Frames and bytes in the GOP cache.
    pub fn gop_cache_len(&self) -> (usize, usize) {
        (self.gop.len(), self.gop_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use media::{Codec, VideoParams};
    use std::time::SystemTime;

    fn params() -> Arc<VideoParams> {
        Arc::new(VideoParams {
            codec: Codec::H264,
            version: 1,
            width: 640,
            height: 360,
            frame_rate: Some((25, 1)),
            rfc6381: "avc1.64001e".into(),
            h264_profile_level_id: Some([0x64, 0, 0x1e]),
            vps: None,
            sps: Bytes::from_static(&[0x67]),
            pps: Bytes::from_static(&[0x68]),
        })
    }

    /// Frame `n` of a stream with a key frame every `gop` frames.
    fn frame(n: i64, gop: i64) -> Frame {
        Frame {
            pts: n * 3600,
            received: SystemTime::UNIX_EPOCH,
            is_key: n % gop == 0,
            data: Bytes::from(vec![0u8; 100]),
            params: params(),
        }
    }

    fn drain(c: &mut ChannelCore, id: u64) -> Vec<i64> {
        std::iter::from_fn(|| c.pop(id))
            .map(|f| f.pts / 3600)
            .collect()
    }

    #[test]
    fn fan_out_delivers_every_frame_to_every_subscriber() {
        let mut c = ChannelCore::new(ChannelConfig::default());
        let (a, b) = (c.subscribe(Arc::default()), c.subscribe(Arc::default()));
        for n in 0..20 {
            c.publish(frame(n, 10));
        }
        let want: Vec<i64> = (0..20).collect();
        assert_eq!(drain(&mut c, a), want);
        assert_eq!(drain(&mut c, b), want);
        assert_eq!(c.stats().frames_in, 20);
        assert_eq!(c.subscriber_stats(a).unwrap().delivered, 20);
    }

    /// AAC frame `n` at 16 kHz (1024 samples = 5760 ticks at 90 kHz).
    fn audio(n: i64) -> AudioFrame {
        AudioFrame {
            pts: n * 5760,
            received: SystemTime::UNIX_EPOCH,
            duration: 1024,
            data: Bytes::from(vec![0u8; 40]),
            params: Arc::new(media::AudioParams {
                codec: media::AudioCodec::Aac,
                sample_rate: 16_000,
                channels: 1,
                rfc6381: "mp4a.40.2".into(),
                config: Bytes::from_static(&[0x14, 0x08]),
            }),
        }
    }

    #[test]
    fn audio_goes_only_to_av_subscribers_starting_with_the_cached_gop() {
        let cfg = ChannelConfig {
            audio_queue_max_frames: 100,
            ..ChannelConfig::default()
        };
        let mut c = ChannelCore::new(cfg);
        let viewer = c.subscribe(Arc::default());
        // 2 s of 25 fps video with a key frame every second, and 16 kHz AAC (15.6 frames/s),
        // interleaved by time.
        let (mut v, mut a) = (0, 0);
        while v < 50 {
            if a * 5760 <= v * 3600 {
                c.publish_audio(audio(a));
                a += 1;
            } else {
                c.publish(frame(v, 25));
                v += 1;
            }
        }
        assert!(c.pop_audio(viewer).is_none(), "viewers never get audio");
        // A recorder subscribing now starts at key frame 25 (1 s) with the audio from 1 s on.
        let rec = c.subscribe_av(Arc::default());
        assert_eq!(c.pop(rec).map(|f| f.pts), Some(25 * 3600));
        let first = c.pop_audio(rec).map(|f| f.pts);
        assert_eq!(first, Some(16 * 5760), "first audio frame at or after 1 s");
        let rest = std::iter::from_fn(|| c.pop_audio(rec)).count();
        assert_eq!(1 + rest, (a - 16) as usize);
        assert_eq!(c.stats().audio_frames_in, a as u64);

        // A recorder that stops reading loses the oldest audio, counted.
        for n in a..a + 150 {
            c.publish_audio(audio(n));
        }
        let st = c.subscriber_stats(rec).unwrap();
        assert_eq!(st.audio_dropped, 50);
        assert_eq!(c.pop_audio(rec).map(|f| f.pts), Some((a + 50) * 5760));

        // A new session: the cache (and its audio) is gone.
        c.upstream_ended();
        let late = c.subscribe_av(Arc::default());
        assert!(c.pop_audio(late).is_none());
    }

    #[test]
    fn new_subscriber_starts_at_latest_key_frame_from_cache() {
        let mut c = ChannelCore::new(ChannelConfig::default());
        for n in 0..25 {
            c.publish(frame(n, 10));
        }
        let wake = Arc::new(Notify::new());
        let s = c.subscribe(wake.clone());
        // The cache holds frames 20..25: the new subscriber gets them at once, key frame first.
        assert_eq!(drain(&mut c, s), vec![20, 21, 22, 23, 24]);
        c.publish(frame(25, 10));
        assert_eq!(drain(&mut c, s), vec![25]);
    }

    #[test]
    fn subscriber_before_any_key_frame_waits_for_one() {
        let mut c = ChannelCore::new(ChannelConfig::default());
        c.publish(frame(3, 10)); // joined mid-GOP: not cacheable
        let s = c.subscribe(Arc::default());
        for n in 4..12 {
            c.publish(frame(n, 10));
        }
        assert_eq!(drain(&mut c, s), vec![10, 11]);
        assert_eq!(c.subscriber_stats(s).unwrap().dropped, 6);
    }

    #[test]
    fn slow_subscriber_skips_to_next_key_frame_and_counts_it() {
        let cfg = ChannelConfig {
            queue_max_frames: 8,
            ..Default::default()
        };
        let mut c = ChannelCore::new(cfg);
        let fast = c.subscribe(Arc::default());
        let slow = c.subscribe(Arc::default());
        let mut fast_got = Vec::new();
        for n in 0..28 {
            c.publish(frame(n, 10));
            fast_got.extend(drain(&mut c, fast));
        }
        assert_eq!(fast_got, (0..28).collect::<Vec<_>>());
        // The slow one never read: its queue overflowed at frame 8, it skipped to key frame 10,
        // overflowed again at 18, skipped to 20, and holds 20..28 (8 frames).
        let st = c.subscriber_stats(slow).unwrap();
        assert_eq!(st.skips, 2);
        assert_eq!(st.dropped, 8 + 2 + 8 + 2);
        let got = drain(&mut c, slow);
        assert_eq!(got[0], 20, "resumes at a key frame: {got:?}");
        assert_eq!(got.len(), 8);
        assert_eq!(c.subscriber_stats(fast).unwrap().skips, 0);
    }

    #[test]
    fn key_frame_request_resumes_at_next_key_frame() {
        let mut c = ChannelCore::new(ChannelConfig::default());
        let s = c.subscribe(Arc::default());
        for n in 0..5 {
            c.publish(frame(n, 10));
        }
        assert_eq!(c.pop(s).unwrap().pts, 0);
        c.request_key_frame(s);
        for n in 5..12 {
            c.publish(frame(n, 10));
        }
        assert_eq!(drain(&mut c, s), vec![10, 11]);
    }

    #[test]
    fn demand_starts_on_first_subscriber_and_stops_after_idle_grace() {
        let t0 = Instant::now();
        let cfg = ChannelConfig {
            idle_grace: Duration::from_secs(10),
            ..Default::default()
        };
        let mut c = ChannelCore::new(cfg);
        assert!(!c.wanted(t0));
        let a = c.subscribe(Arc::default());
        let b = c.subscribe(Arc::default());
        assert!(c.wanted(t0));
        assert_eq!(c.idle_deadline(), None);
        c.unsubscribe(a, t0 + Duration::from_secs(1));
        assert!(c.wanted(t0 + Duration::from_secs(100)), "b is still there");
        c.unsubscribe(b, t0 + Duration::from_secs(2));
        assert_eq!(c.idle_deadline(), Some(t0 + Duration::from_secs(12)));
        assert!(c.wanted(t0 + Duration::from_millis(11_999)));
        assert!(!c.wanted(t0 + Duration::from_secs(12)));
        // A subscriber returning within the grace cancels the stop.
        let _c2 = c.subscribe(Arc::default());
        assert!(c.wanted(t0 + Duration::from_secs(60)));
    }

    #[test]
    fn pins_keep_the_upstream_wanted() {
        let t0 = Instant::now();
        let mut c = ChannelCore::new(ChannelConfig::default());
        c.pin();
        assert!(c.wanted(t0 + Duration::from_secs(3600)));
        c.unpin(t0);
        assert!(!c.wanted(t0 + Duration::from_secs(10)));
    }

    #[test]
    fn gop_cache_is_bounded_and_reset_when_upstream_ends() {
        let cfg = ChannelConfig {
            gop_cache_max_bytes: 550,
            ..Default::default()
        };
        let mut c = ChannelCore::new(cfg);
        for n in 0..8 {
            c.publish(frame(n, 100));
        }
        assert_eq!(c.gop_cache_len(), (0, 0), "6th frame overflowed the cache");
        assert_eq!(c.stats().gop_cache_overflows, 1);
        c.publish(frame(100, 100));
        assert_eq!(c.gop_cache_len().0, 1);
        c.upstream_ended();
        assert_eq!(c.gop_cache_len().0, 0);
    }
}

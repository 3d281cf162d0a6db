//! The per-camera recording core: frames in, segment actions out. No I/O and no clock: the
//! writer ([`crate::writer`]) feeds it the camera's frames and the current time, and executes the
//! [`Action`]s it returns (open a file, append one fragment, close).
//!
//! - Every frame is anchored on the wall clock ([`crate::anchor`]).
//! - Frames are buffered until the GOP is complete (the next key frame arrives), then the whole GOP
//!   becomes one fMP4 fragment: one write per GOP. The last sample's duration is the gap to the key
//!   frame that closed the GOP, so fragments of consecutive segments are contiguous on the 90 kHz
//!   timeline.
//! - Segments are cut at key frames by [`crate::rotation::Rotator`], and also when the stream's
//!   parameters change (a new init segment is needed).
//! - A *run* ends when the media time goes backwards, jumps by more than `max_gap`, the receive
//!   time jumps by more than `max_gap`, the anchoring error exceeds `reanchor_threshold`, or
//!   nothing arrived for `max_gap` ([`Segmenter::tick`]). The pending GOP is flushed and the
//!   segment closed; the next key frame starts a new run (and a new segment).
//! - Audio (AAC) is a second track of the same files. An audio frame is placed on the anchored
//!   timeline with the offset of the latest video frame (both come on one session timeline) and
//!   is written in the fragment of the GOP it falls in, or in the next one if it arrived after that
//!   GOP was written. The audio track's decode times count samples at the audio rate; they stay
//!   contiguous unless the audio drifts from its anchored time by more than one frame (a gap in
//!   the camera's audio), where the fragment's `tfdt` is reset. Segments opened while the camera's
//!   session has audio carry the audio track; a change of audio parameters starts a new segment at
//!   the next key frame.

use crate::anchor::{Anchor, AnchorConfig};
use crate::rotation::{Decision, RotationConfig, Rotator};
use crate::{TICKS_PER_SEC, wall_90k};
use media::fmp4::{self, AudioSample, Sample};
use media::{AudioFrame, AudioParams, Codec, Frame, VideoParams};
use std::collections::VecDeque;
use std::sync::Arc;

/// Audio frames held for the GOP being collected, at most: 1000 is over 20 s of 48 kHz AAC, far
/// beyond any GOP.
const MAX_PENDING_AUDIO: usize = 1000;

/// Tuning of [`Segmenter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmenterConfig {
    pub rotation: RotationConfig,
    pub anchor: AnchorConfig,
    /// A jump in media or receive time, or a silence, longer than this ends the run (ticks).
    pub max_gap: i64,
    /// An anchoring error beyond this (either sign) ends the run, which re-anchors (ticks).
    pub reanchor_threshold: i64,
    /// A GOP growing past this many bytes is written out before its end (the fragment then
    /// does not start with a key frame).
    pub max_fragment_bytes: usize,
}

impl Default for SegmenterConfig {
    fn default() -> Self {
        SegmenterConfig {
            rotation: RotationConfig::default(),
            anchor: AnchorConfig::default(),
            max_gap: 5 * TICKS_PER_SEC,
            reanchor_threshold: 10 * TICKS_PER_SEC,
            max_fragment_bytes: 32 << 20,
        }
    }
}

/// What the writer must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start a segment. `init` (ftyp + moov) is written together with the first fragment.
    Open {
        start_90k: i64,
        /// The run's id: the anchored time of its first frame.
        run_id: i64,
        codec: &'static str,
        params: Arc<VideoParams>,
        /// The audio track's parameters, if the segment has one.
        audio: Option<Arc<AudioParams>>,
        init: Vec<u8>,
    },
    /// Append one fragment (normally one GOP) to the open segment.
    Write(FragmentOut),
    /// Close the open segment; `end_90k` is the end of its last fragment.
    Close { end_90k: i64 },
}

/// One fragment ready to be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragmentOut {
    pub bytes: Vec<u8>,
    pub start_90k: i64,
    pub end_90k: i64,
    /// Starts with a key frame (a seek point for the index).
    pub key: bool,
    pub frames: u32,
    pub audio_frames: u32,
    /// Wall-clock receive time of the frame that completed this fragment (90 kHz): the writer
    /// measures frame-arrival-to-disk lag from it.
    pub completed_recv_90k: i64,
}

/// Counters of one camera's segmenter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmenterStats {
    pub frames: u64,
    /// Frames that could not be recorded: before the first key frame of a run, or without NAL units.
    pub skipped: u64,
    pub fragments: u64,
    pub segments: u64,
    pub runs: u64,
    /// Segments longer than the rotation period (GOP longer than the period).
    pub overlong: u64,
    /// Fragments that could not be built (logged by the writer).
    pub build_errors: u64,
    /// The last anchoring error, ticks (see [`crate::anchor::Anchored::error_90k`]).
    pub anchor_error_90k: i64,
    pub audio_frames: u64,
    pub audio_written: u64,
    /// Audio frames not recorded: outside a segment, or not matching the open segment's track.
    pub audio_skipped: u64,
}

struct Buffered {
    frame: Frame,
    t: i64,
}

/// The per-camera core. See the module documentation.
pub struct Segmenter {
    cfg: SegmenterConfig,
    anchor: Anchor,
    rotator: Rotator,
    run_seq: u64,
    run_id: i64,
    /// `(pts, recv_90k)` of the last frame pushed.
    last: Option<(i64, i64)>,
    /// The last frame's anchored time and the frame interval before it (ticks).
    last_t: i64,
    last_interval: i64,
    gop: Vec<Buffered>,
    gop_bytes: usize,
    /// Parameters of the open segment.
    open: Option<Arc<VideoParams>>,
    /// The camera session's audio (set by the writer from the channel).
    audio: Option<Arc<AudioParams>>,
    /// The open segment's audio track.
    open_audio: Option<Arc<AudioParams>>,
    /// Anchored audio frames not yet written.
    audio_pending: VecDeque<(AudioFrame, i64)>,
    /// The open segment's next audio decode time (audio timescale), once it has audio samples.
    audio_next: Option<u64>,
    /// Anchored time minus pts of the last video frame of the run.
    offset: Option<i64>,
    /// Start of the open segment.
    open_start: i64,
    /// End of the open segment's last fragment.
    written_end: i64,
    sequence: u32,
    stats: SegmenterStats,
}

/// The init segment of a segment file that starts at anchored time `start_90k` (its name and
/// index row) and whose first fragment is decoded at `first_decode_90k` in the file: 0 normally,
/// since each file's `tfdt`s count from the segment's start, so the file plays on its own from 0
/// for its own length. The wall-clock start is the creation time of `mvhd`, `tkhd` and `mdhd`
/// (and every fragment's `prft` maps its media time to the wall clock). A file whose first
/// fragment was lost (`first_decode_90k` > 0) gets edit lists that present it from 0. Fails as
/// [`media::fmp4::init_segment_at`] does.
pub fn segment_init(
    params: &VideoParams,
    audio: Option<&AudioParams>,
    start_90k: i64,
    first_decode_90k: u64,
) -> Result<Vec<u8>, base::Error> {
    fmp4::init_segment_at(
        params,
        audio,
        fmp4::SegmentStart {
            decode_time_90k: first_decode_90k,
            unix_secs: start_90k.div_euclid(TICKS_PER_SEC),
        },
    )
}

impl Segmenter {
    pub fn new(camera_id: &str, cfg: SegmenterConfig) -> Self {
        Segmenter {
            anchor: Anchor::new(cfg.anchor),
            rotator: Rotator::new(camera_id, cfg.rotation),
            cfg,
            run_seq: 0,
            run_id: 0,
            last: None,
            last_t: 0,
            last_interval: 0,
            gop: Vec::new(),
            gop_bytes: 0,
            open: None,
            audio: None,
            open_audio: None,
            audio_pending: VecDeque::new(),
            audio_next: None,
            offset: None,
            open_start: 0,
            written_end: 0,
            sequence: 0,
            stats: SegmenterStats::default(),
        }
    }

    pub fn stats(&self) -> SegmenterStats {
        self.stats
    }

    /// Whether a segment is open.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Feeds one frame; appends the resulting actions to `out`.
    pub fn push(&mut self, frame: Frame, out: &mut Vec<Action>) {
        self.stats.frames += 1;
        if media::nal::annexb_nals(&frame.data).next().is_none() {
            self.stats.skipped += 1;
            return;
        }
        let recv = wall_90k(frame.received);
        if let Some((pts, last_recv)) = self.last {
            let d_pts = frame.pts.saturating_sub(pts);
            let d_recv = recv.saturating_sub(last_recv);
            if d_pts < 0 || d_pts > self.cfg.max_gap || d_recv > self.cfg.max_gap {
                self.end_run(out);
            }
        }
        let mut a = self.anchor.push(self.run_seq, frame.pts, recv);
        if a.error_90k.abs() > self.cfg.reanchor_threshold {
            self.end_run(out);
            a = self.anchor.push(self.run_seq, frame.pts, recv);
        }
        self.stats.anchor_error_90k = a.error_90k;
        if self.last.is_none() {
            self.start_run(a.time_90k);
        }
        self.last = Some((frame.pts, recv));
        let t = a.time_90k;
        self.offset = Some(t.saturating_sub(frame.pts));
        if self.last_t > 0 && t > self.last_t {
            self.last_interval = t - self.last_t;
        }
        self.last_t = t;

        let decision = self.rotator.push(t, frame.is_key);
        let params_changed = frame.is_key
            && self.open.as_ref().is_some_and(|p| {
                p.codec != frame.params.codec
                    || p.sps != frame.params.sps
                    || p.pps != frame.params.pps
                    || p.vps != frame.params.vps
                    || self.open_audio != self.audio
            });
        match decision {
            Decision::Skip => {
                self.stats.skipped += 1;
                return;
            }
            Decision::Start => {
                self.flush(t, recv, out);
                self.open_segment(t, &frame.params, out);
            }
            Decision::Rotate { overlong } => {
                self.stats.overlong += u64::from(overlong);
                self.flush(t, recv, out);
                self.close(out);
                self.open_segment(t, &frame.params, out);
            }
            Decision::Append if params_changed => {
                self.flush(t, recv, out);
                self.close(out);
                // The rotator's segment restarts here too.
                self.rotator.end_run();
                let _ = self.rotator.push(t, true);
                self.open_segment(t, &frame.params, out);
            }
            Decision::Append => {
                if frame.is_key || self.gop_bytes >= self.cfg.max_fragment_bytes {
                    self.flush(t, recv, out);
                }
            }
        }
        self.gop_bytes += frame.data.len();
        self.gop.push(Buffered { frame, t });
    }

    /// The camera session's audio parameters (`None`: no recordable audio). Segments opened from
    /// now on carry this audio track; a change starts a new segment at the next key frame.
    pub fn set_audio(&mut self, params: Option<Arc<AudioParams>>) {
        // Arc's equality compares pointers first: cheap for the same session's parameters.
        if self.audio != params {
            self.audio = params;
        }
    }

    /// Feeds one audio frame (on the same session timeline as the video frames' pts).
    pub fn push_audio(&mut self, frame: AudioFrame) {
        self.stats.audio_frames += 1;
        let (Some(offset), Some(open)) = (self.offset, &self.open_audio) else {
            self.stats.audio_skipped += 1;
            return;
        };
        if self.open.is_none() || *open != frame.params {
            self.stats.audio_skipped += 1;
            return;
        }
        let t = frame.pts.saturating_add(offset);
        if t < self.open_start || t > self.last_t.saturating_add(self.cfg.max_gap) {
            // Before the open segment (arrived after its first key frame was cut), or so far
            // ahead of the video that the camera's audio clock is not to be trusted.
            self.stats.audio_skipped += 1;
            return;
        }
        if self.audio_pending.len() >= MAX_PENDING_AUDIO {
            // Bounded whatever the camera sends (the video stalled while audio kept coming).
            self.audio_pending.pop_front();
            self.stats.audio_skipped += 1;
        }
        self.audio_pending.push_back((frame, t));
    }

    /// Ends the run if nothing arrived for `max_gap` (wall clock `now`): the pending GOP is written
    /// and the segment closed, so a stalled camera's last GOP reaches the disk.
    pub fn tick(&mut self, now: std::time::SystemTime, out: &mut Vec<Action>) {
        if let Some((_, last_recv)) = self.last
            && wall_90k(now).saturating_sub(last_recv) > self.cfg.max_gap
        {
            self.end_run(out);
        }
    }

    /// Ends the run now (the camera left, recording was turned off, shutdown).
    pub fn finish(&mut self, out: &mut Vec<Action>) {
        self.end_run(out);
    }

    fn end_run(&mut self, out: &mut Vec<Action>) {
        if !self.gop.is_empty() {
            // Nothing follows the last frame: give it the previous interval (or one 25 fps frame).
            let interval = if self.last_interval > 0 {
                self.last_interval
            } else {
                TICKS_PER_SEC / 25
            };
            let end = self.last_t.saturating_add(interval);
            let recv = self.last.map_or(0, |(_, r)| r);
            self.flush(end, recv, out);
        }
        self.close(out);
        self.rotator.end_run();
        self.audio_pending.clear();
        self.offset = None;
        self.last = None;
        self.last_t = 0;
        self.last_interval = 0;
        self.run_seq += 1;
    }

    fn start_run(&mut self, t: i64) {
        self.run_id = t;
        self.stats.runs += 1;
    }

    fn open_segment(&mut self, t: i64, params: &Arc<VideoParams>, out: &mut Vec<Action>) {
        let audio = self.audio.clone();
        match segment_init(params, audio.as_deref(), t, 0) {
            Ok(init) => {
                self.stats.segments += 1;
                self.sequence = 0;
                self.written_end = t;
                self.open = Some(params.clone());
                self.open_audio = audio.clone();
                self.audio_next = None;
                self.open_start = t;
                // Audio of the previous segment's last GOP that arrived late, or audio of another
                // track, is not carried into this segment.
                let before = self.audio_pending.len();
                self.audio_pending.retain(|(f, at)| {
                    *at >= t && audio.as_deref().is_some_and(|a| *a == *f.params)
                });
                self.stats.audio_skipped += (before - self.audio_pending.len()) as u64;
                out.push(Action::Open {
                    start_90k: t,
                    run_id: self.run_id,
                    codec: match params.codec {
                        Codec::H264 => "h264",
                        Codec::H265 => "h265",
                    },
                    params: params.clone(),
                    audio,
                    init,
                });
            }
            Err(_) => {
                // Parameters the MP4 writer cannot describe: record nothing until they change.
                self.stats.build_errors += 1;
                self.open = None;
            }
        }
    }

    fn close(&mut self, out: &mut Vec<Action>) {
        self.open_audio = None;
        self.audio_next = None;
        if self.open.take().is_some() {
            out.push(Action::Close {
                end_90k: self.written_end,
            });
        }
    }

    /// Writes the buffered frames as one fragment ending at `end` (the next frame's time).
    fn flush(&mut self, end: i64, completed_recv: i64, out: &mut Vec<Action>) {
        if self.gop.is_empty() {
            return;
        }
        let gop = std::mem::take(&mut self.gop);
        self.gop_bytes = 0;
        if self.open.is_none() {
            // The segment could not be opened: the frames are dropped (counted).
            self.stats.skipped += gop.len() as u64;
            return;
        }
        let samples: Vec<Sample> = gop
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let next = gop.get(i + 1).map_or(end, |n| n.t);
                Sample {
                    data: &b.frame.data,
                    duration: u32::try_from(next.saturating_sub(b.t).max(0)).unwrap_or(u32::MAX),
                    is_key: b.frame.is_key,
                }
            })
            .collect();
        let start = gop[0].t;
        self.sequence = self.sequence.wrapping_add(1);
        // The file's media time counts from the segment's start.
        let Ok(base) = u64::try_from(start.saturating_sub(self.open_start)) else {
            self.stats.build_errors += 1;
            return;
        };
        let audio = self.take_audio(end);
        let audio_samples: Vec<AudioSample> = audio.as_ref().map_or(Vec::new(), |(_, s)| {
            s.iter()
                .map(|(f, duration)| AudioSample {
                    data: &f.data,
                    duration: *duration,
                })
                .collect()
        });
        let audio_frames = audio_samples.len() as u32;
        let audio_arg = audio
            .as_ref()
            .map(|(dt, _)| (*dt, audio_samples.as_slice()));
        match fmp4::fragment_av(self.sequence, base, &samples, audio_arg) {
            Ok(moof_mdat) => {
                // The fragment's wall-clock time first, in the same write.
                let mut bytes = Vec::with_capacity(fmp4::PRFT_LEN + moof_mdat.len());
                bytes.extend_from_slice(&fmp4::prft(start, base));
                bytes.extend_from_slice(&moof_mdat);
                self.stats.fragments += 1;
                let end = end.max(start);
                self.written_end = end;
                out.push(Action::Write(FragmentOut {
                    bytes,
                    start_90k: start,
                    end_90k: end,
                    key: gop[0].frame.is_key,
                    frames: gop.len() as u32,
                    audio_frames,
                    completed_recv_90k: completed_recv,
                }));
            }
            Err(_) => self.stats.build_errors += 1,
        }
    }

    /// The pending audio frames before `end` as the fragment's audio track: its base decode time
    /// (audio timescale) and samples. Consecutive samples are contiguous; a hole of more than
    /// half a frame lengthens the sample before it, and a drift of more than one frame from the
    /// anchored time resets the base.
    fn take_audio(&mut self, end: i64) -> Option<(u64, Vec<(AudioFrame, u32)>)> {
        let params = self.open_audio.as_ref()?;
        let n = self
            .audio_pending
            .iter()
            .take_while(|(_, t)| *t < end)
            .count();
        if n == 0 {
            return None;
        }
        let rate = i128::from(params.sample_rate.max(1));
        // The offset from the segment's start (where the video's media time is 0) in samples.
        let open_start = self.open_start;
        let to_rate = |t: i64| -> u64 {
            let since = t.saturating_sub(open_start).max(0);
            let v = (i128::from(since) * rate + 45_000) / i128::from(TICKS_PER_SEC);
            u64::try_from(v).unwrap_or(u64::MAX)
        };
        let first = self.audio_pending.front().map_or(0, |(_, t)| to_rate(*t));
        let frame_len = u64::from(self.audio_pending.front().map_or(1024, |(f, _)| f.duration));
        let base = match self.audio_next {
            Some(next) if next.abs_diff(first) <= frame_len => next,
            _ => first,
        };
        let frames: Vec<(AudioFrame, i64)> = self.audio_pending.drain(..n).collect();
        self.stats.audio_written += n as u64;
        // Each sample's start on the audio timeline, then durations from the gaps.
        let mut at = base;
        let mut durations = Vec::with_capacity(n);
        for (i, (f, _)) in frames.iter().enumerate() {
            let mut d = u64::from(f.duration);
            if let Some((_, t_next)) = frames.get(i + 1) {
                let expected_next = to_rate(*t_next);
                let hole = expected_next.saturating_sub(at + d);
                if hole > d / 2 {
                    d += hole;
                }
            }
            durations.push(u32::try_from(d).unwrap_or(u32::MAX));
            at = at.saturating_add(d);
        }
        self.audio_next = Some(at);
        let samples = frames.into_iter().map(|(f, _)| f).zip(durations).collect();
        Some((base, samples))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::scan_bytes;
    use crate::testutil::clip;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    const T0_MS: u64 = 1_700_000_000_000;

    /// A camera: frame `n` has pts `pts0 + n·3600` and arrives at `T0 + n·40 ms + recv_off`.
    struct Cam {
        frames: Vec<(bytes::Bytes, bool)>,
        params: Arc<VideoParams>,
        n: usize,
        pts0: i64,
        recv_off_ms: u64,
    }

    impl Cam {
        fn new(name: &str, codec: Codec) -> Cam {
            let (frames, params) = clip(name, codec);
            Cam {
                frames,
                params,
                n: 0,
                pts0: 1_000,
                recv_off_ms: 0,
            }
        }
        fn received(&self) -> SystemTime {
            UNIX_EPOCH + Duration::from_millis(T0_MS + self.n as u64 * 40 + self.recv_off_ms)
        }
        fn next(&mut self) -> Frame {
            let (data, is_key) = self.frames[self.n % self.frames.len()].clone();
            let f = Frame {
                pts: self.pts0 + self.n as i64 * 3600,
                received: self.received(),
                is_key,
                data,
                params: self.params.clone(),
            };
            self.n += 1;
            f
        }
    }

    /// Segments reconstructed from actions: `(open, fragments, close)`.
    #[derive(Default, Debug)]
    struct Seg {
        start: i64,
        codec: &'static str,
        run_id: i64,
        init: Vec<u8>,
        frags: Vec<FragmentOut>,
        end: Option<i64>,
    }

    fn segments(actions: &[Action]) -> Vec<Seg> {
        let mut out: Vec<Seg> = Vec::new();
        for a in actions {
            match a {
                Action::Open {
                    start_90k,
                    run_id,
                    codec,
                    init,
                    ..
                } => out.push(Seg {
                    start: *start_90k,
                    run_id: *run_id,
                    codec,
                    init: init.clone(),
                    ..Seg::default()
                }),
                Action::Write(f) => out.last_mut().unwrap().frags.push(f.clone()),
                Action::Close { end_90k } => {
                    let s = out.last_mut().unwrap();
                    assert!(s.end.is_none(), "closed twice");
                    s.end = Some(*end_90k);
                }
            }
        }
        out
    }

    /// No rotation within the test (the staggered boundary would otherwise fall anywhere).
    fn long_period() -> SegmenterConfig {
        SegmenterConfig {
            rotation: RotationConfig {
                period: 3600 * TICKS_PER_SEC,
            },
            ..SegmenterConfig::default()
        }
    }

    fn run(cam: &mut Cam, seg: &mut Segmenter, frames: usize, out: &mut Vec<Action>) {
        for _ in 0..frames {
            seg.push(cam.next(), out);
        }
    }

    fn aac_16k() -> Arc<AudioParams> {
        Arc::new(AudioParams {
            codec: media::AudioCodec::Aac,
            sample_rate: 16_000,
            channels: 1,
            rfc6381: "mp4a.40.2".into(),
            config: bytes::Bytes::from_static(&[0x14, 0x08]),
        })
    }

    /// Plays `frames` video frames of `cam` with 16 kHz AAC (1024 samples = 5760 ticks a frame)
    /// from the same pts origin, each audio frame pushed before the first video frame at or after
    /// it (as the writer drains audio first). Audio frames in `holes` are never sent.
    fn run_av(
        cam: &mut Cam,
        seg: &mut Segmenter,
        frames: usize,
        holes: std::ops::Range<i64>,
        out: &mut Vec<Action>,
    ) -> i64 {
        let params = aac_16k();
        let mut a = 0i64;
        let mut sent = 0;
        for _ in 0..frames {
            let vt = cam.pts0 + cam.n as i64 * 3600;
            while cam.pts0 + a * 5760 <= vt {
                if !holes.contains(&a) {
                    seg.push_audio(AudioFrame {
                        pts: cam.pts0 + a * 5760,
                        received: cam.received(),
                        duration: 1024,
                        data: bytes::Bytes::from(vec![0x21, a as u8, 0x40, 0x07]),
                        params: params.clone(),
                    });
                    sent += 1;
                }
                a += 1;
            }
            seg.push(cam.next(), out);
        }
        sent
    }

    #[test]
    fn audio_is_written_with_its_gop_in_every_segment() {
        let mut cam = Cam::new("h264_a.h264", Codec::H264);
        let mut seg = Segmenter::new("cam-1", SegmenterConfig::default());
        seg.set_audio(Some(aac_16k()));
        let mut out = Vec::new();
        // 150 s, with 1 s of audio missing after 100 s.
        let sent = run_av(&mut cam, &mut seg, 25 * 150, 1600..1616, &mut out);
        seg.finish(&mut out);
        let segs = segments(&out);
        assert!(segs.len() >= 3, "{} segments", segs.len());
        let mut written = 0;
        for s in &segs {
            let mut file = s.init.clone();
            for f in &s.frags {
                file.extend_from_slice(&f.bytes);
            }
            let scan = scan_bytes(&file);
            assert_eq!(scan.valid_len, file.len() as u64, "the whole segment scans");
            assert_eq!(scan.audio.as_deref(), Some("aac"));
            let in_scan: u32 = scan.fragments.iter().map(|f| f.audio_samples).sum();
            let in_frags: u32 = s.frags.iter().map(|f| f.audio_frames).sum();
            assert_eq!(in_scan, in_frags);
            written += u64::from(in_scan);
            // 15.625 audio frames a second of video, minus the hole if it is in this segment.
            let secs = (s.end.unwrap() - s.start) as f64 / 90_000.0;
            // The first segment starts at the first video frame, whose pts is the audio's origin.
            let hole_t = segs[0].start + 1600 * 5760;
            let hole = s.start <= hole_t && hole_t < s.end.unwrap();
            let want = secs * 15.625 - if hole { 16.0 } else { 0.0 };
            assert!(
                (f64::from(in_scan) - want).abs() <= 2.0,
                "segment of {secs} s has {in_scan} audio frames, want about {want}"
            );
            // A/V sync within the file: the video's media time starts at 0, the audio's at its
            // offset from the segment's first video frame, in samples (the audio frames fall
            // every 5760 ticks from the first segment's start, which is also an audio frame's).
            let first = &s.frags[0].bytes;
            let tfdts: Vec<u64> = first
                .windows(4)
                .enumerate()
                .filter(|(_, w)| *w == b"tfdt")
                .map(|(i, _)| u64::from_be_bytes(first[i + 8..i + 16].try_into().unwrap()))
                .collect();
            // (The first segment's first audio frame came before any video: not recorded.)
            let since = (s.start - segs[0].start) % 5760;
            let offset_ticks = if s.start == segs[0].start {
                5760
            } else {
                (5760 - since) % 5760
            };
            let want_audio = (offset_ticks as u64 * 16_000 + 45_000) / 90_000;
            assert_eq!(
                tfdts,
                [0, want_audio],
                "video and audio tfdt of the first fragment"
            );
            // Every fragment after the first of a segment carries the audio of its GOP.
            for f in &s.frags[1..] {
                assert!(
                    f.audio_frames >= 30 || hole,
                    "{} audio frames",
                    f.audio_frames
                );
            }
        }
        let st = seg.stats();
        assert_eq!(st.audio_frames, sent as u64);
        assert_eq!(st.audio_written, written);
        // Only the first audio frame (before the first video frame opened a segment) is lost.
        assert_eq!(st.audio_written + st.audio_skipped, st.audio_frames);
        assert!(st.audio_skipped <= 1, "{st:?}");
    }

    #[test]
    fn audio_far_ahead_of_the_video_or_in_excess_is_dropped_not_held() {
        let mut cam = Cam::new("h264_a.h264", Codec::H264);
        let mut seg = Segmenter::new("cam-1", long_period());
        seg.set_audio(Some(aac_16k()));
        let mut out = Vec::new();
        run_av(&mut cam, &mut seg, 60, 0..0, &mut out);
        let before = seg.stats();
        // A camera whose audio clock jumped 1 h ahead: nothing is held for it.
        let frame = |pts: i64| AudioFrame {
            pts,
            received: cam.received(),
            duration: 1024,
            data: bytes::Bytes::from_static(&[0x21, 0, 0x40, 0x07]),
            params: aac_16k(),
        };
        for k in 0..5000 {
            seg.push_audio(frame(cam.pts0 + 3600 * TICKS_PER_SEC + k * 5760));
        }
        let st = seg.stats();
        assert_eq!(st.audio_skipped - before.audio_skipped, 5000);
        assert!(seg.audio_pending.len() < 40, "{}", seg.audio_pending.len());
        // A flood within the window (video stalled, audio kept coming): bounded.
        let now = cam.pts0 + cam.n as i64 * 3600;
        for _ in 0..5000 {
            seg.push_audio(frame(now));
        }
        assert_eq!(seg.audio_pending.len(), MAX_PENDING_AUDIO);
        seg.finish(&mut out);
        assert!(seg.audio_pending.is_empty());
    }

    #[test]
    fn audio_parameters_change_starts_a_segment_and_no_audio_means_no_track() {
        let mut cam = Cam::new("h264_a.h264", Codec::H264);
        let mut seg = Segmenter::new("cam-1", long_period());
        let mut out = Vec::new();
        run(&mut cam, &mut seg, 100, &mut out);
        // The camera's session now has audio: the next key frame opens a segment with it.
        seg.set_audio(Some(aac_16k()));
        run_av(&mut cam, &mut seg, 100, 0..0, &mut out);
        seg.finish(&mut out);
        let segs = segments(&out);
        assert_eq!(segs.len(), 2, "{segs:?}");
        assert_eq!(scan_bytes(&segs[0].init).audio, None);
        assert_eq!(scan_bytes(&segs[1].init).audio.as_deref(), Some("aac"));
        let audio_in_first: u32 = segs[0].frags.iter().map(|f| f.audio_frames).sum();
        assert_eq!(audio_in_first, 0);
        assert!(segs[1].frags.iter().map(|f| f.audio_frames).sum::<u32>() > 50);
    }

    #[test]
    fn one_fragment_per_gop_segments_at_most_period_and_contiguous() {
        let mut cam = Cam::new("h264_a.h264", Codec::H264);
        let mut seg = Segmenter::new("cam-1", SegmenterConfig::default());
        let mut out = Vec::new();
        run(&mut cam, &mut seg, 25 * 300, &mut out); // 5 minutes
        seg.finish(&mut out);
        let segs = segments(&out);
        // 5 minutes in segments of at most 60 s, the first one shorter (it ends at the camera's
        // staggered boundary): 5 or 6 segments.
        assert!((5..=6).contains(&segs.len()), "{} segments", segs.len());
        let offset = crate::rotation::stagger_offset("cam-1", 60 * TICKS_PER_SEC);
        let mut writes = 0;
        for (i, s) in segs.iter().enumerate() {
            let end = s.end.expect("every segment is closed");
            assert!(end - s.start <= 60 * TICKS_PER_SEC, "segment {i} too long");
            assert_eq!(s.frags[0].start_90k, s.start);
            assert_eq!(s.frags.last().unwrap().end_90k, end);
            for w in s.frags.windows(2) {
                assert_eq!(w[0].end_90k, w[1].start_90k, "fragments are contiguous");
            }
            for f in &s.frags {
                assert!(f.key, "every fragment starts with a key frame");
                assert_eq!(f.frames, 50, "one fragment per 2 s GOP");
            }
            writes += s.frags.len();
            if i + 1 < segs.len() {
                assert_eq!(segs[i + 1].start, end, "segments are contiguous");
                // Cut within one GOP after the camera's boundary.
                let since = (end - offset).rem_euclid(60 * TICKS_PER_SEC);
                assert!(
                    since < 2 * TICKS_PER_SEC,
                    "cut {since} ticks after the boundary"
                );
            }
            // The whole segment parses, with the times the segmenter reported.
            let mut file = s.init.clone();
            for f in &s.frags {
                file.extend_from_slice(&f.bytes);
            }
            let sc = scan_bytes(&file);
            assert_eq!(sc.valid_len, file.len() as u64);
            assert_eq!(sc.fragments.len(), s.frags.len());
            assert_eq!(sc.start_90k(), Some(s.start as u64));
            assert_eq!(sc.end_90k(), Some(end as u64));
            assert_eq!(sc.codec.as_deref(), Some("h264"));
            // The file's media starts at 0 (no edit list needed), each fragment's prft carries
            // its wall-clock time, and mvhd holds the wall-clock start (seconds since 1904).
            assert!(s.init.windows(4).all(|w| w != b"edts"), "no edit list");
            for (f, sf) in s.frags.iter().zip(&sc.fragments) {
                assert_eq!(sf.base_decode_time, (f.start_90k - s.start) as u64);
                assert_eq!(sf.wall_90k, f.start_90k as u64);
                assert_eq!(&f.bytes[4..8], b"prft");
            }
            let mvhd = s.init.windows(4).position(|w| w == b"mvhd").unwrap();
            assert_eq!(s.init[mvhd + 4], 1, "mvhd version 1");
            let created = u64::from_be_bytes(s.init[mvhd + 8..mvhd + 16].try_into().unwrap());
            assert_eq!(
                created as i64 - 2_082_844_800,
                s.start.div_euclid(TICKS_PER_SEC)
            );
        }
        assert_eq!(
            writes,
            25 * 300 / 50,
            "every frame written, one write per GOP"
        );
        let st = seg.stats();
        assert_eq!(st.frames, 7500);
        assert_eq!(st.skipped, 0);
        // Anchored on the receive times: the first segment starts at T0.
        assert_eq!(segs[0].start, T0_MS as i64 * 90);
    }

    #[test]
    fn frames_before_the_first_key_frame_and_garbage_are_skipped() {
        let mut cam = Cam::new("h264_a.h264", Codec::H264);
        cam.n = 10; // mid-GOP
        let mut seg = Segmenter::new("cam-1", long_period());
        let mut out = Vec::new();
        let mut junk = cam.next();
        junk.data = bytes::Bytes::from_static(&[0, 0, 0]);
        seg.push(junk, &mut out);
        run(&mut cam, &mut seg, 40 + 50, &mut out);
        let st = seg.stats();
        assert_eq!(
            st.skipped,
            1 + 39,
            "the junk frame and the rest of the first GOP"
        );
        let segs = segments(&out);
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].frags.len(), 1, "the first full GOP is written");
    }

    #[test]
    fn a_receive_gap_ends_the_run_and_starts_a_new_one() {
        let mut cam = Cam::new("h264_a.h264", Codec::H264);
        let mut seg = Segmenter::new("cam-1", long_period());
        let mut out = Vec::new();
        run(&mut cam, &mut seg, 100, &mut out);
        // The camera goes away for 20 s, then comes back with a fresh RTP session (pts restarts).
        cam.recv_off_ms = 20_000;
        cam.pts0 = -(cam.n as i64) * 3600 + 77;
        run(&mut cam, &mut seg, 100, &mut out);
        seg.finish(&mut out);
        let segs = segments(&out);
        assert_eq!(segs.len(), 2);
        assert_ne!(segs[0].run_id, segs[1].run_id);
        // All 100 frames of the first run are written; the last frame gets the previous interval.
        assert_eq!(segs[0].frags.iter().map(|f| f.frames).sum::<u32>(), 100);
        assert_eq!(segs[0].end.unwrap() - segs[0].start, 100 * 3600);
        // The second run is anchored on its own receive time (20 s later), not on the old pts.
        let gap = segs[1].start - segs[0].end.unwrap();
        assert!((gap - 20 * TICKS_PER_SEC).abs() < 90, "gap {gap}");
        assert_eq!(seg.stats().runs, 2);
    }

    #[test]
    fn tick_writes_out_a_stalled_cameras_last_gop() {
        let mut cam = Cam::new("h264_a.h264", Codec::H264);
        let mut seg = Segmenter::new("cam-1", long_period());
        let mut out = Vec::new();
        run(&mut cam, &mut seg, 75, &mut out);
        assert_eq!(segments(&out)[0].frags.len(), 1, "one full GOP so far");
        let last = cam.received();
        seg.tick(last + Duration::from_secs(4), &mut out);
        assert_eq!(
            segments(&out)[0].end,
            None,
            "4 s of silence is not a gap yet"
        );
        seg.tick(last + Duration::from_secs(6), &mut out);
        let segs = segments(&out);
        assert_eq!(segs[0].frags.len(), 2, "the pending half GOP was written");
        assert_eq!(segs[0].frags[1].frames, 25);
        assert!(segs[0].end.is_some(), "and the segment closed");
        assert!(!seg.is_open());
    }

    #[test]
    fn a_parameter_change_starts_a_new_segment() {
        let mut a = Cam::new("h264_a.h264", Codec::H264);
        let mut h = Cam::new("h265_a.h265", Codec::H265);
        let mut seg = Segmenter::new("cam-1", long_period());
        let mut out = Vec::new();
        run(&mut a, &mut seg, 100, &mut out);
        // Same camera, now sending H.265 (a firmware setting changed): continue its timeline.
        h.n = a.n;
        h.pts0 = a.pts0;
        run(&mut h, &mut seg, 100, &mut out);
        seg.finish(&mut out);
        let segs = segments(&out);
        assert_eq!(segs.len(), 2);
        assert_eq!((segs[0].codec, segs[1].codec), ("h264", "h265"));
        assert_eq!(segs[0].end, Some(segs[1].start));
        assert_eq!(segs[0].run_id, segs[1].run_id, "same run");
        let mut file = segs[1].init.clone();
        for f in &segs[1].frags {
            file.extend_from_slice(&f.bytes);
        }
        assert_eq!(scan_bytes(&file).codec.as_deref(), Some("h265"));
    }

    #[test]
    fn an_oversized_gop_is_written_in_parts() {
        let mut cam = Cam::new("h264_a.h264", Codec::H264);
        let cfg = SegmenterConfig {
            max_fragment_bytes: 20_000,
            ..long_period()
        };
        let mut seg = Segmenter::new("cam-1", cfg);
        let mut out = Vec::new();
        run(&mut cam, &mut seg, 101, &mut out);
        let segs = segments(&out);
        let frags = &segs[0].frags;
        assert!(frags.len() > 2, "{} fragments", frags.len());
        assert!(frags[0].key);
        assert!(frags.iter().skip(1).any(|f| !f.key));
        assert_eq!(frags.iter().map(|f| f.frames).sum::<u32>(), 100);
        for w in frags.windows(2) {
            assert_eq!(w[0].end_90k, w[1].start_90k);
        }
    }
}

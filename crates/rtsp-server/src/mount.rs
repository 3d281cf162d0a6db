//! A mount ("stream" in gortsplib terms): one path served by the server, with one shared pacing
//! task that produces RTP payloads at the source's frame rate (and, for a clip with audio, at its
//! audio frame rate) and broadcasts them to every playing session.
//!
//! Timing: the pacing task keeps one nominal timeline starting when it starts. Video frame `i` is
//! due at `i * ticks / 90000` s with RTP timestamp `video_base + i * ticks`; audio frame `j` at
//! `j * 1024 / sample_rate` s with RTP timestamp `audio_base + j * 1024`. Both tracks' RTP
//! timestamps are therefore linear in the same nominal time, which lets `PLAY` answer `RTP-Info`
//! `rtptime`s that name the same instant on both tracks ([`Mount::subscribe`]).

use crate::{AudioClip, ClipSource};
use media::rtp::RtpPayload;
use media::{Codec, VIDEO_CLOCK_RATE};
use parking_lot::Mutex;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// RTP payload type used for the video track.
pub(crate) const PAYLOAD_TYPE: u8 = 96;
/// RTP payload type used for the audio track (`mpeg4-generic`).
pub(crate) const AUDIO_PAYLOAD_TYPE: u8 = 97;

/// Access units buffered per mount and track for slow sessions before they lag (then skip to a
/// key frame).
const BROADCAST_CAPACITY: usize = 32;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// H.264 High 640x360 SPS/PPS (from fixtures/clips/h264_a.h264) advertised by garbage mounts.
const GARBAGE_FMTP: &str = "packetization-mode=1;profile-level-id=64001E;\
    sprop-parameter-sets=Z2QAHqyyAUBf8uAiAAADAAIAAAMAZR4sXJA=,aOvMsiw=";

/// A track of a mount; its index is the number in its control URL (`trackID=N`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Track {
    Video = 0,
    Audio = 1,
}

impl Track {
    pub const ALL: [Track; 2] = [Track::Video, Track::Audio];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The `a=control` value, relative to the mount's URL.
    pub fn control(self) -> &'static str {
        match self {
            Track::Video => "trackID=0",
            Track::Audio => "trackID=1",
        }
    }

    pub fn from_control(control: &str) -> Option<Track> {
        Track::ALL.into_iter().find(|t| t.control() == control)
    }

    pub fn payload_type(self) -> u8 {
        match self {
            Track::Video => PAYLOAD_TYPE,
            Track::Audio => AUDIO_PAYLOAD_TYPE,
        }
    }
}

/// One access unit's worth of RTP payloads, as broadcast to sessions.
#[derive(Debug)]
pub(crate) struct MountFrame {
    /// RTP timestamp on the track's clock.
    pub ts: u32,
    /// Always true for audio.
    pub is_key: bool,
    pub payloads: Arc<[RtpPayload]>,
}

pub(crate) enum MountKind {
    Clip(Arc<ClipSource>),
    /// Valid SDP, then RTP packets with valid headers and random payloads.
    Garbage,
}

/// What a session gets when it starts playing: a receiver per requested track and the RTP
/// timestamp of one and the same instant on each track's clock (for `RTP-Info: rtptime`). Every
/// frame the receivers yield has a timestamp at or after it.
pub(crate) struct Subscription {
    pub video: Option<(broadcast::Receiver<Arc<MountFrame>>, u32)>,
    pub audio: Option<(broadcast::Receiver<Arc<MountFrame>>, u32)>,
}

pub(crate) struct Mount {
    pub path: String,
    pub kind: MountKind,
    /// SSRC of the video track.
    pub ssrc: u32,
    /// SSRC of the audio track.
    pub audio_ssrc: u32,
    /// RTP timestamps of the first video and audio frames.
    video_base: u32,
    audio_base: u32,
    enabled: AtomicBool,
    started: AtomicBool,
    /// Nominal time (ns since the pacing started) of the pacing task's latest frame, whether or
    /// not it was sent. Held while broadcasting, so a subscriber reads it atomically with respect
    /// to the frames it will receive.
    position: Mutex<u64>,
    tx: broadcast::Sender<Arc<MountFrame>>,
    audio_tx: broadcast::Sender<Arc<MountFrame>>,
}

impl Mount {
    pub fn new(path: String, kind: MountKind) -> Mount {
        let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        let (audio_tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        Mount {
            path,
            kind,
            ssrc: rand::random(),
            audio_ssrc: rand::random(),
            video_base: rand::random(),
            audio_base: rand::random(),
            enabled: AtomicBool::new(true),
            started: AtomicBool::new(false),
            position: Mutex::new(0),
            tx,
            audio_tx,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Relaxed);
    }

    fn fps(&self) -> u32 {
        match &self.kind {
            MountKind::Clip(c) => c.fps(),
            MountKind::Garbage => 25,
        }
    }

    fn audio(&self) -> Option<&AudioClip> {
        match &self.kind {
            MountKind::Clip(c) => c.audio(),
            MountKind::Garbage => None,
        }
    }

    pub fn has_track(&self, track: Track) -> bool {
        match track {
            Track::Video => true,
            Track::Audio => self.audio().is_some(),
        }
    }

    pub fn track_ssrc(&self, track: Track) -> u32 {
        match track {
            Track::Video => self.ssrc,
            Track::Audio => self.audio_ssrc,
        }
    }

    /// The RTP clock rate of a track.
    pub fn clock_rate(&self, track: Track) -> u32 {
        match track {
            Track::Video => VIDEO_CLOCK_RATE,
            Track::Audio => self.audio().map_or(1, |a| a.params().sample_rate.max(1)),
        }
    }

    /// The RTP timestamp of nominal time `nanos` on a track's clock.
    fn rtp_time(&self, track: Track, nanos: u64) -> u32 {
        let base = match track {
            Track::Video => self.video_base,
            Track::Audio => self.audio_base,
        };
        let ticks = u128::from(nanos) * u128::from(self.clock_rate(track)) / NANOS_PER_SEC;
        base.wrapping_add(ticks as u32)
    }

    /// Subscribes to the requested tracks' frames, starting the pacing task on first use.
    pub fn subscribe(
        self: &Arc<Self>,
        shutdown: &watch::Receiver<bool>,
        video: bool,
        audio: bool,
    ) -> Subscription {
        let sub = {
            let position = self.position.lock();
            Subscription {
                video: video.then(|| (self.tx.subscribe(), self.rtp_time(Track::Video, *position))),
                audio: audio.then(|| {
                    (
                        self.audio_tx.subscribe(),
                        self.rtp_time(Track::Audio, *position),
                    )
                }),
            }
        };
        if !self.started.swap(true, Ordering::AcqRel) {
            let me = Arc::clone(self);
            let shutdown = shutdown.clone();
            tokio::spawn(async move { me.pace(shutdown).await });
        }
        sub
    }

    async fn pace(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let fps = self.fps();
        let ticks = VIDEO_CLOCK_RATE / fps;
        // Nominal time of video frame i, from its RTP timestamp offset (exactly 1/fps when fps
        // divides 90000).
        let video_at = |i: u64| (u128::from(i) * u128::from(ticks) * NANOS_PER_SEC / 90_000) as u64;
        let audio = self.audio().map(|a| {
            let rate = a.params().sample_rate.max(1);
            let spf = a.samples_per_frame();
            (a, rate, spf)
        });
        let audio_at = |j: u64| {
            audio.map(|(_, rate, spf)| {
                (u128::from(j) * u128::from(spf) * NANOS_PER_SEC / u128::from(rate)) as u64
            })
        };
        let start = tokio::time::Instant::now();
        let (mut i, mut j) = (0u64, 0u64);
        tracing::debug!(path = %self.path, fps, audio = audio.is_some(), "mount pacing started");
        loop {
            let tv = video_at(i);
            let ta = audio_at(j);
            let (track, at) = match ta {
                Some(ta) if ta < tv => (Track::Audio, ta),
                _ => (Track::Video, tv),
            };
            tokio::select! {
                _ = tokio::time::sleep_until(start + Duration::from_nanos(at)) => {}
                _ = shutdown.wait_for(|&v| v) => break,
            }
            let frame = match (track, &self.kind, audio) {
                (Track::Video, MountKind::Clip(clip), _) => {
                    let frames = clip.frames();
                    // from_annexb guarantees at least one frame; the modulo keeps it in range.
                    let f = &frames[(i % frames.len() as u64) as usize];
                    Some(MountFrame {
                        ts: self
                            .video_base
                            .wrapping_add((i.wrapping_mul(u64::from(ticks))) as u32),
                        is_key: f.is_key,
                        payloads: Arc::clone(&f.payloads),
                    })
                }
                (Track::Video, MountKind::Garbage, _) => Some(MountFrame {
                    ts: self
                        .video_base
                        .wrapping_add((i.wrapping_mul(u64::from(ticks))) as u32),
                    is_key: true,
                    payloads: garbage_payloads(),
                }),
                (Track::Audio, MountKind::Clip(clip), Some((a, rate, spf))) => {
                    let n = audio_frame_in_loop(j, spf, rate, clip.frames().len(), ticks);
                    a.payloads(n % a.frames().len().max(1)).map(|p| MountFrame {
                        ts: self
                            .audio_base
                            .wrapping_add((j.wrapping_mul(u64::from(spf))) as u32),
                        is_key: true,
                        payloads: Arc::clone(p),
                    })
                }
                (Track::Audio, _, _) => None,
            };
            {
                let mut position = self.position.lock();
                *position = at;
                if let Some(frame) = frame
                    && self.enabled()
                {
                    let tx = match track {
                        Track::Video => &self.tx,
                        Track::Audio => &self.audio_tx,
                    };
                    // An error only means nobody is subscribed right now.
                    let _ = tx.send(Arc::new(frame));
                }
            }
            match track {
                Track::Video => i = i.wrapping_add(1),
                Track::Audio => j = j.wrapping_add(1),
            }
        }
        tracing::debug!(path = %self.path, "mount pacing stopped");
    }

    /// The `(rtpmap encoding, fmtp)` for the SDP.
    fn sdp_media(&self) -> (Codec, String) {
        match &self.kind {
            MountKind::Clip(c) => (c.codec(), c.params().sdp_fmtp()),
            MountKind::Garbage => (Codec::H264, GARBAGE_FMTP.to_owned()),
        }
    }

    /// The session description answered to DESCRIBE.
    pub fn sdp(&self, server_ip: IpAddr) -> String {
        let (codec, fmtp) = self.sdp_media();
        let ipver = if server_ip.is_ipv4() { "IP4" } else { "IP6" };
        let mut s = String::new();
        s.push_str("v=0\r\n");
        s.push_str(&format!("o=- {} 1 IN {ipver} {server_ip}\r\n", self.ssrc));
        s.push_str(&format!("s=Vantage {}\r\n", self.path));
        s.push_str(&format!("c=IN {ipver} {server_ip}\r\n"));
        s.push_str("t=0 0\r\n");
        s.push_str("a=control:*\r\n");
        s.push_str("a=range:npt=0-\r\n");
        s.push_str(&format!("m=video 0 RTP/AVP {PAYLOAD_TYPE}\r\n"));
        s.push_str(&format!(
            "a=rtpmap:{PAYLOAD_TYPE} {}/90000\r\n",
            codec.rtp_name()
        ));
        s.push_str(&format!("a=fmtp:{PAYLOAD_TYPE} {fmtp}\r\n"));
        s.push_str(&format!("a=framerate:{}\r\n", self.fps()));
        s.push_str(&format!("a=control:{}\r\n", Track::Video.control()));
        if let Some(a) = self.audio() {
            let p = a.params();
            let pt = AUDIO_PAYLOAD_TYPE;
            s.push_str(&format!("m=audio 0 RTP/AVP {pt}\r\n"));
            s.push_str(&format!(
                "a=rtpmap:{pt} mpeg4-generic/{}/{}\r\n",
                p.sample_rate, p.channels
            ));
            s.push_str(&format!("a=fmtp:{pt} {}\r\n", a.sdp_fmtp()));
            s.push_str(&format!("a=control:{}\r\n", Track::Audio.control()));
        }
        s
    }
}

/// Which frame of an audio clip plays as audio frame `j` of the session: the one at the same
/// position in the video loop (`video_frames` frames of `ticks` 90 kHz ticks), so a clip as long as
/// the video loop restarts with it. Positions past the clip's end wrap (in the caller).
fn audio_frame_in_loop(j: u64, spf: u32, rate: u32, video_frames: usize, ticks: u32) -> usize {
    // Work in units of 1 / (90000 * rate) s, where both the audio frame's start and the video
    // loop's length are whole numbers.
    let at = u128::from(j) * u128::from(spf) * u128::from(VIDEO_CLOCK_RATE);
    let period = video_frames as u128 * u128::from(ticks) * u128::from(rate);
    let in_loop = if period == 0 { at } else { at % period };
    let sample = in_loop / u128::from(VIDEO_CLOCK_RATE);
    (sample / u128::from(spf.max(1))) as usize
}

fn garbage_payloads() -> Arc<[RtpPayload]> {
    let n = 1 + rand::random::<u32>() as usize % 4;
    (0..n)
        .map(|i| {
            let len = 1 + rand::random::<u32>() as usize % 1200;
            let data: Vec<u8> = (0..len).map(|_| rand::random::<u8>()).collect();
            RtpPayload {
                data: data.into(),
                marker: i + 1 == n,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_follows_the_video_loop() {
        // 250 frames at 25 fps = 10 s = 160000 samples at 16 kHz = 156.25 AAC frames.
        let n = |j| audio_frame_in_loop(j, 1024, 16_000, 250, 3600);
        assert_eq!(
            (0..157).map(n).collect::<Vec<_>>(),
            (0..157).collect::<Vec<_>>()
        );
        // Frame 157 starts at 160768 samples: 768 into the second loop.
        assert_eq!(n(157), 0);
        assert_eq!(n(158), 1);
        // Four loops are 625 frames exactly: back to the start.
        assert_eq!(n(625), 0);
        assert_eq!(n(624), 155);
        assert_eq!(n(312), 155);
        assert_eq!(n(313), 0);
        assert_eq!(audio_frame_in_loop(5, 1024, 16_000, 0, 3600), 5);
    }
}

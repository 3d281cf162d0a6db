//! A mount ("stream" in gortsplib terms): one path served by the server, with one shared pacing
//! task that produces RTP payloads at the source's frame rate and broadcasts them to every playing
//! session.

use crate::ClipSource;
use media::rtp::RtpPayload;
use media::{Codec, VIDEO_CLOCK_RATE};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// RTP payload type used for the single video track.
pub(crate) const PAYLOAD_TYPE: u8 = 96;

/// Access units buffered per mount for slow sessions before they lag (then skip to a key frame).
const BROADCAST_CAPACITY: usize = 32;

/// H.264 High 640x360 SPS/PPS (from fixtures/clips/h264_a.h264) advertised by garbage mounts.
const GARBAGE_FMTP: &str = "packetization-mode=1;profile-level-id=64001E;\
    sprop-parameter-sets=Z2QAHqyyAUBf8uAiAAADAAIAAAMAZR4sXJA=,aOvMsiw=";

/// One access unit's worth of RTP payloads, as broadcast to sessions.
#[derive(Debug)]
pub(crate) struct MountFrame {
    /// 90 kHz RTP timestamp.
    pub ts: u32,
    pub is_key: bool,
    pub payloads: Arc<[RtpPayload]>,
}

pub(crate) enum MountKind {
    Clip(Arc<ClipSource>),
    /// Valid SDP, then RTP packets with valid headers and random payloads.
    Garbage,
}

pub(crate) struct Mount {
    pub path: String,
    pub kind: MountKind,
    pub ssrc: u32,
    enabled: AtomicBool,
    started: AtomicBool,
    tx: broadcast::Sender<Arc<MountFrame>>,
}

impl Mount {
    pub fn new(path: String, kind: MountKind) -> Mount {
        let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        Mount {
            path,
            kind,
            ssrc: rand::random(),
            enabled: AtomicBool::new(true),
            started: AtomicBool::new(false),
            tx,
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

    /// Subscribes to the mount's frames, starting the pacing task on first use.
    pub fn subscribe(
        self: &Arc<Self>,
        shutdown: &watch::Receiver<bool>,
    ) -> broadcast::Receiver<Arc<MountFrame>> {
        let rx = self.tx.subscribe();
        if !self.started.swap(true, Ordering::AcqRel) {
            let me = Arc::clone(self);
            let shutdown = shutdown.clone();
            tokio::spawn(async move { me.pace(shutdown).await });
        }
        rx
    }

    async fn pace(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let fps = self.fps();
        let ticks = VIDEO_CLOCK_RATE / fps;
        let mut interval = tokio::time::interval(Duration::from_secs(1) / fps);
        let mut ts: u32 = rand::random();
        let mut i = 0usize;
        tracing::debug!(path = %self.path, fps, "mount pacing started");
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.wait_for(|&v| v) => break,
            }
            if self.enabled() {
                let frame = match &self.kind {
                    MountKind::Clip(clip) => {
                        let frames = clip.frames();
                        // from_annexb guarantees at least one frame; the modulo keeps it in range.
                        let f = &frames[i % frames.len()];
                        MountFrame {
                            ts,
                            is_key: f.is_key,
                            payloads: Arc::clone(&f.payloads),
                        }
                    }
                    MountKind::Garbage => MountFrame {
                        ts,
                        is_key: true,
                        payloads: garbage_payloads(),
                    },
                };
                // An error only means nobody is subscribed right now.
                let _ = self.tx.send(Arc::new(frame));
            }
            i = i.wrapping_add(1);
            ts = ts.wrapping_add(ticks);
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
        s.push_str("a=control:trackID=0\r\n");
        s
    }
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

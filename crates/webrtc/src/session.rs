//! One viewer session: its str0m `Rtc`, its counters shared with API callers, its RTP timeline
//! and its own timeouts. Pure: time comes in as `now`, datagrams and frames as arguments, and what
//! must be sent or told is returned (see [`crate::core`]).

use crate::sdp;
use crate::timeline::RtpTimeline;
use base::{Error, err};
use media::{Codec, Frame, VideoParams};
use parking_lot::Mutex;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use str0m::change::SdpOffer;
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::format::Codec as StrCodec;
use str0m::media::{MediaTime, Mid, Pt};
use str0m::{Candidate, Event, IceConnectionState, Output, Rtc, RtcConfig};
use tracing::{debug, info};

pub use base::SessionId;

/// A fresh random session id.
pub(crate) fn random_session_id() -> SessionId {
    SessionId::from_random(rand::random::<u128>())
}

/// The life cycle of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Answered; ICE and DTLS not complete yet.
    New,
    /// ICE and DTLS complete; video is flowing.
    Connected,
    /// Ended; everything is freed.
    Ended,
}

impl SessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::New => "new",
            SessionState::Connected => "connected",
            SessionState::Ended => "ended",
        }
    }
}

/// Why a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// Closed through [`crate::WhepServer::close_session`] (WHEP DELETE).
    Deleted,
    /// ICE and DTLS did not complete within `connect_timeout`.
    ConnectTimeout,
    /// ICE reported the peer disconnected (its consent lapsed).
    IceDisconnected,
    /// The peer sent nothing for `disconnect_timeout`.
    PeerSilent,
    /// The peer closed DTLS.
    Closed,
    /// The server shut down.
    Shutdown,
    /// Anything else (a protocol error, the camera switching to a codec we cannot send).
    Failed(String),
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::Deleted => f.write_str("deleted"),
            EndReason::ConnectTimeout => f.write_str("connect timeout"),
            EndReason::IceDisconnected => f.write_str("ice disconnected"),
            EndReason::PeerSilent => f.write_str("peer silent"),
            EndReason::Closed => f.write_str("closed by peer"),
            EndReason::Shutdown => f.write_str("server shutdown"),
            EndReason::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

/// Session life-cycle events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    Connected(SessionId),
    Ended { id: SessionId, reason: EndReason },
}

/// A snapshot of one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: SessionId,
    pub state: SessionState,
    /// The channel (camera) id.
    pub channel: String,
    /// The peer's address, once it sent something.
    pub peer: Option<SocketAddr>,
    pub created: Instant,
    pub frames_sent: u64,
    pub bytes_sent: u64,
    /// Frames taken from the channel but not sent (before connecting, while waiting for a key
    /// frame).
    pub frames_dropped: u64,
    /// PLI/FIR received from the peer.
    pub key_frame_requests: u64,
    /// The last time the peer sent anything.
    pub last_activity: Option<Instant>,
    /// Set once ended.
    pub end_reason: Option<EndReason>,
}

/// Counters shared between the media loop and API callers, without locks on the hot path.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) channel: String,
    pub(crate) created: Instant,
    state: AtomicU8,
    pub(crate) frames_sent: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) frames_dropped: AtomicU64,
    pub(crate) key_frame_requests: AtomicU64,
    /// Nanoseconds after `created` plus one; 0 for never.
    last_activity: AtomicU64,
    pub(crate) peer: Mutex<Option<SocketAddr>>,
    pub(crate) end_reason: Mutex<Option<EndReason>>,
}

impl Shared {
    pub(crate) fn new(channel: String, created: Instant) -> Self {
        Shared {
            channel,
            created,
            state: AtomicU8::new(0),
            frames_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            frames_dropped: AtomicU64::new(0),
            key_frame_requests: AtomicU64::new(0),
            last_activity: AtomicU64::new(0),
            peer: Mutex::new(None),
            end_reason: Mutex::new(None),
        }
    }

    pub(crate) fn state(&self) -> SessionState {
        match self.state.load(Ordering::Relaxed) {
            0 => SessionState::New,
            1 => SessionState::Connected,
            _ => SessionState::Ended,
        }
    }

    pub(crate) fn set_state(&self, s: SessionState) {
        let v = match s {
            SessionState::New => 0,
            SessionState::Connected => 1,
            SessionState::Ended => 2,
        };
        self.state.store(v, Ordering::Relaxed);
    }

    fn set_activity(&self, now: Instant) {
        let nanos = now.saturating_duration_since(self.created).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX - 1);
        self.last_activity.store(nanos + 1, Ordering::Relaxed);
    }

    pub(crate) fn info(&self, id: &SessionId) -> SessionInfo {
        let la = self.last_activity.load(Ordering::Relaxed);
        SessionInfo {
            id: id.clone(),
            state: self.state(),
            channel: self.channel.clone(),
            peer: *self.peer.lock(),
            created: self.created,
            frames_sent: self.frames_sent.load(Ordering::Relaxed),
            bytes_sent: self.bytes_sent.load(Ordering::Relaxed),
            frames_dropped: self.frames_dropped.load(Ordering::Relaxed),
            key_frame_requests: self.key_frame_requests.load(Ordering::Relaxed),
            last_activity: (la > 0).then(|| self.created + Duration::from_nanos(la - 1)),
            end_reason: self.end_reason.lock().clone(),
        }
    }
}

/// What every session's `Rtc` shares: the DTLS certificate, its crypto, and the host candidates.
#[derive(Clone)]
pub(crate) struct RtcSetup {
    pub(crate) crypto: Arc<CryptoProvider>,
    pub(crate) cert: DtlsCert,
    /// Host candidates (each advertised address with the socket's port).
    pub(crate) candidates: Vec<SocketAddr>,
}

impl RtcSetup {
    /// A fresh DTLS certificate from str0m's default crypto.
    pub(crate) fn new(candidates: Vec<SocketAddr>) -> Result<Self, Error> {
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let cert = crypto
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| err!(Internal, "webrtc: cannot generate a DTLS certificate"))?;
        Ok(RtcSetup {
            crypto,
            cert,
            candidates,
        })
    }
}

/// What a session asks of its owner (the core turns these into [`crate::core::Output`]s).
pub(crate) enum SessionOutput {
    Transmit {
        destination: SocketAddr,
        contents: Vec<u8>,
    },
    /// ICE and DTLS completed: start from the channel's GOP cache.
    Connected,
    /// The peer asked for a key frame.
    KeyFrameRequest,
}

/// One viewer.
pub(crate) struct Session {
    pub(crate) id: SessionId,
    rtc: Rtc,
    pub(crate) shared: Arc<Shared>,
    mid: Mid,
    chosen_pt: u8,
    send_pt: Option<Pt>,
    created: Instant,
    connected: bool,
    waiting_key: bool,
    last_rx: Option<Instant>,
    rtc_timeout: Instant,
    timeline: RtpTimeline,
    pub(crate) ended: Option<EndReason>,
}

impl Session {
    /// Answers `offer_sdp` with a session that sends H.264 as `params` describe. Returns the
    /// session and the SDP answer.
    ///
    /// Errors: `InvalidArgument` for an offer that does not parse or that str0m refuses;
    /// `NotAcceptable` when nothing offered can carry the camera's video.
    pub(crate) fn answer(
        offer_sdp: &str,
        params: &VideoParams,
        setup: &RtcSetup,
        channel: &str,
        now: Instant,
    ) -> Result<(Session, String), Error> {
        let offer = SdpOffer::from_sdp_string(offer_sdp).map_err(|e| {
            err!(
                InvalidArgument,
                "malformed SDP offer: {}",
                parse_error_text(&e)
            )
        })?;
        let formats = sdp::video_formats(offer_sdp);
        let choice = sdp::choose_h264(&formats, params)?;
        let [a, b, c] = choice.profile_level_id;
        let mut rtc_cfg = RtcConfig::new()
            .set_ice_lite(true)
            .set_crypto_provider(setup.crypto.clone())
            .set_dtls_cert(setup.cert.clone())
            .clear_codecs();
        rtc_cfg.codec_config().add_h264(
            choice.pt.into(),
            choice.rtx.map(Into::into),
            true,
            u32::from_be_bytes([0, a, b, c]),
        );
        let mut rtc = rtc_cfg.build(now);
        for addr in &setup.candidates {
            let cand = Candidate::host(*addr, "udp")
                .map_err(|e| err!(Internal, "webrtc: bad advertised address {addr}: {e}"))?;
            rtc.add_local_candidate(cand);
        }
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| err!(InvalidArgument, "SDP offer not accepted: {e}"))?;
        // Drain after the mutation (str0m's contract); nothing is sent before ICE starts.
        let mut timeout = now;
        for _ in 0..1000 {
            match rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    timeout = t;
                    break;
                }
                Ok(_) => {}
                Err(e) => return Err(err!(InvalidArgument, "SDP offer not accepted: {e}")),
            }
        }
        let mid = sdp::first_video_mid(offer_sdp)
            .map(|m| Mid::from(m.as_str()))
            .filter(|m| rtc.media(*m).is_some())
            .ok_or_else(|| err!(NotAcceptable, "offer has no video m-line to send to"))?;
        let id = random_session_id();
        info!(session = %id, channel, pt = choice.pt,
              profile_matches = choice.profile_matches, "webrtc: WHEP session created");
        let session = Session {
            id,
            rtc,
            shared: Arc::new(Shared::new(channel.to_owned(), now)),
            mid,
            chosen_pt: choice.pt,
            send_pt: None,
            created: now,
            connected: false,
            waiting_key: true,
            last_rx: None,
            rtc_timeout: timeout,
            timeline: RtpTimeline::new(rand::random::<u32>()),
            ended: None,
        };
        let answer = sdp::answer_rejected_m_lines(offer_sdp, &answer.to_sdp_string());
        Ok((session, answer))
    }

    pub(crate) fn end(&mut self, reason: EndReason) {
        if self.ended.is_none() {
            self.ended = Some(reason);
        }
    }

    #[cfg(test)]
    pub(crate) fn is_connected(&self) -> bool {
        self.connected
    }

    /// The earliest time the owner must call [`Session::handle_timeout`].
    pub(crate) fn deadline(
        &self,
        connect_timeout: Duration,
        disconnect_timeout: Duration,
    ) -> Instant {
        let own = if self.connected {
            self.last_rx.unwrap_or(self.created) + disconnect_timeout
        } else {
            self.created + connect_timeout
        };
        own.min(self.rtc_timeout)
    }

    /// Whether str0m claims this datagram (ICE credentials, DTLS/SRTP of this peer).
    pub(crate) fn accepts(&self, input: &str0m::Input<'_>) -> bool {
        self.ended.is_none() && self.rtc.accepts(input)
    }

    /// A datagram str0m accepted (see [`Session::accepts`]): the peer is alive.
    pub(crate) fn handle_datagram(
        &mut self,
        now: Instant,
        input: str0m::Input<'_>,
        source: SocketAddr,
        out: &mut Vec<SessionOutput>,
    ) {
        self.last_rx = Some(now);
        self.shared.set_activity(now);
        {
            let mut p = self.shared.peer.lock();
            if *p != Some(source) {
                *p = Some(source);
            }
        }
        if let Err(e) = self.rtc.handle_input(input) {
            debug!(session = %self.id, peer = %source, "webrtc: input: {e}");
            self.end(EndReason::Failed(e.to_string()));
            return;
        }
        self.drain(out);
    }

    /// str0m's timers and ours (connect timeout, peer silence).
    pub(crate) fn handle_timeout(
        &mut self,
        now: Instant,
        connect_timeout: Duration,
        disconnect_timeout: Duration,
        out: &mut Vec<SessionOutput>,
    ) {
        if self.ended.is_some() {
            return;
        }
        if now >= self.rtc_timeout {
            if let Err(e) = self.rtc.handle_input(str0m::Input::Timeout(now)) {
                self.end(EndReason::Failed(e.to_string()));
                return;
            }
            self.drain(out);
        }
        if !self.connected {
            if now >= self.created + connect_timeout {
                self.end(EndReason::ConnectTimeout);
            }
        } else if now >= self.last_rx.unwrap_or(self.created) + disconnect_timeout {
            self.end(EndReason::PeerSilent);
        }
    }

    /// Closes str0m (DTLS close_notify) before the session is dropped.
    pub(crate) fn close(&mut self, out: &mut Vec<SessionOutput>) {
        if self.rtc.is_alive() && self.rtc.close().is_ok() {
            self.drain(out);
        }
        self.rtc.disconnect();
    }

    /// Drains str0m's output until its next timeout (after every mutation).
    fn drain(&mut self, out: &mut Vec<SessionOutput>) {
        // Bounded so a misbehaving state machine cannot stall the loop.
        for _ in 0..100_000 {
            if !self.rtc.is_alive() {
                if self.ended.is_none() {
                    self.end(EndReason::Closed);
                }
                return;
            }
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.rtc_timeout = t;
                    return;
                }
                Ok(Output::Transmit(t)) => out.push(SessionOutput::Transmit {
                    destination: t.destination,
                    contents: t.contents.into(),
                }),
                Ok(Output::Event(e)) => self.on_event(e, out),
                Err(e) => {
                    self.end(EndReason::Failed(e.to_string()));
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, e: Event, out: &mut Vec<SessionOutput>) {
        match e {
            Event::Connected => {
                if self.connected {
                    return;
                }
                self.connected = true;
                self.resolve_pt();
                if self.send_pt.is_none() {
                    self.end(EndReason::Failed("no negotiated H.264 payload type".into()));
                    return;
                }
                self.shared.set_state(SessionState::Connected);
                keep_consent(&mut self.rtc);
                self.waiting_key = true;
                let peer = *self.shared.peer.lock();
                info!(session = %self.id, peer = ?peer, "webrtc: connected");
                out.push(SessionOutput::Connected);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.end(EndReason::IceDisconnected);
            }
            Event::KeyframeRequest(r) => {
                self.shared
                    .key_frame_requests
                    .fetch_add(1, Ordering::Relaxed);
                debug!(session = %self.id, kind = ?r.kind, "webrtc: key frame request");
                if self.connected {
                    out.push(SessionOutput::KeyFrameRequest);
                }
            }
            Event::Closed => self.end(EndReason::Closed),
            _ => {}
        }
    }

    fn resolve_pt(&mut self) {
        let Some(w) = self.rtc.writer(self.mid) else {
            return;
        };
        let chosen = w
            .payload_params()
            .find(|p| p.pt() == Pt::from(self.chosen_pt))
            .or_else(|| {
                w.payload_params().find(|p| {
                    p.spec().codec == StrCodec::H264
                        && p.spec().format.packetization_mode == Some(1)
                })
            })
            .map(|p| p.pt());
        self.send_pt = chosen;
    }

    /// Sends one frame of the channel (`data` is its bytes, shared by the sessions of a channel).
    pub(crate) fn handle_frame(
        &mut self,
        now: Instant,
        frame: &Frame,
        data: &Arc<[u8]>,
        out: &mut Vec<SessionOutput>,
    ) {
        if !self.connected || self.ended.is_some() {
            self.dropped();
            return;
        }
        if frame.codec() != Codec::H264 {
            self.dropped();
            self.end(EndReason::Failed(format!(
                "camera switched to {}",
                frame.codec()
            )));
            return;
        }
        if self.waiting_key {
            if !frame.is_key {
                self.dropped();
                return;
            }
            self.waiting_key = false;
        }
        let Some(pt) = self.send_pt else {
            self.dropped();
            return;
        };
        let interval = frame
            .params
            .frame_rate
            .filter(|(n, d)| *n > 0 && *d > 0)
            .map(|(n, d)| i64::from(media::VIDEO_CLOCK_RATE) * i64::from(d) / i64::from(n));
        let rtp = self.timeline.map(frame.pts, now, interval);
        let Some(w) = self.rtc.writer(self.mid) else {
            self.dropped();
            return;
        };
        match w.write(pt, now, MediaTime::from_90khz(rtp), data.clone()) {
            Ok(()) => {
                self.shared.frames_sent.fetch_add(1, Ordering::Relaxed);
                self.shared
                    .bytes_sent
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                self.dropped();
                debug!(session = %self.id, "webrtc: write: {e}");
            }
        }
        self.drain(out);
    }

    fn dropped(&self) {
        self.shared.frames_dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// Once connected, an ICE-lite session checks the peer's consent itself (RFC 7675).
///
/// str0m's ICE-lite agent keeps a candidate pair only while the peer sends STUN binding requests
/// (it drops the pair 15 s after the last one), and many peers (pion/webrtc) send none on a pair
/// that carries media and RTCP. Switching the agent to full ICE (still controlled, so it never
/// nominates) after the nomination makes str0m send a binding request on the pair every few
/// seconds; the peer's authenticated answers are consent (RFC 7675 §5.1) and keep the pair, and a
/// peer that stops answering loses it after str0m's retransmits (about 22 s), as RFC 7675's 30 s
/// consent expiry asks. The peer-silence timeout (nothing str0m accepts for 8 s) stays, and
/// usually ends such a session first.
fn keep_consent(rtc: &mut Rtc) {
    rtc.direct_api().set_ice_lite(false);
}

/// str0m's parse errors are `Debug`-like and may include parser-internal pointer offsets
/// (`PointerOffset(0x7f..)`); keep the words, drop the addresses.
fn parse_error_text(e: &impl std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .map(|w| {
            if w.contains("0x") {
                let keep: String = w.chars().take_while(|c| *c != '(').collect();
                if keep.contains("0x") {
                    "<addr>".to_owned()
                } else {
                    keep
                }
            } else {
                w.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

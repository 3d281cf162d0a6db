//! The WHEP server: one UDP socket and one media loop task for all viewer sessions.

use crate::sdp;
use crate::timeline::RtpTimeline;
use base::{Error, err};
use bytes::Bytes;
use hub::{Channel, Subscriber};
use media::{Codec, Frame, VideoParams};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use str0m::change::SdpOffer;
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::format::Codec as StrCodec;
use str0m::media::{MediaTime, Mid, Pt};
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, broadcast, mpsc};
use tracing::{debug, info, warn};

/// Settings of a [`WhepServer`].
#[derive(Clone, Debug)]
pub struct WhepConfig {
    /// The UDP socket of the media loop (default `0.0.0.0:8189`; port 0 picks a free port).
    pub bind: SocketAddr,
    /// Host addresses put into ICE candidates, each with the bound port.
    pub advertise: Vec<IpAddr>,
    /// ICE and DTLS must complete within this time after the answer.
    pub connect_timeout: Duration,
    /// A connected peer that sends nothing (no STUN consent, no RTCP) for this long is gone.
    pub disconnect_timeout: Duration,
}

impl Default for WhepConfig {
    fn default() -> Self {
        WhepConfig {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8189),
            advertise: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            connect_timeout: Duration::from_secs(10),
            disconnect_timeout: Duration::from_secs(8),
        }
    }
}

/// A random, unguessable session id (128 bits as 32 lower-case hex digits), usable in URLs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(Arc<str>);

impl SessionId {
    fn random() -> Self {
        SessionId(format!("{:032x}", rand::random::<u128>()).into())
    }

    /// Accepts only the form this crate generates (32 hex digits).
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| SessionId(s.to_ascii_lowercase().into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
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
    /// Closed through [`WhepServer::close_session`] (WHEP DELETE).
    Deleted,
    /// ICE and DTLS did not complete within `connect_timeout`.
    ConnectTimeout,
    /// ICE reported the peer disconnected.
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
struct Shared {
    channel: String,
    created: Instant,
    state: AtomicU8,
    frames_sent: AtomicU64,
    bytes_sent: AtomicU64,
    frames_dropped: AtomicU64,
    key_frame_requests: AtomicU64,
    /// Nanoseconds after `created` plus one; 0 for never.
    last_activity: AtomicU64,
    peer: Mutex<Option<SocketAddr>>,
    end_reason: Mutex<Option<EndReason>>,
}

impl Shared {
    fn state(&self) -> SessionState {
        match self.state.load(Ordering::Relaxed) {
            0 => SessionState::New,
            1 => SessionState::Connected,
            _ => SessionState::Ended,
        }
    }

    fn set_state(&self, s: SessionState) {
        let v = match s {
            SessionState::New => 0,
            SessionState::Connected => 1,
            SessionState::Ended => 2,
        };
        self.state.store(v, Ordering::Relaxed);
    }

    fn info(&self, id: &SessionId) -> SessionInfo {
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

/// Ended sessions stay visible in [`WhepServer::session_info`] until this many more have ended.
const KEEP_ENDED: usize = 256;

struct Registry {
    sessions: HashMap<SessionId, Arc<Shared>>,
    ended: VecDeque<SessionId>,
    live: usize,
}

struct Inner {
    registry: Mutex<Registry>,
    events: broadcast::Sender<SessionEvent>,
}

impl Inner {
    fn mark_ended(&self, id: &SessionId, shared: &Shared, reason: EndReason) {
        *shared.end_reason.lock() = Some(reason.clone());
        shared.set_state(SessionState::Ended);
        {
            let mut r = self.registry.lock();
            r.live = r.live.saturating_sub(1);
            r.ended.push_back(id.clone());
            while r.ended.len() > KEEP_ENDED {
                if let Some(old) = r.ended.pop_front() {
                    r.sessions.remove(&old);
                }
            }
        }
        let _ = self.events.send(SessionEvent::Ended {
            id: id.clone(),
            reason,
        });
    }
}

enum Cmd {
    Add(Box<Session>),
    Close(SessionId),
}

/// A WHEP server: answers offers and sends each session its channel's H.264 frames over one UDP
/// socket, ICE-lite, from one task for all sessions.
pub struct WhepServer {
    cfg: WhepConfig,
    local_addr: SocketAddr,
    waker: Arc<Notify>,
    cmd_tx: mpsc::UnboundedSender<Cmd>,
    inner: Arc<Inner>,
    crypto: Arc<CryptoProvider>,
    cert: DtlsCert,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WhepServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WhepServer {
    /// Binds the UDP socket and starts the media loop.
    pub async fn start(cfg: WhepConfig) -> Result<Arc<WhepServer>, Error> {
        if cfg.advertise.is_empty() {
            return Err(err!(InvalidArgument, "webrtc: no address to advertise"));
        }
        let socket = UdpSocket::bind(cfg.bind)
            .await
            .map_err(|e| err!(Unavailable, "webrtc: cannot bind UDP {}: {e}", cfg.bind))?;
        let local_addr = socket
            .local_addr()
            .map_err(|e| err!(Internal, "webrtc: local address: {e}"))?;
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let cert = crypto
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| err!(Internal, "webrtc: cannot generate a DTLS certificate"))?;
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let waker = Arc::new(Notify::new());
        let (events, _) = broadcast::channel(1024);
        let inner = Arc::new(Inner {
            registry: Mutex::new(Registry {
                sessions: HashMap::new(),
                ended: VecDeque::new(),
                live: 0,
            }),
            events,
        });
        let lp = MediaLoop {
            socket,
            local_addr,
            advertise: cfg.advertise.clone(),
            port: local_addr.port(),
            cfg: cfg.clone(),
            inner: inner.clone(),
            waker: waker.clone(),
            cmd_rx,
            sessions: Vec::new(),
            by_addr: HashMap::new(),
            data_cache: HashMap::new(),
        };
        let task = tokio::spawn(lp.run());
        info!(%local_addr, "webrtc: WHEP media loop started");
        Ok(Arc::new(WhepServer {
            cfg,
            local_addr,
            waker,
            cmd_tx,
            inner,
            crypto,
            cert,
            task,
        }))
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The media loop's waker. [`WhepServer::create_session`] subscribes with it itself; it is
    /// exposed for diagnostics and for callers that want to nudge the loop.
    pub fn waker(&self) -> Arc<Notify> {
        self.waker.clone()
    }

    /// Answers a WHEP offer with a session that sends `channel`'s frames. `params` are the
    /// camera's current video parameters (they decide the codec and the preferred H.264 profile).
    ///
    /// The session subscribes to `channel` itself, with the media loop's shared waker, and only
    /// once the offer is accepted, so a rejected offer never adds demand.
    ///
    /// Errors: `InvalidArgument` for an offer that does not parse or that str0m refuses;
    /// `NotAcceptable` when nothing offered can carry the camera's video (`camera sends H.265;
    /// offer accepts VP8, H.264`).
    pub async fn create_session(
        &self,
        offer_sdp: &str,
        channel: &Arc<Channel>,
        params: Arc<VideoParams>,
    ) -> Result<(SessionId, String), Error> {
        let offer = SdpOffer::from_sdp_string(offer_sdp).map_err(|e| {
            err!(
                InvalidArgument,
                "malformed SDP offer: {}",
                parse_error_text(&e)
            )
        })?;
        let formats = sdp::video_formats(offer_sdp);
        let choice = sdp::choose_h264(&formats, &params)?;
        let [a, b, c] = choice.profile_level_id;
        let mut rtc_cfg = RtcConfig::new()
            .set_ice_lite(true)
            .set_crypto_provider(self.crypto.clone())
            .set_dtls_cert(self.cert.clone())
            .clear_codecs();
        rtc_cfg.codec_config().add_h264(
            choice.pt.into(),
            choice.rtx.map(Into::into),
            true,
            u32::from_be_bytes([0, a, b, c]),
        );
        let now = Instant::now();
        let mut rtc = rtc_cfg.build(now);
        for ip in &self.cfg.advertise {
            let addr = SocketAddr::new(*ip, self.local_addr.port());
            let cand = Candidate::host(addr, "udp")
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
        let id = SessionId::random();
        let shared = Arc::new(Shared {
            channel: channel.id().to_owned(),
            created: now,
            state: AtomicU8::new(0),
            frames_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            frames_dropped: AtomicU64::new(0),
            key_frame_requests: AtomicU64::new(0),
            last_activity: AtomicU64::new(0),
            peer: Mutex::new(None),
            end_reason: Mutex::new(None),
        });
        let sub = channel.subscribe_with(self.waker.clone());
        let session = Session {
            id: id.clone(),
            rtc,
            sub,
            shared: shared.clone(),
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
        {
            let mut r = self.inner.registry.lock();
            r.sessions.insert(id.clone(), shared);
            r.live += 1;
        }
        if self.cmd_tx.send(Cmd::Add(Box::new(session))).is_err() {
            return Err(err!(Unavailable, "webrtc: media loop is not running"));
        }
        info!(session = %id, channel = channel.id(), pt = choice.pt,
              profile_matches = choice.profile_matches, "webrtc: WHEP session created");
        Ok((id, sdp::answer_rejected_m_lines(offer_sdp, &answer.to_sdp_string())))
    }

    /// Ends a session (WHEP DELETE). Returns false if there is no such live session.
    pub fn close_session(&self, id: &SessionId) -> bool {
        let live = self
            .inner
            .registry
            .lock()
            .sessions
            .get(id)
            .is_some_and(|s| s.state() != SessionState::Ended);
        live && self.cmd_tx.send(Cmd::Close(id.clone())).is_ok()
    }

    /// A session's state and counters; ended sessions stay visible for a while.
    pub fn session_info(&self, id: &SessionId) -> Option<SessionInfo> {
        let shared = self.inner.registry.lock().sessions.get(id).cloned()?;
        Some(shared.info(id))
    }

    /// All known sessions (live and recently ended).
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let all: Vec<_> = self
            .inner
            .registry
            .lock()
            .sessions
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.iter().map(|(id, s)| s.info(id)).collect()
    }

    pub fn subscribe_events(&self) -> broadcast::Receiver<SessionEvent> {
        self.inner.events.subscribe()
    }

    /// Sessions not yet ended.
    pub fn session_count(&self) -> usize {
        self.inner.registry.lock().live
    }
}

/// One viewer.
struct Session {
    id: SessionId,
    rtc: Rtc,
    sub: Subscriber,
    shared: Arc<Shared>,
    mid: Mid,
    chosen_pt: u8,
    send_pt: Option<Pt>,
    created: Instant,
    connected: bool,
    waiting_key: bool,
    last_rx: Option<Instant>,
    rtc_timeout: Instant,
    timeline: RtpTimeline,
    ended: Option<EndReason>,
}

impl Session {
    fn end(&mut self, reason: EndReason) {
        if self.ended.is_none() {
            self.ended = Some(reason);
        }
    }

    /// The earliest time the loop must look at this session again.
    fn deadline(&self, cfg: &WhepConfig) -> Instant {
        let own = if self.connected {
            self.last_rx.unwrap_or(self.created) + cfg.disconnect_timeout
        } else {
            self.created + cfg.connect_timeout
        };
        own.min(self.rtc_timeout)
    }

    fn check_timeouts(&mut self, now: Instant, cfg: &WhepConfig) {
        if !self.connected {
            if now >= self.created + cfg.connect_timeout {
                self.end(EndReason::ConnectTimeout);
            }
        } else if now >= self.last_rx.unwrap_or(self.created) + cfg.disconnect_timeout {
            self.end(EndReason::PeerSilent);
        }
    }

    /// Drains str0m's output until its next timeout (after every mutation).
    fn drain(&mut self, socket: &UdpSocket, events: &broadcast::Sender<SessionEvent>) {
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
                Ok(Output::Transmit(t)) => {
                    if let Err(e) = socket.try_send_to(&t.contents, t.destination) {
                        debug!(session = %self.id, peer = %t.destination, "webrtc: send: {e}");
                    }
                }
                Ok(Output::Event(e)) => self.on_event(e, events),
                Err(e) => {
                    self.end(EndReason::Failed(e.to_string()));
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, e: Event, events: &broadcast::Sender<SessionEvent>) {
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
                // Start at once from the channel's GOP cache (latest key frame and what
                // followed it); without a cache, the fresh queue waits for the next key frame.
                self.sub = self.sub.resubscribe();
                self.waiting_key = true;
                let peer = *self.shared.peer.lock();
                info!(session = %self.id, peer = ?peer, "webrtc: connected");
                let _ = events.send(SessionEvent::Connected(self.id.clone()));
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
                    self.sub.request_key_frame();
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

    /// Takes one frame from the channel; returns whether str0m was mutated (needs a drain).
    fn on_frame(&mut self, frame: &Frame, data: &Arc<[u8]>, now: Instant) -> bool {
        if !self.connected || self.ended.is_some() {
            self.dropped();
            return false;
        }
        if frame.codec() != Codec::H264 {
            self.dropped();
            self.end(EndReason::Failed(format!(
                "camera switched to {}",
                frame.codec()
            )));
            return false;
        }
        if self.waiting_key {
            if !frame.is_key {
                self.dropped();
                return false;
            }
            self.waiting_key = false;
        }
        let Some(pt) = self.send_pt else {
            self.dropped();
            return false;
        };
        let interval = frame
            .params
            .frame_rate
            .filter(|(n, d)| *n > 0 && *d > 0)
            .map(|(n, d)| i64::from(media::VIDEO_CLOCK_RATE) * i64::from(d) / i64::from(n));
        let rtp = self.timeline.map(frame.pts, interval);
        let Some(w) = self.rtc.writer(self.mid) else {
            self.dropped();
            return false;
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
        true
    }

    fn dropped(&self) {
        self.shared.frames_dropped.fetch_add(1, Ordering::Relaxed);
    }
}

struct MediaLoop {
    socket: UdpSocket,
    local_addr: SocketAddr,
    advertise: Vec<IpAddr>,
    port: u16,
    cfg: WhepConfig,
    inner: Arc<Inner>,
    waker: Arc<Notify>,
    cmd_rx: mpsc::UnboundedReceiver<Cmd>,
    sessions: Vec<Session>,
    /// Remote address to session, a shortcut past `Rtc::accepts` scans.
    by_addr: HashMap<SocketAddr, SessionId>,
    /// Frame data converted for str0m once per frame, shared by all sessions of a channel
    /// within one drain round (keyed by the `Bytes` pointer, which the held clone keeps alive).
    data_cache: HashMap<usize, (Bytes, Arc<[u8]>)>,
}

impl MediaLoop {
    async fn run(mut self) {
        let mut buf = vec![0u8; 2048];
        loop {
            let now = Instant::now();
            let deadline = self
                .sessions
                .iter()
                .map(|s| s.deadline(&self.cfg))
                .min()
                .unwrap_or(now + Duration::from_secs(1))
                .max(now);
            tokio::select! {
                biased;
                cmd = self.cmd_rx.recv() => match cmd {
                    None => break,
                    Some(Cmd::Add(s)) => self.sessions.push(*s),
                    Some(Cmd::Close(id)) => {
                        if let Some(s) = self.sessions.iter_mut().find(|s| s.id == id) {
                            s.end(EndReason::Deleted);
                        }
                    }
                },
                _ = self.waker.notified() => self.on_frames(),
                r = self.socket.readable() => {
                    if let Err(e) = r {
                        warn!("webrtc: UDP socket: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    // Read what is queued, bounded so frames and timers are not starved.
                    for _ in 0..256 {
                        match self.socket.try_recv_from(&mut buf) {
                            Ok((n, source)) => self.on_packet(&buf[..n], source),
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                            Err(e) => {
                                // ICMP errors surface here on some systems; keep going.
                                debug!("webrtc: recv: {e}");
                                break;
                            }
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
            // Checked after every wake-up, so a busy socket cannot starve the timers.
            if Instant::now() >= deadline {
                self.on_timeout();
            }
            self.reap();
        }
        for s in &mut self.sessions {
            s.end(EndReason::Shutdown);
        }
        self.reap();
    }

    /// The local address a datagram was sent to, as ICE knows it (a host candidate).
    fn destination_for(&self, source: SocketAddr) -> SocketAddr {
        if !self.local_addr.ip().is_unspecified() {
            return self.local_addr;
        }
        let ip = self
            .advertise
            .iter()
            .find(|ip| {
                ip.is_loopback() == source.ip().is_loopback() && ip.is_ipv4() == source.is_ipv4()
            })
            .or_else(|| {
                self.advertise
                    .iter()
                    .find(|ip| ip.is_ipv4() == source.is_ipv4())
            })
            .or(self.advertise.first())
            .copied()
            .unwrap_or(self.local_addr.ip());
        SocketAddr::new(ip, self.port)
    }

    fn on_packet(&mut self, data: &[u8], source: SocketAddr) {
        let Ok(contents) = DatagramRecv::try_from(data) else {
            debug!(peer = %source, "webrtc: unrecognised datagram");
            return;
        };
        let now = Instant::now();
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.destination_for(source),
                contents,
            },
        );
        let cached = self
            .by_addr
            .get(&source)
            .and_then(|id| self.sessions.iter().position(|s| &s.id == id))
            .filter(|&i| self.sessions[i].rtc.accepts(&input));
        let idx = match cached {
            Some(i) => i,
            None => {
                let Some(i) = self
                    .sessions
                    .iter()
                    .position(|s| s.ended.is_none() && s.rtc.accepts(&input))
                else {
                    debug!(peer = %source, "webrtc: datagram for no session");
                    return;
                };
                self.by_addr.insert(source, self.sessions[i].id.clone());
                i
            }
        };
        let s = &mut self.sessions[idx];
        s.last_rx = Some(now);
        let nanos = now.saturating_duration_since(s.created).as_nanos() as u64;
        s.shared.last_activity.store(nanos + 1, Ordering::Relaxed);
        {
            let mut p = s.shared.peer.lock();
            if *p != Some(source) {
                *p = Some(source);
            }
        }
        if let Err(e) = s.rtc.handle_input(input) {
            debug!(session = %s.id, peer = %source, "webrtc: input: {e}");
            s.end(EndReason::Failed(e.to_string()));
            return;
        }
        s.drain(&self.socket, &self.inner.events);
    }

    fn on_frames(&mut self) {
        let now = Instant::now();
        let cache = &mut self.data_cache;
        for s in &mut self.sessions {
            while let Some(frame) = s.sub.try_recv() {
                let key = frame.data.as_ptr() as usize;
                let data = &cache
                    .entry(key)
                    .or_insert_with(|| (frame.data.clone(), Arc::from(&frame.data[..])))
                    .1;
                if s.on_frame(&frame, data, now) {
                    s.drain(&self.socket, &self.inner.events);
                }
            }
        }
        cache.clear();
    }

    fn on_timeout(&mut self) {
        let now = Instant::now();
        for s in &mut self.sessions {
            if s.ended.is_some() {
                continue;
            }
            if now >= s.rtc_timeout {
                if let Err(e) = s.rtc.handle_input(Input::Timeout(now)) {
                    s.end(EndReason::Failed(e.to_string()));
                    continue;
                }
                s.drain(&self.socket, &self.inner.events);
            }
            s.check_timeouts(now, &self.cfg);
        }
    }

    /// Frees ended sessions: closes str0m (DTLS close_notify), drops the subscriber, emits
    /// `Ended`.
    fn reap(&mut self) {
        let mut i = 0;
        while i < self.sessions.len() {
            if self.sessions[i].ended.is_none() {
                i += 1;
                continue;
            }
            let mut s = self.sessions.swap_remove(i);
            let reason = s.ended.take().unwrap_or(EndReason::Shutdown);
            if s.rtc.is_alive() && s.rtc.close().is_ok() {
                s.drain(&self.socket, &self.inner.events);
            }
            s.rtc.disconnect();
            self.by_addr.retain(|_, id| *id != s.id);
            let peer = *s.shared.peer.lock();
            info!(session = %s.id, peer = ?peer, %reason, "webrtc: session ended");
            let (id, shared) = (s.id.clone(), s.shared.clone());
            // Drop the Rtc and the subscriber before anyone hears of the end.
            drop(s);
            self.inner.mark_ended(&id, &shared, reason);
        }
    }
}

/// Once connected, an ICE-lite session checks the peer's consent itself (RFC 7675).
///
/// str0m's ICE-lite agent keeps a candidate pair only while the peer sends STUN binding requests
/// (it drops the pair 15 s after the last one), and many peers (pion/webrtc) send none on a pair
/// that carries media and RTCP. Switching the agent to full ICE (still controlled, so it never
/// nominates) after the nomination makes str0m send a binding request on the pair every few
/// seconds; the peer's authenticated answers are consent (RFC 7675 §5.1) and keep the pair,
/// and a peer that stops answering loses it after str0m's retransmits, as RFC 7675's 30 s
/// consent expiry asks. Our own peer-silence timeout (any datagram str0m accepts) stays.
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

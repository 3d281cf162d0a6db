//! The WHEP server's public face: configuration, answering offers, closing sessions and
//! reading their state. The sessions themselves live in the media loop ([`crate::shell`] around
//! [`crate::core`]).

use crate::core::{Core, CoreConfig};
use crate::registry::Registry;
use crate::session::{RtcSetup, Session, SessionEvent, SessionId, SessionInfo, SessionState};
use crate::shell::{Cmd, MediaLoop};
use base::{Clocks, Error, RealClocks, err};
use hub::Channel;
use media::VideoParams;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{Notify, broadcast, mpsc};
use tracing::info;

/// Settings of a [`WhepServer`].
#[derive(Clone, Debug)]
pub struct WhepConfig {
    /// The UDP socket of the media loop (default `0.0.0.0:8189`; port 0 picks a free port).
    pub bind: SocketAddr,
    /// Host addresses put into ICE candidates, each with the bound port.
    pub advertise: Vec<IpAddr>,
    /// ICE and DTLS must complete within this time after the answer.
    pub connect_timeout: Duration,
    /// A connected peer that sends nothing (no STUN, no RTCP) for this long is gone.
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

/// A WHEP server: answers offers and sends each session its channel's H.264 frames over one UDP
/// socket, ICE-lite, from one task for all sessions.
pub struct WhepServer {
    local_addr: SocketAddr,
    waker: Arc<Notify>,
    cmd_tx: mpsc::UnboundedSender<Cmd>,
    registry: Arc<Registry>,
    setup: RtcSetup,
    clocks: Arc<dyn Clocks>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WhepServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WhepServer {
    /// Binds the UDP socket and starts the media loop on the real clocks.
    pub async fn start(cfg: WhepConfig) -> Result<Arc<WhepServer>, Error> {
        Self::start_with_clocks(cfg, Arc::new(RealClocks)).await
    }

    /// Like [`WhepServer::start`], with the clocks the media loop reads and waits on.
    pub async fn start_with_clocks(
        cfg: WhepConfig,
        clocks: Arc<dyn Clocks>,
    ) -> Result<Arc<WhepServer>, Error> {
        if cfg.advertise.is_empty() {
            return Err(err!(InvalidArgument, "webrtc: no address to advertise"));
        }
        let socket = UdpSocket::bind(cfg.bind)
            .await
            .map_err(|e| err!(Unavailable, "webrtc: cannot bind UDP {}: {e}", cfg.bind))?;
        let local_addr = socket
            .local_addr()
            .map_err(|e| err!(Internal, "webrtc: local address: {e}"))?;
        let candidates = cfg
            .advertise
            .iter()
            .map(|ip| SocketAddr::new(*ip, local_addr.port()))
            .collect();
        let setup = RtcSetup::new(candidates)?;
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let waker = Arc::new(Notify::new());
        let registry = Arc::new(Registry::new());
        let core = Core::new(CoreConfig {
            local_addr,
            advertise: cfg.advertise.clone(),
            connect_timeout: cfg.connect_timeout,
            disconnect_timeout: cfg.disconnect_timeout,
        });
        let lp = MediaLoop {
            socket,
            core,
            clocks: clocks.clone(),
            registry: registry.clone(),
            waker: waker.clone(),
            cmd_rx,
            subs: Vec::new(),
            data_cache: HashMap::new(),
        };
        let task = tokio::spawn(lp.run());
        info!(%local_addr, "webrtc: WHEP media loop started");
        Ok(Arc::new(WhepServer {
            local_addr,
            waker,
            cmd_tx,
            registry,
            setup,
            clocks,
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
        let now = self.clocks.monotonic();
        let (session, answer) =
            Session::answer(offer_sdp, &params, &self.setup, channel.id(), now)?;
        let id = session.id.clone();
        self.registry.insert(id.clone(), session.shared.clone());
        let sub = channel.subscribe_with(self.waker.clone());
        if self.cmd_tx.send(Cmd::Add(Box::new(session), sub)).is_err() {
            return Err(err!(Unavailable, "webrtc: media loop is not running"));
        }
        Ok((id, answer))
    }

    /// Ends a session (WHEP DELETE). Returns false if there is no such live session.
    pub fn close_session(&self, id: &SessionId) -> bool {
        let live = self
            .registry
            .get(id)
            .is_some_and(|s| s.state() != SessionState::Ended);
        live && self.cmd_tx.send(Cmd::Close(id.clone())).is_ok()
    }

    /// A session's state and counters; ended sessions stay visible for a while.
    pub fn session_info(&self, id: &SessionId) -> Option<SessionInfo> {
        Some(self.registry.get(id)?.info(id))
    }

    /// All known sessions (live and recently ended).
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.registry
            .all()
            .iter()
            .map(|(id, s)| s.info(id))
            .collect()
    }

    pub fn subscribe_events(&self) -> broadcast::Receiver<SessionEvent> {
        self.registry.subscribe()
    }

    /// Sessions not yet ended.
    pub fn session_count(&self) -> usize {
        self.registry.live()
    }
}

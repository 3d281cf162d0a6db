//! The sans-I/O core of the WHEP media loop, built as str0m itself is: it owns every session and
//! is driven by `(now, input)` — a datagram from the socket, a command (add, close), a frame for a
//! session, or a timeout — and hands back what to do as [`Output`]s (datagrams to send, sessions
//! connected, key frames wanted, sessions ended). It routes datagrams by remote address (then by
//! `Rtc::accepts`), keeps each session's ICE/DTLS connect timeout and peer-silence timeout, and
//! maps frame times to RTP time. It never reads a clock and never touches a socket: the tokio
//! shell ([`crate::shell`]) moves bytes and time, and tests drive it on simulated time.

use crate::session::{EndReason, Session, SessionId, SessionOutput, Shared};
use media::Frame;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::net::{DatagramRecv, Protocol, Receive};
use tracing::{debug, info};

/// What the core needs to know about its socket and its timeouts.
#[derive(Clone, Debug)]
pub(crate) struct CoreConfig {
    /// The bound UDP address (the IP may be unspecified).
    pub(crate) local_addr: SocketAddr,
    /// The advertised host addresses (with `local_addr`'s port in the candidates).
    pub(crate) advertise: Vec<IpAddr>,
    /// ICE and DTLS must complete within this time after the answer.
    pub(crate) connect_timeout: Duration,
    /// A connected peer that sends nothing str0m accepts for this long is gone.
    pub(crate) disconnect_timeout: Duration,
}

/// An input to the core, at some `now`.
pub(crate) enum Input<'a> {
    /// A datagram received on the socket from `source`.
    Datagram { source: SocketAddr, data: &'a [u8] },
    /// A new session (answered; waits for ICE).
    Add(Box<Session>),
    /// End a session (WHEP DELETE).
    Close(SessionId),
    /// A frame of the session's channel; `data` is its bytes, shared by the sessions of a channel.
    Frame {
        session: &'a SessionId,
        frame: &'a Frame,
        data: &'a Arc<[u8]>,
    },
    /// Time passed (at or after [`Core::poll_timeout`]).
    Timeout,
    /// End every session.
    Shutdown,
}

/// What the core asks its shell to do, in order.
#[derive(Debug)]
pub(crate) enum Output {
    /// Send `contents` to `destination` from the socket.
    Transmit {
        destination: SocketAddr,
        contents: Vec<u8>,
    },
    /// ICE and DTLS completed: restart the session's subscription from the channel's GOP cache
    /// and announce it.
    Connected(SessionId),
    /// The peer asked for a key frame.
    KeyFrameRequest(SessionId),
    /// The session ended and is freed; drop its subscription and announce it.
    Ended {
        id: SessionId,
        reason: EndReason,
        shared: Arc<Shared>,
    },
}

/// All sessions of one media loop.
pub(crate) struct Core {
    cfg: CoreConfig,
    sessions: HashMap<SessionId, Session>,
    /// Remote address to session, a shortcut past `Rtc::accepts` scans.
    by_addr: HashMap<SocketAddr, SessionId>,
    out: VecDeque<Output>,
    scratch: Vec<SessionOutput>,
}

impl Core {
    pub(crate) fn new(cfg: CoreConfig) -> Self {
        Core {
            cfg,
            sessions: HashMap::new(),
            by_addr: HashMap::new(),
            out: VecDeque::new(),
            scratch: Vec::new(),
        }
    }

    /// Live sessions.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether `id` is live and connected.
    #[cfg(test)]
    pub(crate) fn is_connected(&self, id: &SessionId) -> bool {
        self.sessions.get(id).is_some_and(Session::is_connected)
    }

    /// The next time [`Input::Timeout`] is due; None without sessions.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.sessions
            .values()
            .map(|s| s.deadline(self.cfg.connect_timeout, self.cfg.disconnect_timeout))
            .min()
    }

    /// The next thing to do, if any.
    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    pub(crate) fn handle(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Datagram { source, data } => self.on_datagram(now, source, data),
            Input::Add(s) => {
                self.sessions.insert(s.id.clone(), *s);
            }
            Input::Close(id) => {
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.end(EndReason::Deleted);
                }
            }
            Input::Frame {
                session,
                frame,
                data,
            } => {
                if let Some(s) = self.sessions.get_mut(session) {
                    s.handle_frame(now, frame, data, &mut self.scratch);
                    self.collect(session.clone());
                }
            }
            Input::Timeout => {
                let ids: Vec<SessionId> = self.sessions.keys().cloned().collect();
                for id in ids {
                    if let Some(s) = self.sessions.get_mut(&id) {
                        s.handle_timeout(
                            now,
                            self.cfg.connect_timeout,
                            self.cfg.disconnect_timeout,
                            &mut self.scratch,
                        );
                        self.collect(id);
                    }
                }
            }
            Input::Shutdown => {
                for s in self.sessions.values_mut() {
                    s.end(EndReason::Shutdown);
                }
            }
        }
        self.reap();
    }

    /// Moves a session's outputs to the core's queue.
    fn collect(&mut self, id: SessionId) {
        for o in self.scratch.drain(..) {
            self.out.push_back(match o {
                SessionOutput::Transmit {
                    destination,
                    contents,
                } => Output::Transmit {
                    destination,
                    contents,
                },
                SessionOutput::Connected => Output::Connected(id.clone()),
                SessionOutput::KeyFrameRequest => Output::KeyFrameRequest(id.clone()),
            });
        }
    }

    /// The local address a datagram was sent to, as ICE knows it (a host candidate).
    fn destination_for(&self, source: SocketAddr) -> SocketAddr {
        let local = self.cfg.local_addr;
        if !local.ip().is_unspecified() {
            return local;
        }
        let adv = &self.cfg.advertise;
        let ip = adv
            .iter()
            .find(|ip| {
                ip.is_loopback() == source.ip().is_loopback() && ip.is_ipv4() == source.is_ipv4()
            })
            .or_else(|| adv.iter().find(|ip| ip.is_ipv4() == source.is_ipv4()))
            .or(adv.first())
            .copied()
            .unwrap_or(local.ip());
        SocketAddr::new(ip, local.port())
    }

    fn on_datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        let Ok(contents) = DatagramRecv::try_from(data) else {
            debug!(peer = %source, "webrtc: unrecognised datagram");
            return;
        };
        let input = str0m::Input::Receive(
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
            .filter(|id| self.sessions.get(*id).is_some_and(|s| s.accepts(&input)))
            .cloned();
        let id = match cached {
            Some(id) => id,
            None => {
                let Some(id) = self
                    .sessions
                    .iter()
                    .find(|(_, s)| s.accepts(&input))
                    .map(|(id, _)| id.clone())
                else {
                    debug!(peer = %source, "webrtc: datagram for no session");
                    return;
                };
                self.by_addr.insert(source, id.clone());
                id
            }
        };
        if let Some(s) = self.sessions.get_mut(&id) {
            s.handle_datagram(now, input, source, &mut self.scratch);
            self.collect(id);
        }
    }

    /// Frees ended sessions: closes str0m (DTLS close_notify, sent before `Ended`), forgets
    /// their addresses, emits `Ended`.
    fn reap(&mut self) {
        let ended: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.ended.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        for id in ended {
            let Some(mut s) = self.sessions.remove(&id) else {
                continue;
            };
            let reason = s.ended.take().unwrap_or(EndReason::Shutdown);
            s.close(&mut self.scratch);
            self.collect(id.clone());
            self.by_addr.retain(|_, sid| *sid != id);
            let peer = *s.shared.peer.lock();
            info!(session = %id, peer = ?peer, %reason, "webrtc: session ended");
            let shared = s.shared.clone();
            // Drop the Rtc before anyone hears of the end.
            drop(s);
            self.out.push_back(Output::Ended { id, reason, shared });
        }
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;

//! The tokio shell of the media loop: one task that owns the UDP socket and the sessions'
//! channel subscriptions, and only moves bytes and time between them and the sans-I/O
//! [`Core`]. It waits on commands, one shared `Notify` for all subscriptions, the socket, and the
//! core's next timeout on [`base::Clocks`].

use crate::core::{Core, Input, Output};
use crate::registry::Registry;
use crate::session::{Session, SessionId};
use base::Clocks;
use bytes::Bytes;
use hub::Subscriber;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc};
use tracing::{debug, warn};

pub(crate) enum Cmd {
    Add(Box<Session>, Subscriber),
    Close(SessionId),
}

pub(crate) struct MediaLoop {
    pub(crate) socket: UdpSocket,
    pub(crate) core: Core,
    pub(crate) clocks: Arc<dyn Clocks>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) waker: Arc<Notify>,
    pub(crate) cmd_rx: mpsc::UnboundedReceiver<Cmd>,
    /// Each live session's subscription to its channel, in the order sessions were added.
    pub(crate) subs: Vec<(SessionId, Subscriber)>,
    /// Frame data converted for str0m once per frame, shared by all sessions of a channel
    /// within one round (keyed by the `Bytes` pointer, which the held clone keeps alive).
    pub(crate) data_cache: HashMap<usize, (Bytes, Arc<[u8]>)>,
}

impl MediaLoop {
    pub(crate) async fn run(mut self) {
        let mut buf = vec![0u8; 2048];
        loop {
            let now = self.clocks.monotonic();
            let deadline = self
                .core
                .poll_timeout()
                .unwrap_or(now + Duration::from_secs(1))
                .max(now);
            tokio::select! {
                biased;
                cmd = self.cmd_rx.recv() => match cmd {
                    None => break,
                    Some(Cmd::Add(s, sub)) => {
                        self.subs.push((s.id.clone(), sub));
                        self.core.handle(now, Input::Add(s));
                    }
                    Some(Cmd::Close(id)) => self.core.handle(now, Input::Close(id)),
                },
                _ = self.waker.notified() => self.on_frames(),
                r = self.socket.readable() => {
                    if let Err(e) = r {
                        warn!("webrtc: UDP socket: {e}");
                        self.clocks.sleep(Duration::from_millis(10)).await;
                    }
                    // Read what is queued, bounded so frames and timers are not starved.
                    for _ in 0..256 {
                        match self.socket.try_recv_from(&mut buf) {
                            Ok((n, source)) => {
                                let now = self.clocks.monotonic();
                                if let Some(data) = buf.get(..n) {
                                    self.core.handle(now, Input::Datagram { source, data });
                                }
                                self.flush();
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                            Err(e) => {
                                // ICMP errors surface here on some systems; keep going.
                                debug!("webrtc: recv: {e}");
                                break;
                            }
                        }
                    }
                }
                _ = self.clocks.sleep_until(deadline) => {}
            }
            // Checked after every wake-up, so a busy socket cannot starve the timers.
            let now = self.clocks.monotonic();
            if now >= deadline {
                self.core.handle(now, Input::Timeout);
            }
            self.flush();
        }
        let now = self.clocks.monotonic();
        self.core.handle(now, Input::Shutdown);
        self.flush();
    }

    fn on_frames(&mut self) {
        let now: Instant = self.clocks.monotonic();
        let cache = &mut self.data_cache;
        for (id, sub) in &self.subs {
            while let Some(frame) = sub.try_recv() {
                let key = frame.data.as_ptr() as usize;
                let data = &cache
                    .entry(key)
                    .or_insert_with(|| (frame.data.clone(), Arc::from(&frame.data[..])))
                    .1;
                self.core.handle(
                    now,
                    Input::Frame {
                        session: id,
                        frame: &frame,
                        data,
                    },
                );
            }
        }
        cache.clear();
        self.flush();
    }

    /// Carries out the core's outputs.
    fn flush(&mut self) {
        while let Some(o) = self.core.poll_output() {
            match o {
                Output::Transmit {
                    destination,
                    contents,
                } => {
                    if let Err(e) = self.socket.try_send_to(&contents, destination) {
                        debug!(peer = %destination, "webrtc: send: {e}");
                    }
                }
                Output::Connected(id) => {
                    // Start at once from the channel's GOP cache (latest key frame and what
                    // followed it); without a cache, the fresh queue waits for the next key
                    // frame.
                    if let Some((_, sub)) = self.subs.iter_mut().find(|(s, _)| *s == id) {
                        *sub = sub.resubscribe();
                    }
                    self.registry.connected(&id);
                }
                Output::KeyFrameRequest(id) => {
                    if let Some((_, sub)) = self.subs.iter().find(|(s, _)| *s == id) {
                        sub.request_key_frame();
                    }
                }
                Output::Ended { id, reason, shared } => {
                    // Drop the subscription before anyone hears of the end.
                    self.subs.retain(|(s, _)| *s != id);
                    self.registry.mark_ended(&id, &shared, reason);
                }
            }
        }
    }
}

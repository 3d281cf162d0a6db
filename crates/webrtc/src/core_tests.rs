//! The core on simulated time: our server core and a str0m client `Rtc` exchange datagrams in
//! memory, both driven by one fake clock (as str0m's own tests do). No sockets, no sleeps.

use super::*;
use crate::session::RtcSetup;
use bytes::Bytes;
use media::{Codec, VideoParams};
use std::net::Ipv4Addr;
use std::time::SystemTime;
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::Receive;
use str0m::{Candidate, Event, Rtc, RtcConfig};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/clips/h264_a.h264"
);

fn server_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8189)
}

fn client_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 50_000)
}

/// What the client lets through to the server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientSends {
    Everything,
    /// No STUN binding requests once connected: pion's habit on a pair that carries media and
    /// RTCP (it sends keepalives only on an idle pair).
    NoStunRequestsAfterConnect,
    /// Nothing at all (a vanished peer).
    Nothing,
}

fn is_stun_request(d: &[u8]) -> bool {
    d.len() >= 20 && d[0] == 0x00 && d[1] == 0x01 && d[4..8] == [0x21, 0x12, 0xA4, 0x42]
}

struct Clip {
    frames: Vec<(bool, Bytes)>,
    params: Arc<VideoParams>,
}

fn clip() -> Clip {
    let data = std::fs::read(FIXTURE).expect("fixture clip");
    let aus = media::split_access_units(Codec::H264, &data);
    assert!(aus.len() > 50 && aus[0].is_key);
    let params = VideoParams::from_key_access_unit(Codec::H264, &aus[0].data, 1).expect("params");
    Clip {
        frames: aus.into_iter().map(|a| (a.is_key, a.data)).collect(),
        params: Arc::new(params),
    }
}

/// One viewer and our core on a fake clock.
struct Net {
    now: Instant,
    core: Core,
    client: Rtc,
    client_timeout: Instant,
    client_sends: ClientSends,
    client_connected: bool,
    id: SessionId,
    clip: Clip,
    /// The next frame of the clip to publish, and its pts.
    next: usize,
    pts: i64,
    /// RTP times of the frames the client reassembled, with when.
    received: Vec<(u64, Instant)>,
    connected_at: Option<Instant>,
    ended: Vec<(SessionId, EndReason, Instant)>,
    key_frame_requests: usize,
    /// When the server last got a datagram from the client.
    last_delivered: Option<Instant>,
}

impl Net {
    fn new(cfg_override: Option<CoreConfig>) -> Net {
        let now = Instant::now();
        let clip = clip();
        let cfg = cfg_override.unwrap_or(CoreConfig {
            local_addr: server_addr(),
            advertise: vec![server_addr().ip()],
            connect_timeout: Duration::from_secs(10),
            disconnect_timeout: Duration::from_secs(8),
        });
        let mut core = Core::new(cfg);
        let mut ccfg = RtcConfig::new().clear_codecs();
        for (pt, plid) in [(102u8, 0x42e01fu32), (106, 0x640c1f)] {
            ccfg.codec_config().add_h264(pt.into(), None, true, plid);
        }
        let mut client = ccfg.build(now);
        client.add_local_candidate(Candidate::host(client_addr(), "udp").expect("candidate"));
        let mut api = client.sdp_api();
        api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        let (offer, pending) = api.apply().expect("offer");
        let setup = RtcSetup::new(vec![server_addr()]).expect("setup");
        let (session, answer) =
            Session::answer(&offer.to_sdp_string(), &clip.params, &setup, "cam-1", now)
                .expect("answer");
        let id = session.id.clone();
        client
            .sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).expect("parse"))
            .expect("accept answer");
        core.handle(now, Input::Add(Box::new(session)));
        let mut net = Net {
            now,
            core,
            client,
            client_timeout: now,
            client_sends: ClientSends::Everything,
            client_connected: false,
            id,
            clip,
            next: 0,
            pts: 1_000_000,
            received: Vec::new(),
            connected_at: None,
            ended: Vec::new(),
            key_frame_requests: 0,
            last_delivered: None,
        };
        net.pump();
        net
    }

    /// Exchanges datagrams until both sides are quiet.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut progressed = false;
            let outs: Vec<Output> = std::iter::from_fn(|| self.core.poll_output()).collect();
            for o in outs {
                match o {
                    Output::Transmit {
                        destination,
                        contents,
                    } => {
                        assert_eq!(destination, client_addr());
                        let Ok(contents) = contents.as_slice().try_into() else {
                            continue;
                        };
                        let input = str0m::Input::Receive(
                            self.now,
                            Receive {
                                proto: str0m::net::Protocol::Udp,
                                source: server_addr(),
                                destination: client_addr(),
                                contents,
                            },
                        );
                        if self.client.is_alive() {
                            self.client.handle_input(input).expect("client input");
                        }
                        progressed = true;
                    }
                    Output::Connected(id) => {
                        assert_eq!(id, self.id);
                        self.connected_at = Some(self.now);
                    }
                    Output::KeyFrameRequest(_) => self.key_frame_requests += 1,
                    Output::Ended { id, reason, .. } => self.ended.push((id, reason, self.now)),
                }
            }
            while self.client.is_alive() {
                match self.client.poll_output().expect("client output") {
                    str0m::Output::Timeout(t) => {
                        self.client_timeout = t;
                        break;
                    }
                    str0m::Output::Transmit(t) => {
                        let drop = match self.client_sends {
                            ClientSends::Everything => false,
                            ClientSends::Nothing => true,
                            ClientSends::NoStunRequestsAfterConnect => {
                                self.client_connected && is_stun_request(&t.contents)
                            }
                        };
                        if !drop {
                            self.core.handle(
                                self.now,
                                Input::Datagram {
                                    source: client_addr(),
                                    data: &t.contents,
                                },
                            );
                            self.last_delivered = Some(self.now);
                            progressed = true;
                        }
                    }
                    str0m::Output::Event(Event::Connected) => self.client_connected = true,
                    str0m::Output::Event(Event::MediaData(d)) => {
                        self.received.push((d.time.numer(), self.now));
                    }
                    str0m::Output::Event(_) => {}
                }
            }
            if !progressed {
                return;
            }
        }
        panic!("the two peers never went quiet");
    }

    /// Moves the fake clock to `until` in steps no longer than `step`, firing both sides' timers
    /// on the way.
    fn run_until(&mut self, until: Instant, step: Duration) {
        while self.now < until {
            let mut next = (self.now + step)
                .min(until)
                .min(self.client_timeout.max(self.now));
            if let Some(t) = self.core.poll_timeout() {
                next = next.min(t.max(self.now));
            }
            if next == self.now {
                next = (self.now + Duration::from_millis(1)).min(until);
            }
            self.now = next;
            if self.client.is_alive() && self.now >= self.client_timeout {
                self.client
                    .handle_input(str0m::Input::Timeout(self.now))
                    .expect("client timeout");
            }
            if self.core.poll_timeout().is_some_and(|t| self.now >= t) {
                self.core.handle(self.now, Input::Timeout);
            }
            self.pump();
        }
    }

    /// Publishes the clip's next frame at `pts` now.
    fn frame(&mut self) {
        let (is_key, data) = self.clip.frames[self.next % self.clip.frames.len()].clone();
        let frame = Frame {
            pts: self.pts,
            received: SystemTime::now(),
            is_key,
            data,
            params: self.clip.params.clone(),
        };
        let bytes: Arc<[u8]> = Arc::from(&frame.data[..]);
        self.core.handle(
            self.now,
            Input::Frame {
                session: &self.id.clone(),
                frame: &frame,
                data: &bytes,
            },
        );
        self.next += 1;
        self.pts += 3600;
        self.pump();
    }

    /// Publishes frames at 25 fps for `d`.
    fn play(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.frame();
            let next = self.now + Duration::from_millis(40);
            self.run_until(next, Duration::from_millis(40));
        }
    }

    /// Restarts the clip at a key frame with pts 0, as a reconnected upstream does.
    fn upstream_restart(&mut self) {
        self.next = 0;
        self.pts = 0;
    }

    fn connect(&mut self) {
        let t0 = self.now;
        self.run_until(t0 + Duration::from_secs(2), Duration::from_millis(10));
        assert!(self.connected_at.is_some(), "ICE and DTLS completed");
        assert!(self.core.is_connected(&self.id));
    }
}

#[test]
fn connects_and_sends_every_frame_with_a_steady_rtp_step() {
    let mut net = Net::new(None);
    net.connect();
    net.play(Duration::from_secs(4));
    assert_eq!(
        net.received.len(),
        100,
        "every frame from the first key frame"
    );
    for w in net.received.windows(2) {
        assert_eq!(w[1].0 - w[0].0, 3600);
    }
}

/// A peer that sends no STUN binding requests after connecting (pion) but answers ours and sends
/// RTCP is kept: str0m's ICE-lite agent alone dropped it 15 s after its last request.
#[test]
fn peer_without_keepalives_stays_connected_past_15_s() {
    let mut net = Net::new(None);
    net.connect();
    net.client_sends = ClientSends::NoStunRequestsAfterConnect;
    net.play(Duration::from_secs(60));
    assert!(net.ended.is_empty(), "ended: {:?}", net.ended);
    assert!(net.core.is_connected(&net.id));
    // Still receiving at the end: the last second's frames all arrived.
    let last = net.received.last().expect("frames").1;
    assert!(net.now - last <= Duration::from_millis(40));
    assert_eq!(net.received.len(), 60 * 25);
}

#[test]
fn never_connecting_ends_after_the_connect_timeout() {
    let mut net = Net::new(None);
    net.client_sends = ClientSends::Nothing;
    let t0 = net.now;
    net.run_until(
        t0 + Duration::from_millis(9_990),
        Duration::from_millis(100),
    );
    assert!(net.ended.is_empty());
    net.run_until(t0 + Duration::from_secs(11), Duration::from_millis(100));
    assert_eq!(net.ended.len(), 1);
    let (id, reason, at) = net.ended[0].clone();
    assert_eq!((id, reason), (net.id.clone(), EndReason::ConnectTimeout));
    assert_eq!(at - t0, Duration::from_secs(10));
    assert_eq!(net.core.len(), 0);
}

#[test]
fn a_vanished_peer_ends_after_8_s_of_silence() {
    let mut net = Net::new(None);
    net.connect();
    net.play(Duration::from_secs(2));
    net.client_sends = ClientSends::Nothing;
    net.play(Duration::from_secs(12));
    assert_eq!(net.ended.len(), 1, "{:?}", net.ended);
    let (_, reason, at) = net.ended[0].clone();
    // Peer silence, not an ICE consent failure: that takes longer (str0m's retransmits).
    assert_eq!(reason, EndReason::PeerSilent);
    assert_eq!(
        at - net.last_delivered.expect("delivered"),
        Duration::from_secs(8)
    );
    assert_eq!(net.core.len(), 0);
    assert_eq!(net.core.poll_timeout(), None);
}

#[test]
fn close_ends_the_session_and_tells_the_peer() {
    let mut net = Net::new(None);
    net.connect();
    net.play(Duration::from_secs(1));
    let id = net.id.clone();
    net.core.handle(net.now, Input::Close(id.clone()));
    net.pump();
    assert_eq!(net.ended.len(), 1);
    assert_eq!(net.ended[0].1, EndReason::Deleted);
    assert_eq!(net.core.len(), 0);
    // Frames for an ended session are ignored.
    net.frame();
    assert_eq!(net.ended.len(), 1);
    // The client heard DTLS close_notify: it is no longer alive or disconnects.
    net.run_until(net.now + Duration::from_secs(1), Duration::from_millis(50));
    assert!(!net.client.is_alive() || !net.client_connected || net.ended.len() == 1);
}

#[test]
fn shutdown_ends_every_session() {
    let mut net = Net::new(None);
    net.connect();
    net.core.handle(net.now, Input::Shutdown);
    net.pump();
    assert_eq!(net.ended.len(), 1);
    assert_eq!(net.ended[0].1, EndReason::Shutdown);
}

/// An upstream restart (pts back to 0 after a 2 s outage) re-anchors the RTP timeline: the
/// client keeps receiving without re-signalling, RTP time never goes back, and the new run starts
/// as far after the old one as the outage lasted.
#[test]
fn upstream_restart_reanchors_the_timeline_on_wall_time() {
    let mut net = Net::new(None);
    net.connect();
    net.play(Duration::from_secs(4));
    let before = net.received.len();
    let last = *net.received.last().expect("frames");
    let outage = Duration::from_secs(2);
    let t = net.now + outage;
    net.run_until(t, Duration::from_millis(100));
    net.upstream_restart();
    net.play(Duration::from_secs(4));
    assert!(net.ended.is_empty());
    let after = &net.received[before..];
    assert_eq!(after.len(), 100);
    // The gap in RTP time equals the gap in sending time.
    let first = after[0];
    let wall = (first.1 - last.1).as_micros() as u64 * 90 / 1000;
    assert_eq!(first.0 - last.0, wall);
    assert!(wall >= 2 * 90_000);
    for w in after.windows(2) {
        assert_eq!(w[1].0 - w[0].0, 3600);
    }
}

/// A peer that stops answering our consent checks loses the session even when the peer-silence
/// timeout is long: within RFC 7675's 30 s.
#[test]
fn lost_consent_ends_the_session_within_30_s() {
    let mut net = Net::new(Some(CoreConfig {
        local_addr: server_addr(),
        advertise: vec![server_addr().ip()],
        connect_timeout: Duration::from_secs(10),
        disconnect_timeout: Duration::from_secs(300),
    }));
    net.connect();
    net.play(Duration::from_secs(1));
    net.client_sends = ClientSends::Nothing;
    let from = net.last_delivered.expect("delivered");
    net.play(Duration::from_secs(40));
    assert_eq!(net.ended.len(), 1, "{:?}", net.ended);
    let (_, reason, at) = net.ended[0].clone();
    assert_eq!(reason, EndReason::IceDisconnected);
    eprintln!("consent lost {:?} after the last datagram", at - from);
    assert!(at - from <= Duration::from_secs(30), "{:?}", at - from);
}

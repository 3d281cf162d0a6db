//! One RTSP connection: reads requests, answers them, owns its sessions. A session is bound to the
//! connection that created it and ends with it.
#![deny(clippy::indexing_slicing)]

use crate::mount::{Mount, MountFrame, Track};
use crate::request::{Message, Request, parse_message};
use crate::{Shared, shutdown_signal};
use base::{Error, ErrorKind, ResultExt};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use media::rtp::rtp_packet;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

/// Session timeout advertised in the `Session` header, in seconds.
pub const SESSION_TIMEOUT_SECS: u32 = 60;
/// Interval between RTCP sender reports.
const SENDER_REPORT_INTERVAL: Duration = Duration::from_secs(3);
/// Outgoing chunks (responses, one access unit of interleaved packets each) queued per
/// connection; a TCP session blocked on a full queue lags its mount and skips to a key frame.
const WRITE_QUEUE: usize = 32;

const PUBLIC: &str = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER";

/// Aborts the task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Clone)]
enum Sink {
    Tcp {
        tx: mpsc::Sender<Bytes>,
        rtp_channel: u8,
        rtcp_channel: u8,
    },
    Udp {
        rtp: Arc<UdpSocket>,
        rtcp: Arc<UdpSocket>,
        client_rtp: SocketAddr,
        client_rtcp: SocketAddr,
    },
}

impl Sink {
    /// Sends packets (all RTP, or all RTCP); `false` when the connection is gone. Over TCP the
    /// packets go to the writer as one chunk, so the write queue is counted in access units.
    async fn send(&self, rtcp: bool, pkts: &[Bytes]) -> bool {
        match self {
            Sink::Tcp {
                tx,
                rtp_channel,
                rtcp_channel,
            } => {
                let total: usize = pkts.iter().map(|p| 4 + p.len()).sum();
                let mut b = BytesMut::with_capacity(total);
                for pkt in pkts {
                    let Ok(len) = u16::try_from(pkt.len()) else {
                        continue; // Cannot be framed; payloads are far smaller than this.
                    };
                    b.put_u8(b'$');
                    b.put_u8(if rtcp { *rtcp_channel } else { *rtp_channel });
                    b.put_u16(len);
                    b.put_slice(pkt);
                }
                tx.send(b.freeze()).await.is_ok()
            }
            Sink::Udp {
                rtp,
                rtcp: rtcp_sock,
                client_rtp,
                client_rtcp,
            } => {
                let (sock, dest) = if rtcp {
                    (rtcp_sock, client_rtcp)
                } else {
                    (rtp, client_rtp)
                };
                for pkt in pkts {
                    // UDP errors (e.g. ICMP port unreachable reported on a later send) are not
                    // fatal: the session lives as long as its RTSP connection.
                    if let Err(e) = sock.send_to(pkt, *dest).await {
                        tracing::trace!(%dest, "udp send failed: {e}");
                    }
                }
                true
            }
        }
    }
}

/// One SETUP'd track of a session.
struct TrackSetup {
    sink: Sink,
    /// Sequence number of the first packet this session will send on the track.
    next_seq: u16,
}

/// A session's SETUP'd tracks, one slot per [`Track`].
#[derive(Default)]
struct Tracks {
    video: Option<TrackSetup>,
    audio: Option<TrackSetup>,
}

impl Tracks {
    fn slot(&self, track: Track) -> &Option<TrackSetup> {
        match track {
            Track::Video => &self.video,
            Track::Audio => &self.audio,
        }
    }

    fn slot_mut(&mut self, track: Track) -> &mut Option<TrackSetup> {
        match track {
            Track::Video => &mut self.video,
            Track::Audio => &mut self.audio,
        }
    }

    /// The tracks set up, video first.
    fn iter(&self) -> impl Iterator<Item = &TrackSetup> {
        self.video.iter().chain(self.audio.iter())
    }
}

struct Session {
    mount: Arc<Mount>,
    tracks: Tracks,
    playing: Option<Playing>,
}

struct Playing {
    /// One forwarder per track (started once the PLAY response is queued).
    forwarders: Vec<AbortOnDrop>,
    /// The `RTP-Info` header answered to the first PLAY, repeated to later ones.
    rtp_info: String,
}

struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Response {
    fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        459 => "Aggregate Operation Not Allowed",
        461 => "Unsupported Transport",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        505 => "RTSP Version Not Supported",
        _ => "Unknown",
    }
}

fn encode(resp: &Response, cseq: Option<&str>) -> Bytes {
    let mut s = format!("RTSP/1.0 {} {}\r\n", resp.status, reason(resp.status));
    if let Some(c) = cseq {
        s.push_str(&format!("CSeq: {c}\r\n"));
    }
    s.push_str("Server: vantage-rtsp-server\r\n");
    for (n, v) in &resp.headers {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    if !resp.body.is_empty() {
        s.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
    }
    s.push_str("\r\n");
    s.push_str(&resp.body);
    Bytes::from(s)
}

pub(crate) struct Conn {
    shared: Arc<Shared>,
    peer: SocketAddr,
    local: SocketAddr,
    tx: mpsc::Sender<Bytes>,
    sessions: HashMap<String, Session>,
    /// Forwarders of the session that PLAY just started, with their receivers: spawned after
    /// the PLAY response is queued, so no RTP packet precedes it on the connection.
    pending: Option<(String, Vec<PendingForwarder>)>,
}

/// A forwarder not yet started, with its track's receiver.
type PendingForwarder = (Forwarder, broadcast::Receiver<Arc<MountFrame>>);

/// Serves one accepted TCP connection until the peer closes it, it misbehaves, or the server
/// shuts down.
pub(crate) async fn serve(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    if let Err(e) = serve_inner(shared, stream, peer).await {
        tracing::debug!(%peer, "rtsp connection ended: {e}");
    }
}

async fn serve_inner(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
) -> Result<(), Error> {
    let local = stream.local_addr().err_kind(
        ErrorKind::Internal,
        format_args!("rtsp connection from {peer}"),
    )?;
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    let _writer = AbortOnDrop(tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
    }));
    let shutdown = shutdown_signal(shared.shutdown.clone());
    tokio::pin!(shutdown);
    let mut conn = Conn {
        shared,
        peer,
        local,
        tx,
        sessions: HashMap::new(),
        pending: None,
    };
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        loop {
            match parse_message(&buf) {
                Ok(Some((msg, used))) => {
                    buf.advance(used);
                    if let Message::Request(req) = msg {
                        conn.handle(req).await?;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let resp = Response::new(400);
                    let _ = conn.tx.send(encode(&resp, None)).await;
                    // Give the writer a moment to flush the 400 before the connection drops.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return Err(base::err!(InvalidArgument, "rtsp peer {peer}: {e}"));
                }
            }
        }
        tokio::select! {
            r = rd.read_buf(&mut buf) => {
                match r {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(base::err!(Unavailable, "rtsp peer {peer}: read: {e}")),
                }
            }
            _ = &mut shutdown => return Ok(()),
        }
    }
}

/// Parsed client `Transport` choice.
enum TransportReq {
    /// Interleaved channels (RTP, RTCP), or `None` for the server to choose.
    Tcp(Option<(u8, u8)>),
    Udp(u16, u16),
}

fn parse_transport(value: &str) -> Option<TransportReq> {
    for spec in value.split(',') {
        let mut parts = spec.split(';').map(str::trim);
        let proto = parts.next().unwrap_or("").to_ascii_uppercase();
        let params: Vec<&str> = parts.collect();
        if params.iter().any(|p| p.eq_ignore_ascii_case("multicast")) {
            continue;
        }
        // None: key absent; Some(None): present but malformed; Some(Some(..)): parsed.
        let pair = |key: &str| -> Option<Option<(u32, Option<u32>)>> {
            let v = params.iter().find_map(|p| p.strip_prefix(key))?;
            let (a, b) = match v.split_once('-') {
                Some((a, b)) => (a, Some(b)),
                None => (v, None),
            };
            let a = a.trim().parse().ok();
            let b = match b {
                Some(b) => b.trim().parse().ok().map(Some),
                None => Some(None),
            };
            Some(a.zip(b))
        };
        match proto.as_str() {
            "RTP/AVP/TCP" => {
                let Some(channels) = pair("interleaved=") else {
                    return Some(TransportReq::Tcp(None));
                };
                let (a, b) = channels?;
                let a = u8::try_from(a).ok()?;
                let b = match b {
                    Some(b) => u8::try_from(b).ok()?,
                    None => a.checked_add(1)?,
                };
                return Some(TransportReq::Tcp(Some((a, b))));
            }
            "RTP/AVP" | "RTP/AVP/UDP" => {
                let Some(ports) = pair("client_port=") else {
                    continue;
                };
                let (a, b) = ports?;
                let a = u16::try_from(a).ok().filter(|&a| a != 0)?;
                let b = match b {
                    Some(b) => u16::try_from(b).ok()?,
                    None => a.checked_add(1)?,
                };
                return Some(TransportReq::Udp(a, b));
            }
            _ => continue,
        }
    }
    None
}

/// Binds an even/odd pair of UDP ports (RTP, RTCP) on `ip`.
async fn bind_udp_pair(ip: IpAddr) -> std::io::Result<(UdpSocket, UdpSocket)> {
    for _ in 0..32 {
        let rtp = UdpSocket::bind((ip, 0)).await?;
        let port = rtp.local_addr()?.port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = UdpSocket::bind((ip, port + 1)).await {
            return Ok((rtp, rtcp));
        }
    }
    Err(std::io::Error::other("no free even/odd UDP port pair"))
}

impl Conn {
    async fn send(&self, resp: Response, cseq: Option<&str>) -> Result<(), Error> {
        self.tx
            .send(encode(&resp, cseq))
            .await
            .map_err(|_| base::err!(Unavailable, "rtsp peer {}: connection closed", self.peer))
    }

    fn authorized(&self, req: &Request) -> bool {
        let creds = self.shared.credentials.read();
        let Some((user, pass)) = creds.as_ref() else {
            return true;
        };
        let Some(value) = req.header("Authorization") else {
            return false;
        };
        let Some((scheme, b64)) = value.split_once(' ') else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        let Ok(decoded) = BASE64.decode(b64.trim()) else {
            return false;
        };
        let expected = format!("{user}:{pass}");
        decoded == expected.as_bytes()
    }

    fn base_url(&self, path: &str) -> String {
        format!("rtsp://{}{}", self.local, path.trim_end_matches('/'))
    }

    fn find_mount(&self, path: &str) -> Option<Arc<Mount>> {
        let key = path.trim_end_matches('/');
        self.shared.mounts.read().get(key).cloned()
    }

    async fn handle(&mut self, req: Request) -> Result<(), Error> {
        let peer = self.peer;
        let Some(cseq) = req.header("CSeq").map(str::to_owned) else {
            tracing::debug!(%peer, method = %req.method, "request without CSeq");
            return self.send(Response::new(400), None).await;
        };
        let cseq = Some(cseq.as_str());
        if req.version != "RTSP/1.0" {
            return self.send(Response::new(505), cseq).await;
        }
        if !self.authorized(&req) {
            tracing::debug!(%peer, method = %req.method, "unauthorized rtsp request");
            let r = Response::new(401).header("WWW-Authenticate", "Basic realm=\"vantage\"");
            return self.send(r, cseq).await;
        }
        let resp = match req.method.as_str() {
            "OPTIONS" => Response::new(200).header("Public", PUBLIC),
            "DESCRIBE" => self.describe(&req),
            "SETUP" => self.setup(&req).await,
            "PLAY" => self.play(&req),
            "TEARDOWN" => {
                if let Some(id) = session_id(&req) {
                    self.sessions.remove(id);
                }
                Response::new(200)
            }
            "GET_PARAMETER" | "SET_PARAMETER" => {
                let mut r = Response::new(200);
                if let Some(id) = session_id(&req) {
                    if !self.sessions.contains_key(id) {
                        r = Response::new(454);
                    }
                    r = r.header("Session", id.to_owned());
                }
                r
            }
            "PAUSE" | "ANNOUNCE" | "RECORD" => Response::new(405).header("Allow", PUBLIC),
            _ => Response::new(501).header("Public", PUBLIC),
        };
        if resp.status >= 400 {
            tracing::debug!(%peer, method = %req.method, uri = %req.uri, status = resp.status, "rtsp request refused");
        }
        self.send(resp, cseq).await?;
        if let Some((id, fwds)) = self.pending.take()
            && let Some(playing) = self.sessions.get_mut(&id).and_then(|s| s.playing.as_mut())
        {
            for (fwd, rx) in fwds {
                playing
                    .forwarders
                    .push(AbortOnDrop(tokio::spawn(fwd.run(rx))));
            }
        }
        Ok(())
    }

    fn describe(&self, req: &Request) -> Response {
        let Some(path) = req.path() else {
            return Response::new(400);
        };
        match self.find_mount(path) {
            Some(m) if m.enabled() => Response {
                status: 200,
                headers: vec![
                    ("Content-Type", "application/sdp".to_owned()),
                    ("Content-Base", format!("{}/", self.base_url(&m.path))),
                ],
                body: m.sdp(self.local.ip()),
            },
            _ => Response::new(404),
        }
    }

    async fn setup(&mut self, req: &Request) -> Response {
        let Some(path) = req.path() else {
            return Response::new(400);
        };
        let path = path.trim_end_matches('/');
        let (mount_path, track) = match path.rsplit_once('/') {
            Some((base, last)) if last.starts_with("trackID=") => match Track::from_control(last) {
                Some(t) => (base, t),
                None => return Response::new(404),
            },
            _ => (path, Track::Video),
        };
        let Some(mount) = self
            .find_mount(mount_path)
            .filter(|m| m.enabled() && m.has_track(track))
        else {
            return Response::new(404);
        };
        let existing = session_id(req).map(str::to_owned);
        // Interleaved channels the session's other track uses.
        let mut taken: Option<(u8, u8)> = None;
        if let Some(id) = &existing {
            let Some(sess) = self.sessions.get(id) else {
                return Response::new(454);
            };
            // A session aggregates the tracks of one mount, each set up once.
            if !Arc::ptr_eq(&sess.mount, &mount) || sess.tracks.slot(track).is_some() {
                return Response::new(459);
            }
            if sess.playing.is_some() {
                return Response::new(455);
            }
            taken = sess.tracks.iter().find_map(|t| match t.sink {
                Sink::Tcp {
                    rtp_channel,
                    rtcp_channel,
                    ..
                } => Some((rtp_channel, rtcp_channel)),
                Sink::Udp { .. } => None,
            });
        }
        let Some(treq) = req.header("Transport").and_then(parse_transport) else {
            return Response::new(461);
        };
        let ssrc = mount.track_ssrc(track);
        let (sink, transport) = match treq {
            TransportReq::Tcp(channels) => {
                let (a, b) = channels.unwrap_or_else(|| {
                    let a = 2 * track.index() as u8;
                    (a, a + 1)
                });
                if let Some((x, y)) = taken
                    && [a, b].iter().any(|c| *c == x || *c == y)
                {
                    tracing::debug!(peer = %self.peer, "interleaved channels {a}-{b} already in use");
                    return Response::new(400);
                }
                (
                    Sink::Tcp {
                        tx: self.tx.clone(),
                        rtp_channel: a,
                        rtcp_channel: b,
                    },
                    format!("RTP/AVP/TCP;unicast;interleaved={a}-{b};ssrc={ssrc:08X}"),
                )
            }
            TransportReq::Udp(a, b) => {
                let (rtp, rtcp) = match bind_udp_pair(self.local.ip()).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(peer = %self.peer, "binding UDP ports: {e}");
                        return Response::new(500);
                    }
                };
                let server_port = rtp.local_addr().map(|a| a.port()).unwrap_or(0);
                let client_ip = self.peer.ip();
                (
                    Sink::Udp {
                        rtp: Arc::new(rtp),
                        rtcp: Arc::new(rtcp),
                        client_rtp: SocketAddr::new(client_ip, a),
                        client_rtcp: SocketAddr::new(client_ip, b),
                    },
                    format!(
                        "RTP/AVP;unicast;client_port={a}-{b};server_port={}-{};ssrc={ssrc:08X}",
                        server_port,
                        server_port.wrapping_add(1)
                    ),
                )
            }
        };
        let setup = TrackSetup {
            sink,
            next_seq: rand::random::<u16>() & 0x7fff,
        };
        tracing::debug!(peer = %self.peer, path = %mount.path, track = track.control(), %transport,
            "rtsp session set up");
        let id = match existing {
            Some(id) => {
                if let Some(sess) = self.sessions.get_mut(&id) {
                    *sess.tracks.slot_mut(track) = Some(setup);
                }
                id
            }
            None => {
                let id = format!("{:016X}", rand::random::<u64>());
                let mut tracks = Tracks::default();
                *tracks.slot_mut(track) = Some(setup);
                self.sessions.insert(
                    id.clone(),
                    Session {
                        mount,
                        tracks,
                        playing: None,
                    },
                );
                id
            }
        };
        Response::new(200)
            .header("Transport", transport)
            .header("Session", format!("{id};timeout={SESSION_TIMEOUT_SECS}"))
    }

    fn play(&mut self, req: &Request) -> Response {
        let Some(id) = session_id(req) else {
            return Response::new(454);
        };
        let shutdown = self.shared.shutdown.clone();
        let local = self.local;
        let peer = self.peer;
        let Some(sess) = self.sessions.get_mut(id) else {
            return Response::new(454);
        };
        if sess.playing.is_none() {
            let mount = &sess.mount;
            let sub = mount.subscribe(
                &shutdown,
                sess.tracks.video.is_some(),
                sess.tracks.audio.is_some(),
            );
            let mut fwds = Vec::new();
            let mut rtp_info = Vec::new();
            for (track, rx) in [(Track::Video, sub.video), (Track::Audio, sub.audio)] {
                let (Some(setup), Some((rx, rtptime))) = (sess.tracks.slot(track), rx) else {
                    continue;
                };
                rtp_info.push(format!(
                    "url=rtsp://{local}{}/{};seq={};rtptime={rtptime}",
                    mount.path,
                    track.control(),
                    setup.next_seq
                ));
                let fwd = Forwarder {
                    mount_path: mount.path.clone(),
                    peer,
                    sink: setup.sink.clone(),
                    payload_type: track.payload_type(),
                    clock_rate: mount.clock_rate(track),
                    // Video starts at a key frame so the client can decode from its first frame.
                    wait_for_key: track == Track::Video,
                    ssrc: mount.track_ssrc(track),
                    seq: setup.next_seq,
                };
                fwds.push((fwd, rx));
            }
            tracing::info!(%peer, path = %mount.path, tracks = fwds.len(), "rtsp session playing");
            sess.playing = Some(Playing {
                forwarders: Vec::new(),
                rtp_info: rtp_info.join(","),
            });
            self.pending = Some((id.to_owned(), fwds));
        }
        let rtp_info = sess.playing.as_ref().map_or("", |p| p.rtp_info.as_str());
        Response::new(200)
            .header("Session", format!("{id};timeout={SESSION_TIMEOUT_SECS}"))
            .header("Range", "npt=0.000-")
            .header("RTP-Info", rtp_info)
    }
}

fn session_id(req: &Request) -> Option<&str> {
    req.header("Session")
        .map(|v| v.split(';').next().unwrap_or("").trim())
        .filter(|v| !v.is_empty())
}

/// Copies one track of a mount to one session, with its own sequence numbers.
struct Forwarder {
    mount_path: String,
    peer: SocketAddr,
    sink: Sink,
    payload_type: u8,
    clock_rate: u32,
    /// Skip frames up to a key frame at the start and after lagging.
    wait_for_key: bool,
    ssrc: u32,
    seq: u16,
}

impl Forwarder {
    async fn run(mut self, mut rx: broadcast::Receiver<Arc<MountFrame>>) {
        let mut wait_for_key = self.wait_for_key;
        let mut packets: u32 = 0;
        let mut octets: u32 = 0;
        let mut last: Option<(u32, Instant)> = None;
        // The first report follows the first frames quickly, so clients can map wall-clock time
        // early.
        let mut sr_timer = tokio::time::interval_at(
            tokio::time::Instant::now() + Duration::from_millis(500),
            SENDER_REPORT_INTERVAL,
        );
        loop {
            let frame = tokio::select! {
                r = rx.recv() => r,
                _ = sr_timer.tick() => {
                    if let Some((ts, at)) = last {
                        let sr =
                            sender_report(self.ssrc, self.clock_rate, ts, at, packets, octets);
                        if !self.sink.send(true, &[sr]).await {
                            return;
                        }
                    }
                    continue;
                }
            };
            let frame = match frame {
                Ok(f) => f,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(peer = %self.peer, path = %self.mount_path, skipped = n,
                        pt = self.payload_type, "rtsp session lagging; skipping to the next key frame");
                    wait_for_key = self.wait_for_key;
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if wait_for_key && !frame.is_key {
                continue;
            }
            wait_for_key = false;
            let mut pkts = Vec::with_capacity(frame.payloads.len());
            for p in frame.payloads.iter() {
                pkts.push(rtp_packet(
                    self.payload_type,
                    p.marker,
                    self.seq,
                    frame.ts,
                    self.ssrc,
                    &p.data,
                ));
                self.seq = self.seq.wrapping_add(1);
                packets = packets.wrapping_add(1);
                octets = octets.wrapping_add(p.data.len() as u32);
            }
            if !self.sink.send(false, &pkts).await {
                return;
            }
            last = Some((frame.ts, Instant::now()));
        }
    }
}

/// An RTCP sender report mapping "now" to the RTP timeline (at `clock_rate` Hz) extrapolated from
/// the last frame.
fn sender_report(
    ssrc: u32,
    clock_rate: u32,
    last_ts: u32,
    last_at: Instant,
    packets: u32,
    octets: u32,
) -> Bytes {
    let elapsed = last_at.elapsed();
    let ts =
        last_ts.wrapping_add((elapsed.as_micros() * u128::from(clock_rate) / 1_000_000) as u32);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ntp_secs = (now.as_secs() + 2_208_988_800) as u32;
    let ntp_frac = ((u64::from(now.subsec_nanos()) << 32) / 1_000_000_000) as u32;
    let mut b = BytesMut::with_capacity(28);
    b.put_u8(0x80);
    b.put_u8(200);
    b.put_u16(6);
    b.put_u32(ssrc);
    b.put_u32(ntp_secs);
    b.put_u32(ntp_frac);
    b.put_u32(ts);
    b.put_u32(packets);
    b.put_u32(octets);
    b.freeze()
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // tests index what they just built or checked
mod tests {
    use super::*;

    #[test]
    fn transports() {
        assert!(matches!(
            parse_transport("RTP/AVP/TCP;unicast;interleaved=2-3"),
            Some(TransportReq::Tcp(Some((2, 3))))
        ));
        assert!(matches!(
            parse_transport("RTP/AVP/TCP;unicast"),
            Some(TransportReq::Tcp(None))
        ));
        assert!(matches!(
            parse_transport("RTP/AVP;unicast;client_port=5000-5001"),
            Some(TransportReq::Udp(5000, 5001))
        ));
        assert!(matches!(
            parse_transport("RTP/AVP;multicast,RTP/AVP/UDP;unicast;client_port=6000"),
            Some(TransportReq::Udp(6000, 6001))
        ));
        assert!(parse_transport("RTP/AVP;multicast").is_none());
        assert!(parse_transport("RTP/AVP/TCP;interleaved=255").is_none());
        assert!(parse_transport("RTP/AVP;client_port=0-1").is_none());
        assert!(parse_transport("RTP/AVP/TCP;interleaved=a-b").is_none());
        assert!(parse_transport("").is_none());
    }

    #[test]
    fn sender_report_layout() {
        let sr = sender_report(7, 90_000, 100, Instant::now(), 3, 4);
        assert_eq!(sr.len(), 28);
        assert_eq!(&sr[..8], &[0x80, 200, 0, 6, 0, 0, 0, 7]);
    }
}

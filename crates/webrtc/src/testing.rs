//! A WHEP client on str0m, for tests and benchmarks only (not for production use).
//!
//! [`WhepClient::connect`] POSTs an H.264-only, video recvonly offer (profiles 42e01f, 4d001f and
//! 640c1f, packetization-mode 1) with a minimal HTTP/1.1 client, binds its own UDP socket on
//! 127.0.0.1, runs its own task, and hands out reassembled access units as [`ReceivedFrame`]s.

use base::{Error, err};
use media::Codec;
use media::nal::{annexb_nals, nal_type};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind};
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, RtcConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};

/// One received access unit.
#[derive(Clone, Debug)]
pub struct ReceivedFrame {
    /// The RTP timestamp (90 kHz).
    pub rtp_time: u32,
    /// When the last packet of the frame arrived.
    pub received: Instant,
    /// Annex B as str0m's depacketizer produced it.
    pub data: Arc<[u8]>,
    /// Holds an IDR slice.
    pub is_key: bool,
    /// No RTP packets were lost before this frame.
    pub contiguous: bool,
}

/// Options of [`WhepClient::connect_with`].
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// Also offer an Opus recvonly audio m-line first (as aiortc and browsers do).
    pub audio: bool,
}

/// A WHEP viewer. Dropping it stops its task without DELETE (a vanished peer).
pub struct WhepClient {
    location: String,
    frames: mpsc::UnboundedReceiver<ReceivedFrame>,
    connected: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    pli: mpsc::UnboundedSender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WhepClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WhepClient {
    /// POSTs an offer to `whep_url` (`http://host:port/path`) and starts receiving.
    pub async fn connect(whep_url: &str) -> Result<WhepClient, Error> {
        Self::connect_with(whep_url, ClientOptions::default()).await
    }

    /// Like [`WhepClient::connect`], with options.
    pub async fn connect_with(whep_url: &str, opts: ClientOptions) -> Result<WhepClient, Error> {
        let socket = UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
            .await
            .map_err(|e| err!(Internal, "client: bind: {e}"))?;
        let local = socket
            .local_addr()
            .map_err(|e| err!(Internal, "client: local addr: {e}"))?;
        let mut cfg = RtcConfig::new().clear_codecs();
        for (pt, plid) in [(102u8, 0x42e01fu32), (104, 0x4d001f), (106, 0x640c1f)] {
            cfg.codec_config().add_h264(pt.into(), None, true, plid);
        }
        if opts.audio {
            cfg = cfg.enable_opus(true, false);
        }
        let mut rtc = cfg.build(Instant::now());
        let cand =
            Candidate::host(local, "udp").map_err(|e| err!(Internal, "client: candidate: {e}"))?;
        rtc.add_local_candidate(cand);
        let mut api = rtc.sdp_api();
        if opts.audio {
            api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        }
        let video_mid = api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| err!(Internal, "client: no offer"))?;
        let (status, headers, body) = http_request(
            "POST",
            whep_url,
            Some("application/sdp"),
            offer.to_sdp_string().as_bytes(),
        )
        .await?;
        let body = String::from_utf8_lossy(&body).into_owned();
        if status != 201 {
            let msg = format!("WHEP POST {whep_url}: HTTP {status}: {body}");
            return Err(match status {
                400 => err!(InvalidArgument, "{msg}"),
                404 => err!(NotFound, "{msg}"),
                406 => err!(NotAcceptable, "{msg}"),
                _ => err!(Unavailable, "{msg}"),
            });
        }
        let location = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("location"))
            .map(|(_, v)| resolve(whep_url, v))
            .ok_or_else(|| err!(DataLoss, "WHEP POST {whep_url}: no Location"))?;
        let answer = SdpAnswer::from_sdp_string(&body)
            .map_err(|e| err!(DataLoss, "client: bad answer: {e}"))?;
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| err!(DataLoss, "client: answer not accepted: {e}"))?;

        let (frame_tx, frames) = mpsc::unbounded_channel();
        let (conn_tx, connected) = watch::channel(false);
        let (stop, mut stop_rx) = oneshot::channel::<()>();
        let (pli_tx, mut pli_rx) = mpsc::unbounded_channel::<()>();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            loop {
                let timeout = loop {
                    match rtc.poll_output() {
                        Ok(Output::Timeout(t)) => break t,
                        Ok(Output::Transmit(t)) => {
                            let _ = socket.try_send_to(&t.contents, t.destination);
                        }
                        Ok(Output::Event(Event::Connected)) => {
                            let _ = conn_tx.send(true);
                        }
                        Ok(Output::Event(Event::MediaData(d))) => {
                            let is_key =
                                annexb_nals(&d.data).any(|n| nal_type(Codec::H264, n) == Some(5));
                            let _ = frame_tx.send(ReceivedFrame {
                                rtp_time: d.time.numer() as u32,
                                received: Instant::now(),
                                data: d.data.clone(),
                                is_key,
                                contiguous: d.contiguous,
                            });
                        }
                        Ok(Output::Event(_)) => {}
                        Err(_) => return,
                    }
                };
                if !rtc.is_alive() {
                    return;
                }
                let wait = timeout.max(Instant::now());
                let input = tokio::select! {
                    _ = &mut stop_rx => return,
                    Some(()) = pli_rx.recv() => {
                        if let Some(mut w) = rtc.writer(video_mid) {
                            let _ = w.request_keyframe(None, KeyframeRequestKind::Pli);
                        }
                        continue;
                    }
                    r = socket.recv_from(&mut buf) => match r {
                        Ok((n, source)) => match DatagramRecv::try_from(&buf[..n]) {
                            Ok(contents) => Input::Receive(Instant::now(), Receive {
                                proto: Protocol::Udp, source, destination: local, contents,
                            }),
                            Err(_) => continue,
                        },
                        Err(_) => continue,
                    },
                    _ = tokio::time::sleep_until(wait.into()) => Input::Timeout(Instant::now()),
                };
                if rtc.handle_input(input).is_err() {
                    return;
                }
            }
        });
        Ok(WhepClient {
            location,
            frames,
            connected,
            stop: Some(stop),
            pli: pli_tx,
            task,
        })
    }

    /// The session URL from the `Location` header (absolute).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Waits until ICE and DTLS are complete.
    pub async fn wait_connected(&mut self, timeout: Duration) -> Result<(), Error> {
        tokio::time::timeout(timeout, self.connected.wait_for(|c| *c))
            .await
            .map_err(|_| err!(DeadlineExceeded, "client: not connected within {timeout:?}"))?
            .map_err(|_| err!(Unavailable, "client: stopped before connecting"))?;
        Ok(())
    }

    /// Sends a PLI (picture loss indication) to the server.
    pub fn request_key_frame(&self) {
        let _ = self.pli.send(());
    }

    /// The next received frame; `None` once the client stopped.
    pub async fn recv_frame(&mut self) -> Option<ReceivedFrame> {
        self.frames.recv().await
    }

    /// Frames received so far, without waiting.
    pub fn try_recv_frame(&mut self) -> Option<ReceivedFrame> {
        self.frames.try_recv().ok()
    }

    /// Sends DELETE to the session URL and stops; returns the HTTP status.
    pub async fn close(mut self) -> Result<u16, Error> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let (status, _, _) = http_request("DELETE", &self.location, None, b"").await?;
        Ok(status)
    }
}

/// Resolves a `Location` header against the request URL.
fn resolve(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_owned();
    }
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[after_scheme..]
        .find('/')
        .map(|i| after_scheme + i)
        .unwrap_or(base.len());
    if location.starts_with('/') {
        format!("{}{location}", &base[..host_end])
    } else {
        let dir_end = base
            .rfind('/')
            .filter(|&i| i >= host_end)
            .unwrap_or(host_end);
        format!("{}/{location}", &base[..dir_end])
    }
}

/// A minimal HTTP/1.1 request (`Connection: close`): status, headers and body.
pub async fn http_request(
    method: &str,
    url: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(u16, Vec<(String, String)>, Vec<u8>), Error> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| err!(InvalidArgument, "only http:// URLs: {url}"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(host)
        .await
        .map_err(|e| err!(Unavailable, "connect {host}: {e}"))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        req.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    req.push_str("\r\n");
    let mut out = req.into_bytes();
    out.extend_from_slice(body);
    stream
        .write_all(&out)
        .await
        .map_err(|e| err!(Unavailable, "write {host}: {e}"))?;
    let mut resp = Vec::new();
    stream
        .read_to_end(&mut resp)
        .await
        .map_err(|e| err!(Unavailable, "read {host}: {e}"))?;
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| err!(DataLoss, "bad HTTP response from {host}"))?;
    let head = String::from_utf8_lossy(&resp[..split]).into_owned();
    let mut body = resp[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| err!(DataLoss, "bad HTTP status line from {host}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body).ok_or_else(|| err!(DataLoss, "bad chunked body from {host}"))?;
    }
    Ok((status, headers, body))
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_str = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_locations() {
        assert_eq!(
            resolve("http://h:1/whep/cam", "/whep/s/1"),
            "http://h:1/whep/s/1"
        );
        assert_eq!(resolve("http://h:1/whep/cam", "s/1"), "http://h:1/whep/s/1");
        assert_eq!(resolve("http://h:1", "http://x/y"), "http://x/y");
        assert_eq!(dechunk(b"3\r\nabc\r\n0\r\n\r\n").unwrap(), b"abc");
        assert_eq!(dechunk(b"zz\r\n"), None);
    }
}

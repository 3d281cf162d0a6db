//! An in-process RTSP 1.0 server on tokio. Tests and the demo use it as fake cameras; it is shaped
//! to grow into RTSP re-serve. The structure follows gortsplib/MediaMTX:
//!
//! - **server** ([`RtspServer`]): the accept loop, the mount table, optional credentials;
//! - **connection** (`conn`): one task per TCP connection, incremental request parsing
//!   ([`request::parse_message`]), responses, and the sessions it created;
//! - **session**: the SETUP'd tracks of one mount (video, and audio when the clip has it), each
//!   with its transport (TCP interleaved or UDP), forwarding frames from its mount with its own
//!   RTP sequence numbers and sending RTCP sender reports;
//! - **mount** (gortsplib "stream"): one path, one shared pacing task that plays a
//!   [`ClipSource`] in a loop at its frame rate with continuously increasing 90 kHz timestamps
//!   (and its [`AudioClip`], if any, in step with it) and broadcasts each access unit's RTP
//!   payloads to all playing sessions.
//!
//! ```no_run
//! # async fn demo() -> Result<(), base::Error> {
//! use rtsp_server::{ClipSource, RtspServer};
//! use std::sync::Arc;
//! let clip = Arc::new(ClipSource::from_file("fixtures/clips/h264_a.h264", media::Codec::H264)?);
//! let server = RtspServer::bind("127.0.0.1:0").await?;
//! server.add_clip_mount("/cam1", clip);
//! // The same video with an AAC track (`trackID=1`).
//! let audio = rtsp_server::AudioClip::from_adts_file("fixtures/clips/aac_16k_mono.adts")?;
//! let video = ClipSource::from_file("fixtures/clips/h264_a.h264", media::Codec::H264)?;
//! server.add_clip_mount("/cam2", Arc::new(video.with_audio(audio)));
//! println!("play {}", server.url("/cam1"));
//! server.shutdown().await; // closes the listener and every connection
//! # Ok(()) }
//! ```
//!
//! Protocol behaviour:
//! - `OPTIONS`, `DESCRIBE` (SDP with `a=rtpmap:96 H264/90000` or `H265/90000`, `a=fmtp` with
//!   `profile-level-id`/`sprop-parameter-sets` or `sprop-vps/sps/pps`, `a=control:trackID=0`,
//!   `Content-Base`), `SETUP` (`RTP/AVP/TCP;interleaved=a-b` or `RTP/AVP;client_port=a-b`; RTP is
//!   sent from an even/odd server port pair), `PLAY` (with `RTP-Info: url=..;seq=..;rtptime=..`
//!   for every set-up track, the `rtptime`s naming the same instant), `TEARDOWN`,
//!   `GET_PARAMETER`/`SET_PARAMETER` (keepalive).
//! - A clip with audio ([`ClipSource::with_audio`]) adds a second media section: `m=audio 0
//!   RTP/AVP 97`, `a=rtpmap:97 mpeg4-generic/<rate>/<channels>`, `a=fmtp:97 streamtype=5;
//!   profile-level-id=15;mode=AAC-hbr;config=<AudioSpecificConfig hex>;sizelength=13;
//!   indexlength=3;indexdeltalength=3`, `a=control:trackID=1`. A second SETUP in the session
//!   adds the other track (TCP channels default to 0-1 for video and 2-3 for audio); clients may
//!   set up either track or both. Audio goes out as one AAC frame per RTP packet (RFC 3640
//!   AAC-hbr, marker set), timestamps advancing by 1024 on the sample-rate clock, paced in real
//!   time on the same timeline as the video; each frame sent is the audio clip's frame at the
//!   same position in the video loop, so equally long clips stay in sync loop after loop.
//! - Status codes: 400 malformed request or missing CSeq (malformed requests also close the
//!   connection), 401 + `WWW-Authenticate: Basic` when credentials are set and missing or wrong,
//!   404 unknown or disabled path or track, 405 PAUSE/ANNOUNCE/RECORD, 454 unknown session, 455 a
//!   SETUP in a session already playing, 459 a SETUP in a session of another mount or of a track
//!   already set up, 461 no supported transport (multicast, no client_port), 400 interleaved
//!   channels another track of the session uses, 501 unknown method, 505 version other than
//!   RTSP/1.0.
//! - Sessions belong to the connection that set them up and end with it. A playing session starts
//!   its video at the next key frame and its audio at once; no RTP packet precedes the PLAY
//!   response. A session that falls behind (slow TCP reader) drops video frames up to the next
//!   key frame (audio frames up to the newest) instead of queueing.
//! - [`RtspServer::set_mount_enabled`] with `false` makes the mount answer 404 and stops sending
//!   packets to existing sessions (they stall, like a hung camera) until re-enabled.
//! - [`RtspServer::add_garbage_mount`] answers DESCRIBE with a valid H.264 SDP, then after PLAY
//!   sends RTP packets with valid headers and random payloads.
//! - RTCP sender reports go out 0.5 s after PLAY and then every 3 s (interleaved channel b, or the
//!   client's RTCP port from the odd server port).
//! - Accepted connections get a 64 KiB `SO_SNDBUF`, so a stalled TCP reader lags (and skips ahead)
//!   within a few seconds.
//! - Dropping the server or calling [`RtspServer::shutdown`] closes the listener and all
//!   connections. The listener uses `SO_REUSEADDR`, so a new server can bind the same port at once.

pub mod audio;
pub mod clip;
mod conn;
mod mount;
pub mod request;

pub use audio::{AAC_SAMPLES_PER_FRAME, AudioClip};
pub use clip::{ClipFrame, ClipSource};
pub use conn::SESSION_TIMEOUT_SECS;

use base::{Error, ErrorKind, ResultExt};
use mount::{Mount, MountKind};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub(crate) struct Shared {
    pub(crate) mounts: RwLock<HashMap<String, Arc<Mount>>>,
    /// (username, password) required from clients, if any. Never logged.
    pub(crate) credentials: RwLock<Option<(String, String)>>,
    pub(crate) shutdown: watch::Receiver<bool>,
}

/// Resolves when the server shuts down (flag set or server dropped).
pub(crate) async fn shutdown_signal(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|&v| v).await;
}

/// A running RTSP server. See the crate documentation.
pub struct RtspServer {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown_tx: watch::Sender<bool>,
    accept_task: Option<JoinHandle<()>>,
}

impl RtspServer {
    /// Binds (with `SO_REUSEADDR`) and starts accepting connections. `addr` is `ip:port`; port 0
    /// picks a free port (see [`RtspServer::local_addr`]).
    pub async fn bind(addr: &str) -> Result<RtspServer, Error> {
        let sa: SocketAddr = addr.parse().err_kind(
            ErrorKind::InvalidArgument,
            format_args!("rtsp listen address {addr:?}"),
        )?;
        let listener = listen(sa).err_kind(
            ErrorKind::Unavailable,
            format_args!("binding rtsp server to {sa}"),
        )?;
        let local_addr = listener
            .local_addr()
            .err_kind(ErrorKind::Internal, format_args!("rtsp server on {sa}"))?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            mounts: RwLock::new(HashMap::new()),
            credentials: RwLock::new(None),
            shutdown: shutdown_rx,
        });
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        tracing::debug!(%local_addr, "rtsp server listening");
        Ok(RtspServer {
            local_addr,
            shared,
            shutdown_tx,
            accept_task: Some(accept_task),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `rtsp://<local_addr><path>`, e.g. `rtsp://127.0.0.1:40123/cam1`.
    pub fn url(&self, path: &str) -> String {
        format!("rtsp://{}{}", self.local_addr, normalize_path(path))
    }

    /// Serves `clip` in a loop at `path` (e.g. `/cam1`), replacing any mount there. The mount's
    /// pacing starts on its first PLAY and then keeps running.
    pub fn add_clip_mount(&self, path: &str, clip: Arc<ClipSource>) {
        self.add_mount(path, MountKind::Clip(clip));
    }

    /// Adds a mount that describes a valid H.264 stream but sends random RTP payloads.
    pub fn add_garbage_mount(&self, path: &str) {
        self.add_mount(path, MountKind::Garbage);
    }

    fn add_mount(&self, path: &str, kind: MountKind) {
        let path = normalize_path(path);
        let m = Arc::new(Mount::new(path.clone(), kind));
        self.shared.mounts.write().insert(path, m);
    }

    /// Removes a mount; new requests get 404. Returns whether it existed. Sessions already playing
    /// it keep running until their connection closes.
    pub fn remove_mount(&self, path: &str) -> bool {
        self.shared
            .mounts
            .write()
            .remove(&normalize_path(path))
            .is_some()
    }

    /// Enables or disables a mount (see the crate documentation). Returns whether it exists.
    pub fn set_mount_enabled(&self, path: &str, enabled: bool) -> bool {
        match self.shared.mounts.read().get(&normalize_path(path)) {
            Some(m) => {
                m.set_enabled(enabled);
                true
            }
            None => false,
        }
    }

    /// Requires HTTP Basic credentials on every request (`None` turns the check off).
    pub fn set_credentials(&self, credentials: Option<(String, String)>) {
        *self.shared.credentials.write() = credentials;
    }

    /// Closes the listener and every connection, and waits until they are closed.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown_tx.send(true);
        if let Some(t) = self.accept_task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
        if let Some(t) = self.accept_task.take() {
            // Aborting drops the listener and the JoinSet, which aborts every connection task.
            t.abort();
        }
    }
}

fn normalize_path(path: &str) -> String {
    let p = path.trim_end_matches('/');
    if p.starts_with('/') {
        p.to_owned()
    } else {
        format!("/{p}")
    }
}

/// `SO_SNDBUF` for accepted connections.
const SEND_BUFFER_SIZE: u32 = 64 * 1024;

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    // Accepted connections inherit this. A bounded kernel send buffer (like a camera's) makes a
    // stalled reader show up as a lagging session within seconds instead of after megabytes of
    // autotuned buffering; 64 KiB (doubled by Linux) is still ample for LAN throughput.
    sock.set_send_buffer_size(SEND_BUFFER_SIZE)?;
    sock.bind(addr)?;
    sock.listen(128)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    let shutdown = shutdown_signal(shared.shutdown.clone());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    tracing::debug!(%peer, "rtsp connection accepted");
                    conns.spawn(conn::serve(Arc::clone(&shared), stream, peer));
                }
                Err(e) => {
                    tracing::warn!("rtsp accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    conns.shutdown().await;
}

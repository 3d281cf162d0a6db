//! End-to-end WHEP tests: an in-test channel fed from a fixture clip at 25 fps, a WhepServer on
//! 127.0.0.1:0 behind a tiny axum route, and the str0m-based `testing::WhepClient`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use base::ErrorKind;
use bytes::Bytes;
use hub::{Channel, ChannelConfig};
use media::{Codec, Frame, VideoParams};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use webrtc::testing::{ClientOptions, WhepClient};
use webrtc::{EndReason, SessionEvent, SessionId, WhepConfig, WhepServer};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/clips/h264_a.h264"
);

fn init_log() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "webrtc=info".into()),
        )
        .with_test_writer()
        .try_init();
}

struct Feed {
    frames: Vec<(bool, Bytes)>,
    params: Arc<VideoParams>,
}

fn load_fixture() -> Feed {
    let data = std::fs::read(FIXTURE).expect("fixture clip");
    let aus = media::split_access_units(Codec::H264, &data);
    assert!(aus.len() > 50 && aus[0].is_key);
    let params = VideoParams::from_key_access_unit(Codec::H264, &aus[0].data, 1).expect("params");
    Feed {
        frames: aus.into_iter().map(|a| (a.is_key, a.data)).collect(),
        params: Arc::new(params),
    }
}

/// Publishes the clip in a loop at 25 fps; `restart_every` frames the pts restarts at 0 (an
/// upstream reconnect) when set.
fn spawn_feeder(
    channel: Arc<Channel>,
    feed: &Feed,
    restart_every: Option<usize>,
) -> Arc<AtomicU64> {
    let frames = feed.frames.clone();
    let params = feed.params.clone();
    let published = Arc::new(AtomicU64::new(0));
    let count = published.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(40));
        let mut n: i64 = 0;
        let mut pts: i64 = 1_000_000;
        loop {
            tick.tick().await;
            let i = n as usize % frames.len();
            if let Some(r) = restart_every
                && n > 0
                && (n as usize).is_multiple_of(r)
            {
                pts = 0;
            }
            // After a restart, start at a key frame like a real upstream does.
            let (is_key, data) = frames[i].clone();
            channel.publish(Frame {
                pts,
                received: SystemTime::now(),
                is_key,
                data,
                params: params.clone(),
            });
            pts += 3600;
            n += 1;
            count.fetch_add(1, Ordering::Relaxed);
        }
    });
    published
}

#[derive(Clone)]
struct AppState {
    server: Arc<WhepServer>,
    channel: Arc<Channel>,
    params: Arc<VideoParams>,
}

async fn whep_post(State(st): State<AppState>, body: String) -> Response {
    match st
        .server
        .create_session(&body, &st.channel, st.params.clone())
        .await
    {
        Ok((id, answer)) => {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, "application/sdp".parse().unwrap());
            h.insert(
                header::LOCATION,
                format!("/whep/session/{id}").parse().unwrap(),
            );
            (StatusCode::CREATED, h, answer).into_response()
        }
        Err(e) => (
            StatusCode::from_u16(e.kind().http_status()).unwrap(),
            e.to_string(),
        )
            .into_response(),
    }
}

async fn whep_delete(State(st): State<AppState>, Path(id): Path<String>) -> StatusCode {
    match SessionId::parse(&id) {
        Some(id) if st.server.close_session(&id) => StatusCode::NO_CONTENT,
        _ => StatusCode::NOT_FOUND,
    }
}

struct Harness {
    server: Arc<WhepServer>,
    channel: Arc<Channel>,
    /// Frames the feeder published so far.
    published: Arc<AtomicU64>,
    url: String,
    params: Arc<VideoParams>,
}

async fn harness(cfg: WhepConfig, restart_every: Option<usize>) -> Harness {
    init_log();
    let feed = load_fixture();
    let channel = Channel::new("cam-test", ChannelConfig::default(), SystemTime::now());
    let published = spawn_feeder(channel.clone(), &feed, restart_every);
    let server = WhepServer::start(cfg).await.expect("start");
    let st = AppState {
        server: server.clone(),
        channel: channel.clone(),
        params: feed.params.clone(),
    };
    let app = Router::new()
        .route("/whep/cam", post(whep_post))
        .route("/whep/session/{id}", delete(whep_delete))
        .with_state(st);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Harness {
        server,
        channel,
        published,
        url: format!("http://{addr}/whep/cam"),
        params: feed.params,
    }
}

fn local_cfg() -> WhepConfig {
    WhepConfig {
        bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        advertise: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        ..WhepConfig::default()
    }
}

async fn wait_for(mut f: impl FnMut() -> bool, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

async fn wait_ended(
    ev: &mut tokio::sync::broadcast::Receiver<SessionEvent>,
    timeout: Duration,
) -> Option<EndReason> {
    tokio::time::timeout(timeout, async {
        loop {
            match ev.recv().await {
                Ok(SessionEvent::Ended { reason, .. }) => return Some(reason),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// A browser-like offer (parses with str0m; never connects): `mline` is the video m= line and
/// `formats` its rtpmap/fmtp lines.
fn offer_with_video(mline: &str, formats: &str) -> String {
    format!(
        "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0\r\n\
a=msid-semantic: WMS\r\n\
{mline}\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:abcd\r\n\
a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=fingerprint:sha-256 8E:0E:D4:4E:BB:B9:6C:8D:4B:F2:1E:5D:BD:2D:34:A8:44:B1:6F:B3:2A:DF:6B:A7:A1:43:23:5E:7C:36:E5:CE\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=recvonly\r\n\
a=rtcp-mux\r\n\
{formats}"
    )
}

fn vp8_h264_offer() -> String {
    offer_with_video(
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102\r\n",
        "a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\n\
a=rtpmap:102 H264/90000\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receives_every_frame_at_source_rate() {
    let h = harness(local_cfg(), None).await;
    let mut events = h.server.subscribe_events();
    let mut client = WhepClient::connect(&h.url).await.expect("connect");
    client
        .wait_connected(Duration::from_secs(5))
        .await
        .expect("connected");
    assert!(matches!(
        events.recv().await,
        Ok(SessionEvent::Connected(_))
    ));
    let published_at_connect = h.published.load(Ordering::Relaxed);
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(16);
    while got.len() < 250 {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, client.recv_frame()).await {
            Ok(Some(f)) => got.push(f),
            _ => panic!("only {} frames before the deadline", got.len()),
        }
    }
    assert!(got[0].is_key, "first frame must be a key frame");
    for w in got.windows(2) {
        assert_eq!(
            w[1].rtp_time.wrapping_sub(w[0].rtp_time),
            3600,
            "frame missing or out of order"
        );
        assert!(w[1].contiguous);
    }
    // The source's rate, by counts and order rather than by a wall-clock window: 250 frames in
    // publishing order, one 25 fps step (3600 at 90 kHz) apart, span 249 frame intervals (9.96 s)
    // of media time; and none invented: at most one cached GOP (50 frames) came from before the
    // session connected, the rest were published after.
    assert_eq!(
        got[249].rtp_time.wrapping_sub(got[0].rtp_time),
        249 * 3600,
        "249 intervals"
    );
    let published_since = h.published.load(Ordering::Relaxed) - published_at_connect;
    assert!(
        published_since + 50 >= 250,
        "received 250 frames, {published_since} published since connecting"
    );
    let id = h.server.sessions()[0].id.clone();
    let info = h.server.session_info(&id).unwrap();
    assert_eq!(info.state, webrtc::SessionState::Connected);
    assert!(info.frames_sent >= 250, "{info:?}");
    assert!(info.bytes_sent > 0 && info.last_activity.is_some() && info.peer.is_some());
    assert_eq!(client.close().await.unwrap(), 204);
    assert_eq!(
        wait_ended(&mut events, Duration::from_secs(3)).await,
        Some(EndReason::Deleted)
    );
    assert_eq!(h.channel.subscriber_count(), 0);
    assert_eq!(h.server.session_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_upstream_restart_and_audio_offer() {
    // pts restarts at 0 every 100 frames (4 s); the clip's GOP is 50 frames so restarts land on
    // key frames. The RTP time must keep advancing by one frame.
    let h = harness(local_cfg(), Some(100)).await;
    let mut client = WhepClient::connect_with(&h.url, ClientOptions { audio: true })
        .await
        .expect("connect with audio m-line");
    client
        .wait_connected(Duration::from_secs(5))
        .await
        .expect("connected");
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(14);
    while got.len() < 150 {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, client.recv_frame()).await {
            Ok(Some(f)) => got.push(f),
            _ => panic!("only {} frames before the deadline", got.len()),
        }
    }
    for w in got.windows(2) {
        assert_eq!(w[1].rtp_time.wrapping_sub(w[0].rtp_time), 3600);
    }
    drop(client);
}

#[tokio::test]
async fn delete_frees_subscriber() {
    let h = harness(local_cfg(), None).await;
    let mut client = WhepClient::connect(&h.url).await.expect("connect");
    client
        .wait_connected(Duration::from_secs(5))
        .await
        .expect("connected");
    assert_eq!(h.channel.subscriber_count(), 1);
    assert_eq!(h.server.session_count(), 1);
    // A PLI is counted and answered with a key frame.
    let first = client.recv_frame().await.unwrap();
    assert!(first.is_key);
    client.request_key_frame();
    let id = h.server.sessions()[0].id.clone();
    assert!(
        wait_for(
            || h.server.session_info(&id).unwrap().key_frame_requests == 1,
            Duration::from_secs(2)
        )
        .await
    );
    let loc = client.location().to_owned();
    assert_eq!(client.close().await.unwrap(), 204);
    assert!(wait_for(|| h.channel.subscriber_count() == 0, Duration::from_secs(2)).await);
    assert_eq!(h.server.session_count(), 0);
    // A second DELETE finds nothing.
    let (status, _, _) = webrtc::testing::http_request("DELETE", &loc, None, b"")
        .await
        .unwrap();
    assert_eq!(status, 404);
}

#[tokio::test]
async fn session_ends_when_client_vanishes() {
    let cfg = WhepConfig {
        disconnect_timeout: Duration::from_secs(3),
        ..local_cfg()
    };
    let h = harness(cfg, None).await;
    let mut events = h.server.subscribe_events();
    let mut client = WhepClient::connect(&h.url).await.expect("connect");
    client
        .wait_connected(Duration::from_secs(5))
        .await
        .expect("connected");
    let _ = client.recv_frame().await;
    let t0 = Instant::now();
    drop(client); // no DELETE, no DTLS close: the peer just stops
    let reason = wait_ended(&mut events, Duration::from_secs(12)).await;
    assert!(
        matches!(
            reason,
            Some(EndReason::PeerSilent | EndReason::IceDisconnected)
        ),
        "{reason:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(wait_for(|| h.channel.subscriber_count() == 0, Duration::from_secs(1)).await);
    assert_eq!(h.server.session_count(), 0);
}

#[tokio::test]
async fn session_ends_when_never_connected() {
    let cfg = WhepConfig {
        connect_timeout: Duration::from_millis(500),
        ..local_cfg()
    };
    let h = harness(cfg, None).await;
    let mut events = h.server.subscribe_events();
    let (id, answer) = h
        .server
        .create_session(&vp8_h264_offer(), &h.channel, h.params.clone())
        .await
        .expect("answer");
    assert!(answer.contains("H264/90000"), "{answer}");
    assert!(answer.contains("a=candidate"), "{answer}");
    assert!(!answer.contains("VP8"), "{answer}");
    assert_eq!(
        h.server.session_info(&id).unwrap().state,
        webrtc::SessionState::New
    );
    assert_eq!(
        wait_ended(&mut events, Duration::from_secs(3)).await,
        Some(EndReason::ConnectTimeout)
    );
    assert_eq!(h.channel.subscriber_count(), 0);
    let info = h.server.session_info(&id).unwrap();
    assert_eq!(info.state, webrtc::SessionState::Ended);
    assert!(!h.server.close_session(&id));
}

#[tokio::test]
async fn malformed_offer_is_invalid_argument() {
    let h = harness(local_cfg(), None).await;
    for bad in [
        "",
        "hello",
        "v=0\r\nm=video\r\n",
        "v=0\r\no=x\r\n\u{0}\u{ffff}",
    ] {
        let e = h
            .server
            .create_session(bad, &h.channel, h.params.clone())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad:?}: {e}");
        assert!(e.message().starts_with("malformed SDP offer: "), "{e}");
    }
    assert_eq!(h.channel.subscriber_count(), 0);
    assert_eq!(h.server.session_count(), 0);
}

#[tokio::test]
async fn h265_camera_is_not_acceptable() {
    let h = harness(local_cfg(), None).await;
    let mut p = (*h.params).clone();
    p.codec = Codec::H265;
    let e = h
        .server
        .create_session(&vp8_h264_offer(), &h.channel, Arc::new(p))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotAcceptable);
    assert_eq!(e.message(), "camera sends H.265; offer accepts VP8, H.264");
    assert_eq!(h.channel.subscriber_count(), 0);
}

#[tokio::test]
async fn vp8_only_offer_is_not_acceptable() {
    let h = harness(local_cfg(), None).await;
    let offer = offer_with_video(
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n",
        "a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:97 rtx/90000\r\n\
a=fmtp:97 apt=96\r\n",
    );
    let e = h
        .server
        .create_session(&offer, &h.channel, h.params.clone())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotAcceptable);
    assert_eq!(e.message(), "camera sends H.264; offer accepts VP8");
    // Over HTTP too: 406 with the message.
    let (status, _, body) =
        webrtc::testing::http_request("POST", &h.url, Some("application/sdp"), offer.as_bytes())
            .await
            .unwrap();
    assert_eq!(status, 406);
    assert_eq!(
        String::from_utf8_lossy(&body),
        "camera sends H.264; offer accepts VP8"
    );
}

#[tokio::test]
async fn audio_m_line_is_answered_inactive() {
    let h = harness(local_cfg(), None).await;
    let offer = vp8_h264_offer().replace("a=group:BUNDLE 0\r\n", "a=group:BUNDLE 0 1\r\n")
        + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:abcd\r\n\
a=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=fingerprint:sha-256 8E:0E:D4:4E:BB:B9:6C:8D:4B:F2:1E:5D:BD:2D:34:A8:44:B1:6F:B3:2A:DF:6B:A7:A1:43:23:5E:7C:36:E5:CE\r\n\
a=setup:actpass\r\n\
a=mid:1\r\n\
a=recvonly\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n";
    let (_, answer) = h
        .server
        .create_session(&offer, &h.channel, h.params.clone())
        .await
        .expect("answer");
    // Audio is rejected (port 0, out of the bundle); video is answered sendonly with H.264 only.
    assert!(answer.contains("m=audio 0 "), "{answer}");
    assert!(answer.contains("a=group:BUNDLE 0\r\n"), "{answer}");
    assert!(
        answer.contains("m=video 9 UDP/TLS/RTP/SAVPF 102\r\n"),
        "{answer}"
    );
    assert!(answer.contains("a=sendonly"), "{answer}");
    assert!(answer.contains("a=ice-lite"), "{answer}");
    // The rejected section as JSEP expects it: the offered format with its rtpmap, its mid, and
    // inactive (str0m wrote format 0 without rtpmap, sendonly; aiortc refused that).
    let audio = answer.split_once("m=audio").expect("audio section").1;
    assert!(
        audio.starts_with(" 0 UDP/TLS/RTP/SAVPF 111\r\n"),
        "{answer}"
    );
    assert!(audio.contains("a=rtpmap:111 opus/48000/2\r\n"), "{answer}");
    assert!(audio.contains("a=mid:1\r\n"), "{answer}");
    assert!(audio.contains("a=inactive\r\n"), "{answer}");
    assert!(!audio.contains("a=sendonly"), "{answer}");
}

/// The media loop reads and waits on the clocks it is given: on simulated clocks a session that
/// never connects ends when the clock is advanced past the connect timeout, with no real wait.
#[tokio::test]
async fn media_loop_runs_on_the_given_clocks() {
    init_log();
    let clocks = base::SimulatedClocks::new(SystemTime::now());
    let server = WhepServer::start_with_clocks(local_cfg(), Arc::new(clocks.clone()))
        .await
        .expect("start");
    let feed = load_fixture();
    let channel = Channel::new("cam-sim", ChannelConfig::default(), SystemTime::now());
    let mut events = server.subscribe_events();
    let t0 = base::Clocks::monotonic(&clocks);
    let (id, _) = server
        .create_session(&vp8_h264_offer(), &channel, feed.params.clone())
        .await
        .expect("answer");
    let info = server.session_info(&id).expect("info");
    assert_eq!(info.created, t0, "created on the simulated clock");
    assert_eq!(info.state, webrtc::SessionState::New);
    clocks.advance(Duration::from_secs(10));
    let ended = tokio::time::timeout(Duration::from_secs(30), events.recv()).await;
    assert!(
        matches!(
            &ended,
            Ok(Ok(SessionEvent::Ended { id: e, reason: EndReason::ConnectTimeout })) if *e == id
        ),
        "{ended:?}"
    );
    assert_eq!(server.session_count(), 0);
    assert_eq!(channel.subscriber_count(), 0);
}

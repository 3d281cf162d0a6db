//! Ingest against the in-process RTSP server (`rtsp-server`) serving the fixture clips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use hub::State;
use ingest::{
    BackoffPolicy, Connector, RtspConnector, SourceConfig, Transport, spawn_supervisor,
    spawn_supervisor_with,
};
use media::Codec;
use rtsp_server::RtspServer;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn clocks() -> Arc<dyn base::Clocks> {
    Arc::new(base::RealClocks)
}

fn fast_policy() -> BackoffPolicy {
    BackoffPolicy {
        min: Duration::from_millis(100),
        max: Duration::from_millis(400),
        ..BackoffPolicy::default()
    }
}

/// The real RTSP connector, noting the channel's state each time a session starts.
struct Observed {
    ch: Arc<hub::Channel>,
    at_start: parking_lot::Mutex<Vec<State>>,
}

impl Connector for Observed {
    fn run<'a>(
        &'a self,
        source: &'a SourceConfig,
        prev: Option<Arc<media::VideoParams>>,
        clocks: &'a dyn base::Clocks,
        sink: &'a mut dyn ingest::Sink,
    ) -> futures::future::BoxFuture<'a, base::Error> {
        self.at_start.lock().push(self.ch.status().state);
        RtspConnector.run(source, prev, clocks, sink)
    }
}

async fn ingest_clip(file: &str, codec: Codec, transport: Transport) {
    let clip = clip(file, codec);
    let server = RtspServer::bind("127.0.0.1:0").await.expect("bind");
    server.add_clip_mount("/cam", clip.clone());
    let ch = channel("cam-a");
    let (rec, rec_stop) = record_states(ch.clone());
    let sub = ch.subscribe();
    let observed = Arc::new(Observed {
        ch: ch.clone(),
        at_start: Default::default(),
    });
    let sup = spawn_supervisor_with(
        observed.clone(),
        ch.clone(),
        source("cam-a", &server.url("/cam"), transport),
        fast_policy(),
        clocks(),
    );
    let (_, took) = wait_state(&ch, State::Online, Duration::from_secs(5)).await;
    eprintln!("{file} {transport:?}: online after {took:?}");

    // Collect 2 s of the clip (50 frames at 25 fps): a count, so a busy machine only takes
    // longer. The rate is asserted on the 90 kHz timeline, not on arrival times.
    let mut frames = Vec::new();
    let t0 = Instant::now();
    while frames.len() < 51 {
        frames.push(recv_timeout(&sub, Duration::from_secs(5)).await);
    }
    let wall = t0.elapsed().as_secs_f64();
    rec_stop.store(1, Ordering::Relaxed);
    let states = rec.await.expect("recorder");
    // Idle, then (Connecting, possibly too short for the 1 ms poll to see) Online, nothing else;
    // the session started in Connecting.
    assert_eq!(states.first(), Some(&State::Idle), "{states:?}");
    assert_eq!(states.last(), Some(&State::Online), "{states:?}");
    assert!(
        states
            .iter()
            .all(|s| matches!(s, State::Idle | State::Connecting | State::Online)),
        "{states:?}"
    );
    assert_eq!(*observed.at_start.lock(), vec![State::Connecting]);

    // ~25 fps, both by arrival and by the 90 kHz timeline.
    let fps_wall = (frames.len() - 1) as f64 / wall;
    let span = frames.last().map_or(0, |f| f.pts) - frames[0].pts;
    let fps_pts = (frames.len() - 1) as f64 * 90_000.0 / span as f64;
    eprintln!(
        "{file} {transport:?}: {} frames, {fps_wall:.1} fps by arrival, {fps_pts:.2} fps by pts",
        frames.len()
    );
    assert!((24.5..=25.5).contains(&fps_pts), "fps by pts {fps_pts}");
    for w in frames.windows(2) {
        assert!(w[1].pts > w[0].pts, "pts not monotonic");
        assert_eq!(w[1].pts - w[0].pts, 3600, "25 fps = 3600 ticks per frame");
    }

    // Frames: Annex B with 4-byte start codes; params from the clip; key flags where the clip has
    // its key frames (H.265 included).
    let p = &frames[0].params;
    assert_eq!(p.codec, codec);
    assert_eq!(
        (p.width, p.height),
        (clip.params().width, clip.params().height)
    );
    assert_eq!(p.sps, clip.params().sps);
    assert_eq!(p.pps, clip.params().pps);
    assert!(frames[0].is_key, "the first frame is a key frame");
    for f in &frames {
        assert_eq!(&f.data[..4], &[0, 0, 0, 1]);
        assert!(
            Arc::ptr_eq(&f.params, &frames[0].params),
            "params built once"
        );
        assert_eq!(f.is_key, media::nal::is_key_frame(codec, &f.data));
        if f.is_key {
            let ps = media::ParameterSets::from_access_unit(codec, &f.data);
            assert!(ps.is_complete(codec), "key frames carry parameter sets");
        }
    }
    let cf = clip.frames();
    let aligned = (0..cf.len()).filter(|&k| cf[k].is_key).any(|k| {
        frames
            .iter()
            .enumerate()
            .all(|(i, f)| f.is_key == cf[(k + i) % cf.len()].is_key)
    });
    assert!(aligned, "key flags do not match the clip's key frames");
    let keys = frames.iter().filter(|f| f.is_key).count();
    eprintln!("{file} {transport:?}: {keys} key frames");

    let stats = ch.stats();
    assert!(stats.frames_in >= frames.len() as u64);
    sup.shutdown().await;
    assert_eq!(ch.status().state, State::Idle);
    server.shutdown().await;
}

#[tokio::test]
async fn ingest_h264_tcp() {
    ingest_clip("h264_a.h264", Codec::H264, Transport::Tcp).await;
}

#[tokio::test]
async fn ingest_h264_udp() {
    ingest_clip("h264_a.h264", Codec::H264, Transport::Udp).await;
}

#[tokio::test]
async fn ingest_h265_tcp() {
    ingest_clip("h265_a.h265", Codec::H265, Transport::Tcp).await;
}

#[tokio::test]
async fn ingest_h265_udp() {
    ingest_clip("h265_a.h265", Codec::H265, Transport::Udp).await;
}

#[tokio::test]
async fn credentials_right_and_wrong() {
    const SECRET: &str = "s3cret-Pa55";
    const WRONG: &str = "wr0ng-Pa55";
    let server = RtspServer::bind("127.0.0.1:0").await.expect("bind");
    server.add_clip_mount("/cam", clip("h264_b.h264", Codec::H264));
    server.set_credentials(Some(("admin".into(), SECRET.into())));

    let good_ch = channel("cam-good");
    let _good_sub = good_ch.subscribe();
    let good = spawn_supervisor(
        good_ch.clone(),
        SourceConfig {
            username: Some("admin".into()),
            password: Some(SECRET.into()),
            ..source("cam-good", &server.url("/cam"), Transport::Tcp)
        },
        fast_policy(),
        clocks(),
    );
    let bad_ch = channel("cam-bad");
    let _bad_sub = bad_ch.subscribe();
    let bad = spawn_supervisor(
        bad_ch.clone(),
        SourceConfig {
            username: Some("admin".into()),
            password: Some(WRONG.into()),
            ..source("cam-bad", &server.url("/cam"), Transport::Tcp)
        },
        fast_policy(),
        clocks(),
    );
    let nocreds_ch = channel("cam-nocreds");
    let _nocreds_sub = nocreds_ch.subscribe();
    let nocreds = spawn_supervisor(
        nocreds_ch.clone(),
        source("cam-nocreds", &server.url("/cam"), Transport::Tcp),
        fast_policy(),
        clocks(),
    );

    wait_state(&good_ch, State::Online, Duration::from_secs(5)).await;
    let (st, _) = wait_state(&bad_ch, State::Error, Duration::from_secs(5)).await;
    let e = st.last_error.expect("last_error");
    eprintln!("wrong password: {e}");
    assert!(!e.contains(WRONG) && !e.contains(SECRET), "{e}");
    assert!(
        e.contains("cam-bad") && e.contains(&server.url("/cam")),
        "{e}"
    );
    assert!(e.contains("401"), "{e}");
    let (st, _) = wait_state(&nocreds_ch, State::Error, Duration::from_secs(5)).await;
    let e = st.last_error.expect("last_error");
    eprintln!("no credentials: {e}");
    assert!(!e.contains(SECRET), "{e}");
    // Still failing after retries (counted, whatever time they take), and still online.
    until("the wrong password is retried", || {
        bad_ch.status().failed_attempts >= 2
    })
    .await;
    assert_eq!(bad_ch.status().state, State::Error);
    assert!(bad_ch.status().failed_attempts >= 2);
    assert_eq!(good_ch.status().state, State::Online);
    good.shutdown().await;
    bad.shutdown().await;
    nocreds.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn garbage_mount_is_error_and_neighbour_unaffected() {
    let server = RtspServer::bind("127.0.0.1:0").await.expect("bind");
    server.add_clip_mount("/good", clip("h264_c.h264", Codec::H264));
    server.add_garbage_mount("/garbage");

    let good_ch = channel("cam-good");
    let good_sub = good_ch.subscribe();
    let good = spawn_supervisor(
        good_ch.clone(),
        source("cam-good", &server.url("/good"), Transport::Tcp),
        fast_policy(),
        clocks(),
    );
    let bad_ch = channel("cam-garbage");
    let _bad_sub = bad_ch.subscribe();
    let bad = spawn_supervisor(
        bad_ch.clone(),
        source("cam-garbage", &server.url("/garbage"), Transport::Tcp),
        fast_policy(),
        clocks(),
    );
    let (st, took) = wait_state(&bad_ch, State::Error, Duration::from_secs(8)).await;
    let e = st.last_error.expect("last_error");
    eprintln!("garbage after {took:?}: {e}");
    assert!(e.contains("cam-garbage") && e.contains("/garbage"), "{e}");

    wait_state(&good_ch, State::Online, Duration::from_secs(5)).await;
    // The good camera keeps streaming next to the failing one (a count, not a rate: a busy
    // machine may take longer, but the frames must come).
    let before = good_ch.stats().frames_in;
    until("the good camera keeps streaming", || {
        good_ch.stats().frames_in >= before + 20
    })
    .await;
    assert_eq!(good_ch.status().state, State::Online);
    assert!(good_ch.status().last_error.is_none());
    recv_timeout(&good_sub, Duration::from_secs(1)).await;
    good.shutdown().await;
    bad.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn unsupported_path_is_error() {
    let server = RtspServer::bind("127.0.0.1:0").await.expect("bind");
    let ch = channel("cam-404");
    let _sub = ch.subscribe();
    let sup = spawn_supervisor(
        ch.clone(),
        source("cam-404", &server.url("/nothing"), Transport::Tcp),
        fast_policy(),
        clocks(),
    );
    let (st, _) = wait_state(&ch, State::Error, Duration::from_secs(5)).await;
    let e = st.last_error.expect("last_error");
    eprintln!("404: {e}");
    assert!(e.contains("404"), "{e}");
    sup.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn connection_refused_is_offline() {
    // A port that was free a moment ago.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let ch = channel("cam-refused");
    let _sub = ch.subscribe();
    let sup = spawn_supervisor(
        ch.clone(),
        source("cam-refused", &format!("rtsp://{addr}/x"), Transport::Tcp),
        fast_policy(),
        clocks(),
    );
    let (st, _) = wait_state(&ch, State::Offline, Duration::from_secs(5)).await;
    let e = st.last_error.expect("last_error");
    eprintln!("refused: {e}");
    assert!(e.contains("cam-refused"), "{e}");
    sup.shutdown().await;
}

#[tokio::test]
async fn server_restart_goes_offline_then_online() {
    let clip = clip("h264_d.h264", Codec::H264);
    let server = RtspServer::bind("127.0.0.1:0").await.expect("bind");
    let addr = server.local_addr();
    server.add_clip_mount("/cam", clip.clone());
    let ch = channel("cam-restart");
    let sub = ch.subscribe();
    let sup = spawn_supervisor(
        ch.clone(),
        source("cam-restart", &server.url("/cam"), Transport::Tcp),
        fast_policy(),
        clocks(),
    );
    wait_state(&ch, State::Online, Duration::from_secs(5)).await;
    recv_timeout(&sub, Duration::from_secs(1)).await;

    let t0 = Instant::now();
    server.shutdown().await;
    let (st, took) = wait_state(&ch, State::Offline, Duration::from_secs(5)).await;
    eprintln!(
        "offline {took:?} after shutdown: {}",
        st.last_error.unwrap_or_default()
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    // Drain what was queued before the shutdown.
    while sub.try_recv().is_some() {}

    let server = RtspServer::bind(&addr.to_string()).await.expect("rebind");
    server.add_clip_mount("/cam", clip);
    let restarted = Instant::now();
    let (_, took) = wait_state(&ch, State::Online, Duration::from_secs(5)).await;
    eprintln!("online again {took:?} after restart");
    let f = recv_timeout(&sub, Duration::from_secs(2)).await;
    assert!(f.is_key, "a new session starts at a key frame");
    assert!(f.received >= std::time::SystemTime::now() - restarted.elapsed());
    for _ in 0..10 {
        recv_timeout(&sub, Duration::from_secs(1)).await;
    }
    sup.shutdown().await;
    server.shutdown().await;
}

/// Waits (bounded, generously) until `cond` holds; the bound is a hang guard, not a window.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < Duration::from_secs(10), "never: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Demand on simulated time: the idle grace (300 ms) passes only when the test advances the
/// clocks shared by the channel and the supervisor, so what is asserted is the order of events
/// and the number of upstream connections, never how long something took on this machine.
#[tokio::test]
async fn demand_starts_and_stops_upstream() {
    let server = RtspServer::bind("127.0.0.1:0").await.expect("bind");
    server.add_clip_mount("/cam", clip("h264_a.h264", Codec::H264));
    let proxy = CountingProxy::start(server.local_addr()).await;
    let sim = base::SimulatedClocks::new(std::time::SystemTime::now());
    let clocks: Arc<dyn base::Clocks> = Arc::new(sim.clone());
    let cfg = hub::ChannelConfig {
        idle_grace: Duration::from_millis(300),
        ..hub::ChannelConfig::default()
    };
    let ch = hub::Channel::with_clocks("cam-demand", cfg, clocks.clone());
    let sup = spawn_supervisor(
        ch.clone(),
        source("cam-demand", &proxy.url("/cam"), Transport::Tcp),
        fast_policy(),
        clocks,
    );
    let accepted = || proxy.accepted.load(Ordering::SeqCst);
    let open = || proxy.open.load(Ordering::SeqCst);
    let frames_in = || ch.stats().frames_in;

    // No subscriber: idle and no connection, however much time passes.
    sim.advance(Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(ch.status().state, State::Idle);
    assert_eq!(accepted(), 0);

    // The first subscriber starts the upstream; a second one shares it.
    let sub = ch.subscribe();
    wait_state(&ch, State::Online, Duration::from_secs(10)).await;
    recv_timeout(&sub, Duration::from_secs(5)).await;
    let sub2 = ch.subscribe();
    assert!(recv_timeout(&sub2, Duration::from_secs(5)).await.is_key);
    assert_eq!(
        (accepted(), open()),
        (1, 1),
        "one upstream for two subscribers"
    );
    drop(sub2);

    // The last subscriber leaves: the upstream keeps streaming through the grace, for as long
    // as the (simulated) grace has not run out, whatever the real time.
    drop(sub);
    sim.advance(Duration::from_millis(299));
    let f0 = frames_in();
    until("frames keep arriving within the grace", || {
        frames_in() >= f0 + 10
    })
    .await;
    assert_eq!(ch.status().state, State::Online);
    assert_eq!((accepted(), open()), (1, 1));

    // The grace runs out: idle, and the connection closes.
    sim.advance(Duration::from_millis(1));
    wait_state(&ch, State::Idle, Duration::from_secs(10)).await;
    until("the upstream connection closes", || open() == 0).await;
    let frames = frames_in();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(frames_in(), frames, "no frames once idle");
    assert_eq!(accepted(), 1);

    // A new subscriber starts a second upstream session.
    let sub = ch.subscribe();
    wait_state(&ch, State::Online, Duration::from_secs(10)).await;
    assert_eq!(accepted(), 2);
    // Leaving and coming back within the grace keeps the session (no reconnect), even when
    // the clock then moves far past the grace.
    drop(sub);
    sim.advance(Duration::from_millis(100));
    let sub = ch.subscribe();
    sim.advance(Duration::from_secs(10));
    let f0 = frames_in();
    until("the same session keeps streaming", || {
        frames_in() >= f0 + 10
    })
    .await;
    recv_timeout(&sub, Duration::from_secs(5)).await;
    assert_eq!(ch.status().state, State::Online);
    assert_eq!((accepted(), open()), (2, 1));
    drop(sub);
    sup.shutdown().await;
    server.shutdown().await;
}

/// A camera with AAC audio (the fixture tone looped with the video): the audio reaches
/// subscribers that ask for it, on the video's timeline, over TCP and UDP.
async fn ingest_with_audio(transport: Transport) {
    let audio = rtsp_server::AudioClip::from_adts_file(format!(
        "{}/../../fixtures/clips/aac_16k_mono.adts",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("audio fixture");
    let video = rtsp_server::ClipSource::from_file(
        format!(
            "{}/../../fixtures/clips/h264_a.h264",
            env!("CARGO_MANIFEST_DIR")
        ),
        Codec::H264,
    )
    .expect("fixture clip");
    let server = RtspServer::bind("127.0.0.1:0").await.expect("bind");
    server.add_clip_mount("/av", Arc::new(video.with_audio(audio)));
    let ch = channel("cam-av");
    let rec = ch.subscribe_av(Default::default());
    let viewer = ch.subscribe();
    let sup = spawn_supervisor(
        ch.clone(),
        source("cam-av", &server.url("/av"), transport),
        fast_policy(),
        clocks(),
    );
    wait_state(&ch, State::Online, Duration::from_secs(5)).await;
    let p = ch.audio_params().expect("audio parameters announced");
    assert_eq!(
        (p.sample_rate, p.channels, p.rfc6381.as_str(), &p.config[..]),
        (16_000, 1, "mp4a.40.2", &[0x14, 0x08][..])
    );

    // About 3 s of both, counted in frames (75 video frames at 25 fps), not in wall time.
    let (mut video, mut audio) = (Vec::new(), Vec::new());
    while video.len() < 75 {
        video.push(recv_timeout(&rec, Duration::from_secs(5)).await);
        while let Some(a) = rec.try_recv_audio() {
            audio.push(a);
        }
    }
    assert!(viewer.try_recv_audio().is_none(), "viewers get no audio");
    // 15.625 AAC frames a second, 1024 samples = 5760 ticks apart: as many as the video's 3 s
    // hold (the two streams are delivered together).
    let n = audio.len();
    assert!((40..=52).contains(&n), "{n} audio frames with 3 s of video");
    for w in audio.windows(2) {
        assert_eq!(w[1].pts - w[0].pts, 5760, "AAC frames 1024 samples apart");
        assert_eq!(w[1].duration, 1024);
    }
    // In sync: the server sends audio and video of the same instant together (RTP-Info aligns
    // the timelines), so each audio frame's pts is within one video frame of the video frame
    // that arrived with it.
    let last_audio = audio.last().expect("audio").pts;
    let last_video = video.last().expect("video").pts;
    assert!(
        (last_audio - last_video).abs() <= 2 * 5760,
        "audio pts {last_audio} vs video pts {last_video}"
    );
    // Raw AAC (the first element is a channel element), not ADTS (0xFFF sync word).
    assert!(
        audio
            .iter()
            .all(|a| !a.data.is_empty() && a.data[0] != 0xff)
    );
    assert!(ch.stats().audio_frames_in as usize >= n);
    sup.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn ingest_audio_tcp() {
    ingest_with_audio(Transport::Tcp).await;
}

#[tokio::test]
async fn ingest_audio_udp() {
    ingest_with_audio(Transport::Udp).await;
}

/// A camera whose URL carries credentials in its query string (as some cameras document it):
/// neither the status' `last_error` (shown over the API) nor the URL in it holds them.
#[tokio::test]
async fn query_string_secrets_never_reach_last_error() {
    const SECRET: &str = "s3cret-Qu3ry";
    let server = RtspServer::bind("127.0.0.1:0").await.expect("bind");
    let ch = channel("cam-query");
    let _sub = ch.subscribe();
    let url = format!(
        "{}?user=admin&password={SECRET}&token=tk-{SECRET}&channel=1",
        server.url("/nothing")
    );
    let sup = spawn_supervisor(
        ch.clone(),
        source("cam-query", &url, Transport::Tcp),
        fast_policy(),
        clocks(),
    );
    let (st, _) = wait_state(&ch, State::Error, Duration::from_secs(5)).await;
    let e = st.last_error.expect("last_error");
    eprintln!("404 with query credentials: {e}");
    assert!(e.contains("404"), "{e}");
    assert!(!e.contains(SECRET) && !e.contains("admin"), "{e}");
    assert!(
        e.contains("/nothing?user=***&password=***&token=***&channel=1"),
        "{e}"
    );
    sup.shutdown().await;
    server.shutdown().await;
}

//! Drives the server with retina (TCP and UDP, H.264 and H.265) and, with `VANTAGE_E2E=1`, ffprobe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::StreamExt;
use media::Codec;
use retina::client::{
    Credentials, PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions,
    Transport, UdpTransportOptions,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};
use rtsp_server::{ClipSource, RtspServer};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn clip_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/clips")
        .join(name)
}

fn clip(name: &str, codec: Codec) -> Arc<ClipSource> {
    Arc::new(ClipSource::from_file(clip_path(name), codec).unwrap())
}

fn transport(udp: bool) -> Transport {
    if udp {
        Transport::Udp(UdpTransportOptions::default())
    } else {
        Transport::Tcp(TcpTransportOptions::default())
    }
}

struct Received {
    timestamps: Vec<i64>,
    first_is_key: bool,
    rfc6381: String,
    dims: (u32, u32),
    elapsed: Duration,
}

async fn receive(
    url: &str,
    udp: bool,
    creds: Option<Credentials>,
    frames: usize,
) -> Result<Received, retina::Error> {
    let url = url::Url::parse(url).unwrap();
    let mut session = Session::describe(url, SessionOptions::default().creds(creds)).await?;
    session
        .setup(
            0,
            SetupOptions::default()
                .transport(transport(udp))
                .frame_format(FrameFormat::SIMPLE),
        )
        .await?;
    let mut session = session.play(PlayOptions::default()).await?.demuxed()?;
    let mut timestamps = Vec::new();
    let mut first_is_key = false;
    let mut start = None;
    while timestamps.len() < frames {
        let item = tokio::time::timeout(Duration::from_secs(10), session.next())
            .await
            .expect("timed out waiting for a frame")
            .expect("stream ended")?;
        if let CodecItem::VideoFrame(f) = item {
            if timestamps.is_empty() {
                first_is_key = f.is_random_access_point();
                start = Some(Instant::now());
                assert!(f.data().starts_with(&[0, 0, 0, 1]));
            }
            timestamps.push(f.timestamp().timestamp());
        }
    }
    let elapsed = start.unwrap().elapsed();
    let Some(ParametersRef::Video(v)) = session.streams()[0].parameters() else {
        panic!("no video parameters");
    };
    Ok(Received {
        timestamps,
        first_is_key,
        rfc6381: v.rfc6381_codec().to_owned(),
        dims: v.pixel_dimensions(),
        elapsed,
    })
}

async fn check_clip(name: &str, codec: Codec, udp: bool, rfc6381: &str) {
    let server = RtspServer::bind("127.0.0.1:0").await.unwrap();
    server.add_clip_mount("/cam1", clip(name, codec));
    let r = receive(&server.url("/cam1"), udp, None, 51).await.unwrap();
    assert!(r.first_is_key, "{name}: first frame must be a key frame");
    for w in r.timestamps.windows(2) {
        assert_eq!(
            w[1] - w[0],
            3600,
            "{name}: 90 kHz timestamps step by 3600 at 25 fps"
        );
    }
    // 50 frame intervals at 25 fps = 2 s.
    let secs = r.elapsed.as_secs_f64();
    assert!(
        (1.6..2.6).contains(&secs),
        "{name}: 50 intervals took {secs:.2}s"
    );
    assert_eq!(r.rfc6381, rfc6381, "{name}");
    assert_eq!(r.dims, (640, 360));
    server.shutdown().await;
}

#[tokio::test]
async fn h264_over_tcp() {
    check_clip("h264_a.h264", Codec::H264, false, "avc1.64001E").await;
}

#[tokio::test]
async fn h264_over_udp() {
    check_clip("h264_c.h264", Codec::H264, true, "avc1.42C01E").await;
}

#[tokio::test]
async fn h265_over_tcp() {
    check_clip("h265_a.h265", Codec::H265, false, "hvc1.1.6.L63.90").await;
}

#[tokio::test]
async fn h265_over_udp() {
    check_clip("h265_a.h265", Codec::H265, true, "hvc1.1.6.L63.90").await;
}

#[tokio::test]
async fn sdp_profile_level_id_matches_clip() {
    let c = clip("h264_b.h264", Codec::H264);
    let plid = c.params().h264_profile_level_id.unwrap();
    let server = RtspServer::bind("127.0.0.1:0").await.unwrap();
    server.add_clip_mount("/b", c);
    let url = url::Url::parse(&server.url("/b")).unwrap();
    let session = Session::describe(url, SessionOptions::default())
        .await
        .unwrap();
    let Some(ParametersRef::Video(v)) = session.streams()[0].parameters() else {
        panic!("no parameters from SDP");
    };
    let expect = format!("avc1.{:02X}{:02X}{:02X}", plid[0], plid[1], plid[2]);
    assert_eq!(v.rfc6381_codec(), expect);
    assert_eq!(expect, "avc1.4D401E");
    assert_eq!(session.streams()[0].encoding_name(), "h264");
}

#[tokio::test]
async fn two_sessions_share_a_mount() {
    let server = RtspServer::bind("127.0.0.1:0").await.unwrap();
    server.add_clip_mount("/cam", clip("h264_d.h264", Codec::H264));
    let url = server.url("/cam");
    let (a, b) = tokio::join!(
        receive(&url, false, None, 10),
        receive(&url, true, None, 10)
    );
    assert!(a.unwrap().first_is_key);
    assert!(b.unwrap().first_is_key);
}

#[tokio::test]
async fn basic_auth() {
    let server = RtspServer::bind("127.0.0.1:0").await.unwrap();
    server.add_clip_mount("/cam", clip("h264_a.h264", Codec::H264));
    server.set_credentials(Some(("admin".into(), "s3cret".into())));
    let url = server.url("/cam");
    let bad = Credentials {
        username: "admin".into(),
        password: "wrong".into(),
    };
    assert!(receive(&url, false, None, 1).await.is_err());
    assert!(receive(&url, false, Some(bad), 1).await.is_err());
    let good = Credentials {
        username: "admin".into(),
        password: "s3cret".into(),
    };
    let r = receive(&url, false, Some(good), 3).await.unwrap();
    assert_eq!(r.timestamps.len(), 3);
}

#[tokio::test]
async fn unknown_path_and_garbage_mount() {
    let server = RtspServer::bind("127.0.0.1:0").await.unwrap();
    server.add_garbage_mount("/garbage");
    assert!(receive(&server.url("/nope"), false, None, 1).await.is_err());
    // DESCRIBE succeeds; the random payloads then make the depacketizer fail (or, rarely, yield
    // nonsense frames). Either way nothing hangs or panics.
    let url = url::Url::parse(&server.url("/garbage")).unwrap();
    let session = Session::describe(url, SessionOptions::default())
        .await
        .unwrap();
    assert_eq!(session.streams()[0].encoding_name(), "h264");
    let res = tokio::time::timeout(
        Duration::from_secs(10),
        receive(&server.url("/garbage"), false, None, 50),
    )
    .await
    .expect("garbage mount must not hang the client");
    assert!(res.is_err(), "random RTP payloads should produce an error");
}

#[tokio::test]
async fn shutdown_drops_connections_and_port_is_reusable() {
    let server = RtspServer::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr();
    server.add_clip_mount("/cam", clip("h264_a.h264", Codec::H264));
    let url = server.url("/cam");
    let u = url::Url::parse(&url).unwrap();
    let mut session = Session::describe(u, SessionOptions::default())
        .await
        .unwrap();
    session
        .setup(0, SetupOptions::default().frame_format(FrameFormat::SIMPLE))
        .await
        .unwrap();
    let mut session = session
        .play(PlayOptions::default())
        .await
        .unwrap()
        .demuxed()
        .unwrap();
    let _ = session.next().await.unwrap().unwrap();
    server.shutdown().await;
    // The client sees the connection end (an error or end of stream) promptly.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = session.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "client still receiving after shutdown");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());

    let server = RtspServer::bind(&addr.to_string()).await.unwrap();
    server.add_clip_mount("/cam", clip("h264_a.h264", Codec::H264));
    let r = receive(&url, false, None, 2).await.unwrap();
    assert!(r.first_is_key);
    drop(server);
}

/// Raw requests: status codes for malformed and out-of-state requests.
#[tokio::test]
async fn raw_status_codes() {
    let server = RtspServer::bind("127.0.0.1:0").await.unwrap();
    server.add_clip_mount("/cam", clip("h264_a.h264", Codec::H264));
    let addr = server.local_addr();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    async fn ask(s: &mut tokio::net::TcpStream, req: &str) -> String {
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
    let base = format!("rtsp://{addr}/cam");
    let r = ask(
        &mut s,
        &format!("OPTIONS {base} RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
    )
    .await;
    assert!(r.starts_with("RTSP/1.0 200 OK\r\nCSeq: 1\r\n"), "{r}");
    assert!(r.contains("Public: OPTIONS, DESCRIBE"));
    let r = ask(
        &mut s,
        &format!("DESCRIBE rtsp://{addr}/x RTSP/1.0\r\nCSeq: 2\r\n\r\n"),
    )
    .await;
    assert!(r.starts_with("RTSP/1.0 404"), "{r}");
    let r = ask(
        &mut s,
        &format!("DESCRIBE {base} RTSP/1.0\r\nCSeq: 3\r\n\r\n"),
    )
    .await;
    assert!(r.contains("a=rtpmap:96 H264/90000"), "{r}");
    assert!(
        r.contains("profile-level-id=64001E;sprop-parameter-sets="),
        "{r}"
    );
    assert!(r.contains(&format!("Content-Base: {base}/")), "{r}");
    let r = ask(
        &mut s,
        &format!("PLAY {base} RTSP/1.0\r\nCSeq: 4\r\nSession: 1234\r\n\r\n"),
    )
    .await;
    assert!(r.starts_with("RTSP/1.0 454"), "{r}");
    let r = ask(
        &mut s,
        &format!(
            "SETUP {base}/trackID=0 RTSP/1.0\r\nCSeq: 5\r\nTransport: RTP/AVP;multicast\r\n\r\n"
        ),
    )
    .await;
    assert!(r.starts_with("RTSP/1.0 461"), "{r}");
    let r = ask(&mut s, &format!("SETUP {base}/trackID=1 RTSP/1.0\r\nCSeq: 6\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n")).await;
    assert!(r.starts_with("RTSP/1.0 404"), "{r}");
    let r = ask(&mut s, &format!("PAUSE {base} RTSP/1.0\r\nCSeq: 7\r\n\r\n")).await;
    assert!(r.starts_with("RTSP/1.0 405"), "{r}");
    let r = ask(&mut s, &format!("FOO {base} RTSP/1.0\r\nCSeq: 8\r\n\r\n")).await;
    assert!(r.starts_with("RTSP/1.0 501"), "{r}");
    let r = ask(
        &mut s,
        &format!("OPTIONS {base} RTSP/2.0\r\nCSeq: 9\r\n\r\n"),
    )
    .await;
    assert!(r.starts_with("RTSP/1.0 505"), "{r}");
    let r = ask(&mut s, &format!("OPTIONS {base} RTSP/1.0\r\n\r\n")).await;
    assert!(r.starts_with("RTSP/1.0 400"), "{r}");
    let r = ask(&mut s, "this is not rtsp\r\n\r\n").await;
    assert!(r.starts_with("RTSP/1.0 400"), "{r}");
    // A malformed request closes the connection.
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn disabled_mount_is_not_found() {
    let server = RtspServer::bind("127.0.0.1:0").await.unwrap();
    server.add_clip_mount("/cam", clip("h264_a.h264", Codec::H264));
    assert!(server.set_mount_enabled("/cam", false));
    assert!(receive(&server.url("/cam"), false, None, 1).await.is_err());
    assert!(server.set_mount_enabled("/cam", true));
    assert!(receive(&server.url("/cam"), false, None, 1).await.is_ok());
    assert!(!server.set_mount_enabled("/nope", true));
}

/// With `VANTAGE_E2E=1`, ffprobe must see an H.264 640x360 stream over RTSP/TCP.
#[tokio::test]
async fn ffprobe_e2e() {
    if std::env::var("VANTAGE_E2E").as_deref() != Ok("1") {
        eprintln!("skipping ffprobe_e2e: VANTAGE_E2E is not 1");
        return;
    }
    let server = RtspServer::bind("127.0.0.1:0").await.unwrap();
    server.add_clip_mount("/cam", clip("h264_a.h264", Codec::H264));
    let url = server.url("/cam");
    let out = tokio::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "default=noprint_wrappers=1",
            "-i",
            &url,
        ])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("ffprobe timed out")
        .expect("VANTAGE_E2E=1 but ffprobe could not be run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("codec_name=h264"), "{stdout}");
    assert!(stdout.contains("width=640"), "{stdout}");
    assert!(stdout.contains("height=360"), "{stdout}");
}

//! Clip mounts with an AAC track: the fixture's ADTS parsing, the SDP, SETUP of both tracks, and
//! playback with retina (TCP and UDP) and, with `VANTAGE_E2E=1`, ffprobe and GStreamer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::StreamExt;
use media::{AudioCodec, Codec};
use retina::client::{
    PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions, Transport,
    UdpTransportOptions,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef};
use rtsp_server::{AudioClip, ClipSource, RtspServer};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn clip_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/clips")
        .join(name)
}

fn audio_clip() -> AudioClip {
    AudioClip::from_adts_file(clip_path("aac_16k_mono.adts")).unwrap()
}

fn clip_with_audio() -> Arc<ClipSource> {
    let video = ClipSource::from_file(clip_path("h264_a.h264"), Codec::H264).unwrap();
    Arc::new(video.with_audio(audio_clip()))
}

#[test]
fn fixture_parses() {
    let a = audio_clip();
    let p = a.params();
    assert_eq!(p.codec, AudioCodec::Aac);
    assert_eq!(p.sample_rate, 16_000);
    assert_eq!(p.channels, 1);
    assert_eq!(p.rfc6381, "mp4a.40.2");
    assert_eq!(&p.config[..], &[0x14, 0x08]);
    assert_eq!(a.samples_per_frame(), 1024);
    // 10 s at 16 kHz is 156.25 frames; the encoder adds a frame of priming and pads the end.
    assert_eq!(a.frames().len(), 158);
    assert!(a.frames().iter().all(|f| !f.is_empty() && f[0] != 0xFF));
    // About 32 kbit/s.
    let bytes: usize = a.frames().iter().map(|f| f.len()).sum();
    let kbps = bytes as f64 * 8.0 / 10.0 / 1000.0;
    assert!((24.0..40.0).contains(&kbps), "{kbps:.1} kbit/s");

    let c = clip_with_audio();
    assert_eq!(c.audio().map(|a| a.frames().len()), Some(158));
    let plain = ClipSource::from_file(clip_path("h264_a.h264"), Codec::H264).unwrap();
    assert!(plain.audio().is_none());
}

#[test]
fn bad_adts_is_an_error() {
    let data = std::fs::read(clip_path("aac_16k_mono.adts")).unwrap();
    for bad in [
        &data[..0],
        &data[..3],
        &data[..data.len() - 1],
        &data[1..],
        b"garbage, not ADTS".as_slice(),
    ] {
        let e = AudioClip::from_adts(bad).unwrap_err();
        assert_eq!(e.kind(), base::ErrorKind::InvalidArgument, "{e}");
    }
    let e = AudioClip::from_adts_file(clip_path("h264_a.h264")).unwrap_err();
    assert_eq!(e.kind(), base::ErrorKind::InvalidArgument, "{e}");
    assert!(e.message().contains("h264_a.h264"), "{e}");
    let e = AudioClip::from_adts_file(clip_path("missing.adts")).unwrap_err();
    assert_eq!(e.kind(), base::ErrorKind::NotFound, "{e}");
}

/// What one retina session received.
#[derive(Default)]
struct Got {
    /// (timestamp in clock units, elapsed seconds, when received)
    audio: Vec<(i64, f64, Instant)>,
    video: Vec<(i64, f64, Instant)>,
    audio_frame_lengths: Vec<u32>,
    audio_data: Vec<Vec<u8>>,
    audio_rfc6381: Option<String>,
    audio_clock_rate: u32,
}

async fn play_both(url: &str, udp: bool, audio_frames: usize) -> Got {
    let url = url::Url::parse(url).unwrap();
    let mut session = Session::describe(url, SessionOptions::default())
        .await
        .unwrap();
    assert_eq!(session.streams().len(), 2);
    assert_eq!(session.streams()[0].media(), "video");
    assert_eq!(session.streams()[1].media(), "audio");
    assert_eq!(session.streams()[1].encoding_name(), "mpeg4-generic");
    assert_eq!(session.streams()[1].clock_rate_hz(), 16_000);
    for (i, format) in [(0, FrameFormat::SIMPLE), (1, FrameFormat::MP4)] {
        let transport = if udp {
            Transport::Udp(UdpTransportOptions::default())
        } else {
            Transport::Tcp(TcpTransportOptions::default())
        };
        session
            .setup(
                i,
                SetupOptions::default()
                    .transport(transport)
                    // SIMPLE would wrap AAC in ADTS; MP4 gives the raw frames and the ASC.
                    .frame_format(format),
            )
            .await
            .unwrap();
    }
    // The default policy requires RTP-Info rtptime for both streams when two are set up.
    let mut session = session
        .play(PlayOptions::default())
        .await
        .unwrap()
        .demuxed()
        .unwrap();
    let mut got = Got::default();
    while got.audio.len() < audio_frames || got.video.is_empty() {
        let item = tokio::time::timeout(Duration::from_secs(5), session.next())
            .await
            .expect("timed out waiting for a frame")
            .expect("stream ended")
            .unwrap();
        match item {
            CodecItem::AudioFrame(f) => {
                assert_eq!(f.stream_id(), 1);
                let t = f.timestamp();
                got.audio
                    .push((t.timestamp(), t.elapsed_secs(), Instant::now()));
                got.audio_frame_lengths.push(f.frame_length().get());
                got.audio_data.push(f.data().to_vec());
            }
            CodecItem::VideoFrame(f) => {
                assert_eq!(f.stream_id(), 0);
                if got.video.is_empty() {
                    assert!(f.is_random_access_point());
                }
                let t = f.timestamp();
                got.video
                    .push((t.timestamp(), t.elapsed_secs(), Instant::now()));
            }
            _ => {}
        }
    }
    let Some(ParametersRef::Audio(a)) = session.streams()[1].parameters() else {
        panic!("no audio parameters");
    };
    got.audio_rfc6381 = a.rfc6381_codec().map(str::to_owned);
    got.audio_clock_rate = a.clock_rate();
    assert_eq!(a.extra_data(), &[0x14, 0x08]);
    got
}

fn check(got: &Got) {
    // Each frame is the clip's raw frame at the next position in the loop (wrapping to 0).
    let clip = audio_clip();
    let idx: Vec<usize> = got
        .audio_data
        .iter()
        .map(|d| {
            clip.frames()
                .iter()
                .position(|f| &f[..] == d)
                .expect("received frame is one of the clip's")
        })
        .collect();
    for w in idx.windows(2) {
        assert!(
            w[1] == w[0] + 1 || w[1] == 0,
            "frame {} after {}",
            w[1],
            w[0]
        );
    }
    assert_eq!(got.audio_rfc6381.as_deref(), Some("mp4a.40.2"));
    assert_eq!(got.audio_clock_rate, 16_000);
    assert!(got.audio_frame_lengths.iter().all(|&l| l == 1024));
    for w in got.audio.windows(2) {
        assert_eq!(w[1].0 - w[0].0, 1024, "audio timestamps step by 1024");
    }
    for w in got.video.windows(2) {
        assert_eq!(w[1].0 - w[0].0, 3600, "video timestamps step by 3600");
    }
    // RTP-Info rtptime names the PLAY instant on both clocks: no frame is before it, audio starts
    // at once and video at the next key frame (every 2 s).
    let (a0, v0) = (got.audio[0].1, got.video[0].1);
    assert!((0.0..0.2).contains(&a0), "first audio frame at {a0:.3}s");
    assert!((0.0..2.1).contains(&v0), "first video frame at {v0:.3}s");
    // The two tracks share a timeline: for frames sent without delay, receive time minus
    // timestamp is the same on both (the smallest such offset per track, to skip delayed ones).
    let offset = |frames: &[(i64, f64, Instant)]| {
        let base = got.audio[0].2;
        frames
            .iter()
            .map(|(_, elapsed, at)| at.duration_since(base).as_secs_f64() - elapsed)
            .fold(f64::INFINITY, f64::min)
    };
    let skew = offset(&got.audio) - offset(&got.video);
    assert!(skew.abs() < 0.05, "audio/video skew {skew:.3}s");
}

/// The value of header `name` in response `r` (the test fails if it is missing).
fn header<'a>(r: &'a str, name: &str) -> &'a str {
    r.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no {name} in {r}"))
}

/// The session id of a SETUP response (without `;timeout=`).
fn session_id(r: &str) -> String {
    header(r, "Session")
        .split(';')
        .next()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn retina_plays_audio_and_video_over_tcp() {
    let server = RtspServer::bind("127.0.0.1:0").await.unwrap();
    server.add_clip_mount("/cam", clip_with_audio());
    let start = Instant::now();
    let got = play_both(&server.url("/cam"), false, 40).await;
    // 40 frames of 64 ms is 2.5 s.
    let took = start.elapsed().as_secs_f64();
    assert!(
        (2.2..3.5).contains(&took),
        "40 audio frames took {took:.2}s"
    );
    assert!(got.video.len() >= 10);
    check(&got);
    server.shutdown().await;
}

#[tokio::test]
async fn retina_plays_audio_and_video_over_udp() {
    let server = RtspServer::bind("127.0.0.1:0").await.unwrap();
    server.add_clip_mount("/cam", clip_with_audio());
    let got = play_both(&server.url("/cam"), true, 40).await;
    check(&got);
    server.shutdown().await;
}

/// A second client joining a mount that has been playing for a while gets timestamps relative to
/// its own PLAY on both tracks, in sync.
#[tokio::test]
async fn late_joiner_is_in_sync() {
    let server = RtspServer::bind("127.0.0.1:0").await.unwrap();
    server.add_clip_mount("/cam", clip_with_audio());
    let url = server.url("/cam");
    let first = tokio::spawn({
        let url = url.clone();
        async move { play_both(&url, false, 60).await }
    });
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let got = play_both(&url, false, 20).await;
    check(&got);
    check(&first.await.unwrap());
}

/// A client that sets up only the video track of a mount with audio gets video as before.
#[tokio::test]
async fn video_only_client() {
    let server = RtspServer::bind("127.0.0.1:0").await.unwrap();
    server.add_clip_mount("/cam", clip_with_audio());
    let url = url::Url::parse(&server.url("/cam")).unwrap();
    let mut session = Session::describe(url, SessionOptions::default())
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
    let mut video = 0;
    while video < 20 {
        let item = tokio::time::timeout(Duration::from_secs(5), session.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match item {
            CodecItem::VideoFrame(_) => video += 1,
            CodecItem::AudioFrame(_) => panic!("audio was not set up"),
            _ => {}
        }
    }
}

/// Raw requests: the SDP, channel choice and the state rules of a two-track session.
#[tokio::test]
async fn raw_two_track_session() {
    let server = RtspServer::bind("127.0.0.1:0").await.unwrap();
    server.add_clip_mount("/cam", clip_with_audio());
    let addr = server.local_addr();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    async fn ask(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>, req: &str) -> String {
        s.write_all(req.as_bytes()).await.unwrap();
        // Reads one response (head and Content-Length body); skips interleaved packets.
        loop {
            if buf.first() == Some(&b'$') && buf.len() >= 4 {
                let n = 4 + usize::from(u16::from_be_bytes([buf[2], buf[3]]));
                if buf.len() >= n {
                    buf.drain(..n);
                    continue;
                }
            } else if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .map_or(0, |v| v.parse::<usize>().unwrap());
                if buf.len() >= end + 4 + len {
                    let r = String::from_utf8_lossy(&buf[..end + 4 + len]).into_owned();
                    buf.drain(..end + 4 + len);
                    return r;
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "connection closed");
            buf.extend_from_slice(&chunk[..n]);
        }
    }
    let base = format!("rtsp://{addr}/cam");
    let r = ask(
        &mut s,
        &mut buf,
        &format!("DESCRIBE {base} RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
    )
    .await;
    let sdp = r.split("\r\n\r\n").nth(1).unwrap();
    let audio = sdp.split("m=audio").nth(1).expect("audio section");
    assert_eq!(
        format!("m=audio{audio}"),
        "m=audio 0 RTP/AVP 97\r\n\
         a=rtpmap:97 mpeg4-generic/16000/1\r\n\
         a=fmtp:97 streamtype=5;profile-level-id=15;mode=AAC-hbr;config=1408;sizelength=13;\
         indexlength=3;indexdeltalength=3\r\n\
         a=control:trackID=1\r\n"
    );
    assert!(sdp.contains("a=control:trackID=0\r\nm=audio"), "{sdp}");
    // Audio first, no channels asked: the server picks 2-3.
    let r = ask(
        &mut s,
        &mut buf,
        &format!(
            "SETUP {base}/trackID=1 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast\r\n\r\n"
        ),
    )
    .await;
    assert!(r.starts_with("RTSP/1.0 200"), "{r}");
    assert!(r.contains("interleaved=2-3"), "{r}");
    let session = session_id(&r);
    let setup = |cseq: u32, track: u32, channels: &str| {
        format!(
            "SETUP {base}/trackID={track} RTSP/1.0\r\nCSeq: {cseq}\r\nSession: {session}\r\n\
             Transport: RTP/AVP/TCP;unicast;interleaved={channels}\r\n\r\n"
        )
    };
    // The same track again, or channels in use: refused.
    let r = ask(&mut s, &mut buf, &setup(3, 1, "4-5")).await;
    assert!(r.starts_with("RTSP/1.0 459"), "{r}");
    let r = ask(&mut s, &mut buf, &setup(4, 0, "3-4")).await;
    assert!(r.starts_with("RTSP/1.0 400"), "{r}");
    let r = ask(&mut s, &mut buf, &setup(5, 2, "0-1")).await;
    assert!(r.starts_with("RTSP/1.0 404"), "{r}");
    let r = ask(&mut s, &mut buf, &setup(6, 0, "0-1")).await;
    assert!(r.starts_with("RTSP/1.0 200"), "{r}");
    assert!(r.contains(&format!("Session: {session};")), "{r}");
    let r = ask(
        &mut s,
        &mut buf,
        &format!("PLAY {base} RTSP/1.0\r\nCSeq: 7\r\nSession: {session}\r\n\r\n"),
    )
    .await;
    assert!(r.starts_with("RTSP/1.0 200"), "{r}");
    let info = header(&r, "RTP-Info");
    let parts: Vec<&str> = info.split(',').collect();
    assert_eq!(parts.len(), 2, "{info}");
    assert!(parts[0].starts_with(&format!("url={base}/trackID=0;seq=")));
    assert!(parts[1].starts_with(&format!("url={base}/trackID=1;seq=")));
    assert!(parts.iter().all(|p| p.contains(";rtptime=")), "{info}");
    let r = ask(&mut s, &mut buf, &setup(8, 1, "6-7")).await;
    assert!(r.starts_with("RTSP/1.0 459"), "{r}");
    // A second session on the connection: video only, playing, then audio is too late.
    let r = ask(
        &mut s,
        &mut buf,
        &format!("SETUP {base}/trackID=0 RTSP/1.0\r\nCSeq: 9\r\nTransport: RTP/AVP/TCP;interleaved=8-9\r\n\r\n"),
    )
    .await;
    assert!(r.starts_with("RTSP/1.0 200"), "{r}");
    let session2 = session_id(&r);
    assert_ne!(session2, session);
    let r = ask(
        &mut s,
        &mut buf,
        &format!("PLAY {base} RTSP/1.0\r\nCSeq: 10\r\nSession: {session2}\r\n\r\n"),
    )
    .await;
    assert!(r.starts_with("RTSP/1.0 200"), "{r}");
    let info = header(&r, "RTP-Info");
    assert!(!info.contains(','), "{info}");
    let r = ask(
        &mut s,
        &mut buf,
        &format!(
            "SETUP {base}/trackID=1 RTSP/1.0\r\nCSeq: 11\r\nSession: {session2}\r\n\
             Transport: RTP/AVP/TCP;interleaved=10-11\r\n\r\n"
        ),
    )
    .await;
    assert!(r.starts_with("RTSP/1.0 455"), "{r}");
    // Audio packets arrive on channel 2 with payload type 97 and the AAC-hbr header.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut audio_packets = 0;
    while audio_packets < 3 {
        assert!(Instant::now() < deadline, "no audio packets");
        while buf.len() >= 4 && buf[0] == b'$' {
            let n = 4 + usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            if buf.len() < n {
                break;
            }
            let pkt: Vec<u8> = buf.drain(..n).collect();
            if pkt[1] == 2 {
                assert_eq!(pkt[5], 0x80 | 97, "marker and payload type 97");
                assert_eq!(&pkt[16..18], &[0x00, 0x10], "AU-headers-length 16");
                let au_size = usize::from(u16::from_be_bytes([pkt[18], pkt[19]]) >> 3);
                assert_eq!(au_size, n - 4 - 12 - 4);
                audio_packets += 1;
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// SETUP of the audio track of a mount without audio is 404.
#[tokio::test]
async fn no_audio_track_without_audio() {
    let server = RtspServer::bind("127.0.0.1:0").await.unwrap();
    let video = ClipSource::from_file(clip_path("h264_a.h264"), Codec::H264).unwrap();
    server.add_clip_mount("/cam", Arc::new(video));
    let url = url::Url::parse(&server.url("/cam")).unwrap();
    let session = Session::describe(url, SessionOptions::default())
        .await
        .unwrap();
    assert_eq!(session.streams().len(), 1);
}

fn e2e() -> bool {
    if std::env::var("VANTAGE_E2E").as_deref() == Ok("1") {
        true
    } else {
        eprintln!("skipping: VANTAGE_E2E is not 1");
        false
    }
}

/// With `VANTAGE_E2E=1`, ffprobe must see the H.264 video and a 16 kHz AAC audio stream.
#[tokio::test]
async fn ffprobe_sees_audio() {
    if !e2e() {
        return;
    }
    let server = RtspServer::bind("127.0.0.1:0").await.unwrap();
    server.add_clip_mount("/cam", clip_with_audio());
    let url = server.url("/cam");
    let out = tokio::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-show_streams",
            "-of",
            "json",
            &url,
        ])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("ffprobe timed out")
        .expect("VANTAGE_E2E=1 but ffprobe could not be run");
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = v["streams"].as_array().expect("streams");
    let find = |kind: &str| {
        streams
            .iter()
            .find(|s| s["codec_type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} stream in {v}"))
    };
    let a = find("audio");
    assert_eq!(a["codec_name"], "aac", "{a}");
    assert_eq!(a["sample_rate"], "16000", "{a}");
    assert_eq!(a["channels"], 1, "{a}");
    assert_eq!(a["profile"], "LC", "{a}");
    let vid = find("video");
    assert_eq!(vid["codec_name"], "h264", "{vid}");
    assert_eq!(vid["width"], 640, "{vid}");
}

/// With `VANTAGE_E2E=1`, GStreamer's rtspsrc must depacketize and decode both tracks.
#[tokio::test]
async fn gstreamer_decodes_audio() {
    if !e2e() {
        return;
    }
    let server = RtspServer::bind("127.0.0.1:0").await.unwrap();
    server.add_clip_mount("/cam", clip_with_audio());
    let url = server.url("/cam");
    // The audio branch ends after 40 decoded frames; the EOS flow return makes rtspsrc end
    // the whole pipeline.
    let pipeline = format!(
        "rtspsrc location={url} protocols=tcp name=src \
         src. ! application/x-rtp,media=audio ! rtpmp4gdepay ! aacparse ! avdec_aac ! \
         audio/x-raw,rate=16000,channels=1 ! identity eos-after=40 ! fakesink \
         src. ! application/x-rtp,media=video ! rtph264depay ! h264parse ! \
         identity eos-after=1000 ! fakesink"
    );
    let start = Instant::now();
    let out = tokio::process::Command::new("gst-launch-1.0")
        .arg("-q")
        .args(pipeline.split_whitespace())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("gst-launch-1.0 timed out")
        .expect("VANTAGE_E2E=1 but gst-launch-1.0 could not be run");
    assert!(
        out.status.success(),
        "gst-launch-1.0 failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // 40 decoded audio frames are 2.56 s of audio, played in real time.
    let took = start.elapsed().as_secs_f64();
    eprintln!("gst-launch-1.0 took {took:.2}s");
    assert!(took > 2.0, "gst-launch-1.0 ended after {took:.2}s");
}

//! Hermetic integration tests of the live path, in `cargo test`: the in-process RTSP server plays
//! fixture clips as cameras, a node ingests them, and an in-test WHEP client (str0m) receives the
//! video. Also the API's bad-input contract, asserted on status codes and JSON fields.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use media::Codec;
use media::nal::{annexb_nals, nal_type};
use rtsp_server::request::{Message, parse_message};
use rtsp_server::{ClipSource, RtspServer};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use webrtc::testing::{ReceivedFrame, WhepClient, http_request};

const OFFER: &str = include_str!("../../../fixtures/sdp/aiortc_1.16_recvonly_offer.sdp");

/// The captured offer with its H.264 formats removed (payload types 99..=102), leaving VP8 + RTX.
fn vp8_only_offer() -> String {
    OFFER
        .split("\r\n")
        .filter(|l| {
            !["99", "100", "101", "102"]
                .iter()
                .any(|pt| l.contains(&format!(":{pt} ")))
        })
        .map(|l| l.replace(" 97 98 99 100 101 102", " 97 98"))
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// Polls `cond` until it holds, for up to 10 s (session teardown is asynchronous: a command to the
/// media loop). The bound only keeps a broken build from hanging; a passing run returns as soon as
/// the condition holds.
async fn eventually(cond: impl Fn() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Waits for the next frame. The bound is liveness only (a stalled stream fails instead of
/// hanging); what the tests assert is which frames arrive and in what order.
async fn next_frame(client: &mut WhepClient, after: usize) -> ReceivedFrame {
    match tokio::time::timeout(Duration::from_secs(10), client.recv_frame()).await {
        Ok(Some(f)) => f,
        Ok(None) => panic!("the viewer stopped after {after} frames"),
        Err(_) => panic!("no frame for 10 s after {after} frames"),
    }
}

/// The NAL units of an access unit without access unit delimiters (RTP does not carry them).
fn nals_without_aud(au: &[u8]) -> Vec<Vec<u8>> {
    annexb_nals(au)
        .filter(|n| nal_type(Codec::H264, n) != Some(9))
        .map(<[u8]>::to_vec)
        .collect()
}

/// A TCP relay in front of the cameras' RTSP server that records every RTSP request the node sends
/// through it, by connection, so a test counts the upstream sessions the server accepted.
struct RtspTap {
    addr: SocketAddr,
    /// (connection number, method, URI path) of every request, in order.
    requests: Arc<Mutex<Vec<(usize, String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RtspTap {
    async fn start(upstream: SocketAddr) -> RtspTap {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("tap bind");
        let addr = listener.local_addr().expect("tap addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let task = tokio::spawn(async move {
            let mut conn = 0;
            while let Ok((client, _)) = listener.accept().await {
                conn += 1;
                tokio::spawn(Self::relay(conn, client, upstream, log.clone()));
            }
        });
        RtspTap {
            addr,
            requests,
            task,
        }
    }

    async fn relay(
        conn: usize,
        client: TcpStream,
        upstream: SocketAddr,
        log: Arc<Mutex<Vec<(usize, String, String)>>>,
    ) {
        let Ok(server) = TcpStream::connect(upstream).await else {
            return;
        };
        let (mut from_client, mut to_client) = client.into_split();
        let (mut from_server, mut to_server) = server.into_split();
        let down = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
        });
        let mut pending = Vec::new();
        let mut parsing = true;
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            let n = match from_client.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if parsing {
                pending.extend_from_slice(&chunk[..n]);
                loop {
                    match parse_message(&pending) {
                        Ok(Some((msg, used))) => {
                            if let Message::Request(r) = msg {
                                let path = r.path().unwrap_or("").to_owned();
                                log.lock().unwrap().push((conn, r.method.clone(), path));
                            }
                            pending.drain(..used);
                        }
                        Ok(None) => break,
                        Err(_) => {
                            parsing = false;
                            pending.clear();
                            break;
                        }
                    }
                }
            }
            if to_server.write_all(&chunk[..n]).await.is_err() {
                break;
            }
        }
        let _ = to_server.shutdown().await;
        let _ = down.await;
    }

    /// The connections that asked for `mount` (`/h264_b`, or a track of it), and the PLAY
    /// requests for it.
    fn sessions(&self, mount: &str) -> (Vec<usize>, usize) {
        let log = self.requests.lock().unwrap();
        let for_mount = |p: &str| {
            p.strip_prefix(mount)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        let mut conns: Vec<usize> = log
            .iter()
            .filter(|(_, _, p)| for_mount(p))
            .map(|(c, _, _)| *c)
            .collect();
        conns.sort_unstable();
        conns.dedup();
        let plays = log
            .iter()
            .filter(|(_, m, p)| m == "PLAY" && for_mount(p))
            .count();
        (conns, plays)
    }
}

impl Drop for RtspTap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Rig {
    cameras: RtspServer,
    node: vantage::Node,
    api: Api,
    /// Between the node and the cameras when the rig was made with [`rig_tapped`].
    tap: Option<RtspTap>,
}

/// Cameras: `cam-a` (H.264 clip a), `cam-b` (clip b), `cam-265` (H.265), `cam-garbage` (random
/// RTP payloads), `cam-off` (disabled).
async fn rig(idle_grace: &str) -> Rig {
    rig_with(idle_grace, false).await
}

/// [`rig`] with the node reaching the cameras through an [`RtspTap`].
async fn rig_tapped(idle_grace: &str) -> Rig {
    rig_with(idle_grace, true).await
}

async fn rig_with(idle_grace: &str, tapped: bool) -> Rig {
    let cameras = vantage::demo::start_cameras("127.0.0.1:0".parse().unwrap())
        .await
        .expect("rtsp server");
    let clip265 = ClipSource::from_file(
        repo_root().join("fixtures/clips/h265_a.h265"),
        media::Codec::H265,
    )
    .expect("h265 fixture");
    cameras.add_clip_mount("/h265_a", Arc::new(clip265));
    cameras.add_garbage_mount("/garbage");
    let tap = if tapped {
        Some(RtspTap::start(cameras.local_addr()).await)
    } else {
        None
    };
    let a = tap.as_ref().map_or(cameras.local_addr(), |t| t.addr);
    let mut cfg = node_config(
        &[
            ("cam-a", "DUBAI_POLICE", format!("rtsp://{a}/h264_a")),
            ("cam-b", "METRO", format!("rtsp://{a}/h264_b")),
            ("cam-265", "BUS", format!("rtsp://{a}/h265_a")),
            ("cam-garbage", "OTHER", format!("rtsp://{a}/garbage")),
            ("cam-off", "OTHER", format!("rtsp://{a}/h264_c")),
        ],
        idle_grace,
    );
    cfg.cameras[4].enabled = false;
    // cam-a has a low-quality sub-stream (another clip, so the test can tell them apart).
    cfg.cameras[0].substreams = vec![(
        "low".to_owned(),
        url::Url::parse(&format!("rtsp://{a}/h264_d")).unwrap(),
    )];
    let node = vantage::Node::start(cfg).await.expect("node");
    let api = Api::new(node.http_addr);
    Rig {
        cameras,
        node,
        api,
        tap,
    }
}

impl Rig {
    async fn shutdown(self) {
        self.node.shutdown().await;
        self.cameras.shutdown().await;
    }
}

async fn post_offer(url: &str, offer: &str) -> (u16, Vec<(String, String)>, String) {
    let (s, h, b) = http_request("POST", url, Some("application/sdp"), offer.as_bytes())
        .await
        .expect("http");
    (s, h, String::from_utf8_lossy(&b).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_arrives_in_order() {
    let rig = rig("10s").await;
    let url = rig.api.whep_url("cam-a", "op-1").await;
    let mut client = WhepClient::connect(&url).await.expect("whep connect");
    client
        .wait_connected(Duration::from_secs(10))
        .await
        .expect("connected");
    // 200 frames: 8 s of the 25 fps source, four GOPs.
    const FRAMES: usize = 200;
    let mut frames = Vec::with_capacity(FRAMES);
    while frames.len() < FRAMES {
        let f = next_frame(&mut client, frames.len()).await;
        frames.push(f);
    }
    assert!(frames[0].is_key, "the first frame is a key frame");
    for w in frames.windows(2) {
        assert_eq!(
            w[1].rtp_time.wrapping_sub(w[0].rtp_time),
            3600,
            "a frame is missing"
        );
    }
    // Every frame is the camera's next access unit, byte for byte (AUDs aside): nothing lost,
    // duplicated or reordered, and key frames exactly where the clip has them (every 50th).
    let clip: Vec<(Vec<Vec<u8>>, bool)> = media::split_access_units(
        Codec::H264,
        &std::fs::read(repo_root().join("fixtures/clips/h264_a.h264")).expect("fixture"),
    )
    .iter()
    .map(|au| (nals_without_aud(&au.data), au.is_key))
    .collect();
    let first = nals_without_aud(&frames[0].data);
    let start = clip
        .iter()
        .position(|(nals, _)| *nals == first)
        .expect("the first frame is one of the clip's access units");
    for (i, f) in frames.iter().enumerate() {
        let (want, key) = &clip[(start + i) % clip.len()];
        assert!(
            nals_without_aud(&f.data) == *want,
            "frame {i} is not the clip's access unit {}",
            (start + i) % clip.len()
        );
        assert_eq!(f.is_key, *key, "frame {i}");
    }
    assert_eq!(frames.iter().filter(|f| f.is_key).count(), FRAMES / 50);
    eprintln!(
        "{} frames in order from clip access unit {start}",
        frames.len()
    );

    let (_, cam) = rig.api.get("/api/v1/cameras/cam-a").await;
    assert_eq!(cam["status"], "online");
    assert_eq!(cam["viewers"], 1);
    assert_eq!(cam["properties"]["codec"], "H.264");
    assert_eq!(cam["properties"]["resolution"], "640x360");
    assert_eq!(client.close().await.expect("delete"), 200);
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_viewer_shares_the_upstream_and_starts_at_a_key_frame() {
    let rig = rig_tapped("10s").await;
    let u1 = rig.api.whep_url("cam-b", "op-1").await;
    let u2 = rig.api.whep_url("cam-b", "op-2").await;
    let mut c1 = WhepClient::connect(&u1).await.expect("viewer 1");
    c1.wait_connected(Duration::from_secs(10))
        .await
        .expect("c1");
    let c1_first = next_frame(&mut c1, 0).await;
    let mut c2 = WhepClient::connect(&u2).await.expect("viewer 2");
    c2.wait_connected(Duration::from_secs(10))
        .await
        .expect("c2");
    let first = tokio::time::timeout(Duration::from_secs(5), c2.recv_frame())
        .await
        .expect("viewer 2 gets video")
        .expect("frame");
    assert!(first.is_key);
    let ch = rig.node.services.hub.get("cam-b").expect("channel");
    assert_eq!(ch.subscriber_count(), 2);
    // One upstream for both viewers: the camera's RTSP server saw one connection and one PLAY for
    // this camera, not one per viewer.
    let tap = rig.tap.as_ref().expect("tapped rig");
    let (conns, plays) = tap.sessions("/h264_b");
    assert_eq!(
        (conns.len(), plays),
        (1, 1),
        "upstream sessions for two viewers: {:?}",
        tap.requests.lock().unwrap()
    );
    // ... and both viewers get the same frames from it: viewer 1 receives viewer 2's first frame.
    let mut seen = c1_first.data == first.data;
    for n in 1..100 {
        if seen {
            break;
        }
        let f = next_frame(&mut c1, n).await;
        seen = f.data == first.data;
    }
    assert!(
        seen,
        "viewer 1 never got the key frame viewer 2 started with"
    );
    // Releasing viewer 2's reservation ends its WHEP session; viewer 1 keeps going.
    let (_, list) = rig.api.get("/api/v1/stream/reservations").await;
    let r2 = list["reservations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["user_id"] == "op-2")
        .expect("reservation of op-2")["reservation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(rig.api.release(&r2).await, 204);
    assert!(
        eventually(|| ch.subscriber_count() == 1).await,
        "released viewer still subscribed"
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(2), c1.recv_frame())
            .await
            .is_ok()
    );
    drop(c2);
    c1.close().await.expect("close 1");
    assert!(eventually(|| ch.subscriber_count() == 0).await);
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors() {
    let rig = rig("10s").await;
    let base = rig.api.base.clone();

    // Malformed SDP: 400 with the reason.
    let url = rig.api.whep_url("cam-a", "op").await;
    let (s, _, body) = post_offer(&url, "v=0\r\nthis is not sdp\r\n").await;
    assert_eq!(s, 400, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json error");
    let msg = v["error"]["message"].as_str().unwrap();
    eprintln!("malformed offer: {msg}");
    assert!(msg.starts_with("malformed SDP offer: "), "{v}");
    assert!(!msg.contains("0x"), "no addresses in errors: {msg}");
    assert!(!v["error"]["message_ar"].as_str().unwrap().is_empty());

    // Offer without a codec the camera sends: 406 naming both sides.
    let (s, _, body) = post_offer(&url, &vp8_only_offer()).await;
    assert_eq!(s, 406, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["error"]["message"], "camera sends H.264; offer accepts VP8",
        "{v}"
    );
    let url265 = rig.api.whep_url("cam-265", "op").await;
    let (s, _, body) = post_offer(&url265, OFFER).await;
    assert_eq!(s, 406, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["error"]["message"], "camera sends H.265; offer accepts VP8, H.264",
        "{v}"
    );

    // Unknown reservation: 404 on WHEP and on release.
    let (s, _, body) = post_offer(&format!("{base}/whep/nope"), OFFER).await;
    assert_eq!(s, 404, "{body}");
    assert!(body.contains("RESERVATION_NOT_FOUND"));
    assert_eq!(rig.api.release("nope").await, 404);

    // Wrong content type: 415.
    let (s, _, _) = http_request("POST", &url, Some("text/plain"), OFFER.as_bytes())
        .await
        .unwrap();
    assert_eq!(s, 415);

    // Reserve: unknown camera 404, disabled 409, bad quality 400, missing field 400.
    let (s, v) = rig.api.reserve("cam-zzz", "op").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("CAMERA_NOT_FOUND"))
    );
    let (s, v) = rig.api.reserve("cam-off", "op").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("CAMERA_DISABLED"))
    );
    let (s, body, _) = http_request(
        "POST",
        &format!("{base}/api/v1/stream/reserve"),
        Some("application/json"),
        br#"{"camera_id":"cam-a","user_id":"op","quality":"ultra"}"#,
    )
    .await
    .unwrap();
    assert_eq!(s, 400, "{body:?}");
    let (s, _, b) = http_request(
        "POST",
        &format!("{base}/api/v1/stream/reserve"),
        Some("application/json"),
        br#"{"user_id":"op"}"#,
    )
    .await
    .unwrap();
    assert_eq!(s, 400);
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["error"]["field"], "camera_id", "{v}");

    // A repeated reserve returns the same reservation with 200.
    let (s1, r1) = rig.api.reserve("cam-b", "op-9").await;
    let (s2, r2) = rig.api.reserve("cam-b", "op-9").await;
    assert_eq!((s1, s2), (201, 200));
    assert_eq!(r1["reservation_id"], r2["reservation_id"]);
    for k in [
        "reservation_id",
        "camera_id",
        "agency",
        "whep_url",
        "expires_at",
        "quality",
    ] {
        assert!(!r1[k].is_null(), "{k} missing in {r1}");
    }
    assert_eq!(r1["agency"], "METRO");
    assert_eq!(
        rig.api
            .release(r1["reservation_id"].as_str().unwrap())
            .await,
        204
    );
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_sending_garbage_errors_and_others_are_unaffected() {
    let rig = rig("10s").await;
    let good = rig.api.whep_url("cam-a", "op").await;
    let mut viewer = WhepClient::connect(&good).await.expect("viewer");
    viewer
        .wait_connected(Duration::from_secs(10))
        .await
        .expect("connected");

    let bad = rig.api.whep_url("cam-garbage", "op").await;
    let (s, _, body) = post_offer(&bad, OFFER).await;
    assert_eq!(s, 503, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "CAMERA_UNAVAILABLE");
    assert!(
        !v["error"]["last_error"].as_str().unwrap_or("").is_empty(),
        "{v}"
    );
    let (_, cam) = rig.api.get("/api/v1/cameras/cam-garbage").await;
    assert_eq!(cam["status"], "error", "{cam}");
    assert!(
        cam["last_error"].as_str().unwrap().contains("cam-garbage"),
        "{cam}"
    );

    // The good camera kept streaming throughout: a whole GOP more after the garbage camera
    // failed, with no frame missing.
    let mut prev = next_frame(&mut viewer, 0).await;
    for n in 1..=50 {
        let f = next_frame(&mut viewer, n).await;
        assert_eq!(
            f.rtp_time.wrapping_sub(prev.rtp_time),
            3600,
            "frame {n} from the good camera: a frame is missing"
        );
        prev = f;
    }
    let (_, list) = rig.api.get("/api/v1/cameras?status=online").await;
    assert_eq!(list["total"], 1, "{list}");
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_lists_every_camera_with_live_status() {
    let rig = rig("10s").await;
    let (s, v) = rig.api.get("/api/v1/cameras").await;
    assert_eq!(s, 200);
    assert_eq!(v["total"], 5);
    let cams = v["cameras"].as_array().unwrap();
    assert!(
        cams.iter().all(|c| c["status"] == "idle"),
        "no demand yet: {v}"
    );
    let (_, v) = rig.api.get("/api/v1/cameras?agency=METRO").await;
    assert_eq!(v["total"], 1);
    assert_eq!(v["cameras"][0]["id"], "cam-b");
    let (s, v) = rig.api.get("/api/v1/cameras/cam-nope").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("CAMERA_NOT_FOUND"))
    );
    let (_, v) = rig.api.get("/api/v1/agencies").await;
    assert_eq!(v["agencies"].as_array().unwrap().len(), 4);
    rig.shutdown().await;
}

#[test]
fn check_config_lists_every_problem_and_exits_non_zero() {
    let dir = std::env::temp_dir().join(format!("vantage-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "agencies: [{ id: METRO, max_streams: 30 }]\ncameras:\n\
         \x20 - { id: c1, agency: METRO, rtsp_url: \"rtsp://u:topsecret@10.1.1.1/s\" }\n\
         \x20 - { id: c1, agency: NOPE, rtsp_url: \"::\" }\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vantage"))
        .arg("check-config")
        .arg(&bad)
        .output()
        .expect("run vantage");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for want in [
        "cameras[0].rtsp_url: credentials must not be embedded",
        "cameras[1].id: duplicate camera id",
        "cameras[1].agency: unknown agency `NOPE`",
        "cameras[1].rtsp_url: not a valid URL",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
    assert!(!err.contains("topsecret"), "{err}");
    let good = dir.join("good.yaml");
    std::fs::write(&good, include_str!("../../../vantage.example.yaml")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vantage"))
        .args(["check-config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 agencies, 1 cameras"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_camera_whep_endpoint_reserves_each_session_and_releases_it() {
    let rig = rig("10s").await;
    let url = format!("{}/whep/cameras/cam-a", rig.api.base);
    let mut c1 = WhepClient::connect(&url).await.expect("viewer 1");
    let mut c2 = WhepClient::connect(&url).await.expect("viewer 2");
    for c in [&mut c1, &mut c2] {
        c.wait_connected(Duration::from_secs(10))
            .await
            .expect("connected");
        let f = tokio::time::timeout(Duration::from_secs(5), c.recv_frame()).await;
        assert!(
            f.is_ok_and(|f| f.is_some_and(|f| f.is_key)),
            "video starts at a key frame"
        );
    }
    let (_, stats) = rig.api.get("/api/v1/stream/stats").await;
    assert_eq!(stats["active_streams"], 2, "{stats}");
    let police = stats["per_agency"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agency"] == "DUBAI_POLICE")
        .cloned()
        .unwrap();
    assert_eq!(police["current"], 2, "{stats}");
    c1.close().await.expect("delete 1");
    drop(c2); // vanishes without DELETE: its session times out and the reservation goes with it
    let t0 = Instant::now();
    loop {
        let (_, stats) = rig.api.get("/api/v1/stream/stats").await;
        if stats["active_streams"] == 0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(12),
            "still reserved: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, _, _) = post_offer(&format!("{}/whep/cameras/cam-zzz", rig.api.base), OFFER).await;
    assert_eq!(s, 404);
    let (s, _, _) = post_offer(&format!("{}/whep/cameras/cam-off", rig.api.base), OFFER).await;
    assert_eq!(s, 409);
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_with_a_sub_stream_plays_the_sub_stream() {
    let rig = rig("10s").await;
    let (s, low) = rig.api.get("/api/v1/cameras/cam-a").await;
    assert_eq!(s, 200);
    assert_eq!(low["qualities"], serde_json::json!(["low"]));
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/stream/reserve", rig.api.base))
        .json(&serde_json::json!({"camera_id": "cam-a", "user_id": "op", "quality": "low"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["quality"], "low");
    let url = format!("{}{}", rig.api.base, v["whep_url"].as_str().unwrap());
    let mut c = WhepClient::connect(&url).await.expect("connect");
    c.wait_connected(Duration::from_secs(10))
        .await
        .expect("connected");
    assert!(
        tokio::time::timeout(Duration::from_secs(5), c.recv_frame())
            .await
            .is_ok()
    );
    let sub = rig
        .node
        .services
        .hub
        .get("cam-a@low")
        .expect("sub-stream channel");
    let main = rig.node.services.hub.get("cam-a").expect("main channel");
    assert_eq!((sub.subscriber_count(), main.subscriber_count()), (1, 0));
    assert_eq!(
        main.status().state,
        hub::State::Idle,
        "the main stream is not pulled"
    );
    // Another quality without a sub-stream maps to the main stream.
    let (_, v) = rig.api.reserve("cam-a", "op").await; // quality auto
    let url = format!("{}{}", rig.api.base, v["whep_url"].as_str().unwrap());
    let mut c2 = WhepClient::connect(&url).await.expect("connect");
    c2.wait_connected(Duration::from_secs(10))
        .await
        .expect("connected");
    assert!(
        tokio::time::timeout(Duration::from_secs(5), c2.recv_frame())
            .await
            .is_ok()
    );
    assert_eq!(main.subscriber_count(), 1);
    rig.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_on_the_xprotect_simulator_and_its_cameras_play() {
    let demo = vantage::demo::start(vantage::demo::DemoPorts {
        http: "127.0.0.1:0".parse().unwrap(),
        udp_port: 0,
        data_dir: tempdir("demo-hermetic"),
    })
    .await
    .expect("demo");
    let api = Api::new(demo.node.http_addr);
    let mut cams = Value::Null;
    for _ in 0..100 {
        cams = api.get("/api/v1/cameras").await.1;
        if cams["total"] == 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cams["total"], 8, "{cams}");
    let list = cams["cameras"].as_array().unwrap();
    assert!(list.iter().all(|c| c["source"] == "xprotect"), "{cams}");
    let agencies: std::collections::BTreeSet<&str> =
        list.iter().filter_map(|c| c["agency"].as_str()).collect();
    assert_eq!(agencies.len(), 4, "{agencies:?}");
    let (_, status) = api.get("/api/v1/vms/status").await;
    assert_eq!(status["counts"]["cameras"], 8, "{status}");
    let id = list[0]["id"].as_str().unwrap().to_owned();
    let url = api.whep_url(&id, "demo-op").await;
    let mut c = WhepClient::connect(&url).await.expect("whep");
    c.wait_connected(Duration::from_secs(10))
        .await
        .expect("connected");
    let f = tokio::time::timeout(Duration::from_secs(5), c.recv_frame())
        .await
        .expect("video from the demo camera")
        .expect("frame");
    assert!(f.is_key);
    demo.shutdown().await;
}

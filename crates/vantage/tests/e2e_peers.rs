//! Tests against real third-party peers (`VANTAGE_E2E=1`): GStreamer's RTSP server as cameras,
//! aiortc WHEP viewers, headless Chromium on the demo page. Each test starts the peers it needs on
//! free ports, checks they are still alive at the end, and stops them. Without `VANTAGE_E2E=1`
//! these tests return at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The real-peer tests decode video and run browsers on a 2-core machine: one at a time, so that
/// their frame-rate and loss assertions measure Vantage, not contention between tests.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// GStreamer's RTSP server on a free port and a node with one camera `cam-1` on its `/h264_720p`.
async fn one_camera(agency: &str, idle_grace: &str) -> (Peer, u16, vantage::Node, Api) {
    one_camera_with(agency, &format!("live: {{ idle_grace: {idle_grace} }}")).await
}

/// Like [`one_camera`] with extra configuration sections.
async fn one_camera_with(agency: &str, extra: &str) -> (Peer, u16, vantage::Node, Api) {
    let port = free_tcp_port();
    let gst = gst_rtsp_server(port, None);
    let url = format!("rtsp://127.0.0.1:{port}/h264_720p");
    let cfg = node_config_with(&[("cam-1", agency, url)], extra);
    let node = vantage::Node::start(cfg).await.expect("node");
    let api = Api::new(node.http_addr);
    (gst, port, node, api)
}

fn whep_client_py(url: &str, seconds: u32) -> Peer {
    let mut cmd = Command::new(venv_python());
    cmd.arg(shared_peers().join("whep_client.py"))
        .arg(url)
        .args(["--seconds", &seconds.to_string(), "--no-audio"]);
    Peer::spawn("whep_client.py", &mut cmd, None)
}

fn whep_probe(url: &str, seconds: f64, extra: &[&str]) -> Peer {
    let mut cmd = Command::new(venv_python());
    cmd.arg(repo_root().join("crates/vantage/tests/peers/whep_probe.py"))
        .arg(url)
        .args(["--seconds", &seconds.to_string()])
        .args(extra);
    Peer::spawn("whep_probe.py", &mut cmd, None)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Established TCP connections to `port` on loopback, as seen by `ss`.
fn tcp_connections_to(port: u16) -> usize {
    let out = Command::new("ss")
        .args([
            "-Htn",
            "state",
            "established",
            "dst",
            &format!("127.0.0.1:{port}"),
        ])
        .output()
        .expect("ss (iproute2) is installed by the peers");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_client_receives_at_least_24_fps_without_loss() {
    if !e2e() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let (mut gst, _, node, api) = one_camera("METRO", "10s").await;
    let url = api.whep_url("cam-1", "op-1").await;
    let mut client = whep_client_py(&url, 10);
    let r = tokio::task::spawn_blocking(move || client.json_result(Duration::from_secs(40)))
        .await
        .expect("join");
    eprintln!("whep_client.py: {r}");
    assert_eq!(r["http_status"], 201, "{r}");
    assert!(r["fps"].as_f64().unwrap_or(0.0) >= 24.0, "fps: {r}");
    assert!(r["frames"].as_u64().unwrap_or(0) >= 240, "frames: {r}");
    assert_eq!(r["packets_lost"].as_u64(), Some(0), "loss: {r}");
    assert_eq!(r["size"], "1280x720", "{r}");
    gst.assert_alive();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cameras_fed_different_clips_show_different_pictures() {
    if !e2e() {
        return;
    }
    let _serial = SERIAL.lock().await;
    // gst_rtsp_server.py mounts clips by file name: give it two different committed fixtures.
    let dir = tempdir("two-clips");
    let clips = repo_root().join("fixtures/clips");
    std::os::unix::fs::symlink(clips.join("h264_a.h264"), dir.join("h264_720p25.h264")).unwrap();
    std::os::unix::fs::symlink(clips.join("h264_b.h264"), dir.join("h264_1080p25.h264")).unwrap();
    let port = free_tcp_port();
    let mut gst = gst_rtsp_server(port, Some(&dir));
    let cfg = node_config(
        &[
            (
                "cam-a",
                "METRO",
                format!("rtsp://127.0.0.1:{port}/h264_720p"),
            ),
            (
                "cam-b",
                "BUS",
                format!("rtsp://127.0.0.1:{port}/h264_1080p"),
            ),
        ],
        "10s",
    );
    let node = vantage::Node::start(cfg).await.expect("node");
    let api = Api::new(node.http_addr);
    let (ua, ub) = (
        api.whep_url("cam-a", "op").await,
        api.whep_url("cam-b", "op").await,
    );
    let mut pa = whep_probe(&ua, 4.0, &["--thumb-at", "30"]);
    let mut pb = whep_probe(&ub, 4.0, &["--thumb-at", "30"]);
    let (ra, rb) = tokio::task::spawn_blocking(move || {
        (
            pa.json_result(Duration::from_secs(30)),
            pb.json_result(Duration::from_secs(30)),
        )
    })
    .await
    .expect("join");
    let thumb = |r: &Value| -> Vec<f64> {
        r["thumb"]
            .as_array()
            .unwrap_or_else(|| panic!("no decoded frame: {r}"))
            .iter()
            .filter_map(Value::as_f64)
            .collect()
    };
    let (ta, tb) = (thumb(&ra), thumb(&rb));
    assert_eq!(ta.len(), 144);
    let diff = ta.iter().zip(&tb).map(|(a, b)| (a - b).abs()).sum::<f64>() / ta.len() as f64;
    eprintln!(
        "mean |luma A - luma B| over a 16x9 grid: {diff:.1}; A {} B {}",
        ra["mean_rgb"], rb["mean_rgb"]
    );
    assert!(diff > 15.0, "pictures look alike: {diff}\nA {ra}\nB {rb}");
    for r in [&ra, &rb] {
        assert_eq!(r["size"], "640x360", "{r}");
        let t = thumb(r);
        let mean = t.iter().sum::<f64>() / t.len() as f64;
        let var = t.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / t.len() as f64;
        assert!(
            var.sqrt() > 5.0,
            "a flat picture is not a decoded clip: {r}"
        );
    }
    gst.assert_alive();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_goes_offline_and_back_and_the_viewer_gets_video_again() {
    if !e2e() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let (mut gst, port, node, api) = one_camera("OTHER", "10s").await;
    let url = api.whep_url("cam-1", "op").await;
    let mut viewer = whep_probe(&url, 30.0, &[]);
    assert!(
        viewer
            .wait_line("CONNECTED", Duration::from_secs(15))
            .is_some()
    );
    assert!(
        api.wait_status("cam-1", "online", Duration::from_secs(10))
            .await
            .is_some()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;

    gst.kill();
    let offline = api
        .wait_status("cam-1", "offline", Duration::from_secs(5))
        .await;
    assert!(
        offline.is_some(),
        "not offline within 5 s: {}",
        api.camera_status("cam-1").await
    );
    eprintln!("offline after {offline:?}");
    let (_, cam) = api.get("/api/v1/cameras/cam-1").await;
    assert!(
        cam["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{cam}"
    );

    tokio::time::sleep(Duration::from_secs(1)).await;
    let restarted_at = unix_now();
    let mut gst = gst_rtsp_server(port, None);
    let online = api
        .wait_status("cam-1", "online", Duration::from_secs(15))
        .await;
    assert!(online.is_some(), "not back online");
    eprintln!("online again {online:?} after restart");

    let r = tokio::task::spawn_blocking(move || viewer.json_result(Duration::from_secs(60)))
        .await
        .expect("join");
    let arrivals: Vec<f64> = r["arrivals"]
        .as_array()
        .expect("arrivals")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    let after = arrivals.iter().filter(|t| **t > restarted_at).count();
    let before = arrivals.len() - after;
    eprintln!("frames decoded before the restart {before}, after {after}");
    assert!(before >= 50, "{before} frames before the outage");
    assert!(
        after >= 100,
        "only {after} frames after the camera came back: {r}"
    );
    gst.assert_alive();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_closes_within_idle_grace_after_last_viewer_leaves() {
    if !e2e() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let (mut gst, port, node, api) = one_camera("BUS", "3s").await;
    assert_eq!(api.camera_status("cam-1").await, "idle");
    assert_eq!(tcp_connections_to(port), 0, "no upstream before any viewer");
    let url = api.whep_url("cam-1", "op").await;
    let mut viewer = whep_probe(&url, 3.0, &[]);
    let r = tokio::task::spawn_blocking(move || viewer.json_result(Duration::from_secs(30)))
        .await
        .expect("join");
    let left = Instant::now();
    assert!(r["frames"].as_u64().unwrap_or(0) > 25, "{r}");
    assert_eq!(r["delete_status"], 200, "{r}");
    assert_eq!(
        api.camera_status("cam-1").await,
        "online",
        "grace keeps it running"
    );
    assert_eq!(tcp_connections_to(port), 1);
    let idle = api
        .wait_status("cam-1", "idle", Duration::from_secs(6))
        .await;
    let took = left.elapsed();
    assert!(
        idle.is_some(),
        "still {} after {took:?}",
        api.camera_status("cam-1").await
    );
    assert!(
        took <= Duration::from_secs(5),
        "closed after {took:?} (grace 3 s + 2 s)"
    );
    assert!(
        took >= Duration::from_secs(2),
        "closed before the grace: {took:?}"
    );
    let t0 = Instant::now();
    while tcp_connections_to(port) > 0 && t0.elapsed() < Duration::from_secs(1) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(tcp_connections_to(port), 0, "RTSP connection still open");
    eprintln!("upstream closed {took:?} after the last viewer left (grace 3 s)");
    gst.assert_alive();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_a_camera_from_the_demo_page() {
    if !e2e() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let demo = vantage::demo::start(vantage::demo::DemoPorts {
        http: "127.0.0.1:0".parse().unwrap(),
        udp_port: 0,
        data_dir: tempdir("demo"),
    })
    .await
    .expect("demo");
    let base = format!("http://{}", demo.node.http_addr);
    // The demo's cameras come from the XProtect simulator: wait for the first sync.
    let api = Api::new(demo.node.http_addr);
    let mut cams = serde_json::Value::Null;
    for _ in 0..100 {
        cams = api.get("/api/v1/cameras").await.1;
        if cams["total"] == 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cams["total"], 8, "{cams}");
    let agencies: std::collections::BTreeSet<&str> = cams["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["agency"].as_str())
        .collect();
    assert_eq!(
        agencies.len(),
        4,
        "eight cameras across the four agencies: {agencies:?}"
    );
    let camera = cams["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["agency"] == "METRO")
        .and_then(|c| c["id"].as_str())
        .expect("a metro camera")
        .to_owned();
    let shot = tempdir("chromium").join("camera.png");
    let mut cmd = Command::new("node");
    cmd.arg(repo_root().join("crates/vantage/tests/peers/demo_page.js"))
        .arg(&base)
        .arg(&camera)
        .arg(&shot)
        .arg("30");
    let mut chromium = Peer::spawn("chromium (playwright)", &mut cmd, None);
    let r = tokio::task::spawn_blocking(move || chromium.json_result(Duration::from_secs(90)))
        .await
        .expect("join");
    eprintln!("chromium: {r}");
    assert_eq!(r["status"], "ok", "{r}");
    assert!(r["framesDecoded"].as_u64().unwrap_or(0) > 100, "{r}");
    assert!(
        r["mean_luma"].as_f64().unwrap_or(0.0) > 20.0,
        "black picture: {r}"
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "screenshot {} bytes",
        png.len()
    );
    demo.shutdown().await;
}

/// Heartbeats the reservation of `user` (as a client does while it connects) until its WHEP
/// session is connected; from then on only the live session keeps it.
async fn heartbeat_until_connected(api: &Api, user: &str) {
    let client = reqwest::Client::new();
    for _ in 0..120 {
        let (_, list) = api
            .get(&format!("/api/v1/stream/reservations?user_id={user}"))
            .await;
        let r = &list["reservations"][0];
        if r["session_state"] == "connected" {
            return;
        }
        if let Some(id) = r["reservation_id"].as_str() {
            let _ = client
                .post(format!("{}/api/v1/stream/heartbeat/{id}", api.base))
                .send()
                .await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the viewer of {user} never connected");
}

/// The metro agency's current count from `/api/v1/stream/stats`.
async fn metro_streams(api: &Api) -> u64 {
    let (_, s) = api.get("/api/v1/stream/stats").await;
    s["per_agency"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["agency"] == "METRO"))
        .and_then(|c| c["current"].as_u64())
        .unwrap_or(u64::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_killed_with_sigkill_frees_its_slot_within_lease_plus_one_second() {
    if !e2e() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let lease = Duration::from_secs(3);
    let (mut gst, _, node, api) = one_camera_with("METRO", "limits: { lease: 3s }").await;
    let url = api.whep_url("cam-1", "op-killed").await;
    let mut viewer = whep_client_py(&url, 60);
    heartbeat_until_connected(&api, "op-killed").await;
    // Let it play past a whole lease, so it is kept alive by its session, not by heartbeats.
    tokio::time::sleep(lease + Duration::from_secs(3)).await;
    assert_eq!(
        metro_streams(&api).await,
        1,
        "a playing viewer holds its slot"
    );
    viewer.assert_alive();
    viewer.kill(); // SIGKILL: no DELETE, no DTLS close
    let killed = Instant::now();
    while metro_streams(&api).await != 0 {
        assert!(
            killed.elapsed() <= lease + Duration::from_secs(1),
            "slot still held {:?} after SIGKILL",
            killed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "slot freed {:?} after SIGKILL (lease {lease:?})",
        killed.elapsed()
    );
    let (_, audit) = api.get("/api/v1/audit?user_id=op-killed").await;
    assert_eq!(audit["events"][0]["action"], "expire", "{audit}");
    gst.assert_alive();
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playing_viewer_keeps_its_reservation_past_several_leases_without_heartbeat() {
    if !e2e() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let (mut gst, _, node, api) = one_camera_with("METRO", "limits: { lease: 2s }").await;
    let url = api.whep_url("cam-1", "op-playing").await;
    let rid = url.rsplit('/').next().unwrap().to_owned();
    let mut viewer = whep_client_py(&url, 20);
    heartbeat_until_connected(&api, "op-playing").await;
    // Five leases of 2 s with no heartbeat.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (_, list) = api
            .get("/api/v1/stream/reservations?user_id=op-playing")
            .await;
        assert_eq!(list["total"], 1, "reservation lapsed while playing: {list}");
        assert_eq!(list["reservations"][0]["reservation_id"], rid.as_str());
    }
    let r = tokio::task::spawn_blocking(move || viewer.json_result(Duration::from_secs(30)))
        .await
        .expect("join");
    assert!(r["fps"].as_f64().unwrap_or(0.0) >= 24.0, "{r}");
    assert_eq!(r["packets_lost"].as_u64(), Some(0), "{r}");
    gst.assert_alive();
    node.shutdown().await;
}

//! Whole-node WHEP tests against real third-party WebRTC stacks (`VANTAGE_E2E=1`): pion/webrtc
//! (`pion_whep`), aiortc (`whep_client.py`) and headless Chromium (`whep_chromium.js`), with
//! GStreamer's RTSP server as the camera. Without `VANTAGE_E2E=1` these tests return at once.

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

/// Real peers decode video and run browsers on a 2-core machine: one test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// GStreamer's RTSP server on a free port and a node with one camera `cam-1` on its `/h264_720p`.
async fn one_camera() -> (Peer, u16, vantage::Node, Api) {
    let port = free_tcp_port();
    let gst = gst_rtsp_server(port, None);
    let url = format!("rtsp://127.0.0.1:{port}/h264_720p");
    let cfg = node_config(&[("cam-1", "OTHER", url)], "10s");
    let node = vantage::Node::start(cfg).await.expect("node");
    let api = Api::new(node.http_addr);
    (gst, port, node, api)
}

fn pion_whep(url: &str, viewers: u32, seconds: u32) -> Peer {
    let bin = peers_home().join("bin/pion_whep");
    assert!(bin.exists(), "{} missing: run install.sh", bin.display());
    let mut cmd = Command::new(bin);
    cmd.arg(url)
        .arg(viewers.to_string())
        .args(["-seconds", &seconds.to_string()]);
    Peer::spawn("pion_whep", &mut cmd, None)
}

/// aiortc's WHEP client; without `--no-audio` it sends aiortc's default offer (audio + video).
fn whep_client_py(url: &str, seconds: u32, audio: bool) -> Peer {
    let mut cmd = Command::new(venv_python());
    cmd.arg(shared_peers().join("whep_client.py"))
        .arg(url)
        .args(["--seconds", &seconds.to_string()]);
    if !audio {
        cmd.arg("--no-audio");
    }
    Peer::spawn("whep_client.py", &mut cmd, None)
}

async fn result(mut peer: Peer, timeout: Duration) -> Value {
    let name = peer.name.clone();
    let r = tokio::task::spawn_blocking(move || peer.json_result(timeout))
        .await
        .expect("join");
    eprintln!("{name}: {r}");
    r
}

/// pion sends no STUN on a pair that carries media and RTCP; str0m's ICE-lite used to drop such
/// a pair 15 s after the last binding request. Three pion viewers at pion_whep's defaults and an
/// aiortc viewer must all still be receiving after 60 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pion_viewers_stay_connected_for_a_minute_beside_aiortc() {
    if !e2e() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let (mut gst, _, node, api) = one_camera().await;
    let per_camera = format!("{}/whep/cameras/cam-1", api.base);
    let pion = pion_whep(&per_camera, 3, 60);
    let aiortc = whep_client_py(&api.whep_url("cam-1", "op-aiortc").await, 65, false);
    let (p, a) = tokio::join!(
        result(pion, Duration::from_secs(120)),
        result(aiortc, Duration::from_secs(120))
    );
    assert_eq!(p["requested"], 3, "{p}");
    assert_eq!(p["answered"], 3, "{p}");
    assert_eq!(p["connected"], 3, "{p}");
    assert_eq!(p["receiving"], 3, "every pion viewer still receiving: {p}");
    assert!(
        p["stopped"].as_array().is_none_or(|s| s.is_empty()),
        "stopped: {p}"
    );
    assert!(p["window_s"].as_f64().unwrap_or(0.0) >= 59.0, "{p}");
    assert!(p["fps_min"].as_f64().unwrap_or(0.0) >= 20.0, "{p}");
    assert_eq!(a["http_status"], 201, "{a}");
    assert!(a["frames"].as_u64().unwrap_or(0) >= 60 * 20, "aiortc: {a}");
    gst.assert_alive();
    node.shutdown().await;
}

/// aiortc's default offer has an audio m-line Vantage does not send; the answer must reject it in
/// a form aiortc accepts, and video must play.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aiortc_default_offer_with_audio_plays_video() {
    if !e2e() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let (mut gst, _, node, api) = one_camera().await;
    let url = api.whep_url("cam-1", "op-1").await;
    let r = result(whep_client_py(&url, 10, true), Duration::from_secs(60)).await;
    assert_eq!(r["http_status"], 201, "{r}");
    assert!(r["fps"].as_f64().unwrap_or(0.0) >= 20.0, "fps: {r}");
    assert!(r["frames"].as_u64().unwrap_or(0) >= 200, "frames: {r}");
    assert_eq!(r["size"], "1280x720", "{r}");
    gst.assert_alive();
    node.shutdown().await;
}

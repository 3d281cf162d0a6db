//! Restarting the demo: the new run's node does not start from the previous run's simulator, and
//! its demo users get new passwords (the previous run's stop working).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

const SNAPSHOT_KEY: &str = "xprotect_catalog";

fn ports(data_dir: &std::path::Path) -> vantage::demo::DemoPorts {
    vantage::demo::DemoPorts {
        http: "127.0.0.1:0".parse().expect("addr"),
        udp_port: 0,
        data_dir: data_dir.to_owned(),
    }
}

/// Polls (bounded: a hang guard, not a window) until the API lists the demo's 8 cameras.
async fn eight_cameras(api: &Api) -> Value {
    let t0 = Instant::now();
    loop {
        let cams = api.get("/api/v1/cameras").await.1;
        if cams["total"] == 8 {
            return cams;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "{cams}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn stored_catalog(data_dir: &std::path::Path) -> Option<String> {
    let snaps = store::Snapshots::open(&data_dir.join("vantage.db")).expect("store");
    snaps.get(SNAPSHOT_KEY).expect("read").map(|(_, body)| body)
}

/// `POST /api/v1/auth/login`: status and body.
async fn login(addr: std::net::SocketAddr, user: &str, password: &str) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": user, "password": password}))
        .send()
        .await
        .expect("login request");
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_demo_does_not_start_from_the_previous_simulator() {
    let dir = tempdir("demo-restart");
    // First run: its first sync stores the catalog, which names this simulator's RTSP port.
    let demo = vantage::demo::start(ports(&dir)).await.expect("demo");
    let old_rtsp = demo.sim.rtsp_base_url();
    eight_cameras(&Api::new(demo.node.http_addr)).await;
    let t0 = Instant::now();
    while stored_catalog(&dir).is_none() {
        assert!(t0.elapsed() < Duration::from_secs(30), "no catalog stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stored_catalog(&dir).is_some_and(|b| b.contains(&old_rtsp)));
    // Its users: an admin, and a supervisor, an operator and a viewer per agency, who can log in.
    assert_eq!(demo.users.len(), 1 + 3 * 4);
    let op = demo
        .users
        .iter()
        .find(|u| u.username == "operator-metro")
        .expect("operator-metro");
    let old_password = op.password.to_string();
    let (s, v) = login(demo.node.http_addr, "operator-metro", &old_password).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["user"]["role"], "operator");
    assert_eq!(v["user"]["agencies"], serde_json::json!(["METRO"]));
    demo.shutdown().await;

    // Second run, same data directory: a new simulator on new ports.
    let demo = vantage::demo::start(ports(&dir)).await.expect("demo again");
    let new_rtsp = demo.sim.rtsp_base_url();
    assert_ne!(new_rtsp, old_rtsp);
    // From the moment it runs, nothing the node knows points at the old simulator: no stored
    // catalog from the previous run, so no catalog served stale from it either.
    if let Some(body) = stored_catalog(&dir) {
        assert!(
            !body.contains(&old_rtsp),
            "the previous run's catalog is still used"
        );
    }
    // New passwords: the previous run's no longer works, the new one does.
    let new_password = demo
        .users
        .iter()
        .find(|u| u.username == "operator-metro")
        .expect("operator-metro")
        .password
        .to_string();
    assert_ne!(new_password, old_password);
    let addr = demo.node.http_addr;
    assert_eq!(login(addr, "operator-metro", &old_password).await.0, 401);
    assert_eq!(login(addr, "operator-metro", &new_password).await.0, 200);
    let api = Api::new(demo.node.http_addr);
    let (_, status) = api.get("/api/v1/vms/status").await;
    assert_eq!(
        status["stale"], false,
        "served from the previous run: {status}"
    );
    let cams = eight_cameras(&api).await;
    let old_port = old_rtsp.rsplit(':').next().expect("port");
    for c in cams["cameras"].as_array().expect("cameras") {
        let text = c.to_string();
        assert!(
            !text.contains(&format!("127.0.0.1:{old_port}")),
            "a camera tried the previous simulator: {text}"
        );
    }
    demo.shutdown().await;
}

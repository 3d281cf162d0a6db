//! Stream reservations and agency quotas through the HTTP API: atomic admission under
//! concurrency, the error contract, leases (simulated clock), the stats WebSocket, the audit log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base::{Clocks, SimulatedClocks};
use common::*;
use futures::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Cameras whose upstream is never needed here (reservations alone do not connect): a closed
/// port is fine.
fn cams() -> Vec<(&'static str, &'static str, String)> {
    let url = |p: &str| format!("rtsp://127.0.0.1:9/{p}");
    vec![
        ("cam-police", "DUBAI_POLICE", url("a")),
        ("cam-metro", "METRO", url("b")),
        ("cam-bus-1", "BUS", url("c")),
        ("cam-bus-2", "BUS", url("d")),
        ("cam-other", "OTHER", url("e")),
    ]
}

async fn post_json(api: &Api, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", api.base))
        .json(&body)
        .send()
        .await
        .expect("POST");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn agency_count(stats: &Value, agency: &str) -> u64 {
    stats["per_agency"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["agency"] == agency))
        .and_then(|c| c["current"].as_u64())
        .unwrap_or(u64::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_reserves_against_an_agency_limit_of_30() {
    let node = vantage::Node::start(node_config(&cams(), "10s"))
        .await
        .unwrap();
    let api = Arc::new(Api::new(node.http_addr));
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move { api.reserve("cam-metro", &format!("user-{i}")).await })
        })
        .collect();
    let mut created = Vec::new();
    let mut denied = 0;
    for t in tasks {
        let (s, v) = t.await.unwrap();
        match s {
            201 => created.push(v["reservation_id"].as_str().unwrap().to_owned()),
            429 => {
                assert_eq!(v["error"]["code"], "AGENCY_LIMIT_REACHED", "{v}");
                assert_eq!(v["error"]["agency"], "METRO");
                assert_eq!(v["error"]["current"], 30);
                assert_eq!(v["error"]["limit"], 30);
                denied += 1;
            }
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert_eq!((created.len(), denied), (30, 970));
    let (_, stats) = api.get("/api/v1/stream/stats").await;
    assert_eq!(stats["active_streams"], 30);
    assert_eq!(agency_count(&stats, "METRO"), 30);
    for id in &created {
        assert_eq!(api.release(id).await, 204);
    }
    let (_, stats) = api.get("/api/v1/stream/stats").await;
    assert_eq!(stats["active_streams"], 0, "{stats}");
    assert!(
        stats["per_agency"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["current"] == 0)
    );
    let (_, ag) = api.get("/api/v1/agencies").await;
    assert!(
        ag["agencies"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["active_streams"] == 0)
    );
    let (_, list) = api.get("/api/v1/stream/reservations").await;
    assert_eq!(list["total"], 0);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_code_with_its_fields() {
    let cfg = node_config_with(
        &cams(),
        "live: { idle_grace: 10s }\nlimits: { max_streams: 4, max_streams_per_user: 2 }",
    );
    let mut cfg = cfg;
    cfg.agencies
        .iter_mut()
        .find(|a| a.id == "BUS")
        .unwrap()
        .max_streams = 1;
    cfg.cameras
        .iter_mut()
        .find(|c| c.id == "cam-other")
        .unwrap()
        .enabled = false;
    let node = vantage::Node::start(cfg).await.unwrap();
    let api = Api::new(node.http_addr);
    let check = |s: u16, v: &Value, status: u16, code: &str| {
        assert_eq!(s, status, "{v}");
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(
            !v["error"]["message"].as_str().unwrap_or("").is_empty(),
            "{v}"
        );
        let ar = v["error"]["message_ar"].as_str().unwrap_or("");
        assert!(
            ar.chars().any(|c| ('\u{600}'..='\u{6ff}').contains(&c)),
            "Arabic: {v}"
        );
    };

    // 400 INVALID_REQUEST names the field.
    for (body, field) in [
        (json!({"user_id": "u"}), "camera_id"),
        (json!({"camera_id": "cam-bus-1"}), "user_id"),
        (json!({"camera_id": 7, "user_id": "u"}), "camera_id"),
        (
            json!({"camera_id": "cam-bus-1", "user_id": "u", "quality": "4k"}),
            "quality",
        ),
    ] {
        let (s, v) = post_json(&api, "/api/v1/stream/reserve", body).await;
        check(s, &v, 400, "INVALID_REQUEST");
        assert_eq!(v["error"]["field"], field, "{v}");
    }
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/stream/reserve", api.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    let (s, v) = api.reserve("cam-nope", "u").await;
    check(s, &v, 404, "CAMERA_NOT_FOUND");
    assert_eq!(v["error"]["camera_id"], "cam-nope");
    let (s, v) = api.reserve("cam-other", "u").await;
    check(s, &v, 409, "CAMERA_DISABLED");

    // 429 AGENCY_LIMIT_REACHED: BUS holds 1.
    let (s, _) = api.reserve("cam-bus-1", "u1").await;
    assert_eq!(s, 201);
    let (s, v) = api.reserve("cam-bus-2", "u2").await;
    check(s, &v, 429, "AGENCY_LIMIT_REACHED");
    assert_eq!(
        (
            v["error"]["agency"].as_str(),
            v["error"]["current"].as_u64(),
            v["error"]["limit"].as_u64()
        ),
        (Some("BUS"), Some(1), Some(1))
    );

    // 429 USER_LIMIT_REACHED: u1 may hold 2.
    let (s, _) = api.reserve("cam-police", "u1").await;
    assert_eq!(s, 201);
    let (s, v) = api.reserve("cam-metro", "u1").await;
    check(s, &v, 429, "USER_LIMIT_REACHED");
    assert_eq!(
        (v["error"]["current"].as_u64(), v["error"]["limit"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(v["error"]["user_id"], "u1");
    assert_eq!(v["error"]["agency"], "METRO");

    // 429 GLOBAL_LIMIT_REACHED: 4 in all.
    assert_eq!(api.reserve("cam-police", "u3").await.0, 201);
    assert_eq!(api.reserve("cam-metro", "u3").await.0, 201);
    let (s, v) = api.reserve("cam-metro", "u4").await;
    check(s, &v, 429, "GLOBAL_LIMIT_REACHED");
    assert_eq!(
        (v["error"]["current"].as_u64(), v["error"]["limit"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(v["error"]["agency"], "METRO");

    // Unknown reservation: 404 on heartbeat and release.
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/stream/heartbeat/nope", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(api.release("nope").await, 404);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_in_error_is_unavailable() {
    let server = rtsp_server::RtspServer::bind("127.0.0.1:0").await.unwrap();
    server.add_garbage_mount("/garbage");
    let url = server.url("/garbage");
    let node = vantage::Node::start(node_config(&[("cam-g", "OTHER", url)], "10s"))
        .await
        .unwrap();
    let api = Api::new(node.http_addr);
    // Demand puts the camera in error (its RTP is garbage) ...
    let (s, _, _) = webrtc::testing::http_request(
        "POST",
        &format!("{}/whep/cameras/cam-g", api.base),
        Some("application/sdp"),
        include_bytes!("../../../fixtures/sdp/aiortc_1.16_recvonly_offer.sdp"),
    )
    .await
    .unwrap();
    assert_eq!(s, 503);
    assert!(
        api.wait_status("cam-g", "error", Duration::from_secs(5))
            .await
            .is_some()
    );
    // ... and a reserve then says why.
    let (s, v) = api.reserve("cam-g", "u").await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["error"]["code"], "CAMERA_UNAVAILABLE");
    assert!(
        v["error"]["last_error"].as_str().unwrap().contains("cam-g"),
        "{v}"
    );
    let (_, stats) = api.get("/api/v1/stream/stats").await;
    assert_eq!(
        stats["active_streams"], 0,
        "the failed WHEP offer left no reservation"
    );
    node.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_expire_unless_renewed_on_a_simulated_clock() {
    let clocks = SimulatedClocks::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let cfg = node_config_with(&cams(), "limits: { lease: 60s }");
    let node = vantage::Node::start_with_clocks(cfg, Arc::new(clocks.clone()))
        .await
        .unwrap();
    let api = Api::new(node.http_addr);
    let tick = || ::node::lease::lease_tick(&node.services, clocks.realtime(), clocks.monotonic());
    let (_, a) = api.reserve("cam-police", "op-a").await;
    let (_, b) = api.reserve("cam-metro", "op-b").await;
    let (ida, idb) = (
        a["reservation_id"].as_str().unwrap(),
        b["reservation_id"].as_str().unwrap(),
    );
    assert_eq!(a["expires_at"], "2027-01-15T08:01:00.000Z");

    clocks.advance(Duration::from_secs(50));
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/stream/heartbeat/{ida}", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["expires_at"], "2027-01-15T08:01:50.000Z",
        "renewed to now + lease"
    );

    clocks.advance(Duration::from_secs(9)); // t = 59 s
    tick();
    assert_eq!(api.get("/api/v1/stream/stats").await.1["active_streams"], 2);
    clocks.advance(Duration::from_secs(1)); // t = 60 s: b lapses, a lives until 110 s
    tick();
    let (_, stats) = api.get("/api/v1/stream/stats").await;
    assert_eq!(stats["active_streams"], 1);
    assert_eq!(agency_count(&stats, "METRO"), 0, "{stats}");
    clocks.advance(Duration::from_secs(50)); // t = 110 s
    tick();
    assert_eq!(api.get("/api/v1/stream/stats").await.1["active_streams"], 0);

    // A released or expired reservation: release is idempotent (204), heartbeat is 404.
    assert_eq!(api.release(idb).await, 204);
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/stream/heartbeat/{idb}", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    let (_, audit) = api
        .get(&format!("/api/v1/audit?reservation_id={idb}"))
        .await;
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["expire", "reserve"], "{audit}");
    let expire = &audit["events"][0];
    assert_eq!(expire["reason"], "expired");
    assert_eq!(expire["user_id"], "op-b");
    assert_eq!(expire["camera_id"], "cam-metro");
    assert_eq!(expire["agency"], "METRO");
    assert_eq!(expire["at"], "2027-01-15T08:01:00.000Z");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_records_reserve_deny_and_release() {
    let mut cfg = node_config(&cams(), "10s");
    cfg.agencies
        .iter_mut()
        .find(|a| a.id == "BUS")
        .unwrap()
        .max_streams = 1;
    let node = vantage::Node::start(cfg).await.unwrap();
    let api = Api::new(node.http_addr);
    let (_, r) = api.reserve("cam-bus-1", "alice").await;
    let id = r["reservation_id"].as_str().unwrap();
    assert_eq!(
        api.reserve("cam-bus-1", "alice").await.0,
        200,
        "retry returns it"
    );
    assert_eq!(api.reserve("cam-bus-2", "bob").await.0, 429);
    assert_eq!(api.release(id).await, 204);
    assert_eq!(api.release(id).await, 204, "idempotent");
    let (_, audit) = api.get("/api/v1/audit?limit=10").await;
    let ev: Vec<(String, String, String)> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["user_id"].as_str().unwrap().to_owned(),
                e["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String, String)> = [
        ("release", "alice", "released"),
        ("deny", "bob", "AGENCY_LIMIT_REACHED"),
        ("reuse", "alice", ""),
        ("reserve", "alice", ""),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(ev, want, "{audit}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_websocket_pushes_changes_at_most_four_times_a_second() {
    let node = vantage::Node::start(node_config(&cams(), "10s"))
        .await
        .unwrap();
    let api = Api::new(node.http_addr);
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/stream/stats", node.http_addr))
            .await
            .expect("websocket");
    let first = ws.next().await.unwrap().unwrap();
    let v: Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(v["active_streams"], 0);
    assert_eq!(v["max_streams"], 500);
    assert_eq!(v["per_agency"].as_array().unwrap().len(), 4);

    // 40 changes in a burst.
    let t0 = Instant::now();
    for i in 0..40 {
        assert_eq!(api.reserve("cam-other", &format!("u{i}")).await.0, 201);
    }
    let mut times = Vec::new();
    let mut last = Value::Null;
    while last["active_streams"] != 40 {
        let m = tokio::time::timeout(Duration::from_secs(3), ws.next())
            .await
            .expect("a message within 3 s")
            .unwrap()
            .unwrap();
        last = serde_json::from_str(m.to_text().unwrap()).unwrap();
        times.push(t0.elapsed());
    }
    assert_eq!(agency_count(&last, "OTHER"), 40);
    for w in times.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(240),
            "messages too close: {times:?}"
        );
    }
    // Quiet: no message without a change.
    assert!(
        tokio::time::timeout(Duration::from_millis(600), ws.next())
            .await
            .is_err()
    );
    node.shutdown().await;
}

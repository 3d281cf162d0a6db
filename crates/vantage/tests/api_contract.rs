//! The HTTP contract at its edges: every rejection — a bad query value, malformed JSON, a wrong
//! content type, a body over the limit, an unknown route, a method not allowed — answers with
//! the documented JSON error body; WHEP answers `OPTIONS` with CORS for allowed origins; the
//! timeline's gaps cover the requested window from its start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;

/// Cameras whose upstream is never needed here: a closed port is fine.
fn cams() -> Vec<(&'static str, &'static str, String)> {
    vec![("cam-a", "METRO", "rtsp://127.0.0.1:9/a".to_owned())]
}

async fn node() -> (vantage::Node, Api) {
    let mut cfg = node_config(&cams(), "10s");
    cfg.server.cors_origins = vec!["https://wall.example.org".to_owned()];
    let node = vantage::Node::start(cfg).await.unwrap();
    let api = Api::new(node.http_addr);
    (node, api)
}

/// Sends a request; returns the status, the headers and the body parsed as JSON (Null if it is
/// not JSON).
async fn send(req: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// Asserts the documented error body: a code, an English and an Arabic message, JSON content.
fn assert_error(
    (status, headers, body): &(u16, reqwest::header::HeaderMap, Value),
    want_status: u16,
    want_code: &str,
) {
    assert_eq!(*status, want_status, "{body}");
    assert_eq!(
        headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
        "application/json",
        "{body}"
    );
    let e = &body["error"];
    assert_eq!(e["code"], want_code, "{body}");
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        e["message_ar"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rejection_is_the_json_error_body() {
    let (node, api) = node().await;
    let c = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", api.base);

    // A bad query value names its parameter.
    let r = send(c.get(url("/api/v1/audit?limit=abc"))).await;
    assert_error(&r, 400, "INVALID_REQUEST");
    assert_eq!(r.2["error"]["field"], "limit");
    // An unknown status is refused, not answered with an empty list.
    let r = send(c.get(url("/api/v1/cameras?status=bogus"))).await;
    assert_error(&r, 400, "INVALID_REQUEST");
    assert_eq!(r.2["error"]["field"], "status");
    let r = send(c.get(url("/api/v1/cameras?status=idle"))).await;
    assert_eq!(r.0, 200);
    assert_eq!(r.2["total"], 1);

    // Malformed JSON, a wrong type, trailing garbage.
    let post = |body: &'static str| {
        c.post(url("/api/v1/stream/reserve"))
            .header("content-type", "application/json")
            .body(body)
    };
    let r = send(post("{\"camera_id\": ")).await;
    assert_error(&r, 400, "INVALID_REQUEST");
    assert_eq!(r.2["error"]["field"], "body");
    let r = send(post("[1, 2]")).await;
    assert_error(&r, 400, "INVALID_REQUEST");
    let r = send(post("{\"camera_id\": \"cam-a\", \"user_id\": \"u\"} x")).await;
    assert_error(&r, 400, "INVALID_REQUEST");
    let r = send(post("{\"camera_id\": 5, \"user_id\": \"u\"}")).await;
    assert_error(&r, 400, "INVALID_REQUEST");
    assert_eq!(r.2["error"]["field"], "camera_id");

    // A wrong content type, and a body over the limit.
    let r = send(
        c.post(url("/api/v1/stream/reserve"))
            .header("content-type", "text/plain")
            .body("{}"),
    )
    .await;
    assert_error(&r, 415, "UNSUPPORTED_MEDIA_TYPE");
    let big = format!("{{\"camera_id\": \"{}\"}}", "x".repeat(100_000));
    let r = send(
        c.post(url("/api/v1/stream/reserve"))
            .header("content-type", "application/json")
            .body(big),
    )
    .await;
    assert_error(&r, 413, "PAYLOAD_TOO_LARGE");
    let r = send(
        c.post(url("/whep/cameras/cam-a"))
            .header("content-type", "text/plain")
            .body("v=0"),
    )
    .await;
    assert_error(&r, 415, "UNSUPPORTED_MEDIA_TYPE");

    // An unknown route, and a method the route does not have (its `Allow` header kept).
    let r = send(c.get(url("/api/v1/nothing-here"))).await;
    assert_error(&r, 404, "NOT_FOUND");
    assert!(
        r.2["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("/api/v1/nothing-here")),
        "{}",
        r.2
    );
    let r = send(c.delete(url("/api/v1/cameras"))).await;
    assert_error(&r, 405, "METHOD_NOT_ALLOWED");
    assert!(
        r.1.get("allow")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("GET")),
        "{:?}",
        r.1
    );
    // A WebSocket route asked without the upgrade.
    let r = send(c.get(url("/ws/stream/stats"))).await;
    assert!(r.0 >= 400 && r.0 < 500, "{}", r.0);
    assert!(r.2["error"]["message_ar"].as_str().is_some(), "{}", r.2);

    // Success answers are untouched.
    let (s, v) = api.get("/api/v1/cameras/cam-a").await;
    assert_eq!(s, 200);
    assert_eq!(v["id"], "cam-a");
    // Nothing is lost silently: the camera's ingest counters are part of its JSON.
    assert_eq!(v["ingest"]["pts_rewritten"], 0, "{v}");
    assert_eq!(v["ingest"]["frames_in"], 0, "{v}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_answers_options_with_cors_for_allowed_origins() {
    let (node, api) = node().await;
    let c = reqwest::Client::new();
    let url = format!("{}/whep/cameras/cam-a", api.base);
    let (s, h, _) = send(
        c.request(reqwest::Method::OPTIONS, &url)
            .header("origin", "https://wall.example.org")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type"),
    )
    .await;
    assert_eq!(s, 204);
    let get = |k: &str| {
        h.get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(
        get("access-control-allow-origin"),
        "https://wall.example.org"
    );
    assert!(get("access-control-allow-methods").contains("POST"));
    assert!(get("access-control-allow-methods").contains("DELETE"));
    assert!(get("access-control-allow-headers").contains("content-type"));
    assert!(get("access-control-expose-headers").contains("location"));
    assert_eq!(get("accept-post"), "application/sdp");
    assert!(get("allow").contains("POST"));

    // Another origin gets no CORS headers; neither does the rest of the API.
    let (s, h, _) = send(
        c.request(reqwest::Method::OPTIONS, &url)
            .header("origin", "https://elsewhere.example.org"),
    )
    .await;
    assert_eq!(s, 204);
    assert!(h.get("access-control-allow-origin").is_none());
    let (_, h, _) = send(
        c.get(format!("{}/api/v1/cameras", api.base))
            .header("origin", "https://wall.example.org"),
    )
    .await;
    assert!(h.get("access-control-allow-origin").is_none());
    // The per-reservation WHEP resource has OPTIONS too, and a POST's error carries CORS so a
    // page elsewhere can read it.
    let (s, h, _) = send(
        c.request(
            reqwest::Method::OPTIONS,
            format!("{}/whep/0190c1b2-0000-7000-8000-000000000000", api.base),
        )
        .header("origin", "https://wall.example.org"),
    )
    .await;
    assert_eq!(s, 204);
    assert!(h.get("access-control-allow-origin").is_some());
    let r = send(
        c.post(format!("{}/whep/no-such-reservation", api.base))
            .header("origin", "https://wall.example.org")
            .header("content-type", "application/sdp")
            .body("v=0\r\n"),
    )
    .await;
    assert_error(&r, 404, "RESERVATION_NOT_FOUND");
    assert!(r.1.get("access-control-allow-origin").is_some());
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_gaps_start_at_the_window_start() {
    let (node, api) = node().await;
    // Nothing is recorded: the whole window is one gap, starting where the window starts.
    let (s, v) = api
        .get("/api/v1/recordings/cam-a?start=2026-01-01T00:00:00Z&end=2026-01-01T01:00:00Z")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["source"], "none");
    let gaps = v["gaps"].as_array().expect("gaps");
    assert_eq!(gaps.len(), 1, "{v}");
    assert_eq!(gaps[0]["start_time"], "2026-01-01T00:00:00.000Z");
    assert_eq!(gaps[0]["end_time"], "2026-01-01T01:00:00.000Z");
    assert_eq!(gaps[0]["duration_seconds"], 3600.0);
    // A bad time names its field.
    let (s, v) = api.get("/api/v1/recordings/cam-a?start=yesterday").await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["field"], "start");
    node.shutdown().await;
}

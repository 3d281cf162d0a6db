//! Live-edge playback over HTTP (issue 10 item 2, design 0008): `live_edge=true` answers a
//! fragmented MP4 (init segment, then `moof`+`mdat`) that keeps following the recording while
//! the camera records: bytes recorded after the request arrive on the same response, decode
//! times start at 0 and stay monotonic across segments. With `VANTAGE_E2E=1`, ffprobe reads the
//! captured prefix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{e2e, rfc};
use serde_json::Value;
use std::time::Duration;

/// Complete top-level boxes at the front of `b`: (type, offset, size).
fn boxes(b: &[u8]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 8 <= b.len() {
        let size = u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        if size < 8 || at + size > b.len() {
            break;
        }
        out.push((
            String::from_utf8_lossy(&b[at + 4..at + 8]).into_owned(),
            at,
            size,
        ));
        at += size;
    }
    out
}

/// The fragments in `b` (after the init segment): (sequence, video tfdt, video duration), 90 kHz.
fn fragments(b: &[u8]) -> Vec<(u32, u64, u64)> {
    boxes(b)
        .into_iter()
        .filter(|(k, _, _)| k == "moof")
        .map(|(_, at, size)| {
            let f = media::mp4::read_fragment(&b[at..at + size], 0).unwrap();
            (f.sequence, f.video.base_decode_time, f.video.duration())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_edge_stream_keeps_following_the_recording() {
    let (_rtsp, node, api, data) =
        common::recording_node("playback-live", "playback: { max_span: 1h }\n").await;
    // Wait for 5 s of recording.
    let (rec_start, _) = common::recorded_run(&api, "cam-a", Duration::from_secs(5), |_| {}).await;
    let c = reqwest::Client::new();
    let base = &api.base;

    // Bad requests: an end with live_edge, no start, an unknown camera.
    let r = c
        .get(format!(
            "{base}/api/v1/playback/cam-a?start={}&duration=5&live_edge=true",
            rfc(rec_start)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["field"], "live_edge", "{v}");
    let r = c
        .get(format!("{base}/api/v1/playback/cam-a?live_edge=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .get(format!(
            "{base}/api/v1/playback/nope?start={}&live_edge=true",
            rfc(rec_start)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // What the view cannot do is refused, naming the parameter.
    for (extra, field) in [("skip_gaps=false", "skip_gaps"), ("audio=false", "audio")] {
        let r = c
            .get(format!(
                "{base}/api/v1/playback/cam-a?start={}&live_edge=true&{extra}",
                rfc(rec_start)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{extra}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["field"], field, "{v}");
    }

    // From 1 s into the recording: what exists now, then what is recorded next.
    let start = rec_start + Duration::from_secs(1);
    let (_, end_at_request) = common::recorded_run(&api, "cam-a", Duration::ZERO, |_| {}).await;
    let existed_90k = end_at_request
        .duration_since(rec_start)
        .unwrap()
        .as_millis() as u64
        * 90;
    let mut r = c
        .get(format!(
            "{base}/api/v1/playback/cam-a?start={}&live_edge=true",
            rfc(start)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "video/mp4");
    assert!(r.headers().get("content-length").is_none());
    assert_eq!(r.headers()["accept-ranges"], "none");
    // Read until the stream holds 8 s more media than had been recorded at the request (the
    // camera records in real time, so this needs the follower to pick up new fragments and new
    // segments); a bound of a minute so a broken stream fails instead of hanging.
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut media_90k = 0;
    while media_90k < existed_90k + 8 * 90_000 {
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .expect("the stream kept coming")
            .unwrap()
            .expect("the stream did not end");
        got.extend_from_slice(&chunk);
        media_90k = fragments(&got).iter().map(|f| f.2).sum();
    }
    // While it streams, the follower pins the segment it reads (two while it moves from one to
    // the next), as one reader.
    let (pinned, readers) = node.services.recorder.pins().counts();
    assert!(
        (1..=2).contains(&pinned) && readers == 1,
        "{pinned} {readers}"
    );
    drop(r); // the client goes away: the follower stops and unpins
    let mut counts = (1, 1);
    for _ in 0..100 {
        counts = node.services.recorder.pins().counts();
        if counts == (0, 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(counts, (0, 0), "pins dropped after the client went away");
    eprintln!(
        "live edge: {} bytes, {} fragments, {:.1} s of media; {:.1} s recorded at the request",
        got.len(),
        fragments(&got).len(),
        media_90k as f64 / 90_000.0,
        existed_90k as f64 / 90_000.0
    );

    let kinds: Vec<String> = boxes(&got).into_iter().map(|b| b.0).collect();
    assert_eq!(&kinds[..2], ["ftyp", "moov"]);
    assert!(
        kinds[2..]
            .chunks(2)
            .all(|p| p[0] == "moof" && p.get(1).is_none_or(|k| k == "mdat"))
    );
    let init = media::mp4::read_init(&got[..boxes(&got)[1].1 + boxes(&got)[1].2]).unwrap();
    assert!(init.video.width > 0);
    let frags = fragments(&got);
    // Decode times start at 0 and each fragment starts where the previous one ended, across
    // the 4 s segments it crossed.
    assert_eq!(frags[0].1, 0);
    for w in frags.windows(2) {
        assert_eq!(w[1].0, w[0].0 + 1, "sequence numbers");
        assert_eq!(w[1].1, w[0].1 + w[0].2, "tfdt runs on: {frags:?}");
    }
    assert!(
        media_90k > existed_90k,
        "{media_90k} of media > {existed_90k} recorded at the request"
    );

    if e2e() {
        // ffprobe reads the captured prefix (whole fragments) with monotonic timestamps.
        let last = boxes(&got).last().map(|b| b.1 + b.2).unwrap();
        let path = data.join("live-prefix.mp4");
        std::fs::write(&path, &got[..last]).unwrap();
        let out = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0"])
            .args(["-show_entries", "packet=dts_time", "-of", "csv=p=0"])
            .arg(&path)
            .output()
            .expect("ffprobe installed (VANTAGE_E2E=1)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dts: Vec<f64> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
            .collect();
        let samples: u64 = boxes(&got)
            .into_iter()
            .filter(|(k, _, _)| k == "moof")
            .map(|(_, at, size)| {
                media::mp4::read_fragment(&got[at..at + size], 0)
                    .unwrap()
                    .video
                    .samples
                    .len() as u64
            })
            .sum();
        assert_eq!(dts.len() as u64, samples, "every frame read back");
        assert!(dts[0].abs() < 0.001, "starts at 0: {}", dts[0]);
        assert!(dts.windows(2).all(|w| w[1] > w[0]), "monotonic dts");
        let span = dts.last().unwrap() - dts[0];
        eprintln!("ffprobe: {} packets, dts 0 to {span:.3} s", dts.len());
        assert!(
            span * 90_000.0 > existed_90k as f64,
            "{span} s read back, more than had been recorded at the request"
        );
    }
    node.shutdown().await;
}

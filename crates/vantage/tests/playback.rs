//! Playback over HTTP (issue 10, design 0008): a recorded camera played back as one MP4 (moov
//! first, `Range`, a strong `ETag`), as MSE pieces and as an HLS playlist; bad requests answer
//! 400/404/416 with the field. With `VANTAGE_E2E=1`, ffprobe and ffmpeg read the MP4 and the
//! playlist over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{e2e, rfc};
use serde_json::Value;
use std::time::Duration;

/// The top-level boxes of an MP4: (type, size).
fn boxes(b: &[u8]) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 8 <= b.len() {
        let mut size = u64::from(u32::from_be_bytes(b[at..at + 4].try_into().unwrap()));
        if size == 1 {
            size = u64::from_be_bytes(b[at + 8..at + 16].try_into().unwrap());
        }
        if size < 8 {
            break;
        }
        out.push((
            String::from_utf8_lossy(&b[at + 4..at + 8]).into_owned(),
            size,
        ));
        at += size as usize;
    }
    out
}

/// ffprobe over a URL (E2E only): (format duration, video frames read, format start time).
fn ffprobe_url(url: &str) -> (f64, u64, f64) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "format=duration,start_time:stream=nb_read_frames",
            "-of",
            "json",
        ])
        .arg(url)
        .output()
        .expect("ffprobe installed (VANTAGE_E2E=1)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffprobe {url}: {stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let num = |v: &Value| {
        v.as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(-1.0)
    };
    (
        num(&v["format"]["duration"]),
        num(&v["streams"][0]["nb_read_frames"]) as u64,
        num(&v["format"]["start_time"]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_range_plays_as_mp4_mse_and_hls_with_ranges_and_etags() {
    let (_rtsp, node, api, _data) =
        common::recording_node("playback", "playback: { max_span: 1h }\n").await;
    // At least 13 s recorded (in the index: complete segments and the writing one's progress);
    // every run carries its MP4 and HLS URLs.
    let (rec_start, _) = common::recorded_run(&api, "cam-a", Duration::from_secs(13), |e| {
        assert!(
            e["playback_url"]
                .as_str()
                .unwrap()
                .starts_with("/api/v1/playback/cam-a?start=")
        );
        assert!(
            e["hls_url"]
                .as_str()
                .unwrap()
                .contains("/index.m3u8?start=")
        );
    })
    .await;
    let start = rec_start + Duration::from_millis(2_500);
    let c = reqwest::Client::new();
    let base = &api.base;
    let play = format!(
        "{base}/api/v1/playback/cam-a?start={}&duration=6",
        rfc(start)
    );

    // The whole file: moov first, exact length, the range it says.
    let r = c.get(&play).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "video/mp4");
    assert_eq!(h["accept-ranges"], "bytes");
    // The file presents from the start of the frame shown at `start` (at most a frame before
    // it) to the end asked.
    let presented = h["vantage-start"].to_str().unwrap().to_owned();
    let p = base::time::rfc3339::parse(&presented).unwrap();
    let lead = start
        .duration_since(p)
        .expect("presented from at or before start");
    assert!(lead < Duration::from_millis(100), "{presented}");
    let dur: f64 = h["vantage-duration"].to_str().unwrap().parse().unwrap();
    assert!(
        (dur - 6.0 - lead.as_secs_f64()).abs() <= 0.0015,
        "{dur} s from {presented}"
    );
    let etag = h["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    let len: u64 = h["content-length"].to_str().unwrap().parse().unwrap();
    let whole = r.bytes().await.unwrap().to_vec();
    assert_eq!(whole.len() as u64, len);
    let kinds: Vec<String> = boxes(&whole).into_iter().map(|b| b.0).collect();
    assert_eq!(kinds, ["ftyp", "moov", "mdat"]);
    let frames: u64 = h["vantage-frames"].to_str().unwrap().parse().unwrap();
    assert!(
        (150..=200).contains(&frames),
        "{frames} frames for 6 s from a key frame"
    );

    // Ranges in a scrambled order reassemble into the same bytes; the tag does not change.
    let cuts = [0, len / 7, len / 3, len / 2, len * 4 / 5, len - 1, len];
    let mut order: Vec<usize> = (0..cuts.len() - 1).collect();
    order.reverse();
    order.swap(0, 2);
    let mut parts = vec![Vec::new(); order.len()];
    for &i in &order {
        let r = c
            .get(&play)
            .header("range", format!("bytes={}-{}", cuts[i], cuts[i + 1] - 1))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(
            r.headers()["content-range"].to_str().unwrap(),
            format!("bytes {}-{}/{len}", cuts[i], cuts[i + 1] - 1)
        );
        assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
        parts[i] = r.bytes().await.unwrap().to_vec();
    }
    assert_eq!(parts.concat(), whole);
    // A suffix range, an unsatisfiable one, and a revalidation.
    let r = c
        .get(&play)
        .header("range", "bytes=-100")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        &whole[whole.len() - 100..]
    );
    let r = c
        .get(&play)
        .header("range", format!("bytes={len}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(
        r.headers()["content-range"].to_str().unwrap(),
        format!("bytes */{len}")
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RANGE_NOT_SATISFIABLE");
    let r = c
        .get(&play)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    // Another range is another file, with another tag.
    let r = c
        .get(format!(
            "{base}/api/v1/playback/cam-a?start={}&duration=5",
            rfc(start)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_ne!(r.headers()["etag"].to_str().unwrap(), etag);

    // Bad input: the field at fault, never an empty 200.
    let bad = |q: String| {
        let c = c.clone();
        async move {
            let r = c
                .get(format!("{base}/api/v1/playback/{q}"))
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, b) = bad(format!("cam-a?start={}&end={}", rfc(start), rfc(rec_start))).await;
    assert_eq!((s, b["error"]["field"].as_str()), (400, Some("end")), "{b}");
    let (s, b) = bad(format!("cam-a?start={}&duration=abc", rfc(start))).await;
    assert_eq!(
        (s, b["error"]["field"].as_str()),
        (400, Some("duration")),
        "{b}"
    );
    let (s, b) = bad(format!("cam-a?start={}&duration=2h", rfc(start))).await;
    assert_eq!((s, b["error"]["field"].as_str()), (400, Some("end")), "{b}");
    let (s, b) = bad("cam-a?duration=5".into()).await;
    assert_eq!(
        (s, b["error"]["field"].as_str()),
        (400, Some("start")),
        "{b}"
    );
    let (s, b) = bad(format!("nobody?start={}&duration=5", rfc(start))).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (404, Some("CAMERA_NOT_FOUND")),
        "{b}"
    );
    let long_ago = rec_start - Duration::from_secs(600);
    let (s, b) = bad(format!("cam-a?start={}&duration=5", rfc(long_ago))).await;
    assert_eq!(
        (s, b["error"]["field"].as_str()),
        (404, Some("start")),
        "{b}"
    );
    // Any offset and fractional seconds.
    let offset =
        base::time::rfc3339::format(start + Duration::from_secs(4 * 3600)).replace('Z', "%2B04:00");
    let r = c
        .get(format!(
            "{base}/api/v1/playback/cam-a?start={offset}&duration=3"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["vantage-start"].to_str().unwrap(), presented);
    assert_eq!(r.status(), 200);

    // MSE: init + fragments on the wall clock.
    let r = c
        .get(format!(
            "{base}/api/v1/playback/cam-a/init.mp4?start={}",
            rfc(start)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let init = r.bytes().await.unwrap().to_vec();
    let kinds: Vec<String> = boxes(&init).into_iter().map(|b| b.0).collect();
    assert_eq!(kinds, ["ftyp", "moov"]);
    let r = c
        .get(format!(
            "{base}/api/v1/playback/cam-a/media.m4s?start={}&duration=3",
            rfc(start)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let m4s = r.bytes().await.unwrap().to_vec();
    let b = boxes(&m4s);
    assert!(b.len() >= 2 && b.len().is_multiple_of(2), "{b:?}");
    assert!(b.iter().step_by(2).all(|x| x.0 == "moof"), "{b:?}");
    assert!(b.iter().skip(1).step_by(2).all(|x| x.0 == "mdat"), "{b:?}");

    // HLS: a VOD playlist whose parts all answer.
    let hls = format!(
        "{base}/api/v1/playback/cam-a/index.m3u8?start={}&duration=10",
        rfc(start)
    );
    let r = c.get(&hls).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/vnd.apple.mpegurl");
    let m3u8 = r.text().await.unwrap();
    assert!(m3u8.starts_with("#EXTM3U\n"), "{m3u8}");
    assert!(m3u8.contains("#EXT-X-MAP:URI=\"init.mp4?start="), "{m3u8}");
    assert!(m3u8.contains("#EXT-X-PROGRAM-DATE-TIME:"), "{m3u8}");
    assert!(m3u8.trim_end().ends_with("#EXT-X-ENDLIST"), "{m3u8}");
    let mut total = 0.0;
    for l in m3u8.lines() {
        if let Some(d) = l.strip_prefix("#EXTINF:") {
            total += d.trim_end_matches(',').parse::<f64>().unwrap();
        }
        if l.starts_with("media.m4s?") {
            let r = c
                .get(format!("{base}/api/v1/playback/cam-a/{l}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{l}");
        }
    }
    // Whole GOPs around the 10 s asked.
    assert!((10.0..=14.5).contains(&total), "{total} s in the playlist");

    if e2e() {
        let (duration, frames, start_time) = ffprobe_url(&play);
        assert!(
            (duration - dur).abs() <= 0.04 + 1e-6,
            "ffprobe duration {duration}"
        );
        assert!(start_time.abs() < 1e-6, "start {start_time}");
        assert!(frames >= 150, "{frames} frames decoded");
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i", &play, "-f", "null", "-"])
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (duration, frames, _) = ffprobe_url(&hls);
        assert!((10.0..=14.5).contains(&duration), "HLS duration {duration}");
        assert!(frames >= 250, "{frames} HLS frames");
    }
    node.shutdown().await;
}

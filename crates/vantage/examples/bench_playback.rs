//! Benchmark: time to first byte of playback (`recorder::playback::mp4`) at random timestamps
//! over an index holding a day of `CAMERAS` cameras (issue 10; budget ≤ 50 ms p99).
//!
//!   cargo run --release -p vantage --example bench_playback -- DIR [CAMERAS] [REQUESTS] [SPAN_S]
//!
//! The recordings are real segment files: one day of 25 fps video with a key frame every 2 s is
//! pushed through the recorder's own segmenter (`recorder::segmenter`, which makes the 60 s
//! segments, their fMP4 init and `prft`+`moof`+`mdat` fragments), giving 1,440 files with the
//! wall-clock times of that day. The frames are tiny (the fixture's SPS/PPS, 12-byte NAL units,
//! so a file is ~60 KB and the day ~90 MB): playback reads `moof`s and sample tables, never
//! decodes, so the payload size only matters to the bytes after the first. Every camera records
//! the same day, so its files are hard links to those 1,440 (one set of data blocks, its own
//! names and index rows). Index rows (segments and their key frames, as the writer leaves them)
//! are inserted in bulk.
//!
//! Then `REQUESTS` requests of `SPAN_S` seconds at uniformly random (camera, start) pairs; each
//! is timed from the call to `mp4()` to the first chunk of its body handed to the sink (the
//! first byte an HTTP response would send); then as many over HTTP against a `vantage::Node` on
//! the same directory ([`http_ttfb`]). The page cache is warm (the files were just
//! written): this measures the index and the per-request work, not a cold disk.
//!
//! Prints one JSON line: the setup, p50/p90/p99/max in ms and the process's peak RSS while
//! serving (the peak is reset after building, `/proc/self/clear_refs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Seg;
use media::Codec;
use recorder::index::Index;
use recorder::playback::Mp4Request;
use recorder::service::{Recorder, RecorderConfig};
use recorder::writer::{camera_dir, day_dir};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DAY_MS: i64 = 86_400_000;

/// One day from `day_start_ms` through the segmenter (a day of complete segments: the last,
/// still open, is left out).
fn day_of_segments(day_start_ms: i64) -> Vec<Seg> {
    let clip = rtsp_server::ClipSource::from_file(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/clips/h264_a.h264"),
        Codec::H264,
    )
    .expect("fixture clip");
    let params = Arc::new(clip.params().clone());
    let key: &'static [u8] = &[0, 0, 0, 1, 0x65, 0x88, 0x84, 0, 1, 2, 3, 4];
    let delta: &'static [u8] = &[0, 0, 0, 1, 0x41, 0x9a, 0x02, 0, 1, 2, 3, 4];
    let frames = (0..=DAY_MS / 40).map(|n| {
        let is_key = n % 50 == 0;
        media::Frame {
            pts: n * 3600,
            received: UNIX_EPOCH + Duration::from_millis((day_start_ms + n * 40) as u64),
            is_key,
            data: if is_key { key.into() } else { delta.into() },
            params: params.clone(),
        }
    });
    let mut segs = Vec::new();
    common::record_segments(frames, |s| segs.push(s));
    segs
}

/// The same kind of requests over HTTP, against a node (`vantage::Node`, no cameras configured:
/// recordings of unknown cameras stay playable) on this directory: time from sending
/// `GET /api/v1/playback/{camera}?start=&duration=` to the first chunk of the body.
fn http_ttfb(
    dir: &std::path::Path,
    cameras: i64,
    requests: usize,
    span_s: i64,
    first_ms: i64,
    last_ms: i64,
) -> serde_json::Value {
    let yaml = format!(
        "server: {{ listen: \"127.0.0.1:0\" }}\n\
         webrtc: {{ udp_port: 0, bind: 127.0.0.1, advertise: [127.0.0.1] }}\n\
         storage: {{ data_dir: \"{}\", recordings_dir: \"{}\" }}\n\
         playback: {{ max_span: 1h }}\n\
         agencies:\n  - {{ id: OTHER, max_streams: 10 }}\n",
        dir.join("node").display(),
        dir.display()
    );
    let cfg = settings::load_str(&yaml, Vec::new()).unwrap_or_else(|p| panic!("config: {p:?}"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let node = vantage::Node::start(cfg).await.expect("node");
        let base = format!("http://{}", node.http_addr);
        let c = reqwest::Client::new();
        let mut next = common::xorshift(0x2545_F491_4F6C_DD1D);
        let mut v = Vec::with_capacity(requests);
        let mut failures = 0;
        for _ in 0..requests {
            let cam = format!("cam-{:04}", next() % cameras as u64);
            let room = (last_ms - first_ms - span_s * 1000).max(1) as u64;
            let start_ms = first_ms + (next() % room) as i64;
            let url = format!(
                "{base}/api/v1/playback/{cam}?start={}&duration={span_s}",
                base::time::rfc3339::format_ms(start_ms)
            );
            let t = Instant::now();
            let mut r = c.get(&url).send().await.expect("request");
            if r.status() != 200 {
                failures += 1;
                continue;
            }
            let _ = r.chunk().await.expect("first chunk");
            v.push(t.elapsed().as_secs_f64() * 1000.0);
            while let Ok(Some(_)) = r.chunk().await {}
        }
        node.shutdown().await;
        v.sort_by(f64::total_cmp);
        let r3 = |v: f64| (v * 1000.0).round() / 1000.0;
        serde_json::json!({
            "failures": failures,
            "p50": r3(common::percentile(&v, 0.5)),
            "p90": r3(common::percentile(&v, 0.9)),
            "p99": r3(common::percentile(&v, 0.99)),
            "max": r3(v.last().copied().unwrap_or(f64::NAN)),
        })
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 {
        eprintln!("usage: bench_playback DIR [CAMERAS] [REQUESTS] [SPAN_S]");
        std::process::exit(2);
    }
    let dir = PathBuf::from(&args[1]);
    let cameras: i64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100);
    let requests: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let span_s: i64 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(60);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the directory");
    let now_ms = base::clock::unix_ms(SystemTime::now());
    // The day ends three hours ago, on a minute.
    let day_start = (now_ms - 3 * 3_600_000 - DAY_MS) / 60_000 * 60_000;

    let t0 = Instant::now();
    let segs = day_of_segments(day_start);
    let src = dir.join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    let mut src_bytes = 0u64;
    for (i, s) in segs.iter().enumerate() {
        std::fs::write(src.join(format!("{i}.mp4")), &s.bytes).expect("segment file");
        src_bytes += s.bytes.len() as u64;
    }
    {
        drop(Index::open(&dir.join("index.db"), now_ms).expect("index"));
        let mut conn = rusqlite::Connection::open(dir.join("index.db")).expect("open");
        let tx = conn.transaction().expect("tx");
        for c in 0..cameras {
            let cam = format!("cam-{c:04}");
            let cdir = camera_dir(&cam);
            for (i, s) in segs.iter().enumerate() {
                let path = format!("{cdir}/{}/{}.mp4", day_dir(s.start_ms), s.start_ms * 90);
                common::insert_segment(&tx, &cam, &path, s);
                let p = dir.join(&path);
                std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
                std::fs::hard_link(src.join(format!("{i}.mp4")), &p).expect("hard link");
            }
        }
        tx.commit().expect("commit");
    }
    let build_s = t0.elapsed().as_secs_f64();
    let db_bytes = std::fs::metadata(dir.join("index.db")).map_or(0, |m| m.len());
    let keyframes: usize = segs.iter().map(|s| s.keyframes.len()).sum();
    let (seg_count, first_ms, last_ms) = (
        segs.len(),
        segs.first().map_or(0, |s| s.start_ms),
        segs.last().map_or(0, |s| s.end_ms),
    );
    drop(segs);
    let rss_build = common::peak_rss_kib();
    // Reset the peak (VmHWM) so the figure below is the serving phase's.
    let _ = std::fs::write("/proc/self/clear_refs", "5");

    let rec = Recorder::start(RecorderConfig::new(&dir), Arc::new(base::RealClocks))
        .expect("recorder start");
    // Random (camera, start) pairs: xorshift, fixed seed.
    let mut next = common::xorshift(0x9E37_79B9_7F4A_7C15);
    let mut ttfb = Vec::with_capacity(requests);
    let mut full = Vec::with_capacity(requests);
    let mut bytes_total = 0u64;
    let mut failures = 0usize;
    for _ in 0..requests {
        let cam = format!("cam-{:04}", next() % cameras as u64);
        let room = (last_ms - first_ms - span_s * 1000).max(1) as u64;
        let start_ms = first_ms + (next() % room) as i64;
        let req = Mp4Request {
            camera_id: cam,
            start_ms,
            end_ms: start_ms + span_s * 1000,
            skip_gaps: false,
            audio: true,
            title: None,
            comment: None,
        };
        let t = Instant::now();
        let mut m = match recorder::playback::mp4(&rec, &req, Instant::now()) {
            Ok(m) => m,
            Err(e) => {
                failures += 1;
                eprintln!("request failed: {:?} {}", e.field, e.error);
                continue;
            }
        };
        let mut first = None;
        let len = m.body.len();
        m.body
            .read_range(0..len, &mut |b| {
                if first.is_none() {
                    first = Some(t.elapsed());
                }
                bytes_total += b.len() as u64;
                Ok(())
            })
            .expect("reading the body");
        full.push(t.elapsed().as_secs_f64() * 1000.0);
        ttfb.push(first.unwrap_or_default().as_secs_f64() * 1000.0);
    }
    rec.shutdown();
    let rss_direct = common::peak_rss_kib();
    let http = http_ttfb(&dir, cameras, requests, span_s, first_ms, last_ms);
    ttfb.sort_by(f64::total_cmp);
    full.sort_by(f64::total_cmp);
    let r3 = |v: f64| (v * 1000.0).round() / 1000.0;
    println!(
        "{}",
        serde_json::json!({
            "bench": "playback",
            "cameras": cameras,
            "segments_per_camera": seg_count,
            "segment_rows": seg_count as i64 * cameras,
            "keyframe_rows": keyframes as i64 * cameras,
            "distinct_file_bytes": src_bytes,
            "index_db_bytes": db_bytes,
            "build_s": (build_s * 10.0).round() / 10.0,
            "requests": requests,
            "failures": failures,
            "span_s": span_s,
            "ttfb_ms": {
                "p50": r3(common::percentile(&ttfb, 0.5)),
                "p90": r3(common::percentile(&ttfb, 0.9)),
                "p99": r3(common::percentile(&ttfb, 0.99)),
                "max": r3(ttfb.last().copied().unwrap_or(f64::NAN)),
            },
            "whole_body_ms": {
                "p50": r3(common::percentile(&full, 0.5)),
                "p99": r3(common::percentile(&full, 0.99)),
            },
            "body_bytes_mean": bytes_total / requests.max(1) as u64,
            "peak_rss_kib_building": rss_build,
            "peak_rss_kib_serving": rss_direct,
            "http_ttfb_ms": http,
        })
    );
}

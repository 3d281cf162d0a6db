//! Benchmark: start-up recovery of a large recordings directory (what a restart after a crash
//! costs). Builds an index of `CAMERAS` cameras × `DAYS` days of 60 s segments (rows only, for the
//! old days), the files of each camera's last two hours (small placeholders: recovery only checks
//! their size), and one torn `writing` segment per camera (a real fMP4 file cut mid-fragment).
//! Then times `Recorder::start`, which runs recovery before anything else.
//!
//!   cargo run --release -p vantage --example bench_recovery -- DIR CAMERAS DAYS
//!
//! Prints one JSON line: rows, files, the recovery report and the time it took.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use media::Codec;
use recorder::index::{Index, NewSegment};
use recorder::segmenter::{Action, Segmenter, SegmenterConfig};
use recorder::service::{Recorder, RecorderConfig};
use recorder::writer::{camera_dir, day_dir};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const MIN_MS: i64 = 60_000;

/// A torn segment: the init, three GOPs and half of a fourth.
fn torn_segment() -> Vec<u8> {
    let clip = rtsp_server::ClipSource::from_file(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/clips/h264_a.h264"),
        Codec::H264,
    )
    .expect("fixture clip");
    let params = Arc::new(clip.params().clone());
    let mut seg = Segmenter::new("bench", SegmenterConfig::default());
    let mut out = Vec::new();
    for (n, (data, is_key)) in clip.aus().take(201).enumerate() {
        seg.push(
            media::Frame {
                pts: n as i64 * 3600,
                received: UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + n as u64 * 40),
                is_key,
                data: data.clone(),
                params: params.clone(),
            },
            &mut out,
        );
    }
    let mut file = Vec::new();
    let mut last = 0;
    for a in out {
        match a {
            Action::Open { init, .. } => file.extend_from_slice(&init),
            Action::Write(f) => {
                last = f.bytes.len();
                file.extend_from_slice(&f.bytes);
            }
            Action::Close { .. } => {}
        }
    }
    file.truncate(file.len() - last / 2);
    file
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: bench_recovery DIR CAMERAS DAYS");
        std::process::exit(2);
    }
    let dir = PathBuf::from(&args[1]);
    let cameras: i64 = args[2].parse().unwrap_or(500);
    let days: i64 = args[3].parse().unwrap_or(1);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the directory");
    let now_ms = base::clock::unix_ms(SystemTime::now());
    let per_camera = days * 1440;
    let recent = 120; // the last two hours have files
    let t0 = Instant::now();
    {
        // Schema through the recorder's own migrations, then rows in bulk.
        drop(Index::open(&dir.join("index.db"), now_ms).expect("index"));
        let mut conn = rusqlite::Connection::open(dir.join("index.db")).expect("open");
        let tx = conn.transaction().expect("tx");
        {
            let mut ins = tx
                .prepare(
                    "INSERT INTO segment (camera_id, run_id, start_90k, end_90k, start_wall_ms, \
                     end_wall_ms, bytes, path, codec, params_version, state) \
                     VALUES (?1, 0, ?2, ?3, ?4, ?5, ?6, ?7, 'h264', 0, 'complete')",
                )
                .expect("prepare");
            let mut kf = tx
                .prepare(
                    "INSERT INTO keyframe (segment_id, time_90k, byte_offset) VALUES (?1, ?2, ?3)",
                )
                .expect("prepare");
            for c in 0..cameras {
                let cam = format!("cam-{c:04}");
                let cdir = camera_dir(&cam);
                for i in 0..per_camera {
                    let start = now_ms - (per_camera - i + 1) * MIN_MS;
                    let path = format!("{cdir}/{}/{}.mp4", day_dir(start), start * 90);
                    ins.execute(rusqlite::params![
                        cam,
                        start * 90,
                        (start + MIN_MS) * 90,
                        start,
                        start + MIN_MS,
                        1024i64,
                        path
                    ])
                    .expect("insert");
                    let id = tx.last_insert_rowid();
                    for k in 0..30i64 {
                        kf.execute(rusqlite::params![id, (start + k * 2000) * 90, k * 30])
                            .expect("keyframe");
                    }
                    if i >= per_camera - recent {
                        let p = dir.join(&path);
                        std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
                        std::fs::write(&p, [0u8; 1024]).expect("placeholder");
                    }
                }
            }
        }
        tx.commit().expect("commit");
    }
    // One torn `writing` segment per camera, as a crash leaves them.
    let torn = torn_segment();
    let ix = Index::open(&dir.join("index.db"), now_ms).expect("index");
    for c in 0..cameras {
        let cam = format!("cam-{c:04}");
        let start = now_ms - MIN_MS;
        let path = format!("{}/{}/{}.mp4", camera_dir(&cam), day_dir(start), start * 90);
        let p: &Path = &dir.join(&path);
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
        std::fs::write(p, &torn).expect("torn file");
        ix.begin_segment(&NewSegment {
            camera_id: cam,
            run_id: 1,
            start_90k: start * 90,
            start_wall_ms: start,
            path,
            codec: "h264".into(),
            params_version: 0,
            codec_string: String::new(),
            width: 0,
            height: 0,
        })
        .expect("writing row");
    }
    drop(ix);
    let build_s = t0.elapsed().as_secs_f64();
    // Cold-ish start: drop the page cache's dirty state first (what a restart would see).
    let _ = std::process::Command::new("sync").status();
    let db_bytes = std::fs::metadata(dir.join("index.db")).map_or(0, |m| m.len());

    let t1 = Instant::now();
    let rec = Recorder::start(RecorderConfig::new(&dir), Arc::new(base::RealClocks))
        .expect("recorder start");
    let start_ms = t1.elapsed().as_secs_f64() * 1000.0;
    let report = rec.recovery().clone();
    rec.shutdown();
    println!(
        "{}",
        serde_json::json!({
            "bench": "recovery",
            "cameras": cameras,
            "days": days,
            "rows": cameras * per_camera + cameras,
            "keyframe_rows": cameras * per_camera * 30,
            "files_recent": cameras * recent,
            "index_db_bytes": db_bytes,
            "build_s": (build_s * 10.0).round() / 10.0,
            "start_ms": start_ms.round(),
            "recovery": serde_json::to_value(&report).unwrap_or_default(),
        })
    );
}

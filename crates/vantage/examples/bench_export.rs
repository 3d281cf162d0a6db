//! Benchmark: evidence export speed and peak RSS (issue 10; budget ≥ 300× real time, RSS must
//! not grow with the export's length).
//!
//!   bench_export build DIR [MINUTES] [KBPS]        # a one-camera recording, once
//!   bench_export export DIR MINUTES warm|cold       # one export, in a fresh process each
//!
//! `build` records MINUTES (default 63) of one camera (`cam-export`) into `DIR/rec`, ending a few
//! minutes ago: 25 fps with a key frame every 2 s (the H.264 fixture clip `h264_a` looped, every
//! access unit padded with a filler-data NAL unit to KBPS, default 4,000 kbit/s, so key frames
//! stay larger than delta frames), pushed through the recorder's own segmenter (60 s segments,
//! fMP4 init, `prft`+`moof`+`mdat` per GOP) and written as real segment files with their index
//! rows (as the writer leaves them). It prints one JSON line and leaves `DIR/recording.json`.
//!
//! `export` runs one export through the node's real job manager, `node::exports::Exports` (job
//! row, `<id>.mp4.part` through a SHA-256 writer, `fsync`, rename, signed manifest, row
//! `completed`), rendering with `recorder::playback::mp4` ([`common::RecorderSource`], what
//! `node::Services` does minus the camera catalog). The range is MINUTES from 30 s into the
//! recording (mid-GOP, as an operator would ask). With `cold` every segment file is first synced
//! and dropped from the page cache (`posix_fadvise(POSIX_FADV_DONTNEED)`); with `warm` they are
//! left as they are (the script reads them first). Timed from `Exports::create` to the row being
//! `completed`; `written_99pct_s` is when the running job's stored progress (about every 1 %)
//! was first seen at 99 % or more: what comes after it is mostly `fsync`, renames and the
//! manifest. The
//! process's peak RSS (`VmHWM`) is read before the export (recorder and manager started) and after
//! it. The export's files are deleted afterwards. Prints one JSON line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use node::exports::NewExport;
use recorder::service::{Recorder, RecorderConfig};
use recorder::writer::{camera_dir, day_dir};
use serde_json::json;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use store::ExportStatus;

const CAMERA: &str = "cam-export";
const FPS: u64 = 25;

fn usage() -> ! {
    eprintln!(
        "usage: bench_export build DIR [MINUTES] [KBPS]\n       bench_export export DIR MINUTES warm|cold"
    );
    std::process::exit(2);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("build"), Some(dir)) => build(
            Path::new(dir),
            args.get(3)
                .map_or(63, |s| s.parse().unwrap_or_else(|_| usage())),
            args.get(4)
                .map_or(4000, |s| s.parse().unwrap_or_else(|_| usage())),
        ),
        (Some("export"), Some(dir)) => {
            let minutes: i64 = args
                .get(3)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| usage());
            let cold = match args.get(4).map(String::as_str) {
                Some("cold") => true,
                Some("warm") => false,
                _ => usage(),
            };
            export(Path::new(dir), minutes, cold);
        }
        _ => usage(),
    }
}

fn build(dir: &Path, minutes: i64, kbps: u64) {
    let rec_dir = dir.join("rec");
    let _ = std::fs::remove_dir_all(&rec_dir);
    std::fs::create_dir_all(&rec_dir).expect("creating the directory");
    let now_ms = base::clock::unix_ms(SystemTime::now());
    // Ends two minutes ago, on a minute.
    let end_ms = (now_ms - 120_000) / 60_000 * 60_000;
    let start_ms = end_ms - minutes * 60_000;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (clip, own_kbps) = common::padded_clip(&root.join("fixtures/clips/h264_a.h264"), kbps, FPS);
    let key_bytes: Vec<usize> = clip
        .iter()
        .filter(|f| f.is_key)
        .map(|f| f.data.len())
        .collect();
    let delta_bytes: Vec<usize> = clip
        .iter()
        .filter(|f| !f.is_key)
        .map(|f| f.data.len())
        .collect();
    let mean = |v: &[usize]| v.iter().sum::<usize>() as f64 / v.len().max(1) as f64;

    let t0 = Instant::now();
    drop(recorder::index::Index::open(&rec_dir.join("index.db"), now_ms).expect("index"));
    let mut conn = rusqlite::Connection::open(rec_dir.join("index.db")).expect("open");
    let tx = conn.transaction().expect("tx");
    let (mut segments, mut bytes, mut keyframes) = (0u64, 0u64, 0u64);
    let (mut first_ms, mut last_ms) = (i64::MAX, 0);
    // One frame more than the span so the last segment closes at its end.
    let frames = (minutes * 60 * FPS as i64 + 1) as usize;
    let it = (0..frames).map(|n| {
        let t = &clip[n % clip.len()];
        media::Frame {
            pts: n as i64 * 3600,
            received: UNIX_EPOCH + Duration::from_millis((start_ms + n as i64 * 40) as u64),
            is_key: t.is_key,
            data: t.data.clone(),
            params: t.params.clone(),
        }
    });
    common::record_segments(it, |s| {
        let path = format!(
            "{}/{}/{}.mp4",
            camera_dir(CAMERA),
            day_dir(s.start_ms),
            s.start_ms * 90
        );
        let p = rec_dir.join(&path);
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&p, &s.bytes).expect("segment file");
        common::insert_segment(&tx, CAMERA, &path, &s);
        segments += 1;
        bytes += s.bytes.len() as u64;
        keyframes += s.keyframes.len() as u64;
        first_ms = first_ms.min(s.start_ms);
        last_ms = last_ms.max(s.end_ms);
    });
    tx.commit().expect("commit");
    let build_s = t0.elapsed().as_secs_f64();
    let span_s = (last_ms - first_ms) as f64 / 1000.0;
    let out = json!({
        "bench": "export_build",
        "camera": CAMERA,
        "first_ms": first_ms,
        "last_ms": last_ms,
        "recorded_s": span_s,
        "segments": segments,
        "keyframes": keyframes,
        "segment_bytes": bytes,
        "recorded_kbps": (bytes as f64 * 8.0 / span_s / 1000.0).round(),
        "clip_kbps_unpadded": own_kbps.round(),
        "key_frame_bytes_mean": mean(&key_bytes).round(),
        "delta_frame_bytes_mean": mean(&delta_bytes).round(),
        "build_s": (build_s * 10.0).round() / 10.0,
        "peak_rss_kib": common::peak_rss_kib(),
    });
    std::fs::write(dir.join("recording.json"), out.to_string()).expect("recording.json");
    println!("{out}");
}

/// Every `.mp4` below `dir`.
fn segment_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            segment_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "mp4") {
            out.push(p);
        }
    }
}

/// Syncs each file and drops its pages from the page cache (works without root).
fn drop_from_cache(files: &[PathBuf]) {
    for p in files {
        let f = std::fs::File::open(p).expect("open");
        f.sync_data().expect("fdatasync");
        // SAFETY: a valid open descriptor; offset 0 and length 0 mean the whole file.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0, "posix_fadvise {}", p.display());
    }
}

/// The sizes of an MP4's top-level boxes, by type (the `moov` is what is built in memory).
fn top_level_boxes(path: &Path) -> serde_json::Value {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).expect("the export");
    let len = f.metadata().expect("metadata").len();
    let mut out = serde_json::Map::new();
    let mut at = 0u64;
    while at + 8 <= len {
        let mut h = [0u8; 16];
        f.read_exact_at(&mut h[..8], at).expect("box header");
        let mut size = u64::from(u32::from_be_bytes(h[..4].try_into().expect("4 bytes")));
        if size == 1 {
            f.read_exact_at(&mut h[8..], at + 8).expect("largesize");
            size = u64::from_be_bytes(h[8..].try_into().expect("8 bytes"));
        } else if size == 0 {
            size = len - at;
        }
        let kind = String::from_utf8_lossy(&h[4..8]).into_owned();
        out.insert(kind, json!(size));
        if size < 8 {
            break;
        }
        at += size;
    }
    out.into()
}

fn export(dir: &Path, minutes: i64, cold: bool) {
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("recording.json")).expect("run `build` first"),
    )
    .expect("recording.json");
    let first_ms = meta["first_ms"].as_i64().expect("first_ms");
    let last_ms = meta["last_ms"].as_i64().expect("last_ms");
    let start_ms = first_ms + 30_000;
    let end_ms = start_ms + minutes * 60_000;
    assert!(
        end_ms <= last_ms,
        "the recording is shorter than {minutes} min + 30 s"
    );
    let rec_dir = dir.join("rec");

    let mut files = Vec::new();
    segment_files(&rec_dir.join(camera_dir(CAMERA)), &mut files);
    let cached_before = common::meminfo_kib("Cached:");
    if cold {
        drop_from_cache(&files);
    }
    let cached_after = common::meminfo_kib("Cached:");

    let rec = Recorder::start(RecorderConfig::new(&rec_dir), Arc::new(base::RealClocks))
        .expect("recorder start");
    let source: Arc<dyn node::exports::Source> = Arc::new(common::RecorderSource(rec.clone()));
    let ex_dir = dir.join("exports");
    let _ = std::fs::remove_dir_all(&ex_dir);
    let ex = common::exports_manager(&ex_dir, 1, &source).expect("exports manager");
    let load = common::loadavg();
    let (hwm_before, rss_before) = (common::peak_rss_kib(), common::status_kib("VmRSS:"));
    let cpu0 = common::process_cpu_ticks();

    let t0 = Instant::now();
    let row = ex
        .create(NewExport {
            camera_id: base::CameraId::from(CAMERA),
            start_ms,
            end_ms,
            include_audio: true,
            created_by: "bench".into(),
        })
        .unwrap_or_else(|e| panic!("create: {:?} {}", e.field, e.error));
    let mut written = None;
    let done = loop {
        let r = ex.get(&row.id).expect("get").expect("the row");
        if written.is_none()
            && r.status == ExportStatus::Running
            && r.bytes_total > 0
            && r.bytes_done * 100 >= r.bytes_total * 99
        {
            written = Some(t0.elapsed());
        }
        match r.status {
            ExportStatus::Completed => break r,
            ExportStatus::Failed | ExportStatus::Cancelled => {
                panic!("export {:?}: {:?}", r.status, r.error)
            }
            _ => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    let wall = t0.elapsed();
    let cpu_s = (common::process_cpu_ticks() - cpu0) as f64 / 100.0;
    let (hwm_end, rss_end) = (common::peak_rss_kib(), common::status_kib("VmRSS:"));
    let load_end = common::loadavg();
    let size = done.size.unwrap_or(0);
    let out_dir = ex_dir.join("out");
    let manifest_ok = out_dir.join(format!("{}.manifest.json", row.id)).exists();
    let boxes = top_level_boxes(&out_dir.join(format!("{}.mp4", row.id)));
    ex.delete(&row.id).expect("delete");
    rec.shutdown();

    let wall_s = wall.as_secs_f64();
    let span_s = (end_ms - start_ms) as f64 / 1000.0;
    let r3 = |v: f64| (v * 1000.0).round() / 1000.0;
    println!(
        "{}",
        json!({
            "bench": "export",
            "cache": if cold { "cold" } else { "warm" },
            "minutes": minutes,
            "span_s": span_s,
            "wall_s": r3(wall_s),
            "written_99pct_s": written.map(|w| r3(w.as_secs_f64())),
            "x_realtime": (span_s / wall_s * 10.0).round() / 10.0,
            "mbyte_per_s": (size as f64 / wall_s / 1e6 * 10.0).round() / 10.0,
            "bytes": size,
            "frames": done.frames,
            "sha256": done.sha256,
            "top_level_boxes": boxes,
            "manifest_written": manifest_ok,
            "cpu_s": r3(cpu_s),
            "rss_kib": {
                "hwm_before": hwm_before,
                "hwm_end": hwm_end,
                "hwm_growth": hwm_end.saturating_sub(hwm_before),
                "rss_before": rss_before,
                "rss_end": rss_end,
            },
            "segment_files": files.len(),
            "page_cache_mib": {
                "before": cached_before / 1024,
                "after_drop": cached_after / 1024,
            },
            "loadavg": load,
            "loadavg_end": load_end,
        })
    );
}

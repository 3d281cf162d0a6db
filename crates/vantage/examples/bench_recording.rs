//! Benchmark: continuous recording of N cameras fed in real time from the fixture clips.
//!
//!   cargo run --release -p vantage --example bench_recording -- \
//!       --cameras N --seconds S --bitrate-kbps K --dir PATH [--writer-threads T] \
//!       [--warmup W] [--max-usage-gb G] [--audio] [--readers [--playback-readers R]
//!       [--export-slots E]]
//!
//! N hub channels are fed by one feeder thread (`bench-feeder`) that ticks every 40 ms and
//! publishes one frame per camera (25 fps, 2 s GOP, pts +3600 per frame, the four H.264 fixture
//! clips looped, camera phases staggered so key frames are spread over the GOP). Each access unit
//! gets an H.264 filler-data NAL unit (type 12) so the stream averages K kbit/s. The recorder
//! (`recorder::service::Recorder`, real clocks, a byte budget so retention runs too) records all
//! N cameras into PATH. With `--audio` every camera also sends the AAC fixture (16 kHz mono,
//! 15.6 frames/s, ~33 kbit/s), recorded as a second track.
//!
//! After W seconds of warm-up (default 10) it measures S seconds: CPU of the recorder's threads
//! (`rec-writer-N`, `rec-syncer`, `rec-retention`) and of the feeder separately (from
//! `/proc/self/task/*/stat`), writes and bytes per second, frame-arrival-to-disk lag, frames
//! skipped or dropped; at the end the size of the media index per camera-day. Prints one JSON
//! line.
//!
//! With `--readers`, R (default 20) playback readers and E (default 10) export slots run during
//! the measured seconds (started after the warm-up): each reader (`bench-reader`) loops
//! `recorder::playback::mp4` over a random camera's recent 30–60 s (ending 3 s ago; shorter while
//! less is recorded), reading the whole body into a sink; each export slot keeps one export busy
//! through the node's job manager (`node::exports::Exports`, max_concurrent = E, writing under
//! `PATH-exports`): a random camera's recent 30–60 s, polled until completed, then deleted and a
//! new one created. Their bytes, requests and exports are reported beside the recorder's figures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use hub::{Channel, ChannelConfig, Hub};
use media::Frame;
use recorder::service::{Budget, RecordSpec, Recorder, RecorderConfig};
use recorder::writer::LagHistogram;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

const FPS: u64 = 25;
const TICKS_PER_FRAME: i64 = 3600;
const FRAME_INTERVAL: Duration = Duration::from_millis(40);
const CLIPS: [&str; 4] = ["h264_a", "h264_b", "h264_c", "h264_d"];

struct Args {
    cameras: usize,
    seconds: u64,
    bitrate_kbps: u64,
    dir: PathBuf,
    writer_threads: usize,
    warmup: u64,
    max_usage_gb: Option<f64>,
    audio: bool,
    readers: bool,
    playback_readers: usize,
    export_slots: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: bench_recording --cameras N --seconds S --bitrate-kbps K --dir PATH \
         [--writer-threads T] [--warmup W] [--max-usage-gb G] [--audio] \
         [--readers [--playback-readers R] [--export-slots E]]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut a = Args {
        cameras: 100,
        seconds: 60,
        bitrate_kbps: 4000,
        dir: PathBuf::new(),
        writer_threads: RecorderConfig::new("").writer_threads,
        warmup: 10,
        max_usage_gb: None,
        audio: false,
        readers: false,
        playback_readers: 20,
        export_slots: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        if k == "--audio" {
            a.audio = true;
            continue;
        }
        if k == "--readers" {
            a.readers = true;
            continue;
        }
        let v = it.next().unwrap_or_else(|| usage());
        match k.as_str() {
            "--cameras" => a.cameras = v.parse().unwrap_or_else(|_| usage()),
            "--seconds" => a.seconds = v.parse().unwrap_or_else(|_| usage()),
            "--bitrate-kbps" => a.bitrate_kbps = v.parse().unwrap_or_else(|_| usage()),
            "--dir" => a.dir = PathBuf::from(v),
            "--writer-threads" => a.writer_threads = v.parse().unwrap_or_else(|_| usage()),
            "--warmup" => a.warmup = v.parse().unwrap_or_else(|_| usage()),
            "--max-usage-gb" => a.max_usage_gb = Some(v.parse().unwrap_or_else(|_| usage())),
            "--playback-readers" => a.playback_readers = v.parse().unwrap_or_else(|_| usage()),
            "--export-slots" => a.export_slots = v.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    if a.dir.as_os_str().is_empty() || a.cameras == 0 || a.seconds == 0 {
        usage();
    }
    a
}

/// CPU ticks (user + system) of this process's threads, summed by group.
fn thread_ticks() -> BTreeMap<&'static str, u64> {
    let mut m = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return m;
    };
    for e in dir.flatten() {
        let Ok(s) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = s.rsplit_once(") ") else {
            continue;
        };
        let comm = head.split_once(" (").map_or("", |x| x.1);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let t = f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let group = if comm.starts_with("rec-writer") {
            "rec_writers"
        } else if comm == "rec-syncer" {
            "rec_syncer"
        } else if comm == "rec-retention" {
            "rec_retention"
        } else if comm == "bench-feeder" {
            "feeder"
        } else if comm == "bench-reader" {
            "readers"
        } else {
            "other"
        };
        *m.entry(group).or_insert(0) += t;
    }
    m
}

/// (busy, total) jiffies of the whole machine, from /proc/stat.
fn machine_ticks() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().sum();
    // idle + iowait
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

fn iowait_ticks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().next()?.split_whitespace().nth(5)?.parse().ok())
        .unwrap_or(0)
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

fn lag_delta(a: &LagHistogram, b: &LagHistogram) -> LagHistogram {
    LagHistogram {
        bounds_ms: b.bounds_ms.clone(),
        counts: b
            .counts
            .iter()
            .zip(a.counts.iter().chain(std::iter::repeat(&0)))
            .map(|(x, y)| x - y)
            .collect(),
        max_ms: b.max_ms,
    }
}

/// Counters of the readers and exports running beside the recorder (`--readers`).
#[derive(Default)]
struct LoadCounters {
    requests: AtomicU64,
    request_failures: AtomicU64,
    read_bytes: AtomicU64,
    exports_completed: AtomicU64,
    export_failures: AtomicU64,
    export_bytes: AtomicU64,
    /// Sum of the completed exports' durations (create → completed), µs.
    export_us: AtomicU64,
    /// Of which queued (created → started) and running (started → finished), from the job rows, ms.
    export_queued_ms: AtomicU64,
    export_running_ms: AtomicU64,
}

/// Playback readers and export slots (see the module docs); stopped by `stop`.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    counters: Arc<LoadCounters>,
    exports_dir: PathBuf,
}

/// A recent range: 30–60 s ending 3 s ago, not before `from_ms`.
fn recent_range(next: &mut impl FnMut() -> u64, from_ms: i64) -> (i64, i64) {
    let end = base::clock::unix_ms(SystemTime::now()) - 3000;
    let len = 30_000 + (next() % 30_001) as i64;
    ((end - len).max(from_ms), end)
}

fn start_load(recorder: &Arc<Recorder>, cameras: Arc<Vec<String>>, a: &Args, from_ms: i64) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(LoadCounters::default());
    let exports_dir = PathBuf::from(format!("{}-exports", a.dir.display()));
    let mut threads = Vec::new();
    for i in 0..a.playback_readers {
        let (rec, cameras, stop, c) = (
            recorder.clone(),
            cameras.clone(),
            stop.clone(),
            counters.clone(),
        );
        let t = std::thread::Builder::new()
            .name("bench-reader".into())
            .spawn(move || {
                let mut next = common::xorshift(0x9E37_79B9_7F4A_7C15 ^ ((i as u64 + 1) * 7919));
                while !stop.load(Ordering::Relaxed) {
                    let cam = &cameras[(next() % cameras.len() as u64) as usize];
                    let (start_ms, end_ms) = recent_range(&mut next, from_ms);
                    let req = recorder::playback::Mp4Request {
                        camera_id: cam.clone(),
                        start_ms,
                        end_ms,
                        skip_gaps: false,
                        audio: true,
                        title: None,
                        comment: None,
                    };
                    let r = recorder::playback::mp4(&rec, &req, Instant::now())
                        .map_err(|e| e.error)
                        .and_then(|mut m| {
                            let len = m.body.len();
                            m.body.read_range(0..len, &mut |b| {
                                c.read_bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                                if stop.load(Ordering::Relaxed) {
                                    return Err(base::err!(Cancelled, "stopped"));
                                }
                                Ok(())
                            })
                        });
                    match r {
                        Ok(()) => c.requests.fetch_add(1, Ordering::Relaxed),
                        Err(e) if e.kind() == base::ErrorKind::Cancelled => break,
                        Err(e) => {
                            if c.request_failures.fetch_add(1, Ordering::Relaxed) < 5 {
                                eprintln!(
                                "playback of {cam} {}..{} ms after the recording's start, at {}: {e}",
                                start_ms - from_ms,
                                end_ms - from_ms,
                                base::clock::unix_ms(SystemTime::now()) - from_ms
                            );
                            }
                            0
                        }
                    };
                }
            });
        threads.push(t.expect("spawn reader"));
    }
    if a.export_slots > 0 {
        let source: Arc<dyn node::exports::Source> =
            Arc::new(common::RecorderSource(recorder.clone()));
        let ex = common::exports_manager(&exports_dir, a.export_slots, &source)
            .expect("exports manager");
        for i in 0..a.export_slots {
            let (ex, source, cameras, stop, c) = (
                ex.clone(),
                source.clone(),
                cameras.clone(),
                stop.clone(),
                counters.clone(),
            );
            let t = std::thread::Builder::new()
                .name("bench-exports".into())
                .spawn(move || {
                    // Keeps the source alive for the manager (it holds a Weak).
                    let _source = source;
                    let mut next =
                        common::xorshift(0x2545_F491_4F6C_DD1D ^ ((i as u64 + 1) * 104_729));
                    while !stop.load(Ordering::Relaxed) {
                        let cam = &cameras[(next() % cameras.len() as u64) as usize];
                        let (start_ms, end_ms) = recent_range(&mut next, from_ms);
                        let t = Instant::now();
                        let row = match ex.create(node::exports::NewExport {
                            camera_id: base::CameraId::from(cam.as_str()),
                            start_ms,
                            end_ms,
                            include_audio: true,
                            created_by: "bench".into(),
                        }) {
                            Ok(r) => r,
                            Err(e) => {
                                if c.export_failures.fetch_add(1, Ordering::Relaxed) < 5 {
                                    eprintln!("export of {cam}: {}", e.error);
                                }
                                std::thread::sleep(Duration::from_millis(100));
                                continue;
                            }
                        };
                        loop {
                            std::thread::sleep(Duration::from_millis(10));
                            let r = ex.get(&row.id).ok().flatten();
                            match r.as_ref().map(|r| r.status) {
                                Some(store::ExportStatus::Completed) => {
                                    let r = r.expect("the row");
                                    c.exports_completed.fetch_add(1, Ordering::Relaxed);
                                    c.export_bytes
                                        .fetch_add(r.size.unwrap_or(0), Ordering::Relaxed);
                                    c.export_us.fetch_add(
                                        t.elapsed().as_micros() as u64,
                                        Ordering::Relaxed,
                                    );
                                    let started = r.started_at_ms.unwrap_or(r.created_at_ms);
                                    let finished = r.finished_at_ms.unwrap_or(started);
                                    c.export_queued_ms.fetch_add(
                                        (started - r.created_at_ms).max(0) as u64,
                                        Ordering::Relaxed,
                                    );
                                    c.export_running_ms.fetch_add(
                                        (finished - started).max(0) as u64,
                                        Ordering::Relaxed,
                                    );
                                    break;
                                }
                                Some(
                                    store::ExportStatus::Queued | store::ExportStatus::Running,
                                ) if !stop.load(Ordering::Relaxed) => {}
                                Some(
                                    store::ExportStatus::Queued | store::ExportStatus::Running,
                                ) => {
                                    break;
                                }
                                _ => {
                                    if c.export_failures.fetch_add(1, Ordering::Relaxed) < 5 {
                                        eprintln!("export of {cam}: {:?}", r.and_then(|r| r.error));
                                    }
                                    break;
                                }
                            }
                        }
                        // Removes a finished export's files, cancels one cut short by the stop.
                        let _ = ex.delete(&row.id);
                    }
                });
            threads.push(t.expect("spawn export slot"));
        }
    }
    Load {
        stop,
        threads,
        counters,
        exports_dir,
    }
}

fn main() {
    let a = parse_args();
    let n = a.cameras;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let clips: Vec<(Vec<Frame>, f64)> = CLIPS
        .iter()
        .map(|c| {
            common::padded_clip(
                &root.join(format!("fixtures/clips/{c}.h264")),
                a.bitrate_kbps,
                FPS,
            )
        })
        .collect();
    let stream_kbps: f64 = clips
        .iter()
        .map(|(f, _)| {
            f.iter().map(|x| x.data.len()).sum::<usize>() as f64 * 8.0 * FPS as f64
                / 1000.0
                / f.len() as f64
        })
        .sum::<f64>()
        / clips.len() as f64;
    let clip_kbps: Vec<f64> = clips.iter().map(|c| c.1).collect();
    let clips: Arc<Vec<Vec<Frame>>> = Arc::new(clips.into_iter().map(|c| c.0).collect());

    let hub = Hub::new();
    let channels: Vec<Arc<Channel>> = (0..n)
        .map(|i| {
            hub.add(Channel::new(
                format!("cam-{i:03}"),
                ChannelConfig::default(),
                SystemTime::now(),
            ))
        })
        .collect();

    let run_secs = a.warmup + a.seconds;
    let expected_bytes = n as f64 * a.bitrate_kbps as f64 * 125.0 * run_secs as f64;
    let max_usage = a
        .max_usage_gb
        .map_or((expected_bytes / 2.0) as u64, |g| (g * 1e9) as u64);
    let mut cfg = RecorderConfig::new(&a.dir);
    cfg.writer_threads = a.writer_threads;
    cfg.max_usage = Budget::Bytes(max_usage);
    let cfg_json = json!({
        "writer_threads": cfg.writer_threads,
        "poll_ms": cfg.poll.as_millis() as u64,
        "sync_interval_s": cfg.sync_interval.as_secs(),
        "retention_interval_s": cfg.retention_interval.as_secs(),
        "max_usage_bytes": max_usage,
        "segment_period_s": cfg.segmenter.rotation.period / recorder::TICKS_PER_SEC,
    });
    let recorder = Recorder::start(cfg, Arc::new(base::RealClocks)).unwrap_or_else(|e| {
        eprintln!("starting recorder: {e}");
        std::process::exit(1);
    });
    let specs: Vec<RecordSpec> = channels
        .iter()
        .map(|c| RecordSpec {
            camera_id: c.id().as_str().into(),
            retention_days: 90,
        })
        .collect();
    // Audio: the channel announces it before the first frame, as an RTSP session does.
    let audio: Option<Arc<rtsp_server::AudioClip>> = a.audio.then(|| {
        let clip =
            rtsp_server::AudioClip::from_adts_file(root.join("fixtures/clips/aac_16k_mono.adts"))
                .unwrap_or_else(|e| {
                    eprintln!("{e}");
                    std::process::exit(1);
                });
        Arc::new(clip)
    });
    let audio_params = audio.as_ref().map(|c| Arc::new(c.params().clone()));
    for c in &channels {
        c.set_audio_params(audio_params.clone());
    }
    recorder.apply(&hub, &specs);

    // Camera i plays clip i % 4 starting at frame offset[i]: key frames (every 50 frames) are
    // spread evenly over the 40 ms ticks of a GOP. A new subscriber waits for the first key
    // frame, so the frames before it never reach the recorder (not a loss).
    let offsets: Arc<Vec<usize>> = Arc::new((0..n).map(|i| (i * 50 / n) % 50).collect());
    let before_first_key: u64 = (0..n)
        .map(|i| {
            let clip = &clips[i % clips.len()];
            (0..clip.len())
                .take_while(|k| !clip[(offsets[i] + k) % clip.len()].is_key)
                .count() as u64
        })
        .sum();

    // The feeder: one frame per camera every 40 ms, real time.
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let keys = Arc::new(AtomicU64::new(0));
    let late_max_us = Arc::new(AtomicU64::new(0));
    let feeder = {
        let (stop, published, keys, late_max_us) = (
            stop.clone(),
            published.clone(),
            keys.clone(),
            late_max_us.clone(),
        );
        let (clips, channels, offsets) = (clips.clone(), channels.clone(), offsets.clone());
        let (audio, audio_params) = (audio.clone(), audio_params.clone());
        std::thread::Builder::new()
            .name("bench-feeder".into())
            .spawn(move || {
                let mut k: usize = 0;
                // AAC frames sent so far (1024 samples at 16 kHz = 5760 ticks each).
                let mut ka: usize = 0;
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    if next > now {
                        std::thread::sleep(next - now);
                    } else {
                        let late = (now - next).as_micros() as u64;
                        late_max_us.fetch_max(late, Ordering::Relaxed);
                    }
                    next += FRAME_INTERVAL;
                    let received = SystemTime::now();
                    if let (Some(clip), Some(params)) = (&audio, &audio_params) {
                        while ka as i64 * 5760 <= k as i64 * TICKS_PER_FRAME {
                            let data = clip.frames()[ka % clip.frames().len()].clone();
                            for ch in channels.iter() {
                                ch.publish_audio(media::AudioFrame {
                                    pts: ka as i64 * 5760,
                                    received,
                                    duration: 1024,
                                    data: data.clone(),
                                    params: params.clone(),
                                });
                            }
                            ka += 1;
                        }
                    }
                    let mut nkeys = 0;
                    for (i, ch) in channels.iter().enumerate() {
                        let clip = &clips[i % clips.len()];
                        let t = &clip[(offsets[i] + k) % clip.len()];
                        nkeys += u64::from(t.is_key);
                        ch.publish(Frame {
                            pts: k as i64 * TICKS_PER_FRAME,
                            received,
                            is_key: t.is_key,
                            data: t.data.clone(),
                            params: t.params.clone(),
                        });
                    }
                    published.fetch_add(channels.len() as u64, Ordering::Relaxed);
                    keys.fetch_add(nkeys, Ordering::Relaxed);
                    k += 1;
                }
            })
            .expect("spawn feeder")
    };

    let t_start = Instant::now();
    // Every camera's first key frame reaches the recorder within one GOP (2 s); readers ask
    // for nothing before this.
    let recording_from_ms = base::clock::unix_ms(SystemTime::now()) + 5_000;
    std::thread::sleep(Duration::from_secs(a.warmup));
    let camera_ids: Arc<Vec<String>> = Arc::new(
        channels
            .iter()
            .map(|c| c.id().as_str().to_owned())
            .collect(),
    );
    let readers = a
        .readers
        .then(|| start_load(&recorder, camera_ids, &a, recording_from_ms));
    let st0 = recorder.status().expect("status");
    let (th0, p0, m0, io0) = (
        thread_ticks(),
        common::process_cpu_ticks(),
        machine_ticks(),
        iowait_ticks(),
    );
    let (pub0, keys0) = (
        published.load(Ordering::Relaxed),
        keys.load(Ordering::Relaxed),
    );
    late_max_us.store(0, Ordering::Relaxed);
    let t0 = Instant::now();
    let mut dirty_max_kib = 0;
    let mut writeback_max_kib = 0;
    while t0.elapsed() < Duration::from_secs(a.seconds) {
        std::thread::sleep(Duration::from_millis(500));
        dirty_max_kib = dirty_max_kib.max(common::meminfo_kib("Dirty:"));
        writeback_max_kib = writeback_max_kib.max(common::meminfo_kib("Writeback:"));
    }
    let dt = t0.elapsed().as_secs_f64();
    let (th1, p1, m1, io1) = (
        thread_ticks(),
        common::process_cpu_ticks(),
        machine_ticks(),
        iowait_ticks(),
    );
    let st1 = recorder.status().expect("status");
    let (pub1, keys1) = (
        published.load(Ordering::Relaxed),
        keys.load(Ordering::Relaxed),
    );
    let load = common::loadavg();
    let hz = 100.0;
    let pct = |t: u64| (t as f64 / hz / dt * 100.0 * 10.0).round() / 10.0;
    let group = |m: &BTreeMap<&str, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    let d = |k: &str| group(&th1, k).saturating_sub(group(&th0, k));
    let feeder_late_max_ms = late_max_us.load(Ordering::Relaxed) as f64 / 1000.0;
    // The readers' figures over the window, then they stop (an export cut short is cancelled).
    let readers_json = readers.map(|l| {
        let c = &l.counters;
        let get = |x: &AtomicU64| x.load(Ordering::Relaxed);
        let (read, done, ex_bytes, ex_us) = (
            get(&c.read_bytes),
            get(&c.exports_completed),
            get(&c.export_bytes),
            get(&c.export_us),
        );
        let out = json!({
            "playback_readers": a.playback_readers,
            "export_slots": a.export_slots,
            "playback_requests": get(&c.requests),
            "playback_failures": get(&c.request_failures),
            "playback_requests_per_s": (get(&c.requests) as f64 / dt * 10.0).round() / 10.0,
            "playback_mbyte_per_s": (read as f64 / dt / 1e6 * 10.0).round() / 10.0,
            "exports_completed": done,
            "export_failures": get(&c.export_failures),
            "export_mbyte_per_s_total": (ex_bytes as f64 / dt / 1e6 * 10.0).round() / 10.0,
            "export_mbyte_per_s_each": if ex_us > 0 { (ex_bytes as f64 / (ex_us as f64 / 1e6) / 1e6 * 10.0).round() / 10.0 } else { 0.0 },
            "export_s_mean": if done > 0 { (ex_us as f64 / done as f64 / 1e3).round() / 1e3 } else { 0.0 },
            "export_queued_ms_mean": get(&c.export_queued_ms) / done.max(1),
            "export_running_ms_mean": get(&c.export_running_ms) / done.max(1),
            "export_mbyte_mean": if done > 0 { (ex_bytes as f64 / done as f64 / 1e5).round() / 10.0 } else { 0.0 },
            // The export jobs' threads end with their jobs (their CPU is in the process's).
            "readers_cpu_pct_of_one_core": pct(d("readers")),
        });
        l.stop.store(true, Ordering::Relaxed);
        for t in l.threads {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&l.exports_dir);
        out
    });

    // Stop feeding; let the writers drain their queues (the open GOP stays pending), then take
    // the per-camera counters and shut down.
    stop.store(true, Ordering::Relaxed);
    let _ = feeder.join();
    std::thread::sleep(Duration::from_millis(500));
    let recorded_s = t_start.elapsed().as_secs_f64();
    let st2 = recorder.status().expect("status");
    let frames_in: u64 = channels.iter().map(|c| c.stats().frames_in).sum();
    let (mut seg_frames, mut skipped, mut dropped_fragments, mut fragments, mut runs) =
        (0, 0, 0, 0, 0);
    let (mut audio_in, mut audio_written, mut audio_skipped) = (0, 0, 0);
    let mut cams_with_writer = 0;
    for c in &st2.cameras {
        if let Some(w) = &c.writer {
            cams_with_writer += 1;
            seg_frames += w.segmenter.frames;
            skipped += w.segmenter.skipped;
            fragments += w.segmenter.fragments;
            runs += w.segmenter.runs;
            dropped_fragments += w.dropped_fragments;
            audio_in += w.segmenter.audio_frames;
            audio_written += w.segmenter.audio_written;
            audio_skipped += w.segmenter.audio_skipped;
        }
    }
    let t_shut = Instant::now();
    recorder.shutdown();
    let shutdown_ms = t_shut.elapsed().as_millis() as u64;

    // The media index: raw size, then settled (WAL checkpointed, free pages left out).
    let db = a.dir.join("index.db");
    let wal = a.dir.join("index.db-wal");
    let raw_bytes = file_len(&db) + file_len(&wal);
    let conn = rusqlite::Connection::open(&db).expect("open index");
    let _: (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("checkpoint");
    let q = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
    let page_size = q("PRAGMA page_size");
    let pages = q("PRAGMA page_count");
    let free_pages = q("PRAGMA freelist_count");
    let segments = q("SELECT count(*) FROM segment");
    let keyframes = q("SELECT count(*) FROM keyframe");
    let held_ms = q("SELECT coalesce(sum(end_wall_ms - start_wall_ms), 0) FROM segment");
    // Bytes per row (pages incl. their free space) of the segment table with its indexes and of
    // the key frame table, and what a steady camera-day (60 s segments, 2 s GOP) would need.
    let mut tables: BTreeMap<String, i64> = BTreeMap::new();
    {
        let mut st = conn
            .prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")
            .expect("dbstat");
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .expect("dbstat");
        for r in rows.flatten() {
            tables.insert(r.0, r.1);
        }
    }
    let seg_table_bytes: i64 = tables
        .iter()
        .filter(|(k, _)| k.starts_with("segment") || k.starts_with("sqlite_autoindex_segment"))
        .map(|(_, v)| v)
        .sum();
    let kf_table_bytes = tables.get("keyframe").copied().unwrap_or(0);
    let per_seg = seg_table_bytes as f64 / segments.max(1) as f64;
    let per_kf = kf_table_bytes as f64 / keyframes.max(1) as f64;
    let period_s =
        (RecorderConfig::new("").segmenter.rotation.period / recorder::TICKS_PER_SEC) as f64;
    let steady_per_day = 86_400.0 / period_s * per_seg + 86_400.0 / 2.0 * per_kf;
    let settled_bytes = file_len(&db) + file_len(&wal);
    let used_bytes = (pages - free_pages) * page_size;
    drop(conn);
    // Camera-days: of the whole recording (the file never shrinks, so it covers retention's
    // deleted rows too), and of what the index still holds.
    let cam_days_recorded = n as f64 * recorded_s / 86_400.0;
    let cam_days_held = held_ms as f64 / 86_400_000.0;

    let rec_ticks = d("rec_writers") + d("rec_syncer") + d("rec_retention");
    let writes = st1.writes - st0.writes;
    let bytes = st1.bytes_written - st0.bytes_written;
    let gops = keys1 - keys0;
    let lag = lag_delta(&st0.lag, &st1.lag);
    let (mbusy, mtotal) = (m1.0 - m0.0, m1.1 - m0.1);
    let audio_json = json!({
        "enabled": a.audio,
        "into_segmenter": audio_in,
        "written": audio_written,
        "skipped": audio_skipped,
    });
    let mut out = json!({
        "bench": "recording",
        "cameras": n,
        "bitrate_kbps": a.bitrate_kbps,
        "stream_kbps_measured": (stream_kbps * 10.0).round() / 10.0,
        "clip_kbps_unpadded": clip_kbps.iter().map(|k| k.round()).collect::<Vec<_>>(),
        "warmup_s": a.warmup,
        "window_s": (dt * 10.0).round() / 10.0,
        "config": cfg_json,
        "cpu_pct_of_one_core": {
            "recorder": pct(rec_ticks),
            "rec_writers": pct(d("rec_writers")),
            "rec_syncer": pct(d("rec_syncer")),
            "rec_retention": pct(d("rec_retention")),
            "feeder": pct(d("feeder")),
            "other_threads": pct(d("other")),
            "process": pct(p1 - p0),
            "machine_busy_pct_of_all_cores": (mbusy as f64 / mtotal.max(1) as f64 * 1000.0).round() / 10.0,
            "machine_iowait_pct_of_all_cores": ((io1 - io0) as f64 / mtotal.max(1) as f64 * 1000.0).round() / 10.0,
        },
        "loadavg_end": load,
        "frames_published_per_s": ((pub1 - pub0) as f64 / dt).round(),
        "gops_per_s": (gops as f64 / dt * 10.0).round() / 10.0,
        "writes_per_s": (writes as f64 / dt * 10.0).round() / 10.0,
        "writes_per_gop": if gops > 0 { (writes as f64 / gops as f64 * 1000.0).round() / 1000.0 } else { 0.0 },
        "mbyte_per_s": (bytes as f64 / dt / 1e6 * 10.0).round() / 10.0,
        "syncs_per_s": ((st1.syncs - st0.syncs) as f64 / dt * 10.0).round() / 10.0,
        "write_errors": st2.write_errors,
        "lag_ms": {
            "samples": lag.counts.iter().sum::<u64>(),
            "p50_le": lag.quantile_ms(0.5),
            "p95_le": lag.quantile_ms(0.95),
            "p99_le": lag.quantile_ms(0.99),
            "max_whole_run": st1.lag.max_ms,
            "bounds": lag.bounds_ms,
            "counts": lag.counts,
        },
        "feeder_late_max_ms": feeder_late_max_ms,
        "dirty_max_mib": dirty_max_kib / 1024,
        "writeback_max_mib": writeback_max_kib / 1024,
        "frames": {
            "published": frames_in,
            "into_segmenter": seg_frames,
            "before_first_key": before_first_key,
            "lost_in_hub_queue": frames_in.saturating_sub(seg_frames + before_first_key),
            "skipped_by_segmenter": skipped,
            "dropped_fragments": dropped_fragments,
            "fragments": fragments,
            "runs": runs,
            "cameras_with_writer": cams_with_writer,
        },
        "retention": {
            "passes": st2.retention.passes,
            "deleted_segments": st2.retention.deleted_segments,
            "deleted_bytes": st2.retention.deleted_bytes,
            "used_bytes_end": st2.used_bytes,
        },
        "index": {
            "raw_bytes_db_plus_wal": raw_bytes,
            "settled_file_bytes": settled_bytes,
            "used_page_bytes": used_bytes,
            "table_bytes": tables,
            "bytes_per_segment_row": per_seg.round(),
            "bytes_per_keyframe_row": (per_kf * 10.0).round() / 10.0,
            "steady_bytes_per_camera_day": steady_per_day.round(),
            "segments": segments,
            "keyframes": keyframes,
            "recorded_s": (recorded_s * 10.0).round() / 10.0,
            "camera_days_recorded": cam_days_recorded,
            "camera_days_held": cam_days_held,
            "raw_bytes_per_camera_day_recorded": (raw_bytes as f64 / cam_days_recorded).round(),
            "settled_bytes_per_camera_day_recorded": (settled_bytes as f64 / cam_days_recorded).round(),
            "used_bytes_per_camera_day_held": if cam_days_held > 0.0 { (used_bytes as f64 / cam_days_held).round() } else { 0.0 },
            "segments_per_camera_day_held": if cam_days_held > 0.0 { (segments as f64 / cam_days_held).round() } else { 0.0 },
            "keyframes_per_camera_day_held": if cam_days_held > 0.0 { (keyframes as f64 / cam_days_held).round() } else { 0.0 },
        },
        "shutdown_ms": shutdown_ms,
    });
    out["audio"] = audio_json;
    out["readers"] = readers_json.unwrap_or_else(|| json!({ "enabled": false }));
    println!("{out}");
}

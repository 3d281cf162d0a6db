//! Helpers shared by the benchmark examples (each example uses only some of them).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base::{CameraId, Error, err};
use media::{Codec, Frame};
use node::exports::{ReadBody, Rendered, Source};
use recorder::index::QueryError;
use recorder::segmenter::{Action, Segmenter, SegmenterConfig};
use recorder::service::Recorder;
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use store::ExportRow;

/// User + system CPU ticks (1/100 s) of this whole process, exited threads included.
pub fn process_cpu_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(") ")?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

/// A field of `/proc/self/status` in KiB (`VmHWM:` is the peak RSS, `VmRSS:` the current).
pub fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Peak RSS of this process (VmHWM), KiB.
pub fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

/// A field of `/proc/meminfo` in KiB.
pub fn meminfo_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// The machine's load averages (1, 5, 15 min) as `/proc/loadavg` writes them.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The value at quantile `p` of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

/// A xorshift64 generator: the benchmarks' random choices, repeatable from `seed` (not 0).
pub fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// A clip's access units as frame templates, each padded with an H.264 filler-data NAL unit
/// (type 12) so the clip averages `kbps` at `fps` (key frames stay larger than delta frames by
/// what the clip has). Returns the templates and the clip's own bitrate (kbit/s).
pub fn padded_clip(path: &Path, kbps: u64, fps: u64) -> (Vec<Frame>, f64) {
    let clip = rtsp_server::ClipSource::from_file(path, Codec::H264).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1);
    });
    let params = Arc::new(clip.params().clone());
    let frames = clip.frames();
    let total: usize = frames.iter().map(|f| f.data.len()).sum();
    let avg = total as f64 / frames.len() as f64;
    let own_kbps = avg * 8.0 * fps as f64 / 1000.0;
    let target = kbps as f64 * 1000.0 / 8.0 / fps as f64;
    // Start code (4) + NAL header (1) + trailing bits (1).
    let pad = (target - avg - 6.0).max(0.0).round() as usize;
    let out = frames
        .iter()
        .map(|f| {
            let mut data = Vec::with_capacity(f.data.len() + pad + 6);
            data.extend_from_slice(&f.data);
            if pad > 0 {
                data.extend_from_slice(&[0, 0, 0, 1, 0x0C]);
                data.resize(data.len() + pad, 0xFF);
                data.push(0x80);
            }
            Frame {
                pts: 0,
                received: SystemTime::UNIX_EPOCH,
                is_key: f.is_key,
                data: data.into(),
                params: params.clone(),
            }
        })
        .collect();
    (out, own_kbps)
}

/// A segment as the recorder's writer would leave it: where it starts and ends (wall ms), its
/// run, its bytes and its key frames (time 90 kHz, byte offset).
pub struct Seg {
    pub start_ms: i64,
    pub end_ms: i64,
    pub run_id: i64,
    pub bytes: Vec<u8>,
    pub keyframes: Vec<(i64, u64)>,
}

/// Pushes `frames` through the recorder's own segmenter (default config: 60 s segments, fMP4
/// init, `prft`+`moof`+`mdat` per GOP) and hands every completed segment to `each`, in order.
/// The last one, still open, is left out.
pub fn record_segments(frames: impl Iterator<Item = Frame>, mut each: impl FnMut(Seg)) {
    let mut seg = Segmenter::new("bench", SegmenterConfig::default());
    let mut out = Vec::new();
    let mut open: Option<Seg> = None;
    for f in frames {
        seg.push(f, &mut out);
        for a in out.drain(..) {
            match a {
                Action::Open {
                    start_90k,
                    run_id,
                    init,
                    ..
                } => {
                    if let Some(s) = open.take() {
                        each(s);
                    }
                    open = Some(Seg {
                        start_ms: start_90k / 90,
                        end_ms: start_90k / 90,
                        run_id,
                        bytes: init,
                        keyframes: Vec::new(),
                    });
                }
                Action::Write(f) => {
                    let s = open.as_mut().expect("an open segment");
                    if f.key {
                        s.keyframes.push((f.start_90k, s.bytes.len() as u64));
                    }
                    s.bytes.extend_from_slice(&f.bytes);
                    s.end_ms = f.end_90k / 90;
                }
                Action::Close { end_90k } => {
                    if let Some(mut s) = open.take() {
                        s.end_ms = end_90k / 90;
                        each(s);
                    }
                }
            }
        }
    }
}

/// Index rows of a complete segment (and its key frames) as the writer leaves them, at `path`
/// (relative to the recordings directory); returns the segment's id.
pub fn insert_segment(tx: &rusqlite::Transaction, camera: &str, path: &str, s: &Seg) -> i64 {
    tx.prepare_cached(
        "INSERT INTO segment (camera_id, run_id, start_90k, end_90k, start_wall_ms, \
         end_wall_ms, bytes, path, codec, params_version, state) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'h264', 0, 'complete')",
    )
    .expect("prepare")
    .execute(rusqlite::params![
        camera,
        s.run_id,
        s.start_ms * 90,
        s.end_ms * 90,
        s.start_ms,
        s.end_ms,
        s.bytes.len() as i64,
        path
    ])
    .expect("insert");
    let id = tx.last_insert_rowid();
    let mut kf = tx
        .prepare_cached(
            "INSERT INTO keyframe (segment_id, time_90k, byte_offset) VALUES (?1, ?2, ?3)",
        )
        .expect("prepare");
    for (t, off) in &s.keyframes {
        kf.execute(rusqlite::params![id, t, *off as i64])
            .expect("keyframe");
    }
    id
}

/// Exports of a recorder's recordings, rendered as the node does (`impl Source for
/// node::Services`): `recorder::playback::mp4` of `node::exports::mp4_request`. The catalog is
/// left out (recordings of unknown cameras stay exportable, the name is the camera id).
pub struct RecorderSource(pub Arc<Recorder>);

impl Source for RecorderSource {
    fn check(&self, camera_id: &CameraId, start_ms: i64, end_ms: i64) -> Result<(), QueryError> {
        node::exports::check_recorded(&self.0, camera_id, start_ms, end_ms)
    }

    fn render(&self, job: &ExportRow) -> Result<Rendered, QueryError> {
        let req = node::exports::mp4_request(job, &job.camera_id);
        let m = recorder::playback::mp4(&self.0, &req, Instant::now())?;
        Ok(Rendered {
            len: m.body.len(),
            frames: m.video_frames,
            has_audio: m.has_audio,
            camera_name: job.camera_id.clone(),
            agency: None,
            body: Box::new(m.body) as Box<dyn ReadBody>,
        })
    }
}

/// An exports manager (`node::exports::Exports`, the node's job manager) writing into `dir`,
/// rendering from `source`, set up as `vantage::Node` does: its job table in the management
/// database (`dir/vantage.db`), opened first by the audit log (which puts it in WAL mode), and
/// export events audited.
pub fn exports_manager(
    dir: &Path,
    max_concurrent: usize,
    source: &Arc<dyn Source>,
) -> Result<Arc<node::exports::Exports>, Error> {
    std::fs::create_dir_all(dir).map_err(|e| err!(Internal, "{e}"))?;
    let db = dir.join("vantage.db");
    let audit = store::AuditLog::open(&db)?;
    let ex = node::exports::Exports::open(
        store::ExportStore::open(&db)?,
        node::exports::ExportsSettings {
            dir: dir.join("out"),
            max_concurrent,
            max_span: std::time::Duration::from_secs(4 * 3600),
            retention: std::time::Duration::from_secs(86_400),
            max_write_rate: 0,
        },
        evidence::SigningKey::from_seed(&[7; 32]),
        Arc::new(base::RealClocks),
        Some(audit),
    )?;
    ex.attach(Arc::downgrade(source));
    Ok(ex)
}

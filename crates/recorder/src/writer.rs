//! Writer threads: the I/O side of recording (design 0006, "Write path").
//!
//! Each writer thread owns a share of the recorded cameras. Every `poll` it drains each camera's
//! hub subscription into its [`Segmenter`] and executes the actions:
//! - the file of a segment is created when its first fragment is ready, and the init segment and
//!   that fragment go out in one `write`; every later GOP is one `write`;
//! - the index row is inserted (`writing`) before the file is created, and the segment's progress
//!   (end, bytes, key frames) is committed for all cameras of the thread in one transaction per poll;
//! - a closed segment goes to the syncer thread, which calls `fdatasync` and only then marks the
//!   row `complete`. Open files are also synced every `sync_interval`.
//!
//! Nothing here blocks the async runtime: these are plain threads, and a slow disk shows up as
//! frames skipped by the hub's bounded queue (counted per camera), never as backpressure on
//! ingest or viewers.

use crate::index::{Index, Keyframe, NewSegment, Progress};
use crate::segmenter::{
    Action, FragmentOut, Segmenter, SegmenterConfig, SegmenterStats, segment_init,
};
use crate::{TICKS_PER_MS, ticks_to_ms, wall_90k};
use base::{Clocks, Error, ErrorKind, ResultExt};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Tuning of the writer threads.
#[derive(Clone, Debug)]
pub struct WriterConfig {
    pub dir: PathBuf,
    pub segmenter: SegmenterConfig,
    /// How often each thread drains its cameras' queues.
    pub poll: Duration,
    /// Open segments are synced at least this often (the bound on what a power cut loses).
    pub sync_interval: Duration,
}

/// Frame-arrival-to-disk lag histogram: from the arrival of the frame that completed a GOP to
/// the end of the `write` of that GOP's fragment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LagHistogram {
    /// Upper bounds in ms of each bucket; the last bucket is open.
    pub bounds_ms: Vec<u64>,
    pub counts: Vec<u64>,
    pub max_ms: u64,
}

impl LagHistogram {
    /// Fine where the 20 ms poll puts most samples, coarse in the tail.
    const BOUNDS: [u64; 20] = [
        1, 2, 5, 10, 15, 20, 25, 30, 40, 50, 75, 100, 150, 200, 300, 500, 1000, 2000, 5000, 10_000,
    ];

    fn new() -> Self {
        LagHistogram {
            bounds_ms: Self::BOUNDS.to_vec(),
            counts: vec![0; Self::BOUNDS.len() + 1],
            max_ms: 0,
        }
    }

    fn add(&mut self, ms: u64) {
        let i = Self::BOUNDS.partition_point(|&b| b < ms);
        self.counts[i] += 1;
        self.max_ms = self.max_ms.max(ms);
    }

    /// The bucket bound at or above quantile `q` (0..1), `None` without samples.
    pub fn quantile_ms(&self, q: f64) -> Option<u64> {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return None;
        }
        let want = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return Some(self.bounds_ms.get(i).copied().unwrap_or(self.max_ms));
            }
        }
        Some(self.max_ms)
    }
}

/// What a recorded camera is doing, for the API.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CameraRecording {
    pub segmenter: SegmenterStats,
    /// Fragments (GOPs) lost because a write failed (disk full, I/O error).
    pub dropped_fragments: u64,
    /// Frames the hub dropped because this recorder fell behind (its queue overflowed).
    pub queue_dropped_frames: u64,
    pub bytes_written: u64,
    /// Start of the open segment (ms), if a file is open.
    pub open_since_ms: Option<i64>,
    /// A segment is open or about to be (its first GOP is being collected).
    pub in_segment: bool,
    pub last_write_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// Counters shared by the writer threads, the syncer and the API.
#[derive(Default)]
pub struct Shared {
    pub cameras: Mutex<BTreeMap<String, CameraRecording>>,
    pub lag: Mutex<LagHistogram>,
    pub writes: AtomicU64,
    pub bytes: AtomicU64,
    pub syncs: AtomicU64,
    pub write_errors: AtomicU64,
}

impl Shared {
    pub fn new() -> Arc<Self> {
        Arc::new(Shared {
            lag: Mutex::new(LagHistogram::new()),
            ..Shared::default()
        })
    }
}

/// A camera's directory name under the recordings directory: the camera id when it is made of
/// `[A-Za-z0-9._-]` (and is not `.`/`..`), otherwise a sanitized form plus a hash of the id.
pub fn camera_dir(camera_id: &str) -> String {
    let clean = !camera_id.is_empty()
        && camera_id.len() <= 120
        && camera_id != "."
        && camera_id != ".."
        && camera_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    if clean {
        return camera_id.to_owned();
    }
    let mut s: String = camera_id
        .chars()
        .take(60)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    s.push_str(&format!("~{:016x}", crate::rotation::fnv1a64(camera_id)));
    s
}

/// `YYYYMMDD` (UTC) of a time in ms since the epoch.
pub fn day_dir(ms: i64) -> String {
    // `YYYY-MM-DDThh:mm:ss.mmmZ`: the date without its dashes.
    base::clock::rfc3339_ms(ms)
        .chars()
        .take(10)
        .filter(|c| *c != '-')
        .collect()
}

/// A closed segment on its way to `complete`.
pub(crate) struct Closed {
    pub file: Arc<File>,
    pub dir: PathBuf,
    pub segment_id: i64,
    pub end_90k: i64,
    pub end_wall_ms: i64,
    pub bytes: u64,
    pub camera_id: String,
    /// Key frames written since the last commit.
    pub keyframes: Vec<Keyframe>,
}

pub(crate) enum SyncJob {
    /// Sync an open file (periodic).
    Sync(Arc<File>),
    /// Sync and complete a closed segment.
    Close(Closed),
}

pub(crate) enum Command {
    Add(String, hub::Subscriber),
    Remove(String),
    Shutdown,
}

struct Pending {
    /// The start the init segment was built for.
    start_90k: i64,
    run_id: i64,
    codec: &'static str,
    params: Arc<media::VideoParams>,
    audio: Option<Arc<media::AudioParams>>,
    init: Vec<u8>,
}

struct Open {
    file: Arc<File>,
    abs_dir: PathBuf,
    rel_path: String,
    /// The init segment, until the first write.
    init: Option<Vec<u8>>,
    segment_id: i64,
    bytes: u64,
    end_90k: i64,
    start_ms: i64,
    last_sync: Instant,
    progress: Option<Progress>,
}

struct Camera {
    id: String,
    dir: String,
    sub: hub::Subscriber,
    seg: Segmenter,
    pending: Option<Pending>,
    open: Option<Open>,
    dropped: u64,
    /// A fragment was lost: drop fragments until one starts with a key frame.
    need_key: bool,
    bytes: u64,
    last_write_ms: Option<i64>,
    last_error: Option<String>,
}

/// What a writer thread needs.
pub(crate) struct Ctx {
    pub cfg: WriterConfig,
    pub index: Arc<Index>,
    pub shared: Arc<Shared>,
    pub clocks: Arc<dyn Clocks>,
    pub sync_tx: mpsc::Sender<SyncJob>,
    /// Wakes the retention thread (a write failed: maybe the disk is full).
    pub retention_wake: Arc<dyn Fn() + Send + Sync>,
}

/// The body of one writer thread.
pub(crate) fn run(ctx: Ctx, commands: mpsc::Receiver<Command>) {
    let mut cams: Vec<Camera> = Vec::new();
    let mut actions = Vec::new();
    let mut closed = Vec::new();
    // Progress the index could not take yet (its volume full, say): retried with the next commit.
    let mut unsaved: Vec<Progress> = Vec::new();
    let mut status_at = ctx.clocks.monotonic();
    loop {
        loop {
            let next = if cams.is_empty() && unsaved.is_empty() {
                // Idle: nothing to poll, so wait for a command (not on the clock: an idle writer
                // neither wakes up nor moves a simulated clock).
                commands
                    .recv()
                    .map_err(|_| mpsc::TryRecvError::Disconnected)
            } else {
                commands.try_recv()
            };
            match next {
                Ok(Command::Add(id, sub)) => {
                    if let Some(i) = cams.iter().position(|c| c.id == id) {
                        let mut old = cams.swap_remove(i);
                        finish(&ctx, &mut old, &mut actions, &mut closed);
                    }
                    cams.push(Camera {
                        dir: camera_dir(&id),
                        seg: Segmenter::new(&id, ctx.cfg.segmenter),
                        id,
                        sub,
                        pending: None,
                        open: None,
                        dropped: 0,
                        need_key: false,
                        bytes: 0,
                        last_write_ms: None,
                        last_error: None,
                    });
                }
                Ok(Command::Remove(id)) => {
                    if let Some(i) = cams.iter().position(|c| c.id == id) {
                        let mut c = cams.swap_remove(i);
                        finish(&ctx, &mut c, &mut actions, &mut closed);
                        ctx.shared.cameras.lock().remove(&id);
                    }
                }
                Ok(Command::Shutdown) | Err(mpsc::TryRecvError::Disconnected) => {
                    for c in &mut cams {
                        finish(&ctx, c, &mut actions, &mut closed);
                    }
                    commit(&ctx, &mut cams, &mut closed, &mut unsaved);
                    publish_status(&ctx, &cams);
                    return;
                }
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
        let now = ctx.clocks.realtime();
        for c in &mut cams {
            // Audio first: the audio of a GOP then is in the segmenter when the key frame that
            // ends the GOP is pushed (see the segmenter's module documentation).
            c.seg.set_audio(c.sub.channel().audio_params());
            while let Some(f) = c.sub.try_recv_audio() {
                c.seg.push_audio(f);
            }
            while let Some(f) = c.sub.try_recv() {
                c.seg.push(f, &mut actions);
            }
            c.seg.tick(now, &mut actions);
            execute(&ctx, c, &mut actions, &mut closed);
        }
        commit(&ctx, &mut cams, &mut closed, &mut unsaved);
        let now = ctx.clocks.monotonic();
        if now.saturating_duration_since(status_at) >= STATUS_EVERY {
            publish_status(&ctx, &cams);
            status_at = now;
        }
        // Through the clocks, so tests run the writer on simulated time.
        ctx.clocks.sleep_blocking(ctx.cfg.poll);
    }
}

/// Log the first failure and then every thousandth batch, not every poll.
fn unsaved_warn(n: usize) -> bool {
    static FAILURES: AtomicU64 = AtomicU64::new(0);
    let k = FAILURES.fetch_add(1, Ordering::Relaxed);
    n > 0 && k.is_multiple_of(1000)
}

/// Ends a camera's run and closes its segment (removal, shutdown).
fn finish(ctx: &Ctx, c: &mut Camera, actions: &mut Vec<Action>, closed: &mut Vec<Closed>) {
    c.seg.finish(actions);
    execute(ctx, c, actions, closed);
}

/// Commits the progress of every camera's open segment, then hands closed segments to the
/// syncer (in this order, so a segment's last progress is in before it is completed).
fn commit(ctx: &Ctx, cams: &mut [Camera], closed: &mut Vec<Closed>, unsaved: &mut Vec<Progress>) {
    let mut batch: Vec<Progress> = std::mem::take(unsaved);
    batch.extend(
        cams.iter_mut()
            .filter_map(|c| c.open.as_mut().and_then(|o| o.progress.take())),
    );
    batch.extend(closed.iter_mut().map(|c| Progress {
        segment_id: c.segment_id,
        end_90k: c.end_90k,
        end_wall_ms: c.end_wall_ms,
        bytes: c.bytes,
        keyframes: std::mem::take(&mut c.keyframes),
    }));
    if let Err(e) = ctx.index.record_progress(&batch) {
        if unsaved_warn(batch.len()) {
            tracing::error!(
                "media index: recording progress of {} segments (kept, retried): {e}",
                batch.len()
            );
        }
        // Bounded: past this, the oldest progress goes (recovery rebuilds it from the files).
        const MAX_UNSAVED: usize = 100_000;
        let excess = batch.len().saturating_sub(MAX_UNSAVED);
        batch.drain(..excess);
        *unsaved = batch;
    }
    for c in closed.drain(..) {
        let _ = ctx.sync_tx.send(SyncJob::Close(c));
    }
}

/// How often a writer thread publishes its cameras' status (not every 20 ms poll: it locks the
/// shared map and every camera's channel).
const STATUS_EVERY: Duration = Duration::from_millis(250);

/// Publishes the cameras' status for the API.
fn publish_status(ctx: &Ctx, cams: &[Camera]) {
    let mut status = ctx.shared.cameras.lock();
    for c in cams.iter() {
        if !status.contains_key(&c.id) {
            status.insert(c.id.clone(), CameraRecording::default());
        }
        let Some(e) = status.get_mut(&c.id) else {
            continue;
        };
        e.segmenter = c.seg.stats();
        e.dropped_fragments = c.dropped;
        e.queue_dropped_frames = c.sub.stats().dropped;
        e.bytes_written = c.bytes;
        e.open_since_ms = c.open.as_ref().map(|o| o.start_ms);
        e.in_segment = c.open.is_some() || c.pending.is_some();
        e.last_write_ms = c.last_write_ms;
        e.last_error.clone_from(&c.last_error);
    }
}

fn execute(ctx: &Ctx, c: &mut Camera, actions: &mut Vec<Action>, closed: &mut Vec<Closed>) {
    for a in actions.drain(..) {
        match a {
            Action::Open {
                start_90k,
                run_id,
                codec,
                params,
                audio,
                init,
            } => {
                close(c, closed);
                c.pending = Some(Pending {
                    start_90k,
                    run_id,
                    codec,
                    params,
                    audio,
                    init,
                });
            }
            Action::Write(f) => write(ctx, c, f),
            Action::Close { end_90k } => {
                if let Some(o) = &mut c.open {
                    o.end_90k = o.end_90k.max(end_90k);
                }
                close(c, closed);
                c.pending = None;
            }
        }
    }
    let now = ctx.clocks.monotonic();
    if let Some(o) = &mut c.open
        && now.saturating_duration_since(o.last_sync) >= ctx.cfg.sync_interval
    {
        o.last_sync = now;
        let _ = ctx.sync_tx.send(SyncJob::Sync(o.file.clone()));
    }
}

fn close(c: &mut Camera, closed: &mut Vec<Closed>) {
    if let Some(o) = c.open.take() {
        closed.push(Closed {
            file: o.file,
            dir: o.abs_dir,
            segment_id: o.segment_id,
            end_90k: o.end_90k,
            end_wall_ms: ticks_to_ms(o.end_90k),
            bytes: o.bytes,
            camera_id: c.id.clone(),
            keyframes: o.progress.map(|p| p.keyframes).unwrap_or_default(),
        });
    }
}

fn write(ctx: &Ctx, c: &mut Camera, f: FragmentOut) {
    if c.need_key && !f.key {
        // A GOP before this one was lost: a fragment that does not start with a key frame
        // could not be decoded, so wait for the next key frame.
        c.dropped += 1;
        return;
    }
    if c.open.is_none() {
        let Some(p) = c.pending.take() else {
            // No segment to write into: its file could not be created. The GOP is lost.
            c.dropped += 1;
            return;
        };
        match create(ctx, c, &p, f.start_90k) {
            Ok(mut o) => {
                if f.start_90k != p.start_90k {
                    // The segment's first fragment was lost: the file starts at this fragment,
                    // whose media time (counted from the segment's start) is not 0, so its init
                    // segment gets an edit list that presents it from 0.
                    let first = u64::try_from(f.start_90k - p.start_90k).unwrap_or(0);
                    match segment_init(&p.params, p.audio.as_deref(), f.start_90k, first) {
                        Ok(init) => o.init = Some(init),
                        Err(e) => tracing::warn!("camera {}: init segment: {e}", c.id),
                    }
                }
                c.open = Some(o)
            }
            Err(e) => {
                // Try again with the next GOP.
                c.pending = Some(p);
                c.dropped += 1;
                c.need_key = true;
                fail(ctx, c, e);
                return;
            }
        }
    }
    let Some(o) = &mut c.open else { return };
    let start_len = o.bytes;
    // A new file gets its init segment in the same write as its first fragment.
    let r = match &o.init {
        Some(init) => {
            let mut buf = Vec::with_capacity(init.len() + f.bytes.len());
            buf.extend_from_slice(init);
            buf.extend_from_slice(&f.bytes);
            (&*o.file).write_all(&buf).map(|()| buf.len())
        }
        None => (&*o.file).write_all(&f.bytes).map(|()| f.bytes.len()),
    };
    let n = match r {
        Ok(n) => n as u64,
        Err(e) => {
            // Cut back to the last complete fragment, so the file never holds a torn GOP.
            let _ = o.file.set_len(start_len);
            let e = Error::new(
                ErrorKind::Unavailable,
                format!("camera {}: writing to {}: {e}", c.id, o.rel_path),
            );
            c.dropped += 1;
            c.need_key = true;
            fail(ctx, c, e);
            return;
        }
    };
    let frag_offset = start_len + n - f.bytes.len() as u64;
    o.init = None;
    o.bytes += n;
    o.end_90k = f.end_90k;
    c.need_key = false;
    let p = o.progress.get_or_insert_with(|| Progress {
        segment_id: o.segment_id,
        ..Progress::default()
    });
    p.end_90k = f.end_90k;
    p.end_wall_ms = ticks_to_ms(f.end_90k);
    p.bytes = o.bytes;
    if f.key {
        p.keyframes.push(Keyframe {
            time_90k: f.start_90k,
            byte_offset: frag_offset,
        });
    }
    let now = ctx.clocks.realtime();
    c.bytes += n;
    c.last_write_ms = Some(ticks_to_ms(wall_90k(now)));
    c.last_error = None;
    ctx.shared.writes.fetch_add(1, Ordering::Relaxed);
    ctx.shared.bytes.fetch_add(n, Ordering::Relaxed);
    let lag_ms = (wall_90k(now) - f.completed_recv_90k).max(0) / TICKS_PER_MS;
    ctx.shared.lag.lock().add(lag_ms as u64);
}

/// Creates a segment: the index row first (`writing`), then the file. A name already taken (on
/// disk or in the index) gets a suffix.
fn create(ctx: &Ctx, c: &Camera, p: &Pending, start_90k: i64) -> Result<Open, Error> {
    let start_ms = ticks_to_ms(start_90k);
    let rel_dir = format!("{}/{}", c.dir, day_dir(start_ms));
    let abs_dir = ctx.cfg.dir.join(&rel_dir);
    std::fs::create_dir_all(&abs_dir).err_kind(
        ErrorKind::Unavailable,
        format_args!("camera {}: creating {}", c.id, abs_dir.display()),
    )?;
    for attempt in 0..100 {
        let name = match attempt {
            0 => format!("{start_90k}.mp4"),
            n => format!("{start_90k}-{n}.mp4"),
        };
        let abs = abs_dir.join(&name);
        if abs.exists() {
            continue;
        }
        let rel_path = format!("{rel_dir}/{name}");
        let id = match ctx.index.begin_segment(&NewSegment {
            camera_id: c.id.clone(),
            run_id: p.run_id,
            start_90k,
            start_wall_ms: start_ms,
            path: rel_path.clone(),
            codec: p.codec.to_owned(),
            params_version: i64::from(p.params.version),
            // RFC 6381 `codecs` list: the video's, then the audio's if recorded.
            codec_string: match &p.audio {
                Some(a) => format!("{},{}", p.params.rfc6381, a.rfc6381),
                None => p.params.rfc6381.clone(),
            },
            width: p.params.width,
            height: p.params.height,
        }) {
            Ok(id) => id,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e.context(format_args!("camera {}", c.id))),
        };
        let file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&abs)
        {
            Ok(f) => f,
            Err(e) => {
                let _ = ctx.index.delete_segment(id);
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("camera {}: creating {rel_path}: {e}", c.id),
                ));
            }
        };
        return Ok(Open {
            file: Arc::new(file),
            abs_dir,
            rel_path,
            segment_id: id,
            init: Some(p.init.clone()),
            bytes: 0,
            end_90k: start_90k,
            start_ms,
            last_sync: ctx.clocks.monotonic(),
            progress: None,
        });
    }
    Err(Error::new(
        ErrorKind::AlreadyExists,
        format!("camera {}: no free name for a segment at {start_90k}", c.id),
    ))
}

fn fail(ctx: &Ctx, c: &mut Camera, e: Error) {
    let first = c.last_error.is_none();
    c.last_error = Some(e.to_string());
    ctx.shared.write_errors.fetch_add(1, Ordering::Relaxed);
    if first {
        tracing::warn!("recording: {e}");
    }
    (ctx.retention_wake)();
}

/// The body of the syncer thread: `fdatasync` of open files (periodic) and of closed segments,
/// which become `complete` in the index only after their bytes are on disk.
pub(crate) fn run_syncer(index: Arc<Index>, shared: Arc<Shared>, jobs: mpsc::Receiver<SyncJob>) {
    // Segments whose completion failed (the index could not be written, e.g. its volume was
    // full): retried every second, so retention can delete them once they are `complete`.
    let mut retry: Vec<Closed> = Vec::new();
    loop {
        match jobs.recv_timeout(Duration::from_secs(1)) {
            Ok(SyncJob::Sync(f)) => {
                if f.sync_data().is_ok() {
                    shared.syncs.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(SyncJob::Close(c)) => {
                if let Some(c) = complete(&index, &shared, c) {
                    retry.push(c);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                for c in retry.drain(..) {
                    let _ = complete(&index, &shared, c);
                }
                return;
            }
        }
        if !retry.is_empty() {
            let pending = std::mem::take(&mut retry);
            retry = pending
                .into_iter()
                .filter_map(|c| complete(&index, &shared, c))
                .collect();
        }
    }
}

/// Syncs and completes a closed segment; gives it back if the index could not be updated.
fn complete(index: &Index, shared: &Shared, c: Closed) -> Option<Closed> {
    if c.bytes == 0 {
        // Created, but its first write failed: nothing to keep.
        if let Ok(Some(s)) = index.segment(c.segment_id) {
            let _ = std::fs::remove_file(c.dir.join(file_name(&s.path)));
        }
        let _ = index.delete_segment(c.segment_id);
        return None;
    }
    if let Err(e) = c.file.sync_data() {
        // The row stays `writing`: recovery at the next start checks the file.
        tracing::error!(
            "camera {}: syncing segment {}: {e}",
            c.camera_id,
            c.segment_id
        );
        return None;
    }
    shared.syncs.fetch_add(1, Ordering::Relaxed);
    sync_dir(&c.dir);
    match index.complete_segment(c.segment_id, c.end_90k, c.end_wall_ms, c.bytes) {
        Ok(()) => None,
        Err(e) if e.kind() == ErrorKind::Internal => {
            tracing::warn!(
                "camera {}: completing segment (will retry): {e}",
                c.camera_id
            );
            Some(c)
        }
        Err(e) => {
            tracing::error!("camera {}: completing segment: {e}", c.camera_id);
            None
        }
    }
}

fn file_name(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

/// Makes a directory's entries durable (a new file's name, a removal).
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_directories_are_utc_calendar_days() {
        assert_eq!(day_dir(0), "19700101");
        assert_eq!(day_dir(-1), "19691231");
        assert_eq!(day_dir(1_709_164_800_000), "20240229"); // leap day, 00:00 UTC
        assert_eq!(day_dir(1_709_251_199_999), "20240229"); // its last ms
        assert_eq!(day_dir(1_709_251_200_000), "20240301");
        assert_eq!(day_dir(1_795_219_200_000), "20261121");
        assert_eq!(day_dir(1_795_305_599_999), "20261121");
        assert_eq!(day_dir(1_795_305_600_000), "20261122");
        assert_eq!(day_dir(4_107_542_400_000), "21000301"); // 2100 is not a leap year
    }

    #[test]
    fn camera_directories_are_the_id_or_a_safe_unique_form() {
        assert_eq!(camera_dir("cam-001_a.b"), "cam-001_a.b");
        assert_eq!(
            camera_dir("026ef2de-5914-438a-b0f5-5c403d236f29"),
            "026ef2de-5914-438a-b0f5-5c403d236f29"
        );
        for bad in ["", ".", "..", "a/b", "../etc", "cam 1", "كاميرا"] {
            let d = camera_dir(bad);
            assert!(
                !d.contains('/') && d != "." && d != ".." && !d.is_empty(),
                "{bad:?} → {d}"
            );
            assert!(d.contains('~'), "{bad:?} → {d}");
        }
        // Ids that sanitize alike stay apart.
        assert_ne!(camera_dir("a/b"), camera_dir("a b"));
    }

    #[test]
    fn lag_quantiles_come_from_the_buckets() {
        let mut h = LagHistogram::new();
        assert_eq!(h.quantile_ms(0.5), None);
        for ms in [3, 12, 14, 18, 19, 22, 45, 900] {
            h.add(ms);
        }
        // The 4th of 8 samples is 18 ms: the 15–20 ms bucket.
        assert_eq!(h.quantile_ms(0.5), Some(20));
        assert_eq!(h.quantile_ms(0.25), Some(15));
        assert_eq!(h.quantile_ms(0.99), Some(1000));
        assert_eq!(h.max_ms, 900);
        h.add(60_000);
        assert_eq!(
            h.quantile_ms(1.0),
            Some(60_000),
            "the open bucket reports the max"
        );
    }
}

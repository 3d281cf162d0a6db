//! The recording service of a node: the media index, start-up recovery, writer threads, the
//! syncer and the retention thread (design 0006).
//!
//! Threads:
//! - `rec-writer-N` (`writer_threads`, cameras spread by a hash of their id): hub → segmenter →
//!   files, progress into the index once per poll;
//! - `rec-syncer`: `fdatasync` of closed segments before they become `complete`, and of open
//!   ones every `sync_interval`;
//! - `rec-retention`: every second a `statvfs` of the recordings volume; a retention pass every
//!   `retention_interval`, at once when free space is below `min_free`, and when a writer reports
//!   a failed write. Every deletion goes through the index (mark `deleting`, unlink, delete row);
//!   nothing walks the directory tree.

use crate::index::{Index, RecordingSetting};
use crate::pins::Pins;
use crate::recovery::{self, RecoveryReport};
use crate::retention::{self, Policy, Reason, Usage};
use crate::segmenter::SegmenterConfig;
use crate::writer::{self, Command, Ctx, LagHistogram, Shared, SyncJob, WriterConfig};
use base::{CameraId, Clocks, Error, ErrorKind, ResultExt};
use hub::{Channel, Hub};
use parking_lot::{Condvar, Mutex};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// An amount of the recordings volume.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Budget {
    Bytes(u64),
    /// Percent of the volume's size.
    Percent(f64),
}

impl Budget {
    pub fn resolve(self, volume_bytes: u64) -> u64 {
        match self {
            Budget::Bytes(b) => b,
            Budget::Percent(p) => ((volume_bytes as f64) * p.clamp(0.0, 100.0) / 100.0) as u64,
        }
    }
}

/// Configuration of the recording service.
#[derive(Clone, Debug)]
pub struct RecorderConfig {
    pub dir: PathBuf,
    pub segmenter: SegmenterConfig,
    pub writer_threads: usize,
    pub poll: Duration,
    pub sync_interval: Duration,
    /// Cap on the bytes of recordings.
    pub max_usage: Budget,
    /// Emergency deletion keeps at least this much of the volume free.
    pub min_free: Budget,
    pub retention_interval: Duration,
    /// Retention of cameras without their own setting; 0 keeps by age forever.
    pub default_retention_days: u32,
    /// Recovery checks the files of each camera's segments of this last stretch.
    pub verify_window: Duration,
    /// A reader's pin protects its segments from retention for at most this long (design 0008,
    /// "Pins").
    pub max_pin: Duration,
}

impl RecorderConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RecorderConfig {
            dir: dir.into(),
            segmenter: SegmenterConfig::default(),
            writer_threads: 2,
            poll: Duration::from_millis(20),
            sync_interval: Duration::from_secs(10),
            max_usage: Budget::Percent(90.0),
            min_free: Budget::Percent(2.0),
            retention_interval: Duration::from_secs(60),
            default_retention_days: 90,
            verify_window: Duration::from_secs(2 * 3600),
            max_pin: Duration::from_secs(3600),
        }
    }
}

/// Size and free space of a filesystem.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsUsage {
    pub total_bytes: u64,
    /// Available to this (unprivileged) process.
    pub free_bytes: u64,
}

/// `statvfs` of the filesystem holding `path`.
pub fn fs_usage(path: &Path) -> Result<FsUsage, Error> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).err_kind(
        ErrorKind::InvalidArgument,
        format_args!("{}", path.display()),
    )?;
    // SAFETY: `c` is a valid NUL-terminated string and `st` a properly sized out-parameter that
    // statvfs fully initializes when it returns 0.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "statvfs {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ),
        ));
    }
    let frsize = st.f_frsize as u64;
    Ok(FsUsage {
        total_bytes: (st.f_blocks as u64).saturating_mul(frsize),
        free_bytes: (st.f_bavail as u64).saturating_mul(frsize),
    })
}

/// A camera to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordSpec {
    /// The camera (its channel is the camera's main stream).
    pub camera_id: CameraId,
    pub retention_days: u32,
}

/// Totals of retention since start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionStats {
    pub passes: u64,
    pub emergency_passes: u64,
    pub deleted_segments: u64,
    pub deleted_bytes: u64,
    pub deleted_by_age: u64,
    pub deleted_by_budget: u64,
    pub deleted_in_emergency: u64,
    /// From the last pass: segments a pass wanted but locks kept, and bytes it could not free.
    pub locked_kept: u64,
    /// From the last pass: segments a pass wanted but readers (playback, exports) pinned.
    pub pinned_kept: u64,
    /// Since start: deletions put off because a reader pinned the segment.
    pub skipped_pinned: u64,
    pub shortfall_bytes: u64,
    pub last_pass_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// What `GET /api/v1/storage` shows.
#[derive(Clone, Debug, Default)]
pub struct StorageStatus {
    pub dir: PathBuf,
    pub volume: FsUsage,
    pub max_usage_bytes: u64,
    pub min_free_bytes: u64,
    pub used_bytes: u64,
    pub cameras: Vec<CameraStorage>,
    pub writes: u64,
    pub bytes_written: u64,
    pub syncs: u64,
    pub write_errors: u64,
    pub lag: LagHistogram,
    pub retention: RetentionStats,
    pub recovery: RecoveryReport,
}

/// One camera in [`StorageStatus`].
#[derive(Clone, Debug, Default)]
pub struct CameraStorage {
    pub camera_id: CameraId,
    pub segments: u64,
    pub bytes: u64,
    pub oldest_ms: Option<i64>,
    pub newest_ms: Option<i64>,
    pub recording: bool,
    pub retention_days: u32,
    pub writer: Option<writer::CameraRecording>,
}

#[derive(Default)]
struct CleanerState {
    stop: bool,
    wake: bool,
    /// Recording started: an idle retention thread looks again.
    recheck: bool,
}

struct Writers {
    senders: Vec<mpsc::Sender<Command>>,
    handles: Vec<JoinHandle<()>>,
    syncer: Option<JoinHandle<()>>,
    cleaner: Option<JoinHandle<()>>,
}

/// The recording service. See the module documentation.
pub struct Recorder {
    cfg: RecorderConfig,
    index: Arc<Index>,
    /// Segments readers hold; retention skips them (design 0008, "Pins").
    pins: Arc<Pins>,
    shared: Arc<Shared>,
    clocks: Arc<dyn Clocks>,
    /// Recorded channels and their retention.
    recording: Mutex<HashMap<String, (Arc<Channel>, u32)>>,
    /// Retention of cameras known but not recording now (their recordings age out too).
    retention: Mutex<HashMap<String, u32>>,
    retention_stats: Mutex<RetentionStats>,
    /// The retention thread's flags, and its wake-up while idle.
    cleaner: (Mutex<CleanerState>, Condvar),
    recovery: RecoveryReport,
    threads: Mutex<Writers>,
    /// The recording settings stored in the index, kept in memory: the node and the API read
    /// them on every catalog change and camera listing without touching SQLite.
    settings: Mutex<Vec<RecordingSetting>>,
}

impl Recorder {
    /// Opens (creating) the recordings directory and its index, recovers it, and starts the
    /// threads.
    pub fn start(cfg: RecorderConfig, clocks: Arc<dyn Clocks>) -> Result<Arc<Recorder>, Error> {
        std::fs::create_dir_all(&cfg.dir).err_kind(
            ErrorKind::Unavailable,
            format_args!("creating recordings directory {}", cfg.dir.display()),
        )?;
        let now_ms = base::clock::unix_ms(clocks.realtime());
        let index = Arc::new(Index::open(&cfg.dir.join("index.db"), now_ms)?);
        let t0 = Instant::now();
        let recovery = recovery::recover(
            &cfg.dir,
            &index,
            i64::try_from(cfg.verify_window.as_millis()).unwrap_or(i64::MAX),
        )
        .map_err(|e| e.context("recovering recordings"))?;
        tracing::info!(
            ?recovery,
            elapsed_ms = t0.elapsed().as_millis() as u64,
            "recordings recovered"
        );
        let settings = index.recording_settings()?;
        let shared = Shared::new();
        let (sync_tx, sync_rx) = mpsc::channel::<SyncJob>();
        let rec = Arc::new(Recorder {
            cfg: cfg.clone(),
            index: index.clone(),
            shared: shared.clone(),
            clocks: clocks.clone(),
            recording: Mutex::new(HashMap::new()),
            retention: Mutex::new(HashMap::new()),
            retention_stats: Mutex::new(RetentionStats::default()),
            cleaner: (Mutex::new(CleanerState::default()), Condvar::new()),
            recovery,
            threads: Mutex::new(Writers {
                senders: Vec::new(),
                handles: Vec::new(),
                syncer: None,
                cleaner: None,
            }),
            settings: Mutex::new(settings),
            pins: Pins::new(cfg.max_pin),
        });
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.clone())
                .spawn(f)
                .err_kind(ErrorKind::Internal, format_args!("starting thread {name}"))
        };
        let mut th = rec.threads.lock();
        {
            let (index, shared) = (index.clone(), shared.clone());
            th.syncer = Some(spawn(
                "rec-syncer".into(),
                Box::new(move || writer::run_syncer(index, shared, sync_rx)),
            )?);
        }
        for i in 0..cfg.writer_threads.max(1) {
            let (tx, rx) = mpsc::channel();
            let weak = Arc::downgrade(&rec);
            let ctx = Ctx {
                cfg: WriterConfig {
                    dir: cfg.dir.clone(),
                    segmenter: cfg.segmenter,
                    poll: cfg.poll,
                    sync_interval: cfg.sync_interval,
                },
                index: index.clone(),
                shared: shared.clone(),
                clocks: clocks.clone(),
                sync_tx: sync_tx.clone(),
                retention_wake: Arc::new(move || {
                    if let Some(r) = weak.upgrade() {
                        r.wake_retention();
                    }
                }),
            };
            th.handles.push(spawn(
                format!("rec-writer-{i}"),
                Box::new(move || writer::run(ctx, rx)),
            )?);
            th.senders.push(tx);
        }
        {
            let weak = Arc::downgrade(&rec);
            th.cleaner = Some(spawn(
                "rec-retention".into(),
                Box::new(move || cleaner_loop(weak)),
            )?);
        }
        drop(th);
        Ok(rec)
    }

    pub fn index(&self) -> &Arc<Index> {
        &self.index
    }

    /// The index's read side for request handlers: read-only connections, bounded range
    /// queries; blocking calls (use `spawn_blocking` from async code).
    pub fn reader(&self) -> crate::index::Reader {
        self.index.reader()
    }

    pub fn config(&self) -> &RecorderConfig {
        &self.cfg
    }

    /// The pin registry: readers pin the segments they read so retention keeps them.
    pub fn pins(&self) -> &Arc<Pins> {
        &self.pins
    }

    /// The recordings directory's path of a segment's `path` column.
    pub fn segment_path(&self, relative: &str) -> PathBuf {
        self.cfg.dir.join(relative)
    }

    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Records exactly the cameras in `wanted` (their channels must be in `hub`; others are
    /// skipped until they are). Starting a camera subscribes to its channel, which keeps the
    /// upstream running whether or not anyone watches; stopping closes its open segment.
    pub fn apply(&self, hub: &Hub, wanted: &[RecordSpec]) {
        let th = self.threads.lock();
        if th.senders.is_empty() {
            return;
        }
        let mut rec = self.recording.lock();
        let want: HashMap<&str, u32> = wanted
            .iter()
            .map(|w| (w.camera_id.as_str(), w.retention_days))
            .collect();
        let stale: Vec<String> = rec
            .iter()
            .filter(|(id, (ch, _))| {
                !want.contains_key(id.as_str())
                    || !hub.get(id).is_some_and(|now| Arc::ptr_eq(&now, ch))
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            rec.remove(&id);
            let _ = th.senders[thread_of(&id, th.senders.len())].send(Command::Remove(id.clone()));
            tracing::info!(camera = %id, "recording stopped");
        }
        for w in wanted {
            if let Some(entry) = rec.get_mut(w.camera_id.as_str()) {
                entry.1 = w.retention_days;
                continue;
            }
            let Some(ch) = hub.get(&w.camera_id) else {
                continue;
            };
            let sub = ch.subscribe_av(Default::default());
            rec.insert(w.camera_id.to_string(), (ch, w.retention_days));
            // An idle retention thread starts looking again.
            self.cleaner.0.lock().recheck = true;
            self.cleaner.1.notify_one();
            let _ = th.senders[thread_of(&w.camera_id, th.senders.len())]
                .send(Command::Add(w.camera_id.to_string(), sub));
            tracing::info!(camera = %w.camera_id, "recording started");
        }
    }

    /// Retention days of every known camera (recording or not); others get the default.
    pub fn set_retention(&self, days: HashMap<String, u32>) {
        *self.retention.lock() = days;
    }

    /// Whether a camera is being recorded.
    pub fn is_recording(&self, camera_id: &str) -> bool {
        self.recording.lock().contains_key(camera_id)
    }

    /// The writer's view of one camera.
    pub fn camera(&self, camera_id: &str) -> Option<writer::CameraRecording> {
        self.shared.cameras.lock().get(camera_id).cloned()
    }

    /// Recording settings stored through the API (from memory; no SQLite access).
    pub fn settings(&self) -> Result<Vec<RecordingSetting>, Error> {
        Ok(self.settings.lock().clone())
    }

    /// Stores a camera's recording setting in the index and in memory. Blocking (a write
    /// transaction): async callers use `spawn_blocking`.
    pub fn set_recording_setting(&self, s: &RecordingSetting, now_ms: i64) -> Result<(), Error> {
        self.index.set_recording_setting(s, now_ms)?;
        let mut all = self.settings.lock();
        match all.binary_search_by(|x| x.camera_id.cmp(&s.camera_id)) {
            Ok(i) => all[i] = s.clone(),
            Err(i) => all.insert(i, s.clone()),
        }
        Ok(())
    }

    /// Whether the retention thread has nothing to watch: no camera recording and no bytes
    /// stored.
    fn is_idle(&self) -> bool {
        self.recording.lock().is_empty() && self.index.total_bytes().is_ok_and(|b| b == 0)
    }

    /// Asks the retention thread for a pass now (it looks every [`CLEANER_STEP`]).
    pub fn wake_retention(&self) {
        self.cleaner.0.lock().wake = true;
        self.cleaner.1.notify_one();
    }

    fn policy(&self, volume: u64) -> Policy {
        Policy {
            retention_days: {
                let mut m = self.retention.lock().clone();
                m.extend(
                    self.recording
                        .lock()
                        .iter()
                        .map(|(id, (_, d))| (id.clone(), *d)),
                );
                // 0 days: keep by age forever (budget and emergency still apply).
                for d in m.values_mut() {
                    if *d == 0 {
                        *d = u32::MAX;
                    }
                }
                m
            },
            default_retention_days: Some(self.cfg.default_retention_days).filter(|d| *d > 0),
            max_usage_bytes: self.cfg.max_usage.resolve(volume),
            emergency_free_bytes: self.cfg.min_free.resolve(volume),
        }
    }

    /// One retention pass: selects what to delete (age, budget, emergency; locks honoured) from
    /// the index in pages, then deletes through the index.
    pub fn retention_pass(&self) -> Result<retention::Plan, Error> {
        let now_ms = base::clock::unix_ms(self.clocks.realtime());
        let fs = fs_usage(&self.cfg.dir)?;
        let policy = self.policy(fs.total_bytes);
        let usage = Usage {
            used_bytes: self.index.total_bytes()?,
            free_bytes: fs.free_bytes,
        };
        let locks = self.index.active_lock_ranges(now_ms)?;
        let mut candidates = Vec::new();
        let mut seen = HashSet::new();
        for u in self.index.camera_usage()? {
            let Some(cutoff) = policy.age_cutoff(&u.camera_id, now_ms) else {
                continue;
            };
            if u.oldest_wall_ms > cutoff {
                continue;
            }
            for s in self.index.expired(&u.camera_id, cutoff, 10_000)? {
                if seen.insert(s.id) {
                    candidates.push(s);
                }
            }
        }
        let mono = self.clocks.monotonic();
        let pinned_of = |c: &[retention::SegmentInfo]| -> HashSet<i64> {
            c.iter()
                .filter(|s| self.pins.is_pinned(s.id, mono))
                .map(|s| s.id)
                .collect()
        };
        let mut pinned = pinned_of(&candidates);
        let mut plan =
            retention::plan_with_pins(now_ms, &candidates, &locks, &pinned, &policy, usage);
        // Budget and emergency need the oldest segments: walk the index in pages until enough
        // is selected or nothing older is left.
        const PAGE: usize = 2_000;
        let mut after = None;
        while plan.shortfall_bytes > 0 {
            let page = self.index.oldest_complete(after, PAGE)?;
            let Some(last) = page.last() else { break };
            after = Some((last.start_ms, last.id));
            let full = page.len() == PAGE;
            candidates.extend(page.into_iter().filter(|s| seen.insert(s.id)));
            pinned = pinned_of(&candidates);
            plan = retention::plan_with_pins(now_ms, &candidates, &locks, &pinned, &policy, usage);
            if !full {
                break;
            }
        }
        let skipped = self.delete(&mut plan, mono)?;
        let mut st = self.retention_stats.lock();
        st.pinned_kept = (plan.pinned_kept + skipped) as u64;
        st.skipped_pinned += (plan.pinned_kept + skipped) as u64;
        st.passes += 1;
        st.emergency_passes += u64::from(plan.emergency);
        st.locked_kept = plan.locked_kept as u64;
        st.shortfall_bytes = plan.shortfall_bytes;
        st.last_pass_ms = Some(now_ms);
        st.last_error = None;
        for d in &plan.deletions {
            st.deleted_segments += 1;
            st.deleted_bytes += d.bytes;
            match d.reason {
                Reason::Age => st.deleted_by_age += 1,
                Reason::Budget => st.deleted_by_budget += 1,
                Reason::Emergency => st.deleted_in_emergency += 1,
            }
        }
        if !plan.deletions.is_empty() {
            tracing::info!(
                segments = plan.deletions.len(),
                bytes = plan.bytes_freed,
                emergency = plan.emergency,
                locked_kept = plan.locked_kept,
                "retention deleted recordings"
            );
        }
        if plan.emergency && plan.shortfall_bytes > 0 {
            tracing::warn!(
                shortfall = plan.shortfall_bytes,
                "recordings volume is short of free space and locked or open video holds the rest"
            );
        }
        Ok(plan)
    }

    /// Deletes the plan's segments: claim them from the pins (a reader may have pinned one since
    /// the plan was made: it is kept, dropped from the plan and counted), mark `deleting`,
    /// unlink, delete the row. Returns how many were kept for readers.
    fn delete(&self, plan: &mut retention::Plan, now: std::time::Instant) -> Result<usize, Error> {
        let ids: Vec<i64> = plan.deletions.iter().map(|d| d.id).collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let claim = self.pins.claim_for_deletion(&ids, now);
        if !claim.pinned.is_empty() {
            plan.deletions.retain(|d| !claim.pinned.contains(&d.id));
            plan.bytes_freed = plan.deletions.iter().map(|d| d.bytes).sum();
        }
        let ids = claim.granted;
        let result = self.delete_claimed(&ids);
        for id in &ids {
            self.pins.deleted(*id);
        }
        result.map(|()| claim.pinned.len())
    }

    fn delete_claimed(&self, ids: &[i64]) -> Result<(), Error> {
        if ids.is_empty() {
            return Ok(());
        }
        self.index.mark_deleting(ids)?;
        for &id in ids {
            let Some(s) = self.index.segment(id)? else {
                continue;
            };
            let path = self.cfg.dir.join(&s.path);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    // The row stays `deleting`; the next pass or start-up finishes it.
                    tracing::error!("retention: removing {}: {e}", s.path);
                    continue;
                }
            }
            // Day directories go when their last file does (fails harmlessly otherwise).
            if let Some(parent) = path.parent() {
                let _ = std::fs::remove_dir(parent);
            }
            self.index.delete_segment(id)?;
        }
        Ok(())
    }

    /// Storage status for the API.
    pub fn status(&self) -> Result<StorageStatus, Error> {
        let volume = fs_usage(&self.cfg.dir)?;
        let rec: BTreeMap<String, u32> = self
            .recording
            .lock()
            .iter()
            .map(|(id, (_, d))| (id.clone(), *d))
            .collect();
        let writers = self.shared.cameras.lock().clone();
        let known = self.retention.lock().clone();
        let mut cameras: BTreeMap<String, CameraStorage> = BTreeMap::new();
        for u in self.index.camera_usage()? {
            cameras.insert(
                u.camera_id.clone(),
                CameraStorage {
                    camera_id: u.camera_id.into(),
                    segments: u.segments,
                    bytes: u.bytes,
                    oldest_ms: Some(u.oldest_wall_ms),
                    newest_ms: Some(u.newest_wall_ms),
                    ..CameraStorage::default()
                },
            );
        }
        for (id, days) in &rec {
            let c = cameras.entry(id.clone()).or_insert_with(|| CameraStorage {
                camera_id: id.as_str().into(),
                ..CameraStorage::default()
            });
            c.recording = true;
            c.retention_days = *days;
        }
        for c in cameras.values_mut() {
            c.writer = writers.get(c.camera_id.as_str()).cloned();
            if !c.recording {
                c.retention_days = known
                    .get(c.camera_id.as_str())
                    .copied()
                    .unwrap_or(self.cfg.default_retention_days);
            }
        }
        Ok(StorageStatus {
            dir: self.cfg.dir.clone(),
            volume,
            max_usage_bytes: self.cfg.max_usage.resolve(volume.total_bytes),
            min_free_bytes: self.cfg.min_free.resolve(volume.total_bytes),
            used_bytes: self.index.total_bytes()?,
            cameras: cameras.into_values().collect(),
            writes: self.shared.writes.load(Ordering::Relaxed),
            bytes_written: self.shared.bytes.load(Ordering::Relaxed),
            syncs: self.shared.syncs.load(Ordering::Relaxed),
            write_errors: self.shared.write_errors.load(Ordering::Relaxed),
            lag: self.shared.lag.lock().clone(),
            retention: self.retention_stats.lock().clone(),
            recovery: self.recovery.clone(),
        })
    }

    /// Stops recording: every open segment is closed, synced and completed; threads end.
    pub fn shutdown(&self) {
        self.recording.lock().clear();
        let mut th = self.threads.lock();
        for s in th.senders.drain(..) {
            let _ = s.send(Command::Shutdown);
        }
        for h in th.handles.drain(..) {
            let _ = h.join();
        }
        // The writers held the last senders of the sync channel: the syncer drains and ends.
        if let Some(h) = th.syncer.take() {
            let _ = h.join();
        }
        self.cleaner.0.lock().stop = true;
        self.cleaner.1.notify_one();
        if let Some(h) = th.cleaner.take() {
            let _ = h.join();
        }
    }
}

fn thread_of(camera_id: &str, n: usize) -> usize {
    (crate::rotation::fnv1a64(camera_id) % n as u64) as usize
}

/// How often the retention thread looks for a wake-up or a stop.
pub const CLEANER_STEP: Duration = Duration::from_millis(100);
/// How often the retention thread checks free space and usage.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The retention thread: a cheap free-space check every second, a full pass when due or woken.
/// Its time and waits go through the recorder's clocks, so tests run it on simulated time.
fn cleaner_loop(rec: std::sync::Weak<Recorder>) {
    let Some(clocks) = rec.upgrade().map(|r| r.clocks.clone()) else {
        return;
    };
    let mut last_pass: Option<Instant> = None;
    let mut last_check = clocks.monotonic();
    loop {
        let idle = rec.upgrade().is_none_or(|r| r.is_idle());
        if idle {
            // Nothing recorded and nothing stored: nothing to check until recording starts or
            // a pass is asked for (not on the clock: an idle recorder moves no simulated clock).
            let Some(r) = rec.upgrade() else { return };
            let mut st = r.cleaner.0.lock();
            if !st.stop && !st.wake && !st.recheck {
                r.cleaner.1.wait(&mut st);
            }
            st.recheck = false;
        } else {
            clocks.sleep_blocking(CLEANER_STEP);
        }
        let Some(r) = rec.upgrade() else { return };
        let woken = {
            let mut st = r.cleaner.0.lock();
            if st.stop {
                return;
            }
            std::mem::take(&mut st.wake)
        };
        let now = clocks.monotonic();
        if !woken && now.saturating_duration_since(last_check) < CHECK_EVERY {
            continue;
        }
        last_check = now;
        let due =
            last_pass.is_none_or(|t| now.saturating_duration_since(t) >= r.cfg.retention_interval);
        let low = fs_usage(&r.cfg.dir).is_ok_and(|fs| {
            fs.free_bytes < r.cfg.min_free.resolve(fs.total_bytes)
                || r.index
                    .total_bytes()
                    .is_ok_and(|u| u > r.cfg.max_usage.resolve(fs.total_bytes))
        });
        if woken || due || low {
            last_pass = Some(now);
            if let Err(e) = r.retention_pass() {
                tracing::error!("retention pass: {e}");
                r.retention_stats.lock().last_error = Some(e.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{NewLock, NewSegment, SegmentState};
    use crate::retention::DAY_MS;
    use crate::testutil::{SteppedClocks, TempDir, clip, step_until};
    use media::{Codec, Frame};
    use std::time::{SystemTime, UNIX_EPOCH};

    const T0_MS: u64 = 1_700_000_000_000;

    /// The recorder's threads that sleep on its clocks while a camera records, with one writer
    /// thread: the writer and the retention thread. (An idle writer waits for a command and an
    /// idle retention thread for a wake-up, off the clock.)
    const SLEEPERS: usize = 2;

    #[test]
    fn records_published_frames_into_indexed_playable_segments() {
        // On simulated time, stepped by the test: the writer polls every 2 ms of it.
        let d = TempDir::new("record");
        let clocks = SteppedClocks::new(UNIX_EPOCH + Duration::from_millis(T0_MS));
        let mut cfg = RecorderConfig::new(&d.0);
        cfg.segmenter.rotation.period = 4 * crate::TICKS_PER_SEC;
        let poll = Duration::from_millis(2);
        cfg.poll = poll;
        cfg.writer_threads = 1;
        let rec = Recorder::start(cfg, clocks.clone()).unwrap();
        let hub = Hub::new();
        let ch = hub.add(Channel::new(
            "cam-1",
            hub::ChannelConfig::default(),
            SystemTime::now(),
        ));
        rec.apply(
            &hub,
            &[RecordSpec {
                camera_id: "cam-1".into(),
                retention_days: 30,
            }],
        );
        assert!(rec.is_recording("cam-1"));
        assert_eq!(
            ch.subscriber_count(),
            1,
            "recording subscribes (keeps the upstream wanted)"
        );

        let (frames, params) = clip("h264_a.h264", Codec::H264);
        // 12 s = 6 GOPs, published a GOP at a time on simulated time; the writer drains each.
        let gops = 6;
        for n in 0..(gops * 50 + 1) {
            let (data, is_key) = frames[n % frames.len()].clone();
            clocks.settle(SLEEPERS);
            clocks.advance(Duration::from_millis(40));
            ch.publish(Frame {
                pts: 1234 + n as i64 * 3600,
                received: UNIX_EPOCH + Duration::from_millis(T0_MS + n as u64 * 40),
                is_key,
                data,
                params: params.clone(),
            });
            if n % 50 == 49 {
                step_until(&clocks, SLEEPERS, poll, "the writer to drain", || {
                    rec.camera("cam-1")
                        .is_some_and(|c| c.segmenter.frames == n as u64 + 1)
                });
            }
        }
        step_until(&clocks, SLEEPERS, poll, "6 writes", || {
            rec.status().unwrap().writes == gops as u64
        });
        let st = rec.status().unwrap();
        assert_eq!(st.writes, 6, "one write per GOP");
        rec.apply(&hub, &[]);
        // The writer goes idle (off the clock) once the camera is removed.
        step_until(&clocks, 1, poll, "the subscription to end", || {
            ch.subscriber_count() == 0
        });
        clocks.free_run();
        rec.shutdown();

        let ix = rec.index();
        let segs = ix.segments("cam-1", 0, i64::MAX).unwrap();
        assert!(
            (3..=4).contains(&segs.len()),
            "{} segments of ≤ 4 s in 12 s",
            segs.len()
        );
        let mut keyframes = 0;
        for (i, s) in segs.iter().enumerate() {
            assert_eq!(s.state, SegmentState::Complete, "{s:?}");
            assert_eq!(
                (s.codec_string.as_str(), s.width, s.height),
                ("avc1.64001e", 640, 360)
            );
            assert!(s.end_90k - s.start_90k <= 4 * crate::TICKS_PER_SEC);
            if i > 0 {
                assert_eq!(segs[i - 1].end_90k, s.start_90k, "contiguous");
            }
            let f = d.0.join(&s.path);
            assert!(s.path.starts_with("cam-1/20231114/"), "{}", s.path);
            assert_eq!(std::fs::metadata(&f).unwrap().len(), s.bytes);
            let sc = crate::scan::scan_file(&f).unwrap();
            assert_eq!(sc.valid_len, s.bytes);
            assert_eq!(sc.start_90k(), Some(s.start_90k as u64));
            assert_eq!(sc.end_90k(), Some(s.end_90k as u64));
            let kfs = ix.keyframes(s.id).unwrap();
            assert_eq!(kfs.len(), sc.fragments.len());
            // Each key frame's time is the segment's start plus its time in the file, which
            // starts at 0 (and its fragment's prft says so).
            assert_eq!(sc.fragments[0].base_decode_time, 0);
            for (k, fr) in kfs.iter().zip(&sc.fragments) {
                assert_eq!((k.byte_offset, k.time_90k as u64), (fr.offset, fr.wall_90k));
                assert_eq!(k.time_90k, s.start_90k + fr.base_decode_time as i64);
            }
            keyframes += kfs.len();
        }
        // Shutdown wrote the last frame (a key frame that began a 7th GOP) too.
        assert_eq!(keyframes, 7);
        assert_eq!(segs[0].start_wall_ms, T0_MS as i64);
        assert_eq!(segs.last().unwrap().end_wall_ms, T0_MS as i64 + 12_040);
    }

    /// The retention thread on simulated time: its first pass comes after a second, the next
    /// one only when `retention_interval` has passed or when it is woken.
    #[test]
    fn retention_thread_passes_when_due_or_woken_on_simulated_time() {
        let d = TempDir::new("retention-thread");
        let now = T0_MS as i64 + 100 * DAY_MS;
        let clocks = SteppedClocks::new(UNIX_EPOCH + Duration::from_millis(now as u64));
        let mut cfg = RecorderConfig::new(&d.0);
        cfg.max_usage = Budget::Bytes(u64::MAX);
        cfg.min_free = Budget::Bytes(0);
        cfg.default_retention_days = 90;
        cfg.retention_interval = Duration::from_secs(3600);
        cfg.writer_threads = 1;
        // Recorded before the start: an expired segment and a recent one. (A retention thread
        // with nothing stored and nothing recording waits idle, off the clock.)
        let old = {
            let ix = Index::open(&d.0.join("index.db"), now).unwrap();
            fake_segments_in(
                &d.0,
                &ix,
                &[("cam-a", now - 95 * DAY_MS), ("cam-a", now - DAY_MS)],
            )
        };
        let rec = Recorder::start(cfg, clocks.clone()).unwrap();
        let step = Duration::from_millis(100);
        step_until(&clocks, 1, step, "the first pass", || {
            rec.index.segment(old[0]).unwrap().is_none()
        });
        let gone_at = clocks.monotonic();

        // Expired too, but the next pass is due in an hour: a minute later it is still there.
        let old2 = fake_segments(&rec, &[("cam-a", now - 94 * DAY_MS)]);
        for _ in 0..600 {
            clocks.settle(1);
            clocks.advance(step);
        }
        clocks.settle(1);
        assert!(rec.index.segment(old2[0]).unwrap().is_some());
        assert_eq!(rec.status().unwrap().retention.deleted_by_age, 1);
        // A wake (a writer's failed write) runs a pass at the next step.
        rec.wake_retention();
        step_until(&clocks, 1, step, "the woken pass", || {
            rec.index.segment(old2[0]).unwrap().is_none()
        });
        assert!(clocks.monotonic() - gone_at < Duration::from_secs(61));
        assert_eq!(rec.status().unwrap().retention.deleted_by_age, 2);
        clocks.free_run();
        rec.shutdown();
    }

    /// Segments of 1 KiB on disk and in the index: `(camera, start_ms)`.
    fn fake_segments(rec: &Recorder, segs: &[(&str, i64)]) -> Vec<i64> {
        fake_segments_in(&rec.cfg.dir, &rec.index, segs)
    }

    /// [`fake_segments`] in recordings directory `dir` with index `index`.
    fn fake_segments_in(dir: &Path, index: &Index, segs: &[(&str, i64)]) -> Vec<i64> {
        segs.iter()
            .map(|(cam, start)| {
                let rel = format!("{cam}/{}/{start}.mp4", crate::writer::day_dir(*start));
                let p = dir.join(&rel);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, vec![0u8; 1024]).unwrap();
                let id = index
                    .begin_segment(&NewSegment {
                        camera_id: (*cam).into(),
                        run_id: 0,
                        start_90k: start * 90,
                        start_wall_ms: *start,
                        path: rel,
                        codec: "h264".into(),
                        params_version: 0,
                        codec_string: String::new(),
                        width: 0,
                        height: 0,
                    })
                    .unwrap();
                index
                    .complete_segment(id, (start + 60_000) * 90, start + 60_000, 1024)
                    .unwrap();
                id
            })
            .collect()
    }

    #[test]
    fn retention_skips_a_segment_a_reader_pins_until_the_reader_ends() {
        let d = TempDir::new("retention-pins");
        let now = T0_MS as i64 + 100 * DAY_MS;
        let clocks = SteppedClocks::new(UNIX_EPOCH + Duration::from_millis(now as u64));
        let mut cfg = RecorderConfig::new(&d.0);
        cfg.min_free = Budget::Bytes(0);
        cfg.default_retention_days = 90;
        cfg.retention_interval = Duration::from_secs(3600);
        let rec = Recorder::start(cfg, clocks.clone()).unwrap();
        let old = fake_segments(
            &rec,
            &[("cam-a", now - 95 * DAY_MS), ("cam-a", now - 91 * DAY_MS)],
        );
        let guard = rec.pins().pin(&[old[1]], clocks.monotonic()).unwrap();
        let plan = rec.retention_pass().unwrap();
        let deleted: Vec<i64> = plan.deletions.iter().map(|x| x.id).collect();
        assert_eq!(deleted, vec![old[0]]);
        assert_eq!(plan.pinned_kept, 1);
        assert!(rec.index.segment(old[1]).unwrap().is_some());
        assert_eq!(count_files(&d.0), 1, "the pinned file stays on disk");
        let st = rec.status().unwrap().retention;
        assert_eq!((st.pinned_kept, st.skipped_pinned), (1, 1));
        drop(guard);
        let plan = rec.retention_pass().unwrap();
        assert_eq!(plan.deletions.len(), 1);
        assert_eq!(plan.deletions[0].id, old[1]);
        assert_eq!(rec.index.segment(old[1]).unwrap(), None);
        assert_eq!(rec.status().unwrap().retention.pinned_kept, 0);
        clocks.free_run();
        rec.shutdown();
    }

    #[test]
    fn retention_deletes_by_age_and_budget_through_the_index_and_keeps_locked_video() {
        let d = TempDir::new("retention");
        let now = T0_MS as i64 + 100 * DAY_MS;
        // Simulated time that does not move: only the explicit passes below run.
        let clocks = SteppedClocks::new(UNIX_EPOCH + Duration::from_millis(now as u64));
        let mut cfg = RecorderConfig::new(&d.0);
        cfg.max_usage = Budget::Bytes(6 * 1024);
        cfg.min_free = Budget::Bytes(0);
        cfg.default_retention_days = 90;
        cfg.retention_interval = Duration::from_secs(3600);
        let rec = Recorder::start(cfg, clocks.clone()).unwrap();
        let min = 60_000;
        // cam-a: 2 segments older than 90 days, then 6 recent ones; cam-b: 2 recent ones.
        let old = fake_segments(
            &rec,
            &[("cam-a", now - 95 * DAY_MS), ("cam-a", now - 91 * DAY_MS)],
        );
        let recent: Vec<(&str, i64)> = (0..6)
            .map(|i| ("cam-a", now - 60 * min + i * min))
            .collect();
        let a = fake_segments(&rec, &recent);
        let b = fake_segments(
            &rec,
            &[
                ("cam-b", now - 59 * min + 30_000),
                ("cam-b", now - 10 * min),
            ],
        );
        // A lock over cam-a's first recent segment (and nothing of cam-b's).
        rec.index
            .create_lock(
                &NewLock {
                    camera_id: "cam-a".into(),
                    start_ms: now - 60 * min + 10_000,
                    end_ms: now - 60 * min + 20_000,
                    reason: "case 2026/117".into(),
                    expires_at_ms: None,
                },
                now,
            )
            .unwrap();
        let plan = rec.retention_pass().unwrap();
        let deleted: Vec<i64> = plan.deletions.iter().map(|x| x.id).collect();
        // Age takes the two old ones. The budget (6 KiB of 10 KiB left) takes the 2 oldest
        // unlocked recent segments: cam-a's second (its first is locked) and cam-b's first.
        assert_eq!(deleted, vec![old[0], old[1], a[1], b[0]]);
        assert_eq!(plan.locked_kept, 1);
        for id in &deleted {
            assert_eq!(rec.index.segment(*id).unwrap(), None);
        }
        assert!(
            rec.index.segment(a[0]).unwrap().is_some(),
            "the locked segment stays"
        );
        assert_eq!(rec.index.total_bytes().unwrap(), 6 * 1024);
        // Files went with their rows, and emptied day directories with them.
        let files = count_files(&d.0);
        assert_eq!(files, 6, "6 segment files left");
        assert!(
            !d.0.join("cam-a")
                .join(crate::writer::day_dir(now - 95 * DAY_MS))
                .exists()
        );
        let st = rec.status().unwrap();
        assert_eq!(st.retention.deleted_by_age, 2);
        assert_eq!(st.retention.deleted_by_budget, 2);
        let cam_a = st.cameras.iter().find(|c| c.camera_id == "cam-a").unwrap();
        assert_eq!((cam_a.segments, cam_a.bytes), (5, 5 * 1024));
        assert_eq!(cam_a.oldest_ms, Some(now - 60 * min));
        // A second pass has nothing to do.
        assert!(rec.retention_pass().unwrap().deletions.is_empty());
        clocks.free_run();
        rec.shutdown();
    }

    #[test]
    fn budgets_resolve_against_the_volume_and_statvfs_reads_it() {
        assert_eq!(Budget::Bytes(5).resolve(1_000), 5);
        assert_eq!(Budget::Percent(90.0).resolve(1_000), 900);
        assert_eq!(
            Budget::Percent(250.0).resolve(1_000),
            1_000,
            "clamped to the volume"
        );
        assert_eq!(Budget::Percent(-1.0).resolve(1_000), 0);
        let d = TempDir::new("statvfs");
        let fs = fs_usage(&d.0).unwrap();
        assert!(
            fs.total_bytes > 0 && fs.free_bytes <= fs.total_bytes,
            "{fs:?}"
        );
        let e = fs_usage(&d.0.join("missing")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.to_string().contains("missing"), "{e}");
    }

    fn count_files(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| {
                let p = e.path();
                if p.is_dir() {
                    count_files(&p)
                } else {
                    usize::from(p.extension().is_some_and(|x| x == "mp4"))
                }
            })
            .sum()
    }
}

//! Evidence exports (design 0008, "Exports" and "Signed manifest"): jobs in the management
//! database (`store::ExportStore`), at most `exports.max_concurrent` running at once (the rest
//! start in order of creation), each on a thread of its own writing the progressive MP4 of its
//! range to `<exports.dir>/<id>.mp4.part` through a SHA-256 writer, then `fsync`, rename to
//! `<id>.mp4`, then the signed manifest `<id>.manifest.json` (written the same way), then the row
//! `completed`. A row is `completed` only after both files are renamed.
//!
//! At start, `running` rows go back to `queued` (they start again from zero) and leftover `.part`
//! files (and the files of exports not completed) are deleted. A full disk fails the export with
//! `disk full`; any write error fails it with its reason; the `.part` is deleted and recordings
//! are never touched (exports write only to `exports.dir`).
//!
//! What to write comes from a [`Source`] (the node's recordings: [`crate::Services`]), so the
//! queue can be tested on its own.

use base::clock::{rfc3339_ms, unix_ms};
use base::{CameraId, Clocks, Error, ErrorKind, ResultExt, bail, err};
use parking_lot::Mutex;
use recorder::index::QueryError;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};
use store::{AuditAction, AuditEvent, AuditLog, ExportRow, ExportStatus, ExportStore};

/// The key file's name in the data directory.
pub const KEY_FILE: &str = "export-signing-key.pem";

/// A range of recordings ready to write.
pub struct Rendered {
    /// The MP4's bytes in all.
    pub len: u64,
    pub frames: u64,
    pub has_audio: bool,
    pub camera_name: String,
    pub agency: Option<String>,
    pub body: Box<dyn ReadBody>,
}

/// Bytes read in order, handed to a sink in chunks.
pub trait ReadBody: Send {
    /// Every byte, in order; stops at the first error of a read or of the sink. `now` is the
    /// monotonic clock: the segments read stay pinned for as long as the reading goes on.
    fn read_all(
        &mut self,
        now: &dyn Fn() -> Instant,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<(), Error>;
}

/// How much of an export is read between renewals of its pins.
const RENEW_EVERY: u64 = 16 << 20;

impl ReadBody for recorder::playback::Body {
    fn read_all(
        &mut self,
        now: &dyn Fn() -> Instant,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let len = self.len();
        let mut at = 0;
        while at < len {
            // An export may run longer than `playback.max_pin` (hours of video, or slowed by
            // `exports.max_write_kib_per_s`): its evidence stays pinned while it progresses.
            self.renew_pin(now());
            let to = (at + RENEW_EVERY).min(len);
            self.read_range(at..to, sink)?;
            at = to;
        }
        Ok(())
    }
}

/// What exports are made of.
pub trait Source: Send + Sync {
    /// NotFound for an unknown camera (no field) or, naming `start`, a range with nothing
    /// recorded.
    fn check(&self, camera_id: &CameraId, start_ms: i64, end_ms: i64) -> Result<(), QueryError>;
    /// The MP4 of a job's range (pinning what it reads until the body is dropped).
    fn render(&self, job: &ExportRow) -> Result<Rendered, QueryError>;
}

/// A new export as asked for.
#[derive(Clone, Debug)]
pub struct NewExport {
    pub camera_id: CameraId,
    pub start_ms: i64,
    pub end_ms: i64,
    pub include_audio: bool,
    pub created_by: String,
}

/// What a `DELETE` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deleted {
    /// It was queued or running: it is now `cancelled` and its partial files are gone.
    Cancelled,
    /// It had finished: its files and its row are gone.
    Removed,
}

/// Which file of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFile {
    Mp4,
    Manifest,
}

/// The limits of the exports manager (from `exports:`).
#[derive(Clone, Debug)]
pub struct ExportsSettings {
    pub dir: PathBuf,
    pub max_concurrent: usize,
    pub max_span: Duration,
    pub retention: Duration,
    /// Bytes per second each export may write (0: unlimited).
    pub max_write_rate: u64,
}

impl ExportsSettings {
    pub fn from_config(c: &settings::ExportsConfig) -> Self {
        ExportsSettings {
            dir: c.dir.clone(),
            max_concurrent: c.max_concurrent.max(1) as usize,
            max_span: c.max_span,
            retention: c.retention,
            max_write_rate: u64::from(c.max_write_kib_per_s) * 1024,
        }
    }
}

fn invalid(field: &'static str, msg: String) -> QueryError {
    QueryError {
        field: Some(field),
        error: Error::new(ErrorKind::InvalidArgument, msg),
    }
}

/// The exports manager. See the module docs.
pub struct Exports {
    store: ExportStore,
    settings: ExportsSettings,
    key: evidence::SigningKey,
    clocks: Arc<dyn Clocks>,
    audit: Option<AuditLog>,
    source: OnceLock<Weak<dyn Source>>,
    /// Running jobs' cancel flags.
    running: Mutex<HashMap<String, Arc<AtomicBool>>>,
}

impl Exports {
    /// Opens the jobs, recovers from a crash (running → queued, partial files deleted) and creates
    /// the exports directory. Nothing runs until [`Exports::attach`].
    pub fn open(
        store: ExportStore,
        settings: ExportsSettings,
        key: evidence::SigningKey,
        clocks: Arc<dyn Clocks>,
        audit: Option<AuditLog>,
    ) -> Result<Arc<Exports>, Error> {
        std::fs::create_dir_all(&settings.dir).err_kind(
            ErrorKind::Internal,
            format_args!("creating the exports directory {}", settings.dir.display()),
        )?;
        let requeued = store.requeue_running()?;
        if requeued > 0 {
            tracing::warn!(
                exports = requeued,
                "exports interrupted by a restart start again"
            );
        }
        let ex = Exports {
            store,
            settings,
            key,
            clocks,
            audit,
            source: OnceLock::new(),
            running: Mutex::new(HashMap::new()),
        };
        ex.clean_dir()?;
        Ok(Arc::new(ex))
    }

    /// Deletes `.part` files, and the files of exports that are not completed (a crash between
    /// a rename and the row's update leaves them; the job runs again).
    fn clean_dir(&self) -> Result<(), Error> {
        let dir = &self.settings.dir;
        let entries = std::fs::read_dir(dir).err_kind(
            ErrorKind::Internal,
            format_args!("reading {}", dir.display()),
        )?;
        let mut complete: HashMap<String, bool> = HashMap::new();
        for r in self.store.list()? {
            complete.insert(r.id.clone(), r.status == ExportStatus::Completed);
        }
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name
                .strip_suffix(".mp4")
                .or_else(|| name.strip_suffix(".manifest.json"));
            let stale = name.ends_with(".part")
                || id.is_some_and(|id| complete.get(id).is_some_and(|c| !c));
            if stale {
                tracing::info!(file = %name, "deleting a partial export");
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(())
    }

    /// Starts running jobs, reading recordings from `source`.
    pub fn attach(self: &Arc<Self>, source: Weak<dyn Source>) {
        let _ = self.source.set(source);
        self.pump();
    }

    /// The node's export public key (SPKI PEM).
    pub fn public_key_pem(&self) -> String {
        self.key.public_key_pem()
    }

    pub fn get(&self, id: &str) -> Result<Option<ExportRow>, Error> {
        self.store.get(id)
    }

    /// Newest first.
    pub fn list(&self) -> Result<Vec<ExportRow>, Error> {
        self.store.list()
    }

    fn path(&self, id: &str, which: ExportFile) -> PathBuf {
        self.settings.dir.join(match which {
            ExportFile::Mp4 => format!("{id}.mp4"),
            ExportFile::Manifest => format!("{id}.manifest.json"),
        })
    }

    /// A completed export's file; None when unknown or not completed.
    pub fn file(&self, id: &str, which: ExportFile) -> Result<Option<(ExportRow, PathBuf)>, Error> {
        Ok(self
            .store
            .get(id)?
            .filter(|r| r.status == ExportStatus::Completed)
            .map(|r| {
                let p = self.path(&r.id, which);
                (r, p)
            }))
    }

    fn audit(&self, action: AuditAction, row: &ExportRow, reason: Option<&str>) {
        if let Some(a) = &self.audit {
            a.record(AuditEvent {
                reason: reason.map(str::to_owned),
                detail: Some(format!(
                    "export {} {}/{}",
                    row.id,
                    rfc3339_ms(row.start_ms),
                    rfc3339_ms(row.end_ms)
                )),
                ..AuditEvent::new(
                    self.clocks.realtime(),
                    action,
                    row.created_by.clone(),
                    row.camera_id.as_str(),
                )
            });
        }
    }

    /// An export's MP4 was downloaded (audited).
    pub fn downloaded(&self, row: &ExportRow) {
        self.audit(AuditAction::ExportDownload, row, None);
    }

    /// Validates and queues an export; it starts when fewer than `max_concurrent` run.
    pub fn create(self: &Arc<Self>, req: NewExport) -> Result<ExportRow, QueryError> {
        if req.end_ms <= req.start_ms {
            return Err(invalid("end_time", "the end is not after the start".into()));
        }
        let max = i64::try_from(self.settings.max_span.as_millis()).unwrap_or(i64::MAX);
        if req.end_ms - req.start_ms > max {
            return Err(invalid(
                "end_time",
                format!(
                    "the range is longer than exports.max_span ({} s)",
                    max / 1000
                ),
            ));
        }
        let Some(source) = self.source.get().and_then(Weak::upgrade) else {
            return Err(err!(Unavailable, "the node is not ready for exports").into());
        };
        source.check(&req.camera_id, req.start_ms, req.end_ms)?;
        let now = unix_ms(self.clocks.realtime());
        let id = uuid::Uuid::now_v7().to_string();
        let row = ExportRow {
            file_name: format!("{id}.mp4"),
            id,
            camera_id: req.camera_id.to_string(),
            start_ms: req.start_ms,
            end_ms: req.end_ms,
            include_audio: req.include_audio,
            status: ExportStatus::Queued,
            bytes_done: 0,
            bytes_total: 0,
            size: None,
            sha256: None,
            frames: None,
            error: None,
            created_by: req.created_by,
            created_at_ms: now,
            started_at_ms: None,
            finished_at_ms: None,
        };
        self.store.insert(&row)?;
        self.audit(AuditAction::ExportCreate, &row, None);
        tracing::info!(export = %row.id, camera = %row.camera_id, "export queued");
        self.pump();
        Ok(self.store.get(&row.id)?.unwrap_or(row))
    }

    /// Cancels a queued or running export (deleting its partial files), or removes a finished one
    /// (its files and row); None when unknown.
    pub fn delete(&self, id: &str) -> Result<Option<Deleted>, Error> {
        let now = unix_ms(self.clocks.realtime());
        for _ in 0..3 {
            let Some(row) = self.store.get(id)? else {
                return Ok(None);
            };
            match row.status {
                ExportStatus::Queued | ExportStatus::Running => {
                    if let Some(flag) = self.running.lock().get(id) {
                        flag.store(true, Ordering::SeqCst);
                    }
                    if self.store.set_ended(
                        id,
                        row.status,
                        ExportStatus::Cancelled,
                        "cancelled by request",
                        now,
                    )? {
                        self.remove_files(id);
                        tracing::info!(export = %id, "export cancelled");
                        self.audit(AuditAction::ExportComplete, &row, Some("cancelled"));
                        return Ok(Some(Deleted::Cancelled));
                    }
                    // Its status changed meanwhile: look again.
                }
                _ => {
                    self.remove_files(id);
                    self.store.delete(id)?;
                    return Ok(Some(Deleted::Removed));
                }
            }
        }
        bail!(Unavailable, "export {id} kept changing; try again")
    }

    fn remove_files(&self, id: &str) {
        for name in [
            format!("{id}.mp4"),
            format!("{id}.mp4.part"),
            format!("{id}.manifest.json"),
            format!("{id}.manifest.json.part"),
        ] {
            let _ = std::fs::remove_file(self.settings.dir.join(name));
        }
    }

    /// Starts queued jobs, oldest first, while fewer than `max_concurrent` run.
    fn pump(self: &Arc<Self>) {
        if self.source.get().is_none() {
            return;
        }
        let mut running = self.running.lock();
        if running.len() >= self.settings.max_concurrent {
            return;
        }
        let queued = match self.store.with_status(ExportStatus::Queued) {
            Ok(q) => q,
            Err(e) => {
                tracing::error!("exports: {e}");
                return;
            }
        };
        for row in queued {
            if running.len() >= self.settings.max_concurrent {
                break;
            }
            let now = unix_ms(self.clocks.realtime());
            match self.store.set_running(&row.id, now) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::error!("exports: {e}");
                    return;
                }
            }
            let cancel = Arc::new(AtomicBool::new(false));
            running.insert(row.id.clone(), cancel.clone());
            let me = self.clone();
            let id = row.id.clone();
            let spawned = std::thread::Builder::new()
                .name("export".into())
                .spawn(move || me.run(row, cancel));
            if let Err(e) = spawned {
                running.remove(&id);
                let _ = self.store.set_ended(
                    &id,
                    ExportStatus::Running,
                    ExportStatus::Failed,
                    &format!("cannot start a thread: {e}"),
                    now,
                );
            }
        }
    }

    /// One job, on its own thread.
    fn run(self: Arc<Self>, row: ExportRow, cancel: Arc<AtomicBool>) {
        tracing::info!(export = %row.id, "export running");
        let r = self.execute(&row, &cancel);
        let now = unix_ms(self.clocks.realtime());
        match r {
            Ok(()) => {
                tracing::info!(export = %row.id, "export completed");
                self.audit(AuditAction::ExportComplete, &row, Some("completed"));
            }
            Err(e) => {
                self.remove_files(&row.id);
                if e.kind() == ErrorKind::Cancelled || cancel.load(Ordering::SeqCst) {
                    tracing::info!(export = %row.id, "export stopped: cancelled");
                } else {
                    let msg = e.message().to_owned();
                    tracing::warn!(export = %row.id, "export failed: {msg}");
                    match self.store.set_ended(
                        &row.id,
                        ExportStatus::Running,
                        ExportStatus::Failed,
                        &msg,
                        now,
                    ) {
                        Ok(true) => self.audit(AuditAction::ExportComplete, &row, Some("failed")),
                        Ok(false) => {}
                        Err(e) => tracing::error!("exports: {e}"),
                    }
                }
            }
        }
        self.running.lock().remove(&row.id);
        self.pump();
    }

    fn execute(&self, row: &ExportRow, cancel: &AtomicBool) -> Result<(), Error> {
        let Some(source) = self.source.get().and_then(Weak::upgrade) else {
            bail!(Unavailable, "the node is shutting down");
        };
        let mut r = source.render(row).map_err(|e| e.error)?;
        drop(source);
        let dir = &self.settings.dir;
        let mp4_part = dir.join(format!("{}.mp4.part", row.id));
        let file =
            std::fs::File::create(&mp4_part).map_err(|e| io_error(e, "creating the file"))?;
        let mut w = evidence::Sha256Writer::new(file);
        let total = r.len;
        let _ = self.store.set_progress(&row.id, 0, total);
        // Progress is stored at most about 100 times per export.
        let step = (total / 100).max(64 * 1024);
        let mut next_report = step;
        let rate = self.settings.max_write_rate;
        let started = self.clocks.monotonic();
        let clocks = self.clocks.clone();
        r.body.read_all(&|| clocks.monotonic(), &mut |chunk| {
            if cancel.load(Ordering::SeqCst) {
                bail!(Cancelled, "cancelled");
            }
            w.write_all(chunk)
                .map_err(|e| io_error(e, "writing the file"))?;
            let done = w.len();
            if done >= next_report {
                next_report = done + step;
                let _ = self.store.set_progress(&row.id, done, total);
            }
            if rate > 0 {
                let due = Duration::from_secs_f64(done as f64 / rate as f64);
                let spent = self.clocks.monotonic().saturating_duration_since(started);
                if let Some(wait) = due.checked_sub(spent) {
                    self.clocks.sleep_blocking(wait);
                }
            }
            Ok(())
        })?;
        drop(r.body);
        if cancel.load(Ordering::SeqCst) {
            bail!(Cancelled, "cancelled");
        }
        let (file, size, sha256) = w.finish();
        file.sync_all()
            .map_err(|e| io_error(e, "syncing the file"))?;
        drop(file);
        let mp4 = self.path(&row.id, ExportFile::Mp4);
        rename_synced(&mp4_part, &mp4, dir)?;

        let manifest = evidence::Manifest {
            format: evidence::FORMAT.to_owned(),
            export_id: row.id.clone(),
            camera_id: row.camera_id.clone(),
            camera_name: r.camera_name,
            agency: r.agency,
            start_time: rfc3339_ms(row.start_ms),
            end_time: rfc3339_ms(row.end_ms),
            file_name: row.file_name.clone(),
            file_size: size,
            sha256: sha256.clone(),
            video_frames: r.frames,
            audio: r.has_audio,
            created_by: row.created_by.clone(),
            created_at: rfc3339_ms(row.created_at_ms),
            vantage_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        let signed = evidence::SignedManifest::sign(manifest, &self.key)?;
        let json = signed.to_json_pretty()?;
        let man_part = dir.join(format!("{}.manifest.json.part", row.id));
        {
            let mut f = std::fs::File::create(&man_part)
                .map_err(|e| io_error(e, "creating the manifest"))?;
            f.write_all(json.as_bytes())
                .map_err(|e| io_error(e, "writing the manifest"))?;
            f.sync_all()
                .map_err(|e| io_error(e, "syncing the manifest"))?;
        }
        rename_synced(&man_part, &self.path(&row.id, ExportFile::Manifest), dir)?;
        let now = unix_ms(self.clocks.realtime());
        if !self
            .store
            .set_completed(&row.id, size, &sha256, r.frames, now)?
        {
            bail!(Cancelled, "cancelled while finishing");
        }
        Ok(())
    }

    /// Deletes finished exports (files and rows) that finished more than `exports.retention`
    /// ago; returns how many.
    pub fn sweep(&self) -> Result<usize, Error> {
        let retention = i64::try_from(self.settings.retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff = unix_ms(self.clocks.realtime()).saturating_sub(retention);
        let old = self.store.finished_before(cutoff)?;
        for r in &old {
            self.remove_files(&r.id);
            self.store.delete(&r.id)?;
            tracing::info!(export = %r.id, "export deleted by exports.retention");
        }
        Ok(old.len())
    }

    /// How often [`Exports::spawn_retention`] sweeps: a tenth of the retention, between a minute
    /// and an hour.
    pub fn sweep_interval(&self) -> Duration {
        (self.settings.retention / 10).clamp(Duration::from_secs(60), Duration::from_secs(3600))
    }

    /// Sweeps every [`Exports::sweep_interval`] on the manager's clocks.
    pub fn spawn_retention(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                me.clocks.sleep(me.sweep_interval()).await;
                let m = me.clone();
                match tokio::task::spawn_blocking(move || m.sweep()).await {
                    Ok(Err(e)) => tracing::warn!("export retention: {e}"),
                    Err(e) => tracing::warn!("export retention: {e}"),
                    Ok(Ok(_)) => {}
                }
            }
        })
    }
}

/// What an export renders: the playback MP4 of the job's range (no `skip_gaps`, audio as asked),
/// titled with the camera's name, with the export's comment in the `moov`.
pub fn mp4_request(job: &ExportRow, camera_name: &str) -> recorder::playback::Mp4Request {
    recorder::playback::Mp4Request {
        camera_id: job.camera_id.clone(),
        start_ms: job.start_ms,
        end_ms: job.end_ms,
        skip_gaps: false,
        audio: job.include_audio,
        title: Some(camera_name.to_owned()),
        comment: Some(format!(
            "Vantage {} export {} camera {} from {} to {}",
            env!("CARGO_PKG_VERSION"),
            job.id,
            job.camera_id,
            rfc3339_ms(job.start_ms),
            rfc3339_ms(job.end_ms)
        )),
    }
}

/// NotFound naming `start_time` when nothing of `camera_id` is recorded in `[start_ms, end_ms)`.
pub fn check_recorded(
    rec: &recorder::service::Recorder,
    camera_id: &CameraId,
    start_ms: i64,
    end_ms: i64,
) -> Result<(), QueryError> {
    let t = rec
        .reader()
        .range_totals(camera_id.as_str(), start_ms, end_ms)?;
    if t.segments == 0 {
        return Err(QueryError {
            field: Some("start_time"),
            error: err!(
                NotFound,
                "nothing of camera `{camera_id}` is recorded from {} to {}",
                rfc3339_ms(start_ms),
                rfc3339_ms(end_ms)
            ),
        });
    }
    Ok(())
}

/// The node's recordings as the source of exports.
impl Source for crate::Services {
    fn check(&self, camera_id: &CameraId, start_ms: i64, end_ms: i64) -> Result<(), QueryError> {
        self.playable_camera(camera_id)?;
        check_recorded(&self.recorder, camera_id, start_ms, end_ms)
    }

    fn render(&self, job: &ExportRow) -> Result<Rendered, QueryError> {
        let camera_id = CameraId::from(job.camera_id.as_str());
        let name = self.playable_camera(&camera_id)?;
        let agency = self
            .catalog
            .get(&camera_id)
            .map(|c| c.camera.agency.clone());
        let camera_name = name.unwrap_or_else(|| job.camera_id.clone());
        let req = mp4_request(job, &camera_name);
        let m = recorder::playback::mp4(&self.recorder, &req, self.clocks.monotonic())?;
        Ok(Rendered {
            len: m.body.len(),
            frames: m.video_frames,
            has_audio: m.has_audio,
            camera_name,
            agency,
            body: Box::new(m.body),
        })
    }
}

pub(crate) async fn blocking<T: Send + 'static, E: From<Error> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| E::from(err!(Internal, "blocking task failed: {e}")))?
}

impl crate::ports::Exports for Arc<crate::Services> {
    fn create_export(
        &self,
        req: NewExport,
    ) -> crate::ports::BoxFuture<'_, Result<ExportRow, QueryError>> {
        let ex = self.exports.clone();
        Box::pin(blocking(move || ex.create(req)))
    }

    fn exports(&self) -> crate::ports::BoxFuture<'_, Result<Vec<ExportRow>, Error>> {
        let ex = self.exports.clone();
        Box::pin(blocking(move || ex.list()))
    }

    fn export<'a>(
        &'a self,
        id: &'a str,
    ) -> crate::ports::BoxFuture<'a, Result<Option<ExportRow>, Error>> {
        let (ex, id) = (self.exports.clone(), id.to_owned());
        Box::pin(blocking(move || ex.get(&id)))
    }

    fn delete_export<'a>(
        &'a self,
        id: &'a str,
    ) -> crate::ports::BoxFuture<'a, Result<Option<Deleted>, Error>> {
        let (ex, id) = (self.exports.clone(), id.to_owned());
        Box::pin(blocking(move || ex.delete(&id)))
    }

    fn export_file<'a>(
        &'a self,
        id: &'a str,
        which: ExportFile,
    ) -> crate::ports::BoxFuture<'a, Result<Option<(ExportRow, PathBuf)>, Error>> {
        let (ex, id) = (self.exports.clone(), id.to_owned());
        Box::pin(blocking(move || ex.file(&id, which)))
    }

    fn export_downloaded(&self, row: &ExportRow) {
        self.exports.downloaded(row);
    }

    fn export_public_key(&self) -> String {
        self.exports.public_key_pem()
    }
}

/// Chunks of a file in flight between the reading thread and the response.
const FILE_CHANNEL_CHUNKS: usize = 4;
/// Bytes read at a time by [`stream_file`].
const FILE_CHUNK: usize = 256 * 1024;

/// Streams `range` of the file at `path` from a blocking thread, as
/// [`crate::playback::stream_body`] does for recordings.
pub fn stream_file(
    path: PathBuf,
    range: std::ops::Range<u64>,
) -> tokio::sync::mpsc::Receiver<Result<Vec<u8>, Error>> {
    use std::os::unix::fs::FileExt;
    let (tx, rx) = tokio::sync::mpsc::channel(FILE_CHANNEL_CHUNKS);
    tokio::task::spawn_blocking(move || {
        let f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let _ = tx.blocking_send(Err(err!(NotFound, "opening the export: {e}")));
                return;
            }
        };
        let mut at = range.start;
        while at < range.end {
            let n = usize::try_from(range.end - at).map_or(FILE_CHUNK, |n| n.min(FILE_CHUNK));
            let mut buf = vec![0; n];
            if let Err(e) = f.read_exact_at(&mut buf, at) {
                let _ = tx.blocking_send(Err(err!(DataLoss, "reading the export: {e}")));
                return;
            }
            if tx.blocking_send(Ok(buf)).is_err() {
                return;
            }
            at += n as u64;
        }
    });
    rx
}

/// An I/O error of an export's file: `disk full` for ENOSPC (and quota), else what failed.
fn io_error(e: std::io::Error, what: &str) -> Error {
    if e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || e.raw_os_error() == Some(28)
    {
        err!(
            ResourceExhausted,
            "disk full ({what} in the exports directory)"
        )
    } else {
        err!(Internal, "{what}: {e}")
    }
}

/// Renames `from` to `to` and syncs their directory.
fn rename_synced(from: &Path, to: &Path, dir: &Path) -> Result<(), Error> {
    std::fs::rename(from, to).map_err(|e| io_error(e, "renaming the file"))?;
    if let Ok(d) = std::fs::File::open(dir) {
        d.sync_all()
            .map_err(|e| io_error(e, "syncing the directory"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base::SimulatedClocks;
    use std::sync::mpsc;
    use std::time::{Instant, SystemTime, UNIX_EPOCH};

    /// Bodies of `n` bytes; each waits for a permit on `gate` before its last chunk.
    struct Fake {
        gate: Mutex<mpsc::Receiver<()>>,
        order: Mutex<Vec<String>>,
    }

    struct FakeBody {
        src: Arc<Fake>,
        id: String,
    }

    impl ReadBody for FakeBody {
        fn read_all(
            &mut self,
            _: &dyn Fn() -> Instant,
            sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
        ) -> Result<(), Error> {
            sink(b"hello ")?;
            self.src.order.lock().push(self.id.clone());
            self.src
                .gate
                .lock()
                .recv()
                .map_err(|_| err!(Cancelled, "gate closed"))?;
            sink(self.id.as_bytes())
        }
    }

    struct FakeSource(Arc<Fake>);

    impl Source for FakeSource {
        fn check(&self, camera_id: &CameraId, _: i64, _: i64) -> Result<(), QueryError> {
            if camera_id.as_str() == "nope" {
                return Err(err!(NotFound, "camera not found").into());
            }
            Ok(())
        }
        fn render(&self, job: &ExportRow) -> Result<Rendered, QueryError> {
            Ok(Rendered {
                len: 6 + job.id.len() as u64,
                frames: 3,
                has_audio: false,
                camera_name: "Gate".into(),
                agency: None,
                body: Box::new(FakeBody {
                    src: self.0.clone(),
                    id: job.id.clone(),
                }),
            })
        }
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vantage-exports-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn settings(dir: &Path, max: usize) -> ExportsSettings {
        ExportsSettings {
            dir: dir.join("exports"),
            max_concurrent: max,
            max_span: Duration::from_secs(3600),
            retention: Duration::from_secs(86_400),
            max_write_rate: 0,
        }
    }

    fn new_export(cam: &str) -> NewExport {
        NewExport {
            camera_id: CameraId::from(cam),
            start_ms: 1_000,
            end_ms: 7_000,
            include_audio: true,
            created_by: "tester".into(),
        }
    }

    /// Polls until `f` holds (the jobs run on their own threads); panics after 10 s.
    fn until(what: &str, mut f: impl FnMut() -> bool) {
        let t = Instant::now();
        while !f() {
            assert!(t.elapsed() < Duration::from_secs(10), "never: {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn statuses(ex: &Exports, ids: &[String]) -> Vec<ExportStatus> {
        ids.iter()
            .map(|id| ex.get(id).unwrap().unwrap().status)
            .collect()
    }

    fn open(
        d: &Path,
        max: usize,
        clocks: Arc<SimulatedClocks>,
    ) -> (Arc<Exports>, Arc<FakeSource>, mpsc::Sender<()>) {
        let (tx, rx) = mpsc::channel();
        let src = Arc::new(FakeSource(Arc::new(Fake {
            gate: Mutex::new(rx),
            order: Mutex::new(Vec::new()),
        })));
        let ex = Exports::open(
            ExportStore::open(&d.join("m.db")).unwrap(),
            settings(d, max),
            evidence::SigningKey::from_seed(&[7; 32]),
            clocks,
            None,
        )
        .unwrap();
        let weak: Weak<dyn Source> = Arc::downgrade(&(src.clone() as Arc<dyn Source>));
        ex.attach(weak);
        (ex, src, tx)
    }

    #[test]
    fn jobs_run_one_at_a_time_in_creation_order_and_sign_their_manifest() {
        let d = dir("order");
        let clocks = Arc::new(SimulatedClocks::new(
            UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        ));
        let (ex, src, gate) = open(&d, 1, clocks.clone());
        let ids: Vec<String> = (0..3)
            .map(|_| ex.create(new_export("cam")).unwrap().id)
            .collect();
        let e = ex.create(new_export("nope")).unwrap_err();
        assert_eq!(e.error.kind(), ErrorKind::NotFound);
        let mut bad = new_export("cam");
        bad.end_ms = bad.start_ms;
        assert_eq!(ex.create(bad).unwrap_err().field, Some("end_time"));
        let mut long = new_export("cam");
        long.end_ms = long.start_ms + 3_600_001;
        assert_eq!(ex.create(long).unwrap_err().field, Some("end_time"));

        for i in 0..3 {
            until("the next one runs", || src.0.order.lock().len() == i + 1);
            let s = statuses(&ex, &ids);
            assert_eq!(
                s.iter().filter(|s| **s == ExportStatus::Running).count(),
                1,
                "{s:?}"
            );
            assert_eq!(s[i], ExportStatus::Running);
            gate.send(()).unwrap();
            until("it completes", || {
                statuses(&ex, &ids)[i] == ExportStatus::Completed
            });
        }
        assert_eq!(*src.0.order.lock(), ids, "creation order");
        let (row, mp4) = ex.file(&ids[1], ExportFile::Mp4).unwrap().unwrap();
        assert_eq!(
            std::fs::read(&mp4).unwrap(),
            format!("hello {}", ids[1]).as_bytes()
        );
        let (_, man) = ex.file(&ids[1], ExportFile::Manifest).unwrap().unwrap();
        let report = evidence::verify(&mp4, &man, Some(&ex.public_key_pem()));
        assert!(report.ok(), "{report}");
        assert_eq!(row.frames, Some(3));
        assert_eq!(row.size, Some(6 + ids[1].len() as u64));

        // Retention on simulated time: nothing before exports.retention, everything after.
        assert_eq!(ex.sweep().unwrap(), 0);
        clocks.advance(Duration::from_secs(86_400 + 1));
        assert_eq!(ex.sweep().unwrap(), 3);
        assert!(ex.list().unwrap().is_empty());
        assert!(!mp4.exists() && !man.exists());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn cancel_a_queued_and_a_running_export_and_remove_a_finished_one() {
        let d = dir("cancel");
        let clocks = Arc::new(SimulatedClocks::new(
            UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        ));
        let (ex, src, gate) = open(&d, 1, clocks);
        let a = ex.create(new_export("cam")).unwrap().id;
        let b = ex.create(new_export("cam")).unwrap().id;
        let c = ex.create(new_export("cam")).unwrap().id;
        until("a runs", || src.0.order.lock().len() == 1);
        assert_eq!(ex.delete(&b).unwrap(), Some(Deleted::Cancelled));
        assert_eq!(ex.delete(&a).unwrap(), Some(Deleted::Cancelled));
        gate.send(()).unwrap(); // a's body goes on, sees the flag at its next chunk
        until("c runs", || src.0.order.lock().len() == 2);
        assert_eq!(*src.0.order.lock(), [a.clone(), c.clone()], "b never ran");
        gate.send(()).unwrap();
        until("c completes", || {
            ex.get(&c).unwrap().unwrap().status == ExportStatus::Completed
        });
        let ids = [a.clone(), b.clone()];
        assert_eq!(
            statuses(&ex, &ids),
            [ExportStatus::Cancelled, ExportStatus::Cancelled]
        );
        assert!(!d.join(format!("exports/{a}.mp4.part")).exists());
        assert!(!d.join(format!("exports/{a}.mp4")).exists());
        assert_eq!(ex.delete(&c).unwrap(), Some(Deleted::Removed));
        assert!(!d.join(format!("exports/{c}.mp4")).exists());
        assert_eq!(ex.get(&c).unwrap(), None);
        assert_eq!(ex.delete(&c).unwrap(), None);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_restart_requeues_running_exports_and_deletes_partial_files() {
        let d = dir("restart");
        let clocks = Arc::new(SimulatedClocks::new(
            UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        ));
        std::fs::create_dir_all(d.join("exports")).unwrap();
        let store = ExportStore::open(&d.join("m.db")).unwrap();
        let mut row = ExportRow {
            id: "0190-x".into(),
            camera_id: "cam".into(),
            start_ms: 1,
            end_ms: 2,
            include_audio: false,
            status: ExportStatus::Queued,
            bytes_done: 0,
            bytes_total: 0,
            size: None,
            sha256: None,
            frames: None,
            error: None,
            created_by: "u".into(),
            created_at_ms: unix_ms(SystemTime::now()),
            started_at_ms: None,
            finished_at_ms: None,
            file_name: "0190-x.mp4".into(),
        };
        store.insert(&row).unwrap();
        assert!(store.set_running("0190-x", 5).unwrap());
        row.id = "0190-y".into();
        store.insert(&row).unwrap();
        drop(store);
        // A crash after the MP4's rename but before the row: the file must not stay.
        for f in ["0190-x.mp4.part", "0190-x.mp4", "0190-y.manifest.json.part"] {
            std::fs::write(d.join("exports").join(f), b"partial").unwrap();
        }
        let (ex, src, gate) = open(&d, 2, clocks);
        // Nothing completes before the gate opens: what is there now is what the restart left.
        assert!(!d.join("exports/0190-x.mp4").exists());
        assert!(!d.join("exports/0190-y.manifest.json.part").exists());
        // Both jobs run again, from zero.
        until("both run", || src.0.order.lock().len() == 2);
        let mut order = src.0.order.lock().clone();
        order.sort();
        assert_eq!(order, ["0190-x", "0190-y"]);
        gate.send(()).unwrap();
        gate.send(()).unwrap();
        until("both complete", || {
            statuses(&ex, &["0190-x".into(), "0190-y".into()])
                == [ExportStatus::Completed, ExportStatus::Completed]
        });
        let left: Vec<String> = std::fs::read_dir(d.join("exports"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".part"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_retention_task_deletes_finished_exports_on_simulated_time() {
        let d = dir("retention");
        let clocks = Arc::new(SimulatedClocks::new(
            UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        ));
        let (ex, _src, gate) = open(&d, 1, clocks.clone());
        let id = ex.create(new_export("cam")).unwrap().id;
        gate.send(()).unwrap();
        until("it completes", || {
            ex.get(&id).unwrap().unwrap().status == ExportStatus::Completed
        });
        let mp4 = d.join(format!("exports/{id}.mp4"));
        assert!(mp4.exists());
        let task = ex.spawn_retention();
        // A day (the retention) minus a sweep interval: swept, kept.
        let step = ex.sweep_interval();
        let mut waited = Duration::ZERO;
        while waited + step < Duration::from_secs(86_400) {
            clocks.advance(step);
            waited += step;
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            ex.get(&id).unwrap().is_some(),
            "kept before exports.retention"
        );
        // Past the retention: the next sweep deletes it.
        let t = Instant::now();
        while ex.get(&id).unwrap().is_some() {
            clocks.advance(step);
            assert!(t.elapsed() < Duration::from_secs(10), "never swept");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!mp4.exists());
        task.abort();
        let _ = std::fs::remove_dir_all(&d);
    }
}

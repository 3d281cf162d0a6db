//! The audit log: one row per reserve, idempotent repeat, denied reserve, (optional) heartbeat,
//! release and expiry, evidence-lock and export change, and (issue 11) login, user and API-key
//! change. Rows are hash-chained ([`chain`]). See the crate docs for the write path.

pub mod chain;

use base::{CameraId, Error, ErrorKind, ReservationId, ResultExt, err};
use parking_lot::Mutex;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, TransactionBehavior, params_from_iter};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

/// How many events may wait for the writer thread before [`AuditLog::record`] drops (and counts).
pub const QUEUE_CAPACITY: usize = 65_536;
/// The most rows one [`AuditLog::query`] returns, whatever [`AuditFilter::limit`] asks.
pub const MAX_QUERY_LIMIT: u32 = 10_000;
/// [`AuditFilter::default`]'s limit.
pub const DEFAULT_QUERY_LIMIT: u32 = 1_000;

/// The most events the writer puts in one transaction.
const MAX_BATCH: usize = 16_384;

/// After the first event of a batch the writer waits this long for more (unless a flush is
/// waiting): every commit rewrites the hot B-tree pages into the WAL, so a few large transactions
/// cost far less than many small ones (measured: at 20,000 events/s, commit-per-wakeup used
/// 0.6 core). A crash can lose this much more of the log.
const LINGER: std::time::Duration = std::time::Duration::from_millis(50);
/// At most one "queue full" warning per this interval.
const DROP_WARN_INTERVAL: Duration = Duration::from_secs(10);
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Pauses before retrying a batch whose commit failed (disk full, I/O error, lock timeout).
const COMMIT_RETRY_PAUSES: [Duration; 2] = [Duration::from_millis(100), Duration::from_secs(1)];
/// Idle read connections kept for queries.
const MAX_IDLE_READERS: usize = 4;

/// Parameters per inserted row: seq, at_ms, the text columns, hash.
const INSERT_COLUMNS: usize = chain::TEXT_COLUMNS.len() + 3;

/// What happened: to a reservation, an evidence lock, an export, a session, a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// A new reservation was granted.
    Reserve,
    /// An idempotent repeat of a reserve returned the existing reservation.
    Reuse,
    /// A reserve was refused (quota, unknown camera, permission); `detail` says why.
    Deny,
    /// A lease was renewed. Optional: callers may leave heartbeats out of the log.
    Heartbeat,
    /// The reservation ended other than by expiry; `reason` says how.
    Release,
    /// The lease ran out.
    Expire,
    /// An evidence lock was created; `detail` holds its id and range, `reason` its reason.
    Lock,
    /// An evidence lock was deleted; `detail` holds its id and range.
    Unlock,
    /// An export was asked for; `detail` holds its id and range.
    ExportCreate,
    /// An export finished (`reason`: `completed`, `failed`, `cancelled`); `detail` its id.
    ExportComplete,
    /// An export's MP4 was downloaded; `detail` its id.
    ExportDownload,
    /// An export was deleted; `detail` its id.
    ExportDelete,
    /// A login succeeded (`user_id` the user).
    LoginSuccess,
    /// A login failed (`user_id` the name given; `reason` why, never the password).
    LoginFailure,
    /// A session was ended by its user.
    Logout,
    /// An access token was refreshed.
    TokenRefresh,
    /// Logins for a user or from an address were locked out after repeated failures.
    Lockout,
    /// A user was created (`detail`: the new user, role and agencies).
    UserCreate,
    /// A user's role, agencies, password or disabled flag changed (`detail` says which).
    UserUpdate,
    /// A user was deleted.
    UserDelete,
    /// An API key was created (`detail`: its id and name, never the key).
    ApiKeyCreate,
    /// An API key was revoked.
    ApiKeyRevoke,
    /// A live (WHEP) session started.
    LiveStart,
    /// A live session ended.
    LiveEnd,
    /// Recorded video was played back (`detail`: the range).
    Playback,
    /// A camera's recording mode was changed.
    RecordingMode,
}

impl AuditAction {
    pub const ALL: [AuditAction; 26] = [
        AuditAction::Reserve,
        AuditAction::Reuse,
        AuditAction::Deny,
        AuditAction::Heartbeat,
        AuditAction::Release,
        AuditAction::Expire,
        AuditAction::Lock,
        AuditAction::Unlock,
        AuditAction::ExportCreate,
        AuditAction::ExportComplete,
        AuditAction::ExportDownload,
        AuditAction::ExportDelete,
        AuditAction::LoginSuccess,
        AuditAction::LoginFailure,
        AuditAction::Logout,
        AuditAction::TokenRefresh,
        AuditAction::Lockout,
        AuditAction::UserCreate,
        AuditAction::UserUpdate,
        AuditAction::UserDelete,
        AuditAction::ApiKeyCreate,
        AuditAction::ApiKeyRevoke,
        AuditAction::LiveStart,
        AuditAction::LiveEnd,
        AuditAction::Playback,
        AuditAction::RecordingMode,
    ];

    /// The stored name: `reserve`, `reuse`, `deny`, `heartbeat`, `release`, `expire`, `lock`,
    /// `unlock`, `export_create`, ..., `login_success`, ..., `recording_mode` (snake case).
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Reserve => "reserve",
            AuditAction::Reuse => "reuse",
            AuditAction::Deny => "deny",
            AuditAction::Heartbeat => "heartbeat",
            AuditAction::Release => "release",
            AuditAction::Expire => "expire",
            AuditAction::Lock => "lock",
            AuditAction::Unlock => "unlock",
            AuditAction::ExportCreate => "export_create",
            AuditAction::ExportComplete => "export_complete",
            AuditAction::ExportDownload => "export_download",
            AuditAction::ExportDelete => "export_delete",
            AuditAction::LoginSuccess => "login_success",
            AuditAction::LoginFailure => "login_failure",
            AuditAction::Logout => "logout",
            AuditAction::TokenRefresh => "token_refresh",
            AuditAction::Lockout => "lockout",
            AuditAction::UserCreate => "user_create",
            AuditAction::UserUpdate => "user_update",
            AuditAction::UserDelete => "user_delete",
            AuditAction::ApiKeyCreate => "api_key_create",
            AuditAction::ApiKeyRevoke => "api_key_revoke",
            AuditAction::LiveStart => "live_start",
            AuditAction::LiveEnd => "live_end",
            AuditAction::Playback => "playback",
            AuditAction::RecordingMode => "recording_mode",
        }
    }

    /// The inverse of [`AuditAction::as_str`].
    pub fn parse(s: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing that happened, as handed to [`AuditLog::record`].
///
/// `at` is stored with millisecond precision (sub-millisecond parts are truncated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: SystemTime,
    pub action: AuditAction,
    /// `None` for a [`AuditAction::Deny`], which has no reservation.
    pub reservation_id: Option<ReservationId>,
    /// Who: a user id, a user name (failed logins), or `cli` for the command line.
    pub user_id: String,
    /// Empty for events about no camera (logins, users, API keys); stored as NULL.
    pub camera_id: CameraId,
    pub agency: Option<String>,
    pub quality: Option<String>,
    /// Why: free text, so new reasons need no migration. As the node writes it today: for
    /// `release` and `expire` how the reservation ended (`released`, `expired`,
    /// `session_ended`, `shutdown`: `admission::EndReason::as_str`); for `deny` the API error
    /// code (`AGENCY_LIMIT_REACHED`, `GLOBAL_LIMIT_REACHED`, `USER_LIMIT_REACHED`, ...); for
    /// `lock` and `unlock` the evidence lock's reason as its author gave it; none otherwise.
    pub reason: Option<String>,
    /// Free-form detail, e.g. `AGENCY_LIMIT_REACHED METRO 30/30`.
    pub detail: Option<String>,
    /// The actor's role (`admin`, ..., `service`; `auth::Role::as_str`) when known.
    pub role: Option<String>,
    /// The client's address, when the event came from a request.
    pub source_ip: Option<String>,
    /// The client's `User-Agent`, when the event came from a request.
    pub user_agent: Option<String>,
}

impl AuditEvent {
    /// An event with the optional fields empty; set them with struct update syntax or directly.
    pub fn new(
        at: SystemTime,
        action: AuditAction,
        user_id: impl Into<String>,
        camera_id: impl Into<CameraId>,
    ) -> AuditEvent {
        AuditEvent {
            at,
            action,
            reservation_id: None,
            user_id: user_id.into(),
            camera_id: camera_id.into(),
            agency: None,
            quality: None,
            reason: None,
            detail: None,
            role: None,
            source_ip: None,
            user_agent: None,
        }
    }

    /// An event about no camera (a login, a user, an API key).
    pub fn without_camera(
        at: SystemTime,
        action: AuditAction,
        user_id: impl Into<String>,
    ) -> AuditEvent {
        AuditEvent::new(at, action, user_id, "")
    }

    /// The hashed fields of this event stored as row `seq` (in `chain::TEXT_COLUMNS` order).
    fn chain_fields(&self, seq: i64) -> chain::Fields<'_> {
        chain::Fields {
            seq,
            at_ms: to_ms(self.at),
            texts: [
                Some(self.action.as_str()),
                self.reservation_id.as_deref(),
                Some(&self.user_id),
                Some(self.camera_id.as_str()).filter(|c| !c.is_empty()),
                self.agency.as_deref(),
                self.quality.as_deref(),
                self.reason.as_deref(),
                self.detail.as_deref(),
                self.role.as_deref(),
                self.source_ip.as_deref(),
                self.user_agent.as_deref(),
            ],
        }
    }
}

/// One stored event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Assigned by the database in commit order; never reused.
    pub seq: i64,
    /// The event, `at` truncated to milliseconds.
    pub event: AuditEvent,
}

/// What [`AuditLog::query`] returns: every given condition must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditFilter {
    pub camera_id: Option<String>,
    pub user_id: Option<String>,
    pub reservation_id: Option<String>,
    pub action: Option<AuditAction>,
    /// Inclusive: `at >= since`.
    pub since: Option<SystemTime>,
    /// Exclusive: `at < until`.
    pub until: Option<SystemTime>,
    /// Paging: only rows after this one in the newest-first order, given as its
    /// `(at in ms, seq)` (the last row of the previous page).
    pub after: Option<(i64, i64)>,
    /// At most this many rows, newest first. 0 returns nothing; more than [`MAX_QUERY_LIMIT`] is
    /// treated as [`MAX_QUERY_LIMIT`].
    pub limit: u32,
}

impl Default for AuditFilter {
    fn default() -> AuditFilter {
        AuditFilter {
            camera_id: None,
            user_id: None,
            reservation_id: None,
            action: None,
            since: None,
            until: None,
            after: None,
            limit: DEFAULT_QUERY_LIMIT,
        }
    }
}

pub(crate) use base::clock::{from_unix_ms as from_ms, unix_ms as to_ms};

/// Where the database lives.
#[derive(Clone, Debug)]
enum Target {
    File(PathBuf),
    /// A named in-memory database (SQLite's `memdb` VFS) shared by the writer and the readers of
    /// one `AuditLog`; gone when the last connection closes.
    Memory(String),
}

impl Target {
    fn label(&self) -> String {
        match self {
            Target::File(p) => p.display().to_string(),
            Target::Memory(uri) => uri.clone(),
        }
    }

    fn open(&self, read_only: bool) -> rusqlite::Result<Connection> {
        let mode = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        };
        let conn = match self {
            // No SQLITE_OPEN_URI: a path is a path, even one starting with "file:".
            Target::File(p) => {
                Connection::open_with_flags(p, mode | OpenFlags::SQLITE_OPEN_NO_MUTEX)?
            }
            Target::Memory(uri) => Connection::open_with_flags(
                uri,
                mode | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
            )?,
        };
        conn.busy_timeout(BUSY_TIMEOUT)?;
        if read_only {
            conn.pragma_update(None, "query_only", true)?;
        }
        Ok(conn)
    }
}

enum Msg {
    Event(Box<AuditEvent>),
    /// Answered once every message queued before it is committed (or has failed for good).
    Flush(oneshot::Sender<()>),
}

struct Counters {
    written: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    /// Milliseconds after `origin` of the last "queue full" warning, plus the interval (so that
    /// the first drop warns at once).
    last_drop_warn: AtomicU64,
    origin: Instant,
}

impl Counters {
    fn elapsed_ms(&self) -> u64 {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        ms.saturating_add(u64::try_from(DROP_WARN_INTERVAL.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Joins the writer thread when dropped.
struct WriterThread(Option<JoinHandle<()>>);

impl Drop for WriterThread {
    fn drop(&mut self) {
        if let Some(h) = self.0.take()
            && h.join().is_err()
        {
            error!("audit writer thread panicked");
        }
    }
}

struct Inner {
    // Field order matters: fields drop in declaration order, so the sender goes first (the writer
    // sees the channel close, commits what is queued and exits), then `_writer` joins it.
    tx: mpsc::Sender<Msg>,
    _writer: WriterThread, // held only to be joined on drop
    counters: Arc<Counters>,
    target: Target,
    label: String,
    readers: Mutex<Vec<Connection>>,
}

/// A handle to the audit log; clones share one writer thread and one database.
///
/// When the last handle is dropped, the drop waits for the writer thread to commit everything
/// queued and exit (so a clean shutdown loses nothing).
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("db", &self.inner.label)
            .field("written", &self.written())
            .field("dropped", &self.dropped())
            .field("failed", &self.failed())
            .finish()
    }
}

impl AuditLog {
    /// Opens (creating it and its parent directories if needed) the database file at `path`,
    /// brings its schema up to date, and starts the writer thread. Blocks on disk: call it at
    /// startup, not on an async hot path.
    pub fn open(path: &Path) -> Result<AuditLog, Error> {
        Self::open_with_capacity(path, QUEUE_CAPACITY)
    }

    /// [`AuditLog::open`] with a given queue capacity (at least 1); for tests of the drop path.
    pub fn open_with_capacity(path: &Path, capacity: usize) -> Result<AuditLog, Error> {
        let label = path.display().to_string();
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).err_kind(
                ErrorKind::Internal,
                format_args!("{label}: creating directory {}", dir.display()),
            )?;
        }
        Self::start(Target::File(path.to_owned()), capacity)
    }

    /// A private in-memory database, for tests. It behaves as a file would (a writer thread,
    /// separate read connections) except that it is gone when the last handle is dropped.
    pub fn open_in_memory() -> Result<AuditLog, Error> {
        Self::open_in_memory_with_capacity(QUEUE_CAPACITY)
    }

    /// [`AuditLog::open_in_memory`] with a given queue capacity (at least 1); for tests of the
    /// drop path.
    pub fn open_in_memory_with_capacity(capacity: usize) -> Result<AuditLog, Error> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let uri = format!("file:/vantage-audit-{}-{n}?vfs=memdb", std::process::id());
        Self::start(Target::Memory(uri), capacity)
    }

    fn start(target: Target, capacity: usize) -> Result<AuditLog, Error> {
        let label = target.label();
        let mut conn = target.open(false).err_kind(
            ErrorKind::Internal,
            format_args!("{label}: opening database"),
        )?;
        if let Target::File(_) = target {
            let mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
                .err_kind(
                    ErrorKind::Internal,
                    format_args!("{label}: setting WAL mode"),
                )?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(err!(
                    Internal,
                    "{label}: database refused WAL mode (journal_mode is {mode})"
                ));
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL").err_kind(
            ErrorKind::Internal,
            format_args!("{label}: setting synchronous"),
        )?;
        crate::schema::migrate(&mut conn, &label)?;

        let (tx, rx) = mpsc::channel(capacity.max(1));
        let counters = Arc::new(Counters {
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            last_drop_warn: AtomicU64::new(0),
            origin: Instant::now(),
        });
        let writer = {
            let counters = counters.clone();
            let writer_label = label.clone();
            std::thread::Builder::new()
                .name("audit-writer".to_owned())
                .spawn(move || run_writer(conn, rx, &counters, &writer_label))
                .err_kind(
                    ErrorKind::Internal,
                    format_args!("{label}: starting the audit writer thread"),
                )?
        };
        Ok(AuditLog {
            inner: Arc::new(Inner {
                tx,
                _writer: WriterThread(Some(writer)),
                counters,
                target,
                label,
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Queues `ev` for the writer thread. Never waits: when the queue is full (the disk cannot keep
    /// up, or the writer is retrying a failed commit) the event is dropped, counted in
    /// [`AuditLog::dropped`], and a warning is logged (at most one per 10 s).
    pub fn record(&self, ev: AuditEvent) {
        match self.inner.tx.try_send(Msg::Event(Box::new(ev))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.note_drop("queue full"),
            Err(mpsc::error::TrySendError::Closed(_)) => self.note_drop("writer stopped"),
        }
    }

    fn note_drop(&self, why: &str) {
        let c = &self.inner.counters;
        let total = c.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let now = c.elapsed_ms();
        let last = c.last_drop_warn.load(Ordering::Relaxed);
        let interval = u64::try_from(DROP_WARN_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        if now.saturating_sub(last) >= interval
            && c.last_drop_warn
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            warn!(
                db = %self.inner.label,
                dropped_total = total,
                "audit log {why}: dropping audit events (capacity {})",
                self.inner.tx.max_capacity()
            );
        }
    }

    /// Resolves once everything recorded before the call is committed (or has failed for good,
    /// which [`AuditLog::failed`] counts). Waits for queue space if the queue is full.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inner.tx.send(Msg::Flush(tx)).await.is_err() {
            return; // the writer is gone; nothing more will be committed
        }
        let _ = rx.await;
    }

    /// Events matching `f`, newest first (by `at`, then by `seq`). Runs on a blocking thread with
    /// its own read connection, so it never waits for the writer (WAL readers see the last
    /// committed state).
    pub async fn query(&self, f: AuditFilter) -> Result<Vec<AuditRecord>, Error> {
        let inner = self.inner.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(h) => h
                .spawn_blocking(move || query_blocking(&inner, &f))
                .await
                .map_err(|e| {
                    err!(
                        Internal,
                        "{}: audit query task failed: {e}",
                        self.inner.label
                    )
                })?,
            Err(_) => query_blocking(&inner, &f),
        }
    }

    /// Events dropped because the queue was full (or the writer had stopped).
    pub fn dropped(&self) -> u64 {
        self.inner.counters.dropped.load(Ordering::Relaxed)
    }

    /// Events committed.
    pub fn written(&self) -> u64 {
        self.inner.counters.written.load(Ordering::Relaxed)
    }

    /// Events lost because their transaction could not be committed after retries (logged).
    pub fn failed(&self) -> u64 {
        self.inner.counters.failed.load(Ordering::Relaxed)
    }

    /// The database's path (or in-memory URI), as used in messages.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// Audit retention: deletes the oldest rows, in `seq` order, up to the first row at or after
    /// `before` (a row older than `before` that follows a newer one stays, so what remains is one
    /// unbroken stretch of the chain), and records the last deleted row's seq and hash as the
    /// chain's anchor, from which [`AuditLog::verify`] starts. Waits for everything recorded
    /// before the call to be committed first. Returns how many rows were deleted. No API deletes
    /// single rows.
    pub async fn delete_before(&self, before: SystemTime) -> Result<u64, Error> {
        self.flush().await;
        let inner = self.inner.clone();
        let before_ms = to_ms(before);
        let run = move || {
            let label = &inner.label;
            let mut conn = inner.target.open(false).err_kind(
                ErrorKind::Internal,
                format_args!("{label}: opening a connection for audit retention"),
            )?;
            chain::delete_before(&mut conn, before_ms).err_kind(
                ErrorKind::Internal,
                format_args!("{label}: audit retention"),
            )
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => h.spawn_blocking(run).await.map_err(|e| {
                err!(
                    Internal,
                    "{}: audit retention task failed: {e}",
                    self.inner.label
                )
            })?,
            Err(_) => run(),
        }
    }

    /// Checks the hash chain of the management database at `path` (which must exist): every row
    /// in `seq` order, from the retention anchor. Blocking. Brings the schema up to date first
    /// (hashing rows written before the chain existed), like any open.
    pub fn verify(path: &Path) -> Result<chain::VerifyReport, Error> {
        let label = path.display().to_string();
        if !path.exists() {
            return Err(err!(NotFound, "{label}: no such database"));
        }
        let (conn, label) = crate::schema::open_file(path)?;
        chain::verify(&conn).err_kind(
            ErrorKind::Internal,
            format_args!("{label}: verifying the audit chain"),
        )
    }

    /// [`AuditLog::verify`] on this log's database (tests; in-memory logs).
    pub async fn verify_chain(&self) -> Result<chain::VerifyReport, Error> {
        self.flush().await;
        let conn = self.inner.target.open(true).err_kind(
            ErrorKind::Internal,
            format_args!("{}: opening read connection", self.inner.label),
        )?;
        chain::verify(&conn).err_kind(
            ErrorKind::Internal,
            format_args!("{}: verifying the audit chain", self.inner.label),
        )
    }
}

fn run_writer(mut conn: Connection, mut rx: mpsc::Receiver<Msg>, c: &Counters, label: &str) {
    let mut batch: Vec<Box<AuditEvent>> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        let mut lingered = false;
        loop {
            while let Some(msg) = next {
                match msg {
                    Msg::Event(ev) => batch.push(ev),
                    Msg::Flush(w) => waiters.push(w),
                }
                next = if batch.len() < MAX_BATCH {
                    rx.try_recv().ok()
                } else {
                    None
                };
            }
            if lingered || !waiters.is_empty() || batch.len() >= MAX_BATCH {
                break;
            }
            lingered = true;
            std::thread::sleep(LINGER);
            next = rx.try_recv().ok();
        }
        if !batch.is_empty() {
            write_with_retries(&mut conn, &batch, c, label);
            batch.clear();
        }
        for w in waiters.drain(..) {
            let _ = w.send(()); // the flusher may have given up waiting; fine
        }
    }
    let dropped = c.dropped.load(Ordering::Relaxed);
    let failed = c.failed.load(Ordering::Relaxed);
    if dropped > 0 || failed > 0 {
        warn!(db = %label, dropped, failed, "audit writer stopping; events were lost");
    }
}

fn write_with_retries(conn: &mut Connection, batch: &[Box<AuditEvent>], c: &Counters, label: &str) {
    let mut attempt = 0;
    loop {
        match write_batch(conn, batch) {
            Ok(()) => {
                c.written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                return;
            }
            Err(e) => match COMMIT_RETRY_PAUSES.get(attempt) {
                Some(pause) => {
                    warn!(db = %label, events = batch.len(), "audit commit failed, retrying: {e}");
                    std::thread::sleep(*pause);
                    attempt += 1;
                }
                None => {
                    let total = c.failed.fetch_add(batch.len() as u64, Ordering::Relaxed)
                        + batch.len() as u64;
                    error!(
                        db = %label, events = batch.len(), failed_total = total,
                        "audit commit failed for good; events lost: {e}"
                    );
                    return;
                }
            },
        }
    }
}

/// Rows per multi-row `INSERT`: fewer statement executions (about a third faster than one row per
/// statement); 14 × 64 parameters stay far below SQLite's limit.
const ROWS_PER_INSERT: usize = 64;

/// `INSERT ... VALUES (?, ... ?), ... ` for `rows` rows.
fn insert_sql(rows: usize) -> String {
    let row = format!("({})", vec!["?"; INSERT_COLUMNS].join(","));
    let mut sql = format!("INSERT INTO audit_event ({}) VALUES", chain::STORED_COLUMNS);
    for i in 0..rows {
        sql.push_str(if i == 0 { " " } else { ", " });
        sql.push_str(&row);
    }
    sql
}

/// Inserts `batch` in one transaction, each row numbered and hash-chained after the last one
/// (read inside the transaction, so another process writing the same file keeps the chain too).
fn write_batch(conn: &mut Connection, batch: &[Box<AuditEvent>]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (mut seq, mut prev) = chain::head(&tx)?;
    for chunk in batch.chunks(ROWS_PER_INSERT) {
        // At most two distinct texts per batch (full chunks and the tail): both stay cached.
        let mut stmt = tx.prepare_cached(&insert_sql(chunk.len()))?;
        let mut i = 1;
        for ev in chunk {
            let f = ev.chain_fields(seq);
            prev = f.hash(&prev);
            stmt.raw_bind_parameter(i, f.seq)?;
            stmt.raw_bind_parameter(i + 1, f.at_ms)?;
            for (k, t) in f.texts.iter().enumerate() {
                stmt.raw_bind_parameter(i + 2 + k, t)?;
            }
            stmt.raw_bind_parameter(i + INSERT_COLUMNS - 1, &prev[..])?;
            i += INSERT_COLUMNS;
            seq += 1;
        }
        stmt.raw_execute()?;
    }
    tx.commit()
}

fn query_blocking(inner: &Inner, f: &AuditFilter) -> Result<Vec<AuditRecord>, Error> {
    let limit = f.limit.min(MAX_QUERY_LIMIT);
    if limit == 0 {
        return Ok(Vec::new());
    }
    let label = &inner.label;
    let pooled = inner.readers.lock().pop();
    let conn = match pooled {
        Some(c) => c,
        None => inner.target.open(true).err_kind(
            ErrorKind::Internal,
            format_args!("{label}: opening read connection"),
        )?,
    };
    let out = run_query(&conn, f, limit)
        .err_kind(ErrorKind::Internal, format_args!("{label}: audit query"));
    {
        let mut idle = inner.readers.lock();
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
    }
    out
}

fn run_query(conn: &Connection, f: &AuditFilter, limit: u32) -> rusqlite::Result<Vec<AuditRecord>> {
    // The SQL text is built only from the fixed fragments below; every value is a parameter.
    let mut sql = String::from(
        "SELECT seq, at_ms, action, reservation_id, user_id, camera_id, agency, quality, reason, \
         detail, role, source_ip, user_agent FROM audit_event WHERE 1 = 1",
    );
    let mut args: Vec<Value> = Vec::new();
    // Events about no camera store NULL; an empty camera filter finds them.
    let no_camera = f.camera_id.as_deref() == Some("");
    if no_camera {
        sql.push_str(" AND camera_id IS NULL");
    }
    let camera = f.camera_id.clone().filter(|_| !no_camera);
    let text = [
        (" AND camera_id = ?", &camera),
        (" AND user_id = ?", &f.user_id),
        (" AND reservation_id = ?", &f.reservation_id),
    ];
    for (clause, v) in text {
        if let Some(v) = v {
            sql.push_str(clause);
            args.push(Value::Text(v.clone()));
        }
    }
    if let Some(a) = f.action {
        sql.push_str(" AND action = ?");
        args.push(Value::Text(a.as_str().to_owned()));
    }
    if let Some(t) = f.since {
        sql.push_str(" AND at_ms >= ?");
        args.push(Value::Integer(to_ms(t)));
    }
    if let Some(t) = f.until {
        sql.push_str(" AND at_ms < ?");
        args.push(Value::Integer(to_ms(t)));
    }
    if let Some((at_ms, seq)) = f.after {
        sql.push_str(" AND (at_ms < ? OR (at_ms = ? AND seq < ?))");
        args.extend([
            Value::Integer(at_ms),
            Value::Integer(at_ms),
            Value::Integer(seq),
        ]);
    }
    sql.push_str(" ORDER BY at_ms DESC, seq DESC LIMIT ?");
    args.push(Value::Integer(i64::from(limit)));

    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args.iter()), |r| {
        let action: String = r.get(2)?;
        let action = AuditAction::parse(&action).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                Box::new(err!(DataLoss, "unknown audit action {action:?}")),
            )
        })?;
        Ok(AuditRecord {
            seq: r.get(0)?,
            event: AuditEvent {
                at: from_ms(r.get(1)?),
                action,
                reservation_id: r.get::<_, Option<String>>(3)?.map(ReservationId::from),
                user_id: r.get(4)?,
                camera_id: CameraId::from(r.get::<_, Option<String>>(5)?.unwrap_or_default()),
                agency: r.get(6)?,
                quality: r.get(7)?,
                reason: r.get(8)?,
                detail: r.get(9)?,
                role: r.get(10)?,
                source_ip: r.get(11)?,
                user_agent: r.get(12)?,
            },
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(AuditAction::parse("RESERVE"), None);
        assert_eq!(AuditAction::Reserve.to_string(), "reserve");
    }
}

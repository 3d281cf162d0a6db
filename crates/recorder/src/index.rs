//! The media index (design 0006, "Index schema"): one SQLite database per recordings directory,
//! holding segments, their key frames and evidence locks.
//!
//! Segment life cycle: [`Index::begin_segment`] inserts a row in state `writing` before the first
//! byte is written; [`Index::complete_segment`] records its end and size once the file is synced
//! (`complete`); deletion marks the row `deleting` ([`Index::mark_deleting`]) before the file is
//! unlinked and removes it afterwards ([`Index::delete_segment`]), so a crash between the two leaves
//! a row recovery can finish. Times come in as arguments; nothing here reads a clock.

use crate::retention::{LockRange, SegmentInfo};
use base::{Error, ErrorKind, ResultExt, bail, err};
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use std::path::Path;
use store::schema::Migration;

/// The media index's schema, applied by the store's migration runner. Append only: never edit
/// a migration that has shipped.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "segments, key frames, evidence locks",
        sql: r#"
CREATE TABLE segment (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    camera_id      TEXT    NOT NULL,
    run_id         INTEGER NOT NULL,
    start_90k      INTEGER NOT NULL,
    end_90k        INTEGER NOT NULL,
    start_wall_ms  INTEGER NOT NULL,
    end_wall_ms    INTEGER NOT NULL,
    bytes          INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    path           TEXT    NOT NULL UNIQUE,
    codec          TEXT    NOT NULL,
    params_version INTEGER NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('writing', 'complete', 'deleting')),
    CHECK (end_90k >= start_90k),
    CHECK (end_wall_ms >= start_wall_ms)
);
CREATE INDEX segment_camera_start ON segment (camera_id, start_wall_ms);
CREATE INDEX segment_start        ON segment (start_wall_ms);
CREATE INDEX segment_unfinished   ON segment (state) WHERE state <> 'complete';
CREATE TABLE keyframe (
    segment_id  INTEGER NOT NULL REFERENCES segment (id) ON DELETE CASCADE,
    time_90k    INTEGER NOT NULL,
    byte_offset INTEGER NOT NULL CHECK (byte_offset >= 0),
    PRIMARY KEY (segment_id, time_90k)
) WITHOUT ROWID;
CREATE TABLE evidence_lock (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    camera_id     TEXT    NOT NULL,
    start_ms      INTEGER NOT NULL,
    end_ms        INTEGER NOT NULL,
    reason        TEXT    NOT NULL,
    expires_at_ms INTEGER,
    created_at_ms INTEGER NOT NULL,
    CHECK (end_ms > start_ms)
);
CREATE INDEX evidence_lock_camera ON evidence_lock (camera_id, start_ms);
"#,
    },
    Migration {
        version: 2,
        description: "per-camera usage kept by triggers; codec string and size per segment; \
                  recording settings set through the API",
        sql: r#"
CREATE TABLE camera_usage (
    camera_id TEXT    PRIMARY KEY,
    segments  INTEGER NOT NULL,
    bytes     INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO camera_usage SELECT camera_id, COUNT(*), SUM(bytes) FROM segment GROUP BY camera_id;
CREATE TRIGGER segment_usage_insert AFTER INSERT ON segment BEGIN
    INSERT INTO camera_usage VALUES (NEW.camera_id, 1, NEW.bytes)
        ON CONFLICT (camera_id) DO UPDATE SET segments = segments + 1, bytes = bytes + NEW.bytes;
END;
CREATE TRIGGER segment_usage_delete AFTER DELETE ON segment BEGIN
    UPDATE camera_usage SET segments = segments - 1, bytes = bytes - OLD.bytes
        WHERE camera_id = OLD.camera_id;
END;
CREATE TRIGGER segment_usage_bytes AFTER UPDATE OF bytes ON segment BEGIN
    UPDATE camera_usage SET bytes = bytes - OLD.bytes + NEW.bytes WHERE camera_id = NEW.camera_id;
END;
ALTER TABLE segment ADD COLUMN codec_string TEXT    NOT NULL DEFAULT '';
ALTER TABLE segment ADD COLUMN width        INTEGER NOT NULL DEFAULT 0;
ALTER TABLE segment ADD COLUMN height       INTEGER NOT NULL DEFAULT 0;
CREATE TABLE recording_setting (
    camera_id      TEXT    PRIMARY KEY,
    mode           TEXT    NOT NULL CHECK (mode IN ('continuous', 'off')),
    retention_days INTEGER CHECK (retention_days IS NULL OR retention_days >= 0),
    updated_at_ms  INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    },
];

/// No segment is longer than this (they are at most 60 s; recovery refuses longer files), which
/// lets time-range queries use the `(camera_id, start_wall_ms)` index from both ends.
pub const MAX_SEGMENT_MS: i64 = 3_600_000;

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// State of a segment row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SegmentState {
    /// Being written; `end_*` and `bytes` are not final. After a crash: recover or discard.
    Writing,
    /// Closed and synced.
    Complete,
    /// Selected for deletion; the file may or may not still exist.
    Deleting,
}

impl SegmentState {
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentState::Writing => "writing",
            SegmentState::Complete => "complete",
            SegmentState::Deleting => "deleting",
        }
    }

    fn parse(s: &str) -> rusqlite::Result<Self> {
        match s {
            "writing" => Ok(SegmentState::Writing),
            "complete" => Ok(SegmentState::Complete),
            "deleting" => Ok(SegmentState::Deleting),
            other => Err(rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                format!("unknown segment state {other:?}").into(),
            )),
        }
    }
}

/// A segment to insert (state `writing`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSegment {
    pub camera_id: String,
    pub run_id: i64,
    /// Anchored time of the first frame, 90 kHz ticks since the Unix epoch.
    pub start_90k: i64,
    pub start_wall_ms: i64,
    /// Relative to the recordings directory.
    pub path: String,
    pub codec: String,
    pub params_version: i64,
    /// RFC 6381 codec string (`avc1.64001e`) and picture size; empty/0 when unknown.
    pub codec_string: String,
    pub width: u32,
    pub height: u32,
}

/// A segment row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub id: i64,
    pub camera_id: String,
    pub run_id: i64,
    pub start_90k: i64,
    pub end_90k: i64,
    pub start_wall_ms: i64,
    pub end_wall_ms: i64,
    pub bytes: u64,
    pub path: String,
    pub codec: String,
    pub params_version: i64,
    pub state: SegmentState,
    pub codec_string: String,
    pub width: u32,
    pub height: u32,
}

/// A random-access point in a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keyframe {
    pub time_90k: i64,
    pub byte_offset: u64,
}

/// Per-camera totals over `writing` and `complete` segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraUsage {
    pub camera_id: String,
    pub segments: u64,
    pub bytes: u64,
    pub oldest_wall_ms: i64,
    pub newest_wall_ms: i64,
}

/// Progress of a `writing` segment, for [`Index::record_progress`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub segment_id: i64,
    pub end_90k: i64,
    pub end_wall_ms: i64,
    pub bytes: u64,
    pub keyframes: Vec<Keyframe>,
}

/// A camera's recording setting made through the API (it overrides the configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingSetting {
    pub camera_id: String,
    pub continuous: bool,
    pub retention_days: Option<u32>,
}

impl From<Segment> for SegmentInfo {
    fn from(s: Segment) -> SegmentInfo {
        SegmentInfo {
            id: s.id,
            camera_id: s.camera_id,
            start_ms: s.start_wall_ms,
            end_ms: s.end_wall_ms,
            bytes: s.bytes,
        }
    }
}

/// An evidence lock to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewLock {
    pub camera_id: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub reason: String,
    pub expires_at_ms: Option<i64>,
}

/// An evidence lock row: `[start_ms, end_ms)` of `camera_id` is protected from retention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidenceLock {
    pub id: i64,
    pub camera_id: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub reason: String,
    pub expires_at_ms: Option<i64>,
    pub created_at_ms: i64,
}

/// Longest time range a bounded query ([`Reader::segments`]) accepts: 7 days.
pub const MAX_QUERY_SPAN_MS: i64 = 7 * 86_400_000;
/// Most segments a bounded query returns (7 days of 60 s segments are 10,080); a range holding
/// more is refused rather than truncated.
pub const MAX_QUERY_SEGMENTS: usize = 50_000;
/// Read-only connections kept open for reuse; readers beyond this open their own and close it.
const MAX_IDLE_READERS: usize = 4;

/// The media index.
///
/// Writes go through one read-write connection behind a mutex (the writer threads, the syncer,
/// recovery, retention and the API's few writes). Reads use their own read-only connections from
/// a small pool: in WAL mode a reader sees the last commit and never waits for a writer's
/// transaction or for the writer mutex. (An in-memory index, for tests, has only the one
/// connection.) Every call is synchronous: async callers go through `spawn_blocking`.
pub struct Index {
    conn: Mutex<Connection>,
    /// The database file for read-only connections; `None` in memory.
    path: Option<std::path::PathBuf>,
    /// Idle read-only connections.
    readers: Mutex<Vec<Connection>>,
    label: String,
}

/// An error of a bounded query: `InvalidArgument` naming the request `field` it is about
/// (`start` or `end`), or another error of the index (`field` is `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryError {
    pub field: Option<&'static str>,
    pub error: Error,
}

impl From<Error> for QueryError {
    fn from(error: Error) -> Self {
        QueryError { field: None, error }
    }
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for QueryError {}

fn bad_range(field: &'static str, msg: String) -> QueryError {
    QueryError {
        field: Some(field),
        error: Error::new(ErrorKind::InvalidArgument, msg),
    }
}

/// Segments and bytes in a time range ([`Reader::range_totals`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RangeTotals {
    pub segments: u64,
    pub bytes: u64,
}

/// The read side of the media index for request handlers (timeline, storage status, locks,
/// later playback): read-only WAL connections, so a request never waits behind the writers'
/// commits, and range queries bounded by [`MAX_QUERY_SPAN_MS`] and [`MAX_QUERY_SEGMENTS`].
/// Cheap to clone; its calls block (briefly), so async code runs them in `spawn_blocking`.
#[derive(Clone)]
pub struct Reader(std::sync::Arc<Index>);

impl Reader {
    /// Segments of `camera_id` overlapping `[start_ms, end_ms)`, oldest first (`writing` and
    /// `complete`). Fails with `InvalidArgument` naming `end` when the range is empty or
    /// reversed, and naming `start` when it spans more than [`MAX_QUERY_SPAN_MS`] or holds more
    /// than [`MAX_QUERY_SEGMENTS`] segments.
    pub fn segments(
        &self,
        camera_id: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Segment>, QueryError> {
        if end_ms <= start_ms {
            return Err(bad_range(
                "end",
                format!("end {end_ms} ms is not after start {start_ms} ms"),
            ));
        }
        if end_ms.saturating_sub(start_ms) > MAX_QUERY_SPAN_MS {
            return Err(bad_range(
                "start",
                format!(
                    "the range is longer than {} days; query at most that at a time",
                    MAX_QUERY_SPAN_MS / 86_400_000
                ),
            ));
        }
        let segs = self
            .0
            .segments_limited(camera_id, start_ms, end_ms, MAX_QUERY_SEGMENTS + 1)?;
        if segs.len() > MAX_QUERY_SEGMENTS {
            return Err(bad_range(
                "start",
                format!(
                    "the range holds more than {MAX_QUERY_SEGMENTS} segments; query a shorter one"
                ),
            ));
        }
        Ok(segs)
    }

    /// How many segments of `camera_id` overlap `[start_ms, end_ms)` and their bytes (`writing`
    /// and `complete`), for any span: one aggregate row, counted on the `(camera, start)` index.
    pub fn range_totals(
        &self,
        camera_id: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<RangeTotals, Error> {
        self.0.range_totals(camera_id, start_ms, end_ms)
    }

    /// One segment by id.
    pub fn segment(&self, id: i64) -> Result<Option<Segment>, Error> {
        self.0.segment(id)
    }

    /// Key frames of a segment, in time order.
    pub fn keyframes(&self, segment_id: i64) -> Result<Vec<Keyframe>, Error> {
        self.0.keyframes(segment_id)
    }

    /// The newest segment of a camera (any state but `deleting`).
    pub fn latest_segment(&self, camera_id: &str) -> Result<Option<Segment>, Error> {
        self.0.latest_segment(camera_id)
    }

    /// Per-camera usage ([`Index::camera_usage`]).
    pub fn camera_usage(&self) -> Result<Vec<CameraUsage>, Error> {
        self.0.camera_usage()
    }

    /// Bytes of all segments not yet deleted.
    pub fn total_bytes(&self) -> Result<u64, Error> {
        self.0.total_bytes()
    }

    /// Evidence locks (of one camera, or all).
    pub fn locks(&self, camera_id: Option<&str>) -> Result<Vec<EvidenceLock>, Error> {
        self.0.locks(camera_id)
    }

    /// One evidence lock.
    pub fn lock(&self, id: i64) -> Result<Option<EvidenceLock>, Error> {
        self.0.lock(id)
    }

    /// Recording settings made through the API.
    pub fn recording_settings(&self) -> Result<Vec<RecordingSetting>, Error> {
        self.0.recording_settings()
    }
}

const SEGMENT_COLS: &str = "id, camera_id, run_id, start_90k, end_90k, start_wall_ms, end_wall_ms, \
                            bytes, path, codec, params_version, state, codec_string, width, height";

fn segment_row(r: &Row<'_>) -> rusqlite::Result<Segment> {
    let state: String = r.get(11)?;
    Ok(Segment {
        id: r.get(0)?,
        camera_id: r.get(1)?,
        run_id: r.get(2)?,
        start_90k: r.get(3)?,
        end_90k: r.get(4)?,
        start_wall_ms: r.get(5)?,
        end_wall_ms: r.get(6)?,
        bytes: r.get::<_, i64>(7)?.max(0) as u64,
        path: r.get(8)?,
        codec: r.get(9)?,
        params_version: r.get(10)?,
        state: SegmentState::parse(&state)?,
        codec_string: r.get(12)?,
        width: r.get::<_, i64>(13)?.clamp(0, i64::from(u32::MAX)) as u32,
        height: r.get::<_, i64>(14)?.clamp(0, i64::from(u32::MAX)) as u32,
    })
}

fn lock_row(r: &Row<'_>) -> rusqlite::Result<EvidenceLock> {
    Ok(EvidenceLock {
        id: r.get(0)?,
        camera_id: r.get(1)?,
        start_ms: r.get(2)?,
        end_ms: r.get(3)?,
        reason: r.get(4)?,
        expires_at_ms: r.get(5)?,
        created_at_ms: r.get(6)?,
    })
}

fn to_i64(v: u64, what: &str) -> Result<i64, Error> {
    i64::try_from(v).map_err(|_| err!(InvalidArgument, "{what} {v} is out of range"))
}

impl Index {
    /// Opens (creating if needed) the index at `path` in WAL mode and migrates it. `now_ms` stamps
    /// applied migrations.
    pub fn open(path: &Path, now_ms: i64) -> Result<Index, Error> {
        let label = path.display().to_string();
        let conn = Connection::open(path).err_kind(
            ErrorKind::Internal,
            format_args!("{label}: opening media index"),
        )?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .err_kind(
                ErrorKind::Internal,
                format_args!("{label}: setting WAL mode"),
            )?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!(
                Internal,
                "{label}: database refused WAL mode (journal_mode is {mode})"
            );
        }
        Self::init(conn, Some(path.to_owned()), label, now_ms)
    }

    /// An in-memory index, for tests.
    pub fn open_in_memory(now_ms: i64) -> Result<Index, Error> {
        let conn = Connection::open_in_memory()
            .err_kind(ErrorKind::Internal, "opening in-memory media index")?;
        Self::init(conn, None, ":memory:".to_owned(), now_ms)
    }

    fn init(
        mut conn: Connection,
        path: Option<std::path::PathBuf>,
        label: String,
        now_ms: i64,
    ) -> Result<Index, Error> {
        conn.pragma_update(None, "synchronous", "NORMAL").err_kind(
            ErrorKind::Internal,
            format_args!("{label}: setting synchronous"),
        )?;
        // The WAL is truncated back to 1 MiB after each checkpoint instead of staying at its
        // high-water mark: the index shares the recordings volume, which may be small.
        conn.pragma_update(None, "journal_size_limit", 1i64 << 20)
            .err_kind(
                ErrorKind::Internal,
                format_args!("{label}: setting journal_size_limit"),
            )?;
        conn.pragma_update(None, "foreign_keys", true).err_kind(
            ErrorKind::Internal,
            format_args!("{label}: enabling foreign keys"),
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .err_kind(
                ErrorKind::Internal,
                format_args!("{label}: setting busy timeout"),
            )?;
        store::schema::apply(&mut conn, &label, MIGRATIONS, now_ms)?;
        Ok(Index {
            conn: Mutex::new(conn),
            path,
            readers: Mutex::new(Vec::new()),
            label,
        })
    }

    /// The read side for request handlers (see [`Reader`]).
    pub fn reader(self: &std::sync::Arc<Self>) -> Reader {
        Reader(self.clone())
    }

    /// Opens a read-only connection to the index file.
    fn open_reader(&self, path: &Path) -> Result<Connection, Error> {
        use rusqlite::OpenFlags;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .err_kind(ErrorKind::Internal, self.ctx("opening a read connection"))?;
        // A WAL reader waits for nothing but a checkpoint that restarts the log, which is brief.
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .err_kind(ErrorKind::Internal, self.ctx("setting busy timeout"))?;
        Ok(conn)
    }

    /// Runs `f` on a read-only connection: an idle one from the pool, else a new one (kept for
    /// reuse while fewer than [`MAX_IDLE_READERS`] are idle). In memory, on the one connection.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, Error>) -> Result<T, Error> {
        let Some(path) = &self.path else {
            return f(&self.conn.lock());
        };
        let idle = self.readers.lock().pop();
        let conn = match idle {
            Some(c) => c,
            None => self.open_reader(path)?,
        };
        let r = f(&conn);
        let mut idle = self.readers.lock();
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        r
    }

    fn ctx(&self, what: impl std::fmt::Display) -> String {
        format!("{}: {what}", self.label)
    }

    /// Inserts a segment in state `writing` (its end equals its start, 0 bytes); returns its id.
    pub fn begin_segment(&self, s: &NewSegment) -> Result<i64, Error> {
        let conn = self.conn.lock();
        conn.execute(
            "INSERT INTO segment (camera_id, run_id, start_90k, end_90k, start_wall_ms, end_wall_ms, \
             bytes, path, codec, params_version, state, codec_string, width, height) \
             VALUES (?1, ?2, ?3, ?3, ?4, ?4, 0, ?5, ?6, ?7, 'writing', ?8, ?9, ?10)",
            params![
                s.camera_id,
                s.run_id,
                s.start_90k,
                s.start_wall_ms,
                s.path,
                s.codec,
                s.params_version,
                s.codec_string,
                s.width,
                s.height
            ],
        )
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ConstraintViolation) => {
                err!(AlreadyExists, "segment path {} is already indexed: {e}", s.path)
            }
            _ => Error::new(ErrorKind::Internal, self.ctx(format_args!("inserting segment: {e}"))),
        })?;
        Ok(conn.last_insert_rowid())
    }

    fn require_state(conn: &Connection, id: i64, want: SegmentState) -> Result<(), Error> {
        let state: Option<String> = conn
            .query_row("SELECT state FROM segment WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .err_kind(ErrorKind::Internal, format_args!("reading segment {id}"))?;
        match state {
            None => bail!(NotFound, "segment {id} not found"),
            Some(s) if s == want.as_str() => Ok(()),
            Some(s) => bail!(
                FailedPrecondition,
                "segment {id} is {s}, not {}",
                want.as_str()
            ),
        }
    }

    /// Adds key frames to a `writing` segment (idempotent per time).
    pub fn add_keyframes(&self, segment_id: i64, kfs: &[Keyframe]) -> Result<(), Error> {
        let mut conn = self.conn.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .err_kind(ErrorKind::Internal, self.ctx("starting transaction"))?;
        Self::require_state(&tx, segment_id, SegmentState::Writing)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO keyframe (segment_id, time_90k, byte_offset) \
                     VALUES (?1, ?2, ?3)",
                )
                .err_kind(ErrorKind::Internal, self.ctx("preparing keyframe insert"))?;
            for k in kfs {
                st.execute(params![
                    segment_id,
                    k.time_90k,
                    to_i64(k.byte_offset, "byte offset")?
                ])
                .err_kind(ErrorKind::Internal, self.ctx("inserting keyframe"))?;
            }
        }
        tx.commit()
            .err_kind(ErrorKind::Internal, self.ctx("committing keyframes"))
    }

    /// Marks a `writing` segment `complete` with its final end and size.
    pub fn complete_segment(
        &self,
        id: i64,
        end_90k: i64,
        end_wall_ms: i64,
        bytes: u64,
    ) -> Result<(), Error> {
        let mut conn = self.conn.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .err_kind(ErrorKind::Internal, self.ctx("starting transaction"))?;
        Self::require_state(&tx, id, SegmentState::Writing)?;
        let n = tx
            .execute(
                "UPDATE segment SET end_90k = ?2, end_wall_ms = ?3, bytes = ?4, state = 'complete' \
                 WHERE id = ?1 AND ?2 >= start_90k AND ?3 >= start_wall_ms",
                params![id, end_90k, end_wall_ms, to_i64(bytes, "bytes")?],
            )
            .err_kind(
                ErrorKind::Internal,
                self.ctx(format_args!("completing segment {id}")),
            )?;
        if n == 0 {
            bail!(InvalidArgument, "segment {id}: end is before start");
        }
        tx.commit()
            .err_kind(ErrorKind::Internal, self.ctx("committing segment"))
    }

    /// One segment by id.
    pub fn segment(&self, id: i64) -> Result<Option<Segment>, Error> {
        self.read(|conn| {
            conn.query_row(
                &format!("SELECT {SEGMENT_COLS} FROM segment WHERE id = ?1"),
                [id],
                segment_row,
            )
            .optional()
            .err_kind(
                ErrorKind::Internal,
                self.ctx(format_args!("reading segment {id}")),
            )
        })
    }

    /// Segments of `camera_id` overlapping `[start_ms, end_ms)` (wall clock), oldest first;
    /// `writing` and `complete` only. Unbounded: for recovery, maintenance and tests; request
    /// handlers use the bounded [`Reader::segments`].
    pub fn segments(
        &self,
        camera_id: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Segment>, Error> {
        self.segments_limited(camera_id, start_ms, end_ms, usize::MAX)
    }

    /// [`Index::segments`], at most `limit` rows.
    fn segments_limited(
        &self,
        camera_id: &str,
        start_ms: i64,
        end_ms: i64,
        limit: usize,
    ) -> Result<Vec<Segment>, Error> {
        self.query_segments(
            &format!(
                "SELECT {SEGMENT_COLS} FROM segment WHERE camera_id = ?1 AND start_wall_ms < ?3 \
                 AND start_wall_ms > ?4 \
                 AND (end_wall_ms > ?2 OR state = 'writing') \
                 AND state <> 'deleting' ORDER BY start_wall_ms, id LIMIT ?5"
            ),
            // The lower bound on the start keeps this a range scan of the (camera, start)
            // index instead of every older row of the camera.
            params![
                camera_id,
                start_ms,
                end_ms,
                start_ms.saturating_sub(MAX_SEGMENT_MS),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
        )
    }

    /// Count and bytes of the segments [`Index::segments`] would return.
    pub fn range_totals(
        &self,
        camera_id: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<RangeTotals, Error> {
        self.read(|conn| {
            conn.query_row(
                "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM segment WHERE camera_id = ?1 \
                 AND start_wall_ms < ?3 AND start_wall_ms > ?4 \
                 AND (end_wall_ms > ?2 OR state = 'writing') AND state <> 'deleting'",
                params![
                    camera_id,
                    start_ms,
                    end_ms,
                    start_ms.saturating_sub(MAX_SEGMENT_MS)
                ],
                |r| {
                    Ok(RangeTotals {
                        segments: r.get::<_, i64>(0)?.max(0) as u64,
                        bytes: r.get::<_, i64>(1)?.max(0) as u64,
                    })
                },
            )
            .err_kind(ErrorKind::Internal, self.ctx("summing a range"))
        })
    }

    /// Every segment in `state`, oldest first (recovery: `writing` and `deleting` after a crash).
    pub fn segments_in_state(&self, state: SegmentState) -> Result<Vec<Segment>, Error> {
        // For the unfinished states the query repeats the partial index's condition literally,
        // so SQLite uses `segment_unfinished` (a handful of rows) instead of scanning them all.
        let unfinished = match state {
            SegmentState::Complete => "",
            SegmentState::Writing | SegmentState::Deleting => "AND state <> 'complete'",
        };
        self.query_segments(
            &format!(
                "SELECT {SEGMENT_COLS} FROM segment WHERE state = '{}' {unfinished} \
                 ORDER BY start_wall_ms, id",
                state.as_str()
            ),
            [],
        )
    }

    fn query_segments(&self, sql: &str, p: impl rusqlite::Params) -> Result<Vec<Segment>, Error> {
        self.read(|conn| {
            let mut st = conn
                .prepare_cached(sql)
                .err_kind(ErrorKind::Internal, self.ctx("preparing segment query"))?;
            st.query_map(p, segment_row)
                .and_then(|rows| rows.collect())
                .err_kind(ErrorKind::Internal, self.ctx("querying segments"))
        })
    }

    /// Key frames of a segment, in time order.
    pub fn keyframes(&self, segment_id: i64) -> Result<Vec<Keyframe>, Error> {
        self.read(|conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT time_90k, byte_offset FROM keyframe WHERE segment_id = ?1 \
                     ORDER BY time_90k",
                )
                .err_kind(ErrorKind::Internal, self.ctx("preparing keyframe query"))?;
            st.query_map([segment_id], |r| {
                Ok(Keyframe {
                    time_90k: r.get(0)?,
                    byte_offset: r.get::<_, i64>(1)?.max(0) as u64,
                })
            })
            .and_then(|rows| rows.collect())
            .err_kind(ErrorKind::Internal, self.ctx("querying keyframes"))
        })
    }

    /// Marks `complete` segments `deleting` (before their files are unlinked); returns how many
    /// changed. Ids in another state are left alone.
    pub fn mark_deleting(&self, ids: &[i64]) -> Result<usize, Error> {
        let mut conn = self.conn.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .err_kind(ErrorKind::Internal, self.ctx("starting transaction"))?;
        let mut n = 0;
        {
            let mut st = tx
                .prepare_cached(
                    "UPDATE segment SET state = 'deleting' WHERE id = ?1 AND state = 'complete'",
                )
                .err_kind(ErrorKind::Internal, self.ctx("preparing mark_deleting"))?;
            for id in ids {
                n += st.execute([id]).err_kind(
                    ErrorKind::Internal,
                    self.ctx(format_args!("marking segment {id}")),
                )?;
            }
        }
        tx.commit()
            .err_kind(ErrorKind::Internal, self.ctx("committing mark_deleting"))?;
        Ok(n)
    }

    /// Removes a segment row and its key frames; false if there was none.
    pub fn delete_segment(&self, id: i64) -> Result<bool, Error> {
        let conn = self.conn.lock();
        let n = conn
            .execute("DELETE FROM segment WHERE id = ?1", [id])
            .err_kind(
                ErrorKind::Internal,
                self.ctx(format_args!("deleting segment {id}")),
            )?;
        Ok(n > 0)
    }

    /// Per-camera segment count, bytes, oldest start and newest end. Counts and bytes come from
    /// the `camera_usage` table the triggers keep (they include `deleting` rows, whose files may
    /// still exist); oldest and newest are index lookups. Nothing here scans the segment table.
    pub fn camera_usage(&self) -> Result<Vec<CameraUsage>, Error> {
        self.read(|conn| self.camera_usage_on(conn))
    }

    fn camera_usage_on(&self, conn: &Connection) -> Result<Vec<CameraUsage>, Error> {
        let mut st = conn
            .prepare_cached(
                "SELECT u.camera_id, u.segments, u.bytes, \
                 (SELECT MIN(start_wall_ms) FROM segment s WHERE s.camera_id = u.camera_id), \
                 (SELECT end_wall_ms FROM segment s WHERE s.camera_id = u.camera_id \
                  ORDER BY start_wall_ms DESC LIMIT 1) \
                 FROM camera_usage u WHERE u.segments > 0 ORDER BY u.camera_id",
            )
            .err_kind(ErrorKind::Internal, self.ctx("preparing usage query"))?;
        st.query_map([], |r| {
            Ok(CameraUsage {
                camera_id: r.get(0)?,
                segments: r.get::<_, i64>(1)?.max(0) as u64,
                bytes: r.get::<_, i64>(2)?.max(0) as u64,
                oldest_wall_ms: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                newest_wall_ms: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
            })
        })
        .and_then(|rows| rows.collect())
        .err_kind(ErrorKind::Internal, self.ctx("querying usage"))
    }

    /// Bytes of all segments not yet deleted (including `deleting`, whose files may still exist).
    pub fn total_bytes(&self) -> Result<u64, Error> {
        self.read(|conn| {
            conn.query_row(
                "SELECT COALESCE(SUM(bytes), 0) FROM camera_usage",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|b| b.max(0) as u64)
            .err_kind(ErrorKind::Internal, self.ctx("summing bytes"))
        })
    }

    /// Records the progress of `writing` segments in one transaction: new key frames, the end so
    /// far and the bytes written. Key frames are also accepted for a segment completed meanwhile
    /// (progress retried after a failed commit); its end and size are final and stay. The writer calls this once per poll with every segment that
    /// got a fragment, so the index follows the files within one GOP and one poll.
    pub fn record_progress(&self, updates: &[Progress]) -> Result<(), Error> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .err_kind(ErrorKind::Internal, self.ctx("starting transaction"))?;
        {
            let mut kf = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO keyframe (segment_id, time_90k, byte_offset) \
                     SELECT ?1, ?2, ?3 WHERE EXISTS \
                     (SELECT 1 FROM segment WHERE id = ?1 AND state <> 'deleting')",
                )
                .err_kind(ErrorKind::Internal, self.ctx("preparing keyframe insert"))?;
            let mut up = tx
                .prepare_cached(
                    "UPDATE segment SET end_90k = MAX(start_90k, ?2), \
                     end_wall_ms = MAX(start_wall_ms, ?3), bytes = ?4 \
                     WHERE id = ?1 AND state = 'writing'",
                )
                .err_kind(ErrorKind::Internal, self.ctx("preparing progress update"))?;
            for u in updates {
                for k in &u.keyframes {
                    kf.execute(params![
                        u.segment_id,
                        k.time_90k,
                        to_i64(k.byte_offset, "byte offset")?
                    ])
                    .err_kind(ErrorKind::Internal, self.ctx("inserting keyframe"))?;
                }
                up.execute(params![
                    u.segment_id,
                    u.end_90k,
                    u.end_wall_ms,
                    to_i64(u.bytes, "bytes")?
                ])
                .err_kind(
                    ErrorKind::Internal,
                    self.ctx(format_args!("updating segment {}", u.segment_id)),
                )?;
            }
        }
        tx.commit()
            .err_kind(ErrorKind::Internal, self.ctx("committing progress"))
    }

    /// Recovery: replaces a segment's key frames with those found in its file, sets its end and
    /// size, and marks it `complete` (from `writing`, or `complete` with a wrong size).
    pub fn recover_segment(
        &self,
        id: i64,
        end_90k: i64,
        end_wall_ms: i64,
        bytes: u64,
        kfs: &[Keyframe],
    ) -> Result<(), Error> {
        let mut conn = self.conn.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .err_kind(ErrorKind::Internal, self.ctx("starting transaction"))?;
        tx.execute("DELETE FROM keyframe WHERE segment_id = ?1", [id])
            .err_kind(ErrorKind::Internal, self.ctx("clearing keyframes"))?;
        Self::insert_keyframes(&tx, id, kfs).map_err(|e| e.context(self.ctx("recovery")))?;
        let n = tx
            .execute(
                "UPDATE segment SET end_90k = MAX(start_90k, ?2), \
                 end_wall_ms = MAX(start_wall_ms, ?3), bytes = ?4, state = 'complete' \
                 WHERE id = ?1 AND state <> 'deleting'",
                params![id, end_90k, end_wall_ms, to_i64(bytes, "bytes")?],
            )
            .err_kind(
                ErrorKind::Internal,
                self.ctx(format_args!("recovering segment {id}")),
            )?;
        if n == 0 {
            bail!(NotFound, "segment {id} is gone or being deleted");
        }
        tx.commit()
            .err_kind(ErrorKind::Internal, self.ctx("committing recovery"))
    }

    /// Recovery: indexes a file the index did not know as a `complete` segment; returns its id.
    pub fn insert_recovered(
        &self,
        s: &NewSegment,
        end_90k: i64,
        end_wall_ms: i64,
        bytes: u64,
        kfs: &[Keyframe],
    ) -> Result<i64, Error> {
        let id = self.begin_segment(s)?;
        self.recover_segment(id, end_90k, end_wall_ms, bytes, kfs)?;
        Ok(id)
    }

    fn insert_keyframes(tx: &Connection, id: i64, kfs: &[Keyframe]) -> Result<(), Error> {
        let mut st = tx
            .prepare_cached(
                "INSERT OR REPLACE INTO keyframe (segment_id, time_90k, byte_offset) \
                 VALUES (?1, ?2, ?3)",
            )
            .err_kind(ErrorKind::Internal, "preparing keyframe insert")?;
        for k in kfs {
            st.execute(params![
                id,
                k.time_90k,
                to_i64(k.byte_offset, "byte offset")?
            ])
            .err_kind(ErrorKind::Internal, "inserting keyframe")?;
        }
        Ok(())
    }

    /// Whether a segment row has this path (any state).
    pub fn has_path(&self, path: &str) -> Result<bool, Error> {
        self.read(|conn| {
            conn.query_row("SELECT 1 FROM segment WHERE path = ?1", [path], |_| Ok(()))
                .optional()
                .map(|o| o.is_some())
                .err_kind(ErrorKind::Internal, self.ctx("looking up a path"))
        })
    }

    /// The camera whose segments live under directory `dir` (relative), if any row says so.
    pub fn camera_of_dir(&self, dir: &str) -> Result<Option<String>, Error> {
        self.read(|conn| {
            conn.query_row(
                "SELECT camera_id FROM segment WHERE path >= ?1 || '/' AND path < ?1 || '0' \
                 LIMIT 1",
                [dir],
                |r| r.get(0),
            )
            .optional()
            .err_kind(ErrorKind::Internal, self.ctx("looking up a directory"))
        })
    }

    /// The newest segment of a camera (any state but `deleting`).
    pub fn latest_segment(&self, camera_id: &str) -> Result<Option<Segment>, Error> {
        Ok(self
            .query_segments(
                &format!(
                    "SELECT {SEGMENT_COLS} FROM segment WHERE camera_id = ?1 \
                     AND state <> 'deleting' ORDER BY start_wall_ms DESC, id DESC LIMIT 1"
                ),
                params![camera_id],
            )?
            .pop())
    }

    /// A page of `complete` segments, oldest first, strictly after `after` (`(start_ms, id)`):
    /// retention walks the index in pages instead of loading it.
    pub fn oldest_complete(
        &self,
        after: Option<(i64, i64)>,
        limit: usize,
    ) -> Result<Vec<SegmentInfo>, Error> {
        let (s, id) = after.unwrap_or((i64::MIN, i64::MIN));
        self.infos(
            &format!(
                "SELECT {SEGMENT_COLS} FROM segment WHERE state = 'complete' \
                 AND (start_wall_ms > ?1 OR (start_wall_ms = ?1 AND id > ?2)) \
                 ORDER BY start_wall_ms, id LIMIT ?3"
            ),
            params![s, id, limit as i64],
        )
    }

    /// `complete` segments of a camera that ended at or before `cutoff_ms`, oldest first.
    pub fn expired(
        &self,
        camera_id: &str,
        cutoff_ms: i64,
        limit: usize,
    ) -> Result<Vec<SegmentInfo>, Error> {
        self.infos(
            &format!(
                "SELECT {SEGMENT_COLS} FROM segment WHERE camera_id = ?1 AND start_wall_ms <= ?2 \
                 AND end_wall_ms <= ?2 AND state = 'complete' ORDER BY start_wall_ms, id LIMIT ?3"
            ),
            params![camera_id, cutoff_ms, limit as i64],
        )
    }

    fn infos(&self, sql: &str, p: impl rusqlite::Params) -> Result<Vec<SegmentInfo>, Error> {
        Ok(self
            .query_segments(sql, p)?
            .into_iter()
            .map(SegmentInfo::from)
            .collect())
    }

    /// Recording settings made through the API: `(camera_id, mode, retention_days)`.
    pub fn recording_settings(&self) -> Result<Vec<RecordingSetting>, Error> {
        self.read(|conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT camera_id, mode, retention_days FROM recording_setting \
                     ORDER BY camera_id",
                )
                .err_kind(ErrorKind::Internal, self.ctx("preparing settings query"))?;
            st.query_map([], |r| {
                Ok(RecordingSetting {
                    camera_id: r.get(0)?,
                    continuous: r.get::<_, String>(1)? == "continuous",
                    retention_days: r
                        .get::<_, Option<i64>>(2)?
                        .map(|d| d.clamp(0, u32::MAX as i64) as u32),
                })
            })
            .and_then(|rows| rows.collect())
            .err_kind(ErrorKind::Internal, self.ctx("querying settings"))
        })
    }

    /// Stores a camera's recording setting (replacing any earlier one).
    pub fn set_recording_setting(&self, s: &RecordingSetting, now_ms: i64) -> Result<(), Error> {
        let conn = self.conn.lock();
        conn.execute(
            "INSERT OR REPLACE INTO recording_setting (camera_id, mode, retention_days, \
             updated_at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![
                s.camera_id,
                if s.continuous { "continuous" } else { "off" },
                s.retention_days.map(i64::from),
                now_ms
            ],
        )
        .map(|_| ())
        .err_kind(ErrorKind::Internal, self.ctx("storing a recording setting"))
    }

    /// `complete` segments in the shape [`crate::retention::plan`] takes.
    pub fn retention_candidates(&self) -> Result<Vec<SegmentInfo>, Error> {
        Ok(self
            .segments_in_state(SegmentState::Complete)?
            .into_iter()
            .map(|s| SegmentInfo {
                id: s.id,
                camera_id: s.camera_id,
                start_ms: s.start_wall_ms,
                end_ms: s.end_wall_ms,
                bytes: s.bytes,
            })
            .collect())
    }

    /// Creates an evidence lock; returns its id.
    pub fn create_lock(&self, l: &NewLock, now_ms: i64) -> Result<i64, Error> {
        if l.end_ms <= l.start_ms {
            bail!(
                InvalidArgument,
                "evidence lock on {}: end {} is not after start {}",
                l.camera_id,
                l.end_ms,
                l.start_ms
            );
        }
        let conn = self.conn.lock();
        conn.execute(
            "INSERT INTO evidence_lock (camera_id, start_ms, end_ms, reason, expires_at_ms, \
             created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                l.camera_id,
                l.start_ms,
                l.end_ms,
                l.reason,
                l.expires_at_ms,
                now_ms
            ],
        )
        .err_kind(ErrorKind::Internal, self.ctx("inserting evidence lock"))?;
        Ok(conn.last_insert_rowid())
    }

    /// Evidence locks (of one camera, or all), including expired ones, by camera and start.
    pub fn locks(&self, camera_id: Option<&str>) -> Result<Vec<EvidenceLock>, Error> {
        self.read(|conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT id, camera_id, start_ms, end_ms, reason, expires_at_ms, \
                     created_at_ms FROM evidence_lock WHERE ?1 IS NULL OR camera_id = ?1 \
                     ORDER BY camera_id, start_ms, id",
                )
                .err_kind(ErrorKind::Internal, self.ctx("preparing lock query"))?;
            st.query_map([camera_id], lock_row)
                .and_then(|rows| rows.collect())
                .err_kind(ErrorKind::Internal, self.ctx("querying locks"))
        })
    }

    /// One evidence lock.
    pub fn lock(&self, id: i64) -> Result<Option<EvidenceLock>, Error> {
        self.read(|conn| {
            conn.query_row(
                "SELECT id, camera_id, start_ms, end_ms, reason, expires_at_ms, created_at_ms \
                 FROM evidence_lock WHERE id = ?1",
                [id],
                lock_row,
            )
            .optional()
            .err_kind(
                ErrorKind::Internal,
                self.ctx(format_args!("reading lock {id}")),
            )
        })
    }

    /// Locks not expired at `now_ms`, in the shape [`crate::retention::plan`] takes.
    pub fn active_lock_ranges(&self, now_ms: i64) -> Result<Vec<LockRange>, Error> {
        Ok(self
            .locks(None)?
            .into_iter()
            .filter(|l| l.expires_at_ms.is_none_or(|e| e > now_ms))
            .map(|l| LockRange {
                camera_id: l.camera_id,
                start_ms: l.start_ms,
                end_ms: l.end_ms,
                expires_at_ms: l.expires_at_ms,
            })
            .collect())
    }

    /// Deletes an evidence lock; false if there was none.
    pub fn delete_lock(&self, id: i64) -> Result<bool, Error> {
        let conn = self.conn.lock();
        let n = conn
            .execute("DELETE FROM evidence_lock WHERE id = ?1", [id])
            .err_kind(
                ErrorKind::Internal,
                self.ctx(format_args!("deleting lock {id}")),
            )?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    const NOW: i64 = 1_700_000_000_000;

    /// A temporary directory removed on drop (no tempfile dependency).
    fn new_seg(cam: &str, start_ms: i64, path: &str) -> NewSegment {
        NewSegment {
            camera_id: cam.to_owned(),
            run_id: 7,
            start_90k: start_ms * 90,
            start_wall_ms: start_ms,
            path: path.to_owned(),
            codec: "h264".to_owned(),
            params_version: 1,
            codec_string: "avc1.64001e".to_owned(),
            width: 640,
            height: 360,
        }
    }

    /// Inserts and completes a 60 s segment.
    fn seg(ix: &Index, cam: &str, start_ms: i64, bytes: u64) -> i64 {
        let id = ix
            .begin_segment(&new_seg(cam, start_ms, &format!("{cam}/{start_ms}.mp4")))
            .unwrap();
        ix.complete_segment(id, (start_ms + 60_000) * 90, start_ms + 60_000, bytes)
            .unwrap();
        id
    }

    /// A reader answers from its own read-only connection while the writer connection holds an
    /// open write transaction (and its mutex): it sees the last commit, not the transaction.
    #[test]
    fn readers_are_not_blocked_by_a_write_transaction() {
        let dir = TempDir::new("reader");
        let ix = std::sync::Arc::new(Index::open(&dir.0.join("index.db"), NOW).unwrap());
        let committed = seg(&ix, "cam-1", NOW, 1000);
        ix.create_lock(
            &NewLock {
                camera_id: "cam-1".into(),
                start_ms: NOW,
                end_ms: NOW + 1000,
                reason: "case 1".into(),
                expires_at_ms: None,
            },
            NOW,
        )
        .unwrap();
        let reader = ix.reader();

        // The writer: a long write transaction with an uncommitted segment, holding the mutex
        // every writer goes through.
        let writer = ix.conn.lock();
        writer.execute_batch("BEGIN IMMEDIATE").unwrap();
        writer
            .execute(
                "INSERT INTO segment (camera_id, run_id, start_90k, end_90k, start_wall_ms, \
                 end_wall_ms, bytes, path, codec, params_version, state, codec_string, width, \
                 height) VALUES ('cam-1', 1, 0, 0, ?1, ?1, 5, 'uncommitted.mp4', 'h264', 1, \
                 'complete', '', 0, 0)",
                [NOW + 60_000],
            )
            .unwrap();

        // Readers on other threads (as spawn_blocking runs them) get their answers meanwhile.
        // The timeout only keeps a regression from hanging the suite.
        let (tx, rx) = std::sync::mpsc::channel();
        for _ in 0..3 {
            let (reader, tx) = (reader.clone(), tx.clone());
            std::thread::spawn(move || {
                let segs = reader.segments("cam-1", NOW - 1, NOW + 3_600_000);
                let usage = reader.camera_usage();
                let locks = reader.locks(Some("cam-1"));
                let _ = tx.send((segs, usage, locks));
            });
        }
        for _ in 0..3 {
            let (segs, usage, locks) = rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("a reader blocked behind the writer's transaction");
            let ids: Vec<i64> = segs.unwrap().iter().map(|s| s.id).collect();
            assert_eq!(
                ids,
                [committed],
                "the last commit, not the open transaction"
            );
            assert_eq!(usage.unwrap()[0].bytes, 1000);
            assert_eq!(locks.unwrap().len(), 1);
        }
        writer.execute_batch("COMMIT").unwrap();
        drop(writer);
        let segs = reader.segments("cam-1", NOW - 1, NOW + 3_600_000).unwrap();
        assert_eq!(segs.len(), 2, "committed now");
        // The read connections are read-only.
        let e = ix
            .read(|c| {
                c.execute("DELETE FROM segment", [])
                    .err_kind(ErrorKind::Internal, "delete")
            })
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert_eq!(reader.segments("cam-1", NOW - 1, NOW + 1).unwrap().len(), 1);
    }

    #[test]
    fn range_queries_are_bounded_with_the_field_named() {
        let ix = std::sync::Arc::new(Index::open_in_memory(NOW).unwrap());
        let reader = ix.reader();
        for (start, end, field) in [
            (NOW, NOW, "end"),
            (NOW, NOW - 1, "end"),
            (NOW, NOW + MAX_QUERY_SPAN_MS + 1, "start"),
            (i64::MIN, i64::MAX, "start"),
        ] {
            let e = reader.segments("cam-1", start, end).unwrap_err();
            assert_eq!(e.field, Some(field), "{start}..{end}: {e}");
            assert_eq!(e.error.kind(), ErrorKind::InvalidArgument);
        }
        assert!(
            reader
                .segments("cam-1", NOW, NOW + MAX_QUERY_SPAN_MS)
                .unwrap()
                .is_empty()
        );

        // More segments in range than a query may return: refused, not truncated. (Rows of
        // 1 ms so that they fit one range; the bound is the same whatever their length.)
        {
            let mut conn = ix.conn.lock();
            let tx = conn.transaction().unwrap();
            for i in 0..=MAX_QUERY_SEGMENTS as i64 {
                tx.execute(
                    "INSERT INTO segment (camera_id, run_id, start_90k, end_90k, start_wall_ms, \
                     end_wall_ms, bytes, path, codec, params_version, state, codec_string, \
                     width, height) VALUES ('cam-1', 1, ?1 * 90, ?1 * 90 + 90, ?1, ?1 + 1, 10, \
                     'p' || ?1, 'h264', 1, 'complete', '', 0, 0)",
                    [NOW + i],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        let n = MAX_QUERY_SEGMENTS as i64;
        let e = reader.segments("cam-1", NOW, NOW + n + 1).unwrap_err();
        assert_eq!(
            (e.field, e.error.kind()),
            (Some("start"), ErrorKind::InvalidArgument)
        );
        assert_eq!(
            reader.segments("cam-1", NOW, NOW + n).unwrap().len(),
            MAX_QUERY_SEGMENTS
        );
        // Totals have no row bound: one aggregate row.
        assert_eq!(
            reader.range_totals("cam-1", NOW, NOW + n + 1).unwrap(),
            RangeTotals {
                segments: n as u64 + 1,
                bytes: 10 * (n as u64 + 1)
            }
        );
        // The unbounded maintenance query still sees them all.
        assert_eq!(
            ix.segments("cam-1", 0, i64::MAX).unwrap().len(),
            MAX_QUERY_SEGMENTS + 1
        );
    }

    #[test]
    fn segment_lifecycle_persists_across_reopen() {
        let dir = TempDir::new("lifecycle");
        let path = dir.0.join("index.db");
        let id;
        {
            let ix = Index::open(&path, NOW).unwrap();
            id = ix
                .begin_segment(&new_seg("cam-1", NOW, "cam-1/a.mp4"))
                .unwrap();
            let s = ix.segment(id).unwrap().unwrap();
            assert_eq!(s.state, SegmentState::Writing);
            assert_eq!((s.end_90k, s.end_wall_ms, s.bytes), (NOW * 90, NOW, 0));
            ix.add_keyframes(
                id,
                &[
                    Keyframe {
                        time_90k: NOW * 90,
                        byte_offset: 0,
                    },
                    Keyframe {
                        time_90k: NOW * 90 + 180_000,
                        byte_offset: 500_000,
                    },
                ],
            )
            .unwrap();
            ix.complete_segment(id, NOW * 90 + 5_400_000, NOW + 60_000, 1_000_000)
                .unwrap();
        }
        // Reopen: migration is a no-op, data is there.
        let ix = Index::open(&path, NOW + 1).unwrap();
        let s = ix.segment(id).unwrap().unwrap();
        assert_eq!(s.state, SegmentState::Complete);
        assert_eq!(s.bytes, 1_000_000);
        assert_eq!(s.end_wall_ms, NOW + 60_000);
        assert_eq!(s.path, "cam-1/a.mp4");
        assert_eq!(ix.keyframes(id).unwrap().len(), 2);
        assert_eq!(ix.keyframes(id).unwrap()[1].byte_offset, 500_000);
        // A complete segment takes no more key frames and cannot be completed twice.
        let e = ix.add_keyframes(id, &[]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
        let e = ix.complete_segment(id, 0, 0, 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
        assert_eq!(
            ix.complete_segment(999, 0, 0, 0).unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn rejects_bad_input() {
        let ix = Index::open_in_memory(NOW).unwrap();
        let id = ix.begin_segment(&new_seg("c", NOW, "c/1.mp4")).unwrap();
        let e = ix.begin_segment(&new_seg("c", NOW, "c/1.mp4")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        let e = ix.complete_segment(id, NOW * 90 - 1, NOW, 1).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let e = ix
            .complete_segment(id, NOW * 90, NOW, u64::MAX)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let lock = NewLock {
            camera_id: "c".into(),
            start_ms: 5,
            end_ms: 5,
            reason: "x".into(),
            expires_at_ms: None,
        };
        assert_eq!(
            ix.create_lock(&lock, NOW).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn query_by_camera_and_time_range_is_half_open() {
        let ix = Index::open_in_memory(NOW).unwrap();
        let a1 = seg(&ix, "a", NOW, 10);
        let a2 = seg(&ix, "a", NOW + 60_000, 10);
        let a3 = seg(&ix, "a", NOW + 120_000, 10);
        let _b = seg(&ix, "b", NOW + 60_000, 10);
        let q = |s, e| -> Vec<i64> {
            ix.segments("a", s, e)
                .unwrap()
                .iter()
                .map(|s| s.id)
                .collect()
        };
        assert_eq!(q(NOW, NOW + 180_000), vec![a1, a2, a3]);
        assert_eq!(q(NOW + 60_000, NOW + 120_000), vec![a2]);
        assert_eq!(q(NOW + 59_999, NOW + 60_001), vec![a1, a2]);
        assert_eq!(q(NOW + 180_000, NOW + 240_000), Vec::<i64>::new());
        // An open (writing) segment has no end yet: it overlaps every range after its start.
        let w = ix
            .begin_segment(&new_seg("a", NOW + 180_000, "a/w.mp4"))
            .unwrap();
        assert_eq!(q(NOW + 170_000, NOW + 240_000), vec![a3, w]);
        assert_eq!(q(NOW + 200_000, NOW + 240_000), vec![w]);
        assert_eq!(q(NOW + 120_000, NOW + 180_000), vec![a3]);
        // Deleting segments are hidden from queries.
        assert_eq!(ix.mark_deleting(&[a2, w]).unwrap(), 1);
        assert_eq!(q(NOW, NOW + 180_000), vec![a1, a3]);
    }

    #[test]
    fn usage_retention_candidates_and_delete() {
        let ix = Index::open_in_memory(NOW).unwrap();
        let a1 = seg(&ix, "a", NOW, 100);
        let a2 = seg(&ix, "a", NOW + 60_000, 200);
        let b1 = seg(&ix, "b", NOW + 30_000, 50);
        ix.add_keyframes(
            ix.begin_segment(&new_seg("b", NOW + 90_000, "b/w.mp4"))
                .unwrap(),
            &[Keyframe {
                time_90k: (NOW + 90_000) * 90,
                byte_offset: 0,
            }],
        )
        .unwrap();
        let u = ix.camera_usage().unwrap();
        assert_eq!(
            u,
            vec![
                CameraUsage {
                    camera_id: "a".into(),
                    segments: 2,
                    bytes: 300,
                    oldest_wall_ms: NOW,
                    newest_wall_ms: NOW + 120_000
                },
                CameraUsage {
                    camera_id: "b".into(),
                    segments: 2,
                    bytes: 50,
                    oldest_wall_ms: NOW + 30_000,
                    newest_wall_ms: NOW + 90_000
                },
            ]
        );
        assert_eq!(ix.total_bytes().unwrap(), 350);
        let c: Vec<i64> = ix
            .retention_candidates()
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(c, vec![a1, b1, a2]);
        // Crash-safe delete: mark, (unlink), delete.
        assert_eq!(ix.mark_deleting(&[a1]).unwrap(), 1);
        let d = ix.segments_in_state(SegmentState::Deleting).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].id, a1);
        assert_eq!(
            ix.segments_in_state(SegmentState::Writing).unwrap().len(),
            1
        );
        assert!(ix.delete_segment(a1).unwrap());
        assert!(!ix.delete_segment(a1).unwrap());
        assert_eq!(ix.total_bytes().unwrap(), 250);
    }

    #[test]
    fn deleting_a_segment_deletes_its_keyframes() {
        let ix = Index::open_in_memory(NOW).unwrap();
        let id = ix.begin_segment(&new_seg("a", NOW, "a/1.mp4")).unwrap();
        ix.add_keyframes(
            id,
            &[Keyframe {
                time_90k: NOW * 90,
                byte_offset: 0,
            }],
        )
        .unwrap();
        assert!(ix.delete_segment(id).unwrap());
        let n: i64 = ix
            .conn
            .lock()
            .query_row("SELECT COUNT(*) FROM keyframe", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn evidence_locks_create_list_delete_and_feed_retention() {
        let dir = TempDir::new("locks");
        let ix = Index::open(&dir.0.join("index.db"), NOW).unwrap();
        let l1 = ix
            .create_lock(
                &NewLock {
                    camera_id: "a".into(),
                    start_ms: NOW,
                    end_ms: NOW + 90_000,
                    reason: "incident 42".into(),
                    expires_at_ms: Some(NOW + 600_000),
                },
                NOW - 5,
            )
            .unwrap();
        let l2 = ix
            .create_lock(
                &NewLock {
                    camera_id: "b".into(),
                    start_ms: NOW,
                    end_ms: NOW + 1,
                    reason: "court order".into(),
                    expires_at_ms: None,
                },
                NOW - 4,
            )
            .unwrap();
        let all = ix.locks(None).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].id, l1);
        assert_eq!(all[0].reason, "incident 42");
        assert_eq!(all[0].created_at_ms, NOW - 5);
        assert_eq!(ix.locks(Some("b")).unwrap()[0].id, l2);
        assert_eq!(ix.active_lock_ranges(NOW).unwrap().len(), 2);
        assert_eq!(ix.active_lock_ranges(NOW + 600_000).unwrap().len(), 1);

        // With the index's data, retention keeps the locked segments.
        let a1 = seg(&ix, "a", NOW - 60_000, 10); // ends exactly at the lock's start: free
        let _a2 = seg(&ix, "a", NOW + 60_000, 10); // overlaps the lock
        let policy = crate::retention::Policy {
            default_retention_days: Some(0),
            max_usage_bytes: u64::MAX / 2,
            ..Default::default()
        };
        let now = NOW + 200_000;
        let plan = crate::retention::plan(
            now,
            &ix.retention_candidates().unwrap(),
            &ix.active_lock_ranges(now).unwrap(),
            &policy,
            crate::retention::Usage {
                used_bytes: 20,
                free_bytes: 1 << 40,
            },
        );
        let ids: Vec<i64> = plan.deletions.iter().map(|d| d.id).collect();
        assert_eq!(ids, vec![a1]);

        assert!(ix.delete_lock(l1).unwrap());
        assert!(!ix.delete_lock(l1).unwrap());
        assert_eq!(ix.locks(None).unwrap().len(), 1);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = TempDir::new("newer");
        let path = dir.0.join("index.db");
        drop(Index::open(&path, NOW).unwrap());
        let c = Connection::open(&path).unwrap();
        c.execute(
            "INSERT INTO schema_version (version, applied_at_ms, description) VALUES (99, 0, 'x')",
            [],
        )
        .unwrap();
        drop(c);
        let e = Index::open(&path, NOW).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
    }
}

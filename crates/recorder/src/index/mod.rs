//! The media index (design 0006, "Index schema"): one SQLite database per recordings directory,
//! holding segments, their key frames and evidence locks.
//!
//! Segment life cycle: [`Index::begin_segment`] inserts a row in state `writing` before the first
//! byte is written; [`Index::complete_segment`] records its end and size once the file is synced
//! (`complete`); deletion marks the row `deleting` ([`Index::mark_deleting`]) before the file is
//! unlinked and removes it afterwards ([`Index::delete_segment`]), so a crash between the two leaves
//! a row recovery can finish. Times come in as arguments; nothing here reads a clock.
//!
//! Split by concern: `schema` (migrations), `segments` (segments, key frames, usage, progress,
//! recovery and retention queries), `locks` (evidence locks), `settings` (recording settings) and
//! `reader` (the bounded read side for request handlers, [`Reader`]). This module holds the
//! connections: one writer behind a mutex and a pool of read-only WAL connections.

mod locks;
mod reader;
mod schema;
mod segments;
mod settings;

pub use locks::{EvidenceLock, NewLock};
pub use reader::{MAX_QUERY_SEGMENTS, MAX_QUERY_SPAN_MS, QueryError, RangeTotals, Reader};
pub use schema::{MAX_SEGMENT_MS, SCHEMA_VERSION};
pub use segments::{CameraUsage, Keyframe, NewSegment, Progress, Segment, SegmentState};
pub use settings::RecordingSetting;

use base::{Error, ErrorKind, ResultExt, bail, err};
use parking_lot::Mutex;
use rusqlite::Connection;
use std::path::Path;

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
        store::schema::apply(&mut conn, &label, schema::MIGRATIONS, now_ms)?;
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
}

#[cfg(test)]
mod tests;

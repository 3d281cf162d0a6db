//! Evidence export jobs (design 0008, "Exports"): one row per export in table `export`, from
//! `queued` through `running` to `completed`, `failed` or `cancelled`. State changes are
//! conditional on the current status (`UPDATE ... WHERE status = ...`), so a cancel and a job's
//! completion racing each other cannot both win.

use base::{Error, ErrorKind, ResultExt};
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::fmt;
use std::path::Path;

/// Where an export is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExportStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl ExportStatus {
    pub const ALL: [ExportStatus; 5] = [
        ExportStatus::Queued,
        ExportStatus::Running,
        ExportStatus::Completed,
        ExportStatus::Failed,
        ExportStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExportStatus::Queued => "queued",
            ExportStatus::Running => "running",
            ExportStatus::Completed => "completed",
            ExportStatus::Failed => "failed",
            ExportStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<ExportStatus> {
        ExportStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Completed, failed or cancelled: nothing more happens to it.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            ExportStatus::Completed | ExportStatus::Failed | ExportStatus::Cancelled
        )
    }
}

impl fmt::Display for ExportStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One export job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportRow {
    /// A UUID v7, as text.
    pub id: String,
    pub camera_id: String,
    /// `[start_ms, end_ms)`, ms since the Unix epoch.
    pub start_ms: i64,
    pub end_ms: i64,
    pub include_audio: bool,
    pub status: ExportStatus,
    /// Progress of the MP4 being written: bytes written of the total.
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// The finished MP4's size, SHA-256 (lower-case hex) and video frames.
    pub size: Option<u64>,
    pub sha256: Option<String>,
    pub frames: Option<u64>,
    /// Why it failed (or was cancelled).
    pub error: Option<String>,
    pub created_by: String,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// The MP4's file name in the exports directory (`<id>.mp4`).
    pub file_name: String,
}

const COLUMNS: &str = "id, camera_id, start_ms, end_ms, include_audio, status, bytes_done, \
    bytes_total, size, sha256, frames, error, created_by, created_at_ms, started_at_ms, \
    finished_at_ms, file_name";

fn u64_of(v: Option<i64>) -> Option<u64> {
    v.and_then(|x| u64::try_from(x).ok())
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<ExportRow> {
    let status: String = r.get(5)?;
    Ok(ExportRow {
        id: r.get(0)?,
        camera_id: r.get(1)?,
        start_ms: r.get(2)?,
        end_ms: r.get(3)?,
        include_audio: r.get(4)?,
        status: ExportStatus::parse(&status).unwrap_or(ExportStatus::Failed),
        bytes_done: u64_of(r.get(6)?).unwrap_or(0),
        bytes_total: u64_of(r.get(7)?).unwrap_or(0),
        size: u64_of(r.get(8)?),
        sha256: r.get(9)?,
        frames: u64_of(r.get(10)?),
        error: r.get(11)?,
        created_by: r.get(12)?,
        created_at_ms: r.get(13)?,
        started_at_ms: r.get(14)?,
        finished_at_ms: r.get(15)?,
        file_name: r.get(16)?,
    })
}

/// The export jobs in the node's management database (the same file as the audit log).
pub struct ExportStore {
    conn: Mutex<Connection>,
    label: String,
}

impl ExportStore {
    pub fn open(path: &Path) -> Result<ExportStore, Error> {
        let (conn, label) = crate::schema::open_file(path)?;
        Ok(ExportStore {
            conn: Mutex::new(conn),
            label,
        })
    }

    /// An in-memory store (tests).
    pub fn open_in_memory() -> Result<ExportStore, Error> {
        Ok(ExportStore {
            conn: Mutex::new(crate::schema::open_memory()?),
            label: "memory".into(),
        })
    }

    fn err(&self, what: &str) -> String {
        format!("{}: {what}", self.label)
    }

    pub fn insert(&self, e: &ExportRow) -> Result<(), Error> {
        self.conn
            .lock()
            .execute(
                &format!(
                    "INSERT INTO export ({COLUMNS}) VALUES \
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
                ),
                params![
                    e.id,
                    e.camera_id,
                    e.start_ms,
                    e.end_ms,
                    e.include_audio,
                    e.status.as_str(),
                    i64_of(e.bytes_done),
                    i64_of(e.bytes_total),
                    e.size.map(i64_of),
                    e.sha256,
                    e.frames.map(i64_of),
                    e.error,
                    e.created_by,
                    e.created_at_ms,
                    e.started_at_ms,
                    e.finished_at_ms,
                    e.file_name
                ],
            )
            .err_kind(ErrorKind::Internal, self.err("inserting an export"))?;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Result<Option<ExportRow>, Error> {
        self.conn
            .lock()
            .query_row(
                &format!("SELECT {COLUMNS} FROM export WHERE id = ?1"),
                params![id],
                from_row,
            )
            .optional()
            .err_kind(ErrorKind::Internal, self.err("reading an export"))
    }

    fn select(&self, sql_tail: &str, p: impl rusqlite::Params) -> Result<Vec<ExportRow>, Error> {
        let conn = self.conn.lock();
        let mut st = conn
            .prepare(&format!("SELECT {COLUMNS} FROM export {sql_tail}"))
            .err_kind(ErrorKind::Internal, self.err("listing exports"))?;
        st.query_map(p, from_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .err_kind(ErrorKind::Internal, self.err("listing exports"))
    }

    /// Every export, newest first.
    pub fn list(&self) -> Result<Vec<ExportRow>, Error> {
        self.select("ORDER BY seq DESC", [])
    }

    /// Exports with `status`, oldest first (the order they were created in).
    pub fn with_status(&self, status: ExportStatus) -> Result<Vec<ExportRow>, Error> {
        self.select("WHERE status = ?1 ORDER BY seq", params![status.as_str()])
    }

    /// Finished (completed, failed, cancelled) exports that finished before `ms`, oldest first.
    pub fn finished_before(&self, ms: i64) -> Result<Vec<ExportRow>, Error> {
        self.select(
            "WHERE status IN ('completed', 'failed', 'cancelled') \
             AND COALESCE(finished_at_ms, created_at_ms) < ?1 ORDER BY seq",
            params![ms],
        )
    }

    fn update(&self, sql: &str, p: impl rusqlite::Params) -> Result<bool, Error> {
        let n = self
            .conn
            .lock()
            .execute(sql, p)
            .err_kind(ErrorKind::Internal, self.err("updating an export"))?;
        Ok(n > 0)
    }

    /// `queued` → `running`; false when it was not queued.
    pub fn set_running(&self, id: &str, at_ms: i64) -> Result<bool, Error> {
        self.update(
            "UPDATE export SET status = 'running', started_at_ms = ?2, bytes_done = 0, \
             bytes_total = 0, error = NULL WHERE id = ?1 AND status = 'queued'",
            params![id, at_ms],
        )
    }

    /// A running export's progress.
    pub fn set_progress(&self, id: &str, done: u64, total: u64) -> Result<bool, Error> {
        self.update(
            "UPDATE export SET bytes_done = ?2, bytes_total = ?3 \
             WHERE id = ?1 AND status = 'running'",
            params![id, i64_of(done), i64_of(total)],
        )
    }

    /// `running` → `completed`; false when it was no longer running (cancelled meanwhile).
    pub fn set_completed(
        &self,
        id: &str,
        size: u64,
        sha256: &str,
        frames: u64,
        at_ms: i64,
    ) -> Result<bool, Error> {
        self.update(
            "UPDATE export SET status = 'completed', size = ?2, sha256 = ?3, frames = ?4, \
             bytes_done = ?2, bytes_total = ?2, finished_at_ms = ?5, error = NULL \
             WHERE id = ?1 AND status = 'running'",
            params![id, i64_of(size), sha256, i64_of(frames), at_ms],
        )
    }

    /// `from` → `failed` or `cancelled` with `error`; false when it was not in `from`.
    pub fn set_ended(
        &self,
        id: &str,
        from: ExportStatus,
        to: ExportStatus,
        error: &str,
        at_ms: i64,
    ) -> Result<bool, Error> {
        self.update(
            "UPDATE export SET status = ?3, error = ?4, finished_at_ms = ?5 \
             WHERE id = ?1 AND status = ?2",
            params![id, from.as_str(), to.as_str(), error, at_ms],
        )
    }

    /// Every `running` export back to `queued` (a restart: they start again from zero);
    /// returns how many.
    pub fn requeue_running(&self) -> Result<usize, Error> {
        let n = self
            .conn
            .lock()
            .execute(
                "UPDATE export SET status = 'queued', bytes_done = 0, bytes_total = 0, \
                 started_at_ms = NULL WHERE status = 'running'",
                [],
            )
            .err_kind(ErrorKind::Internal, self.err("requeueing exports"))?;
        Ok(n)
    }

    /// Removes the row; false when unknown.
    pub fn delete(&self, id: &str) -> Result<bool, Error> {
        self.update("DELETE FROM export WHERE id = ?1", params![id])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> ExportRow {
        ExportRow {
            id: id.into(),
            camera_id: "cam".into(),
            start_ms: 1,
            end_ms: 2,
            include_audio: true,
            status: ExportStatus::Queued,
            bytes_done: 0,
            bytes_total: 0,
            size: None,
            sha256: None,
            frames: None,
            error: None,
            created_by: "u".into(),
            created_at_ms: 10,
            started_at_ms: None,
            finished_at_ms: None,
            file_name: format!("{id}.mp4"),
        }
    }

    #[test]
    fn transitions_are_conditional_and_lists_are_ordered() {
        let s = ExportStore::open_in_memory().unwrap();
        for id in ["b", "a", "c"] {
            s.insert(&row(id)).unwrap();
        }
        let q: Vec<String> = s
            .with_status(ExportStatus::Queued)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(q, ["b", "a", "c"], "creation order");
        let l: Vec<String> = s.list().unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(l, ["c", "a", "b"], "newest first");
        assert!(s.set_running("b", 20).unwrap());
        assert!(!s.set_running("b", 21).unwrap(), "already running");
        assert!(s.set_progress("b", 5, 10).unwrap());
        assert!(
            s.set_ended("b", ExportStatus::Running, ExportStatus::Cancelled, "x", 22)
                .unwrap()
        );
        assert!(
            !s.set_completed("b", 10, "ab", 3, 23).unwrap(),
            "a cancelled export does not complete"
        );
        assert!(s.set_running("a", 30).unwrap());
        assert_eq!(s.requeue_running().unwrap(), 1);
        let a = s.get("a").unwrap().unwrap();
        assert_eq!((a.status, a.started_at_ms), (ExportStatus::Queued, None));
        assert!(s.set_running("a", 31).unwrap());
        assert!(s.set_completed("a", 10, "ab", 3, 40).unwrap());
        let a = s.get("a").unwrap().unwrap();
        assert_eq!(
            (
                a.status,
                a.size,
                a.sha256.as_deref(),
                a.frames,
                a.bytes_done
            ),
            (ExportStatus::Completed, Some(10), Some("ab"), Some(3), 10)
        );
        let old: Vec<String> = s
            .finished_before(41)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(old, ["b", "a"]);
        assert!(s.finished_before(22).unwrap().is_empty());
        assert!(s.delete("a").unwrap());
        assert!(!s.delete("a").unwrap());
        assert_eq!(s.get("a").unwrap(), None);
    }
}

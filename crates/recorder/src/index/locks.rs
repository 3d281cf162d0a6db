//! Evidence locks: protected time ranges of a camera that retention never deletes.

use super::Index;
use crate::retention::LockRange;
use base::{Error, ErrorKind, ResultExt, bail};
use rusqlite::{OptionalExtension, Row, params};

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

impl Index {
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

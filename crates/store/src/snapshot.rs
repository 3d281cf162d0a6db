//! Named snapshots: small documents replaced as a whole, such as the last camera catalog read from
//! the VMS, so a node restarted while the VMS is down still serves the cameras it knew.

use base::{Error, ErrorKind, ResultExt};
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Snapshots in the node's management database (the same file as the audit log).
pub struct Snapshots {
    conn: Mutex<Connection>,
    label: String,
}

impl Snapshots {
    pub fn open(path: &Path) -> Result<Snapshots, Error> {
        let (conn, label) = crate::schema::open_file(path)?;
        Ok(Snapshots {
            conn: Mutex::new(conn),
            label,
        })
    }

    /// Replaces the snapshot `key`.
    pub fn put(&self, key: &str, body: &str, at: SystemTime) -> Result<(), Error> {
        let ms = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        self.conn
            .lock()
            .execute(
                "INSERT INTO snapshot (key, saved_at_ms, body) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (key) DO UPDATE SET saved_at_ms = excluded.saved_at_ms, body = excluded.body",
                params![key, ms, body],
            )
            .err_kind(ErrorKind::Internal, format_args!("{}: saving snapshot {key}", self.label))?;
        Ok(())
    }

    /// Removes every snapshot; returns how many there were. For a node whose stored knowledge
    /// belongs to a VMS that no longer exists (the demo's simulator of a previous run).
    pub fn clear(&self) -> Result<usize, Error> {
        self.conn
            .lock()
            .execute("DELETE FROM snapshot", [])
            .err_kind(
                ErrorKind::Internal,
                format_args!("{}: clearing snapshots", self.label),
            )
    }

    /// The snapshot `key` and when it was saved.
    pub fn get(&self, key: &str) -> Result<Option<(SystemTime, String)>, Error> {
        let row: Option<(i64, String)> = self
            .conn
            .lock()
            .query_row(
                "SELECT saved_at_ms, body FROM snapshot WHERE key = ?1",
                params![key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .err_kind(
                ErrorKind::Internal,
                format_args!("{}: reading snapshot {key}", self.label),
            )?;
        Ok(row.map(|(ms, body)| {
            (
                UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0)),
                body,
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_replace_and_survive_reopen() {
        let dir = std::env::temp_dir().join(format!("vantage-snap-{}", std::process::id()));
        let path = dir.join("m.db");
        let _ = std::fs::remove_dir_all(&dir);
        let t = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        {
            let s = Snapshots::open(&path).unwrap();
            assert_eq!(s.get("catalog").unwrap(), None);
            s.put("catalog", "{\"a\":1}", t).unwrap();
            s.put("catalog", "{\"a\":2} شرطة", t + Duration::from_secs(5))
                .unwrap();
        }
        let s = Snapshots::open(&path).unwrap();
        let (at, body) = s.get("catalog").unwrap().unwrap();
        assert_eq!(at, t + Duration::from_secs(5));
        assert_eq!(body, "{\"a\":2} شرطة");
        s.put("other", "x", t).unwrap();
        assert_eq!(s.clear().unwrap(), 2);
        assert_eq!(s.get("catalog").unwrap(), None);
        assert_eq!(s.clear().unwrap(), 0);
        // The audit log opens the same file with the same migrations.
        drop(crate::AuditLog::open(&path).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Recording settings made through the API (they override the configuration's).

use super::Index;
use base::{Error, ErrorKind, ResultExt};
use rusqlite::params;

/// A camera's recording setting made through the API (it overrides the configuration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingSetting {
    pub camera_id: String,
    pub continuous: bool,
    pub retention_days: Option<u32>,
}

impl Index {
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
}

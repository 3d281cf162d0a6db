//! Segments and their key frames: the writer's life cycle (`writing` → `complete` →
//! `deleting`), progress, recovery, usage, and the queries retention pages through.

use super::{Index, MAX_SEGMENT_MS, RangeTotals, to_i64};
use crate::retention::SegmentInfo;
use base::{Error, ErrorKind, ResultExt, bail, err};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

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

impl Index {
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
    pub(super) fn segments_limited(
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
}

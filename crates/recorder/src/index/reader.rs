//! The read side of the media index for request handlers: bounded range queries on read-only
//! connections.

use super::{CameraUsage, EvidenceLock, Index, Keyframe, RecordingSetting, Segment};
use base::{Error, ErrorKind};

/// Longest time range a bounded query ([`Reader::segments`]) accepts: 7 days.
pub const MAX_QUERY_SPAN_MS: i64 = 7 * 86_400_000;
/// Most segments a bounded query returns (7 days of 60 s segments are 10,080); a range holding
/// more is refused rather than truncated.
pub const MAX_QUERY_SEGMENTS: usize = 50_000;
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
pub struct Reader(pub(super) std::sync::Arc<Index>);

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

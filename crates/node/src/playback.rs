//! Playback (design 0008): the node's side of reading recordings back. It checks the camera and
//! the span against the configuration, builds the answer on a blocking thread
//! (`recorder::playback`), and streams a body's bytes from a blocking thread into a channel the
//! HTTP layer turns into a response body.

use crate::Services;
use crate::ports::{BoxFuture, LiveStream, Playback, PlaybackRequest};
use base::clock::unix_ms;
use base::{CameraId, Error, err};
use recorder::index::QueryError;
use recorder::playback::{Body, Follower, Fragments, HlsPart, LiveRequest, Mp4, Mp4Request};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

fn invalid(field: &'static str, msg: String) -> QueryError {
    QueryError {
        field: Some(field),
        error: Error::new(base::ErrorKind::InvalidArgument, msg),
    }
}

/// Runs `f` on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, QueryError> + Send + 'static,
) -> Result<T, QueryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| QueryError::from(err!(Internal, "blocking task failed: {e}")))?
}

impl Services {
    /// The camera's name, when it is known to the catalog; NotFound when neither the catalog
    /// nor the recordings know it (recordings of a camera since removed stay playable).
    pub(crate) fn playable_camera(
        &self,
        camera_id: &CameraId,
    ) -> Result<Option<String>, QueryError> {
        if let Some(c) = self.catalog.get(camera_id) {
            return Ok(Some(c.camera.name.clone()));
        }
        match self.recorder.reader().latest_segment(camera_id)? {
            Some(_) => Ok(None),
            None => Err(QueryError {
                field: None,
                error: err!(NotFound, "camera `{camera_id}` not found"),
            }),
        }
    }

    /// Checks a span against `playback.max_span`; returns it in ms.
    fn playback_span(&self, start: SystemTime, end: SystemTime) -> Result<(i64, i64), QueryError> {
        let (s, e) = (unix_ms(start), unix_ms(end));
        if e <= s {
            return Err(invalid("end", "the end is not after the start".into()));
        }
        let max = i64::try_from(self.cfg.playback.max_span.as_millis()).unwrap_or(i64::MAX);
        if e - s > max {
            return Err(invalid(
                "end",
                format!(
                    "the range is longer than playback.max_span ({} s)",
                    max / 1000
                ),
            ));
        }
        Ok((s, e))
    }
}

impl Playback for Arc<Services> {
    fn playback_mp4(&self, req: PlaybackRequest) -> BoxFuture<'_, Result<Mp4, QueryError>> {
        Box::pin(async move {
            let (start_ms, end_ms) = self.playback_span(req.start, req.end)?;
            let name = self.playable_camera(&req.camera_id)?;
            let st = self.clone();
            let comment = format!(
                "Vantage {} camera {} from {}",
                env!("CARGO_PKG_VERSION"),
                req.camera_id,
                base::time::rfc3339::format_ms(start_ms)
            );
            let r = Mp4Request {
                camera_id: req.camera_id.to_string(),
                start_ms,
                end_ms,
                skip_gaps: req.skip_gaps,
                audio: req.audio,
                title: Some(name.unwrap_or_else(|| req.camera_id.to_string())),
                comment: Some(comment),
            };
            blocking(move || {
                let now = st.clocks.monotonic();
                recorder::playback::mp4(&st.recorder, &r, now)
            })
            .await
        })
    }

    fn playback_init<'a>(
        &'a self,
        camera_id: &'a CameraId,
        at: Option<SystemTime>,
    ) -> BoxFuture<'a, Result<(Vec<u8>, i64), QueryError>> {
        Box::pin(async move {
            self.playable_camera(camera_id)?;
            let (st, id) = (self.clone(), camera_id.to_string());
            blocking(move || recorder::playback::init_segment(&st.recorder, &id, at.map(unix_ms)))
                .await
        })
    }

    fn playback_fragments<'a>(
        &'a self,
        camera_id: &'a CameraId,
        start: SystemTime,
        end: SystemTime,
    ) -> BoxFuture<'a, Result<Fragments, QueryError>> {
        Box::pin(async move {
            let (s, e) = self.playback_span(start, end)?;
            self.playable_camera(camera_id)?;
            let (st, id) = (self.clone(), camera_id.to_string());
            blocking(move || {
                let now = st.clocks.monotonic();
                recorder::playback::fragments(&st.recorder, &id, s, e, now)
            })
            .await
        })
    }

    fn playback_live<'a>(
        &'a self,
        camera_id: &'a CameraId,
        start: SystemTime,
    ) -> BoxFuture<'a, Result<LiveStream, QueryError>> {
        Box::pin(async move {
            self.playable_camera(camera_id)?;
            let (st, id) = (self.clone(), camera_id.to_string());
            let req = LiveRequest {
                camera_id: id,
                start_ms: unix_ms(start),
                idle_limit: LIVE_IDLE_LIMIT,
            };
            let (init, follower) = blocking(move || {
                let now = st.clocks.monotonic();
                Follower::start(st.recorder.clone(), &req, now)
            })
            .await?;
            Ok(LiveStream {
                init,
                fragments: stream_live(follower, self.clocks.clone()),
            })
        })
    }

    fn hls_parts<'a>(
        &'a self,
        camera_id: &'a CameraId,
        start: SystemTime,
        end: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<HlsPart>, QueryError>> {
        Box::pin(async move {
            let (s, e) = self.playback_span(start, end)?;
            self.playable_camera(camera_id)?;
            let (st, id) = (self.clone(), camera_id.to_string());
            blocking(move || recorder::playback::hls_parts(&st.recorder, &id, s, e, HLS_TARGET_90K))
                .await
        })
    }
}

/// HLS parts hold about this much (whole GOPs), 90 kHz.
pub const HLS_TARGET_90K: u64 = 4 * 90_000;

/// A live-edge stream ends when nothing new has been recorded for this long (the camera stopped
/// recording, or its recording is stuck).
pub const LIVE_IDLE_LIMIT: Duration = Duration::from_secs(30);

/// A live-edge stream looks for new fragments this often while it is at the edge.
pub const LIVE_POLL: Duration = Duration::from_millis(200);

/// Runs `follower` on a blocking thread, sending each fragment into the returned channel; the
/// channel closes when the stream ends (idle, new parameters, a read error sent first) and the
/// follower (with its pins) is dropped when the receiver goes away.
pub fn stream_live(
    mut follower: Follower,
    clocks: Arc<dyn base::Clocks>,
) -> tokio::sync::mpsc::Receiver<Result<Vec<u8>, Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL_CHUNKS);
    tokio::task::spawn_blocking(move || {
        let closed = || tx.is_closed();
        let r = follower.follow(&*clocks, LIVE_POLL, &closed, &mut |b| {
            tx.blocking_send(Ok(b))
                .map_err(|_| err!(Cancelled, "the reader went away"))
        });
        match r {
            Ok(end) => tracing::debug!(
                fragments = follower.fragments_sent,
                "live-edge playback ended: {end:?}"
            ),
            Err(e) if e.kind() == base::ErrorKind::Cancelled => {}
            Err(e) => {
                tracing::warn!("live-edge playback failed: {e}");
                let _ = tx.blocking_send(Err(e));
            }
        }
    });
    rx
}

/// Chunks of a body in flight between the reading thread and the response.
const CHANNEL_CHUNKS: usize = 4;

/// Streams `range` of `body` from a blocking thread: the receiver yields its bytes in order
/// (and an error, after which nothing follows, when a read fails); dropping the receiver stops
/// the reading. The body (and the pin it holds) is dropped when the reading ends.
pub fn stream_body(
    mut body: Body,
    range: Range<u64>,
) -> tokio::sync::mpsc::Receiver<Result<Vec<u8>, Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL_CHUNKS);
    tokio::task::spawn_blocking(move || {
        let r = body.read_range(range, &mut |b| {
            tx.blocking_send(Ok(b.to_vec()))
                .map_err(|_| err!(Cancelled, "the reader went away"))
        });
        if let Err(e) = r
            && e.kind() != base::ErrorKind::Cancelled
        {
            tracing::warn!("playback read failed: {e}");
            let _ = tx.blocking_send(Err(e));
        }
    });
    rx
}

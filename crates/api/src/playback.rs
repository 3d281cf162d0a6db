//! Playback routes (design 0008): the progressive MP4 of a range
//! (`GET /api/v1/playback/{camera_id}`), the MSE pieces (`init.mp4`, `media.m4s`) and the HLS
//! playlist (`index.m3u8`). Bodies are read from the segment files on a blocking thread
//! (`node::playback::stream_body`) while they are sent; `Range` (one range) and a strong `ETag`
//! are honoured.
#![deny(clippy::indexing_slicing)]

use crate::extract::Query;
use crate::storage::parse_time;
use crate::{ApiError, AppState, camera_not_found, invalid};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base::CameraId;
use base::time::rfc3339::format_ms;
use node::ports::PlaybackRequest;
use recorder::index::QueryError;
use serde::Deserialize;
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[derive(Deserialize)]
pub(crate) struct PlayQuery {
    start: Option<String>,
    end: Option<String>,
    duration: Option<String>,
    skip_gaps: Option<bool>,
    audio: Option<bool>,
    live_edge: Option<bool>,
}

#[derive(Deserialize)]
pub(crate) struct InitQuery {
    start: Option<String>,
}

/// A duration as seconds (`90`, `2.5`) or with a unit (`90s`, `15m`, `1h`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().last() {
        Some((i, 's')) => (s.get(..i)?, 1.0),
        Some((i, 'm')) => (s.get(..i)?, 60.0),
        Some((i, 'h')) => (s.get(..i)?, 3600.0),
        _ => (s, 1.0),
    };
    let v: f64 = num.trim().parse().ok()?;
    let secs = v * unit;
    (secs.is_finite() && secs > 0.0 && secs < 1e9).then(|| Duration::from_secs_f64(secs))
}

/// `start` and `end` (or `start` + `duration`) of a playback query.
fn span(
    start: Option<&str>,
    end: Option<&str>,
    duration: Option<&str>,
) -> Result<(SystemTime, SystemTime), ApiError> {
    let Some(start) = start else {
        return Err(invalid("start", "is required"));
    };
    let start = parse_time("start", start)?;
    let end = match (end, duration) {
        (Some(_), Some(_)) => return Err(invalid("duration", "give either end or duration")),
        (Some(e), None) => parse_time("end", e)?,
        (None, Some(d)) => {
            let Some(d) = parse_duration(d) else {
                return Err(invalid(
                    "duration",
                    "must be seconds (60, 2.5) or 90s, 15m, 1h",
                ));
            };
            start + d
        }
        (None, None) => return Err(invalid("end", "give end or duration")),
    };
    if end <= start {
        return Err(invalid("end", "must be after start"));
    }
    Ok((start, end))
}

pub(crate) fn query_error(camera_id: &str, e: QueryError) -> ApiError {
    match (e.field, e.error.kind()) {
        (None, base::ErrorKind::NotFound) => camera_not_found(camera_id),
        (Some(field), base::ErrorKind::NotFound) => ApiError::new(
            e.error.with_code("NO_RECORDING"),
            format!("لا يوجد تسجيل في هذا الوقت ({field})"),
        )
        .detail("field", field)
        .detail("camera_id", camera_id),
        (Some(field), _) => invalid(field, e.error.message()),
        _ => ApiError::from(e.error),
    }
}

/// What a `Range` header asks of a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ranged {
    /// The whole body: no header, or one this server does not apply (several ranges, another
    /// unit, malformed), which RFC 9110 lets it ignore.
    Whole,
    /// One satisfiable range (206).
    Part(Range<u64>),
    /// It cannot be satisfied (416).
    Unsatisfiable,
}

/// The single byte range a `Range` header asks of a body of `len` bytes.
pub fn byte_range(header: Option<&str>, len: u64) -> Ranged {
    match byte_range_inner(header, len) {
        Ok(None) => Ranged::Whole,
        Ok(Some(r)) => Ranged::Part(r),
        Err(()) => Ranged::Unsatisfiable,
    }
}

#[allow(clippy::result_unit_err)] // private: `byte_range` names the cases
fn byte_range_inner(header: Option<&str>, len: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(h) = header else { return Ok(None) };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.is_empty(), b.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match num(b) {
            Some(0) => Err(()),
            Some(n) if len > 0 => Ok(Some(len.saturating_sub(n)..len)),
            Some(_) => Err(()),
            None => Ok(None),
        },
        // bytes=A-
        (false, true) => match num(a) {
            Some(s) if s < len => Ok(Some(s..len)),
            Some(_) => Err(()),
            None => Ok(None),
        },
        (false, false) => match (num(a), num(b)) {
            (Some(s), Some(e)) if s <= e => {
                if s >= len {
                    Err(())
                } else {
                    Ok(Some(s..e.saturating_add(1).min(len)))
                }
            }
            _ => Ok(None),
        },
        (true, true) => Ok(None),
    }
}

/// Whether `If-None-Match` matches `etag` (strong comparison, or `*`).
pub(crate) fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag))
}

/// A body's response: 200, 206 for a satisfiable single `Range`, 416 otherwise; the bytes read
/// from the segment files while they are sent.
fn serve(
    headers: &HeaderMap,
    body: recorder::playback::Body,
    content_type: &'static str,
    extra: HeaderMap,
) -> Response {
    let len = body.len();
    serve_with(
        headers,
        len,
        |range| node::playback::stream_body(body, range),
        content_type,
        extra,
    )
}

/// A body of `len` bytes whose `range` `open` streams: 200, 206 for a satisfiable single
/// `Range`, 416 otherwise.
pub(crate) fn serve_with(
    headers: &HeaderMap,
    len: u64,
    open: impl FnOnce(Range<u64>) -> tokio::sync::mpsc::Receiver<Result<Vec<u8>, base::Error>>,
    content_type: &'static str,
    mut extra: HeaderMap,
) -> Response {
    let range = byte_range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        len,
    );
    let (status, range) = match range {
        Ranged::Unsatisfiable => {
            let mut r = ApiError::new(
                base::err!(
                    InvalidArgument,
                    "the range is outside the {len} bytes of the body"
                )
                .with_code("RANGE_NOT_SATISFIABLE"),
                "النطاق المطلوب خارج حدود الملف",
            )
            .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
        Ranged::Whole => (StatusCode::OK, 0..len),
        Ranged::Part(r) => (StatusCode::PARTIAL_CONTENT, r),
    };
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!(
            "bytes {}-{}/{len}",
            range.start,
            range.end.saturating_sub(1)
        ))
    {
        extra.insert(header::CONTENT_RANGE, v);
    }
    extra.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    extra.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    extra.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(range.end - range.start),
    );
    let rx = open(range);
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| {
            (
                item.map(axum::body::Bytes::from)
                    .map_err(|e| std::io::Error::other(e.to_string())),
                rx,
            )
        })
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = status;
    resp.headers_mut().extend(extra);
    resp
}

pub(crate) fn hv(s: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(s).ok()
}

/// `GET /api/v1/playback/{camera_id}?start=&duration=|end=[&skip_gaps=][&audio=]`.
pub(crate) async fn mp4(
    State(st): State<Arc<AppState>>,
    Path(camera_id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<PlayQuery>,
) -> Result<Response, ApiError> {
    if q.live_edge == Some(true) {
        return live(st, camera_id, q).await;
    }
    let (start, end) = span(q.start.as_deref(), q.end.as_deref(), q.duration.as_deref())?;
    let m = st
        .playback_mp4(PlaybackRequest {
            camera_id: CameraId::from(camera_id.as_str()),
            start,
            end,
            skip_gaps: q.skip_gaps.unwrap_or(false),
            audio: q.audio.unwrap_or(true),
        })
        .await
        .map_err(|e| query_error(&camera_id, e))?;
    let mut extra = HeaderMap::new();
    if let Some(v) = hv(&m.etag) {
        extra.insert(header::ETAG, v);
    }
    extra.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(v) = hv(&format_ms(m.start_ms)) {
        extra.insert("vantage-start", v);
    }
    if let Some(v) = hv(&format!("{:.3}", m.duration_90k as f64 / 90_000.0)) {
        extra.insert("vantage-duration", v);
    }
    if let Some(v) = hv(&m.video_frames.to_string()) {
        extra.insert("vantage-frames", v);
    }
    if let Some(v) = m.ended_early_ms.and_then(|t| hv(&format_ms(t))) {
        extra.insert("vantage-recording-end", v);
    }
    if !m.gaps.is_empty() {
        let mut g = String::new();
        for (i, gap) in m.gaps.iter().enumerate() {
            let _ = write!(
                g,
                "{}{:.3}={}/{}",
                if i > 0 { ", " } else { "" },
                gap.at_90k as f64 / 90_000.0,
                format_ms(gap.wall_start_ms),
                format_ms(gap.wall_end_ms)
            );
        }
        if let Some(v) = hv(&g) {
            extra.insert("vantage-gaps", v);
        }
    }
    let name = format!(
        "{}_{}.mp4",
        sanitize(&camera_id),
        format_ms(m.start_ms).replace([':', '.'], "-")
    );
    if let Some(v) = hv(&format!("inline; filename=\"{name}\"")) {
        extra.insert(header::CONTENT_DISPOSITION, v);
    }
    if not_modified(&headers, &m.etag) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        if let Some(v) = extra.remove(header::ETAG) {
            r.headers_mut().insert(header::ETAG, v);
        }
        return Ok(r);
    }
    Ok(serve(&headers, m.body, "video/mp4", extra))
}

/// `GET /api/v1/playback/{camera_id}?start=&live_edge=true`: a time-shift view, a fragmented
/// MP4 (init segment, then `moof`+`mdat` fragments with decode times from 0) that follows the
/// recording as it grows; chunked, without `Content-Length` or `Range`. It ends when the camera
/// stops recording for `node::playback::LIVE_IDLE_LIMIT`, at a change of parameters (new SPS),
/// or when the client goes away.
async fn live(st: Arc<AppState>, camera_id: String, q: PlayQuery) -> Result<Response, ApiError> {
    let Some(start) = q.start.as_deref() else {
        return Err(invalid("start", "is required"));
    };
    if q.end.is_some() || q.duration.is_some() {
        return Err(invalid(
            "live_edge",
            "a live-edge stream has no end: give start only",
        ));
    }
    // What this view cannot do is refused, not ignored.
    if q.skip_gaps == Some(false) {
        return Err(invalid(
            "skip_gaps",
            "a live-edge stream always goes on past gaps: leave skip_gaps out",
        ));
    }
    if q.audio == Some(false) {
        return Err(invalid(
            "audio",
            "a live-edge stream carries the recorded audio: leave audio out",
        ));
    }
    let start = parse_time("start", start)?;
    let live = st
        .playback_live(&CameraId::from(camera_id.as_str()), start)
        .await
        .map_err(|e| query_error(&camera_id, e))?;
    let init = futures::stream::once(async move { Ok(axum::body::Bytes::from(live.init)) });
    let frags = futures::stream::unfold(live.fragments, |mut rx| async move {
        rx.recv().await.map(|item| {
            (
                item.map(axum::body::Bytes::from)
                    .map_err(|e| std::io::Error::other(e.to_string())),
                rx,
            )
        })
    });
    let mut r = Response::new(Body::from_stream(futures::StreamExt::chain(init, frags)));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("none"));
    Ok(r)
}

/// A file-name-safe form of an id.
pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `GET /api/v1/playback/{camera_id}/init.mp4?start=`: the MSE init segment.
pub(crate) async fn init(
    State(st): State<Arc<AppState>>,
    Path(camera_id): Path<String>,
    Query(q): Query<InitQuery>,
) -> Result<Response, ApiError> {
    let at = q
        .start
        .as_deref()
        .map(|s| parse_time("start", s))
        .transpose()?;
    let (bytes, seg_start) = st
        .playback_init(&CameraId::from(camera_id.as_str()), at)
        .await
        .map_err(|e| query_error(&camera_id, e))?;
    let mut r = Response::new(Body::from(bytes));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(v) = hv(&format_ms(seg_start)) {
        h.insert("vantage-start", v);
    }
    Ok(r)
}

/// `GET /api/v1/playback/{camera_id}/media.m4s?start=&duration=|end=`: fragments for MSE and HLS,
/// on the wall-clock timeline (`tfdt` = time since the Unix epoch).
pub(crate) async fn media(
    State(st): State<Arc<AppState>>,
    Path(camera_id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<PlayQuery>,
) -> Result<Response, ApiError> {
    let (start, end) = span(q.start.as_deref(), q.end.as_deref(), q.duration.as_deref())?;
    let f = st
        .playback_fragments(&CameraId::from(camera_id.as_str()), start, end)
        .await
        .map_err(|e| query_error(&camera_id, e))?;
    let mut extra = HeaderMap::new();
    extra.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(v) = hv(&format_ms(f.start_ms)) {
        extra.insert("vantage-start", v);
    }
    if let Some(v) = hv(&format_ms(f.end_ms)) {
        extra.insert("vantage-end", v);
    }
    Ok(serve(&headers, f.body, "video/iso.segment", extra))
}

/// Ms of a 90 kHz wall-clock time, rounded up (a part's start: at or after the fragment's
/// first frame, before its next fragment).
fn ms_ceil(t_90k: u64) -> i64 {
    i64::try_from(t_90k.div_ceil(90)).unwrap_or(i64::MAX)
}

/// Ms of a 90 kHz wall-clock time, rounded down (a part's end: after its last fragment's
/// start, at or before the next fragment's).
fn ms_floor(t_90k: u64) -> i64 {
    i64::try_from(t_90k / 90).unwrap_or(i64::MAX)
}

/// `GET /api/v1/playback/{camera_id}/index.m3u8?start=&end=`: an HLS VOD playlist of fMP4
/// parts.
pub(crate) async fn hls(
    State(st): State<Arc<AppState>>,
    Path(camera_id): Path<String>,
    Query(q): Query<PlayQuery>,
) -> Result<Response, ApiError> {
    let (start, end) = span(q.start.as_deref(), q.end.as_deref(), q.duration.as_deref())?;
    let parts = st
        .hls_parts(&CameraId::from(camera_id.as_str()), start, end)
        .await
        .map_err(|e| query_error(&camera_id, e))?;
    let target = parts
        .iter()
        .map(|p| (p.end_90k - p.start_90k).div_ceil(90_000))
        .max()
        .unwrap_or(1)
        .max(1);
    let mut m = String::new();
    let _ = write!(
        m,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    );
    let mut init_at = None;
    for p in &parts {
        if p.discontinuity {
            m.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if init_at != Some(p.init_at_ms) {
            let _ = writeln!(
                m,
                "#EXT-X-MAP:URI=\"init.mp4?start={}\"",
                format_ms(p.init_at_ms)
            );
            init_at = Some(p.init_at_ms);
        }
        let _ = write!(
            m,
            "#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:{:.5},\nmedia.m4s?start={}&end={}\n",
            format_ms(ms_floor(p.start_90k)),
            (p.end_90k - p.start_90k) as f64 / 90_000.0,
            format_ms(ms_ceil(p.start_90k)),
            format_ms(ms_floor(p.end_90k)),
        );
    }
    m.push_str("#EXT-X-ENDLIST\n");
    let mut r = Response::new(Body::from(m));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.apple.mpegurl"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_as_rfc_9110_says() {
        assert_eq!(byte_range_inner(None, 100), Ok(None));
        assert_eq!(byte_range_inner(Some("bytes=0-9"), 100), Ok(Some(0..10)));
        assert_eq!(byte_range_inner(Some("bytes=90-"), 100), Ok(Some(90..100)));
        assert_eq!(byte_range_inner(Some("bytes=-10"), 100), Ok(Some(90..100)));
        assert_eq!(byte_range_inner(Some("bytes=-500"), 100), Ok(Some(0..100)));
        assert_eq!(
            byte_range_inner(Some("bytes=50-500"), 100),
            Ok(Some(50..100))
        );
        assert_eq!(byte_range_inner(Some("bytes=100-"), 100), Err(()));
        assert_eq!(byte_range_inner(Some("bytes=100-200"), 100), Err(()));
        assert_eq!(byte_range_inner(Some("bytes=-0"), 100), Err(()));
        // Ignored: several ranges, other units, malformed.
        assert_eq!(byte_range_inner(Some("bytes=0-1,5-6"), 100), Ok(None));
        assert_eq!(byte_range_inner(Some("items=0-1"), 100), Ok(None));
        assert_eq!(byte_range_inner(Some("bytes=5-1"), 100), Ok(None));
        assert_eq!(byte_range_inner(Some("bytes=a-b"), 100), Ok(None));
        assert_eq!(byte_range_inner(Some("bytes=-"), 100), Ok(None));
    }

    #[test]
    fn durations_in_seconds_or_with_a_unit() {
        assert_eq!(parse_duration("60"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("2.5"), Some(Duration::from_millis(2500)));
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), None);
        assert_eq!(parse_duration("-5"), None);
        assert_eq!(parse_duration("abc"), None);
        assert_eq!(parse_duration("NaN"), None);
    }

    #[test]
    fn part_times_round_into_their_fragment() {
        // A fragment starting at 1 tick past a millisecond: the part's start is after it and
        // within 1 ms, its end at or before the next fragment's start.
        assert_eq!(ms_ceil(90_001), 1001);
        assert_eq!(ms_floor(180_001), 2000);
        assert_eq!(ms_ceil(90_000), 1000);
    }
}

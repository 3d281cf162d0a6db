//! `GET /api/v1/recordings/{camera_id}?start=&end=`: the recording timeline of a camera.
//!
//! Vantage's own segments (from the media index) are merged into runs of contiguous recording and
//! listed with `source: "local"`. For XProtect cameras the recording server's sequences
//! (`SequencesGet`) fill the time local recording does not cover (`source: "xprotect"`). Gaps are
//! what neither covers (design 0005).

use crate::storage::{parse_time, query_error};
use crate::{ApiError, AppState, camera_not_found, invalid};
use axum::Json;
use axum::extract::{Path, Query, State};
use base::clock::{rfc3339_ms, unix_ms};
use base::err;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

#[derive(Deserialize)]
pub(crate) struct Range {
    start: Option<String>,
    end: Option<String>,
}

fn ms_secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// `h264` → `H.264`, as the API shows codecs elsewhere.
fn codec_name(c: &str) -> &str {
    match c {
        "h264" => "H.264",
        "h265" => "H.265",
        o => o,
    }
}

fn resolution_of(s: &recorder::index::Segment) -> Option<String> {
    (s.width > 0 && s.height > 0).then(|| format!("{}x{}", s.width, s.height))
}

/// A stretch of recorded time, ms since the epoch, `[start, end)`.
#[derive(Clone, Debug, PartialEq)]
struct Span {
    start: i64,
    end: i64,
    source: &'static str,
    /// Known for local recordings.
    codec: Option<String>,
    resolution: Option<String>,
    /// Local recordings: whether the segments have an audio track; unknown for XProtect's.
    has_audio: Option<bool>,
}

/// The parts of `v` that none of `cover` (sorted, disjoint) overlaps.
fn subtract(v: &Span, cover: &[Span]) -> Vec<Span> {
    let mut out = Vec::new();
    let mut from = v.start;
    for c in cover {
        if c.end <= from || c.start >= v.end {
            continue;
        }
        if c.start > from {
            out.push(Span {
                start: from,
                end: c.start,
                ..v.clone()
            });
        }
        from = from.max(c.end);
    }
    if from < v.end {
        out.push(Span {
            start: from,
            ..v.clone()
        });
    }
    out
}

/// A segment has audio when its RFC 6381 codecs list names an audio codec (AAC: `mp4a`).
fn has_audio(seg: &recorder::index::Segment) -> bool {
    seg.codec_string
        .split(',')
        .any(|c| c.trim().starts_with("mp4a"))
}

pub(crate) async fn timeline(
    State(st): State<Arc<AppState>>,
    Path(camera_id): Path<String>,
    Query(r): Query<Range>,
) -> Result<Json<Value>, ApiError> {
    let cam = st
        .catalog
        .get(&camera_id)
        .ok_or_else(|| camera_not_found(&camera_id))?;
    let now = st.clocks.realtime();
    let end = match &r.end {
        Some(e) => parse_time("end", e)?,
        None => now,
    };
    let start = match &r.start {
        Some(s) => parse_time("start", s)?,
        None => end - Duration::from_secs(86_400),
    };
    if start >= end {
        return Err(invalid("start", "must be before end"));
    }
    let (start_ms, end_ms) = (unix_ms(start), unix_ms(end));

    // Vantage's own segments, merged into runs: segments of one run follow each other exactly
    // (allow 1 ms of rounding).
    let mut local: Vec<Span> = Vec::new();
    let (reader, cam_id) = (st.recorder.reader(), camera_id.clone());
    let segs = tokio::task::spawn_blocking(move || reader.segments(&cam_id, start_ms, end_ms))
        .await
        .map_err(|e| ApiError::from(err!(Internal, "media index query failed: {e}")))?
        .map_err(query_error)?;
    for seg in segs {
        let e = seg.end_wall_ms.max(seg.start_wall_ms);
        match local.last_mut() {
            Some(l)
                if seg.start_wall_ms <= l.end + 1
                    && l.codec.as_ref() == Some(&seg.codec)
                    && l.resolution == resolution_of(&seg)
                    && l.has_audio == Some(has_audio(&seg)) =>
            {
                l.end = l.end.max(e);
            }
            _ => local.push(Span {
                start: seg.start_wall_ms,
                end: e,
                source: "local",
                resolution: resolution_of(&seg),
                has_audio: Some(has_audio(&seg)),
                codec: Some(seg.codec),
            }),
        }
    }
    let vms_spans: Vec<Span> = match (&st.vms, cam.vms()) {
        (Some(v), Some(_)) => v
            .sequences(&cam, start, end)
            .await?
            .iter()
            .map(|s| Span {
                start: unix_ms(s.begin),
                end: unix_ms(s.end),
                source: "xprotect",
                codec: None,
                resolution: None,
                has_audio: None,
            })
            .collect(),
        (None, Some(_)) if local.is_empty() => {
            return Err(ApiError::from(err!(
                Unavailable,
                "camera `{camera_id}` is an XProtect camera but no VMS is configured"
            )));
        }
        _ => Vec::new(),
    };
    let source = match (local.is_empty(), cam.vms().is_some()) {
        (false, true) => "local+xprotect",
        (false, false) => "local",
        (true, true) => "xprotect",
        (true, false) => "none",
    };
    let mut spans = local.clone();
    for v in &vms_spans {
        spans.extend(subtract(v, &local));
    }
    for s in &mut spans {
        s.start = s.start.max(start_ms);
        s.end = s.end.min(end_ms);
    }
    spans.retain(|s| s.end > s.start);
    spans.sort_by_key(|s| (s.start, s.end));

    let params = st.hub.get(&camera_id).and_then(|c| c.params());
    let live_codec = params.as_ref().map(|p| p.codec.display_name());
    let resolution = params.as_ref().map(|p| format!("{}x{}", p.width, p.height));
    let fps = params
        .as_ref()
        .and_then(|p| p.frame_rate)
        .map(|(n, d)| f64::from(n) / f64::from(d.max(1)));
    let mut timeline = Vec::new();
    let mut gaps = Vec::new();
    let mut prev_end: Option<i64> = None;
    for s in &spans {
        if let Some(pe) = prev_end
            && s.start > pe
        {
            gaps.push(json!({
                "start_time": rfc3339_ms(pe), "end_time": rfc3339_ms(s.start),
                "duration_seconds": ms_secs(s.start - pe),
            }));
        }
        prev_end = Some(prev_end.map_or(s.end, |p| p.max(s.end)));
        timeline.push(json!({
            "sequence_id": format!("{}-{}", s.source, s.start),
            "source": s.source,
            "start_time": rfc3339_ms(s.start),
            "end_time": rfc3339_ms(s.end),
            "duration_seconds": ms_secs(s.end - s.start),
            "has_video": true,
            // null: XProtect's sequences do not say.
            "has_audio": s.has_audio,
            "codec": s.codec.as_deref().map(codec_name).or(live_codec),
            "resolution": s.resolution.clone().or_else(|| resolution.clone()),
            "fps": fps,
            "gaps": [],
        }));
    }
    Ok(Json(json!({
        "camera_id": camera_id,
        "start": rfc3339_ms(start_ms),
        "end": rfc3339_ms(end_ms),
        "source": source,
        "timeline": timeline,
        "gaps": gaps,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: i64, end: i64) -> Span {
        Span {
            start,
            end,
            source: "xprotect",
            codec: None,
            resolution: None,
            has_audio: None,
        }
    }

    #[test]
    fn xprotect_fills_only_what_local_recording_does_not_cover() {
        let local = [span(10, 20), span(30, 40)];
        let got: Vec<(i64, i64)> = subtract(&span(0, 50), &local)
            .iter()
            .map(|s| (s.start, s.end))
            .collect();
        assert_eq!(got, vec![(0, 10), (20, 30), (40, 50)]);
        assert!(subtract(&span(12, 18), &local).is_empty());
        let got: Vec<(i64, i64)> = subtract(&span(15, 35), &local)
            .iter()
            .map(|s| (s.start, s.end))
            .collect();
        assert_eq!(got, vec![(20, 30)]);
    }
}

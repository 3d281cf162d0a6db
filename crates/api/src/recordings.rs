//! `GET /api/v1/recordings/{camera_id}?start=&end=`: the recording timeline of a camera (the
//! node layer merges local segments and XProtect's sequences; design 0005).

use crate::extract::Query;
use crate::model;
use crate::storage::parse_time;
use crate::{ApiError, AppState, camera_not_found, invalid};
use axum::Json;
use axum::extract::{Path, State};
use base::CameraId;
use base::clock::rfc3339_ms;
use serde::Deserialize;
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

pub(crate) async fn timeline(
    State(st): State<Arc<AppState>>,
    Path(camera_id): Path<String>,
    Query(r): Query<Range>,
) -> Result<Json<model::Timeline>, ApiError> {
    let now = st.now();
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
    let t = st
        .timeline(&CameraId::from(camera_id.as_str()), start, end)
        .await
        .map_err(|e| match (e.field, e.error.kind()) {
            (Some(field), _) => invalid(field, e.error.message()),
            (None, base::ErrorKind::NotFound) => camera_not_found(&camera_id),
            _ => ApiError::from(e.error),
        })?;
    let live = t.live.as_ref();
    let live_codec = live.map(|p| p.codec.display_name());
    let resolution = live.map(|p| format!("{}x{}", p.width, p.height));
    let fps = live
        .and_then(|p| p.frame_rate)
        .map(|(n, d)| f64::from(n) / f64::from(d.max(1)));
    let timeline = t
        .spans
        .iter()
        .map(|s| model::TimelineEntry {
            sequence_id: format!("{}-{}", s.source, s.start),
            source: s.source.to_owned(),
            start_time: rfc3339_ms(s.start),
            end_time: rfc3339_ms(s.end),
            duration_seconds: ms_secs(s.end - s.start),
            has_video: true,
            has_audio: s.has_audio,
            codec: s
                .codec
                .as_deref()
                .map(codec_name)
                .or(live_codec)
                .map(str::to_owned),
            resolution: s.resolution.clone().or_else(|| resolution.clone()),
            fps,
            gaps: Vec::new(),
            playback_url: (s.source == "local").then(|| {
                format!(
                    "/api/v1/playback/{camera_id}?start={}&end={}",
                    rfc3339_ms(s.start),
                    rfc3339_ms(s.end)
                )
            }),
            hls_url: (s.source == "local").then(|| {
                format!(
                    "/api/v1/playback/{camera_id}/index.m3u8?start={}&end={}",
                    rfc3339_ms(s.start),
                    rfc3339_ms(s.end)
                )
            }),
        })
        .collect();
    Ok(Json(model::Timeline {
        start: rfc3339_ms(base::clock::unix_ms(start)),
        end: rfc3339_ms(base::clock::unix_ms(end)),
        camera_id,
        source: t.source.to_owned(),
        timeline,
        gaps: t
            .gaps
            .iter()
            .map(|&(from, to)| model::Gap {
                start_time: rfc3339_ms(from),
                end_time: rfc3339_ms(to),
                duration_seconds: ms_secs(to - from),
            })
            .collect(),
    }))
}

//! `GET /api/v1/recordings/{camera_id}?start=&end=`: the recording timeline of a camera.
//!
//! For XProtect cameras the sequences come from the recording server (`SequencesGet`); Vantage's
//! own recordings (issue 5) will be merged in: where both exist, local segments are listed and
//! XProtect's sequences fill the time local recording does not cover (each entry says its
//! `source`).

use crate::storage::parse_time;
use crate::{ApiError, AppState, camera_not_found, invalid};
use axum::Json;
use axum::extract::{Path, Query, State};
use base::err;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[derive(Deserialize)]
pub(crate) struct Range {
    start: Option<String>,
    end: Option<String>,
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
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
    let (source, sequences) = match (&st.vms, cam.vms()) {
        (Some(v), Some(_)) => ("xprotect", v.sequences(&cam, start, end).await?),
        (None, Some(_)) => {
            return Err(ApiError::from(err!(
                Unavailable,
                "camera `{camera_id}` is an XProtect camera but no VMS is configured"
            )));
        }
        (_, None) => ("none", Vec::new()),
    };
    let params = st.hub.get(&camera_id).and_then(|c| c.params());
    let codec = params.as_ref().map(|p| p.codec.display_name());
    let resolution = params.as_ref().map(|p| format!("{}x{}", p.width, p.height));
    let fps = params
        .as_ref()
        .and_then(|p| p.frame_rate)
        .map(|(n, d)| f64::from(n) / f64::from(d.max(1)));
    let rfc = base::clock::rfc3339;
    let mut timeline = Vec::new();
    let mut gaps = Vec::new();
    let mut prev_end: Option<SystemTime> = None;
    for (i, s) in sequences.iter().enumerate() {
        let (b, e) = (s.begin.max(start), s.end.min(end));
        if e <= b {
            continue;
        }
        if let Some(pe) = prev_end
            && b > pe
        {
            gaps.push(json!({
                "start_time": rfc(pe), "end_time": rfc(b),
                "duration_seconds": secs(b.duration_since(pe).unwrap_or_default()),
            }));
        }
        prev_end = Some(prev_end.map_or(e, |p| p.max(e)));
        timeline.push(json!({
            "sequence_id": format!("{source}-{}-{i}", s.begin.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis())),
            "source": source,
            "start_time": rfc(b),
            "end_time": rfc(e),
            "duration_seconds": secs(e.duration_since(b).unwrap_or_default()),
            "has_video": true,
            "has_audio": false,
            "codec": codec,
            "resolution": resolution,
            "fps": fps,
            "gaps": [],
        }));
    }
    Ok(Json(json!({
        "camera_id": camera_id,
        "start": rfc(start),
        "end": rfc(end),
        "source": source,
        "timeline": timeline,
        "gaps": gaps,
    })))
}

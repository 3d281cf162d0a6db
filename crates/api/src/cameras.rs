//! Catalog: cameras with their live status, and agencies with their stream counts.

use crate::catalog::CatalogCamera;
use crate::storage::stored_settings;
use crate::{ApiError, AppState, camera_not_found};
use axum::Json;
use axum::extract::{Path, Query, State};
use hub::Channel;
use recorder::index::RecordingSetting;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

fn camera_json(
    st: &AppState,
    c: &CatalogCamera,
    ch: Option<&Arc<Channel>>,
    stored: &HashMap<String, RecordingSetting>,
) -> Value {
    let cam = &c.camera;
    let vms = c.vms();
    let status = ch.map(|c| c.status());
    let params = ch.and_then(|c| c.params());
    let audio = ch.and_then(|c| c.audio_params());
    json!({
        "id": cam.id,
        "name": cam.name,
        "agency": cam.agency,
        "location": cam.location,
        "enabled": cam.enabled,
        "status": status.as_ref().map_or("idle", |s| s.state.as_str()),
        "status_since": status.as_ref().map(|s| base::clock::rfc3339(s.since)),
        "last_error": status.as_ref().and_then(|s| s.last_error.clone()),
        // The recorder's subscription is not a viewer.
        "viewers": ch.map_or(0, |c| c.subscriber_count())
            .saturating_sub(usize::from(st.recorder.is_recording(&cam.id))),
        "recording": crate::storage::recording_json(st, cam, stored),
        "recording_server": vms.and_then(|v| v.recorder_name.clone()),
        "source": if vms.is_some() { "xprotect" } else { "config" },
        "groups": vms.map(|v| v.groups.clone()).unwrap_or_default(),
        "properties": {
            "manufacturer": cam.manufacturer,
            "model": cam.model,
            "resolution": params.as_ref().map(|p| format!("{}x{}", p.width, p.height)),
            "fps": params.as_ref().and_then(|p| p.frame_rate).map(|(n, d)| f64::from(n) / f64::from(d.max(1))),
            "codec": params.as_ref().map(|p| p.codec.display_name()),
            // The camera's recordable audio (recorded, not sent to WebRTC viewers); null if none.
            "audio": audio.as_ref().map(|a| json!({
                "codec": a.codec.display_name(),
                "codec_string": a.rfc6381,
                "sample_rate": a.sample_rate,
                "channels": a.channels,
            })),
            "ptz_capable": cam.ptz_capable,
        },
        "qualities": cam.substreams.iter().map(|(q, _)| q.as_str()).collect::<Vec<_>>(),
        "live_stream_url": Value::Null,
    })
}

#[derive(Deserialize)]
pub(crate) struct CameraFilter {
    agency: Option<String>,
    status: Option<String>,
}

pub(crate) async fn list_cameras(
    State(st): State<Arc<AppState>>,
    Query(f): Query<CameraFilter>,
) -> Json<Value> {
    let all = st.catalog.all();
    let stored = stored_settings(&st);
    let cams: Vec<Value> = all
        .iter()
        .filter(|c| f.agency.as_ref().is_none_or(|a| *a == c.camera.agency))
        .map(|c| camera_json(&st, c, st.hub.get(&c.camera.id).as_ref(), &stored))
        .filter(|v| f.status.as_ref().is_none_or(|s| v["status"] == **s))
        .collect();
    Json(json!({ "cameras": cams, "total": cams.len() }))
}

pub(crate) async fn get_camera(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let cam = st.catalog.get(&id).ok_or_else(|| camera_not_found(&id))?;
    Ok(Json(camera_json(
        &st,
        &cam,
        st.hub.get(&id).as_ref(),
        &stored_settings(&st),
    )))
}

pub(crate) async fn list_agencies(State(st): State<Arc<AppState>>) -> Json<Value> {
    let stats = st.admission.stats();
    let v: Vec<Value> = st
        .cfg
        .agencies
        .iter()
        .map(|a| {
            json!({
                "id": a.id, "name": a.name, "name_ar": a.name_ar, "max_streams": a.max_streams,
                "active_streams": stats.current(&a.id),
            })
        })
        .collect();
    Json(json!({ "agencies": v }))
}

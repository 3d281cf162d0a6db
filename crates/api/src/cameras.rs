//! Catalog: cameras with their live status, and agencies with their stream counts.

use crate::extract::Query;
use crate::model;
use crate::{ApiError, AppState, camera_not_found};
use axum::Json;
use axum::extract::{Path, State};
use hub::Channel;
use node::recording::stored_settings;
use recorder::index::RecordingSetting;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use vms::catalog::CatalogCamera;

fn camera(
    st: &AppState,
    c: &CatalogCamera,
    ch: Option<&Arc<Channel>>,
    stored: &HashMap<String, RecordingSetting>,
) -> model::Camera {
    let cam = &c.camera;
    let vms = c.vms();
    let status = ch.map(|c| c.status());
    let params = ch.and_then(|c| c.params());
    let audio = ch.and_then(|c| c.audio_params());
    model::Camera {
        id: cam.id.clone(),
        name: cam.name.clone(),
        agency: cam.agency.clone(),
        location: cam.location.clone(),
        enabled: cam.enabled,
        status: status
            .as_ref()
            .map_or("idle", |s| s.state.as_str())
            .to_owned(),
        status_since: status.as_ref().map(|s| base::clock::rfc3339(s.since)),
        last_error: status.as_ref().and_then(|s| s.last_error.clone()),
        // The recorder's subscription is not a viewer.
        viewers: ch
            .map_or(0, |c| c.subscriber_count())
            .saturating_sub(usize::from(st.recorder.is_recording(&cam.id))),
        recording: crate::storage::recording(st, cam, stored),
        recording_server: vms.and_then(|v| v.recorder_name.clone()),
        source: if vms.is_some() { "xprotect" } else { "config" }.to_owned(),
        groups: vms.map(|v| v.groups.clone()).unwrap_or_default(),
        properties: model::CameraProperties {
            manufacturer: cam.manufacturer.clone(),
            model: cam.model.clone(),
            resolution: params.as_ref().map(|p| format!("{}x{}", p.width, p.height)),
            fps: params
                .as_ref()
                .and_then(|p| p.frame_rate)
                .map(|(n, d)| f64::from(n) / f64::from(d.max(1))),
            codec: params.as_ref().map(|p| p.codec.display_name().to_owned()),
            audio: audio.as_ref().map(|a| model::Audio {
                codec: a.codec.display_name().to_owned(),
                codec_string: a.rfc6381.clone(),
                sample_rate: a.sample_rate,
                channels: a.channels,
            }),
            ptz_capable: cam.ptz_capable,
        },
        qualities: cam
            .substreams
            .iter()
            .map(|(q, _)| q.as_str().to_owned())
            .collect(),
        live_stream_url: None,
    }
}

/// A camera's live status, as `?status=` filters on it.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StatusFilter {
    Idle,
    Connecting,
    Online,
    Offline,
    Error,
}

impl StatusFilter {
    fn as_str(self) -> &'static str {
        match self {
            StatusFilter::Idle => "idle",
            StatusFilter::Connecting => "connecting",
            StatusFilter::Online => "online",
            StatusFilter::Offline => "offline",
            StatusFilter::Error => "error",
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct CameraFilter {
    agency: Option<String>,
    status: Option<StatusFilter>,
}

pub(crate) async fn list_cameras(
    State(st): State<Arc<AppState>>,
    Query(f): Query<CameraFilter>,
) -> Json<model::CameraList> {
    let all = st.catalog.all();
    let stored = stored_settings(&st);
    let cameras: Vec<model::Camera> = all
        .iter()
        .filter(|c| f.agency.as_ref().is_none_or(|a| *a == c.camera.agency))
        .map(|c| camera(&st, c, st.hub.get(&c.camera.id).as_ref(), &stored))
        .filter(|v| f.status.is_none_or(|s| v.status == s.as_str()))
        .collect();
    Json(model::CameraList {
        total: cameras.len(),
        cameras,
    })
}

pub(crate) async fn get_camera(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<model::Camera>, ApiError> {
    let cam = st.catalog.get(&id).ok_or_else(|| camera_not_found(&id))?;
    Ok(Json(camera(
        &st,
        &cam,
        st.hub.get(&id).as_ref(),
        &stored_settings(&st),
    )))
}

pub(crate) async fn list_agencies(State(st): State<Arc<AppState>>) -> Json<model::AgencyList> {
    let stats = st.admission.stats();
    Json(model::AgencyList {
        agencies: st
            .cfg
            .agencies
            .iter()
            .map(|a| model::Agency {
                id: a.id.clone(),
                name: a.name.clone(),
                name_ar: a.name_ar.clone(),
                max_streams: a.max_streams,
                active_streams: stats.current(&a.id),
            })
            .collect(),
    })
}

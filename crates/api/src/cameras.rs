//! Catalog: cameras with their live status, and agencies with their stream counts.

use crate::extract::Query;
use crate::model;
use crate::{ApiError, AppState, camera_not_found};
use axum::Json;
use axum::extract::{Path, State};
use base::CameraId;
use node::ports::CameraView;
use serde::Deserialize;
use std::sync::Arc;

fn camera(v: &CameraView) -> model::Camera {
    let cam = &v.camera.camera;
    let vms = v.camera.vms();
    let params = v.params.as_ref();
    model::Camera {
        id: cam.id.clone(),
        name: cam.name.clone(),
        agency: cam.agency.clone(),
        location: cam.location.clone(),
        enabled: cam.enabled,
        status: v
            .status
            .as_ref()
            .map_or("idle", |s| s.state.as_str())
            .to_owned(),
        status_since: v.status.as_ref().map(|s| base::clock::rfc3339(s.since)),
        last_error: v.status.as_ref().and_then(|s| s.last_error.clone()),
        viewers: v.viewers,
        recording: crate::storage::recording(&v.recording),
        recording_server: vms.and_then(|v| v.recorder_name.clone()),
        source: if vms.is_some() { "xprotect" } else { "config" }.to_owned(),
        groups: vms.map(|v| v.groups.clone()).unwrap_or_default(),
        properties: model::CameraProperties {
            manufacturer: cam.manufacturer.clone(),
            model: cam.model.clone(),
            resolution: params.map(|p| format!("{}x{}", p.width, p.height)),
            fps: params
                .and_then(|p| p.frame_rate)
                .map(|(n, d)| f64::from(n) / f64::from(d.max(1))),
            codec: params.map(|p| p.codec.display_name().to_owned()),
            audio: v.audio.as_ref().map(|a| model::Audio {
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
        ingest: v
            .stats
            .map(|s| model::IngestCounters {
                frames_in: s.frames_in,
                key_frames_in: s.key_frames_in,
                bytes_in: s.bytes_in,
                audio_frames_in: s.audio_frames_in,
                gop_cache_overflows: s.gop_cache_overflows,
                pts_rewritten: s.pts_rewritten,
            })
            .unwrap_or_default(),
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
    let cameras: Vec<model::Camera> = st
        .cameras()
        .await
        .iter()
        .filter(|v| {
            f.agency
                .as_ref()
                .is_none_or(|a| *a == v.camera.camera.agency)
        })
        .map(camera)
        .filter(|c| f.status.is_none_or(|s| c.status == s.as_str()))
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
    let v = st
        .camera(&CameraId::from(id.as_str()))
        .await
        .ok_or_else(|| camera_not_found(&id))?;
    Ok(Json(camera(&v)))
}

pub(crate) async fn list_agencies(State(st): State<Arc<AppState>>) -> Json<model::AgencyList> {
    Json(model::AgencyList {
        agencies: st
            .agencies()
            .into_iter()
            .map(|a| model::Agency {
                id: a.agency.id,
                name: a.agency.name,
                name_ar: a.agency.name_ar,
                max_streams: a.agency.max_streams,
                active_streams: a.active_streams,
            })
            .collect(),
    })
}

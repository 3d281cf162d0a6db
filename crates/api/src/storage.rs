//! Recording: per-camera recording mode, evidence locks and storage status.
//!
//! - `GET/PUT /api/v1/cameras/{id}/recording` `{mode: continuous|off, retention_days?}`: a setting
//!   made here is stored in the media index and overrides the configuration's.
//! - `POST /api/v1/evidence-locks` `{camera_id, start_time, end_time, reason, expires_at?}`,
//!   `GET /api/v1/evidence-locks[?camera_id=]`, `GET/DELETE /api/v1/evidence-locks/{id}`.
//! - `GET /api/v1/storage`: volume, budget, per-camera usage, writer and retention counters.

use crate::extract::{JsonBody, Query};
use crate::model;
use crate::streams::text_field;
use crate::{ApiError, AppState, camera_not_found, invalid};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base::clock::{rfc3339_ms, unix_ms};
use base::{CameraId, err};
use node::ports::{RecordingState, Recordings};
use recorder::index::{EvidenceLock, NewLock};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::SystemTime;

/// A request's time field (strict RFC 3339): 400 naming the field otherwise.
pub(crate) fn parse_time(field: &str, s: &str) -> Result<SystemTime, ApiError> {
    base::time::rfc3339::parse_field(field, s)
        .map_err(|_| invalid(field, "must be an RFC 3339 time like 2026-11-21T08:00:00Z"))
}

/// The `recording` object of a camera.
pub(crate) fn recording(r: &RecordingState) -> model::Recording {
    let (e, w) = (&r.effective, r.writer.as_ref());
    model::Recording {
        mode: if e.continuous { "continuous" } else { "off" }.to_owned(),
        retention_days: e.retention_days,
        set_by: if e.from_api { "api" } else { "config" }.to_owned(),
        active: r.active,
        state: match (w, r.active) {
            (_, false) => "off",
            (Some(w), true) if w.last_error.is_some() => "error",
            (Some(w), true) if w.in_segment => "recording",
            _ => "waiting",
        }
        .to_owned(),
        last_error: w.and_then(|w| w.last_error.clone()),
        open_segment_since: w.and_then(|w| w.open_since_ms).map(rfc3339_ms),
        last_write: w.and_then(|w| w.last_write_ms).map(rfc3339_ms),
        frames_skipped: w.map_or(0, |w| w.segmenter.skipped),
        fragments_dropped: w.map_or(0, |w| w.dropped_fragments),
        frames_dropped_behind: w.map_or(0, |w| w.queue_dropped_frames),
    }
}

pub(crate) async fn get_recording(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<model::Recording>, ApiError> {
    let r = st
        .recording(&CameraId::from(id.as_str()))
        .await?
        .ok_or_else(|| camera_not_found(&id))?;
    Ok(Json(recording(&r)))
}

pub(crate) async fn put_recording(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<model::RecordingRequest>,
) -> Result<Json<model::Recording>, ApiError> {
    let continuous = match text_field(b.mode, "mode")?.as_str() {
        "continuous" => true,
        "off" => false,
        _ => return Err(invalid("mode", "must be continuous or off")),
    };
    let retention_days = match b.retention_days {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(d) if d <= 36_500 => Some(d as u32),
            _ => {
                return Err(invalid(
                    "retention_days",
                    "must be a whole number of days, 0–36500",
                ));
            }
        },
    };
    let r = st
        .set_recording(&CameraId::from(id.as_str()), continuous, retention_days)
        .await?
        .ok_or_else(|| camera_not_found(&id))?;
    Ok(Json(recording(&r)))
}

fn lock(l: &EvidenceLock, now_ms: i64) -> model::EvidenceLock {
    model::EvidenceLock {
        id: l.id.to_string(),
        camera_id: l.camera_id.clone(),
        start_time: rfc3339_ms(l.start_ms),
        end_time: rfc3339_ms(l.end_ms),
        reason: l.reason.clone(),
        expires_at: l.expires_at_ms.map(rfc3339_ms),
        created_at: rfc3339_ms(l.created_at_ms),
        active: l.expires_at_ms.is_none_or(|e| e > now_ms),
        segments: None,
        bytes: None,
    }
}

pub(crate) fn time_field(v: Option<Value>, field: &str) -> Result<i64, ApiError> {
    let s = text_field(v, field)?;
    Ok(unix_ms(parse_time(field, &s)?))
}

/// Who acted: `X-Vantage-User`, else `anonymous` (until users and roles exist).
pub(crate) fn actor(headers: &HeaderMap) -> String {
    headers
        .get("x-vantage-user")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty() && v.len() <= 256)
        .unwrap_or("anonymous")
        .to_owned()
}

pub(crate) async fn create_lock(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<model::LockRequest>,
) -> Result<(StatusCode, Json<model::EvidenceLock>), ApiError> {
    let camera_id = text_field(b.camera_id, "camera_id")?;
    let start_ms = time_field(b.start_time, "start_time")?;
    let end_ms = time_field(b.end_time, "end_time")?;
    let reason = match b.reason {
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err(invalid("reason", "must not be empty"));
        }
        Some(Value::String(s)) if s.len() > 1000 => {
            return Err(invalid("reason", "is longer than 1000 bytes"));
        }
        Some(Value::String(s)) => s,
        None | Some(Value::Null) => return Err(invalid("reason", "is required")),
        Some(_) => return Err(invalid("reason", "must be a string")),
    };
    let now_ms = unix_ms(st.now());
    let expires_at_ms = match b.expires_at {
        None | Some(Value::Null) => None,
        v => Some(time_field(v, "expires_at")?),
    };
    if end_ms <= start_ms {
        return Err(invalid("end_time", "must be after start_time"));
    }
    if expires_at_ms.is_some_and(|e| e <= now_ms) {
        return Err(invalid("expires_at", "must be in the future"));
    }
    let created = st
        .create_lock(
            NewLock {
                camera_id: camera_id.clone(),
                start_ms,
                end_ms,
                reason,
                expires_at_ms,
            },
            &actor(&headers),
        )
        .await
        .map_err(|e| match e.kind() {
            base::ErrorKind::NotFound => camera_not_found(&camera_id),
            _ => ApiError::from(e),
        })?;
    let mut v = lock(&created.lock, now_ms);
    v.segments = Some(created.segments);
    v.bytes = Some(created.bytes);
    Ok((StatusCode::CREATED, Json(v)))
}

#[derive(Deserialize)]
pub(crate) struct LockFilter {
    camera_id: Option<String>,
}

pub(crate) async fn list_locks(
    State(st): State<Arc<AppState>>,
    Query(f): Query<LockFilter>,
) -> Result<Json<model::EvidenceLockList>, ApiError> {
    let now_ms = unix_ms(st.now());
    let locks = st.locks(f.camera_id.map(CameraId::from)).await?;
    let evidence_locks: Vec<model::EvidenceLock> = locks.iter().map(|l| lock(l, now_ms)).collect();
    Ok(Json(model::EvidenceLockList {
        total: evidence_locks.len(),
        evidence_locks,
    }))
}

fn lock_id(id: &str) -> Result<i64, ApiError> {
    id.parse::<i64>().map_err(|_| lock_not_found(id))
}

fn lock_not_found(id: &str) -> ApiError {
    ApiError::new(
        err!(NotFound, "evidence lock `{id}` not found").with_code("EVIDENCE_LOCK_NOT_FOUND"),
        format!("قفل الأدلة `{id}` غير موجود"),
    )
    .detail("lock_id", id)
}

pub(crate) async fn get_lock(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<model::EvidenceLock>, ApiError> {
    let n = lock_id(&id)?;
    let now_ms = unix_ms(st.now());
    let l = st.lock(n).await?.ok_or_else(|| lock_not_found(&id))?;
    Ok(Json(lock(&l, now_ms)))
}

pub(crate) async fn delete_lock(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let n = lock_id(&id)?;
    if !st.delete_lock(n, &actor(&headers)).await? {
        return Err(lock_not_found(&id));
    }
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn storage(
    State(st): State<Arc<AppState>>,
) -> Result<Json<model::Storage>, ApiError> {
    let s = Recordings::storage(&**st).await?;
    let total = s.volume.total_bytes;
    let cameras = s
        .cameras
        .iter()
        .map(|c| model::CameraStorage {
            camera_id: c.camera_id.to_string(),
            recording: c.recording,
            retention_days: c.retention_days,
            segments: c.segments,
            bytes: c.bytes,
            oldest_recording: c.oldest_ms.filter(|_| c.segments > 0).map(rfc3339_ms),
            newest_recording: c.newest_ms.filter(|_| c.segments > 0).map(rfc3339_ms),
            fragments_dropped: c.writer.as_ref().map_or(0, |w| w.dropped_fragments),
            frames_dropped_behind: c.writer.as_ref().map_or(0, |w| w.queue_dropped_frames),
            last_error: c.writer.as_ref().and_then(|w| w.last_error.clone()),
        })
        .collect();
    let r = &s.retention;
    Ok(Json(model::Storage {
        recordings_dir: s.dir.display().to_string(),
        volume: model::Volume {
            total_bytes: total,
            free_bytes: s.volume.free_bytes,
            used_percent: if total > 0 {
                ((total - s.volume.free_bytes.min(total)) as f64 * 1000.0 / total as f64).round()
                    / 10.0
            } else {
                0.0
            },
        },
        max_usage_bytes: s.max_usage_bytes,
        min_free_bytes: s.min_free_bytes,
        used_bytes: s.used_bytes,
        cameras,
        writer: model::Writer {
            writes: s.writes,
            bytes_written: s.bytes_written,
            syncs: s.syncs,
            write_errors: s.write_errors,
            lag_ms: model::LagMs {
                p50: s.lag.quantile_ms(0.5),
                p95: s.lag.quantile_ms(0.95),
                p99: s.lag.quantile_ms(0.99),
                max: s.lag.max_ms,
            },
        },
        retention: model::Retention {
            passes: r.passes,
            emergency_passes: r.emergency_passes,
            deleted_segments: r.deleted_segments,
            deleted_bytes: r.deleted_bytes,
            deleted_by_age: r.deleted_by_age,
            deleted_by_budget: r.deleted_by_budget,
            deleted_in_emergency: r.deleted_in_emergency,
            locked_kept: r.locked_kept,
            pinned_kept: r.pinned_kept,
            skipped_pinned: r.skipped_pinned,
            shortfall_bytes: r.shortfall_bytes,
            last_pass: r.last_pass_ms.map(rfc3339_ms),
            last_error: r.last_error.clone(),
        },
        recovery: serde_json::to_value(&s.recovery).unwrap_or(Value::Null),
    }))
}

//! Recording: per-camera recording mode, evidence locks and storage status.
//!
//! - `GET/PUT /api/v1/cameras/{id}/recording` `{mode: continuous|off, retention_days?}`: a setting
//!   made here is stored in the media index and overrides the configuration's.
//! - `POST /api/v1/evidence-locks` `{camera_id, start_time, end_time, reason, expires_at?}`,
//!   `GET /api/v1/evidence-locks[?camera_id=]`, `GET/DELETE /api/v1/evidence-locks/{id}`.
//! - `GET /api/v1/storage`: volume, budget, per-camera usage, writer and retention counters.

use crate::streams::text_field;
use crate::{ApiError, AppState, camera_not_found, invalid};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use base::clock::{rfc3339_ms, unix_ms};
use base::err;
use recorder::index::{EvidenceLock, NewLock, RecordingSetting};
use recorder::service::RecordSpec;
use serde::Deserialize;
use serde_json::{Value, json};
use settings::RecordingMode;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;
use store::{AuditAction, AuditEvent};

/// Runs a blocking media-index call off the runtime (the index is SQLite).
pub(crate) async fn index_call<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, base::Error> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::from(err!(Internal, "media index call failed: {e}")))?
        .map_err(ApiError::from)
}

/// A bounded index query's error: 400 with `field` for an argument out of bounds.
pub(crate) fn query_error(e: recorder::index::QueryError) -> ApiError {
    match e.field {
        Some(field) => invalid(field, e.error.message()),
        None => ApiError::from(e.error),
    }
}

pub(crate) fn parse_time(field: &str, s: &str) -> Result<SystemTime, ApiError> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(SystemTime::from)
        .map_err(|_| invalid(field, "must be an RFC 3339 time like 2026-11-21T08:00:00Z"))
}

/// A camera's effective recording setting: the API's stored one, else the configuration's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Effective {
    pub continuous: bool,
    pub retention_days: u32,
    /// Set through the API (else from the configuration).
    pub from_api: bool,
}

fn effective(cam: &settings::Camera, stored: Option<&RecordingSetting>) -> Effective {
    match stored {
        Some(s) => Effective {
            continuous: s.continuous,
            retention_days: s.retention_days.unwrap_or(cam.retention_days),
            from_api: true,
        },
        None => Effective {
            continuous: cam.recording == RecordingMode::Continuous,
            retention_days: cam.retention_days,
            from_api: false,
        },
    }
}

/// The recording settings stored through the API, by camera.
pub(crate) fn stored_settings(st: &AppState) -> HashMap<String, RecordingSetting> {
    match st.recorder.settings() {
        Ok(v) => v.into_iter().map(|s| (s.camera_id.clone(), s)).collect(),
        Err(e) => {
            tracing::error!("reading recording settings: {e}");
            HashMap::new()
        }
    }
}

/// Records exactly the enabled catalog cameras whose effective mode is `continuous`. The node
/// calls this after every catalog change (once the channels exist); the API after a change of
/// mode.
pub fn apply_recording(st: &AppState) {
    let stored = stored_settings(st);
    let all = st.catalog.all();
    let effective: Vec<(&settings::Camera, Effective)> = all
        .iter()
        .map(|c| (&c.camera, effective(&c.camera, stored.get(&c.camera.id))))
        .collect();
    // Retention applies to a camera's recordings whether or not it records now.
    st.recorder.set_retention(
        effective
            .iter()
            .map(|(c, e)| (c.id.clone(), e.retention_days))
            .collect(),
    );
    let wanted: Vec<RecordSpec> = effective
        .iter()
        .filter(|(c, e)| c.enabled && e.continuous)
        .map(|(c, e)| RecordSpec {
            camera_id: c.id.clone(),
            retention_days: e.retention_days,
        })
        .collect();
    st.recorder.apply(&st.hub, &wanted);
}

/// The `recording` object of a camera (`stored`: [`stored_settings`]).
pub(crate) fn recording_json(
    st: &AppState,
    cam: &settings::Camera,
    stored: &HashMap<String, RecordingSetting>,
) -> Value {
    let e = effective(cam, stored.get(&cam.id));
    let w = st.recorder.camera(&cam.id);
    let active = st.recorder.is_recording(&cam.id);
    json!({
        "mode": if e.continuous { "continuous" } else { "off" },
        "retention_days": e.retention_days,
        "set_by": if e.from_api { "api" } else { "config" },
        "active": active,
        "state": match (&w, active) {
            (_, false) => "off",
            (Some(w), true) if w.last_error.is_some() => "error",
            (Some(w), true) if w.in_segment => "recording",
            _ => "waiting",
        },
        "last_error": w.as_ref().and_then(|w| w.last_error.clone()),
        "open_segment_since": w.as_ref().and_then(|w| w.open_since_ms).map(rfc3339_ms),
        "last_write": w.as_ref().and_then(|w| w.last_write_ms).map(rfc3339_ms),
        "frames_skipped": w.as_ref().map_or(0, |w| w.segmenter.skipped),
        "fragments_dropped": w.as_ref().map_or(0, |w| w.dropped_fragments),
        "frames_dropped_behind": w.as_ref().map_or(0, |w| w.queue_dropped_frames),
    })
}

pub(crate) async fn get_recording(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let cam = st.catalog.get(&id).ok_or_else(|| camera_not_found(&id))?;
    Ok(Json(recording_json(
        &st,
        &cam.camera,
        &stored_settings(&st),
    )))
}

#[derive(Deserialize)]
pub(crate) struct RecordingBody {
    mode: Option<Value>,
    retention_days: Option<Value>,
}

pub(crate) async fn put_recording(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Result<Json<RecordingBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(b) = body.map_err(|e| invalid("body", &e.body_text()))?;
    let cam = st.catalog.get(&id).ok_or_else(|| camera_not_found(&id))?;
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
    let setting = RecordingSetting {
        camera_id: id.clone(),
        continuous,
        retention_days,
    };
    let (rec, now_ms) = (st.recorder.clone(), unix_ms(st.clocks.realtime()));
    index_call(move || rec.set_recording_setting(&setting, now_ms)).await?;
    apply_recording(&st);
    tracing::info!(camera = %id, continuous, ?retention_days, "recording mode set through the API");
    Ok(Json(recording_json(
        &st,
        &cam.camera,
        &stored_settings(&st),
    )))
}

fn lock_json(l: &EvidenceLock, now_ms: i64) -> Value {
    json!({
        "id": l.id.to_string(),
        "camera_id": l.camera_id,
        "start_time": rfc3339_ms(l.start_ms),
        "end_time": rfc3339_ms(l.end_ms),
        "reason": l.reason,
        "expires_at": l.expires_at_ms.map(rfc3339_ms),
        "created_at": rfc3339_ms(l.created_at_ms),
        "active": l.expires_at_ms.is_none_or(|e| e > now_ms),
    })
}

#[derive(Deserialize)]
pub(crate) struct LockBody {
    camera_id: Option<Value>,
    start_time: Option<Value>,
    end_time: Option<Value>,
    reason: Option<Value>,
    expires_at: Option<Value>,
}

fn time_field(v: Option<Value>, field: &str) -> Result<i64, ApiError> {
    let s = text_field(v, field)?;
    Ok(unix_ms(parse_time(field, &s)?))
}

/// Who acted: `X-Vantage-User`, else `anonymous` (until users and roles exist).
fn actor(headers: &HeaderMap) -> String {
    headers
        .get("x-vantage-user")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty() && v.len() <= 256)
        .unwrap_or("anonymous")
        .to_owned()
}

/// Evidence locks are audited like reservations: who, which camera, which range, why.
fn audit_lock(st: &AppState, action: AuditAction, user: String, l: &EvidenceLock) {
    st.audit.record(AuditEvent {
        at: st.clocks.realtime(),
        action,
        reservation_id: None,
        user_id: user,
        agency: st
            .catalog
            .get(&l.camera_id)
            .map(|c| c.camera.agency.clone()),
        camera_id: l.camera_id.clone(),
        quality: None,
        reason: Some(l.reason.clone()),
        detail: Some(format!(
            "evidence lock {} [{}, {}) expires {}",
            l.id,
            rfc3339_ms(l.start_ms),
            rfc3339_ms(l.end_ms),
            l.expires_at_ms
                .map_or_else(|| "never".to_owned(), rfc3339_ms)
        )),
    });
}

pub(crate) async fn create_lock(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<LockBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(b) = body.map_err(|e| invalid("body", &e.body_text()))?;
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
    let now_ms = unix_ms(st.clocks.realtime());
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
    // A camera that left the catalog may still have recordings worth locking.
    let reader = st.recorder.reader();
    let cam = camera_id.clone();
    let has_recordings = index_call(move || reader.latest_segment(&cam))
        .await
        .ok()
        .flatten()
        .is_some();
    if st.catalog.get(&camera_id).is_none() && !has_recordings {
        return Err(camera_not_found(&camera_id));
    }
    let l = NewLock {
        camera_id,
        start_ms,
        end_ms,
        reason,
        expires_at_ms,
    };
    let index = st.recorder.index().clone();
    let (id, l) = index_call(move || index.create_lock(&l, now_ms).map(|id| (id, l))).await?;
    tracing::info!(lock = id, camera = %l.camera_id, start_ms, end_ms, reason = %l.reason, "evidence lock created");
    let lock = EvidenceLock {
        id,
        camera_id: l.camera_id,
        start_ms,
        end_ms,
        reason: l.reason,
        expires_at_ms,
        created_at_ms: now_ms,
    };
    audit_lock(&st, AuditAction::Lock, actor(&headers), &lock);
    let mut v = lock_json(&lock, now_ms);
    let (reader, cam) = (st.recorder.reader(), lock.camera_id.clone());
    let totals = index_call(move || reader.range_totals(&cam, start_ms, end_ms)).await?;
    v["segments"] = json!(totals.segments);
    v["bytes"] = json!(totals.bytes);
    Ok((StatusCode::CREATED, Json(v)))
}

#[derive(Deserialize)]
pub(crate) struct LockFilter {
    camera_id: Option<String>,
}

pub(crate) async fn list_locks(
    State(st): State<Arc<AppState>>,
    Query(f): Query<LockFilter>,
) -> Result<Json<Value>, ApiError> {
    let now_ms = unix_ms(st.clocks.realtime());
    let reader = st.recorder.reader();
    let locks = index_call(move || reader.locks(f.camera_id.as_deref())).await?;
    let v: Vec<Value> = locks.iter().map(|l| lock_json(l, now_ms)).collect();
    Ok(Json(json!({ "evidence_locks": v, "total": v.len() })))
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
) -> Result<Json<Value>, ApiError> {
    let n = lock_id(&id)?;
    let now_ms = unix_ms(st.clocks.realtime());
    let reader = st.recorder.reader();
    let l = index_call(move || reader.lock(n))
        .await?
        .ok_or_else(|| lock_not_found(&id))?;
    Ok(Json(lock_json(&l, now_ms)))
}

pub(crate) async fn delete_lock(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let n = lock_id(&id)?;
    let reader = st.recorder.reader();
    let Some(lock) = index_call(move || reader.lock(n)).await? else {
        return Err(lock_not_found(&id));
    };
    let index = st.recorder.index().clone();
    if !index_call(move || index.delete_lock(n)).await? {
        return Err(lock_not_found(&id));
    }
    audit_lock(&st, AuditAction::Unlock, actor(&headers), &lock);
    tracing::info!(lock = n, "evidence lock deleted");
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn storage(State(st): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let rec = st.recorder.clone();
    let s = index_call(move || rec.status()).await?;
    let total = s.volume.total_bytes;
    let cameras: Vec<Value> = s
        .cameras
        .iter()
        .map(|c| {
            json!({
                "camera_id": c.camera_id,
                "recording": c.recording,
                "retention_days": c.retention_days,
                "segments": c.segments,
                "bytes": c.bytes,
                "oldest_recording": c.oldest_ms.filter(|_| c.segments > 0).map(rfc3339_ms),
                "newest_recording": c.newest_ms.filter(|_| c.segments > 0).map(rfc3339_ms),
                "fragments_dropped": c.writer.as_ref().map_or(0, |w| w.dropped_fragments),
                "frames_dropped_behind": c.writer.as_ref().map_or(0, |w| w.queue_dropped_frames),
                "last_error": c.writer.as_ref().and_then(|w| w.last_error.clone()),
            })
        })
        .collect();
    let r = &s.retention;
    Ok(Json(json!({
        "recordings_dir": s.dir.display().to_string(),
        "volume": {
            "total_bytes": total,
            "free_bytes": s.volume.free_bytes,
            "used_percent": if total > 0 {
                ((total - s.volume.free_bytes.min(total)) as f64 * 1000.0 / total as f64).round() / 10.0
            } else { 0.0 },
        },
        "max_usage_bytes": s.max_usage_bytes,
        "min_free_bytes": s.min_free_bytes,
        "used_bytes": s.used_bytes,
        "cameras": cameras,
        "writer": {
            "writes": s.writes,
            "bytes_written": s.bytes_written,
            "syncs": s.syncs,
            "write_errors": s.write_errors,
            "lag_ms": {
                "p50": s.lag.quantile_ms(0.5),
                "p95": s.lag.quantile_ms(0.95),
                "p99": s.lag.quantile_ms(0.99),
                "max": s.lag.max_ms,
            },
        },
        "retention": {
            "passes": r.passes,
            "emergency_passes": r.emergency_passes,
            "deleted_segments": r.deleted_segments,
            "deleted_bytes": r.deleted_bytes,
            "deleted_by_age": r.deleted_by_age,
            "deleted_by_budget": r.deleted_by_budget,
            "deleted_in_emergency": r.deleted_in_emergency,
            "locked_kept": r.locked_kept,
            "shortfall_bytes": r.shortfall_bytes,
            "last_pass": r.last_pass_ms.map(rfc3339_ms),
            "last_error": r.last_error,
        },
        "recovery": serde_json::to_value(&s.recovery).unwrap_or(Value::Null),
    })))
}

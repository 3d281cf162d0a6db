//! Evidence export routes (design 0008, "Exports"): `POST /api/v1/export` queues a job,
//! `GET /api/v1/exports[/{id}]` shows jobs, `DELETE /api/v1/exports/{id}` cancels or removes
//! one, `GET /api/v1/exports/{id}/download` and `.../manifest` serve a completed export's files
//! (`Range` and a strong `ETag`: the file's SHA-256), `GET /api/v1/exports/public-key` the key
//! that signs manifests.

use crate::extract::JsonBody;
use crate::playback::{hv, not_modified, query_error, serve_with};
use crate::storage::{actor, time_field};
use crate::streams::text_field;
use crate::{ApiError, AppState, invalid, model};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base::CameraId;
use base::clock::rfc3339_ms;
use node::ports::{Deleted, ExportFile, ExportRow, ExportStatus, NewExport};
use serde_json::Value;
use std::sync::Arc;

fn export_not_found(id: &str) -> ApiError {
    ApiError::new(
        base::err!(NotFound, "export `{id}` not found").with_code("EXPORT_NOT_FOUND"),
        format!("التصدير `{id}` غير موجود"),
    )
    .detail("export_id", id)
}

fn export_not_ready(r: &ExportRow) -> ApiError {
    ApiError::new(
        base::err!(
            FailedPrecondition,
            "export `{}` is {}, not completed",
            r.id,
            r.status
        )
        .with_code("EXPORT_NOT_READY"),
        format!("التصدير `{}` غير مكتمل", r.id),
    )
    .detail("export_id", r.id.as_str())
    .detail("status", r.status.as_str())
}

pub(crate) fn export_view(r: &ExportRow) -> model::Export {
    let done = r.status == ExportStatus::Completed;
    let percent = if done {
        100
    } else {
        (r.bytes_done.min(r.bytes_total).saturating_mul(100))
            .checked_div(r.bytes_total)
            .map_or(0, |p| p.min(99) as u32)
    };
    model::Export {
        export_id: r.id.clone(),
        camera_id: r.camera_id.clone(),
        start_time: rfc3339_ms(r.start_ms),
        end_time: rfc3339_ms(r.end_ms),
        format: "mp4".into(),
        include_audio: r.include_audio,
        status: r.status.as_str().to_owned(),
        progress_percent: percent,
        bytes_written: r.bytes_done,
        size_bytes: r.size,
        sha256: r.sha256.clone(),
        frames: r.frames,
        error: r.error.clone(),
        created_by: r.created_by.clone(),
        created_at: rfc3339_ms(r.created_at_ms),
        started_at: r.started_at_ms.map(rfc3339_ms),
        finished_at: r.finished_at_ms.map(rfc3339_ms),
        file_name: r.file_name.clone(),
        download_url: done.then(|| format!("/api/v1/exports/{}/download", r.id)),
        manifest_url: done.then(|| format!("/api/v1/exports/{}/manifest", r.id)),
    }
}

/// `POST /api/v1/export`: 202 `{export_id, status}`.
pub(crate) async fn create(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<model::ExportRequest>,
) -> Result<(StatusCode, HeaderMap, Json<model::ExportCreated>), ApiError> {
    let camera_id = text_field(b.camera_id, "camera_id")?;
    let start_ms = time_field(b.start_time, "start_time")?;
    let end_ms = time_field(b.end_time, "end_time")?;
    match b.format {
        None | Some(Value::Null) => {}
        Some(Value::String(f)) if f == "mp4" => {}
        Some(_) => return Err(invalid("format", "only \"mp4\" is supported")),
    }
    let include_audio = match b.include_audio {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(invalid("include_audio", "must be true or false")),
    };
    let created_by = match b.created_by {
        None | Some(Value::Null) => actor(&headers),
        v => text_field(v, "created_by")?,
    };
    if end_ms <= start_ms {
        return Err(invalid("end_time", "must be after start_time"));
    }
    let row = st
        .create_export(NewExport {
            camera_id: CameraId::from(camera_id.as_str()),
            start_ms,
            end_ms,
            include_audio,
            created_by,
        })
        .await
        .map_err(|e| query_error(&camera_id, e))?;
    let url = format!("/api/v1/exports/{}", row.id);
    let mut h = HeaderMap::new();
    if let Some(v) = hv(&url) {
        h.insert(header::LOCATION, v);
    }
    Ok((
        StatusCode::ACCEPTED,
        h,
        Json(model::ExportCreated {
            export_id: row.id,
            status: row.status.as_str().to_owned(),
            status_url: url,
        }),
    ))
}

/// `GET /api/v1/exports`: newest first.
pub(crate) async fn list(
    State(st): State<Arc<AppState>>,
) -> Result<Json<model::ExportList>, ApiError> {
    let rows = st.exports().await?;
    let exports: Vec<model::Export> = rows.iter().map(export_view).collect();
    Ok(Json(model::ExportList {
        total: exports.len(),
        exports,
    }))
}

/// `GET /api/v1/exports/{id}`.
pub(crate) async fn get(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<model::Export>, ApiError> {
    let r = st.export(&id).await?.ok_or_else(|| export_not_found(&id))?;
    Ok(Json(export_view(&r)))
}

/// `DELETE /api/v1/exports/{id}`: cancels a queued or running export (200 with it, now
/// `cancelled`), or removes a finished one (204).
pub(crate) async fn delete(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match st.delete_export(&id).await? {
        None => Err(export_not_found(&id)),
        Some(Deleted::Removed) => Ok(StatusCode::NO_CONTENT.into_response()),
        Some(Deleted::Cancelled) => {
            let r = st.export(&id).await?.ok_or_else(|| export_not_found(&id))?;
            Ok(Json(export_view(&r)).into_response())
        }
    }
}

async fn file_response(
    st: &AppState,
    headers: &HeaderMap,
    id: &str,
    which: ExportFile,
) -> Result<Response, ApiError> {
    let Some((row, path)) = st.export_file(id, which).await? else {
        return Err(match st.export(id).await? {
            Some(r) => export_not_ready(&r),
            None => export_not_found(id),
        });
    };
    let meta = tokio::fs::metadata(&path).await.map_err(|e| {
        ApiError::from(base::err!(
            DataLoss,
            "export `{id}`: its file is missing ({e})"
        ))
    })?;
    let (etag, content_type, name) = match which {
        ExportFile::Mp4 => (
            format!("\"{}\"", row.sha256.as_deref().unwrap_or("")),
            "video/mp4",
            row.file_name.clone(),
        ),
        ExportFile::Manifest => (
            format!("\"m-{}-{}\"", row.id, meta.len()),
            "application/json",
            format!("{}.manifest.json", row.id),
        ),
    };
    let mut extra = HeaderMap::new();
    if let Some(v) = hv(&etag) {
        extra.insert(header::ETAG, v);
    }
    if let Some(v) = hv(&format!("attachment; filename=\"{name}\"")) {
        extra.insert(header::CONTENT_DISPOSITION, v);
    }
    if not_modified(headers, &etag) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        if let Some(v) = extra.remove(header::ETAG) {
            r.headers_mut().insert(header::ETAG, v);
        }
        return Ok(r);
    }
    if which == ExportFile::Mp4 && !headers.contains_key(header::RANGE) {
        st.export_downloaded(&row);
    }
    Ok(serve_with(
        headers,
        meta.len(),
        |range| node::exports::stream_file(path, range),
        content_type,
        extra,
    ))
}

/// `GET /api/v1/exports/{id}/download`: the MP4 (`Range`, `ETag`).
pub(crate) async fn download(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    file_response(&st, &headers, &id, ExportFile::Mp4).await
}

/// `GET /api/v1/exports/{id}/manifest`: the signed manifest.
pub(crate) async fn manifest(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    file_response(&st, &headers, &id, ExportFile::Manifest).await
}

/// `GET /api/v1/exports/public-key`: the SPKI PEM of the key that signs manifests.
pub(crate) async fn public_key(State(st): State<Arc<AppState>>) -> Response {
    let mut r = st.export_public_key().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-pem-file"),
    );
    r
}

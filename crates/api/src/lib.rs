//! The HTTP API (contract in docs/ARCHITECTURE.md): catalog, stream reservations with admission
//! control and leases, the stats WebSocket, WHEP signalling, health, and the web page. Handlers
//! are thin: they translate HTTP into calls on the hub, the admission table and the WHEP server,
//! and errors into the JSON error body.

mod access;
mod cameras;
mod error;
mod exports;
mod extract;
pub mod model;
pub mod playback;
mod recordings;
mod storage;
mod streams;
mod users;
mod whep;

pub use error::ApiError;

use admission::Reservation;
use axum::Router;
use axum::response::Html;
use axum::routing::{delete, get, post};
use base::err;
use std::sync::Arc;

/// What the handlers see: the node layer's ports (`node::ports`), reachable directly through
/// `Deref` (`st.reserve(...)`). Handlers translate HTTP into calls on them and their results
/// into the API's JSON contract ([`model`]); they reach nothing else.
pub struct AppState {
    node: Arc<dyn node::ports::Node>,
}

impl std::ops::Deref for AppState {
    type Target = dyn node::ports::Node;
    fn deref(&self) -> &Self::Target {
        &*self.node
    }
}

impl AppState {
    pub fn new(node: Arc<dyn node::ports::Node>) -> Self {
        AppState { node }
    }
}

pub(crate) fn reservation(r: &Reservation) -> model::Reservation {
    model::Reservation {
        reservation_id: r.id.to_string(),
        camera_id: r.camera_id.to_string(),
        agency: r.agency.clone(),
        user_id: r.user_id.clone(),
        quality: r.quality.as_str().to_owned(),
        whep_url: format!("/whep/{}", r.id),
        created_at: base::clock::rfc3339(r.created_at),
        expires_at: base::clock::rfc3339(r.expires_at),
        session_active: r.session.is_some(),
        ephemeral: r.ephemeral,
    }
}

/// The router of the whole HTTP surface.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ready" }))
        .route("/api/v1/auth/login", post(access::login))
        .route("/api/v1/auth/refresh", post(access::refresh))
        .route("/api/v1/auth/logout", post(access::logout))
        .route("/api/v1/auth/me", get(access::whoami))
        .route("/api/v1/users", get(users::list).post(users::create))
        .route(
            "/api/v1/users/{id}",
            get(users::get).patch(users::patch).delete(users::delete),
        )
        .route(
            "/api/v1/users/{id}/api-keys",
            get(users::keys).post(users::create_key),
        )
        .route(
            "/api/v1/users/{id}/api-keys/{key_id}",
            delete(users::revoke_key),
        )
        .route("/api/v1/agencies", get(cameras::list_agencies))
        .route("/api/v1/cameras", get(cameras::list_cameras))
        .route("/api/v1/cameras/{id}", get(cameras::get_camera))
        .route(
            "/api/v1/cameras/{id}/recording",
            get(storage::get_recording).put(storage::put_recording),
        )
        .route(
            "/api/v1/evidence-locks",
            get(storage::list_locks).post(storage::create_lock),
        )
        .route(
            "/api/v1/evidence-locks/{id}",
            get(storage::get_lock).delete(storage::delete_lock),
        )
        .route("/api/v1/storage", get(storage::storage))
        .route("/api/v1/export", post(exports::create))
        .route("/api/v1/exports", get(exports::list))
        .route("/api/v1/exports/public-key", get(exports::public_key))
        .route(
            "/api/v1/exports/{id}",
            get(exports::get).delete(exports::delete),
        )
        .route("/api/v1/exports/{id}/download", get(exports::download))
        .route("/api/v1/exports/{id}/manifest", get(exports::manifest))
        .route("/api/v1/stream/reserve", post(streams::reserve))
        .route("/api/v1/stream/heartbeat/{id}", post(streams::heartbeat))
        .route("/api/v1/stream/release/{id}", delete(streams::release))
        .route(
            "/api/v1/stream/reservations",
            get(streams::list_reservations),
        )
        .route("/api/v1/stream/stats", get(streams::stats))
        .route("/api/v1/audit", get(streams::audit))
        .route("/api/v1/vms/status", get(vms_status))
        .route("/api/v1/recordings/{camera_id}", get(recordings::timeline))
        .route("/api/v1/playback/{camera_id}", get(playback::mp4))
        .route("/api/v1/playback/{camera_id}/init.mp4", get(playback::init))
        .route(
            "/api/v1/playback/{camera_id}/media.m4s",
            get(playback::media),
        )
        .route(
            "/api/v1/playback/{camera_id}/index.m3u8",
            get(playback::hls),
        )
        .route("/ws/stream/stats", get(streams::stats_ws))
        .route(
            "/whep/cameras/{camera_id}",
            post(whep::camera_offer).options(whep::options),
        )
        .route(
            "/whep/{reservation_id}",
            post(whep::offer).options(whep::options),
        )
        .route(
            "/whep/{reservation_id}/{session_id}",
            delete(whep::delete)
                .patch(whep::patch)
                .options(whep::options),
        )
        .fallback(extract::no_route)
        .layer(axum::middleware::map_response(extract::json_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            whep::cors,
        ))
        .with_state(state)
}

/// `GET /api/v1/vms/status`: the XProtect sync (404 when no VMS is configured).
async fn vms_status(
    axum::extract::State(st): axum::extract::State<Arc<AppState>>,
) -> Result<axum::Json<model::VmsStatus>, ApiError> {
    let Some(s) = st.vms_status() else {
        return Err(ApiError::from(
            err!(NotFound, "no VMS is configured (milestone: section)")
                .with_code("VMS_NOT_CONFIGURED"),
        ));
    };
    let t = |x: Option<std::time::SystemTime>| x.map(base::clock::rfc3339);
    Ok(axum::Json(model::VmsStatus {
        server_url: s.server_url,
        logged_in: s.logged_in,
        last_sync_attempt: t(s.last_attempt),
        last_sync: t(s.last_success),
        last_sync_duration_ms: s.last_duration.map(|d| d.as_millis() as u64),
        syncs: s.syncs,
        failures: s.failures,
        stale: s.stale_age.is_some(),
        stale_age_seconds: s.stale_age.map(|d| d.as_secs()),
        counts: model::VmsCounts {
            cameras: s.cameras,
            groups: s.groups,
            recording_servers: s.recording_servers,
        },
        requests_last_sync: s.requests_last_sync,
        requests_total: s.requests_total,
        last_changes: model::VmsChanges {
            added: ids(s.last_changes.added),
            removed: ids(s.last_changes.removed),
            renamed: ids(s.last_changes.renamed),
            moved: ids(s.last_changes.moved),
        },
        cameras_without_live_url: s.cameras_without_live_url,
        unmapped_cameras: s
            .unmapped_cameras
            .into_iter()
            .map(|(id, name)| model::UnmappedCamera { id, name })
            .collect(),
        error: s.error,
        connector_error: s.connector_error,
    }))
}

async fn index() -> Html<&'static str> {
    Html(include_str!("../../../web/index.html"))
}

pub(crate) fn camera_not_found(id: &str) -> ApiError {
    ApiError::new(
        err!(NotFound, "camera `{id}` not found").with_code("CAMERA_NOT_FOUND"),
        format!("الكاميرا `{id}` غير موجودة"),
    )
    .detail("camera_id", id)
}

pub(crate) fn camera_disabled(id: &str) -> ApiError {
    ApiError::new(
        err!(FailedPrecondition, "camera `{id}` is disabled").with_code("CAMERA_DISABLED"),
        format!("الكاميرا `{id}` معطلة"),
    )
    .detail("camera_id", id)
}

pub(crate) fn camera_unavailable(id: &str, why: &str) -> ApiError {
    ApiError::new(
        err!(Unavailable, "camera `{id}` is unavailable: {why}").with_code("CAMERA_UNAVAILABLE"),
        format!("الكاميرا `{id}` غير متاحة حاليا"),
    )
    .detail("camera_id", id)
    .detail("last_error", why)
}

pub(crate) fn reservation_not_found(id: &str) -> ApiError {
    ApiError::new(
        err!(NotFound, "reservation `{id}` not found").with_code("RESERVATION_NOT_FOUND"),
        format!("الحجز `{id}` غير موجود"),
    )
    .detail("reservation_id", id)
}

pub(crate) fn invalid(field: &str, why: &str) -> ApiError {
    ApiError::new(
        err!(InvalidArgument, "{field}: {why}").with_code("INVALID_REQUEST"),
        format!("طلب غير صالح: الحقل {field}"),
    )
    .detail("field", field)
}

/// Camera ids as the JSON contract's plain strings.
fn ids(v: Vec<base::CameraId>) -> Vec<String> {
    v.into_iter().map(|c| c.to_string()).collect()
}

//! The HTTP API (contract in docs/ARCHITECTURE.md): catalog, stream reservations with admission
//! control and leases, the stats WebSocket, WHEP signalling, health, and the web page. Handlers
//! are thin: they translate HTTP into calls on the hub, the admission table and the WHEP server,
//! and errors into the JSON error body.

mod cameras;
pub mod catalog;
mod error;
mod lease;
mod recordings;
mod storage;
mod streams;
pub mod vms_sync;
mod whep;

pub use error::ApiError;
pub use lease::{lease_tick, spawn_lease_keeper};
pub use storage::apply_recording;
pub use whep::spawn_session_janitor;

use admission::{Admission, EndReason, Reservation};
use axum::Router;
use axum::response::Html;
use axum::routing::{delete, get, post};
use base::{Clocks, err};
use hub::Hub;
use parking_lot::Mutex;
use serde_json::{Value, json};
use settings::Config;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// What a node is made of, to build an [`AppState`] from.
pub struct Services {
    pub cfg: Arc<Config>,
    pub catalog: Arc<catalog::Catalog>,
    pub hub: Arc<Hub>,
    pub whep: Arc<webrtc::WhepServer>,
    pub admission: Arc<dyn Admission>,
    pub audit: store::AuditLog,
    pub clocks: Arc<dyn Clocks>,
    /// The XProtect sync, when `milestone:` is configured.
    pub vms: Option<Arc<vms_sync::VmsSync>>,
    /// Continuous recording: segment writers, media index, retention.
    pub recorder: Arc<recorder::service::Recorder>,
}

/// Everything the handlers need: the node's services (reachable directly through `Deref`,
/// `st.hub`) and the API's own state.
pub struct AppState {
    services: Services,
    recently_ended: Mutex<RecentlyEnded>,
}

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.services
    }
}

impl AppState {
    pub fn new(services: Services) -> Self {
        AppState {
            services,
            recently_ended: Mutex::new(RecentlyEnded::default()),
        }
    }

    /// Ends a reservation for `reason`: its WHEP session is closed, the end is audited and
    /// remembered (so a repeated release stays idempotent).
    pub fn ended(&self, r: &Reservation, reason: EndReason) {
        if let Some(sid) = &r.session {
            whep::close_session(self, sid);
        }
        self.recently_ended.lock().insert(r.id.clone(), reason);
        self.audit.record(audit_event(
            r,
            match reason {
                EndReason::Expired => store::AuditAction::Expire,
                _ => store::AuditAction::Release,
            },
            self.clocks.realtime(),
            Some(reason.as_str().to_owned()),
            None,
        ));
        tracing::info!(reservation = %r.id, camera = %r.camera_id, user = %r.user_id, reason = reason.as_str(), "reservation ended");
    }

    /// Ends every live reservation (node shutdown) and waits for the audit log.
    pub async fn shutdown(&self) {
        for r in self.admission.list() {
            if let Some(r) = self.admission.release(&r.id) {
                self.ended(&r, EndReason::Shutdown);
            }
        }
        self.audit.flush().await;
    }

    /// The channel that serves a reservation: the camera's sub-stream for its quality if the
    /// camera has one, else its main stream.
    pub fn channel_id(&self, camera_id: &str, quality: admission::Quality) -> String {
        match self.catalog.get(camera_id) {
            Some(c)
                if c.camera
                    .substreams
                    .iter()
                    .any(|(q, _)| q == quality.as_str()) =>
            {
                format!("{camera_id}@{quality}")
            }
            _ => camera_id.to_owned(),
        }
    }
}

/// Ids of reservations that ended recently, bounded, for idempotent releases.
#[derive(Default)]
struct RecentlyEnded {
    order: VecDeque<String>,
    reasons: HashMap<String, EndReason>,
}

impl RecentlyEnded {
    const CAPACITY: usize = 10_000;

    fn insert(&mut self, id: String, reason: EndReason) {
        if self.reasons.insert(id.clone(), reason).is_none() {
            self.order.push_back(id);
            if self.order.len() > Self::CAPACITY
                && let Some(old) = self.order.pop_front()
            {
                self.reasons.remove(&old);
            }
        }
    }

    fn get(&self, id: &str) -> Option<EndReason> {
        self.reasons.get(id).copied()
    }
}

pub(crate) fn audit_event(
    r: &Reservation,
    action: store::AuditAction,
    at: std::time::SystemTime,
    reason: Option<String>,
    detail: Option<String>,
) -> store::AuditEvent {
    store::AuditEvent {
        at,
        action,
        reservation_id: Some(r.id.clone()),
        user_id: r.user_id.clone(),
        camera_id: r.camera_id.clone(),
        agency: Some(r.agency.clone()),
        quality: Some(r.quality.as_str().to_owned()),
        reason,
        detail,
    }
}

pub(crate) fn reservation_json(r: &Reservation) -> Value {
    json!({
        "reservation_id": r.id,
        "camera_id": r.camera_id,
        "agency": r.agency,
        "user_id": r.user_id,
        "quality": r.quality.as_str(),
        "whep_url": format!("/whep/{}", r.id),
        "created_at": base::clock::rfc3339(r.created_at),
        "expires_at": base::clock::rfc3339(r.expires_at),
        "session_active": r.session.is_some(),
        "ephemeral": r.ephemeral,
    })
}

/// The router of the whole HTTP surface.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ready" }))
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
        .route("/ws/stream/stats", get(streams::stats_ws))
        .route("/whep/cameras/{camera_id}", post(whep::camera_offer))
        .route("/whep/{reservation_id}", post(whep::offer))
        .route(
            "/whep/{reservation_id}/{session_id}",
            delete(whep::delete).patch(whep::patch),
        )
        .with_state(state)
}

/// `GET /api/v1/vms/status`: the XProtect sync (404 when no VMS is configured).
async fn vms_status(
    axum::extract::State(st): axum::extract::State<Arc<AppState>>,
) -> Result<axum::Json<Value>, ApiError> {
    match &st.vms {
        Some(v) => Ok(axum::Json(v.status_json())),
        None => Err(ApiError::from(
            err!(NotFound, "no VMS is configured (milestone: section)")
                .with_code("VMS_NOT_CONFIGURED"),
        )),
    }
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

//! The HTTP API (see the contract in docs/ARCHITECTURE.md): catalog, minimal reservations, WHEP
//! signalling, health, and the demo web page. Handlers are thin: they translate HTTP to calls on
//! the hub, the WHEP server and the reservation table, and errors to the JSON error body.

mod error;
mod reservations;

pub use error::ApiError;
pub use reservations::{Quality, Reservation, Reservations};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use base::{Clocks, err};
use hub::{Channel, Hub, State as ChannelState};
use serde::Deserialize;
use serde_json::{Value, json};
use settings::Config;
use std::sync::Arc;
use std::time::Duration;

/// Everything the handlers need.
pub struct AppState {
    pub cfg: Arc<Config>,
    pub hub: Arc<Hub>,
    pub whep: Arc<webrtc::WhepServer>,
    pub reservations: Reservations,
    pub clocks: Arc<dyn Clocks>,
}

/// The router of the whole HTTP surface.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ready" }))
        .route("/api/v1/agencies", get(list_agencies))
        .route("/api/v1/cameras", get(list_cameras))
        .route("/api/v1/cameras/{id}", get(get_camera))
        .route("/api/v1/stream/reserve", post(reserve))
        .route("/api/v1/stream/release/{id}", delete(release))
        .route("/api/v1/stream/reservations", get(list_reservations))
        .route("/api/v1/stream/stats", get(stream_stats))
        .route("/whep/cameras/{camera_id}", post(whep_camera_offer))
        .route("/whep/{reservation_id}", post(whep_offer))
        .route(
            "/whep/{reservation_id}/{session_id}",
            delete(whep_delete).patch(whep_patch),
        )
        .with_state(state)
}

async fn index() -> Html<&'static str> {
    Html(include_str!("../../../web/index.html"))
}

fn camera_json(cam: &settings::Camera, ch: Option<&Arc<Channel>>) -> Value {
    let status = ch.map(|c| c.status());
    let params = ch.and_then(|c| c.params());
    json!({
        "id": cam.id,
        "name": cam.name,
        "agency": cam.agency,
        "location": cam.location,
        "enabled": cam.enabled,
        "status": status.as_ref().map_or("idle", |s| s.state.as_str()),
        "status_since": status.as_ref().map(|s| base::clock::rfc3339(s.since)),
        "last_error": status.as_ref().and_then(|s| s.last_error.clone()),
        "viewers": ch.map_or(0, |c| c.subscriber_count()),
        "recording_server": Value::Null,
        "properties": {
            "manufacturer": cam.manufacturer,
            "model": cam.model,
            "resolution": params.as_ref().map(|p| format!("{}x{}", p.width, p.height)),
            "fps": params.as_ref().and_then(|p| p.frame_rate).map(|(n, d)| f64::from(n) / f64::from(d.max(1))),
            "codec": params.as_ref().map(|p| p.codec.display_name()),
            "ptz_capable": cam.ptz_capable,
        },
        "live_stream_url": Value::Null,
    })
}

#[derive(Deserialize)]
struct CameraFilter {
    agency: Option<String>,
    status: Option<String>,
}

async fn list_cameras(
    State(st): State<Arc<AppState>>,
    Query(f): Query<CameraFilter>,
) -> Json<Value> {
    let cams: Vec<Value> = st
        .cfg
        .cameras
        .iter()
        .filter(|c| f.agency.as_ref().is_none_or(|a| *a == c.agency))
        .map(|c| camera_json(c, st.hub.get(&c.id).as_ref()))
        .filter(|v| f.status.as_ref().is_none_or(|s| v["status"] == **s))
        .collect();
    Json(json!({ "cameras": cams, "total": cams.len() }))
}

fn camera_not_found(id: &str) -> ApiError {
    ApiError::new(
        err!(NotFound, "camera `{id}` not found").with_code("CAMERA_NOT_FOUND"),
        format!("الكاميرا `{id}` غير موجودة"),
    )
    .detail("camera_id", id)
}

async fn get_camera(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let cam = st.cfg.camera(&id).ok_or_else(|| camera_not_found(&id))?;
    Ok(Json(camera_json(cam, st.hub.get(&id).as_ref())))
}

async fn list_agencies(State(st): State<Arc<AppState>>) -> Json<Value> {
    let counts = st.reservations.per_agency();
    let v: Vec<Value> = st
        .cfg
        .agencies
        .iter()
        .map(|a| {
            json!({
                "id": a.id, "name": a.name, "name_ar": a.name_ar, "max_streams": a.max_streams,
                "active_streams": counts.get(&a.id).copied().unwrap_or(0),
            })
        })
        .collect();
    Json(json!({ "agencies": v }))
}

fn camera_disabled(id: &str) -> ApiError {
    ApiError::new(
        err!(FailedPrecondition, "camera `{id}` is disabled").with_code("CAMERA_DISABLED"),
        format!("الكاميرا `{id}` معطلة"),
    )
    .detail("camera_id", id)
}

#[derive(Deserialize)]
struct ReserveBody {
    camera_id: Option<String>,
    user_id: Option<String>,
    quality: Option<String>,
}

fn invalid(field: &str, why: &str) -> ApiError {
    ApiError::new(
        err!(InvalidArgument, "{field}: {why}").with_code("INVALID_REQUEST"),
        format!("طلب غير صالح: {field}"),
    )
    .detail("field", field)
}

async fn reserve(
    State(st): State<Arc<AppState>>,
    body: Result<Json<ReserveBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(b) = body.map_err(|e| invalid("body", &e.body_text()))?;
    let camera_id = b
        .camera_id
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("camera_id", "is required"))?;
    let user_id = b
        .user_id
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("user_id", "is required"))?;
    let quality = match b.quality.as_deref() {
        None => Quality::Auto,
        Some(q) => Quality::parse(q)
            .ok_or_else(|| invalid("quality", "must be one of low, medium, high, auto"))?,
    };
    let cam = st
        .cfg
        .camera(&camera_id)
        .ok_or_else(|| camera_not_found(&camera_id))?;
    if !cam.enabled {
        return Err(ApiError::new(
            err!(FailedPrecondition, "camera `{camera_id}` is disabled")
                .with_code("CAMERA_DISABLED"),
            format!("الكاميرا `{camera_id}` معطلة"),
        )
        .detail("camera_id", camera_id));
    }
    let now = st.clocks.realtime();
    let (r, created) = st.reservations.reserve(
        &camera_id,
        &cam.agency,
        &user_id,
        quality,
        now,
        st.cfg.limits.lease,
    );
    tracing::info!(reservation = %r.id, camera = %camera_id, user = %user_id, created, "reserve");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(r.to_json())).into_response())
}

fn reservation_not_found(id: &str) -> ApiError {
    ApiError::new(
        err!(NotFound, "reservation `{id}` not found").with_code("RESERVATION_NOT_FOUND"),
        format!("الحجز `{id}` غير موجود"),
    )
    .detail("reservation_id", id)
}

async fn release(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let r = st
        .reservations
        .remove(&id)
        .ok_or_else(|| reservation_not_found(&id))?;
    if let Some(sid) = &r.session {
        close_session(&st, sid);
    }
    tracing::info!(reservation = %id, camera = %r.camera_id, "release");
    Ok(StatusCode::NO_CONTENT)
}

async fn list_reservations(State(st): State<Arc<AppState>>) -> Json<Value> {
    let v: Vec<Value> = st
        .reservations
        .all()
        .iter()
        .map(Reservation::to_json)
        .collect();
    Json(json!({ "reservations": v }))
}

async fn stream_stats(State(st): State<Arc<AppState>>) -> Json<Value> {
    let counts = st.reservations.per_agency();
    let per: Vec<Value> = st
        .cfg
        .agencies
        .iter()
        .map(|a| json!({"agency": a.id, "current": counts.get(&a.id).copied().unwrap_or(0), "limit": a.max_streams}))
        .collect();
    Json(json!({
        "active_streams": counts.values().sum::<usize>(),
        "max_streams": st.cfg.limits.max_streams,
        "per_agency": per,
    }))
}

/// Waits until the channel has parameters (its first frame arrived), or fails early if the
/// upstream reports a failure.
async fn wait_for_params(
    ch: &Channel,
    timeout: Duration,
) -> Result<Arc<media::VideoParams>, ApiError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(p) = ch.params() {
            return Ok(p);
        }
        let s = ch.status();
        let failed = matches!(s.state, ChannelState::Offline | ChannelState::Error);
        if failed || tokio::time::Instant::now() >= deadline {
            let why = s
                .last_error
                .unwrap_or_else(|| format!("no video within {} s", timeout.as_secs()));
            return Err(ApiError::new(
                err!(Unavailable, "camera `{}` is unavailable: {why}", ch.id())
                    .with_code("CAMERA_UNAVAILABLE"),
                format!("الكاميرا `{}` غير متاحة حاليا", ch.id()),
            )
            .detail("camera_id", ch.id())
            .detail("last_error", why));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// WHEP offers must be `application/sdp` (RFC 9725); None when it is.
fn wrong_content_type(headers: &HeaderMap) -> Option<Response> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    (!ct.starts_with("application/sdp")).then(|| {
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "WHEP offers must be sent as application/sdp",
        )
            .into_response()
    })
}

/// `POST {whep_url}` of a reservation.
async fn whep_offer(
    State(st): State<Arc<AppState>>,
    Path(rid): Path<String>,
    headers: HeaderMap,
    offer: String,
) -> Result<Response, ApiError> {
    if let Some(r) = wrong_content_type(&headers) {
        return Ok(r);
    }
    let r = st
        .reservations
        .get(&rid)
        .ok_or_else(|| reservation_not_found(&rid))?;
    negotiate(&st, &r, &offer).await
}

/// `POST /whep/cameras/{camera_id}`: a WHEP endpoint per camera, as players and video walls
/// expect. Each offer gets a reservation of its own (user from `X-Vantage-User`, else
/// `anonymous`), counted like any other and released when the session ends.
async fn whep_camera_offer(
    State(st): State<Arc<AppState>>,
    Path(camera_id): Path<String>,
    headers: HeaderMap,
    offer: String,
) -> Result<Response, ApiError> {
    if let Some(r) = wrong_content_type(&headers) {
        return Ok(r);
    }
    let cam = st
        .cfg
        .camera(&camera_id)
        .ok_or_else(|| camera_not_found(&camera_id))?;
    if !cam.enabled {
        return Err(camera_disabled(&camera_id));
    }
    let user = headers
        .get("x-vantage-user")
        .and_then(|v| v.to_str().ok())
        .filter(|u| !u.is_empty())
        .unwrap_or("anonymous");
    let r = st.reservations.reserve_ephemeral(
        &camera_id,
        &cam.agency,
        user,
        st.clocks.realtime(),
        st.cfg.limits.lease,
    );
    let res = negotiate(&st, &r, &offer).await;
    if res.is_err() {
        st.reservations.remove(&r.id);
    }
    res
}

/// Creates the WHEP session of reservation `r` and answers 201 with the SDP and `Location`.
async fn negotiate(st: &AppState, r: &Reservation, offer: &str) -> Result<Response, ApiError> {
    let rid = &r.id;
    let ch = st
        .hub
        .get(&r.camera_id)
        .ok_or_else(|| camera_not_found(&r.camera_id))?;
    // Holding a subscription creates demand: a cold channel starts its upstream now. The WHEP
    // session subscribes on its own once the offer is accepted.
    let demand = ch.subscribe();
    let params = wait_for_params(&ch, st.cfg.live.first_frame_timeout).await?;
    let (sid, answer) = st.whep.create_session(offer, &ch, params).await?;
    drop(demand);
    match st.reservations.attach_session(rid, sid.as_str().to_owned()) {
        Some(previous) => {
            if let Some(old) = previous {
                close_session(st, &old);
            }
        }
        None => {
            // Released while we negotiated.
            st.whep.close_session(&sid);
            return Err(reservation_not_found(rid));
        }
    }
    tracing::info!(reservation = %rid, session = %sid, camera = %r.camera_id, "whep session created");
    let location = format!("/whep/{rid}/{sid}");
    let mut resp = (StatusCode::CREATED, answer).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    Ok(resp)
}

async fn whep_delete(
    State(st): State<Arc<AppState>>,
    Path((rid, sid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let attached = st
        .reservations
        .get(&rid)
        .is_some_and(|r| r.session.as_deref() == Some(sid.as_str()));
    // Detaches the session and drops a per-session (ephemeral) reservation; the janitor does the
    // same when the Ended event arrives, whichever comes first.
    st.reservations.session_ended(&sid);
    // A session that already ended on its own (the peer closed DTLS first) is still known: the
    // DELETE then succeeds, so clients can always clean up the same way.
    let known =
        webrtc::SessionId::parse(&sid).is_some_and(|id| st.whep.session_info(&id).is_some());
    if close_session(&st, &sid) || attached || known {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::from(
            err!(NotFound, "WHEP session `{sid}` not found").with_code("SESSION_NOT_FOUND"),
        ))
    }
}

/// Ends a WHEP session by its id as found in URLs and the reservation table.
fn close_session(st: &AppState, sid: &str) -> bool {
    webrtc::SessionId::parse(sid).is_some_and(|id| st.whep.close_session(&id))
}

/// Trickle ICE and ICE restarts are not supported (ICE-lite with host candidates only).
async fn whep_patch() -> StatusCode {
    StatusCode::METHOD_NOT_ALLOWED
}

/// Forgets sessions the WHEP server ended on its own (peer gone, ICE/DTLS failure).
pub fn spawn_session_janitor(st: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    let mut events = st.whep.subscribe_events();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(webrtc::SessionEvent::Ended { id, reason }) => {
                    tracing::info!(session = %id, %reason, "whep session ended");
                    st.reservations.session_ended(id.as_str());
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "session events lagged");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    })
}

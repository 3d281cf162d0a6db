//! WHEP signalling (RFC 9725): per reservation (`POST {whep_url}`) and per camera
//! (`POST /whep/cameras/{id}`, one ephemeral reservation per session), and session teardown.

use crate::extract::{has_content_type, unsupported_media_type};
use crate::streams::admit_error;
use crate::{ApiError, AppState, camera_unavailable, reservation_not_found};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base::{CameraId, ReservationId, err};
use node::ports::{OfferError, OfferTarget};
use std::sync::Arc;

/// WHEP offers must be `application/sdp`: 415 otherwise.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    if has_content_type(headers, "application/sdp") {
        Ok(())
    } else {
        Err(unsupported_media_type("application/sdp"))
    }
}

/// The methods of WHEP resources.
const WHEP_METHODS: &str = "OPTIONS, POST, PATCH, DELETE";

/// `OPTIONS` on a WHEP resource (the WHEP spec's preflight and discovery): 204 with `Allow`
/// and `Accept-Post`; [`cors`] adds the CORS headers for allowed origins.
pub(crate) async fn options() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ALLOW, WHEP_METHODS),
            (HeaderName::from_static("accept-post"), "application/sdp"),
        ],
    )
        .into_response()
}

/// CORS for WHEP, so players served from another origin can use it: an answer to a request
/// whose `Origin` is in `server.cors_origins` (or when it holds `*`) carries the CORS headers.
/// Other requests and the rest of the API are untouched.
pub(crate) async fn cors(
    State(st): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .filter(|_| req.uri().path().starts_with("/whep/"))
        .cloned();
    let mut resp = next.run(req).await;
    let allowed = &st.config().server.cors_origins;
    if let Some(origin) = origin
        && let Ok(o) = origin.to_str()
        && allowed
            .iter()
            .any(|a| a == "*" || a.eq_ignore_ascii_case(o))
    {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(WHEP_METHODS),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type, authorization, if-match, x-vantage-user"),
        );
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("location, link, etag, accept-post"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    resp
}

/// `POST {whep_url}` of a reservation.
pub(crate) async fn offer(
    State(st): State<Arc<AppState>>,
    Path(rid): Path<String>,
    headers: HeaderMap,
    sdp: String,
) -> Result<Response, ApiError> {
    check_content_type(&headers)?;
    let id = ReservationId::from(rid.as_str());
    answer(&st, OfferTarget::Reservation(&id), &rid, &sdp).await
}

/// `POST /whep/cameras/{camera_id}`: a WHEP endpoint per camera, as players and video walls
/// expect. Each offer is admitted as a reservation of its own (user from `X-Vantage-User`, else
/// `anonymous`), counted like any other and released when its session ends.
pub(crate) async fn camera_offer(
    State(st): State<Arc<AppState>>,
    Path(camera_id): Path<String>,
    headers: HeaderMap,
    sdp: String,
) -> Result<Response, ApiError> {
    check_content_type(&headers)?;
    let user = headers
        .get("x-vantage-user")
        .and_then(|v| v.to_str().ok())
        .filter(|u| !u.is_empty() && u.len() <= 256)
        .unwrap_or("anonymous");
    let id = CameraId::from(camera_id.as_str());
    let target = OfferTarget::Camera {
        camera_id: &id,
        user,
    };
    answer(&st, target, &camera_id, &sdp).await
}

/// Answers an offer: 201 with the SDP answer and `Location`, or the error of what refused it
/// (`what`: the reservation or camera id the request named).
async fn answer(
    st: &AppState,
    target: OfferTarget<'_>,
    what: &str,
    sdp: &str,
) -> Result<Response, ApiError> {
    let s = st.offer(target, sdp).await.map_err(|e| match e {
        OfferError::Admit(e) => admit_error(e, what),
        OfferError::ReservationNotFound => reservation_not_found(what),
        OfferError::CameraNotFound => crate::camera_not_found(what),
        OfferError::CameraUnavailable(why) => camera_unavailable(what, &why),
        OfferError::Session(e) => ApiError::from(e),
    })?;
    let location = format!("/whep/{}/{}", s.reservation_id, s.session_id);
    let mut resp = (StatusCode::CREATED, s.answer).into_response();
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

/// `DELETE {Location}`: 200, also for a session that already ended on its own (the peer closed
/// DTLS first), so clients can always clean up the same way; 404 for unknown sessions.
pub(crate) async fn delete(
    State(st): State<Arc<AppState>>,
    Path((rid, sid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if st.close_session(&ReservationId::from(rid.as_str()), &sid) {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::from(
            err!(NotFound, "WHEP session `{sid}` not found").with_code("SESSION_NOT_FOUND"),
        ))
    }
}

/// Trickle ICE and ICE restarts are not supported (ICE-lite with host candidates only).
pub(crate) async fn patch() -> StatusCode {
    StatusCode::METHOD_NOT_ALLOWED
}

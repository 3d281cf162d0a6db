//! WHEP signalling (RFC 9725): per reservation (`POST {whep_url}`) and per camera
//! (`POST /whep/cameras/{id}`, one ephemeral reservation per session), and session teardown.

use crate::extract::{has_content_type, unsupported_media_type};
use crate::streams::admit;
use crate::{ApiError, AppState, camera_unavailable, reservation_not_found};
use admission::{EndReason, Quality, Reservation};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base::err;
use hub::{Channel, State as ChannelState};
use std::sync::Arc;
use std::time::Duration;

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
    let allowed = &st.cfg.server.cors_origins;
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
    offer: String,
) -> Result<Response, ApiError> {
    check_content_type(&headers)?;
    let r = st
        .admission
        .get(&rid)
        .ok_or_else(|| reservation_not_found(&rid))?;
    negotiate(&st, &r, &offer).await
}

/// `POST /whep/cameras/{camera_id}`: a WHEP endpoint per camera, as players and video walls
/// expect. Each offer is admitted as a reservation of its own (user from `X-Vantage-User`, else
/// `anonymous`), counted like any other and released when its session ends.
pub(crate) async fn camera_offer(
    State(st): State<Arc<AppState>>,
    Path(camera_id): Path<String>,
    headers: HeaderMap,
    offer: String,
) -> Result<Response, ApiError> {
    check_content_type(&headers)?;
    let user = headers
        .get("x-vantage-user")
        .and_then(|v| v.to_str().ok())
        .filter(|u| !u.is_empty() && u.len() <= 256)
        .unwrap_or("anonymous");
    let a = admit(&st, &camera_id, user, Quality::Auto, true)?;
    let r = a.reservation();
    let res = negotiate(&st, r, &offer).await;
    if res.is_err()
        && let Some(r) = st.admission.release(&r.id)
    {
        st.ended(&r, EndReason::SessionEnded);
    }
    res
}

/// Waits until the channel has parameters (its first frame arrived), or fails early if the
/// upstream reports a failure.
async fn wait_for_params(
    ch: &Channel,
    camera_id: &str,
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
            return Err(camera_unavailable(camera_id, &why));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates the WHEP session of reservation `r` and answers 201 with the SDP and `Location`.
async fn negotiate(st: &AppState, r: &Reservation, offer: &str) -> Result<Response, ApiError> {
    let rid = &r.id;
    let ch = st
        .hub
        .get(&st.channel_id(&r.camera_id, r.quality))
        .ok_or_else(|| crate::camera_not_found(&r.camera_id))?;
    // Holding a subscription creates demand: a cold channel starts its upstream now. The WHEP
    // session subscribes on its own once the offer is accepted.
    let demand = ch.subscribe();
    let params = wait_for_params(&ch, &r.camera_id, st.cfg.live.first_frame_timeout).await?;
    let (sid, answer) = st.whep.create_session(offer, &ch, params).await?;
    drop(demand);
    match st.admission.attach_session(rid, sid.as_str()) {
        Some(previous) => {
            if let Some(old) = previous {
                st.close_session(&old);
            }
        }
        None => {
            // Released or expired while we negotiated.
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

/// `DELETE {Location}`: 200, also for a session that already ended on its own (the peer closed
/// DTLS first), so clients can always clean up the same way; 404 for unknown sessions.
pub(crate) async fn delete(
    State(st): State<Arc<AppState>>,
    Path((rid, sid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let attached = st
        .admission
        .get(&rid)
        .is_some_and(|r| r.session.as_deref() == Some(sid.as_str()));
    let closed = st.close_session(&sid);
    // Detaches the session and ends a per-session reservation; the janitor does the same when
    // the Ended event arrives, whichever comes first.
    st.session_ended(&sid);
    let known =
        webrtc::SessionId::parse(&sid).is_some_and(|id| st.whep.session_info(&id).is_some());
    if closed || attached || known {
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

//! WHEP signalling (RFC 9725): per reservation (`POST {whep_url}`) and per camera
//! (`POST /whep/cameras/{id}`, one ephemeral reservation per session), and session teardown.

use crate::streams::admit;
use crate::{ApiError, AppState, camera_unavailable, reservation_not_found};
use admission::{EndReason, Quality, Reservation};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base::err;
use hub::{Channel, State as ChannelState};
use std::sync::Arc;
use std::time::Duration;

/// WHEP offers must be `application/sdp`; None when it is.
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
pub(crate) async fn offer(
    State(st): State<Arc<AppState>>,
    Path(rid): Path<String>,
    headers: HeaderMap,
    offer: String,
) -> Result<Response, ApiError> {
    if let Some(r) = wrong_content_type(&headers) {
        return Ok(r);
    }
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
    if let Some(r) = wrong_content_type(&headers) {
        return Ok(r);
    }
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
                close_session(st, &old);
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
    let closed = close_session(&st, &sid);
    // Detaches the session and ends a per-session reservation; the janitor does the same when
    // the Ended event arrives, whichever comes first.
    session_ended(&st, &sid);
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

/// Ends a WHEP session by its id as found in URLs and reservations.
pub(crate) fn close_session(st: &AppState, sid: &str) -> bool {
    webrtc::SessionId::parse(sid).is_some_and(|id| st.whep.close_session(&id))
}

fn session_ended(st: &AppState, sid: &str) {
    if let Some(r) = st.admission.session_ended(sid) {
        st.ended(&r, EndReason::SessionEnded);
    }
}

/// Follows sessions the WHEP server ended on its own (peer gone, ICE/DTLS failure).
pub fn spawn_session_janitor(st: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    let mut events = st.whep.subscribe_events();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(webrtc::SessionEvent::Ended { id, reason }) => {
                    tracing::info!(session = %id, %reason, "whep session ended");
                    session_ended(&st, id.as_str());
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

//! WHEP sessions of reservations: an offer is answered once the camera's channel has video (a
//! cold channel is started by the demand the offer creates), the session is attached to its
//! reservation, and a per-camera offer is admitted as an ephemeral reservation ended with its
//! session.

use crate::Services;
use crate::ports::{OfferError, OfferTarget, OpenedSession};
use crate::reservations::admit;
use admission::{EndReason, Quality, Reservation};
use base::{ReservationId, SessionId};
use hub::{Channel, State as ChannelState};
use std::sync::Arc;
use std::time::Duration;

/// How often a cold channel is looked at while waiting for its first frame.
const PARAMS_POLL: Duration = Duration::from_millis(20);

pub(crate) async fn offer(
    st: &Services,
    target: OfferTarget<'_>,
    sdp: &str,
) -> Result<OpenedSession, OfferError> {
    match target {
        OfferTarget::Reservation(rid) => {
            let r = st
                .admission
                .get(rid)
                .ok_or(OfferError::ReservationNotFound)?;
            negotiate(st, &r, sdp).await
        }
        OfferTarget::Camera { camera_id, user } => {
            let a = admit(st, camera_id, user, Quality::Auto, true).map_err(OfferError::Admit)?;
            let r = a.reservation();
            let res = negotiate(st, r, sdp).await;
            if res.is_err()
                && let Some(r) = st.admission.release(&r.id)
            {
                st.ended(&r, EndReason::SessionEnded);
            }
            res
        }
    }
}

/// Waits until the channel has parameters (its first frame arrived), or fails early if the
/// upstream reports a failure.
async fn wait_for_params(
    st: &Services,
    ch: &Channel,
    timeout: Duration,
) -> Result<Arc<media::VideoParams>, OfferError> {
    let deadline = st.clocks.monotonic() + timeout;
    loop {
        if let Some(p) = ch.params() {
            return Ok(p);
        }
        let s = ch.status();
        let failed = matches!(s.state, ChannelState::Offline | ChannelState::Error);
        if failed || st.clocks.monotonic() >= deadline {
            let why = s
                .last_error
                .unwrap_or_else(|| format!("no video within {} s", timeout.as_secs()));
            return Err(OfferError::CameraUnavailable(why));
        }
        st.clocks.sleep(PARAMS_POLL).await;
    }
}

/// Creates the WHEP session of reservation `r`.
async fn negotiate(st: &Services, r: &Reservation, sdp: &str) -> Result<OpenedSession, OfferError> {
    let rid = &r.id;
    let ch = st
        .hub
        .get(&st.channel_id(&r.camera_id, r.quality))
        .ok_or(OfferError::CameraNotFound)?;
    // Holding a subscription creates demand: a cold channel starts its upstream now. The WHEP
    // session subscribes on its own once the offer is accepted.
    let demand = ch.subscribe();
    let params = wait_for_params(st, &ch, st.cfg.live.first_frame_timeout).await?;
    let (sid, answer) = st
        .whep
        .create_session(sdp, &ch, params)
        .await
        .map_err(OfferError::Session)?;
    drop(demand);
    match st.admission.attach_session(rid, &sid) {
        Some(previous) => {
            if let Some(old) = previous {
                st.whep.close_session(&old);
            }
        }
        None => {
            // Released or expired while we negotiated.
            st.whep.close_session(&sid);
            return Err(OfferError::ReservationNotFound);
        }
    }
    tracing::info!(reservation = %rid, session = %sid, camera = %r.camera_id, "whep session created");
    Ok(OpenedSession {
        reservation_id: rid.clone(),
        session_id: sid,
        answer,
    })
}

/// `DELETE` of a WHEP session: true also for a session that already ended on its own (the
/// peer closed DTLS first), so clients can always clean up the same way.
pub(crate) fn close(st: &Services, rid: &ReservationId, sid: &str) -> bool {
    let attached = st
        .admission
        .get(rid)
        .is_some_and(|r| r.session.as_deref() == Some(sid));
    let closed = st.close_session(sid);
    // Detaches the session and ends a per-session reservation; the janitor does the same when
    // the Ended event arrives, whichever comes first.
    st.session_ended(&SessionId::from(sid));
    let known = webrtc::SessionId::parse(sid).is_some_and(|id| st.whep.session_info(&id).is_some());
    closed || attached || known
}

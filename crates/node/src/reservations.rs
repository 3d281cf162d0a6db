//! Admission of a camera for a user: the camera must exist, be enabled and not be in `error`;
//! then the admission table decides against the agency, global and per-user limits. Every
//! decision is audited.

use crate::Services;
use admission::{Admitted, Denied, Quality, Request, Reservation};
use base::CameraId;
use std::time::SystemTime;

/// Why a camera was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdmitError {
    CameraNotFound,
    CameraDisabled,
    /// The camera's channel is in `error`: its last error.
    CameraUnavailable(String),
    /// A limit is reached; `agency` is the camera's.
    Denied {
        denied: Denied,
        agency: String,
    },
}

/// Admits `user_id` to view `camera_id` at `quality` (`ephemeral`: a reservation for exactly one
/// WHEP session, ended with it).
pub fn admit(
    st: &Services,
    camera_id: &CameraId,
    user_id: &str,
    quality: Quality,
    ephemeral: bool,
) -> Result<Admitted, AdmitError> {
    let cam = st
        .catalog
        .get(camera_id)
        .ok_or(AdmitError::CameraNotFound)?
        .camera;
    if !cam.enabled {
        return Err(AdmitError::CameraDisabled);
    }
    if let Some(ch) = st.hub.get(&st.channel_id(camera_id, quality)) {
        let s = ch.status();
        if s.state == hub::State::Error {
            return Err(AdmitError::CameraUnavailable(
                s.last_error.unwrap_or_else(|| "camera in error".to_owned()),
            ));
        }
    }
    let now = st.clocks.realtime();
    let req = Request {
        camera_id: camera_id.clone(),
        agency: &cam.agency,
        user_id,
        quality,
        ephemeral,
    };
    match st.admission.reserve(&req, now) {
        Ok(a) => {
            let (action, what) = match &a {
                Admitted::Created(_) => (store::AuditAction::Reserve, "reserve"),
                Admitted::Existing(_) => (store::AuditAction::Reuse, "reserve (existing)"),
            };
            st.audit
                .record(audit_event(a.reservation(), action, now, None, None));
            tracing::info!(reservation = %a.reservation().id, camera = %camera_id, user = %user_id, "{what}");
            Ok(a)
        }
        Err(d) => {
            st.audit.record(store::AuditEvent {
                at: now,
                action: store::AuditAction::Deny,
                reservation_id: None,
                user_id: user_id.to_owned(),
                camera_id: camera_id.clone(),
                agency: Some(cam.agency.clone()),
                quality: Some(quality.as_str().to_owned()),
                reason: Some(d.code().to_owned()),
                detail: Some(d.to_string()),
                role: None,
                source_ip: None,
                user_agent: None,
            });
            tracing::info!(camera = %camera_id, user = %user_id, "reserve denied: {d}");
            Err(AdmitError::Denied {
                denied: d,
                agency: cam.agency,
            })
        }
    }
}

/// The audit event of something that happened to reservation `r`.
pub fn audit_event(
    r: &Reservation,
    action: store::AuditAction,
    at: SystemTime,
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
        role: None,
        source_ip: None,
        user_agent: None,
    }
}

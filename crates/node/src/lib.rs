//! The node layer: what a Vantage node is made of ([`Services`]) and the domain logic that runs
//! it, with no HTTP in it. `api` translates HTTP into calls on these; the binary (`vantage`)
//! builds the services, wires the API and starts the background work:
//! - reservations' lifecycle ([`reservations`]): admission of a camera for a user, the end of a
//!   reservation (its WHEP session closed, the end audited and remembered), the lease keeper
//!   ([`lease`]) and the janitor that follows WHEP sessions ended by the media loop
//!   ([`janitor`]);
//! - the recording policy ([`recording`]): a camera's effective mode (the API's stored setting,
//!   else the configuration's) applied to the recorder;
//! - the reconciler ([`upstreams`]): upstream supervisors and recording kept in line with the
//!   catalog as VMS syncs change it;
//! - the ports ([`ports`]): the narrow interfaces the HTTP API drives the node through (cameras,
//!   live viewing and WHEP sessions, recordings and the timeline, audit, the VMS), implemented
//!   on `Arc<Services>`; media-index work runs on blocking threads, off the async runtime.

pub mod access;
pub mod exports;
pub mod janitor;
pub mod lease;
mod live;
pub mod playback;
pub mod ports;
pub mod recording;
pub mod reservations;
mod timeline;
pub mod upstreams;
pub mod users;
mod views;

use admission::{Admission, EndReason, Reservation};
use base::{CameraId, ChannelId, Clocks, ReservationId, SessionId};
use hub::Hub;
use parking_lot::Mutex;
use settings::Config;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use vms::catalog::Catalog;

/// What a node is made of, to build [`Services`] from.
pub struct Parts {
    pub cfg: Arc<Config>,
    pub catalog: Arc<Catalog>,
    pub hub: Arc<Hub>,
    pub whep: Arc<webrtc::WhepServer>,
    pub admission: Arc<dyn Admission>,
    pub audit: store::AuditLog,
    pub clocks: Arc<dyn Clocks>,
    /// The XProtect sync, when `milestone:` is configured.
    pub vms: Option<Arc<vms::sync::VmsSync>>,
    /// Continuous recording: segment writers, media index, retention.
    pub recorder: Arc<recorder::service::Recorder>,
    /// Evidence exports (design 0008): jobs, files, the signing key.
    pub exports: Arc<exports::Exports>,
    /// Logins and sessions (design 0009).
    pub access: Arc<access::Access>,
}

/// A node's services (reachable directly through `Deref`: `services.hub`) and the state of
/// reservations' lifecycle.
pub struct Services {
    parts: Parts,
    recently_ended: Mutex<RecentlyEnded>,
}

impl std::ops::Deref for Services {
    type Target = Parts;
    fn deref(&self) -> &Parts {
        &self.parts
    }
}

impl Services {
    pub fn new(parts: Parts) -> Self {
        Services {
            parts,
            recently_ended: Mutex::new(RecentlyEnded::default()),
        }
    }

    /// Ends a reservation for `reason`: its WHEP session is closed, the end is audited and
    /// remembered (so a repeated release stays idempotent).
    pub fn ended(&self, r: &Reservation, reason: EndReason) {
        if let Some(sid) = &r.session {
            self.whep.close_session(sid);
        }
        self.recently_ended.lock().insert(r.id.clone(), reason);
        self.audit.record(reservations::audit_event(
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

    /// How a reservation that is no longer live ended, if it ended recently.
    pub fn recently_ended(&self, id: &str) -> Option<EndReason> {
        self.recently_ended.lock().get(id)
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
    pub fn channel_id(&self, camera_id: &CameraId, quality: admission::Quality) -> ChannelId {
        match self.catalog.get(camera_id) {
            Some(c)
                if c.camera
                    .substreams
                    .iter()
                    .any(|(q, _)| q == quality.as_str()) =>
            {
                ChannelId::substream(camera_id, quality.as_str())
            }
            _ => ChannelId::main(camera_id),
        }
    }

    /// Ends a WHEP session by its id as found in URLs and reservations; false if unknown.
    pub fn close_session(&self, sid: &str) -> bool {
        webrtc::SessionId::parse(sid).is_some_and(|id| self.whep.close_session(&id))
    }

    /// A WHEP session is over: detaches it from its reservation, and ends a per-session
    /// (ephemeral) reservation.
    pub fn session_ended(&self, sid: &SessionId) {
        if let Some(r) = self.admission.session_ended(sid) {
            self.ended(&r, EndReason::SessionEnded);
        }
    }
}

/// Ids of reservations that ended recently, bounded, for idempotent releases.
#[derive(Default)]
struct RecentlyEnded {
    order: VecDeque<ReservationId>,
    reasons: HashMap<ReservationId, EndReason>,
}

impl RecentlyEnded {
    const CAPACITY: usize = 10_000;

    fn insert(&mut self, id: ReservationId, reason: EndReason) {
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

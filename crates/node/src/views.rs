//! [`crate::Services`] as the ports the HTTP API drives (`crate::ports`). The ports are
//! implemented on `Arc<Services>` so that work on the media index can move to a blocking
//! thread, off the async runtime.

use crate::ports::*;
use crate::recording::{effective, stored_settings};
use crate::reservations::{AdmitError, admit};
use crate::timeline;
use crate::{Services, live};
use admission::{Admitted, EndReason, Quality, Reservation};
use base::clock::{rfc3339_ms, unix_ms};
use base::{CameraId, Error, ReservationId, err};
use recorder::index::{EvidenceLock, NewLock, QueryError, RecordingSetting};
use recorder::service::StorageStatus;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;
use store::{AuditAction, AuditEvent};
use vms::catalog::CatalogCamera;

/// Runs `f` on a blocking thread (it reads or writes SQLite).
fn blocking<T: Send + 'static>(
    st: &Arc<Services>,
    f: impl FnOnce(&Services) -> Result<T, Error> + Send + 'static,
) -> BoxFuture<'static, Result<T, Error>> {
    let st = st.clone();
    Box::pin(async move {
        tokio::task::spawn_blocking(move || f(&st))
            .await
            .map_err(|e| err!(Internal, "blocking task failed: {e}"))?
    })
}

impl Services {
    fn recording_state(
        &self,
        cam: &settings::Camera,
        stored: &HashMap<String, RecordingSetting>,
    ) -> RecordingState {
        RecordingState {
            effective: effective(cam, stored.get(&cam.id)),
            active: self.recorder.is_recording(&cam.id),
            writer: self.recorder.camera(&cam.id),
        }
    }

    fn camera_view(
        &self,
        c: &CatalogCamera,
        stored: &HashMap<String, RecordingSetting>,
    ) -> CameraView {
        let ch = self.hub.get(&c.camera.id);
        let recording = self.recording_state(&c.camera, stored);
        CameraView {
            status: ch.as_ref().map(|c| c.status()),
            params: ch.as_ref().and_then(|c| c.params()),
            audio: ch.as_ref().and_then(|c| c.audio_params()),
            stats: ch.as_ref().map(|c| c.stats()),
            viewers: ch
                .as_ref()
                .map_or(0, |c| c.subscriber_count())
                .saturating_sub(usize::from(recording.active)),
            recording,
            camera: c.clone(),
        }
    }

    /// Evidence locks are audited like reservations: who, which camera, which range, why.
    fn audit_lock(&self, action: AuditAction, user: &str, l: &EvidenceLock) {
        self.audit.record(AuditEvent {
            at: self.clocks.realtime(),
            action,
            reservation_id: None,
            user_id: user.to_owned(),
            agency: self
                .catalog
                .get(&l.camera_id)
                .map(|c| c.camera.agency.clone()),
            camera_id: l.camera_id.as_str().into(),
            quality: None,
            reason: Some(l.reason.clone()),
            detail: Some(format!(
                "evidence lock {} [{}, {}) expires {}",
                l.id,
                rfc3339_ms(l.start_ms),
                rfc3339_ms(l.end_ms),
                l.expires_at_ms
                    .map_or_else(|| "never".to_owned(), rfc3339_ms)
            )),
            role: None,
            source_ip: None,
            user_agent: None,
        });
    }
}

impl Cameras for Arc<Services> {
    fn cameras(&self) -> BoxFuture<'_, Vec<CameraView>> {
        Box::pin(async move {
            let stored = blocking(self, |st| Ok(stored_settings(st)))
                .await
                .unwrap_or_default();
            self.catalog
                .all()
                .iter()
                .map(|c| self.camera_view(c, &stored))
                .collect()
        })
    }

    fn camera<'a>(&'a self, id: &'a CameraId) -> BoxFuture<'a, Option<CameraView>> {
        Box::pin(async move {
            let c = self.catalog.get(id)?;
            let stored = blocking(self, |st| Ok(stored_settings(st)))
                .await
                .unwrap_or_default();
            Some(self.camera_view(&c, &stored))
        })
    }

    fn agencies(&self) -> Vec<AgencyView> {
        let stats = self.admission.stats();
        self.cfg
            .agencies
            .iter()
            .map(|a| AgencyView {
                active_streams: stats.current(&a.id),
                agency: a.clone(),
            })
            .collect()
    }
}

impl Live for Arc<Services> {
    fn reserve(
        &self,
        camera_id: &CameraId,
        user_id: &str,
        quality: Quality,
    ) -> Result<Admitted, AdmitError> {
        admit(self, camera_id, user_id, quality, false)
    }

    fn heartbeat(&self, reservation_id: &ReservationId) -> Option<Reservation> {
        self.admission
            .heartbeat(reservation_id, self.clocks.realtime())
    }

    fn release(&self, reservation_id: &ReservationId) -> Release {
        match self.admission.release(reservation_id) {
            Some(r) => {
                self.ended(&r, EndReason::Released);
                Release::Released
            }
            None if self.recently_ended(reservation_id).is_some() => Release::AlreadyEnded,
            None => Release::Unknown,
        }
    }

    fn reservations(&self) -> Vec<ReservationView> {
        self.admission
            .list()
            .into_iter()
            .map(|r| ReservationView {
                session_state: r
                    .session
                    .as_deref()
                    .and_then(webrtc::SessionId::parse)
                    .and_then(|id| self.whep.session_info(&id))
                    .map(|i| i.state.as_str()),
                reservation: r,
            })
            .collect()
    }

    fn stats(&self) -> StreamStats {
        let s = self.admission.stats();
        StreamStats {
            active_streams: s.active_streams,
            max_streams: s.max_streams,
            per_agency: self
                .cfg
                .agencies
                .iter()
                .map(|a| (a.id.clone(), s.current(&a.id), a.max_streams))
                .collect(),
        }
    }

    fn stats_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.admission.changes()
    }

    fn offer<'a>(
        &'a self,
        target: OfferTarget<'a>,
        sdp: &'a str,
    ) -> BoxFuture<'a, Result<OpenedSession, OfferError>> {
        Box::pin(live::offer(self, target, sdp))
    }

    fn close_session(&self, reservation_id: &ReservationId, session_id: &str) -> bool {
        live::close(self, reservation_id, session_id)
    }
}

impl Recordings for Arc<Services> {
    fn recording<'a>(
        &'a self,
        camera_id: &'a CameraId,
    ) -> BoxFuture<'a, Result<Option<RecordingState>, Error>> {
        let id = camera_id.to_owned();
        blocking(self, move |st| {
            Ok(st
                .catalog
                .get(&id)
                .map(|c| st.recording_state(&c.camera, &stored_settings(st))))
        })
    }

    fn set_recording<'a>(
        &'a self,
        camera_id: &'a CameraId,
        continuous: bool,
        retention_days: Option<u32>,
    ) -> BoxFuture<'a, Result<Option<RecordingState>, Error>> {
        let id = camera_id.to_owned();
        blocking(self, move |st| {
            let Some(cam) = st.catalog.get(&id) else {
                return Ok(None);
            };
            crate::recording::set(
                st,
                &RecordingSetting {
                    camera_id: id.to_string(),
                    continuous,
                    retention_days,
                },
            )?;
            Ok(Some(st.recording_state(&cam.camera, &stored_settings(st))))
        })
    }

    fn create_lock<'a>(
        &'a self,
        lock: NewLock,
        actor: &'a str,
    ) -> BoxFuture<'a, Result<CreatedLock, Error>> {
        let actor = actor.to_owned();
        blocking(self, move |st| {
            let reader = st.recorder.reader();
            // A camera that left the catalog may still have recordings worth locking.
            if st.catalog.get(&lock.camera_id).is_none()
                && reader.latest_segment(&lock.camera_id)?.is_none()
            {
                return Err(err!(NotFound, "camera `{}` not found", lock.camera_id)
                    .with_code("CAMERA_NOT_FOUND"));
            }
            let now_ms = unix_ms(st.clocks.realtime());
            let id = st.recorder.index().create_lock(&lock, now_ms)?;
            tracing::info!(lock = id, camera = %lock.camera_id, start_ms = lock.start_ms, end_ms = lock.end_ms, reason = %lock.reason, "evidence lock created");
            // What the lock holds now, for any span (one aggregate query).
            let totals = reader.range_totals(&lock.camera_id, lock.start_ms, lock.end_ms)?;
            let created = EvidenceLock {
                id,
                camera_id: lock.camera_id,
                start_ms: lock.start_ms,
                end_ms: lock.end_ms,
                reason: lock.reason,
                expires_at_ms: lock.expires_at_ms,
                created_at_ms: now_ms,
            };
            st.audit_lock(AuditAction::Lock, &actor, &created);
            Ok(CreatedLock {
                lock: created,
                segments: totals.segments,
                bytes: totals.bytes,
            })
        })
    }

    fn locks(
        &self,
        camera_id: Option<CameraId>,
    ) -> BoxFuture<'_, Result<Vec<EvidenceLock>, Error>> {
        blocking(self, move |st| {
            st.recorder.index().locks(camera_id.as_deref())
        })
    }

    fn lock(&self, id: i64) -> BoxFuture<'_, Result<Option<EvidenceLock>, Error>> {
        blocking(self, move |st| st.recorder.reader().lock(id))
    }

    fn delete_lock<'a>(&'a self, id: i64, actor: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        let actor = actor.to_owned();
        blocking(self, move |st| {
            let Some(lock) = st.recorder.reader().lock(id)? else {
                return Ok(false);
            };
            if !st.recorder.index().delete_lock(id)? {
                return Ok(false);
            }
            st.audit_lock(AuditAction::Unlock, &actor, &lock);
            tracing::info!(lock = id, "evidence lock deleted");
            Ok(true)
        })
    }

    fn storage(&self) -> BoxFuture<'_, Result<StorageStatus, Error>> {
        blocking(self, |st| st.recorder.status())
    }

    fn timeline<'a>(
        &'a self,
        camera_id: &'a CameraId,
        start: SystemTime,
        end: SystemTime,
    ) -> BoxFuture<'a, Result<Timeline, QueryError>> {
        Box::pin(timeline::timeline(self, camera_id, start, end))
    }
}

impl Audit for Arc<Services> {
    fn audit(
        &self,
        filter: store::AuditFilter,
    ) -> BoxFuture<'_, Result<Vec<store::AuditRecord>, Error>> {
        Box::pin(async move {
            self.audit.flush().await;
            self.audit.query(filter).await
        })
    }

    fn audit_dropped(&self) -> u64 {
        self.audit.dropped()
    }
}

impl Vms for Arc<Services> {
    fn vms_status(&self) -> Option<vms::sync::SyncStatus> {
        self.vms.as_ref().map(|v| v.status())
    }
}

impl Node for Arc<Services> {
    fn config(&self) -> &settings::Config {
        &self.cfg
    }

    fn now(&self) -> SystemTime {
        self.clocks.realtime()
    }
}

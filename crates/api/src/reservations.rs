//! The reservation table (minimal: the full admission control with quotas and leases is issue 3).

use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// Requested picture quality. Until transcoding exists every value maps to the main stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Quality {
    Low,
    Medium,
    High,
    Auto,
}

impl Quality {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "low" => Quality::Low,
            "medium" => Quality::Medium,
            "high" => Quality::High,
            "auto" => Quality::Auto,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Quality::Low => "low",
            Quality::Medium => "medium",
            Quality::High => "high",
            Quality::Auto => "auto",
        }
    }
}

/// A user's lease on live viewing of one camera.
#[derive(Clone, Debug)]
pub struct Reservation {
    pub id: String,
    pub camera_id: String,
    pub agency: String,
    pub user_id: String,
    pub quality: Quality,
    pub created_at: SystemTime,
    pub expires_at: SystemTime,
    /// The WHEP session currently attached, if any.
    pub session: Option<String>,
    /// Created by a per-camera WHEP POST: released when its session ends.
    pub ephemeral: bool,
}

impl Reservation {
    pub fn whep_url(&self) -> String {
        format!("/whep/{}", self.id)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "reservation_id": self.id,
            "camera_id": self.camera_id,
            "agency": self.agency,
            "user_id": self.user_id,
            "quality": self.quality.as_str(),
            "whep_url": self.whep_url(),
            "created_at": base::clock::rfc3339(self.created_at),
            "expires_at": base::clock::rfc3339(self.expires_at),
            "session_active": self.session.is_some(),
            "ephemeral": self.ephemeral,
        })
    }
}

/// All reservations of this node.
#[derive(Default)]
pub struct Reservations {
    inner: Mutex<HashMap<String, Reservation>>,
}

impl Reservations {
    /// Creates a reservation, or returns the user's existing one for the same camera and quality
    /// (so client retries never double-count). The bool is true when it was created.
    pub fn reserve(
        &self,
        camera_id: &str,
        agency: &str,
        user_id: &str,
        quality: Quality,
        now: SystemTime,
        lease: Duration,
    ) -> (Reservation, bool) {
        let mut g = self.inner.lock();
        if let Some(r) = g.values().find(|r| {
            !r.ephemeral && r.camera_id == camera_id && r.user_id == user_id && r.quality == quality
        }) {
            return (r.clone(), false);
        }
        let r = Reservation {
            ephemeral: false,
            id: uuid::Uuid::new_v4().simple().to_string(),
            camera_id: camera_id.to_owned(),
            agency: agency.to_owned(),
            user_id: user_id.to_owned(),
            quality,
            created_at: now,
            expires_at: now + lease,
            session: None,
        };
        g.insert(r.id.clone(), r.clone());
        (r, true)
    }

    /// A reservation for exactly one WHEP session (never shared with a retry).
    pub fn reserve_ephemeral(
        &self,
        camera_id: &str,
        agency: &str,
        user_id: &str,
        now: SystemTime,
        lease: Duration,
    ) -> Reservation {
        let r = Reservation {
            id: uuid::Uuid::new_v4().simple().to_string(),
            camera_id: camera_id.to_owned(),
            agency: agency.to_owned(),
            user_id: user_id.to_owned(),
            quality: Quality::Auto,
            created_at: now,
            expires_at: now + lease,
            session: None,
            ephemeral: true,
        };
        self.inner.lock().insert(r.id.clone(), r.clone());
        r
    }

    pub fn get(&self, id: &str) -> Option<Reservation> {
        self.inner.lock().get(id).cloned()
    }

    pub fn remove(&self, id: &str) -> Option<Reservation> {
        self.inner.lock().remove(id)
    }

    /// Attaches a WHEP session; returns `Some(previous session)` or None if the reservation is gone.
    pub fn attach_session(&self, id: &str, session: String) -> Option<Option<String>> {
        let mut g = self.inner.lock();
        let r = g.get_mut(id)?;
        Some(r.session.replace(session))
    }

    /// The WHEP server ended `session`: detach it, and drop the reservation if it existed only
    /// for that session.
    pub fn session_ended(&self, session: &str) {
        self.inner.lock().retain(|_, r| {
            if r.session.as_deref() != Some(session) {
                return true;
            }
            r.session = None;
            !r.ephemeral
        });
    }

    pub fn all(&self) -> Vec<Reservation> {
        let mut v: Vec<Reservation> = self.inner.lock().values().cloned().collect();
        v.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        v
    }

    pub fn per_agency(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for r in self.inner.lock().values() {
            *m.entry(r.agency.clone()).or_insert(0) += 1;
        }
        m
    }
}

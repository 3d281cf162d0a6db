//! Stream reservations and admission control.
//!
//! A [`Reservation`] is a user's lease on live viewing of one camera. It counts toward three
//! limits — its camera's agency, the global limit and the user's — and expires unless renewed.
//! [`Admission`] is the contract every implementation keeps (see `docs/design/0003-admission.md`);
//! [`MemoryAdmission`] is the single-node default. Time is an argument everywhere: nothing here
//! reads a clock, so tests drive leases with simulated time.

mod memory;

pub use base::{CameraId, ReservationId, SessionId};
pub use memory::MemoryAdmission;

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

/// Requested picture quality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Quality {
    Low,
    Medium,
    High,
    Auto,
}

impl Quality {
    pub const ALL: [Quality; 4] = [Quality::Low, Quality::Medium, Quality::High, Quality::Auto];

    pub fn parse(s: &str) -> Option<Self> {
        Quality::ALL.into_iter().find(|q| q.as_str() == s)
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

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user's lease on live viewing of one camera.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub id: ReservationId,
    pub camera_id: CameraId,
    pub agency: String,
    pub user_id: String,
    pub quality: Quality,
    pub created_at: SystemTime,
    pub expires_at: SystemTime,
    /// The WHEP session attached, if any.
    pub session: Option<SessionId>,
    /// Exists for exactly one WHEP session (per-camera WHEP endpoint): ends with it.
    pub ephemeral: bool,
}

/// The limits admission enforces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// All reservations of the estate.
    pub max_streams: u32,
    /// Reservations of one user.
    pub max_streams_per_user: u32,
    /// How long a reservation lives without renewal.
    pub lease: Duration,
    /// Per agency id. An agency missing here admits nothing.
    pub agencies: BTreeMap<String, u32>,
}

/// What a reserve asks for.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub camera_id: CameraId,
    pub agency: &'a str,
    pub user_id: &'a str,
    pub quality: Quality,
    pub ephemeral: bool,
}

/// A successful reserve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admitted {
    Created(Reservation),
    /// The same user already holds this camera at this quality: a client retry, not a new stream.
    Existing(Reservation),
}

impl Admitted {
    pub fn reservation(&self) -> &Reservation {
        match self {
            Admitted::Created(r) | Admitted::Existing(r) => r,
        }
    }
}

/// Why a reserve was refused: which limit, and its state at that moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    Agency {
        agency: String,
        current: u32,
        limit: u32,
    },
    Global {
        current: u32,
        limit: u32,
    },
    User {
        user_id: String,
        current: u32,
        limit: u32,
    },
}

impl Denied {
    /// The API error code.
    pub fn code(&self) -> &'static str {
        match self {
            Denied::Agency { .. } => "AGENCY_LIMIT_REACHED",
            Denied::Global { .. } => "GLOBAL_LIMIT_REACHED",
            Denied::User { .. } => "USER_LIMIT_REACHED",
        }
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::Agency {
                agency,
                current,
                limit,
            } => write!(
                f,
                "agency {agency} holds {current} of its {limit} live streams"
            ),
            Denied::Global { current, limit } => {
                write!(
                    f,
                    "the platform holds {current} of its {limit} live streams"
                )
            }
            Denied::User {
                user_id,
                current,
                limit,
            } => write!(
                f,
                "user {user_id} holds {current} of their {limit} live streams"
            ),
        }
    }
}

/// Why a reservation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// `DELETE /api/v1/stream/release/{id}`.
    Released,
    /// Not renewed within its lease.
    Expired,
    /// Its (ephemeral) WHEP session ended.
    SessionEnded,
    /// The node shut down.
    Shutdown,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Released => "released",
            EndReason::Expired => "expired",
            EndReason::SessionEnded => "session_ended",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// Counts of one agency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgencyCount {
    pub agency: String,
    pub current: u32,
    pub limit: u32,
}

/// Counts for `GET /api/v1/stream/stats`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    pub active_streams: u32,
    pub max_streams: u32,
    pub per_agency: Vec<AgencyCount>,
}

impl Stats {
    /// Live reservations of `agency` (0 for an agency without any).
    pub fn current(&self, agency: &str) -> u32 {
        self.per_agency
            .iter()
            .find(|c| c.agency == agency)
            .map_or(0, |c| c.current)
    }
}

/// The admission contract. Every method is atomic with respect to the others: two reserves
/// racing for the last slot of an agency never both succeed, and counters always equal the number
/// of live reservations.
pub trait Admission: Send + Sync + 'static {
    /// Admits or refuses. The same user, camera and quality (non-ephemeral) returns the existing
    /// reservation, its lease renewed.
    fn reserve(&self, req: &Request<'_>, now: SystemTime) -> Result<Admitted, Denied>;
    /// Renews the lease to `now + lease`; None if the reservation does not exist (or expired).
    fn heartbeat(&self, id: &str, now: SystemTime) -> Option<Reservation>;
    /// Renews leases of reservations whose viewer is known to be alive: each `(id, seen)` moves
    /// the lease to `seen + lease`, where `seen` is when the viewer was last heard from (so a viewer
    /// that vanished loses its reservation at most one lease after its last packet). Only leases
    /// ending before `now + lease / 2` are touched (renewing more often changes nothing a client
    /// can see), and a lease never moves backwards. Returns how many were renewed.
    fn renew(&self, seen: &[(ReservationId, SystemTime)], now: SystemTime) -> usize;
    /// Ends a reservation; returns it, or None if it did not exist.
    fn release(&self, id: &str) -> Option<Reservation>;
    /// Ends and returns every reservation whose lease ended at or before `now`.
    fn expire(&self, now: SystemTime) -> Vec<Reservation>;
    fn get(&self, id: &str) -> Option<Reservation>;
    /// All live reservations, oldest first.
    fn list(&self) -> Vec<Reservation>;
    /// Attaches a WHEP session; returns `Some(previous session)`, or None if the reservation is
    /// gone.
    fn attach_session(&self, id: &str, session: &SessionId) -> Option<Option<SessionId>>;
    /// A WHEP session ended: detaches it; an ephemeral reservation ends with it and is returned.
    fn session_ended(&self, session: &SessionId) -> Option<Reservation>;
    fn stats(&self) -> Stats;
    /// Increases whenever the counts in [`Admission::stats`] change.
    fn changes(&self) -> tokio::sync::watch::Receiver<u64>;
}

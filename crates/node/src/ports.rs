//! The narrow interfaces the HTTP API drives the node through, one per area. [`crate::Services`]
//! implements all of them; `api` holds them as trait objects and never reaches past them into
//! the hub, the admission table, the recorder or the VMS connector. Results are domain values
//! (reservations, catalog cameras with their live state, index rows); `api` turns them into its
//! JSON contract.

use crate::recording::Effective;
use crate::reservations::AdmitError;
use admission::{Admitted, Quality, Reservation};
use base::{CameraId, Error, ReservationId, SessionId};
use media::{AudioParams, VideoParams};
use recorder::index::{EvidenceLock, NewLock, QueryError};
use recorder::service::StorageStatus;
use recorder::writer::CameraRecording;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;
use vms::catalog::CatalogCamera;

/// An async answer from a port (boxed, so the ports can be trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

// ---- cameras --------------------------------------------------------------------------------

/// A catalog camera with its live and recording state.
#[derive(Clone, Debug)]
pub struct CameraView {
    pub camera: CatalogCamera,
    /// The channel's status; None while no channel exists (idle).
    pub status: Option<hub::Status>,
    pub params: Option<Arc<VideoParams>>,
    pub audio: Option<Arc<AudioParams>>,
    /// The channel's counters (frames in, pts rewritten, ...); None while no channel exists.
    pub stats: Option<hub::ChannelStats>,
    /// Live viewers (the recorder's subscription is not one).
    pub viewers: usize,
    pub recording: RecordingState,
}

/// A camera's recording: the effective setting, whether it records now, the writer's state.
#[derive(Clone, Debug)]
pub struct RecordingState {
    pub effective: Effective,
    pub active: bool,
    pub writer: Option<CameraRecording>,
}

/// An agency with its live-stream count.
#[derive(Clone, Debug)]
pub struct AgencyView {
    pub agency: settings::Agency,
    pub active_streams: u32,
}

/// The catalog as people see it.
pub trait Cameras: Send + Sync {
    /// Every camera: the configuration's first, then the VMS's by name.
    fn cameras(&self) -> BoxFuture<'_, Vec<CameraView>>;
    fn camera<'a>(&'a self, id: &'a CameraId) -> BoxFuture<'a, Option<CameraView>>;
    fn agencies(&self) -> Vec<AgencyView>;
}

// ---- live -----------------------------------------------------------------------------------

/// What a release did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    Released,
    /// It had ended already (released, expired, its session over): releasing is idempotent.
    AlreadyEnded,
    Unknown,
}

/// A live reservation and the state of its WHEP session (`new`, `connected`, `ended`).
#[derive(Clone, Debug)]
pub struct ReservationView {
    pub reservation: Reservation,
    pub session_state: Option<&'static str>,
}

/// Live streams in use: in total and per configured agency (`agency id, current, limit`).
#[derive(Clone, Debug)]
pub struct StreamStats {
    pub active_streams: u32,
    pub max_streams: u32,
    pub per_agency: Vec<(String, u32, u32)>,
}

/// Which reservation a WHEP offer is for.
#[derive(Clone, Copy, Debug)]
pub enum OfferTarget<'a> {
    /// `POST {whep_url}` of an existing reservation.
    Reservation(&'a ReservationId),
    /// `POST /whep/cameras/{id}`: admitted as an ephemeral reservation of `user`.
    Camera {
        camera_id: &'a CameraId,
        user: &'a str,
    },
}

/// A WHEP session created for an offer.
#[derive(Clone, Debug)]
pub struct OpenedSession {
    pub reservation_id: ReservationId,
    pub session_id: SessionId,
    /// The SDP answer.
    pub answer: String,
}

/// Why a WHEP offer was not answered.
#[derive(Debug)]
pub enum OfferError {
    Admit(AdmitError),
    ReservationNotFound,
    CameraNotFound,
    /// The camera yields no video (its upstream failed, or no frame in time): why.
    CameraUnavailable(String),
    /// The offer itself (malformed SDP, no common codec) or the media loop.
    Session(Error),
}

/// Live viewing: reservations, leases and their WHEP sessions.
pub trait Live: Send + Sync {
    fn reserve(
        &self,
        camera_id: &CameraId,
        user_id: &str,
        quality: Quality,
    ) -> Result<Admitted, AdmitError>;
    /// Renews a live reservation's lease; None when unknown or lapsed.
    fn heartbeat(&self, reservation_id: &ReservationId) -> Option<Reservation>;
    fn release(&self, reservation_id: &ReservationId) -> Release;
    /// Live reservations, oldest first.
    fn reservations(&self) -> Vec<ReservationView>;
    fn stats(&self) -> StreamStats;
    /// Changes whenever a reservation is made or ends.
    fn stats_changes(&self) -> tokio::sync::watch::Receiver<u64>;
    fn offer<'a>(
        &'a self,
        target: OfferTarget<'a>,
        sdp: &'a str,
    ) -> BoxFuture<'a, Result<OpenedSession, OfferError>>;
    /// `DELETE` of a WHEP session; false when neither the session nor its reservation knows it.
    fn close_session(&self, reservation_id: &ReservationId, session_id: &str) -> bool;
}

// ---- recordings -----------------------------------------------------------------------------

/// A stretch of recorded time of a camera, ms since the epoch, `[start, end)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub start: i64,
    pub end: i64,
    /// `local` or `xprotect`.
    pub source: &'static str,
    /// Known for local recordings (`h264`, `h265`).
    pub codec: Option<String>,
    pub resolution: Option<String>,
    /// Local recordings: whether the segments have an audio track; unknown for XProtect's.
    pub has_audio: Option<bool>,
}

/// What can be played of a camera in a window.
#[derive(Clone, Debug)]
pub struct Timeline {
    /// `local`, `xprotect`, `local+xprotect` or `none`.
    pub source: &'static str,
    /// Sorted, clipped to the window.
    pub spans: Vec<Span>,
    /// Gaps: what no span covers, from the window's start (ms).
    pub gaps: Vec<(i64, i64)>,
    /// The live stream's parameters, for what the index does not say.
    pub live: Option<Arc<VideoParams>>,
}

/// An evidence lock as created: with what is recorded in its range now.
#[derive(Clone, Debug)]
pub struct CreatedLock {
    pub lock: EvidenceLock,
    pub segments: u64,
    pub bytes: u64,
}

/// Recording: modes, evidence locks, storage and the timeline. Everything that reads or writes
/// the media index runs off the async runtime.
pub trait Recordings: Send + Sync {
    fn recording<'a>(
        &'a self,
        camera_id: &'a CameraId,
    ) -> BoxFuture<'a, Result<Option<RecordingState>, Error>>;
    /// Stores a camera's mode (overriding the configuration's) and applies it at once; None for
    /// a camera not in the catalog.
    fn set_recording<'a>(
        &'a self,
        camera_id: &'a CameraId,
        continuous: bool,
        retention_days: Option<u32>,
    ) -> BoxFuture<'a, Result<Option<RecordingState>, Error>>;
    /// Creates a lock (audited as `actor`); NotFound for a camera neither in the catalog nor
    /// in the recordings.
    fn create_lock<'a>(
        &'a self,
        lock: NewLock,
        actor: &'a str,
    ) -> BoxFuture<'a, Result<CreatedLock, Error>>;
    fn locks(&self, camera_id: Option<CameraId>)
    -> BoxFuture<'_, Result<Vec<EvidenceLock>, Error>>;
    fn lock(&self, id: i64) -> BoxFuture<'_, Result<Option<EvidenceLock>, Error>>;
    /// Deletes a lock (audited as `actor`); false when unknown.
    fn delete_lock<'a>(&'a self, id: i64, actor: &'a str) -> BoxFuture<'a, Result<bool, Error>>;
    fn storage(&self) -> BoxFuture<'_, Result<StorageStatus, Error>>;
    /// Local segments merged into runs, and XProtect's sequences for the time they do not
    /// cover, in `[start, end)`; NotFound for a camera not in the catalog, InvalidArgument
    /// naming its `field` for a window beyond the index's bounds (span, segment count).
    fn timeline<'a>(
        &'a self,
        camera_id: &'a CameraId,
        start: SystemTime,
        end: SystemTime,
    ) -> BoxFuture<'a, Result<Timeline, QueryError>>;
}

// ---- playback -------------------------------------------------------------------------------

/// A recorded range to play as one MP4.
#[derive(Clone, Debug)]
pub struct PlaybackRequest {
    pub camera_id: CameraId,
    pub start: SystemTime,
    pub end: SystemTime,
    /// Go on past gaps (removing them) instead of ending at the first.
    pub skip_gaps: bool,
    /// Include recorded audio.
    pub audio: bool,
}

/// A live-edge stream (`Playback::playback_live`).
#[derive(Debug)]
pub struct LiveStream {
    /// The MSE init segment (`ftyp` + `moov` with `mvex`).
    pub init: Vec<u8>,
    /// The fragments (`moof` + `mdat`), in order; an error ends it.
    pub fragments: tokio::sync::mpsc::Receiver<Result<Vec<u8>, base::Error>>,
}

/// Reading recordings back (design 0008). Answers are built on blocking threads and pin the
/// segments they read until their body is dropped; [`crate::playback::stream_body`] reads one.
/// NotFound for a camera neither the catalog nor the recordings know, or (naming `start`) a
/// range with nothing recorded; InvalidArgument naming the field for a bad or too long range.
pub trait Playback: Send + Sync {
    /// The progressive MP4 of a range.
    fn playback_mp4(
        &self,
        req: PlaybackRequest,
    ) -> BoxFuture<'_, Result<recorder::playback::Mp4, QueryError>>;
    /// The MSE init segment of the recording at `at` (default: the latest) and the wall-clock
    /// start (ms) of the segment it came from.
    fn playback_init<'a>(
        &'a self,
        camera_id: &'a CameraId,
        at: Option<SystemTime>,
    ) -> BoxFuture<'a, Result<(Vec<u8>, i64), QueryError>>;
    /// Fragments on the wall-clock timeline, for MSE and HLS.
    fn playback_fragments<'a>(
        &'a self,
        camera_id: &'a CameraId,
        start: SystemTime,
        end: SystemTime,
    ) -> BoxFuture<'a, Result<recorder::playback::Fragments, QueryError>>;
    /// A live-edge (time-shift) stream from `start`: the MSE init segment, then the fragments as
    /// they are recorded (`recorder::playback::Follower`), read on a blocking thread; the
    /// receiver ends when the stream does, and dropping it stops the following.
    fn playback_live<'a>(
        &'a self,
        camera_id: &'a CameraId,
        start: SystemTime,
    ) -> BoxFuture<'a, Result<LiveStream, QueryError>>;
    /// The parts of an HLS playlist.
    fn hls_parts<'a>(
        &'a self,
        camera_id: &'a CameraId,
        start: SystemTime,
        end: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<recorder::playback::HlsPart>, QueryError>>;
}

// ---- exports --------------------------------------------------------------------------------

pub use crate::exports::{Deleted, ExportFile, NewExport};
pub use store::{ExportRow, ExportStatus};

/// Evidence exports (design 0008): jobs, their files and the node's public key. Database and
/// file work runs off the async runtime.
pub trait Exports: Send + Sync {
    /// Validates and queues an export: InvalidArgument naming `end_time` for a bad or too long
    /// range; NotFound for an unknown camera (no field) or a range with nothing recorded (naming
    /// `start_time`).
    fn create_export(&self, req: NewExport) -> BoxFuture<'_, Result<ExportRow, QueryError>>;
    /// Newest first.
    fn exports(&self) -> BoxFuture<'_, Result<Vec<ExportRow>, Error>>;
    fn export<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<ExportRow>, Error>>;
    /// Cancels a queued or running export, or removes a finished one; None when unknown.
    fn delete_export<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Deleted>, Error>>;
    /// A completed export's file; None when unknown or not completed.
    fn export_file<'a>(
        &'a self,
        id: &'a str,
        which: ExportFile,
    ) -> BoxFuture<'a, Result<Option<(ExportRow, std::path::PathBuf)>, Error>>;
    /// Audits a download of an export's MP4.
    fn export_downloaded(&self, row: &ExportRow);
    /// The node's export public key (SPKI PEM).
    fn export_public_key(&self) -> String;
}

// ---- audit and the VMS ------------------------------------------------------------------------

/// The audit trail.
pub trait Audit: Send + Sync {
    /// Rows matching `filter`, newest first (after the events recorded so far are written).
    fn audit(
        &self,
        filter: store::AuditFilter,
    ) -> BoxFuture<'_, Result<Vec<store::AuditRecord>, Error>>;
    /// Events the writer could not keep up with.
    fn audit_dropped(&self) -> u64;
}

/// The XProtect sync's state; None when no VMS is configured.
pub trait Vms: Send + Sync {
    fn vms_status(&self) -> Option<vms::sync::SyncStatus>;
}

// ---- access ---------------------------------------------------------------------------------

/// Logins, sessions and who a caller is (design 0009; `crate::access`).
pub trait Access: Send + Sync {
    fn login(
        &self,
        username: String,
        password: String,
        client: store::Client,
    ) -> BoxFuture<'_, Result<crate::access::Tokens, Error>>;
    fn refresh(
        &self,
        token: String,
        client: store::Client,
    ) -> BoxFuture<'_, Result<crate::access::Tokens, Error>>;
    fn logout(
        &self,
        caller: crate::access::Caller,
        client: store::Client,
    ) -> BoxFuture<'_, Result<bool, Error>>;
    /// The caller behind a bearer credential (a node access token or an API key).
    fn authenticate(
        &self,
        credential: String,
    ) -> BoxFuture<'_, Result<crate::access::Caller, Error>>;
}

/// Users and API keys, for admins (`crate::users`).
pub trait Users: Send + Sync {
    fn users_op(
        &self,
        caller: crate::access::Caller,
        op: crate::users::UserOp,
        client: store::Client,
    ) -> BoxFuture<'_, Result<crate::users::UserAnswer, Error>>;
}

/// Everything the API drives.
pub trait Node:
    Cameras + Live + Recordings + Playback + Exports + Audit + Vms + Access + Users
{
    /// The configuration the node runs (server and live settings the HTTP layer needs).
    fn config(&self) -> &settings::Config;
    fn now(&self) -> SystemTime;
}

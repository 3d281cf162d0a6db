//! The API's contract: every request and response body as a typed struct (serde), with
//! `utoipa::ToSchema` so an OpenAPI description can be generated from them and a UI checked
//! against them. Handlers build these from the node layer's results; nothing else goes on the
//! wire. Times are RFC 3339 UTC strings with millisecond precision.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

// ---- errors ---------------------------------------------------------------------------------

/// Every error answer: `{"error": {...}}` with the HTTP status of its kind.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable upper-case code (`AGENCY_LIMIT_REACHED`, `INVALID_REQUEST`, ...).
    pub code: String,
    pub message: String,
    pub message_ar: String,
    /// The request field at fault, for `INVALID_REQUEST`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Further details of the code (`agency`, `current`, `limit`, `camera_id`, ...).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

// ---- cameras and agencies -------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct CameraList {
    pub cameras: Vec<Camera>,
    pub total: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Camera {
    pub id: String,
    pub name: String,
    pub agency: String,
    pub location: Option<String>,
    pub enabled: bool,
    /// `idle`, `connecting`, `online`, `offline` or `error`.
    pub status: String,
    pub status_since: Option<String>,
    pub last_error: Option<String>,
    /// Live viewers (the recorder is not one).
    pub viewers: usize,
    pub recording: Recording,
    pub recording_server: Option<String>,
    /// `config` or `xprotect`.
    pub source: String,
    pub groups: Vec<String>,
    pub properties: CameraProperties,
    /// Sub-stream qualities the camera has (`low`, `medium`, `high`).
    pub qualities: Vec<String>,
    pub live_stream_url: Option<String>,
    /// What ingest received from the camera and what it had to correct, never silently.
    pub ingest: IngestCounters,
}

/// Counters of a camera's stream since its channel was created (zero while idle).
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct IngestCounters {
    pub frames_in: u64,
    pub key_frames_in: u64,
    pub bytes_in: u64,
    pub audio_frames_in: u64,
    /// Times the cache of the current GOP outgrew its limit and was dropped.
    pub gop_cache_overflows: u64,
    /// Frames whose presentation time did not advance (a camera clock that is not monotonic)
    /// and was rewritten to keep the timeline monotonic: their timing is not the camera's.
    pub pts_rewritten: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CameraProperties {
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    /// `1280x720`, from the stream's parameter sets.
    pub resolution: Option<String>,
    pub fps: Option<f64>,
    /// `H.264` or `H.265`.
    pub codec: Option<String>,
    /// The camera's recordable audio (recorded, not sent to WebRTC viewers); null if none.
    pub audio: Option<Audio>,
    pub ptz_capable: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Audio {
    pub codec: String,
    /// RFC 6381 (`mp4a.40.2`).
    pub codec_string: String,
    pub sample_rate: u32,
    pub channels: u16,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgencyList {
    pub agencies: Vec<Agency>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Agency {
    pub id: String,
    pub name: String,
    pub name_ar: Option<String>,
    pub max_streams: u32,
    pub active_streams: u32,
}

// ---- reservations ---------------------------------------------------------------------------

/// `POST /api/v1/stream/reserve`. Fields are checked one by one so that an error names its
/// field; the schema documents their types.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReserveRequest {
    #[schema(value_type = String)]
    pub camera_id: Option<serde_json::Value>,
    #[schema(value_type = String)]
    pub user_id: Option<serde_json::Value>,
    /// `low`, `medium`, `high` or `auto` (default).
    #[schema(value_type = Option<String>)]
    pub quality: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Reservation {
    pub reservation_id: String,
    pub camera_id: String,
    pub agency: String,
    pub user_id: String,
    pub quality: String,
    pub whep_url: String,
    pub created_at: String,
    pub expires_at: String,
    pub session_active: bool,
    /// Created by the per-camera WHEP endpoint for exactly one session.
    pub ephemeral: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReservationListItem {
    #[serde(flatten)]
    pub reservation: Reservation,
    /// `new`, `connected` or `ended`: the viewer's WebRTC session; null without one.
    pub session_state: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReservationList {
    pub reservations: Vec<ReservationListItem>,
    pub total: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Heartbeat {
    pub reservation_id: String,
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StreamStats {
    pub active_streams: u32,
    pub max_streams: u32,
    pub per_agency: Vec<AgencyCount>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgencyCount {
    pub agency: String,
    pub current: u32,
    pub limit: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    pub events: Vec<AuditEvent>,
    /// Events the writer could not keep up with: counted, never silently lost.
    pub dropped: u64,
    /// When the page is full: pass as `after=` for the next (older) page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    pub seq: i64,
    pub at: String,
    pub at_ms: i64,
    /// `reserve`, `reuse`, `deny`, `release`, `expire`, `lock`, `unlock`, `export_create`,
    /// `login_success`, `login_failure`, `logout`, `token_refresh`, ... (`store::AuditAction`).
    pub action: String,
    pub reservation_id: Option<String>,
    pub user_id: String,
    pub camera_id: String,
    pub agency: Option<String>,
    pub quality: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<String>,
    /// The actor's role, when known.
    pub role: Option<String>,
    /// The client's address, when the event came from a request and it is known.
    pub source_ip: Option<String>,
    /// The client's `User-Agent`, when the event came from a request.
    pub user_agent: Option<String>,
}

// ---- recording ------------------------------------------------------------------------------

/// A camera's `recording` object.
#[derive(Debug, Serialize, ToSchema)]
pub struct Recording {
    /// `continuous` or `off`.
    pub mode: String,
    pub retention_days: u32,
    /// `api` or `config`.
    pub set_by: String,
    pub active: bool,
    /// `off`, `waiting`, `recording` or `error`.
    pub state: String,
    pub last_error: Option<String>,
    pub open_segment_since: Option<String>,
    pub last_write: Option<String>,
    pub frames_skipped: u64,
    pub fragments_dropped: u64,
    pub frames_dropped_behind: u64,
}

/// `PUT /api/v1/cameras/{id}/recording`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RecordingRequest {
    /// `continuous` or `off`.
    #[schema(value_type = String)]
    pub mode: Option<serde_json::Value>,
    /// Whole days, 0–36500 (0: kept forever by age).
    #[schema(value_type = Option<u32>)]
    pub retention_days: Option<serde_json::Value>,
}

/// `POST /api/v1/evidence-locks`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LockRequest {
    #[schema(value_type = String)]
    pub camera_id: Option<serde_json::Value>,
    #[schema(value_type = String)]
    pub start_time: Option<serde_json::Value>,
    #[schema(value_type = String)]
    pub end_time: Option<serde_json::Value>,
    #[schema(value_type = String)]
    pub reason: Option<serde_json::Value>,
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceLock {
    pub id: String,
    pub camera_id: String,
    pub start_time: String,
    pub end_time: String,
    pub reason: String,
    pub expires_at: Option<String>,
    pub created_at: String,
    pub active: bool,
    /// On creation: what is recorded in the range now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceLockList {
    pub evidence_locks: Vec<EvidenceLock>,
    pub total: usize,
}

// ---- exports --------------------------------------------------------------------------------

/// `POST /api/v1/export`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ExportRequest {
    #[schema(value_type = String)]
    pub camera_id: Option<serde_json::Value>,
    #[schema(value_type = String)]
    pub start_time: Option<serde_json::Value>,
    #[schema(value_type = String)]
    pub end_time: Option<serde_json::Value>,
    /// Only `mp4` (the default).
    #[schema(value_type = Option<String>)]
    pub format: Option<serde_json::Value>,
    /// Include recorded audio (default true).
    #[schema(value_type = Option<bool>)]
    pub include_audio: Option<serde_json::Value>,
    /// Who asks (default: `X-Vantage-User`, else `anonymous`).
    #[schema(value_type = Option<String>)]
    pub created_by: Option<serde_json::Value>,
}

/// The answer to `POST /api/v1/export` (202).
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportCreated {
    pub export_id: String,
    /// `queued` or `running`.
    pub status: String,
    pub status_url: String,
}

/// An export job.
#[derive(Debug, Serialize, ToSchema)]
pub struct Export {
    pub export_id: String,
    pub camera_id: String,
    pub start_time: String,
    pub end_time: String,
    pub format: String,
    pub include_audio: bool,
    /// `queued`, `running`, `completed`, `failed`, `cancelled`.
    pub status: String,
    /// 0 to 100 (100 once completed).
    pub progress_percent: u32,
    pub bytes_written: u64,
    pub size_bytes: Option<u64>,
    pub sha256: Option<String>,
    pub frames: Option<u64>,
    pub error: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub file_name: String,
    /// Once completed.
    pub download_url: Option<String>,
    pub manifest_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExportList {
    pub exports: Vec<Export>,
    pub total: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Storage {
    pub recordings_dir: String,
    pub volume: Volume,
    pub max_usage_bytes: u64,
    pub min_free_bytes: u64,
    pub used_bytes: u64,
    pub cameras: Vec<CameraStorage>,
    pub writer: Writer,
    pub retention: Retention,
    /// What start-up recovery did.
    #[schema(value_type = Object)]
    pub recovery: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Volume {
    pub total_bytes: u64,
    pub free_bytes: u64,
    pub used_percent: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CameraStorage {
    pub camera_id: String,
    pub recording: bool,
    pub retention_days: u32,
    pub segments: u64,
    pub bytes: u64,
    pub oldest_recording: Option<String>,
    pub newest_recording: Option<String>,
    pub fragments_dropped: u64,
    pub frames_dropped_behind: u64,
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Writer {
    pub writes: u64,
    pub bytes_written: u64,
    pub syncs: u64,
    pub write_errors: u64,
    pub lag_ms: LagMs,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LagMs {
    pub p50: Option<u64>,
    pub p95: Option<u64>,
    pub p99: Option<u64>,
    pub max: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Retention {
    pub passes: u64,
    pub emergency_passes: u64,
    pub deleted_segments: u64,
    pub deleted_bytes: u64,
    pub deleted_by_age: u64,
    pub deleted_by_budget: u64,
    pub deleted_in_emergency: u64,
    pub locked_kept: u64,
    /// Last pass: segments kept because a reader (playback, export) held them.
    pub pinned_kept: u64,
    /// Since start: deletions put off for readers.
    pub skipped_pinned: u64,
    pub shortfall_bytes: u64,
    pub last_pass: Option<String>,
    pub last_error: Option<String>,
}

// ---- timeline -------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct Timeline {
    pub camera_id: String,
    pub start: String,
    pub end: String,
    /// `local`, `xprotect`, `local+xprotect` or `none`.
    pub source: String,
    pub timeline: Vec<TimelineEntry>,
    /// The parts of the requested window no recording covers, from its start; the time after
    /// the last recorded moment is not a gap while the camera is being recorded.
    pub gaps: Vec<Gap>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEntry {
    pub sequence_id: String,
    /// `local` or `xprotect`.
    pub source: String,
    pub start_time: String,
    pub end_time: String,
    pub duration_seconds: f64,
    pub has_video: bool,
    /// Null: XProtect's sequences do not say.
    pub has_audio: Option<bool>,
    pub codec: Option<String>,
    pub resolution: Option<String>,
    pub fps: Option<f64>,
    pub gaps: Vec<Gap>,
    /// Local recordings: the run as one MP4 (`GET /api/v1/playback/...`); null for XProtect's.
    pub playback_url: Option<String>,
    /// Local recordings: the run as an HLS playlist; null for XProtect's.
    pub hls_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Gap {
    pub start_time: String,
    pub end_time: String,
    pub duration_seconds: f64,
}

// ---- VMS ------------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct VmsStatus {
    /// The management server, without credentials.
    pub server_url: String,
    pub logged_in: bool,
    pub last_sync_attempt: Option<String>,
    pub last_sync: Option<String>,
    pub last_sync_duration_ms: Option<u64>,
    pub syncs: u64,
    pub failures: u64,
    /// The catalog in use is not from a successful sync.
    pub stale: bool,
    pub stale_age_seconds: Option<u64>,
    pub counts: VmsCounts,
    pub requests_last_sync: u32,
    pub requests_total: u64,
    pub last_changes: VmsChanges,
    pub cameras_without_live_url: usize,
    pub unmapped_cameras: Vec<UnmappedCamera>,
    pub error: Option<String>,
    pub connector_error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VmsCounts {
    pub cameras: usize,
    pub groups: usize,
    pub recording_servers: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VmsChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub renamed: Vec<String>,
    pub moved: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnmappedCamera {
    pub id: String,
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::OpenApi;

    #[derive(OpenApi)]
    #[openapi(components(schemas(
        ErrorBody,
        CameraList,
        AgencyList,
        ReserveRequest,
        Reservation,
        ReservationList,
        Heartbeat,
        StreamStats,
        AuditList,
        Recording,
        RecordingRequest,
        LockRequest,
        EvidenceLock,
        EvidenceLockList,
        ExportRequest,
        ExportCreated,
        Export,
        ExportList,
        Storage,
        Timeline,
        VmsStatus
    )))]
    struct Contract;

    /// The typed contract yields an OpenAPI description whose schemas carry the fields the
    /// API documents (a field renamed in a struct shows up here).
    #[test]
    fn the_contract_generates_openapi_schemas() {
        let doc = serde_json::to_value(Contract::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        // A struct with a flattened part is an `allOf` of its parts.
        let fields = |name: &str| -> Vec<String> {
            let s = &schemas[name];
            let parts = s["allOf"].as_array().cloned().unwrap_or(vec![s.clone()]);
            parts
                .iter()
                .filter_map(|p| p["properties"].as_object())
                .flat_map(|p| p.keys().cloned())
                .collect()
        };
        for f in [
            "id",
            "agency",
            "status",
            "recording",
            "properties",
            "viewers",
        ] {
            assert!(fields("Camera").contains(&f.to_owned()), "Camera.{f}");
        }
        for f in ["reservation_id", "whep_url", "expires_at", "quality"] {
            assert!(
                fields("Reservation").contains(&f.to_owned()),
                "Reservation.{f}"
            );
        }
        for f in ["code", "message", "message_ar", "field"] {
            assert!(
                fields("ErrorDetail").contains(&f.to_owned()),
                "ErrorDetail.{f}"
            );
        }
        for f in ["timeline", "gaps", "source"] {
            assert!(fields("Timeline").contains(&f.to_owned()), "Timeline.{f}");
        }
        // Request bodies document their fields' real types.
        assert_eq!(
            schemas["ReserveRequest"]["properties"]["camera_id"]["type"],
            "string"
        );
    }
}

// ---- access (design 0009) -------------------------------------------------------------------

/// `POST /api/v1/auth/login`.
#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(value_type = String)]
    pub username: Option<serde_json::Value>,
    #[schema(value_type = String)]
    pub password: Option<serde_json::Value>,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `POST /api/v1/auth/refresh`.
#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    #[schema(value_type = String)]
    pub refresh_token: Option<serde_json::Value>,
}

/// Who the caller is (`GET /api/v1/auth/me`, and in a login's answer).
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user_id: String,
    pub username: String,
    /// `admin`, `supervisor`, `operator`, `viewer` or `service`.
    pub role: String,
    /// Agency ids; `["*"]` for every agency.
    pub agencies: Vec<String>,
    /// The login session (absent for an API key or an identity provider's token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The identity provider's `iss`, for its tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Every role held and over which agencies, highest role first (`role` and `agencies`
    /// above are the first); an identity provider's token may grant several.
    pub grants: Vec<Grant>,
}

/// A role over agencies.
#[derive(Debug, Serialize, ToSchema)]
pub struct Grant {
    pub role: String,
    /// Agency ids; `["*"]` for every agency.
    pub agencies: Vec<String>,
}

/// A login's or a refresh's answer.
#[derive(Serialize, ToSchema)]
pub struct Session {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Exchange at `POST /api/v1/auth/refresh` for new tokens; each works once.
    pub refresh_token: String,
    pub session_id: String,
    /// When the session ends (a new login is needed then).
    pub session_expires_at: String,
    pub user: Me,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("session_id", &self.session_id)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A user as admins see it (never a password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub user_id: String,
    pub username: String,
    pub role: String,
    /// Agency ids; `["*"]` for every agency.
    pub agencies: Vec<String>,
    pub disabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
}

/// `POST /api/v1/users`.
#[derive(Deserialize, ToSchema)]
pub struct CreateUser {
    #[schema(value_type = String)]
    pub username: Option<serde_json::Value>,
    /// Absent for a service account.
    #[schema(value_type = Option<String>)]
    pub password: Option<serde_json::Value>,
    #[schema(value_type = String)]
    pub role: Option<serde_json::Value>,
    /// Agency ids, or `["*"]` (the default for an admin).
    #[schema(value_type = Option<Vec<String>>)]
    pub agencies: Option<serde_json::Value>,
}

/// `PATCH /api/v1/users/{id}`: what changes.
#[derive(Deserialize, ToSchema)]
pub struct PatchUser {
    #[schema(value_type = Option<String>)]
    pub role: Option<serde_json::Value>,
    #[schema(value_type = Option<Vec<String>>)]
    pub agencies: Option<serde_json::Value>,
    #[schema(value_type = Option<String>)]
    pub password: Option<serde_json::Value>,
    #[schema(value_type = Option<bool>)]
    pub disabled: Option<serde_json::Value>,
}

/// An API key as listed (never the key).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub key_id: String,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub api_keys: Vec<ApiKeyView>,
}

/// `POST /api/v1/users/{id}/api-keys` `{name}`.
#[derive(Deserialize, ToSchema)]
pub struct CreateApiKey {
    #[schema(value_type = String)]
    pub name: Option<serde_json::Value>,
}

/// A new API key: `api_key` is shown this once.
#[derive(Serialize, ToSchema)]
pub struct NewApiKey {
    #[serde(flatten)]
    pub key: ApiKeyView,
    pub api_key: String,
}

//! Configuration of a Vantage node.
//!
//! The file is YAML. Any scalar can be overridden from the environment with
//! `VANTAGE__SECTION__KEY=value` (e.g. `VANTAGE__LIVE__IDLE_GRACE=5s`); the value is read as a YAML
//! scalar. Loading never stops at the first mistake: [`load_str`] walks the whole document and
//! returns every [`Problem`] with its key path (`cameras[3].agency`), including unknown keys, so an
//! administrator can fix a file in one go.

mod parse;
mod validate;

pub use parse::{parse_duration, parse_size_or_percent};

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// A validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    pub webrtc: WebRtcConfig,
    pub live: LiveConfig,
    pub limits: LimitsConfig,
    pub storage: StorageConfig,
    pub playback: PlaybackConfig,
    pub exports: ExportsConfig,
    pub audit: AuditConfig,
    pub auth: AuthConfig,
    pub agencies: Vec<Agency>,
    pub cameras: Vec<Camera>,
    /// The XProtect VMS whose cameras join the catalog, if configured.
    pub milestone: Option<Milestone>,
}

/// How live video of an XProtect camera is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveMethod {
    /// `rtsp_base_url` + `streaming.rtsp_path_template`.
    RtspDirect,
    /// The Open Network Bridge: `rtsp_base_url` + `/live/{camera_guid}`.
    OnvifBridge,
    /// The recording server's ImageServer protocol. Not implemented yet: live URLs fall back to
    /// the RTSP template, and the node says so at start.
    MipSdk,
    /// The Mobile Server. Not implemented yet: as for `mip_sdk`.
    MobileServer,
}

/// Maps XProtect cameras to agencies; the first rule that matches wins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgencyRule {
    pub matcher: RuleMatch,
    pub agency: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleMatch {
    /// A camera group by name, or by path (`Metro/Red Line`; the camera may be in a subgroup).
    Group(String),
    /// A camera-name pattern with `*` wildcards, case-insensitive.
    CameraName(String),
}

/// The `milestone:` block (the integration guide's shape) plus Vantage's own keys.
#[derive(Clone, Debug, PartialEq)]
pub struct Milestone {
    /// The management server (API gateway, IDP, SOAP).
    pub server_url: url::Url,
    /// Where live RTSP is served (Open Network Bridge or RTSP templates).
    pub rtsp_base_url: Option<url::Url>,
    /// `host:port` of the recording server, when `webServerUri` from the VMS does not resolve.
    pub recording_server: Option<String>,
    pub username: String,
    pub password: String,
    pub method: LiveMethod,
    pub rtsp_path_template: String,
    pub playback_path_template: String,
    pub client_id: String,
    pub request_timeout: Duration,
    pub sync_interval: Duration,
    pub max_camera_lists_per_minute: u32,
    pub max_recording_queries_per_minute: u32,
    pub agency_rules: Vec<AgencyRule>,
    /// Where cameras no rule matches go. Default `OTHER`.
    pub default_agency: String,
    /// Vantage's own recording of the cameras synced from XProtect (default off: XProtect records
    /// them; `continuous` keeps a second copy on this node). The API can change it per camera.
    pub recording: RecordingMode,
    pub retention_days: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// HTTP API, UI and WHEP. Default `0.0.0.0:8088`.
    pub listen: SocketAddr,
    /// Origins allowed to call WHEP from a page served elsewhere (CORS): `https://wall.example`
    /// or `*`. Default: none.
    pub cors_origins: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct WebRtcConfig {
    /// The one UDP port of the media loop. Default 8189.
    pub udp_port: u16,
    /// Address the UDP socket binds to. Default `0.0.0.0`.
    pub bind: IpAddr,
    /// Host addresses put in ICE candidates. Default `127.0.0.1`.
    pub advertise: Vec<IpAddr>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LiveConfig {
    /// The upstream stops this long after its last subscriber leaves. Default 10 s.
    pub idle_grace: Duration,
    /// How long a WHEP request waits for a cold camera's first frame. Default 10 s.
    pub first_frame_timeout: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LimitsConfig {
    pub max_streams: u32,
    pub max_streams_per_user: u32,
    pub lease: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub recordings_dir: PathBuf,
    /// Cap on the bytes of recordings.
    pub max_usage: MaxUsage,
    /// Emergency deletion keeps at least this much of the recordings volume free.
    pub min_free: MaxUsage,
    /// Target segment length (at most 60 s).
    pub segment_duration: Duration,
    /// Open segments are `fdatasync`ed at least this often: what a power cut can lose.
    pub sync_interval: Duration,
    /// How often retention runs when nothing is urgent.
    pub retention_interval: Duration,
    pub writer_threads: u32,
}

/// Playing recordings back (design 0008).
#[derive(Clone, Debug, PartialEq)]
pub struct PlaybackConfig {
    /// Longest range one playback request may ask for.
    pub max_span: Duration,
    /// A reader's pin keeps its segments from retention for at most this long.
    pub max_pin: Duration,
}

/// Evidence exports (design 0008).
#[derive(Clone, Debug, PartialEq)]
pub struct ExportsConfig {
    /// Where finished exports and their manifests are kept (default `<data_dir>/exports`).
    pub dir: PathBuf,
    /// Exports running at once; the rest wait in order.
    pub max_concurrent: u32,
    /// Longest range one export may cover.
    pub max_span: Duration,
    /// Finished exports are deleted this long after they completed.
    pub retention: Duration,
    /// Each export writes at most this many KiB per second (0: as fast as the disk allows), so
    /// exports can be kept from competing with recording for the disk.
    pub max_write_kib_per_s: u32,
}

/// The audit log (design 0004, 0009).
#[derive(Clone, Debug, PartialEq)]
pub struct AuditConfig {
    /// Audit rows older than this are deleted, oldest first, the hash chain anchored at the last
    /// one deleted (default 400 days: a year of evidence plus a margin).
    pub retention: Duration,
}

/// Access control (design 0009).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct AuthConfig {
    /// Identity providers whose JWTs the node accepts (`auth.issuers`).
    pub issuers: Vec<IssuerSettings>,
}

/// One trusted identity provider.
#[derive(Clone, Debug, PartialEq)]
pub struct IssuerSettings {
    /// `iss`, exactly.
    pub issuer: String,
    /// Accepted `aud` values (`audience`: a string or a list).
    pub audiences: Vec<String>,
    pub keys: IssuerKeys,
    /// `RS256` and/or `ES256` (default both).
    pub algorithms: Vec<String>,
    /// Allowed clock skew (default 60 s, at most 5 min).
    pub leeway: Duration,
    /// How often the JWKS is fetched again (default 10 min); also at once, at most every 30 s,
    /// when a token names an unknown key.
    pub jwks_refresh: Duration,
    /// Claim names: `username` (default `preferred_username`), `role` (`role`), `agency`
    /// (`agency`), `permissions` (`permissions`).
    pub claims: [String; 4],
}

/// Where an identity provider's keys come from.
#[derive(Clone, Debug, PartialEq)]
pub enum IssuerKeys {
    /// `jwks_url`: http(s), no credentials in it.
    JwksUrl(url::Url),
    /// `public_key_file`: an SPKI PEM (RSA or P-256).
    PublicKeyFile(PathBuf),
}

/// A storage cap, absolute or relative to the volume.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxUsage {
    Bytes(u64),
    Percent(f64),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Agency {
    pub id: String,
    pub name: String,
    pub name_ar: Option<String>,
    pub max_streams: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordingMode {
    Off,
    Continuous,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Camera {
    pub id: String,
    pub name: String,
    pub agency: String,
    pub location: Option<String>,
    /// The camera's RTSP URL, never with credentials in it (validation refuses those).
    pub rtsp_url: url::Url,
    pub username: Option<String>,
    pub password: Option<String>,
    pub transport: Transport,
    pub enabled: bool,
    pub recording: RecordingMode,
    pub retention_days: u32,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub ptz_capable: bool,
    /// Sub-streams by quality (`low`, `medium`, `high`), each an RTSP URL without credentials
    /// (the camera's username and password apply). A quality without one maps to `rtsp_url`.
    pub substreams: Vec<(String, url::Url)>,
}

impl Camera {
    /// The RTSP URL serving `quality` (`low`, `medium`, `high`, `auto`).
    pub fn url_for(&self, quality: &str) -> &url::Url {
        self.substreams
            .iter()
            .find(|(q, _)| q == quality)
            .map_or(&self.rtsp_url, |(_, u)| u)
    }
}

/// One thing wrong with a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where: `cameras[2].rtsp_url`, or `VANTAGE__LIVE__IDLE_GRACE` for an override that could not
    /// be applied. A problem with a value an environment variable set keeps the key path and
    /// names the variable in its message.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Reads and validates a configuration file, applying overrides from `env` (pass
/// `std::env::vars()`).
pub fn load_file(
    path: &std::path::Path,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, Vec<Problem>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Problem {
            path: path.display().to_string(),
            message: format!("cannot read: {e}"),
        }]
    })?;
    load_str(&text, env)
}

/// Parses and validates configuration text.
pub fn load_str(
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, Vec<Problem>> {
    let mut doc = parse::yaml_to_json(text).map_err(|m| {
        vec![Problem {
            path: "(file)".into(),
            message: m,
        }]
    })?;
    let mut problems = Vec::new();
    let env: Vec<(String, String)> = env.into_iter().collect();
    let mut origins = parse::Origins::default();
    parse::apply_milestone_env(&mut doc, &env, &mut problems, &mut origins);
    parse::apply_env_overrides(&mut doc, env, &mut problems, &mut origins);
    let cfg = validate::validate(&doc, &mut problems);
    // A value from the environment is reported with its variable's name.
    origins.attribute(&mut problems);
    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(problems)
    }
}

impl Config {
    pub fn agency(&self, id: &str) -> Option<&Agency> {
        self.agencies.iter().find(|a| a.id == id)
    }

    pub fn camera(&self, id: &str) -> Option<&Camera> {
        self.cameras.iter().find(|c| c.id == id)
    }
}

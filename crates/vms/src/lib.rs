//! Milestone XProtect connector (2023 R3+).
//!
//! What it does, following `shared/reference/milestone-xprotect.md`:
//! - discovery: `GET {server}/api/.well-known/uris`, then the IDP's OpenID configuration for the
//!   token endpoint (fallback `{server}/IDP/connect/token`);
//! - login: OAuth password grant (`client_id=GrantValidatorClient`) for the REST API, renewed
//!   before it runs out, one re-login on a 401; plus the second "SCS" token from
//!   `ServerCommandServiceOAuth.svc` `Login`, needed by the recording servers;
//! - inventory: cameras (with disabled ones), hardware, recording servers and the camera-group
//!   tree, linked through `relations.parent`;
//! - recordings: `SequencesGet` on a recording server's `RecorderCommandService.asmx`.
//!
//! Parsers are pure functions over bytes/strings (see [`parse`] and [`soap`]) and never panic;
//! they are fuzzed from `fuzz/fuzz_targets/vms_*.rs`. Secrets (password, tokens) never appear in
//! errors, `Debug` output or logs.

pub mod bucket;
pub mod catalog;
mod connector;
pub mod parse;
pub mod soap;
pub mod sync;

use std::fmt;
use std::time::{Duration, SystemTime};

pub use bucket::TokenBucket;
pub use connector::Connector;
pub use parse::{
    GrantError, OpenIdConfiguration, RestError, TokenGrant, WellKnownUris, parse_camera_groups,
    parse_cameras, parse_gis_point, parse_hardware, parse_openid_configuration,
    parse_recording_servers, parse_rest_error, parse_timestamp, parse_token_response,
    parse_well_known_uris,
};
pub use soap::{ScsLogin, parse_login_result, parse_sequences};

/// `SequencesGet` sequence type: plain recordings.
pub const RECORDING_SEQUENCE: &str = "f9c62604-d0c5-4050-ae25-72de51639b14";
/// `SequencesGet` sequence type: motion.
pub const MOTION_SEQUENCE: &str = "53cb5e33-2183-44bd-9491-8364d2457480";
/// The OAuth client id for XProtect basic users.
pub const DEFAULT_CLIENT_ID: &str = "GrantValidatorClient";

/// How to reach and log in to one XProtect management server.
#[derive(Clone)]
pub struct XProtectConfig {
    /// The management server, e.g. `http://ms.example:80/`.
    pub server_url: url::Url,
    pub username: String,
    pub password: String,
    /// OAuth client id; `GrantValidatorClient` for basic users.
    pub client_id: String,
    /// Per HTTP request. Large sites return megabytes for `/cameras`: be generous (120 s).
    pub request_timeout: Duration,
    /// Inventory runs (the camera list and everything fetched with it) per minute.
    pub max_camera_lists_per_minute: u32,
    /// `SequencesGet` calls per minute.
    pub max_recording_queries_per_minute: u32,
}

impl XProtectConfig {
    /// A configuration with the defaults: `GrantValidatorClient`, 120 s timeout, 1 camera list and
    /// 100 recording queries per minute.
    pub fn new(
        server_url: url::Url,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        XProtectConfig {
            server_url,
            username: username.into(),
            password: password.into(),
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            request_timeout: Duration::from_secs(120),
            max_camera_lists_per_minute: 1,
            max_recording_queries_per_minute: 100,
        }
    }
}

impl fmt::Debug for XProtectConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XProtectConfig")
            .field("server_url", &base::redact_url(self.server_url.as_str()))
            .field("username", &self.username)
            .field("password", &"***")
            .field("client_id", &self.client_id)
            .field("request_timeout", &self.request_timeout)
            .field(
                "max_camera_lists_per_minute",
                &self.max_camera_lists_per_minute,
            )
            .field(
                "max_recording_queries_per_minute",
                &self.max_recording_queries_per_minute,
            )
            .finish()
    }
}

/// A secret string (token, password) whose `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself; only for putting it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// What the management server says about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct Discovery {
    /// `ProductVersion` from `/api/.well-known/uris`, e.g. `24.2.12065.1`.
    pub product_version: Option<String>,
    /// `IdentityProvider` (e.g. `https://ms/IDP`), or `{server}/IDP` when not announced.
    pub identity_provider: Option<url::Url>,
    /// `ApiGateways` as announced (informational; REST calls go to `{server}/api`).
    pub api_gateways: Vec<String>,
    /// `server_version` from the OpenID configuration.
    pub idp_server_version: Option<String>,
    /// Where the password grant is posted.
    pub token_endpoint: url::Url,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inventory {
    pub cameras: Vec<Camera>,
    pub hardware: Vec<Hardware>,
    pub recorders: Vec<Recorder>,
    pub groups: Vec<Group>,
    /// HTTP requests this inventory made (REST calls, retries and logins included).
    pub requests: u32,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Camera {
    /// XProtect camera GUID.
    pub id: String,
    pub name: String,
    pub display_name: String,
    /// `None` when absent or empty.
    pub short_name: Option<String>,
    pub enabled: bool,
    pub channel: u32,
    pub ptz_enabled: bool,
    pub recording_enabled: bool,
    pub recording_framerate: Option<f64>,
    /// From `relations.parent` (type `hardware`).
    pub hardware_id: Option<String>,
    /// Through the hardware's `relations.parent` (filled by [`Connector::inventory`]).
    pub recorder_id: Option<String>,
    /// Groups that list this camera (filled by [`Connector::inventory`]).
    pub group_ids: Vec<String>,
    pub last_modified: Option<SystemTime>,
    /// WKT `POINT (x y)` as `(x, y)`, i.e. (longitude, latitude); `None` for `POINT EMPTY`.
    pub gis_point: Option<(f64, f64)>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hardware {
    pub id: String,
    pub name: String,
    /// As sent: usually URL-shaped (`http://10.84.18.20/`), sometimes a bare host.
    pub address: Option<String>,
    pub model: Option<String>,
    /// From `relations.parent` (type `recordingServers`).
    pub recorder_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recorder {
    pub id: String,
    pub name: String,
    pub host_name: Option<String>,
    pub port: Option<u16>,
    /// `webServerUri` (e.g. `http://win10vm:7563/`), else `http://{hostName}:{portNumber}/`.
    pub web_server_uri: Option<url::Url>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Group {
    pub id: String,
    pub name: String,
    /// Names from the root down, joined with `/`: `Metro/Red Line`.
    pub path: String,
    pub parent_id: Option<String>,
    pub camera_ids: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sequence {
    pub begin: SystemTime,
    pub end: SystemTime,
    /// `TimeTrigged` (sic); `None` when absent or `0001-01-01`.
    pub triggered: Option<SystemTime>,
}

/// A snapshot for health pages. Holds no secrets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConnectorStatus {
    /// The server URL with any credentials removed.
    pub server_url: String,
    /// An OAuth token is held and not expired.
    pub logged_in: bool,
    pub token_expires_at: Option<SystemTime>,
    pub scs_token_expires_at: Option<SystemTime>,
    /// The last failure's message (secrets removed); cleared by the next success.
    pub last_error: Option<String>,
    /// HTTP requests made since the connector was created.
    pub requests: u64,
    /// Logins (password grants) made since the connector was created.
    pub logins: u64,
}

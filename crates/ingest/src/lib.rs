//! Upstream sources of camera channels.
//!
//! - [`run_session`]: one RTSP client session (retina) of the first video stream of a camera
//!   (H.264 or H.265), publishing [`media::Frame`]s: Annex B with 4-byte start codes (retina's
//!   `FrameFormat::SIMPLE`, parameter sets in front of every key frame), 90 kHz `pts` monotonic
//!   within the session, our own key-frame detection (H.265 CRA/BLA included, which retina does
//!   not mark), parameters rebuilt with a higher version when they change.
//! - [`spawn_supervisor`]: per camera, starts the session on demand, reconnects with
//!   [`Backoff`] (a pure core) and reports `Idle`/`Connecting`/`Online`/`Offline`/`Error` to the
//!   channel.
//!
//! Secrets: the URL of a [`SourceConfig`] never holds credentials; they travel separately to
//! retina's `Credentials`, and every error message has the password scrubbed.
//!
//! Fuzzing: this crate parses no network input itself; RTSP, SDP and RTP are parsed by retina,
//! and the parameter-set parsers live (and are fuzzed) in `media`.

pub mod backoff;
pub mod session;
pub mod supervisor;

pub use backoff::{Backoff, BackoffPolicy};
pub use session::{REQUEST_TIMEOUT, STALL_TIMEOUT, run_session, state_for};
pub use supervisor::{
    Connector, RtspConnector, Sink, SupervisorHandle, spawn_supervisor, spawn_supervisor_with,
};

use base::ChannelId;
use std::fmt;

/// How RTP travels from the camera.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Interleaved on the RTSP TCP connection.
    #[default]
    Tcp,
    /// Separate UDP ports (LAN only: no reordering).
    Udp,
}

/// Where and how to fetch one camera's stream.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceConfig {
    /// The channel this source feeds: the camera id, or `camera@quality` for a sub-stream.
    pub camera_id: ChannelId,
    /// The RTSP URL; never contains credentials (sessions refuse URLs that do).
    pub url: url::Url,
    pub username: Option<String>,
    pub password: Option<String>,
    pub transport: Transport,
}

impl SourceConfig {
    /// The URL as it may appear in logs and errors.
    pub fn redacted_url(&self) -> String {
        base::redact_url(self.url.as_str())
    }

    /// Everything that must not appear in a log line or an error: the password and the values of
    /// secret-looking query parameters of the URL (`?password=...`, `?token=...`), longest first.
    pub fn secrets(&self) -> Vec<String> {
        let mut s = base::query_secrets(&self.url);
        if let Some(pw) = self.password.as_ref().filter(|p| !p.is_empty()) {
            s.push(pw.clone());
        }
        s.sort_by_key(|x| std::cmp::Reverse(x.len()));
        s
    }
}

/// Hides the password.
impl fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceConfig")
            .field("camera_id", &self.camera_id)
            .field("url", &self.redacted_url())
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("transport", &self.transport)
            .finish()
    }
}

//! WebRTC for Vantage: a WHEP server on str0m (ICE-lite, one UDP socket and one media loop task
//! for all viewers) and, with the `testing` feature, `testing::WhepClient`, a WHEP client for
//! tests and benchmarks (never in the production library).
//!
//! The media loop is a sans-I/O core (`core`: sessions, routing by remote address, timeouts,
//! the RTP timeline; driven by `(now, input)`) inside a tokio shell (`shell`: the UDP socket, the
//! channel subscriptions and `base::Clocks`); `session` is one viewer, `registry` what API callers
//! read, `server` the public [`WhepServer`].
//!
//! Nothing outside this crate names str0m types: the public API speaks SDP strings, hub channels
//! and media parameters.
//!
//! Only H.264 is sent (browsers and aiortc have no H.265 in WebRTC); see [`sdp::choose_h264`] for
//! how the payload type is chosen and [`timeline::RtpTimeline`] for RTP timestamps across upstream
//! reconnects.

mod core;
mod registry;
pub mod sdp;
mod server;
mod session;
mod shell;
#[cfg(feature = "testing")]
pub mod testing;
pub mod timeline;

pub use server::{WhepConfig, WhepServer};
pub use session::{EndReason, SessionEvent, SessionId, SessionInfo, SessionState};

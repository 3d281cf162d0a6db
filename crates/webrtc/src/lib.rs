//! WebRTC for Vantage: a WHEP server on str0m (ICE-lite, one UDP socket and one media loop task
//! for all viewers) and, in [`testing`], a WHEP client for tests and benchmarks.
//!
//! Nothing outside this crate names str0m types: the public API speaks SDP strings, hub channels
//! and media parameters.
//!
//! Only H.264 is sent (browsers and aiortc have no H.265 in WebRTC); see [`sdp::choose_h264`] for
//! how the payload type is chosen and [`timeline::RtpTimeline`] for RTP timestamps across upstream
//! reconnects.

pub mod sdp;
mod server;
pub mod testing;
pub mod timeline;

pub use server::{
    EndReason, SessionEvent, SessionId, SessionInfo, SessionState, WhepConfig, WhepServer,
};

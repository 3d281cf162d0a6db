//! Shared foundations: one error type with gRPC-like kinds (mapped to HTTP statuses), the [`Clocks`]
//! abstraction with a simulated implementation for deterministic tests, 90 kHz media time and RFC 3339
//! text ([`time`]), the ids that cross crates ([`id`]), and credential redaction.

pub mod clock;
pub mod error;
pub mod id;
pub mod redact;
pub mod time;

pub use clock::{Clocks, RealClocks, SimulatedClocks, TokioClocks};
pub use error::{Error, ErrorKind, ResultExt};
pub use id::{CameraId, ChannelId, ReservationId, SessionId};
pub use redact::{
    is_credential_query_key, is_secret_query_key, query_credential_keys, query_secrets,
    redact_secret_in, redact_url,
};

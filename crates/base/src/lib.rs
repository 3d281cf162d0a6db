//! Shared foundations: one error type with gRPC-like kinds (mapped to HTTP statuses), the [`Clocks`]
//! abstraction with a simulated implementation for deterministic tests, and credential redaction.

pub mod clock;
pub mod error;
pub mod redact;

pub use clock::{Clocks, RealClocks, SimulatedClocks};
pub use error::{Error, ErrorKind, ResultExt};
pub use redact::{redact_secret_in, redact_url};

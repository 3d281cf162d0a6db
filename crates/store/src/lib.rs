//! The node's management database on SQLite: the hash-chained **audit log** ([`AuditLog`],
//! [`audit::chain`]), **users and API keys** ([`UserStore`], design 0009), snapshots of the VMS
//! catalog ([`Snapshots`]) and export jobs ([`ExportStore`]), in one file with one migration table
//! ([`schema`]).
//!
//! # Audit log
//! Every reserve, idempotent repeat, denied reserve, (optional) heartbeat, release and expiry is one
//! [`AuditEvent`]: when, what ([`AuditAction`]), the reservation id, user, camera, agency, quality,
//! why (see [`AuditEvent::reason`]: `released`, `expired`, `session_ended`, `shutdown`, or a denial's
//! error code) and a free-form detail (`AGENCY_LIMIT_REACHED METRO 30/30`). Evidence locks,
//! exports, logins, users and API keys are audited too, with the actor's role, source address and
//! user agent when known. Each row's `hash` chains it to the previous one; [`AuditLog::verify`]
//! finds the first row deleted, edited or inserted directly in SQLite, and
//! [`AuditLog::delete_before`] (retention) keeps what remains verifiable through an anchor.
//!
//! ```no_run
//! # async fn demo() -> Result<(), base::Error> {
//! use store::{AuditAction, AuditEvent, AuditFilter, AuditLog};
//! use std::time::SystemTime;
//! let log = AuditLog::open(std::path::Path::new("/var/lib/vantage/vantage.db"))?;
//! log.record(AuditEvent {
//!     reservation_id: Some("r-1".into()),
//!     reason: Some("released".into()),
//!     ..AuditEvent::new(SystemTime::now(), AuditAction::Release, "u-7", "cam-001")
//! });
//! log.flush().await;
//! let recent = log
//!     .query(AuditFilter { camera_id: Some("cam-001".into()), limit: 50, ..Default::default() })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! ## Write path
//! [`AuditLog::record`] never waits on disk: it puts the event on a bounded queue
//! ([`QUEUE_CAPACITY`] events) read by one dedicated writer thread, which takes everything queued
//! (up to 16,384 events) into one `BEGIN IMMEDIATE` transaction. If the queue is full the event is
//! dropped, counted in [`AuditLog::dropped`] and a warning is logged (at most one per 10 s). A
//! commit that fails is retried twice (after 100 ms and 1 s); after that its events are counted in
//! [`AuditLog::failed`] and logged as an error. [`AuditLog::flush`] resolves once everything
//! recorded before it is committed. Dropping the last handle commits what is queued and joins the
//! writer thread.
//!
//! ## Reads
//! [`AuditLog::query`] runs on `tokio::task::spawn_blocking` (inline when there is no tokio
//! runtime) on a read-only connection of its own (a few are kept idle), newest first, at most
//! [`MAX_QUERY_LIMIT`] rows; a limit of 0 returns nothing. Values are always bound as parameters.
//!
//! ## Storage
//! Times are integer milliseconds since the Unix epoch (`at_ms`), exposed as `SystemTime`. The
//! file uses WAL with `synchronous=NORMAL`: a power cut may lose the last committed transactions
//! but never corrupts the database; a crash loses only what was queued and not yet committed. See
//! `docs/design/0004-audit-log.md`.
//!
//! Errors are [`base::Error`]s whose messages start with the database path.

pub mod audit;
pub mod exports;
pub mod schema;
pub mod sessions;
pub mod snapshot;
pub mod users;
pub use exports::{ExportRow, ExportStatus, ExportStore};
pub use sessions::{Client, Rotated, SessionRow, SessionStore};
pub use snapshot::Snapshots;
pub use users::{ApiKeyRow, NewUser, User, UserStore, UserUpdate};

pub use audit::chain::{Breach, BrokenRow, VerifyReport};
pub use audit::{
    AuditAction, AuditEvent, AuditFilter, AuditLog, AuditRecord, DEFAULT_QUERY_LIMIT,
    MAX_QUERY_LIMIT, QUEUE_CAPACITY,
};
pub use schema::SCHEMA_VERSION;

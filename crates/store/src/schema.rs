//! The schema of the management database, applied by a small versioned migration table.
//!
//! `schema_version` holds one row per applied migration. [`migrate`] applies, in order and each in
//! its own `BEGIN IMMEDIATE` transaction, every migration newer than the highest recorded version,
//! so two processes opening the same file cannot apply one twice. A database written by a newer
//! binary (a version this one does not know) is refused rather than guessed at.

use base::{Error, ResultExt, bail};
use rusqlite::{Connection, TransactionBehavior, params};

/// One step of the schema.
pub struct Migration {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
}

/// Every migration, oldest first. Append only: never edit one that has shipped.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "audit log of stream reservations",
        sql: r#"
CREATE TABLE audit_event (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms          INTEGER NOT NULL,
    action         TEXT    NOT NULL
                   CHECK (action IN ('reserve', 'reuse', 'deny', 'heartbeat', 'release', 'expire')),
    reservation_id TEXT,
    user_id        TEXT    NOT NULL,
    camera_id      TEXT    NOT NULL,
    agency         TEXT,
    quality        TEXT,
    reason         TEXT,
    detail         TEXT
);
CREATE INDEX audit_event_at          ON audit_event (at_ms);
CREATE INDEX audit_event_camera_at   ON audit_event (camera_id, at_ms);
CREATE INDEX audit_event_user_at     ON audit_event (user_id, at_ms);
CREATE INDEX audit_event_reservation ON audit_event (reservation_id);
"#,
    },
    Migration {
        version: 2,
        description: "snapshots (the last known VMS catalog)",
        sql: r#"
CREATE TABLE snapshot (
    key         TEXT    PRIMARY KEY,
    saved_at_ms INTEGER NOT NULL,
    body        TEXT    NOT NULL
);
"#,
    },
    Migration {
        version: 3,
        description: "audit of evidence locks (actions lock and unlock)",
        // SQLite cannot alter a CHECK constraint: the table is rebuilt, rows and seq kept.
        sql: r#"
CREATE TABLE audit_event_v3 (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms          INTEGER NOT NULL,
    action         TEXT    NOT NULL
                   CHECK (action IN ('reserve', 'reuse', 'deny', 'heartbeat', 'release', 'expire',
                                     'lock', 'unlock')),
    reservation_id TEXT,
    user_id        TEXT    NOT NULL,
    camera_id      TEXT    NOT NULL,
    agency         TEXT,
    quality        TEXT,
    reason         TEXT,
    detail         TEXT
);
INSERT INTO audit_event_v3 SELECT * FROM audit_event;
DROP TABLE audit_event;
ALTER TABLE audit_event_v3 RENAME TO audit_event;
CREATE INDEX audit_event_at          ON audit_event (at_ms);
CREATE INDEX audit_event_camera_at   ON audit_event (camera_id, at_ms);
CREATE INDEX audit_event_user_at     ON audit_event (user_id, at_ms);
CREATE INDEX audit_event_reservation ON audit_event (reservation_id);
"#,
    },
    Migration {
        version: 4,
        description: "evidence exports (table export) and their audit actions",
        sql: r#"
CREATE TABLE export (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT    NOT NULL UNIQUE,
    camera_id      TEXT    NOT NULL,
    start_ms       INTEGER NOT NULL,
    end_ms         INTEGER NOT NULL,
    include_audio  INTEGER NOT NULL,
    status         TEXT    NOT NULL
                   CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    bytes_done     INTEGER NOT NULL DEFAULT 0,
    bytes_total    INTEGER NOT NULL DEFAULT 0,
    size           INTEGER,
    sha256         TEXT,
    frames         INTEGER,
    error          TEXT,
    created_by     TEXT    NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    started_at_ms  INTEGER,
    finished_at_ms INTEGER,
    file_name      TEXT    NOT NULL
);
CREATE INDEX export_status ON export (status, seq);
CREATE TABLE audit_event_v4 (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms          INTEGER NOT NULL,
    action         TEXT    NOT NULL
                   CHECK (action IN ('reserve', 'reuse', 'deny', 'heartbeat', 'release', 'expire',
                                     'lock', 'unlock', 'export_create', 'export_complete',
                                     'export_download')),
    reservation_id TEXT,
    user_id        TEXT    NOT NULL,
    camera_id      TEXT    NOT NULL,
    agency         TEXT,
    quality        TEXT,
    reason         TEXT,
    detail         TEXT
);
INSERT INTO audit_event_v4 SELECT * FROM audit_event;
DROP TABLE audit_event;
ALTER TABLE audit_event_v4 RENAME TO audit_event;
CREATE INDEX audit_event_at          ON audit_event (at_ms);
CREATE INDEX audit_event_camera_at   ON audit_event (camera_id, at_ms);
CREATE INDEX audit_event_user_at     ON audit_event (user_id, at_ms);
CREATE INDEX audit_event_reservation ON audit_event (reservation_id);
"#,
    },
    Migration {
        version: 5,
        description: "local users and their API keys",
        // Usernames are ASCII (checked by `UserStore`), so NOCASE makes them unique whatever
        // their case. `agencies` is a JSON array of agency ids, `["*"]` for all of them.
        sql: r#"
CREATE TABLE user (
    id            TEXT    PRIMARY KEY,
    username      TEXT    NOT NULL,
    password_hash TEXT,
    role          TEXT    NOT NULL
                  CHECK (role IN ('admin', 'supervisor', 'operator', 'viewer', 'service')),
    agencies      TEXT    NOT NULL DEFAULT '[]',
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    CHECK (password_hash IS NOT NULL OR role = 'service')
);
CREATE UNIQUE INDEX user_username ON user (username COLLATE NOCASE);
CREATE TABLE api_key (
    id            TEXT    PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    secret_sha256 BLOB    NOT NULL CHECK (length(secret_sha256) = 32),
    created_at_ms INTEGER NOT NULL,
    last_used_ms  INTEGER,
    revoked_at_ms INTEGER
);
CREATE INDEX api_key_user ON api_key (user_id);
"#,
    },
    Migration {
        version: 6,
        description: "audit hash chain, who/where columns and the access-control actions",
        // The table is rebuilt (new CHECK list; camera_id nullable for events about no camera),
        // rows and seq kept. Rows written before this migration (seq <= legacy_until_seq) get
        // their hashes on the first open, chained from the all-zero hash
        // (`audit::chain::backfill_legacy`). `audit_chain` holds the retention anchor: the seq and
        // hash of the last row deleted by `AuditLog::delete_before` (0 and zeros when none).
        sql: r#"
CREATE TABLE audit_event_v6 (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms          INTEGER NOT NULL,
    action         TEXT    NOT NULL
                   CHECK (action IN ('reserve', 'reuse', 'deny', 'heartbeat', 'release', 'expire',
                                     'lock', 'unlock', 'export_create', 'export_complete',
                                     'export_download', 'export_delete', 'login_success',
                                     'login_failure', 'logout', 'token_refresh', 'lockout',
                                     'user_create', 'user_update', 'user_delete',
                                     'api_key_create', 'api_key_revoke', 'live_start',
                                     'live_end', 'playback', 'recording_mode')),
    reservation_id TEXT,
    user_id        TEXT    NOT NULL,
    camera_id      TEXT,
    agency         TEXT,
    quality        TEXT,
    reason         TEXT,
    detail         TEXT,
    role           TEXT,
    source_ip      TEXT,
    user_agent     TEXT,
    hash           BLOB
);
INSERT INTO audit_event_v6
    (seq, at_ms, action, reservation_id, user_id, camera_id, agency, quality, reason, detail)
    SELECT seq, at_ms, action, reservation_id, user_id, camera_id, agency, quality, reason, detail
    FROM audit_event;
DROP TABLE audit_event;
ALTER TABLE audit_event_v6 RENAME TO audit_event;
CREATE INDEX audit_event_at          ON audit_event (at_ms);
CREATE INDEX audit_event_camera_at   ON audit_event (camera_id, at_ms);
CREATE INDEX audit_event_user_at     ON audit_event (user_id, at_ms);
CREATE INDEX audit_event_reservation ON audit_event (reservation_id);
CREATE TABLE audit_chain (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    legacy_until_seq INTEGER NOT NULL,
    anchor_seq       INTEGER NOT NULL,
    anchor_hash      BLOB    NOT NULL
);
INSERT INTO audit_chain (id, legacy_until_seq, anchor_seq, anchor_hash)
    VALUES (1, COALESCE((SELECT MAX(seq) FROM audit_event), 0), 0, zeroblob(32));
"#,
    },
    Migration {
        version: 7,
        description: "login sessions (rotating refresh tokens)",
        // A session's refresh token is stored as the SHA-256 of its secret; the previous one is
        // kept so that its reuse (a stolen token replayed after the owner refreshed) is detected
        // and ends the session.
        sql: r#"
CREATE TABLE session (
    id               TEXT    PRIMARY KEY,
    user_id          TEXT    NOT NULL REFERENCES user (id) ON DELETE CASCADE,
    refresh_sha256   BLOB    NOT NULL CHECK (length(refresh_sha256) = 32),
    previous_sha256  BLOB,
    created_at_ms    INTEGER NOT NULL,
    refreshed_at_ms  INTEGER NOT NULL,
    expires_at_ms    INTEGER NOT NULL,
    revoked_at_ms    INTEGER,
    user_agent       TEXT,
    source_ip        TEXT
);
CREATE INDEX session_user ON session (user_id);
"#,
    },
];

/// The schema version this binary writes: the last migration's.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

const CREATE_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (
    version       INTEGER PRIMARY KEY,
    applied_at_ms INTEGER NOT NULL,
    description   TEXT    NOT NULL
)";

/// The highest applied version, 0 for a new database.
pub fn current_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )
}

/// Brings the management database at `label` (its path, for messages) up to [`SCHEMA_VERSION`].
/// Rows of the audit log written before the hash chain existed get their hashes here (once).
pub fn migrate(conn: &mut Connection, label: &str) -> Result<(), Error> {
    apply(
        conn,
        label,
        MIGRATIONS,
        crate::audit::to_ms(std::time::SystemTime::now()),
    )?;
    crate::audit::chain::backfill_legacy(conn).err_kind(
        base::ErrorKind::Internal,
        format_args!("{label}: hashing the audit rows written before the chain"),
    )
}

/// A private in-memory management database with the current schema (tests).
pub fn open_memory() -> Result<Connection, Error> {
    let mut conn = Connection::open_in_memory().err_kind(base::ErrorKind::Internal, "memory")?;
    migrate(&mut conn, "memory")?;
    Ok(conn)
}

/// Opens (creating it and its parent directory if needed) the management database at `path` with
/// a busy timeout, and brings its schema up to date. Returns the connection and the path as
/// text, for messages.
pub fn open_file(path: &std::path::Path) -> Result<(Connection, String), Error> {
    use base::ErrorKind::Internal;
    let label = path.display().to_string();
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .err_kind(Internal, format_args!("{label}: creating directory"))?;
    }
    let mut conn = Connection::open(path).err_kind(Internal, &label)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .err_kind(Internal, &label)?;
    // As the audit log opens it (crate docs, "Storage"): WAL with `synchronous=NORMAL`, so a
    // store opened on its own (the CLI, a benchmark) does not pay a sync per commit.
    let _: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .err_kind(Internal, format_args!("{label}: setting WAL mode"))?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .err_kind(Internal, format_args!("{label}: setting synchronous"))?;
    migrate(&mut conn, &label)?;
    Ok((conn, label))
}

/// Applies, in order and each in its own `BEGIN IMMEDIATE` transaction, every migration of
/// `migrations` (oldest first) newer than the database's highest recorded version, recording each
/// in `schema_version`. A database whose version is newer than the last migration is refused.
/// Shared by every SQLite database of a node (management store, media index).
pub fn apply(
    conn: &mut Connection,
    label: &str,
    migrations: &[Migration],
    now_ms: i64,
) -> Result<(), Error> {
    use base::ErrorKind::Internal;
    let newest = migrations.last().map_or(0, |m| m.version);
    conn.execute(CREATE_VERSION_TABLE, [])
        .err_kind(Internal, format_args!("{label}: creating schema_version"))?;
    for m in migrations {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .err_kind(Internal, format_args!("{label}: starting migration"))?;
        let current = current_version(&tx)
            .err_kind(Internal, format_args!("{label}: reading schema_version"))?;
        if current > newest {
            bail!(
                FailedPrecondition,
                "{label}: database schema version {current} is newer than this binary supports \
                 ({newest}); refusing to open it"
            );
        }
        if current >= m.version {
            continue; // the transaction rolls back on drop; it changed nothing
        }
        tx.execute_batch(m.sql).err_kind(
            Internal,
            format_args!(
                "{label}: applying migration {} ({})",
                m.version, m.description
            ),
        )?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at_ms, description) VALUES (?1, ?2, ?3)",
            params![m.version, now_ms, m.description],
        )
        .err_kind(
            Internal,
            format_args!("{label}: recording migration {}", m.version),
        )?;
        tx.commit().err_kind(
            Internal,
            format_args!("{label}: committing migration {}", m.version),
        )?;
        tracing::info!(db = %label, version = m.version, "applied schema migration: {}", m.description);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_3_keeps_the_audit_rows_and_accepts_lock_actions() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn, "test", &MIGRATIONS[..2], 1).unwrap();
        conn.execute(
            "INSERT INTO audit_event (at_ms, action, reservation_id, user_id, camera_id) \
             VALUES (5, 'reserve', 'r-1', 'u', 'cam')",
            [],
        )
        .unwrap();
        let refused = conn.execute(
            "INSERT INTO audit_event (at_ms, action, user_id, camera_id) VALUES (6, 'lock', 'u', 'c')",
            [],
        );
        assert!(refused.is_err(), "version 2 refuses the new action");
        apply(&mut conn, "test", MIGRATIONS, 2).unwrap();
        assert_eq!(current_version(&conn).unwrap(), SCHEMA_VERSION);
        conn.execute(
            "INSERT INTO audit_event (at_ms, action, user_id, camera_id) VALUES (6, 'lock', 'u', 'c')",
            [],
        )
        .unwrap();
        let rows: Vec<(i64, String)> = conn
            .prepare("SELECT seq, action FROM audit_event ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![(1, "reserve".to_owned()), (2, "lock".to_owned())]
        );
    }
}

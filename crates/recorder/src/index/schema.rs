//! The media index's schema (design 0006, "Index schema").

use store::schema::Migration;

/// The media index's schema, applied by the store's migration runner. Append only: never edit
/// a migration that has shipped.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "segments, key frames, evidence locks",
        sql: r#"
CREATE TABLE segment (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    camera_id      TEXT    NOT NULL,
    run_id         INTEGER NOT NULL,
    start_90k      INTEGER NOT NULL,
    end_90k        INTEGER NOT NULL,
    start_wall_ms  INTEGER NOT NULL,
    end_wall_ms    INTEGER NOT NULL,
    bytes          INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    path           TEXT    NOT NULL UNIQUE,
    codec          TEXT    NOT NULL,
    params_version INTEGER NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('writing', 'complete', 'deleting')),
    CHECK (end_90k >= start_90k),
    CHECK (end_wall_ms >= start_wall_ms)
);
CREATE INDEX segment_camera_start ON segment (camera_id, start_wall_ms);
CREATE INDEX segment_start        ON segment (start_wall_ms);
CREATE INDEX segment_unfinished   ON segment (state) WHERE state <> 'complete';
CREATE TABLE keyframe (
    segment_id  INTEGER NOT NULL REFERENCES segment (id) ON DELETE CASCADE,
    time_90k    INTEGER NOT NULL,
    byte_offset INTEGER NOT NULL CHECK (byte_offset >= 0),
    PRIMARY KEY (segment_id, time_90k)
) WITHOUT ROWID;
CREATE TABLE evidence_lock (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    camera_id     TEXT    NOT NULL,
    start_ms      INTEGER NOT NULL,
    end_ms        INTEGER NOT NULL,
    reason        TEXT    NOT NULL,
    expires_at_ms INTEGER,
    created_at_ms INTEGER NOT NULL,
    CHECK (end_ms > start_ms)
);
CREATE INDEX evidence_lock_camera ON evidence_lock (camera_id, start_ms);
"#,
    },
    Migration {
        version: 2,
        description: "per-camera usage kept by triggers; codec string and size per segment; \
                  recording settings set through the API",
        sql: r#"
CREATE TABLE camera_usage (
    camera_id TEXT    PRIMARY KEY,
    segments  INTEGER NOT NULL,
    bytes     INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO camera_usage SELECT camera_id, COUNT(*), SUM(bytes) FROM segment GROUP BY camera_id;
CREATE TRIGGER segment_usage_insert AFTER INSERT ON segment BEGIN
    INSERT INTO camera_usage VALUES (NEW.camera_id, 1, NEW.bytes)
        ON CONFLICT (camera_id) DO UPDATE SET segments = segments + 1, bytes = bytes + NEW.bytes;
END;
CREATE TRIGGER segment_usage_delete AFTER DELETE ON segment BEGIN
    UPDATE camera_usage SET segments = segments - 1, bytes = bytes - OLD.bytes
        WHERE camera_id = OLD.camera_id;
END;
CREATE TRIGGER segment_usage_bytes AFTER UPDATE OF bytes ON segment BEGIN
    UPDATE camera_usage SET bytes = bytes - OLD.bytes + NEW.bytes WHERE camera_id = NEW.camera_id;
END;
ALTER TABLE segment ADD COLUMN codec_string TEXT    NOT NULL DEFAULT '';
ALTER TABLE segment ADD COLUMN width        INTEGER NOT NULL DEFAULT 0;
ALTER TABLE segment ADD COLUMN height       INTEGER NOT NULL DEFAULT 0;
CREATE TABLE recording_setting (
    camera_id      TEXT    PRIMARY KEY,
    mode           TEXT    NOT NULL CHECK (mode IN ('continuous', 'off')),
    retention_days INTEGER CHECK (retention_days IS NULL OR retention_days >= 0),
    updated_at_ms  INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    },
];

/// No segment is longer than this (they are at most 60 s; recovery refuses longer files), which
/// lets time-range queries use the `(camera_id, start_wall_ms)` index from both ends.
pub const MAX_SEGMENT_MS: i64 = 3_600_000;

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

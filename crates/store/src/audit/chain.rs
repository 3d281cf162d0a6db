//! The audit hash chain (design 0009, "Audit hash chain").
//!
//! Every row of `audit_event` carries `hash = SHA-256(DOMAIN || previous hash || encoding of the
//! row)`, where the previous hash is the hash of the row with the next lower `seq`, or for the
//! first row the retention anchor's hash (all zeros when retention has deleted nothing). Rows are
//! numbered without gaps: the writer assigns `seq` itself (one more than the last seq SQLite's
//! `sqlite_sequence` has issued), so a missing number is a deleted row.
//!
//! The encoding is fixed: `seq` and `at_ms` as 8-byte big-endian integers, then each text column
//! in the order of [`TEXT_COLUMNS`] as `0x00` for NULL or `0x01`, a 4-byte big-endian length and the
//! UTF-8 bytes.
//!
//! Rows written before the chain existed (seq up to `audit_chain.legacy_until_seq`) are hashed
//! once, on the first open by a binary that has the chain, starting from the all-zero hash:
//! their integrity before that moment is not known.
//!
//! The chain has no key: it detects rows deleted, edited or inserted directly in SQLite by
//! someone who does not also recompute every later hash (and the anchor). Rows deleted at the
//! end are detected only through `sqlite_sequence` (the highest seq ever issued).

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use sha2::{Digest, Sha256};
use std::fmt;

/// What the first row chains from when nothing was deleted by retention.
pub const ZERO_HASH: [u8; 32] = [0; 32];
const DOMAIN: &[u8] = b"vantage-audit-chain/1\0";

/// The text columns of `audit_event`, in the order they are hashed (and inserted).
pub(crate) const TEXT_COLUMNS: [&str; 11] = [
    "action",
    "reservation_id",
    "user_id",
    "camera_id",
    "agency",
    "quality",
    "reason",
    "detail",
    "role",
    "source_ip",
    "user_agent",
];

/// The hashed fields of one row, as stored: `seq`, `at_ms` and the [`TEXT_COLUMNS`] (`camera_id`
/// NULL for events about no camera).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fields<'a> {
    pub seq: i64,
    pub at_ms: i64,
    pub texts: [Option<&'a str>; TEXT_COLUMNS.len()],
}

impl Fields<'_> {
    /// This row's hash, chained from `prev`.
    pub fn hash(&self, prev: &[u8; 32]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(DOMAIN);
        h.update(prev);
        h.update(self.seq.to_be_bytes());
        h.update(self.at_ms.to_be_bytes());
        for t in self.texts {
            match t {
                None => h.update([0u8]),
                Some(s) => {
                    h.update([1u8]);
                    h.update(u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
                    h.update(s.as_bytes());
                }
            }
        }
        h.finalize().into()
    }
}

/// A row read back for hashing or verification.
struct Stored {
    seq: i64,
    at_ms: i64,
    texts: [Option<String>; TEXT_COLUMNS.len()],
    hash: Option<Vec<u8>>,
}

/// Every column of `audit_event`, in hashing order with `hash` last.
pub(crate) const STORED_COLUMNS: &str = "seq, at_ms, action, reservation_id, user_id, camera_id, agency, \
    quality, reason, detail, role, source_ip, user_agent, hash";

impl Stored {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Stored> {
        let mut texts: [Option<String>; TEXT_COLUMNS.len()] = Default::default();
        for (i, t) in texts.iter_mut().enumerate() {
            *t = r.get(i + 2)?;
        }
        Ok(Stored {
            seq: r.get(0)?,
            at_ms: r.get(1)?,
            texts,
            hash: r.get(13)?,
        })
    }

    fn fields(&self) -> Fields<'_> {
        Fields {
            seq: self.seq,
            at_ms: self.at_ms,
            texts: self.texts.each_ref().map(|t| t.as_deref()),
        }
    }

    fn hash_array(&self) -> Option<[u8; 32]> {
        self.hash.as_deref().and_then(|h| h.try_into().ok())
    }
}

/// `audit_chain`'s row: rows up to `legacy_until_seq` predate the chain; `anchor_*` is the last
/// row deleted by retention.
struct ChainMeta {
    legacy_until_seq: i64,
    anchor_seq: i64,
    anchor_hash: [u8; 32],
}

fn meta(conn: &Connection) -> rusqlite::Result<ChainMeta> {
    conn.query_row(
        "SELECT legacy_until_seq, anchor_seq, anchor_hash FROM audit_chain WHERE id = 1",
        [],
        |r| {
            let h: Vec<u8> = r.get(2)?;
            Ok(ChainMeta {
                legacy_until_seq: r.get(0)?,
                anchor_seq: r.get(1)?,
                anchor_hash: h.try_into().unwrap_or(ZERO_HASH),
            })
        },
    )
}

/// The highest seq SQLite has issued for `audit_event` (0 when none).
fn last_issued(conn: &Connection) -> rusqlite::Result<i64> {
    Ok(conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'audit_event'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Where the writer goes on: the seq of the next row and the hash it chains from. Call inside
/// the writing transaction.
pub(crate) fn head(conn: &Connection) -> rusqlite::Result<(i64, [u8; 32])> {
    let m = meta(conn)?;
    let last: Option<(i64, Option<Vec<u8>>)> = conn
        .query_row(
            "SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (last_seq, prev) = match last {
        Some((seq, hash)) if seq > m.anchor_seq => (
            seq,
            hash.and_then(|h| h.try_into().ok()).unwrap_or(ZERO_HASH),
        ),
        _ => (m.anchor_seq, m.anchor_hash),
    };
    let next = last_seq.max(last_issued(conn)?).max(m.anchor_seq) + 1;
    Ok((next, prev))
}

/// Hashes the rows written before the chain existed that have no hash yet, in seq order from the
/// all-zero hash. Does nothing (one query) once done.
pub(crate) fn backfill_legacy(conn: &mut Connection) -> rusqlite::Result<()> {
    let pending: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM audit_event, audit_chain \
         WHERE hash IS NULL AND seq <= legacy_until_seq)",
        [],
        |r| r.get(0),
    )?;
    if !pending {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let m = meta(&tx)?;
    {
        let mut read = tx.prepare(&format!(
            "SELECT {STORED_COLUMNS} FROM audit_event WHERE seq <= ?1 ORDER BY seq"
        ))?;
        let mut write = tx.prepare("UPDATE audit_event SET hash = ?2 WHERE seq = ?1")?;
        let mut prev = ZERO_HASH;
        let rows = read.query_map(params![m.legacy_until_seq], Stored::from_row)?;
        for row in rows {
            let row = row?;
            prev = row.fields().hash(&prev);
            write.execute(params![row.seq, &prev[..]])?;
        }
    }
    tx.commit()
}

/// Deletes the oldest rows, in seq order, up to (not including) the first row at or after
/// `before_ms`, and records the last deleted row as the anchor. Returns how many were deleted.
pub(crate) fn delete_before(conn: &mut Connection, before_ms: i64) -> rusqlite::Result<u64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let keep_from: Option<i64> = tx.query_row(
        "SELECT MIN(seq) FROM audit_event WHERE at_ms >= ?1",
        params![before_ms],
        |r| r.get(0),
    )?;
    let keep_from = keep_from.unwrap_or(i64::MAX);
    let last: Option<(i64, Option<Vec<u8>>)> = tx
        .query_row(
            "SELECT seq, hash FROM audit_event WHERE seq < ?1 ORDER BY seq DESC LIMIT 1",
            params![keep_from],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((seq, hash)) = last else {
        return Ok(0);
    };
    let hash = hash.unwrap_or_else(|| ZERO_HASH.to_vec());
    tx.execute(
        "UPDATE audit_chain SET anchor_seq = ?1, anchor_hash = ?2 WHERE id = 1",
        params![seq, hash],
    )?;
    let n = tx.execute("DELETE FROM audit_event WHERE seq <= ?1", params![seq])?;
    tx.commit()?;
    Ok(n as u64)
}

/// How a row breaks the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breach {
    /// The row with this seq is missing (deleted): the seq numbers have a gap here, or rows at
    /// the end are gone.
    Deleted,
    /// The row's stored hash does not match its fields and the previous row's hash: it was
    /// edited (or rows before it were deleted and renumbered, or it was inserted with a made-up
    /// hash).
    Edited,
    /// The row has no valid hash: inserted outside the chain.
    Unchained,
}

/// The first row that breaks the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenRow {
    /// The row's `seq` (its id in the audit log).
    pub seq: i64,
    pub breach: Breach,
}

/// What [`crate::AuditLog::verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Rows checked (up to the first broken one).
    pub rows: u64,
    /// The first and last seq present.
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// The seq of the last row retention deleted (0: none); the chain starts from its hash.
    pub anchor_seq: i64,
    /// Rows up to this seq were written before the chain existed and hashed afterwards.
    pub legacy_until_seq: i64,
    /// `None` when the chain is intact.
    pub broken: Option<BrokenRow>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.broken.is_none()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.broken, self.first_seq, self.last_seq) {
            (None, Some(a), Some(b)) => {
                write!(f, "audit log intact: {} rows (seq {a} to {b})", self.rows)?
            }
            (None, _, _) => write!(f, "audit log intact: no rows")?,
            (Some(b), _, _) => {
                let what = match b.breach {
                    Breach::Deleted => "deleted (a gap in the sequence)",
                    Breach::Edited => {
                        "does not match the chain (edited, or rows before it removed and renumbered)"
                    }
                    Breach::Unchained => "has no valid hash (inserted outside the chain)",
                };
                write!(
                    f,
                    "audit log BROKEN at row {}: {what}; {} rows before it verified",
                    b.seq, self.rows
                )?;
            }
        }
        if self.anchor_seq > 0 {
            write!(
                f,
                "; chained from the retention anchor at seq {}",
                self.anchor_seq
            )?;
        }
        if self.legacy_until_seq > 0 {
            write!(
                f,
                "; rows up to seq {} predate the chain (hashed on upgrade)",
                self.legacy_until_seq
            )?;
        }
        Ok(())
    }
}

/// Walks the whole chain in seq order and reports the first broken row.
pub(crate) fn verify(conn: &Connection) -> rusqlite::Result<VerifyReport> {
    let m = meta(conn)?;
    let mut report = VerifyReport {
        rows: 0,
        first_seq: None,
        last_seq: None,
        anchor_seq: m.anchor_seq,
        legacy_until_seq: m.legacy_until_seq,
        broken: None,
    };
    let mut prev = m.anchor_hash;
    let mut expected = m.anchor_seq + 1;
    let mut stmt = conn.prepare(&format!(
        "SELECT {STORED_COLUMNS} FROM audit_event ORDER BY seq"
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let row = match Stored::from_row(r) {
            Ok(row) => row,
            Err(_) => {
                // A value of the wrong type (written directly): the row was tampered with.
                let seq: i64 = r.get(0)?;
                report.broken = Some(BrokenRow {
                    seq,
                    breach: Breach::Edited,
                });
                return Ok(report);
            }
        };
        report.first_seq.get_or_insert(row.seq);
        let breach = if row.seq > expected {
            Some(BrokenRow {
                seq: expected,
                breach: Breach::Deleted,
            })
        } else if row.seq < expected {
            // Below the retention anchor: nothing may be there.
            Some(BrokenRow {
                seq: row.seq,
                breach: Breach::Unchained,
            })
        } else {
            match row.hash_array() {
                None => Some(BrokenRow {
                    seq: row.seq,
                    breach: Breach::Unchained,
                }),
                Some(stored) => {
                    let want = row.fields().hash(&prev);
                    if want != stored {
                        Some(BrokenRow {
                            seq: row.seq,
                            breach: Breach::Edited,
                        })
                    } else {
                        prev = stored;
                        None
                    }
                }
            }
        };
        if breach.is_some() {
            report.broken = breach;
            return Ok(report);
        }
        report.rows += 1;
        report.last_seq = Some(row.seq);
        expected = row.seq + 1;
    }
    if last_issued(conn)? >= expected {
        report.broken = Some(BrokenRow {
            seq: expected,
            breach: Breach::Deleted,
        });
    }
    Ok(report)
}

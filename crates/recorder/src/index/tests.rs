//! Tests of the media index.

use super::*;
use crate::testutil::TempDir;

const NOW: i64 = 1_700_000_000_000;

/// A temporary directory removed on drop (no tempfile dependency).
fn new_seg(cam: &str, start_ms: i64, path: &str) -> NewSegment {
    NewSegment {
        camera_id: cam.to_owned(),
        run_id: 7,
        start_90k: start_ms * 90,
        start_wall_ms: start_ms,
        path: path.to_owned(),
        codec: "h264".to_owned(),
        params_version: 1,
        codec_string: "avc1.64001e".to_owned(),
        width: 640,
        height: 360,
    }
}

/// Inserts and completes a 60 s segment.
fn seg(ix: &Index, cam: &str, start_ms: i64, bytes: u64) -> i64 {
    let id = ix
        .begin_segment(&new_seg(cam, start_ms, &format!("{cam}/{start_ms}.mp4")))
        .unwrap();
    ix.complete_segment(id, (start_ms + 60_000) * 90, start_ms + 60_000, bytes)
        .unwrap();
    id
}

/// A reader answers from its own read-only connection while the writer connection holds an
/// open write transaction (and its mutex): it sees the last commit, not the transaction.
#[test]
fn readers_are_not_blocked_by_a_write_transaction() {
    let dir = TempDir::new("reader");
    let ix = std::sync::Arc::new(Index::open(&dir.0.join("index.db"), NOW).unwrap());
    let committed = seg(&ix, "cam-1", NOW, 1000);
    ix.create_lock(
        &NewLock {
            camera_id: "cam-1".into(),
            start_ms: NOW,
            end_ms: NOW + 1000,
            reason: "case 1".into(),
            expires_at_ms: None,
        },
        NOW,
    )
    .unwrap();
    let reader = ix.reader();

    // The writer: a long write transaction with an uncommitted segment, holding the mutex
    // every writer goes through.
    let writer = ix.conn.lock();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    writer
        .execute(
            "INSERT INTO segment (camera_id, run_id, start_90k, end_90k, start_wall_ms, \
             end_wall_ms, bytes, path, codec, params_version, state, codec_string, width, \
             height) VALUES ('cam-1', 1, 0, 0, ?1, ?1, 5, 'uncommitted.mp4', 'h264', 1, \
             'complete', '', 0, 0)",
            [NOW + 60_000],
        )
        .unwrap();

    // Readers on other threads (as spawn_blocking runs them) get their answers meanwhile.
    // The timeout only keeps a regression from hanging the suite.
    let (tx, rx) = std::sync::mpsc::channel();
    for _ in 0..3 {
        let (reader, tx) = (reader.clone(), tx.clone());
        std::thread::spawn(move || {
            let segs = reader.segments("cam-1", NOW - 1, NOW + 3_600_000);
            let usage = reader.camera_usage();
            let locks = reader.locks(Some("cam-1"));
            let _ = tx.send((segs, usage, locks));
        });
    }
    for _ in 0..3 {
        let (segs, usage, locks) = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("a reader blocked behind the writer's transaction");
        let ids: Vec<i64> = segs.unwrap().iter().map(|s| s.id).collect();
        assert_eq!(
            ids,
            [committed],
            "the last commit, not the open transaction"
        );
        assert_eq!(usage.unwrap()[0].bytes, 1000);
        assert_eq!(locks.unwrap().len(), 1);
    }
    writer.execute_batch("COMMIT").unwrap();
    drop(writer);
    let segs = reader.segments("cam-1", NOW - 1, NOW + 3_600_000).unwrap();
    assert_eq!(segs.len(), 2, "committed now");
    // The read connections are read-only.
    let e = ix
        .read(|c| {
            c.execute("DELETE FROM segment", [])
                .err_kind(ErrorKind::Internal, "delete")
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Internal);
    assert_eq!(reader.segments("cam-1", NOW - 1, NOW + 1).unwrap().len(), 1);
}

#[test]
fn range_queries_are_bounded_with_the_field_named() {
    let ix = std::sync::Arc::new(Index::open_in_memory(NOW).unwrap());
    let reader = ix.reader();
    for (start, end, field) in [
        (NOW, NOW, "end"),
        (NOW, NOW - 1, "end"),
        (NOW, NOW + MAX_QUERY_SPAN_MS + 1, "start"),
        (i64::MIN, i64::MAX, "start"),
    ] {
        let e = reader.segments("cam-1", start, end).unwrap_err();
        assert_eq!(e.field, Some(field), "{start}..{end}: {e}");
        assert_eq!(e.error.kind(), ErrorKind::InvalidArgument);
    }
    assert!(
        reader
            .segments("cam-1", NOW, NOW + MAX_QUERY_SPAN_MS)
            .unwrap()
            .is_empty()
    );

    // More segments in range than a query may return: refused, not truncated. (Rows of
    // 1 ms so that they fit one range; the bound is the same whatever their length.)
    {
        let mut conn = ix.conn.lock();
        let tx = conn.transaction().unwrap();
        for i in 0..=MAX_QUERY_SEGMENTS as i64 {
            tx.execute(
                "INSERT INTO segment (camera_id, run_id, start_90k, end_90k, start_wall_ms, \
                 end_wall_ms, bytes, path, codec, params_version, state, codec_string, \
                 width, height) VALUES ('cam-1', 1, ?1 * 90, ?1 * 90 + 90, ?1, ?1 + 1, 10, \
                 'p' || ?1, 'h264', 1, 'complete', '', 0, 0)",
                [NOW + i],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let n = MAX_QUERY_SEGMENTS as i64;
    let e = reader.segments("cam-1", NOW, NOW + n + 1).unwrap_err();
    assert_eq!(
        (e.field, e.error.kind()),
        (Some("start"), ErrorKind::InvalidArgument)
    );
    assert_eq!(
        reader.segments("cam-1", NOW, NOW + n).unwrap().len(),
        MAX_QUERY_SEGMENTS
    );
    // Totals have no row bound: one aggregate row.
    assert_eq!(
        reader.range_totals("cam-1", NOW, NOW + n + 1).unwrap(),
        RangeTotals {
            segments: n as u64 + 1,
            bytes: 10 * (n as u64 + 1)
        }
    );
    // The unbounded maintenance query still sees them all.
    assert_eq!(
        ix.segments("cam-1", 0, i64::MAX).unwrap().len(),
        MAX_QUERY_SEGMENTS + 1
    );
}

#[test]
fn segment_lifecycle_persists_across_reopen() {
    let dir = TempDir::new("lifecycle");
    let path = dir.0.join("index.db");
    let id;
    {
        let ix = Index::open(&path, NOW).unwrap();
        id = ix
            .begin_segment(&new_seg("cam-1", NOW, "cam-1/a.mp4"))
            .unwrap();
        let s = ix.segment(id).unwrap().unwrap();
        assert_eq!(s.state, SegmentState::Writing);
        assert_eq!((s.end_90k, s.end_wall_ms, s.bytes), (NOW * 90, NOW, 0));
        ix.add_keyframes(
            id,
            &[
                Keyframe {
                    time_90k: NOW * 90,
                    byte_offset: 0,
                },
                Keyframe {
                    time_90k: NOW * 90 + 180_000,
                    byte_offset: 500_000,
                },
            ],
        )
        .unwrap();
        ix.complete_segment(id, NOW * 90 + 5_400_000, NOW + 60_000, 1_000_000)
            .unwrap();
    }
    // Reopen: migration is a no-op, data is there.
    let ix = Index::open(&path, NOW + 1).unwrap();
    let s = ix.segment(id).unwrap().unwrap();
    assert_eq!(s.state, SegmentState::Complete);
    assert_eq!(s.bytes, 1_000_000);
    assert_eq!(s.end_wall_ms, NOW + 60_000);
    assert_eq!(s.path, "cam-1/a.mp4");
    assert_eq!(ix.keyframes(id).unwrap().len(), 2);
    assert_eq!(ix.keyframes(id).unwrap()[1].byte_offset, 500_000);
    // A complete segment takes no more key frames and cannot be completed twice.
    let e = ix.add_keyframes(id, &[]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
    let e = ix.complete_segment(id, 0, 0, 0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
    assert_eq!(
        ix.complete_segment(999, 0, 0, 0).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn rejects_bad_input() {
    let ix = Index::open_in_memory(NOW).unwrap();
    let id = ix.begin_segment(&new_seg("c", NOW, "c/1.mp4")).unwrap();
    let e = ix.begin_segment(&new_seg("c", NOW, "c/1.mp4")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    let e = ix.complete_segment(id, NOW * 90 - 1, NOW, 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let e = ix
        .complete_segment(id, NOW * 90, NOW, u64::MAX)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let lock = NewLock {
        camera_id: "c".into(),
        start_ms: 5,
        end_ms: 5,
        reason: "x".into(),
        expires_at_ms: None,
    };
    assert_eq!(
        ix.create_lock(&lock, NOW).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn query_by_camera_and_time_range_is_half_open() {
    let ix = Index::open_in_memory(NOW).unwrap();
    let a1 = seg(&ix, "a", NOW, 10);
    let a2 = seg(&ix, "a", NOW + 60_000, 10);
    let a3 = seg(&ix, "a", NOW + 120_000, 10);
    let _b = seg(&ix, "b", NOW + 60_000, 10);
    let q = |s, e| -> Vec<i64> {
        ix.segments("a", s, e)
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect()
    };
    assert_eq!(q(NOW, NOW + 180_000), vec![a1, a2, a3]);
    assert_eq!(q(NOW + 60_000, NOW + 120_000), vec![a2]);
    assert_eq!(q(NOW + 59_999, NOW + 60_001), vec![a1, a2]);
    assert_eq!(q(NOW + 180_000, NOW + 240_000), Vec::<i64>::new());
    // An open (writing) segment has no end yet: it overlaps every range after its start.
    let w = ix
        .begin_segment(&new_seg("a", NOW + 180_000, "a/w.mp4"))
        .unwrap();
    assert_eq!(q(NOW + 170_000, NOW + 240_000), vec![a3, w]);
    assert_eq!(q(NOW + 200_000, NOW + 240_000), vec![w]);
    assert_eq!(q(NOW + 120_000, NOW + 180_000), vec![a3]);
    // Deleting segments are hidden from queries.
    assert_eq!(ix.mark_deleting(&[a2, w]).unwrap(), 1);
    assert_eq!(q(NOW, NOW + 180_000), vec![a1, a3]);
}

#[test]
fn usage_retention_candidates_and_delete() {
    let ix = Index::open_in_memory(NOW).unwrap();
    let a1 = seg(&ix, "a", NOW, 100);
    let a2 = seg(&ix, "a", NOW + 60_000, 200);
    let b1 = seg(&ix, "b", NOW + 30_000, 50);
    ix.add_keyframes(
        ix.begin_segment(&new_seg("b", NOW + 90_000, "b/w.mp4"))
            .unwrap(),
        &[Keyframe {
            time_90k: (NOW + 90_000) * 90,
            byte_offset: 0,
        }],
    )
    .unwrap();
    let u = ix.camera_usage().unwrap();
    assert_eq!(
        u,
        vec![
            CameraUsage {
                camera_id: "a".into(),
                segments: 2,
                bytes: 300,
                oldest_wall_ms: NOW,
                newest_wall_ms: NOW + 120_000
            },
            CameraUsage {
                camera_id: "b".into(),
                segments: 2,
                bytes: 50,
                oldest_wall_ms: NOW + 30_000,
                newest_wall_ms: NOW + 90_000
            },
        ]
    );
    assert_eq!(ix.total_bytes().unwrap(), 350);
    let c: Vec<i64> = ix
        .retention_candidates()
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(c, vec![a1, b1, a2]);
    // Crash-safe delete: mark, (unlink), delete.
    assert_eq!(ix.mark_deleting(&[a1]).unwrap(), 1);
    let d = ix.segments_in_state(SegmentState::Deleting).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].id, a1);
    assert_eq!(
        ix.segments_in_state(SegmentState::Writing).unwrap().len(),
        1
    );
    assert!(ix.delete_segment(a1).unwrap());
    assert!(!ix.delete_segment(a1).unwrap());
    assert_eq!(ix.total_bytes().unwrap(), 250);
}

#[test]
fn deleting_a_segment_deletes_its_keyframes() {
    let ix = Index::open_in_memory(NOW).unwrap();
    let id = ix.begin_segment(&new_seg("a", NOW, "a/1.mp4")).unwrap();
    ix.add_keyframes(
        id,
        &[Keyframe {
            time_90k: NOW * 90,
            byte_offset: 0,
        }],
    )
    .unwrap();
    assert!(ix.delete_segment(id).unwrap());
    let n: i64 = ix
        .conn
        .lock()
        .query_row("SELECT COUNT(*) FROM keyframe", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn evidence_locks_create_list_delete_and_feed_retention() {
    let dir = TempDir::new("locks");
    let ix = Index::open(&dir.0.join("index.db"), NOW).unwrap();
    let l1 = ix
        .create_lock(
            &NewLock {
                camera_id: "a".into(),
                start_ms: NOW,
                end_ms: NOW + 90_000,
                reason: "incident 42".into(),
                expires_at_ms: Some(NOW + 600_000),
            },
            NOW - 5,
        )
        .unwrap();
    let l2 = ix
        .create_lock(
            &NewLock {
                camera_id: "b".into(),
                start_ms: NOW,
                end_ms: NOW + 1,
                reason: "court order".into(),
                expires_at_ms: None,
            },
            NOW - 4,
        )
        .unwrap();
    let all = ix.locks(None).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].id, l1);
    assert_eq!(all[0].reason, "incident 42");
    assert_eq!(all[0].created_at_ms, NOW - 5);
    assert_eq!(ix.locks(Some("b")).unwrap()[0].id, l2);
    assert_eq!(ix.active_lock_ranges(NOW).unwrap().len(), 2);
    assert_eq!(ix.active_lock_ranges(NOW + 600_000).unwrap().len(), 1);

    // With the index's data, retention keeps the locked segments.
    let a1 = seg(&ix, "a", NOW - 60_000, 10); // ends exactly at the lock's start: free
    let _a2 = seg(&ix, "a", NOW + 60_000, 10); // overlaps the lock
    let policy = crate::retention::Policy {
        default_retention_days: Some(0),
        max_usage_bytes: u64::MAX / 2,
        ..Default::default()
    };
    let now = NOW + 200_000;
    let plan = crate::retention::plan(
        now,
        &ix.retention_candidates().unwrap(),
        &ix.active_lock_ranges(now).unwrap(),
        &policy,
        crate::retention::Usage {
            used_bytes: 20,
            free_bytes: 1 << 40,
        },
    );
    let ids: Vec<i64> = plan.deletions.iter().map(|d| d.id).collect();
    assert_eq!(ids, vec![a1]);

    assert!(ix.delete_lock(l1).unwrap());
    assert!(!ix.delete_lock(l1).unwrap());
    assert_eq!(ix.locks(None).unwrap().len(), 1);
}

#[test]
fn refuses_a_newer_schema() {
    let dir = TempDir::new("newer");
    let path = dir.0.join("index.db");
    drop(Index::open(&path, NOW).unwrap());
    let c = Connection::open(&path).unwrap();
    c.execute(
        "INSERT INTO schema_version (version, applied_at_ms, description) VALUES (99, 0, 'x')",
        [],
    )
    .unwrap();
    drop(c);
    let e = Index::open(&path, NOW).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
}

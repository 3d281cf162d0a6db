//! Audit log: concurrent recording, filters, persistence, awkward strings, limits, throughput.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use store::{AuditAction, AuditEvent, AuditFilter, AuditLog, MAX_QUERY_LIMIT};

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let p = std::env::temp_dir().join(format!(
            "vantage-store-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn t(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms)
}

fn event(i: u64, thread: u64) -> AuditEvent {
    let action = AuditAction::ALL[(i % 6) as usize];
    AuditEvent {
        reservation_id: (action != AuditAction::Deny).then(|| format!("r-{thread}-{i}").into()),
        agency: Some(["METRO", "BUS", "DUBAI_POLICE"][(i % 3) as usize].to_owned()),
        quality: Some("high".to_owned()),
        reason: matches!(action, AuditAction::Release | AuditAction::Expire)
            .then(|| "expired".to_owned()),
        detail: (action == AuditAction::Deny)
            .then(|| "AGENCY_LIMIT_REACHED METRO 30/30".to_owned()),
        ..AuditEvent::new(
            t(i),
            action,
            format!("user-{thread}"),
            format!("cam-{:03}", i % 10),
        )
    }
}

fn filter() -> AuditFilter {
    AuditFilter {
        limit: MAX_QUERY_LIMIT,
        ..Default::default()
    }
}

fn is_newest_first(recs: &[store::AuditRecord]) -> bool {
    recs.windows(2)
        .all(|w| (w[0].event.at, w[0].seq) > (w[1].event.at, w[1].seq))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_from_threads_and_queries_with_filters() {
    let log = AuditLog::open_in_memory().expect("open");
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 2_500;
    let handles: Vec<_> = (0..THREADS)
        .map(|th| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    log.record(event(i, th));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("recording thread");
    }
    log.flush().await;
    assert_eq!(log.written(), THREADS * PER_THREAD);
    assert_eq!(log.dropped(), 0);

    // Everything, capped at MAX_QUERY_LIMIT = 10,000 which is exactly all of it.
    let all = log.query(filter()).await.expect("query all");
    assert_eq!(all.len(), 10_000);
    assert!(is_newest_first(&all));
    assert_eq!(all[0].event.at, t(PER_THREAD - 1));
    // The stored event equals the recorded one (times here are whole milliseconds).
    let r = &all[0];
    let th: u64 = r.event.user_id["user-".len()..].parse().expect("user id");
    assert_eq!(r.event, event(PER_THREAD - 1, th));

    // By camera: 1 in 10.
    let cam = log
        .query(AuditFilter {
            camera_id: Some("cam-003".into()),
            ..filter()
        })
        .await
        .expect("by camera");
    assert_eq!(cam.len(), 1_000);
    assert!(cam.iter().all(|r| r.event.camera_id == "cam-003"));
    assert!(is_newest_first(&cam));

    // By user: one thread's events.
    let user = log
        .query(AuditFilter {
            user_id: Some("user-2".into()),
            ..filter()
        })
        .await
        .expect("by user");
    assert_eq!(user.len(), PER_THREAD as usize);
    assert!(user.iter().all(|r| r.event.user_id == "user-2"));

    // By user and camera.
    let both = log
        .query(AuditFilter {
            user_id: Some("user-1".into()),
            camera_id: Some("cam-007".into()),
            ..filter()
        })
        .await
        .expect("by user and camera");
    assert_eq!(both.len(), 250);

    // since inclusive, until exclusive: i in [100, 200) from every thread.
    let window = log
        .query(AuditFilter {
            since: Some(t(100)),
            until: Some(t(200)),
            ..filter()
        })
        .await
        .expect("window");
    assert_eq!(window.len(), 100 * THREADS as usize);
    assert!(
        window
            .iter()
            .all(|r| r.event.at >= t(100) && r.event.at < t(200))
    );
    assert!(is_newest_first(&window));
    assert_eq!(window[0].event.at, t(199));
    assert_eq!(window[window.len() - 1].event.at, t(100));

    // since after until: nothing.
    let empty = log
        .query(AuditFilter {
            since: Some(t(300)),
            until: Some(t(200)),
            ..filter()
        })
        .await
        .expect("inverted window");
    assert!(empty.is_empty());

    // Limit keeps the newest.
    let top = log
        .query(AuditFilter {
            limit: 7,
            ..Default::default()
        })
        .await
        .expect("limit");
    assert_eq!(top.len(), 7);
    assert_eq!(top[..], all[..7]);

    // By reservation and by action.
    let res = log
        .query(AuditFilter {
            reservation_id: Some("r-3-42".into()),
            ..filter()
        })
        .await
        .expect("by reservation");
    assert_eq!(res.len(), 1);
    assert_eq!(res[0].event, event(42, 3));
    let denies = log
        .query(AuditFilter {
            action: Some(AuditAction::Deny),
            ..filter()
        })
        .await
        .expect("by action");
    assert!(!denies.is_empty());
    assert!(denies.iter().all(|r| r.event.action == AuditAction::Deny
        && r.event.reservation_id.is_none()
        && r.event.detail.as_deref() == Some("AGENCY_LIMIT_REACHED METRO 30/30")));
}

#[tokio::test]
async fn persists_across_reopen() {
    let dir = TempDir::new("reopen");
    let path = dir.path().join("nested/dirs/vantage.db");
    {
        let log = AuditLog::open(&path).expect("open");
        for i in 0..500 {
            log.record(event(i, 0));
        }
        log.flush().await;
        assert_eq!(log.written(), 500);
    }
    {
        // Dropping without flush must still commit what was queued.
        let log = AuditLog::open(&path).expect("reopen");
        for i in 500..1_000 {
            log.record(event(i, 1));
        }
    }
    let log = AuditLog::open(&path).expect("reopen again");
    let all = log.query(filter()).await.expect("query");
    assert_eq!(all.len(), 1_000);
    assert!(is_newest_first(&all));
    assert_eq!(all[0].event, event(999, 1));
    assert_eq!(all[999].event, event(0, 0));
    // seq is assigned in commit order and unique.
    let mut seqs: Vec<i64> = all.iter().map(|r| r.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 1_000);

    // The schema was applied once and the file is in WAL mode.
    drop(log);
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM schema_version")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("versions");
    // Every migration applied exactly once, in order.
    assert_eq!(versions, (1..=store::SCHEMA_VERSION).collect::<Vec<i64>>());
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn refuses_a_newer_schema() {
    let dir = TempDir::new("newer");
    let path = dir.path().join("vantage.db");
    drop(AuditLog::open(&path).expect("open"));
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    conn.execute(
        "INSERT INTO schema_version (version, applied_at_ms, description) VALUES (999, 0, 'future')",
        [],
    )
    .expect("insert");
    drop(conn);
    let e = AuditLog::open(&path).expect_err("newer schema must be refused");
    assert_eq!(e.kind(), base::ErrorKind::FailedPrecondition);
    assert!(e.message().contains(&path.display().to_string()), "{e}");
    assert!(e.message().contains("999"), "{e}");
}

#[tokio::test]
async fn open_errors_name_the_path() {
    let dir = TempDir::new("err");
    // A directory where the database file should be.
    let path = dir.path().join("is-a-dir");
    std::fs::create_dir_all(&path).expect("mkdir");
    let e = AuditLog::open(&path).expect_err("a directory is not a database");
    assert!(e.message().contains(&path.display().to_string()), "{e}");
}

#[tokio::test]
async fn query_limits_zero_and_huge() {
    let log = AuditLog::open_in_memory().expect("open");
    // Nothing recorded yet.
    assert!(log.query(filter()).await.expect("empty db").is_empty());
    for i in 0..10_050 {
        log.record(event(i, 0));
    }
    log.flush().await;
    let zero = log
        .query(AuditFilter {
            limit: 0,
            ..Default::default()
        })
        .await
        .expect("limit 0");
    assert!(zero.is_empty());
    for limit in [MAX_QUERY_LIMIT + 1, 1_000_000, u32::MAX] {
        let got = log
            .query(AuditFilter {
                limit,
                ..Default::default()
            })
            .await
            .expect("huge limit");
        assert_eq!(got.len(), MAX_QUERY_LIMIT as usize);
    }
    let dflt = log.query(AuditFilter::default()).await.expect("default");
    assert_eq!(dflt.len(), store::DEFAULT_QUERY_LIMIT as usize);
    // Extreme times: before the epoch, far future.
    let far = log
        .query(AuditFilter {
            since: Some(UNIX_EPOCH - Duration::from_secs(86_400 * 365 * 100)),
            until: Some(UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) * 1_000)),
            limit: 3,
            ..Default::default()
        })
        .await
        .expect("extreme times");
    assert_eq!(far.len(), 3);
    let old = AuditEvent::new(
        UNIX_EPOCH - Duration::from_millis(1_234),
        AuditAction::Expire,
        "u",
        "cam-old",
    );
    log.record(old.clone());
    log.flush().await;
    let got = log
        .query(AuditFilter {
            camera_id: Some("cam-old".into()),
            ..Default::default()
        })
        .await
        .expect("pre-epoch");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event, old);
}

#[tokio::test]
async fn awkward_strings_round_trip() {
    let log = AuditLog::open_in_memory().expect("open");
    let nasty = [
        "it's \"quoted\" `back` 'single'",
        "'; DROP TABLE audit_event; --",
        "Robert'); DELETE FROM audit_event WHERE ('1'='1",
        "كاميرا شارع الشيخ زايد",
        "nul\0inside\0",
        "\0",
        "",
        "% _ \\ ? ?1 :name @x $y",
        "emoji 🎥 and combining é",
    ];
    for (i, s) in nasty.iter().enumerate() {
        let ev = AuditEvent {
            reservation_id: Some(format!("{s}-r").into()),
            agency: Some((*s).to_owned()),
            quality: Some((*s).to_owned()),
            reason: Some((*s).to_owned()),
            detail: Some((*s).to_owned()),
            ..AuditEvent::new(t(i as u64), AuditAction::Reserve, *s, *s)
        };
        log.record(ev);
    }
    log.flush().await;
    assert_eq!(log.written(), nasty.len() as u64);
    for (i, s) in nasty.iter().enumerate() {
        for f in [
            AuditFilter {
                camera_id: Some((*s).to_owned()),
                ..filter()
            },
            AuditFilter {
                user_id: Some((*s).to_owned()),
                ..filter()
            },
            AuditFilter {
                reservation_id: Some(format!("{s}-r")),
                ..filter()
            },
        ] {
            let got = log.query(f).await.expect("query");
            assert_eq!(got.len(), 1, "{s:?}");
            let e = &got[0].event;
            assert_eq!(e.at, t(i as u64));
            assert_eq!(e.camera_id, *s);
            assert_eq!(e.user_id, *s);
            assert_eq!(e.agency.as_deref(), Some(*s));
            assert_eq!(e.detail.as_deref(), Some(*s));
        }
    }
    // A prefix of a NUL-containing string is a different string.
    let got = log
        .query(AuditFilter {
            camera_id: Some("nul".into()),
            ..filter()
        })
        .await
        .expect("query");
    assert!(got.is_empty());
    assert_eq!(log.query(filter()).await.expect("all").len(), nasty.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_keeps_up_with_100k_events() {
    let dir = TempDir::new("throughput");
    let log = AuditLog::open(&dir.path().join("vantage.db")).expect("open");
    const N: u64 = 100_000;

    // 1. 100,000 events in one tight loop (far faster than any real load: the queue of 65,536 may
    //    overflow, and whatever does is counted, not lost silently).
    let start = Instant::now();
    for i in 0..N {
        log.record(event(i, i % 8));
    }
    let recorded = start.elapsed();
    log.flush().await;
    let flushed = start.elapsed();
    println!(
        "tight loop: 100,000 record() calls took {recorded:?} ({:.0} ns each); all committed after \
         {flushed:?} ({:.0} events/s); written {}, dropped {}",
        recorded.as_nanos() as f64 / N as f64,
        log.written() as f64 / flushed.as_secs_f64(),
        log.written(),
        log.dropped()
    );
    assert_eq!(log.written() + log.dropped(), N);
    assert_eq!(log.failed(), 0);

    // 2. 100,000 more in bursts of 10,000 (below the queue capacity) with a flush after each:
    //    nothing can be dropped, and the time is the writer's sustained rate.
    let (written0, dropped0) = (log.written(), log.dropped());
    let start = Instant::now();
    for burst in 0..10 {
        for i in 0..10_000 {
            log.record(event(N + burst * 10_000 + i, i % 8));
        }
        log.flush().await;
    }
    let elapsed = start.elapsed();
    println!(
        "bursts of 10,000 with flush: 100,000 events committed in {elapsed:?} ({:.0} events/s)",
        N as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(log.dropped(), dropped0);
    assert_eq!(log.written(), written0 + N);
    assert_eq!(log.failed(), 0);
    let newest = log.query(filter()).await.expect("query");
    assert_eq!(newest.len(), MAX_QUERY_LIMIT as usize);
    assert_eq!(newest[0].event.at, t(2 * N - 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_drops_and_counts() {
    // Hold the database's write lock from another connection so the writer stalls on its first
    // batch; a queue of 4 then fills and further events are dropped and counted, never blocking.
    let dir = TempDir::new("full");
    let path = dir.path().join("vantage.db");
    let log = AuditLog::open_with_capacity(&path, 4).expect("open");
    let mut blocker = rusqlite::Connection::open(&path).expect("raw open");
    let tx = blocker
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .expect("lock");
    let start = Instant::now();
    for i in 0..1_000 {
        log.record(event(i, 0));
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "record() must not block"
    );
    assert!(log.dropped() > 0, "dropped {}", log.dropped());
    tx.rollback().expect("unlock");
    log.flush().await;
    assert_eq!(log.written() + log.dropped(), 1_000);
    assert_eq!(log.failed(), 0);
    let n = log.query(filter()).await.expect("query").len() as u64;
    assert_eq!(n, log.written());
}

#[test]
fn works_without_a_tokio_runtime() {
    let log = AuditLog::open_in_memory().expect("open");
    log.record(AuditEvent::new(t(1), AuditAction::Heartbeat, "u", "c"));
    drop(log.clone());
    // query without a runtime runs inline; flush needs only a waker.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(log.flush());
    drop(rt);
    let got = futures_lite_block_on(log.query(filter())).expect("query");
    assert_eq!(got.len(), 1);
}

/// Polls a future to completion on this thread without tokio.
fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Thread(std::thread::Thread);
    impl Wake for Thread {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(std::sync::Arc::new(Thread(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

// --- The hash chain (issue 11: `vantage audit verify`) ---

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("raw open")
}

async fn log_with(path: &Path, n: u64) -> AuditLog {
    let log = AuditLog::open(path).expect("open");
    for i in 0..n {
        log.record(event(i, 0));
    }
    log.flush().await;
    log
}

fn verify(path: &Path) -> store::VerifyReport {
    AuditLog::verify(path).expect("verify")
}

fn broken(path: &Path) -> Option<(i64, store::Breach)> {
    verify(path).broken.map(|b| (b.seq, b.breach))
}

#[tokio::test]
async fn chain_detects_deleted_edited_and_inserted_rows() {
    use store::Breach;
    let dir = TempDir::new("chain");
    let path = dir.path().join("vantage.db");
    drop(log_with(&path, 300).await);
    let r = verify(&path);
    assert!(r.ok(), "{r}");
    assert_eq!((r.rows, r.first_seq, r.last_seq), (300, Some(1), Some(300)));
    assert!(
        r.to_string().starts_with("audit log intact: 300 rows"),
        "{r}"
    );

    // Edited: one field of row 120.
    let db = raw(&path);
    let old: String = db
        .query_row("SELECT user_id FROM audit_event WHERE seq = 120", [], |r| {
            r.get(0)
        })
        .unwrap();
    db.execute(
        "UPDATE audit_event SET user_id = 'mallory' WHERE seq = 120",
        [],
    )
    .unwrap();
    assert_eq!(broken(&path), Some((120, Breach::Edited)));
    let r = verify(&path);
    assert_eq!(r.rows, 119);
    assert!(r.to_string().contains("BROKEN at row 120"), "{r}");
    db.execute(
        "UPDATE audit_event SET user_id = ?1 WHERE seq = 120",
        [old.as_str()],
    )
    .unwrap();
    assert!(verify(&path).ok(), "restored");

    // Edited: a changed time.
    db.execute("UPDATE audit_event SET at_ms = at_ms + 1 WHERE seq = 7", [])
        .unwrap();
    assert_eq!(broken(&path), Some((7, Breach::Edited)));
    db.execute("UPDATE audit_event SET at_ms = at_ms - 1 WHERE seq = 7", [])
        .unwrap();

    // Deleted in the middle: the missing seq is named.
    let saved: Vec<rusqlite::types::Value> = {
        let mut st = db
            .prepare("SELECT * FROM audit_event WHERE seq = 200")
            .unwrap();
        let n = st.column_count();
        st.query_row([], |r| (0..n).map(|i| r.get(i)).collect())
            .unwrap()
    };
    db.execute("DELETE FROM audit_event WHERE seq = 200", [])
        .unwrap();
    assert_eq!(broken(&path), Some((200, Breach::Deleted)));
    // Deleted and the following rows renumbered: the first renumbered row no longer chains.
    db.execute("UPDATE audit_event SET seq = seq - 1 WHERE seq > 200", [])
        .unwrap();
    assert_eq!(broken(&path), Some((200, Breach::Edited)));
    db.execute(
        "UPDATE audit_event SET seq = seq + 1000 WHERE seq >= 200",
        [],
    )
    .unwrap();
    db.execute(
        "UPDATE audit_event SET seq = seq - 999 WHERE seq >= 1200",
        [],
    )
    .unwrap();
    let placeholders = vec!["?"; saved.len()].join(",");
    db.execute(
        &format!("INSERT INTO audit_event VALUES ({placeholders})"),
        rusqlite::params_from_iter(saved.iter()),
    )
    .unwrap();
    assert!(verify(&path).ok(), "{}", verify(&path));

    // Deleted at the end: sqlite_sequence remembers the highest seq issued.
    db.execute("DELETE FROM audit_event WHERE seq = 300", [])
        .unwrap();
    assert_eq!(broken(&path), Some((300, Breach::Deleted)));

    // Inserted outside the chain (no hash), after the end.
    db.execute(
        "INSERT INTO audit_event (seq, at_ms, action, user_id) VALUES (300, 1, 'lock', 'x')",
        [],
    )
    .unwrap();
    assert_eq!(broken(&path), Some((300, Breach::Unchained)));
    db.execute(
        "UPDATE audit_event SET hash = zeroblob(32) WHERE seq = 300",
        [],
    )
    .unwrap();
    assert_eq!(broken(&path), Some((300, Breach::Edited)));
}

#[tokio::test]
async fn chain_survives_retention_and_writers_in_two_processes() {
    let dir = TempDir::new("chain-retention");
    let path = dir.path().join("vantage.db");
    let log = log_with(&path, 100).await;
    // A second handle on the same file (as `vantage user` beside a running node) interleaves.
    let other = AuditLog::open(&path).expect("second writer");
    for i in 100..150 {
        other.record(event(i, 1));
        log.record(event(i, 2));
        if i % 10 == 0 {
            other.flush().await;
            log.flush().await;
        }
    }
    other.flush().await;
    log.flush().await;
    drop(other);
    let r = verify(&path);
    assert!(r.ok(), "{r}");
    assert_eq!(r.rows, 200);

    // Retention: rows are deleted as a prefix in seq order, the last one becoming the anchor.
    let n = log.delete_before(t(40)).await.expect("retention");
    assert_eq!(n, 40);
    let r = verify(&path);
    assert!(r.ok(), "{r}");
    assert_eq!((r.anchor_seq, r.first_seq, r.rows), (40, Some(41), 160));
    assert!(r.to_string().contains("retention anchor at seq 40"), "{r}");
    assert_eq!(log.delete_before(t(40)).await.unwrap(), 0, "nothing older");

    // Editing the first row after the anchor is detected.
    raw(&path)
        .execute("UPDATE audit_event SET detail = 'x' WHERE seq = 41", [])
        .unwrap();
    assert_eq!(broken(&path), Some((41, store::Breach::Edited)));

    let dir2 = TempDir::new("chain-retention-all");
    let path2 = dir2.path().join("vantage.db");
    let log2 = log_with(&path2, 20).await;
    assert_eq!(log2.delete_before(t(1_000_000)).await.unwrap(), 20);
    let r = verify(&path2);
    assert!(r.ok() && r.rows == 0 && r.anchor_seq == 20, "{r}");
    for i in 0..5 {
        log2.record(event(1_000_000 + i, 0));
    }
    log2.flush().await;
    let r = log2.verify_chain().await.expect("verify");
    assert!(r.ok(), "{r}");
    assert_eq!((r.first_seq, r.last_seq), (Some(21), Some(25)));
    // Everything after the anchor deleted: the gap shows.
    raw(&path2).execute("DELETE FROM audit_event", []).unwrap();
    assert_eq!(broken(&path2), Some((21, store::Breach::Deleted)));
}

#[tokio::test]
async fn rows_written_before_the_chain_are_hashed_from_zero_on_upgrade() {
    let dir = TempDir::new("chain-legacy");
    let path = dir.path().join("vantage.db");
    {
        // A database as the previous binary left it (schema version 5: no hash column).
        let mut db = raw(&path);
        store::schema::apply(&mut db, "old", &store::schema::MIGRATIONS[..5], 1).unwrap();
        for i in 0..30 {
            db.execute(
                "INSERT INTO audit_event (at_ms, action, user_id, camera_id) \
                 VALUES (?1, 'reserve', 'u', 'cam')",
                [i],
            )
            .unwrap();
        }
    }
    let log = AuditLog::open(&path).expect("upgrade");
    log.record(AuditEvent {
        role: Some("admin".into()),
        source_ip: Some("192.0.2.7".into()),
        user_agent: Some("curl/8".into()),
        ..AuditEvent::without_camera(t(1), AuditAction::UserCreate, "cli")
    });
    log.flush().await;
    let r = verify(&path);
    assert!(r.ok(), "{r}");
    assert_eq!((r.rows, r.legacy_until_seq), (31, 30));
    assert!(r.to_string().contains("predate the chain"), "{r}");
    let got = log
        .query(AuditFilter {
            camera_id: Some(String::new()),
            ..filter()
        })
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let e = &got[0].event;
    assert_eq!(
        (
            e.action,
            e.camera_id.as_str(),
            e.role.as_deref(),
            e.source_ip.as_deref(),
            e.user_agent.as_deref()
        ),
        (
            AuditAction::UserCreate,
            "",
            Some("admin"),
            Some("192.0.2.7"),
            Some("curl/8")
        )
    );
    // A legacy row edited after the upgrade is detected like any other.
    raw(&path)
        .execute("UPDATE audit_event SET user_id = 'v' WHERE seq = 3", [])
        .unwrap();
    assert_eq!(broken(&path), Some((3, store::Breach::Edited)));
}

#[test]
fn verify_names_a_missing_database() {
    let dir = TempDir::new("chain-missing");
    let e = AuditLog::verify(&dir.path().join("nope.db")).unwrap_err();
    assert_eq!(e.kind(), base::ErrorKind::NotFound);
}

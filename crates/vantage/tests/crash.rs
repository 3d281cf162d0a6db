//! Crash safety and disk-full behaviour of recording, against the real `vantage serve` process:
//! repeated SIGKILLs while recording, and a small tmpfs that fills up many times over.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, e2e, tempdir};
use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

const POLL: Duration = Duration::from_millis(150);

fn now_ms() -> i64 {
    base::clock::unix_ms(SystemTime::now())
}

/// A `vantage serve` child, SIGKILLed when dropped.
struct Node {
    child: Child,
    lines: mpsc::Receiver<String>,
    api: Api,
}

impl Node {
    /// Starts `cmd` and waits (up to 60 s) for its "serving" line.
    async fn start(cmd: &mut Command) -> Node {
        let mut child = cmd
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::null())
            .spawn()
            .expect("start vantage serve");
        let stdout = child.stdout.take().expect("stdout was piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = loop {
            match lines.try_recv() {
                Ok(l) => {
                    if let Some(rest) = l.strip_prefix("vantage serving on http://") {
                        let a: SocketAddr = rest.trim_end_matches('/').parse().expect("address");
                        break a;
                    }
                    eprintln!("[vantage] {l}");
                }
                Err(mpsc::TryRecvError::Disconnected) => {
                    panic!("vantage exited before serving: {:?}", child.wait())
                }
                Err(mpsc::TryRecvError::Empty) => {
                    assert!(Instant::now() < deadline, "vantage did not start in 60 s");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        Node {
            child,
            lines,
            api: Api::new(addr),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn assert_alive(&mut self) {
        match self.child.try_wait() {
            Ok(None) => {}
            other => panic!("vantage died: {other:?}"),
        }
    }

    /// Echoes what the node logged (warnings and errors) since the last call.
    fn drain_log(&self) {
        while let Ok(l) = self.lines.try_recv() {
            eprintln!("[vantage] {l}");
        }
    }

    fn sigkill(&mut self) {
        self.child.kill().expect("SIGKILL");
        let st = self.child.wait().expect("wait");
        assert!(!st.success(), "killed process reported success: {st}");
    }

    /// SIGTERM, then waits up to `timeout` for the exit.
    async fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -TERM failed");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                self.drain_log();
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "vantage did not exit within {timeout:?} of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn storage(&self) -> Value {
        let (status, v) = self.api.get("/api/v1/storage").await;
        assert_eq!(status, 200, "GET /api/v1/storage: {v}");
        v
    }

    /// Waits until every camera in `cams` has an open segment with at least one fragment written
    /// and the writers have written at least `cams.len()` fragments; returns the storage status.
    async fn wait_recording(&self, cams: &[String], timeout: Duration) -> Value {
        let t0 = Instant::now();
        loop {
            let st = self.storage().await;
            let mut all = st["writer"]["writes"].as_u64().unwrap_or(0) >= cams.len() as u64;
            for c in cams {
                if !all {
                    break;
                }
                let (_, v) = self.api.get(&format!("/api/v1/cameras/{c}")).await;
                all &= v["recording"]["state"] == "recording";
            }
            if all {
                return st;
            }
            assert!(
                t0.elapsed() < timeout,
                "cameras not all recording after {timeout:?}: {st}"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(
    rtsp: SocketAddr,
    data: &Path,
    rec: &Path,
    storage: &str,
    cams: &[(String, &str)],
) -> String {
    let mut y = format!(
        "server: {{ listen: \"127.0.0.1:0\" }}\n\
         webrtc: {{ udp_port: 0, bind: 127.0.0.1, advertise: [127.0.0.1] }}\n\
         storage: {{ data_dir: \"{}\", recordings_dir: \"{}\", {storage} }}\n\
         agencies:\n  - {{ id: OTHER, max_streams: 50 }}\ncameras:\n",
        data.display(),
        rec.display()
    );
    for (id, mount) in cams {
        y.push_str(&format!(
            "  - {{ id: {id}, agency: OTHER, rtsp_url: \"rtsp://{rtsp}/{mount}\", \
             recording: continuous, retention_days: 90 }}\n"
        ));
    }
    y
}

#[derive(Debug)]
struct Row {
    id: i64,
    camera_id: String,
    start_90k: i64,
    end_90k: i64,
    start_wall_ms: i64,
    end_wall_ms: i64,
    bytes: u64,
    path: String,
    state: String,
}

fn open_index(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// The rows of a live index reached through `/proc/PID/root` (SQLite resolves that magic link to
/// this process's root, so it cannot open the file in place): the database and its WAL are copied
/// to `scratch` and the copy read. A checkpoint during the copy changes the database file: retry.
fn snapshot_rows(rec: &Path, scratch: &Path) -> Vec<Row> {
    let read = |name: &str| std::fs::read(rec.join(name)).unwrap_or_default();
    for _ in 0..50 {
        let db = read("index.db");
        let wal = read("index.db-wal");
        if db.is_empty() || db != read("index.db") {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let _ = std::fs::remove_file(scratch.join("index.db-shm"));
        std::fs::write(scratch.join("index.db"), &db).expect("copy index");
        std::fs::write(scratch.join("index.db-wal"), &wal).expect("copy WAL");
        let conn = Connection::open(scratch.join("index.db")).expect("open copy");
        return rows(&conn);
    }
    panic!("no consistent copy of {}", rec.join("index.db").display());
}

fn rows(db: &Connection) -> Vec<Row> {
    let mut q = db
        .prepare(
            "SELECT id, camera_id, start_90k, end_90k, start_wall_ms, end_wall_ms, bytes, path, \
             state FROM segment ORDER BY camera_id, start_wall_ms",
        )
        .expect("prepare");
    q.query_map([], |r| {
        Ok(Row {
            id: r.get(0)?,
            camera_id: r.get(1)?,
            start_90k: r.get(2)?,
            end_90k: r.get(3)?,
            start_wall_ms: r.get(4)?,
            end_wall_ms: r.get(5)?,
            bytes: r.get::<_, i64>(6)? as u64,
            path: r.get(7)?,
            state: r.get(8)?,
        })
    })
    .expect("query")
    .map(|r| r.expect("row"))
    .collect()
}

/// Every `.mp4` under `dir`, relative to it.
fn mp4_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)
            .expect("read_dir")
            .map(|e| e.expect("entry"))
        {
            let p = e.path();
            if e.file_type().expect("file type").is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "mp4") {
                let rel = p.strip_prefix(dir).expect("under dir");
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out
}

/// Checks that the index and the files agree exactly; returns the rows.
fn check_index(rec: &Path) -> Vec<Row> {
    let db = open_index(&rec.join("index.db"));
    let rows = rows(&db);
    // Per segment: (byte offset, time) of its key-frame rows.
    let mut kf: HashMap<i64, Vec<(u64, i64)>> = HashMap::new();
    {
        let mut q = db
            .prepare("SELECT segment_id, byte_offset, time_90k FROM keyframe")
            .expect("prepare");
        for r in q
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .expect("query")
        {
            let (s, o, t) = r.expect("row");
            kf.entry(s).or_default().push((o as u64, t));
        }
    }
    assert!(!rows.is_empty(), "no segments recorded");
    let mut missing_kf = 0;
    let mut key_frags = 0;
    for r in &rows {
        assert_eq!(
            r.state, "complete",
            "unfinished row after a clean stop: {r:?}"
        );
        let path = rec.join(&r.path);
        let len = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{r:?}: {e}"))
            .len();
        assert_eq!(len, r.bytes, "file length of {r:?}");
        let sc = recorder::scan::scan_file(&path).expect("scan");
        assert_eq!(sc.valid_len, sc.total_len, "torn file {r:?}: {sc:?}");
        assert_eq!(sc.valid_len, r.bytes, "{r:?}");
        let first = sc
            .fragments
            .first()
            .unwrap_or_else(|| panic!("{r:?} empty"));
        assert!(first.starts_with_key, "{r:?} starts without a key frame");
        assert_eq!(sc.start_90k(), Some(r.start_90k as u64), "start of {r:?}");
        assert_eq!(sc.end_90k(), Some(r.end_90k as u64), "end of {r:?}");
        assert!(r.end_wall_ms >= r.start_wall_ms, "{r:?}");
        // Each file's media time starts at 0 (or, when the segment's first GOP could not be
        // written, where the file's edit list starts it); the fragments' wall-clock times (from
        // their prfts) are the segment's start plus their time in the file.
        let has_edit = std::fs::read(&path).expect("read")[..sc.init_len as usize]
            .windows(4)
            .any(|w| w == b"elst");
        assert_eq!(first.base_decode_time == 0, !has_edit, "{r:?} starts at 0");
        let times: HashMap<u64, i64> = sc
            .fragments
            .iter()
            .map(|f| {
                let in_file = f.base_decode_time - first.base_decode_time;
                assert_eq!(f.wall_90k, r.start_90k as u64 + in_file, "{r:?}");
                (f.offset, f.wall_90k as i64)
            })
            .collect();
        let seg_kf = kf.remove(&r.id).unwrap_or_default();
        for (o, t) in &seg_kf {
            assert_eq!(
                times.get(o),
                Some(t),
                "{r:?}: key frame at {o} ({t}) is no fragment at that time"
            );
        }
        let seg_kf: Vec<u64> = seg_kf.into_iter().map(|(o, _)| o).collect();
        let keys: HashSet<u64> = sc
            .fragments
            .iter()
            .filter(|f| f.starts_with_key)
            .map(|f| f.offset)
            .collect();
        key_frags += keys.len();
        missing_kf += keys.iter().filter(|o| !seg_kf.contains(o)).count();
    }
    assert!(kf.is_empty(), "key frames of unknown segments: {kf:?}");
    eprintln!(
        "index: {} segments, {key_frags} key-frame fragments, {missing_kf} of them without a \
         keyframe row",
        rows.len()
    );
    let known: HashSet<&str> = rows.iter().map(|r| r.path.as_str()).collect();
    for f in mp4_files(rec) {
        assert!(known.contains(f.as_str()), "{f} is not in the index");
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_recording_loses_at_most_the_gop_being_written() {
    let rtsp = vantage::demo::start_cameras("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("start RTSP cameras");
    let dir = tempdir("crash-kill");
    let rec = dir.join("rec");
    let cams: Vec<(String, &str)> = vec![
        ("cam1".into(), "h264_a"),
        ("cam2".into(), "h264_b"),
        ("cam3".into(), "h264_c"),
    ];
    let ids: Vec<String> = cams.iter().map(|c| c.0.clone()).collect();
    let cfg = dir.join("vantage.yaml");
    std::fs::write(
        &cfg,
        config(
            rtsp.local_addr(),
            &dir,
            &rec,
            "max_usage: 100%, min_free: 4MB, segment_duration: 10s, sync_interval: 2s, \
             retention_interval: 60s, writer_threads: 2",
            &cams,
        ),
    )
    .expect("write config");
    let serve = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vantage"));
        c.arg("serve").arg("--config").arg(&cfg);
        c
    };
    let t0 = Instant::now();
    // Run times before each kill: some land mid-segment, some just after a rotation.
    let dwell = [3.0, 4.3, 5.7, 7.1, 8.9];
    let mut kills = Vec::new();
    let mut recovered = 0;
    for (round, secs) in dwell.iter().enumerate() {
        let mut node = Node::start(&mut serve()).await;
        let st = node.wait_recording(&ids, Duration::from_secs(40)).await;
        if round > 0 {
            eprintln!("round {round}: recovery {}", st["recovery"]);
            recovered += st["recovery"]["segments_recovered"]
                .as_u64()
                .expect("counter");
        }
        tokio::time::sleep(Duration::from_secs_f64(*secs)).await;
        node.assert_alive();
        node.drain_log();
        // Whether each camera has a file open (mid-segment) or is between segments.
        let mut open = Vec::new();
        for c in &ids {
            let (_, v) = node.api.get(&format!("/api/v1/cameras/{c}")).await;
            open.push(format!("{c}={}", v["recording"]["state"]));
        }
        let k = now_ms();
        node.sigkill();
        eprintln!("kill {} after {secs} s: {}", round + 1, open.join(" "));
        kills.push(k);
    }
    let mut node = Node::start(&mut serve()).await;
    let st = node.wait_recording(&ids, Duration::from_secs(40)).await;
    eprintln!("final restart: recovery {}", st["recovery"]);
    recovered += st["recovery"]["segments_recovered"]
        .as_u64()
        .expect("counter");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = node.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "vantage exit after SIGTERM: {status}");
    drop(node);
    eprintln!("segments recovered over all restarts: {recovered}");
    assert!(recovered >= 1, "no `writing` segment was ever recovered");

    let rows = check_index(&rec);
    let origin = rows.iter().map(|r| r.start_wall_ms).min().unwrap_or(0);
    let rel = |ms: i64| (ms - origin) as f64 / 1000.0;
    eprintln!(
        "kills at {:?} s",
        kills.iter().map(|k| rel(*k)).collect::<Vec<_>>()
    );
    for c in &ids {
        let segs: Vec<String> = rows
            .iter()
            .filter(|r| &r.camera_id == c)
            .map(|r| format!("{:.2}-{:.2}", rel(r.start_wall_ms), rel(r.end_wall_ms)))
            .collect();
        eprintln!("{c} segments (s): {}", segs.join(" "));
    }
    // Loss per kill: from the newest end recorded before the kill to the kill.
    let bound_ms = 2_000 + 1_500;
    let mut worst = i64::MIN;
    for (i, k) in kills.iter().enumerate() {
        let mut line = format!("kill {} (after {:.1} s):", i + 1, dwell[i]);
        for c in &ids {
            let end = rows
                .iter()
                .filter(|r| &r.camera_id == c && r.start_wall_ms < *k)
                .map(|r| r.end_wall_ms)
                .max()
                .unwrap_or_else(|| panic!("{c}: nothing recorded before kill {}", i + 1));
            let loss = k - end;
            worst = worst.max(loss);
            line.push_str(&format!(" {c} lost {loss} ms"));
            assert!(
                loss <= bound_ms,
                "{c}: kill {} lost {loss} ms of video (bound {bound_ms} ms)",
                i + 1
            );
        }
        eprintln!("{line}");
    }
    eprintln!(
        "worst loss {worst} ms over {} kills; test took {:.1} s",
        kills.len(),
        t0.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `unshare -rm` (a private mount namespace as an unprivileged user) works here.
fn can_unshare() -> bool {
    Command::new("unshare")
        .args(["-rm", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_recording_continues_by_deleting_old_unlocked_video() {
    if !can_unshare() {
        assert!(
            !e2e(),
            "`unshare -rm` does not work: cannot mount a private tmpfs"
        );
        eprintln!("SKIP: `unshare -rm` does not work here; no private tmpfs");
        return;
    }
    let rtsp = vantage::demo::start_cameras("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("start RTSP cameras");
    let dir = tempdir("crash-full");
    let mnt = dir.join("tmpfs");
    std::fs::create_dir_all(&mnt).expect("mount point");
    let scratch = dir.join("scratch");
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let rec_in_ns = mnt.join("rec");
    let mounts = ["h264_a", "h264_b", "h264_c", "h264_d"];
    // Eight cameras (each mount twice), ~350 KB/s in all.
    let cams: Vec<(String, &str)> = (0..8)
        .map(|i| (format!("cam{}", i + 1), mounts[i % 4]))
        .collect();
    let ids: Vec<String> = cams.iter().map(|c| c.0.clone()).collect();
    let cfg = dir.join("vantage.yaml");
    std::fs::write(
        &cfg,
        config(
            rtsp.local_addr(),
            &dir.join("data"),
            &rec_in_ns,
            "max_usage: 100%, min_free: 5MB, segment_duration: 5s, sync_interval: 2s, \
             retention_interval: 60s, writer_threads: 2",
            &cams,
        ),
    )
    .expect("write config");
    let mut cmd = Command::new("unshare");
    cmd.args([
        "-rm",
        "sh",
        "-c",
        "mount -t tmpfs -o size=14m tmpfs \"$DIR\" && exec \"$VANTAGE\" serve --config \"$CFG\"",
    ])
    .env("DIR", &mnt)
    .env("VANTAGE", env!("CARGO_BIN_EXE_vantage"))
    .env("CFG", &cfg);
    let t0 = Instant::now();
    let mut node = Node::start(&mut cmd).await;
    // The recordings as the child sees them (its mount namespace).
    let rec = PathBuf::from(format!("/proc/{}/root", node.pid()))
        .join(rec_in_ns.strip_prefix("/").expect("absolute"));
    node.wait_recording(&ids, Duration::from_secs(40)).await;

    // Lock cam1's first ~5 s once the segments covering them are complete.
    let (lock_start, lock_end, before) = loop {
        let all = snapshot_rows(&rec, &scratch);
        let cam1: Vec<&Row> = all
            .iter()
            .filter(|r| r.camera_id == "cam1" && r.state == "complete")
            .collect();
        if let Some(first) = cam1.first() {
            let (s, e) = (first.start_wall_ms, first.start_wall_ms + 5_000);
            if cam1.iter().any(|r| r.end_wall_ms >= e) {
                break (s, e, all);
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "cam1 completed no segment"
        );
        tokio::time::sleep(POLL).await;
    };
    let fmt = |ms| base::clock::rfc3339(base::clock::from_unix_ms(ms));
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/evidence-locks", node.api.base))
        .json(&json!({
            "camera_id": "cam1",
            "start_time": fmt(lock_start),
            "end_time": fmt(lock_end),
            "reason": "crash test",
        }))
        .send()
        .await
        .expect("POST evidence lock");
    assert_eq!(resp.status().as_u16(), 201, "{:?}", resp.text().await);
    let locked: BTreeMap<i64, (String, u64)> = before
        .iter()
        .filter(|r| {
            r.camera_id == "cam1" && r.start_wall_ms < lock_end && lock_start < r.end_wall_ms
        })
        .map(|r| (r.id, (r.path.clone(), r.bytes)))
        .collect();
    let unlocked: Vec<&Row> = before
        .iter()
        .filter(|r| r.state == "complete" && !locked.contains_key(&r.id))
        .collect();
    eprintln!(
        "locked {} cam1 segments {:?}; {} older unlocked segments",
        locked.len(),
        locked.values().collect::<Vec<_>>(),
        unlocked.len()
    );
    assert!(!locked.is_empty() && !unlocked.is_empty());

    // Run until emergency deletion removed twice the segments the volume holds (it wrapped twice).
    let mut min_free = u64::MAX;
    let mut held_max = 0;
    let st = loop {
        node.assert_alive();
        node.drain_log();
        let st = node.storage().await;
        let free = st["volume"]["free_bytes"].as_u64().expect("free_bytes");
        min_free = min_free.min(free);
        let held: u64 = st["cameras"]
            .as_array()
            .expect("cameras")
            .iter()
            .map(|c| c["segments"].as_u64().unwrap_or(0))
            .sum();
        held_max = held_max.max(held);
        let deleted = st["retention"]["deleted_in_emergency"]
            .as_u64()
            .expect("deleted");
        if deleted >= 2 * held_max && held_max > 0 {
            break st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "the volume did not wrap twice in 180 s (holds {held_max} segments): {st}"
        );
        tokio::time::sleep(POLL).await;
    };
    let r = &st["retention"];
    let write_errors = st["writer"]["write_errors"].as_u64().expect("write_errors");
    eprintln!(
        "after {:.1} s: deleted_in_emergency {} ({} bytes), emergency passes {}, write_errors {}, \
         min free {} bytes of {}, at most {held_max} segments held, locked_kept {}, \
         retention last_error {}",
        t0.elapsed().as_secs_f64(),
        r["deleted_in_emergency"],
        r["deleted_bytes"],
        r["emergency_passes"],
        write_errors,
        min_free,
        st["volume"]["total_bytes"],
        r["locked_kept"],
        r["last_error"]
    );
    assert!(min_free > 0, "the volume filled up");
    assert!(r["deleted_in_emergency"].as_u64().expect("counter") > unlocked.len() as u64);
    assert_eq!(r["deleted_by_age"], 0);
    let writes_then = st["writer"]["writes"].as_u64().expect("writes");
    if write_errors > 0 {
        eprintln!("write errors: {write_errors}; checking recording went on");
        let t1 = Instant::now();
        while node.storage().await["writer"]["writes"]
            .as_u64()
            .expect("writes")
            < writes_then + 8
        {
            assert!(
                t1.elapsed() < Duration::from_secs(20),
                "no writes after write errors"
            );
            tokio::time::sleep(POLL).await;
        }
    }
    // Every camera still records.
    let st = node.storage().await;
    let recent = fmt(now_ms() - 8_000);
    for c in &ids {
        let cs = st["cameras"]
            .as_array()
            .expect("cameras")
            .iter()
            .find(|x| x["camera_id"] == c.as_str())
            .unwrap_or_else(|| panic!("{c} missing in {st}"));
        let newest = cs["newest_recording"].as_str().unwrap_or_default();
        if newest < recent.as_str() {
            let (_, v) = node.api.get(&format!("/api/v1/cameras/{c}")).await;
            eprintln!("{c}: {cs}\nrecording: {}", v["recording"]);
            let all = snapshot_rows(&rec, &scratch);
            for r in all
                .iter()
                .filter(|r| &r.camera_id == c || r.camera_id == "cam2")
            {
                eprintln!("  {r:?}");
            }
            let mut files = mp4_files(&rec);
            files.sort();
            eprintln!("files: {files:?}");
            eprintln!("storage: {st}");
        }
        assert!(
            newest >= recent.as_str(),
            "{c}: newest recording {newest} < {recent}"
        );
    }
    // Locked video kept, the old unlocked video gone.
    let now_rows: HashMap<i64, Row> = snapshot_rows(&rec, &scratch)
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    for (id, (path, bytes)) in &locked {
        let r = now_rows
            .get(id)
            .unwrap_or_else(|| panic!("locked segment {path} not in index"));
        assert_eq!(
            (&r.path, r.bytes, r.state.as_str()),
            (path, *bytes, "complete")
        );
        let len = std::fs::metadata(rec.join(path))
            .unwrap_or_else(|e| panic!("locked segment {path}: {e}"))
            .len();
        assert_eq!(len, *bytes, "locked segment {path} changed size");
    }
    for r in &unlocked {
        assert!(
            !now_rows.contains_key(&r.id),
            "old segment {} still indexed",
            r.path
        );
        assert!(
            !rec.join(&r.path).exists(),
            "old segment {} still on disk",
            r.path
        );
    }
    let status = node.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "vantage exit after SIGTERM: {status}");
    eprintln!("test took {:.1} s", t0.elapsed().as_secs_f64());
    drop(rtsp);
    let _ = std::fs::remove_dir_all(&dir);
}

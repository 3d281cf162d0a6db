//! Evidence exports over HTTP (issue 10 items 6 and 7, design 0008): a recorded range exported
//! as an MP4 plus a signed manifest, downloaded with `Range`/`ETag`, verified by
//! `vantage verify-export` (and refused after one byte changes), queued under
//! `exports.max_concurrent`, cancelled, and made end to end by `vantage export`. A SIGKILL
//! during an export leaves nothing marked completed that is not, and the job completes after
//! the restart. With `VANTAGE_E2E=1`, ffprobe reads the export's duration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, e2e, rfc, tempdir};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_vantage")
}

/// Waits until `cam-a` has at least `secs` of one run recorded; returns the run's start.
async fn recorded(api: &Api, secs: u64) -> SystemTime {
    common::recorded_run(api, "cam-a", Duration::from_secs(secs), |_| {})
        .await
        .0
}

async fn post_export(c: &reqwest::Client, base: &str, body: Value) -> (u16, Value) {
    let r = c
        .post(format!("{base}/api/v1/export"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn wait_finished(api: &Api, id: &str, timeout: Duration) -> Value {
    let t0 = Instant::now();
    loop {
        let (s, v) = api.get(&format!("/api/v1/exports/{id}")).await;
        assert_eq!(s, 200, "{v}");
        if ["completed", "failed", "cancelled"].contains(&v["status"].as_str().unwrap()) {
            return v;
        }
        assert!(t0.elapsed() < timeout, "export {id} not finished: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn verify_export(mp4: &Path, manifest: &Path, pem: &Path) -> (i32, String) {
    let out = Command::new(bin())
        .arg("verify-export")
        .arg(mp4)
        .arg(manifest)
        .arg("--public-key")
        .arg(pem)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// ffprobe (E2E only): (format duration, video frames read).
fn ffprobe(path: &Path) -> (f64, u64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "format=duration:stream=nb_read_frames",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe installed (VANTAGE_E2E=1)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let num = |v: &Value| v.as_str().and_then(|s| s.parse::<f64>().ok()).unwrap();
    (
        num(&v["format"]["duration"]),
        num(&v["streams"][0]["nb_read_frames"]) as u64,
    )
}

fn field(v: &Value) -> &str {
    v["error"]["field"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_complete_in_order_verify_download_cancel_and_run_from_the_cli() {
    // Exports are throttled so that queueing and cancelling can be seen.
    let (_rtsp, node, api, data) = common::recording_node(
        "exports",
        "exports: { max_concurrent: 1, max_span: 1h, max_write_kib_per_s: 1024 }\n",
    )
    .await;
    let rec_start = recorded(&api, 13).await;
    let start = rec_start + Duration::from_millis(2_500);
    let end = start + Duration::from_secs(6);
    let c = reqwest::Client::new();
    let base = api.base.clone();
    let ok_body = json!({"camera_id": "cam-a", "start_time": rfc(start), "end_time": rfc(end),
                         "format": "mp4", "include_audio": true, "created_by": "investigator-7"});

    // Bad input: 400 naming the field, 404 for an unknown camera or nothing recorded.
    for (body, status, f) in [
        (
            json!({"start_time": rfc(start), "end_time": rfc(end)}),
            400,
            "camera_id",
        ),
        (
            json!({"camera_id": "cam-a", "start_time": "yesterday", "end_time": rfc(end)}),
            400,
            "start_time",
        ),
        (
            json!({"camera_id": "cam-a", "start_time": rfc(end), "end_time": rfc(start)}),
            400,
            "end_time",
        ),
        (
            json!({"camera_id": "cam-a", "start_time": rfc(start), "end_time": rfc(start + Duration::from_secs(7201))}),
            400,
            "end_time",
        ),
        (
            json!({"camera_id": "cam-a", "start_time": rfc(start), "end_time": rfc(end), "format": "avi"}),
            400,
            "format",
        ),
        (
            json!({"camera_id": "cam-a", "start_time": "2001-01-01T00:00:00Z", "end_time": "2001-01-01T00:01:00Z"}),
            404,
            "start_time",
        ),
    ] {
        let (s, v) = post_export(&c, &base, body.clone()).await;
        assert_eq!((s, field(&v)), (status, f), "{body} -> {v}");
    }
    let (s, v) = post_export(
        &c,
        &base,
        json!({"camera_id": "nope", "start_time": rfc(start), "end_time": rfc(end)}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("CAMERA_NOT_FOUND")),
        "{v}"
    );
    let (s, _) = api.get("/api/v1/exports/no-such-export").await;
    assert_eq!(s, 404);

    // Three exports with max_concurrent 1, then a fourth that is cancelled while queued.
    let mut ids = Vec::new();
    for _ in 0..4 {
        let (s, v) = post_export(&c, &base, ok_body.clone()).await;
        assert_eq!(s, 202, "{v}");
        assert!(
            ["queued", "running"].contains(&v["status"].as_str().unwrap()),
            "{v}"
        );
        ids.push(v["export_id"].as_str().unwrap().to_owned());
    }
    let r = c
        .delete(format!("{base}/api/v1/exports/{}", ids[3]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "cancelled", "{v}");
    let mut polls = 0;
    let mut max_running = 0;
    let mut seen_progress = false;
    loop {
        let (s, list) = api.get("/api/v1/exports").await;
        assert_eq!(s, 200);
        let list = list["exports"].as_array().unwrap().clone();
        let listed: Vec<&str> = list
            .iter()
            .map(|e| e["export_id"].as_str().unwrap())
            .collect();
        let mut newest_first = ids.clone();
        newest_first.reverse();
        assert_eq!(listed, newest_first, "newest first");
        let running = list.iter().filter(|e| e["status"] == "running").count();
        max_running = max_running.max(running);
        seen_progress |= list
            .iter()
            .any(|e| e["status"] == "running" && e["progress_percent"].as_u64().unwrap() > 0);
        polls += 1;
        if list
            .iter()
            .take(3)
            .all(|e| e["status"] != "queued" && e["status"] != "running")
        {
            break;
        }
        assert!(polls < 600, "exports never finished: {list:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        max_running, 1,
        "max_concurrent 1: at most one running at a poll"
    );
    let jobs: Vec<Value> = {
        let mut v = Vec::new();
        for id in &ids {
            v.push(api.get(&format!("/api/v1/exports/{id}")).await.1);
        }
        v
    };
    for j in &jobs[..3] {
        assert_eq!(j["status"], "completed", "{j}");
        assert_eq!(j["progress_percent"], 100);
    }
    assert_eq!(jobs[3]["status"], "cancelled");
    let (s, v) = api
        .get(&format!("/api/v1/exports/{}/download", ids[3]))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("EXPORT_NOT_READY")),
        "{v}"
    );
    let (s, _) = api.get("/api/v1/exports/no-such-export/manifest").await;
    assert_eq!(s, 404);
    assert!(
        jobs[3]["started_at"].is_null(),
        "the cancelled one never started"
    );
    // In creation order: each starts once the one before has finished.
    for w in jobs[..3].windows(2) {
        let fin = base::time::rfc3339::parse(w[0]["finished_at"].as_str().unwrap()).unwrap();
        let st = base::time::rfc3339::parse(w[1]["started_at"].as_str().unwrap()).unwrap();
        assert!(st >= fin, "{} started before {} finished", w[1], w[0]);
    }
    eprintln!(
        "3 exports of 6 s: {} polls, progress seen while running: {seen_progress}",
        polls
    );

    // The first export: download equals the file, manifest matches, ranges and ETag.
    let j = &jobs[0];
    let id = ids[0].as_str();
    let size = j["size_bytes"].as_u64().unwrap();
    let sha = j["sha256"].as_str().unwrap().to_owned();
    let frames = j["frames"].as_u64().unwrap();
    assert!((150..=200).contains(&frames), "{frames} frames for 6 s");
    assert_eq!(j["download_url"], format!("/api/v1/exports/{id}/download"));
    let on_disk = std::fs::read(data.join("exports").join(format!("{id}.mp4"))).unwrap();
    let r = c
        .get(format!("{base}{}", j["download_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "video/mp4");
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{sha}\""));
    let dl = r.bytes().await.unwrap().to_vec();
    assert_eq!(dl.len() as u64, size);
    assert!(dl == on_disk, "the download is the file");
    assert_eq!(evidence::hash_reader(&dl[..]).unwrap(), (size, sha.clone()));
    assert_eq!(&dl[4..8], b"ftyp");
    let r = c
        .get(format!("{base}/api/v1/exports/{id}/download"))
        .header("range", "bytes=100-1099")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &dl[100..1100]);
    let r = c
        .get(format!("{base}/api/v1/exports/{id}/download"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = c
        .get(format!("{base}/api/v1/exports/{id}/download"))
        .header("range", format!("bytes={size}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    let manifest = c
        .get(format!("{base}{}", j["manifest_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    let m: Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(m["manifest"]["sha256"], sha.as_str());
    assert_eq!(m["manifest"]["file_size"], size);
    assert_eq!(m["manifest"]["video_frames"], frames);
    assert_eq!(m["manifest"]["camera_id"], "cam-a");
    assert_eq!(m["manifest"]["camera_name"], "Gate 1");
    assert_eq!(m["manifest"]["agency"], "OTHER");
    assert_eq!(m["manifest"]["created_by"], "investigator-7");
    assert_eq!(
        m["manifest"]["start_time"],
        base::time::rfc3339::format_ms(base::clock::unix_ms(start))
    );
    let pem = c
        .get(format!("{base}/api/v1/exports/public-key"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    let key_file = std::fs::metadata(data.join("export-signing-key.pem")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key_file.permissions().mode() & 0o777, 0o600);

    // verify-export accepts the download and refuses it after one byte changes.
    let work = tempdir("exports-verify");
    let (f, mf, pf) = (
        work.join("e.mp4"),
        work.join("e.manifest.json"),
        work.join("key.pem"),
    );
    std::fs::write(&f, &dl).unwrap();
    std::fs::write(&mf, &manifest).unwrap();
    std::fs::write(&pf, &pem).unwrap();
    let (code, out) = verify_export(&f, &mf, &pf);
    assert_eq!(code, 0, "{out}");
    let mut bad = dl.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0x01;
    std::fs::write(&f, &bad).unwrap();
    let (code, out) = verify_export(&f, &mf, &pf);
    assert_eq!(code, 1, "a changed MP4 byte: {out}");
    std::fs::write(&f, &dl).unwrap();
    let text = String::from_utf8(manifest.clone()).unwrap();
    let digit = format!("\"video_frames\": {frames}");
    assert!(text.contains(&digit), "{text}");
    let changed = text.replace(&digit, &format!("\"video_frames\": {}", frames + 1));
    assert_eq!(changed.len(), text.len(), "one byte changed");
    std::fs::write(&mf, changed).unwrap();
    let (code, out) = verify_export(&f, &mf, &pf);
    assert_eq!(code, 1, "a changed manifest byte: {out}");

    if e2e() {
        let (dur, read) = ffprobe(&data.join("exports").join(format!("{id}.mp4")));
        eprintln!("ffprobe: duration {dur:.3} s, {read} frames read");
        assert!(
            (dur - 6.0).abs() <= 0.04,
            "duration {dur} s for a 6 s export"
        );
    }

    // DELETE of a finished export removes its files and row.
    let r = c
        .delete(format!("{base}/api/v1/exports/{}", ids[1]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(api.get(&format!("/api/v1/exports/{}", ids[1])).await.0, 404);
    assert!(
        !data
            .join("exports")
            .join(format!("{}.mp4", ids[1]))
            .exists()
    );

    // The CLI end to end, and its exit status on a refused export.
    let out_mp4 = work.join("cli.mp4");
    let args: Vec<String> = vec![
        "export".into(),
        "--server".into(),
        base.clone(),
        "--camera".into(),
        "cam-a".into(),
        "--from".into(),
        rfc(start),
        "--to".into(),
        rfc(end),
        "-o".into(),
        out_mp4.display().to_string(),
        "--no-audio".into(),
    ];
    let out =
        tokio::task::spawn_blocking(move || Command::new(bin()).args(&args).output().unwrap())
            .await
            .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "vantage export: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli = std::fs::read(&out_mp4).unwrap();
    assert!(cli.len() > 10_000);
    let (code, vout) = verify_export(&out_mp4, &work.join("cli.mp4.manifest.json"), &pf);
    assert_eq!(code, 0, "{vout}");
    let args: Vec<String> = vec![
        "export".into(),
        "--server".into(),
        base.clone(),
        "--camera".into(),
        "nope".into(),
        "--from".into(),
        rfc(start),
        "--to".into(),
        rfc(end),
        "-o".into(),
        work.join("nope.mp4").display().to_string(),
    ];
    let out =
        tokio::task::spawn_blocking(move || Command::new(bin()).args(&args).output().unwrap())
            .await
            .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    assert!(!work.join("nope.mp4").exists());

    // Audited.
    let (_, audit) = api.get("/api/v1/audit?camera_id=cam-a").await;
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    for a in ["export_create", "export_complete", "export_download"] {
        assert!(actions.contains(&a), "{a} in {audit}");
    }
    node.shutdown().await;
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&work);
}

/// A `vantage serve` child, SIGKILLed when dropped.
struct Served {
    child: Child,
    api: Api,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(config: &Path) -> Served {
    let mut child = Command::new(bin())
        .arg("serve")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .stdin(Stdio::null())
        .spawn()
        .expect("start vantage serve");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("vantage serving on http://") {
                let _ = tx.send(rest.trim_end_matches('/').to_owned());
            }
        }
    });
    let addr: SocketAddr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("vantage serving")
        .parse()
        .unwrap();
    Served {
        child,
        api: Api::new(addr),
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn export_rows(db: &Path) -> Vec<(String, String)> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut q = conn
        .prepare("SELECT id, status FROM export ORDER BY seq")
        .unwrap();
    q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_during_an_export_leaves_nothing_marked_complete_and_it_completes_after() {
    let rtsp = vantage::demo::start_cameras("127.0.0.1:0".parse().unwrap())
        .await
        .expect("rtsp server");
    let url = format!("rtsp://{}/h264_a", rtsp.local_addr());
    let data = tempdir("exports-crash");
    // Slow exports (64 KiB/s) so the kill lands while one is running.
    let yaml = common::recording_yaml(&data, &url, "exports: { max_write_kib_per_s: 64 }\n");
    let config = data.join("vantage.yaml");
    std::fs::write(&config, yaml).unwrap();
    let mut node = serve(&config);
    let rec_start = recorded(&node.api, 9).await;
    let start = rec_start + Duration::from_millis(500);
    let end = start + Duration::from_secs(8);
    let c = reqwest::Client::new();
    let (s, v) = post_export(
        &c,
        &node.api.base,
        json!({"camera_id": "cam-a", "start_time": rfc(start), "end_time": rfc(end)}),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let id = v["export_id"].as_str().unwrap().to_owned();
    // Wait until it is running and has written something, then SIGKILL.
    let t0 = Instant::now();
    loop {
        let (_, j) = node.api.get(&format!("/api/v1/exports/{id}")).await;
        if j["status"] == "running" && j["bytes_written"].as_u64().unwrap_or(0) > 0 {
            eprintln!(
                "killing at {}% ({} bytes)",
                j["progress_percent"], j["bytes_written"]
            );
            break;
        }
        assert_ne!(
            j["status"], "completed",
            "the export finished before the kill: {j}"
        );
        assert!(t0.elapsed() < Duration::from_secs(30), "{j}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    node.child.kill().unwrap();
    node.child.wait().unwrap();
    let exports = data.join("exports");
    let left = files(&exports);
    let rows = export_rows(&data.join("vantage.db"));
    eprintln!("after SIGKILL: files {left:?}, rows {rows:?}");
    assert_eq!(rows, [(id.clone(), "running".to_owned())]);
    assert!(
        !left.contains(&format!("{id}.mp4")),
        "no complete-looking MP4 of a running export: {left:?}"
    );
    assert!(left.contains(&format!("{id}.mp4.part")), "{left:?}");

    // Restart: it starts again from zero and completes; no .part is left.
    let node = serve(&config);
    let j = wait_finished(&node.api, &id, Duration::from_secs(120)).await;
    assert_eq!(j["status"], "completed", "{j}");
    let left = files(&exports);
    assert_eq!(
        left,
        [format!("{id}.manifest.json"), format!("{id}.mp4")],
        "only the finished files"
    );
    let pem = data.join("key.pem");
    let key = c
        .get(format!("{}/api/v1/exports/public-key", node.api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    std::fs::write(&pem, key).unwrap();
    let (code, out) = verify_export(
        &exports.join(format!("{id}.mp4")),
        &exports.join(format!("{id}.manifest.json")),
        &pem,
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        j["size_bytes"].as_u64().unwrap(),
        std::fs::metadata(exports.join(format!("{id}.mp4")))
            .unwrap()
            .len()
    );
    drop(node);
    let _ = std::fs::remove_dir_all(&data);
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
async fn a_full_exports_disk_fails_the_export_cleanly_and_recording_goes_on() {
    if !can_unshare() {
        assert!(
            !e2e(),
            "`unshare -rm` does not work: cannot mount a private tmpfs"
        );
        eprintln!("SKIP: `unshare -rm` does not work here; no private tmpfs");
        return;
    }
    let rtsp = vantage::demo::start_cameras("127.0.0.1:0".parse().unwrap())
        .await
        .expect("rtsp server");
    let url = format!("rtsp://{}/h264_a", rtsp.local_addr());
    let data = tempdir("exports-full");
    let mnt = data.join("tmpfs");
    std::fs::create_dir_all(&mnt).unwrap();
    // Exports on a 256 KiB tmpfs (in the node's own mount namespace); recordings elsewhere.
    let yaml = common::recording_yaml(
        &data,
        &url,
        &format!(
            "exports: {{ dir: \"{}\" }}\n",
            mnt.join("exports").display()
        ),
    );
    let config = data.join("vantage.yaml");
    std::fs::write(&config, yaml).unwrap();
    let mut child = Command::new("unshare")
        .args([
            "-rm",
            "sh",
            "-c",
            "mount -t tmpfs -o size=256k tmpfs \"$DIR\" && exec \"$VANTAGE\" serve --config \"$CFG\"",
        ])
        .env("DIR", &mnt)
        .env("VANTAGE", bin())
        .env("CFG", &config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("vantage serving on http://") {
                let _ = tx.send(rest.trim_end_matches('/').to_owned());
            }
        }
    });
    let addr: SocketAddr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("vantage serving")
        .parse()
        .unwrap();
    let node = Served {
        api: Api::new(addr),
        child,
    };
    let exports_in_ns = std::path::PathBuf::from(format!("/proc/{}/root", node.child.id()))
        .join(mnt.join("exports").strip_prefix("/").unwrap());
    let rec_start = recorded(&node.api, 13).await;
    let c = reqwest::Client::new();
    let storage = |v: &Value| {
        (
            v["writer"]["writes"].as_u64().unwrap(),
            v["writer"]["write_errors"].as_u64().unwrap(),
        )
    };
    let (writes_before, errors_before) = storage(&node.api.get("/api/v1/storage").await.1);
    let start = rec_start + Duration::from_millis(500);
    let (s, v) = post_export(
        &c,
        &node.api.base,
        json!({"camera_id": "cam-a", "start_time": rfc(start), "end_time": rfc(start + Duration::from_secs(12))}),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let id = v["export_id"].as_str().unwrap().to_owned();
    let j = wait_finished(&node.api, &id, Duration::from_secs(60)).await;
    assert_eq!(j["status"], "failed", "{j}");
    let why = j["error"].as_str().unwrap().to_owned();
    assert!(why.starts_with("disk full"), "{j}");
    assert!(j["download_url"].is_null());
    let left = files(&exports_in_ns);
    assert!(left.is_empty(), "no partial file left: {left:?}");
    // Recording went on, untouched.
    let t0 = Instant::now();
    loop {
        let (writes, errors) = storage(&node.api.get("/api/v1/storage").await.1);
        assert_eq!(errors, errors_before, "recording saw write errors");
        if writes > writes_before + 2 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "recording stopped");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The space is back: a short export fits and completes.
    let (s, v) = post_export(
        &c,
        &node.api.base,
        json!({"camera_id": "cam-a", "start_time": rfc(start), "end_time": rfc(start + Duration::from_secs(1))}),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let id2 = v["export_id"].as_str().unwrap().to_owned();
    let j = wait_finished(&node.api, &id2, Duration::from_secs(60)).await;
    assert_eq!(j["status"], "completed", "{j}");
    eprintln!(
        "12 s export failed ({why}); 1 s export of {} bytes completed",
        j["size_bytes"]
    );
    drop(node);
    let _ = std::fs::remove_dir_all(&data);
}

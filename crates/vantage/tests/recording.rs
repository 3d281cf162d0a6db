//! Continuous recording through a whole node (issue 5): cameras from the in-process RTSP server
//! are recorded into fMP4 segments; the files, the media index and the API agree. With
//! `VANTAGE_E2E=1` the run lasts minutes and every segment is decoded by ffprobe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, e2e, tempdir};
use recorder::index::{Index, SegmentState};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A node configuration with `data_dir`, `storage` extras and cameras `(id, mount, recording)`.
fn config(data_dir: &Path, storage: &str, cams: &[(&str, String, &str)]) -> settings::Config {
    let mut yaml = format!(
        "server: {{ listen: \"127.0.0.1:0\" }}\n\
         webrtc: {{ udp_port: 0, bind: 127.0.0.1, advertise: [127.0.0.1] }}\n\
         storage: {{ data_dir: \"{}\"{storage} }}\nlive: {{ idle_grace: 1s }}\n\
         agencies:\n  - {{ id: OTHER, max_streams: 10 }}\ncameras:\n",
        data_dir.display()
    );
    for (id, url, mode) in cams {
        yaml.push_str(&format!(
            "  - {{ id: {id}, agency: OTHER, rtsp_url: \"{url}\", recording: {mode} }}\n"
        ));
    }
    settings::load_str(&yaml, Vec::new()).unwrap_or_else(|p| panic!("test config: {p:?}"))
}

/// The in-process RTSP cameras and one camera `cam-a` on clip a, not recorded.
async fn one_camera_off() -> (
    rtsp_server::RtspServer,
    Vec<(&'static str, String, &'static str)>,
) {
    let rtsp = vantage::demo::start_cameras("127.0.0.1:0".parse().unwrap())
        .await
        .expect("rtsp server");
    let url = format!("rtsp://{}/h264_a", rtsp.local_addr());
    (rtsp, vec![("cam-a", url, "off")])
}

async fn send(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let c = reqwest::Client::new();
    let mut r = c.request(method, url);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn wait_for(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> bool) {
    let t0 = Instant::now();
    while !f().await {
        assert!(
            t0.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn storage_camera<'a>(storage: &'a Value, id: &str) -> Option<&'a Value> {
    storage["cameras"]
        .as_array()?
        .iter()
        .find(|c| c["camera_id"] == id)
}

/// ffprobe's frame count and codec of a file (E2E only).
fn ffprobe(file: &Path) -> (u64, String, u64) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,width,nb_read_frames",
            "-of",
            "json",
        ])
        .arg(file)
        .output()
        .expect("ffprobe installed (VANTAGE_E2E=1)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffprobe {}: {stderr}", file.display());
    assert!(
        stderr.trim().is_empty(),
        "ffprobe complained about {}: {stderr}",
        file.display()
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let s = &v["streams"][0];
    let frames = s["nb_read_frames"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (
        frames,
        s["codec_name"].as_str().unwrap_or("").to_owned(),
        s["width"].as_u64().unwrap_or(0),
    )
}

/// ffprobe's presentation timeline of a file's video (E2E only): the format's start time and
/// duration, the video stream's duration, the first video packet's time and the end of the last
/// one (pts + duration), seconds. A segment plays on its own from 0 for its own length (its
/// `tfdt`s start at 0).
fn ffprobe_span(file: &Path) -> (f64, f64, f64, f64, f64) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "format=start_time,duration:stream=duration:packet=pts_time,duration_time",
            "-of",
            "json",
        ])
        .arg(file)
        .output()
        .expect("ffprobe installed (VANTAGE_E2E=1)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffprobe {}: {stderr}", file.display());
    assert!(stderr.trim().is_empty(), "ffprobe: {stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let num = |x: &Value| {
        x.as_str()
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let packets = v["packets"].as_array().cloned().unwrap_or_default();
    assert!(!packets.is_empty(), "{}: no packets", file.display());
    let first = packets
        .iter()
        .map(|p| num(&p["pts_time"]))
        .fold(f64::MAX, f64::min);
    let end = packets
        .iter()
        .map(|p| num(&p["pts_time"]) + num(&p["duration_time"]))
        .fold(f64::MIN, f64::max);
    (
        num(&v["format"]["start_time"]),
        num(&v["format"]["duration"]),
        num(&v["streams"][0]["duration"]),
        first,
        end,
    )
}

/// Plays `files` one after the other through ffmpeg's concat demuxer, as a user plays
/// consecutive segments, decoding every video frame (E2E only): the frames' presentation times,
/// in decode order.
fn ffmpeg_concat_pts(dir: &Path, files: &[PathBuf]) -> Vec<i64> {
    let list = dir.join("concat.txt");
    let mut text = String::new();
    for f in files {
        text.push_str(&format!("file '{}'\n", f.display()));
    }
    std::fs::write(&list, text).unwrap();
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-f", "concat", "-safe", "0", "-i"])
        .arg(&list)
        .args(["-map", "0:v", "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg installed (VANTAGE_E2E=1)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg concat: {stderr}");
    assert!(stderr.trim().is_empty(), "ffmpeg concat: {stderr}");
    // framemd5: `stream, dts, pts, duration, size, md5` per decoded frame.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            l.split(',')
                .nth(2)
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or_else(|| panic!("framemd5 line {l}"))
        })
        .collect()
}

/// Headless Chromium loads `file` in a plain `<video src>` (a `file://` page beside it) and
/// plays it for a second (E2E only); returns what the element reports: `duration`,
/// `current_time`, `frames` (`getVideoPlaybackQuality().totalVideoFrames`), `error`.
fn chromium_video_src(dir: &Path, file: &Path) -> Value {
    let page = dir.join("video_src.html");
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::copy(file, dir.join(&name)).unwrap();
    std::fs::write(
        &page,
        format!("<video id=v muted autoplay playsinline src=\"{name}\"></video>"),
    )
    .unwrap();
    let script = dir.join("video_src.js");
    std::fs::write(&script, VIDEO_SRC_JS).unwrap();
    let out = std::process::Command::new("timeout")
        .args(["120", "node"])
        .arg(&script)
        .arg(format!("file://{}", page.display()))
        .env("PEERS_HOME", common::peers_home())
        .output()
        .expect("node installed (VANTAGE_E2E=1)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chromium: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("chromium json")
}

/// The page script of [`chromium_video_src`]: Chromium launched as the shared peers'
/// `whep_chromium.js` launches it; waits until the video played a second (or failed, or 20 s).
const VIDEO_SRC_JS: &str = r#"
const home = process.env.PEERS_HOME || (require('os').homedir() + '/.cache/peers');
const { chromium } = require(home + '/npm/node_modules/playwright-core');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required', '--allow-file-access-from-files'];
(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ARGS });
  const out = { chromium: browser.version() };
  try {
    const page = await browser.newPage();
    await page.goto(process.argv[2]);
    Object.assign(out, await page.evaluate(() => new Promise(resolve => {
      const v = document.getElementById('v');
      const done = extra => resolve(Object.assign({
        duration: v.duration, current_time: v.currentTime,
        error: v.error ? v.error.code + ' ' + v.error.message : null,
        frames: v.getVideoPlaybackQuality().totalVideoFrames,
      }, extra));
      const check = () => {
        if (v.error) return done({});
        if (v.currentTime >= 1.0 && v.getVideoPlaybackQuality().totalVideoFrames > 0) return done({});
        setTimeout(check, 50);
      };
      v.play().catch(() => {});
      check();
      setTimeout(() => done({ timeout: true }), 20000);
    })));
  } catch (e) { out.exception = String(e); }
  console.log(JSON.stringify(out));
  await browser.close();
})();
"#;

/// ffprobe's view of a file's audio stream: codec, sample rate, frames decoded, and the audio's
/// start time minus the video's, seconds (E2E only).
fn ffprobe_audio(file: &Path) -> (String, u64, u64, f64) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames"])
        .args([
            "-show_entries",
            "stream=codec_type,codec_name,sample_rate,nb_read_frames,start_time",
            "-of",
            "json",
        ])
        .arg(file)
        .output()
        .expect("ffprobe installed (VANTAGE_E2E=1)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffprobe {}: {stderr}", file.display());
    assert!(stderr.trim().is_empty(), "ffprobe: {stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let of = |t: &str| {
        streams
            .iter()
            .find(|s| s["codec_type"] == t)
            .cloned()
            .unwrap_or_else(|| panic!("no {t} stream in {}: {v}", file.display()))
    };
    let (a, vid) = (of("audio"), of("video"));
    let num =
        |s: &Value, k: &str| -> f64 { s[k].as_str().and_then(|n| n.parse().ok()).unwrap_or(-1.0) };
    (
        a["codec_name"].as_str().unwrap_or("").to_owned(),
        num(&a, "sample_rate") as u64,
        num(&a, "nb_read_frames") as u64,
        num(&a, "start_time") - num(&vid, "start_time"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_cameras_are_recorded_into_playable_contiguous_segments() {
    // Minutes with 60 s segments under E2E; a shorter run with 4 s segments otherwise.
    let (run, segment) = if e2e() { (130, 60) } else { (18, 4) };
    let rtsp = vantage::demo::start_cameras("127.0.0.1:0".parse().unwrap())
        .await
        .expect("rtsp server");
    let clip265 = rtsp_server::ClipSource::from_file(
        common::repo_root().join("fixtures/clips/h265_a.h265"),
        media::Codec::H265,
    )
    .expect("h265 fixture");
    rtsp.add_clip_mount("/h265_a", std::sync::Arc::new(clip265));
    let a = rtsp.local_addr();
    // Four H.264 cameras and one H.265 camera (recorded as hvc1); cam-a's source has AAC audio
    // (the demo's first clip), recorded as a second track.
    let ids = ["cam-a", "cam-b", "cam-c", "cam-d", "cam-265"];
    let codec_of = |id: &str| if id == "cam-265" { "h265" } else { "h264" };
    let cams: Vec<(&str, String, &str)> = ids
        .iter()
        .zip(["h264_a", "h264_b", "h264_c", "h264_d", "h265_a"])
        .map(|(id, m)| (*id, format!("rtsp://{a}/{m}"), "continuous"))
        .collect();
    let data = tempdir("recording");
    let node = vantage::Node::start(config(
        &data,
        &format!(", segment_duration: {segment}s"),
        &cams,
    ))
    .await
    .expect("node");
    let api = Api::new(node.http_addr);
    let t0 = std::time::SystemTime::now();
    for id in ids {
        assert!(
            api.wait_status(id, "online", Duration::from_secs(10))
                .await
                .is_some(),
            "{id} online"
        );
    }
    tokio::time::sleep(Duration::from_secs(run)).await;

    // The API while recording: nobody watches, yet the upstreams run and the recorder writes.
    for id in ids {
        let (_, c) = api.get(&format!("/api/v1/cameras/{id}")).await;
        assert_eq!(c["status"], "online", "{c}");
        assert_eq!(c["viewers"], 0, "the recorder is not a viewer: {c}");
        assert_eq!(c["recording"]["mode"], "continuous");
        assert_eq!(c["recording"]["state"], "recording", "{c}");
        assert_eq!(c["recording"]["fragments_dropped"], 0);
        assert_eq!(c["recording"]["frames_dropped_behind"], 0);
        let audio = &c["properties"]["audio"];
        if id == "cam-a" {
            assert_eq!(audio["codec"], "AAC", "{c}");
            assert_eq!(audio["codec_string"], "mp4a.40.2");
            assert_eq!(
                (audio["sample_rate"].as_u64(), audio["channels"].as_u64()),
                (Some(16_000), Some(1))
            );
        } else {
            assert!(audio.is_null(), "{c}");
        }
    }
    let (status, st) = api.get("/api/v1/storage").await;
    assert_eq!(status, 200);
    let writes = st["writer"]["writes"].as_u64().unwrap();
    // One write per 2 s GOP per camera (±1 GOP each for the start and the one in progress).
    let gops = ids.len() as u64 * run / 2;
    assert!(
        writes + 2 * ids.len() as u64 >= gops && writes <= gops + ids.len() as u64,
        "{writes} writes for ~{gops} GOPs"
    );
    assert_eq!(st["writer"]["write_errors"], 0);
    assert!(st["volume"]["free_bytes"].as_u64().unwrap() > 0);
    for id in ids {
        let c = storage_camera(&st, id).unwrap_or_else(|| panic!("{id} in {st}"));
        assert_eq!(c["recording"], true);
        assert!(c["bytes"].as_u64().unwrap() > 10_000 * run, "{c}");
    }
    // The timeline: one local run per camera covering the whole recording, no gaps.
    let (_, tl) = api.get("/api/v1/recordings/cam-a").await;
    assert_eq!(tl["source"], "local", "{tl}");
    let runs = tl["timeline"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{tl}");
    assert!(
        runs[0]["duration_seconds"].as_f64().unwrap() >= run as f64 - 4.0,
        "{tl}"
    );
    assert_eq!(runs[0]["codec"], "H.264");
    assert_eq!(runs[0]["resolution"], "640x360");
    assert_eq!(runs[0]["has_audio"], true, "{tl}");
    // No gap inside the recording: the one gap is the time before it in the requested window
    // (the last 24 h by default), and the time after it is not one while the camera records.
    let gaps = tl["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{tl}");
    assert_eq!(gaps[0]["start_time"], tl["start"], "{tl}");
    assert_eq!(gaps[0]["end_time"], runs[0]["start_time"], "{tl}");
    let (_, tl) = api.get("/api/v1/recordings/cam-b").await;
    assert_eq!(tl["timeline"][0]["has_audio"], false, "{tl}");
    node.shutdown().await;
    let elapsed = t0.elapsed().unwrap().as_secs_f64();

    // The index and the files after a clean shutdown.
    let rec_dir = data.join("recordings");
    let ix = Index::open(&rec_dir.join("index.db"), 0).expect("index");
    for id in ids {
        let offset = recorder::rotation::stagger_offset(id, segment as i64 * 90_000);
        let segs = ix.segments(id, 0, i64::MAX).unwrap();
        assert!(
            segs.len() as u64 >= run / segment,
            "{id}: {} segments in {run} s",
            segs.len()
        );
        let mut total = 0;
        for (i, s) in segs.iter().enumerate() {
            assert_eq!(s.state, SegmentState::Complete, "{s:?}");
            let dur = s.end_90k - s.start_90k;
            // At most the period of camera time; the anchored length may differ by the slew
            // correction (≤ 2000 ppm, design 0006).
            let max = segment as i64 * 90_000;
            assert!(dur <= max + max * 2 / 1000, "{id}: segment of {dur} ticks");
            total += dur;
            if i > 0 {
                assert_eq!(segs[i - 1].end_90k, s.start_90k, "{id}: contiguous");
            }
            // Staggered rotation: every cut but the last (shutdown) falls within one GOP (2 s)
            // after this camera's own boundary.
            if i + 1 < segs.len() {
                let since = (s.end_90k - offset).rem_euclid(max);
                assert!(
                    since < 2 * 90_000 + 9_000,
                    "{id}: cut {since} ticks after its boundary"
                );
            }
            let file = rec_dir.join(&s.path);
            assert_eq!(
                std::fs::metadata(&file).unwrap().len(),
                s.bytes,
                "{}",
                s.path
            );
            let sc = recorder::scan::scan_file(&file).unwrap();
            assert_eq!(sc.valid_len, s.bytes);
            assert_eq!(sc.codec.as_deref(), Some(codec_of(id)));
            assert_eq!(s.codec, codec_of(id));
            let kfs = ix.keyframes(s.id).unwrap();
            assert_eq!(kfs.len(), sc.fragments.len(), "a key frame per fragment");
            // Audio: cam-a's segments have an AAC track with 15.625 frames (of 1024 samples at
            // 16 kHz) per second of video; the others have none.
            let audio: u64 = sc
                .fragments
                .iter()
                .map(|f| u64::from(f.audio_samples))
                .sum();
            if id == "cam-a" {
                assert_eq!(s.codec_string, "avc1.64001e,mp4a.40.2");
                assert_eq!(sc.audio.as_deref(), Some("aac"));
                let want = dur as f64 / 90_000.0 * 15.625;
                assert!(
                    (audio as f64 - want).abs() <= 4.0,
                    "{}: {audio} audio frames for {want:.1}",
                    s.path
                );
                if e2e() {
                    let (codec, rate, frames, offset) = ffprobe_audio(&file);
                    assert_eq!((codec.as_str(), rate), ("aac", 16_000));
                    assert_eq!(frames, audio, "{}: every audio frame decodes", s.path);
                    // In sync: the segment's audio starts within a frame of its video.
                    assert!(
                        (-0.07..0.15).contains(&offset),
                        "{}: audio starts {offset} s after the video",
                        s.path
                    );
                }
            } else {
                assert_eq!((sc.audio.as_deref(), audio), (None, 0), "{}", s.path);
            }
            if e2e() {
                let (frames, codec, width) = ffprobe(&file);
                let samples: u64 = sc.fragments.iter().map(|f| u64::from(f.samples)).sum();
                let want = if codec_of(id) == "h265" {
                    "hevc"
                } else {
                    "h264"
                };
                assert_eq!((codec.as_str(), width), (want, 640));
                assert_eq!(frames, samples, "{}: every frame decodes", s.path);
                // The segment presents from 0 for its own length (not from 1970), and that is
                // its video's duration (within one 40 ms frame) and the file's (for cam-a within
                // two more 64 ms AAC frames: its last audio frame may end after the last video
                // frame, and its contiguous audio timeline may run up to a frame ahead of the
                // anchored time before the segmenter re-bases it).
                let (start, duration, video, first, end) = ffprobe_span(&file);
                let secs = dur as f64 / 90_000.0;
                assert!(start.abs() < 0.001, "{}: starts at {start}", s.path);
                assert!(
                    (video - secs).abs() <= 0.04,
                    "{}: video duration {video} s of a {secs} s segment",
                    s.path
                );
                assert!(
                    (duration - secs).abs() <= 0.04 + 2.0 * 0.064,
                    "{}: duration {duration} s of a {secs} s segment",
                    s.path
                );
                assert!(first.abs() < 0.001, "{}: first frame at {first}", s.path);
                assert!(
                    (end - secs).abs() < 0.05,
                    "{}: presents {end} s of a {secs} s segment",
                    s.path
                );
            }
        }
        // Nothing lost between the first frame and shutdown (≤ one 2 s GOP at the start).
        let secs = total as f64 / 90_000.0;
        assert!(
            secs >= run as f64 - 3.0 && secs <= elapsed + 1.0,
            "{id}: {secs} s recorded"
        );
    }
    if e2e() {
        // Consecutive segments play in sequence as a user plays them: ffmpeg's concat demuxer
        // decodes every frame of both, in order. They join without a gap in wall-clock time:
        // the second starts (index row, and its first fragment's prft) where the first ends.
        let segs = ix.segments("cam-b", 0, i64::MAX).unwrap();
        let (s1, s2) = (&segs[0], &segs[1]);
        assert_eq!(s2.start_90k, s1.end_90k, "contiguous in the index");
        let (f1, f2) = (rec_dir.join(&s1.path), rec_dir.join(&s2.path));
        let (sc1, sc2) = (
            recorder::scan::scan_file(&f1).unwrap(),
            recorder::scan::scan_file(&f2).unwrap(),
        );
        assert_eq!(sc2.start_90k(), sc1.end_90k(), "contiguous by their prfts");
        assert_eq!(sc2.start_90k(), Some(s2.start_90k as u64));
        assert_eq!(sc2.fragments[0].base_decode_time, 0, "each file from 0");
        let n = |sc: &recorder::scan::Scan| -> usize {
            sc.fragments.iter().map(|f| f.samples as usize).sum()
        };
        let pts = ffmpeg_concat_pts(&data, &[f1, f2.clone()]);
        assert_eq!(pts.len(), n(&sc1) + n(&sc2), "every frame of both decodes");
        assert!(pts.windows(2).all(|w| w[1] > w[0]), "in order: {pts:?}");

        // Chromium plays one segment file on its own in a plain <video src>: its duration is
        // the segment's length, and it plays.
        let secs = (s2.end_90k - s2.start_90k) as f64 / 90_000.0;
        let v = chromium_video_src(&data, &f2);
        eprintln!("chromium <video src> of a {secs} s segment: {v}");
        assert!(v["error"].is_null() && v["timeout"].is_null(), "{v}");
        let duration = v["duration"].as_f64().unwrap_or(f64::NAN);
        assert!(
            (duration - secs).abs() <= 0.1,
            "<video> duration {duration} s of a {secs} s segment: {v}"
        );
        assert!(v["current_time"].as_f64().unwrap_or(0.0) >= 1.0, "{v}");
        assert!(v["frames"].as_u64().unwrap_or(0) > 0, "{v}");
    }
    drop(rtsp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_mode_set_through_the_api_persists_and_keeps_the_upstream_running() {
    let (rtsp, cams) = one_camera_off().await;
    let data = tempdir("recording-mode");
    let node = vantage::Node::start(config(&data, "", &cams))
        .await
        .expect("node");
    let api = Api::new(node.http_addr);
    let url = format!("{}/api/v1/cameras/cam-a/recording", api.base);
    let (s, v) = api.get("/api/v1/cameras/cam-a/recording").await;
    assert_eq!(s, 200);
    assert_eq!(
        (v["mode"].as_str(), v["set_by"].as_str()),
        (Some("off"), Some("config"))
    );
    // Nobody watches and it is not recorded: no upstream.
    assert_eq!(api.camera_status("cam-a").await, "idle");

    // Bad requests.
    for (body, field) in [
        (json!({}), "mode"),
        (json!({"mode": "sometimes"}), "mode"),
        (
            json!({"mode": "continuous", "retention_days": -1}),
            "retention_days",
        ),
    ] {
        let (s, e) = send(reqwest::Method::PUT, url.clone(), Some(body)).await;
        assert_eq!(s, 400, "{e}");
        assert_eq!(e["error"]["field"], field, "{e}");
    }
    let (s, e) = send(
        reqwest::Method::PUT,
        format!("{}/api/v1/cameras/nope/recording", api.base),
        Some(json!({"mode": "off"})),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("CAMERA_NOT_FOUND"))
    );

    let (s, v) = send(
        reqwest::Method::PUT,
        url.clone(),
        Some(json!({"mode": "continuous", "retention_days": 30})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["mode"], "continuous");
    assert_eq!(v["retention_days"], 30);
    assert_eq!(v["set_by"], "api");
    wait_for("recorded bytes", Duration::from_secs(15), async || {
        let (_, st) = api.get("/api/v1/storage").await;
        storage_camera(&st, "cam-a").is_some_and(|c| c["bytes"].as_u64() > Some(0))
    })
    .await;
    assert_eq!(api.camera_status("cam-a").await, "online");

    // Off again: the segment is closed and the upstream stops after the idle grace (1 s).
    let (s, v) = send(
        reqwest::Method::PUT,
        url.clone(),
        Some(json!({"mode": "off"})),
    )
    .await;
    assert_eq!((s, v["active"].as_bool()), (200, Some(false)), "{v}");
    assert!(
        api.wait_status("cam-a", "idle", Duration::from_secs(8))
            .await
            .is_some(),
        "upstream stopped"
    );
    let (_, st) = api.get("/api/v1/storage").await;
    let c = storage_camera(&st, "cam-a").unwrap();
    assert_eq!(c["recording"], false);
    let recorded = c["segments"].as_u64().unwrap();
    assert!(recorded >= 1);

    // Continuous again, then restart the node: the stored setting applies without the API.
    let (s, _) = send(
        reqwest::Method::PUT,
        url,
        Some(json!({"mode": "continuous"})),
    )
    .await;
    assert_eq!(s, 200);
    node.shutdown().await;
    let node = vantage::Node::start(config(&data, "", &cams))
        .await
        .expect("node again");
    let api = Api::new(node.http_addr);
    let (_, v) = api.get("/api/v1/cameras/cam-a").await;
    assert_eq!(v["recording"]["mode"], "continuous", "{v}");
    assert_eq!(v["recording"]["set_by"], "api");
    wait_for(
        "recording after restart",
        Duration::from_secs(15),
        async || {
            let (_, st) = api.get("/api/v1/storage").await;
            storage_camera(&st, "cam-a").is_some_and(|c| c["segments"].as_u64() > Some(recorded))
        },
    )
    .await;
    node.shutdown().await;
    drop(rtsp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_locks_are_validated_listed_and_deleted() {
    let (rtsp, cams) = one_camera_off().await;
    let node = vantage::Node::start(config(&tempdir("locks"), "", &cams))
        .await
        .expect("node");
    let base = format!("http://{}", node.http_addr);
    let post = async |b: Value| {
        send(
            reqwest::Method::POST,
            format!("{base}/api/v1/evidence-locks"),
            Some(b),
        )
        .await
    };
    let ok = json!({
        "camera_id": "cam-a", "start_time": "2026-11-21T08:00:00Z",
        "end_time": "2026-11-21T08:10:00Z", "reason": "incident 2026-117, Sheikh Zayed Rd",
    });
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    for (body, status, field) in [
        (with("camera_id", Value::Null), 400, Some("camera_id")),
        (
            with("start_time", json!("yesterday")),
            400,
            Some("start_time"),
        ),
        (
            with("end_time", json!("2026-11-21T07:00:00Z")),
            400,
            Some("end_time"),
        ),
        (with("reason", json!("  ")), 400, Some("reason")),
        (
            with("expires_at", json!("2020-01-01T00:00:00Z")),
            400,
            Some("expires_at"),
        ),
        (with("camera_id", json!("nope")), 404, None),
    ] {
        let (s, e) = post(body).await;
        assert_eq!(s, status, "{e}");
        if let Some(f) = field {
            assert_eq!(e["error"]["field"], f, "{e}");
        } else {
            assert_eq!(e["error"]["code"], "CAMERA_NOT_FOUND");
        }
    }
    let (s, l) = post(with("expires_at", json!("2030-01-01T00:00:00Z"))).await;
    assert_eq!(s, 201, "{l}");
    assert_eq!(l["start_time"], "2026-11-21T08:00:00.000Z");
    assert_eq!(l["expires_at"], "2030-01-01T00:00:00.000Z");
    assert_eq!(l["active"], true);
    let id = l["id"].as_str().unwrap().to_owned();
    let (s, l2) = post(ok.clone()).await;
    assert_eq!(s, 201);
    assert_eq!(l2["expires_at"], Value::Null);

    let api = Api::new(node.http_addr);
    let (_, list) = api.get("/api/v1/evidence-locks?camera_id=cam-a").await;
    assert_eq!(list["total"], 2, "{list}");
    let (_, none) = api.get("/api/v1/evidence-locks?camera_id=cam-b").await;
    assert_eq!(none["total"], 0);
    let (s, one) = api.get(&format!("/api/v1/evidence-locks/{id}")).await;
    assert_eq!(
        (s, one["reason"].as_str()),
        (200, Some("incident 2026-117, Sheikh Zayed Rd"))
    );

    let del = |id: String| {
        send(
            reqwest::Method::DELETE,
            format!("{base}/api/v1/evidence-locks/{id}"),
            None,
        )
    };
    assert_eq!(del(id.clone()).await.0, 204);
    let (s, e) = del(id).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("EVIDENCE_LOCK_NOT_FOUND"))
    );
    assert_eq!(del("not-a-number".into()).await.0, 404);
    let (_, list) = api.get("/api/v1/evidence-locks").await;
    assert_eq!(list["total"], 1);
    // Both ends of the lock are in the audit trail, with who, why and the range.
    tokio::time::sleep(Duration::from_millis(200)).await; // the audit writer lingers 50 ms
    let (_, audit) = api.get("/api/v1/audit?camera_id=cam-a").await;
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["unlock", "lock", "lock"], "{audit}");
    let e = &audit["events"][0];
    assert_eq!(e["reason"], "incident 2026-117, Sheikh Zayed Rd");
    assert_eq!(e["user_id"], "anonymous");
    assert!(
        e["detail"]
            .as_str()
            .unwrap()
            .contains("[2026-11-21T08:00:00.000Z, 2026-11-21T08:10:00.000Z)"),
        "{e}"
    );

    // A lock over months is fine (its summary is one aggregate), but a timeline query is
    // bounded: at most 7 days at a time, 400 naming the field beyond.
    let (s, long) = post(with("end_time", json!("2027-03-01T00:00:00Z"))).await;
    assert_eq!((s, long["segments"].as_u64()), (201, Some(0)), "{long}");
    let (s, e) = api
        .get("/api/v1/recordings/cam-a?start=2026-11-01T00:00:00Z&end=2026-11-21T00:00:00Z")
        .await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(
        (e["error"]["code"].as_str(), e["error"]["field"].as_str()),
        (Some("INVALID_REQUEST"), Some("start")),
        "{e}"
    );
    let (s, tl) = api
        .get("/api/v1/recordings/cam-a?start=2026-11-14T00:00:00Z&end=2026-11-21T00:00:00Z")
        .await;
    assert_eq!(s, 200, "{tl}");
    node.shutdown().await;
    drop(rtsp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_byte_budget_deletes_the_oldest_unlocked_segments_and_keeps_locked_ones() {
    let rtsp = vantage::demo::start_cameras("127.0.0.1:0".parse().unwrap())
        .await
        .expect("rtsp server");
    let a = rtsp.local_addr();
    let cams = vec![
        ("cam-a", format!("rtsp://{a}/h264_a"), "continuous"),
        ("cam-b", format!("rtsp://{a}/h264_b"), "continuous"),
    ];
    // ~50 KB/s per camera; 2 s segments; a budget of ~8 segments per camera.
    let budget = 1_600_000u64;
    let data = tempdir("budget");
    let node = vantage::Node::start(config(
        &data,
        &format!(", max_usage: {budget}B, segment_duration: 2s, retention_interval: 1s"),
        &cams,
    ))
    .await
    .expect("node");
    let api = Api::new(node.http_addr);
    let ix = || Index::open(&data.join("recordings/index.db"), 0).expect("index");
    // Lock cam-a's first complete segment.
    let mut first = None;
    wait_for(
        "cam-a's first segment",
        Duration::from_secs(15),
        async || {
            first = ix()
                .segments("cam-a", 0, i64::MAX)
                .unwrap()
                .into_iter()
                .find(|s| s.state == SegmentState::Complete);
            first.is_some()
        },
    )
    .await;
    let first = first.unwrap();
    let (s, _) = send(
        reqwest::Method::POST,
        format!("{}/api/v1/evidence-locks", api.base),
        Some(json!({
            "camera_id": "cam-a",
            "start_time": base::clock::rfc3339(base::clock::from_unix_ms(first.start_wall_ms)),
            "end_time": base::clock::rfc3339(base::clock::from_unix_ms(first.start_wall_ms + 1)),
            "reason": "test",
        })),
    )
    .await;
    assert_eq!(s, 201);
    // Run until the budget has deleted plenty.
    wait_for("budget deletions", Duration::from_secs(60), async || {
        let (_, st) = api.get("/api/v1/storage").await;
        st["retention"]["deleted_by_budget"].as_u64() >= Some(10)
    })
    .await;
    let (_, st) = api.get("/api/v1/storage").await;
    let used = st["used_bytes"].as_u64().unwrap();
    // Over budget at most by what was written since the last pass (1 s) and the open segments.
    assert!(used <= budget + 400_000, "used {used} of {budget}: {st}");
    assert_eq!(st["writer"]["write_errors"], 0);
    assert!(st["retention"]["locked_kept"].as_u64() >= Some(1), "{st}");
    let ix = ix();
    let kept = ix
        .segment(first.id)
        .unwrap()
        .expect("the locked segment is kept");
    assert!(data.join("recordings").join(&kept.path).exists());
    let a = ix.segments("cam-a", 0, i64::MAX).unwrap();
    assert_eq!(a[0].id, first.id, "the locked segment is cam-a's oldest");
    assert!(
        a[1].start_wall_ms > first.end_wall_ms + 4_000,
        "unlocked segments after it were deleted: {:?}",
        &a[..2]
    );
    // cam-b lost its oldest too, and the deleted files are gone from disk.
    let b = ix.segments("cam-b", 0, i64::MAX).unwrap();
    assert!(b[0].start_wall_ms > first.start_wall_ms + 4_000);
    node.shutdown().await;
    drop(rtsp);
}

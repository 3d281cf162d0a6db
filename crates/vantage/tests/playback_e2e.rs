//! Playback proven from the picture (issue 10, "Tests that must exist and pass"), only with
//! `VANTAGE_E2E=1`: a clip whose every frame carries the shared peers' barcode (`stamp.py`, row B =
//! a frame counter) is generated at test time, served over RTSP by GStreamer
//! (`gst_rtsp_server.py`, looped file, no re-encode, 25 fps) and recorded by a node with 4 s
//! segments. ffmpeg, ffprobe and headless Chromium then read Vantage's playback and the tests read
//! the counter out of the frames they show.
//!
//! How the expected frame is computed ([`Recorded`]): the playback of the run's first 12 s (it
//! starts at the run's first frame, a key frame: no edit list involved) is decoded by ffmpeg and
//! each frame's counter read from its own pixels, paired with its packet's time in that file. The
//! frame recorded at wall time `T` is the one whose recorded span holds `T - run_start`; every
//! check also asserts it is within one frame of the source's own count,
//! `c0 + floor((T - run_start) / 40 ms)` (`c0` = the first recorded frame's counter, the source
//! runs at exactly 25 fps). The two can differ by one frame near a frame's edge: the node anchors
//! the camera's clock to the wall clock (design 0006) and slews its frame times by up to 0.2 %.
//! Frame identities come from the pictures; only the run's start time and the recorded frame
//! times come from the node.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, Peer, e2e, free_tcp_port, repo_root, rfc, shared_peers, tempdir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const W: usize = 640;
const H: usize = 360;
const FRAME: Duration = Duration::from_millis(40);

fn unix_s(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// A 60 s stamped clip at `<dir>/h264_720p25.h264` (the name `gst_rtsp_server.py` mounts as
/// `/h264_720p`; the picture is 640x360).
fn stamped_clip(dir: &Path) {
    let out = Command::new("/usr/bin/python3")
        .arg(repo_root().join("crates/vantage/tests/peers/stamped_clip.py"))
        .arg(dir.join("h264_720p25.h264"))
        .args(["1500", &W.to_string(), &H.to_string()])
        .env("SHARED_PEERS", shared_peers())
        .output()
        .expect("python3 and ffmpeg installed (VANTAGE_E2E=1)");
    assert!(
        out.status.success(),
        "stamped clip: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn gst(port: u16, media: &Path) -> Peer {
    common::gst_rtsp_server(port, Some(media))
}

/// stamp.py's `_read_row` on a grey plane.
fn read_row(y: &[u8], n: usize, rows: (f64, f64)) -> Option<u32> {
    const X0: f64 = 0.025;
    const BW: f64 = 0.028;
    let yc = ((rows.0 + rows.1) / 2.0 * H as f64) as usize;
    let mut bits = Vec::new();
    for i in 0..n + 2 {
        let xc = ((X0 + (i as f64 + 0.5) * BW) * W as f64) as usize;
        let mut s = 0u32;
        for yy in yc - 2..yc + 3 {
            for xx in xc - 2..xc + 3 {
                s += u32::from(y[yy * W + xx]);
            }
        }
        bits.push(u8::from(s as f64 / 25.0 > 128.0));
    }
    if bits[0] != 1 || bits[n + 1] != 0 {
        return None;
    }
    Some(bits[1..=n].iter().fold(0, |v, b| (v << 1) | u32::from(*b)))
}

/// The frame counters (row B) of the frames ffmpeg presents from `url` (edit list honoured, no
/// frame duplicated or dropped), at most `max` frames.
fn stamps(url: &str, max: usize) -> Vec<Option<u32>> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i", url, "-frames:v", &max.to_string()])
        .args([
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-",
        ])
        .output()
        .expect("ffmpeg installed (VANTAGE_E2E=1)");
    assert!(
        out.status.success(),
        "ffmpeg {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.stderr.is_empty() {
        eprintln!("ffmpeg {url}: {}", String::from_utf8_lossy(&out.stderr));
    }
    out.stdout
        .chunks_exact(W * H)
        .map(|f| read_row(f, 24, (0.66, 0.74)))
        .collect()
}

/// The counter of the first frame presented from `url`.
fn first_stamp(url: &str) -> u32 {
    let s = stamps(url, 1);
    assert_eq!(s.len(), 1, "one frame from {url}");
    s[0].unwrap_or_else(|| panic!("no barcode in the first frame of {url}"))
}

/// ffprobe: the video packets' pts (stream time base ticks), in file order, and the format's
/// duration.
fn packets(url: &str) -> (Vec<i64>, f64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "packet=pts:format=duration", "-of", "json"])
        .arg(url)
        .output()
        .expect("ffprobe installed (VANTAGE_E2E=1)");
    assert!(
        out.status.success(),
        "ffprobe {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pts = v["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pts"].as_i64().expect("every packet has a pts"))
        .collect();
    let d = v["format"]["duration"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(-1.0);
    (pts, d)
}

/// Splits counters into runs of consecutive values; panics on a frame without a barcode.
fn consecutive_runs(s: &[Option<u32>]) -> Vec<(u32, usize)> {
    let mut runs: Vec<(u32, usize)> = Vec::new();
    for (i, c) in s.iter().enumerate() {
        let c = c.unwrap_or_else(|| panic!("frame {i} has no barcode"));
        match runs.last_mut() {
            Some((first, n)) if *first + *n as u32 == c => *n += 1,
            _ => runs.push((c, 1)),
        }
    }
    runs
}

/// A node recording `rtsp://127.0.0.1:{port}/h264_720p` as `cam-s`, 4 s segments.
async fn stamped_node(port: u16) -> (vantage::Node, Api) {
    let data = tempdir("playback-e2e");
    let yaml = format!(
        "server: {{ listen: \"127.0.0.1:0\" }}\n\
         webrtc: {{ udp_port: 0, bind: 127.0.0.1, advertise: [127.0.0.1] }}\n\
         storage: {{ data_dir: \"{}\", segment_duration: 4s }}\n\
         playback: {{ max_span: 1h }}\n\
         agencies:\n  - {{ id: OTHER, max_streams: 10 }}\n\
         cameras:\n  - {{ id: cam-s, name: Stamped, agency: OTHER, \
         rtsp_url: \"rtsp://127.0.0.1:{port}/h264_720p\", recording: continuous }}\n",
        data.display()
    );
    let cfg = settings::load_str(&yaml, Vec::new()).unwrap_or_else(|p| panic!("config: {p:?}"));
    let node = vantage::Node::start(cfg).await.expect("node");
    let api = Api::new(node.http_addr);
    assert!(
        api.wait_status("cam-s", "online", Duration::from_secs(20))
            .await
            .is_some(),
        "camera online"
    );
    (node, api)
}

/// The recorded runs `(start, end)` since `since`.
async fn runs(api: &Api, since: SystemTime) -> Vec<(SystemTime, SystemTime)> {
    let (_, t) = api
        .get(&format!(
            "/api/v1/recordings/cam-s?start={}&end={}",
            rfc(since),
            rfc(SystemTime::now() + Duration::from_secs(5))
        ))
        .await;
    t["timeline"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    let p = |k: &str| base::time::rfc3339::parse(e[k].as_str().unwrap()).unwrap();
                    (p("start_time"), p("end_time"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until run number `idx` holds at least `secs` seconds.
async fn wait_recorded(
    api: &Api,
    since: SystemTime,
    idx: usize,
    secs: u64,
) -> Vec<(SystemTime, SystemTime)> {
    for _ in 0..600 {
        let r = runs(api, since).await;
        if let Some((s, e)) = r.get(idx)
            && e.duration_since(*s).unwrap_or_default() >= Duration::from_secs(secs)
        {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "run {idx} never reached {secs} s: {:?}",
        runs(api, since).await
    );
}

/// What the node recorded of a run's first seconds, each frame identified by its own barcode:
/// the playback of `[run start, +secs)` (it starts at the run's first frame, a key frame, so no
/// edit is involved) decoded by ffmpeg, each frame paired with its packet's time in the file.
struct Recorded {
    run_start: SystemTime,
    /// (counter, seconds after the run's start), in order.
    frames: Vec<(u32, f64)>,
}

impl Recorded {
    fn read(base: &str, run_start: SystemTime, secs: u32) -> Recorded {
        let url = format!(
            "{base}/api/v1/playback/cam-s?start={}&duration={secs}",
            rfc(run_start)
        );
        let s = stamps(&url, 10_000);
        let (pts, d) = packets(&url);
        assert_eq!(
            s.len(),
            pts.len(),
            "every packet of {url} presented (duration {d}, last pts {:?}, last stamps {:?})",
            pts.iter().rev().take(3).collect::<Vec<_>>(),
            s.iter().rev().take(3).collect::<Vec<_>>()
        );
        let runs = consecutive_runs(&s);
        assert_eq!(runs.len(), 1, "counters not consecutive: {runs:?}");
        Recorded {
            run_start,
            frames: s
                .iter()
                .zip(&pts)
                .map(|(c, p)| (c.unwrap(), *p as f64 / 90_000.0))
                .collect(),
        }
    }

    fn c0(&self) -> u32 {
        self.frames[0].0
    }

    /// The source's view: the counter stamped `(t - run start) / 40 ms` frames after the first
    /// recorded one (the source runs at exactly 25 fps).
    fn nominal(&self, t: SystemTime) -> u32 {
        let d = t.duration_since(self.run_start).unwrap();
        self.c0() + (d.as_nanos() / FRAME.as_nanos()) as u32
    }

    /// The recording's view: the frame whose recorded time span holds `t` (the node anchors the
    /// camera's clock to the wall clock, design 0006, so its frame times may run up to 0.2 % off
    /// the source's 40 ms while it slews).
    fn at(&self, t: SystemTime) -> u32 {
        let d = t.duration_since(self.run_start).unwrap().as_secs_f64();
        self.frames
            .iter()
            .take_while(|(_, p)| *p <= d + 1e-6)
            .last()
            .expect("t in the run")
            .0
    }

    /// 20 ms into frame `c`'s recorded span, wall clock.
    fn mid_frame(&self, c: u32) -> SystemTime {
        self.run_start + Duration::from_secs_f64(self.time_of(c)) + Duration::from_millis(20)
    }

    /// The recorded time of frame `c`, seconds after the run's start.
    fn time_of(&self, c: u32) -> f64 {
        self.frames[(c - self.c0()) as usize].1
    }
}

/// Asserts the frame shown is the one recorded at `t` and within one frame of the source's
/// count; returns the expected counter.
fn check_frame(rec: &Recorded, t: SystemTime, got: u32, what: &str) -> u32 {
    let (want, nominal) = (rec.at(t), rec.nominal(t));
    assert_eq!(
        got,
        want,
        "{what} at {}: the frame shown is not the one recorded then",
        rfc(t)
    );
    assert!(
        got.abs_diff(nominal) <= 1,
        "{what} at {}: #{got}, the source's 25 fps says #{nominal}",
        rfc(t)
    );
    want
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_sees_the_frame_recorded_at_start_across_segments_and_a_reconnect() {
    if !e2e() {
        eprintln!("skipped: VANTAGE_E2E=1 runs it");
        return;
    }
    let media = tempdir("stamped-clip");
    stamped_clip(&media);
    let port = free_tcp_port();
    let mut src = gst(port, &media);
    let since = SystemTime::now() - Duration::from_secs(5);
    let (node, api) = stamped_node(port).await;
    let r = wait_recorded(&api, since, 0, 13).await;
    let (rs, _) = r[0];
    let base = api.base.clone();
    let play = |start: SystemTime, dur: &str, extra: &str| {
        format!(
            "{base}/api/v1/playback/cam-s?start={}&duration={dur}{extra}",
            rfc(start)
        )
    };

    // The first 12 s as recorded, each frame known by its own barcode.
    let rec = Recorded::read(&base, rs, 12);
    let c0 = rec.c0();
    eprintln!("run starts {} with frame #{c0}", rfc(rs));

    // 12 s from the run's start, across the 4 s and 8 s segment boundaries: every frame there,
    // in order, none lost, none repeated; the packets' timestamps strictly increase.
    let url = play(rs, "12", "");
    let s = stamps(&url, 1000);
    let runs12 = consecutive_runs(&s);
    assert_eq!(runs12.len(), 1, "counters not consecutive: {runs12:?}");
    assert_eq!(runs12[0].0, c0);
    assert!(
        (299..=301).contains(&s.len()),
        "{} frames presented for 12 s",
        s.len()
    );
    let (pts, duration) = packets(&url);
    assert!(
        pts.windows(2).all(|w| w[0] < w[1]),
        "pts not strictly increasing"
    );
    assert!(
        (duration - 12.0).abs() <= 0.04 + 1e-6,
        "duration {duration}"
    );
    eprintln!(
        "12 s across 2 segment boundaries: {} frames #{c0}..#{} consecutive, {} packets, duration {duration}",
        s.len(),
        c0 + s.len() as u32 - 1,
        pts.len()
    );

    // Starts off the key frames (one just past a segment boundary): the first presented frame is
    // the one recorded at `start`; the duration within one frame.
    // Each start is 20 ms into a recorded frame, away from the frames' edges.
    for (k, dur) in [(62u32, 3.0), (101, 2.5), (163, 4.0), (237, 1.2)] {
        let t = rec.mid_frame(c0 + k);
        let url = play(t, &dur.to_string(), "");
        let got = first_stamp(&url);
        let want = check_frame(&rec, t, got, "first frame");
        // From the start of that frame (at most 40 ms before `t`) to the end asked: within one
        // frame of the duration asked; the frames recorded in that span, each once.
        let (pts, d) = packets(&url);
        assert!(d >= dur - 0.001 && d < dur + 0.04, "duration {d} for {dur}");
        let s = stamps(&url, 1000);
        let end = t.duration_since(rs).unwrap().as_secs_f64() + dur;
        let n_want = rec
            .frames
            .iter()
            .filter(|(c, p)| *c >= want && *p < end - 1e-6)
            .count();
        assert_eq!(
            consecutive_runs(&s),
            [(want, n_want)],
            "the frames of the span"
        );
        let n = s.len();
        let lead_ms = (t.duration_since(rs).unwrap().as_secs_f64() - rec.time_of(want)) * 1000.0;
        eprintln!(
            "start +{} ms: first frame #{got} (recorded at start: #{want}, source count #{}; frame starts {lead_ms:.1} ms before), duration {d} (asked {dur}), {n} frames shown of {} packets",
            t.duration_since(rs).unwrap().as_millis(),
            rec.nominal(t),
            pts.len()
        );
    }

    // HLS (ffmpeg's HLS demuxer over the playlist and its fMP4 parts): whole GOPs, so from the
    // key frame before the start (every 50th frame) to the end of the last part, every frame once.
    let t = rec.mid_frame(c0 + 62);
    let hls = format!(
        "{base}/api/v1/playback/cam-s/index.m3u8?start={}&duration=6",
        rfc(t)
    );
    let m3u8 = reqwest::get(&hls).await.unwrap().text().await.unwrap();
    let listed: f64 = m3u8
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').parse::<f64>().unwrap())
        .sum();
    let s = stamps(&hls, 1000);
    let hls_runs = consecutive_runs(&s);
    assert_eq!(hls_runs.len(), 1, "{hls_runs:?}");
    assert_eq!(
        hls_runs[0].0,
        c0 + 50,
        "from the key frame before the start"
    );
    assert!(
        (s.len() as f64 - listed * 25.0).abs() <= 1.0,
        "{} frames for {listed} s listed",
        s.len()
    );
    eprintln!(
        "HLS from +{} ms: frames #{}..#{} ({listed} s listed)",
        t.duration_since(rs).unwrap().as_millis(),
        hls_runs[0].0,
        hls_runs[0].0 + s.len() as u32 - 1
    );

    // An evidence export from a start off the key frames (frame 113, GOP at 100): ffprobe says
    // its duration is within one frame of the range asked, the first frame it presents is the
    // one recorded at `start_time` (read from the picture), and it holds exactly the frames
    // recorded in the range, each once; its manifest counts them too.
    let t = rec.mid_frame(c0 + 113);
    let (file, manifest) = export(&api, t, t + Duration::from_secs(3), &media).await;
    let got = first_stamp(file.to_str().unwrap());
    let want = check_frame(&rec, t, got, "export's first frame");
    let (pts, d) = packets(file.to_str().unwrap());
    assert!(
        (3.0 - 0.001..3.04).contains(&d),
        "export duration {d} for 3 s"
    );
    let end = t.duration_since(rs).unwrap().as_secs_f64() + 3.0;
    let n_want = rec
        .frames
        .iter()
        .filter(|(c, p)| *c >= want && *p < end - 1e-6)
        .count();
    let s = stamps(file.to_str().unwrap(), 1000);
    assert_eq!(
        consecutive_runs(&s),
        [(want, n_want)],
        "the export's frames"
    );
    assert_eq!(
        manifest["manifest"]["video_frames"].as_u64(),
        Some(pts.len() as u64),
        "{manifest}"
    );
    eprintln!(
        "export from +{} ms, 3 s: first frame #{got} (recorded then: #{want}), duration {d}, {} frames",
        t.duration_since(rs).unwrap().as_millis(),
        s.len()
    );

    // The latest recording, up to the segment being written: the frame recorded at the start
    // first, every frame once.
    let (_, e) = runs(&api, since).await[0];
    let t_live = e - Duration::from_millis(1_500);
    // (Only what is recorded already: two reads of one range see the same frames.)
    let rec_now = Recorded::read(&base, rs, e.duration_since(rs).unwrap().as_secs() as u32);
    let live = play(t_live, "1", "");
    let s = stamps(&live, 1000);
    let got = s[0].expect("barcode");
    check_frame(&rec_now, t_live, got, "first frame near the live edge");
    let live_runs = consecutive_runs(&s);
    assert_eq!(live_runs.len(), 1, "{live_runs:?}");
    assert!((25..=26).contains(&s.len()), "{} frames for 1 s", s.len());
    eprintln!(
        "1 s from {} ms before the recorded end: first frame #{got}, {} frames",
        e.duration_since(t_live).unwrap().as_millis(),
        s.len()
    );

    // A camera reconnect: the source stops and comes back (its counter restarts at 0).
    src.assert_alive();
    src.kill();
    for _ in 0..100 {
        if api.camera_status("cam-s").await != "online" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut src = gst(port, &media);
    let r = wait_recorded(&api, since, 1, 5).await;
    let ((_, e1), (s2, _)) = (r[0], r[1]);
    eprintln!("runs: {r:?}");
    let from = e1 - Duration::from_secs(3);
    let to = s2 + Duration::from_secs(3);
    let span = format!(
        "{base}/api/v1/playback/cam-s?start={}&end={}",
        rfc(from),
        rfc(to)
    );

    // Without skip_gaps the file ends at the gap and says where.
    let resp = reqwest::get(&span).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["vantage-recording-end"].to_str().unwrap(),
        base::time::rfc3339::format_ms(e1.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64)
    );
    let s = stamps(&span, 1000);
    let one = consecutive_runs(&s);
    assert_eq!(one.len(), 1, "{one:?}");
    assert!(
        (74..=77).contains(&s.len()),
        "{} frames to the gap",
        s.len()
    );

    // With skip_gaps it goes on with the next run: the gap listed, timestamps monotonic, the
    // frames of both runs all there.
    let skip = format!("{span}&skip_gaps=true");
    let resp = reqwest::get(&skip).await.unwrap();
    assert_eq!(resp.status(), 200);
    let gaps = resp.headers()["vantage-gaps"].to_str().unwrap().to_owned();
    assert_eq!(gaps.matches('=').count(), 1, "{gaps}");
    assert!(
        gaps.contains(&format!(
            "={}/{}",
            base::time::rfc3339::format_ms(
                e1.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
            ),
            base::time::rfc3339::format_ms(
                s2.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
            )
        )),
        "{gaps}"
    );
    let (pts, d) = packets(&skip);
    assert!(
        pts.windows(2).all(|w| w[0] < w[1]),
        "pts not strictly increasing across the reconnect"
    );
    let s = stamps(&skip, 1000);
    let two = consecutive_runs(&s);
    assert_eq!(two.len(), 2, "{two:?}");
    assert_eq!(two[0], one[0], "the first run's frames");
    let c0b = first_stamp(&play(s2, "1", ""));
    assert_eq!(two[1].0, c0b, "the second run from its first frame");
    assert!((74..=77).contains(&two[1].1), "{two:?}");
    assert!((d - 6.0).abs() <= 0.08 + 1e-6, "duration {d}");
    eprintln!(
        "reconnect with skip_gaps: gaps {gaps}; frames #{}..#{} then #{}..#{}, {} packets strictly increasing, duration {d}",
        two[0].0,
        two[0].0 + two[0].1 as u32 - 1,
        two[1].0,
        two[1].0 + two[1].1 as u32 - 1,
        pts.len()
    );

    // Chromium's <video src> of the same file: it starts with the first run's frame and a seek
    // past the removed gap (where `Vantage-Gaps` says it is) lands on the second run's frame
    // recorded there.
    let gap_at: f64 = gaps.split('=').next().unwrap().parse().unwrap();
    let rec2 = Recorded::read(&base, s2, 4);
    let c = rec2.c0() + 25;
    let seek = gap_at + rec2.time_of(c) + 0.02;
    let path = skip.strip_prefix(base.as_str()).unwrap();
    let v = chromium(&["src", &base, path, &format!("{seek:.4}")]);
    eprintln!(
        "chromium <video src> across the reconnect: {v} (expected first #{}, at {seek:.3} s #{c})",
        two[0].0
    );
    assert!(v["error"].is_null(), "{v}");
    assert!((v["duration"].as_f64().unwrap() - d).abs() <= 0.04, "{v}");
    assert_eq!(v["first_stamp"].as_u64(), Some(u64::from(two[0].0)), "{v}");
    let got = v["seek_stamp"].as_u64().expect("stamp after seek") as u32;
    check_frame(
        &rec2,
        rec2.mid_frame(c),
        got,
        "<video src> seek past the gap",
    );

    src.assert_alive();
    node.shutdown().await;
}

/// Exports `[from, to)` of `cam-s` through the API, waits for it, downloads the MP4 into `dir`;
/// returns its path and the manifest.
async fn export(api: &Api, from: SystemTime, to: SystemTime, dir: &Path) -> (PathBuf, Value) {
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{}/api/v1/export", api.base))
        .json(&serde_json::json!({
            "camera_id": "cam-s", "start_time": rfc(from), "end_time": rfc(to)
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    let id = v["export_id"].as_str().unwrap().to_owned();
    let mut v = Value::Null;
    for _ in 0..600 {
        v = api.get(&format!("/api/v1/exports/{id}")).await.1;
        if v["status"] != "queued" && v["status"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(v["status"], "completed", "{v}");
    let get = |what: &str| {
        c.get(format!("{}/api/v1/exports/{id}/{what}", api.base))
            .send()
    };
    let bytes = get("download").await.unwrap().bytes().await.unwrap();
    let manifest: Value = get("manifest").await.unwrap().json().await.unwrap();
    let path = dir.join(format!("{id}.mp4"));
    std::fs::write(&path, &bytes).unwrap();
    (path, manifest)
}

/// Runs `playback_chromium.js` (E2E only) and returns its JSON line.
fn chromium(args: &[&str]) -> Value {
    let out = Command::new("timeout")
        .args(["240", "node"])
        .arg(repo_root().join("crates/vantage/tests/peers/playback_chromium.js"))
        .args(args)
        .env("PEERS_HOME", common::peers_home())
        .output()
        .expect("node installed (VANTAGE_E2E=1)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chromium: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("json");
    assert!(v["exception"].is_null(), "chromium: {v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_the_mp4_and_mse_and_a_seek_lands_on_the_frame_stamped_there() {
    if !e2e() {
        eprintln!("skipped: VANTAGE_E2E=1 runs it");
        return;
    }
    let media = tempdir("stamped-clip");
    stamped_clip(&media);
    let port = free_tcp_port();
    let mut src = gst(port, &media);
    let since = SystemTime::now() - Duration::from_secs(5);
    let (node, api) = stamped_node(port).await;
    let r = wait_recorded(&api, since, 0, 13).await;
    let (rs, _) = r[0];
    let base = api.base.clone();
    let rec = Recorded::read(&base, rs, 12);

    // <video src>: the MP4 from a start off the key frames (frame 62, GOP at 50). Media time 0
    // is the start of the frame shown at `t`; a seek to `seek` shows the frame recorded then.
    let c0 = rec.c0();
    let t = rec.mid_frame(c0 + 62);
    let want_first = rec.at(t);
    // A seek to 20 ms into frame 138.
    let seek_wall = rec.mid_frame(c0 + 138);
    let seek = rec.time_of(c0 + 138) + 0.02 - rec.time_of(want_first);
    let want_seek = rec.at(seek_wall);
    let path = format!("/api/v1/playback/cam-s?start={}&duration=6", rfc(t));
    let v = chromium(&["src", &base, &path, &seek.to_string()]);
    eprintln!("chromium <video src>: {v} (expected first #{want_first}, at {seek} s #{want_seek})");
    assert!(v["error"].is_null(), "{v}");
    assert_eq!(v["width"], W);
    let d = v["duration"].as_f64().unwrap();
    // From the start of the frame shown at `t` to the end asked: within one frame of 6 s.
    assert!((6.0..6.04).contains(&d), "duration {d}");
    assert!(v["decoded"].as_u64().unwrap() >= 20, "{v}");
    assert!(v["presented"].as_u64().unwrap() >= 10, "{v}");
    let first = v["first_stamp"].as_u64().expect("first frame stamp") as u32;
    check_frame(&rec, t, first, "<video src> first frame");
    let got = v["seek_stamp"].as_u64().expect("stamp after seek") as u32;
    check_frame(&rec, seek_wall, got, "<video src> seek");

    // MSE: init.mp4 + two media.m4s ranges fetched separately and appended later one first (as a
    // UI scrubbing back would): they land on one timeline, the wall clock, with no hole; a seek
    // to T shows the frame recorded at T.
    let init = format!("/api/v1/playback/cam-s/init.mp4?start={}", rfc(t));
    let m4s = |from: SystemTime| {
        format!(
            "/api/v1/playback/cam-s/media.m4s?start={}&duration=3",
            rfc(from)
        )
    };
    let (early, late) = (m4s(t), m4s(t + Duration::from_secs(3)));
    let target = seek_wall;
    let want_seek = rec.at(target);
    let v = chromium(&[
        "mse",
        &base,
        &init,
        &format!("{:.4}", unix_s(target)),
        &late,
        &early,
    ]);
    eprintln!(
        "chromium MSE: {v} (expected at {} #{want_seek})",
        rfc(target)
    );
    assert_eq!(v["supported"], true, "{v}");
    assert!(v["error"].is_null(), "{v}");
    let b = v["buffered"].as_array().unwrap();
    assert_eq!(b.len(), 1, "{v}");
    let (b0, b1) = (b[0][0].as_f64().unwrap(), b[0][1].as_f64().unwrap());
    // The fragments start at the key frame before `t` (every 50th frame of the clip), at its
    // recorded time on the Unix clock.
    let key_frame = want_first - (want_first - rec.c0()) % 50;
    let key = unix_s(rs) + rec.time_of(key_frame);
    assert!(
        (b0 - key).abs() <= 0.002,
        "buffered from {b0}, key frame at {key}"
    );
    assert!(b1 >= unix_s(t) + 5.9, "buffered to {b1}");
    let got = v["seek_stamp"].as_u64().expect("stamp after seek") as u32;
    check_frame(&rec, target, got, "MSE seek");
    assert!(v["decoded"].as_u64().unwrap() >= 5, "{v}");

    // hls.js (how Chromium and Firefox play HLS) over the VOD playlist from `t`: its parts start
    // on key frames, so it presents from the key frame before `t`, the playlist's program date
    // time is that frame's recorded time, and a seek lands on the frame recorded then.
    let hls = format!(
        "/api/v1/playback/cam-s/index.m3u8?start={}&duration=6",
        rfc(t)
    );
    let seek = rec.time_of(c0 + 138) + 0.02 - rec.time_of(key_frame);
    let v = chromium(&["hls", &base, &hls, &format!("{seek:.4}")]);
    eprintln!(
        "chromium hls.js: {v} (expected first #{key_frame}, at {seek:.3} s #{})",
        rec.at(seek_wall)
    );
    assert_eq!(v["supported"], true, "{v}");
    assert!(v["error"].is_null(), "{v}");
    assert_eq!(v["first_stamp"].as_u64(), Some(u64::from(key_frame)), "{v}");
    let pdt = v["program_date_time"].as_f64().expect("program date time") / 1000.0;
    assert!((pdt - key).abs() <= 0.002, "{v}: key frame at {key}");
    assert!(v["duration"].as_f64().unwrap() >= 6.0, "{v}");
    let got = v["seek_stamp"].as_u64().expect("stamp after seek") as u32;
    check_frame(&rec, seek_wall, got, "hls.js seek");

    src.assert_alive();
    node.shutdown().await;
}

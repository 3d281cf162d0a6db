//! Shared test harness: free ports, third-party peer processes (started per test, checked alive at
//! the end, killed on drop), an in-process node, and small HTTP helpers.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// True when the real-peer tests must run (`VANTAGE_E2E=1`). Then a missing peer is a failure.
pub fn e2e() -> bool {
    std::env::var("VANTAGE_E2E").is_ok_and(|v| v == "1")
}

pub fn peers_home() -> PathBuf {
    std::env::var_os("PEERS_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/peers")
        })
}

/// `../shared/peers` beside the repository.
pub fn shared_peers() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/peers")
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn venv_python() -> PathBuf {
    peers_home().join("venv/bin/python")
}

/// A TCP port free right now on 127.0.0.1.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding port 0 on loopback works on any test machine")
}

/// A child process that is killed when dropped.
pub struct Peer {
    pub name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Peer {
    /// Starts `cmd`, and if `ready` is given waits (up to 20 s) for a stdout line starting with it.
    pub fn spawn(name: &str, cmd: &mut Command, ready: Option<&str>) -> Peer {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start peer {name}: {e}"));
        let stdout = child.stdout.take().expect("stdout was piped above");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = Peer {
            name: name.to_owned(),
            child,
            lines,
        };
        if let Some(prefix) = ready {
            p.wait_line(prefix, Duration::from_secs(20))
                .unwrap_or_else(|| panic!("peer {name} did not print {prefix:?}"));
        }
        p
    }

    /// Waits for a stdout line starting with `prefix`.
    pub fn wait_line(&mut self, prefix: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return Some(l),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Waits for the process to exit and returns its last JSON line.
    pub fn json_result(&mut self, timeout: Duration) -> Value {
        let line = self
            .wait_line("{", timeout)
            .unwrap_or_else(|| panic!("peer {} printed no JSON result", self.name));
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("bad JSON from {}: {e}: {line}", self.name))
    }

    pub fn assert_alive(&mut self) {
        match self.child.try_wait() {
            Ok(None) => {}
            other => panic!("peer {} died during the test: {other:?}", self.name),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// GStreamer's RTSP server on a free port, serving `media_dir` (default: the peers' clips).
pub fn gst_rtsp_server(port: u16, media_dir: Option<&std::path::Path>) -> Peer {
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(shared_peers().join("gst_rtsp_server.py"))
        .args(["--port", &port.to_string()]);
    if let Some(m) = media_dir {
        cmd.arg("--media").arg(m);
    }
    Peer::spawn("gst_rtsp_server", &mut cmd, Some("READY"))
}

/// A node configuration with the given cameras (`(id, agency, rtsp_url)`), on free ports.
pub fn node_config(cameras: &[(&str, &str, String)], idle_grace: &str) -> settings::Config {
    node_config_with(cameras, &format!("live: {{ idle_grace: {idle_grace} }}"))
}

/// Like [`node_config`], with `extra` top-level YAML sections (`limits: {...}`, `live: {...}`).
pub fn node_config_with(cameras: &[(&str, &str, String)], extra: &str) -> settings::Config {
    let mut yaml = format!(
        "server: {{ listen: \"127.0.0.1:0\" }}\nwebrtc: {{ udp_port: 0, bind: 127.0.0.1, advertise: [127.0.0.1] }}\n\
         storage: {{ data_dir: \"{}\" }}\n{extra}\nagencies:\n\
         \x20 - {{ id: DUBAI_POLICE, max_streams: 50 }}\n  - {{ id: METRO, max_streams: 30 }}\n\
         \x20 - {{ id: BUS, max_streams: 20 }}\n  - {{ id: OTHER, max_streams: 400 }}\ncameras:\n",
        tempdir("node").display()
    );
    for (id, agency, url) in cameras {
        yaml.push_str(&format!(
            "  - {{ id: {id}, agency: {agency}, rtsp_url: \"{url}\" }}\n"
        ));
    }
    settings::load_str(&yaml, Vec::new()).unwrap_or_else(|p| panic!("test config: {p:?}"))
}

/// HTTP helper bound to a node.
pub struct Api {
    pub base: String,
    client: reqwest::Client,
}

impl Api {
    pub fn new(addr: std::net::SocketAddr) -> Api {
        Api {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn reserve(&self, camera: &str, user: &str) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}/api/v1/stream/reserve", self.base))
            .json(&json!({"camera_id": camera, "user_id": user, "quality": "auto"}))
            .send()
            .await
            .expect("POST reserve");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn release(&self, reservation: &str) -> u16 {
        self.client
            .delete(format!("{}/api/v1/stream/release/{reservation}", self.base))
            .send()
            .await
            .expect("DELETE release")
            .status()
            .as_u16()
    }

    /// Full WHEP URL of a reservation.
    pub async fn whep_url(&self, camera: &str, user: &str) -> String {
        let (status, r) = self.reserve(camera, user).await;
        assert!(
            status == 201 || status == 200,
            "reserve {camera}: {status} {r}"
        );
        format!("{}{}", self.base, r["whep_url"].as_str().expect("whep_url"))
    }

    pub async fn camera_status(&self, camera: &str) -> String {
        let (_, v) = self.get(&format!("/api/v1/cameras/{camera}")).await;
        v["status"].as_str().unwrap_or("?").to_owned()
    }

    /// Polls until the camera has `status`; returns how long it took, or None on timeout.
    pub async fn wait_status(
        &self,
        camera: &str,
        status: &str,
        timeout: Duration,
    ) -> Option<Duration> {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if self.camera_status(camera).await == status {
                return Some(t0.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

/// A fresh directory under the system temp dir, unique per call.
pub fn tempdir(name: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("vantage-test-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// An RFC 3339 time as the API takes it.
pub fn rfc(t: std::time::SystemTime) -> String {
    base::time::rfc3339::format(t)
}

/// The YAML of a node in `data_dir` with one camera `cam-a` ("Gate 1") recording `rtsp_url` into
/// 4-second segments, and `extra` (more top-level sections, one per line).
pub fn recording_yaml(data_dir: &std::path::Path, rtsp_url: &str, extra: &str) -> String {
    format!(
        "server: {{ listen: \"127.0.0.1:0\" }}\n\
         webrtc: {{ udp_port: 0, bind: 127.0.0.1, advertise: [127.0.0.1] }}\n\
         storage: {{ data_dir: \"{}\", segment_duration: 4s }}\n{extra}\
         agencies:\n  - {{ id: OTHER, max_streams: 10 }}\n\
         cameras:\n  - {{ id: cam-a, name: Gate 1, agency: OTHER, rtsp_url: \"{rtsp_url}\", recording: continuous }}\n",
        data_dir.display()
    )
}

/// The in-process cameras and an in-process node recording `cam-a` (clip `h264_a`, with AAC) as
/// [`recording_yaml`] says, with `extra`, in a fresh data directory; returns once the camera is
/// online.
pub async fn recording_node(
    name: &str,
    extra: &str,
) -> (rtsp_server::RtspServer, vantage::Node, Api, PathBuf) {
    let rtsp = vantage::demo::start_cameras("127.0.0.1:0".parse().unwrap())
        .await
        .expect("rtsp server");
    let url = format!("rtsp://{}/h264_a", rtsp.local_addr());
    let data = tempdir(name);
    let yaml = recording_yaml(&data, &url, extra);
    let cfg = settings::load_str(&yaml, Vec::new()).unwrap_or_else(|p| panic!("config: {p:?}"));
    let node = vantage::Node::start(cfg).await.expect("node");
    let api = Api::new(node.http_addr);
    assert!(
        api.wait_status("cam-a", "online", Duration::from_secs(10))
            .await
            .is_some(),
        "cam-a online"
    );
    (rtsp, node, api, data)
}

/// Waits until the first run of `camera`'s timeline (from two minutes ago) holds at least `min`;
/// returns its start and end. Checks each run entry with `check`.
pub async fn recorded_run(
    api: &Api,
    camera: &str,
    min: Duration,
    mut check: impl FnMut(&Value),
) -> (std::time::SystemTime, std::time::SystemTime) {
    let from = std::time::SystemTime::now() - Duration::from_secs(120);
    for _ in 0..400 {
        let (_, t) = api
            .get(&format!(
                "/api/v1/recordings/{camera}?start={}&end={}",
                rfc(from),
                rfc(std::time::SystemTime::now() + Duration::from_secs(5))
            ))
            .await;
        if let Some(e) = t["timeline"].as_array().and_then(|a| a.first()) {
            check(e);
            let s = base::time::rfc3339::parse(e["start_time"].as_str().unwrap()).unwrap();
            let en = base::time::rfc3339::parse(e["end_time"].as_str().unwrap()).unwrap();
            if en.duration_since(s).unwrap_or_default() >= min {
                return (s, en);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{min:?} of {camera} never recorded");
}

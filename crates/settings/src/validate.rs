//! Walks the configuration document, building [`Config`] and collecting every problem.

use crate::parse::{parse_duration, parse_size_or_percent};
use crate::*;
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashSet};

/// A mapping being read; remembers which keys were read so the rest can be reported as unknown.
struct Section<'a> {
    path: String,
    map: Option<&'a Map<String, Value>>,
    seen: BTreeSet<&'static str>,
}

impl<'a> Section<'a> {
    fn new(path: String, v: Option<&'a Value>, problems: &mut Vec<Problem>) -> Self {
        let map = match v {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => {
                problems.push(Problem {
                    path: path.clone(),
                    message: "must be a mapping".into(),
                });
                None
            }
        };
        Section {
            path,
            map,
            seen: BTreeSet::new(),
        }
    }

    fn key(&self, k: &str) -> String {
        if self.path.is_empty() {
            k.to_owned()
        } else {
            format!("{}.{k}", self.path)
        }
    }

    fn raw(&mut self, k: &'static str) -> Option<&'a Value> {
        self.seen.insert(k);
        self.map?.get(k).filter(|v| !v.is_null())
    }

    fn string(&mut self, k: &'static str, p: &mut Vec<Problem>) -> Option<String> {
        match self.raw(k)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => {
                p.push(problem(self.key(k), "must be a string"));
                None
            }
        }
    }

    fn required_string(&mut self, k: &'static str, p: &mut Vec<Problem>) -> String {
        match self.string(k, p) {
            Some(s) if !s.trim().is_empty() => s,
            Some(_) => {
                p.push(problem(self.key(k), "must not be empty"));
                String::new()
            }
            None => {
                if self
                    .map
                    .is_some_and(|m| m.get(k).is_none_or(Value::is_null))
                {
                    p.push(problem(self.key(k), "is required"));
                }
                String::new()
            }
        }
    }

    fn bool(&mut self, k: &'static str, default: bool, p: &mut Vec<Problem>) -> bool {
        match self.raw(k) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                p.push(problem(self.key(k), "must be true or false"));
                default
            }
        }
    }

    fn u32(&mut self, k: &'static str, default: u32, p: &mut Vec<Problem>) -> u32 {
        let v = match self.raw(k) {
            None => return default,
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            Some(_) => None,
        };
        match v.and_then(|v| u32::try_from(v).ok()) {
            Some(v) => v,
            None => {
                p.push(problem(self.key(k), "must be a whole number >= 0"));
                default
            }
        }
    }

    fn duration(&mut self, k: &'static str, default: Duration, p: &mut Vec<Problem>) -> Duration {
        let Some(s) = self.string(k, p) else {
            return default;
        };
        parse_duration(&s).unwrap_or_else(|m| {
            p.push(problem(self.key(k), m));
            default
        })
    }

    fn parsed<T: std::str::FromStr>(
        &mut self,
        k: &'static str,
        default: T,
        what: &str,
        p: &mut Vec<Problem>,
    ) -> T {
        let Some(s) = self.string(k, p) else {
            return default;
        };
        s.trim().parse().unwrap_or_else(|_| {
            p.push(problem(self.key(k), format!("`{s}` is not {what}")));
            default
        })
    }

    /// Reports keys present in the file but never read.
    fn finish(self, p: &mut Vec<Problem>) {
        if let Some(m) = self.map {
            for k in m.keys() {
                if !self.seen.contains(k.as_str()) {
                    let known: Vec<&str> = self.seen.iter().copied().collect();
                    p.push(problem(
                        self.key(k),
                        format!("unknown key (known here: {})", known.join(", ")),
                    ));
                }
            }
        }
    }
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

fn list<'a>(v: Option<&'a Value>, path: &str, p: &mut Vec<Problem>) -> &'a [Value] {
    match v {
        None | Some(Value::Null) => &[],
        Some(Value::Array(a)) => a,
        Some(_) => {
            p.push(problem(path, "must be a list"));
            &[]
        }
    }
}

/// Ids appear in URLs and logs: keep them to a safe alphabet.
fn check_id(id: &str, path: String, p: &mut Vec<Problem>) {
    if !id.is_empty()
        && !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        p.push(problem(
            path,
            format!("`{id}` may contain only letters, digits, '-', '_' and '.'"),
        ));
    }
}

pub(crate) fn validate(doc: &Value, p: &mut Vec<Problem>) -> Config {
    let mut top = Section::new(String::new(), Some(doc), p);

    let mut s = Section::new("server".into(), top.raw("server"), p);
    let server = ServerConfig {
        listen: s.parsed(
            "listen",
            SocketAddr::from(([0, 0, 0, 0], 8088)),
            "an address like 0.0.0.0:8088",
            p,
        ),
    };
    s.finish(p);

    let mut s = Section::new("webrtc".into(), top.raw("webrtc"), p);
    let udp_port = s.u32("udp_port", 8189, p);
    let udp_port = u16::try_from(udp_port).unwrap_or_else(|_| {
        p.push(problem("webrtc.udp_port", "must be at most 65535"));
        8189
    });
    let bind = s.parsed("bind", IpAddr::from([0, 0, 0, 0]), "an IP address", p);
    let advertise = match s.raw("advertise") {
        None => vec![IpAddr::from([127, 0, 0, 1])],
        Some(v) => list(Some(v), "webrtc.advertise", p)
            .iter()
            .enumerate()
            .filter_map(
                |(i, a)| match a.as_str().map(|a| a.trim().parse::<IpAddr>()) {
                    Some(Ok(ip)) => Some(ip),
                    _ => {
                        p.push(problem(
                            format!("webrtc.advertise[{i}]"),
                            "must be an IP address",
                        ));
                        None
                    }
                },
            )
            .collect(),
    };
    s.finish(p);
    let webrtc = WebRtcConfig {
        udp_port,
        bind,
        advertise,
    };

    let mut s = Section::new("live".into(), top.raw("live"), p);
    let live = LiveConfig {
        idle_grace: s.duration("idle_grace", Duration::from_secs(10), p),
        first_frame_timeout: s.duration("first_frame_timeout", Duration::from_secs(10), p),
    };
    s.finish(p);

    let mut s = Section::new("limits".into(), top.raw("limits"), p);
    let limits = LimitsConfig {
        max_streams: s.u32("max_streams", 500, p),
        max_streams_per_user: s.u32("max_streams_per_user", 16, p),
        lease: s.duration("lease", Duration::from_secs(60), p),
    };
    s.finish(p);

    let mut s = Section::new("storage".into(), top.raw("storage"), p);
    let data_dir = PathBuf::from(s.string("data_dir", p).unwrap_or_else(|| "./data".into()));
    let recordings_dir = s
        .string("recordings_dir", p)
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir.join("recordings"));
    let max_usage = match s.string("max_usage", p) {
        None => MaxUsage::Percent(90.0),
        Some(v) => parse_size_or_percent(&v).unwrap_or_else(|m| {
            p.push(problem("storage.max_usage", m));
            MaxUsage::Percent(90.0)
        }),
    };
    s.finish(p);
    let storage = StorageConfig {
        data_dir,
        recordings_dir,
        max_usage,
    };

    let agencies = agencies(top.raw("agencies"), p);
    let cameras = cameras(top.raw("cameras"), &agencies, p);
    top.finish(p);

    Config {
        server,
        webrtc,
        live,
        limits,
        storage,
        agencies,
        cameras,
    }
}

fn agencies(v: Option<&Value>, p: &mut Vec<Problem>) -> Vec<Agency> {
    let mut out: Vec<Agency> = Vec::new();
    for (i, a) in list(v, "agencies", p).iter().enumerate() {
        let path = format!("agencies[{i}]");
        let mut s = Section::new(path.clone(), Some(a), p);
        let id = s.required_string("id", p);
        check_id(&id, format!("{path}.id"), p);
        if !id.is_empty() && out.iter().any(|o| o.id == id) {
            p.push(problem(
                format!("{path}.id"),
                format!("duplicate agency id `{id}`"),
            ));
        }
        let name = s.string("name", p).unwrap_or_else(|| id.clone());
        let agency = Agency {
            name_ar: s.string("name_ar", p),
            max_streams: s.u32("max_streams", 0, p),
            id,
            name,
        };
        s.finish(p);
        out.push(agency);
    }
    out
}

/// Validates a camera URL: rtsp(s), a host, no credentials. Returns a placeholder after a problem.
fn check_rtsp_url(raw: &str, path: String, p: &mut Vec<Problem>) -> url::Url {
    let placeholder = || {
        url::Url::parse("rtsp://invalid.invalid/")
            .expect("a constant, valid URL (checked by the tests)")
    };
    if raw.is_empty() {
        return placeholder();
    }
    match url::Url::parse(raw) {
        Ok(u) if u.scheme() != "rtsp" && u.scheme() != "rtsps" => {
            p.push(problem(
                path,
                format!("scheme must be rtsp, not `{}`", u.scheme()),
            ));
            placeholder()
        }
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            p.push(problem(
                path,
                format!(
                    "credentials must not be embedded in the URL ({}); use username and password",
                    base::redact_url(raw)
                ),
            ));
            placeholder()
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => {
            p.push(problem(path, "has no host"));
            placeholder()
        }
        Ok(u) => u,
        Err(e) => {
            p.push(problem(
                path,
                format!("not a valid URL ({}): {e}", base::redact_url(raw)),
            ));
            placeholder()
        }
    }
}

fn cameras(v: Option<&Value>, agencies: &[Agency], p: &mut Vec<Problem>) -> Vec<Camera> {
    let mut out = Vec::new();
    let mut ids = HashSet::new();
    for (i, c) in list(v, "cameras", p).iter().enumerate() {
        let path = format!("cameras[{i}]");
        let mut s = Section::new(path.clone(), Some(c), p);
        let id = s.required_string("id", p);
        check_id(&id, format!("{path}.id"), p);
        if !id.is_empty() && !ids.insert(id.clone()) {
            p.push(problem(
                format!("{path}.id"),
                format!("duplicate camera id `{id}`"),
            ));
        }
        let name = s.string("name", p).unwrap_or_else(|| id.clone());
        let agency = s.required_string("agency", p);
        if !agency.is_empty() && !agencies.iter().any(|a| a.id == agency) {
            let known: Vec<&str> = agencies.iter().map(|a| a.id.as_str()).collect();
            p.push(problem(
                format!("{path}.agency"),
                format!("unknown agency `{agency}` (agencies: {})", known.join(", ")),
            ));
        }
        let raw_url = s.required_string("rtsp_url", p);
        let rtsp_url = check_rtsp_url(&raw_url, format!("{path}.rtsp_url"), p);
        let substreams = match s.raw("substreams") {
            None => Vec::new(),
            Some(Value::Object(m)) => m
                .iter()
                .filter_map(|(q, v)| {
                    let key = format!("{path}.substreams.{q}");
                    if !matches!(q.as_str(), "low" | "medium" | "high") {
                        p.push(problem(key, "unknown quality (low, medium, high)"));
                        return None;
                    }
                    let Some(raw) = v.as_str() else {
                        p.push(problem(key, "must be an RTSP URL"));
                        return None;
                    };
                    Some((q.clone(), check_rtsp_url(raw, key, p)))
                })
                .collect(),
            Some(_) => {
                p.push(problem(
                    format!("{path}.substreams"),
                    "must be a mapping of quality to RTSP URL",
                ));
                Vec::new()
            }
        };
        let transport = match s.string("transport", p).as_deref() {
            None | Some("tcp") => Transport::Tcp,
            Some("udp") => Transport::Udp,
            Some(o) => {
                p.push(problem(
                    format!("{path}.transport"),
                    format!("`{o}` is not tcp or udp"),
                ));
                Transport::Tcp
            }
        };
        let recording = match s.string("recording", p).as_deref() {
            None | Some("off") => RecordingMode::Off,
            Some("continuous") => RecordingMode::Continuous,
            Some(o) => {
                p.push(problem(
                    format!("{path}.recording"),
                    format!("`{o}` is not continuous or off"),
                ));
                RecordingMode::Off
            }
        };
        let cam = Camera {
            location: s.string("location", p),
            username: s.string("username", p),
            password: s.string("password", p),
            enabled: s.bool("enabled", true, p),
            retention_days: s.u32("retention_days", 90, p),
            manufacturer: s.string("manufacturer", p),
            model: s.string("model", p),
            ptz_capable: s.bool("ptz_capable", false, p),
            id,
            name,
            agency,
            rtsp_url,
            transport,
            recording,
            substreams,
        };
        s.finish(p);
        out.push(cam);
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::*;

    const GOOD: &str = r#"
server: { listen: "127.0.0.1:9000" }
live: { idle_grace: 3s }
agencies:
  - { id: DUBAI_POLICE, name: "Dubai Police", name_ar: "شرطة دبي", max_streams: 50 }
  - { id: OTHER, name: "Other", max_streams: 400 }
cameras:
  - id: cam-001
    name: "Cam 1"
    agency: DUBAI_POLICE
    rtsp_url: "rtsp://127.0.0.1:8554/h264_720p"
    username: admin
    password: "pw"
    transport: udp
    substreams: { low: "rtsp://127.0.0.1:8554/h264_720p_low" }
"#;

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    #[test]
    fn good_file_loads_with_defaults() {
        let c = load_str(GOOD, no_env()).unwrap();
        assert_eq!(c.server.listen.port(), 9000);
        assert_eq!(c.live.idle_grace, Duration::from_secs(3));
        assert_eq!(c.limits.max_streams, 500);
        assert_eq!(c.limits.lease, Duration::from_secs(60));
        assert_eq!(c.webrtc.udp_port, 8189);
        let cam = c.camera("cam-001").unwrap();
        assert_eq!(cam.transport, Transport::Udp);
        assert!(cam.enabled);
        assert_eq!(cam.password.as_deref(), Some("pw"));
        assert_eq!(cam.url_for("low").path(), "/h264_720p_low");
        assert_eq!(cam.url_for("high").path(), "/h264_720p");
        assert_eq!(cam.url_for("auto").path(), "/h264_720p");
        assert_eq!(
            c.agency("DUBAI_POLICE").unwrap().name_ar.as_deref(),
            Some("شرطة دبي")
        );
    }

    #[test]
    fn env_overrides_scalars() {
        let env = vec![
            ("VANTAGE__LIVE__IDLE_GRACE".to_owned(), "5s".to_owned()),
            ("VANTAGE__WEBRTC__UDP_PORT".to_owned(), "9999".to_owned()),
            (
                "VANTAGE__CAMERAS__0__ENABLED".to_owned(),
                "false".to_owned(),
            ),
            ("OTHER".to_owned(), "x".to_owned()),
        ];
        let c = load_str(GOOD, env).unwrap();
        assert_eq!(c.live.idle_grace, Duration::from_secs(5));
        assert_eq!(c.webrtc.udp_port, 9999);
        assert!(!c.cameras[0].enabled);
    }

    #[test]
    fn every_problem_is_listed_with_its_path() {
        let bad = r#"
agencies:
  - { id: METRO, max_streams: 30 }
cameras:
  - { id: a, agency: METRO, rtsp_url: "rtsp://admin:hunter2@10.0.0.1/x" }
  - { id: a, agency: NOPE, rtsp_url: "not a url" }
  - { id: b, agency: METRO, rtsp_url: "http://x/y", transport: quic, colour: red, substreams: { ultra: "rtsp://h/u", low: "rtsp://u:p@h/l" } }
live: { idle_grace: forever }
"#;
        let env = vec![("VANTAGE__LIMITS__MAX_STREAMS".to_owned(), "-3".to_owned())];
        let problems = load_str(bad, env).unwrap_err();
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        let all = text.join("\n");
        for want in [
            "cameras[0].rtsp_url: credentials must not be embedded",
            "cameras[1].id: duplicate camera id `a`",
            "cameras[1].agency: unknown agency `NOPE`",
            "cameras[1].rtsp_url: not a valid URL",
            "cameras[2].rtsp_url: scheme must be rtsp",
            "cameras[2].transport: `quic` is not tcp or udp",
            "cameras[2].colour: unknown key",
            "cameras[2].substreams.ultra: unknown quality",
            "cameras[2].substreams.low: credentials must not be embedded",
            "live.idle_grace: `forever` is not a duration",
            "limits.max_streams: must be a whole number",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }
        assert!(!all.contains("hunter2"), "a password leaked:\n{all}");
        assert_eq!(problems.len(), 11, "{all}");
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "[1,2]",
            "cameras: 3",
            "cameras: [3, {id: {}}]",
            ": : :",
            "\u{0}",
        ] {
            let _ = load_str(text, no_env());
        }
    }
}

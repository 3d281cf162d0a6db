//! Walks the configuration document, building [`Config`] and collecting every problem.
#![deny(clippy::indexing_slicing)]

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

/// `*`, or `http(s)://host[:port]` with nothing after it (an origin as browsers send it).
fn is_origin(o: &str) -> bool {
    if o == "*" {
        return true;
    }
    match url::Url::parse(o) {
        Ok(u) => {
            matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some()
                && u.username().is_empty()
                && u.password().is_none()
                && u.path() == "/"
                && u.query().is_none()
                && u.fragment().is_none()
                && !o.trim_end_matches('/').ends_with(':')
        }
        Err(_) => false,
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
        cors_origins: list(s.raw("cors_origins"), "server.cors_origins", p)
            .iter()
            .enumerate()
            .filter_map(|(i, o)| match o.as_str().map(str::trim) {
                Some(o) if is_origin(o) => Some(o.trim_end_matches('/').to_owned()),
                _ => {
                    p.push(problem(
                        format!("server.cors_origins[{i}]"),
                        "must be `*` or an origin like https://wall.example.org:8443",
                    ));
                    None
                }
            })
            .collect(),
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
    let min_free = match s.string("min_free", p) {
        None => MaxUsage::Percent(2.0),
        Some(v) => parse_size_or_percent(&v).unwrap_or_else(|m| {
            p.push(problem("storage.min_free", m));
            MaxUsage::Percent(2.0)
        }),
    };
    let segment_duration = s.duration("segment_duration", Duration::from_secs(60), p);
    if segment_duration < Duration::from_secs(1) || segment_duration > Duration::from_secs(60) {
        p.push(problem(
            "storage.segment_duration",
            format!(
                "must be between 1s and 60s (segments are at most 60 s), not {}s",
                segment_duration.as_secs_f64()
            ),
        ));
    }
    let sync_interval = s.duration("sync_interval", Duration::from_secs(10), p);
    let retention_interval = s.duration("retention_interval", Duration::from_secs(60), p);
    let writer_threads = s.u32("writer_threads", 2, p).clamp(1, 64);
    s.finish(p);
    let storage = StorageConfig {
        data_dir,
        recordings_dir,
        max_usage,
        min_free,
        segment_duration: segment_duration.clamp(Duration::from_secs(1), Duration::from_secs(60)),
        sync_interval,
        retention_interval,
        writer_threads,
    };

    let mut s = Section::new("playback".into(), top.raw("playback"), p);
    let playback = PlaybackConfig {
        max_span: s.duration("max_span", Duration::from_secs(6 * 3600), p),
        max_pin: s.duration("max_pin", Duration::from_secs(3600), p),
    };
    s.finish(p);

    let mut s = Section::new("exports".into(), top.raw("exports"), p);
    let exports = ExportsConfig {
        dir: s
            .string("dir", p)
            .map(PathBuf::from)
            .unwrap_or_else(|| storage.data_dir.join("exports")),
        max_concurrent: s.u32("max_concurrent", 10, p).clamp(1, 256),
        max_span: s.duration("max_span", Duration::from_secs(24 * 3600), p),
        retention: s.duration("retention", Duration::from_secs(30 * 86_400), p),
        max_write_kib_per_s: s.u32("max_write_kib_per_s", 0, p),
    };
    s.finish(p);

    let mut s = Section::new("audit".into(), top.raw("audit"), p);
    let retention = s.duration("retention", Duration::from_secs(400 * 86_400), p);
    if retention < Duration::from_secs(86_400) {
        p.push(problem(
            s.key("retention"),
            "must be at least 1d: the audit log is evidence of who saw what".to_owned(),
        ));
    }
    let audit = AuditConfig { retention };
    s.finish(p);

    let mut s = Section::new("auth".into(), top.raw("auth"), p);
    let auth = AuthConfig {
        issuers: issuers(s.raw("issuers"), p),
    };
    s.finish(p);

    let agencies = agencies(top.raw("agencies"), p);
    let cameras = cameras(top.raw("cameras"), &agencies, p);
    let milestone = match top.raw("milestone") {
        None => None,
        Some(v) => milestone(v, &agencies, p),
    };
    top.finish(p);

    Config {
        server,
        webrtc,
        live,
        limits,
        storage,
        playback,
        exports,
        audit,
        auth,
        agencies,
        cameras,
        milestone,
    }
}

/// A URL with one of `schemes` and no credentials in it.
fn plain_url(raw: &str, schemes: &[&str], path: &str, p: &mut Vec<Problem>) -> Option<url::Url> {
    match url::Url::parse(raw) {
        Ok(u) if !schemes.contains(&u.scheme()) => {
            p.push(problem(
                path,
                format!(
                    "scheme must be {}, not `{}`",
                    schemes.join(" or "),
                    u.scheme()
                ),
            ));
            None
        }
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            p.push(problem(
                path,
                format!(
                    "credentials must not be embedded in the URL ({}); use username and password",
                    base::redact_url(raw)
                ),
            ));
            None
        }
        Ok(u) if !base::query_credential_keys(&u).is_empty() => {
            // Name the parameters, never their values.
            let keys: Vec<String> = base::query_credential_keys(&u)
                .iter()
                .map(|k| format!("`{k}`"))
                .collect();
            p.push(problem(
                path,
                format!(
                    "credentials must not be in the URL's query string ({}); use username and \
                     password",
                    keys.join(", ")
                ),
            ));
            None
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => {
            p.push(problem(path, "has no host"));
            None
        }
        Ok(u) => Some(u),
        Err(e) => {
            p.push(problem(
                path,
                format!("not a valid URL ({}): {e}", base::redact_url(raw)),
            ));
            None
        }
    }
}

fn milestone(v: &Value, agencies: &[Agency], p: &mut Vec<Problem>) -> Option<Milestone> {
    let mut s = Section::new("milestone".into(), Some(v), p);
    let server_url = s.required_string("server_url", p);
    let server_url = if server_url.is_empty() {
        None
    } else {
        plain_url(&server_url, &["http", "https"], "milestone.server_url", p)
    };
    let rtsp_base_url_given = s.string("rtsp_base_url", p).filter(|u| !u.is_empty());
    let rtsp_base_url = rtsp_base_url_given
        .as_deref()
        .and_then(|u| plain_url(u, &["rtsp", "rtsps"], "milestone.rtsp_base_url", p));
    let recording_server = s.string("recording_server", p).filter(|r| !r.is_empty());
    if let Some(r) = &recording_server
        && r.rsplit_once(':')
            .is_none_or(|(h, port)| h.is_empty() || port.parse::<u16>().is_err())
    {
        p.push(problem(
            "milestone.recording_server",
            format!("`{r}` is not host:port"),
        ));
    }
    let username = s.required_string("username", p);
    let password = s.string("password", p).unwrap_or_default();
    if let Some(domain) = s.string("domain", p).filter(|d| !d.trim().is_empty()) {
        p.push(problem(
            "milestone.domain",
            format!(
                "Windows/NTLM login (domain `{domain}`) is not supported: create an XProtect basic \
                 user for Vantage and leave domain empty"
            ),
        ));
    }
    let method = match s.string("method", p).as_deref() {
        None | Some("rtsp_direct") => LiveMethod::RtspDirect,
        Some("onvif_bridge") => LiveMethod::OnvifBridge,
        Some("mip_sdk") => LiveMethod::MipSdk,
        Some("mobile_server") => LiveMethod::MobileServer,
        Some(o) => {
            p.push(problem(
                "milestone.method",
                format!("`{o}` is not rtsp_direct, onvif_bridge, mip_sdk or mobile_server"),
            ));
            LiveMethod::RtspDirect
        }
    };
    let mut st = Section::new("milestone.streaming".into(), s.raw("streaming"), p);
    let rtsp_port = st.u32("rtsp_port", 0, p);
    let rtsp_path_template = st
        .string("rtsp_path_template", p)
        .unwrap_or_else(|| "/camera/{camera_id}".into());
    if !["{camera_id}", "{camera_guid}", "{camera_name}"]
        .iter()
        .any(|k| rtsp_path_template.contains(k))
    {
        p.push(problem(
            "milestone.streaming.rtsp_path_template",
            "must contain {camera_id}, {camera_guid} or {camera_name}",
        ));
    }
    let playback_path_template = st
        .string("playback_path_template", p)
        .unwrap_or_else(|| "/playback/{camera_id}".into());
    st.finish(p);
    let rtsp_base_url = rtsp_base_url.map(|mut u| {
        if rtsp_port > 0 && u.port().is_none() {
            // A port in rtsp_base_url wins; streaming.rtsp_port fills it in otherwise.
            let _ = u.set_port(u16::try_from(rtsp_port).ok());
        }
        u
    });
    if rtsp_base_url_given.is_none()
        && matches!(method, LiveMethod::RtspDirect | LiveMethod::OnvifBridge)
    {
        p.push(problem(
            "milestone.rtsp_base_url",
            "is required for live video with method rtsp_direct or onvif_bridge",
        ));
    }
    let mut api = Section::new("milestone.api".into(), s.raw("api"), p);
    // The integration guide's `api` block: the port (folded into server_url like
    // MILESTONE_API_PORT) and Vantage's own tunables.
    let api_port = api.u32("port", 0, p);
    let client_id = api
        .string("client_id", p)
        .unwrap_or_else(|| "GrantValidatorClient".into());
    let request_timeout = api.duration("timeout", Duration::from_secs(120), p);
    let max_camera_lists_per_minute = api.u32("max_camera_lists_per_minute", 1, p).max(1);
    let max_recording_queries_per_minute =
        api.u32("max_recording_queries_per_minute", 100, p).max(1);
    for k in ["version", "base_path", "verify_ssl", "use_https"] {
        let _ = api.raw(k); // accepted as the guide writes them; not used
    }
    api.finish(p);
    let sync_interval = s.duration("sync_interval", Duration::from_secs(600), p);
    let recording = recording_mode(&mut s, "milestone", p);
    let retention_days = s.u32("retention_days", 90, p);
    let default_agency = s
        .string("default_agency", p)
        .unwrap_or_else(|| "OTHER".into());
    let known = |a: &str| agencies.iter().any(|x| x.id == a);
    if !known(&default_agency) {
        p.push(problem(
            "milestone.default_agency",
            format!("agency `{default_agency}` is not defined in agencies (cameras no rule matches go there)"),
        ));
    }
    let mut agency_rules = Vec::new();
    for (i, r) in list(s.raw("agency_rules"), "milestone.agency_rules", p)
        .iter()
        .enumerate()
    {
        let path = format!("milestone.agency_rules[{i}]");
        let mut rs = Section::new(path.clone(), Some(r), p);
        let agency = rs.required_string("agency", p);
        if !agency.is_empty() && !known(&agency) {
            p.push(problem(
                format!("{path}.agency"),
                format!("unknown agency `{agency}`"),
            ));
        }
        let group = rs.string("group", p);
        let camera_name = rs.string("camera_name", p);
        let matcher = match (group, camera_name) {
            (Some(g), None) if !g.is_empty() => Some(RuleMatch::Group(g)),
            (None, Some(n)) if !n.is_empty() => Some(RuleMatch::CameraName(n)),
            _ => {
                p.push(problem(&path, "needs exactly one of group or camera_name"));
                None
            }
        };
        rs.finish(p);
        if let Some(matcher) = matcher {
            agency_rules.push(AgencyRule { matcher, agency });
        }
    }
    s.finish(p);
    let mut server_url = server_url?;
    if api_port > 0 {
        let _ = server_url.set_port(u16::try_from(api_port).ok());
    }
    Some(Milestone {
        server_url,
        rtsp_base_url,
        recording_server,
        username,
        password,
        method,
        rtsp_path_template,
        playback_path_template,
        client_id,
        request_timeout,
        sync_interval,
        max_camera_lists_per_minute,
        max_recording_queries_per_minute,
        agency_rules,
        default_agency,
        recording,
        retention_days,
    })
}

/// A string or a list of strings (`audience: vantage` or `audience: [a, b]`).
fn strings(v: Option<&Value>, path: String, p: &mut Vec<Problem>) -> Vec<String> {
    match v {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .filter_map(|(i, x)| match x {
                Value::String(s) => Some(s.clone()),
                _ => {
                    p.push(problem(format!("{path}[{i}]"), "must be a string"));
                    None
                }
            })
            .collect(),
        Some(_) => {
            p.push(problem(path, "must be a string or a list of strings"));
            Vec::new()
        }
    }
}

fn issuers(v: Option<&Value>, p: &mut Vec<Problem>) -> Vec<IssuerSettings> {
    let mut out: Vec<IssuerSettings> = Vec::new();
    for (i, x) in list(v, "auth.issuers", p).iter().enumerate() {
        let path = format!("auth.issuers[{i}]");
        let mut s = Section::new(path.clone(), Some(x), p);
        let issuer = s.required_string("issuer", p);
        if !issuer.is_empty() && out.iter().any(|o| o.issuer == issuer) {
            p.push(problem(format!("{path}.issuer"), "duplicate issuer"));
        }
        let audiences = strings(s.raw("audience"), format!("{path}.audience"), p);
        if audiences.is_empty() {
            p.push(problem(
                format!("{path}.audience"),
                "is required: the audience this node's tokens are issued for",
            ));
        }
        let jwks = s.string("jwks_url", p);
        let pem = s.string("public_key_file", p);
        let keys = match (jwks, pem) {
            (Some(u), None) => IssuerKeys::JwksUrl(
                plain_url(&u, &["https", "http"], &format!("{path}.jwks_url"), p)
                    .unwrap_or_else(placeholder_url),
            ),
            (None, Some(f)) => IssuerKeys::PublicKeyFile(PathBuf::from(f)),
            _ => {
                p.push(problem(
                    path.clone(),
                    "give exactly one of jwks_url and public_key_file",
                ));
                IssuerKeys::PublicKeyFile(PathBuf::new())
            }
        };
        let mut algorithms = strings(s.raw("algorithms"), format!("{path}.algorithms"), p);
        if algorithms.is_empty() {
            algorithms = vec!["RS256".into(), "ES256".into()];
        }
        for a in &algorithms {
            if a != "RS256" && a != "ES256" {
                p.push(problem(
                    format!("{path}.algorithms"),
                    format!("`{a}` is not accepted: RS256 and ES256 only"),
                ));
            }
        }
        let leeway = s.duration("leeway", Duration::from_secs(60), p);
        if leeway > Duration::from_secs(300) {
            p.push(problem(format!("{path}.leeway"), "must be at most 5m"));
        }
        let jwks_refresh = s
            .duration("jwks_refresh", Duration::from_secs(600), p)
            .max(Duration::from_secs(30));
        let mut c = Section::new(format!("{path}.claims"), s.raw("claims"), p);
        let claims = [
            c.string("username", p)
                .unwrap_or_else(|| "preferred_username".into()),
            c.string("role", p).unwrap_or_else(|| "role".into()),
            c.string("agency", p).unwrap_or_else(|| "agency".into()),
            c.string("permissions", p)
                .unwrap_or_else(|| "permissions".into()),
        ];
        c.finish(p);
        s.finish(p);
        out.push(IssuerSettings {
            issuer,
            audiences,
            keys,
            algorithms,
            leeway,
            jwks_refresh,
            claims,
        });
    }
    out
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
    let checked = if raw.is_empty() {
        None
    } else {
        plain_url(raw, &["rtsp", "rtsps"], &path, p)
    };
    checked.unwrap_or_else(placeholder_url)
}

/// The URL a camera gets after its own was refused; the configuration is rejected anyway.
#[allow(clippy::expect_used)] // proven: a constant, valid URL (`tests::placeholder_url_parses`)
fn placeholder_url() -> url::Url {
    url::Url::parse("rtsp://invalid.invalid/").expect("a constant, valid URL")
}

/// `recording: continuous | off` (default off) of a section at `path`.
fn recording_mode(s: &mut Section, path: &str, p: &mut Vec<Problem>) -> RecordingMode {
    match s.string("recording", p).as_deref() {
        None | Some("off") => RecordingMode::Off,
        Some("continuous") => RecordingMode::Continuous,
        Some(o) => {
            p.push(problem(
                format!("{path}.recording"),
                format!("`{o}` is not continuous or off"),
            ));
            RecordingMode::Off
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
        let recording = recording_mode(&mut s, &path, p);
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
#[allow(clippy::indexing_slicing)] // tests index what they just built or checked
mod tests {
    use crate::*;

    const GOOD: &str = r#"
server: { listen: "127.0.0.1:9000", cors_origins: ["https://wall.example.org:8443", "*"] }
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
    fn identity_providers_parse_with_defaults_and_their_mistakes_are_named() {
        let good = format!(
            "{GOOD}auth:\n  issuers:\n    - {{ issuer: \"https://idp/r\", audience: [vantage, wall], \
             jwks_url: \"https://idp/certs\" }}\n    - {{ issuer: other, audience: vantage, \
             public_key_file: /etc/vantage/idp.pem, algorithms: ES256, leeway: 10s, \
             claims: {{ role: vantage_role }} }}\n"
        );
        let c = load_str(&good, no_env()).unwrap();
        let [a, b] = &c.auth.issuers[..] else {
            panic!("{:?}", c.auth);
        };
        assert_eq!(a.audiences, ["vantage", "wall"]);
        assert_eq!(a.algorithms, ["RS256", "ES256"]);
        assert_eq!(a.leeway, Duration::from_secs(60));
        assert_eq!(a.jwks_refresh, Duration::from_secs(600));
        assert!(matches!(&a.keys, IssuerKeys::JwksUrl(u) if u.as_str() == "https://idp/certs"));
        assert_eq!(b.algorithms, ["ES256"]);
        assert_eq!(b.claims[1], "vantage_role");
        assert_eq!(b.claims[0], "preferred_username");
        let bad = format!(
            "{GOOD}auth:\n  issuers:\n    - {{ issuer: x, jwks_url: \"https://u:pw@idp/c\", \
             public_key_file: k.pem, algorithms: [HS256], leeway: 10m }}\n"
        );
        let all = load_str(&bad, no_env())
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        for want in [
            "auth.issuers[0].audience: is required",
            "auth.issuers[0]: give exactly one of jwks_url and public_key_file",
            "auth.issuers[0].algorithms: `HS256` is not accepted",
            "auth.issuers[0].leeway: must be at most 5m",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }
    }

    #[test]
    fn placeholder_url_parses() {
        assert_eq!(super::placeholder_url().as_str(), "rtsp://invalid.invalid/");
    }

    #[test]
    fn good_file_loads_with_defaults() {
        let c = load_str(GOOD, no_env()).unwrap();
        assert_eq!(c.server.listen.port(), 9000);
        assert_eq!(
            c.server.cors_origins,
            vec!["https://wall.example.org:8443".to_owned(), "*".to_owned()]
        );
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

    const MILESTONE: &str = r#"
agencies:
  - { id: DUBAI_POLICE, max_streams: 50 }
  - { id: METRO, max_streams: 30 }
  - { id: OTHER, max_streams: 400 }
milestone:
  server_url: "http://192.168.1.9"
  rtsp_base_url: "rtsp://192.168.1.9:554"
  recording_server: "192.168.1.9:7563"
  username: "rta-integration"
  password: "s3cret"
  domain: ""
  api: { port: 80, version: "v1" }
  streaming:
    rtsp_port: 554
    rtsp_path_template: "/camera/{camera_id}"
    playback_path_template: "/playback/{camera_id}"
  method: "mip_sdk"
  agency_rules:
    - { group: "Dubai Police", agency: DUBAI_POLICE }
    - { camera_name: "METRO-*", agency: METRO }
"#;

    #[test]
    fn the_integration_guide_block_is_accepted_as_written() {
        let c = load_str(MILESTONE, no_env()).unwrap();
        let m = c.milestone.unwrap();
        assert_eq!(m.server_url.as_str(), "http://192.168.1.9/");
        assert_eq!(m.rtsp_base_url.unwrap().as_str(), "rtsp://192.168.1.9:554");
        assert_eq!(m.recording_server.as_deref(), Some("192.168.1.9:7563"));
        assert_eq!(m.method, LiveMethod::MipSdk);
        assert_eq!(m.agency_rules.len(), 2);
        assert_eq!(m.sync_interval, Duration::from_secs(600));
        assert_eq!(m.default_agency, "OTHER");
    }

    #[test]
    fn milestone_variables_are_honoured() {
        let env = [
            ("MILESTONE_SERVER_URL", "http://10.0.0.5"),
            ("MILESTONE_RTSP_URL", "rtsp://10.0.0.6:8554"),
            ("MILESTONE_USERNAME", "svc"),
            ("MILESTONE_PASSWORD", "pw2"),
            ("MILESTONE_API_PORT", "8081"),
            ("MILESTONE_RECORDING_PORT", "7600"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let c = load_str(MILESTONE, env).unwrap();
        let m = c.milestone.unwrap();
        // The variable's port beats api.port in the file.
        assert_eq!(m.server_url.as_str(), "http://10.0.0.5:8081/");
        assert_eq!(m.rtsp_base_url.unwrap().as_str(), "rtsp://10.0.0.6:8554");
        assert_eq!((m.username.as_str(), m.password.as_str()), ("svc", "pw2"));
        assert_eq!(m.recording_server.as_deref(), Some("192.168.1.9:7600"));
        let only_env = [
            ("MILESTONE_SERVER_URL", "http://10.0.0.5"),
            ("MILESTONE_USERNAME", "svc"),
            ("MILESTONE_API_PORT", "8081"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let c = load_str(
            "agencies: [{id: OTHER, max_streams: 1}]\nmilestone: { method: mip_sdk }",
            only_env,
        )
        .unwrap();
        assert_eq!(
            c.milestone.unwrap().server_url.as_str(),
            "http://10.0.0.5:8081/"
        );
    }

    #[test]
    fn windows_login_and_bad_rules_are_refused_clearly() {
        let bad = MILESTONE
            .replace("domain: \"\"", "domain: \"RTA\"")
            .replace("agency: METRO }", "agency: TRAMS }")
            .replace("\"http://192.168.1.9\"", "\"http://u:pw@192.168.1.9\"");
        let all = load_str(&bad, no_env())
            .unwrap_err()
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            all.contains("milestone.domain: Windows/NTLM login"),
            "{all}"
        );
        assert!(
            all.contains("milestone.agency_rules[1].agency: unknown agency `TRAMS`"),
            "{all}"
        );
        assert!(
            all.contains("milestone.server_url: credentials must not be embedded"),
            "{all}"
        );
        assert!(!all.contains("pw@"), "{all}");
    }

    #[test]
    fn credentials_in_a_query_string_are_refused_by_key_path() {
        let bad = r#"
agencies: [{ id: METRO, max_streams: 3 }]
cameras:
  - { id: a, agency: METRO, rtsp_url: "rtsp://10.0.0.1/stream1?user=admin&password=hunter2" }
  - { id: b, agency: METRO, rtsp_url: "rtsp://10.0.0.2/x?channel=1", substreams: { low: "rtsp://10.0.0.2/y?PWD=hunter3" } }
  - { id: c, agency: METRO, rtsp_url: "rtsp://10.0.0.3/x?channel=1&subtype=0" }
milestone:
  server_url: "http://10.0.0.9/?username=svc"
  rtsp_base_url: "rtsp://10.0.0.9:554/?pass=hunter4"
  username: svc
  default_agency: METRO
"#;
        let problems = load_str(bad, no_env()).unwrap_err();
        let all = problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        for want in [
            "cameras[0].rtsp_url: credentials must not be in the URL's query string (`user`, \
             `password`)",
            "cameras[1].substreams.low: credentials must not be in the URL's query string (`PWD`)",
            "milestone.server_url: credentials must not be in the URL's query string (`username`)",
            "milestone.rtsp_base_url: credentials must not be in the URL's query string (`pass`)",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }
        assert_eq!(problems.len(), 4, "{all}");
        for secret in ["hunter", "admin"] {
            assert!(!all.contains(secret), "a secret leaked:\n{all}");
        }
    }

    #[test]
    fn problems_with_values_from_the_environment_name_the_variable() {
        let env = [
            ("VANTAGE__LIVE__IDLE_GRACE", "soon"),
            ("VANTAGE__CAMERAS__0__TRANSPORT", "quic"),
            ("VANTAGE__LIVE__IDLE_GRCE", "5s"),
            ("VANTAGE__WEBRTC__UDP_PORT", "9999"),
            ("MILESTONE_SERVER_URL", "ftp://10.0.0.5"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let text = format!("{GOOD}milestone: {{ username: svc, method: mip_sdk }}\n");
        let problems = load_str(&text, env).unwrap_err();
        let all = problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        for want in [
            "live.idle_grace: `soon` is not a duration like 500ms, 10s, 5m, 2h or 90d (set by the \
             environment variable VANTAGE__LIVE__IDLE_GRACE, not the file)",
            "cameras[0].transport: `quic` is not tcp or udp (set by the environment variable \
             VANTAGE__CAMERAS__0__TRANSPORT, not the file)",
            "(set by the environment variable VANTAGE__LIVE__IDLE_GRCE, not the file)",
            "milestone.server_url: scheme must be http or https, not `ftp` (set by the \
             environment variable MILESTONE_SERVER_URL, not the file)",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }
        assert!(all.contains("live.idle_grce: unknown key"), "{all}");
        assert_eq!(problems.len(), 4, "{all}");
        // A problem in the file itself does not blame the environment.
        let problems = load_str(
            "live: { idle_grace: soon }",
            [(
                "VANTAGE__LIVE__FIRST_FRAME_TIMEOUT".to_owned(),
                "5s".to_owned(),
            )],
        )
        .unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(
            !problems[0].message.contains("VANTAGE__"),
            "{:?}",
            problems[0]
        );
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

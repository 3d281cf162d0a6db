//! The connector against an in-test axum mock of the XProtect management server and one
//! recording server (same listener).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Form, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base::{Clocks, ErrorKind, SimulatedClocks};
use parking_lot::Mutex;
use serde_json::{Value, json};
use vms::{Connector, Recorder, XProtectConfig};

const USER: &str = "svc-vantage";
const PASSWORD: &str = "p@ss w0rd&=x";

#[derive(Default)]
struct MockState {
    base: String,
    token_seq: u32,
    valid_tokens: Vec<String>,
    expires_in: u64,
    /// Reject every bearer token (even fresh ones).
    always_401: bool,
    logins: u32,
    rest_paths: Vec<String>,
    cameras_override: Option<(StatusCode, String)>,
    cameras_delay: Option<Duration>,
    scs_seq: u32,
    scs_valid: Option<String>,
    scs_ttl_us: u64,
    scs_logins: Vec<(String, String, String)>, // (soapaction, instanceId, currentToken)
    sequences_calls: Vec<String>,
    /// The recorder refuses every SCS token.
    scs_reject_always: bool,
}

type Mock = Arc<Mutex<MockState>>;

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let i = s.find(open)? + open.len();
    let j = s[i..].find(close)? + i;
    Some(&s[i..j])
}

fn bearer_ok(m: &MockState, h: &HeaderMap) -> bool {
    let Some(a) = h.get("authorization").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    !m.always_401
        && a.strip_prefix("Bearer ")
            .is_some_and(|t| m.valid_tokens.iter().any(|v| v == t))
}

fn cam(id: &str, name: &str, hw: &str, enabled: bool) -> Value {
    json!({"displayName": name, "enabled": enabled, "id": id, "name": name, "channel": "0",
           "recordingFramerate": "5", "lastModified": "2025-10-27T15:03:52.8070000Z",
           "gisPoint": "POINT EMPTY", "shortName": "", "ptzEnabled": false, "recordingEnabled": true,
           "relations": {"parent": {"type": "hardware", "id": hw}, "self": {"type": "cameras", "id": id}}})
}

fn group(id: &str, name: &str) -> Value {
    json!({"displayName": name, "id": id, "name": name, "description": "", "builtIn": false,
           "lastModified": "2023-06-25T21:42:52.2130000Z",
           "relations": {"self": {"type": "cameraGroups", "id": id}}})
}

fn list(v: Vec<Value>) -> Response {
    axum::Json(json!({ "array": v })).into_response()
}

async fn well_known(State(m): State<Mock>) -> Response {
    let b = m.lock().base.clone();
    axum::Json(
        json!({"ProductVersion": "25.1.1804.0", "UnsecureManagementServer": b,
        "SecureManagementServer": "", "IdentityProvider": format!("{b}IDP"),
        "ApiGateways": [format!("{b}API/")]}),
    )
    .into_response()
}

async fn oidc(State(m): State<Mock>) -> Response {
    let b = m.lock().base.clone();
    axum::Json(
        json!({"issuer": format!("{b}IDP"), "token_endpoint": format!("{b}IDP/connect/token"),
        "authorization_endpoint": format!("{b}IDP/connect/authorize"), "server_version": "25.1"}),
    )
    .into_response()
}

async fn token(State(m): State<Mock>, Form(f): Form<HashMap<String, String>>) -> Response {
    let mut m = m.lock();
    m.logins += 1;
    let ok = f.get("grant_type").map(String::as_str) == Some("password")
        && f.get("client_id").map(String::as_str) == Some("GrantValidatorClient")
        && f.get("username").map(String::as_str) == Some(USER)
        && f.get("password").map(String::as_str) == Some(PASSWORD);
    if !ok {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant",
                "error_description": "invalid_username_or_password", "error_code": "InvalidCredentials"})),
        )
            .into_response();
    }
    m.token_seq += 1;
    let t = format!("eyJtoken{}", m.token_seq);
    m.valid_tokens.push(t.clone());
    axum::Json(
        json!({"access_token": t, "expires_in": m.expires_in, "token_type": "Bearer",
        "scope": "managementserver"}),
    )
    .into_response()
}

async fn rest(
    State(m): State<Mock>,
    Path(path): Path<String>,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> Response {
    let delay = {
        let mut s = m.lock();
        s.rest_paths.push(match &q {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        });
        if !bearer_ok(&s, &h) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        if path == "cameras" {
            if let Some((st, body)) = s.cameras_override.clone() {
                return (st, body).into_response();
            }
            s.cameras_delay
        } else {
            None
        }
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let with_disabled = q.as_deref() == Some("disabled");
    let (red, blue, stations, metro, police) =
        ("g-red", "g-blue", "g-stations", "g-metro", "g-police");
    match path.as_str() {
        "cameras" => {
            let mut v = vec![
                cam("c1", "Cam 1", "hw1", true),
                cam("c2", "Cam 2", "hw1", true),
            ];
            if with_disabled {
                v.push(cam("c3", "Cam 3", "hw2", false));
            }
            list(v)
        }
        "hardware" => list(vec![
            json!({"id":"hw1","name":"AXIS","address":"http://10.0.0.1/","model":"M3007",
                "relations":{"parent":{"type":"recordingServers","id":"rs1"},"self":{"type":"hardware","id":"hw1"}}}),
            json!({"id":"hw2","name":"Other","address":"http://10.0.0.2:443/",
                "relations":{"parent":{"type":"recordingServers","id":"rs1"},"self":{"type":"hardware","id":"hw2"}}}),
        ]),
        "recordingServers" => {
            let b = m.lock().base.clone();
            list(vec![
                json!({"id":"rs1","name":"REC1","hostName":"127.0.0.1","portNumber":7563,
                "webServerUri": b, "relations":{"self":{"type":"recordingServers","id":"rs1"}}}),
            ])
        }
        // Red Line is listed at the top too (a server listing every group).
        "cameraGroups" => list(vec![
            group(metro, "Metro"),
            group(police, "Police"),
            group(red, "Red Line"),
        ]),
        p => {
            let parts: Vec<&str> = p.split('/').collect();
            match parts.as_slice() {
                ["cameraGroups", id, "cameraGroups"] => list(match *id {
                    "g-metro" => vec![group(red, "Red Line"), group(blue, "Blue Line")],
                    "g-red" => vec![group(stations, "Stations")],
                    "g-blue" => vec![group(stations, "Stations")],
                    _ => vec![],
                }),
                ["cameraGroups", id, "cameras"] => list(match *id {
                    "g-red" => vec![cam("c1", "Cam 1", "hw1", true)],
                    "g-police" => vec![cam("c1", "Cam 1", "hw1", true), cam("c1", "Cam 1", "hw1", true)],
                    "g-blue" => vec![cam("c2", "Cam 2", "hw1", true)],
                    "g-stations" => vec![cam("c3", "Cam 3", "hw2", false)],
                    _ => vec![],
                }),
                _ => (
                    StatusCode::NOT_FOUND,
                    axum::Json(json!({"error":{"httpCode":404,"details":[{"errorText":format!("Unknown resource: {p}")}]}})),
                )
                    .into_response(),
            }
        }
    }
}

fn fault(msg: &str) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [("content-type", "text/xml; charset=utf-8")],
        format!("<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring xml:lang=\"en-US\">{msg}</faultstring></s:Fault></s:Body></s:Envelope>"),
    )
        .into_response()
}

async fn scs_login(State(m): State<Mock>, h: HeaderMap, body: String) -> Response {
    let mut s = m.lock();
    if !bearer_ok(&s, &h) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let action = h
        .get("soapaction")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim_matches('"')
        .to_owned();
    let inst = between(&body, "<instanceId>", "</instanceId>")
        .unwrap_or("")
        .to_owned();
    let cur = between(&body, "<currentToken>", "</currentToken>")
        .unwrap_or("")
        .to_owned();
    s.scs_logins.push((action, inst, cur));
    s.scs_seq += 1;
    let t = format!("TOKEN#{}#rec1//ServerConnector#", s.scs_seq);
    s.scs_valid = Some(t.clone());
    let ttl = s.scs_ttl_us;
    format!("<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><LoginResponse xmlns=\"http://videoos.net/2/XProtectCSServerCommand\"><LoginResult xmlns:a=\"http://schemas.datacontract.org/2004/07/VideoOS\" xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\"><a:RegistrationTime>2023-07-20T18:52:49.0530000Z</a:RegistrationTime><a:TimeToLive><a:MicroSeconds>{ttl}</a:MicroSeconds></a:TimeToLive><a:TimeToLiveLimited>false</a:TimeToLiveLimited><a:Token>{t}</a:Token></LoginResult></LoginResponse></s:Body></s:Envelope>").into_response()
}

async fn recorder(State(m): State<Mock>, body: String) -> Response {
    let mut s = m.lock();
    s.sequences_calls.push(body.clone());
    let tok = between(&body, "<token>", "</token>").unwrap_or("");
    if s.scs_reject_always
        || s.scs_valid.as_deref() != Some(tok)
        || !body.contains("<SequencesGet xmlns=\"http://videoos.net/2/XProtectCSRecorderCommand\">")
    {
        return fault("Token is not valid");
    }
    if !body.contains("<sequenceType>f9c62604-d0c5-4050-ae25-72de51639b14</sequenceType>") {
        return fault("Unknown sequence type");
    }
    "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><SequencesGetResponse xmlns=\"http://videoos.net/2/XProtectCSRecorderCommand\"><SequencesGetResult><SequenceEntry><TimeBegin>2023-07-20T18:52:49.0530000Z</TimeBegin><TimeTrigged>2023-07-20T18:52:49.0530000Z</TimeTrigged><TimeEnd>2023-07-20T18:53:01.0290000Z</TimeEnd></SequenceEntry><SequenceEntry><TimeBegin>2023-07-20T19:00:00.0000000</TimeBegin><TimeEnd>2023-07-20T19:05:00.0000000-05:00</TimeEnd></SequenceEntry></SequencesGetResult></SequencesGetResponse></soap:Body></soap:Envelope>".into_response()
}

struct Harness {
    mock: Mock,
    clocks: SimulatedClocks,
    base: url::Url,
}

async fn start() -> Harness {
    let mock: Mock = Arc::new(Mutex::new(MockState {
        expires_in: 3600,
        scs_ttl_us: 600_000_000,
        ..Default::default()
    }));
    let app = Router::new()
        .route("/api/.well-known/uris", get(well_known))
        .route("/IDP/.well-known/openid-configuration", get(oidc))
        .route("/IDP/connect/token", post(token))
        .route("/api/rest/v1/{*path}", get(rest))
        .route(
            "/ManagementServer/ServerCommandServiceOAuth.svc",
            post(scs_login),
        )
        .route(
            "/RecorderCommandService/RecorderCommandService.asmx",
            post(recorder),
        )
        .with_state(mock.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", l.local_addr().unwrap());
    mock.lock().base = base.clone();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    Harness {
        mock,
        clocks: SimulatedClocks::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_760_000_000)),
        base: url::Url::parse(&base).unwrap(),
    }
}

impl Harness {
    fn cfg(&self) -> XProtectConfig {
        let mut c = XProtectConfig::new(self.base.clone(), USER, PASSWORD);
        c.max_camera_lists_per_minute = 0; // unlimited unless a test says otherwise
        c
    }
    fn connector(&self, cfg: XProtectConfig) -> Connector {
        Connector::new(cfg, Arc::new(self.clocks.clone()))
    }
}

#[tokio::test]
async fn discovery() {
    let h = start().await;
    let c = h.connector(h.cfg());
    let d = c.discover().await.unwrap();
    assert_eq!(d.product_version.as_deref(), Some("25.1.1804.0"));
    assert_eq!(
        d.token_endpoint.as_str(),
        format!("{}IDP/connect/token", h.base)
    );
    assert_eq!(d.idp_server_version.as_deref(), Some("25.1"));
    assert_eq!(d.api_gateways, vec![format!("{}API/", h.base)]);
    assert!(!c.status().logged_in);
}

#[tokio::test]
async fn discovery_falls_back_without_well_known() {
    // A server with nothing but the token endpoint.
    let app = Router::new();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = url::Url::parse(&format!("http://{}/", l.local_addr().unwrap())).unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let c = Connector::new(
        XProtectConfig::new(base.clone(), USER, PASSWORD),
        Arc::new(base::RealClocks),
    );
    let d = c.discover().await.unwrap();
    assert_eq!(
        d.token_endpoint.as_str(),
        format!("{base}IDP/connect/token")
    );
    assert_eq!(d.product_version, None);
}

#[tokio::test]
async fn inventory_walks_groups_and_links() {
    let h = start().await;
    let c = h.connector(h.cfg());
    let inv = c.inventory().await.unwrap();

    // ?disabled was sent: the disabled camera is there.
    let ids: Vec<&str> = inv.cameras.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["c1", "c2", "c3"]);
    assert!(
        h.mock
            .lock()
            .rest_paths
            .contains(&"cameras?disabled".to_owned())
    );
    assert!(!inv.cameras[2].enabled);

    // Camera -> hardware -> recorder.
    assert!(
        inv.cameras
            .iter()
            .all(|c| c.recorder_id.as_deref() == Some("rs1"))
    );
    assert_eq!(inv.cameras[2].hardware_id.as_deref(), Some("hw2"));
    assert_eq!(inv.hardware.len(), 2);
    assert_eq!(inv.recorders[0].web_server_uri.as_ref(), Some(&h.base));

    // Groups: deduplicated by id, nested paths.
    let mut paths: Vec<(&str, &str, Option<&str>)> = inv
        .groups
        .iter()
        .map(|g| (g.id.as_str(), g.path.as_str(), g.parent_id.as_deref()))
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            ("g-blue", "Metro/Blue Line", Some("g-metro")),
            ("g-metro", "Metro", None),
            ("g-police", "Police", None),
            ("g-red", "Metro/Red Line", Some("g-metro")),
            ("g-stations", "Metro/Red Line/Stations", Some("g-red")),
        ]
    );
    // A camera in two groups; duplicates within one group collapse.
    let c1 = &inv.cameras[0];
    let mut g1 = c1.group_ids.clone();
    g1.sort();
    assert_eq!(g1, ["g-police", "g-red"]);
    let police = inv.groups.iter().find(|g| g.id == "g-police").unwrap();
    assert_eq!(police.camera_ids, ["c1"]);
    assert_eq!(inv.cameras[2].group_ids, ["g-stations"]);

    // discovery 2 + login 1 + 4 lists + 5 groups x 2 children.
    assert_eq!(inv.requests, 17);
    assert_eq!(h.mock.lock().logins, 1);
    let st = c.status();
    assert!(st.logged_in);
    assert_eq!(st.requests, 17);
    assert_eq!(
        st.token_expires_at,
        Some(h.clocks.realtime() + Duration::from_secs(3600))
    );
    assert_eq!(st.last_error, None);

    // Second run: no new login or discovery.
    let inv = c.inventory().await.unwrap();
    assert_eq!(inv.requests, 14);
    assert_eq!(h.mock.lock().logins, 1);
}

#[tokio::test]
async fn renews_token_before_expiry() {
    let h = start().await;
    h.mock.lock().expires_in = 600;
    let c = h.connector(h.cfg());
    c.inventory().await.unwrap();
    assert_eq!(h.mock.lock().logins, 1);
    // 80 % of 600 s is 480 s: at 470 s the token is reused, at 481 s it is renewed.
    h.clocks.advance(Duration::from_secs(470));
    c.inventory().await.unwrap();
    assert_eq!(h.mock.lock().logins, 1);
    h.clocks.advance(Duration::from_secs(11));
    c.inventory().await.unwrap();
    assert_eq!(h.mock.lock().logins, 2);
    // The old token was never refused (renewed ahead of time).
    assert!(c.status().logged_in);
}

#[tokio::test]
async fn one_relogin_on_401() {
    let h = start().await;
    let c = h.connector(h.cfg());
    c.inventory().await.unwrap();
    // The server forgets every token (e.g. restart): one re-login, then success.
    h.mock.lock().valid_tokens.clear();
    c.inventory().await.unwrap();
    assert_eq!(h.mock.lock().logins, 2);

    // A server that refuses every token: exactly one re-login per request, then failure.
    h.mock.lock().always_401 = true;
    let before = h.mock.lock().logins;
    let e = c.inventory().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert!(e.message().contains("HTTP 401"), "{e}");
    let logins = h.mock.lock().logins - before;
    assert!((1..=4).contains(&logins), "{logins}"); // one per concurrent first request at most
    assert!(c.status().last_error.unwrap().contains("401"));
}

#[tokio::test]
async fn single_request_401_relogin_count() {
    let h = start().await;
    h.mock.lock().always_401 = true;
    let c = h.connector(h.cfg());
    let e = c.discover().await.map(|_| ());
    assert!(e.is_ok());
    // SCS Login is a single request: first login + exactly one re-login.
    let rec = Recorder {
        web_server_uri: Some(h.base.clone()),
        ..Default::default()
    };
    let e = c
        .sequences("c1", &rec, SystemTime::UNIX_EPOCH, SystemTime::now(), 10)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert_eq!(h.mock.lock().logins, 2);
}

#[tokio::test]
async fn wrong_credentials() {
    let h = start().await;
    let mut cfg = h.cfg();
    cfg.password = "wrong-Secret-123".into();
    let c = h.connector(cfg.clone());
    let e = c.inventory().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert_eq!(
        e.message(),
        format!(
            "XProtect login failed: InvalidCredentials (server {})",
            h.base
        )
    );
    let st = c.status();
    assert!(!st.logged_in);
    let dbg = format!("{c:?} {cfg:?} {st:?} {e:?}");
    assert!(!dbg.contains("wrong-Secret-123"), "{dbg}");
    assert!(
        st.last_error
            .unwrap()
            .starts_with("XProtect login failed: InvalidCredentials")
    );
}

#[tokio::test]
async fn malformed_json_keeps_resource_name() {
    let h = start().await;
    h.mock.lock().cameras_override = Some((StatusCode::OK, "{\"array\":[{\"id\":".into()));
    let c = h.connector(h.cfg());
    let e = c.inventory().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DataLoss);
    assert_eq!(
        e.message(),
        "cameras: EOF while parsing a value at line 1 column 16"
    );
}

#[tokio::test]
async fn server_errors_are_unavailable() {
    let h = start().await;
    h.mock.lock().cameras_override = Some((
        StatusCode::SERVICE_UNAVAILABLE,
        r#"{"httpCode":"503","details":[{"errorText":"Gateway restarting"}]}"#.into(),
    ));
    let c = h.connector(h.cfg());
    let e = c.inventory().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(
        e.message(),
        format!("cameras: HTTP 503 from {}: Gateway restarting", h.base)
    );
}

#[tokio::test]
async fn timeouts_are_deadline_exceeded() {
    let h = start().await;
    h.mock.lock().cameras_delay = Some(Duration::from_secs(5));
    let mut cfg = h.cfg();
    cfg.request_timeout = Duration::from_millis(300);
    let c = h.connector(cfg);
    let e = c.inventory().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DeadlineExceeded);
    assert!(e.message().starts_with("cameras: no answer from"), "{e}");
}

#[tokio::test]
async fn unreachable_server_is_unavailable() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = url::Url::parse(&format!("http://{}/", l.local_addr().unwrap())).unwrap();
    drop(l);
    let c = Connector::new(
        XProtectConfig::new(base, USER, PASSWORD),
        Arc::new(base::RealClocks),
    );
    let e = c.discover().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
}

#[tokio::test]
async fn scs_login_and_sequences() {
    let h = start().await;
    let c = h.connector(h.cfg());
    let rec = Recorder {
        id: "rs1".into(),
        name: "REC1".into(),
        web_server_uri: Some(h.base.clone()),
        ..Default::default()
    };
    let from = SystemTime::UNIX_EPOCH + Duration::from_secs(1_689_811_200);
    let to = from + Duration::from_secs(86_400);
    let s = c.sequences("c1", &rec, from, to, 1000).await.unwrap();
    assert_eq!(s.len(), 2);
    let t = |x: &str| vms::parse_timestamp(x).unwrap().unwrap();
    assert_eq!(s[0].begin, t("2023-07-20T18:52:49.053Z"));
    assert_eq!(s[0].triggered, Some(s[0].begin));
    assert_eq!(s[1].begin, t("2023-07-20T19:00:00Z"));
    assert_eq!(s[1].end, t("2023-07-21T00:05:00Z"));
    assert_eq!(s[1].triggered, None);
    {
        let m = h.mock.lock();
        assert_eq!(m.scs_logins.len(), 1);
        let (action, inst, cur) = &m.scs_logins[0];
        assert_eq!(
            action,
            "http://videoos.net/2/XProtectCSServerCommand/IServerCommandService/Login"
        );
        assert_eq!(inst, c.instance_id());
        assert_eq!(cur, "");
        let body = &m.sequences_calls[0];
        assert!(body.contains("<deviceId>c1</deviceId>"));
        assert!(body.contains("<minTime>2023-07-20T00:00:00.000Z</minTime>"));
        assert!(body.contains("<maxCount>1000</maxCount>"));
    }
    let st = c.status();
    assert_eq!(
        st.scs_token_expires_at,
        Some(h.clocks.realtime() + Duration::from_secs(600))
    );
    // Renewed with the same instanceId and the old token at 80 % of its 600 s.
    h.clocks.advance(Duration::from_secs(481));
    c.sequences("c1", &rec, from, to, 10).await.unwrap();
    {
        let m = h.mock.lock();
        assert_eq!(m.scs_logins.len(), 2);
        assert_eq!(m.scs_logins[1].1, c.instance_id());
        assert_eq!(m.scs_logins[1].2, "TOKEN#1#rec1//ServerConnector#");
    }
    // The recorder forgets the token: the fault leads to one fresh SCS login and a retry.
    h.mock.lock().scs_valid = Some("something else".into());
    c.sequences("c1", &rec, from, to, 10).await.unwrap();
    assert_eq!(h.mock.lock().scs_logins.len(), 3);
    assert_eq!(h.mock.lock().scs_logins[2].2, "");
    // A recorder that keeps refusing: the SOAP fault string is the error.
    h.mock.lock().scs_reject_always = true;
    let e = c.sequences("c1", &rec, from, to, 10).await.unwrap_err();
    assert_eq!(h.mock.lock().scs_logins.len(), 4); // exactly one fresh login
    assert_eq!(e.kind(), ErrorKind::Unauthenticated);
    assert_eq!(
        e.message(),
        "camera c1: SequencesGet: SOAP fault: Token is not valid"
    );
    assert!(!e.message().contains("TOKEN#"));
}

#[tokio::test]
async fn sequences_argument_checks() {
    let h = start().await;
    let c = h.connector(h.cfg());
    let rec = Recorder::default();
    let e = c
        .sequences(
            "c1",
            &rec,
            SystemTime::UNIX_EPOCH,
            SystemTime::UNIX_EPOCH,
            1,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
    let rec = Recorder {
        web_server_uri: Some(h.base.clone()),
        ..Default::default()
    };
    let e = c
        .sequences("c1", &rec, SystemTime::now(), SystemTime::UNIX_EPOCH, 1)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[tokio::test]
async fn camera_list_rate_limit_waits() {
    let h = start().await;
    let mut cfg = h.cfg();
    cfg.max_camera_lists_per_minute = 1;
    let c = h.connector(cfg);
    c.inventory().await.unwrap();
    // The second list within the minute waits (here: for the simulated clock's minute, which
    // real time will not reach within the test).
    let r = tokio::time::timeout(Duration::from_millis(300), c.inventory()).await;
    assert!(
        r.is_err(),
        "second camera list within a minute did not wait"
    );
    // A minute later (and a fresh reservation) it goes through at once.
    let c2 = h.connector({
        let mut cfg = h.cfg();
        cfg.max_camera_lists_per_minute = 1;
        cfg
    });
    c2.inventory().await.unwrap();
    h.clocks.advance(Duration::from_secs(60));
    tokio::time::timeout(Duration::from_secs(10), c2.inventory())
        .await
        .expect("no wait after a minute")
        .unwrap();
}

//! HTTP handlers of the management server / API Gateway and of the recording server. Routing is
//! done by hand on the lower-cased path, because IIS paths are case-insensitive.
#![deny(clippy::indexing_slicing)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::model::Estate;
use crate::{Shared, seq, ts, xml};

type Sh = Arc<Shared>;

pub(crate) fn management_router(shared: Sh) -> Router {
    Router::new().fallback(management).with_state(shared)
}

pub(crate) fn recorder_router(shared: Sh) -> Router {
    Router::new().fallback(recorder).with_state(shared)
}

// ---- helpers ----------------------------------------------------------------------------------

fn json_resp(status: StatusCode, v: &Value, malformed: bool) -> Response {
    let mut body = v.to_string();
    if malformed {
        // Cut in the middle and add garbage, as a proxy that died mid-answer would.
        let mut cut = body.len() / 2;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
        body.push_str("<html");
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

fn rest_error(status: StatusCode, text: &str) -> Response {
    let v = json!({"error": {"httpCode": status.as_u16(), "details": [{"errorText": text}]}});
    json_resp(status, &v, false)
}

fn xml_resp(status: StatusCode, body: String, malformed: bool) -> Response {
    let mut body = body;
    if malformed {
        let mut cut = body.len() / 2;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
    }
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn has_flag(q: &[(String, String)], key: &str) -> bool {
    q.iter().any(|(k, _)| k.eq_ignore_ascii_case(key))
}

fn param<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// Applies `slow` and `hang`. Returns a response only when the simulator shuts down while hanging.
async fn delay_faults(sh: &Shared) -> Option<Response> {
    let (slow, hang) = {
        let f = sh.faults.lock();
        (f.slow, f.hang)
    };
    if let Some(d) = slow {
        tokio::time::sleep(d).await;
    }
    if hang {
        let mut rx = sh.shutdown.clone();
        let _ = rx.wait_for(|v| *v).await;
        return Some(StatusCode::SERVICE_UNAVAILABLE.into_response());
    }
    None
}

fn random_b64url(n: usize) -> String {
    use base64::Engine;
    let mut bytes = vec![0u8; n];
    rand::rng().fill(&mut bytes[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWT-looking opaque token (RS256 header as in the captured 25.1 token; the signature is
/// random, the simulator only looks tokens up).
fn fake_jwt(sh: &Shared, ttl: Duration) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(r#"{"alg":"RS256","kid":"8B7F5A4C3E2D1F0A","typ":"JWT"}"#);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let payload = json!({
        "iss": format!("{}/IDP", sh.server_url),
        "nbf": now, "iat": now, "exp": now + ttl.as_secs(),
        "aud": "managementserver", "scope": ["managementserver"],
        "client_id": "GrantValidatorClient", "sub": sh.cfg.username,
        "jti": random_b64url(12),
    });
    format!(
        "{header}.{}.{}",
        b64.encode(payload.to_string()),
        random_b64url(64)
    )
}

enum Auth {
    Ok,
    Missing,
    Invalid,
}

fn check_bearer(sh: &Shared, headers: &HeaderMap) -> Auth {
    let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Auth::Missing;
    };
    let Some((scheme, token)) = v.trim().split_once(' ') else {
        return Auth::Invalid;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Auth::Invalid;
    }
    if sh.faults.lock().expire_tokens_immediately {
        return Auth::Invalid;
    }
    match sh.tokens.lock().get(token.trim()) {
        Some(&exp) if exp > Instant::now() => Auth::Ok,
        _ => Auth::Invalid,
    }
}

/// 401 as an IIS/ASP.NET bearer handler answers it, with an error body in the gateway's
/// envelope [I: the reference shows no captured 401 body].
fn unauthorized(invalid: bool) -> Response {
    let mut r = rest_error(
        StatusCode::UNAUTHORIZED,
        if invalid {
            "The access token is invalid or has expired."
        } else {
            "Authorization has been denied for this request."
        },
    );
    let challenge = if invalid {
        "Bearer error=\"invalid_token\", error_description=\"The access token is invalid or has expired\""
    } else {
        "Bearer"
    };
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    r
}

// ---- management server ------------------------------------------------------------------------

async fn management(
    State(sh): State<Sh>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let lower = path.to_ascii_lowercase();
    let lower = lower.trim_end_matches('/');
    // Counted on arrival, so hung and slow requests count too.
    sh.count(&classify(&method, &path, lower, &body));
    if let Some(r) = delay_faults(&sh).await {
        return r;
    }
    match (method.clone(), lower) {
        (Method::GET, "/api/.well-known/uris") => well_known_uris(&sh),
        (Method::GET, "/idp/.well-known/openid-configuration") => openid_configuration(&sh),
        (Method::POST, "/idp/connect/token") => token(&sh, &headers, &body, false),
        (Method::POST, "/api/idp/connect/token") => token(&sh, &headers, &body, true),
        (Method::POST, "/managementserver/servercommandserviceoauth.svc") => {
            server_command(&sh, &headers, &body)
        }
        (_, p) if p == "/api/rest/v1" || p.starts_with("/api/rest/v1/") => {
            let rest = path.get("/api/rest/v1".len()..).unwrap_or("");
            rest_api(&sh, &method, rest, &uri, &headers)
        }
        _ => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}

fn well_known_uris(sh: &Shared) -> Response {
    let s = &sh.server_url;
    // [I] both management server URIs point at the (plain HTTP) simulator.
    let v = json!({
        "ProductVersion": crate::PRODUCT_VERSION,
        "UnsecureManagementServer": format!("{s}/"),
        "SecureManagementServer": format!("{s}/"),
        "IdentityProvider": format!("{s}/IDP"),
        "ApiGateways": [format!("{s}/API/")],
    });
    json_resp(StatusCode::OK, &v, false)
}

fn openid_configuration(sh: &Shared) -> Response {
    let s = &sh.server_url;
    let v = json!({
        "issuer": format!("{s}/IDP"),
        "jwks_uri": format!("{s}/IDP/.well-known/openid-configuration/jwks"),
        "authorization_endpoint": format!("{s}/IDP/connect/authorize"),
        "token_endpoint": format!("{s}/IDP/connect/token"),
        "userinfo_endpoint": format!("{s}/IDP/connect/userinfo"),
        "end_session_endpoint": format!("{s}/IDP/connect/endsession"),
        "revocation_endpoint": format!("{s}/IDP/connect/revocation"),
        "introspection_endpoint": format!("{s}/IDP/connect/introspect"),
        "scopes_supported": ["openid", "profile", "managementserver", "offline_access"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token",
            "password", "windows_credentials"],
        "response_types_supported": ["code"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "server_version": "25.1",
        "external_providers_uri": format!("{s}/IDP/api/externalproviders"),
    });
    json_resp(StatusCode::OK, &v, false)
}

fn idp_error(status: StatusCode, error: &str, description: &str, code: Option<&str>) -> Response {
    let mut v = json!({"error": error, "error_description": description});
    if let (Some(c), Some(o)) = (code, v.as_object_mut()) {
        o.insert("error_code".to_owned(), json!(c));
    }
    json_resp(status, &v, false)
}

fn issue(sh: &Shared, with_refresh: bool, client_id: &str) -> Response {
    let ttl = sh.cfg.token_ttl;
    let token = fake_jwt(sh, ttl);
    let exp = if sh.faults.lock().expire_tokens_immediately {
        Instant::now()
    } else {
        Instant::now() + ttl
    };
    {
        let mut t = sh.tokens.lock();
        let now = Instant::now();
        t.retain(|_, e| *e > now);
        t.insert(token.clone(), exp);
    }
    let mut v = json!({
        "access_token": token,
        "expires_in": ttl.as_secs(),
        "token_type": "Bearer",
        "scope": "managementserver",
    });
    if with_refresh && let Some(o) = v.as_object_mut() {
        let rt = random_b64url(32);
        sh.refresh_tokens.lock().insert(rt.clone(), ());
        o.insert("refresh_token".to_owned(), json!(rt));
        o.insert("scope".to_owned(), json!("managementserver offline_access"));
    }
    tracing::trace!(client_id, "sim issued an access token");
    json_resp(StatusCode::OK, &v, false)
}

fn token(sh: &Shared, headers: &HeaderMap, body: &[u8], via_gateway: bool) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| param(&form, k).unwrap_or("");
    let client_id = get("client_id");
    match get("grant_type") {
        "password" => {
            if !matches!(
                client_id,
                "GrantValidatorClient" | "VmsClient" | "VmsAdminClient"
            ) {
                return idp_error(StatusCode::BAD_REQUEST, "invalid_client", "", None);
            }
            if get("username") != sh.cfg.username || get("password") != sh.cfg.password {
                return idp_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Invalid username or password",
                    Some("InvalidCredentials"),
                );
            }
            issue(sh, client_id == "VmsClient", client_id)
        }
        "refresh_token" => {
            let rt = get("refresh_token");
            if client_id != "VmsClient" || sh.refresh_tokens.lock().remove(rt).is_none() {
                return idp_error(StatusCode::BAD_REQUEST, "invalid_grant", "", None);
            }
            issue(sh, true, client_id)
        }
        "client_credentials" => {
            if client_id != sh.cfg.username || get("client_secret") != sh.cfg.password {
                return idp_error(StatusCode::BAD_REQUEST, "invalid_client", "", None);
            }
            issue(sh, false, client_id)
        }
        "windows_credentials" if via_gateway => idp_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "NTLM authentication is not supported through the API Gateway",
            None,
        ),
        "windows_credentials" => {
            // The simulator has no Windows users: an NTLM handshake is never completed [I].
            let has_auth = headers.contains_key(header::AUTHORIZATION);
            let mut r = (StatusCode::UNAUTHORIZED, "").into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Negotiate, NTLM"),
            );
            if has_auth {
                return idp_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Windows authentication failed",
                    Some("InvalidCredentials"),
                );
            }
            r
        }
        "" => idp_error(StatusCode::BAD_REQUEST, "invalid_request", "", None),
        _ => idp_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "", None),
    }
}

/// The request-count key of a management-server request.
fn classify(method: &Method, path: &str, lower: &str, body: &[u8]) -> String {
    match (method, lower) {
        (&Method::GET, "/api/.well-known/uris") => "uris".to_owned(),
        (&Method::GET, "/idp/.well-known/openid-configuration") => {
            "openid-configuration".to_owned()
        }
        (&Method::POST, "/idp/connect/token" | "/api/idp/connect/token") => "token".to_owned(),
        (&Method::POST, "/managementserver/servercommandserviceoauth.svc") => format!(
            "soap:{}",
            xml::body_operation(&String::from_utf8_lossy(body)).unwrap_or_default()
        ),
        (_, p) if p == "/api/rest/v1" || p.starts_with("/api/rest/v1/") => {
            let rest = path.get("/api/rest/v1".len()..).unwrap_or("");
            let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
            match segs.as_slice() {
                [] => "rest:".to_owned(),
                [r] => format!("rest:{}", canonical(r).unwrap_or("unknown")),
                [r, _] => format!("rest:{}/{{id}}", canonical(r).unwrap_or("unknown")),
                [r, _, c, ..] => format!(
                    "rest:{}/{{id}}/{}",
                    canonical(r).unwrap_or("unknown"),
                    canonical(c).unwrap_or("unknown")
                ),
            }
        }
        _ => "other".to_owned(),
    }
}

// ---- REST configuration API -------------------------------------------------------------------

/// Canonical casing of the resource names the simulator knows.
fn canonical(seg: &str) -> Option<&'static str> {
    [
        "sites",
        "cameras",
        "hardware",
        "recordingServers",
        "cameraGroups",
        "storages",
    ]
    .into_iter()
    .find(|r| r.eq_ignore_ascii_case(seg))
}

fn rest_api(sh: &Shared, method: &Method, rest: &str, uri: &Uri, headers: &HeaderMap) -> Response {
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match check_bearer(sh, headers) {
        Auth::Ok => {}
        Auth::Missing => return unauthorized(false),
        Auth::Invalid => return unauthorized(true),
    }
    let faults = sh.faults.lock().clone();
    if faults.unauthorized {
        return unauthorized(true);
    }
    if faults.server_error {
        return rest_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An error has occurred on the server.",
        );
    }
    if *method != Method::GET {
        return rest_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "The simulator's configuration API is read-only.",
        );
    }
    let q = query_pairs(uri);
    let disabled = has_flag(&q, "disabled");
    let e = sh.estate.lock();
    let result = match segs.as_slice() {
        [] => Err(unknown("")),
        [r] => list(sh, &e, r, disabled, &faults),
        [r, id] => item(sh, &e, r, id, faults.numbers_as_strings),
        [r, id, child] => child_list(sh, &e, r, id, child, disabled, faults.numbers_as_strings),
        [r, id, child, cid] => {
            child_list(sh, &e, r, id, child, disabled, faults.numbers_as_strings).and_then(
                |items| {
                    items
                        .into_iter()
                        .find(|v| {
                            v.get("id")
                                .and_then(Value::as_str)
                                .is_some_and(|i| i.eq_ignore_ascii_case(cid))
                        })
                        .map(|v| vec![json!({"data": v})])
                        .ok_or_else(|| not_found_item(cid))
                },
            )
        }
        [.., last] => Err(unknown(last)),
    };
    drop(e);
    match result {
        Ok(mut items) => {
            // `[r, id]` and `[r, id, child, cid]` return one pre-wrapped `{"data":…}`.
            let single = matches!(segs.len(), 2 | 4);
            if single {
                let v = items.pop().unwrap_or(Value::Null);
                let v = if segs.len() == 2 {
                    json!({"data": v})
                } else {
                    v
                };
                return json_resp(StatusCode::OK, &v, faults.malformed_json);
            }
            if faults.honour_paging
                && let (Some(page), Some(size)) = (param(&q, "page"), param(&q, "size"))
                && let (Ok(page), Ok(size)) = (page.parse::<usize>(), size.parse::<usize>())
                && size > 0
            {
                items = items
                    .into_iter()
                    .skip(page.saturating_mul(size))
                    .take(size)
                    .collect();
            }
            json_resp(
                StatusCode::OK,
                &json!({"array": items}),
                faults.malformed_json,
            )
        }
        Err(r) => r.response(),
    }
}

/// A REST error: status and `errorText`.
struct RestErr(StatusCode, String);

impl RestErr {
    fn response(&self) -> Response {
        rest_error(self.0, &self.1)
    }
}

fn not_found_item(id: &str) -> RestErr {
    // [I] the reference has no captured body for an unknown id; same envelope as §2.1.
    RestErr(
        StatusCode::NOT_FOUND,
        format!("Item with id '{id}' was not found."),
    )
}

fn unknown(seg: &str) -> RestErr {
    RestErr(StatusCode::NOT_FOUND, format!("Unknown resource: {seg}"))
}

fn cameras_json<'a>(
    e: &'a Estate,
    cams: impl Iterator<Item = &'a crate::model::Camera>,
    disabled: bool,
    strings: bool,
) -> Vec<Value> {
    cams.filter(|c| disabled || c.enabled)
        .map(|c| e.camera_json(c, strings))
        .collect()
}

fn list(
    sh: &Shared,
    e: &Estate,
    r: &str,
    disabled: bool,
    faults: &crate::Faults,
) -> Result<Vec<Value>, RestErr> {
    let strings = faults.numbers_as_strings;
    match canonical(r) {
        Some("sites") => Ok(vec![e.site_json()]),
        Some("cameras") => Ok(cameras_json(e, e.cameras.iter(), disabled, strings)),
        Some("hardware") => Ok(e.hardware.iter().map(|h| e.hardware_json(h)).collect()),
        Some("recordingServers") => Ok(e
            .recorders
            .iter()
            .map(|x| e.recorder_json(x, &sh.recorder_host, sh.recorder_port))
            .collect()),
        // Top-level groups only; clients walk `/cameraGroups/{id}/cameraGroups` (§2.5 [?]).
        Some("cameraGroups") => Ok(e
            .groups
            .iter()
            .filter(|g| faults.groups_flat || g.parent_id.is_none())
            .map(|g| e.group_json(g))
            .collect()),
        // `GET /storages` answered 400 on a live estate [R] NETMON.
        Some("storages") => Err(RestErr(
            StatusCode::BAD_REQUEST,
            "Operation not supported on storages without a parent recording server.".to_owned(),
        )),
        _ => Err(unknown(r)),
    }
}

fn item(sh: &Shared, e: &Estate, r: &str, id: &str, strings: bool) -> Result<Vec<Value>, RestErr> {
    let eq = |a: &str| a.eq_ignore_ascii_case(id);
    let v = match canonical(r) {
        Some("sites") => eq(&e.site.id).then(|| e.site_json()),
        Some("cameras") => e
            .cameras
            .iter()
            .find(|c| eq(&c.id))
            .map(|c| e.camera_json(c, strings)),
        Some("hardware") => e
            .hardware
            .iter()
            .find(|h| eq(&h.id))
            .map(|h| e.hardware_json(h)),
        Some("recordingServers") => e
            .recorders
            .iter()
            .find(|x| eq(&x.id))
            .map(|x| e.recorder_json(x, &sh.recorder_host, sh.recorder_port)),
        Some("cameraGroups") => e.groups.iter().find(|g| eq(&g.id)).map(|g| e.group_json(g)),
        Some("storages") => e
            .recorders
            .iter()
            .find(|x| eq(&x.storage_id))
            .map(|x| e.storage_json(x)),
        _ => return Err(unknown(r)),
    };
    v.map(|v| vec![v]).ok_or_else(|| not_found_item(id))
}

fn child_list(
    sh: &Shared,
    e: &Estate,
    r: &str,
    id: &str,
    child: &str,
    disabled: bool,
    strings: bool,
) -> Result<Vec<Value>, RestErr> {
    let eq = |a: &str| a.eq_ignore_ascii_case(id);
    let parent = canonical(r).ok_or_else(|| unknown(r))?;
    // The parent must exist before its children are looked at.
    item(sh, e, parent, id, strings)?;
    match (parent, canonical(child)) {
        ("hardware", Some("cameras")) => {
            let mut cams: Vec<&crate::model::Camera> =
                e.cameras.iter().filter(|c| eq(&c.hardware_id)).collect();
            cams.sort_by_key(|c| c.channel);
            Ok(cameras_json(e, cams.into_iter(), disabled, strings))
        }
        ("cameraGroups", Some("cameras")) => {
            let g = e.groups.iter().find(|g| eq(&g.id));
            let ids: Vec<&String> = g.map(|g| g.camera_ids.iter().collect()).unwrap_or_default();
            let cams = ids
                .into_iter()
                .filter_map(|cid| e.cameras.iter().find(|c| c.id == *cid));
            Ok(cameras_json(e, cams, disabled, strings))
        }
        ("cameraGroups", Some("cameraGroups")) => {
            let gid = e.groups.iter().find(|g| eq(&g.id)).map(|g| g.id.clone());
            Ok(e.groups
                .iter()
                .filter(|g| g.parent_id.is_some() && g.parent_id == gid)
                .map(|g| e.group_json(g))
                .collect())
        }
        ("recordingServers", Some("storages")) => Ok(e
            .recorders
            .iter()
            .filter(|x| eq(&x.id))
            .map(|x| e.storage_json(x))
            .collect()),
        ("recordingServers", Some("hardware")) => Ok(e
            .hardware
            .iter()
            .filter(|h| eq(&h.recorder_id))
            .map(|h| e.hardware_json(h))
            .collect()),
        _ => Err(unknown(child)),
    }
}

// ---- SOAP ---------------------------------------------------------------------------------------

const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const SCS_NS: &str = "http://videoos.net/2/XProtectCSServerCommand";
const RCS_NS: &str = "http://videoos.net/2/XProtectCSRecorderCommand";

fn soap_envelope(inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"{SOAP_ENV}\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"><soap:Body>{inner}</soap:Body></soap:Envelope>"
    )
}

fn soap_fault(code: &str, text: &str, malformed: bool) -> Response {
    let inner = format!(
        "<soap:Fault><faultcode>soap:{code}</faultcode><faultstring>{}</faultstring><detail /></soap:Fault>",
        xml::escape(text)
    );
    xml_resp(
        StatusCode::INTERNAL_SERVER_ERROR,
        soap_envelope(&inner),
        malformed,
    )
}

fn server_command(sh: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let text = String::from_utf8_lossy(body);
    let op = xml::body_operation(&text).unwrap_or_default();
    match check_bearer(sh, headers) {
        Auth::Ok => {}
        // WCF with a bearer behaviour answers a bare 401 [I].
        Auth::Missing | Auth::Invalid => {
            let mut r = (StatusCode::UNAUTHORIZED, "").into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    let malformed = sh.faults.lock().malformed_xml;
    match op.as_str() {
        "Login" => {
            let current = xml::child_text(&text, "currentToken").unwrap_or_default();
            let ttl = sh.cfg.scs_ttl;
            let now = Instant::now();
            let token = {
                let mut t = sh.scs_tokens.lock();
                t.retain(|_, exp| *exp > now);
                // Renewal keeps the token and extends it [?]; otherwise a new one.
                let token = if !current.is_empty() && t.contains_key(&current) {
                    current
                } else {
                    format!(
                        "TOKEN#{}#{}//ServerConnector#",
                        uuid::Uuid::new_v4(),
                        sh.recorder_host
                    )
                };
                t.insert(token.clone(), now + ttl);
                token
            };
            let inner = format!(
                "<LoginResponse xmlns=\"{SCS_NS}\"><LoginResult><RegistrationTime>{}</RegistrationTime>\
                 <TimeToLive><MicroSeconds>{}</MicroSeconds></TimeToLive>\
                 <TimeToLiveLimited>false</TimeToLiveLimited><Token>{}</Token></LoginResult></LoginResponse>",
                ts::utc7(SystemTime::now()),
                ttl.as_micros(),
                xml::escape(&token)
            );
            xml_resp(StatusCode::OK, soap_envelope(&inner), malformed)
        }
        "" => soap_fault(
            "Client",
            "The request has no SOAP body operation.",
            malformed,
        ),
        other => soap_fault(
            "Client",
            &format!("The operation '{other}' is not supported by the simulator."),
            malformed,
        ),
    }
}

// ---- recording server ---------------------------------------------------------------------------

async fn recorder(State(sh): State<Sh>, method: Method, uri: Uri, body: Bytes) -> Response {
    let lower = uri.path().to_ascii_lowercase();
    let text = String::from_utf8_lossy(&body);
    let op = xml::body_operation(&text).unwrap_or_default();
    let known =
        method == Method::POST && lower == "/recordercommandservice/recordercommandservice.asmx";
    if known {
        sh.count(&format!("recorder:{op}"));
    } else {
        sh.count("recorder:other");
    }
    if let Some(r) = delay_faults(&sh).await {
        return r;
    }
    if !known {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    let malformed = sh.faults.lock().malformed_xml;
    match recorder_op(&sh, &op, &text) {
        Ok(inner) => xml_resp(StatusCode::OK, soap_envelope(&inner), malformed),
        Err(msg) => soap_fault("Server", &msg, malformed),
    }
}

fn recorder_op(sh: &Shared, op: &str, text: &str) -> Result<String, String> {
    if !matches!(op, "SequencesGetTypes" | "SequencesGet") {
        return Err(format!(
            "Server did not recognize the value of HTTP Header SOAPAction or body element: {op}."
        ));
    }
    let token = xml::child_text(text, "token").unwrap_or_default();
    let valid = sh
        .scs_tokens
        .lock()
        .get(&token)
        .is_some_and(|exp| *exp > Instant::now());
    if !valid {
        return Err("Token is not valid or has expired.".to_owned());
    }
    // `deviceId` (XPW-PY) or `deviceIds/guid` (CNS).
    let device = xml::child_text(text, "deviceId")
        .or_else(|| xml::child_text(text, "guid"))
        .ok_or("Missing deviceId.")?;
    let camera_id = sh
        .estate
        .lock()
        .find_camera(&device)
        .map(|c| c.id.clone())
        .ok_or_else(|| format!("Device '{device}' is unknown on this recording server."))?;
    match op {
        "SequencesGetTypes" => {
            let types: String = seq::TYPES
                .iter()
                .map(|(id, name)| {
                    format!("<SequenceType><Id>{id}</Id><Name>{name}</Name></SequenceType>")
                })
                .collect();
            Ok(format!(
                "<SequencesGetTypesResponse xmlns=\"{RCS_NS}\"><SequencesGetTypesResult>{types}\
                 </SequencesGetTypesResult></SequencesGetTypesResponse>"
            ))
        }
        _ => {
            let kind_s = xml::child_text(text, "sequenceType").unwrap_or_default();
            let kind = seq::Kind::from_guid(&kind_s)
                .ok_or_else(|| format!("Unknown sequence type '{kind_s}'."))?;
            let time = |name: &str| {
                xml::child_text(text, name)
                    .and_then(|s| ts::parse(&s))
                    .ok_or_else(|| format!("Missing or invalid {name}."))
            };
            let min = time("minTime")?;
            let max = time("maxTime")?;
            let max_count = xml::child_text(text, "maxCount")
                .and_then(|s| s.trim().parse::<i64>().ok())
                .ok_or("Missing or invalid maxCount.")?;
            let max_count = usize::try_from(max_count.max(0)).unwrap_or(0);
            let entries: String = seq::query(
                sh.cfg.seed,
                &camera_id,
                kind,
                min,
                max,
                max_count,
                SystemTime::now(),
            )
            .into_iter()
            .map(|s| {
                format!(
                    "<SequenceEntry><TimeBegin>{}</TimeBegin><TimeTrigged>{}</TimeTrigged>\
                     <TimeEnd>{}</TimeEnd></SequenceEntry>",
                    ts::utc7(s.begin),
                    ts::utc7(s.trigged),
                    ts::utc7(s.end)
                )
            })
            .collect();
            Ok(format!(
                "<SequencesGetResponse xmlns=\"{RCS_NS}\"><SequencesGetResult>{entries}\
                 </SequencesGetResult></SequencesGetResponse>"
            ))
        }
    }
}

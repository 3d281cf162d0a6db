//! The async connector: HTTP, tokens, rate limits, the inventory walk.
//!
//! The walk links groups and cameras by what the VMS answered, so it indexes only through `get`.
#![deny(clippy::indexing_slicing)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use base::{Clocks, Error, ErrorKind, err};
use parking_lot::Mutex;
use reqwest::StatusCode;

use crate::bucket::TokenBucket;
use crate::parse::{
    self, parse_camera_groups, parse_cameras, parse_hardware, parse_openid_configuration,
    parse_recording_servers, parse_rest_error, parse_token_response, parse_well_known_uris,
    truncate,
};
use crate::soap::{self, parse_login_result, parse_sequences};
use crate::{
    ConnectorStatus, Discovery, Group, Inventory, Recorder, Secret, Sequence, XProtectConfig,
};

/// Groups beyond this many are not walked (protects against a server that invents groups).
const MAX_GROUPS: usize = 100_000;

/// The XProtect connector. Cheap to clone; clones share tokens, limits and counters.
#[derive(Clone)]
pub struct Connector(Arc<Inner>);

struct Inner {
    cfg: XProtectConfig,
    clocks: Arc<dyn Clocks>,
    http: reqwest::Client,
    /// `server_url` with a trailing `/`.
    base: url::Url,
    /// `server_url` with credentials removed, for messages.
    server: String,
    /// The `instanceId` sent with every SCS `Login` of this connector.
    instance_id: String,
    access: tokio::sync::Mutex<AccessState>,
    scs: tokio::sync::Mutex<Option<Token>>,
    shared: Mutex<Shared>,
    camera_bucket: Mutex<TokenBucket>,
    recording_bucket: Mutex<TokenBucket>,
    requests: AtomicU64,
    logins: AtomicU64,
}

#[derive(Default)]
struct AccessState {
    discovery: Option<Discovery>,
    token: Option<Token>,
}

struct Token {
    secret: Secret,
    renew_at: Instant,
    expires_at: Instant,
}

#[derive(Default)]
struct Shared {
    access_expires: Option<(Instant, SystemTime)>,
    scs_expires: Option<SystemTime>,
    last_error: Option<String>,
    /// Recent tokens, scrubbed from any message that might echo them.
    secrets: VecDeque<String>,
}

/// When to renew a credential that lives `ttl`: at 80 %, or 60 s before the end if that is
/// earlier, but never before half of it.
pub(crate) fn renew_after(ttl: Duration) -> Duration {
    let a = ttl.mul_f64(0.8);
    let b = ttl.saturating_sub(Duration::from_secs(60));
    a.min(b).max(ttl / 2)
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("server", &self.0.server)
            .field("username", &self.0.cfg.username)
            .finish_non_exhaustive()
    }
}

impl Connector {
    pub fn new(cfg: XProtectConfig, clocks: Arc<dyn Clocks>) -> Self {
        let mut base = cfg.server_url.clone();
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        base.set_query(None);
        base.set_fragment(None);
        let _ = base.set_username("");
        let _ = base.set_password(None);
        let http = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout.min(Duration::from_secs(15)))
            .http1_only()
            .no_proxy()
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Connector(Arc::new(Inner {
            server: base::redact_url(cfg.server_url.as_str()),
            camera_bucket: Mutex::new(TokenBucket::new(cfg.max_camera_lists_per_minute, 1)),
            recording_bucket: Mutex::new(TokenBucket::new(
                cfg.max_recording_queries_per_minute,
                cfg.max_recording_queries_per_minute,
            )),
            instance_id: uuid::Uuid::new_v4().to_string(),
            base,
            cfg,
            clocks,
            http,
            access: tokio::sync::Mutex::new(AccessState::default()),
            scs: tokio::sync::Mutex::new(None),
            shared: Mutex::new(Shared::default()),
            requests: AtomicU64::new(0),
            logins: AtomicU64::new(0),
        }))
    }

    /// The fixed `instanceId` this connector sends with SCS `Login`.
    pub fn instance_id(&self) -> &str {
        &self.0.instance_id
    }

    /// Asks the server where its identity provider and token endpoint are (no credentials).
    /// Also remembered for later logins.
    pub async fn discover(&self) -> Result<Discovery, Error> {
        let r = self.0.discover(None).await;
        if let Ok(d) = &r {
            self.0.access.lock().await.discovery = Some(d.clone());
        }
        self.0.finish(r)
    }

    /// Fetches cameras (including disabled ones), hardware, recording servers and the camera-group
    /// tree, and links them. Waits for the camera-list rate limit first.
    pub async fn inventory(&self) -> Result<Inventory, Error> {
        self.0.wait(&self.0.camera_bucket, "camera list").await;
        let ctr = AtomicU32::new(0);
        let r = self.0.inventory(&ctr).await;
        self.0.finish(r)
    }

    /// The recorded sequences of one camera in `[from, to]`, at most `max`, sorted by begin as the
    /// recorder sends them. Waits for the recording-query rate limit first.
    pub async fn sequences(
        &self,
        camera_id: &str,
        recorder: &Recorder,
        from: SystemTime,
        to: SystemTime,
        max: u32,
    ) -> Result<Vec<Sequence>, Error> {
        let r = async {
            if to < from {
                return Err(err!(
                    InvalidArgument,
                    "sequences: the end is before the start"
                ));
            }
            if camera_id.trim().is_empty() {
                return Err(err!(InvalidArgument, "sequences: empty camera id"));
            }
            let Some(web) = &recorder.web_server_uri else {
                return Err(err!(
                    FailedPrecondition,
                    "sequences: recording server {:?} has no web server address",
                    recorder.name
                ));
            };
            self.0
                .wait(&self.0.recording_bucket, "recording query")
                .await;
            self.0.sequences(camera_id, web, from, to, max.max(1)).await
        }
        .await;
        self.0.finish(r)
    }

    pub fn status(&self) -> ConnectorStatus {
        let now = self.0.clocks.monotonic();
        let s = self.0.shared.lock();
        ConnectorStatus {
            server_url: self.0.server.clone(),
            logged_in: s.access_expires.is_some_and(|(m, _)| now < m),
            token_expires_at: s.access_expires.map(|(_, w)| w),
            scs_token_expires_at: s.scs_expires,
            last_error: s.last_error.clone(),
            requests: self.0.requests.load(Ordering::Relaxed),
            logins: self.0.logins.load(Ordering::Relaxed),
        }
    }
}

impl Inner {
    fn url(&self, rel: &str) -> Result<url::Url, Error> {
        self.base.join(rel).map_err(|e| {
            err!(
                InvalidArgument,
                "bad XProtect URL {}{rel}: {e}",
                self.server
            )
        })
    }

    /// Removes the password and recent tokens from a message.
    fn scrub(&self, msg: &str) -> String {
        let mut m = base::redact_secret_in(msg, &self.cfg.password);
        for s in &self.shared.lock().secrets {
            m = base::redact_secret_in(&m, s);
        }
        m
    }

    fn remember_secret(&self, s: &Secret) {
        let mut g = self.shared.lock();
        g.secrets.push_back(s.expose().to_owned());
        while g.secrets.len() > 8 {
            g.secrets.pop_front();
        }
    }

    fn finish<T>(&self, r: Result<T, Error>) -> Result<T, Error> {
        match r {
            Ok(v) => {
                self.shared.lock().last_error = None;
                Ok(v)
            }
            Err(e) => {
                let e = Error::new(e.kind(), self.scrub(e.message()));
                tracing::warn!(server = %self.server, "XProtect: {e}");
                self.shared.lock().last_error = Some(e.message().to_owned());
                Err(e)
            }
        }
    }

    async fn wait(&self, bucket: &Mutex<TokenBucket>, what: &str) {
        let wait = bucket.lock().reserve(self.clocks.monotonic());
        if !wait.is_zero() {
            tracing::debug!("XProtect: {what} rate limit, waiting {wait:?}");
            tokio::time::sleep(wait).await;
        }
    }

    /// Sends one request and reads the whole body; transport failures become Unavailable or
    /// DeadlineExceeded.
    async fn send(
        &self,
        ctr: Option<&AtomicU32>,
        what: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), Error> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = ctr {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| self.transport_error(what, e))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.transport_error(what, e))?;
        Ok((status, body.to_vec()))
    }

    fn transport_error(&self, what: &str, e: reqwest::Error) -> Error {
        if e.is_timeout() {
            err!(
                DeadlineExceeded,
                "{what}: no answer from {} within {:?}",
                self.server,
                self.cfg.request_timeout
            )
        } else if e.is_connect() {
            err!(Unavailable, "{what}: cannot connect to {}", self.server)
        } else {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            err!(Unavailable, "{what}: {}", self.scrub(&msg))
        }
    }

    fn http_error(&self, what: &str, status: StatusCode, body: &[u8]) -> Error {
        let kind = match status.as_u16() {
            401 => ErrorKind::Unauthenticated,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            408 | 504 => ErrorKind::DeadlineExceeded,
            429 => ErrorKind::ResourceExhausted,
            500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::FailedPrecondition,
        };
        let detail = parse_rest_error(body)
            .map(|r| r.text)
            .filter(|t| !t.is_empty())
            .map(|t| format!(": {}", self.scrub(&t)))
            .unwrap_or_default();
        Error::new(
            kind,
            format!(
                "{what}: HTTP {} from {}{detail}",
                status.as_u16(),
                self.server
            ),
        )
    }

    // -----------------------------------------------------------------------------------------
    // Discovery and login

    async fn discover(&self, ctr: Option<&AtomicU32>) -> Result<Discovery, Error> {
        let what = "discovery";
        let (status, body) = self
            .send(ctr, what, self.http.get(self.url("api/.well-known/uris")?))
            .await?;
        let wk = if status.is_success() {
            parse_well_known_uris(&body).unwrap_or_else(|e| {
                tracing::warn!("XProtect {}: {e}; assuming defaults", self.server);
                Default::default()
            })
        } else if status.is_server_error() {
            return Err(self.http_error(what, status, &body));
        } else {
            tracing::warn!(
                "XProtect {}: /api/.well-known/uris answered {status}; assuming defaults",
                self.server
            );
            Default::default()
        };
        let identity_provider = Some(match wk.identity_provider {
            Some(u) => u,
            None => self.url("IDP")?,
        });
        let fallback = self.url("IDP/connect/token")?;
        let mut token_endpoint = fallback;
        let mut idp_server_version = None;
        if let Some(idp) = &identity_provider {
            let oidc = format!(
                "{}/.well-known/openid-configuration",
                idp.as_str().trim_end_matches('/')
            );
            match self
                .send(ctr, "openid-configuration", self.http.get(&oidc))
                .await
            {
                Ok((s, body)) if s.is_success() => match parse_openid_configuration(&body) {
                    Ok(o) => {
                        idp_server_version = o.server_version;
                        match o.token_endpoint {
                            Some(te) => token_endpoint = te,
                            None => tracing::warn!("XProtect: no token_endpoint in {oidc}"),
                        }
                    }
                    Err(e) => tracing::warn!("XProtect: {e}; using {token_endpoint}"),
                },
                Ok((s, _)) => {
                    tracing::warn!("XProtect: {oidc} answered {s}; using {token_endpoint}")
                }
                Err(e) => tracing::warn!("XProtect: {e}; using {token_endpoint}"),
            }
        }
        Ok(Discovery {
            product_version: wk.product_version,
            identity_provider,
            api_gateways: wk.api_gateways,
            idp_server_version,
            token_endpoint,
        })
    }

    /// The current OAuth token, logging in if there is none, it is due for renewal, or it is
    /// `stale` (it was just refused).
    async fn access_token(
        &self,
        ctr: Option<&AtomicU32>,
        stale: Option<&Secret>,
    ) -> Result<Secret, Error> {
        let mut st = self.access.lock().await;
        let now = self.clocks.monotonic();
        if let Some(t) = &st.token
            && Some(&t.secret) != stale
            && now < t.renew_at
        {
            return Ok(t.secret.clone());
        }
        let endpoint = match &st.discovery {
            Some(d) => d.token_endpoint.clone(),
            None => {
                let d = self.discover(ctr).await?;
                let te = d.token_endpoint.clone();
                st.discovery = Some(d);
                te
            }
        };
        match self.password_grant(ctr, &endpoint).await {
            Ok(grant) => {
                let now = self.clocks.monotonic();
                let wall = self.clocks.realtime();
                self.remember_secret(&grant.access_token);
                st.token = Some(Token {
                    secret: grant.access_token.clone(),
                    renew_at: now + renew_after(grant.expires_in),
                    expires_at: now + grant.expires_in,
                });
                self.shared.lock().access_expires =
                    Some((now + grant.expires_in, wall + grant.expires_in));
                self.logins.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    "XProtect {}: logged in as {}, token valid for {:?}",
                    self.server,
                    self.cfg.username,
                    grant.expires_in
                );
                Ok(grant.access_token)
            }
            Err(e) => {
                // A renewal that fails while the old token still lives keeps the old token.
                if let Some(t) = &st.token
                    && Some(&t.secret) != stale
                    && self.clocks.monotonic() < t.expires_at
                    && e.kind() != ErrorKind::Unauthenticated
                {
                    tracing::warn!("XProtect: token renewal failed ({e}); using the old token");
                    return Ok(t.secret.clone());
                }
                st.token = None;
                self.shared.lock().access_expires = None;
                Err(e)
            }
        }
    }

    async fn password_grant(
        &self,
        ctr: Option<&AtomicU32>,
        endpoint: &url::Url,
    ) -> Result<parse::TokenGrant, Error> {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "password")
            .append_pair("username", &self.cfg.username)
            .append_pair("password", &self.cfg.password)
            .append_pair("client_id", &self.cfg.client_id)
            .finish();
        let req = self
            .http
            .post(endpoint.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form);
        let (status, body) = self.send(ctr, "XProtect login", req).await?;
        let server = &self.server;
        if status.is_server_error() {
            return Err(err!(
                Unavailable,
                "XProtect login: HTTP {} from {server}",
                status.as_u16()
            ));
        }
        match parse_token_response(&body) {
            Ok(g) if status.is_success() => Ok(g),
            Ok(_) => Err(err!(
                Unauthenticated,
                "XProtect login failed: HTTP {} (server {server})",
                status.as_u16()
            )),
            Err(e) if e.kind() == ErrorKind::DataLoss && !status.is_success() => Err(err!(
                Unauthenticated,
                "XProtect login failed: HTTP {} (server {server})",
                status.as_u16()
            )),
            Err(e) if e.kind() == ErrorKind::DataLoss => Err(e),
            Err(e) => Err(Error::new(
                e.kind(),
                format!("{} (server {server})", e.message()),
            )),
        }
    }

    /// The SCS token, logging in (or renewing with the old token) when due or `stale`.
    async fn scs_token(&self, stale: Option<&Secret>) -> Result<Secret, Error> {
        let mut st = self.scs.lock().await;
        let now = self.clocks.monotonic();
        if let Some(t) = &*st
            && Some(&t.secret) != stale
            && now < t.renew_at
        {
            return Ok(t.secret.clone());
        }
        // Renew with the old token while it lives; after a refusal start afresh.
        let current = match &*st {
            Some(t) if Some(&t.secret) != stale && now < t.expires_at => {
                t.secret.expose().to_owned()
            }
            _ => String::new(),
        };
        let url = self.url("ManagementServer/ServerCommandServiceOAuth.svc")?;
        let mut bearer = self.access_token(None, None).await?;
        let mut retried = false;
        let login = loop {
            let req = self
                .http
                .post(url.clone())
                .bearer_auth(bearer.expose())
                .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
                .header("SOAPAction", soap::SCS_LOGIN_ACTION)
                .body(soap::login_request(&self.instance_id, &current));
            let (status, body) = self.send(None, "SCS Login", req).await?;
            if status == StatusCode::UNAUTHORIZED && !retried {
                retried = true;
                bearer = self.access_token(None, Some(&bearer)).await?;
                continue;
            }
            if !(status.is_success() || status == StatusCode::INTERNAL_SERVER_ERROR) {
                return Err(self.http_error("SCS Login", status, &body));
            }
            match parse_login_result(&String::from_utf8_lossy(&body)) {
                Ok(l) => break l,
                Err(e) if e.kind() == ErrorKind::DataLoss && !status.is_success() => {
                    return Err(self.http_error("SCS Login", status, &body));
                }
                Err(e) => return Err(e),
            }
        };
        let now = self.clocks.monotonic();
        let wall = self.clocks.realtime();
        self.remember_secret(&login.token);
        *st = Some(Token {
            secret: login.token.clone(),
            renew_at: now + renew_after(login.time_to_live),
            expires_at: now + login.time_to_live,
        });
        self.shared.lock().scs_expires = Some(wall + login.time_to_live);
        tracing::info!(
            "XProtect {}: SCS token valid for {:?}",
            self.server,
            login.time_to_live
        );
        Ok(login.token)
    }

    // -----------------------------------------------------------------------------------------
    // REST

    async fn rest_get(&self, ctr: &AtomicU32, what: &str, path: &str) -> Result<Vec<u8>, Error> {
        let url = self.url(&format!("api/rest/v1/{path}"))?;
        let mut token = self.access_token(Some(ctr), None).await?;
        let mut retried = false;
        loop {
            let req = self.http.get(url.clone()).bearer_auth(token.expose());
            let (status, body) = self.send(Some(ctr), what, req).await?;
            if status == StatusCode::UNAUTHORIZED {
                if retried {
                    return Err(err!(
                        Unauthenticated,
                        "{what}: HTTP 401 from {} even after a fresh login",
                        self.server
                    ));
                }
                retried = true;
                tracing::info!(
                    "XProtect {}: {what} answered 401; logging in again",
                    self.server
                );
                token = self.access_token(Some(ctr), Some(&token)).await?;
                continue;
            }
            if status.is_success() {
                return Ok(body);
            }
            return Err(self.http_error(what, status, &body));
        }
    }

    async fn inventory(&self, ctr: &AtomicU32) -> Result<Inventory, Error> {
        // Log in once before fanning out.
        self.access_token(Some(ctr), None).await?;
        let (cameras, hardware, recorders, groups) = tokio::try_join!(
            async { parse_cameras(&self.rest_get(ctr, "cameras", "cameras?disabled").await?) },
            async { parse_hardware(&self.rest_get(ctr, "hardware", "hardware").await?) },
            async {
                parse_recording_servers(
                    &self
                        .rest_get(ctr, "recordingServers", "recordingServers")
                        .await?,
                )
            },
            self.walk_groups(ctr),
        )?;
        let mut cameras = cameras;
        let hw_recorder: HashMap<&str, &str> = hardware
            .iter()
            .filter_map(|h| Some((h.id.as_str(), h.recorder_id.as_deref()?)))
            .collect();
        let cam_index: HashMap<String, usize> = cameras
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.to_ascii_lowercase(), i))
            .collect();
        for c in &mut cameras {
            c.recorder_id = c
                .hardware_id
                .as_deref()
                .and_then(|h| hw_recorder.get(h))
                .map(|r| (*r).to_owned());
        }
        for g in &groups {
            for cid in &g.camera_ids {
                if let Some(&i) = cam_index.get(&cid.to_ascii_lowercase())
                    && let Some(cam) = cameras.get_mut(i)
                    && !cam.group_ids.contains(&g.id)
                {
                    cam.group_ids.push(g.id.clone());
                }
            }
        }
        Ok(Inventory {
            cameras,
            hardware,
            recorders,
            groups,
            requests: ctr.load(Ordering::Relaxed),
        })
    }

    /// Breadth-first from `/cameraGroups` through `/cameraGroups/{id}/cameraGroups`, each group
    /// visited once, whether `/cameraGroups` lists only the roots or every group.
    async fn walk_groups(&self, ctr: &AtomicU32) -> Result<Vec<Group>, Error> {
        let top = parse_camera_groups(&self.rest_get(ctr, "cameraGroups", "cameraGroups").await?)?;
        let mut groups: Vec<Group> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut queue = VecDeque::new();
        for g in top {
            if !index.contains_key(&g.id) {
                index.insert(g.id.clone(), groups.len());
                queue.push_back(groups.len());
                groups.push(g);
            }
        }
        while let Some(i) = queue.pop_front() {
            let Some(id) = groups.get(i).map(|g| g.id.clone()) else {
                continue;
            };
            if !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '{' | '}'))
            {
                tracing::warn!("XProtect: skipping camera group with odd id {id:?}");
                continue;
            }
            let what = format!("cameraGroups/{id}/cameraGroups");
            let children = match self.rest_get(ctr, &what, &what).await {
                Ok(b) => parse_camera_groups(&b)?,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    tracing::warn!("XProtect: {e}");
                    Vec::new()
                }
                Err(e) => return Err(e),
            };
            for mut c in children {
                match index.get(&c.id) {
                    Some(&j) => {
                        // Listed as a root too (a server that lists every group at the top).
                        if j != i
                            && groups.get(j).is_some_and(|g| g.parent_id.is_none())
                            && !is_ancestor(&groups, &index, j, i)
                            && let Some(g) = groups.get_mut(j)
                        {
                            g.parent_id = Some(id.clone());
                        }
                    }
                    None if groups.len() < MAX_GROUPS => {
                        c.parent_id = Some(id.clone());
                        index.insert(c.id.clone(), groups.len());
                        queue.push_back(groups.len());
                        groups.push(c);
                    }
                    None => {
                        tracing::warn!("XProtect: more than {MAX_GROUPS} camera groups; stopping");
                    }
                }
            }
            let what = format!("cameraGroups/{id}/cameras");
            let cams = match self.rest_get(ctr, &what, &what).await {
                Ok(b) => parse_cameras(&b).map_err(|e| e.context(format!("group {id}")))?,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    tracing::warn!("XProtect: {e}");
                    Vec::new()
                }
                Err(e) => return Err(e),
            };
            let mut seen = HashSet::new();
            if let Some(g) = groups.get_mut(i) {
                g.camera_ids = cams
                    .into_iter()
                    .map(|c| c.id)
                    .filter(|c| seen.insert(c.clone()))
                    .collect();
            }
        }
        // Paths from the parent links, guarding against cycles.
        let parent_of = |g: &Group| g.parent_id.as_ref().and_then(|p| index.get(p)).copied();
        let paths: Vec<String> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let mut names = vec![g.name.as_str()];
                let mut cur = g;
                for _ in 0..groups.len() {
                    match parent_of(cur).and_then(|p| Some((p, groups.get(p)?))) {
                        Some((p, parent)) if p != i => {
                            names.push(parent.name.as_str());
                            cur = parent;
                        }
                        _ => break,
                    }
                }
                names.reverse();
                names.join("/")
            })
            .collect();
        for (g, p) in groups.iter_mut().zip(paths) {
            g.path = p;
        }
        Ok(groups)
    }

    // -----------------------------------------------------------------------------------------
    // Recordings

    async fn sequences(
        &self,
        camera_id: &str,
        web: &url::Url,
        from: SystemTime,
        to: SystemTime,
        max: u32,
    ) -> Result<Vec<Sequence>, Error> {
        let what = "SequencesGet";
        let mut base = web.clone();
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let url = base
            .join("RecorderCommandService/RecorderCommandService.asmx")
            .map_err(|e| err!(InvalidArgument, "{what}: bad recorder address: {e}"))?;
        let mut token = self.scs_token(None).await?;
        let mut retried = false;
        loop {
            let body = soap::sequences_get_request(
                token.expose(),
                camera_id,
                crate::RECORDING_SEQUENCE,
                from,
                to,
                max,
            );
            let req = self
                .http
                .post(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
                .header("SOAPAction", soap::RCS_SEQUENCES_GET_ACTION)
                .body(body);
            let (status, body) = self.send(None, what, req).await?;
            let result = if status.is_success() || status == StatusCode::INTERNAL_SERVER_ERROR {
                match parse_sequences(&String::from_utf8_lossy(&body)) {
                    Err(e) if e.kind() == ErrorKind::DataLoss && !status.is_success() => {
                        Err(self.http_error(what, status, &body))
                    }
                    r => r,
                }
            } else {
                Err(self.http_error(what, status, &body))
            };
            match result {
                Err(e) if e.kind() == ErrorKind::Unauthenticated && !retried => {
                    retried = true;
                    tracing::info!("XProtect: {e}; renewing the SCS token");
                    token = self.scs_token(Some(&token)).await?;
                }
                Err(e) => return Err(e.context(format!("camera {}", truncate(camera_id, 64)))),
                Ok(v) => return Ok(v),
            }
        }
    }
}

/// Whether `a` is `b` or one of its ancestors.
fn is_ancestor(groups: &[Group], index: &HashMap<String, usize>, a: usize, b: usize) -> bool {
    let mut cur = b;
    for _ in 0..=groups.len() {
        if cur == a {
            return true;
        }
        match groups
            .get(cur)
            .and_then(|g| g.parent_id.as_deref())
            .and_then(|p| index.get(p))
        {
            Some(&p) => cur = p,
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_points() {
        assert_eq!(
            renew_after(Duration::from_secs(3600)),
            Duration::from_secs(2880)
        );
        assert_eq!(
            renew_after(Duration::from_secs(240 * 60)),
            Duration::from_secs(11520)
        );
        assert_eq!(
            renew_after(Duration::from_secs(100)),
            Duration::from_secs(50)
        );
        assert_eq!(renew_after(Duration::ZERO), Duration::ZERO);
    }
}

//! Logins and the node's own tokens (design 0009, "Sessions"): a user name and password give a
//! short-lived access JWT (`iam::LocalIssuer`, EdDSA with the node's session key) and a rotating
//! refresh token (`vr_<session id>_<secret>`, only its digest stored, `store::SessionStore`); a
//! refresh token presented twice ends its session; logout ends it. The sessions still live are
//! kept in memory, so an access token of an ended session is refused at once without a database
//! read per request. Every login, failure, refresh and logout is audited. Failed logins lock a
//! user name or a client address for a while ([`LOCKOUT_FOR`]). Bearer credentials are also a
//! service account's API key or a configured identity provider's JWT (its JWKS fetched on a
//! schedule and when a token names an unknown key).
//!
//! Enforcement of what a caller may do on each route is not here yet (design 0009, "The HTTP
//! side"); `crate::users` checks its own (admins only).

use auth::{ApiKeyToken, NewApiKey, Passwords};
use base::{Clocks, Error, bail, err};
use parking_lot::RwLock;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};
use store::{AuditAction, AuditEvent, AuditLog, Client, Rotated, SessionStore, User, UserStore};

/// The session key's file in the data directory (Ed25519, PKCS#8 PEM, mode 0600).
pub const KEY_FILE: &str = "session-signing-key.pem";
/// The node's issuer name (`iss` of its tokens).
pub const ISSUER: &str = "vantage";
/// How long an access token lives.
pub const ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
/// How long a session lives without a new login (refreshes do not extend it).
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Clock skew allowed on the node's own tokens.
const LEEWAY_S: u64 = 5;
/// Failed logins counted over this window...
pub const LOCKOUT_WINDOW: Duration = Duration::from_secs(15 * 60);
/// ...lock a user name after this many...
pub const LOCKOUT_USER_FAILURES: usize = 5;
/// ...and a client address after this many...
pub const LOCKOUT_ADDRESS_FAILURES: usize = 20;
/// ...for this long (every login then refused, even with the right password).
pub const LOCKOUT_FOR: Duration = Duration::from_secs(15 * 60);

/// Past this many names and addresses remembered, stale ones are dropped at the next failure.
const LIMITER_MAX_KEYS: usize = 100_000;

/// Failed logins per key (a user name, or a client address) on the monotonic clock.
#[derive(Default)]
struct Limiter {
    keys: std::collections::HashMap<String, Failures>,
}

#[derive(Default)]
struct Failures {
    at: std::collections::VecDeque<std::time::Instant>,
    locked_until: Option<std::time::Instant>,
}

impl Limiter {
    /// How long `key` stays locked after `now`, if it is.
    fn locked(&self, key: &str, now: std::time::Instant) -> Option<Duration> {
        let until = self.keys.get(key)?.locked_until?;
        let left = until.saturating_duration_since(now);
        (!left.is_zero()).then_some(left)
    }

    /// Counts a failure of `key`; true when it locks the key now.
    fn fail(&mut self, key: &str, now: std::time::Instant, max: usize) -> bool {
        if self.keys.len() >= LIMITER_MAX_KEYS {
            self.forget_stale(now);
        }
        let f = self.keys.entry(key.to_owned()).or_default();
        while f
            .at
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= LOCKOUT_WINDOW)
        {
            f.at.pop_front();
        }
        f.at.push_back(now);
        if f.at.len() >= max && f.locked_until.is_none_or(|u| u <= now) {
            f.locked_until = Some(now + LOCKOUT_FOR);
            f.at.clear();
            return true;
        }
        false
    }

    /// Forgets `key`'s failures (a successful login), and keys with nothing left to remember.
    fn succeed(&mut self, key: &str, now: std::time::Instant) {
        self.keys.remove(key);
        self.forget_stale(now);
    }

    /// Drops keys neither locked nor failed within the window.
    fn forget_stale(&mut self, now: std::time::Instant) {
        self.keys.retain(|_, f| {
            f.locked_until.is_some_and(|u| u > now)
                || f.at
                    .back()
                    .is_some_and(|t| now.saturating_duration_since(*t) < LOCKOUT_WINDOW)
        });
    }
}

/// What a login or a refresh gives.
pub struct Tokens {
    pub access_token: String,
    /// When the access token expires, Unix seconds.
    pub access_expires_at: u64,
    /// Shown once; only its digest is kept.
    pub refresh_token: String,
    pub session_id: String,
    /// When the session ends, Unix milliseconds.
    pub session_expires_at_ms: i64,
    pub user: User,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("session_id", &self.session_id)
            .field("user", &self.user.username)
            .field("access_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .finish()
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The node's user id, or the identity provider's `sub`.
    pub user_id: String,
    pub username: String,
    /// What the caller may do: one principal per role held, highest role first. A local user or
    /// an API key has one; an identity provider's token may grant different roles on different
    /// agencies (design 0009, "Tokens").
    pub grants: Vec<auth::Principal>,
    /// The login session (node tokens); `None` for an API key or an external token.
    pub session_id: Option<String>,
    /// The identity provider's `iss` for an external token.
    pub issuer: Option<String>,
}

impl Caller {
    fn local(user: &User, session_id: Option<String>) -> Caller {
        Caller {
            user_id: user.id.clone(),
            username: user.username.clone(),
            grants: vec![user.principal()],
            session_id,
            issuer: None,
        }
    }

    /// The highest role held (`viewer` when none).
    pub fn role(&self) -> auth::Role {
        self.grants.first().map_or(auth::Role::Viewer, |g| g.role)
    }
}

/// Highest first: admin, supervisor, operator, service, viewer.
fn rank(r: auth::Role) -> u8 {
    match r {
        auth::Role::Admin => 0,
        auth::Role::Supervisor => 1,
        auth::Role::Operator => 2,
        auth::Role::Service => 3,
        auth::Role::Viewer => 4,
    }
}

/// An identity provider's verified token as a caller: its grants grouped by role.
fn external_caller(id: iam::Identity) -> Caller {
    let mut by_role: std::collections::BTreeMap<u8, (auth::Role, Vec<String>, bool)> =
        Default::default();
    for g in &id.grants {
        let Some(role) = auth::Role::parse(&g.role) else {
            continue;
        };
        let e = by_role
            .entry(rank(role))
            .or_insert((role, Vec::new(), false));
        match &g.scope {
            iam::Scope::All => e.2 = true,
            iam::Scope::Agency(a) => e.1.push(a.clone()),
        }
    }
    let grants = by_role
        .into_values()
        .map(|(role, agencies, all)| auth::Principal {
            user_id: id.subject.clone(),
            username: id.username.clone(),
            role,
            agencies: if all {
                auth::Agencies::All
            } else {
                auth::Agencies::from_list(agencies)
            },
        })
        .collect();
    Caller {
        user_id: id.subject,
        username: id.username,
        grants,
        session_id: None,
        issuer: Some(id.issuer),
    }
}

/// Why a bearer credential was not accepted.
#[derive(Debug)]
pub enum Refused {
    /// Not valid: 401 with this reason.
    Invalid(Error),
    /// An identity provider's token names a key not fetched yet: fetch the provider's JWKS
    /// (`Access::fetch_jwks`) and try again once.
    UnknownKey { issuer: usize },
}

impl From<Error> for Refused {
    fn from(e: Error) -> Refused {
        Refused::Invalid(e)
    }
}

/// An identity provider and when a token last made the node fetch its JWKS.
struct Provider {
    issuer: iam::ExternalIssuer,
    jwks_refresh: Duration,
    last_fetch: parking_lot::Mutex<Option<std::time::Instant>>,
}

/// A token naming an unknown key makes the node fetch the JWKS at once, but not more often.
const JWKS_MIN_INTERVAL: Duration = Duration::from_secs(30);
/// A JWKS document larger than this is refused.
const JWKS_MAX_BYTES: usize = 1 << 20;

fn provider(cfg: &settings::IssuerSettings) -> Result<Provider, Error> {
    let keys = match &cfg.keys {
        settings::IssuerKeys::JwksUrl(u) => iam::KeySource::JwksUrl(u.to_string()),
        settings::IssuerKeys::PublicKeyFile(f) => {
            iam::KeySource::Pem(std::fs::read_to_string(f).map_err(|e| {
                err!(
                    InvalidArgument,
                    "issuer `{}`: reading {}: {e}",
                    cfg.issuer,
                    f.display()
                )
            })?)
        }
    };
    let algorithms = cfg
        .algorithms
        .iter()
        .filter_map(|a| match a.as_str() {
            "RS256" => Some(iam::Algorithm::RS256),
            "ES256" => Some(iam::Algorithm::ES256),
            _ => None,
        })
        .collect();
    let [username, role, agency, permissions] = cfg.claims.clone();
    Ok(Provider {
        issuer: iam::ExternalIssuer::new(iam::IssuerConfig {
            issuer: cfg.issuer.clone(),
            audiences: cfg.audiences.clone(),
            keys,
            algorithms,
            leeway: cfg.leeway.as_secs(),
            claims: iam::ClaimMap {
                username,
                role,
                agency,
                permissions,
            },
        })?,
        jwks_refresh: cfg.jwks_refresh,
        last_fetch: parking_lot::Mutex::new(None),
    })
}

/// Logins, sessions and the node's tokens.
pub struct Access {
    users: UserStore,
    sessions: SessionStore,
    passwords: Passwords,
    issuer: iam::LocalIssuer,
    live: RwLock<HashSet<String>>,
    providers: Vec<Provider>,
    http: reqwest::Client,
    limiter: parking_lot::Mutex<Limiter>,
    clocks: Arc<dyn Clocks>,
    audit: AuditLog,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("live_sessions", &self.live.read().len())
            .finish()
    }
}

fn unauthenticated() -> Error {
    err!(Unauthenticated, "wrong user name or password")
}

impl Access {
    /// Opens the users and sessions of the management database `db`, the session key in
    /// `data_dir` (created on first start), and loads the live sessions.
    pub fn open(
        db: &Path,
        data_dir: &Path,
        cfg: &settings::AuthConfig,
        passwords: Passwords,
        clocks: Arc<dyn Clocks>,
        audit: AuditLog,
    ) -> Result<Access, Error> {
        let key_path = data_dir.join(KEY_FILE);
        let key = evidence::SigningKey::load_or_create(&key_path)
            .map_err(|e| e.context("session signing key"))?;
        let private = std::fs::read(&key_path).map_err(|e| {
            err!(
                Internal,
                "{}: reading the session key: {e}",
                key_path.display()
            )
        })?;
        let issuer = iam::LocalIssuer::new(
            ISSUER,
            &private,
            key.public_key_pem().as_bytes(),
            ACCESS_TTL,
            LEEWAY_S,
        )?;
        let sessions = SessionStore::open(db)?;
        let now = base::clock::unix_ms(clocks.realtime());
        let live = sessions.live(now)?.into_iter().map(|s| s.id).collect();
        let providers = cfg
            .issuers
            .iter()
            .map(provider)
            .collect::<Result<Vec<_>, Error>>()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| err!(Internal, "HTTP client: {e}"))?;
        Ok(Access {
            users: UserStore::open(db)?,
            sessions,
            passwords,
            issuer,
            live: RwLock::new(live),
            providers,
            http,
            limiter: Default::default(),
            clocks,
            audit,
        })
    }

    pub(crate) fn user_store(&self) -> &UserStore {
        &self.users
    }

    pub(crate) fn hash_password(&self, password: &str) -> Result<auth::PasswordHash, Error> {
        self.passwords.hash(password)
    }

    /// Audits a change to `target` made by `caller` (users, API keys).
    pub(crate) fn audit_change(
        &self,
        action: AuditAction,
        caller: &Caller,
        client: &Client,
        target: &str,
        detail: String,
    ) {
        self.audit.record(AuditEvent {
            role: Some(caller.role().as_str().to_owned()),
            source_ip: client.source_ip.clone(),
            user_agent: client.user_agent.clone(),
            reason: Some(target.to_owned()),
            detail: (!detail.is_empty()).then_some(detail),
            ..AuditEvent::without_camera(self.clocks.realtime(), action, caller.user_id.as_str())
        });
    }

    /// Ends every session of `user_id` (disabled, deleted, or its password changed): its access
    /// tokens stop working at once. Returns how many.
    pub fn end_user_sessions(&self, user_id: &str) -> Result<usize, Error> {
        let ids = self.sessions.revoke_user(user_id, self.now_ms())?;
        let mut live = self.live.write();
        for id in &ids {
            live.remove(id);
        }
        Ok(ids.len())
    }

    pub(crate) fn now_ms(&self) -> i64 {
        base::clock::unix_ms(self.clocks.realtime())
    }

    fn now_s(&self) -> u64 {
        self.clocks
            .realtime()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn record(
        &self,
        action: AuditAction,
        who: &str,
        role: Option<&str>,
        client: &Client,
        why: Option<&str>,
    ) {
        self.audit.record(AuditEvent {
            role: role.map(str::to_owned),
            source_ip: client.source_ip.clone(),
            user_agent: client.user_agent.clone(),
            reason: why.map(str::to_owned),
            ..AuditEvent::without_camera(self.clocks.realtime(), action, who)
        });
    }

    fn access_token(&self, user: &User, session_id: &str) -> Result<(String, u64), Error> {
        let agencies = user.agencies.to_list();
        self.issuer.issue(
            &iam::Subject {
                user_id: &user.id,
                username: &user.username,
                role: user.role.as_str(),
                agencies: &agencies,
                session_id,
            },
            self.now_s(),
        )
    }

    /// A login: tokens for `username` if `password` is right and the user is enabled, else
    /// `Unauthenticated` (the same answer and about the same time whatever was wrong). Audited
    /// either way (a failure under the name given, never the password).
    pub fn login(&self, username: &str, password: &str, client: &Client) -> Result<Tokens, Error> {
        // Lockout (design 0009, "Login rate limits"): a user name or a client address with too
        // many recent failures is refused before the password is even checked.
        let name_key = format!("user:{}", username.to_lowercase());
        let addr_key = client.source_ip.as_deref().map(|a| format!("addr:{a}"));
        let now = self.clocks.monotonic();
        {
            let l = self.limiter.lock();
            let left = std::iter::once(&name_key)
                .chain(addr_key.as_ref())
                .filter_map(|k| l.locked(k, now))
                .max();
            if let Some(left) = left {
                drop(l);
                self.record(
                    AuditAction::LoginFailure,
                    username,
                    None,
                    client,
                    Some("locked_out"),
                );
                return Err(err!(
                    ResourceExhausted,
                    "too many failed logins: try again in {} s",
                    left.as_secs().max(1)
                )
                .with_code("LOGIN_LOCKED"));
            }
        }
        let Some(user) = self
            .users
            .authenticate_password(&self.passwords, username, password)?
        else {
            let mut locked = Vec::new();
            {
                let mut l = self.limiter.lock();
                if l.fail(&name_key, now, LOCKOUT_USER_FAILURES) {
                    locked.push("user");
                }
                if let Some(k) = &addr_key
                    && l.fail(k, now, LOCKOUT_ADDRESS_FAILURES)
                {
                    locked.push("address");
                }
            }
            for what in locked {
                tracing::warn!(
                    user = %username,
                    address = client.source_ip.as_deref().unwrap_or("-"),
                    "login locked for {} s after repeated failures ({what})",
                    LOCKOUT_FOR.as_secs()
                );
                self.record(AuditAction::Lockout, username, None, client, Some(what));
            }
            self.record(
                AuditAction::LoginFailure,
                username,
                None,
                client,
                Some("bad_credentials"),
            );
            return Err(unauthenticated());
        };
        let refresh = NewApiKey::generate_refresh();
        let now = self.now_ms();
        let ttl = i64::try_from(SESSION_TTL.as_millis()).unwrap_or(i64::MAX);
        {
            let mut l = self.limiter.lock();
            l.succeed(&name_key, self.clocks.monotonic());
        }
        let s = self.sessions.create(&user.id, &refresh, now, ttl, client)?;
        self.live.write().insert(s.id.clone());
        let (access_token, access_expires_at) = self.access_token(&user, &s.id)?;
        self.record(
            AuditAction::LoginSuccess,
            &user.id,
            Some(user.role.as_str()),
            client,
            None,
        );
        tracing::info!(user = %user.username, session = %s.id, "login");
        Ok(Tokens {
            access_token,
            access_expires_at,
            refresh_token: refresh.token().to_owned(),
            session_id: s.id,
            session_expires_at_ms: s.expires_at_ms,
            user,
        })
    }

    /// Exchanges a refresh token for new tokens. A token already exchanged ends its session (a
    /// replay); a disabled or deleted user's session ends too.
    pub fn refresh(&self, token: &str, client: &Client) -> Result<Tokens, Error> {
        let presented = ApiKeyToken::parse_refresh(token)?;
        let next = NewApiKey::generate_refresh_for(presented.id());
        let now = self.now_ms();
        let s = match self
            .sessions
            .rotate(&presented, &next.secret_sha256(), now)?
        {
            Rotated::Done(s) => s,
            Rotated::Replayed(s) => {
                self.live.write().remove(&s.id);
                self.record(
                    AuditAction::Logout,
                    &s.user_id,
                    None,
                    client,
                    Some("refresh_token_replayed"),
                );
                tracing::warn!(session = %s.id, "a refresh token was used twice: session ended");
                bail!(
                    Unauthenticated,
                    "the refresh token was already used: log in again"
                );
            }
            Rotated::Refused => bail!(Unauthenticated, "the session has ended: log in again"),
        };
        let user = match self.users.get(&s.user_id)? {
            Some(u) if !u.disabled => u,
            _ => {
                self.end(&s.id)?;
                bail!(Unauthenticated, "the user is disabled");
            }
        };
        let (access_token, access_expires_at) = self.access_token(&user, &s.id)?;
        self.record(
            AuditAction::TokenRefresh,
            &user.id,
            Some(user.role.as_str()),
            client,
            None,
        );
        Ok(Tokens {
            access_token,
            access_expires_at,
            refresh_token: next.token().to_owned(),
            session_id: s.id,
            session_expires_at_ms: s.expires_at_ms,
            user,
        })
    }

    fn end(&self, session_id: &str) -> Result<bool, Error> {
        self.live.write().remove(session_id);
        self.sessions.revoke(session_id, self.now_ms())
    }

    /// Ends the caller's session.
    pub fn logout(&self, caller: &Caller, client: &Client) -> Result<bool, Error> {
        let Some(sid) = caller.session_id.as_deref() else {
            bail!(FailedPrecondition, "an API key has no session to end");
        };
        let ended = self.end(sid)?;
        self.record(
            AuditAction::Logout,
            &caller.user_id,
            Some(caller.role().as_str()),
            client,
            None,
        );
        Ok(ended)
    }

    /// The caller behind `Authorization: Bearer <credential>`: the node's access token of a
    /// live session, a service account's API key, or a configured identity provider's JWT.
    /// Refused otherwise, with the reason (never the credential).
    pub fn authenticate(&self, credential: &str) -> Result<Caller, Refused> {
        if credential.starts_with(auth::api_key::PREFIX) {
            let key = ApiKeyToken::parse(credential)?;
            let Some(user) = self.users.authenticate_api_key(&key, self.now_ms())? else {
                return Err(err!(Unauthenticated, "the API key is not valid").into());
            };
            return Ok(Caller::local(&user, None));
        }
        let iss = iam::issuer_of(credential).map_err(Error::from)?;
        if iss != self.issuer.issuer() {
            let Some(i) = self.providers.iter().position(|p| p.issuer.issuer() == iss) else {
                return Err(Error::from(iam::TokenError::UnknownIssuer(iss)).into());
            };
            return match self.providers[i].issuer.verify(credential, self.now_s()) {
                Ok(id) => Ok(external_caller(id)),
                Err(iam::TokenError::UnknownKey(_)) => Err(Refused::UnknownKey { issuer: i }),
                Err(e) => Err(Error::from(e).into()),
            };
        }
        let id = self
            .issuer
            .verify(credential, self.now_s())
            .map_err(Error::from)?;
        let sid = id.session_id.unwrap_or_default();
        if !self.live.read().contains(&sid) {
            return Err(err!(Unauthenticated, "the session has ended: log in again").into());
        }
        // Role and agencies as the user has them now (a change applies at once).
        let user = match self.users.get(&id.subject)? {
            Some(u) if !u.disabled => u,
            _ => return Err(err!(Unauthenticated, "the user is disabled").into()),
        };
        Ok(Caller::local(&user, Some(sid)))
    }

    /// Fetches identity provider `i`'s JWKS and takes its keys. A fetch asked for by a token
    /// naming an unknown key (not `force`d, unlike the schedule's) happens at most once per
    /// [`JWKS_MIN_INTERVAL`]: a flood of such tokens cannot make the node hammer the provider.
    /// Returns whether the keys were replaced.
    pub async fn fetch_jwks(&self, i: usize, force: bool) -> Result<bool, Error> {
        let Some(p) = self.providers.get(i) else {
            return Ok(false);
        };
        let Some(url) = p.issuer.jwks_url() else {
            return Ok(false);
        };
        if !force {
            let now = self.clocks.monotonic();
            let mut last = p.last_fetch.lock();
            if last.is_some_and(|t| now.saturating_duration_since(t) < JWKS_MIN_INTERVAL) {
                return Ok(false);
            }
            *last = Some(now);
        }
        let what = || {
            format!(
                "issuer `{}`: JWKS {}",
                p.issuer.issuer(),
                base::redact_url(url)
            )
        };
        let mut r = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| err!(Unavailable, "{}: {e}", what()))?;
        if !r.status().is_success() {
            bail!(Unavailable, "{}: HTTP {}", what(), r.status());
        }
        let mut body = Vec::new();
        while let Some(chunk) = r
            .chunk()
            .await
            .map_err(|e| err!(Unavailable, "{}: {e}", what()))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > JWKS_MAX_BYTES {
                bail!(DataLoss, "{}: larger than {JWKS_MAX_BYTES} bytes", what());
            }
        }
        let n = p.issuer.set_jwks(&body)?;
        tracing::info!(issuer = %p.issuer.issuer(), keys = n, "JWKS fetched");
        Ok(true)
    }

    /// Keeps every identity provider's JWKS fresh: fetched at once, then every `jwks_refresh`
    /// on the node's clocks (a failure is logged; the keys held stay).
    pub fn spawn_jwks_refresh(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        (0..self.providers.len())
            .filter(|i| self.providers[*i].issuer.jwks_url().is_some())
            .map(|i| {
                let me = self.clone();
                tokio::spawn(async move {
                    loop {
                        if let Err(e) = me.fetch_jwks(i, true).await {
                            tracing::warn!("{e}");
                        }
                        me.clocks.sleep(me.providers[i].jwks_refresh).await;
                    }
                })
            })
            .collect()
    }
}

impl crate::ports::Access for Arc<crate::Services> {
    fn login(
        &self,
        username: String,
        password: String,
        client: Client,
    ) -> crate::ports::BoxFuture<'_, Result<Tokens, Error>> {
        let a = self.access.clone();
        // argon2id: CPU for tens of milliseconds, off the async runtime.
        Box::pin(crate::exports::blocking(move || {
            a.login(&username, &password, &client)
        }))
    }

    fn refresh(
        &self,
        token: String,
        client: Client,
    ) -> crate::ports::BoxFuture<'_, Result<Tokens, Error>> {
        let a = self.access.clone();
        Box::pin(crate::exports::blocking(move || a.refresh(&token, &client)))
    }

    fn logout(
        &self,
        caller: Caller,
        client: Client,
    ) -> crate::ports::BoxFuture<'_, Result<bool, Error>> {
        let a = self.access.clone();
        Box::pin(crate::exports::blocking(move || a.logout(&caller, &client)))
    }

    fn authenticate(
        &self,
        credential: String,
    ) -> crate::ports::BoxFuture<'_, Result<Caller, Error>> {
        Box::pin(async move {
            // Twice at most: after a token naming an unknown key, the provider's JWKS is fetched
            // (rate-limited) and the token verified again.
            for attempt in 0..2 {
                let (a, c) = (self.access.clone(), credential.clone());
                let r = tokio::task::spawn_blocking(move || a.authenticate(&c))
                    .await
                    .map_err(|e| err!(Internal, "blocking task failed: {e}"))?;
                match r {
                    Ok(c) => return Ok(c),
                    Err(Refused::Invalid(e)) => return Err(e),
                    Err(Refused::UnknownKey { issuer }) if attempt == 0 => {
                        if let Err(e) = self.access.fetch_jwks(issuer, false).await {
                            tracing::warn!("{e}");
                        }
                    }
                    Err(Refused::UnknownKey { .. }) => {}
                }
            }
            Err(err!(
                Unauthenticated,
                "the token's signing key is not known"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base::SimulatedClocks;
    use std::time::UNIX_EPOCH;

    const PW: &str = "correct horse battery";

    fn setup(name: &str) -> (Access, Arc<SimulatedClocks>, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("vantage-access-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("vantage.db");
        let passwords = Passwords::with_params(256, 1, 1).unwrap();
        UserStore::open(&db)
            .unwrap()
            .create(
                store::NewUser {
                    username: "amal".into(),
                    password_hash: Some(passwords.hash(PW).unwrap()),
                    role: auth::Role::Operator,
                    agencies: auth::Agencies::All,
                },
                1,
            )
            .unwrap();
        let clocks = Arc::new(SimulatedClocks::new(
            UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        ));
        let a = Access::open(
            &db,
            &dir,
            &settings::AuthConfig::default(),
            passwords,
            clocks.clone(),
            AuditLog::open_in_memory().unwrap(),
        )
        .unwrap();
        (a, clocks, dir)
    }

    fn from(ip: &str) -> Client {
        Client {
            user_agent: None,
            source_ip: Some(ip.into()),
        }
    }

    fn kind(r: Result<Tokens, Error>) -> Option<base::ErrorKind> {
        r.err().map(|e| e.kind())
    }

    #[test]
    fn five_failures_lock_the_user_name_for_fifteen_minutes_on_the_given_clock() {
        use base::ErrorKind::{ResourceExhausted, Unauthenticated};
        let (a, clocks, dir) = setup("user");
        for i in 0..LOCKOUT_USER_FAILURES {
            let ip = format!("10.0.0.{i}");
            assert_eq!(
                kind(a.login("amal", "wrong password", &from(&ip))),
                Some(Unauthenticated)
            );
        }
        // Locked: even the right password, from any address, in any case of the name.
        assert_eq!(
            kind(a.login("AMAL", PW, &from("10.9.9.9"))),
            Some(ResourceExhausted)
        );
        clocks.advance(LOCKOUT_FOR - Duration::from_secs(1));
        assert_eq!(
            kind(a.login("amal", PW, &from("10.9.9.9"))),
            Some(ResourceExhausted)
        );
        clocks.advance(Duration::from_secs(1));
        assert!(a.login("amal", PW, &from("10.9.9.9")).is_ok());
        // Failures spread wider than the window do not add up; a success forgets them.
        for _ in 0..LOCKOUT_USER_FAILURES - 1 {
            assert_eq!(
                kind(a.login("amal", "nope nope nope", &from("10.1.1.1"))),
                Some(Unauthenticated)
            );
            clocks.advance(LOCKOUT_WINDOW / 4);
        }
        assert_eq!(
            kind(a.login("amal", "nope nope nope", &from("10.1.1.1"))),
            Some(Unauthenticated)
        );
        assert!(a.login("amal", PW, &from("10.1.1.1")).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_address_guessing_many_names_is_locked() {
        use base::ErrorKind::{ResourceExhausted, Unauthenticated};
        let (a, clocks, dir) = setup("address");
        for i in 0..LOCKOUT_ADDRESS_FAILURES {
            let r = a.login(&format!("user{i}"), "guess guess guess", &from("192.0.2.7"));
            assert_eq!(kind(r), Some(Unauthenticated), "attempt {i}");
        }
        // That address is locked, even for a real user's right password; others are not.
        assert_eq!(
            kind(a.login("amal", PW, &from("192.0.2.7"))),
            Some(ResourceExhausted)
        );
        assert!(a.login("amal", PW, &from("192.0.2.8")).is_ok());
        clocks.advance(LOCKOUT_FOR);
        assert!(a.login("amal", PW, &from("192.0.2.7")).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

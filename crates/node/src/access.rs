//! Logins and the node's own tokens (design 0009, "Sessions"): a user name and password give a
//! short-lived access JWT (`iam::LocalIssuer`, EdDSA with the node's session key) and a rotating
//! refresh token (`vr_<session id>_<secret>`, only its digest stored, `store::SessionStore`); a
//! refresh token presented twice ends its session; logout ends it. The sessions still live are
//! kept in memory, so an access token of an ended session is refused at once without a database
//! read per request. Every login, failure, refresh and logout is audited.
//!
//! Enforcement of what a caller may do is not here yet (design 0009, "The HTTP side").

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
    pub principal: auth::Principal,
    /// The login session (node tokens); `None` for an API key.
    pub session_id: Option<String>,
}

/// Logins, sessions and the node's tokens.
pub struct Access {
    users: UserStore,
    sessions: SessionStore,
    passwords: Passwords,
    issuer: iam::LocalIssuer,
    live: RwLock<HashSet<String>>,
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
        Ok(Access {
            users: UserStore::open(db)?,
            sessions,
            passwords,
            issuer,
            live: RwLock::new(live),
            clocks,
            audit,
        })
    }

    fn now_ms(&self) -> i64 {
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
        let Some(user) = self
            .users
            .authenticate_password(&self.passwords, username, password)?
        else {
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
            &caller.principal.user_id,
            Some(caller.principal.role.as_str()),
            client,
            None,
        );
        Ok(ended)
    }

    /// The caller behind `Authorization: Bearer <credential>`: the node's access token of a
    /// live session, or a service account's API key. `Unauthenticated` otherwise, with the
    /// reason (never the credential).
    pub fn authenticate(&self, credential: &str) -> Result<Caller, Error> {
        if credential.starts_with(auth::api_key::PREFIX) {
            let key = ApiKeyToken::parse(credential)?;
            let Some(user) = self.users.authenticate_api_key(&key, self.now_ms())? else {
                bail!(Unauthenticated, "the API key is not valid");
            };
            return Ok(Caller {
                principal: user.principal(),
                session_id: None,
            });
        }
        let id = self
            .issuer
            .verify(credential, self.now_s())
            .map_err(Error::from)?;
        let sid = id.session_id.unwrap_or_default();
        if !self.live.read().contains(&sid) {
            bail!(Unauthenticated, "the session has ended: log in again");
        }
        // Role and agencies as the user has them now (a change applies at once).
        let user = match self.users.get(&id.subject)? {
            Some(u) if !u.disabled => u,
            _ => bail!(Unauthenticated, "the user is disabled"),
        };
        Ok(Caller {
            principal: user.principal(),
            session_id: Some(sid),
        })
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
        let a = self.access.clone();
        Box::pin(crate::exports::blocking(move || {
            a.authenticate(&credential)
        }))
    }
}

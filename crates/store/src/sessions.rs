//! Login sessions (design 0009, "Sessions"): one row per login, holding the SHA-256 of its
//! current refresh token (and of the previous one, to detect a replay), its expiry and whether it
//! was revoked. Access tokens name their session (`sid`); the node keeps the live ones in memory.

use base::{Error, ErrorKind, ResultExt};
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;

/// One login session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub created_at_ms: i64,
    pub refreshed_at_ms: i64,
    pub expires_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
    pub user_agent: Option<String>,
    pub source_ip: Option<String>,
}

/// What [`SessionStore::rotate`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rotated {
    /// The presented token was the current one: it is replaced.
    Done(SessionRow),
    /// The presented token was the previous one, already exchanged: someone replayed it, so the
    /// session is revoked (its owner logs in again).
    Replayed(SessionRow),
    /// No such live session, or not its token.
    Refused,
}

/// Where a login comes from (kept for the audit log and the session list).
#[derive(Clone, Debug, Default)]
pub struct Client {
    pub user_agent: Option<String>,
    pub source_ip: Option<String>,
}

const COLUMNS: &str = "id, user_id, created_at_ms, refreshed_at_ms, expires_at_ms, \
                       revoked_at_ms, user_agent, source_ip";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        created_at_ms: r.get(2)?,
        refreshed_at_ms: r.get(3)?,
        expires_at_ms: r.get(4)?,
        revoked_at_ms: r.get(5)?,
        user_agent: r.get(6)?,
        source_ip: r.get(7)?,
    })
}

/// The sessions table of the node's management database.
pub struct SessionStore {
    conn: Mutex<Connection>,
    label: String,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("label", &self.label)
            .finish()
    }
}

impl SessionStore {
    pub fn open(path: &Path) -> Result<SessionStore, Error> {
        let (conn, label) = crate::schema::open_file(path)?;
        Ok(SessionStore {
            conn: Mutex::new(conn),
            label,
        })
    }

    fn err(&self, what: &str) -> String {
        format!("{}: {what}", self.label)
    }

    /// A new session for `user_id` whose refresh token (made by
    /// `auth::NewApiKey::generate_refresh`) gives its id and digest, expiring `ttl_ms` after
    /// `now_ms`.
    pub fn create(
        &self,
        user_id: &str,
        token: &auth::NewApiKey,
        now_ms: i64,
        ttl_ms: i64,
        client: &Client,
    ) -> Result<SessionRow, Error> {
        let id = token.id().to_owned();
        let digest = token.secret_sha256();
        let r = SessionRow {
            id: id.clone(),
            user_id: user_id.to_owned(),
            created_at_ms: now_ms,
            refreshed_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(ttl_ms),
            revoked_at_ms: None,
            user_agent: client.user_agent.clone(),
            source_ip: client.source_ip.clone(),
        };
        self.conn
            .lock()
            .execute(
                "INSERT INTO session (id, user_id, refresh_sha256, created_at_ms, \
                 refreshed_at_ms, expires_at_ms, user_agent, source_ip) \
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7)",
                params![
                    id,
                    user_id,
                    digest.as_slice(),
                    now_ms,
                    r.expires_at_ms,
                    r.user_agent,
                    r.source_ip
                ],
            )
            .err_kind(ErrorKind::Internal, self.err("creating a session"))?;
        Ok(r)
    }

    /// Exchanges the presented refresh token (its id is the session's) for one with the digest
    /// `next`. Expired or revoked sessions refuse; the previous token presented again revokes
    /// the session ([`Rotated::Replayed`]). Digests are compared in constant time.
    pub fn rotate(
        &self,
        presented: &auth::ApiKeyToken,
        next: &[u8; 32],
        now_ms: i64,
    ) -> Result<Rotated, Error> {
        let id = presented.id();
        let mut conn = self.conn.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .err_kind(ErrorKind::Internal, self.err("refreshing a session"))?;
        let found: Option<(SessionRow, Vec<u8>, Option<Vec<u8>>)> = tx
            .query_row(
                &format!(
                    "SELECT {COLUMNS}, refresh_sha256, previous_sha256 FROM session WHERE id = ?1"
                ),
                [id],
                |r| Ok((row(r)?, r.get(8)?, r.get(9)?)),
            )
            .optional()
            .err_kind(ErrorKind::Internal, self.err("reading a session"))?;
        let Some((mut s, current, previous)) = found else {
            return Ok(Rotated::Refused);
        };
        if s.revoked_at_ms.is_some() || now_ms >= s.expires_at_ms {
            return Ok(Rotated::Refused);
        }
        let outcome = if presented.matches(&current) {
            tx.execute(
                "UPDATE session SET previous_sha256 = refresh_sha256, refresh_sha256 = ?2, \
                 refreshed_at_ms = ?3 WHERE id = ?1",
                params![id, next.as_slice(), now_ms],
            )
            .err_kind(ErrorKind::Internal, self.err("refreshing a session"))?;
            s.refreshed_at_ms = now_ms;
            Rotated::Done(s)
        } else if previous.is_some_and(|p| presented.matches(&p)) {
            tx.execute(
                "UPDATE session SET revoked_at_ms = ?2 WHERE id = ?1",
                params![id, now_ms],
            )
            .err_kind(ErrorKind::Internal, self.err("revoking a session"))?;
            s.revoked_at_ms = Some(now_ms);
            Rotated::Replayed(s)
        } else {
            return Ok(Rotated::Refused);
        };
        tx.commit()
            .err_kind(ErrorKind::Internal, self.err("refreshing a session"))?;
        Ok(outcome)
    }

    /// Revokes session `id`; false if it was not live.
    pub fn revoke(&self, id: &str, now_ms: i64) -> Result<bool, Error> {
        let n = self
            .conn
            .lock()
            .execute(
                "UPDATE session SET revoked_at_ms = ?2 WHERE id = ?1 AND revoked_at_ms IS NULL",
                params![id, now_ms],
            )
            .err_kind(ErrorKind::Internal, self.err("revoking a session"))?;
        Ok(n > 0)
    }

    /// Revokes every session of `user_id` not revoked yet (expired ones too); returns their ids.
    pub fn revoke_user(&self, user_id: &str, now_ms: i64) -> Result<Vec<String>, Error> {
        let conn = self.conn.lock();
        let mut st = conn
            .prepare_cached(
                "UPDATE session SET revoked_at_ms = ?2 \
                 WHERE user_id = ?1 AND revoked_at_ms IS NULL RETURNING id",
            )
            .err_kind(ErrorKind::Internal, self.err("revoking sessions"))?;
        st.query_map(params![user_id, now_ms], |r| r.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
            .err_kind(ErrorKind::Internal, self.err("revoking sessions"))
    }

    /// Sessions neither revoked nor expired at `now_ms`, oldest first.
    pub fn live(&self, now_ms: i64) -> Result<Vec<SessionRow>, Error> {
        let conn = self.conn.lock();
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM session \
                 WHERE revoked_at_ms IS NULL AND expires_at_ms > ?1 ORDER BY created_at_ms"
            ))
            .err_kind(ErrorKind::Internal, self.err("reading sessions"))?;
        st.query_map([now_ms], row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .err_kind(ErrorKind::Internal, self.err("reading sessions"))
    }

    /// Session `id`.
    pub fn get(&self, id: &str) -> Result<Option<SessionRow>, Error> {
        self.conn
            .lock()
            .query_row(
                &format!("SELECT {COLUMNS} FROM session WHERE id = ?1"),
                [id],
                row,
            )
            .optional()
            .err_kind(ErrorKind::Internal, self.err("reading a session"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::{NewUser, UserStore};

    fn setup() -> (SessionStore, String, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "vantage-sessions-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let db = dir.join("vantage.db");
        let users = UserStore::open(&db).unwrap();
        let u = users
            .create(
                NewUser {
                    username: "svc-wall".into(),
                    password_hash: None,
                    role: auth::Role::Service,
                    agencies: auth::Agencies::All,
                },
                1_000,
            )
            .unwrap();
        (SessionStore::open(&db).unwrap(), u.id, dir)
    }

    fn token(n: u8) -> auth::NewApiKey {
        auth::NewApiKey::from_parts_refresh([7; 16], &[n; 32])
    }

    fn presented(t: &auth::NewApiKey) -> auth::ApiKeyToken {
        auth::ApiKeyToken::parse_refresh(t.token()).unwrap()
    }

    #[test]
    fn a_refresh_token_rotates_and_its_replay_ends_the_session() {
        let (s, user, dir) = setup();
        let client = Client {
            user_agent: Some("test".into()),
            source_ip: Some("127.0.0.1".into()),
        };
        let row = s.create(&user, &token(1), 10_000, 60_000, &client).unwrap();
        assert_eq!(row.id, token(1).id());
        assert_eq!(s.live(10_000).unwrap(), vec![row.clone()]);
        let d = |n: u8| token(n).secret_sha256();
        // A wrong token changes nothing.
        assert_eq!(
            s.rotate(&presented(&token(9)), &d(2), 11_000).unwrap(),
            Rotated::Refused
        );
        let Rotated::Done(r) = s.rotate(&presented(&token(1)), &d(2), 12_000).unwrap() else {
            panic!("not rotated");
        };
        assert_eq!(r.refreshed_at_ms, 12_000);
        let Rotated::Done(_) = s.rotate(&presented(&token(2)), &d(3), 13_000).unwrap() else {
            panic!("not rotated");
        };
        // The token exchanged at 13 s presented again: a replay; the session ends.
        assert!(matches!(
            s.rotate(&presented(&token(2)), &d(4), 14_000).unwrap(),
            Rotated::Replayed(_)
        ));
        assert_eq!(
            s.rotate(&presented(&token(3)), &d(4), 15_000).unwrap(),
            Rotated::Refused
        );
        assert!(s.live(15_000).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn expiry_logout_and_revoking_a_user() {
        let (s, user, dir) = setup();
        let (ta, tb, tc) = (
            auth::NewApiKey::generate_refresh(),
            auth::NewApiKey::generate_refresh(),
            auth::NewApiKey::generate_refresh(),
        );
        let a = s.create(&user, &ta, 0, 1_000, &Client::default()).unwrap();
        let b = s.create(&user, &tb, 0, 5_000, &Client::default()).unwrap();
        let c = s.create(&user, &tc, 0, 5_000, &Client::default()).unwrap();
        let next = auth::NewApiKey::generate_refresh().secret_sha256();
        assert_eq!(
            s.rotate(&presented(&ta), &next, 1_000).unwrap(),
            Rotated::Refused,
            "expired"
        );
        assert_eq!(s.live(1_000).unwrap().len(), 2);
        assert!(s.revoke(&b.id, 2_000).unwrap());
        assert!(!s.revoke(&b.id, 2_000).unwrap());
        // Every session not revoked yet, the expired one included.
        let mut ended = s.revoke_user(&user, 3_000).unwrap();
        ended.sort();
        let mut want = vec![a.id.clone(), c.id.clone()];
        want.sort();
        assert_eq!(ended, want);
        assert!(s.live(3_000).unwrap().is_empty());
        assert_eq!(s.get(&c.id).unwrap().unwrap().revoked_at_ms, Some(3_000));
        assert_eq!(a.expires_at_ms, 1_000);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

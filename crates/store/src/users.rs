//! Local users and their API keys (issue 11, design 0009 "Storage"): tables `user` and `api_key`
//! in the management database.
//!
//! - A user has a UUID v7 id, a username unique whatever its case (ASCII letters, digits and
//!   `.`, `_`, `-`, `@`; at most [`MAX_USERNAME_LEN`]), an argon2id password hash (none for a
//!   service account), a role, agencies (a JSON array, `["*"]` for all) and a disabled flag.
//! - An API key belongs to a service account; only the SHA-256 of its secret is stored
//!   (`auth::api_key`). Revoking keeps the row (`revoked_at_ms`) so the audit trail can name it.
//!
//! Errors are [`base::Error`]s: `AlreadyExists` (HTTP 409) for a taken username, `NotFound` for
//! an unknown user or key, `InvalidArgument` for a malformed username or a user without a
//! password, `FailedPrecondition` for an API key asked for a user that is not a service account.
//! Times are passed in (ms since the Unix epoch): nothing here reads a clock.

use auth::{Agencies, ApiKeyToken, NewApiKey, PasswordHash, Passwords, Principal, Role};
use base::{Error, ErrorKind, ResultExt, bail, err};
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::fmt;
use std::path::Path;

/// The longest username accepted.
pub const MAX_USERNAME_LEN: usize = 64;
/// The longest API key name accepted.
pub const MAX_KEY_NAME_LEN: usize = 100;

/// Checks a username: 1 to [`MAX_USERNAME_LEN`] ASCII letters, digits, `.`, `_`, `-` or `@`,
/// starting with a letter or digit.
pub fn check_username(name: &str) -> Result<(), Error> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    if name.is_empty()
        || name.len() > MAX_USERNAME_LEN
        || !name.chars().all(ok_char)
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
    {
        bail!(
            InvalidArgument,
            "invalid username {name:?}: 1 to {MAX_USERNAME_LEN} ASCII letters, digits, '.', '_', \
             '-' or '@', starting with a letter or digit"
        );
    }
    Ok(())
}

/// One user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// A UUID v7, as text.
    pub id: String,
    pub username: String,
    /// `None` for a service account (it authenticates with API keys only).
    pub password_hash: Option<PasswordHash>,
    pub role: Role,
    pub agencies: Agencies,
    pub disabled: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl User {
    /// Who this user is, for permission checks.
    pub fn principal(&self) -> Principal {
        Principal {
            user_id: self.id.clone(),
            username: self.username.clone(),
            role: self.role,
            agencies: self.agencies.clone(),
        }
    }
}

/// What [`UserStore::create`] needs.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: String,
    pub password_hash: Option<PasswordHash>,
    pub role: Role,
    pub agencies: Agencies,
}

/// The changes [`UserStore::update`] makes; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserUpdate {
    pub role: Option<Role>,
    pub agencies: Option<Agencies>,
    pub password_hash: Option<PasswordHash>,
    pub disabled: Option<bool>,
}

/// One API key (never the key itself: the SHA-256 of its secret).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    /// The key id, the `<key id>` of `vk_<key id>_<secret>`.
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub secret_sha256: [u8; 32],
    pub created_at_ms: i64,
    pub last_used_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
}

impl ApiKeyRow {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at_ms.is_some()
    }
}

impl fmt::Debug for ApiKeyRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyRow")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("secret_sha256", &format_args!("<redacted>"))
            .field("created_at_ms", &self.created_at_ms)
            .field("last_used_ms", &self.last_used_ms)
            .field("revoked_at_ms", &self.revoked_at_ms)
            .finish()
    }
}

const USER_COLUMNS: &str =
    "id, username, password_hash, role, agencies, disabled, created_at_ms, updated_at_ms";
const KEY_COLUMNS: &str =
    "id, user_id, name, secret_sha256, created_at_ms, last_used_ms, revoked_at_ms";

fn conversion(col: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e))
}

fn agencies_to_json(a: &Agencies) -> String {
    serde_json::Value::from(a.to_list()).to_string()
}

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    let hash: Option<String> = r.get(2)?;
    let role: String = r.get(3)?;
    let agencies: String = r.get(4)?;
    let agencies: Vec<String> = serde_json::from_str(&agencies).map_err(|e| conversion(4, e))?;
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        password_hash: hash
            .map(PasswordHash::from_phc)
            .transpose()
            .map_err(|e| conversion(2, e))?,
        role: Role::parse(&role)
            .ok_or_else(|| conversion(3, err!(DataLoss, "unknown role {role:?}")))?,
        agencies: Agencies::from_list(agencies),
        disabled: r.get(5)?,
        created_at_ms: r.get(6)?,
        updated_at_ms: r.get(7)?,
    })
}

fn key_from_row(r: &Row<'_>) -> rusqlite::Result<ApiKeyRow> {
    let digest: Vec<u8> = r.get(3)?;
    Ok(ApiKeyRow {
        id: r.get(0)?,
        user_id: r.get(1)?,
        name: r.get(2)?,
        secret_sha256: digest
            .try_into()
            .map_err(|_| conversion(3, err!(DataLoss, "API key digest is not 32 bytes")))?,
        created_at_ms: r.get(4)?,
        last_used_ms: r.get(5)?,
        revoked_at_ms: r.get(6)?,
    })
}

/// Whether `e` is a UNIQUE (or PRIMARY KEY) constraint failing.
fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// A UUID v7 for `now_ms` (random bits from the OS).
fn uuid_v7(now_ms: i64) -> String {
    let ms = u64::try_from(now_ms).unwrap_or(0);
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        ms / 1000,
        u32::try_from(ms % 1000).unwrap_or(0) * 1_000_000,
    );
    uuid::Uuid::new_v7(ts).to_string()
}

/// The users and API keys in the node's management database (the same file as the audit log).
pub struct UserStore {
    conn: Mutex<Connection>,
    label: String,
}

impl UserStore {
    pub fn open(path: &Path) -> Result<UserStore, Error> {
        let (conn, label) = crate::schema::open_file(path)?;
        Ok(UserStore {
            conn: Mutex::new(conn),
            label,
        })
    }

    /// An in-memory store (tests).
    pub fn open_in_memory() -> Result<UserStore, Error> {
        Ok(UserStore {
            conn: Mutex::new(crate::schema::open_memory()?),
            label: "memory".into(),
        })
    }

    fn err(&self, what: &str) -> String {
        format!("{}: {what}", self.label)
    }

    fn user_where(&self, tail: &str, p: impl rusqlite::Params) -> Result<Vec<User>, Error> {
        let conn = self.conn.lock();
        let mut st = conn
            .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM user {tail}"))
            .err_kind(ErrorKind::Internal, self.err("reading users"))?;
        st.query_map(p, user_from_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .err_kind(ErrorKind::Internal, self.err("reading users"))
    }

    fn one_user(&self, tail: &str, p: impl rusqlite::Params) -> Result<Option<User>, Error> {
        Ok(self.user_where(tail, p)?.into_iter().next())
    }

    /// Creates a user with a new UUID v7 id. A username taken in any case is `AlreadyExists`;
    /// a user other than a service account needs a password hash.
    pub fn create(&self, new: NewUser, now_ms: i64) -> Result<User, Error> {
        check_username(&new.username)?;
        if new.password_hash.is_none() && new.role != Role::Service {
            bail!(
                InvalidArgument,
                "user {:?} needs a password (only service accounts have none)",
                new.username
            );
        }
        let user = User {
            id: uuid_v7(now_ms),
            username: new.username,
            password_hash: new.password_hash,
            role: new.role,
            agencies: new.agencies,
            disabled: false,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        };
        let r = self.conn.lock().execute(
            &format!("INSERT INTO user ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
            params![
                user.id,
                user.username,
                user.password_hash.as_ref().map(PasswordHash::as_phc_str),
                user.role.as_str(),
                agencies_to_json(&user.agencies),
                user.disabled,
                user.created_at_ms,
                user.updated_at_ms
            ],
        );
        match r {
            Ok(_) => Ok(user),
            Err(e) if is_unique_violation(&e) => Err(err!(
                AlreadyExists,
                "user {:?} already exists",
                user.username
            )),
            Err(e) => Err(err!(Internal, "{}: {e}", self.err("creating a user"))),
        }
    }

    /// The user with this id.
    pub fn get(&self, id: &str) -> Result<Option<User>, Error> {
        self.one_user("WHERE id = ?1", params![id])
    }

    /// The user with this name, in any case.
    pub fn get_by_username(&self, username: &str) -> Result<Option<User>, Error> {
        self.one_user("WHERE username = ?1 COLLATE NOCASE", params![username])
    }

    /// The user with this name, or `NotFound`.
    pub fn require_by_username(&self, username: &str) -> Result<User, Error> {
        self.get_by_username(username)?
            .ok_or_else(|| err!(NotFound, "no user {username:?}"))
    }

    /// Every user, by username.
    pub fn list(&self) -> Result<Vec<User>, Error> {
        self.user_where("ORDER BY username COLLATE NOCASE", [])
    }

    /// How many users there are.
    pub fn count(&self) -> Result<u64, Error> {
        let n: i64 = self
            .conn
            .lock()
            .query_row("SELECT COUNT(*) FROM user", [], |r| r.get(0))
            .err_kind(ErrorKind::Internal, self.err("counting users"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Applies `u` to the user `id` and returns it as it is now (`NotFound` when unknown).
    pub fn update(&self, id: &str, u: UserUpdate, now_ms: i64) -> Result<User, Error> {
        let mut conn = self.conn.lock();
        let tx = conn
            .transaction()
            .err_kind(ErrorKind::Internal, self.err("updating a user"))?;
        let mut user = tx
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM user WHERE id = ?1"),
                params![id],
                user_from_row,
            )
            .optional()
            .err_kind(ErrorKind::Internal, self.err("reading a user"))?
            .ok_or_else(|| err!(NotFound, "no user with id {id}"))?;
        if let Some(r) = u.role {
            user.role = r;
        }
        if let Some(a) = u.agencies {
            user.agencies = a;
        }
        if let Some(h) = u.password_hash {
            user.password_hash = Some(h);
        }
        if let Some(d) = u.disabled {
            user.disabled = d;
        }
        if user.password_hash.is_none() && user.role != Role::Service {
            bail!(
                InvalidArgument,
                "user {:?} needs a password to have role {}",
                user.username,
                user.role
            );
        }
        user.updated_at_ms = now_ms;
        tx.execute(
            "UPDATE user SET password_hash = ?2, role = ?3, agencies = ?4, disabled = ?5, \
             updated_at_ms = ?6 WHERE id = ?1",
            params![
                user.id,
                user.password_hash.as_ref().map(PasswordHash::as_phc_str),
                user.role.as_str(),
                agencies_to_json(&user.agencies),
                user.disabled,
                user.updated_at_ms
            ],
        )
        .and_then(|_| tx.commit())
        .err_kind(ErrorKind::Internal, self.err("updating a user"))?;
        Ok(user)
    }

    /// Deletes the user and its API keys (`NotFound` when unknown).
    pub fn delete(&self, id: &str) -> Result<(), Error> {
        let mut conn = self.conn.lock();
        let tx = conn
            .transaction()
            .err_kind(ErrorKind::Internal, self.err("deleting a user"))?;
        tx.execute("DELETE FROM api_key WHERE user_id = ?1", params![id])
            .err_kind(ErrorKind::Internal, self.err("deleting a user's API keys"))?;
        let n = tx
            .execute("DELETE FROM user WHERE id = ?1", params![id])
            .err_kind(ErrorKind::Internal, self.err("deleting a user"))?;
        if n == 0 {
            bail!(NotFound, "no user with id {id}");
        }
        tx.commit()
            .err_kind(ErrorKind::Internal, self.err("deleting a user"))
    }

    /// The user with `username` if its password is `password` and it is not disabled. An unknown
    /// user (or one without a password) costs the same time as a wrong password.
    pub fn authenticate_password(
        &self,
        passwords: &Passwords,
        username: &str,
        password: &str,
    ) -> Result<Option<User>, Error> {
        let user = self.get_by_username(username)?;
        let ok = match user.as_ref().and_then(|u| u.password_hash.as_ref()) {
            Some(h) => passwords.verify(h, password),
            None => passwords.verify_nobody(password),
        };
        Ok(user.filter(|u| ok && !u.disabled))
    }

    /// Stores `key` (made by `auth::NewApiKey::generate`) for the service account `user_id`.
    pub fn create_api_key(
        &self,
        user_id: &str,
        name: &str,
        key: &NewApiKey,
        now_ms: i64,
    ) -> Result<ApiKeyRow, Error> {
        if name.is_empty() || name.chars().count() > MAX_KEY_NAME_LEN {
            bail!(
                InvalidArgument,
                "API key name must have 1 to {MAX_KEY_NAME_LEN} characters"
            );
        }
        let user = self
            .get(user_id)?
            .ok_or_else(|| err!(NotFound, "no user with id {user_id}"))?;
        if user.role != Role::Service {
            return Err(err!(
                FailedPrecondition,
                "API keys are for service accounts; {:?} has role {}",
                user.username,
                user.role
            ));
        }
        let row = ApiKeyRow {
            id: key.id().to_owned(),
            user_id: user.id,
            name: name.to_owned(),
            secret_sha256: key.secret_sha256(),
            created_at_ms: now_ms,
            last_used_ms: None,
            revoked_at_ms: None,
        };
        self.conn
            .lock()
            .execute(
                &format!("INSERT INTO api_key ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                params![
                    row.id,
                    row.user_id,
                    row.name,
                    &row.secret_sha256[..],
                    row.created_at_ms,
                    row.last_used_ms,
                    row.revoked_at_ms
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    err!(AlreadyExists, "API key {} already exists", row.id)
                } else {
                    err!(Internal, "{}: {e}", self.err("creating an API key"))
                }
            })?;
        Ok(row)
    }

    fn keys_where(&self, tail: &str, p: impl rusqlite::Params) -> Result<Vec<ApiKeyRow>, Error> {
        let conn = self.conn.lock();
        let mut st = conn
            .prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_key {tail}"))
            .err_kind(ErrorKind::Internal, self.err("reading API keys"))?;
        st.query_map(p, key_from_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .err_kind(ErrorKind::Internal, self.err("reading API keys"))
    }

    /// A user's API keys, revoked ones included, oldest first.
    pub fn list_api_keys(&self, user_id: &str) -> Result<Vec<ApiKeyRow>, Error> {
        self.keys_where(
            "WHERE user_id = ?1 ORDER BY created_at_ms, id",
            params![user_id],
        )
    }

    /// The API key with this id.
    pub fn find_api_key(&self, key_id: &str) -> Result<Option<ApiKeyRow>, Error> {
        Ok(self
            .keys_where("WHERE id = ?1", params![key_id])?
            .into_iter()
            .next())
    }

    /// Revokes the key: true when it was active, false when already revoked, `NotFound` when
    /// unknown.
    pub fn revoke_api_key(&self, key_id: &str, now_ms: i64) -> Result<bool, Error> {
        let n = self
            .conn
            .lock()
            .execute(
                "UPDATE api_key SET revoked_at_ms = ?2 WHERE id = ?1 AND revoked_at_ms IS NULL",
                params![key_id, now_ms],
            )
            .err_kind(ErrorKind::Internal, self.err("revoking an API key"))?;
        if n > 0 {
            return Ok(true);
        }
        match self.find_api_key(key_id)? {
            Some(_) => Ok(false),
            None => Err(err!(NotFound, "no API key {key_id}")),
        }
    }

    /// The service account a presented API key belongs to, when the key exists, is not revoked,
    /// matches (constant-time comparison of digests) and its user is not disabled; records
    /// `now_ms` as the key's last use.
    pub fn authenticate_api_key(
        &self,
        token: &ApiKeyToken,
        now_ms: i64,
    ) -> Result<Option<User>, Error> {
        let Some(key) = self.find_api_key(token.id())? else {
            return Ok(None);
        };
        if key.is_revoked() || !token.matches(&key.secret_sha256) {
            return Ok(None);
        }
        let Some(user) = self.get(&key.user_id)?.filter(|u| !u.disabled) else {
            return Ok(None);
        };
        self.conn
            .lock()
            .execute(
                "UPDATE api_key SET last_used_ms = ?2 WHERE id = ?1",
                params![key.id, now_ms],
            )
            .err_kind(ErrorKind::Internal, self.err("recording an API key's use"))?;
        Ok(Some(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base::ErrorKind;

    fn pw() -> Passwords {
        Passwords::with_params(64, 1, 1).unwrap()
    }

    fn new_user(name: &str, role: Role, agencies: &[&str], password: Option<&str>) -> NewUser {
        NewUser {
            username: name.into(),
            password_hash: password.map(|p| pw().hash(p).unwrap()),
            role,
            agencies: Agencies::from_list(agencies.iter().copied()),
        }
    }

    #[test]
    fn create_get_list_count_and_case_insensitive_names() {
        let s = UserStore::open_in_memory().unwrap();
        assert_eq!(s.count().unwrap(), 0);
        let alice = s
            .create(
                new_user(
                    "Alice",
                    Role::Operator,
                    &["METRO", "BUS"],
                    Some("pw-alice-123"),
                ),
                1_700_000_000_123,
            )
            .unwrap();
        assert_eq!(alice.id.len(), 36);
        assert_eq!(&alice.id[14..15], "7", "UUID v7: {}", alice.id);
        let e = s
            .create(
                new_user("ALICE", Role::Viewer, &[], Some("whatever-123")),
                2,
            )
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert_eq!(e.kind().http_status(), 409);
        s.create(
            new_user("bob", Role::Admin, &["*"], Some("pw-bob-12345")),
            3,
        )
        .unwrap();
        s.create(new_user("wall", Role::Service, &["METRO"], None), 4)
            .unwrap();
        assert_eq!(s.count().unwrap(), 3);
        let got = s.get_by_username("alice").unwrap().unwrap();
        assert_eq!(got, alice);
        assert_eq!(s.get(&alice.id).unwrap().unwrap(), alice);
        assert_eq!(s.get("nope").unwrap(), None);
        assert_eq!(
            s.require_by_username("nobody").unwrap_err().kind(),
            ErrorKind::NotFound
        );
        let names: Vec<String> = s.list().unwrap().into_iter().map(|u| u.username).collect();
        assert_eq!(names, ["Alice", "bob", "wall"]);
        let bob = s.get_by_username("bob").unwrap().unwrap();
        assert_eq!(bob.agencies, Agencies::All);
        assert!(bob.principal().agencies.contains("ANY"));
        assert_eq!(
            alice.principal().agencies,
            Agencies::from_list(["BUS", "METRO"])
        );
    }

    #[test]
    fn invalid_users_are_refused() {
        let s = UserStore::open_in_memory().unwrap();
        for bad in ["", "with space", "-dash", "ünï", &"x".repeat(65), "a/b"] {
            let e = s
                .create(new_user(bad, Role::Viewer, &[], Some("long-enough-1")), 1)
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad:?}");
        }
        let e = s
            .create(new_user("nopass", Role::Operator, &[], None), 1)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(s.count().unwrap(), 0);
    }

    #[test]
    fn update_and_delete() {
        let s = UserStore::open_in_memory().unwrap();
        let u = s
            .create(
                new_user("carol", Role::Viewer, &["BUS"], Some("pw-carol-123")),
                10,
            )
            .unwrap();
        let u2 = s
            .update(
                &u.id,
                UserUpdate {
                    role: Some(Role::Supervisor),
                    agencies: Some(Agencies::from_list(["METRO"])),
                    disabled: Some(true),
                    ..UserUpdate::default()
                },
                20,
            )
            .unwrap();
        assert_eq!(
            (u2.role, u2.disabled, u2.updated_at_ms, u2.created_at_ms),
            (Role::Supervisor, true, 20, 10)
        );
        assert_eq!(s.get(&u.id).unwrap().unwrap(), u2);
        let p = pw();
        let h = p.hash("new-password-1").unwrap();
        let u3 = s
            .update(
                &u.id,
                UserUpdate {
                    password_hash: Some(h),
                    disabled: Some(false),
                    ..UserUpdate::default()
                },
                30,
            )
            .unwrap();
        assert!(p.verify(u3.password_hash.as_ref().unwrap(), "new-password-1"));
        assert_eq!(
            s.update("nope", UserUpdate::default(), 1)
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
        let wall = s
            .create(new_user("wall", Role::Service, &[], None), 1)
            .unwrap();
        let e = s
            .update(
                &wall.id,
                UserUpdate {
                    role: Some(Role::Admin),
                    ..UserUpdate::default()
                },
                2,
            )
            .unwrap_err();
        assert_eq!(
            e.kind(),
            ErrorKind::InvalidArgument,
            "an admin needs a password"
        );
        s.delete(&u.id).unwrap();
        assert_eq!(s.delete(&u.id).unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(s.count().unwrap(), 1);
    }

    #[test]
    fn password_authentication() {
        let s = UserStore::open_in_memory().unwrap();
        let p = pw();
        let u = s
            .create(
                new_user("dave", Role::Operator, &["*"], Some("right-password")),
                1,
            )
            .unwrap();
        let ok = s
            .authenticate_password(&p, "DAVE", "right-password")
            .unwrap();
        assert_eq!(ok.map(|u| u.id), Some(u.id.clone()));
        assert!(
            s.authenticate_password(&p, "dave", "wrong-password")
                .unwrap()
                .is_none()
        );
        assert!(
            s.authenticate_password(&p, "nobody", "right-password")
                .unwrap()
                .is_none()
        );
        s.update(
            &u.id,
            UserUpdate {
                disabled: Some(true),
                ..UserUpdate::default()
            },
            2,
        )
        .unwrap();
        assert!(
            s.authenticate_password(&p, "dave", "right-password")
                .unwrap()
                .is_none(),
            "disabled"
        );
    }

    #[test]
    fn api_keys() {
        let s = UserStore::open_in_memory().unwrap();
        let wall = s
            .create(new_user("wall", Role::Service, &["METRO"], None), 1)
            .unwrap();
        let op = s
            .create(
                new_user("op", Role::Operator, &["METRO"], Some("op-password-1")),
                1,
            )
            .unwrap();
        let k1 = NewApiKey::generate();
        let k2 = NewApiKey::generate();
        let e = s.create_api_key(&op.id, "x", &k1, 5).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
        assert_eq!(
            s.create_api_key("nope", "x", &k1, 5).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            s.create_api_key(&wall.id, "", &k1, 5).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        let r1 = s.create_api_key(&wall.id, "video wall", &k1, 10).unwrap();
        s.create_api_key(&wall.id, "spare", &k2, 11).unwrap();
        assert_eq!(
            s.create_api_key(&wall.id, "again", &k1, 12)
                .unwrap_err()
                .kind(),
            ErrorKind::AlreadyExists
        );
        let listed = s.list_api_keys(&wall.id).unwrap();
        assert_eq!(
            listed.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
            ["video wall", "spare"]
        );
        assert_eq!(s.find_api_key(k1.id()).unwrap().unwrap(), r1);
        let d = format!("{r1:?}");
        assert!(d.contains("<redacted>"), "{d}");

        let t1 = ApiKeyToken::parse(k1.token()).unwrap();
        let user = s.authenticate_api_key(&t1, 100).unwrap().unwrap();
        assert_eq!(user.id, wall.id);
        assert_eq!(
            s.find_api_key(k1.id()).unwrap().unwrap().last_used_ms,
            Some(100)
        );
        // Right id, wrong secret.
        let forged = NewApiKey::from_parts(
            <[u8; 16]>::try_from(
                (0..16)
                    .map(|i| u8::from_str_radix(&k1.id()[2 * i..2 * i + 2], 16).unwrap())
                    .collect::<Vec<_>>(),
            )
            .unwrap(),
            &[7; 32],
        );
        assert_eq!(forged.id(), k1.id());
        let tf = ApiKeyToken::parse(forged.token()).unwrap();
        assert!(s.authenticate_api_key(&tf, 101).unwrap().is_none());

        assert!(s.revoke_api_key(k1.id(), 200).unwrap());
        assert!(!s.revoke_api_key(k1.id(), 201).unwrap(), "already revoked");
        assert_eq!(
            s.revoke_api_key("nope", 1).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            s.find_api_key(k1.id()).unwrap().unwrap().revoked_at_ms,
            Some(200)
        );
        assert!(
            s.authenticate_api_key(&t1, 300).unwrap().is_none(),
            "revoked"
        );
        let t2 = ApiKeyToken::parse(k2.token()).unwrap();
        assert!(s.authenticate_api_key(&t2, 300).unwrap().is_some());
        s.update(
            &wall.id,
            UserUpdate {
                disabled: Some(true),
                ..UserUpdate::default()
            },
            301,
        )
        .unwrap();
        assert!(
            s.authenticate_api_key(&t2, 302).unwrap().is_none(),
            "disabled"
        );
        s.delete(&wall.id).unwrap();
        assert!(s.list_api_keys(&wall.id).unwrap().is_empty());
        assert_eq!(s.find_api_key(k2.id()).unwrap(), None);
    }
}

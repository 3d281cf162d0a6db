//! `vantage user ...` and `vantage audit verify`: local users, service accounts' API keys and the
//! audit chain, on the management database of a node's data dir (`<data_dir>/vantage.db`), with
//! or without the node running. Every change is audited with actor `cli`. Also the first admin
//! from `VANTAGE_ADMIN_PASSWORD` at node start ([`first_admin`]).

use auth::{Agencies, NewApiKey, Passwords, Role, check_password_policy};
use base::{Error, ErrorKind, ResultExt, bail, err};
use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::time::SystemTime;
use store::{AuditAction, AuditEvent, AuditLog, NewUser, UserStore, UserUpdate};

/// The actor recorded in the audit log for changes made on the command line.
pub const CLI_ACTOR: &str = "cli";
/// The actor recorded for the first admin created at node start.
pub const BOOTSTRAP_ACTOR: &str = "bootstrap";

/// The management database of a data dir.
pub fn db_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("vantage.db")
}

/// How `user add` and `user passwd` get the password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordSource {
    /// One line from standard input (`--password-stdin`).
    Stdin,
    /// Asked twice on the terminal without echo; one line from standard input when it is not a
    /// terminal.
    Prompt,
}

/// What a `user` subcommand does.
#[derive(Clone, Debug)]
pub enum UserCommand {
    Add {
        username: String,
        role: String,
        agencies: Vec<String>,
        all_agencies: bool,
        password: PasswordSource,
    },
    Passwd {
        username: String,
        password: PasswordSource,
    },
    Disable {
        username: String,
    },
    Enable {
        username: String,
    },
    List,
    ApiKey {
        username: String,
        name: String,
    },
}

fn now_ms() -> i64 {
    base::clock::unix_ms(SystemTime::now())
}

fn read_stdin_line() -> Result<String, Error> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).err_kind(
        ErrorKind::InvalidArgument,
        "reading the password from stdin",
    )?;
    let pw = line.trim_end_matches(['\n', '\r']).to_owned();
    if pw.is_empty() {
        bail!(InvalidArgument, "no password on standard input");
    }
    Ok(pw)
}

fn read_password(src: PasswordSource) -> Result<String, Error> {
    if src == PasswordSource::Stdin || !std::io::stdin().is_terminal() {
        return read_stdin_line();
    }
    let first = rpassword::prompt_password("Password: ")
        .err_kind(ErrorKind::InvalidArgument, "reading the password")?;
    let again = rpassword::prompt_password("Password again: ")
        .err_kind(ErrorKind::InvalidArgument, "reading the password")?;
    if first != again {
        bail!(InvalidArgument, "the passwords do not match");
    }
    Ok(first)
}

/// A new password for `username`: read, checked against the policy, hashed (blocking, ~50 ms).
fn new_password_hash(
    passwords: &Passwords,
    username: &str,
    src: PasswordSource,
) -> Result<auth::PasswordHash, Error> {
    let pw = zeroize::Zeroizing::new(read_password(src)?);
    check_password_policy(username, &pw)?;
    passwords.hash(&pw)
}

fn agencies_of(role: Role, list: &[String], all: bool) -> Result<Agencies, Error> {
    if all || role == Role::Admin && list.is_empty() {
        return Ok(Agencies::All);
    }
    if list.is_empty() {
        bail!(
            InvalidArgument,
            "a {role} needs --agency AGENCY (repeatable) or --all-agencies"
        );
    }
    Ok(Agencies::from_list(list.iter().cloned()))
}

fn describe(u: &store::User) -> String {
    format!(
        "user {} ({}; agencies {})",
        u.username,
        u.role,
        if u.agencies == Agencies::All {
            "all".to_owned()
        } else {
            u.agencies.to_string()
        }
    )
}

/// Records one event about `username` and waits for it to be committed.
async fn audit(log: &AuditLog, actor: &str, action: AuditAction, detail: String) {
    log.record(AuditEvent {
        detail: Some(detail),
        ..AuditEvent::without_camera(SystemTime::now(), action, actor)
    });
    log.flush().await;
}

/// Runs a `user` subcommand on the node whose configuration is `cfg`, printing to standard
/// output. An agency not in the configuration is warned about, not refused.
pub async fn run_user(
    cfg: &settings::Config,
    cmd: UserCommand,
    passwords: &Passwords,
) -> Result<(), Error> {
    let db = db_path(&cfg.storage.data_dir);
    let users = UserStore::open(&db)?;
    let log = AuditLog::open(&db)?;
    match cmd {
        UserCommand::Add {
            username,
            role,
            agencies,
            all_agencies,
            password,
        } => {
            let role = Role::parse(&role).ok_or_else(|| {
                err!(
                    InvalidArgument,
                    "unknown role {role:?}: one of admin, supervisor, operator, viewer, service"
                )
            })?;
            let agencies = agencies_of(role, &agencies, all_agencies)?;
            if let Agencies::Only(set) = &agencies {
                for a in set
                    .iter()
                    .filter(|a| !cfg.agencies.iter().any(|c| &c.id == *a))
                {
                    eprintln!("warning: agency {a:?} is not in the configuration's agencies");
                }
            }
            store::users::check_username(&username)?;
            if users.get_by_username(&username)?.is_some() {
                bail!(AlreadyExists, "user {username:?} already exists");
            }
            let password_hash = match role {
                Role::Service => None,
                _ => Some(new_password_hash(passwords, &username, password)?),
            };
            let u = users.create(
                NewUser {
                    username,
                    password_hash,
                    role,
                    agencies,
                },
                now_ms(),
            )?;
            audit(&log, CLI_ACTOR, AuditAction::UserCreate, describe(&u)).await;
            println!("created {} with id {}", describe(&u), u.id);
        }
        UserCommand::Passwd { username, password } => {
            let u = users.require_by_username(&username)?;
            let h = new_password_hash(passwords, &u.username, password)?;
            let update = UserUpdate {
                password_hash: Some(h),
                ..UserUpdate::default()
            };
            let u = users.update(&u.id, update, now_ms())?;
            let what = format!("{}: password changed", describe(&u));
            audit(&log, CLI_ACTOR, AuditAction::UserUpdate, what).await;
            println!("password of user {} changed", u.username);
        }
        UserCommand::Disable { username } => set_disabled(&users, &log, &username, true).await?,
        UserCommand::Enable { username } => set_disabled(&users, &log, &username, false).await?,
        UserCommand::List => print!("{}", list_table(&users)?),
        UserCommand::ApiKey { username, name } => {
            let u = users.require_by_username(&username)?;
            let key = NewApiKey::generate();
            let row = users.create_api_key(&u.id, &name, &key, now_ms())?;
            let what = format!(
                "API key {} ({:?}) for user {}",
                row.id, row.name, u.username
            );
            audit(&log, CLI_ACTOR, AuditAction::ApiKeyCreate, what).await;
            eprintln!(
                "API key {:?} for {} (shown once; only its SHA-256 is stored):",
                row.name, u.username
            );
            println!("{}", key.token());
        }
    }
    Ok(())
}

async fn set_disabled(
    users: &UserStore,
    log: &AuditLog,
    username: &str,
    disabled: bool,
) -> Result<(), Error> {
    let u = users.require_by_username(username)?;
    let update = UserUpdate {
        disabled: Some(disabled),
        ..UserUpdate::default()
    };
    let u = users.update(&u.id, update, now_ms())?;
    let state = if disabled { "disabled" } else { "enabled" };
    let what = format!("{}: {state}", describe(&u));
    audit(log, CLI_ACTOR, AuditAction::UserUpdate, what).await;
    println!("user {} {state}", u.username);
    Ok(())
}

/// `user list`: one line per user; never a hash or a key.
fn list_table(users: &UserStore) -> Result<String, Error> {
    let mut rows = vec![[
        "USERNAME".to_owned(),
        "ROLE".to_owned(),
        "AGENCIES".to_owned(),
        "STATUS".to_owned(),
        "API KEYS".to_owned(),
        "CREATED".to_owned(),
        "ID".to_owned(),
    ]];
    for u in users.list()? {
        let keys = users.list_api_keys(&u.id)?;
        let active = keys.iter().filter(|k| !k.is_revoked()).count();
        rows.push([
            u.username.clone(),
            u.role.to_string(),
            u.agencies.to_string(),
            if u.disabled { "disabled" } else { "enabled" }.to_owned(),
            if keys.is_empty() {
                "-".to_owned()
            } else {
                format!("{active} active / {}", keys.len())
            },
            base::time::rfc3339::format_ms(u.created_at_ms),
            u.id.clone(),
        ]);
    }
    let mut widths = [0usize; 7];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    Ok(out)
}

/// `vantage audit verify`: the report, and whether the chain is intact.
pub fn verify_audit(cfg: &settings::Config) -> Result<store::VerifyReport, Error> {
    AuditLog::verify(&db_path(&cfg.storage.data_dir))
}

/// At node start: when there is no user yet and `admin_password` (`VANTAGE_ADMIN_PASSWORD`) is
/// given, creates the admin `admin_user` (`VANTAGE_ADMIN_USER`, default `admin`) with every
/// agency, and audits it. Ignored (returns `None`) once any user exists. The password must meet
/// the policy; it is never logged. Blocking (one password hash).
pub fn first_admin(
    db: &Path,
    log: &AuditLog,
    admin_user: Option<&str>,
    admin_password: Option<&str>,
    passwords: &Passwords,
) -> Result<Option<store::User>, Error> {
    let Some(pw) = admin_password.filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let username = admin_user.filter(|u| !u.is_empty()).unwrap_or("admin");
    let users = UserStore::open(db)?;
    if users.count()? > 0 {
        tracing::info!("VANTAGE_ADMIN_PASSWORD ignored: users exist already");
        return Ok(None);
    }
    check_password_policy(username, pw).map_err(|e| e.context("VANTAGE_ADMIN_PASSWORD"))?;
    let new = NewUser {
        username: username.to_owned(),
        password_hash: Some(passwords.hash(pw)?),
        role: Role::Admin,
        agencies: Agencies::All,
    };
    let u = match users.create(new, now_ms()) {
        Ok(u) => u,
        // Another process created it meanwhile.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(e),
    };
    log.record(AuditEvent {
        detail: Some(format!(
            "{} (first admin, from VANTAGE_ADMIN_PASSWORD)",
            describe(&u)
        )),
        ..AuditEvent::without_camera(SystemTime::now(), AuditAction::UserCreate, BOOTSTRAP_ACTOR)
    });
    tracing::info!(user = %u.username, "created the first admin user from VANTAGE_ADMIN_PASSWORD");
    Ok(Some(u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_admin_only_when_no_user_exists() {
        let dir = std::env::temp_dir().join(format!(
            "vantage-first-admin-{}-{}",
            std::process::id(),
            now_ms()
        ));
        let db = db_path(&dir);
        let log = AuditLog::open(&db).unwrap();
        let pw = Passwords::with_params(64, 1, 1).unwrap();
        assert_eq!(first_admin(&db, &log, None, None, &pw).unwrap(), None);
        assert_eq!(first_admin(&db, &log, None, Some(""), &pw).unwrap(), None);
        let e = first_admin(&db, &log, None, Some("admin"), &pw).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("VANTAGE_ADMIN_PASSWORD: password too short"),
            "{e}"
        );
        let u = first_admin(&db, &log, Some("root"), Some("a-long-password"), &pw)
            .unwrap()
            .unwrap();
        assert_eq!(
            (u.username.as_str(), u.role, &u.agencies),
            ("root", Role::Admin, &Agencies::All)
        );
        assert!(pw.verify(u.password_hash.as_ref().unwrap(), "a-long-password"));
        // Ignored once a user exists.
        assert_eq!(
            first_admin(&db, &log, None, Some("other-password"), &pw).unwrap(),
            None
        );
        let users = UserStore::open(&db).unwrap();
        assert_eq!(users.count().unwrap(), 1);
        log.flush().await;
        let rows = log
            .query(store::AuditFilter {
                action: Some(AuditAction::UserCreate),
                ..store::AuditFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].event.user_id, BOOTSTRAP_ACTOR);
        assert!(
            !rows[0]
                .event
                .detail
                .as_deref()
                .unwrap_or("")
                .contains("a-long-password")
        );
        drop(log);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

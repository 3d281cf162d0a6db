//! Users and API keys administered over the API (design 0009, "Users over the API"): what
//! `vantage user` does on the command line, for admins only, each change audited with the
//! admin as the actor. Disabling a user or changing its password ends its sessions at once.

use crate::access::{Access, Caller};
use auth::{Agencies, NewApiKey, Role, check_password_policy};
use base::{Error, bail, err};
use std::sync::Arc;
use store::{ApiKeyRow, AuditAction, Client, NewUser, User, UserUpdate};
use zeroize::Zeroizing;

/// What an admin asks for.
#[derive(Debug)]
pub enum UserOp {
    List,
    Get(String),
    Create {
        username: String,
        role: Role,
        agencies: Agencies,
        /// `None` for a service account (API keys only).
        password: Option<Zeroizing<String>>,
    },
    Update {
        id: String,
        role: Option<Role>,
        agencies: Option<Agencies>,
        password: Option<Zeroizing<String>>,
        disabled: Option<bool>,
    },
    Delete(String),
    Keys(String),
    CreateKey {
        user_id: String,
        name: String,
    },
    RevokeKey {
        user_id: String,
        key_id: String,
    },
}

/// The answer.
pub enum UserAnswer {
    Users(Vec<User>),
    User(User),
    Keys(Vec<ApiKeyRow>),
    /// A new key and the key itself, shown once.
    NewKey(ApiKeyRow, Zeroizing<String>),
    Done,
}

fn not_found(id: &str) -> Error {
    err!(NotFound, "user `{id}` not found").with_code("USER_NOT_FOUND")
}

impl Access {
    /// Runs `op` for `caller`: 403 unless an admin.
    pub fn users_op(
        &self,
        caller: &Caller,
        op: UserOp,
        client: &Client,
    ) -> Result<UserAnswer, Error> {
        if caller.role() != Role::Admin {
            bail!(PermissionDenied, "only an admin may administer users");
        }
        let users = self.user_store();
        let now = self.now_ms();
        let get = |id: &str| users.get(id)?.ok_or_else(|| not_found(id));
        let audit = |action, what: &User, detail: String| {
            self.audit_change(action, caller, client, &what.username, detail);
        };
        Ok(match op {
            UserOp::List => UserAnswer::Users(users.list()?),
            UserOp::Get(id) => UserAnswer::User(get(&id)?),
            UserOp::Create {
                username,
                role,
                agencies,
                password,
            } => {
                let password_hash = match (&password, role) {
                    (None, Role::Service) => None,
                    (Some(_), Role::Service) => {
                        bail!(
                            InvalidArgument,
                            "a service account has no password: give it API keys"
                        )
                    }
                    (None, _) => bail!(InvalidArgument, "a password is required"),
                    (Some(p), _) => {
                        check_password_policy(&username, p)?;
                        Some(self.hash_password(p)?)
                    }
                };
                let u = users.create(
                    NewUser {
                        username,
                        password_hash,
                        role,
                        agencies,
                    },
                    now,
                )?;
                audit(
                    AuditAction::UserCreate,
                    &u,
                    format!("role {}", u.role.as_str()),
                );
                UserAnswer::User(u)
            }
            UserOp::Update {
                id,
                role,
                agencies,
                password,
                disabled,
            } => {
                let before = get(&id)?;
                if id == caller.user_id
                    && (disabled == Some(true) || role.is_some_and(|r| r != Role::Admin))
                {
                    bail!(
                        FailedPrecondition,
                        "an admin cannot disable or demote itself"
                    );
                }
                let password_hash = match &password {
                    Some(p) => {
                        check_password_policy(&before.username, p)?;
                        Some(self.hash_password(p)?)
                    }
                    None => None,
                };
                let ends_sessions = disabled == Some(true) || password_hash.is_some();
                let mut what = Vec::new();
                if let Some(r) = role {
                    what.push(format!("role {}", r.as_str()));
                }
                if let Some(a) = &agencies {
                    what.push(format!("agencies {}", a.to_list().join(",")));
                }
                if password_hash.is_some() {
                    what.push("password changed".into());
                }
                if let Some(d) = disabled {
                    what.push(if d { "disabled" } else { "enabled" }.into());
                }
                let u = users.update(
                    &id,
                    UserUpdate {
                        role,
                        agencies,
                        password_hash,
                        disabled,
                    },
                    now,
                )?;
                if ends_sessions {
                    self.end_user_sessions(&id)?;
                }
                audit(AuditAction::UserUpdate, &u, what.join("; "));
                UserAnswer::User(u)
            }
            UserOp::Delete(id) => {
                let u = get(&id)?;
                if id == caller.user_id {
                    bail!(FailedPrecondition, "an admin cannot delete itself");
                }
                self.end_user_sessions(&id)?;
                users.delete(&id)?;
                audit(AuditAction::UserDelete, &u, String::new());
                UserAnswer::Done
            }
            UserOp::Keys(id) => {
                get(&id)?;
                UserAnswer::Keys(users.list_api_keys(&id)?)
            }
            UserOp::CreateKey { user_id, name } => {
                let u = get(&user_id)?;
                let key = NewApiKey::generate();
                let row = users.create_api_key(&user_id, &name, &key, now)?;
                audit(
                    AuditAction::ApiKeyCreate,
                    &u,
                    format!("key {} ({name})", row.id),
                );
                UserAnswer::NewKey(row, Zeroizing::new(key.token().to_owned()))
            }
            UserOp::RevokeKey { user_id, key_id } => {
                let u = get(&user_id)?;
                let found = users
                    .find_api_key(&key_id)?
                    .filter(|k| k.user_id == user_id)
                    .ok_or_else(|| err!(NotFound, "API key `{key_id}` not found"))?;
                users.revoke_api_key(&found.id, now)?;
                audit(AuditAction::ApiKeyRevoke, &u, format!("key {key_id}"));
                UserAnswer::Done
            }
        })
    }
}

impl crate::ports::Users for Arc<crate::Services> {
    fn users_op(
        &self,
        caller: Caller,
        op: UserOp,
        client: Client,
    ) -> crate::ports::BoxFuture<'_, Result<UserAnswer, Error>> {
        let a = self.access.clone();
        Box::pin(crate::exports::blocking(move || {
            a.users_op(&caller, op, &client)
        }))
    }
}

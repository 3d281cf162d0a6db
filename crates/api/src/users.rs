//! Users and API keys for admins (design 0009, "Users over the API"): `GET`/`POST
//! /api/v1/users`, `GET`/`PATCH`/`DELETE /api/v1/users/{id}`, `GET`/`POST
//! /api/v1/users/{id}/api-keys`, `DELETE /api/v1/users/{id}/api-keys/{key_id}`. A bearer
//! credential is required (401) and must be an admin's (403).

use crate::access::{Peer, caller, client};
use crate::extract::JsonBody;
use crate::streams::text_field;
use crate::{ApiError, AppState, invalid, model};
use auth::{Agencies, Role};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base::clock::rfc3339_ms;
use node::users::{UserAnswer, UserOp};
use serde_json::Value;
use std::sync::Arc;
use zeroize::Zeroizing;

fn view(u: &store::User) -> model::UserView {
    model::UserView {
        user_id: u.id.clone(),
        username: u.username.clone(),
        role: u.role.as_str().to_owned(),
        agencies: u.agencies.to_list(),
        disabled: u.disabled,
        created_at: rfc3339_ms(u.created_at_ms),
        updated_at: rfc3339_ms(u.updated_at_ms),
    }
}

fn key_view(k: &store::ApiKeyRow) -> model::ApiKeyView {
    model::ApiKeyView {
        key_id: k.id.clone(),
        name: k.name.clone(),
        created_at: rfc3339_ms(k.created_at_ms),
        last_used_at: k.last_used_ms.map(rfc3339_ms),
        revoked_at: k.revoked_at_ms.map(rfc3339_ms),
    }
}

fn role(v: Option<Value>) -> Result<Option<Role>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Role::parse(&s).map(Some).ok_or_else(|| {
            invalid(
                "role",
                "must be admin, supervisor, operator, viewer or service",
            )
        }),
        Some(_) => Err(invalid("role", "must be a string")),
    }
}

fn agencies(v: Option<Value>) -> Result<Option<Agencies>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => {
            let ids: Option<Vec<String>> = a
                .into_iter()
                .map(|x| x.as_str().map(str::to_owned))
                .collect();
            match ids {
                Some(ids) if !ids.is_empty() => Ok(Some(Agencies::from_list(ids))),
                _ => Err(invalid(
                    "agencies",
                    "must be a non-empty list of agency ids or [\"*\"]",
                )),
            }
        }
        Some(_) => Err(invalid(
            "agencies",
            "must be a list of agency ids or [\"*\"]",
        )),
    }
}

fn password(v: Option<Value>) -> Result<Option<Zeroizing<String>>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= 1024 => Ok(Some(Zeroizing::new(s))),
        Some(_) => Err(invalid(
            "password",
            "must be a string of at most 1024 bytes",
        )),
    }
}

async fn run(
    st: &AppState,
    peer: &Peer,
    headers: &HeaderMap,
    op: UserOp,
) -> Result<UserAnswer, ApiError> {
    let who = caller(st, headers).await?;
    Ok(st.users_op(who, op, client(headers, peer)).await?)
}

fn unexpected() -> ApiError {
    ApiError::from(base::err!(Internal, "unexpected answer"))
}

pub(crate) async fn list(
    State(st): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
) -> Result<Json<model::UserList>, ApiError> {
    match run(&st, &peer, &headers, UserOp::List).await? {
        UserAnswer::Users(u) => Ok(Json(model::UserList {
            users: u.iter().map(view).collect(),
        })),
        _ => Err(unexpected()),
    }
}

fn one(a: UserAnswer) -> Result<Json<model::UserView>, ApiError> {
    match a {
        UserAnswer::User(u) => Ok(Json(view(&u))),
        _ => Err(unexpected()),
    }
}

pub(crate) async fn get(
    State(st): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<model::UserView>, ApiError> {
    one(run(&st, &peer, &headers, UserOp::Get(id)).await?)
}

pub(crate) async fn create(
    State(st): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
    JsonBody(b): JsonBody<model::CreateUser>,
) -> Result<(StatusCode, Json<model::UserView>), ApiError> {
    let username = text_field(b.username, "username")?;
    let role = role(b.role)?.ok_or_else(|| invalid("role", "is required"))?;
    let agencies = match agencies(b.agencies)? {
        Some(a) => a,
        None if role == Role::Admin => Agencies::All,
        None => return Err(invalid("agencies", "is required (agency ids, or [\"*\"])")),
    };
    let op = UserOp::Create {
        username,
        role,
        agencies,
        password: password(b.password)?,
    };
    Ok((
        StatusCode::CREATED,
        one(run(&st, &peer, &headers, op).await?)?,
    ))
}

pub(crate) async fn patch(
    State(st): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<model::PatchUser>,
) -> Result<Json<model::UserView>, ApiError> {
    let disabled = match b.disabled {
        None | Some(Value::Null) => None,
        Some(Value::Bool(d)) => Some(d),
        Some(_) => return Err(invalid("disabled", "must be true or false")),
    };
    let op = UserOp::Update {
        id,
        role: role(b.role)?,
        agencies: agencies(b.agencies)?,
        password: password(b.password)?,
        disabled,
    };
    one(run(&st, &peer, &headers, op).await?)
}

pub(crate) async fn delete(
    State(st): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    run(&st, &peer, &headers, UserOp::Delete(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn keys(
    State(st): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<model::ApiKeyList>, ApiError> {
    match run(&st, &peer, &headers, UserOp::Keys(id)).await? {
        UserAnswer::Keys(k) => Ok(Json(model::ApiKeyList {
            api_keys: k.iter().map(key_view).collect(),
        })),
        _ => Err(unexpected()),
    }
}

pub(crate) async fn create_key(
    State(st): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    JsonBody(b): JsonBody<model::CreateApiKey>,
) -> Result<(StatusCode, Json<model::NewApiKey>), ApiError> {
    let name = text_field(b.name, "name")?;
    match run(&st, &peer, &headers, UserOp::CreateKey { user_id, name }).await? {
        UserAnswer::NewKey(row, key) => Ok((
            StatusCode::CREATED,
            Json(model::NewApiKey {
                key: key_view(&row),
                api_key: key.to_string(),
            }),
        )),
        _ => Err(unexpected()),
    }
}

pub(crate) async fn revoke_key(
    State(st): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
    Path((user_id, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    run(&st, &peer, &headers, UserOp::RevokeKey { user_id, key_id }).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! Logins (design 0009, "Sessions"): `POST /api/v1/auth/login`, `/refresh`, `/logout` and
//! `GET /api/v1/auth/me`. A bearer credential is a node access token or a service account's API
//! key. Enforcement of what callers may do on the other routes is not built yet.

use crate::extract::JsonBody;
use crate::streams::text_field;
use crate::{ApiError, AppState, model};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use base::clock::rfc3339_ms;
use node::access::{Caller, Tokens};
use std::sync::Arc;

/// The peer's address, when the server records it (`vantage::Node` does).
pub(crate) type Peer = Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>;

/// Where a request comes from, for the audit log and login lockout: `User-Agent` (cut to 256
/// bytes) and the TCP peer's address (a proxy in front is not looked through yet).
pub(crate) fn client(headers: &HeaderMap, peer: &Peer) -> store::Client {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect());
    store::Client {
        user_agent: ua,
        source_ip: peer.as_ref().map(|p| p.0.0.ip().to_string()),
    }
}

fn session(t: Tokens, now_s: u64) -> model::Session {
    model::Session {
        access_token: t.access_token,
        token_type: "Bearer".into(),
        expires_in: t.access_expires_at.saturating_sub(now_s),
        refresh_token: t.refresh_token,
        session_expires_at: rfc3339_ms(t.session_expires_at_ms),
        user: model::Me {
            user_id: t.user.id.clone(),
            username: t.user.username.clone(),
            role: t.user.role.as_str().to_owned(),
            agencies: t.user.agencies.to_list(),
            session_id: Some(t.session_id.clone()),
            issuer: None,
            grants: vec![grant(&t.user.principal())],
        },
        session_id: t.session_id,
    }
}

fn grant(p: &auth::Principal) -> model::Grant {
    model::Grant {
        role: p.role.as_str().to_owned(),
        agencies: p.agencies.to_list(),
    }
}

fn me(c: &Caller) -> model::Me {
    let first = c.grants.first();
    model::Me {
        user_id: c.user_id.clone(),
        username: c.username.clone(),
        role: c.role().as_str().to_owned(),
        agencies: first.map(|g| g.agencies.to_list()).unwrap_or_default(),
        session_id: c.session_id.clone(),
        issuer: c.issuer.clone(),
        grants: c.grants.iter().map(grant).collect(),
    }
}

fn now_s(st: &AppState) -> u64 {
    st.now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The caller behind `Authorization: Bearer ...`; 401 without one or when it does not verify.
pub(crate) async fn caller(st: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::from(base::err!(
            Unauthenticated,
            "log in first: send Authorization: Bearer <token>"
        )));
    };
    let cred = v
        .to_str()
        .ok()
        .and_then(|s| s.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::from(base::err!(
                Unauthenticated,
                "the Authorization header must be `Bearer <token>`"
            ))
        })?;
    Ok(st.authenticate(cred.to_owned()).await?)
}

/// `POST /api/v1/auth/login` `{username, password}` → 200 [`model::Session`]; 401 for a wrong
/// name or password (the same answer whichever was wrong).
pub(crate) async fn login(
    State(st): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
    JsonBody(b): JsonBody<model::LoginRequest>,
) -> Result<Json<model::Session>, ApiError> {
    let username = text_field(b.username, "username")?;
    let password = match b.password {
        Some(serde_json::Value::String(p)) if !p.is_empty() && p.len() <= 1024 => p,
        _ => return Err(crate::invalid("password", "must be a non-empty string")),
    };
    let t = st
        .login(username, password, client(&headers, &peer))
        .await?;
    Ok(Json(session(t, now_s(&st))))
}

/// `POST /api/v1/auth/refresh` `{refresh_token}` → 200 new tokens (the one presented is spent).
pub(crate) async fn refresh(
    State(st): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
    JsonBody(b): JsonBody<model::RefreshRequest>,
) -> Result<Json<model::Session>, ApiError> {
    let token = text_field(b.refresh_token, "refresh_token")?;
    let t = st.refresh(token, client(&headers, &peer)).await?;
    Ok(Json(session(t, now_s(&st))))
}

/// `POST /api/v1/auth/logout` (bearer) → 204; the session's tokens stop working at once.
pub(crate) async fn logout(
    State(st): State<Arc<AppState>>,
    peer: Peer,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let c = caller(&st, &headers).await?;
    st.logout(c, client(&headers, &peer)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/auth/me` (bearer) → who the caller is.
pub(crate) async fn whoami(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<model::Me>, ApiError> {
    Ok(Json(me(&caller(&st, &headers).await?)))
}

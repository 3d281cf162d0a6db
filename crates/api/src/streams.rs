//! Stream reservations: reserve, heartbeat, release, listings, stats (JSON and WebSocket), audit.

use crate::extract::{JsonBody, Query};
use crate::model;
use crate::{
    ApiError, AppState, camera_disabled, camera_not_found, camera_unavailable, invalid,
    reservation, reservation_not_found,
};
use admission::{Admitted, Denied, Quality};
use axum::Json;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base::{CameraId, ReservationId};
use node::ports::Release;
use node::reservations::AdmitError;
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// A required non-empty string field.
pub(crate) fn text_field(v: Option<Value>, field: &str) -> Result<String, ApiError> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 256 => Ok(s),
        Some(Value::String(s)) if s.len() > 256 => Err(invalid(field, "is longer than 256 bytes")),
        None | Some(Value::Null) => Err(invalid(field, "is required")),
        Some(Value::String(_)) => Err(invalid(field, "must not be empty")),
        Some(_) => Err(invalid(field, "must be a string")),
    }
}

fn denied(d: &Denied, agency: &str) -> ApiError {
    let (en, ar) = match d {
        Denied::Agency {
            agency,
            current,
            limit,
        } => (
            format!(
                "agency {agency} has reached its limit of live streams ({current} of {limit} in use)"
            ),
            format!("بلغت الجهة {agency} الحد الأقصى للبث المباشر ({current} من {limit})"),
        ),
        Denied::Global { current, limit } => (
            format!(
                "the platform has reached its limit of live streams ({current} of {limit} in use)"
            ),
            format!("تم بلوغ الحد الأقصى الإجمالي للبث المباشر ({current} من {limit})"),
        ),
        Denied::User {
            user_id,
            current,
            limit,
        } => (
            format!(
                "user {user_id} has reached their limit of live streams ({current} of {limit} in use)"
            ),
            format!("بلغ المستخدم {user_id} الحد الأقصى للبث المباشر ({current} من {limit})"),
        ),
    };
    let (current, limit) = match d {
        Denied::Agency { current, limit, .. }
        | Denied::Global { current, limit }
        | Denied::User { current, limit, .. } => (*current, *limit),
    };
    let mut e = ApiError::new(
        base::Error::new(base::ErrorKind::ResourceExhausted, en).with_code(d.code()),
        ar,
    )
    .detail("agency", agency)
    .detail("current", current)
    .detail("limit", limit);
    if let Denied::User { user_id, .. } = d {
        e = e.detail("user_id", user_id.as_str());
    }
    e
}

/// An admission refusal as the API reports it.
pub(crate) fn admit_error(e: AdmitError, camera_id: &str) -> ApiError {
    match e {
        AdmitError::CameraNotFound => camera_not_found(camera_id),
        AdmitError::CameraDisabled => camera_disabled(camera_id),
        AdmitError::CameraUnavailable(why) => camera_unavailable(camera_id, &why),
        AdmitError::Denied { denied: d, agency } => denied(&d, &agency),
    }
}

pub(crate) async fn reserve(
    State(st): State<Arc<AppState>>,
    JsonBody(b): JsonBody<model::ReserveRequest>,
) -> Result<Response, ApiError> {
    let camera_id = text_field(b.camera_id, "camera_id")?;
    let user_id = text_field(b.user_id, "user_id")?;
    let quality = match b.quality {
        None | Some(Value::Null) => Quality::Auto,
        Some(Value::String(q)) => Quality::parse(&q)
            .ok_or_else(|| invalid("quality", "must be one of low, medium, high, auto"))?,
        Some(_) => return Err(invalid("quality", "must be one of low, medium, high, auto")),
    };
    let a = st
        .reserve(&CameraId::from(camera_id.as_str()), &user_id, quality)
        .map_err(|e| admit_error(e, &camera_id))?;
    let status = match a {
        Admitted::Created(_) => StatusCode::CREATED,
        Admitted::Existing(_) => StatusCode::OK,
    };
    Ok((status, Json(reservation(a.reservation()))).into_response())
}

pub(crate) async fn heartbeat(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<model::Heartbeat>, ApiError> {
    let r = st
        .heartbeat(&ReservationId::from(id.as_str()))
        .ok_or_else(|| reservation_not_found(&id))?;
    Ok(Json(model::Heartbeat {
        reservation_id: r.id.to_string(),
        expires_at: base::clock::rfc3339(r.expires_at),
    }))
}

/// 204 and the viewer session ends. Releasing a reservation that already ended (released,
/// expired, session over) is idempotent: 204 again. Unknown ids: 404.
pub(crate) async fn release(
    State(st): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match st.release(&ReservationId::from(id.as_str())) {
        Release::Released | Release::AlreadyEnded => Ok(StatusCode::NO_CONTENT),
        Release::Unknown => Err(reservation_not_found(&id)),
    }
}

#[derive(Deserialize)]
pub(crate) struct ReservationFilter {
    user_id: Option<String>,
    camera_id: Option<String>,
}

pub(crate) async fn list_reservations(
    State(st): State<Arc<AppState>>,
    Query(f): Query<ReservationFilter>,
) -> Json<model::ReservationList> {
    let reservations: Vec<model::ReservationListItem> = st
        .reservations()
        .iter()
        .filter(|v| {
            f.user_id
                .as_ref()
                .is_none_or(|u| *u == v.reservation.user_id)
        })
        .filter(|v| {
            f.camera_id
                .as_ref()
                .is_none_or(|c| v.reservation.camera_id == c.as_str())
        })
        .map(|v| model::ReservationListItem {
            reservation: reservation(&v.reservation),
            session_state: v.session_state.map(str::to_owned),
        })
        .collect();
    Json(model::ReservationList {
        total: reservations.len(),
        reservations,
    })
}

fn stats_of(st: &AppState) -> model::StreamStats {
    let s = st.stats();
    model::StreamStats {
        active_streams: s.active_streams,
        max_streams: s.max_streams,
        per_agency: s
            .per_agency
            .into_iter()
            .map(|(agency, current, limit)| model::AgencyCount {
                agency,
                current,
                limit,
            })
            .collect(),
    }
}

pub(crate) async fn stats(State(st): State<Arc<AppState>>) -> Json<model::StreamStats> {
    Json(stats_of(&st))
}

/// At most this many stats messages per second on the WebSocket.
const WS_MAX_RATE: u32 = 4;

/// Pushes the stats at once and then whenever they change, coalesced to at most four messages
/// a second.
pub(crate) async fn stats_ws(State(st): State<Arc<AppState>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| push_stats(st, socket))
}

async fn push_stats(st: Arc<AppState>, mut socket: WebSocket) {
    let mut changes = st.stats_changes();
    let min_gap = Duration::from_secs(1) / WS_MAX_RATE;
    loop {
        changes.borrow_and_update();
        let text = serde_json::to_string(&stats_of(&st)).unwrap_or_default();
        if socket.send(Message::Text(text.into())).await.is_err() {
            return;
        }
        // Coalesce: whatever changes during the gap goes out in the next message.
        let gap = tokio::time::sleep(min_gap);
        tokio::pin!(gap);
        loop {
            tokio::select! {
                _ = &mut gap => break,
                m = socket.recv() => match m {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    _ => {}
                },
            }
        }
        loop {
            tokio::select! {
                r = changes.changed() => {
                    if r.is_err() {
                        return;
                    }
                    break;
                }
                m = socket.recv() => match m {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    _ => {}
                },
            }
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct AuditQuery {
    camera_id: Option<String>,
    /// Alias of `camera_id`.
    camera: Option<String>,
    user_id: Option<String>,
    /// Alias of `user_id`.
    user: Option<String>,
    reservation_id: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// The `next` of the previous page.
    after: Option<String>,
    limit: Option<u32>,
}

/// A page cursor: `<at in ms>.<seq>` of the last row of a page.
fn cursor(at_ms: i64, seq: i64) -> String {
    format!("{at_ms}.{seq}")
}

fn parse_cursor(s: &str) -> Option<(i64, i64)> {
    let (a, b) = s.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// `GET /api/v1/audit?camera=&user=&reservation_id=&action=&from=&to=&limit=&after=`: the audit
/// log, newest first, a page at a time (`next` names the following page).
pub(crate) async fn audit(
    State(st): State<Arc<AppState>>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<model::AuditList>, ApiError> {
    let action = q
        .action
        .as_deref()
        .map(|a| {
            store::AuditAction::parse(a).ok_or_else(|| {
                invalid(
                    "action",
                    "is not an audit action (login_success, reserve, ...)",
                )
            })
        })
        .transpose()?;
    let since = q
        .from
        .as_deref()
        .map(|t| crate::storage::parse_time("from", t))
        .transpose()?;
    let until =
        q.to.as_deref()
            .map(|t| crate::storage::parse_time("to", t))
            .transpose()?;
    let after = q
        .after
        .as_deref()
        .map(|c| {
            parse_cursor(c).ok_or_else(|| invalid("after", "is not a page cursor (use `next`)"))
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(100).min(10_000);
    let rows = st
        .audit(store::AuditFilter {
            camera_id: q.camera_id.or(q.camera),
            user_id: q.user_id.or(q.user),
            reservation_id: q.reservation_id,
            action,
            since,
            until,
            after,
            limit,
        })
        .await
        .map_err(|e| ApiError::from(e.context("audit log")))?;
    let next = rows
        .last()
        .filter(|_| limit > 0 && rows.len() >= limit as usize)
        .map(|r| cursor(base::clock::unix_ms(r.event.at), r.seq));
    let events = rows
        .iter()
        .map(|r| {
            let e = &r.event;
            model::AuditEvent {
                seq: r.seq,
                at: base::clock::rfc3339(e.at),
                at_ms: base::clock::unix_ms(e.at),
                action: e.action.as_str().to_owned(),
                reservation_id: e.reservation_id.as_ref().map(|r| r.to_string()),
                user_id: e.user_id.clone(),
                camera_id: e.camera_id.to_string(),
                agency: e.agency.clone(),
                quality: e.quality.clone(),
                reason: e.reason.clone(),
                detail: e.detail.clone(),
                role: e.role.clone(),
                source_ip: e.source_ip.clone(),
                user_agent: e.user_agent.clone(),
            }
        })
        .collect();
    // Events the writer could not keep up with are counted, never silently lost.
    Ok(Json(model::AuditList {
        events,
        dropped: st.audit_dropped(),
        next,
    }))
}

//! Request extractors whose every rejection is the API's JSON error body, naming the field at
//! fault; and the last-resort layer that turns any other error answer (an unknown route, a
//! method not allowed, a body over the limit, a failed WebSocket upgrade) into that body too.
#![deny(clippy::indexing_slicing)]

use crate::{ApiError, invalid};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base::err;
use serde::de::DeserializeOwned;

/// The largest JSON body accepted.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// A query string deserialized into `T`; a bad value is a 400 `INVALID_REQUEST` naming its
/// parameter (`?limit=abc` → `field: "limit"`).
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| invalid(&field_of(e.path(), "query"), &e.inner().to_string()))
    }
}

/// A JSON request body deserialized into `T`: 415 without a JSON content type, 413 over
/// [`MAX_JSON_BODY`], 400 `INVALID_REQUEST` naming the field (or `body`) when it does not parse.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !has_content_type(req.headers(), "application/json") {
            return Err(unsupported_media_type("application/json"));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| rejection_error(e.status(), &e.body_text()))?;
        if bytes.len() > MAX_JSON_BODY {
            return Err(too_large(MAX_JSON_BODY));
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let v = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            // Malformed JSON is the body's fault; a value of the wrong type is its field's.
            let field = match e.inner().classify() {
                serde_json::error::Category::Data => field_of(e.path(), "body"),
                _ => "body".to_owned(),
            };
            invalid(&field, &e.inner().to_string())
        })?;
        de.end()
            .map_err(|e| invalid("body", &format!("trailing data: {e}")))?;
        Ok(JsonBody(v))
    }
}

/// The field a deserialization error points at; `whole` when it is about the whole input.
fn field_of(path: &serde_path_to_error::Path, whole: &str) -> String {
    let p = path.to_string();
    if p.is_empty() || p == "." {
        whole.to_owned()
    } else {
        p
    }
}

/// Whether the request's `Content-Type` is `mime` (parameters such as `charset` allowed).
pub(crate) fn has_content_type(headers: &HeaderMap, mime: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(mime))
}

pub(crate) fn unsupported_media_type(expected: &str) -> ApiError {
    ApiError::new(
        err!(InvalidArgument, "the body must be sent as {expected}")
            .with_code("UNSUPPORTED_MEDIA_TYPE"),
        format!("يجب إرسال المحتوى بصيغة {expected}"),
    )
    .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
    .detail("expected", expected)
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        err!(InvalidArgument, "the body is larger than {limit} bytes")
            .with_code("PAYLOAD_TOO_LARGE"),
        "حجم المحتوى أكبر من المسموح",
    )
    .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    .detail("limit", limit)
}

/// The JSON error for a rejection axum answered with `status` and a plain-text `text`.
fn rejection_error(status: StatusCode, text: &str) -> ApiError {
    let text = text.trim();
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            err!(InvalidArgument, "the body is too large{}", suffix(text))
                .with_code("PAYLOAD_TOO_LARGE"),
            "حجم المحتوى أكبر من المسموح",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            err!(InvalidArgument, "unsupported content type{}", suffix(text))
                .with_code("UNSUPPORTED_MEDIA_TYPE"),
            "نوع المحتوى غير مدعوم",
        ),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            err!(
                InvalidArgument,
                "method not allowed on this path{}",
                suffix(text)
            )
            .with_code("METHOD_NOT_ALLOWED"),
            "الطريقة غير مسموح بها لهذا المسار",
        ),
        StatusCode::NOT_FOUND => ApiError::new(
            err!(NotFound, "not found{}", suffix(text)).with_code("NOT_FOUND"),
            "غير موجود",
        ),
        s if s.is_client_error() => ApiError::new(
            err!(InvalidArgument, "invalid request{}", suffix(text)).with_code("INVALID_REQUEST"),
            "طلب غير صالح",
        ),
        _ => ApiError::new(
            err!(Internal, "internal error{}", suffix(text)).with_code("INTERNAL"),
            "خطأ داخلي",
        ),
    }
    .with_status(status)
}

fn suffix(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// Answers every request no route matches: 404 `NOT_FOUND` naming the method and path.
pub(crate) async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        err!(NotFound, "no such route: {method} {}", uri.path()).with_code("NOT_FOUND"),
        "المسار غير موجود",
    )
}

/// The last-resort layer: an error answer that is not JSON (axum's own rejections, a 405, a
/// body limit, a failed WebSocket upgrade) becomes the JSON error body with the same status and
/// headers. Answers that are JSON already, and successful ones, pass untouched.
pub(crate) async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let (new_parts, new_body) = rejection_error(status, &text).into_response().into_parts();
    // Keep the original headers (`Allow` on a 405, say), with the new body's type and length.
    parts.headers.remove(header::CONTENT_LENGTH);
    for (k, v) in &new_parts.headers {
        parts.headers.insert(k.clone(), v.clone());
    }
    Response::from_parts(parts, new_body)
}

//! The API's error body: `{"error":{"code","message","message_ar", ...details}}` with the HTTP
//! status of the error's kind.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base::Error;

/// An error as the API returns it.
#[derive(Debug)]
pub struct ApiError {
    pub err: Error,
    pub message_ar: String,
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    pub fn new(err: Error, message_ar: impl Into<String>) -> Self {
        ApiError {
            err,
            message_ar: message_ar.into(),
            details: Default::default(),
        }
    }

    pub fn detail(mut self, k: &str, v: impl Into<serde_json::Value>) -> Self {
        self.details.insert(k.to_owned(), v.into());
        self
    }
}

/// Errors from lower layers get a generic Arabic message matched to their kind.
impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        use base::ErrorKind::*;
        let ar = match err.kind() {
            InvalidArgument => "طلب غير صالح",
            NotFound => "غير موجود",
            NotAcceptable => "لا يوجد ترميز مشترك بين الكاميرا والمتصفح",
            FailedPrecondition | AlreadyExists => "لا يمكن تنفيذ الطلب في الحالة الحالية",
            ResourceExhausted => "تم بلوغ الحد الأقصى",
            Unavailable | DeadlineExceeded => "الخدمة غير متاحة حاليا",
            Unauthenticated => "يلزم تسجيل الدخول",
            PermissionDenied => "غير مصرح",
            _ => "خطأ داخلي",
        };
        ApiError::new(err, ar)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.err.kind().http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(code = self.err.code(), "{}", self.err);
        }
        let mut body = serde_json::Map::new();
        body.insert("code".into(), self.err.code().into());
        body.insert("message".into(), self.err.message().into());
        body.insert("message_ar".into(), self.message_ar.into());
        body.extend(self.details);
        (status, axum::Json(serde_json::json!({ "error": body }))).into_response()
    }
}

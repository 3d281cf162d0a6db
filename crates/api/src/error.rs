//! The API's error body: `{"error":{"code","message","message_ar", ...details}}` with the HTTP
//! status of the error's kind.

use crate::model::{ErrorBody, ErrorDetail};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base::Error;

/// An error as the API returns it.
#[derive(Debug)]
pub struct ApiError {
    pub err: Error,
    pub message_ar: String,
    pub details: serde_json::Map<String, serde_json::Value>,
    /// The HTTP status, when not the one of the error's kind (413, 415, 405).
    pub status: Option<StatusCode>,
}

impl ApiError {
    pub fn new(err: Error, message_ar: impl Into<String>) -> Self {
        ApiError {
            err,
            message_ar: message_ar.into(),
            details: Default::default(),
            status: None,
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
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
    fn into_response(mut self) -> Response {
        let status = self.status.unwrap_or_else(|| {
            StatusCode::from_u16(self.err.kind().http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        });
        if status.is_server_error() {
            tracing::warn!(code = self.err.code(), "{}", self.err);
        }
        let field = match self.details.remove("field") {
            Some(serde_json::Value::String(f)) => Some(f),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.err.code().to_owned(),
                message: self.err.message().to_owned(),
                message_ar: self.message_ar,
                field,
                details: self.details,
            },
        };
        (status, axum::Json(body)).into_response()
    }
}

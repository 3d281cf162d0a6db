//! One error type for the whole process. Every error has a [`ErrorKind`] (mapped to an HTTP status
//! by [`ErrorKind::http_status`]) and a human-readable message that already carries its context
//! (camera id, peer address, URL without credentials). Secrets never go into messages: callers pass
//! URLs through [`crate::redact_url`] first.

use std::fmt;

/// What kind of failure this is; modelled on gRPC status codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The caller sent something malformed (bad JSON, bad SDP, unknown field value).
    InvalidArgument,
    /// The named thing does not exist.
    NotFound,
    /// The thing exists already.
    AlreadyExists,
    /// The request is well-formed but cannot be served in the current state (camera disabled).
    FailedPrecondition,
    /// Both sides are fine but have nothing in common (no shared codec): HTTP 406.
    NotAcceptable,
    /// A quota or limit was hit.
    ResourceExhausted,
    /// The peer or the camera cannot be reached now; retrying later may work.
    Unavailable,
    /// The peer answered with something we could not understand.
    DataLoss,
    /// The caller is not authenticated.
    Unauthenticated,
    /// The caller may not do this.
    PermissionDenied,
    /// A deadline passed.
    DeadlineExceeded,
    /// The operation was cancelled (shutdown, stop on demand).
    Cancelled,
    /// A bug or an unexpected local failure.
    Internal,
    /// The feature is not implemented or not supported by the peer.
    Unimplemented,
}

impl ErrorKind {
    /// The HTTP status an API returns for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::InvalidArgument => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::NotAcceptable => 406,
            ErrorKind::AlreadyExists | ErrorKind::FailedPrecondition => 409,
            ErrorKind::ResourceExhausted => 429,
            ErrorKind::Cancelled => 499,
            ErrorKind::Internal | ErrorKind::DataLoss => 500,
            ErrorKind::Unimplemented => 501,
            ErrorKind::Unavailable => 503,
            ErrorKind::DeadlineExceeded => 504,
        }
    }

    /// A stable upper-case name, used as the default API error code.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::AlreadyExists => "ALREADY_EXISTS",
            ErrorKind::FailedPrecondition => "FAILED_PRECONDITION",
            ErrorKind::NotAcceptable => "NOT_ACCEPTABLE",
            ErrorKind::ResourceExhausted => "RESOURCE_EXHAUSTED",
            ErrorKind::Unavailable => "UNAVAILABLE",
            ErrorKind::DataLoss => "DATA_LOSS",
            ErrorKind::Unauthenticated => "UNAUTHENTICATED",
            ErrorKind::PermissionDenied => "PERMISSION_DENIED",
            ErrorKind::DeadlineExceeded => "DEADLINE_EXCEEDED",
            ErrorKind::Cancelled => "CANCELLED",
            ErrorKind::Internal => "INTERNAL",
            ErrorKind::Unimplemented => "UNIMPLEMENTED",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An error with a kind, a message with context, and an optional API code overriding the kind's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    code: Option<&'static str>,
    msg: String,
}

impl Error {
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Self {
        Error {
            kind,
            code: None,
            msg: msg.into(),
        }
    }

    /// Sets a specific API code (`CAMERA_NOT_FOUND`) in place of the kind's generic one.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn code(&self) -> &'static str {
        self.code.unwrap_or_else(|| self.kind.code())
    }

    pub fn message(&self) -> &str {
        &self.msg
    }

    /// Prefixes the message with context, keeping kind and code.
    pub fn context(mut self, ctx: impl fmt::Display) -> Self {
        self.msg = format!("{ctx}: {}", self.msg);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

/// Builds an [`Error`] with `format!` syntax: `err!(NotFound, "camera {id} not found")`.
#[macro_export]
macro_rules! err {
    ($kind:ident, $($arg:tt)+) => {
        $crate::Error::new($crate::ErrorKind::$kind, format!($($arg)+))
    };
}

/// Builds and returns an [`Error`]: `bail!(InvalidArgument, "bad sdp: {why}")`.
#[macro_export]
macro_rules! bail {
    ($kind:ident, $($arg:tt)+) => {
        return Err($crate::err!($kind, $($arg)+))
    };
}

/// Adds a kind and context to foreign errors.
pub trait ResultExt<T> {
    fn err_kind(self, kind: ErrorKind, ctx: impl fmt::Display) -> Result<T, Error>;
}

impl<T, E: fmt::Display> ResultExt<T> for Result<T, E> {
    fn err_kind(self, kind: ErrorKind, ctx: impl fmt::Display) -> Result<T, Error> {
        self.map_err(|e| Error::new(kind, format!("{ctx}: {e}")))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn kinds_map_to_statuses_and_codes() {
        let e = err!(NotFound, "camera {} not found", "cam-1").with_code("CAMERA_NOT_FOUND");
        assert_eq!(e.kind().http_status(), 404);
        assert_eq!(e.code(), "CAMERA_NOT_FOUND");
        assert_eq!(e.to_string(), "camera cam-1 not found");
        let e = e.context("reserve");
        assert_eq!(e.to_string(), "reserve: camera cam-1 not found");
        assert_eq!(err!(NotAcceptable, "x").kind().http_status(), 406);
        assert_eq!(err!(ResourceExhausted, "x").code(), "RESOURCE_EXHAUSTED");
    }
}

//! `ApiError`: the one error type every handler returns, rendered as RFC 9457
//! `application/problem+json` with a stable machine-readable `code`.
//!
//! Internal causes (SQL, SDK text) are logged with the request id and never sent to clients.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

tokio::task_local! {
    /// The request id of the request being served, set by the request-id middleware so that
    /// errors built deep in a handler can name it without threading it through every call.
    pub static REQUEST_ID: String;
}

/// The current request's id, if called while serving a request.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

/// One offending field of a rejected request.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the field, e.g. `scale_from_zero.threshold`.
    pub field: String,
    /// What is wrong and what is accepted.
    pub message: String,
}

/// RFC 9457 problem details, as sent to clients.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// URI identifying the problem type.
    #[schema(example = "https://zeroscale.dev/problems/validation-failed")]
    pub r#type: String,
    /// Short, human-readable summary of the problem type.
    #[schema(example = "Validation failed")]
    pub title: String,
    /// HTTP status code.
    #[schema(example = 422)]
    pub status: u16,
    /// Human-readable explanation of this occurrence: what is wrong and what to change.
    pub detail: String,
    /// Stable machine-readable error code.
    #[schema(example = "validation_failed")]
    pub code: String,
    /// The request id (also in the `x-request-id` response header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// For validation errors, the offending fields.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(nullable = false)]
    pub errors: Vec<FieldError>,
}

/// Everything an API handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Body is not valid JSON or does not match the expected shape.
    #[error("{0}")]
    BadRequest(String),
    /// A well-formed request whose values break the rules.
    #[error("{detail}")]
    Validation {
        /// Summary of all field errors.
        detail: String,
        /// One entry per offending field.
        errors: Vec<FieldError>,
    },
    /// Body larger than the configured limit.
    #[error("request body exceeds the size limit of this service (ZEROSCALE_BODY_LIMIT)")]
    PayloadTooLarge,
    /// A body was sent with a content type other than JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// Method not allowed on this path.
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// Missing or invalid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Credentials lack a scope the route needs.
    #[error("{0}")]
    Forbidden(String),
    /// Conflicts with the current state (e.g. an idempotent request still in flight).
    #[error("{detail}")]
    Conflict {
        /// Stable code for the kind of conflict.
        code: &'static str,
        /// What conflicted and what to do.
        detail: String,
    },
    /// `If-Match` no longer matches the resource's version.
    #[error("{0}")]
    PreconditionFailed(String),
    /// An `Idempotency-Key` was reused with a different body.
    #[error("{0}")]
    IdempotencyKeyReused(String),
    /// The name belongs to the other kind of target (an endpoint on a component route, or
    /// the reverse); the message names the right route.
    #[error("{0}")]
    WrongTargetKind(String),
    /// Too many requests for this caller.
    #[error("rate limit exceeded; retry after {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a retry can succeed.
        retry_after_secs: u64,
    },
    /// The request's body did not arrive within the body read timeout.
    #[error(
        "the request body did not arrive within {0} s (is Content-Length larger than the body?)"
    )]
    BodyTimeout(u64),
    /// The request did not finish within the configured timeout.
    #[error("the request did not complete within {0} s")]
    Timeout(u64),
    /// A dependency (named) is down.
    #[error("{0}")]
    Unavailable(String),
    /// The database is down, unreachable or out of connections (`database_unavailable`), or a
    /// lock or statement timed out (`database_busy`): 503 with Retry-After. The cause is
    /// logged, never sent.
    #[error("{detail}")]
    Database {
        /// `database_unavailable` or `database_busy`.
        code: &'static str,
        /// What happened, in words for the caller.
        detail: &'static str,
        /// Seconds after which a retry may succeed.
        retry_after_secs: u64,
        /// The driver's text, for the log.
        cause: String,
    },
    /// Anything unexpected; the cause is logged, never sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        let unavailable = |cause: String| ApiError::Database {
            code: "database_unavailable",
            detail: "the database is unavailable; nothing was changed; retry after Retry-After",
            retry_after_secs: 5,
            cause,
        };
        match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => unavailable(e.to_string()),
            sqlx::Error::Database(db) => match db.code().as_deref() {
                // lock_not_available (lock_timeout), query_canceled (statement_timeout),
                // serialization_failure, deadlock_detected: the transaction rolled back.
                Some("55P03" | "57014" | "40001" | "40P01") => ApiError::Database {
                    code: "database_busy",
                    detail: "the database was too busy to finish this request in time; nothing was changed; retry after Retry-After",
                    retry_after_secs: 1,
                    cause: e.to_string(),
                },
                // Shutting down, starting up, connection failures, out of connections or
                // other resources.
                Some(c) if c.starts_with("57P") || c.starts_with("08") || c.starts_with("53") => {
                    unavailable(e.to_string())
                }
                _ => ApiError::Internal(anyhow::Error::new(e).context("database error")),
            },
            _ => ApiError::Internal(anyhow::Error::new(e).context("database error")),
        }
    }
}

impl ApiError {
    /// The HTTP status this error maps to.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Validation { .. }
            | ApiError::IdempotencyKeyReused(_)
            | ApiError::WrongTargetKind(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Timeout(_) | ApiError::Unavailable(_) | ApiError::Database { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Validation { .. } => "validation_failed",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Conflict { code, .. } => code,
            ApiError::PreconditionFailed(_) => "precondition_failed",
            ApiError::IdempotencyKeyReused(_) => "idempotency_key_reused",
            ApiError::WrongTargetKind(_) => "wrong_target_kind",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::BodyTimeout(_) => "body_timeout",
            ApiError::Timeout(_) => "timeout",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Database { code, .. } => code,
            ApiError::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "Bad request",
            ApiError::Validation { .. } => "Validation failed",
            ApiError::PayloadTooLarge => "Payload too large",
            ApiError::UnsupportedMediaType(_) => "Unsupported media type",
            ApiError::NotFound(_) => "Not found",
            ApiError::MethodNotAllowed => "Method not allowed",
            ApiError::Unauthorized(_) => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::PreconditionFailed(_) => "Precondition failed",
            ApiError::IdempotencyKeyReused(_) => "Idempotency key reused",
            ApiError::WrongTargetKind(_) => "Wrong kind of target",
            ApiError::RateLimited { .. } => "Too many requests",
            ApiError::BodyTimeout(_) => "Request body timed out",
            ApiError::Timeout(_) => "Request timed out",
            ApiError::Unavailable(_) => "Service unavailable",
            ApiError::Database { .. } => "Database unavailable",
            ApiError::Internal(_) => "Internal server error",
        }
    }

    /// The full text of this error, causes included, for a log line (never for a client).
    pub fn to_string_for_log(&self) -> String {
        match self {
            ApiError::Internal(cause) => format!("{cause:#}"),
            ApiError::Database { cause, .. } => cause.clone(),
            other => other.to_string(),
        }
    }

    /// A single-field validation error.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let (field, message) = (field.into(), message.into());
        ApiError::Validation {
            detail: format!("{field}: {message}"),
            errors: vec![FieldError { field, message }],
        }
    }

    /// The problem document for this error.
    pub fn to_problem(&self) -> Problem {
        let detail = match self {
            // 500s are opaque: the cause goes to the log, not to the client.
            ApiError::Internal(_) => {
                "An unexpected error occurred; it has been logged with this request id.".into()
            }
            other => other.to_string(),
        };
        Problem {
            r#type: format!(
                "https://zeroscale.dev/problems/{}",
                self.code().replace('_', "-")
            ),
            title: self.title().to_string(),
            status: self.status().as_u16(),
            detail,
            code: self.code().to_string(),
            request_id: current_request_id(),
            errors: match self {
                ApiError::Validation { errors, .. } => errors.clone(),
                _ => Vec::new(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        if let ApiError::Database { code, cause, .. } = &self {
            tracing::warn!(code, error = %cause, "database unavailable or busy");
        }
        let problem = self.to_problem();
        let mut response = problem_response(self.status(), &problem);
        if let ApiError::RateLimited { retry_after_secs }
        | ApiError::Database {
            retry_after_secs, ..
        } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        if let ApiError::Unauthorized(_) = self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"zeroscale\""),
            );
        }
        response
    }
}

/// The problem document for an error status some layer answered without one (see
/// `api::middleware::problem_everywhere` and `api::wire`).
pub fn generic_problem(status: StatusCode) -> Problem {
    let (code, detail) = match status.as_u16() {
        400 => ("bad_request", "the request could not be read: its path, query, headers or body are malformed (for example bytes that are not UTF-8 in a path segment)"),
        404 => ("not_found", "no route matches this path"),
        405 => ("method_not_allowed", "method not allowed on this path"),
        408 => ("body_timeout", "the request did not arrive in time"),
        413 => ("payload_too_large", "the request body exceeds the size limit of this service (ZEROSCALE_BODY_LIMIT)"),
        414 => ("uri_too_long", "the request URI is longer than this service accepts"),
        415 => ("unsupported_media_type", "request bodies must be JSON: send `Content-Type: application/json`"),
        431 => ("headers_too_large", "the request's headers are larger than this service accepts"),
        s if s >= 500 => ("internal", "An unexpected error occurred; it has been logged with this request id."),
        _ => ("bad_request", "the request was refused"),
    };
    Problem {
        r#type: format!("https://zeroscale.dev/problems/{}", code.replace('_', "-")),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: status.as_u16(),
        detail: detail.into(),
        code: code.into(),
        request_id: current_request_id(),
        errors: Vec::new(),
    }
}

/// Serializes a problem document with the right content type.
pub fn problem_response(status: StatusCode, problem: &Problem) -> Response {
    let body = serde_json::to_vec(problem).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_are_opaque() {
        let err = ApiError::Internal(anyhow::anyhow!("relation \"secret_table\" does not exist"));
        let p = err.to_problem();
        assert_eq!(p.status, 500);
        assert!(!p.detail.contains("secret_table"));
    }

    #[tokio::test]
    async fn problem_carries_request_id_in_scope() {
        let p = REQUEST_ID
            .scope("rid-1".into(), async {
                ApiError::NotFound("x".into()).to_problem()
            })
            .await;
        assert_eq!(p.request_id.as_deref(), Some("rid-1"));
        assert_eq!(p.code, "not_found");
    }
}

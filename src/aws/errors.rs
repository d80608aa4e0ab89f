//! One mapping from the SDK's errors to what callers need: retry or stop, and a message for
//! humans (`reconcile::job_error` turns it into a job error). SDK text is kept for logs and operations, never sent in API error bodies.

use aws_sdk_sagemaker::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::{client::result::SdkError, http::Response as HttpResponse};

/// How a failed AWS call should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Throttling, 5xx, timeouts, connection trouble, ConcurrentUpdate: retry with backoff.
    Retryable,
    /// The object does not exist (may be eventual consistency right after a registration).
    NotFound,
    /// Validation, access denied, failed preconditions: retrying will not help.
    Permanent,
}

/// A failed AWS call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{service}.{operation} failed: {code}: {message}")]
pub struct AwsFailure {
    pub service: &'static str,
    pub operation: &'static str,
    pub kind: FailureKind,
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
}

/// An error answer's code, message, request id and status. An answer without an error code (a
/// proxy's page, a bare 403) is described by what came back, not as "Unknown" with an empty
/// message.
fn answered(
    e: &impl ProvideErrorMetadata,
    raw: &HttpResponse,
) -> (String, String, Option<String>, Option<u16>) {
    let status = raw.status().as_u16();
    let (code, message) = match e.code() {
        Some(code) => (
            code.to_string(),
            e.message().unwrap_or_default().to_string(),
        ),
        None => (format!("HTTP {status}"), body_excerpt(raw.body().bytes())),
    };
    let request_id = raw.headers().get("x-amzn-requestid").map(str::to_string);
    (code, message, request_id, Some(status))
}

/// Why a request was not sent, in a sentence.
fn not_sent(d: &aws_smithy_runtime_api::client::result::DispatchFailure) -> &'static str {
    if d.is_timeout() {
        "the connection to AWS timed out"
    } else if d.is_io() {
        "the connection to AWS failed (network, DNS or TLS)"
    } else if d.is_user() {
        "the request to AWS could not be sent (configuration; see the worker's log)"
    } else {
        "the request to AWS could not be sent (see the worker's log)"
    }
}

impl AwsFailure {
    /// Classifies an SDK error.
    pub fn from_sdk<E>(
        service: &'static str,
        operation: &'static str,
        err: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let (code, message, request_id, status) = match &err {
            SdkError::ServiceError(se) => answered(se.err(), se.raw()),
            SdkError::TimeoutError(_) => {
                ("Timeout".into(), "the call timed out".into(), None, None)
            }
            // The SDK's own text (Rust debug output of connector internals) goes to the log;
            // operations show a sentence.
            SdkError::DispatchFailure(d) => {
                tracing::warn!(service, operation, error = ?d, "AWS call not sent");
                ("DispatchFailure".into(), not_sent(d).into(), None, None)
            }
            SdkError::ResponseError(_) => (
                "ResponseError".into(),
                "the response could not be read".into(),
                None,
                None,
            ),
            other => {
                tracing::warn!(service, operation, error = ?other, "AWS request not built");
                (
                    "ConstructionFailure".into(),
                    "the request to AWS could not be built (see the worker's log)".into(),
                    None,
                    None,
                )
            }
        };
        let kind = classify(&code, status);
        Self {
            service,
            operation,
            kind,
            code,
            message,
            request_id,
        }
    }

    /// A call that got no answer within a bound zeroscale set itself.
    pub fn timeout(service: &'static str, operation: &'static str) -> Self {
        Self {
            service,
            operation,
            kind: FailureKind::Retryable,
            code: "Timeout".into(),
            message: "no answer in time".into(),
            request_id: None,
        }
    }
}

/// What an answer without an error code carried, for logs and messages.
fn body_excerpt(body: Option<&[u8]>) -> String {
    match body {
        None | Some([]) => "an empty body".into(),
        Some(b) => {
            let text = String::from_utf8_lossy(b);
            let text: String = text.chars().take(200).collect();
            format!("body {text:?}")
        }
    }
}

fn classify(code: &str, status: Option<u16>) -> FailureKind {
    match code {
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "ConcurrentUpdateException"
        | "InternalServiceException"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "Timeout"
        | "DispatchFailure"
        | "ResponseError" => FailureKind::Retryable,
        "ObjectNotFoundException"
        | "ResourceNotFound"
        | "ResourceNotFoundException"
        | "NoSuchResourceException" => FailureKind::NotFound,
        _ if status.is_some_and(|s| s >= 500) => FailureKind::Retryable,
        _ => FailureKind::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_aws_facts() {
        assert_eq!(
            classify("ThrottlingException", Some(400)),
            FailureKind::Retryable
        );
        assert_eq!(
            classify("ConcurrentUpdateException", Some(400)),
            FailureKind::Retryable
        );
        assert_eq!(
            classify("ObjectNotFoundException", Some(400)),
            FailureKind::NotFound
        );
        assert_eq!(
            classify("ValidationException", Some(400)),
            FailureKind::Permanent
        );
        assert_eq!(
            classify("AccessDeniedException", Some(403)),
            FailureKind::Permanent
        );
        assert_eq!(classify("Weird", Some(503)), FailureKind::Retryable);
    }
}

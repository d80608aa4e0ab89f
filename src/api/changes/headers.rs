//! The headers of a write: If-Match and Idempotency-Key, parsed and documented once.

use axum::http::HeaderMap;

use crate::error::ApiError;

/// The headers every write takes, described once for the OpenAPI document; `if_match`,
/// `idempotency_key` and the auth extractor read them.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // documents the headers; they are read from the HeaderMap
pub struct WriteHeaders {
    /// Makes retries safe: the same key and body replay the first answer.
    #[param(
        rename = "Idempotency-Key",
        nullable = false,
        pattern = "^[!-~]{1,255}[\\t ]*$"
    )]
    idempotency_key: Option<String>,
    /// Apply only if the target is at this version (its ETag).
    #[param(
        rename = "If-Match",
        nullable = false,
        pattern = "^(\\*|(W/)?\"[0-9]{1,9}\"|[0-9]{1,9})[\\t ]*$"
    )]
    if_match: Option<String>,
    /// The portal user this call is made for (audited).
    #[param(
        rename = "X-On-Behalf-Of",
        nullable = false,
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\x00-\\x1f\\x7f]+[\\t ]*$"
    )]
    x_on_behalf_of: Option<String>,
}

/// The Idempotency-Key header alone, for writes that are not versioned changes (`POST
/// /webhooks`).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // documents the header; it is read from the HeaderMap
pub struct IdempotencyHeader {
    /// Makes retries safe: the same key and body replay the first answer (422 when the key is
    /// reused with another body).
    #[param(
        rename = "Idempotency-Key",
        nullable = false,
        pattern = "^[!-~]{1,255}[\\t ]*$"
    )]
    idempotency_key: Option<String>,
}

/// `If-Match` as sent by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: the target must exist.
    Any,
    /// `"<version>"`: the target must be at exactly this version.
    Version(i32),
}

/// Parses `If-Match` (`*`, `"3"` or `W/"3"`).
pub fn if_match(headers: &HeaderMap) -> Result<Option<IfMatch>, ApiError> {
    let Some(v) = headers.get("if-match") else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .map_err(|_| ApiError::BadRequest("If-Match is not valid text".into()))?
        .trim();
    if s == "*" {
        return Ok(Some(IfMatch::Any));
    }
    // RFC 9110 entity tags are quoted: `"3"`, or the weak `W/"3"`. A bare `3` (the quotes
    // forgotten, or stripped by a client library) means the same.
    let tag = s.strip_prefix("W/").unwrap_or(s);
    let bare = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"'));
    Some(bare.unwrap_or(tag))
        // Versions are positive integers written in digits: "-1" or "+3" is no ETag we issued.
        .filter(|t| (1..=9).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse().ok())
        .map(|n| Some(IfMatch::Version(n)))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "If-Match must be an ETag this service issued, like \"3\" (got {s})"
            ))
        })
}

/// Reads `Idempotency-Key` (1-255 visible ASCII characters).
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .ok()
        .filter(|s| !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_graphic()));
    s.map(|s| Some(s.to_string())).ok_or_else(|| {
        ApiError::BadRequest("Idempotency-Key must be 1 to 255 visible ASCII characters".into())
    })
}

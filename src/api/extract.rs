//! Extractors whose rejections are `ApiError`, so bad input gets problem+json, never axum's
//! plain-text rejections.

use axum::{
    body::Bytes,
    extract::{
        rejection::{PathRejection, QueryRejection},
        FromRequest, FromRequestParts, Request,
    },
    http::{header, StatusCode},
};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `axum::Json`, but rejecting with `ApiError` (the body is read and parsed here, so the
/// problem names the offending field from serde's path, never from axum's rejection text):
/// malformed JSON is 400, a non-JSON content type is 415, a well-formed body of the wrong shape
/// (unknown field, wrong type) is 422, and a body over the size limit is 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = content_type_is_json(&req);
        let bytes = read_body(req, state).await?;
        if !is_json {
            return Err(unsupported_media_type());
        }
        parse_json(&bytes).map(ApiJson)
    }
}

/// Like [`ApiJson`], but an absent body (no bytes) or a JSON `null` yields `T::default()`.
/// This is what makes a bare `curl -X POST .../scale-to-zero` work with all defaults. A body
/// must be a JSON object sent as `Content-Type: application/json`: anything else (an array,
/// which serde would happily read into a struct field by field, a number, a string) is 422,
/// and a body with no content type is 415.
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionalJson<T>(pub T);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = content_type_is_json(&req);
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        if !is_json {
            return Err(unsupported_media_type());
        }
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
        if first != Some(b'{') {
            return match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(serde_json::Value::Null) => Ok(OptionalJson(T::default())),
                Ok(_) => Err(ApiError::invalid_field(
                    "body",
                    "must be a JSON object (or empty, or null, for all defaults)",
                )),
                Err(e) => Err(not_json(e)),
            };
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

/// `axum::extract::Query` rejecting with `ApiError` (400 problem+json).
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

/// `axum::extract::Path` rejecting with `ApiError` (400 problem+json: a segment that is not
/// UTF-8, for instance).
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

fn content_type_is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| is_json(&m))
}

fn not_json(e: serde_json::Error) -> ApiError {
    ApiError::BadRequest(format!("request body is not valid JSON: {e}"))
}

/// Parses a JSON body into `T`: 400 when it is not JSON, 422 naming the field (serde's path)
/// when it is JSON of the wrong shape.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut json: serde_json::Value = serde_json::from_slice(bytes).map_err(not_json)?;
    integral_numbers(&mut json);
    serde_path_to_error::deserialize(json).map_err(|e| {
        let path = e.path().to_string();
        ApiError::invalid_field(
            if path == "." { "body".into() } else { path },
            e.inner().to_string(),
        )
    })
}

/// Writes integral floats (`829.0`) as integers: JSON Schema, and so the OpenAPI document,
/// counts them as integers, and serde would refuse them for an integer field.
fn integral_numbers(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                *v = serde_json::Value::from(f as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        serde_json::Value::Object(map) => map.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

/// How long a request's body may take to arrive, set on each request by the middleware stack
/// (`--body-read-timeout`): a client that announces more bytes than it sends is cut off after
/// this, not after the whole request timeout.
#[derive(Debug, Clone, Copy)]
pub struct BodyReadTimeout(pub std::time::Duration);

/// The body, within the body read timeout, or the problem that stopped it.
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    let limit = req
        .extensions()
        .get::<BodyReadTimeout>()
        .map(|t| t.0)
        .unwrap_or(std::time::Duration::from_secs(10));
    match tokio::time::timeout(limit, Bytes::from_request(req, state)).await {
        Ok(read) => read.map_err(|r| body_rejection(r.status(), r.body_text())),
        Err(_) => Err(ApiError::BodyTimeout(limit.as_secs().max(1))),
    }
}

fn unsupported_media_type() -> ApiError {
    ApiError::UnsupportedMediaType(
        "request bodies must be JSON: send `Content-Type: application/json`".into(),
    )
}

fn body_rejection(status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::BadRequest(format!("could not read the request body: {text}"))
    }
}

/// `application/json` or any `application/*+json` type (the `mime` crate parses the header).
fn is_json(m: &mime::Mime) -> bool {
    m.type_() == mime::APPLICATION && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
}

/// A text filter from a query string: Postgres text cannot hold NUL, so a filter containing one
/// is refused (422) instead of failing in the database.
pub fn text_filter(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.contains('\0') => Err(ApiError::invalid_field(
            field,
            "must not contain NUL characters",
        )),
        other => Ok(other),
    }
}

/// A label selector from a query string (`team=search,cost_center=ml-42`) as the JSON object a
/// target's labels must contain; a malformed one is refused (422 on `label`).
pub fn label_selector(value: Option<String>) -> Result<Option<serde_json::Value>, ApiError> {
    value
        .map(|v| {
            crate::domain::labels::parse_selector(&v)
                .map(|l| serde_json::json!(l))
                .map_err(|why| ApiError::invalid_field("label", why))
        })
        .transpose()
}

/// The page size of a list query: 100 by default, refused outside 1-500.
pub fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(100);
    if (1..=500).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::invalid_field(
            "limit",
            "must be between 1 and 500",
        ))
    }
}

/// An opaque page cursor: base64url of `<scope>:<key>`, where `key` is the previous page's
/// last item (a name, an id, a version) and `scope` names the list that issued it, so a cursor
/// from another list is refused like any made-up one.
pub fn cursor(scope: &str, key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{scope}:{key}"))
}

/// Reads a cursor [`cursor`] issued for `scope` whose key passes `valid`; no cursor (or an
/// empty one) is the first page, anything else is refused (422).
pub fn parse_cursor<T: std::str::FromStr>(
    scope: &str,
    cursor: Option<String>,
    valid: impl Fn(&T) -> bool,
) -> Result<Option<T>, ApiError> {
    use base64::Engine;
    let Some(c) = cursor.filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|text| {
            let key = text.strip_prefix(scope)?.strip_prefix(':')?;
            key.parse::<T>().ok()
        })
        .filter(|key| valid(key))
        .map(Some)
        .ok_or_else(|| ApiError::invalid_field("cursor", "not a cursor this service issued"))
}

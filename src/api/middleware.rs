//! The HTTP middleware stack, outermost first: request id -> trace span -> request-id scope ->
//! panic catching -> timeout -> body limit. Order matters: the span must see the request id,
//! and the panic and timeout responses must carry it.

use std::{any::Any, time::Duration};

use axum::{
    body::Body,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{header::AUTHORIZATION, HeaderName, HeaderValue, Response},
    middleware::{self, Next},
    response::IntoResponse,
    Router,
};
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    sensitive_headers::SetSensitiveRequestHeadersLayer,
    trace::TraceLayer,
};
use tracing::{field::Empty, Span};

use crate::error::{ApiError, REQUEST_ID};

/// The request id header, accepted from callers and echoed back.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Settings the stack needs.
#[derive(Debug, Clone)]
pub struct StackSettings {
    /// Largest accepted body in bytes.
    pub body_limit: usize,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Origins CORS allows (empty: CORS off).
    pub cors_origins: Vec<String>,
    /// How long a request body may take to arrive.
    pub body_read_timeout: Duration,
}

/// CORS for the portal's origins: the headers a browser client needs to send and read.
/// Origins were checked at start-up (`config::parse_origin`); `*` alone allows any origin,
/// without credentials (the API authenticates with bearer tokens, never cookies).
fn cors(origins: &[String]) -> anyhow::Result<Option<tower_http::cors::CorsLayer>> {
    use axum::http::{header, Method};
    use tower_http::cors::AllowOrigin;
    if origins.is_empty() {
        return Ok(None);
    }
    let allow = if origins.iter().any(|o| o.trim() == "*") {
        anyhow::ensure!(
            origins.len() == 1,
            "--cors-origin '*' allows every origin and cannot be combined with named origins"
        );
        AllowOrigin::any()
    } else {
        let values = origins
            .iter()
            .map(|o| {
                crate::config::parse_origin(o)
                    .and_then(|o| HeaderValue::from_str(&o).map_err(|e| e.to_string()))
                    .map_err(|e| anyhow::anyhow!("--cors-origin: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        AllowOrigin::list(values)
    };
    Ok(Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("x-on-behalf-of"),
                X_REQUEST_ID.clone(),
            ])
            .expose_headers([
                header::ETAG,
                header::LOCATION,
                header::RETRY_AFTER,
                X_REQUEST_ID.clone(),
            ])
            .max_age(Duration::from_secs(600)),
    ))
}

/// Wraps a router in the full stack.
pub fn apply<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    settings: StackSettings,
) -> anyhow::Result<Router<S>> {
    let stack = ServiceBuilder::new()
        .layer(middleware::from_fn(drop_unusable_request_id))
        .layer(SetRequestIdLayer::new(
            X_REQUEST_ID.clone(),
            MakeRequestUuid,
        ))
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID.clone()))
        .layer(SetSensitiveRequestHeadersLayer::new([AUTHORIZATION]))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(make_span)
                .on_request(())
                .on_response(|res: &Response<Body>, latency: Duration, span: &Span| {
                    span.record("status", res.status().as_u16());
                    span.record("latency_ms", latency.as_secs_f64() * 1000.0);
                    tracing::info!("request finished");
                })
                .on_failure(()),
        )
        .layer(middleware::from_fn(scope_request_id))
        .layer(middleware::from_fn(problem_everywhere))
        .layer(middleware::from_fn(super::metrics::track))
        .layer(axum::Extension(super::extract::BodyReadTimeout(
            settings.body_read_timeout,
        )))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(
            settings.request_timeout,
            timeout,
        ))
        .layer(DefaultBodyLimit::max(settings.body_limit));
    let router = router.layer(stack);
    Ok(match cors(&settings.cors_origins)? {
        Some(layer) => router.layer(layer),
        None => router,
    })
}

/// Makes a UUID v4 request id when the caller sent none.
#[derive(Clone, Copy)]
struct MakeRequestUuid;

impl MakeRequestId for MakeRequestUuid {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = uuid::Uuid::new_v4().to_string();
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// A caller's request id is kept when it is short and plain; anything else (huge, odd bytes
/// that would pollute logs) is replaced by one of ours.
async fn drop_unusable_request_id(mut req: Request, next: Next) -> axum::response::Response {
    let usable = req.headers().get(&X_REQUEST_ID).is_some_and(|v| {
        let b = v.as_bytes();
        !b.is_empty()
            && b.len() <= 128
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.:/+=".contains(c))
    });
    if !usable {
        req.headers_mut().remove(&X_REQUEST_ID);
    }
    next.run(req).await
}

fn request_id_of<B>(req: &axum::http::Request<B>) -> String {
    req.headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn make_span<B>(req: &axum::http::Request<B>) -> Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    tracing::info_span!(
        "http",
        method = %req.method(),
        route = %route,
        request_id = %request_id_of(req),
        status = Empty,
        latency_ms = Empty,
    )
}

/// Every error is problem+json, whichever layer made it: a rejection axum or tower-http answers
/// in plain text (a path segment that is not UTF-8, a body over the limit read by a layer) is
/// rewritten into the problem document of its status, keeping its other headers (Allow,
/// Retry-After). Errors hyper answers before any of this runs are rewritten by
/// `api::wire`.
async fn problem_everywhere(req: Request, next: Next) -> axum::response::Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    // Problem documents pass, and so do the portal's HTML pages (its error pages are for people).
    let is_problem = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/problem+json")
                || v.as_bytes().starts_with(b"text/html")
        });
    if is_problem {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let problem = crate::error::generic_problem(status);
    let fresh = crate::error::problem_response(status, &problem);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    axum::response::Response::from_parts(parts, fresh.into_body())
}

/// Makes the request id available to `ApiError` for the rest of the request.
async fn scope_request_id(req: Request, next: Next) -> axum::response::Response {
    let id = request_id_of(&req);
    REQUEST_ID.scope(id, next.run(req)).await
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> axum::response::Response {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    ApiError::Internal(anyhow::anyhow!("handler panicked: {message}")).into_response()
}

async fn timeout(
    State(limit): State<Duration>,
    req: Request,
    next: Next,
) -> axum::response::Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout_s = limit.as_secs_f64(), "request timed out");
            ApiError::Timeout(limit.as_secs().max(1)).into_response()
        }
    }
}

//! Prometheus metrics: the `metrics` facade records everywhere (HTTP, jobs, AWS calls, drift,
//! targets by phase); `GET /metrics` renders them. Labels stay low-cardinality: matched routes,
//! never raw paths or target names.

use std::{sync::OnceLock, time::Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::AppState;

/// Latency buckets (seconds) for every `*_seconds` histogram.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide recorder, installed on first use (one per process, as `metrics` requires).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
            .expect("static buckets are valid")
            .install_recorder()
            .unwrap_or_else(|_| {
                // Another recorder is installed (embedding code): render an empty exporter.
                PrometheusBuilder::new().build_recorder().handle()
            })
    })
}

/// Counts and times every request by matched route, method and status.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("zeroscale_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status).increment(1);
    metrics::histogram!("zeroscale_http_request_duration_seconds", "route" => route, "method" => method).record(started.elapsed().as_secs_f64());
    response
}

/// Prometheus text exposition of every metric, rendered from memory: a scrape never touches
/// the database (the job workers refresh the queue and target gauges on their maintenance
/// tick). With `--metrics-token`, the scraper must send it as a bearer token; without one the
/// route is open, which docs/operations.md documents and the start-up log says.
#[utoipa::path(get, path = "/metrics", tag = "health", security(()),
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 401, description = "A metrics token is configured and was not sent", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<impl IntoResponse, crate::error::ApiError> {
    if let Some(expected) = &state.metrics_token {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .unwrap_or_default();
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            sent.as_bytes(),
            expected.as_bytes(),
        )) {
            return Err(crate::error::ApiError::Unauthorized(
                "this service's metrics need its metrics token: `Authorization: Bearer <--metrics-token>`".into(),
            ));
        }
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle().render(),
    ))
}

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

/// Targets by kind and phase, read at scrape time.
async fn target_gauges(state: &AppState) {
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT kind::text, phase::text, count(*) FROM targets GROUP BY 1, 2")
            .fetch_all(&state.pool)
            .await
            .unwrap_or_default();
    for phase in ["pending", "applying", "ready", "failed", "disabled"] {
        for kind in ["component", "endpoint_variant"] {
            let n = rows
                .iter()
                .find(|(k, p, _)| k == kind && p == phase)
                .map(|r| r.2)
                .unwrap_or(0);
            metrics::gauge!("zeroscale_targets", "kind" => kind, "phase" => phase).set(n as f64);
        }
    }
    let depth: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state IN ('available', 'retryable')")
            .fetch_one(&state.pool)
            .await
            .unwrap_or(0);
    metrics::gauge!("zeroscale_job_queue_depth").set(depth as f64);
}

/// Prometheus text exposition of every metric.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    target_gauges(&state).await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle().render(),
    )
}

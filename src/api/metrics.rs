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
use crate::store::jobs::JobState;

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
#[utoipa::path(get, path = "/metrics", tag = "health",
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

/// Sets the job, queue and target gauges (called by the workers' maintenance, never by a
/// scrape).
pub async fn refresh_gauges(pool: &sqlx::PgPool) -> sqlx::Result<()> {
    // Every (kind, state) ever reported: one that has no jobs now must read 0, not its last
    // count.
    static SEEN: std::sync::Mutex<std::collections::BTreeSet<(String, String)>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let counts = crate::store::jobs::counts(pool).await?;
    let mut depth = 0;
    let mut now = std::collections::BTreeMap::new();
    for (kind, state, n) in counts {
        if matches!(state, JobState::Available | JobState::Retryable) {
            depth += n;
        }
        now.insert((kind, format!("{state:?}").to_lowercase()), n);
    }
    {
        let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
        seen.extend(now.keys().cloned());
        for key in seen.iter() {
            let n = now.get(key).copied().unwrap_or(0);
            metrics::gauge!("zeroscale_jobs", "kind" => key.0.clone(), "state" => key.1.clone())
                .set(n as f64);
        }
    }
    metrics::gauge!("zeroscale_job_queue_depth").set(depth as f64);
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT kind::text, phase::text, count(*) FROM targets GROUP BY 1, 2")
            .fetch_all(pool)
            .await?;
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
    Ok(())
}

/// Refreshes the gauges every `every` in a process that runs no workers (`serve --no-worker`),
/// so its `/metrics` still has them; off the scrape path, so scrapes never reach the database.
pub fn refresh_periodically(pool: sqlx::PgPool, every: std::time::Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = refresh_gauges(&pool).await {
                tracing::debug!(error = %e, "refreshing the queue and target gauges failed");
            }
        }
    });
}

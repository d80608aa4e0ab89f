//! Liveness and readiness probes.

use std::time::Duration;

use axum::{extract::State, Json};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{api::AppState, error::ApiError};

/// How long readiness waits for the database before declaring it down.
const DB_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    /// Always `alive`.
    #[schema(example = "alive")]
    pub status: &'static str,
}

/// Readiness answer: each dependency and its state.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` when every dependency is up.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// State of the database connection.
    #[schema(example = "up")]
    pub database: &'static str,
}

/// Process liveness: answers as long as the process serves HTTP. Does no I/O.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "The process is alive", body = Liveness)))]
pub async fn healthz() -> Json<Liveness> {
    Json(Liveness { status: "alive" })
}

/// Readiness: 200 when the database answers, 503 naming what is down otherwise.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "A dependency is down", body = crate::error::Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    let check = crate::store::ping(&state.pool);
    match tokio::time::timeout(DB_CHECK_TIMEOUT, check).await {
        Ok(Ok(_)) => Ok(Json(Readiness {
            status: "ready",
            database: "up",
        })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            Err(ApiError::Unavailable(
                "database is down: the Postgres check failed".into(),
            ))
        }
        Err(_) => {
            tracing::warn!("readiness: database check timed out");
            Err(ApiError::Unavailable(format!(
                "database is down: no answer within {} s",
                DB_CHECK_TIMEOUT.as_secs()
            )))
        }
    }
}

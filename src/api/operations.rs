//! `/operations/{id}`: the job behind a change.

use axum::{
    extract::{Path, State},
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{auth::Reader, problems, AppState};
use crate::{
    error::{ApiError, Problem},
    store::jobs::{self, JobState},
};

/// One failed attempt.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttemptError {
    /// Which attempt.
    pub attempt: i32,
    /// When it failed.
    pub at: DateTime<Utc>,
    /// What went wrong and what to change.
    pub error: String,
    /// A stable machine-readable code when there is one: `database_unavailable`,
    /// `database_busy`, `lease_expired`, or AWS's error code (for example
    /// `ValidationException`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub code: Option<String>,
    /// True when retrying cannot help.
    pub permanent: bool,
}

/// A change's job: state, attempts, errors and the steps done.
#[derive(Debug, Serialize, ToSchema)]
pub struct Operation {
    /// Operation id.
    pub id: i64,
    /// Job kind.
    #[schema(example = "reconcile")]
    pub kind: String,
    /// What it acts on (the AWS resource id).
    #[schema(example = "inference-component/demo-component")]
    pub target: Option<String>,
    /// Job arguments (kind, name, desired version).
    #[schema(value_type = Object)]
    pub args: Value,
    /// available, running, retryable, completed, discarded or cancelled.
    #[schema(value_type = String, example = "completed")]
    pub state: JobState,
    /// Attempts made.
    pub attempt: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Each failed attempt.
    pub errors: Vec<AttemptError>,
    /// Steps done, AWS request ids and observations, as the job reported them.
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub scheduled_at: DateTime<Utc>,
    pub attempted_at: Option<DateTime<Utc>>,
    pub finalized_at: Option<DateTime<Utc>>,
}

/// Read an operation: state, attempts, errors and the steps done.
#[utoipa::path(get, path = "/operations/{id}", operation_id = "get_operation", tag = "operations",
    params(("id" = i64, Path, description = "Operation id (from a write's Location)")),
    responses(
        (status = 200, description = "The operation", body = Operation),
        (status = 400, description = "Not an operation id", body = Problem, content_type = "application/problem+json"),
        problems::ReadAuth,
        (status = 404, description = "No such operation (or expired by retention)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    Reader(_caller): Reader,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
) -> Result<Json<Operation>, ApiError> {
    let Path(id) = id.map_err(|_| ApiError::BadRequest("operation ids are integers".into()))?;
    let job = jobs::get(&state.pool, id).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "operation {id} does not exist (finished operations expire after the retention period)"
        ))
    })?;
    Ok(Json(Operation {
        id: job.id,
        kind: job.kind,
        target: job.target,
        args: job.args,
        state: job.state,
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        errors: serde_json::from_value(job.errors).unwrap_or_default(),
        output: job.output,
        created_at: job.created_at,
        scheduled_at: job.scheduled_at,
        attempted_at: job.attempted_at,
        finalized_at: job.finalized_at,
    }))
}

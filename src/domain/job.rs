//! The job engine's vocabulary that the API shows: a job's state.

/// A job's lifecycle state (River's state machine).
/// Stored as the `job_state` enum (migrations/..._jobs.sql).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type, serde::Serialize, utoipa::ToSchema)]
#[sqlx(type_name = "job_state", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Queued, can run now (or at `scheduled_at`).
    Available,
    /// Claimed by a worker that holds its lease.
    Running,
    /// Failed an attempt; waits for its backoff before running again.
    Retryable,
    /// Finished successfully.
    Completed,
    /// Failed for good: a permanent error, or out of attempts.
    Discarded,
    /// Cancelled, or superseded by a newer job for the same target.
    Cancelled,
}

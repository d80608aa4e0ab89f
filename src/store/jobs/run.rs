//! SQL for one run of a job: holding it, renewing its lease, recording progress, and ending
//! it (completed, failed, released, finished with what the run wrote).

use std::time::Duration;

use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use super::{lock_target, Fence, JobRow, JobState, NOTIFY_CHANNEL};

/// Locks the job row for the rest of the caller's transaction if this run still holds it, so
/// the outcome it writes commits before any rescue can take the job. False: the run is stale
/// and must write nothing.
pub async fn hold(conn: &mut PgConnection, fence: &Fence) -> sqlx::Result<bool> {
    let held = sqlx::query_scalar!(
        "SELECT id FROM jobs WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND state = 'running' FOR SHARE",
        fence.id,
        &fence.owner,
        fence.attempt,
    )
    .fetch_optional(conn)
    .await?;
    Ok(held.is_some())
}

/// Extends the lease of a run that still holds its job. False when the lease was lost.
pub async fn heartbeat(pool: &PgPool, fence: &Fence, lease: Duration) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE jobs SET lease_until = now() + make_interval(secs => $4) \
         WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND state = 'running'",
        fence.id,
        &fence.owner,
        fence.attempt,
        lease.as_secs_f64(),
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records progress (steps done so far) on a running job; false (nothing written) when the run
/// no longer holds it.
pub async fn set_output(pool: &PgPool, fence: &Fence, output: &Value) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE jobs SET output = $4 \
         WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND state = 'running'",
        fence.id,
        &fence.owner,
        fence.attempt,
        output,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Completes a batch of runs of this owner in one statement; returns the ids completed (an id
/// missing from the answer is a run whose lease was taken away meanwhile: nothing written).
pub async fn complete_many(
    pool: &PgPool,
    owner: &str,
    ids: &[i64],
    attempts: &[i32],
    outputs: &[Option<Value>],
) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar!(
        "UPDATE jobs SET state = 'completed', finalized_at = now(), lease_owner = NULL, \
           lease_until = NULL, output = COALESCE(x.output, jobs.output) \
         FROM unnest($2::bigint[], $3::int[], $4::jsonb[]) AS x(id, attempt, output) \
         WHERE jobs.id = x.id AND jobs.attempt = x.attempt AND jobs.lease_owner = $1 \
           AND jobs.state = 'running' \
         RETURNING jobs.id",
        owner,
        ids,
        attempts,
        outputs as &[Option<Value>],
    )
    .fetch_all(pool)
    .await
}

/// How a failed attempt ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Will run again after the backoff.
    Retryable,
    /// Out of attempts or permanent: kept with its errors.
    Discarded,
    /// A newer job for the target is queued; this one yields to it.
    Superseded,
    /// The lease was lost (rescued elsewhere); nothing recorded.
    LeaseLost,
}

/// Records a failed attempt: retryable with `retry_in` backoff, or discarded when `permanent`
/// or out of attempts; superseded when a newer job for the target is already queued.
pub async fn fail(
    pool: &PgPool,
    job: &JobRow,
    owner: &str,
    error: &str,
    code: Option<&str>,
    permanent: bool,
    retry_in: Duration,
) -> sqlx::Result<FailOutcome> {
    record_failure(pool, job, owner, (error, code), permanent, retry_in, false).await
}

pub(super) async fn record_failure(
    pool: &PgPool,
    job: &JobRow,
    owner: &str,
    (error, code): (&str, Option<&str>),
    permanent: bool,
    retry_in: Duration,
    only_if_expired: bool,
) -> sqlx::Result<FailOutcome> {
    let mut tx = pool.begin().await?;
    if let Some(target) = &job.target {
        lock_target(&mut tx, target).await?;
    }
    let next = sqlx::query_scalar!(
        r#"WITH decided AS (
           SELECT j.id, CASE
             WHEN $4 OR j.attempt >= j.max_attempts THEN 'discarded'::job_state
             WHEN j.target IS NOT NULL AND EXISTS (SELECT 1 FROM jobs q WHERE q.target = j.target
                  AND q.state IN ('available', 'retryable')) THEN 'cancelled'::job_state
             ELSE 'retryable'::job_state END AS next
           FROM jobs j
           WHERE j.id = $1 AND j.lease_owner = $2 AND j.attempt = $7 AND j.state = 'running'
             AND (NOT $6 OR j.lease_until < now())
           FOR UPDATE)
         UPDATE jobs j SET state = d.next,
           errors = j.errors || jsonb_build_array(jsonb_build_object(
             'attempt', j.attempt, 'at', now(), 'error', $3::text, 'permanent', $4,
             'code', $8::text)),
           scheduled_at = now() + make_interval(secs => $5),
           finalized_at = CASE WHEN d.next = 'retryable' THEN NULL ELSE now() END,
           lease_owner = NULL, lease_until = NULL
         FROM decided d WHERE j.id = d.id
         RETURNING j.state AS "state: JobState""#,
        job.id,
        owner,
        error,
        permanent,
        retry_in.as_secs_f64(),
        only_if_expired,
        job.attempt,
        code,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let outcome = match next {
        None => FailOutcome::LeaseLost,
        Some(JobState::Retryable) => FailOutcome::Retryable,
        Some(JobState::Cancelled) => FailOutcome::Superseded,
        Some(_) => FailOutcome::Discarded,
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Hands a running job back to the queue without counting the attempt (graceful shutdown:
/// the interruption is ours, not the job's). Superseded if a newer job is queued.
pub async fn release(pool: &PgPool, job: &JobRow, owner: &str) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    if let Some(target) = &job.target {
        lock_target(&mut tx, target).await?;
    }
    let done = sqlx::query!(
        "UPDATE jobs j SET \
           state = CASE WHEN j.target IS NOT NULL AND EXISTS (SELECT 1 FROM jobs q \
                     WHERE q.target = j.target AND q.state IN ('available', 'retryable')) \
                   THEN 'cancelled'::job_state ELSE 'available'::job_state END, \
           attempt = GREATEST(j.attempt - 1, 0), scheduled_at = now(), \
           finalized_at = CASE WHEN j.target IS NOT NULL AND EXISTS (SELECT 1 FROM jobs q \
                     WHERE q.target = j.target AND q.state IN ('available', 'retryable')) \
                   THEN now() END, \
           lease_owner = NULL, lease_until = NULL \
         WHERE j.id = $1 AND j.lease_owner = $2 AND j.attempt = $3 AND j.state = 'running'",
        job.id,
        owner,
        job.attempt,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("SELECT pg_notify($1, 'released')", NOTIFY_CHANNEL)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// Finishes a run inside the caller's transaction, so the job's end commits with what the run
/// wrote about it (a target's status, an audit event) or not at all: a crash in between can
/// neither lose the outcome nor make a re-run record it twice. `error`: None completes the
/// job; Some discards it with that error (and its code). False (nothing written) when the run
/// no longer holds the job.
pub async fn finish_in(
    conn: &mut PgConnection,
    fence: &Fence,
    output: Option<&Value>,
    error: Option<(&str, Option<&str>)>,
) -> sqlx::Result<bool> {
    let (message, code) = error.unzip();
    let done = sqlx::query!(
        "UPDATE jobs SET \
           state = CASE WHEN $5::text IS NULL THEN 'completed'::job_state ELSE 'discarded'::job_state END, \
           finalized_at = now(), lease_owner = NULL, lease_until = NULL, \
           output = COALESCE($4, output), \
           errors = CASE WHEN $5::text IS NULL THEN errors ELSE errors || jsonb_build_array( \
             jsonb_build_object('attempt', attempt, 'at', now(), 'error', $5::text, \
               'permanent', true, 'code', $6::text)) END \
         WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND state = 'running'",
        fence.id,
        &fence.owner,
        fence.attempt,
        output,
        message,
        code.flatten(),
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

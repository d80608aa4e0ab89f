//! SQL for the `jobs` table. Every transition into a queued state for a target first takes a
//! transaction-scoped advisory lock on that target, so "one queued job per target" holds
//! without unique-index races between enqueue, retry and rescue.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

/// The NOTIFY channel workers listen on.
pub const NOTIFY_CHANNEL: &str = "zeroscale_jobs";

/// A job's lifecycle state (River's state machine).
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

/// A row of `jobs`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub target: Option<String>,
    pub args: Value,
    pub state: JobState,
    pub attempt: i32,
    pub max_attempts: i32,
    pub errors: Value,
    pub output: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub scheduled_at: DateTime<Utc>,
    pub attempted_at: Option<DateTime<Utc>>,
    pub finalized_at: Option<DateTime<Utc>>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
}

impl JobRow {
    /// The fence of this claim: the job, the worker holding it and the attempt.
    pub fn fence(&self) -> Fence {
        Fence {
            id: self.id,
            owner: self.lease_owner.clone().unwrap_or_default(),
            attempt: self.attempt,
        }
    }
}

/// Identifies one run of a job: every write a run makes about its job (progress, outcome,
/// the target's status, audit events) is conditional on the job still being `running` under
/// this owner and attempt. A run whose lease was lost (rescued, then claimed again, even by the
/// same worker) writes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub id: i64,
    pub owner: String,
    pub attempt: i32,
}

/// The SQL condition "this run still holds its job", for `$1` id, `$2` owner, `$3` attempt.
const HELD: &str = "id = $1 AND lease_owner = $2 AND attempt = $3 AND state = 'running'";

/// Locks the job row for the rest of the caller's transaction if this run still holds it, so
/// the outcome it writes commits before any rescue can take the job. False: the run is stale
/// and must write nothing.
pub async fn hold(conn: &mut PgConnection, fence: &Fence) -> sqlx::Result<bool> {
    let held: Option<i64> =
        sqlx::query_scalar(&format!("SELECT id FROM jobs WHERE {HELD} FOR SHARE"))
            .bind(fence.id)
            .bind(&fence.owner)
            .bind(fence.attempt)
            .fetch_optional(conn)
            .await?;
    Ok(held.is_some())
}

const COLUMNS: &str = "id, kind, target, args, state, attempt, max_attempts, errors, output, \
    created_at, scheduled_at, attempted_at, finalized_at, lease_owner, lease_until";

/// What to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub target: Option<String>,
    pub args: Value,
    pub max_attempts: i32,
    pub scheduled_at: Option<DateTime<Utc>>,
}

/// Serialises work on one job key with every enqueuer (the same lock as zs_enqueue_job).
async fn lock_target(conn: &mut PgConnection, target: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('zeroscale.job.' || $1, 0))")
        .bind(target)
        .execute(conn)
        .await?;
    Ok(())
}

/// Enqueues inside the caller's transaction, so the job commits together with the caller's
/// other writes or not at all. It does not NOTIFY: Postgres serialises the commits of every
/// notifying transaction (a global lock held through the commit flush), which would undo group
/// commit for the API's writes. Callers wake workers after commit with `notify_workers` (or the
/// coalescing `jobs::Notifier`); workers also poll. A queued job for the same target is
/// cancelled as superseded by this one.
pub async fn enqueue(tx: &mut PgConnection, job: &NewJob) -> sqlx::Result<JobRow> {
    // One round trip: the lock, the supersede and the insert are in zs_enqueue_job
    // (migrations/..._record_change.sql), which the API's change function uses too.
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM zs_enqueue_job($1, $2, $3, $4, $5)"
    ))
    .bind(&job.kind)
    .bind(&job.target)
    .bind(&job.args)
    .bind(job.max_attempts)
    .bind(job.scheduled_at)
    .fetch_one(tx)
    .await
}

/// Wakes every listening worker (in its own tiny transaction, outside the caller's).
pub async fn notify_workers(pool: &PgPool) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify($1, 'jobs')")
        .bind(NOTIFY_CHANNEL)
        .execute(pool)
        .await?;
    Ok(())
}

/// Claims up to `limit` due jobs for `owner` in one short transaction (`FOR UPDATE SKIP
/// LOCKED`), skipping targets that already have a running job. Due jobs go in the order they
/// were enqueued (`id`), so a job that was rescued, released or retried keeps its place in the
/// queue instead of going behind everything enqueued since.
pub async fn claim(
    pool: &PgPool,
    owner: &str,
    limit: i64,
    lease: Duration,
) -> sqlx::Result<Vec<JobRow>> {
    let result = sqlx::query_as(&format!(
        "WITH next AS ( \
           SELECT id FROM jobs j \
           WHERE state IN ('available', 'retryable') AND scheduled_at <= now() \
             AND (target IS NULL OR NOT EXISTS ( \
                   SELECT 1 FROM jobs r WHERE r.target = j.target AND r.state = 'running')) \
           ORDER BY id \
           LIMIT $2 \
           FOR UPDATE SKIP LOCKED) \
         UPDATE jobs SET state = 'running', attempt = attempt + 1, attempted_at = now(), \
           lease_owner = $1, lease_until = now() + make_interval(secs => $3) \
         FROM next WHERE jobs.id = next.id \
         RETURNING {}",
        COLUMNS
            .split(", ")
            .map(|c| format!("jobs.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .bind(owner)
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await;
    match result {
        // Two workers raced for the same target; the index kept the invariant. Try later.
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("jobs_one_running_per_target") => {
            Ok(Vec::new())
        }
        other => other,
    }
}

/// Extends the lease of a run that still holds its job. False when the lease was lost.
pub async fn heartbeat(pool: &PgPool, fence: &Fence, lease: Duration) -> sqlx::Result<bool> {
    let done = sqlx::query(&format!(
        "UPDATE jobs SET lease_until = now() + make_interval(secs => $4) WHERE {HELD}"
    ))
    .bind(fence.id)
    .bind(&fence.owner)
    .bind(fence.attempt)
    .bind(lease.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records progress (steps done so far) on a running job; false (nothing written) when the run
/// no longer holds it.
pub async fn set_output(pool: &PgPool, fence: &Fence, output: &Value) -> sqlx::Result<bool> {
    let done = sqlx::query(&format!("UPDATE jobs SET output = $4 WHERE {HELD}"))
        .bind(fence.id)
        .bind(&fence.owner)
        .bind(fence.attempt)
        .bind(output)
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
    sqlx::query_scalar(
        "UPDATE jobs SET state = 'completed', finalized_at = now(), lease_owner = NULL, \
           lease_until = NULL, output = COALESCE(x.output, jobs.output) \
         FROM unnest($2::bigint[], $3::int[], $4::jsonb[]) AS x(id, attempt, output) \
         WHERE jobs.id = x.id AND jobs.attempt = x.attempt AND jobs.lease_owner = $1 \
           AND jobs.state = 'running' \
         RETURNING jobs.id",
    )
    .bind(owner)
    .bind(ids)
    .bind(attempts)
    .bind(outputs)
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

async fn record_failure(
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
    let row: Option<(JobState,)> = sqlx::query_as(
        "WITH decided AS ( \
           SELECT j.id, CASE \
             WHEN $4 OR j.attempt >= j.max_attempts THEN 'discarded'::job_state \
             WHEN j.target IS NOT NULL AND EXISTS (SELECT 1 FROM jobs q WHERE q.target = j.target \
                  AND q.state IN ('available', 'retryable')) THEN 'cancelled'::job_state \
             ELSE 'retryable'::job_state END AS next \
           FROM jobs j \
           WHERE j.id = $1 AND j.lease_owner = $2 AND j.attempt = $7 AND j.state = 'running' \
             AND (NOT $6 OR j.lease_until < now()) \
           FOR UPDATE) \
         UPDATE jobs j SET state = d.next, \
           errors = j.errors || jsonb_build_array(jsonb_build_object( \
             'attempt', j.attempt, 'at', now(), 'error', $3::text, 'permanent', $4, \
             'code', $8::text)), \
           scheduled_at = now() + make_interval(secs => $5), \
           finalized_at = CASE WHEN d.next = 'retryable' THEN NULL ELSE now() END, \
           lease_owner = NULL, lease_until = NULL \
         FROM decided d WHERE j.id = d.id \
         RETURNING j.state",
    )
    .bind(job.id)
    .bind(owner)
    .bind(error)
    .bind(permanent)
    .bind(retry_in.as_secs_f64())
    .bind(only_if_expired)
    .bind(job.attempt)
    .bind(code)
    .fetch_optional(&mut *tx)
    .await?;
    let outcome = match row {
        None => FailOutcome::LeaseLost,
        Some((JobState::Retryable,)) => FailOutcome::Retryable,
        Some((JobState::Cancelled,)) => FailOutcome::Superseded,
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
    let done = sqlx::query(
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
    )
    .bind(job.id)
    .bind(owner)
    .bind(job.attempt)
    .execute(&mut *tx)
    .await?;
    sqlx::query("SELECT pg_notify($1, 'released')")
        .bind(NOTIFY_CHANNEL)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// What a rescue pass did.
#[derive(Debug, Default)]
pub struct Rescue {
    /// Jobs taken from a dead run.
    pub rescued: u64,
    /// Of those, the ones that were on their last attempt, now discarded.
    pub discarded: Vec<JobRow>,
}

/// Rescues running jobs whose lease expired (a worker crashed, was killed, or lost the
/// network): the attempt counts; they become retryable after `backoff(attempt)` (as River
/// does: a job that kills its worker every time must not spin), discarded if out of attempts,
/// or cancelled if a newer job for their target is queued. They keep their place in the queue
/// (`claim` orders by id). Returns how many were rescued.
pub async fn rescue_expired(
    pool: &PgPool,
    backoff: impl Fn(i32) -> Duration,
) -> sqlx::Result<Rescue> {
    let expired: Vec<JobRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE state = 'running' AND lease_until < now() ORDER BY id LIMIT 1000"
    ))
    .fetch_all(pool)
    .await?;
    let mut rescued = 0;
    let mut discarded = Vec::new();
    let mut failed = None;
    for job in expired {
        let owner = job.lease_owner.clone().unwrap_or_default();
        let outcome = record_failure(
            pool,
            &job,
            &owner,
            (
                "lease expired: the worker running this job stopped heartbeating (crash, kill or network loss)",
                Some("lease_expired"),
            ),
            false,
            backoff(job.attempt),
            true,
        )
        .await;
        match outcome {
            Ok(FailOutcome::LeaseLost) => {}
            Ok(FailOutcome::Discarded) => {
                rescued += 1;
                discarded.push(job);
            }
            Ok(_) => rescued += 1,
            // One job's failure (a lock timeout on its target) must not hold up the others.
            Err(e) => failed = Some(e),
        }
    }
    match failed {
        Some(e) if rescued == 0 => Err(e),
        _ => Ok(Rescue { rescued, discarded }),
    }
}

/// Cancels a queued job. Running jobs are not interrupted (their handler is idempotent and
/// short); returns false for them and for finished jobs.
pub async fn cancel(pool: &PgPool, id: i64) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'cancelled', finalized_at = now() \
         WHERE id = $1 AND state IN ('available', 'retryable')",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes finished jobs older than `age`, in batches. Returns how many.
pub async fn delete_finished_before(pool: &PgPool, age: Duration) -> sqlx::Result<u64> {
    super::delete_in_batches(
        pool,
        "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs \
           WHERE state IN ('completed', 'discarded', 'cancelled') \
             AND finalized_at < now() - make_interval(secs => $1) \
           LIMIT $2)",
        age,
    )
    .await
}

/// One job by id.
pub async fn get(pool: &PgPool, id: i64) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Job counts by kind and state, for metrics.
pub async fn counts(pool: &PgPool) -> sqlx::Result<Vec<(String, JobState, i64)>> {
    sqlx::query_as(
        "SELECT kind, state, count(*) FROM jobs GROUP BY kind, state ORDER BY kind, state",
    )
    .fetch_all(pool)
    .await
}

/// The queued job a manual reconcile of `target` joins: a user's change waiting to run (or an
/// earlier manual reconcile), made due now if it was waiting for a retry. A queued drift check
/// is not joined (the manual reconcile supersedes it). None: nothing to join.
pub async fn join_queued(
    conn: &mut PgConnection,
    kind: &str,
    target: &str,
) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as(&format!(
        "UPDATE jobs SET scheduled_at = LEAST(scheduled_at, now()) \
         WHERE target = $1 AND kind = $2 AND state IN ('available', 'retryable') \
           AND COALESCE(args->>'reason', 'change') <> 'drift' \
         RETURNING {COLUMNS}"
    ))
    .bind(target)
    .bind(kind)
    .fetch_optional(conn)
    .await
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
    let done = sqlx::query(&format!(
        "UPDATE jobs SET \
           state = CASE WHEN $5::text IS NULL THEN 'completed'::job_state ELSE 'discarded'::job_state END, \
           finalized_at = now(), lease_owner = NULL, lease_until = NULL, \
           output = COALESCE($4, output), \
           errors = CASE WHEN $5::text IS NULL THEN errors ELSE errors || jsonb_build_array( \
             jsonb_build_object('attempt', attempt, 'at', now(), 'error', $5::text, \
               'permanent', true, 'code', $6::text)) END \
         WHERE {HELD}"
    ))
    .bind(fence.id)
    .bind(&fence.owner)
    .bind(fence.attempt)
    .bind(output)
    .bind(message)
    .bind(code.flatten())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

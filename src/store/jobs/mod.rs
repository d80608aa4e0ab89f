//! SQL for the `jobs` table. Every transition into a queued state for a target first takes a
//! transaction-scoped advisory lock on that target, so "one queued job per target" holds
//! without unique-index races between enqueue, retry and rescue.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

mod maintenance;
mod run;

pub use maintenance::{delete_finished_before, rescue_expired, Rescue};
pub use run::{complete_many, fail, finish_in, heartbeat, hold, release, set_output, FailOutcome};

pub use crate::domain::JobState;

/// The NOTIFY channel workers listen on.
pub const NOTIFY_CHANNEL: &str = "zeroscale_jobs";

/// A row of `jobs`.
#[derive(Debug, Clone)]
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
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('zeroscale.job.' || $1, 0))",
        target,
    )
    .fetch_one(conn)
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
    // The function returns a `jobs` row, whose columns sqlx cannot know to be non-null.
    sqlx::query_as!(
        JobRow,
        r#"SELECT id AS "id!", kind AS "kind!", target, args AS "args!", state AS "state!: JobState",
            attempt AS "attempt!", max_attempts AS "max_attempts!", errors AS "errors!", output,
            created_at AS "created_at!", scheduled_at AS "scheduled_at!", attempted_at,
            finalized_at, lease_owner, lease_until
        FROM zs_enqueue_job($1, $2, $3, $4, $5)"#,
        &job.kind,
        job.target.as_deref(),
        &job.args,
        job.max_attempts,
        job.scheduled_at,
    )
    .fetch_one(tx)
    .await
}

/// Wakes every listening worker (in its own tiny transaction, outside the caller's).
pub async fn notify_workers(pool: &PgPool) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_notify($1, 'jobs')", NOTIFY_CHANNEL)
        .fetch_one(pool)
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
    let result = sqlx::query_as!(
        JobRow,
        r#"WITH next AS (
            SELECT id FROM jobs j
            WHERE state IN ('available', 'retryable') AND scheduled_at <= now()
              AND (target IS NULL OR NOT EXISTS (
                    SELECT 1 FROM jobs r WHERE r.target = j.target AND r.state = 'running'))
            ORDER BY id
            LIMIT $2
            FOR UPDATE SKIP LOCKED)
        UPDATE jobs SET state = 'running', attempt = attempt + 1, attempted_at = now(),
            lease_owner = $1, lease_until = now() + make_interval(secs => $3)
        FROM next WHERE jobs.id = next.id
        RETURNING jobs.id, jobs.kind, jobs.target, jobs.args, jobs.state AS "state: JobState",
            jobs.attempt, jobs.max_attempts, jobs.errors, jobs.output, jobs.created_at,
            jobs.scheduled_at, jobs.attempted_at, jobs.finalized_at, jobs.lease_owner,
            jobs.lease_until"#,
        owner,
        limit,
        lease.as_secs_f64(),
    )
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

/// Cancels a queued job. Running jobs are not interrupted (their handler is idempotent and
/// short); returns false for them and for finished jobs.
pub async fn cancel(pool: &PgPool, id: i64) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE jobs SET state = 'cancelled', finalized_at = now() \
         WHERE id = $1 AND state IN ('available', 'retryable')",
        id,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One job by id.
pub async fn get(pool: &PgPool, id: i64) -> sqlx::Result<Option<JobRow>> {
    Ok(select(pool, Some(id), false, 1).await?.pop())
}

/// Jobs in id order: job `id` (when given), running jobs whose lease expired (when
/// `lease_expired`), at most `limit`.
pub(super) async fn select(
    pool: &PgPool,
    id: Option<i64>,
    lease_expired: bool,
    limit: i64,
) -> sqlx::Result<Vec<JobRow>> {
    sqlx::query_as!(
        JobRow,
        r#"SELECT id, kind, target, args, state AS "state: JobState", attempt, max_attempts, errors,
            output, created_at, scheduled_at, attempted_at, finalized_at, lease_owner, lease_until
        FROM jobs
        WHERE ($1::bigint IS NULL OR id = $1)
          AND (NOT $2 OR (state = 'running' AND lease_until < now()))
        ORDER BY id LIMIT $3"#,
        id,
        lease_expired,
        limit,
    )
    .fetch_all(pool)
    .await
}

/// Job counts by kind and state, for metrics.
pub async fn counts(pool: &PgPool) -> sqlx::Result<Vec<(String, JobState, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT kind, state AS "state: JobState", count(*) AS "count!"
           FROM jobs GROUP BY kind, state ORDER BY kind, state"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.kind, r.state, r.count))
        .collect())
}

/// The queued job a manual reconcile of `target` joins: a user's change waiting to run (or an
/// earlier manual reconcile), made due now if it was waiting for a retry. A queued drift check
/// is not joined (the manual reconcile supersedes it). None: nothing to join.
pub async fn join_queued(
    conn: &mut PgConnection,
    kind: &str,
    target: &str,
) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as!(
        JobRow,
        r#"UPDATE jobs SET scheduled_at = LEAST(scheduled_at, now())
        WHERE target = $1 AND kind = $2 AND state IN ('available', 'retryable')
          AND COALESCE(args->>'reason', 'change') <> 'drift'
        RETURNING id, kind, target, args, state AS "state: JobState", attempt, max_attempts,
            errors, output, created_at, scheduled_at, attempted_at, finalized_at, lease_owner,
            lease_until"#,
        target,
        kind,
    )
    .fetch_optional(conn)
    .await
}

/// Queues a job for `target` unless it already has one queued or running (the database also
/// refuses a second queued job per target); true when queued.
pub async fn enqueue_if_idle(
    pool: &PgPool,
    kind: &str,
    target: &str,
    args: &Value,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "INSERT INTO jobs (kind, target, args) \
         SELECT $1, $2, $3 WHERE NOT EXISTS ( \
           SELECT 1 FROM jobs WHERE target = $2 AND state IN ('available', 'retryable', 'running')) \
         ON CONFLICT DO NOTHING",
        kind,
        target,
        args,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

//! SQL the workers' maintenance runs: rescuing runs whose lease expired, and deleting finished
//! jobs past their retention.

use std::time::Duration;

use sqlx::PgPool;

use super::{
    run::{record_failure, FailOutcome},
    JobRow,
};

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
    let expired = super::select(pool, None, true, 1000).await?;
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

/// Deletes finished jobs older than `age`, in batches. Returns how many.
pub async fn delete_finished_before(pool: &PgPool, age: Duration) -> sqlx::Result<u64> {
    crate::store::delete_in_batches(age, |secs, limit| {
        sqlx::query!(
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs \
               WHERE state IN ('completed', 'discarded', 'cancelled') \
                 AND finalized_at < now() - make_interval(secs => $1) \
               LIMIT $2)",
            secs,
            limit,
        )
        .execute(pool)
    })
    .await
}

//! A run and its outcome: the handler under a timeout and panic guard, the heartbeat that
//! renews its lease, and the writes that record success (batched) or failure.

//! The worker loop: wakes on LISTEN/NOTIFY or a poll tick, claims as many jobs as it has free
//! slots, runs each with a heartbeat, records the outcome, and on shutdown stops claiming, lets
//! running jobs finish within the grace period and releases the rest.

use backon::Retryable as _;
use std::{panic::AssertUnwindSafe, time::Duration};

use futures::FutureExt;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use super::{ErrorClass, JobContext, JobError, JobRow, Registry, RetryPolicy};
use crate::store::jobs as store;

/// A successful job waiting for its completion to be written.
pub(super) struct Completion {
    pub(super) id: i64,
    pub(super) attempt: i32,
    pub(super) output: Option<serde_json::Value>,
    pub(super) written: oneshot::Sender<bool>,
}

/// Writes completions in batches: whatever is ready when the previous write ends goes in the
/// next `UPDATE`, so N jobs finishing together cost one round trip instead of N.
pub(super) async fn completer(pool: PgPool, owner: String, mut rx: mpsc::Receiver<Completion>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 1000 {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        let ids: Vec<i64> = batch.iter().map(|c| c.id).collect();
        let attempts: Vec<i32> = batch.iter().map(|c| c.attempt).collect();
        let outputs: Vec<Option<serde_json::Value>> =
            batch.iter().map(|c| c.output.clone()).collect();
        let done = (|| store::complete_many(&pool, &owner, &ids, &attempts, &outputs))
            .retry(db_write_backoff())
            .notify(|e, _| {
                tracing::warn!(error = %e, jobs = ids.len(), "recording completions failed; retrying");
            })
            .await;
        // Unwritten completions leave the jobs leased: the rescuer re-runs them (idempotent).
        let done = done.unwrap_or_default();
        for c in batch {
            let _ = c.written.send(done.contains(&c.id));
        }
    }
}

pub(super) async fn run_handler(
    registry: &Registry,
    ctx: JobContext,
    timeout: Duration,
) -> Result<Option<serde_json::Value>, JobError> {
    let kind = ctx.job.kind.clone();
    let Some(handler) = registry.get(&kind) else {
        return Err(JobError::permanent(format!(
            "no handler is registered for job kind {kind:?}"
        )));
    };
    let run = AssertUnwindSafe(handler.run(ctx)).catch_unwind();
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(JobError::retryable("the job handler panicked")),
        Err(_) => Err(JobError::retryable(format!(
            "the job did not finish within {} s",
            timeout.as_secs()
        ))),
    }
}

/// Writes a failed attempt, retrying briefly if the database hiccups; if it stays down, the
/// lease expires and the rescuer re-runs the (idempotent) job.
pub(super) async fn record_failure(
    pool: &PgPool,
    job: &JobRow,
    owner: &str,
    retry: &RetryPolicy,
    error: JobError,
) -> &'static str {
    let permanent = error.class == ErrorClass::Permanent;
    let written = (|| {
        store::fail(
            pool,
            job,
            owner,
            &error.message,
            error.code.as_deref(),
            permanent,
            retry.delay(job.attempt),
        )
    })
    .retry(db_write_backoff())
    .notify(|e, _| {
        tracing::warn!(job_id = job.id, error = %e, "recording job failure failed; retrying");
    })
    .await;
    let Ok(outcome) = written else {
        return "unrecorded";
    };
    let outcome = match outcome {
        store::FailOutcome::Retryable => "retryable",
        store::FailOutcome::Discarded => "discarded",
        store::FailOutcome::Superseded => "superseded",
        store::FailOutcome::LeaseLost => "lease_lost",
    };
    tracing::warn!(job_id = job.id, kind = %job.kind, attempt = job.attempt, outcome, error = %error.message, "job attempt failed");
    if outcome == "retryable" {
        metrics::counter!("zeroscale_job_retries_total", "kind" => job.kind.clone()).increment(1);
    }
    outcome
}

/// How a worker retries the database write that records a run's outcome: five tries, 200 ms
/// apart and doubling. If the database stays away longer, the lease expires and the rescuer
/// re-runs the (idempotent) job.
pub(super) fn db_write_backoff() -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_factor(2.0)
        .with_max_times(4)
}

/// Renews the lease every third of it; returns (and so stops the handler) when the lease is
/// lost: the database says another run holds the job, or no renewal succeeded in time. Each
/// renewal is bounded by a client-side timeout (a partitioned network must not hang it), and
/// the run stops a third of a lease before the last renewal it sent could expire, so it has
/// stopped before any rescuer may take the job.
pub(super) async fn heartbeat(pool: PgPool, fence: store::Fence, lease: Duration) {
    let every = (lease / 3).max(Duration::from_millis(10));
    let deadline = |sent: tokio::time::Instant| sent + lease.saturating_sub(every);
    let mut valid_until = deadline(tokio::time::Instant::now());
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::time::sleep_until(valid_until) => {
                tracing::warn!(job_id = fence.id, "lease not renewed in time; stopping this run");
                return;
            }
        }
        let sent = tokio::time::Instant::now();
        match tokio::time::timeout(every, store::heartbeat(&pool, &fence, lease)).await {
            Ok(Ok(true)) => valid_until = deadline(sent),
            Ok(Ok(false)) => {
                tracing::warn!(
                    job_id = fence.id,
                    attempt = fence.attempt,
                    "lease lost: the job was rescued; stopping this run"
                );
                return;
            }
            Ok(Err(e)) => tracing::warn!(job_id = fence.id, error = %e, "heartbeat failed"),
            Err(_) => tracing::warn!(job_id = fence.id, "heartbeat timed out"),
        }
    }
}

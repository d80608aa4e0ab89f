//! Drift: every enabled target is re-observed once per interval, one at a time and spread over
//! the interval, by queueing a `reconcile` job marked as a drift check. A target that already
//! has work queued or running is skipped (that work re-observes it anyway). Safe on every
//! replica: the database refuses a second queued job per target.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::api::changes::{reconcile_args, RECONCILE_JOB};

/// Queues a drift check for one target unless it already has work; true when queued.
pub async fn enqueue_if_idle(
    pool: &PgPool,
    kind: &str,
    name: &str,
    job_target: &str,
    reason: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO jobs (kind, target, args) \
         SELECT $1, $2, $3 WHERE NOT EXISTS ( \
           SELECT 1 FROM jobs WHERE target = $2 AND state IN ('available', 'retryable', 'running')) \
         ON CONFLICT DO NOTHING",
    )
    .bind(RECONCILE_JOB)
    .bind(job_target)
    .bind(reconcile_args(kind, name, reason))
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Runs drift checks until `stop`: each round lists the enabled targets and queues one check
/// per target, `interval / n` apart.
pub async fn run(pool: PgPool, interval: Duration, stop: CancellationToken) {
    loop {
        let targets: Vec<(String, String)> = match sqlx::query_as(
            "SELECT kind::text, name FROM targets WHERE enabled AND phase IN ('ready', 'failed') ORDER BY name",
        )
        .fetch_all(&pool)
        .await
        {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "drift: cannot list targets");
                Vec::new()
            }
        };
        let gap = interval / (targets.len().max(1) as u32);
        for (kind, name) in &targets {
            let Ok(target) = crate::domain::TargetRef::from_stored(kind, name) else {
                tracing::warn!(kind = %kind, target = %name, "drift: unreadable stored target");
                continue;
            };
            let job_target = target.job_target();
            match enqueue_if_idle(&pool, kind, name, &job_target, "drift").await {
                Ok(true) => {
                    let _ = crate::store::jobs::notify_workers(&pool).await;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, target = %name, "drift: cannot queue a check"),
            }
            tokio::select! { _ = stop.cancelled() => return, _ = tokio::time::sleep(gap) => {} }
        }
        if targets.is_empty() {
            tokio::select! { _ = stop.cancelled() => return, _ = tokio::time::sleep(interval) => {} }
        }
    }
}

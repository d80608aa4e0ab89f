//! Drift: every enabled target is re-observed once per interval, one at a time and spread over
//! the interval, by queueing a `reconcile` job marked as a drift check. A target that already
//! has work queued or running is skipped (that work re-observes it anyway). Safe on every
//! replica: the database refuses a second queued job per target.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::{reconcile_args, RECONCILE_JOB};

/// Queues a drift check for one target unless it already has work; true when queued.
pub async fn enqueue_if_idle(
    pool: &PgPool,
    kind: &str,
    name: &str,
    job_target: &str,
    reason: &str,
) -> sqlx::Result<bool> {
    let args = reconcile_args(kind, name, reason);
    crate::store::jobs::enqueue_if_idle(pool, RECONCILE_JOB, job_target, &args).await
}

/// Runs drift checks until `stop`: each round lists the enabled targets and queues one check
/// per target, `interval / n` apart.
pub async fn run(pool: PgPool, interval: Duration, stop: CancellationToken) {
    loop {
        let targets = match crate::store::targets::settled_enabled(&pool).await {
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

//! Drift: every interval, one fleet observation pass (`fleet`, the `observe` job) compares every
//! enabled target with AWS in batched reads and queues a repair only for the targets that
//! differ. Safe on every replica: a pass is queued only when none ran within the interval, and
//! the database refuses a second queued pass.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::{
    fleet::{FLEET, OBSERVE_JOB},
    reconcile_args, RECONCILE_JOB,
};

/// Queues a drift repair for one target unless it already has work; true when queued.
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

/// Queues an observation pass if one is due (none ran within `interval`); true when queued.
pub async fn enqueue_pass(pool: &PgPool, interval: Duration) -> sqlx::Result<bool> {
    if !crate::store::observation::due(pool, interval).await? {
        return Ok(false);
    }
    let queued = crate::store::jobs::enqueue_if_idle(
        pool,
        OBSERVE_JOB,
        FLEET,
        &serde_json::json!({"reason": "drift"}),
    )
    .await?;
    if queued {
        let _ = crate::store::jobs::notify_workers(pool).await;
    }
    Ok(queued)
}

/// Queues an observation pass every `interval` (when due) until `stop`.
pub async fn run(pool: PgPool, interval: Duration, stop: CancellationToken) {
    // Check a few times per interval, so a pass follows soon after the previous one is due
    // even when another replica ran it.
    let mut tick = tokio::time::interval((interval / 4).max(Duration::from_millis(50)));
    loop {
        tokio::select! { _ = stop.cancelled() => return, _ = tick.tick() => {} }
        if let Err(e) = enqueue_pass(&pool, interval).await {
            tracing::warn!(error = %e, "drift: cannot queue an observation pass");
        }
    }
}

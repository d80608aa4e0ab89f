//! What a worker does besides running jobs: listening for wake-ups, and maintenance (rescue,
//! retention, gauges).

//! The worker loop: wakes on LISTEN/NOTIFY or a poll tick, claims as many jobs as it has free
//! slots, runs each with a heartbeat, records the outcome, and on shutdown stops claiming, lets
//! running jobs finish within the grace period and releases the rest.

use std::{sync::Arc, time::Duration};

use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Registry, WorkerConfig};
use crate::store::jobs as store;

/// Turns NOTIFYs on the jobs channel into wake-ups; reconnects when the connection drops
/// (the poll covers notifications missed meanwhile).
pub(super) async fn listen(pool: PgPool, wake: Arc<Notify>, stop: CancellationToken) {
    while !stop.is_cancelled() {
        match crate::store::listener(&pool).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen(store::NOTIFY_CHANNEL).await {
                    tracing::warn!(error = %e, "LISTEN failed");
                } else {
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            n = listener.try_recv() => match n {
                                Ok(Some(_)) => wake.notify_one(),
                                Ok(None) => wake.notify_one(), // reconnected: something may be waiting
                                Err(e) => { tracing::warn!(error = %e, "job notifications interrupted"); break; }
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot open LISTEN connection yet"),
        }
        tokio::select! { _ = stop.cancelled() => return, _ = tokio::time::sleep(Duration::from_secs(1)) => {} }
    }
}

/// Rescue, retention and queue gauges, periodically. Safe on every replica at once.
pub(super) async fn maintain(
    pool: PgPool,
    registry: Arc<Registry>,
    config: WorkerConfig,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(config.maintenance_interval);
    loop {
        tokio::select! { _ = stop.cancelled() => return, _ = tick.tick() => {} }
        match store::rescue_expired(&pool, |attempt| config.retry.delay(attempt)).await {
            Ok(r) if r.rescued == 0 => {}
            Ok(r) => {
                tracing::warn!(rescued = r.rescued, "rescued jobs whose lease expired");
                metrics::counter!("zeroscale_jobs_rescued_total").increment(r.rescued);
                for job in r.discarded {
                    if let Some(handler) = registry.get(&job.kind) {
                        handler
                            .on_discarded(job, "lease expired on the last attempt: the worker running it stopped (crash, kill or network loss)".into())
                            .await;
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "rescuing expired jobs failed"),
        }
        if let Err(e) = store::delete_finished_before(&pool, config.retention).await {
            tracing::warn!(error = %e, "job retention failed");
        }
        match crate::store::audit::seal_all(&pool, 40).await {
            Ok(Some(head)) => tracing::info!(
                position = head.position,
                head = %hex::encode(&head.hash),
                "audit chain sealed (keep this line: it anchors GET /audit/verify)"
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "sealing the audit chain failed"),
        }
        match crate::store::idempotency::expire(&pool, config.idempotency_ttl).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "expired idempotency keys"),
            Err(e) => tracing::warn!(error = %e, "expiring idempotency keys failed"),
        }
        if let Err(e) = crate::jobs::gauges::refresh_gauges(&pool).await {
            tracing::debug!(error = %e, "refreshing the queue and target gauges failed");
        }
    }
}

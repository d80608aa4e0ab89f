//! One AWS call budget per account, whatever the replica count: each replica heartbeats in
//! Postgres (`store::replicas`) and paces itself at `--aws-rate-limit / live replicas`.

use std::{sync::Arc, time::Duration};

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::Pacer;

/// How often a replica heartbeats and re-reads the live count.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// Registers this replica and keeps its share of the budget current until `stop`, then
/// removes it so the others take its share at once. Without the database the last share
/// stays (a replica that cannot heartbeat is soon not counted by the others, which then spend
/// more: the pacer's AIMD absorbs the overlap).
pub fn share(
    pool: PgPool,
    pacer: Arc<Pacer>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut id = None;
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let beat = async {
                let me = match id {
                    Some(me) => me,
                    None => crate::store::replicas::register(&pool).await?,
                };
                id = Some(me);
                crate::store::replicas::heartbeat(&pool, me).await
            };
            match beat.await {
                Ok(live) => pacer.set_replicas(live),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot heartbeat this replica; keeping its share of the AWS budget")
                }
            }
        }
        if let Some(me) = id {
            let _ = crate::store::replicas::forget(&pool, me).await;
        }
    })
}

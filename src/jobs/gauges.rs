//! The job, queue and target gauges of `/metrics`, refreshed from the database off the scrape
//! path (by the workers' maintenance, or on a timer in a process without workers).

use crate::store::jobs::JobState;

/// Sets the job, queue and target gauges (called by the workers' maintenance, never by a
/// scrape).
pub async fn refresh_gauges(pool: &sqlx::PgPool) -> sqlx::Result<()> {
    // Every (kind, state) ever reported: one that has no jobs now must read 0, not its last
    // count.
    static SEEN: std::sync::Mutex<std::collections::BTreeSet<(String, String)>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let counts = crate::store::jobs::counts(pool).await?;
    let mut depth = 0;
    let mut now = std::collections::BTreeMap::new();
    for (kind, state, n) in counts {
        if matches!(state, JobState::Available | JobState::Retryable) {
            depth += n;
        }
        now.insert((kind, format!("{state:?}").to_lowercase()), n);
    }
    {
        let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
        seen.extend(now.keys().cloned());
        for key in seen.iter() {
            let n = now.get(key).copied().unwrap_or(0);
            metrics::gauge!("zeroscale_jobs", "kind" => key.0.clone(), "state" => key.1.clone())
                .set(n as f64);
        }
    }
    metrics::gauge!("zeroscale_job_queue_depth").set(depth as f64);
    let rows = crate::store::targets::count_by_phase(pool).await?;
    for phase in ["pending", "applying", "ready", "failed", "disabled"] {
        for kind in ["component", "endpoint_variant"] {
            let n = rows
                .iter()
                .find(|(k, p, _)| k == kind && p == phase)
                .map(|r| r.2)
                .unwrap_or(0);
            metrics::gauge!("zeroscale_targets", "kind" => kind, "phase" => phase).set(n as f64);
        }
    }
    // A forgotten pause shows here (it also ends by itself at its `until`).
    let paused = crate::store::holds::paused_by_kind(pool).await?;
    for kind in ["component", "endpoint_variant"] {
        let n = paused.iter().find(|(k, _)| k == kind).map_or(0, |r| r.1);
        metrics::gauge!("zeroscale_targets_paused", "kind" => kind).set(n as f64);
    }
    Ok(())
}

/// Refreshes the gauges every `every` in a process that runs no workers (`serve --no-worker`),
/// so its `/metrics` still has them; off the scrape path, so scrapes never reach the database.
pub fn refresh_periodically(pool: sqlx::PgPool, every: std::time::Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = refresh_gauges(&pool).await {
                tracing::debug!(error = %e, "refreshing the queue and target gauges failed");
            }
        }
    });
}

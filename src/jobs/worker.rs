//! The worker loop: wakes on LISTEN/NOTIFY or a poll tick, claims as many jobs as it has free
//! slots, runs each with a heartbeat, records the outcome, and on shutdown stops claiming, lets
//! running jobs finish within the grace period and releases the rest.

use backon::Retryable as _;
use std::{
    collections::HashMap,
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::FutureExt;
use sqlx::PgPool;
use tokio::{
    sync::{mpsc, oneshot, Notify},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;

use super::{ErrorClass, JobContext, JobError, JobRow, Registry, RetryPolicy};
use crate::{config::WorkerSettings, store::jobs as store};

/// Tunables of one worker process.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs run at the same time.
    pub concurrency: usize,
    /// Poll when no notification arrives.
    pub poll_interval: Duration,
    /// Lease length; heartbeats renew it every third of it.
    pub lease: Duration,
    /// A handler running longer than this fails (retryable). Must stay below the lease's
    /// rescue threshold in spirit: the heartbeat keeps the lease alive until then.
    pub job_timeout: Duration,
    /// Backoff between attempts.
    pub retry: RetryPolicy,
    /// How long running jobs may take to finish after shutdown begins.
    pub shutdown_grace: Duration,
    /// Finished jobs older than this are deleted.
    pub retention: Duration,
    /// How often rescue, retention and the queue gauges run.
    pub maintenance_interval: Duration,
    /// Idempotency keys older than this are deleted.
    pub idempotency_ttl: Duration,
}

impl WorkerConfig {
    /// From the CLI settings.
    pub fn from_settings(s: &WorkerSettings, shutdown_grace: Duration) -> Self {
        Self {
            concurrency: s.worker_concurrency.max(1),
            poll_interval: s.worker_poll_interval,
            lease: s.job_lease,
            job_timeout: Duration::from_secs(600),
            retry: RetryPolicy::default(),
            shutdown_grace,
            retention: s.job_retention,
            maintenance_interval: (s.job_lease / 2)
                .clamp(Duration::from_millis(50), Duration::from_secs(30)),
            idempotency_ttl: s.idempotency_ttl,
        }
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self::from_settings(&WorkerSettings::default(), Duration::from_secs(30))
    }
}

/// A worker process's job runner.
pub struct Worker {
    pool: PgPool,
    registry: Arc<Registry>,
    config: WorkerConfig,
    id: String,
}

type InFlight = Arc<Mutex<HashMap<i64, JobRow>>>;

/// A successful job waiting for its completion to be written.
struct Completion {
    id: i64,
    attempt: i32,
    output: Option<serde_json::Value>,
    written: oneshot::Sender<bool>,
}

/// Writes completions in batches: whatever is ready when the previous write ends goes in the
/// next `UPDATE`, so N jobs finishing together cost one round trip instead of N.
async fn completer(pool: PgPool, owner: String, mut rx: mpsc::Receiver<Completion>) {
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

impl Worker {
    /// A worker with a unique id (host, pid, random suffix) used as lease owner.
    pub fn new(pool: PgPool, registry: Registry, config: WorkerConfig) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let id = format!("{host}-{}-{suffix}", std::process::id());
        Self {
            pool,
            registry: Arc::new(registry),
            config,
            id,
        }
    }

    /// The lease owner name of this worker.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs until `shutdown` is cancelled, then drains gracefully.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(worker = %self.id, concurrency = self.config.concurrency, "job worker started");
        let wake = Arc::new(Notify::new());
        let background = CancellationToken::new();
        // Listener and maintenance stop when this future ends or is dropped.
        let _background_guard = background.clone().drop_guard();
        tokio::spawn(listen(self.pool.clone(), wake.clone(), background.clone()));
        tokio::spawn(maintain(
            self.pool.clone(),
            self.registry.clone(),
            self.config.clone(),
            background.clone(),
        ));

        let (complete_tx, complete_rx) = mpsc::channel(4 * self.config.concurrency);
        let completer = tokio::spawn(completer(self.pool.clone(), self.id.clone(), complete_rx));
        let in_flight: InFlight = Arc::default();
        let mut running = JoinSet::new();
        let mut tick = tokio::time::interval(self.config.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let free = self.config.concurrency - running.len();
            let mut claimed_all = false;
            if free > 0 && !shutdown.is_cancelled() {
                match store::claim(&self.pool, &self.id, free as i64, self.config.lease).await {
                    Ok(jobs) => {
                        claimed_all = jobs.len() == free && free > 0;
                        for job in jobs {
                            in_flight
                                .lock()
                                .expect("in-flight map")
                                .insert(job.id, job.clone());
                            running.spawn(self.run_one(
                                job,
                                in_flight.clone(),
                                complete_tx.clone(),
                            ));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming jobs failed; retrying after the poll interval");
                    }
                }
            }
            if claimed_all && running.len() < self.config.concurrency {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = wake.notified() => {}
                _ = tick.tick() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {
                    // Collect every other job that finished too, then claim for all free slots.
                    while running.try_join_next().is_some() {}
                }
            }
        }
        self.drain(running).await;
        drop(complete_tx);
        let _ = completer.await;
        self.release_unfinished(in_flight).await;
        tracing::info!(worker = %self.id, "job worker stopped");
        Ok(())
    }

    /// Waits for running jobs up to the grace period, then releases what is left.
    async fn drain(&self, mut running: JoinSet<()>) {
        tracing::info!(
            running = running.len(),
            grace_s = self.config.shutdown_grace.as_secs_f64(),
            "worker draining"
        );
        let deadline = tokio::time::sleep(self.config.shutdown_grace);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                next = running.join_next() => if next.is_none() { break },
                _ = &mut deadline => break,
            }
        }
        running.abort_all();
        while running.join_next().await.is_some() {}
    }

    /// Hands jobs that did not finish back to the queue for another worker.
    async fn release_unfinished(&self, in_flight: InFlight) {
        let left: Vec<JobRow> = in_flight
            .lock()
            .expect("in-flight map")
            .drain()
            .map(|(_, j)| j)
            .collect();
        for job in left {
            match store::release(&self.pool, &job, &self.id).await {
                Ok(true) => {
                    tracing::info!(job_id = job.id, kind = %job.kind, "released unfinished job for another worker")
                }
                Ok(false) => {} // finished (or rescued) meanwhile
                Err(e) => {
                    tracing::warn!(job_id = job.id, error = %e, "could not release job; its lease will expire and it will be rescued")
                }
            }
        }
    }

    fn run_one(
        &self,
        job: JobRow,
        in_flight: InFlight,
        completions: mpsc::Sender<Completion>,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let pool = self.pool.clone();
        let registry = self.registry.clone();
        let config = self.config.clone();
        let owner = self.id.clone();
        async move {
            let kind = job.kind.clone();
            if let Some(at) = job.attempted_at {
                let latency = (at - job.scheduled_at).to_std().unwrap_or_default();
                metrics::histogram!("zeroscale_job_claim_latency_seconds", "kind" => kind.clone())
                    .record(latency.as_secs_f64());
            }
            metrics::counter!("zeroscale_jobs_claimed_total", "kind" => kind.clone()).increment(1);
            let started = Instant::now();
            // The heartbeat lives in the job's own future: if the worker is dropped mid-job,
            // the heartbeat stops too and the lease expires for the rescuer. When the lease is
            // lost (taken away, or not renewed in time) the heartbeat ends and the handler is
            // dropped with it: a job never runs twice at once, and the stale run's writes are
            // fenced off anyway.
            let fence = job.fence();
            let ctx = JobContext::new(job.clone(), pool.clone());
            let finished = ctx.finished.clone();
            let result = tokio::select! {
                r = run_handler(&registry, ctx, config.job_timeout) => r,
                _ = heartbeat(pool.clone(), fence, config.lease) => {
                    Err(JobError::retryable("lease lost while the job ran"))
                }
            };
            let by_handler = finished.load(std::sync::atomic::Ordering::SeqCst);
            let outcome = match result {
                // The handler ended the job in its own transaction.
                Ok(_) if by_handler => "completed",
                Err(_) if by_handler => "discarded",
                Ok(output) => {
                    let (written, ack) = oneshot::channel();
                    let sent = completions
                        .send(Completion {
                            id: job.id,
                            attempt: job.attempt,
                            output,
                            written,
                        })
                        .await
                        .is_ok();
                    match (sent, ack.await) {
                        (true, Ok(true)) => "completed",
                        _ => {
                            tracing::warn!(
                                job_id = job.id,
                                "completion not recorded (lease lost or database down)"
                            );
                            "lease_lost"
                        }
                    }
                }
                Err(e) => {
                    let message = e.message.clone();
                    let outcome = record_failure(&pool, &job, &owner, &config.retry, e).await;
                    if outcome == "discarded" {
                        if let Some(handler) = registry.get(&kind) {
                            handler.on_discarded(job.clone(), message).await;
                        }
                    }
                    outcome
                }
            };
            metrics::histogram!("zeroscale_job_run_seconds", "kind" => kind.clone(), "outcome" => outcome)
                .record(started.elapsed().as_secs_f64());
            metrics::counter!("zeroscale_jobs_finished_total", "kind" => kind, "outcome" => outcome).increment(1);
            in_flight.lock().expect("in-flight map").remove(&job.id);
        }
    }
}

async fn run_handler(
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
async fn record_failure(
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
fn db_write_backoff() -> backon::ExponentialBuilder {
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
async fn heartbeat(pool: PgPool, fence: store::Fence, lease: Duration) {
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

/// Turns NOTIFYs on the jobs channel into wake-ups; reconnects when the connection drops
/// (the poll covers notifications missed meanwhile).
async fn listen(pool: PgPool, wake: Arc<Notify>, stop: CancellationToken) {
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
async fn maintain(
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
        if let Err(e) = crate::api::metrics::refresh_gauges(&pool).await {
            tracing::debug!(error = %e, "refreshing the queue and target gauges failed");
        }
    }
}

//! The worker loop: wakes on LISTEN/NOTIFY or a poll tick, claims as many jobs as it has free
//! slots, runs each with a heartbeat, records the outcome, and on shutdown stops claiming, lets
//! running jobs finish within the grace period and releases the rest.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sqlx::PgPool;
use tokio::{
    sync::{mpsc, oneshot, Notify},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;

use super::{JobContext, JobError, JobRow, Registry, RetryPolicy};
use crate::{config::WorkerSettings, store::jobs as store};

use super::{
    background::{listen, maintain},
    outcome::{completer, heartbeat, record_failure, run_handler, Completion},
};

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
            let claimed_all = !shutdown.is_cancelled()
                && self
                    .claim(free, &mut running, &in_flight, &complete_tx)
                    .await;
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

    /// Claims up to `free` jobs and starts them; true when it got all it asked for (more may
    /// be waiting).
    async fn claim(
        &self,
        free: usize,
        running: &mut JoinSet<()>,
        in_flight: &InFlight,
        complete_tx: &mpsc::Sender<Completion>,
    ) -> bool {
        if free == 0 {
            return false;
        }
        match store::claim(&self.pool, &self.id, free as i64, self.config.lease).await {
            Ok(jobs) => {
                let all = jobs.len() == free;
                for job in jobs {
                    in_flight
                        .lock()
                        .expect("in-flight map")
                        .insert(job.id, job.clone());
                    running.spawn(self.run_one(job, in_flight.clone(), complete_tx.clone()));
                }
                all
            }
            Err(e) => {
                tracing::warn!(error = %e, "claiming jobs failed; retrying after the poll interval");
                false
            }
        }
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
            claimed(&job);
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
                Ok(output) => send_completion(&completions, &job, output).await,
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

/// The claim metrics of a job just claimed: how long it waited, and the count.
fn claimed(job: &JobRow) {
    if let Some(at) = job.attempted_at {
        let latency = (at - job.scheduled_at).to_std().unwrap_or_default();
        metrics::histogram!("zeroscale_job_claim_latency_seconds", "kind" => job.kind.clone())
            .record(latency.as_secs_f64());
    }
    metrics::counter!("zeroscale_jobs_claimed_total", "kind" => job.kind.clone()).increment(1);
}

/// Hands a successful run to the completer and waits until it is written: `completed`, or
/// `lease_lost` when it could not be (the lease moved on, or the database is down).
async fn send_completion(
    completions: &mpsc::Sender<Completion>,
    job: &JobRow,
    output: Option<serde_json::Value>,
) -> &'static str {
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

//! Durable background jobs on Postgres: enqueue in the caller's transaction, claim with
//! `FOR UPDATE SKIP LOCKED`, run with no transaction open, record the outcome, retry with
//! jittered exponential backoff, rescue expired leases. SQL lives in `store::jobs`.

mod background;
pub mod gauges;
mod outcome;
pub mod worker;

use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc, time::Duration};

use rand::Rng;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

pub use crate::store::jobs::{notify_workers, Fence, JobRow, JobState, NewJob};
pub use worker::{Worker, WorkerConfig};

/// How a handler's failure should be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Transient (throttling, 5xx, timeouts, eventual consistency): retry with backoff.
    Retryable,
    /// Will not fix itself (validation, access denied, failed precondition): stop now.
    Permanent,
    /// AWS is busy with the resource (an endpoint `Updating` while it scales): retried with
    /// backoff like a transient failure, but shown as waiting rather than as an error.
    Wait,
}

/// A handler's failure: its class and a message for humans (kept on the job and shown to users).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct JobError {
    /// Retry or stop.
    pub class: ErrorClass,
    /// What went wrong and, for permanent errors, what to change.
    pub message: String,
    /// For a wait: a machine-readable reason (for example `EndpointUpdating`).
    pub reason: Option<String>,
    /// A stable machine-readable code kept with the attempt's error (for example
    /// `database_unavailable`, or AWS's error code); None for messages of the handler's own.
    pub code: Option<String>,
}

impl JobError {
    /// A transient failure.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Retryable,
            message: message.into(),
            reason: None,
            code: None,
        }
    }

    /// A database failure during a run: retried. The driver's text goes to the log with the
    /// job; the operation shows a stable code and a sentence (never SQL or driver text).
    pub fn database(e: sqlx::Error) -> Self {
        let (code, message) = match &e {
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("55P03" | "57014" | "40001" | "40P01")) =>
            {
                (
                    "database_busy",
                    "the database was too busy during this attempt (a lock or statement timed out); it will be retried",
                )
            }
            _ => (
                "database_unavailable",
                "the database was unavailable during this attempt; it will be retried",
            ),
        };
        tracing::warn!(code, error = %e, "job attempt: database error");
        Self {
            class: ErrorClass::Retryable,
            message: message.into(),
            reason: None,
            code: Some(code.into()),
        }
    }

    /// This error with a stable code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Not a failure: the resource is in a transitional state; try again later.
    pub fn wait(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Wait,
            message: message.into(),
            reason: Some(reason.into()),
            code: None,
        }
    }

    /// A failure that retrying will not fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            class: ErrorClass::Permanent,
            message: message.into(),
            reason: None,
            code: None,
        }
    }
}

/// What a handler sees of its job.
#[derive(Clone)]
pub struct JobContext {
    /// The claimed row (attempt already counted).
    pub job: JobRow,
    /// The pool, for the handler's own reads and writes.
    pub pool: PgPool,
    /// Set when the handler finished the job itself, in its own transaction
    /// ([`JobContext::finish_in`]): the worker then records nothing more.
    pub finished: Arc<std::sync::atomic::AtomicBool>,
}

impl JobContext {
    /// This run's fence: writes about the job are no-ops once the run lost its lease.
    pub fn fence(&self) -> Fence {
        self.job.fence()
    }

    /// A context for a claimed job.
    pub fn new(job: JobRow, pool: PgPool) -> Self {
        Self {
            job,
            pool,
            finished: Arc::default(),
        }
    }

    /// Completes (`error` None) or discards the job inside the handler's transaction, so its
    /// end commits together with what the handler records about it. False when this run no
    /// longer holds the job (nothing written).
    pub async fn finish_in(
        &self,
        conn: &mut PgConnection,
        output: Option<&Value>,
        error: Option<&JobError>,
    ) -> sqlx::Result<bool> {
        let error = error.map(|e| (e.message.as_str(), e.code.as_deref()));
        let done = crate::store::jobs::finish_in(conn, &self.fence(), output, error).await?;
        Ok(done)
    }

    /// Marks the job as finished by the handler (call after the transaction of
    /// [`JobContext::finish_in`] committed).
    pub fn mark_finished(&self) {
        self.finished
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Records progress on the job while it runs, so `GET /operations/{id}` shows it; false
    /// (nothing written) when this run no longer holds the job.
    pub async fn record_output(&self, output: &Value) -> sqlx::Result<bool> {
        crate::store::jobs::set_output(&self.pool, &self.fence(), output).await
    }
}

/// A boxed future returned by handlers.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Option<Value>, JobError>> + Send>>;

/// Runs one kind of job. Handlers must be idempotent: a job can run again after a crash.
pub trait JobHandler: Send + Sync + 'static {
    /// Runs the job; `Ok(output)` completes it.
    fn run(&self, ctx: JobContext) -> HandlerFuture;

    /// Called after the engine, not the handler, discarded a job of this kind: a timeout, a
    /// panic or a lost lease on its last attempt, or a rescue of its last attempt. The handler
    /// records the outcome where its users look (the job's errors already hold it). It may be
    /// called again for the same job after a crash, so it must be idempotent. Default: nothing.
    fn on_discarded(&self, job: JobRow, error: String) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let _ = (job, error);
        Box::pin(async {})
    }
}

impl<F, Fut> JobHandler for F
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Value>, JobError>> + Send + 'static,
{
    fn run(&self, ctx: JobContext) -> HandlerFuture {
        Box::pin(self(ctx))
    }
}

/// Handlers by job kind.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Arc<dyn JobHandler>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the handler for `kind`.
    pub fn register(mut self, kind: &str, handler: impl JobHandler) -> Self {
        self.handlers.insert(kind.to_string(), Arc::new(handler));
        self
    }

    /// The handler for `kind`.
    pub fn get(&self, kind: &str) -> Option<Arc<dyn JobHandler>> {
        self.handlers.get(kind).cloned()
    }
}

/// Retry backoff: `base * 2^(attempt-1)`, capped, with +/- `jitter` spread so that jobs that
/// failed together do not retry together.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt.
    pub base: Duration,
    /// Largest delay.
    pub cap: Duration,
    /// Relative spread, 0.1 = +/- 10 %.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(300),
            jitter: 0.1,
        }
    }
}

impl RetryPolicy {
    /// The delay before the attempt after `attempt` (1-based) failed.
    pub fn delay(&self, attempt: i32) -> Duration {
        let exp = attempt.clamp(1, 31) as u32 - 1;
        let raw = self.base.as_secs_f64() * f64::from(2u32.saturating_pow(exp));
        let capped = raw.min(self.cap.as_secs_f64());
        let spread = if self.jitter > 0.0 {
            rand::rng().random_range(-self.jitter..=self.jitter)
        } else {
            0.0
        };
        Duration::from_secs_f64((capped * (1.0 + spread)).max(0.0))
    }
}

/// Enqueues a job on the caller's connection, which should be inside the caller's transaction so
/// that the job commits with the change it serves (see `store::jobs::enqueue`). Wake workers
/// after the commit with [`Notifier::notify`] or [`notify_workers`].
pub async fn enqueue(tx: &mut PgConnection, job: &NewJob) -> sqlx::Result<JobRow> {
    crate::store::jobs::enqueue(tx, job).await
}

/// Changes committed within this window share one wake-up of the workers (a `pg_notify`
/// transaction each): at a few thousand changes a second, 50 notifications instead of thousands.
const NOTIFY_COALESCE: Duration = Duration::from_millis(20);

/// Wakes workers after jobs were committed, coalescing bursts: however many callers signal
/// within a few milliseconds, one `pg_notify` goes out, off the request path.
#[derive(Clone)]
pub struct Notifier {
    signal: Arc<tokio::sync::Notify>,
}

impl Notifier {
    /// Starts the background sender on the current runtime.
    pub fn start(pool: PgPool) -> Self {
        let signal = Arc::new(tokio::sync::Notify::new());
        let waiting = signal.clone();
        tokio::spawn(async move {
            loop {
                waiting.notified().await;
                if let Err(e) = crate::store::jobs::notify_workers(&pool).await {
                    tracing::debug!(error = %e, "could not notify workers; they will poll");
                }
                // Coalescing window: signals arriving meanwhile share the next notification.
                tokio::time::sleep(NOTIFY_COALESCE).await;
            }
        });
        Self { signal }
    }

    /// Asks for a wake-up of the workers (call after the enqueueing transaction committed).
    pub fn notify(&self) {
        self.signal.notify_one();
    }
}

/// A job with defaults: available now, 20 attempts.
pub fn new_job(kind: &str, target: Option<String>, args: Value) -> NewJob {
    NewJob {
        kind: kind.to_string(),
        target,
        args,
        max_attempts: 20,
        scheduled_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(300),
            jitter: 0.1,
        };
        for attempt in 1..=12 {
            let expected = (2.0 * 2f64.powi(attempt - 1)).min(300.0);
            let d = p.delay(attempt).as_secs_f64();
            assert!(
                d >= expected * 0.9 - 1e-9 && d <= expected * 1.1 + 1e-9,
                "attempt {attempt}: {d}"
            );
        }
        assert!(p.delay(3) > p.delay(1));
        let samples: std::collections::HashSet<u128> =
            (0..50).map(|_| p.delay(4).as_nanos()).collect();
        assert!(samples.len() > 10, "jitter spreads the delays");
        assert!(p.delay(100).as_secs_f64() <= 330.0);
    }
}

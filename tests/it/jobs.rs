//! The durable job engine against a real Postgres database per test.

use crate::common;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zeroscale::{
    config::{DatabaseUrl, DbArgs},
    jobs::{self, JobContext, JobError, JobState, Registry, RetryPolicy, Worker, WorkerConfig},
    store::jobs as store,
};

async fn database() -> (common::TestDb, PgPool) {
    common::init_logs();
    let db = common::TestDb::create().await;
    let args = DbArgs {
        database_url: db.url.parse::<DatabaseUrl>().unwrap(),
        db_pool_size: 10,
        db_acquire_timeout: Duration::from_secs(5),
        db_statement_timeout: Duration::from_secs(15),
        db_lock_timeout: Duration::from_secs(3),
        secrets_key: None,
    };
    let pool = zeroscale::store::prepare(&args, true).await.unwrap();
    (db, pool)
}

fn fast_config() -> WorkerConfig {
    WorkerConfig {
        concurrency: 4,
        poll_interval: Duration::from_millis(25),
        lease: Duration::from_millis(600),
        job_timeout: Duration::from_secs(30),
        retry: RetryPolicy {
            base: Duration::from_millis(40),
            cap: Duration::from_secs(5),
            jitter: 0.1,
        },
        shutdown_grace: Duration::from_secs(5),
        retention: Duration::from_secs(3600),
        maintenance_interval: Duration::from_millis(50),
        idempotency_ttl: Duration::from_secs(86_400),
    }
}

struct Running {
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn shutdown(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }
}

fn start(pool: &PgPool, registry: Registry, config: WorkerConfig) -> Running {
    let stop = CancellationToken::new();
    let task = tokio::spawn(Worker::new(pool.clone(), registry, config).run(stop.clone()));
    Running { stop, task }
}

async fn enqueue(pool: &PgPool, kind: &str, target: Option<&str>, args: Value) -> i64 {
    enqueue_max(pool, kind, target, args, 20).await
}

async fn enqueue_max(
    pool: &PgPool,
    kind: &str,
    target: Option<&str>,
    args: Value,
    max: i32,
) -> i64 {
    let mut tx = pool.begin().await.unwrap();
    let mut job = jobs::new_job(kind, target.map(str::to_string), args);
    job.max_attempts = max;
    let row = jobs::enqueue(&mut tx, &job).await.unwrap();
    tx.commit().await.unwrap();
    jobs::notify_workers(pool).await.unwrap();
    row.id
}

async fn job(pool: &PgPool, id: i64) -> jobs::JobRow {
    store::get(pool, id).await.unwrap().expect("job exists")
}

/// Waits until the job reaches `state`, or fails the test after `secs`.
async fn wait_state(pool: &PgPool, id: i64, state: JobState, secs: u64) -> jobs::JobRow {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let j = job(pool, id).await;
        if j.state == state {
            return j;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id} stuck in {:?}, wanted {state:?}: {j:?}",
            j.state
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn enqueue_commits_and_rolls_back_with_the_callers_transaction() {
    let (_db, pool) = database().await;
    let mut tx = pool.begin().await.unwrap();
    jobs::enqueue(&mut tx, &jobs::new_job("noop", None, json!({})))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "a rolled-back enqueue leaves no job");

    let id = enqueue(&pool, "noop", None, json!({"x": 1})).await;
    let j = job(&pool, id).await;
    assert_eq!(j.state, JobState::Available);
    assert_eq!(j.args, json!({"x": 1}));
}

#[tokio::test]
async fn two_workers_never_run_the_same_job() {
    let (_db, pool) = database().await;
    let runs: Arc<Mutex<HashMap<i64, usize>>> = Arc::default();
    let registry = |runs: Arc<Mutex<HashMap<i64, usize>>>| {
        Registry::new().register("count", move |ctx: JobContext| {
            let runs = runs.clone();
            async move {
                *runs.lock().unwrap().entry(ctx.job.id).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
                Ok(None)
            }
        })
    };
    let mut ids = Vec::new();
    for i in 0..200 {
        ids.push(enqueue(&pool, "count", None, json!({ "i": i })).await);
    }
    let a = start(&pool, registry(runs.clone()), fast_config());
    let b = start(&pool, registry(runs.clone()), fast_config());
    for id in &ids {
        wait_state(&pool, *id, JobState::Completed, 30).await;
    }
    a.shutdown().await;
    b.shutdown().await;
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 200);
    assert!(runs.values().all(|&n| n == 1), "every job ran exactly once");
    let owners: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE attempt = 1 AND state = 'completed'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(owners, 200);
}

#[tokio::test]
async fn a_dropped_worker_has_its_job_rescued_and_run_again() {
    let (_db, pool) = database().await;
    let attempts = Arc::new(AtomicUsize::new(0));
    let hang_first = |attempts: Arc<AtomicUsize>| {
        Registry::new().register("work", move |ctx: JobContext| {
            let attempts = attempts.clone();
            async move {
                attempts.fetch_add(1, Ordering::SeqCst);
                if ctx.job.attempt == 1 {
                    std::future::pending::<()>().await;
                }
                Ok(Some(json!({"done_on_attempt": ctx.job.attempt})))
            }
        })
    };
    let id = enqueue(&pool, "work", Some("component/ic-1"), json!({})).await;
    let first = start(&pool, hang_first(attempts.clone()), fast_config());
    wait_state(&pool, id, JobState::Running, 10).await;
    // The handler has started (a claim is visible a moment before its handler runs).
    while attempts.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Simulate a crash: drop the worker without completing or releasing anything.
    first.task.abort();
    let _ = first.task.await;
    assert_eq!(
        job(&pool, id).await.state,
        JobState::Running,
        "still leased by the dead worker"
    );

    let second = start(&pool, hang_first(attempts.clone()), fast_config());
    let done = wait_state(&pool, id, JobState::Completed, 15).await;
    second.shutdown().await;
    assert_eq!(done.attempt, 2, "the rescued attempt counts");
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        2,
        "ran once more after the rescue"
    );
    assert!(
        done.errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("lease expired"),
        "{}",
        done.errors
    );
    assert_eq!(done.output, Some(json!({"done_on_attempt": 2})));
}

#[tokio::test]
async fn retries_back_off_with_growing_gaps_then_discard_after_max_attempts() {
    let (_db, pool) = database().await;
    let registry = Registry::new().register("flaky", |_ctx: JobContext| async {
        Err::<Option<Value>, _>(JobError::retryable("ThrottlingException: Rate exceeded"))
    });
    let id = enqueue_max(&pool, "flaky", None, json!({}), 5).await;
    let w = start(&pool, registry, fast_config());
    let j = wait_state(&pool, id, JobState::Discarded, 20).await;
    w.shutdown().await;
    assert_eq!(j.attempt, 5);
    assert!(j.finalized_at.is_some());
    let errors = j.errors.as_array().unwrap();
    assert_eq!(errors.len(), 5, "one error per attempt: {errors:?}");
    assert!(errors
        .iter()
        .all(|e| e["error"] == "ThrottlingException: Rate exceeded" && e["permanent"] == false));
    let times: Vec<chrono::DateTime<chrono::Utc>> = errors
        .iter()
        .map(|e| e["at"].as_str().unwrap().parse().unwrap())
        .collect();
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_seconds_f64())
        .collect();
    // Delays are 40, 80, 160, 320 ms (+/- 10 %) plus claim latency: each gap grows.
    for pair in gaps.windows(2) {
        assert!(pair[1] > pair[0], "backoff grows: {gaps:?}");
    }
    assert!(
        gaps[3] >= 0.320 * 0.9,
        "the last gap honours the backoff: {gaps:?}"
    );
}

#[tokio::test]
async fn a_permanent_error_ends_the_job_at_once_with_its_message() {
    let (_db, pool) = database().await;
    let registry = Registry::new().register("strict", |_ctx: JobContext| async {
        Err::<Option<Value>, _>(JobError::permanent(
            "endpoint config has MinInstanceCount 1: set it to 0",
        ))
    });
    let id = enqueue(&pool, "strict", None, json!({})).await;
    let w = start(&pool, registry, fast_config());
    let j = wait_state(&pool, id, JobState::Discarded, 10).await;
    w.shutdown().await;
    assert_eq!(j.attempt, 1, "no retries for a permanent error");
    assert_eq!(
        j.errors[0]["error"],
        "endpoint config has MinInstanceCount 1: set it to 0"
    );
    assert_eq!(j.errors[0]["permanent"], true);
}

#[tokio::test]
async fn unknown_kinds_are_discarded_not_retried_forever() {
    let (_db, pool) = database().await;
    let id = enqueue(&pool, "mystery", None, json!({})).await;
    let w = start(&pool, Registry::new(), fast_config());
    let j = wait_state(&pool, id, JobState::Discarded, 10).await;
    w.shutdown().await;
    assert!(j.errors[0]["error"]
        .as_str()
        .unwrap()
        .contains("no handler"));
}

#[tokio::test]
async fn two_jobs_for_one_target_never_run_at_the_same_time() {
    let (_db, pool) = database().await;
    let current = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    // Each run holds until the test lets it go, so the first is still running, whatever the
    // machine's speed, while the test looks at the second.
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let (c, p, r) = (current.clone(), peak.clone(), release.clone());
    let registry = Registry::new().register("converge", move |_ctx: JobContext| {
        let (c, p, r) = (c.clone(), p.clone(), r.clone());
        async move {
            let now = c.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            r.acquire().await.expect("the gate stays open").forget();
            c.fetch_sub(1, Ordering::SeqCst);
            Ok(None)
        }
    });
    let config = fast_config();
    let poll = config.poll_interval;
    let w = start(&pool, registry, config);
    let first = enqueue(&pool, "converge", Some("component/shared"), json!({"v": 1})).await;
    wait_state(&pool, first, JobState::Running, 10).await;
    let second = enqueue(&pool, "converge", Some("component/shared"), json!({"v": 2})).await;
    // Several claim rounds pass (NOTIFY and polls) while the first is held.
    tokio::time::sleep(poll * 4).await;
    assert_eq!(
        job(&pool, second).await.state,
        JobState::Available,
        "waits for the running job"
    );
    release.add_permits(2);
    let a = wait_state(&pool, first, JobState::Completed, 10).await;
    let b = wait_state(&pool, second, JobState::Completed, 10).await;
    w.shutdown().await;
    assert_eq!(peak.load(Ordering::SeqCst), 1);
    assert!(b.attempted_at.unwrap() >= a.finalized_at.unwrap());

    // The database itself refuses a second running job for one target.
    let err = sqlx::query(
        "INSERT INTO jobs (kind, target, state, lease_owner, lease_until) VALUES \
         ('x', 'component/dup', 'running', 'w1', now()), ('x', 'component/dup', 'running', 'w2', now())",
    )
    .execute(&pool)
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("jobs_one_running_per_target"),
        "{err}"
    );
}

#[tokio::test]
async fn a_newer_job_supersedes_a_queued_older_one() {
    let (_db, pool) = database().await;
    let v1 = enqueue(
        &pool,
        "converge",
        Some("component/ic"),
        json!({"version": 1}),
    )
    .await;
    let v2 = enqueue(
        &pool,
        "converge",
        Some("component/ic"),
        json!({"version": 2}),
    )
    .await;
    let v3 = enqueue(
        &pool,
        "converge",
        Some("component/ic"),
        json!({"version": 3}),
    )
    .await;
    let other = enqueue(
        &pool,
        "converge",
        Some("component/other"),
        json!({"version": 1}),
    )
    .await;
    for old in [v1, v2] {
        let j = job(&pool, old).await;
        assert_eq!(j.state, JobState::Cancelled);
        assert!(j.errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("superseded"));
    }
    assert_eq!(job(&pool, v3).await.state, JobState::Available);
    assert_eq!(
        job(&pool, other).await.state,
        JobState::Available,
        "other targets are untouched"
    );
}

#[tokio::test]
async fn graceful_shutdown_releases_unfinished_work_for_another_worker() {
    let (_db, pool) = database().await;
    let slow = Registry::new().register("slow", |_ctx: JobContext| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(None)
    });
    let ids = [
        enqueue(&pool, "slow", None, json!({})).await,
        enqueue(&pool, "slow", None, json!({})).await,
        enqueue(&pool, "slow", None, json!({})).await,
    ];
    let mut config = fast_config();
    config.concurrency = 1;
    config.shutdown_grace = Duration::from_millis(200);
    let w = start(&pool, slow, config);
    wait_state(&pool, ids[0], JobState::Running, 10).await;
    let started = std::time::Instant::now();
    w.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown honoured the grace period"
    );
    let released = job(&pool, ids[0]).await;
    assert_eq!(
        released.state,
        JobState::Available,
        "released, not left leased"
    );
    assert_eq!(
        released.attempt, 0,
        "our shutdown does not burn the job's attempts"
    );
    assert!(released.lease_owner.is_none());
    for id in &ids[1..] {
        assert_eq!(
            job(&pool, *id).await.state,
            JobState::Available,
            "unstarted work stays queued"
        );
    }
    let quick = Registry::new().register("slow", |_ctx: JobContext| async { Ok(None) });
    let other = start(&pool, quick, fast_config());
    for id in ids {
        wait_state(&pool, id, JobState::Completed, 10).await;
    }
    other.shutdown().await;
}

#[tokio::test]
async fn notify_wakes_workers_without_waiting_for_the_poll() {
    let (_db, pool) = database().await;
    let mut config = fast_config();
    config.poll_interval = Duration::from_secs(60);
    let w = start(
        &pool,
        Registry::new().register("noop", |_c: JobContext| async { Ok(None) }),
        config,
    );
    tokio::time::sleep(Duration::from_millis(300)).await; // first poll tick passes; LISTEN is up
    let started = std::time::Instant::now();
    let id = enqueue(&pool, "noop", None, json!({})).await;
    wait_state(&pool, id, JobState::Completed, 10).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "woken by NOTIFY, not by the 60 s poll"
    );
    w.shutdown().await;
}

#[tokio::test]
async fn retention_deletes_old_finished_jobs_only() {
    let (_db, pool) = database().await;
    sqlx::query(
        "INSERT INTO jobs (kind, state, finalized_at) VALUES \
         ('old', 'completed', now() - interval '2 hours'), ('old', 'discarded', now() - interval '2 hours'), \
         ('new', 'completed', now())",
    )
    .execute(&pool)
    .await
    .unwrap();
    let queued = enqueue(&pool, "queued", None, json!({})).await;
    let mut config = fast_config();
    config.retention = Duration::from_secs(3600);
    let w = start(&pool, Registry::new(), config);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let old: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'old'")
            .fetch_one(&pool)
            .await
            .unwrap();
        if old == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "old jobs were not deleted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    w.shutdown().await;
    let new: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'new'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(new, 1);
    assert!(store::get(&pool, queued).await.unwrap().is_some());
}

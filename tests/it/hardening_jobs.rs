//! Hardening of the job engine (issue 14): one runner per job, a queued change is never
//! displaced, no AWS call while a database connection is held, keys and jobs expire in batches,
//! a stuck lock cannot hang the API.

use crate::common;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use common::{aws::SandboxEnv, reconcile::clients, spawn_app_with, TestApp, TestOptions};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use zeroscale::{
    jobs::{JobContext, Registry, RetryPolicy, Worker, WorkerConfig},
    reconcile::Reconciler,
    store::jobs as store,
};

fn config(lease: Duration) -> WorkerConfig {
    WorkerConfig {
        concurrency: 1,
        poll_interval: Duration::from_millis(25),
        lease,
        job_timeout: Duration::from_secs(30),
        retry: RetryPolicy {
            base: Duration::from_millis(40),
            cap: Duration::from_millis(200),
            jitter: 0.0,
        },
        maintenance_interval: Duration::from_millis(50),
        ..WorkerConfig::default()
    }
}

/// The API with AWS access against the demo world, and no worker yet.
async fn api() -> (SandboxEnv, TestApp, String) {
    let sb = SandboxEnv::demo().await;
    let app = spawn_app_with(TestOptions {
        aws: Some(clients(&sb.url).await),
        ..Default::default()
    })
    .await;
    let token = app.token("portal", "read,write").await;
    (sb, app, token)
}

async fn post(app: &TestApp, token: &str, path: &str) -> (u16, Value, Option<String>) {
    let resp = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    (status, resp.json().await.unwrap_or(Value::Null), location)
}

/// Enables demo-component; the operation's id.
async fn enable_demo_component(app: &TestApp, token: &str) -> i64 {
    let (status, _, location) = post(app, token, "/components/demo-component/scale-to-zero").await;
    assert_eq!(status, 202);
    location
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The reconcile handler over `pool`, against the sandbox.
async fn reconciler(sb: &SandboxEnv, pool: &PgPool) -> Registry {
    Reconciler {
        aws: clients(&sb.url).await,
        pool: pool.clone(),
    }
    .register(Registry::new())
}

async fn reconciler_worker(sb: &SandboxEnv, app: &TestApp) -> CancellationToken {
    let pool = PgPool::connect(&app.db.url).await.unwrap();
    let registry = reconciler(sb, &pool).await;
    let stop = CancellationToken::new();
    tokio::spawn(Worker::new(pool, registry, config(Duration::from_secs(10))).run(stop.clone()));
    stop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_lost_its_lease_writes_no_phase_audit_event_or_output() {
    let (sb, app, token) = api().await;
    let op = enable_demo_component(&app, &token).await;
    let lease = Duration::from_secs(60);
    let stale = store::claim(&app.pool, "worker-a", 1, lease).await.unwrap();
    assert_eq!(stale[0].id, op);
    // The lease runs out (a GC pause, a network partition); the rescuer hands the job back and
    // the same worker claims it again: attempt 2. The first run is now stale.
    sqlx::query(
        "UPDATE jobs SET state = 'retryable', lease_owner = NULL, lease_until = NULL WHERE id = $1",
    )
    .bind(op)
    .execute(&app.pool)
    .await
    .unwrap();
    let current = store::claim(&app.pool, "worker-a", 1, lease).await.unwrap();
    assert_eq!((current[0].id, current[0].attempt), (op, 2));

    let registry = reconciler(&sb, &app.pool).await;
    let handler = registry.get("reconcile").unwrap();
    let _ = handler
        .run(JobContext::new(stale[0].clone(), app.pool.clone()))
        .await;

    let applied: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE job_id = $1 AND outcome <> 'accepted'",
    )
    .bind(op)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        applied, 0,
        "the stale run wrote an outcome to the audit log"
    );
    let (phase, output): (String, Option<Value>) = sqlx::query_as(
        "SELECT t.phase::text, j.output FROM targets t JOIN jobs j ON j.id = t.last_job_id",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(phase, "pending", "the stale run changed the phase");
    assert_eq!(output, None, "the stale run wrote the job's output");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_lease_stops_the_handler() {
    let (_sb, app, _) = api().await;
    let finished = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let (f, s) = (finished.clone(), started.clone());
    // Only the first run counts: the job is rescued later and may run again, legitimately.
    let registry = Registry::new().register("slow", move |ctx: JobContext| {
        let (f, s) = (f.clone(), s.clone());
        async move {
            if ctx.job.attempt == 1 {
                s.store(true, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1500)).await;
                f.store(true, Ordering::SeqCst);
            }
            Ok(None)
        }
    });
    let mut tx = app.pool.begin().await.unwrap();
    let job = zeroscale::jobs::enqueue(
        &mut tx,
        &zeroscale::jobs::new_job("slow", Some("t/slow".into()), json!({})),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(
        Worker::new(
            app.pool.clone(),
            registry,
            config(Duration::from_millis(300)),
        )
        .run(stop.clone()),
    );
    while !started.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Another worker took the job over (as a rescue and a new claim would).
    sqlx::query(
        "UPDATE jobs SET lease_owner = 'another-worker', attempt = attempt + 1 WHERE id = $1",
    )
    .bind(job.id)
    .execute(&app.pool)
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.cancel();
    assert!(
        !finished.load(Ordering::SeqCst),
        "the handler kept running after its lease was lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rescued_job_keeps_its_place_in_the_queue() {
    let (_sb, app, _) = api().await;
    let order = Arc::new(Mutex::new(Vec::<i64>::new()));
    let o = order.clone();
    let registry = Registry::new().register("step", move |ctx: JobContext| {
        let o = o.clone();
        async move {
            o.lock().unwrap().push(ctx.job.id);
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(None)
        }
    });
    let enqueue = |target: String| {
        let pool = app.pool.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            let j = zeroscale::jobs::enqueue(
                &mut tx,
                &zeroscale::jobs::new_job("step", Some(target), json!({})),
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
            j.id
        }
    };
    let first = enqueue("t/first".into()).await;
    // Its worker died right after claiming it: the lease is already over.
    let claimed = store::claim(&app.pool, "dead-worker", 1, Duration::from_millis(1))
        .await
        .unwrap();
    assert_eq!(claimed[0].id, first);
    for i in 0..30 {
        enqueue(format!("t/{i}")).await;
    }
    let stop = CancellationToken::new();
    tokio::spawn(
        Worker::new(app.pool.clone(), registry, config(Duration::from_secs(5))).run(stop.clone()),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while order.lock().unwrap().len() < 31 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    let order = order.lock().unwrap().clone();
    let place = order.iter().position(|id| *id == first);
    assert!(
        place.is_some_and(|p| p < 5),
        "the rescued job ran at position {place:?} of {}: it went to the back of the queue",
        order.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rescue_waits_a_backoff() {
    let (_sb, app, _) = api().await;
    let mut tx = app.pool.begin().await.unwrap();
    let job = zeroscale::jobs::enqueue(&mut tx, &zeroscale::jobs::new_job("x", None, json!({})))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    store::claim(&app.pool, "dead-worker", 1, Duration::from_millis(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let rescued = store::rescue_expired(&app.pool, |_| Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(rescued.rescued, 1);
    let wait: f64 = sqlx::query_scalar(
        "SELECT EXTRACT(EPOCH FROM scheduled_at - now())::float8 FROM jobs WHERE id = $1",
    )
    .bind(job.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(wait > 25.0, "rescued with no backoff ({wait} s)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_reconcile_joins_the_queued_change() {
    let (sb, app, token) = api().await;
    let (status, _, change_op) =
        post(&app, &token, "/components/demo-component/scale-to-zero").await;
    assert_eq!(status, 202);
    let (status, body, reconcile_op) =
        post(&app, &token, "/components/demo-component/reconcile").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        reconcile_op, change_op,
        "the reconcile answered with another operation"
    );
    assert_eq!(
        body["target"]["last_operation"]["url"].as_str(),
        change_op.as_deref()
    );
    let states: Vec<(String,)> = sqlx::query_as("SELECT state::text FROM jobs ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        states,
        vec![("available".to_string(),)],
        "the change was displaced"
    );

    let stop = reconciler_worker(&sb, &app).await;
    let op = change_op.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: Value = app
            .client
            .get(app.url(&op))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["state"] == "completed" {
            assert_eq!(v["output"]["reason"], "change", "{v}");
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    let actions: Vec<(String, String)> =
        sqlx::query_as("SELECT action, outcome FROM audit_log ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let actions: Vec<(&str, &str)> = actions
        .iter()
        .map(|(a, o)| (a.as_str(), o.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("enable", "accepted"),
            ("reconcile", "accepted"),
            ("apply", "applied")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_enables_hold_no_connection_while_aws_answers() {
    let sb = SandboxEnv::demo().await;
    for op in ["DescribeEndpoint", "DescribeInferenceComponent"] {
        sb.control("PUT", &format!("/faults/{op}"), json!({"latency_ms": 1500}))
            .await;
    }
    let app = spawn_app_with(TestOptions {
        aws: Some(clients(&sb.url).await),
        pool_size: Some(3),
        ..Default::default()
    })
    .await;
    let token = app.token("portal", "read,write").await;
    let app = Arc::new(app);
    let writes: Vec<_> = (0..6)
        .map(|i| {
            let (app, token) = (app.clone(), token.clone());
            tokio::spawn(async move {
                post(
                    &app,
                    &token,
                    &format!("/components/new-component-{i}/scale-to-zero"),
                )
                .await
                .0
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let slowest = Arc::new(AtomicUsize::new(0));
    for _ in 0..5 {
        let started = Instant::now();
        let resp = app
            .client
            .get(app.url("/components"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        slowest.fetch_max(started.elapsed().as_millis() as usize, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for w in writes {
        assert_eq!(w.await.unwrap(), 202);
    }
    let slowest = slowest.load(Ordering::SeqCst);
    // A read held for a connection would wait for a 1.5 s AWS answer to free one; other
    // tests share the machine, so the bound is two thirds of that, not a latency target.
    assert!(
        slowest < 1000,
        "a read waited {slowest} ms for a connection while first enables asked AWS"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_idempotency_keys_and_finished_jobs_are_deleted_in_batches() {
    let (_sb, app, _) = api().await;
    sqlx::query(
        "INSERT INTO idempotency_keys (actor, method, path, key, body_sha256, status, response, created_at) \
         SELECT 'portal', 'POST', '/x', 'k' || g, '\\x00', 202, '{}', now() - interval '25 hours' \
         FROM generate_series(1, 2500) g",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO idempotency_keys (actor, method, path, key, body_sha256, status, response) \
         SELECT 'portal', 'POST', '/x', 'fresh' || g, '\\x00', 202, '{}' FROM generate_series(1, 3) g",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO jobs (kind, state, finalized_at) SELECT 'old', 'completed', now() - interval '30 days' \
         FROM generate_series(1, 2500)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(
        Worker::new(
            app.pool.clone(),
            Registry::new(),
            config(Duration::from_secs(5)),
        )
        .run(stop.clone()),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while (app.count("idempotency_keys").await > 3 || app.count("jobs").await > 0)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    assert_eq!(
        app.count("idempotency_keys").await,
        3,
        "expired keys are kept forever"
    );
    assert_eq!(app.count("jobs").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_lock_answers_503_database_busy_instead_of_hanging() {
    let sb = SandboxEnv::demo().await;
    let app = spawn_app_with(TestOptions {
        aws: Some(clients(&sb.url).await),
        lock_timeout: Some(Duration::from_millis(300)),
        ..Default::default()
    })
    .await;
    let token = app.token("portal", "read,write").await;
    assert_eq!(
        post(&app, &token, "/components/demo-component/scale-to-zero")
            .await
            .0,
        202
    );
    let mut holder = app.pool.begin().await.unwrap();
    sqlx::query("SELECT * FROM targets FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let started = Instant::now();
    let resp = app
        .client
        .delete(app.url("/components/demo-component/scale-to-zero"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["code"], "database_busy", "{problem}");
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
    holder.rollback().await.unwrap();
    assert_eq!(
        app.count("audit_log").await,
        1,
        "the refused change wrote nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_errors_show_a_code_and_a_sentence_never_driver_text() {
    let (sb, app, token) = api().await;
    let (status, _, op) = post(&app, &token, "/components/demo-component/scale-to-zero").await;
    assert_eq!(status, 202);
    let op = op.unwrap();
    // Someone holds the targets table: the worker's read times out on the lock.
    let mut holder = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE targets IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let options = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&app.db.url)
        .unwrap()
        .options([("lock_timeout", "200ms")]);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(3)
        .connect_with(options)
        .await
        .unwrap();
    let registry = reconciler(&sb, &pool).await;
    let stop = CancellationToken::new();
    tokio::spawn(Worker::new(pool, registry, config(Duration::from_secs(10))).run(stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let operation = loop {
        let v: Value = app
            .client
            .get(app.url(&op))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !v["errors"].as_array().unwrap().is_empty() {
            break v;
        }
        assert!(Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.cancel();
    holder.rollback().await.unwrap();
    let error = &operation["errors"][0];
    let text = error["error"].as_str().unwrap();
    for leak in [
        "lock timeout",
        "canceling statement",
        "error returned from database",
        "sqlx",
        "55P03",
    ] {
        assert!(
            !text.contains(leak),
            "driver text reached the client: {text}"
        );
    }
    assert_eq!(error["code"], "database_busy", "{operation}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_ends_its_job_in_the_transaction_that_records_its_outcome() {
    let (sb, app, token) = api().await;
    let op = enable_demo_component(&app, &token).await;
    let claimed = store::claim(&app.pool, "worker-a", 1, Duration::from_secs(60))
        .await
        .unwrap();
    let registry = reconciler(&sb, &app.pool).await;
    // The handler returns; the worker that ran it dies before it can record anything more.
    registry
        .get("reconcile")
        .unwrap()
        .run(JobContext::new(claimed[0].clone(), app.pool.clone()))
        .await
        .unwrap();
    let (state, applied): (String, i64) = sqlx::query_as(
        "SELECT j.state::text, (SELECT count(*) FROM audit_log WHERE job_id = j.id AND outcome = 'applied') \
         FROM jobs j WHERE j.id = $1",
    )
    .bind(op)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    // Had the outcome been recorded without ending the job, the rescuer would re-run it and a
    // second `applied` event would follow.
    assert_eq!(
        (state.as_str(), applied),
        ("completed", 1),
        "the audit event and the job's end were written apart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_the_engine_discards_leaves_its_target_failed_and_audited() {
    let (sb, app, token) = api().await;
    let op = enable_demo_component(&app, &token).await;
    // Its last attempt, and AWS slower than the job may take: the engine discards it.
    sqlx::query("UPDATE jobs SET max_attempts = 1 WHERE id = $1")
        .bind(op)
        .execute(&app.pool)
        .await
        .unwrap();
    sb.control(
        "PUT",
        "/faults/DescribeInferenceComponent",
        json!({"latency_ms": 3000}),
    )
    .await;
    let registry = reconciler(&sb, &app.pool).await;
    let stop = CancellationToken::new();
    let config = WorkerConfig {
        job_timeout: Duration::from_millis(500),
        ..config(Duration::from_secs(10))
    };
    tokio::spawn(Worker::new(app.pool.clone(), registry, config).run(stop.clone()));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (phase, failed): (String, i64) = sqlx::query_as(
            "SELECT phase::text, (SELECT count(*) FROM audit_log WHERE job_id = $1 AND outcome = 'failed') \
             FROM targets",
        )
        .bind(op)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if phase == "failed" && failed == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the target stayed {phase:?} with {failed} failed event(s)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    let state: String = sqlx::query_scalar("SELECT state::text FROM jobs WHERE id = $1")
        .bind(op)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(state, "discarded");
}

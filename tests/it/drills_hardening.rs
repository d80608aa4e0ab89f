//! Hardening drills (issue 14): a replica SIGKILLed mid-run, and Postgres going away during 100
//! enables. Figures are printed (run with `--nocapture` to read them).

use crate::common;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{aws::SandboxEnv, spawn_app_with, TestApp, TestOptions};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use zeroscale::{
    config::{AwsArgs, HttpArgs},
    jobs::{Registry, RetryPolicy, Worker, WorkerConfig},
    reconcile::Reconciler,
};

const BIN: &str = env!("CARGO_BIN_EXE_zeroscale");
const N: usize = 100;

async fn seed(sb: &SandboxEnv) -> Vec<String> {
    let names: Vec<String> = (0..N).map(|i| format!("drill-ic-{i}")).collect();
    let components: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": n, "endpoint": "drill-ep"}))
        .collect();
    sb.control("POST", "/seed", json!({
        "quotas": {"ml.g5.xlarge": 1000},
        "endpoints": [{"name": "drill-ep", "instance_type": "ml.g5.xlarge", "min_instances": 0, "max_instances": 200}],
        "components": components,
    }))
    .await;
    // Slow AWS: every policy write takes 300 ms.
    sb.control(
        "PUT",
        "/faults/PutScalingPolicy",
        json!({"latency_ms": 300}),
    )
    .await;
    names
}

fn unlimited_writes() -> Option<HttpArgs> {
    Some(HttpArgs {
        write_rate_limit: 0,
        ..Default::default()
    })
}

async fn completed(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'completed'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn wait_all_completed(app: &TestApp, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while completed(app).await < N as i64 {
        let stuck: Vec<(i64, String, i32, Value)> = sqlx::query_as(
            "SELECT id, state::text, attempt, errors FROM jobs WHERE state <> 'completed' ORDER BY id LIMIT 3",
        )
        .fetch_all(&app.pool)
        .await
        .unwrap();
        assert!(Instant::now() < deadline, "not converged: {stuck:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every target converged once: AWS holds exactly one of each object per component, every
/// change has exactly one `accepted` and one `applied` event, and no AWS write was repeated
/// beyond the attempts its job made.
async fn assert_converged_once(sb: &SandboxEnv, app: &TestApp) {
    let (targets, policies) = sb.all_targets_and_policies().await;
    assert_eq!(targets.len(), N);
    assert_eq!(policies.len(), 2 * N);
    let ready: i64 = sqlx::query_scalar("SELECT count(*) FROM targets WHERE phase = 'ready'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(ready, N as i64, "every target converged");
    let events: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT target_name, count(*) FILTER (WHERE outcome = 'accepted'), \
           count(*) FILTER (WHERE outcome = 'applied') FROM audit_log GROUP BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(events.len(), N);
    for (name, accepted, applied) in &events {
        assert_eq!((*accepted, *applied), (1, 1), "{name}");
    }
    // Writes per component against the attempts its job made.
    let attempts: HashMap<String, i64> = sqlx::query_as::<_, (String, i32)>(
        "SELECT target, attempt FROM jobs WHERE state = 'completed'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(t, a)| (t, i64::from(a)))
    .collect();
    let mut writes: HashMap<(String, String), i64> = HashMap::new();
    for call in sb.calls().await {
        let op = call["operation"].as_str().unwrap_or_default().to_string();
        // Writes AWS accepted (a refused call retried in the same attempt wrote nothing).
        if ![
            "RegisterScalableTarget",
            "PutScalingPolicy",
            "PutMetricAlarm",
        ]
        .contains(&op.as_str())
            || !call["error"].is_null()
        {
            continue;
        }
        let resource = call["params"]["ResourceId"]
            .as_str()
            .map(str::to_string)
            .or_else(|| {
                call["params"]["AlarmName"]
                    .as_str()
                    .and_then(|a| a.strip_prefix("zeroscale/"))
                    .and_then(|a| a.rsplit_once('/'))
                    .map(|(r, _)| r.to_string())
            })
            .unwrap_or_default();
        let key = if op == "PutScalingPolicy" {
            format!(
                "{op}:{}",
                call["params"]["PolicyName"].as_str().unwrap_or_default()
            )
        } else {
            op
        };
        *writes.entry((resource, key)).or_default() += 1;
    }
    for ((resource, op), n) in &writes {
        let allowed = attempts.get(resource).copied().unwrap_or(0);
        assert!(
            *n <= allowed,
            "{op} on {resource} written {n} times by a job of {allowed} attempt(s)"
        );
    }
}

fn worker_process(db_url: &str, aws_url: &str) -> tokio::process::Child {
    tokio::process::Command::new(BIN)
        .arg("worker")
        .env("DATABASE_URL", db_url)
        .env("ZEROSCALE_AWS_ENDPOINT_URL", aws_url)
        .env("ZEROSCALE_AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDSANDBOX")
        .env("AWS_SECRET_ACCESS_KEY", "sandbox-secret")
        .env_remove("AWS_PROFILE")
        .env("ZEROSCALE_JOB_LEASE", "3s")
        .env("ZEROSCALE_WORKER_POLL_INTERVAL", "100ms")
        .env("ZEROSCALE_WORKER_CONCURRENCY", "8")
        .env("ZEROSCALE_DRIFT_INTERVAL", "0")
        .env("ZEROSCALE_AWS_RATE_LIMIT", "500")
        .env("ZEROSCALE_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start a worker process")
}

async fn enable(app: &TestApp, token: &str, name: &str) {
    let resp = app
        .client
        .post(app.url(&format!("/components/{name}/scale-to-zero")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_one_sigkilled_mid_run_converge_every_target_once() {
    let sb = SandboxEnv::start().await;
    let names = seed(&sb).await;
    let app = spawn_app_with(TestOptions {
        http: unlimited_writes(),
        ..Default::default()
    })
    .await;
    let token = app.token("portal", "read,write").await;
    let mut doomed = worker_process(&app.db.url, &sb.url);
    let mut survivor = worker_process(&app.db.url, &sb.url);
    let doomed_pid = doomed.id().unwrap();
    let started = Instant::now();
    for name in &names {
        enable(&app, &token, name).await;
    }
    // Kill the first replica while it holds jobs.
    let owner_like = format!("%-{doomed_pid}-%");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE state = 'running' AND lease_owner LIKE $1",
        )
        .bind(&owner_like)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if held >= 4 && completed(&app).await >= 8 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first replica never ran jobs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    doomed.kill().await.unwrap(); // SIGKILL: no drain, no release
    let killed_at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let orphaned: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM jobs WHERE state = 'running' AND lease_owner LIKE $1")
            .bind(&owner_like)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert!(!orphaned.is_empty());
    wait_all_completed(&app, 120).await;
    let total = started.elapsed();
    let reclaimed: Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT attempted_at, finalized_at FROM jobs WHERE id = ANY($1)")
            .bind(&orphaned)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let secs =
        |t: chrono::DateTime<chrono::Utc>| (t - killed_at).num_milliseconds() as f64 / 1000.0;
    let reclaim: Vec<f64> = reclaimed.iter().map(|(a, _)| secs(*a)).collect();
    let done: Vec<f64> = reclaimed.iter().map(|(_, f)| secs(*f)).collect();
    let max = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    eprintln!(
        "drill sigkill: {N} enables, 2 worker processes (lease 3 s), one SIGKILLed holding {} jobs; \
         rescued jobs re-claimed {:.1}-{:.1} s after the kill and completed by {:.1} s; all {N} converged in {:.1} s",
        orphaned.len(),
        reclaim.iter().cloned().fold(f64::MAX, f64::min),
        max(&reclaim),
        max(&done),
        total.as_secs_f64()
    );
    assert_converged_once(&sb, &app).await;
    survivor.kill().await.unwrap();
}

async fn in_process_worker(sb: &SandboxEnv, db_url: &str) -> CancellationToken {
    let aws = zeroscale::aws::AwsClients::from_shared(
        &common::aws::sdk_config(&sb.url).await,
        &AwsArgs {
            rate_limit: 500,
            ..Default::default()
        },
    );
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(5)
        .acquire_timeout(Duration::from_secs(2))
        .connect(db_url)
        .await
        .unwrap();
    let registry = Reconciler {
        aws,
        pool: pool.clone(),
    }
    .register(Registry::new());
    let config = WorkerConfig {
        concurrency: 8,
        poll_interval: Duration::from_millis(100),
        lease: Duration::from_secs(3),
        retry: RetryPolicy {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(2),
            jitter: 0.1,
        },
        maintenance_interval: Duration::from_millis(500),
        ..WorkerConfig::default()
    };
    let stop = CancellationToken::new();
    tokio::spawn(Worker::new(pool, registry, config).run(stop.clone()));
    stop
}

/// (seconds since the start, status) of every answer a poller got.
type Log = Arc<Mutex<Vec<(f64, u16)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_during_100_enables_loses_and_duplicates_nothing() {
    let sb = SandboxEnv::start().await;
    let names = seed(&sb).await;
    let app = Arc::new(
        spawn_app_with(TestOptions {
            via_proxy: true,
            http: unlimited_writes(),
            ..Default::default()
        })
        .await,
    );
    let token = app.token("portal", "read,write").await;
    let proxy_addr = app.proxy.as_ref().unwrap().addr;
    let stop = in_process_worker(&sb, &app.db.url_via(proxy_addr)).await;
    let t0 = Instant::now();
    let now = move || t0.elapsed().as_secs_f64();

    let readiness: Log = Arc::default();
    let polling = CancellationToken::new();
    let poller = {
        let (app, log, polling) = (app.clone(), readiness.clone(), polling.clone());
        tokio::spawn(async move {
            while !polling.is_cancelled() {
                if let Ok(r) = app.client.get(app.url("/readyz")).send().await {
                    log.lock().unwrap().push((now(), r.status().as_u16()));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // A client making 100 changes, retrying each (same Idempotency-Key) while it gets 503.
    let answers: Log = Arc::default();
    let client = {
        let (app, log, token) = (app.clone(), answers.clone(), token.clone());
        tokio::spawn(async move {
            for name in names {
                loop {
                    let resp = app
                        .client
                        .post(app.url(&format!("/components/{name}/scale-to-zero")))
                        .bearer_auth(&token)
                        .header("idempotency-key", format!("drill-{name}"))
                        .send()
                        .await;
                    let status = resp.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
                    log.lock().unwrap().push((now(), status));
                    if status == 202 {
                        break;
                    }
                    assert!(status == 503 || status == 0, "{name}: {status}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let cut_at = now();
    app.proxy.as_ref().unwrap().cut();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    app.proxy.as_ref().unwrap().restore();
    let restored_at = now();
    client.await.unwrap();
    wait_all_completed(&app, 120).await;
    polling.cancel();
    poller.await.unwrap();
    stop.cancel();

    let readiness = readiness.lock().unwrap().clone();
    let answers = answers.lock().unwrap().clone();
    assert!(
        readiness.iter().any(|(t, s)| *s == 503 && *t >= cut_at),
        "readiness never reported the outage"
    );
    let ready_again = readiness
        .iter()
        .find(|(t, s)| *t >= restored_at && *s == 200)
        .map(|(t, _)| *t)
        .expect("readiness came back");
    assert_eq!(readiness.last().unwrap().1, 200);
    let outside: Vec<_> = answers
        .iter()
        .chain(readiness.iter())
        .filter(|(t, s)| (*s >= 500 || *s == 0) && (*t < cut_at || *t > ready_again))
        .collect();
    assert!(outside.is_empty(), "5xx outside the outage: {outside:?}");
    let refused = answers.iter().filter(|(_, s)| *s != 202).count();
    eprintln!(
        "drill postgres: outage {cut_at:.2}-{restored_at:.2} s, ready again at {ready_again:.2} s \
         ({:.2} s after the restore); {refused} answers were 503 (retried with the same \
         Idempotency-Key), none outside the outage",
        ready_again - restored_at
    );
    let versions: Vec<i32> = sqlx::query_scalar("SELECT version FROM targets")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        versions,
        vec![1; N],
        "a retried change made a second version"
    );
    assert_converged_once(&sb, &app).await;
}

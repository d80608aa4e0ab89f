//! Failure drills: the database goes away while jobs run, AWS (the sandbox) is unreachable for a
//! while, and a worker gets SIGTERM mid-job. Nothing may be lost or duplicated.

use crate::common;

use std::time::Duration;

use common::{aws::SandboxEnv, proxy::Proxy, spawn_app_with, TestApp, TestOptions};
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zeroscale::{
    aws::AwsClients,
    config::AwsArgs,
    jobs::{Registry, RetryPolicy, Worker, WorkerConfig},
    reconcile::Reconciler,
};

fn config(grace_ms: u64) -> WorkerConfig {
    WorkerConfig {
        concurrency: 4,
        poll_interval: Duration::from_millis(50),
        lease: Duration::from_secs(3),
        job_timeout: Duration::from_secs(30),
        retry: RetryPolicy {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(500),
            jitter: 0.1,
        },
        shutdown_grace: Duration::from_millis(grace_ms),
        retention: Duration::from_secs(3600),
        maintenance_interval: Duration::from_millis(200),
        idempotency_ttl: Duration::from_secs(86_400),
    }
}

async fn worker(
    aws_url: &str,
    db_url: &str,
    grace_ms: u64,
    stop: CancellationToken,
) -> JoinHandle<anyhow::Result<()>> {
    let aws = AwsClients::from_shared(&common::aws::sdk_config(aws_url).await, &AwsArgs::default());
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
    tokio::spawn(Worker::new(pool, registry, config(grace_ms)).run(stop))
}

async fn enable(app: &TestApp, token: &str, name: &str) -> String {
    let resp = app
        .client
        .post(app.url(&format!("/components/{name}/scale-to-zero")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let v: Value = resp.json().await.unwrap();
    v["target"]["last_operation"]["url"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn wait_completed(app: &TestApp, token: &str, op: &str, secs: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Ok(r) = app.client.get(app.url(op)).bearer_auth(token).send().await {
            if let Ok(v) = r.json::<Value>().await {
                if v["state"] == "completed" {
                    return v;
                }
                assert_ne!(v["state"], "discarded", "{v}");
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{op} did not complete"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn seed_components(sb: &SandboxEnv, n: usize) -> Vec<String> {
    let names: Vec<String> = (0..n).map(|i| format!("drill-ic-{i}")).collect();
    let components: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": n, "endpoint": "drill-ep"}))
        .collect();
    sb.control("POST", "/seed", json!({
        "quotas": {"ml.g5.xlarge": 100},
        "endpoints": [{"name": "drill-ep", "instance_type": "ml.g5.xlarge", "min_instances": 0, "max_instances": 50}],
        "components": components,
    })).await;
    names
}

async fn assert_no_duplicates(sb: &SandboxEnv, n: usize) {
    // Every list pages (10 policies, 50 targets and alarms a page): follow NextToken.
    let (targets, policies) = sb.all_targets_and_policies().await;
    assert_eq!(targets.len(), n);
    assert_eq!(policies.len(), 2 * n);
    let alarms = sb
        .cw
        .describe_alarms()
        .alarm_name_prefix("zeroscale/")
        .send()
        .await
        .unwrap();
    assert_eq!(alarms.metric_alarms().len(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_while_jobs_run_loses_and_duplicates_nothing() {
    let sb = SandboxEnv::start().await;
    let names = seed_components(&sb, 5).await;
    sb.control(
        "PUT",
        "/faults/PutScalingPolicy",
        json!({"latency_ms": 300}),
    )
    .await;
    let app = spawn_app_with(TestOptions {
        via_proxy: true,
        ..Default::default()
    })
    .await;
    let proxy = app.proxy.as_ref().unwrap();
    let token = app.token("portal", "read,write").await;
    let stop = CancellationToken::new();
    let _w = worker(&sb.url, &app.db.url_via(proxy.addr), 5000, stop.clone()).await;
    let mut ops = Vec::new();
    for n in &names {
        ops.push(enable(&app, &token, n).await);
    }
    common::wait_for("a job mid-flight", Duration::from_secs(10), || async {
        let running: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'running'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
        (running > 0).then_some(())
    })
    .await;
    proxy.cut();
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "readiness reflects the outage");
    // The outage lasts a while (the scenario), whatever the jobs do meanwhile.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.restore();
    for op in &ops {
        wait_completed(&app, &token, op, 60).await;
    }
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_no_duplicates(&sb, names.len()).await;
    let lost: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state <> 'completed'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(lost, 0, "every job completed");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_unreachable_for_a_while_backs_off_then_converges() {
    let sb = SandboxEnv::start().await;
    let names = seed_components(&sb, 3).await;
    let aws_proxy = Proxy::start(sb.url.trim_start_matches("http://").parse().unwrap()).await;
    let app = common::spawn_app().await;
    let token = app.token("portal", "read,write").await;
    aws_proxy.cut();
    let stop = CancellationToken::new();
    let _w = worker(
        &format!("http://{}", aws_proxy.addr),
        &app.db.url,
        5000,
        stop.clone(),
    )
    .await;
    let mut ops = Vec::new();
    for n in &names {
        ops.push(enable(&app, &token, n).await);
    }
    let failing: Value = common::wait_for(
        "a retry while AWS is away",
        Duration::from_secs(30),
        || async {
            let op: Value = app
                .client
                .get(app.url(&ops[0]))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (op["attempt"].as_i64().unwrap_or(0) >= 2 && op["errors"][0].is_object()).then_some(op)
        },
    )
    .await;
    assert!(
        failing["attempt"].as_i64().unwrap() >= 2,
        "retrying while AWS is away: {failing}"
    );
    assert_eq!(failing["errors"][0]["permanent"], false);
    // A sentence and AWS's code for the failure, never the SDK's debug text.
    let error = failing["errors"][0]["error"].as_str().unwrap();
    assert!(
        !error.contains("ConnectorError") && !error.contains('{'),
        "SDK debug text reached the client: {error}"
    );
    assert_eq!(failing["errors"][0]["code"], "DispatchFailure", "{failing}");
    aws_proxy.restore();
    for op in &ops {
        wait_completed(&app, &token, op, 60).await;
    }
    assert_no_duplicates(&sb, names.len()).await;
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_job_releases_it_to_another_worker() {
    let sb = SandboxEnv::start().await;
    let names = seed_components(&sb, 1).await;
    sb.control(
        "PUT",
        "/faults/PutScalingPolicy",
        json!({"latency_ms": 2000}),
    )
    .await;
    let app = common::spawn_app().await;
    let token = app.token("portal", "read,write").await;
    let first_stop = CancellationToken::new();
    let first = worker(&sb.url, &app.db.url, 200, first_stop.clone()).await;
    let op = enable(&app, &token, &names[0]).await;
    common::wait_for(
        "the first worker mid-job (PutScalingPolicy sent)",
        Duration::from_secs(10),
        || async {
            let calls = sb.calls().await;
            calls
                .iter()
                .any(|c| c["operation"] == "PutScalingPolicy")
                .then_some(())
        },
    )
    .await;
    first_stop.cancel(); // SIGTERM: stop claiming, 200 ms grace, then release
    first.await.unwrap().unwrap();
    let released: Value = app
        .client
        .get(app.url(&op))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        released["state"], "available",
        "released for another worker: {released}"
    );
    sb.control("DELETE", "/faults", json!({})).await;
    let second_stop = CancellationToken::new();
    let _second = worker(&sb.url, &app.db.url, 5000, second_stop.clone()).await;
    wait_completed(&app, &token, &op, 30).await;
    assert_no_duplicates(&sb, 1).await;
    second_stop.cancel();
}

//! The whole stack for reconcile tests: the API, a job worker running the reconciler, and a
//! sandbox seeded with the demo world, talked to over HTTP with the real SDK clients.

use std::time::Duration;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use zeroscale::{
    aws::AwsClients,
    config::AwsArgs,
    jobs::{Registry, RetryPolicy, Worker, WorkerConfig},
    reconcile::Reconciler,
};

use super::{aws::SandboxEnv, spawn_app_with, TestApp, TestOptions};

/// AWS operations that write.
pub const WRITES: [&str; 6] = [
    "RegisterScalableTarget",
    "PutScalingPolicy",
    "PutMetricAlarm",
    "DeleteAlarms",
    "DeleteScalingPolicy",
    "DeregisterScalableTarget",
];

/// An app whose API has AWS access (as `serve` has), a sandbox seeded with the demo world, a
/// worker running the reconciler, and a read-write token.
pub struct Env {
    pub app: TestApp,
    pub sb: SandboxEnv,
    /// The worker's clients (its pacer is the one the jobs use).
    pub aws: AwsClients,
    pub token: String,
    pub stop: CancellationToken,
    /// Why this test may end with jobs that did not finish (see [`Env::allow_unfinished_jobs`]).
    pub unfinished_ok: Option<&'static str>,
}

/// As crates.io's test harness does: a test that enqueued jobs must have run them. When an
/// [`Env`] goes away (and the test has not already failed), every job must be finished
/// (completed, discarded or cancelled); one still queued, retrying or running means the test
/// stopped before what it asked for happened, so its assertions may not cover it.
impl Drop for Env {
    fn drop(&mut self) {
        self.stop.cancel();
        if std::thread::panicking() || self.unfinished_ok.is_some() {
            return;
        }
        let url = self.app.db.url.clone();
        let unfinished = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await?;
                sqlx::query_as::<_, (i64, String, String, String)>(
                    "SELECT id, kind, COALESCE(target, ''), state::text FROM jobs \
                     WHERE state IN ('available', 'retryable', 'running') ORDER BY id",
                )
                .fetch_all(&mut conn)
                .await
            })
        })
        .join()
        .expect("the unfinished-jobs check ran");
        match unfinished {
            Ok(jobs) if jobs.is_empty() => {}
            Ok(jobs) => panic!(
                "the test ended with {} job(s) it enqueued not run to the end (id, kind, target, state): {jobs:?}; \
                 wait for them, or call Env::allow_unfinished_jobs with the reason",
                jobs.len()
            ),
            Err(e) => panic!("the unfinished-jobs check could not read the jobs: {e}"),
        }
    }
}

/// Job-engine settings for tests: fast polls and retries, leases long enough not to expire.
pub fn fast_worker_config() -> WorkerConfig {
    WorkerConfig {
        concurrency: 4,
        poll_interval: Duration::from_millis(50),
        lease: Duration::from_secs(10),
        job_timeout: Duration::from_secs(30),
        retry: RetryPolicy {
            base: Duration::from_millis(50),
            cap: Duration::from_millis(500),
            jitter: 0.1,
        },
        shutdown_grace: Duration::from_secs(5),
        retention: Duration::from_secs(3600),
        maintenance_interval: Duration::from_millis(200),
        idempotency_ttl: Duration::from_secs(86_400),
    }
}

/// Clients for the sandbox at `url`, SDK retries off: every fault reaches the job engine,
/// whose retries the operation counts.
pub async fn clients(url: &str) -> AwsClients {
    clients_at(url, AwsArgs::default().rate_limit).await
}

/// As [`clients`], pacing at `rate_limit` calls/s.
pub async fn clients_at(url: &str, rate_limit: u32) -> AwsClients {
    let args = AwsArgs {
        rate_limit,
        ..AwsArgs::default()
    };
    AwsClients::from_shared(&super::aws::sdk_config(url).await, &args)
}

/// The whole stack against the demo world.
pub async fn env() -> Env {
    env_at(AwsArgs::default().rate_limit, None).await
}

/// As [`env`], with the worker pacing AWS calls at `rate_limit` calls/s and the API's HTTP
/// settings `http` (for a test that posts many changes at once).
pub async fn env_at(rate_limit: u32, http: Option<zeroscale::config::HttpArgs>) -> Env {
    env_with(rate_limit, http, fast_worker_config()).await
}

/// As [`env_at`], with the worker running under `config`.
pub async fn env_with(
    rate_limit: u32,
    http: Option<zeroscale::config::HttpArgs>,
    config: WorkerConfig,
) -> Env {
    let sb = SandboxEnv::demo().await;
    let app = spawn_app_with(TestOptions {
        aws: Some(clients(&sb.url).await),
        http,
        ..Default::default()
    })
    .await;
    let token = app.token("portal", "read,write").await;
    let aws = clients_at(&sb.url, rate_limit).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(5)
        .connect(&app.db.url)
        .await
        .unwrap();
    let registry = Reconciler {
        aws: aws.clone(),
        pool: pool.clone(),
    }
    .register(Registry::new());
    let registry = zeroscale::notify::Deliverer::new(pool.clone(), Some(super::secrets_key()))
        .register(registry);
    let stop = CancellationToken::new();
    tokio::spawn(Worker::new(pool, registry, config).run(stop.clone()));
    Env {
        app,
        sb,
        aws,
        token,
        stop,
        unfinished_ok: None,
    }
}

impl Env {
    /// Lets this test end with jobs not finished, for the reason given (a test about a job that
    /// cannot finish, for instance).
    pub fn allow_unfinished_jobs(&mut self, reason: &'static str) {
        self.unfinished_ok = Some(reason);
    }

    /// Calls the API with the token; the status and the JSON body (Null if none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Posts a change to a component and waits for its operation; returns the operation.
    pub async fn converge(
        &self,
        method: reqwest::Method,
        name: &str,
        body: Option<Value>,
    ) -> Value {
        self.converge_at(method, &format!("/components/{name}/scale-to-zero"), body)
            .await
    }

    /// Sends a change to `path` and waits for its operation to finish; returns the operation.
    pub async fn converge_at(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let (status, out) = self.call(method, path, body).await;
        assert_eq!(status, 202, "{out}");
        let op = out["target"]["last_operation"]["url"]
            .as_str()
            .unwrap()
            .to_string();
        self.wait(&op).await
    }

    /// Polls an operation until it is completed or discarded.
    pub async fn wait(&self, op: &str) -> Value {
        for _ in 0..300 {
            let (_, o) = self.call(reqwest::Method::GET, op, None).await;
            if o["state"] == "completed" || o["state"] == "discarded" {
                return o;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("operation {op} did not finish");
    }

    /// GET /components/{name}.
    pub async fn component(&self, name: &str) -> Value {
        self.call(reqwest::Method::GET, &format!("/components/{name}"), None)
            .await
            .1
    }

    /// The AWS writes the sandbox received after call `seq`.
    pub async fn writes_since(&self, seq: u64) -> Vec<String> {
        let calls = self
            .sb
            .control("GET", &format!("/calls?since={seq}"), json!({}))
            .await;
        calls["calls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| WRITES.contains(&c["operation"].as_str().unwrap()))
            .map(|c| c["operation"].as_str().unwrap().to_string())
            .collect()
    }

    /// The sequence number of the last AWS call so far.
    pub async fn last_seq(&self) -> u64 {
        self.sb
            .calls()
            .await
            .last()
            .map(|c| c["seq"].as_u64().unwrap())
            .unwrap_or(0)
    }
}

/// The AWS calls an operation made, in order (`output.steps[].step.call`).
pub fn step_calls(op: &Value) -> Vec<String> {
    op["output"]["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .filter_map(|s| s["step"]["call"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl Env {
    /// GET of a target's resource (`/components/{name}` or `/endpoints/{e}/variants/{v}`).
    pub async fn target(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await.1
    }

    /// `POST {path}/reconcile` and waits for its operation.
    pub async fn reconcile(&self, path: &str) -> Value {
        let (status, out) = self
            .call(reqwest::Method::POST, &format!("{path}/reconcile"), None)
            .await;
        assert_eq!(status, 202, "{out}");
        self.wait(out["target"]["last_operation"]["url"].as_str().unwrap())
            .await
    }

    /// Operations of every AWS call the sandbox received after `seq`.
    pub async fn ops_since(&self, seq: u64) -> Vec<String> {
        let calls = self
            .sb
            .control("GET", &format!("/calls?since={seq}"), json!({}))
            .await;
        calls["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["operation"].as_str().unwrap().to_string())
            .collect()
    }

    /// The AWS calls made after `seq`, counted by operation.
    pub async fn calls_by_operation(&self, seq: u64) -> std::collections::BTreeMap<String, usize> {
        let mut out = std::collections::BTreeMap::new();
        for op in self.ops_since(seq).await {
            *out.entry(op).or_default() += 1;
        }
        out
    }

    /// Waits until the `n` targets whose names start with `prefix` are all `ready`.
    pub async fn wait_ready(&self, prefix: &str, n: usize) {
        super::wait_for(
            &format!("every {prefix}* target ready"),
            Duration::from_secs(120),
            || async {
                let ready: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM targets WHERE phase = 'ready' AND starts_with(name, $1)",
                )
                .bind(prefix)
                .fetch_one(&self.app.pool)
                .await
                .unwrap();
                (ready == n as i64).then_some(())
            },
        )
        .await;
    }
}

/// The target's condition of `kind` with `reason`, if any.
pub fn condition(target: &Value, kind: &str, reason: &str) -> Option<Value> {
    target["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind && c["reason"] == reason)
        .cloned()
}

//! Scale: enable N components at once (default 1,000) against the sandbox, with zeroscale's AWS
//! rate limit at 10 calls/s and the sandbox enforcing an account rate on Application Auto
//! Scaling. Prints the time until all are ready against the floor (4 writes per component at
//! the rate limit), AWS calls per component, throttles met, and the service's resident memory
//! idle and at its peak (it runs as a child process: the real binary).
//!
//! Then the steady state: one fleet observation pass over the N enabled components (its AWS
//! calls per component, and what that costs per second at the default 5-minute interval), and
//! a new change's time to ready, median of 20, on an idle system and with a pass running.
//!
//! Run: `cargo bench --bench scale` (env `BENCH_COMPONENTS`, `BENCH_AWS_RATE`,
//! `BENCH_ACCOUNT_RATE`). At 10 calls/s, 1,000 components take about 15 minutes.

#[path = "common/mod.rs"]
mod common;

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use serde_json::{json, Value};

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// (VmRSS, VmHWM) of a process, in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::main]
async fn main() {
    let n: usize = env_or("BENCH_COMPONENTS", 1000);
    let aws_rate: u32 = env_or("BENCH_AWS_RATE", 10);
    let account_rate: f64 = env_or("BENCH_ACCOUNT_RATE", 10.0);
    let db = common::BenchDb::create("zs_bench_scale").await;
    let (api, sandbox) = (free_port(), free_port());
    let bin = env!("CARGO_BIN_EXE_zeroscale");
    let mut child = tokio::process::Command::new(bin)
        .args([
            "serve",
            "--sandbox",
            "--listen",
            &format!("127.0.0.1:{api}"),
            "--sandbox-listen",
            &format!("127.0.0.1:{sandbox}"),
        ])
        .args([
            "--aws-rate-limit",
            &aws_rate.to_string(),
            "--write-rate-limit",
            "0",
            // Passes are held back (below) until the steady-state phase; the scheduler checks
            // every 5 s.
            "--drift-interval",
            "20s",
            "--worker-poll-interval",
            "200ms",
        ])
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start zeroscale");
    let pid = child.id().expect("pid");
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{api}");
    let sb = format!("http://127.0.0.1:{sandbox}/_sandbox");
    for _ in 0..200 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (idle_rss, _) = memory_mib(pid);

    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    hold_passes(&pool).await;
    // The N of the burst, and 40 more for the timed changes.
    let components: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("scale-ic-{i}"), "endpoint": "scale-ep"}))
        .chain(
            (0..CHANGES * 2)
                .map(|i| json!({"name": format!("extra-ic-{i}"), "endpoint": "scale-ep"})),
        )
        .collect();
    let seeded = http
        .post(format!("{sb}/seed"))
        .json(&json!({"quotas": {"ml.g5.xlarge": 100000},
            "endpoints": [{"name": "scale-ep", "instance_type": "ml.g5.xlarge", "min_instances": 0, "max_instances": 100000}],
            "components": components}))
        .send()
        .await
        .unwrap();
    assert!(seeded.status().is_success());
    http.put(format!("{sb}/settings"))
        .json(&json!({"provisioning_delay_seconds": 60.0, "autoscaling_requests_per_second": account_rate}))
        .send()
        .await
        .unwrap();
    http.delete(format!("{sb}/calls")).send().await.unwrap();
    let out = std::process::Command::new(bin)
        .args([
            "token",
            "create",
            "--name",
            "bench",
            "--scopes",
            "read,write",
        ])
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();

    println!("scale benchmark: {n} components, zeroscale AWS rate {aws_rate}/s, sandbox account rate {account_rate}/s on Application Auto Scaling");
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(n.div_ceil(16).max(1)) {
        let (http, base, token, chunk) =
            (http.clone(), base.clone(), token.clone(), chunk.to_vec());
        set.spawn(async move {
            for i in chunk {
                let r = http
                    .post(format!("{base}/components/scale-ic-{i}/scale-to-zero"))
                    .bearer_auth(&token)
                    .json(&json!({"max_capacity": 2}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 202);
            }
        });
    }
    while set.join_next().await.is_some() {}
    let accepted = started.elapsed();
    let mut peak_rss: f64 = 0.0;
    loop {
        let (rss, _) = memory_mib(pid);
        peak_rss = peak_rss.max(rss);
        let ready: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM targets WHERE phase = 'ready' AND name LIKE 'scale-ic-%'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        let failed: i64 = sqlx::query_scalar("SELECT count(*) FROM targets WHERE phase = 'failed'")
            .fetch_one(&pool)
            .await
            .unwrap();
        if ready + failed >= n as i64 {
            if failed > 0 {
                println!("warning: {failed} components failed");
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let all_ready = started.elapsed();
    let _ = memory_mib(pid);
    let calls: Value = http
        .get(format!("{sb}/calls"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let calls = calls["calls"].as_array().cloned().unwrap_or_default();
    let throttles = calls
        .iter()
        .filter(|c| c["error"] == "ThrottlingException")
        .count();
    let writes = calls
        .iter()
        .filter(|c| {
            [
                "RegisterScalableTarget",
                "PutScalingPolicy",
                "PutMetricAlarm",
            ]
            .contains(&c["operation"].as_str().unwrap_or(""))
        })
        .count();
    println!(
        "accepted all {n} changes in        {:>8.2} s ({:.0} req/s)",
        accepted.as_secs_f64(),
        n as f64 / accepted.as_secs_f64()
    );
    println!(
        "all ready after                    {:>8.1} s",
        all_ready.as_secs_f64()
    );
    let floor = 4.0 * n as f64 / f64::from(aws_rate);
    println!(
        "floor: 4 writes per component       {:>8.1} s; all ready / floor = {:.2} (target <= 1.15)",
        floor,
        all_ready.as_secs_f64() / floor
    );
    println!(
        "AWS calls per component            {:>8.2} (writes {:.2}; target <= 4.5)",
        calls.len() as f64 / n as f64,
        writes as f64 / n as f64
    );
    let mut by_op: std::collections::BTreeMap<&str, usize> = Default::default();
    for c in &calls {
        *by_op
            .entry(c["operation"].as_str().unwrap_or("?"))
            .or_default() += 1;
    }
    for (op, k) in &by_op {
        println!("  {op:<32} {:>8.2} per component", *k as f64 / n as f64);
    }
    println!(
        "AWS calls per second, overall      {:>8.2} (limit {aws_rate})",
        calls.len() as f64 / all_ready.as_secs_f64()
    );
    println!("throttles met                      {:>8}", throttles);
    println!(
        "resident memory idle               {:>8.1} MiB (target < 64 MiB)",
        idle_rss
    );

    // Steady state: one observation pass over the enabled fleet.
    let seq = last_seq(&http, &sb).await;
    let pass = run_pass(&pool).await;
    let pass_calls = calls_since(&http, &sb, seq).await;
    let (rss, _) = memory_mib(pid);
    peak_rss = peak_rss.max(rss);
    let per = pass["aws_calls"].as_u64().unwrap_or(0) as f64 / n as f64;
    println!(
        "observation pass: {} targets, {} AWS calls ({} in the sandbox's log), {} differing, {} repairs",
        pass["targets"], pass["aws_calls"], pass_calls, pass["differing"].as_object().map_or(0, |d| d.len()), pass["repairs_queued"]
    );
    println!("AWS calls per component per pass   {per:>8.3} (target <= 0.2)");
    println!(
        "at a 5-minute interval             {:>8.3} calls/s (target < 1)",
        pass_calls as f64 / 300.0
    );

    // A new change's time to ready: idle, then with a pass running.
    let mut idle = Vec::new();
    for i in 0..CHANGES {
        idle.push(time_change(&http, &base, &token, &pool, i).await);
    }
    let mut busy = Vec::new();
    for i in CHANGES..CHANGES * 2 {
        pass_running(&pool).await;
        busy.push(time_change(&http, &base, &token, &pool, i).await);
        let (rss, _) = memory_mib(pid);
        peak_rss = peak_rss.max(rss);
    }
    hold_passes(&pool).await;
    let (idle_median, busy_median) = (median(&mut idle), median(&mut busy));
    println!("change to ready, idle (median of {CHANGES})  {idle_median:>8.2} s");
    println!(
        "change to ready, pass running      {busy_median:>8.2} s; ratio {:.2} (target <= 1.5)",
        busy_median / idle_median
    );
    let (_, hwm) = memory_mib(pid);
    println!(
        "resident memory peak (sampled/HWM) {:>8.1} / {:.1} MiB (target < 256 MiB)",
        peak_rss, hwm
    );
    let _ = child.kill().await;
}

/// Changes timed per phase.
const CHANGES: usize = 20;

/// Keeps the drift scheduler from queueing a pass (it sees one as just run).
async fn hold_passes(pool: &sqlx::PgPool) {
    sqlx::query("UPDATE observation SET last_pass_at = now() + interval '1 day'")
        .execute(pool)
        .await
        .unwrap();
}

/// Lets the scheduler queue a pass and waits until it has finished; returns its report.
async fn run_pass(pool: &sqlx::PgPool) -> Value {
    let before: i64 =
        sqlx::query_scalar("SELECT COALESCE(max(id), 0) FROM jobs WHERE kind = 'observe'")
            .fetch_one(pool)
            .await
            .unwrap();
    sqlx::query("UPDATE observation SET last_pass_at = NULL")
        .execute(pool)
        .await
        .unwrap();
    loop {
        let done: Option<Value> = sqlx::query_scalar(
            "SELECT output FROM jobs WHERE kind = 'observe' AND id > $1 AND state = 'completed'",
        )
        .bind(before)
        .fetch_optional(pool)
        .await
        .unwrap()
        .flatten();
        if let Some(report) = done {
            hold_passes(pool).await;
            return report;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until an observation pass is running (letting the scheduler queue one if needed).
async fn pass_running(pool: &sqlx::PgPool) {
    loop {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE kind = 'observe' AND state = 'running'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if running > 0 {
            return;
        }
        // Queue a pass now (as the scheduler does when one is due) rather than wait for its
        // next tick: a pass over a small fleet is over in less than a tick.
        sqlx::query(
            "INSERT INTO jobs (kind, target, args) SELECT 'observe', 'fleet', '{}' \
             WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE target = 'fleet' \
               AND state IN ('available', 'retryable', 'running')) ON CONFLICT DO NOTHING",
        )
        .execute(pool)
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Enables `extra-ic-{i}` and returns the seconds until it is ready.
async fn time_change(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    pool: &sqlx::PgPool,
    i: usize,
) -> f64 {
    let started = Instant::now();
    let r = http
        .post(format!("{base}/components/extra-ic-{i}/scale-to-zero"))
        .bearer_auth(token)
        .json(&json!({"max_capacity": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    loop {
        let phase: Option<String> =
            sqlx::query_scalar("SELECT phase::text FROM targets WHERE name = $1")
                .bind(format!("extra-ic-{i}"))
                .fetch_optional(pool)
                .await
                .unwrap();
        match phase.as_deref() {
            Some("ready") => return started.elapsed().as_secs_f64(),
            Some("failed") => panic!("extra-ic-{i} failed"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn last_seq(http: &reqwest::Client, sb: &str) -> u64 {
    let calls: Value = http
        .get(format!("{sb}/calls"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    calls["calls"]
        .as_array()
        .and_then(|c| c.last())
        .and_then(|c| c["seq"].as_u64())
        .unwrap_or(0)
}

async fn calls_since(http: &reqwest::Client, sb: &str, seq: u64) -> usize {
    let calls: Value = http
        .get(format!("{sb}/calls?since={seq}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    calls["calls"].as_array().map_or(0, |c| c.len())
}

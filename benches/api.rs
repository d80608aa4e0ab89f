//! API throughput and latency: 16 concurrent HTTP clients drive
//! `POST /components/{name}/scale-to-zero` (every POST a real new version + job + audit event)
//! and `GET /components/{name}`, next to pgbench single-row INSERT and primary-key SELECT rates
//! measured against the same Postgres in the same run.
//!
//! Run: `cargo bench --bench api` (env `BENCH_SECONDS`, default 5).

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;
use zeroscale::{app::Application, config::HttpArgs};

const CLIENTS: usize = 16;

struct Figures {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

async fn drive(base: &str, token: &str, secs: u64, post: bool) -> Figures {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut set = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let (client, base, token) = (client.clone(), base.to_string(), token.to_string());
        set.spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut i = 0u32;
            while Instant::now() < deadline {
                i += 1;
                let started = Instant::now();
                let resp = if post {
                    client
                        .post(format!("{base}/components/bench-{c}/scale-to-zero"))
                        .bearer_auth(&token)
                        .json(&json!({"max_capacity": 1 + (i % 2) * 3}))
                        .send()
                        .await
                } else {
                    client
                        .get(format!("{base}/components/bench-{c}"))
                        .bearer_auth(&token)
                        .send()
                        .await
                };
                let ok = match resp {
                    Ok(r) => {
                        let s = r.status();
                        let _ = r.bytes().await;
                        (post && s == 202) || (!post && s == 200)
                    }
                    Err(_) => false,
                };
                lat.push(started.elapsed());
                if !ok {
                    errors += 1;
                }
            }
            (lat, errors)
        });
    }
    let mut all = Vec::new();
    let mut errors = 0;
    while let Some(r) = set.join_next().await {
        let (lat, e) = r.unwrap();
        all.extend(lat);
        errors += e;
    }
    all.sort();
    let pct =
        |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1000.0;
    Figures {
        rps: all.len() as f64 / secs as f64,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
    }
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let db = common::BenchDb::create("zs_bench_api").await;
    // The service's pool (`--db-pool-size`, default 10); `BENCH_POOL` to try others.
    let pool_size: u32 = std::env::var("BENCH_POOL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let pool = db.pool(pool_size).await;
    sqlx::query("CREATE TABLE bench_kv (id bigint PRIMARY KEY, v jsonb NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO bench_kv SELECT g, jsonb_build_object('g', g) FROM generate_series(1, 10000) g")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE bench_ins (id bigserial PRIMARY KEY, v jsonb NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();

    // No write rate limit: the benchmark measures the write path, not the limiter.
    let http = HttpArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        write_rate_limit: 0,
        ..Default::default()
    };
    let app = Application::build(&http, zeroscale::api::AppState::new(pool.clone()), None)
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    let stop = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(stop.clone()));
    let (_, token) =
        zeroscale::store::tokens::create(&pool, "bench", &["read".into(), "write".into()])
            .await
            .unwrap();
    // Every component exists before the GET run.
    let client = reqwest::Client::new();
    for c in 0..CLIENTS {
        client
            .post(format!("{base}/components/bench-{c}/scale-to-zero"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
    }

    println!("API benchmark: {CLIENTS} concurrent clients, {secs} s per run, same Postgres for every figure");
    let insert = common::pgbench(
        &db,
        "INSERT INTO bench_ins (v) VALUES ('{\"a\": 1}');\n",
        CLIENTS as u32,
        secs as u32,
    );
    let post = drive(&base, &token, secs, true).await;
    let select = common::pgbench(
        &db,
        "\\set id random(1, 10000)\nSELECT v FROM bench_kv WHERE id = :id;\n",
        CLIENTS as u32,
        secs as u32,
    );
    let get = drive(&base, &token, secs, false).await;

    let show = |name: &str, f: &Figures, base_name: &str, base: Option<f64>| {
        let ratio = base
            .map(|b| {
                format!(
                    "{:.0} % of pgbench {base_name} ({b:.0}/s)",
                    100.0 * f.rps / b
                )
            })
            .unwrap_or_else(|| "pgbench missing".into());
        println!(
            "{name:<44} {:>7.0} req/s  p50 {:>5.2} ms  p99 {:>6.2} ms  errors {}  = {ratio}",
            f.rps, f.p50_ms, f.p99_ms, f.errors
        );
    };
    show(
        "POST /components/{name}/scale-to-zero",
        &post,
        "single-row INSERT",
        insert,
    );
    show(
        "GET  /components/{name}",
        &get,
        "primary-key SELECT",
        select,
    );
    stop.cancel();
    let _ = server.await;
}

//! API throughput and latency: 16 concurrent HTTP clients drive
//! `POST /components/{name}/scale-to-zero` (every POST a real new version + job + audit event)
//! and `GET /components/{name}`, next to pgbench single-row INSERT and primary-key SELECT rates
//! measured against the same Postgres in the same run.
//!
//! Each figure is the median over `BENCH_ROUNDS` (default 3) rounds; a round runs the pgbench
//! baseline and then the HTTP load for `BENCH_SECONDS` (default 5) each, so every ratio compares
//! runs seconds apart on a noisy machine.
//!
//! Run: `cargo bench --bench api`.

#[path = "common/mod.rs"]
mod common;

use std::{
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

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

/// Drives one endpoint for `secs`. Client `c` works on component `bench-{c}` and flips its
/// `max_capacity` on every POST (`flips[c]` carries the flip over from one run to the next), so
/// every POST is a real change: a new version, job and audit event.
async fn drive(
    base: &str,
    token: &str,
    secs: u64,
    post: bool,
    flips: &Arc<Vec<AtomicU32>>,
) -> (Figures, Vec<Duration>) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut set = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let (client, base, token) = (client.clone(), base.to_string(), token.to_string());
        let flips = flips.clone();
        set.spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let started = Instant::now();
                let resp = if post {
                    client
                        .post(format!("{base}/components/bench-{c}/scale-to-zero"))
                        .bearer_auth(&token)
                        .json(&json!({"max_capacity": 1 + (flips[c].fetch_add(1, Ordering::Relaxed) % 2) * 3}))
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
    (figures_of(&mut all, secs, errors), all)
}

/// Rate and percentiles of `all` (sorted in place) over `secs`.
fn figures_of(all: &mut [Duration], secs: u64, errors: usize) -> Figures {
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

/// One endpoint's runs, each next to the pgbench baseline measured just before it.
struct Compared {
    rounds: Vec<(Figures, Option<f64>)>,
    /// Latencies over every round, for the percentiles.
    all: Figures,
}

/// Alternates `rounds` pgbench baselines (INSERT for POST, primary-key SELECT for GET) with
/// HTTP runs of the same length, so each ratio compares runs seconds apart on a noisy machine.
async fn compare(
    db: &common::BenchDb,
    base: &str,
    token: &str,
    secs: u64,
    rounds: usize,
    post: bool,
    flips: &Arc<Vec<AtomicU32>>,
) -> Compared {
    let script = if post {
        "INSERT INTO bench_ins (v) VALUES ('{\"a\": 1}');\n"
    } else {
        "\\set id random(1, 10000)\nSELECT v FROM bench_kv WHERE id = :id;\n"
    };
    let mut out = Vec::new();
    let mut latencies = Vec::new();
    for _ in 0..rounds {
        let baseline = common::pgbench(db, script, CLIENTS as u32, secs as u32);
        let (figures, lat) = drive(base, token, secs, post, flips).await;
        latencies.extend(lat);
        out.push((figures, baseline));
    }
    let errors = out.iter().map(|(f, _)| f.errors).sum();
    Compared {
        all: figures_of(&mut latencies, secs * rounds as u64, errors),
        rounds: out,
    }
}

fn show(name: &str, c: &Compared, base_name: &str) {
    let mut ratios = Vec::new();
    for (i, (f, baseline)) in c.rounds.iter().enumerate() {
        let ratio = baseline.map(|b| 100.0 * f.rps / b);
        ratios.extend(ratio);
        println!(
            "  round {}: {name} {:>6.0} req/s, errors {}; pgbench {base_name} {}; ratio {}",
            i + 1,
            f.rps,
            f.errors,
            baseline.map_or("missing".into(), |b| format!("{b:.0}/s")),
            ratio.map_or("-".into(), |r| format!("{r:.1} %")),
        );
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios
        .get(ratios.len() / 2)
        .map_or("pgbench missing".into(), |r| {
            format!("median {r:.0} % of pgbench {base_name}")
        });
    println!(
        "{name:<40} {:>6.0} req/s  p50 {:>5.2} ms  p99 {:>6.2} ms  errors {}  = {median}",
        c.all.rps, c.all.p50_ms, c.all.p99_ms, c.all.errors
    );
}

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
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

    println!(
        "API benchmark: {CLIENTS} concurrent clients, {rounds} rounds of {secs} s, each HTTP run \
         right after its pgbench baseline on the same Postgres"
    );
    // Every component was created above with the default spec (max_capacity unset), so the
    // first POST of each client is already a change.
    let flips = Arc::new((0..CLIENTS).map(|_| AtomicU32::new(0)).collect::<Vec<_>>());
    let post = compare(&db, &base, &token, secs, rounds, true, &flips).await;
    let get = compare(&db, &base, &token, secs, rounds, false, &flips).await;
    show(
        "POST /components/{name}/scale-to-zero",
        &post,
        "single-row INSERT",
    );
    show("GET  /components/{name}", &get, "primary-key SELECT");
    stop.cancel();
    let _ = server.await;
}

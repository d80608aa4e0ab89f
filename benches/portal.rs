//! The portal's fleet page at fleet size: `BENCH_TARGETS` components (default 1,000), each with
//! a week of timeline (a cycle every 6 hours: scaled to zero, wake started, capacity in service;
//! 84 events a target), timed against the API's own list of the same page size measured in the
//! same run (machines here are noisy: quote the ratio).
//!
//! - `GET /ui` reads every target the filters keep, a week of their capacity events and the
//!   month's savings ledger, then sorts and draws 50 rows with their sparklines.
//! - `GET /components?limit=50` reads 50 rows: the baseline.
//!
//! One client, sequential requests (a page is a person's request), `BENCH_SECONDS` (default 5)
//! each, alternating `BENCH_ROUNDS` (default 3) times. No AWS client exists in this process:
//! the pages make no AWS call by construction.
//!
//! Run: `cargo bench --bench portal`.

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use zeroscale::{
    app::Application,
    config::HttpArgs,
    domain::EventKind,
    store::events::{self, NewEvent},
};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Requests to `url` one after another for `secs`; the sorted latencies.
async fn drive(
    client: &reqwest::Client,
    url: &str,
    auth: (&str, &str),
    secs: u64,
) -> Vec<Duration> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut lat = Vec::new();
    while Instant::now() < deadline {
        let started = Instant::now();
        let resp = client.get(url).header(auth.0, auth.1).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        let _ = resp.bytes().await.unwrap();
        lat.push(started.elapsed());
    }
    lat.sort();
    lat
}

fn p(lat: &[Duration], q: f64) -> f64 {
    lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let targets = env_num("BENCH_TARGETS", 1000) as usize;
    let secs = env_num("BENCH_SECONDS", 5);
    let rounds = env_num("BENCH_ROUNDS", 3) as usize;
    let db = common::BenchDb::create("zs_bench_portal").await;
    let pool = db.pool(10).await;
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
    let client = reqwest::Client::new();
    let seeding = Instant::now();
    for i in 0..targets {
        let team = ["search", "chat", "docs", "batch"][i % 4];
        let resp = client
            .post(format!("{base}/components/bench-{i:05}/scale-to-zero"))
            .bearer_auth(&token)
            .json(&json!({"labels": {"team": team}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
    }
    // A week of cycles every 6 hours per target, recorded as the observation pass records them.
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM targets ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    let now = Utc::now();
    let mut batch = Vec::new();
    let mut recorded = 0;
    for (n, id) in ids.iter().enumerate() {
        for cycle in 0..28 {
            let start = now - TimeDelta::days(7)
                + TimeDelta::hours(6 * cycle)
                + TimeDelta::minutes(n as i64 % 60);
            let src = |k: &str| format!("bench:{k}:{cycle}");
            for (kind, at, details) in [
                (EventKind::ScaledToZero, start, json!({})),
                (
                    EventKind::WakeStarted,
                    start + TimeDelta::hours(4),
                    json!({"at_zero_seconds": 14400.0}),
                ),
                (
                    EventKind::CapacityInService,
                    start + TimeDelta::hours(4) + TimeDelta::seconds(300),
                    json!({"wake_seconds": 300.0, "capacity": 1}),
                ),
            ] {
                batch.push(NewEvent {
                    target_id: *id,
                    kind,
                    at,
                    source: src(kind.as_str()),
                    details,
                });
            }
        }
        if batch.len() >= 5000 || n + 1 == ids.len() {
            let mut conn = pool.acquire().await.unwrap();
            recorded += events::insert(&mut conn, &batch).await.unwrap().len();
            batch.clear();
        }
    }
    sqlx::query("ANALYZE").execute(&pool).await.unwrap();
    // A session, as signing in makes one.
    let secret = "bench-session-secret";
    let hash = {
        use sha2::Digest;
        sha2::Sha256::digest(secret.as_bytes()).to_vec()
    };
    zeroscale::store::sessions::create(&pool, &hash, "bench", "csrf", now + TimeDelta::hours(8))
        .await
        .unwrap();
    let cookie = format!("zs_session={secret}");
    let bearer = format!("Bearer {token}");
    println!(
        "portal benchmark: {targets} components, {recorded} timeline events (seeded in {:.1} s); \
         {rounds} rounds of {secs} s per page, one client",
        seeding.elapsed().as_secs_f64()
    );
    let (mut ui, mut api, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let a = drive(
            &client,
            &format!("{base}/components?limit=50"),
            ("authorization", &bearer),
            secs,
        )
        .await;
        let u = drive(&client, &format!("{base}/ui"), ("cookie", &cookie), secs).await;
        let ratio = p(&u, 0.5) / p(&a, 0.5);
        println!(
            "  round {round}: GET /ui p50 {:.1} ms ({} requests); GET /components?limit=50 p50 {:.2} ms ({}); ratio {ratio:.1}",
            p(&u, 0.5),
            u.len(),
            p(&a, 0.5),
            a.len()
        );
        ratios.push(ratio);
        ui.extend(u);
        api.extend(a);
    }
    ui.sort();
    api.sort();
    ratios.sort_by(f64::total_cmp);
    println!(
        "GET /ui ({targets} targets)        p50 {:>7.1} ms  p99 {:>7.1} ms\n\
         GET /components?limit=50        p50 {:>7.2} ms  p99 {:>7.2} ms\n\
         median ratio of p50s: {:.1}",
        p(&ui, 0.5),
        p(&ui, 0.99),
        p(&api, 0.5),
        p(&api, 0.99),
        ratios[ratios.len() / 2]
    );
    stop.cancel();
    let _ = server.await;
}

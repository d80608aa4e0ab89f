//! Job engine throughput: enqueue and drain N no-op jobs with one and with several workers,
//! next to single-row INSERT rates measured against the same database in the same run.
//!
//! Run: `cargo bench --bench jobs` (env `BENCH_JOBS`, default 5000).

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use zeroscale::jobs::{self, JobContext, Registry, RetryPolicy, Worker, WorkerConfig};

const CONCURRENCY: usize = 8;

fn config(concurrency: usize) -> WorkerConfig {
    WorkerConfig {
        concurrency,
        poll_interval: Duration::from_millis(100),
        lease: Duration::from_secs(30),
        job_timeout: Duration::from_secs(30),
        retry: RetryPolicy::default(),
        shutdown_grace: Duration::from_secs(5),
        retention: Duration::from_secs(86_400),
        maintenance_interval: Duration::from_secs(5),
        idempotency_ttl: Duration::from_secs(86_400),
    }
}

/// Single-row INSERTs from `tasks` concurrent tasks through the pool: rows per second.
async fn insert_rate(pool: &PgPool, n: usize, tasks: usize) -> f64 {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_rows (id bigserial PRIMARY KEY, v jsonb NOT NULL)",
    )
    .execute(pool)
    .await
    .unwrap();
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let pool = pool.clone();
        set.spawn(async move {
            for i in (t..n).step_by(tasks) {
                sqlx::query("INSERT INTO bench_rows (v) VALUES ($1)")
                    .bind(json!({ "i": i }))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        });
    }
    while set.join_next().await.is_some() {}
    n as f64 / started.elapsed().as_secs_f64()
}

/// Enqueue N jobs, one transaction each, from `tasks` tasks: jobs per second.
async fn enqueue_rate(pool: &PgPool, n: usize, tasks: usize) -> f64 {
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let pool = pool.clone();
        set.spawn(async move {
            for i in (t..n).step_by(tasks) {
                let mut tx = pool.begin().await.unwrap();
                jobs::enqueue(&mut tx, &jobs::new_job("noop", None, json!({ "i": i })))
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }
        });
    }
    while set.join_next().await.is_some() {}
    n as f64 / started.elapsed().as_secs_f64()
}

/// Starts `workers` workers and measures how long they take to complete every queued job.
async fn drain_rate(pool: &PgPool, n: usize, workers: usize, concurrency: usize) -> f64 {
    let stop = CancellationToken::new();
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..workers {
        let registry = Registry::new().register("noop", |_c: JobContext| async { Ok(None) });
        handles.push(tokio::spawn(
            Worker::new(pool.clone(), registry, config(concurrency)).run(stop.clone()),
        ));
    }
    loop {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'completed'")
            .fetch_one(pool)
            .await
            .unwrap();
        if done as usize >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    stop.cancel();
    for h in handles {
        h.await.unwrap().unwrap();
    }
    sqlx::query("DELETE FROM jobs").execute(pool).await.unwrap();
    rate
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let db = common::BenchDb::create("zs_bench_jobs").await;
    let pool = db.pool(10).await;
    println!("job engine benchmark: {n} no-op jobs, pool of 10, {CONCURRENCY} tasks/slots");

    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_pgbench (id bigserial PRIMARY KEY, v jsonb NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let pg_insert = common::pgbench(
        &db,
        "INSERT INTO bench_pgbench (v) VALUES ('{}');\n",
        CONCURRENCY as u32,
        5,
    );
    let insert_seq = insert_rate(&pool, n, 1).await;
    let insert_par = insert_rate(&pool, n, CONCURRENCY).await;
    match pg_insert {
        Some(tps) => println!(
            "baseline  pgbench single-row INSERT, {CONCURRENCY} clients:   {tps:>9.0} rows/s"
        ),
        None => println!("baseline  pgbench not found; skipping its baseline"),
    }
    println!("baseline  sqlx single-row INSERT, same pool, 1 task:    {insert_seq:>9.0} rows/s");
    println!("baseline  sqlx single-row INSERT, same pool, {CONCURRENCY} tasks:   {insert_par:>9.0} rows/s");

    let enq = enqueue_rate(&pool, n, CONCURRENCY).await;
    println!("enqueue   one job per transaction, {CONCURRENCY} tasks:          {enq:>9.0} jobs/s  ({:.0} % of the sqlx INSERT rate)", 100.0 * enq / insert_par);

    // Each drain is quoted against an INSERT baseline taken right before it, because the load on
    // these machines changes from one second to the next.
    let runs: [(usize, usize); 3] = [(1, 1), (1, CONCURRENCY), (4, CONCURRENCY)];
    for (i, (workers, conc)) in runs.iter().enumerate() {
        if i > 0 {
            sqlx::query("INSERT INTO jobs (kind, args) SELECT 'noop', jsonb_build_object('i', g) FROM generate_series(1, $1) g")
                .bind(n as i64)
                .execute(&pool)
                .await
                .unwrap();
        }
        let baseline = insert_rate(&pool, n / 2, CONCURRENCY).await;
        let rate = drain_rate(&pool, n, *workers, *conc).await;
        println!(
            "drain     {workers} worker(s) x {conc} slot(s): {rate:>7.0} jobs/s = {:>3.0} % of the {baseline:.0} rows/s INSERT rate measured just before",
            100.0 * rate / baseline
        );
    }
    drop(pool);
}

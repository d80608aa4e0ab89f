//! Helpers shared by the benchmarks: a scratch database per run, and pgbench baselines
//! measured against the same Postgres in the same run (machines here are noisy, so every
//! figure is quoted as a ratio against a baseline taken minutes apart at most).
#![allow(dead_code)]

use std::{process::Command, time::Duration};

use sqlx::{Connection, PgConnection, PgPool};
use zeroscale::config::{DatabaseUrl, DbArgs};

/// Server to benchmark against (`BENCH_DATABASE_URL`, default the local trust-auth server).
pub fn admin_url() -> String {
    std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A scratch database, dropped when the value is.
pub struct BenchDb {
    pub name: String,
    pub url: String,
}

impl BenchDb {
    pub async fn create(prefix: &str) -> Self {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin_url())
            .await
            .expect("Postgres reachable");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .unwrap();
        let mut url = url::Url::parse(&admin_url()).unwrap();
        url.set_path(&name);
        Self {
            name,
            url: url.to_string(),
        }
    }

    /// A migrated pool of `size` connections.
    pub async fn pool(&self, size: u32) -> PgPool {
        let args = DbArgs {
            database_url: self.url.parse::<DatabaseUrl>().unwrap(),
            db_pool_size: size,
            db_acquire_timeout: Duration::from_secs(30),
            db_statement_timeout: Duration::from_secs(15),
            db_lock_timeout: Duration::from_secs(3),
            secrets_key: None,
        };
        zeroscale::store::prepare(&args, true).await.unwrap()
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(mut c) = PgConnection::connect(&admin_url()).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&mut c)
                            .await;
                }
            })
        })
        .join();
    }
}

/// Runs a pgbench script (`-n`, `clients` clients, 2 threads, `secs` seconds) against the
/// database and returns its transactions per second, or None when pgbench is missing.
pub fn pgbench(db: &BenchDb, script: &str, clients: u32, secs: u32) -> Option<f64> {
    let dir = std::env::temp_dir().join(format!("zs-pgbench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).ok()?;
    let file = dir.join("script.sql");
    std::fs::write(&file, script).ok()?;
    let out = Command::new("pgbench")
        .args([
            "-n",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &secs.to_string(),
            "-f",
        ])
        .arg(&file)
        .arg(&db.url)
        .output()
        .ok()?;
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| {
            l.trim_start_matches("tps = ")
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
}

//! Test harness: every test gets its own freshly created, migrated database (dropped after)
//! and a real server on port 0, called over HTTP. Logs appear only when `TEST_LOG` is set.
#![allow(dead_code)]

pub mod cli;
pub mod proxy;
pub mod reconcile;

use std::{net::SocketAddr, sync::Once, time::Duration};

use axum::Router;
use sqlx::{postgres::PgPoolOptions, Connection, PgConnection, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zeroscale::{
    api::AppState,
    app::Application,
    config::{DatabaseUrl, DbArgs, HttpArgs},
};

/// Server used for test databases; override with `TEST_DATABASE_URL` (any database on it).
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// The key test apps and workers seal webhook secrets with.
pub fn secrets_key() -> zeroscale::config::SecretsKey {
    "3f1c2b4a5d6e7f80918a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e"
        .parse()
        .unwrap()
}

/// Every log line the tests' code writes at INFO and above, kept in memory (the newest 16 MB)
/// so a test can check what was, and was not, logged ([`captured_logs`]).
static CAPTURED: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());
const CAPTURE_LIMIT: usize = 16 << 20;

#[derive(Clone, Copy)]
struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut all = CAPTURED.lock().unwrap_or_else(|e| e.into_inner());
        if all.len() + buf.len() > CAPTURE_LIMIT {
            let keep = all.len() / 2;
            all.drain(..keep);
        }
        all.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the tests logged so far (INFO and above, every test of this process).
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&CAPTURED.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

/// Installs logging once: into memory always ([`captured_logs`]), and to stderr as well when
/// `TEST_LOG` is set (filtered by `RUST_LOG`).
pub fn init_logs() {
    use tracing_subscriber::{filter::LevelFilter, fmt, layer::SubscriberExt, Layer};
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let memory = fmt::layer()
            .with_ansi(false)
            .with_writer(|| Capture)
            .with_filter(LevelFilter::INFO);
        let shown = std::env::var_os("TEST_LOG").is_some().then(|| {
            fmt::layer().with_writer(std::io::stderr).with_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
            )
        });
        let subscriber = tracing_subscriber::registry().with(memory).with(shown);
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// A database created for one test and dropped (forcefully) when the value is dropped.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// Creates an empty database with a unique name.
    pub async fn create() -> Self {
        let name = format!("zs_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin_url()).await.expect(
            "tests need Postgres at 127.0.0.1:5432 (trust auth, user postgres); `bash .ci/run` starts it",
        );
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let mut url = url::Url::parse(&admin_url()).unwrap();
        url.set_path(&name);
        Self {
            name,
            url: url.to_string(),
        }
    }

    /// The URL with the host/port replaced, for connecting through a proxy.
    pub fn url_via(&self, addr: SocketAddr) -> String {
        let mut url = url::Url::parse(&self.url).unwrap();
        url.set_host(Some(&addr.ip().to_string())).unwrap();
        url.set_port(Some(addr.port())).unwrap();
        url.to_string()
    }

    /// Where the database server listens.
    pub fn server_addr(&self) -> SocketAddr {
        let url = url::Url::parse(&self.url).unwrap();
        let host = url.host_str().unwrap_or("127.0.0.1");
        let host = if host == "localhost" {
            "127.0.0.1"
        } else {
            host
        };
        format!("{}:{}", host, url.port().unwrap_or(5432))
            .parse()
            .unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime; use a fresh one on another thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                }
            });
        })
        .join();
    }
}

/// Knobs for [`spawn_app_with`].
#[derive(Default)]
pub struct TestOptions {
    /// Extra routes mounted behind the real middleware stack.
    pub extra: Option<Router<AppState>>,
    /// Route the app's database traffic through a cuttable proxy.
    pub via_proxy: bool,
    /// HTTP settings (listen address is forced to port 0).
    pub http: Option<HttpArgs>,
    /// AWS clients for the API (dry runs).
    pub aws: Option<zeroscale::aws::AwsClients>,
    /// The app's Postgres `lock_timeout` (default 3 s).
    pub lock_timeout: Option<Duration>,
    /// The app's Postgres `statement_timeout` (default 15 s).
    pub statement_timeout: Option<Duration>,
    /// The app's pool size (default 5).
    pub pool_size: Option<u32>,
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    /// A pool straight to the test database (not through the proxy), for assertions.
    pub pool: PgPool,
    pub shutdown: CancellationToken,
    pub server: Option<JoinHandle<anyhow::Result<()>>>,
    pub proxy: Option<proxy::Proxy>,
    pub db: TestDb,
}

impl TestApp {
    /// Absolute URL of a path on the server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the server and waits for it.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        match self.server.take() {
            Some(h) => h.await?,
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts the server with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestOptions::default()).await
}

/// Starts the server against a fresh, migrated database.
pub async fn spawn_app_with(opts: TestOptions) -> TestApp {
    init_logs();
    let db = TestDb::create().await;
    let proxy = if opts.via_proxy {
        Some(proxy::Proxy::start(db.server_addr()).await)
    } else {
        None
    };
    let app_url = match &proxy {
        Some(p) => db.url_via(p.addr),
        None => db.url.clone(),
    };
    let db_args = DbArgs {
        database_url: app_url.parse::<DatabaseUrl>().unwrap(),
        db_pool_size: opts.pool_size.unwrap_or(5),
        db_acquire_timeout: Duration::from_secs(2),
        db_statement_timeout: opts.statement_timeout.unwrap_or(Duration::from_secs(15)),
        db_lock_timeout: opts.lock_timeout.unwrap_or(Duration::from_secs(3)),
        secrets_key: None,
    };
    let app_pool = zeroscale::store::prepare(&db_args, true)
        .await
        .expect("prepare database");
    let pool = PgPoolOptions::new()
        .max_connections(3)
        .connect(&db.url)
        .await
        .unwrap();
    let mut http = opts.http.unwrap_or_default();
    http.listen = "127.0.0.1:0".parse().unwrap();
    let mut state = zeroscale::api::AppState::new(app_pool).with_secrets(Some(secrets_key()));
    if let Some(aws) = opts.aws {
        state = state.with_aws(aws);
    }
    let app = Application::build(&http, state, opts.extra)
        .await
        .expect("build app");
    let addr = app.local_addr();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp {
        addr,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        pool,
        shutdown,
        server: Some(server),
        proxy,
        db,
    }
}

impl TestApp {
    /// The text of `GET /metrics` (open: no metrics token in tests).
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Creates a token with these scopes (e.g. "read,write") and returns its secret.
    pub async fn token(&self, name: &str, scopes: &str) -> String {
        let scopes: Vec<String> = scopes.split(',').map(str::to_string).collect();
        zeroscale::store::tokens::create(&self.pool, name, &scopes)
            .await
            .expect("create token")
            .1
    }

    /// Rows in a table, for "nothing changed" assertions.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}
pub mod aws;

/// Polls `probe` every 20 ms until it yields `Some` (returned) or `within` passes, then fails
/// the test naming `what`: tests wait on an observable state, never on a guess at how long
/// something takes.
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

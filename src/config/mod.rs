//! Typed settings from CLI flags and environment variables.
//!
//! Every setting has a flag and an environment variable (clap's `env`). Values that can hold
//! secrets are wrapped so that neither `Debug`, logs nor `--help` ever print them.

use std::{net::SocketAddr, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

mod endpoints;
mod http;
mod secrets;

pub use endpoints::{EndpointOverrides, SERVICES};
pub use http::{parse_net, parse_origin, HoldLimits, HttpArgs};
pub use secrets::{DatabaseUrl, Secret, SecretsKey};

/// The command line of the one `zeroscale` binary.
#[derive(Debug, Parser)]
#[command(
    name = "zeroscale",
    version,
    about = "SageMaker scale-to-zero control plane"
)]
pub struct Cli {
    /// Log output format; `auto` is pretty on a terminal and JSON otherwise.
    #[arg(long, env = "ZEROSCALE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands of the binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (and, unless --no-worker, the background workers).
    Serve(Box<ServeArgs>),
    /// Run the background job workers only, so API and workers scale apart.
    Worker(Box<WorkerArgs>),
    /// Apply pending database migrations and exit.
    Migrate(DbArgs),
    /// Print the OpenAPI document generated from the code.
    Openapi,
    /// Manage API tokens.
    Token(TokenArgs),
    /// Run the protocol-level AWS sandbox (SageMaker, Application Auto Scaling, CloudWatch,
    /// Service Quotas, STS on one port) standalone.
    Sandbox(SandboxArgs),
    /// Check the environment (database, migrations, AWS Region, credentials, identity,
    /// endpoints, permissions) and print a pass/warn/fail checklist; exits non-zero on any
    /// failure. Reads only: never writes to AWS or the database.
    Doctor(Box<DoctorArgs>),
}

/// `zeroscale doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Print the checklist as JSON (the shape of `GET /doctor`).
    #[arg(long)]
    pub json: bool,
}

/// `zeroscale sandbox`.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address to listen on; point AWS_ENDPOINT_URL (or --endpoint-url) here.
    #[arg(
        long,
        env = "ZEROSCALE_SANDBOX_LISTEN",
        default_value = "127.0.0.1:4566"
    )]
    pub listen: SocketAddr,
    /// Seed the demo world (demo-endpoint/demo-component and demo-async-endpoint, quota 4).
    #[arg(long)]
    pub demo: bool,
}

/// `zeroscale token ...`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// Token administration.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints its secret once, alone on stdout.
    Create {
        /// Token name (recorded as the actor in the audit log).
        #[arg(long)]
        name: String,
        /// Comma-separated scopes: read, write, audit (audit: see callers' addresses and user
        /// agents in `GET /audit`).
        #[arg(long, value_delimiter = ',', default_value = "read")]
        scopes: Vec<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by name.
    Revoke {
        /// Token name.
        #[arg(long)]
        name: String,
    },
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Pretty when stderr is a terminal, JSON otherwise.
    Auto,
    /// Human-readable, coloured lines.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Database connection settings shared by every subcommand that touches Postgres.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// Postgres URL. The database is created if it does not exist.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/zeroscale",
        hide_env_values = true
    )]
    pub database_url: DatabaseUrl,

    /// Maximum connections in the pool.
    #[arg(long, env = "ZEROSCALE_DB_POOL_SIZE", default_value_t = 10)]
    pub db_pool_size: u32,

    /// How long to wait for a pooled connection before failing a request.
    #[arg(long, env = "ZEROSCALE_DB_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub db_acquire_timeout: Duration,

    /// Postgres `statement_timeout` of the service's sessions: no statement runs longer
    /// (migrations are exempt).
    #[arg(long, env = "ZEROSCALE_DB_STATEMENT_TIMEOUT", default_value = "15s", value_parser = parse_duration)]
    pub db_statement_timeout: Duration,

    /// Postgres `lock_timeout` of the service's sessions: one stuck lock cannot hang the API; a
    /// request that waits longer gets 503 `database_busy` with Retry-After.
    #[arg(long, env = "ZEROSCALE_DB_LOCK_TIMEOUT", default_value = "3s", value_parser = parse_duration)]
    pub db_lock_timeout: Duration,

    /// Seals the secrets stored in the database (webhook signing secrets), AES-256-GCM: 64 hex
    /// characters (`openssl rand -hex 32`). Without it, webhooks cannot be created (except
    /// under `serve --sandbox`, which makes a key for the process).
    #[arg(long, env = "ZEROSCALE_SECRETS_KEY", hide_env_values = true)]
    pub secrets_key: Option<SecretsKey>,
}

impl DbArgs {
    /// Settings for `url` with every other value at its default.
    pub fn with_url(url: DatabaseUrl) -> Self {
        Self {
            database_url: url,
            db_pool_size: 10,
            db_acquire_timeout: Duration::from_secs(5),
            db_statement_timeout: Duration::from_secs(15),
            db_lock_timeout: Duration::from_secs(3),
            secrets_key: None,
        }
    }
}

/// AWS client settings. The SDK's own variables (`AWS_REGION`, `AWS_PROFILE`,
/// `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`, credentials) keep working as usual;
/// the flags below only override them when given.
#[derive(Debug, Clone, Args)]
pub struct AwsArgs {
    /// AWS region; defaults to the SDK's region chain (AWS_REGION, profile, IMDS).
    #[arg(long = "aws-region", env = "ZEROSCALE_AWS_REGION")]
    pub region: Option<String>,
    /// Endpoint override for every AWS service (the sandbox, for instance).
    #[arg(long = "aws-endpoint-url", env = "ZEROSCALE_AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Per-service endpoint overrides (`--aws-endpoint-url-<service>`).
    #[command(flatten)]
    pub endpoints: EndpointOverrides,
    /// AWS calls per second this process makes at most (shared by all its workers).
    #[arg(
        long = "aws-rate-limit",
        env = "ZEROSCALE_AWS_RATE_LIMIT",
        default_value_t = 20
    )]
    pub rate_limit: u32,
    /// Set by `serve --sandbox` only: sign with throwaway static credentials (the sandbox
    /// parses signatures without verifying them) instead of the credential chain.
    #[arg(skip)]
    pub sandbox_credentials: bool,
}

impl Default for AwsArgs {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            endpoints: EndpointOverrides::default(),
            rate_limit: 20,
            sandbox_credentials: false,
        }
    }
}

/// Job worker settings, shared by `serve` and `worker`.
#[derive(Debug, Clone, Args)]
pub struct WorkerSettings {
    /// Jobs one process runs at the same time.
    #[arg(long, env = "ZEROSCALE_WORKER_CONCURRENCY", default_value_t = 32)]
    pub worker_concurrency: usize,
    /// How often workers poll for jobs when no notification arrives.
    #[arg(long, env = "ZEROSCALE_WORKER_POLL_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub worker_poll_interval: Duration,
    /// How long a claimed job's lease lasts without a heartbeat before another worker rescues it.
    #[arg(long, env = "ZEROSCALE_JOB_LEASE", default_value = "60s", value_parser = parse_duration)]
    pub job_lease: Duration,
    /// Completed and discarded jobs older than this are deleted.
    #[arg(long, env = "ZEROSCALE_JOB_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub job_retention: Duration,
    /// Every enabled target is re-observed (and repaired) once per this interval; 0 turns it off.
    #[arg(long, env = "ZEROSCALE_DRIFT_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub drift_interval: Duration,
    /// How long an Idempotency-Key is remembered (a retry after that is a new request); older
    /// keys are deleted in batches by the workers.
    #[arg(long, env = "ZEROSCALE_IDEMPOTENCY_TTL", default_value = "24h", value_parser = parse_duration)]
    pub idempotency_ttl: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            worker_concurrency: 32,
            worker_poll_interval: Duration::from_secs(2),
            job_lease: Duration::from_secs(60),
            job_retention: Duration::from_secs(7 * 24 * 3600),
            drift_interval: Duration::from_secs(300),
            idempotency_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// `zeroscale serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub worker: WorkerSettings,
    /// Do not run migrations at start-up (run `zeroscale migrate` separately).
    #[arg(long, env = "ZEROSCALE_NO_MIGRATE")]
    pub no_migrate: bool,
    /// Do not run job workers in this process (run `zeroscale worker` separately).
    #[arg(long, env = "ZEROSCALE_NO_WORKER")]
    pub no_worker: bool,
    /// Run the in-process AWS sandbox, seeded with the demo world, and send every AWS call to
    /// it. Only ever on when asked for: a production start never falls back to it.
    #[arg(long, env = "ZEROSCALE_SANDBOX", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    pub sandbox: bool,
    /// Where the in-process sandbox listens (so the aws CLI can look at it too).
    #[arg(
        long,
        env = "ZEROSCALE_SANDBOX_LISTEN",
        default_value = "127.0.0.1:4566"
    )]
    pub sandbox_listen: SocketAddr,
    /// With --sandbox: skip the demo fleet (the targets zeroscale enables and drives into
    /// every state the portal shows at start-up).
    #[arg(long, env = "ZEROSCALE_NO_DEMO_FLEET", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    pub no_demo_fleet: bool,
}

/// `zeroscale worker`.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub worker: WorkerSettings,
    /// How long running jobs may take to finish after SIGTERM/ctrl-c.
    #[arg(long, env = "ZEROSCALE_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

/// Parses `250ms`, `30s`, `5m`, `2h`, `7d` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    // Bare digits are seconds, as they always were here (humantime wants a unit, except "0").
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| format!("invalid duration {s:?}: too large"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("invalid duration {s:?} ({e}): expected e.g. 500ms, 30s, 5m, 2h, 7d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_password() {
        let url: DatabaseUrl = "postgres://app:s3cret@db:5432/zs?sslmode=require&password=other"
            .parse()
            .unwrap();
        let shown = format!("{url:?} {url}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("other"), "{shown}");
        assert!(shown.contains("app:***@db:5432/zs"), "{shown}");
    }

    #[test]
    fn rejects_non_postgres_urls() {
        assert!("mysql://x@y/z".parse::<DatabaseUrl>().is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn help_never_shows_env_secrets() {
        use clap::CommandFactory;
        // SAFETY: tests in this module do not read this variable concurrently.
        unsafe { std::env::set_var("DATABASE_URL", "postgres://u:hunter2@h/db") };
        let mut cmd = Cli::command();
        let serve = cmd.find_subcommand_mut("serve").unwrap();
        let help = serve.render_long_help().to_string();
        assert!(!help.contains("hunter2"), "{help}");
    }
}

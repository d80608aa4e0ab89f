//! Subcommand dispatch: what each `zeroscale <command>` does.

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::{
    app::{cancel_on_signal, Application},
    config::{
        Cli, Command, DoctorArgs, SandboxArgs, ServeArgs, TokenArgs, TokenCommand, WorkerArgs,
    },
    jobs::{Registry, Worker, WorkerConfig},
    store,
};

/// Starts the drift scheduler (one fleet observation pass per interval) beside the workers
/// (unless its interval is 0).
fn start_drift(
    pool: &sqlx::PgPool,
    settings: &crate::config::WorkerSettings,
    stop: &CancellationToken,
) {
    // Pauses and keep-warm pins that ran out are lifted (audited) within this long.
    tokio::spawn(crate::reconcile::holds::run(
        pool.clone(),
        std::time::Duration::from_secs(15),
        stop.clone(),
    ));
    // Pauses about to end and targets that never reach zero are noticed within this long.
    tokio::spawn(crate::notify::run_periodic(
        pool.clone(),
        std::time::Duration::from_secs(60),
        stop.clone(),
    ));
    if !settings.drift_interval.is_zero() {
        tokio::spawn(crate::reconcile::drift::run(
            pool.clone(),
            settings.drift_interval,
            stop.clone(),
        ));
    }
}

/// The job handlers this build knows, with the AWS clients they use.
fn registry(
    pool: &sqlx::PgPool,
    clients: crate::aws::AwsClients,
    key: Option<crate::config::SecretsKey>,
) -> Registry {
    let registry = crate::reconcile::Reconciler {
        aws: clients,
        pool: pool.clone(),
    }
    .register(Registry::new());
    crate::notify::Deliverer::new(pool.clone(), key).register(registry)
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Worker(args) => worker(*args).await,
        Command::Migrate(db) => {
            store::prepare(&db, true).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Token(args) => token(args).await,
        Command::Sandbox(args) => sandbox(args).await,
        Command::Doctor(args) => doctor(*args).await,
        Command::Openapi => {
            let spec = crate::api::openapi();
            let text = serde_json::to_string_pretty(&spec).context("serialising OpenAPI")?;
            println!("{text}");
            Ok(())
        }
    }
}

async fn serve(mut args: ServeArgs) -> anyhow::Result<()> {
    tracing::info!(database = %args.db.database_url, listen = %args.http.listen, "starting zeroscale");
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    if args.sandbox {
        let url = start_sandbox(args.sandbox_listen, shutdown.clone()).await?;
        args.aws.endpoint_url = Some(url);
        args.aws.sandbox_credentials = true;
    }
    // One set of clients for the API's checks and the workers: one pacer (so the process stays
    // under --aws-rate-limit) and one quota cache.
    // AWS first: a missing Region or credentials stops start-up before anything else.
    let clients = crate::aws::AwsClients::connect(&args.aws).await?;
    let pool = store::prepare(&args.db, !args.no_migrate).await?;
    if args.sandbox && args.db.secrets_key.is_none() {
        // The demo only: a key for this process (sealed webhook secrets do not survive a
        // restart). A production start without --secrets-key refuses new webhooks instead.
        tracing::warn!("no --secrets-key: the sandbox demo seals webhook secrets with a key made for this process");
        args.db.secrets_key = Some(crate::config::SecretsKey::random());
    }
    let state = crate::api::AppState::new(pool.clone())
        .with_aws(clients.clone())
        .with_secrets(args.db.secrets_key.clone())
        .with_idempotency_ttl(args.worker.idempotency_ttl);
    let demo = (args.sandbox && !args.no_demo_fleet && !args.no_worker).then(|| {
        (
            state.clone(),
            clients.clone(),
            args.aws.endpoint_url.clone(),
        )
    });
    let app = Application::build(&args.http, state, None).await?;
    let budget = crate::aws::budget::share(pool.clone(), clients.pacer.clone(), shutdown.clone());
    let worker = if args.no_worker {
        // The workers elsewhere refresh their own gauges; this process's /metrics needs them too.
        crate::jobs::gauges::refresh_periodically(pool.clone(), std::time::Duration::from_secs(15));
        None
    } else {
        let config = WorkerConfig::from_settings(&args.worker, args.http.shutdown_grace);
        let registry = registry(&pool, clients, args.db.secrets_key.clone());
        start_drift(&pool, &args.worker, &shutdown);
        Some(tokio::spawn(
            Worker::new(pool, registry, config).run(shutdown.clone()),
        ))
    };
    if let Some((state, aws, Some(url))) = demo {
        start_demo(state, aws, url);
    }
    let served = app.run_until_stopped(shutdown.clone()).await;
    shutdown.cancel();
    if let Some(worker) = worker {
        worker.await.context("worker task failed")??;
    }
    let _ = budget.await;
    served
}

/// Builds the demo fleet in the background (`serve --sandbox`); a failure is logged, the
/// service goes on.
#[cfg(feature = "sandbox")]
fn start_demo(state: crate::api::AppState, aws: crate::aws::AwsClients, url: String) {
    tokio::spawn(async move {
        if let Err(e) = crate::demo::populate(state, aws, url).await {
            tracing::warn!(error = format!("{e:#}"), "demo fleet: not built");
        }
    });
}

#[cfg(not(feature = "sandbox"))]
fn start_demo(_: crate::api::AppState, _: crate::aws::AwsClients, _: String) {}

/// `zeroscale doctor`: the checklist on stdout; an error (exit 1) when a check failed.
async fn doctor(args: DoctorArgs) -> anyhow::Result<()> {
    let clients = crate::aws::AwsClients::from_args(&args.aws).await;
    let report = crate::doctor::run(crate::doctor::Database::Url(&args.db), Some(&clients)).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    anyhow::ensure!(report.ok, "doctor found {} failure(s)", report.failed);
    Ok(())
}

async fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    tracing::info!(database = %args.db.database_url, "starting zeroscale worker");
    let clients = crate::aws::AwsClients::connect(&args.aws).await?;
    let pool = store::prepare(&args.db, false).await?;
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let config = WorkerConfig::from_settings(&args.worker, args.shutdown_grace);
    let budget = crate::aws::budget::share(pool.clone(), clients.pacer.clone(), shutdown.clone());
    let registry = registry(&pool, clients, args.db.secrets_key.clone());
    start_drift(&pool, &args.worker, &shutdown);
    let ran = Worker::new(pool, registry, config).run(shutdown).await;
    let _ = budget.await;
    ran
}

async fn token(args: TokenArgs) -> anyhow::Result<()> {
    let pool = store::prepare(&args.db, true).await?;
    match args.command {
        TokenCommand::Create { name, scopes } => create_token(&pool, &name, scopes).await?,
        TokenCommand::List => {
            println!("{:<24} {:<12} {:<26} REVOKED", "NAME", "SCOPES", "CREATED");
            for t in store::tokens::list(&pool).await? {
                let revoked = t
                    .revoked_at
                    .map(|r| r.to_rfc3339())
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:<24} {:<12} {:<26} {}",
                    t.name,
                    t.scopes.join(","),
                    t.created_at.to_rfc3339(),
                    revoked
                );
            }
        }
        TokenCommand::Revoke { name } => {
            anyhow::ensure!(
                store::tokens::revoke(&pool, &name).await?,
                "no live token named {name:?}"
            );
            eprintln!("revoked token {name:?}");
        }
    }
    Ok(())
}

/// `token create`: the secret alone on stdout so scripts can capture it; everything else on
/// stderr.
async fn create_token(pool: &sqlx::PgPool, name: &str, scopes: Vec<String>) -> anyhow::Result<()> {
    let name = name.trim().to_string();
    anyhow::ensure!(
        !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c)),
        "token names are 1-64 characters: letters, digits, - _ . @"
    );
    let mut scopes: Vec<String> = scopes
        .into_iter()
        .map(|s| s.trim().to_lowercase())
        .collect();
    scopes.sort();
    scopes.dedup();
    anyhow::ensure!(
        !scopes.is_empty()
            && scopes.iter().all(|s| ["read", "write", "audit"].contains(&s.as_str())),
        "scopes must be among read, write and audit (audit shows callers' addresses and user agents in GET /audit)"
    );
    let (row, secret) =
        store::tokens::create(pool, &name, &scopes)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.is_unique_violation() => {
                    anyhow::anyhow!("a token named {name:?} already exists")
                }
                _ => anyhow::Error::new(e).context("creating the token"),
            })?;
    eprintln!(
        "created token {:?} with scopes {}; store the secret now, it is not shown again",
        row.name,
        row.scopes.join(",")
    );
    println!("{secret}");
    Ok(())
}

/// What `--sandbox` and `zeroscale sandbox` say in a build without the sandbox.
#[cfg(not(feature = "sandbox"))]
const NO_SANDBOX: &str =
    "this zeroscale was built without the AWS sandbox (cargo feature `sandbox`, \
     left out of production builds and the Docker image): it only talks to AWS. \
     For the sandbox, build from source with default features (`cargo run -- serve --sandbox`)";

/// Starts the in-process sandbox seeded with the demo world; returns its URL.
#[cfg(feature = "sandbox")]
async fn start_sandbox(
    listen: std::net::SocketAddr,
    stop: CancellationToken,
) -> anyhow::Result<String> {
    let sb = zeroscale_sandbox::Sandbox::new();
    sb.seed(&zeroscale_sandbox::demo_world())
        .and_then(|_| sb.seed(&zeroscale_sandbox::demo_fleet()))
        .map_err(|e| anyhow::anyhow!("seeding the sandbox: {e}"))?;
    let addr = sb.start(listen, stop).await?;
    let url = format!("http://{addr}");
    tracing::warn!(sandbox = %url, "SANDBOX MODE: AWS calls go to the in-process sandbox, not to AWS");
    eprintln!("zeroscale: sandbox mode; AWS is simulated at {url} (try: aws --endpoint-url {url} sagemaker list-inference-components)");
    Ok(url)
}

#[cfg(not(feature = "sandbox"))]
async fn start_sandbox(_: std::net::SocketAddr, _: CancellationToken) -> anyhow::Result<String> {
    anyhow::bail!("--sandbox: {NO_SANDBOX}")
}

#[cfg(feature = "sandbox")]
async fn sandbox(args: SandboxArgs) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    cancel_on_signal(stop.clone());
    zeroscale_sandbox::run(args.listen, args.demo, stop).await
}

#[cfg(not(feature = "sandbox"))]
async fn sandbox(_: SandboxArgs) -> anyhow::Result<()> {
    anyhow::bail!("zeroscale sandbox: {NO_SANDBOX}")
}

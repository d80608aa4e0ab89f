//! Subcommand dispatch: what each `zeroscale <command>` does.

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::{
    app::{cancel_on_signal, Application},
    config::{Cli, Command, ServeArgs, WorkerArgs},
    jobs::{Registry, Worker, WorkerConfig},
    store,
};

/// The job handlers this build knows.
fn registry() -> Registry {
    Registry::new()
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
        Command::Openapi => {
            let spec = crate::api::openapi();
            let text = serde_json::to_string_pretty(&spec).context("serialising OpenAPI")?;
            println!("{text}");
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    tracing::info!(database = %args.db.database_url, listen = %args.http.listen, "starting zeroscale");
    let pool = store::prepare(&args.db, !args.no_migrate).await?;
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let app = Application::build(&args.http, pool.clone(), None).await?;
    let worker = (!args.no_worker).then(|| {
        let config = WorkerConfig::from_settings(&args.worker, args.http.shutdown_grace);
        tokio::spawn(Worker::new(pool, registry(), config).run(shutdown.clone()))
    });
    let served = app.run_until_stopped(shutdown.clone()).await;
    shutdown.cancel();
    if let Some(worker) = worker {
        worker.await.context("worker task failed")??;
    }
    served
}

async fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    tracing::info!(database = %args.db.database_url, "starting zeroscale worker");
    let pool = store::prepare(&args.db, false).await?;
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let config = WorkerConfig::from_settings(&args.worker, args.shutdown_grace);
    Worker::new(pool, registry(), config).run(shutdown).await
}

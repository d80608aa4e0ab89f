//! Subcommand dispatch: what each `zeroscale <command>` does.

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::{
    app::{cancel_on_signal, Application},
    config::{Cli, Command, ServeArgs},
    store,
};

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Worker(args) => {
            let _ = store::prepare(&args.db, false).await?;
            anyhow::bail!("the standalone worker arrives with the job engine")
        }
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
    let app = Application::build(&args.http, pool, None).await?;
    app.run_until_stopped(shutdown).await
}

use std::process::ExitCode;

use clap::Parser;
use zeroscale::{cli, config::Cli, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    match cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "zeroscale failed");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

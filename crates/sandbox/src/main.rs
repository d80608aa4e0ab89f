//! `zeroscale-sandbox`: the AWS sandbox on its own, for the aws CLI, other tools and tests of
//! other services. `zeroscale-sandbox [--listen ADDR] [--demo]`.

use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;

const USAGE: &str = "usage: zeroscale-sandbox [--listen ADDR] [--demo]\n  \
    --listen ADDR  where to listen (default 127.0.0.1:4566; env ZEROSCALE_SANDBOX_LISTEN)\n  \
    --demo         seed the demo world (demo-endpoint/demo-component, demo-async-endpoint)";

/// Two flags do not earn a dependency on clap in the sandbox crate: the service's own
/// `zeroscale sandbox` subcommand is the clap front end to the same [`zeroscale_sandbox::run`].
fn parse() -> Result<(SocketAddr, bool), String> {
    let mut listen =
        std::env::var("ZEROSCALE_SANDBOX_LISTEN").unwrap_or_else(|_| "127.0.0.1:4566".into());
    let mut demo = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address")?,
            "--demo" => demo = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let listen = listen
        .parse()
        .map_err(|e| format!("--listen {listen:?}: {e}"))?;
    Ok((listen, demo))
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let (listen, demo) = match parse() {
        Ok(v) => v,
        Err(msg) if msg.is_empty() => {
            println!("{USAGE}");
            return;
        }
        Err(msg) => {
            eprintln!("zeroscale-sandbox: {msg}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        on_signal.cancel();
    });
    if let Err(e) = zeroscale_sandbox::run(listen, demo, stop).await {
        eprintln!("zeroscale-sandbox: {e:#}");
        std::process::exit(1);
    }
}

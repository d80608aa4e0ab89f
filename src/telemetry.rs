//! Logging set-up: pretty lines on a terminal, JSON lines in production.

use std::io::IsTerminal;

use tracing_subscriber::{fmt, prelude::*, EnvFilter};

use crate::config::LogFormat;

/// Default filter when `RUST_LOG` is not set.
const DEFAULT_FILTER: &str = "info,sqlx=warn,aws_config=warn,aws_smithy_runtime=warn,hyper=warn";

/// Installs the global subscriber. Safe to call more than once (later calls do nothing), which
/// test harnesses rely on.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init()
    };
    // Already initialised (tests): keep the first subscriber.
    let _ = result;
}

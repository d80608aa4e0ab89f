//! The HTTP server's settings and the parsers of its list-valued flags.

use std::{net::SocketAddr, time::Duration};

use super::{parse_duration, Secret};
use clap::Args;

/// HTTP server settings.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Address to listen on.
    #[arg(long, env = "ZEROSCALE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "ZEROSCALE_BODY_LIMIT", default_value_t = 64 * 1024)]
    pub body_limit: usize,
    /// A request taking longer than this is answered with 503.
    #[arg(long, env = "ZEROSCALE_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// How long a request body may take to arrive; a client that sends less than its
    /// Content-Length gets 408 after this, not after the request timeout.
    #[arg(long, env = "ZEROSCALE_BODY_READ_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub body_read_timeout: Duration,
    /// After SIGTERM/ctrl-c, how long in-flight requests (and jobs) may take to finish.
    #[arg(long, env = "ZEROSCALE_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Writes per second each token may make (0: unlimited); excess gets 429 with Retry-After.
    #[arg(long, env = "ZEROSCALE_WRITE_RATE_LIMIT", default_value_t = 10)]
    pub write_rate_limit: u32,
    /// Writes a token may make in a burst above that rate.
    #[arg(long, env = "ZEROSCALE_WRITE_BURST", default_value_t = 50)]
    pub write_burst: u32,
    /// Origins allowed by CORS (the portal's), comma-separated, each `scheme://host[:port]`; or
    /// `*` alone for any origin (no credentials are ever allowed); none means CORS is off.
    #[arg(
        long = "cors-origin",
        env = "ZEROSCALE_CORS_ORIGINS",
        value_delimiter = ',',
        value_parser = parse_origin
    )]
    pub cors_origins: Vec<String>,
    /// Proxies (addresses or CIDR blocks, comma-separated) whose `X-Forwarded-For` is believed
    /// for the client address in the audit log and rate limits. None: the peer address is the
    /// client.
    #[arg(
        long = "trusted-proxy",
        env = "ZEROSCALE_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = parse_net
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Bearer token `GET /metrics` requires. Unset: `/metrics` is open to anyone who can reach
    /// the port (it shows counts and latencies, never names or secrets).
    #[arg(long, env = "ZEROSCALE_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,
    #[command(flatten)]
    pub holds: HoldLimits,
    /// A JSON price table for `GET /reports/savings` (hourly prices by `ml.*` instance type,
    /// with region, currency, date and kind); default: the shipped us-east-1 list prices
    /// (assets/prices/). A table that does not parse stops the start.
    #[arg(long, env = "ZEROSCALE_PRICE_TABLE")]
    pub price_table: Option<std::path::PathBuf>,
}

/// How long pauses and keep-warm windows may last.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct HoldLimits {
    /// How long a pause lasts when the request gives no `until`.
    #[arg(long, env = "ZEROSCALE_PAUSE_DEFAULT", default_value = "1h", value_parser = super::parse_duration)]
    pub pause_default: Duration,
    /// The longest pause accepted (a forgotten pause ends by itself).
    #[arg(long, env = "ZEROSCALE_PAUSE_MAX", default_value = "7d", value_parser = super::parse_duration)]
    pub pause_max: Duration,
    /// How long a wake keeps the target warm when the request gives no `keep_warm_for`.
    #[arg(long, env = "ZEROSCALE_WAKE_DEFAULT", default_value = "1h", value_parser = super::parse_duration)]
    pub wake_default: Duration,
    /// The longest keep-warm window accepted (a wake's or a pin's).
    #[arg(long, env = "ZEROSCALE_KEEP_WARM_MAX", default_value = "7d", value_parser = super::parse_duration)]
    pub keep_warm_max: Duration,
}

impl Default for HoldLimits {
    fn default() -> Self {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        Self {
            pause_default: hours(1),
            pause_max: hours(7 * 24),
            wake_default: hours(1),
            keep_warm_max: hours(7 * 24),
        }
    }
}

/// A CORS origin: `*`, or `scheme://host[:port]` exactly as browsers send it.
pub fn parse_origin(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s == "*" {
        return Ok(s.to_string());
    }
    let url = url::Url::parse(s)
        .map_err(|e| format!("{s:?} is not an origin (scheme://host[:port]): {e}"))?;
    let origin = url.origin().ascii_serialization();
    if origin == "null" || origin != s.trim_end_matches('/') {
        return Err(format!(
            "{s:?} is not an origin: write scheme://host[:port] with no path (for example {origin:?})"
        ));
    }
    Ok(origin)
}

/// An address or CIDR block.
pub fn parse_net(s: &str) -> Result<ipnet::IpNet, String> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is not an IP address or CIDR block (e.g. 10.0.0.0/8)"))
}

impl Default for HttpArgs {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("static address"),
            body_limit: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(30),
            write_rate_limit: 10,
            write_burst: 50,
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            metrics_token: None,
            holds: HoldLimits::default(),
            price_table: None,
        }
    }
}

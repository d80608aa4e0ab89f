//! `Application`: binds the listener (port 0 in tests), serves the router, and shuts down
//! gracefully: stop accepting, let in-flight requests finish within the grace period.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use axum::{serve::ListenerExt, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    api::{self, middleware::StackSettings, AppState},
    config::HttpArgs,
};

/// A bound, ready-to-run HTTP server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    shutdown_grace: Duration,
}

impl Application {
    /// Binds `http.listen` and builds the router. `extra` mounts additional routes behind the
    /// same middleware (tests use it).
    pub async fn build(
        http: &HttpArgs,
        state: AppState,
        extra: Option<Router<AppState>>,
    ) -> anyhow::Result<Self> {
        // Install the metrics recorder before anything records.
        let _ = crate::api::metrics::handle();
        let listener = TcpListener::bind(http.listen)
            .await
            .with_context(|| format!("cannot listen on {}", http.listen))?;
        let stack = StackSettings {
            body_limit: http.body_limit,
            request_timeout: http.request_timeout,
            cors_origins: http.cors_origins.clone(),
            body_read_timeout: http.body_read_timeout,
        };
        let mut state = state
            .with_write_limit(http.write_rate_limit, http.write_burst)
            .with_http(http);
        if let Some(path) = &http.price_table {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the price table {}", path.display()))?;
            let prices = crate::domain::savings::PriceTable::parse(&text)
                .map_err(|why| anyhow::anyhow!("the price table {}: {why}", path.display()))?;
            tracing::info!(path = %path.display(), region = %prices.region, as_of = %prices.as_of, "savings priced with this table");
            state = state.with_prices(prices);
        }
        if http.metrics_token.is_none() {
            tracing::info!("GET /metrics is open to anyone who can reach this port (set --metrics-token to require a bearer token)");
        }
        let router = api::router(state, stack, extra)?;
        Ok(Self {
            listener,
            router,
            shutdown_grace: http.shutdown_grace,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Serves until `shutdown` is cancelled, then stops accepting and waits up to the grace
    /// period for in-flight requests; whatever is still running after that is dropped.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let addr = self.local_addr();
        tracing::info!(%addr, "listening");
        let signal = shutdown.clone();
        // Every connection answers hyper's parse errors with problem+json (api::wire).
        let listener = api::wire::ProblemListener(self.listener).tap_io(|io| {
            let _ = io.tcp().set_nodelay(true);
        });
        let serve = axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { signal.cancelled().await });
        let mut task = tokio::spawn(async move { serve.await });
        tokio::select! {
            res = &mut task => return res.context("server task failed")?.context("server error"),
            _ = shutdown.cancelled() => {}
        }
        tracing::info!(
            grace_s = self.shutdown_grace.as_secs_f64(),
            "shutting down: no new connections; finishing in-flight requests"
        );
        match tokio::time::timeout(self.shutdown_grace, &mut task).await {
            Ok(res) => res.context("server task failed")?.context("server error")?,
            Err(_) => {
                tracing::warn!("grace period over; dropping requests still in flight");
                task.abort();
            }
        }
        tracing::info!("HTTP server stopped");
        Ok(())
    }
}

/// Cancels `token` on SIGTERM or ctrl-c.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! { _ = ctrl_c => {}, _ = term => {} }
        tracing::info!("shutdown signal received");
        token.cancel();
    });
}

//! The HTTP API: router, middleware and one module per resource.

pub mod audit;
pub mod auth;
pub mod changes;
pub mod components;
pub mod controls;
pub mod doctor;
pub mod events;
pub mod extract;
pub mod health;
pub mod history;
pub mod kind_routes;
pub mod metrics;
pub mod middleware;
pub mod operations;
pub mod problems;
pub mod reports;
pub mod targets;
pub mod ui;
pub mod variants;
pub mod views;
pub mod webhooks;
pub mod wire;

use std::sync::Arc;

use axum::{
    http::{header, Method},
    response::IntoResponse,
    routing::get,
    Router,
};
use sqlx::PgPool;
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::ApiError;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The Postgres pool.
    pub pool: PgPool,
    /// Recently resolved bearer tokens.
    pub tokens: Arc<auth::TokenCache>,
    /// Wakes job workers after a change commits.
    pub notifier: crate::jobs::Notifier,
    /// AWS clients, for dry runs (None when the API runs without AWS access).
    pub aws: Option<crate::aws::AwsClients>,
    /// Per-token limiter on writes (None: unlimited).
    pub write_limiter: Option<Arc<auth::WriteLimiter>>,
    /// How long an Idempotency-Key is remembered.
    pub idempotency_ttl: std::time::Duration,
    /// Proxies whose `X-Forwarded-For` is believed (`--trusted-proxy`).
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
    /// The bearer token `/metrics` asks for (`--metrics-token`); None: open.
    pub metrics_token: Option<Arc<str>>,
    /// Writes recording at once at most: the pool less three connections kept for reads, so a
    /// burst of writes never takes every connection from them.
    pub write_slots: Arc<tokio::sync::Semaphore>,
    /// The last `GET /doctor` checklist, shared for a few seconds.
    pub doctor: doctor::DoctorCache,
    /// How long pauses and keep-warm windows may last.
    pub holds: crate::config::HoldLimits,
    /// Hourly prices for the savings report.
    pub prices: Arc<crate::domain::savings::PriceTable>,
    /// Seals webhook secrets (`--secrets-key`); None: webhooks cannot be created.
    pub secrets: Option<crate::config::SecretsKey>,
}

impl AppState {
    /// State over a pool (starts the worker notifier on the current runtime).
    pub fn new(pool: PgPool) -> Self {
        let tokens = Arc::new(auth::TokenCache::default());
        let write_slots = (pool.options().get_max_connections().saturating_sub(3)).max(1) as usize;
        auth::watch_revocations(pool.clone(), tokens.clone());
        Self {
            notifier: crate::jobs::Notifier::start(pool.clone()),
            pool,
            tokens,
            trusted_proxies: Arc::default(),
            metrics_token: None,
            write_slots: Arc::new(tokio::sync::Semaphore::new(write_slots)),
            doctor: doctor::cache(),
            holds: crate::config::HoldLimits::default(),
            prices: Arc::new(crate::domain::savings::PriceTable::default_table()),
            secrets: None,
            aws: None,
            write_limiter: None,
            idempotency_ttl: crate::config::WorkerSettings::default().idempotency_ttl,
        }
    }

    /// The HTTP settings the handlers need: trusted proxies and the metrics token.
    pub fn with_http(mut self, http: &crate::config::HttpArgs) -> Self {
        self.trusted_proxies = Arc::new(http.trusted_proxies.clone());
        self.metrics_token = http.metrics_token.as_ref().map(|t| Arc::from(t.expose()));
        self.holds = http.holds;
        self
    }

    /// Seals webhook secrets with `key`.
    pub fn with_secrets(mut self, key: Option<crate::config::SecretsKey>) -> Self {
        self.secrets = key;
        self
    }

    /// Prices the savings report with `prices`.
    pub fn with_prices(mut self, prices: crate::domain::savings::PriceTable) -> Self {
        self.prices = Arc::new(prices);
        self
    }

    /// Remembers Idempotency-Keys for `ttl`.
    pub fn with_idempotency_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.idempotency_ttl = ttl;
        self
    }

    /// Limits each token to `per_second` writes with bursts of `burst` (0: unlimited).
    pub fn with_write_limit(mut self, per_second: u32, burst: u32) -> Self {
        self.write_limiter = auth::write_limiter(per_second, burst).map(Arc::new);
        self
    }

    /// With AWS clients (dry runs).
    pub fn with_aws(mut self, aws: crate::aws::AwsClients) -> Self {
        self.aws = Some(aws);
        self
    }
}

/// Adds the bearer security scheme.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("zs_<prefix>_<secret> from `zeroscale token create`")
                    .build(),
            ),
        );
    }
}

/// `/docs`: Swagger UI over `/openapi.json`, its files shipped inside `utoipa-swagger-ui`
/// (feature `vendored`: nothing is fetched at build or run time). "Authorize" takes a bearer
/// token, so every operation can be tried from the page. The portal's CSP applies.
fn docs() -> Router<AppState> {
    let config = utoipa_swagger_ui::Config::new(["/openapi.json"])
        .try_it_out_enabled(true)
        .persist_authorization(false)
        .display_request_duration(true);
    Router::from(utoipa_swagger_ui::SwaggerUi::new("/docs").config(config))
        .layer(axum::middleware::from_fn(ui::headers))
}

/// The OpenAPI document's static part; paths and schemas come from the routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "zeroscale",
        description = "Makes Amazon SageMaker scale-to-zero safe and boring: records the desired \
                       zero-scaling config of inference components and async endpoint variants, \
                       and converges AWS to it in durable background jobs.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    // Every route needs a token unless it says otherwise (the probes and /metrics do).
    security(("bearer" = [])),
    tags(
        (name = "components", description = "Scale-to-zero for SageMaker inference components"),
        (name = "endpoints", description = "Scale-to-zero for async-inference endpoint variants"),
        (name = "operations", description = "The jobs behind changes"),
        (name = "audit", description = "The append-only audit log"),
        (name = "events", description = "The fleet's timeline: what AWS and zeroscale did to every target"),
        (name = "health", description = "Liveness and readiness probes, and the environment checklist"),
    )
)]
pub struct ApiDoc;

/// All API routes with their OpenAPI description, from one source so they cannot drift.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(components::enable, components::disable))
        .routes(routes!(components::get_one))
        .routes(routes!(components::reconcile))
        .routes(routes!(components::list))
        .routes(routes!(components::versions))
        .routes(routes!(components::timeline))
        .routes(routes!(components::version))
        .routes(routes!(components::diff))
        .routes(routes!(components::rollback))
        .routes(routes!(components::wake))
        .routes(routes!(components::keep_warm, components::unpin))
        .routes(routes!(components::pause))
        .routes(routes!(components::resume))
        .routes(routes!(variants::enable, variants::disable))
        .routes(routes!(variants::get_one))
        .routes(routes!(variants::reconcile))
        .routes(routes!(variants::list))
        .routes(routes!(variants::versions))
        .routes(routes!(variants::timeline))
        .routes(routes!(variants::version))
        .routes(routes!(variants::diff))
        .routes(routes!(variants::rollback))
        .routes(routes!(variants::wake))
        .routes(routes!(variants::keep_warm, variants::unpin))
        .routes(routes!(variants::pause))
        .routes(routes!(variants::resume))
        .routes(routes!(operations::get_one))
        .routes(routes!(audit::list))
        .routes(routes!(events::list))
        .routes(routes!(reports::savings))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::get_one, webhooks::delete))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(audit::verify))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(doctor::doctor))
}

/// The generated OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes().split_for_parts().1
}

/// The full router with middleware. `extra` lets tests mount routes of their own behind the
/// same stack.
pub fn router(
    state: AppState,
    stack: middleware::StackSettings,
    extra: Option<Router<AppState>>,
) -> anyhow::Result<Router> {
    let (mut router, spec) = api_routes().split_for_parts();
    // Serialised once: the document is static for the life of the process.
    let spec_json = bytes::Bytes::from(serde_json::to_vec(&spec).expect("OpenAPI serialises"));
    router = router
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], spec_json) }),
        )
        .merge(docs())
        .merge(ui::routes());
    if let Some(extra) = extra {
        router = router.merge(extra);
    }
    let router = router
        .fallback(|| async { ApiError::NotFound("no route matches this path".into()) })
        .method_not_allowed_fallback(|method: Method| async move {
            let _ = method;
            ApiError::MethodNotAllowed.into_response()
        });
    Ok(middleware::apply(router, stack)?.with_state(state))
}

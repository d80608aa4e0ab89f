//! The HTTP API: router, middleware and one module per resource.

pub mod extract;
pub mod health;
pub mod middleware;

use axum::{http::Method, response::IntoResponse, routing::get, Json, Router};
use sqlx::PgPool;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::ApiError;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The Postgres pool.
    pub pool: PgPool,
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
    tags((name = "health", description = "Liveness and readiness probes"))
)]
pub struct ApiDoc;

/// All API routes with their OpenAPI description, from one source so they cannot drift.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
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
) -> Router {
    let (mut router, spec) = api_routes().split_for_parts();
    let spec = std::sync::Arc::new(spec);
    router = router.route(
        "/openapi.json",
        get(move || async move { Json(spec.as_ref().clone()) }),
    );
    if let Some(extra) = extra {
        router = router.merge(extra);
    }
    let router = router
        .fallback(|| async { ApiError::NotFound("no route matches this path".into()) })
        .method_not_allowed_fallback(|method: Method| async move {
            let _ = method;
            ApiError::MethodNotAllowed.into_response()
        });
    middleware::apply(router, stack).with_state(state)
}

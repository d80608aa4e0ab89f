//! `/components`: the desired scale-to-zero state of SageMaker inference components.

use axum::{
    extract::{Path, State},
    http::HeaderMap,
    response::Response,
    Json,
};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{
    auth::{Reader, Writer},
    extract::ApiQuery,
    extract::OptionalJson,
    problems,
    targets::{self, EnableQuery, ListQuery},
    views::{ComponentStatus, Page},
    AppState,
};
use crate::{
    domain::{ComponentName, ComponentSpec, TargetKind, TargetRef, TargetSpec},
    error::{ApiError, Problem},
};

/// The answer to a write.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComponentChange {
    /// False when the request matched the current version (no new version, no job).
    pub changed: bool,
    /// What happened, in words.
    pub detail: String,
    /// The component after the change.
    pub target: ComponentStatus,
}

/// The target a component route names (422 for an invalid name).
pub(crate) fn parse_name(name: &str) -> Result<TargetRef, ApiError> {
    ComponentName::parse(name)
        .map(TargetRef::Component)
        .map_err(|m| ApiError::invalid_field("name", m))
}

/// Enable or update scale-to-zero for an inference component.
///
/// Records a new desired version and queues the job that converges AWS to it. With no body,
/// every setting takes its default. Re-posting the current spec changes nothing (200).
#[utoipa::path(post, path = "/components/{name}/scale-to-zero", operation_id = "enable_component", tag = "components",
    params(
        ("name" = String, Path, description = "Inference component name", example = "demo-component", pattern = "^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length = 63),
        EnableQuery,
        crate::api::changes::WriteHeaders,
    ),
    request_body(content = Option<ComponentSpec>, description = "Desired settings; omit for all defaults",
        example = json!({"max_capacity": 4})),
    responses(
        (status = 202, description = "Accepted as a new version; poll the operation in Location", body = ComponentChange,
            headers(("Location" = String, description = "The operation"), ("ETag" = String, description = "The new version"))),
        (status = 200, description = "Identical to the current version: nothing to do; or, with dry_run, the verdict and plan", body = EnableOk),
        problems::Write,
        (status = 422, description = "Invalid name or settings, Idempotency-Key reused with another body, or the name is an endpoint (code wrong_target_kind)", body = Problem, content_type = "application/problem+json"),
        problems::DryRun,
    )
)]
pub async fn enable(
    State(state): State<AppState>,
    Writer(caller): Writer,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<EnableQuery>,
    headers: HeaderMap,
    OptionalJson(spec): OptionalJson<ComponentSpec>,
) -> Result<Response, ApiError> {
    let target = parse_name(&name)?;
    targets::enable(
        &state,
        &caller,
        target,
        TargetSpec::Component(spec),
        q,
        &headers,
    )
    .await
}

/// A 200 from the enable route: an unchanged write, or a dry run's verdict.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EnableOk {
    /// Identical to the current version.
    Unchanged(Box<ComponentChange>),
    /// `dry_run=true`: the verdict and plan.
    DryRun(crate::reconcile::DryRun),
}

/// Re-observe a component now and repair whatever differs from its current version.
///
/// Queues a reconcile job (no new version); the job's plan shows what, if anything, had drifted.
#[utoipa::path(post, path = "/components/{name}/reconcile", operation_id = "reconcile_component", tag = "components",
    params(("name" = String, Path, description = "Inference component name", pattern = "^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length = 63)),
    responses(
        (status = 202, description = "Queued; poll the operation in Location", body = ComponentChange),
        problems::WriteAuth,
        problems::NotManaged,
        (status = 422, description = "Invalid name", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn reconcile(
    State(state): State<AppState>,
    Writer(caller): Writer,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    targets::reconcile(&state, &caller, &parse_name(&name)?).await
}

/// Turn scale-to-zero off for an inference component.
///
/// The job removes the alarm and policies zeroscale created and restores the scalable target's
/// minimum capacity.
#[utoipa::path(delete, path = "/components/{name}/scale-to-zero", operation_id = "disable_component", tag = "components",
    params(
        ("name" = String, Path, description = "Inference component name", pattern = "^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length = 63),
        crate::api::changes::WriteHeaders,
    ),
    responses(
        (status = 202, description = "Accepted; poll the operation in Location", body = ComponentChange),
        (status = 200, description = "Already off: nothing to do", body = ComponentChange),
        (status = 400, description = "Malformed headers", body = Problem, content_type = "application/problem+json"),
        problems::WriteAuth,
        problems::NotManaged,
        (status = 409, description = "Idempotency-Key in flight", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn disable(
    State(state): State<AppState>,
    Writer(caller): Writer,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    targets::disable(&state, &caller, parse_name(&name)?, &headers).await
}

/// Read one component: spec, version (also the ETag), phase, conditions, owned AWS objects and
/// the last operation.
#[utoipa::path(get, path = "/components/{name}", operation_id = "get_component", tag = "components",
    params(("name" = String, Path, description = "Inference component name", pattern = "^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length = 63)),
    responses(
        (status = 200, description = "The component", body = ComponentStatus,
            headers(("ETag" = String, description = "The current version"))),
        problems::ReadAuth,
        problems::NotManaged,
        (status = 422, description = "Invalid name", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    Reader(_caller): Reader,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    targets::get_one(&state, &parse_name(&name)?).await
}

/// List components, by name, with filters and cursor pagination.
#[utoipa::path(get, path = "/components", operation_id = "list_components", tag = "components",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of components", body = Page<ComponentStatus>),
        problems::ReadList,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Reader(_caller): Reader,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Value>>, ApiError> {
    Ok(Json(targets::list(&state, TargetKind::Component, q).await?))
}

//! `/endpoints/{endpoint}/variants/{variant}`: the desired scale-to-zero state of async-inference
//! endpoint variants (seed 001). Same machinery as components, through `targets`.

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
    views::{Page, VariantStatus},
    AppState,
};
use crate::{
    domain::{EndpointName, TargetKind, TargetRef, TargetSpec, VariantName, VariantSpec},
    error::{ApiError, Problem},
};

/// The answer to a write.
#[derive(Debug, Serialize, ToSchema)]
pub struct VariantChange {
    /// False when the request matched the current version (no new version, no job).
    pub changed: bool,
    /// What happened, in words.
    pub detail: String,
    /// The variant after the change.
    pub target: VariantStatus,
}

/// A 200 from the enable route: an unchanged write, or a dry run's verdict.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum VariantEnableOk {
    /// Identical to the current version.
    Unchanged(Box<VariantChange>),
    /// `dry_run=true`: the verdict and plan.
    DryRun(crate::reconcile::DryRun),
}

/// The target a variant route names (422 for an invalid name).
pub(crate) fn parse(endpoint: &str, variant: &str) -> Result<TargetRef, ApiError> {
    Ok(TargetRef::EndpointVariant {
        endpoint: EndpointName::parse(endpoint)
            .map_err(|m| ApiError::invalid_field("endpoint", m))?,
        variant: VariantName::parse(variant).map_err(|m| ApiError::invalid_field("variant", m))?,
    })
}

/// Enable or update scale-to-zero for a variant of an async-inference endpoint.
///
/// Records a new desired version and queues the job that registers the variant with
/// MinCapacity 0, puts target tracking on `ApproximateBacklogSizePerInstance`, and puts the
/// step policy and `HasBacklogWithoutCapacity` alarm that bring it back from zero (seed 001).
/// With no body, every setting takes its default. Re-posting the current spec changes nothing.
#[utoipa::path(post, path = "/endpoints/{endpoint}/variants/{variant}/scale-to-zero", operation_id = "enable_variant", tag = "endpoints",
    params(
        ("endpoint" = String, Path, description = "Async-inference endpoint name", example = "demo-async-endpoint", pattern = "^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length = 63),
        ("variant" = String, Path, description = "Production variant name", example = "AllTraffic", pattern = "^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length = 63),
        EnableQuery,
        crate::api::changes::WriteHeaders,
    ),
    request_body(content = Option<VariantSpec>, description = "Desired settings; omit for all defaults",
        example = json!({"max_capacity": 4})),
    responses(
        (status = 202, description = "Accepted as a new version; poll the operation in Location", body = VariantChange,
            headers(("Location" = String, description = "The operation"), ("ETag" = String, description = "The new version"))),
        (status = 200, description = "Identical to the current version: nothing to do; or, with dry_run, the verdict and plan", body = VariantEnableOk),
        problems::Write,
        (status = 422, description = "Invalid names or settings, Idempotency-Key reused with another body, or the endpoint name is an inference component (code wrong_target_kind)", body = Problem, content_type = "application/problem+json"),
        problems::DryRun,
    )
)]
pub async fn enable(
    State(state): State<AppState>,
    Writer(caller): Writer,
    Path((endpoint, variant)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<EnableQuery>,
    headers: HeaderMap,
    OptionalJson(spec): OptionalJson<VariantSpec>,
) -> Result<Response, ApiError> {
    let target = parse(&endpoint, &variant)?;
    targets::enable(
        &state,
        &caller,
        target,
        TargetSpec::Variant(spec),
        q,
        &headers,
    )
    .await
}

/// Turn scale-to-zero off for an async endpoint variant.
///
/// The job removes the alarm and policies zeroscale created and restores the scalable target's
/// capacity from before zeroscale (or `restore_min_capacity`).
#[utoipa::path(delete, path = "/endpoints/{endpoint}/variants/{variant}/scale-to-zero", operation_id = "disable_variant", tag = "endpoints",
    params(
        ("endpoint" = String, Path, description = "Async-inference endpoint name", pattern = "^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length = 63),
        ("variant" = String, Path, description = "Production variant name", pattern = "^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length = 63),
        crate::api::changes::WriteHeaders,
    ),
    responses(
        (status = 202, description = "Accepted; poll the operation in Location", body = VariantChange),
        (status = 200, description = "Already off: nothing to do", body = VariantChange),
        (status = 400, description = "Malformed headers", body = Problem, content_type = "application/problem+json"),
        problems::WriteAuth,
        problems::NotManaged,
        (status = 409, description = "Idempotency-Key in flight", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid names", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn disable(
    State(state): State<AppState>,
    Writer(caller): Writer,
    Path((endpoint, variant)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    targets::disable(&state, &caller, parse(&endpoint, &variant)?, &headers).await
}

/// Read one async endpoint variant: spec, version (also the ETag), phase, conditions (with the
/// last failed or not-scaled scaling activity, in AWS's words), owned AWS objects and the last
/// operation.
#[utoipa::path(get, path = "/endpoints/{endpoint}/variants/{variant}", operation_id = "get_variant", tag = "endpoints",
    params(
        ("endpoint" = String, Path, description = "Async-inference endpoint name", pattern = "^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length = 63),
        ("variant" = String, Path, description = "Production variant name", pattern = "^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length = 63),
    ),
    responses(
        (status = 200, description = "The variant", body = VariantStatus,
            headers(("ETag" = String, description = "The current version"))),
        problems::ReadAuth,
        problems::NotManaged,
        (status = 422, description = "Invalid names", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_one(
    State(state): State<AppState>,
    Reader(_caller): Reader,
    Path((endpoint, variant)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    targets::get_one(&state, &parse(&endpoint, &variant)?).await
}

/// Re-observe a variant now and repair whatever differs from its current version; also
/// refreshes the scaling-activity findings in its status.
#[utoipa::path(post, path = "/endpoints/{endpoint}/variants/{variant}/reconcile", operation_id = "reconcile_variant", tag = "endpoints",
    params(
        ("endpoint" = String, Path, description = "Async-inference endpoint name", pattern = "^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length = 63),
        ("variant" = String, Path, description = "Production variant name", pattern = "^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length = 63),
    ),
    responses(
        (status = 202, description = "Queued; poll the operation in Location", body = VariantChange),
        problems::WriteAuth,
        problems::NotManaged,
        (status = 422, description = "Invalid names", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn reconcile(
    State(state): State<AppState>,
    Writer(caller): Writer,
    Path((endpoint, variant)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    targets::reconcile(&state, &caller, &parse(&endpoint, &variant)?).await
}

/// List managed async endpoint variants, by endpoint then variant, with filters and cursor
/// pagination.
#[utoipa::path(get, path = "/endpoints", operation_id = "list_variants", tag = "endpoints",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of endpoint variants", body = Page<VariantStatus>),
        problems::ReadList,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Reader(_caller): Reader,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Value>>, ApiError> {
    Ok(Json(
        targets::list(&state, TargetKind::EndpointVariant, q).await?,
    ))
}

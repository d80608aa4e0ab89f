//! The per-kind history routes: thin wrappers that parse the path and carry the OpenAPI
//! description, over the shared handlers in `history`.

use super::*;
use crate::api::{components, problems, variants};

/// List a component's versions, newest first: who changed it, when, and whether AWS
/// converged to each.
#[utoipa::path(get, path = "/components/{name}/versions", tag = "components",
    params(("name" = String, Path, description = "Inference component name", pattern = "^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length = 63), HistoryQuery),
    responses(
        (status = 200, description = "A page of versions, newest first", body = Page<VersionSummary>),
        problems::ReadQuery,
        problems::VersionPage,
    )
)]
pub async fn component_versions(
    State(state): State<AppState>,
    Reader(_caller): Reader,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<Page<VersionSummary>>, ApiError> {
    list(&state, &components::parse_name(&name)?, q).await
}

/// Read one version of a component: its full spec and who made it.
#[utoipa::path(get, path = "/components/{name}/versions/{version}", tag = "components",
    params(("name" = String, Path, description = "Inference component name", pattern = "^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length = 63),
           ("version" = i32, Path, description = "Version number", minimum = 1)),
    responses(
        (status = 200, description = "The version", body = VersionDetail),
        problems::ReadAuth,
        problems::NoSuchVersion,
    )
)]
pub async fn component_version(
    State(state): State<AppState>,
    Reader(_caller): Reader,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<VersionDetail>, ApiError> {
    get_one(&state, &components::parse_name(&name)?, &version).await
}

/// What changed in a component between two versions, as a JSON Patch (RFC 6902).
#[utoipa::path(get, path = "/components/{name}/versions/{version}/diff", tag = "components",
    params(("name" = String, Path, description = "Inference component name", pattern = "^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length = 63),
           ("version" = i32, Path, description = "Version number", minimum = 1), DiffQuery),
    responses(
        (status = 200, description = "The patch from `against` to `version`", body = VersionDiff),
        problems::ReadQuery,
        problems::NoSuchVersion,
    )
)]
pub async fn component_diff(
    State(state): State<AppState>,
    Reader(_caller): Reader,
    Path((name, version)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<DiffQuery>,
) -> Result<Json<VersionDiff>, ApiError> {
    diff(&state, &components::parse_name(&name)?, &version, q).await
}

/// Roll a component back to an earlier version.
///
/// Creates a new version whose state equals version `to_version`'s (audited as `rollback`)
/// and queues its job; history is never rewritten. 200 when that state is the current one.
#[utoipa::path(post, path = "/components/{name}/rollback", tag = "components",
    params(
        ("name" = String, Path, description = "Inference component name", pattern = "^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length = 63),
        RollbackQuery,
        crate::api::changes::WriteHeaders,
    ),
    request_body(content = RollbackRequest, description = "The version to restore", example = json!({"to_version": 2})),
    responses(
        (status = 202, description = "Accepted as a new version; poll the operation in Location", body = components::ComponentChange,
            headers(("Location" = String, description = "The operation"), ("ETag" = String, description = "The new version"))),
        (status = 200, description = "Already in that state: nothing to do; or, with dry_run, the verdict and plan", body = components::EnableOk),
        problems::Write,
        (status = 404, description = "Not managed, or no such version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name or body, or Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
        problems::DryRun,
    )
)]
pub async fn component_rollback(
    State(state): State<AppState>,
    Writer(caller): Writer,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<RollbackQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let target = components::parse_name(&name)?;
    rollback(&state, &caller, target, q, &headers, body).await
}

/// List a variant's versions, newest first: who changed it, when, and whether AWS
/// converged to each.
#[utoipa::path(get, path = "/endpoints/{endpoint}/variants/{variant}/versions", tag = "endpoints",
    params(
        ("endpoint" = String, Path, description = "Endpoint name", pattern = "^[a-zA-Z0-9](-*[a-zA-Z0-9])*$", max_length = 63),
        ("variant" = String, Path, description = "Production variant name", pattern = "^[a-zA-Z0-9](-*[a-zA-Z0-9])*$", max_length = 63),
        HistoryQuery),
    responses(
        (status = 200, description = "A page of versions, newest first", body = Page<VersionSummary>),
        problems::ReadQuery,
        problems::VersionPage,
    )
)]
pub async fn variant_versions(
    State(state): State<AppState>,
    Reader(_caller): Reader,
    Path((endpoint, variant)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<Page<VersionSummary>>, ApiError> {
    list(&state, &variants::parse(&endpoint, &variant)?, q).await
}

/// Read one version of a variant: its full spec and who made it.
#[utoipa::path(get, path = "/endpoints/{endpoint}/variants/{variant}/versions/{version}", tag = "endpoints",
    params(
        ("endpoint" = String, Path, description = "Endpoint name", pattern = "^[a-zA-Z0-9](-*[a-zA-Z0-9])*$", max_length = 63),
        ("variant" = String, Path, description = "Production variant name", pattern = "^[a-zA-Z0-9](-*[a-zA-Z0-9])*$", max_length = 63),
        ("version" = i32, Path, description = "Version number", minimum = 1)),
    responses(
        (status = 200, description = "The version", body = VersionDetail),
        problems::ReadAuth,
        problems::NoSuchVersion,
    )
)]
pub async fn variant_version(
    State(state): State<AppState>,
    Reader(_caller): Reader,
    Path((endpoint, variant, version)): Path<(String, String, String)>,
) -> Result<Json<VersionDetail>, ApiError> {
    get_one(&state, &variants::parse(&endpoint, &variant)?, &version).await
}

/// What changed in a variant between two versions, as a JSON Patch (RFC 6902).
#[utoipa::path(get, path = "/endpoints/{endpoint}/variants/{variant}/versions/{version}/diff", tag = "endpoints",
    params(
        ("endpoint" = String, Path, description = "Endpoint name", pattern = "^[a-zA-Z0-9](-*[a-zA-Z0-9])*$", max_length = 63),
        ("variant" = String, Path, description = "Production variant name", pattern = "^[a-zA-Z0-9](-*[a-zA-Z0-9])*$", max_length = 63),
        ("version" = i32, Path, description = "Version number", minimum = 1), DiffQuery),
    responses(
        (status = 200, description = "The patch from `against` to `version`", body = VersionDiff),
        problems::ReadQuery,
        problems::NoSuchVersion,
    )
)]
pub async fn variant_diff(
    State(state): State<AppState>,
    Reader(_caller): Reader,
    Path((endpoint, variant, version)): Path<(String, String, String)>,
    ApiQuery(q): ApiQuery<DiffQuery>,
) -> Result<Json<VersionDiff>, ApiError> {
    diff(&state, &variants::parse(&endpoint, &variant)?, &version, q).await
}

/// Roll a variant back to an earlier version.
///
/// Creates a new version whose state equals version `to_version`'s (audited as `rollback`)
/// and queues its job; history is never rewritten. 200 when that state is the current one.
#[utoipa::path(post, path = "/endpoints/{endpoint}/variants/{variant}/rollback", tag = "endpoints",
    params(
        ("endpoint" = String, Path, description = "Endpoint name", pattern = "^[a-zA-Z0-9](-*[a-zA-Z0-9])*$", max_length = 63),
        ("variant" = String, Path, description = "Production variant name", pattern = "^[a-zA-Z0-9](-*[a-zA-Z0-9])*$", max_length = 63),
        RollbackQuery,
        crate::api::changes::WriteHeaders,
    ),
    request_body(content = RollbackRequest, description = "The version to restore", example = json!({"to_version": 2})),
    responses(
        (status = 202, description = "Accepted as a new version; poll the operation in Location", body = variants::VariantChange,
            headers(("Location" = String, description = "The operation"), ("ETag" = String, description = "The new version"))),
        (status = 200, description = "Already in that state: nothing to do; or, with dry_run, the verdict and plan", body = variants::VariantEnableOk),
        problems::Write,
        (status = 404, description = "Not managed, or no such version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid names or body, or Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
        problems::DryRun,
    )
)]
pub async fn variant_rollback(
    State(state): State<AppState>,
    Writer(caller): Writer,
    Path((endpoint, variant)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<RollbackQuery>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let target = variants::parse(&endpoint, &variant)?;
    rollback(&state, &caller, target, q, &headers, body).await
}

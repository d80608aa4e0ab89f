//! `/components`: the desired scale-to-zero state of SageMaker inference components.

use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{
    auth::{Reader, Writer},
    changes::{self, Change},
    extract::OptionalJson,
    views::{Page, TargetState},
    AppState,
};
use crate::{
    domain::{ComponentName, ComponentSpec, TargetRef},
    error::{ApiError, FieldError, Problem},
    store::{targets, targets::TargetRow},
};

/// A component's desired state and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComponentStatus {
    /// The inference component's name.
    #[schema(example = "demo-component")]
    pub name: String,
    /// The desired configuration (defaults filled in).
    pub spec: ComponentSpec,
    #[serde(flatten)]
    pub state: TargetState,
}

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

fn parse_name(name: &str) -> Result<TargetRef, ApiError> {
    ComponentName::parse(name)
        .map(TargetRef::Component)
        .map_err(|m| ApiError::invalid_field("name", m))
}

fn status(target: &TargetRef, row: &TargetRow) -> ComponentStatus {
    ComponentStatus {
        name: row.name.clone(),
        spec: serde_json::from_value(row.spec.clone()).unwrap_or_default(),
        state: TargetState::new(row, target.owned_names()),
    }
}

fn render(target: &TargetRef, row: &TargetRow) -> Value {
    serde_json::to_value(status(target, row)).unwrap_or(Value::Null)
}

fn validate(spec: &ComponentSpec) -> Result<(), ApiError> {
    spec.validate().map_err(|errs| {
        let detail = errs
            .iter()
            .map(|(f, m)| format!("{f}: {m}"))
            .collect::<Vec<_>>()
            .join("; ");
        let errors = errs
            .into_iter()
            .map(|(field, message)| FieldError { field, message })
            .collect();
        ApiError::Validation { detail, errors }
    })
}

/// Enable or update scale-to-zero for an inference component.
///
/// Records a new desired version and queues the job that converges AWS to it. With no body,
/// every setting takes its default. Re-posting the current spec changes nothing (200).
#[utoipa::path(post, path = "/components/{name}/scale-to-zero", tag = "components",
    params(
        ("name" = String, Path, description = "Inference component name", example = "demo-component", pattern = "^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length = 63),
        EnableQuery,
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "Makes retries safe: same key and body replay the first answer", pattern = "^[!-~]{1,255}$"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "Apply only if the component is at this version (its ETag)", pattern = "^(\\*|(W/)?\"[0-9]+\")$"),
        ("X-On-Behalf-Of" = Option<String>, Header, nullable = false, description = "The portal user this call is made for (audited)", min_length = 1, max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f]+$"),
    ),
    request_body(content = Option<ComponentSpec>, description = "Desired settings; omit for all defaults",
        example = json!({"max_capacity": 4})),
    responses(
        (status = 202, description = "Accepted as a new version; poll the operation in Location", body = ComponentChange,
            headers(("Location" = String, description = "The operation"), ("ETag" = String, description = "The new version"))),
        (status = 200, description = "Identical to the current version: nothing to do; or, with dry_run, the verdict and plan", body = EnableOk),
        (status = 400, description = "Malformed JSON or headers", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks the write scope", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this Idempotency-Key is in flight", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match does not match the current version", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name or settings, or Idempotency-Key reused with another body", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Dry run: AWS unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn enable(
    State(state): State<AppState>,
    Writer(caller): Writer,
    Path(name): Path<String>,
    query: Result<Query<EnableQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    OptionalJson(spec): OptionalJson<ComponentSpec>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let target = parse_name(&name)?;
    validate(&spec)?;
    if q.dry_run.unwrap_or(false) {
        return dry_run(&state, &target, &spec).await;
    }
    let change = Change {
        path: format!("/components/{name}/scale-to-zero"),
        target,
        enabled: true,
        spec: Some(serde_json::to_value(&spec).map_err(anyhow::Error::from)?),
        if_match: changes::if_match(&headers)?,
        idempotency_key: changes::idempotency_key(&headers)?,
        method: "POST",
        caller: &caller,
    };
    Ok(changes::record(&state, change, render)
        .await?
        .into_response())
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

/// Query of the enable route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EnableQuery {
    /// Return the preflight verdict and the exact AWS calls a job would make, writing nothing
    /// (neither to AWS nor to the desired state).
    dry_run: Option<bool>,
}

async fn dry_run(
    state: &AppState,
    target: &TargetRef,
    spec: &ComponentSpec,
) -> Result<Response, ApiError> {
    let aws = state.aws.as_ref().ok_or_else(|| {
        ApiError::Unavailable(
            "dry runs need AWS access, which this API process was started without".into(),
        )
    })?;
    match crate::reconcile::dry_run_component(aws, target, spec).await {
        Ok(verdict) => Ok(Json(verdict).into_response()),
        Err(e) => {
            // SDK text stays in the log, with the request id.
            tracing::warn!(error = %e.message, "dry run: AWS call failed");
            Err(ApiError::Unavailable("AWS did not answer the dry run's describe calls (throttled or unavailable); retry shortly".into()))
        }
    }
}

/// Re-observe a component now and repair whatever differs from its current version.
///
/// Queues a reconcile job (no new version); the job's plan shows what, if anything, had drifted.
#[utoipa::path(post, path = "/components/{name}/reconcile", tag = "components",
    params(("name" = String, Path, description = "Inference component name", pattern = "^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length = 63)),
    responses(
        (status = 202, description = "Queued; poll the operation in Location", body = ComponentChange),
        (status = 401, description = "Missing or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks the write scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not managed by zeroscale", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn reconcile(
    State(state): State<AppState>,
    Writer(caller): Writer,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let target = parse_name(&name)?;
    let mut tx = state.pool.begin().await?;
    let row = targets::lock(&mut tx, target.kind(), &target.name())
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!("component {name:?} is not managed by zeroscale"))
        })?;
    let job = crate::jobs::enqueue(
        &mut tx,
        &crate::jobs::new_job(
            changes::RECONCILE_JOB,
            Some(target.job_target()),
            serde_json::json!({"kind": target.kind(), "name": target.name(), "version": row.version, "reason": "manual"}),
        ),
    )
    .await?;
    crate::store::audit::append(
        &mut tx,
        &crate::store::audit::NewAuditEvent {
            actor: caller.token_name.clone(),
            on_behalf_of: caller.on_behalf_of.clone(),
            source_ip: caller.source_ip.clone(),
            user_agent: caller.user_agent.clone(),
            action: "reconcile".into(),
            target_kind: target.kind().into(),
            target_name: target.name(),
            version: Some(row.version),
            request_id: crate::error::current_request_id(),
            job_id: Some(job.id),
            outcome: "accepted".into(),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    state.notifier.notify();
    let row = row.with_job(&job);
    let location = format!("/operations/{}", job.id);
    let body = ComponentChange {
        changed: false,
        detail: format!(
            "reconcile of version {} queued; poll {location}",
            row.version
        ),
        target: status(&target, &row),
    };
    let mut response = (axum::http::StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert("location", v);
    }
    Ok(response)
}

/// Turn scale-to-zero off for an inference component.
///
/// The job removes the alarm and policies zeroscale created and restores the scalable target's
/// minimum capacity.
#[utoipa::path(delete, path = "/components/{name}/scale-to-zero", tag = "components",
    params(
        ("name" = String, Path, description = "Inference component name", pattern = "^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length = 63),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "Makes retries safe", pattern = "^[!-~]{1,255}$"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "Apply only at this version", pattern = "^(\\*|(W/)?\"[0-9]+\")$"),
        ("X-On-Behalf-Of" = Option<String>, Header, nullable = false, description = "The portal user this call is made for", min_length = 1, max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f]+$"),
    ),
    responses(
        (status = 202, description = "Accepted; poll the operation in Location", body = ComponentChange),
        (status = 200, description = "Already off: nothing to do", body = ComponentChange),
        (status = 400, description = "Malformed headers", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks the write scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not managed by zeroscale", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Idempotency-Key in flight", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn disable(
    State(state): State<AppState>,
    Writer(caller): Writer,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let change = Change {
        path: format!("/components/{name}/scale-to-zero"),
        target: parse_name(&name)?,
        enabled: false,
        spec: None,
        if_match: changes::if_match(&headers)?,
        idempotency_key: changes::idempotency_key(&headers)?,
        method: "DELETE",
        caller: &caller,
    };
    Ok(changes::record(&state, change, render)
        .await?
        .into_response())
}

/// Read one component: spec, version (also the ETag), phase, conditions, owned AWS objects and
/// the last operation.
#[utoipa::path(get, path = "/components/{name}", tag = "components",
    params(("name" = String, Path, description = "Inference component name", pattern = "^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length = 63)),
    responses(
        (status = 200, description = "The component", body = ComponentStatus,
            headers(("ETag" = String, description = "The current version"))),
        (status = 401, description = "Missing or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks the read scope", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not managed by zeroscale", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_one(
    State(state): State<AppState>,
    Reader(_caller): Reader,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let target = parse_name(&name)?;
    let row = targets::get(&state.pool, target.kind(), &target.name())
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!("component {name:?} is not managed by zeroscale"))
        })?;
    let mut response = Json(status(&target, &row)).into_response();
    if let Ok(tag) = HeaderValue::from_str(&format!("\"{}\"", row.version)) {
        response.headers_mut().insert("etag", tag);
    }
    Ok(response)
}

/// Filters and paging for the list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only components in this phase.
    #[param(value_type = Option<super::views::Phase>)]
    phase: Option<String>,
    /// Only names starting with this.
    prefix: Option<String>,
    /// Page size, 1-500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` from the previous page.
    cursor: Option<String>,
}

/// List components, by name, with filters and cursor pagination.
#[utoipa::path(get, path = "/components", tag = "components",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of components", body = Page<ComponentStatus>),
        (status = 400, description = "Bad query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks the read scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Reader(_caller): Reader,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page<ComponentStatus>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    const PHASES: [&str; 5] = ["pending", "applying", "ready", "failed", "disabled"];
    if let Some(p) = &q.phase {
        if !PHASES.contains(&p.as_str()) {
            return Err(ApiError::invalid_field(
                "phase",
                format!("must be one of {}", PHASES.join(", ")),
            ));
        }
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            "must be between 1 and 500",
        ));
    }
    let filter = targets::TargetFilter {
        phase: q.phase,
        name_prefix: super::extract::text_filter("prefix", q.prefix)?,
        after: super::extract::text_filter("cursor", q.cursor.filter(|c| !c.is_empty()))?,
        limit: limit + 1,
    };
    let mut rows = targets::list(&state.pool, "component", &filter).await?;
    let next_cursor = (rows.len() as i64 > limit).then(|| {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.name.clone()).unwrap_or_default()
    });
    let items = rows
        .iter()
        .map(|row| {
            let target = TargetRef::Component(
                ComponentName::parse(&row.name).unwrap_or_else(|_| unreachable_name()),
            );
            status(&target, row)
        })
        .collect();
    Ok(Json(Page { items, next_cursor }))
}

/// Stored names were validated on the way in; this is never reached.
fn unreachable_name() -> ComponentName {
    ComponentName::parse("invalid").expect("static name")
}

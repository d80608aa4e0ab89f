//! Handler bodies shared by every kind of target. The per-kind modules (`components`,
//! `variants`) parse their path and spec, carry the OpenAPI description, and call these, so
//! idempotency, concurrency, audit, status and dry runs behave the same for both kinds.

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use super::{
    auth::Caller,
    changes::{self, Change},
    views::{render, Page},
    AppState,
};
use crate::{
    domain::{spec::SpecViolation, TargetKind, TargetRef, TargetSpec},
    error::{ApiError, FieldError},
    store::{
        audit::{self, NewAuditEvent},
        targets,
    },
};

/// Every spec violation at once, as one 422.
pub fn invalid_spec(errs: Vec<SpecViolation>) -> ApiError {
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
}

/// Query of the enable routes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EnableQuery {
    /// Return the preflight verdict and the exact AWS calls a job would make, writing nothing
    /// (neither to AWS nor to the desired state).
    pub dry_run: Option<bool>,
}

/// Enable or update: a dry run, or a new desired version and its job.
pub async fn enable(
    state: &AppState,
    caller: &Caller,
    target: TargetRef,
    spec: TargetSpec,
    q: EnableQuery,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    spec.validate().map_err(invalid_spec)?;
    if spec.max_capacity().is_some() {
        // A max below the copies of the pin that holds (kept by the change) is refused here,
        // not by the job.
        let kept = with_current_holds(state, &target, spec.clone()).await?;
        kept.validate().map_err(|errs| {
            let pinned = |(field, why): (String, String)| match field.as_str() {
                "copies" => (
                    "max_capacity".to_string(),
                    format!("must be at least the keep-warm pin's copies while the pin holds; end the pin first (DELETE {}/keep-warm)", target.api_path()),
                ),
                _ => (field, why),
            };
            invalid_spec(errs.into_iter().map(pinned).collect())
        })?;
    }
    let dry_run = q.dry_run.unwrap_or(false);
    // Headers are checked for a dry run too: it answers what the real request would.
    changes::check_headers(headers)?;
    if dry_run {
        let spec = with_current_holds(state, &target, spec).await?;
        return run_dry(state, &target, &spec).await;
    }
    // `keep_warm` and `pause` are set only through their own routes: an enable keeps the
    // current ones (the change function carries them over), whatever the body says.
    let mut spec = spec.to_json();
    if let Some(o) = spec.as_object_mut() {
        for key in changes::CARRIED {
            o.remove(key);
        }
    }
    let path = format!("{}/scale-to-zero", target.api_path());
    let change = Change {
        enabled: Some(true),
        spec: Some(spec),
        ..Change::to(target, ("POST", path), caller, headers)?
    };
    change.respond(state).await
}

/// `spec` with the target's current `keep_warm` and `pause` (what the change function would
/// carry over), for a dry run that plans what the change would do.
async fn with_current_holds(
    state: &AppState,
    target: &TargetRef,
    spec: TargetSpec,
) -> Result<TargetSpec, ApiError> {
    let current = targets::get(&state.pool, target.kind(), &target.name()).await?;
    let mut json = spec.to_json();
    if let Some(o) = json.as_object_mut() {
        for key in changes::CARRIED {
            match current.as_ref().and_then(|row| row.spec.get(key)) {
                Some(v) => o.insert(key.to_string(), v.clone()),
                None => o.remove(key),
            };
        }
    }
    TargetSpec::from_stored(target.target_kind(), &json)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))
}

/// A dry run of an enable: the preflight verdict and the plan, writing nothing.
pub async fn run_dry(
    state: &AppState,
    target: &TargetRef,
    spec: &TargetSpec,
) -> Result<Response, ApiError> {
    let aws = state.aws.as_ref().ok_or_else(|| {
        ApiError::Unavailable(
            "dry runs need AWS access, which this API process was started without".into(),
        )
    })?;
    match crate::reconcile::dry_run(aws, target, spec).await {
        Ok(verdict) => Ok(Json(verdict).into_response()),
        Err(e) => {
            // SDK text stays in the log, with the request id.
            tracing::warn!(error = %e.message, "dry run: AWS call failed");
            Err(ApiError::Unavailable("AWS did not answer the dry run's describe calls (throttled or unavailable); retry shortly".into()))
        }
    }
}

/// Turn scale-to-zero off.
pub async fn disable(
    state: &AppState,
    caller: &Caller,
    target: TargetRef,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let path = format!("{}/scale-to-zero", target.api_path());
    let change = Change {
        enabled: Some(false),
        ..Change::to(target, ("DELETE", path), caller, headers)?
    };
    change.respond(state).await
}

/// 404 for an unmanaged target, pointing at the other kind when zeroscale manages a target of
/// that kind under the same name (a component route given an endpoint name, or the reverse).
pub async fn not_managed(state: &AppState, target: &TargetRef) -> ApiError {
    let other = match target {
        TargetRef::Component(name) => {
            let prefix = format!("endpoint/{name}/variant/");
            list_names(state, TargetKind::EndpointVariant, &prefix).await
        }
        TargetRef::EndpointVariant { endpoint, .. } => {
            list_names(state, TargetKind::Component, endpoint.as_str())
                .await
                .into_iter()
                .filter(|n| n == endpoint.as_str())
                .collect()
        }
    };
    let hint = other
        .iter()
        .filter_map(|n| TargetRef::from_stored(other_kind(target), n).ok())
        .map(|t| t.api_path())
        .collect::<Vec<_>>();
    let mut detail = format!("{target} is not managed by zeroscale");
    if !hint.is_empty() {
        detail.push_str(&format!(
            "; that name is managed as another kind of target: see {}",
            hint.join(", ")
        ));
    }
    ApiError::NotFound(detail)
}

fn other_kind(target: &TargetRef) -> &'static str {
    match target.target_kind() {
        TargetKind::Component => TargetKind::EndpointVariant.as_str(),
        TargetKind::EndpointVariant => TargetKind::Component.as_str(),
    }
}

async fn list_names(state: &AppState, kind: TargetKind, prefix: &str) -> Vec<String> {
    let filter = targets::TargetFilter {
        name_prefix: Some(prefix.to_string()),
        limit: 5,
        ..Default::default()
    };
    targets::list(&state.pool, kind.as_str(), &filter)
        .await
        .map(|rows| rows.into_iter().map(|r| r.name).collect())
        .unwrap_or_default()
}

/// Read one target, with its version as the ETag.
pub async fn get_one(state: &AppState, target: &TargetRef) -> Result<Response, ApiError> {
    let Some(row) = targets::get(&state.pool, target.kind(), &target.name()).await? else {
        return Err(not_managed(state, target).await);
    };
    let mut response = Json(render(target, &row)).into_response();
    if let Ok(tag) = HeaderValue::from_str(&format!("\"{}\"", row.version)) {
        response.headers_mut().insert("etag", tag);
    }
    Ok(response)
}

/// Queue a reconcile of the current version now (no new version), audited as `reconcile`.
pub async fn reconcile(
    state: &AppState,
    caller: &Caller,
    target: &TargetRef,
) -> Result<Response, ApiError> {
    let mut tx = state.pool.begin().await?;
    let Some(row) = targets::lock(&mut tx, target.kind(), &target.name()).await? else {
        drop(tx);
        return Err(not_managed(state, target).await);
    };
    let (job, joined) = join_or_enqueue(&mut tx, target).await?;
    let event = NewAuditEvent::new(
        caller.actor(),
        "reconcile",
        audit::Outcome::Accepted,
        target.clone(),
        row.version,
        job.id,
    );
    audit::append(&mut tx, &event).await?;
    tx.commit().await?;
    state.notifier.notify();
    let row = row.with_job(&job);
    let location = format!("/operations/{}", job.id);
    let detail = if joined {
        format!(
            "an operation for version {} is already queued and reconciles it; poll {location}",
            row.version
        )
    } else {
        format!(
            "reconcile of version {} queued; poll {location}",
            row.version
        )
    };
    let body = serde_json::json!({
        "changed": false,
        "detail": detail,
        "target": render(target, &row),
    });
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert("location", v);
    }
    Ok(response)
}

/// The job that will reconcile `target`: a change (or an earlier manual reconcile) already
/// queued converges it to the current version when it runs, so it is joined (true), keeping its
/// operation, its place and its audit action; otherwise a manual reconcile is queued. Only a
/// queued drift check is superseded.
async fn join_or_enqueue(
    tx: &mut sqlx::PgConnection,
    target: &TargetRef,
) -> Result<(crate::store::jobs::JobRow, bool), ApiError> {
    use crate::reconcile::{reconcile_args, RECONCILE_JOB};
    let joined = crate::store::jobs::join_queued(tx, RECONCILE_JOB, &target.job_target()).await?;
    if let Some(job) = joined {
        return Ok((job, true));
    }
    let args = reconcile_args(target.kind(), &target.name(), "manual");
    let new = crate::jobs::new_job(RECONCILE_JOB, Some(target.job_target()), args);
    Ok((crate::jobs::enqueue(tx, &new).await?, false))
}

/// Filters and paging of the list routes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only targets in this phase.
    #[param(value_type = Option<super::views::Phase>)]
    pub phase: Option<String>,
    /// Only names starting with this (`/endpoints`: endpoint names).
    pub prefix: Option<String>,
    /// Only targets with these labels: `key=value[,key=value...]`.
    #[param(example = "team=search")]
    pub label: Option<String>,
    /// Page size, 1-500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// A name prefix as stored: variants are stored under their ResourceId,
/// `endpoint/<endpoint>/variant/<variant>`, and filtered by endpoint name.
fn stored_prefix(kind: TargetKind, prefix: Option<String>) -> Option<String> {
    match kind {
        TargetKind::Component => prefix,
        TargetKind::EndpointVariant => prefix.map(|p| format!("endpoint/{p}")),
    }
}

/// One page of targets of `kind`, by stored name, rendered.
pub async fn list(
    state: &AppState,
    kind: TargetKind,
    q: ListQuery,
) -> Result<Page<Value>, ApiError> {
    const PHASES: [&str; 5] = ["pending", "applying", "ready", "failed", "disabled"];
    if let Some(p) = &q.phase {
        if !PHASES.contains(&p.as_str()) {
            return Err(ApiError::invalid_field(
                "phase",
                format!("must be one of {}", PHASES.join(", ")),
            ));
        }
    }
    let limit = super::extract::page_limit(q.limit)?;
    let filter = targets::TargetFilter {
        phase: q.phase,
        name_prefix: super::extract::text_filter("prefix", stored_prefix(kind, q.prefix))?,
        after: super::extract::parse_cursor(kind.as_str(), q.cursor, |name: &String| {
            TargetRef::from_stored(kind.as_str(), name).is_ok()
        })?,
        name: None,
        labels: super::extract::label_selector(q.label)?,
        limit: limit + 1,
    };
    let mut rows = targets::list(&state.pool, kind.as_str(), &filter).await?;
    let next_cursor = (rows.len() as i64 > limit).then(|| {
        rows.truncate(limit as usize);
        rows.last()
            .map(|r| super::extract::cursor(kind.as_str(), &r.name))
            .unwrap_or_default()
    });
    let items = rows
        .iter()
        .filter_map(|row| {
            let target = TargetRef::from_stored(&row.kind, &row.name).ok()?;
            Some(render(&target, row))
        })
        .collect();
    Ok(Page { items, next_cursor })
}

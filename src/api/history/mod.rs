//! Version history, diffs and rollback, for every kind of target. Every accepted change is a
//! version (the audit log's `accepted` events, `store::versions`); a rollback is one more change
//! whose state equals an earlier version's, audited as `rollback`: history is never rewritten.
//! The routes of each kind (`kind_routes`) parse the path and carry the OpenAPI description.

use axum::{
    http::HeaderMap,
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::{
    auth::Caller,
    changes::{self, Change},
    targets,
    views::Page,
    AppState,
};
use crate::{
    domain::{TargetRef, TargetSpec},
    error::ApiError,
    reconcile::DryRun,
    store::{
        self,
        versions::{self, VersionRow},
    },
};

/// One version in a target's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionSummary {
    /// The version number (the target's ETag while it was current).
    pub version: i32,
    /// When it was accepted.
    pub at: DateTime<Utc>,
    /// The token that made the change.
    pub actor: String,
    /// The portal user it was made for (`X-On-Behalf-Of`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    /// The request that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The operation that converges AWS to it (`/operations/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// `enable`, `update`, `disable`, `rollback`, `wake`, `keep_warm`, `unpin`, `pause`, `resume`
    /// or `keep_warm_expired` (zeroscale ending a pin that ran out).
    #[schema(example = "update")]
    pub action: String,
    /// For a rollback: the version whose state it restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<i32>,
    /// Whether AWS converged to it: `applied`, `failed`, `superseded` (a newer version came
    /// before a job applied it) or `pending`.
    #[schema(example = "applied")]
    pub outcome: String,
}

/// One version in full.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionDetail {
    #[serde(flatten)]
    pub summary: VersionSummary,
    /// Whether scale-to-zero was wanted.
    pub enabled: bool,
    /// The desired configuration.
    #[schema(value_type = Object)]
    pub spec: Value,
}

/// What changed between two versions, as an RFC 6902 JSON Patch over `{enabled, spec}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionDiff {
    /// The version the patch leads to.
    pub version: i32,
    /// The version the patch starts from (absent: from nothing, for version 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub against: Option<i32>,
    /// The operations (`add`, `remove`, `replace`) that turn `against` into `version`.
    #[schema(value_type = Vec<Object>, example = json!([{"op": "replace", "path": "/spec/max_capacity", "value": 4}]))]
    pub patch: Value,
}

/// Paging of the history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Page size, 1-500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` from the previous page.
    cursor: Option<String>,
}

/// The version to compare with.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    /// The version to compare against (default: the one before).
    #[param(minimum = 1)]
    against: Option<i32>,
}

/// Query of the rollback routes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RollbackQuery {
    /// Return the preflight verdict and the exact AWS calls the rollback's job would make,
    /// writing nothing.
    dry_run: Option<bool>,
}

/// The body of a rollback.
#[derive(Debug, ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documents the body; it is read field by field (see `to_version`)
pub struct RollbackRequest {
    /// The version whose state to restore.
    #[schema(minimum = 1, example = 2)]
    to_version: i32,
}

fn summary(r: &VersionRow) -> VersionSummary {
    VersionSummary {
        version: r.version,
        at: r.created_at,
        actor: r.actor.clone(),
        on_behalf_of: r.on_behalf_of.clone(),
        request_id: r.request_id.clone(),
        operation: r.job_id.map(|id| format!("/operations/{id}")),
        action: r.action.clone(),
        rollback_to: r.rollback_to,
        outcome: r.outcome.clone(),
    }
}

/// The stored target, or the 404 that points the way.
pub(super) async fn managed(state: &AppState, target: &TargetRef) -> Result<i64, ApiError> {
    match store::targets::get(&state.pool, target.kind(), &target.name()).await? {
        Some(row) => Ok(row.id),
        None => Err(targets::not_managed(state, target).await),
    }
}

fn version_param(v: &str) -> Result<i32, ApiError> {
    v.parse::<i32>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| ApiError::invalid_field("version", "must be a whole number from 1"))
}

async fn version_of(
    state: &AppState,
    id: i64,
    target: &TargetRef,
    n: i32,
) -> Result<VersionRow, ApiError> {
    versions::get(&state.pool, id, n)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("{target} has no version {n}")))
}

/// A version page cursor's scope: a cursor of another list is refused.
const CURSOR_SCOPE: &str = "versions";

/// A page of the history, newest first.
pub async fn list(
    state: &AppState,
    target: &TargetRef,
    q: HistoryQuery,
) -> Result<Json<Page<VersionSummary>>, ApiError> {
    let limit = super::extract::page_limit(q.limit)?;
    let before = super::extract::parse_cursor(CURSOR_SCOPE, q.cursor, |v: &i32| *v > 0)?;
    let id = managed(state, target).await?;
    let mut rows = versions::list(&state.pool, id, before, limit + 1).await?;
    let next_cursor = (rows.len() as i64 > limit).then(|| {
        rows.truncate(limit as usize);
        rows.last()
            .map(|r| super::extract::cursor(CURSOR_SCOPE, &r.version.to_string()))
            .unwrap_or_default()
    });
    Ok(Json(Page {
        items: rows.iter().map(summary).collect(),
        next_cursor,
    }))
}

/// One version in full.
pub async fn get_one(
    state: &AppState,
    target: &TargetRef,
    version: &str,
) -> Result<Json<VersionDetail>, ApiError> {
    let n = version_param(version)?;
    let id = managed(state, target).await?;
    let r = version_of(state, id, target, n).await?;
    Ok(Json(VersionDetail {
        summary: summary(&r),
        enabled: r.enabled,
        spec: r.spec,
    }))
}

fn document(r: &VersionRow) -> Value {
    json!({"enabled": r.enabled, "spec": r.spec})
}

/// The JSON Patch from version `against` (default: the one before) to `version`.
pub async fn diff(
    state: &AppState,
    target: &TargetRef,
    version: &str,
    q: DiffQuery,
) -> Result<Json<VersionDiff>, ApiError> {
    let n = version_param(version)?;
    if q.against.is_some_and(|a| a < 1) {
        return Err(ApiError::invalid_field(
            "against",
            "must be a whole number from 1",
        ));
    }
    let id = managed(state, target).await?;
    let to = version_of(state, id, target, n).await?;
    let against = q.against.or((n > 1).then_some(n - 1));
    let from = match against {
        Some(m) => document(&version_of(state, id, target, m).await?),
        None => json!({}),
    };
    let patch = json_patch::diff(&from, &document(&to));
    Ok(Json(VersionDiff {
        version: n,
        against,
        patch: serde_json::to_value(patch).map_err(anyhow::Error::from)?,
    }))
}

/// `to_version` from a rollback body: a JSON object with that one member.
fn to_version(body: &Map<String, Value>) -> Result<i32, ApiError> {
    if let Some(k) = body.keys().find(|k| *k != "to_version") {
        return Err(ApiError::invalid_field(
            k.clone(),
            "unknown field; the body is {\"to_version\": n}",
        ));
    }
    body.get("to_version")
        // `2.0` is a whole number too (JSON Schema's integer).
        .and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        })
        .and_then(|n| i32::try_from(n).ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            ApiError::invalid_field(
                "to_version",
                "required: the version to restore, a whole number from 1",
            )
        })
}

/// A new version whose state equals version `to_version`'s (202 with its operation; 200 when
/// it equals the current one), or with `dry_run` the verdict and plan.
pub async fn rollback(
    state: &AppState,
    caller: &Caller,
    target: TargetRef,
    q: RollbackQuery,
    headers: &HeaderMap,
    body: Map<String, Value>,
) -> Result<Response, ApiError> {
    let n = to_version(&body)?;
    // Headers are checked for a dry run too, as for an enable: it answers what the real
    // request would.
    changes::check_headers(headers)?;
    let id = managed(state, &target).await?;
    let old = version_of(state, id, &target, n).await?;
    restorable(&target, &old)?;
    if q.dry_run.unwrap_or(false) {
        return dry_run(state, &target, &old).await;
    }
    let path = format!("{}/rollback", target.api_path());
    let change = Change {
        enabled: Some(old.enabled),
        spec: Some(old.spec),
        rollback_to: Some(n),
        ..Change::to(target, ("POST", path), caller, headers)?
    };
    change.respond(state).await
}

/// A version's spec is restored only if it is valid today: rules may have tightened since it
/// was accepted, and a job would otherwise fail on it every run.
fn restorable(target: &TargetRef, old: &VersionRow) -> Result<(), ApiError> {
    let n = old.version;
    let refuse = |why: String| {
        ApiError::invalid_field(
            "to_version",
            format!("version {n} cannot be restored as it is: {why}"),
        )
    };
    let spec = TargetSpec::from_stored(target.target_kind(), &old.spec).map_err(refuse)?;
    let violations = match &spec {
        TargetSpec::Component(s) => s.validate(),
        TargetSpec::Variant(s) => s.validate(),
    };
    violations.map_err(|errs| {
        refuse(
            errs.iter()
                .map(|(f, m)| format!("{f}: {m}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    })
}

async fn dry_run(
    state: &AppState,
    target: &TargetRef,
    old: &VersionRow,
) -> Result<Response, ApiError> {
    if !old.enabled {
        return Ok(Json(DryRun::without_plan(
            "ok",
            format!(
                "version {} had scale-to-zero off: rolling back to it turns it off (the job removes zeroscale's alarm and policies and steps aside from the scalable target)",
                old.version
            ),
        ))
        .into_response());
    }
    let spec = TargetSpec::from_stored(target.target_kind(), &old.spec)
        .map_err(|e| ApiError::invalid_field("to_version", e))?;
    targets::run_dry(state, target, &spec).await
}

//! `/audit`: the append-only audit log, filtered and paged.

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{auth::Reader, extract::ApiQuery, problems, views::Page, AppState};
use crate::{
    domain::audit::AuditEvent,
    error::{ApiError, Problem},
    store::audit::{self, AuditFilter},
};

/// The kinds of target.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "snake_case")]
#[expect(
    dead_code,
    reason = "describes the kind filter in the OpenAPI document"
)]
enum TargetKindParam {
    Component,
    EndpointVariant,
}

/// Filters and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// component or endpoint_variant.
    #[param(value_type = Option<TargetKindParam>, inline)]
    kind: Option<String>,
    /// Target name.
    target: Option<String>,
    /// Token name.
    actor: Option<String>,
    /// Action.
    action: Option<String>,
    /// Events at or after this time (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// Events before this time (RFC 3339).
    until: Option<DateTime<Utc>>,
    /// Page size, 1-500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` from the previous page.
    cursor: Option<String>,
}

/// An audit page cursor's scope: a cursor of another list is refused.
const CURSOR_SCOPE: &str = "audit";

/// Read the audit log, newest first, with filters (target, actor, action, time range).
#[utoipa::path(get, path = "/audit", operation_id = "list_audit_events", tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of events, newest first", body = Page<AuditEvent>),
        problems::ReadList,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Reader(caller): Reader,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Page<AuditEvent>>, ApiError> {
    if let Some(k) = &q.kind {
        if k != "component" && k != "endpoint_variant" {
            return Err(ApiError::invalid_field(
                "kind",
                "must be component or endpoint_variant",
            ));
        }
    }
    let limit = super::extract::page_limit(q.limit)?;
    let before_id = super::extract::parse_cursor(CURSOR_SCOPE, q.cursor, |id: &i64| *id > 0)?;
    let filter = AuditFilter {
        target_kind: q.kind,
        target_name: super::extract::text_filter("target", q.target)?,
        actor: super::extract::text_filter("actor", q.actor)?,
        action: super::extract::text_filter("action", q.action)?,
        since: q.since,
        until: q.until,
        before_id,
        limit: limit + 1,
    };
    let mut rows = audit::list(&state.pool, &filter).await?;
    let next_cursor = (rows.len() as i64 > limit).then(|| {
        rows.truncate(limit as usize);
        rows.last()
            .map(|r| super::extract::cursor(CURSOR_SCOPE, &r.id.to_string()))
            .unwrap_or_default()
    });
    let personal = caller.has_scope("audit");
    let items = rows
        .into_iter()
        .map(|mut r| {
            // Personal data (who called from where) only for the audit scope.
            if !personal {
                r.source_ip = None;
                r.user_agent = None;
            }
            r
        })
        .collect();
    Ok(Json(Page { items, next_cursor }))
}

/// Verify the audit log's hash chain.
///
/// Recomputes every link of the chain the workers seal (tamper evidence even against someone
/// who can disable the log's triggers): `ok` is false when an event was changed or removed, a
/// link rewritten, or an event older than a minute was never sealed. Compare `head_hash` with
/// the head the workers log when they seal. Needs the `audit` scope; it reads the whole log.
#[utoipa::path(get, path = "/audit/verify", tag = "audit",
    responses(
        (status = 200, description = "What the verification found", body = audit::Verification),
        (status = 401, description = "Missing or unknown token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Token lacks the audit scope", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn verify(
    State(state): State<AppState>,
    Reader(caller): Reader,
) -> Result<Json<audit::Verification>, ApiError> {
    if !caller.has_scope("audit") {
        return Err(ApiError::Forbidden(format!(
            "token {:?} lacks the \"audit\" scope GET /audit/verify needs",
            caller.token_name
        )));
    }
    Ok(Json(audit::verify(&state.pool).await?))
}

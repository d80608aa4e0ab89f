//! A target's version history: the `target_versions` view over the audit log's accepted
//! changes, with what became of each version (migrations/..._rollback.sql).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;

/// One accepted version and its fate.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VersionRow {
    pub version: i32,
    pub enabled: bool,
    pub spec: Value,
    pub actor: String,
    pub on_behalf_of: Option<String>,
    pub request_id: Option<String>,
    pub job_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    /// enable, update, disable or rollback.
    pub action: String,
    /// For a rollback: the version it restored.
    pub rollback_to: Option<i32>,
    /// applied (a job converged AWS to it), failed (the job that ran for it failed),
    /// superseded (a newer version came before any job applied it) or pending.
    pub outcome: String,
}

/// The columns and the outcome, computed from the jobs' `applied` / `failed` audit events of
/// the version (a job records the version it converged to).
const SELECT: &str = "SELECT v.version, v.enabled, v.spec, v.actor, v.on_behalf_of, v.request_id, \
    v.job_id, v.created_at, v.action, v.rollback_to, \
    CASE WHEN EXISTS (SELECT 1 FROM audit_log a WHERE a.target_kind = t.kind \
                        AND a.target_name = t.name AND a.version = v.version \
                        AND a.outcome = 'applied') THEN 'applied' \
         WHEN EXISTS (SELECT 1 FROM audit_log a WHERE a.target_kind = t.kind \
                        AND a.target_name = t.name AND a.version = v.version \
                        AND a.outcome = 'failed') THEN 'failed' \
         WHEN v.version < t.version THEN 'superseded' \
         ELSE 'pending' END AS outcome \
    FROM target_versions v JOIN targets t ON t.id = v.target_id";

/// Versions of target `id`, newest first, older than `before` when given.
pub async fn list(
    pool: &PgPool,
    id: i64,
    before: Option<i32>,
    limit: i64,
) -> sqlx::Result<Vec<VersionRow>> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE v.target_id = $1 AND ($2::int IS NULL OR v.version < $2) \
         ORDER BY v.version DESC LIMIT $3"
    ))
    .bind(id)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Version `version` of target `id`, if it exists.
pub async fn get(pool: &PgPool, id: i64, version: i32) -> sqlx::Result<Option<VersionRow>> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE v.target_id = $1 AND v.version = $2"
    ))
    .bind(id)
    .bind(version)
    .fetch_optional(pool)
    .await
}

//! A target's version history: the `target_versions` view over the audit log's accepted
//! changes, with what became of each version (migrations/..._rollback.sql).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;

/// One accepted version and its fate.
#[derive(Debug, Clone)]
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

/// Versions of target `id`, newest first: all of them older than `before` (when given), or only
/// `version` (when given). The outcome is computed from the jobs' `applied` / `failed` audit
/// events of the version (a job records the version it converged to). The view's columns are
/// all nullable to sqlx; the ones `targets` and the audit log never leave empty say so.
async fn select(
    pool: &PgPool,
    id: i64,
    before: Option<i32>,
    version: Option<i32>,
    limit: i64,
) -> sqlx::Result<Vec<VersionRow>> {
    sqlx::query_as!(
        VersionRow,
        r#"SELECT v.version AS "version!", v.enabled AS "enabled!", v.spec AS "spec!",
            v.actor AS "actor!", v.on_behalf_of, v.request_id, v.job_id,
            v.created_at AS "created_at!", v.action AS "action!", v.rollback_to,
            CASE WHEN EXISTS (SELECT 1 FROM audit_log a WHERE a.target_kind = t.kind
                                AND a.target_name = t.name AND a.version = v.version
                                AND a.outcome = 'applied') THEN 'applied'
                 WHEN EXISTS (SELECT 1 FROM audit_log a WHERE a.target_kind = t.kind
                                AND a.target_name = t.name AND a.version = v.version
                                AND a.outcome = 'failed') THEN 'failed'
                 WHEN v.version < t.version THEN 'superseded'
                 ELSE 'pending' END AS "outcome!"
        FROM target_versions v JOIN targets t ON t.id = v.target_id
        WHERE v.target_id = $1 AND ($2::int IS NULL OR v.version < $2)
          AND ($3::int IS NULL OR v.version = $3)
        ORDER BY v.version DESC LIMIT $4"#,
        id,
        before,
        version,
        limit,
    )
    .fetch_all(pool)
    .await
}

/// Versions of target `id`, newest first, older than `before` when given.
pub async fn list(
    pool: &PgPool,
    id: i64,
    before: Option<i32>,
    limit: i64,
) -> sqlx::Result<Vec<VersionRow>> {
    select(pool, id, before, None, limit).await
}

/// Version `version` of target `id`, if it exists.
pub async fn get(pool: &PgPool, id: i64, version: i32) -> sqlx::Result<Option<VersionRow>> {
    Ok(select(pool, id, None, Some(version), 1).await?.pop())
}

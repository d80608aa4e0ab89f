//! Desired state per target (`targets`) and its version history (`target_versions`).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

/// A row of `targets`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TargetRow {
    pub id: i64,
    pub kind: String,
    pub name: String,
    pub enabled: bool,
    pub version: i32,
    pub spec: Value,
    pub phase: String,
    pub conditions: Value,
    pub observed: Value,
    pub last_job_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, kind::text AS kind, name, enabled, version, spec, phase::text AS phase, \
    conditions, observed, last_job_id, created_at, updated_at";

/// Reads a target and locks it for the rest of the transaction (serialises writers per target).
pub async fn lock(
    conn: &mut PgConnection,
    kind: &str,
    name: &str,
) -> sqlx::Result<Option<TargetRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM targets WHERE kind = $1::target_kind AND name = $2 FOR UPDATE"
    ))
    .bind(kind)
    .bind(name)
    .fetch_optional(conn)
    .await
}

/// Creates a target at version 1; None if a concurrent transaction created it first (the
/// caller then locks the winner's row).
pub async fn insert(
    conn: &mut PgConnection,
    kind: &str,
    name: &str,
    enabled: bool,
    spec: &Value,
) -> sqlx::Result<Option<TargetRow>> {
    sqlx::query_as(&format!(
        "INSERT INTO targets (kind, name, enabled, version, spec) VALUES ($1::target_kind, $2, $3, 1, $4) \
         ON CONFLICT (kind, name) DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(kind)
    .bind(name)
    .bind(enabled)
    .bind(spec)
    .fetch_optional(conn)
    .await
}

/// Moves a locked target to a new desired version.
pub async fn set_desired(
    conn: &mut PgConnection,
    id: i64,
    version: i32,
    enabled: bool,
    spec: &Value,
    job_id: i64,
) -> sqlx::Result<TargetRow> {
    sqlx::query_as(&format!(
        "UPDATE targets SET version = $2, enabled = $3, spec = $4, last_job_id = $5, \
           phase = 'pending', updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(version)
    .bind(enabled)
    .bind(spec)
    .bind(job_id)
    .fetch_one(conn)
    .await
}

/// Who made a version, for its history row.
pub struct VersionAuthor<'a> {
    pub actor: &'a str,
    pub on_behalf_of: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

/// Appends a version row (gapless: the target row lock serialises writers).
pub async fn insert_version(
    conn: &mut PgConnection,
    target: &TargetRow,
    job_id: i64,
    author: &VersionAuthor<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO target_versions (target_id, version, enabled, spec, actor, on_behalf_of, request_id, job_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(target.id)
    .bind(target.version)
    .bind(target.enabled)
    .bind(&target.spec)
    .bind(author.actor)
    .bind(author.on_behalf_of)
    .bind(author.request_id)
    .bind(job_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// One target by kind and name.
pub async fn get(pool: &PgPool, kind: &str, name: &str) -> sqlx::Result<Option<TargetRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM targets WHERE kind = $1::target_kind AND name = $2"
    ))
    .bind(kind)
    .bind(name)
    .fetch_optional(pool)
    .await
}

/// Filters for listing targets.
#[derive(Debug, Default)]
pub struct TargetFilter {
    pub phase: Option<String>,
    pub name_prefix: Option<String>,
    /// Cursor: names strictly after this one.
    pub after: Option<String>,
    pub limit: i64,
}

/// Targets of a kind in name order, filtered, one page.
pub async fn list(pool: &PgPool, kind: &str, f: &TargetFilter) -> sqlx::Result<Vec<TargetRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM targets WHERE kind = $1::target_kind \
           AND ($2::text IS NULL OR phase = $2::target_phase) \
           AND ($3::text IS NULL OR starts_with(name, $3)) \
           AND ($4::text IS NULL OR name > $4) \
         ORDER BY name LIMIT $5"
    ))
    .bind(kind)
    .bind(&f.phase)
    .bind(&f.name_prefix)
    .bind(&f.after)
    .bind(f.limit)
    .fetch_all(pool)
    .await
}

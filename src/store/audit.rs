//! The append-only audit log. Rows are only ever inserted; triggers reject UPDATE, DELETE and
//! TRUNCATE, even from this service's own connection.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

/// An event to append.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEvent {
    pub actor: String,
    pub on_behalf_of: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub action: String,
    pub target_kind: String,
    pub target_name: String,
    pub version: Option<i32>,
    pub request_id: Option<String>,
    pub job_id: Option<i64>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub outcome: String,
    pub error: Option<String>,
    pub aws_request_ids: Vec<String>,
}

/// A stored event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub on_behalf_of: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub action: String,
    pub target_kind: String,
    pub target_name: String,
    pub version: Option<i32>,
    pub request_id: Option<String>,
    pub job_id: Option<i64>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub outcome: String,
    pub error: Option<String>,
    pub aws_request_ids: Value,
}

/// Appends an event (inside the caller's transaction when given one).
pub async fn append(conn: &mut PgConnection, e: &NewAuditEvent) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO audit_log (actor, on_behalf_of, source_ip, user_agent, action, target_kind, \
           target_name, version, request_id, job_id, before, after, outcome, error, aws_request_ids) \
         VALUES ($1, $2, $3, $4, $5, $6::target_kind, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
    )
    .bind(&e.actor)
    .bind(&e.on_behalf_of)
    .bind(&e.source_ip)
    .bind(&e.user_agent)
    .bind(&e.action)
    .bind(&e.target_kind)
    .bind(&e.target_name)
    .bind(e.version)
    .bind(&e.request_id)
    .bind(e.job_id)
    .bind(&e.before)
    .bind(&e.after)
    .bind(&e.outcome)
    .bind(&e.error)
    .bind(serde_json::json!(e.aws_request_ids))
    .fetch_one(conn)
    .await
}

/// Filters for reading the log.
#[derive(Debug, Default)]
pub struct AuditFilter {
    pub target_kind: Option<String>,
    pub target_name: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Cursor: ids strictly below this one (newest first).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Events newest first, filtered, one page.
pub async fn list(pool: &PgPool, f: &AuditFilter) -> sqlx::Result<Vec<AuditRow>> {
    sqlx::query_as(
        "SELECT id, at, actor, on_behalf_of, source_ip, user_agent, action, target_kind::text AS target_kind, \
           target_name, version, request_id, job_id, before, after, outcome, error, aws_request_ids \
         FROM audit_log WHERE \
           ($1::text IS NULL OR target_kind = $1::target_kind) AND ($2::text IS NULL OR target_name = $2) \
           AND ($3::text IS NULL OR actor = $3) AND ($4::text IS NULL OR action = $4) \
           AND ($5::timestamptz IS NULL OR at >= $5) AND ($6::timestamptz IS NULL OR at < $6) \
           AND ($7::bigint IS NULL OR id < $7) \
         ORDER BY id DESC LIMIT $8",
    )
    .bind(&f.target_kind)
    .bind(&f.target_name)
    .bind(&f.actor)
    .bind(&f.action)
    .bind(f.since)
    .bind(f.until)
    .bind(f.before_id)
    .bind(f.limit)
    .fetch_all(pool)
    .await
}

//! The change function (`zs_record_change`, migrations/..._rollback.sql): one call locks or
//! creates the target, checks If-Match, folds into or enqueues its reconcile job, and writes
//! the new version with its `accepted` audit event. The rules are in SQL so that the whole
//! change is one atomic statement; the API maps its answer (`outcome`) to HTTP.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::targets::TargetRow;
use crate::domain::JobState;

/// One change, as the function takes it.
#[derive(Debug)]
pub struct ChangeInput<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    /// None keeps the target's flag (wake, keep-warm, pause and resume).
    pub enabled: Option<bool>,
    /// None for a disable (the spec stays as it was).
    pub spec: Option<&'a serde_json::Value>,
    /// `If-Match`: a version, -1 for `*`, or none.
    pub if_match: Option<i32>,
    pub job_kind: &'a str,
    pub job_target: &'a str,
    pub token_name: &'a str,
    pub on_behalf_of: Option<&'a str>,
    pub source_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub request_id: Option<&'a str>,
    /// Create the target if it does not exist.
    pub create: bool,
    /// The version this change restores, for a rollback.
    pub rollback_to: Option<i32>,
    /// The audited action, when not the one the function derives (enable, update, ...).
    pub action: Option<&'a str>,
    /// Keys to set in the current spec (a JSON null removes the key).
    pub patch: Option<&'a serde_json::Value>,
    /// Keys of the current spec that a new `spec` keeps.
    pub carry: Option<&'a [String]>,
}

/// What the function answered: its `outcome` word and, for outcomes that have one, the target
/// after the change joined with its last job (the function's OUT parameters, all nullable to
/// sqlx; `target` checks the ones a target always has).
#[derive(Debug)]
pub struct Recorded {
    pub outcome: Option<String>,
    id: Option<i64>,
    kind: Option<String>,
    name: Option<String>,
    enabled: Option<bool>,
    version: Option<i32>,
    spec: Option<serde_json::Value>,
    phase: Option<String>,
    conditions: Option<serde_json::Value>,
    observed: Option<serde_json::Value>,
    last_job_id: Option<i64>,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    job_state: Option<JobState>,
    job_attempt: Option<i32>,
    job_last_error: Option<String>,
}

impl Recorded {
    /// The target as the function left it; an error if the answer has none.
    pub fn target(self) -> sqlx::Result<TargetRow> {
        let missing = |column: &str| {
            sqlx::Error::ColumnNotFound(format!("zs_record_change answered no {column}"))
        };
        Ok(TargetRow {
            id: self.id.ok_or_else(|| missing("id"))?,
            kind: self.kind.ok_or_else(|| missing("kind"))?,
            name: self.name.ok_or_else(|| missing("name"))?,
            enabled: self.enabled.ok_or_else(|| missing("enabled"))?,
            version: self.version.ok_or_else(|| missing("version"))?,
            spec: self.spec.ok_or_else(|| missing("spec"))?,
            phase: self.phase.ok_or_else(|| missing("phase"))?,
            conditions: self.conditions.ok_or_else(|| missing("conditions"))?,
            observed: self.observed.ok_or_else(|| missing("observed"))?,
            last_job_id: self.last_job_id,
            created_at: self.created_at.ok_or_else(|| missing("created_at"))?,
            updated_at: self.updated_at.ok_or_else(|| missing("updated_at"))?,
            job_state: self.job_state,
            job_attempt: self.job_attempt,
            job_last_error: self.job_last_error,
        })
    }
}

/// Records one change (`conn`: a pooled connection in autocommit, or the idempotency key's
/// transaction).
pub async fn record(conn: &mut PgConnection, c: &ChangeInput<'_>) -> sqlx::Result<Recorded> {
    sqlx::query_as!(
        Recorded,
        r#"SELECT outcome, id, kind, name, enabled, version, spec, phase, conditions, observed,
            last_job_id, created_at, updated_at, job_state AS "job_state: JobState", job_attempt,
            job_last_error
        FROM zs_record_change($1::text::target_kind, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"#,
        c.kind,
        c.name,
        c.enabled,
        c.spec,
        c.if_match,
        c.job_kind,
        c.job_target,
        c.token_name,
        c.on_behalf_of,
        c.source_ip,
        c.user_agent,
        c.request_id,
        c.create,
        c.rollback_to,
        c.action,
        c.patch,
        c.carry,
    )
    .fetch_one(conn)
    .await
}

//! The change function (`zs_record_change`, migrations/..._rollback.sql): one call locks or
//! creates the target, checks If-Match, folds into or enqueues its reconcile job, and writes
//! the new version with its `accepted` audit event. The rules are in SQL so that the whole
//! change is one atomic statement; the API maps its answer (`outcome`) to HTTP.

use sqlx::{postgres::PgRow, PgConnection, Row};

use super::targets::TargetRow;

/// One change, as the function takes it.
#[derive(Debug)]
pub struct ChangeInput<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub enabled: bool,
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
}

/// What the function answered: its `outcome` word and the row (the target after the change,
/// when there is one).
pub struct Recorded {
    pub outcome: String,
    row: PgRow,
}

impl Recorded {
    /// The target as the function left it (for outcomes that have one).
    pub fn target(&self) -> sqlx::Result<TargetRow> {
        sqlx::FromRow::from_row(&self.row)
    }
}

/// Records one change (`conn`: a pooled connection in autocommit, or the idempotency key's
/// transaction).
pub async fn record(conn: &mut PgConnection, c: &ChangeInput<'_>) -> sqlx::Result<Recorded> {
    let row = sqlx::query(
        "SELECT * FROM zs_record_change($1::target_kind, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(c.kind)
    .bind(c.name)
    .bind(c.enabled)
    .bind(c.spec)
    .bind(c.if_match)
    .bind(c.job_kind)
    .bind(c.job_target)
    .bind(c.token_name)
    .bind(c.on_behalf_of)
    .bind(c.source_ip)
    .bind(c.user_agent)
    .bind(c.request_id)
    .bind(c.create)
    .bind(c.rollback_to)
    .fetch_one(conn)
    .await?;
    Ok(Recorded {
        outcome: row.try_get("outcome")?,
        row,
    })
}

//! The append-only audit log. Rows are only ever inserted; triggers reject UPDATE, DELETE and
//! TRUNCATE, even from this service's own connection.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use crate::domain::TargetRef;

/// Who acted, as the log records it.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    /// The token's name, or `zeroscale` for the service's own jobs.
    pub name: String,
    /// The portal user the token acted for (`X-On-Behalf-Of`).
    pub on_behalf_of: Option<String>,
    /// The client's address and User-Agent.
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The request that acted.
    pub request_id: Option<String>,
}

impl Actor {
    /// zeroscale's own jobs.
    pub fn zeroscale() -> Self {
        Self {
            name: "zeroscale".into(),
            ..Self::default()
        }
    }
}

/// How an event this service appends ended (the change function writes the others).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted: a job is queued.
    Accepted,
    /// AWS was brought to the version.
    Applied,
    /// The job failed, for this reason.
    Failed(String),
}

impl Outcome {
    fn as_str(&self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Applied => "applied",
            Outcome::Failed(_) => "failed",
        }
    }

    fn error(&self) -> Option<&str> {
        match self {
            Outcome::Failed(e) => Some(e),
            _ => None,
        }
    }
}

/// An event to append: `by` did `action` to version `version` of `target` (job `job_id`),
/// with this `outcome`.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub by: Actor,
    pub action: &'static str,
    pub outcome: Outcome,
    pub target: TargetRef,
    pub version: i32,
    pub job_id: i64,
    /// What the event changed, when it says (a drift repair: the drift found).
    pub before: Option<Value>,
    /// The state it left (a job: what it observed).
    pub after: Option<Value>,
    /// AWS request ids of the calls made.
    pub aws_request_ids: Vec<String>,
}

impl NewAuditEvent {
    /// An event that records no state and no AWS call.
    pub fn new(
        by: Actor,
        action: &'static str,
        outcome: Outcome,
        target: TargetRef,
        version: i32,
        job_id: i64,
    ) -> Self {
        Self {
            by,
            action,
            outcome,
            target,
            version,
            job_id,
            before: None,
            after: None,
            aws_request_ids: vec![],
        }
    }
}

/// A stored event (the shape `GET /audit` shows).
pub use crate::domain::audit::AuditEvent as AuditRow;

/// Appends an event (inside the caller's transaction when given one).
pub async fn append(conn: &mut PgConnection, e: &NewAuditEvent) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO audit_log (actor, on_behalf_of, source_ip, user_agent, action, target_kind, \
           target_name, version, request_id, job_id, before, after, outcome, error, aws_request_ids) \
         VALUES ($1, $2, $3, $4, $5, $6::text::target_kind, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
        &e.by.name,
        e.by.on_behalf_of.as_deref(),
        e.by.source_ip.as_deref(),
        e.by.user_agent.as_deref(),
        e.action,
        e.target.kind(),
        e.target.name(),
        e.version,
        e.by.request_id.as_deref(),
        e.job_id,
        e.before.as_ref(),
        e.after.as_ref(),
        e.outcome.as_str(),
        e.outcome.error(),
        serde_json::json!(e.aws_request_ids),
    )
    .fetch_one(conn)
    .await
}

/// Whether job `job_id` already has its outcome (`applied` or `failed`) in the log.
pub async fn has_outcome(conn: &mut PgConnection, job_id: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM audit_log WHERE job_id = $1 AND outcome IN ('applied', 'failed')) AS "exists!""#,
        job_id,
    )
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
    sqlx::query_as!(
        AuditRow,
        r#"SELECT a.id, a.at, a.actor, a.on_behalf_of, a.source_ip, a.user_agent, a.action,
            a.target_kind::text AS "target_kind!", a.target_name, a.version, a.request_id, a.job_id,
            a.before, a.after, a.outcome, a.error, a.aws_request_ids
        FROM audit_log a WHERE
            ($1::text IS NULL OR a.target_kind = $1::text::target_kind) AND ($2::text IS NULL OR a.target_name = $2)
            AND ($3::text IS NULL OR a.actor = $3) AND ($4::text IS NULL OR a.action = $4)
            AND ($5::timestamptz IS NULL OR a.at >= $5) AND ($6::timestamptz IS NULL OR a.at < $6)
            AND ($7::bigint IS NULL OR a.id < $7)
        ORDER BY a.id DESC LIMIT $8"#,
        f.target_kind,
        f.target_name,
        f.actor,
        f.action,
        f.since,
        f.until,
        f.before_id,
        f.limit,
    )
    .fetch_all(pool)
    .await
}

mod chain;

pub use chain::{canonical, link, seal, seal_all, verify, Broken, Head, Verification};

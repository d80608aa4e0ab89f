//! Desired state per target (`targets`). Its version history is the `target_versions` view over
//! the audit log's accepted changes (migrations/..._lighter_change.sql).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use super::jobs::{Fence, JobRow, JobState};

/// A row of `targets`.
#[derive(Debug, Clone)]
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
    /// The last job's state, attempts and latest error, joined in the same query so a read
    /// costs one round trip.
    pub job_state: Option<JobState>,
    pub job_attempt: Option<i32>,
    pub job_last_error: Option<String>,
}

impl TargetRow {
    /// Fills the last-job fields from a job the caller already holds.
    pub fn with_job(mut self, job: &JobRow) -> Self {
        self.last_job_id = Some(job.id);
        self.job_state = Some(job.state);
        self.job_attempt = Some(job.attempt);
        self.job_last_error = job
            .errors
            .as_array()
            .and_then(|e| e.last())
            .and_then(|e| e["error"].as_str())
            .map(str::to_string);
        self
    }
}

/// Reads a target and locks it for the rest of the transaction (serialises writers per target).
pub async fn lock(
    conn: &mut PgConnection,
    kind: &str,
    name: &str,
) -> sqlx::Result<Option<TargetRow>> {
    let locked = sqlx::query_scalar!(
        "SELECT id FROM targets WHERE kind = $1::text::target_kind AND name = $2 FOR UPDATE",
        kind,
        name,
    )
    .fetch_optional(&mut *conn)
    .await?;
    match locked {
        None => Ok(None),
        Some(_) => Ok(select(conn, kind, &TargetFilter::named(name, 1))
            .await?
            .pop()),
    }
}

/// One target by kind and name, with its last job.
pub async fn get(pool: &PgPool, kind: &str, name: &str) -> sqlx::Result<Option<TargetRow>> {
    Ok(select(pool, kind, &TargetFilter::named(name, 1))
        .await?
        .pop())
}

/// Filters for listing targets.
#[derive(Debug, Default)]
pub struct TargetFilter {
    pub phase: Option<String>,
    pub name_prefix: Option<String>,
    /// Cursor: names strictly after this one.
    pub after: Option<String>,
    /// Exactly this name.
    pub name: Option<String>,
    /// Labels the current spec must have (a JSON object; containment).
    pub labels: Option<Value>,
    pub limit: i64,
}

impl TargetFilter {
    fn named(name: &str, limit: i64) -> Self {
        Self {
            name: Some(name.to_string()),
            limit,
            ..Default::default()
        }
    }
}

/// Targets of a kind in name order, filtered, one page.
pub async fn list(pool: &PgPool, kind: &str, f: &TargetFilter) -> sqlx::Result<Vec<TargetRow>> {
    select(pool, kind, f).await
}

/// Targets of a kind joined with their last job (state, attempts and latest error, so a read
/// costs one round trip), in name order.
async fn select<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    kind: &str,
    f: &TargetFilter,
) -> sqlx::Result<Vec<TargetRow>> {
    sqlx::query_as!(
        TargetRow,
        r#"SELECT t.id, t.kind::text AS "kind!", t.name, t.enabled, t.version, t.spec,
            t.phase::text AS "phase!", t.conditions, t.observed, t.last_job_id, t.created_at,
            t.updated_at, j.state AS "job_state?: JobState", j.attempt AS "job_attempt?",
            j.errors->-1->>'error' AS job_last_error
        FROM targets t LEFT JOIN jobs j ON j.id = t.last_job_id
        WHERE t.kind = $1::text::target_kind
          AND ($2::text IS NULL OR t.phase = $2::text::target_phase)
          AND ($3::text IS NULL OR starts_with(t.name, $3))
          AND ($4::text IS NULL OR t.name > $4)
          AND ($5::text IS NULL OR t.name = $5)
          AND ($7::jsonb IS NULL OR COALESCE(t.spec -> 'labels', '{}') @> $7)
        ORDER BY t.name LIMIT $6"#,
        kind,
        f.phase,
        f.name_prefix,
        f.after,
        f.name,
        f.limit,
        f.labels,
    )
    .fetch_all(ex)
    .await
}

/// Records what a reconcile found, if the run still holds its job (`fence`; a stale run writes
/// nothing and gets false). The phase only changes if the target is still at `version` (a newer
/// accepted version stays `pending`); conditions and observed state are AWS's truth either way.
pub async fn set_status(
    conn: &mut PgConnection,
    fence: &Fence,
    id: i64,
    version: i32,
    phase: Option<&str>,
    conditions: Option<&Value>,
    observed: Option<&Value>,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE targets SET \
           phase = CASE WHEN version = $2 AND $3::text IS NOT NULL THEN $3::text::target_phase ELSE phase END, \
           conditions = COALESCE($4, conditions), observed = COALESCE($5, observed), updated_at = now() \
         WHERE id = $1 AND EXISTS (SELECT 1 FROM jobs WHERE jobs.id = $6 AND jobs.lease_owner = $7 \
           AND jobs.attempt = $8 AND jobs.state = 'running')",
        id,
        version,
        phase,
        conditions,
        observed,
        fence.id,
        &fence.owner,
        fence.attempt,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a target `failed` (if still at `version`) with these conditions, after its job was
/// discarded by the engine (no run holds it any more, so no fence).
pub async fn set_failed(
    conn: &mut PgConnection,
    id: i64,
    version: i32,
    conditions: &Value,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE targets SET phase = CASE WHEN version = $2 THEN 'failed'::target_phase ELSE phase END, \
           conditions = $3, updated_at = now() WHERE id = $1",
        id,
        version,
        conditions,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Records what AWS held before zeroscale's first write to the target, unless something was
/// already recorded; returns what is recorded (the earlier capture wins: it was taken before
/// any write of ours). See migrations/20261130000001_baseline.sql for the shape. None: the run
/// no longer holds its job (nothing written).
pub async fn capture_baseline(
    pool: &PgPool,
    fence: &Fence,
    id: i64,
    baseline: &Value,
) -> sqlx::Result<Option<Value>> {
    let row = sqlx::query_scalar!(
        r#"UPDATE targets SET baseline = COALESCE(baseline, $2) WHERE id = $1 AND EXISTS (
             SELECT 1 FROM jobs WHERE jobs.id = $3 AND jobs.lease_owner = $4 AND jobs.attempt = $5
               AND jobs.state = 'running')
           RETURNING baseline AS "baseline!""#,
        id,
        baseline,
        fence.id,
        &fence.owner,
        fence.attempt,
    )
    .fetch_optional(pool)
    .await?;
    Ok(row)
}

/// The recorded baseline, if any.
pub async fn baseline(pool: &PgPool, id: i64) -> sqlx::Result<Option<Value>> {
    sqlx::query_scalar!("SELECT baseline FROM targets WHERE id = $1", id)
        .fetch_one(pool)
        .await
}

/// Forgets the baseline once a disable has restored it (a later enable captures afresh).
pub async fn clear_baseline(conn: &mut PgConnection, id: i64) -> sqlx::Result<()> {
    sqlx::query!("UPDATE targets SET baseline = NULL WHERE id = $1", id)
        .execute(conn)
        .await?;
    Ok(())
}

/// An enabled target that is settled (`ready` or `failed`): what the observation pass compares
/// with AWS.
#[derive(Debug, Clone)]
pub struct Settled {
    pub id: i64,
    pub kind: String,
    pub name: String,
    pub version: i32,
    pub spec: Value,
    pub phase: String,
    pub conditions: Value,
    pub observed: Value,
}

/// Every target's id, kind and stored name (the timeline follows them all, whatever their
/// phase).
pub async fn all_refs(pool: &PgPool) -> sqlx::Result<Vec<(i64, String, String)>> {
    let rows = sqlx::query!(r#"SELECT id, kind::text AS "kind!", name FROM targets ORDER BY id"#)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.kind, r.name)).collect())
}

/// Every enabled, settled target, in id order.
pub async fn settled_enabled(pool: &PgPool) -> sqlx::Result<Vec<Settled>> {
    sqlx::query_as!(
        Settled,
        r#"SELECT id, kind::text AS "kind!", name, version, spec, phase::text AS "phase!",
                  conditions, observed
           FROM targets WHERE enabled AND phase IN ('ready', 'failed') ORDER BY id"#
    )
    .fetch_all(pool)
    .await
}

/// Records a settled target's latest scaling outcome (`observed.last_scaling_failure`, null
/// once it recovered) with its conditions, unless it changed version or left its settled phase
/// since it was read (its job then records the truth). False when nothing was written.
pub async fn set_scaling_outcome(
    conn: &mut PgConnection,
    id: i64,
    version: i32,
    failure: &Value,
    conditions: &Value,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE targets SET \
           observed = jsonb_set(COALESCE(NULLIF(observed, 'null'::jsonb), '{}'::jsonb), '{last_scaling_failure}', $3), \
           conditions = $4, updated_at = now() \
         WHERE id = $1 AND version = $2 AND enabled AND phase IN ('ready', 'failed')",
        id,
        version,
        failure,
        conditions,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Targets per (kind, phase), for the gauges.
pub async fn count_by_phase(pool: &PgPool) -> sqlx::Result<Vec<(String, String, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT kind::text AS "kind!", phase::text AS "phase!", count(*) AS "count!"
           FROM targets GROUP BY 1, 2"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.kind, r.phase, r.count))
        .collect())
}

//! The fleet observation pass's bookkeeping (`observation`, one row): how many passes ran and
//! the newest scaling activity already seen.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// A pass about to run: its number (from 1) and the newest activity the last pass saw.
pub struct PassStart {
    pub number: i64,
    pub activities_seen_until: Option<DateTime<Utc>>,
}

/// Whether a pass is due: none ran in the last `interval` (every replica's scheduler asks;
/// the job queue keeps it to one pass at a time).
pub async fn due(pool: &PgPool, interval: std::time::Duration) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT (last_pass_at IS NULL OR last_pass_at < now() - make_interval(secs => $1))
             AS "due!" FROM observation"#,
        interval.as_secs_f64()
    )
    .fetch_one(pool)
    .await
}

/// Counts a new pass and returns where the last one left off.
pub async fn begin(pool: &PgPool) -> sqlx::Result<PassStart> {
    let row = sqlx::query!(
        "UPDATE observation SET passes = passes + 1 RETURNING passes, activities_seen_until"
    )
    .fetch_one(pool)
    .await?;
    Ok(PassStart {
        number: row.passes,
        activities_seen_until: row.activities_seen_until,
    })
}

/// Records a finished pass and the newest scaling activity it saw (never moving backwards).
pub async fn finish(pool: &PgPool, seen_until: Option<DateTime<Utc>>) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE observation SET last_pass_at = now(), \
           activities_seen_until = GREATEST(activities_seen_until, $1)",
        seen_until
    )
    .execute(pool)
    .await?;
    Ok(())
}

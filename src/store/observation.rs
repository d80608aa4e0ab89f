//! The fleet observation pass's bookkeeping (`observation`, one row): how many passes ran and
//! the newest scaling activity already seen.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// A pass about to run: its number (from 1) and the newest activity the last pass saw.
pub struct PassStart {
    pub number: i64,
    pub activities_seen_until: Option<DateTime<Utc>>,
    /// The oldest activity the last pass saw in progress (this pass reads back to it).
    pub open_activities_since: Option<DateTime<Utc>>,
}

impl PassStart {
    /// Where this pass's reading stops: the newest activity already seen, or earlier when one
    /// was still in progress.
    pub fn read_since(&self) -> Option<DateTime<Utc>> {
        match (self.activities_seen_until, self.open_activities_since) {
            (Some(seen), Some(open)) => Some(seen.min(open)),
            (seen, _) => seen,
        }
    }
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
        "UPDATE observation SET passes = passes + 1 \
           RETURNING passes, activities_seen_until, open_activities_since"
    )
    .fetch_one(pool)
    .await?;
    Ok(PassStart {
        number: row.passes,
        activities_seen_until: row.activities_seen_until,
        open_activities_since: row.open_activities_since,
    })
}

/// Records a finished pass, the newest scaling activity it saw (never moving backwards) and
/// the oldest it saw still in progress.
pub async fn finish(
    pool: &PgPool,
    seen_until: Option<DateTime<Utc>>,
    open_since: Option<DateTime<Utc>>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE observation SET last_pass_at = now(), \
           activities_seen_until = GREATEST(activities_seen_until, $1), \
           open_activities_since = $2",
        seen_until,
        open_since
    )
    .execute(pool)
    .await?;
    Ok(())
}

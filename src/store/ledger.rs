//! What the savings ledger reads: the targets (by labels) and their capacity events.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;

use crate::domain::EventKind;

/// The event kinds that move a target between up, at zero and waking.
const CAPACITY_KINDS: [&str; 5] = [
    "scaled_to_zero",
    "wake_started",
    "capacity_in_service",
    "wake_failed",
    "disabled",
];

/// A target as the ledger needs it.
#[derive(Debug, Clone)]
pub struct LedgerTarget {
    pub id: i64,
    pub kind: String,
    pub name: String,
    pub spec: Value,
    pub observed: Value,
}

/// Every target whose labels contain `labels` (all when None), by kind and name.
pub async fn targets(
    conn: &mut PgConnection,
    labels: Option<&Value>,
) -> sqlx::Result<Vec<LedgerTarget>> {
    sqlx::query_as!(
        LedgerTarget,
        r#"SELECT id, kind::text AS "kind!", name, spec, observed FROM targets
           WHERE ($1::jsonb IS NULL OR COALESCE(spec -> 'labels', '{}') @> $1)
           ORDER BY kind, name"#,
        labels
    )
    .fetch_all(&mut *conn)
    .await
}

/// Each target's last capacity event before `since`.
pub async fn states_before(
    conn: &mut PgConnection,
    ids: &[i64],
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<(i64, EventKind)>> {
    let rows = sqlx::query!(
        r#"SELECT DISTINCT ON (target_id) target_id, kind FROM target_events
           WHERE target_id = ANY($1) AND at < $2 AND kind = ANY($3)
           ORDER BY target_id, at DESC, id DESC"#,
        ids,
        since,
        &CAPACITY_KINDS.map(String::from),
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.target_id, EventKind::parse(&r.kind)?)))
        .collect())
}

/// The targets' capacity events within [since, until), by target then time.
pub async fn events_between(
    conn: &mut PgConnection,
    ids: &[i64],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> sqlx::Result<Vec<(i64, EventKind, DateTime<Utc>)>> {
    let rows = sqlx::query!(
        r#"SELECT target_id, kind, at FROM target_events
           WHERE target_id = ANY($1) AND at >= $2 AND at < $3 AND kind = ANY($4)
           ORDER BY target_id, at, id"#,
        ids,
        since,
        until,
        &CAPACITY_KINDS.map(String::from),
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.target_id, EventKind::parse(&r.kind)?, r.at)))
        .collect())
}

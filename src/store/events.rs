//! The timeline (`target_events`): append-only, each event de-duplicated by where it came from
//! (`source`), so a pass that reads an activity twice records it once.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;

use crate::domain::EventKind;

/// An event to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub target_id: i64,
    pub kind: EventKind,
    pub at: DateTime<Utc>,
    pub source: String,
    pub details: Value,
}

/// A recorded event with its target.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    pub kind: String,
    pub at: DateTime<Utc>,
    pub details: Value,
    pub recorded_at: DateTime<Utc>,
    pub target_kind: String,
    pub target_name: String,
    pub labels: Option<Value>,
}

/// Records events; those already recorded (same target, kind and source) are skipped. Returns
/// the ones that are new.
pub async fn insert(conn: &mut PgConnection, events: &[NewEvent]) -> sqlx::Result<Vec<NewEvent>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = events.iter().map(|e| e.target_id).collect();
    let kinds: Vec<String> = events.iter().map(|e| e.kind.as_str().to_string()).collect();
    let ats: Vec<DateTime<Utc>> = events.iter().map(|e| e.at).collect();
    let sources: Vec<String> = events.iter().map(|e| e.source.clone()).collect();
    let details: Vec<Value> = events.iter().map(|e| e.details.clone()).collect();
    let rows = sqlx::query!(
        r#"INSERT INTO target_events (target_id, kind, at, source, details)
           SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::timestamptz[], $4::text[], $5::jsonb[])
           ORDER BY 3
           ON CONFLICT (target_id, kind, source) DO NOTHING
           RETURNING target_id, kind, source"#,
        &ids,
        &kinds,
        &ats,
        &sources,
        &details,
    )
    .fetch_all(&mut *conn)
    .await?;
    let new: std::collections::HashSet<(i64, String, String)> = rows
        .into_iter()
        .map(|r| (r.target_id, r.kind, r.source))
        .collect();
    Ok(events
        .iter()
        .filter(|e| new.contains(&(e.target_id, e.kind.as_str().to_string(), e.source.clone())))
        .cloned()
        .collect())
}

/// Each target's latest capacity event (`scaled_to_zero` or `capacity_in_service`) with its
/// time: whether it is at zero, and since when.
pub async fn capacity_states(
    conn: &mut PgConnection,
    target_ids: &[i64],
) -> sqlx::Result<Vec<(i64, EventKind, DateTime<Utc>)>> {
    let rows = sqlx::query!(
        r#"SELECT DISTINCT ON (target_id) target_id, kind, at FROM target_events
           WHERE target_id = ANY($1) AND kind IN ('scaled_to_zero', 'capacity_in_service')
           ORDER BY target_id, at DESC, id DESC"#,
        target_ids
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.target_id, EventKind::parse(&r.kind)?, r.at)))
        .collect())
}

/// A page of events, in time order.
#[derive(Debug, Default)]
pub struct EventFilter {
    pub target_id: Option<i64>,
    pub kinds: Option<Vec<String>>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Labels the target's current spec must have (a JSON object; containment).
    pub labels: Option<Value>,
    /// Cursor: events strictly after this (time, id).
    pub after: Option<(DateTime<Utc>, i64)>,
    pub limit: i64,
}

pub async fn list(conn: &mut PgConnection, f: &EventFilter) -> sqlx::Result<Vec<EventRow>> {
    let (after_at, after_id) = f.after.unzip();
    sqlx::query_as!(
        EventRow,
        r#"SELECT e.id, e.kind, e.at, e.details, e.recorded_at, t.kind::text AS "target_kind!",
                  t.name AS target_name, t.spec -> 'labels' AS labels
           FROM target_events e JOIN targets t ON t.id = e.target_id
           WHERE ($1::bigint IS NULL OR e.target_id = $1)
             AND ($2::text[] IS NULL OR e.kind = ANY($2))
             AND ($3::timestamptz IS NULL OR e.at >= $3)
             AND ($4::timestamptz IS NULL OR e.at < $4)
             AND ($5::jsonb IS NULL OR COALESCE(t.spec -> 'labels', '{}') @> $5)
             AND ($6::timestamptz IS NULL OR (e.at, e.id) > ($6, $7::bigint))
           ORDER BY e.at, e.id LIMIT $8"#,
        f.target_id,
        f.kinds.as_deref(),
        f.since,
        f.until,
        f.labels,
        after_at,
        after_id,
        f.limit,
    )
    .fetch_all(&mut *conn)
    .await
}

/// The audited action that made a target's version (`enable`, `pause`, ...).
pub async fn version_action(
    conn: &mut PgConnection,
    target_id: i64,
    version: i32,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        r#"SELECT action AS "action!" FROM target_versions WHERE target_id = $1 AND version = $2"#,
        target_id,
        version
    )
    .fetch_optional(&mut *conn)
    .await
}

/// The capacity-moving events of `target_ids` from `since` on, by target then time, with
/// their details (the portal's charts and fleet figures).
pub async fn capacity_since(
    conn: &mut PgConnection,
    target_ids: &[i64],
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<(i64, EventKind, DateTime<Utc>, Value)>> {
    let rows = sqlx::query!(
        r#"SELECT target_id, kind, at, details FROM target_events
           WHERE target_id = ANY($1) AND at >= $2
             AND kind IN ('scaled_to_zero', 'wake_started', 'capacity_in_service', 'wake_failed',
                          'disabled', 'scheduled_action_fired', 'paused', 'resumed')
           ORDER BY target_id, at, id"#,
        target_ids,
        since
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.target_id, EventKind::parse(&r.kind)?, r.at, r.details)))
        .collect())
}

/// Each target's last capacity event before `t`, with its details (where a chart starts).
pub async fn capacity_before(
    conn: &mut PgConnection,
    target_ids: &[i64],
    t: DateTime<Utc>,
) -> sqlx::Result<Vec<(i64, EventKind, Value)>> {
    let rows = sqlx::query!(
        r#"SELECT DISTINCT ON (target_id) target_id, kind, details FROM target_events
           WHERE target_id = ANY($1) AND at < $2
             AND kind IN ('scaled_to_zero', 'wake_started', 'capacity_in_service', 'wake_failed', 'disabled')
           ORDER BY target_id, at DESC, id DESC"#,
        target_ids,
        t
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.target_id, EventKind::parse(&r.kind)?, r.details)))
        .collect())
}

/// A target's newest events from `since` on, newest first (the target page's table).
pub async fn newest(
    conn: &mut PgConnection,
    target_id: i64,
    since: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<(String, DateTime<Utc>, Value)>> {
    let rows = sqlx::query!(
        r#"SELECT kind, at, details FROM target_events
           WHERE target_id = $1 AND at >= $2 ORDER BY at DESC, id DESC LIMIT $3"#,
        target_id,
        since,
        limit
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.kind, r.at, r.details))
        .collect())
}

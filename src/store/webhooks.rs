//! Webhook subscriptions, the fan-out of a notification to the ones it matches (a delivery row
//! and its job each, in the caller's transaction), and the delivery log.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};

use super::jobs::NewJob;

/// The job that sends one delivery.
pub const DELIVERY_JOB: &str = "webhook_delivery";
/// Attempts per delivery: with the engine's backoff (2 s doubling, capped at 5 min), about 17
/// minutes of retries.
pub const DELIVERY_ATTEMPTS: i32 = 9;

/// A stored subscription (the secret stays sealed).
#[derive(Debug, Clone)]
pub struct WebhookRow {
    pub id: i64,
    pub url: String,
    pub kinds: Vec<String>,
    pub labels: Option<Value>,
    pub format: String,
    pub slow_wake_seconds: i32,
    pub not_at_zero_days: i32,
    pub secret_nonce: Vec<u8>,
    pub secret_sealed: Vec<u8>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// A subscription to store.
pub struct NewWebhookRow<'a> {
    pub url: &'a str,
    pub kinds: Vec<String>,
    pub labels: Option<Value>,
    pub format: &'a str,
    pub slow_wake_seconds: i32,
    pub not_at_zero_days: i32,
    pub secret_nonce: Vec<u8>,
    pub secret_sealed: Vec<u8>,
    pub created_by: &'a str,
}

pub async fn create(conn: &mut PgConnection, w: &NewWebhookRow<'_>) -> sqlx::Result<WebhookRow> {
    sqlx::query_as!(
        WebhookRow,
        r#"INSERT INTO webhooks (url, kinds, labels, format, slow_wake_seconds, not_at_zero_days,
                                 secret_nonce, secret_sealed, created_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           RETURNING id, url, kinds, labels, format, slow_wake_seconds, not_at_zero_days,
                     secret_nonce, secret_sealed, created_by, created_at"#,
        w.url,
        &w.kinds,
        w.labels,
        w.format,
        w.slow_wake_seconds,
        w.not_at_zero_days,
        w.secret_nonce,
        w.secret_sealed,
        w.created_by,
    )
    .fetch_one(conn)
    .await
}

pub async fn get(pool: &PgPool, id: i64) -> sqlx::Result<Option<WebhookRow>> {
    sqlx::query_as!(
        WebhookRow,
        r#"SELECT id, url, kinds, labels, format, slow_wake_seconds, not_at_zero_days,
                  secret_nonce, secret_sealed, created_by, created_at
           FROM webhooks WHERE id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await
}

/// Subscriptions by id, after `after`.
pub async fn list(pool: &PgPool, after: Option<i64>, limit: i64) -> sqlx::Result<Vec<WebhookRow>> {
    sqlx::query_as!(
        WebhookRow,
        r#"SELECT id, url, kinds, labels, format, slow_wake_seconds, not_at_zero_days,
                  secret_nonce, secret_sealed, created_by, created_at
           FROM webhooks WHERE ($1::bigint IS NULL OR id > $1) ORDER BY id LIMIT $2"#,
        after,
        limit
    )
    .fetch_all(pool)
    .await
}

/// Deletes a subscription and its log; false when there was none.
pub async fn delete(pool: &PgPool, id: i64) -> sqlx::Result<bool> {
    let done = sqlx::query!("DELETE FROM webhooks WHERE id = $1", id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Something to tell subscribers about one target.
#[derive(Debug, Clone)]
pub struct Notification {
    pub kind: &'static str,
    pub target_id: i64,
    /// Unique per target and kind: where it came from (an event's source, a pause's end, ...).
    pub source: String,
    pub at: DateTime<Utc>,
    pub data: Value,
    /// For `wake_slow`: the wake's seconds (a webhook gets it above its own threshold).
    pub wake_seconds: Option<f64>,
    /// For `not_reaching_zero`: whole days since the target was last at zero (a webhook gets it
    /// from its own `not_at_zero_days`).
    pub days_not_at_zero: Option<i32>,
}

impl Notification {
    /// A notification with no threshold.
    pub fn new(
        kind: &'static str,
        target_id: i64,
        source: String,
        at: DateTime<Utc>,
        data: Value,
    ) -> Self {
        Self {
            kind,
            target_id,
            source,
            at,
            data,
            wake_seconds: None,
            days_not_at_zero: None,
        }
    }
}

/// Queues a delivery (and its job) for every subscription the notification matches: its kind,
/// its target's labels, and for `wake_slow` the subscription's threshold. A notification
/// already queued for a subscription is not queued again. Returns how many were queued.
pub async fn fan_out(conn: &mut PgConnection, n: &Notification) -> sqlx::Result<usize> {
    let subject = format!("{}:{}:{}", n.kind, n.target_id, n.source);
    let rows = sqlx::query!(
        r#"INSERT INTO webhook_deliveries (webhook_id, subject, kind, target_id, payload)
           SELECT w.id, $1, $2, t.id,
                  jsonb_build_object('type', $2::text, 'at', $4::timestamptz,
                      'target', jsonb_build_object('kind', t.kind::text, 'name', t.name,
                                                   'labels', COALESCE(t.spec -> 'labels', '{}')),
                      'data', $5::jsonb)
           FROM webhooks w JOIN targets t ON t.id = $3
           WHERE $2 = ANY(w.kinds)
             AND (w.labels IS NULL OR COALESCE(t.spec -> 'labels', '{}') @> w.labels)
             AND ($6::float8 IS NULL OR $6 > w.slow_wake_seconds)
             AND ($7::int IS NULL OR $7 >= w.not_at_zero_days)
           ON CONFLICT (webhook_id, subject) DO NOTHING
           RETURNING id"#,
        subject,
        n.kind,
        n.target_id,
        n.at,
        n.data,
        n.wake_seconds,
        n.days_not_at_zero,
    )
    .fetch_all(&mut *conn)
    .await?;
    for r in &rows {
        let job = NewJob {
            kind: DELIVERY_JOB.into(),
            target: None,
            args: json!({"delivery_id": r.id}),
            max_attempts: DELIVERY_ATTEMPTS,
            scheduled_at: None,
        };
        super::jobs::enqueue(conn, &job).await?;
    }
    Ok(rows.len())
}

/// A delivery with what sending it needs.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: i64,
    pub kind: String,
    pub payload: Value,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub url: String,
    pub format: String,
    pub secret_nonce: Vec<u8>,
    pub secret_sealed: Vec<u8>,
}

/// The delivery to send (None when its webhook was deleted).
pub async fn outgoing(pool: &PgPool, id: i64) -> sqlx::Result<Option<Outgoing>> {
    sqlx::query_as!(
        Outgoing,
        r#"SELECT d.id, d.kind, d.payload, d.state, d.created_at, w.url, w.format,
                  w.secret_nonce, w.secret_sealed
           FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await
}

/// Records an attempt: delivered, or its status and error (`failed` once `last` is true).
pub async fn record_attempt(
    pool: &PgPool,
    id: i64,
    delivered: bool,
    status: Option<i32>,
    error: Option<&str>,
    last: bool,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = now(),
             last_status = $2, last_error = $3,
             state = CASE WHEN $4 THEN 'delivered' WHEN $5 THEN 'failed' ELSE 'pending' END,
             delivered_at = CASE WHEN $4 THEN now() ELSE delivered_at END
           WHERE id = $1"#,
        id,
        status,
        error,
        delivered,
        last,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// One line of a webhook's delivery log.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: i64,
    pub kind: String,
    pub subject: String,
    pub state: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A webhook's deliveries, newest first, before `before`.
pub async fn deliveries(
    pool: &PgPool,
    webhook_id: i64,
    before: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<DeliveryRow>> {
    sqlx::query_as!(
        DeliveryRow,
        r#"SELECT id, kind, subject, state, attempts, last_status, last_error, created_at,
                  last_attempt_at, delivered_at
           FROM webhook_deliveries
           WHERE webhook_id = $1 AND ($2::bigint IS NULL OR id < $2)
           ORDER BY id DESC LIMIT $3"#,
        webhook_id,
        before,
        limit
    )
    .fetch_all(pool)
    .await
}

/// Paused targets whose pause ends within `within` (for `pause_expiring`): (id, until).
pub async fn pauses_ending(
    pool: &PgPool,
    within: std::time::Duration,
) -> sqlx::Result<Vec<(i64, DateTime<Utc>)>> {
    let rows = sqlx::query!(
        r#"SELECT id, (spec -> 'pause' ->> 'until')::timestamptz AS "until!"
           FROM targets
           WHERE enabled AND spec ? 'pause'
             AND (spec -> 'pause' ->> 'until')::timestamptz
                 BETWEEN now() AND now() + make_interval(secs => $1)
             AND EXISTS (SELECT FROM webhooks WHERE 'pause_expiring' = ANY(kinds))"#,
        within.as_secs_f64()
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.until)).collect())
}

/// Enabled, unpaused targets that are not at zero and have not been for the shortest
/// `not_at_zero_days` any subscription asks for: (id, days, since when: the last time at zero,
/// else when scale-to-zero was first applied, else when the target was created).
pub async fn not_reaching_zero(pool: &PgPool) -> sqlx::Result<Vec<(i64, i32, DateTime<Utc>)>> {
    let rows = sqlx::query!(
        r#"WITH days AS (SELECT min(not_at_zero_days) AS d FROM webhooks
                         WHERE 'not_reaching_zero' = ANY(kinds)),
           state AS (
               SELECT t.id, t.created_at,
                      (SELECT e.kind FROM target_events e
                       WHERE e.target_id = t.id AND e.kind IN ('scaled_to_zero', 'capacity_in_service')
                       ORDER BY e.at DESC, e.id DESC LIMIT 1) AS last_capacity,
                      (SELECT max(e.at) FROM target_events e
                       WHERE e.target_id = t.id AND e.kind = 'scaled_to_zero') AS last_zero,
                      (SELECT min(e.at) FROM target_events e
                       WHERE e.target_id = t.id AND e.kind = 'enabled') AS first_enabled
               FROM targets t
               WHERE t.enabled AND NOT (t.spec ? 'pause'))
           SELECT s.id, days.d AS "days!",
                  COALESCE(s.last_zero, s.first_enabled, s.created_at) AS "since!"
           FROM state s, days
           WHERE days.d IS NOT NULL
             AND s.last_capacity IS DISTINCT FROM 'scaled_to_zero'
             AND COALESCE(s.last_zero, s.first_enabled, s.created_at)
                 < now() - make_interval(days => days.d)"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.days, r.since)).collect())
}

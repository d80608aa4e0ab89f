//! Keep-warm pins and pauses as stored in the targets' specs: which have run out (zeroscale
//! lifts them, audited) and how many targets are paused now (`/metrics`).

use sqlx::PgPool;

/// A pin or pause whose `until` has passed, on an enabled target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub kind: String,
    pub name: String,
    /// `pause` or `keep_warm`: the spec key to remove.
    pub key: String,
    /// The version that holds it (the lift is made only on that version).
    pub version: i32,
}

/// Every pin and pause that has run out (the oldest first, at most `limit`).
pub async fn expired(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<Expired>> {
    sqlx::query_as!(
        Expired,
        r#"SELECT t.kind::text AS "kind!", t.name AS "name!", h.key AS "key!", t.version AS "version!"
           FROM targets t
           CROSS JOIN LATERAL (VALUES ('pause'), ('keep_warm')) AS h(key)
           WHERE t.enabled AND t.spec ? h.key
             AND (t.spec -> h.key ->> 'until')::timestamptz <= now()
           ORDER BY (t.spec -> h.key ->> 'until')::timestamptz
           LIMIT $1"#,
        limit
    )
    .fetch_all(pool)
    .await
}

/// Enabled targets paused now, by kind.
pub async fn paused_by_kind(pool: &PgPool) -> sqlx::Result<Vec<(String, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT kind::text AS "kind!", count(*) AS "count!"
           FROM targets
           WHERE enabled AND spec ? 'pause'
             AND (spec -> 'pause' ->> 'until')::timestamptz > now()
           GROUP BY 1"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.kind, r.count)).collect())
}

//! Live replicas (`replicas`): each process that calls AWS heartbeats here, and the live count
//! divides the account's AWS call budget between them.

use sqlx::PgPool;

/// A replica is live while its heartbeat is younger than this (three missed beats).
pub const LIVE_FOR_SECONDS: f64 = 30.0;

/// Registers this process; its id is what it heartbeats with.
pub async fn register(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar!("INSERT INTO replicas DEFAULT VALUES RETURNING id")
        .fetch_one(pool)
        .await
}

/// Heartbeats replica `id` (registering it again if a long pause got it pruned) and returns
/// how many replicas are live, itself included. Replicas silent for ten minutes are pruned.
pub async fn heartbeat(pool: &PgPool, id: i64) -> sqlx::Result<usize> {
    let others = sqlx::query_scalar!(
        r#"WITH beat AS (
               INSERT INTO replicas (id) VALUES ($1)
               ON CONFLICT (id) DO UPDATE SET seen_at = now() RETURNING id
           ), pruned AS (
               DELETE FROM replicas WHERE seen_at < now() - interval '10 minutes' AND id <> $1
           )
           SELECT count(*) AS "count!" FROM replicas
           WHERE id <> $1 AND seen_at > now() - make_interval(secs => $2)"#,
        id,
        LIVE_FOR_SECONDS
    )
    .fetch_one(pool)
    .await?;
    Ok(others as usize + 1)
}

/// Removes replica `id` (a clean shutdown: the others take its share at once).
pub async fn forget(pool: &PgPool, id: i64) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM replicas WHERE id = $1", id)
        .execute(pool)
        .await?;
    Ok(())
}

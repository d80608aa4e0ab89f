//! Idempotency keys (IETF httpapi draft, Stripe's semantics), claimed in the same transaction as
//! the change they protect.

use std::time::Duration;

use serde_json::Value;
use sqlx::{PgConnection, PgPool};

/// Identifies one key: a caller's key on one method and path.
pub struct KeyScope<'a> {
    pub actor: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub key: &'a str,
}

/// A stored response.
#[derive(Debug)]
pub struct StoredResponse {
    pub body_sha256: Vec<u8>,
    pub status: i32,
    pub response: Value,
    pub location: Option<String>,
}

/// Takes the key's transaction-scoped lock without waiting. False means another request with
/// the same key is in flight right now (the caller answers 409).
pub async fn try_lock(conn: &mut PgConnection, k: &KeyScope<'_>) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock(hashtextextended($1 || E'\n' || $2 || E'\n' || $3 || E'\n' || $4, 7)) AS "locked!""#,
        k.actor,
        k.method,
        k.path,
        k.key,
    )
    .fetch_one(conn)
    .await
}

/// The stored response for a key, if used within `ttl` (an older key has expired: it is
/// deleted here, and the periodic [`expire`] deletes the ones nobody reuses).
pub async fn find(
    conn: &mut PgConnection,
    k: &KeyScope<'_>,
    ttl: Duration,
) -> sqlx::Result<Option<StoredResponse>> {
    sqlx::query!(
        "DELETE FROM idempotency_keys WHERE actor = $1 AND method = $2 AND path = $3 AND key = $4 \
         AND created_at < now() - make_interval(secs => $5)",
        k.actor,
        k.method,
        k.path,
        k.key,
        ttl.as_secs_f64(),
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query_as!(
        StoredResponse,
        "SELECT body_sha256, status, response, location FROM idempotency_keys \
         WHERE actor = $1 AND method = $2 AND path = $3 AND key = $4",
        k.actor,
        k.method,
        k.path,
        k.key,
    )
    .fetch_optional(conn)
    .await
}

/// Stores the response given for a key.
pub async fn store(
    conn: &mut PgConnection,
    k: &KeyScope<'_>,
    body_sha256: &[u8],
    status: u16,
    response: &Value,
    location: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO idempotency_keys (actor, method, path, key, body_sha256, status, response, location) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        k.actor,
        k.method,
        k.path,
        k.key,
        body_sha256,
        i32::from(status),
        response,
        location,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes keys older than `ttl`, in batches (the table would otherwise grow forever). Returns
/// how many.
pub async fn expire(pool: &PgPool, ttl: Duration) -> sqlx::Result<u64> {
    super::delete_in_batches(ttl, |secs, limit| {
        sqlx::query!(
            "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(SELECT ctid FROM idempotency_keys \
               WHERE created_at < now() - make_interval(secs => $1) LIMIT $2))",
            secs,
            limit,
        )
        .execute(pool)
    })
    .await
}

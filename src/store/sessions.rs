//! Portal sessions (`ui_sessions`): the hash of a cookie's secret, the token it acts as, its
//! CSRF token and its expiry.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// A live session: the token's name and scopes as they are now, and the CSRF token.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub token_name: String,
    pub scopes: Vec<String>,
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

/// Starts a session for the live token `token_name`; false when the token is gone or revoked.
/// Sessions expired for a day go at the same time (each sign-in prunes; nothing else must).
pub async fn create(
    pool: &PgPool,
    id_hash: &[u8],
    token_name: &str,
    csrf: &str,
    expires_at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "INSERT INTO ui_sessions (id_hash, token_id, csrf, expires_at) \
         SELECT $1, id, $3, $4 FROM api_tokens WHERE name = $2 AND revoked_at IS NULL",
        id_hash,
        token_name,
        csrf,
        expires_at,
    )
    .execute(pool)
    .await?;
    sqlx::query!("DELETE FROM ui_sessions WHERE expires_at < now() - interval '1 day'")
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The session with this hash, if it has not expired and its token is not revoked.
pub async fn find(pool: &PgPool, id_hash: &[u8]) -> sqlx::Result<Option<SessionRow>> {
    sqlx::query_as!(
        SessionRow,
        r#"SELECT t.name AS token_name, t.scopes, s.csrf, s.expires_at
           FROM ui_sessions s JOIN api_tokens t ON t.id = s.token_id
           WHERE s.id_hash = $1 AND s.expires_at > now() AND t.revoked_at IS NULL"#,
        id_hash
    )
    .fetch_optional(pool)
    .await
}

/// Ends a session (sign-out).
pub async fn delete(pool: &PgPool, id_hash: &[u8]) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM ui_sessions WHERE id_hash = $1", id_hash)
        .execute(pool)
        .await?;
    Ok(())
}

//! API tokens. The secret is shown once at creation; only its SHA-256 is stored (the secret has
//! 256 bits of entropy, so a slow password hash would add nothing).

use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// A stored token (never the secret).
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<String>,
    pub prefix: String,
    pub secret_hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// SHA-256 of a secret.
pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Splits `zs_<prefix>_<random>` into its public prefix.
pub fn prefix_of(secret: &str) -> Option<&str> {
    let rest = secret.strip_prefix("zs_")?;
    let (prefix, random) = rest.split_once('_')?;
    (prefix.len() == 12 && random.len() == 64).then_some(prefix)
}

/// Creates a token and returns it with its secret (shown once).
pub async fn create(
    pool: &PgPool,
    name: &str,
    scopes: &[String],
) -> sqlx::Result<(TokenRow, String)> {
    let mut bytes = [0u8; 38];
    rand::rng().fill_bytes(&mut bytes);
    let prefix = hex::encode(&bytes[..6]);
    let secret = format!("zs_{prefix}_{}", hex::encode(&bytes[6..]));
    let row = sqlx::query_as!(
        TokenRow,
        "INSERT INTO api_tokens (name, scopes, prefix, secret_hash) VALUES ($1, $2, $3, $4) \
         RETURNING id, name, scopes, prefix, secret_hash, created_at, revoked_at",
        name,
        scopes,
        &prefix,
        hash_secret(&secret),
    )
    .fetch_one(pool)
    .await?;
    Ok((row, secret))
}

/// The live (not revoked) token with this prefix.
pub async fn find_live_by_prefix(pool: &PgPool, prefix: &str) -> sqlx::Result<Option<TokenRow>> {
    sqlx::query_as!(
        TokenRow,
        "SELECT id, name, scopes, prefix, secret_hash, created_at, revoked_at FROM api_tokens \
         WHERE prefix = $1 AND revoked_at IS NULL",
        prefix,
    )
    .fetch_optional(pool)
    .await
}

/// Every token, newest first.
pub async fn list(pool: &PgPool) -> sqlx::Result<Vec<TokenRow>> {
    sqlx::query_as!(
        TokenRow,
        "SELECT id, name, scopes, prefix, secret_hash, created_at, revoked_at FROM api_tokens ORDER BY id DESC",
    )
    .fetch_all(pool)
    .await
}

/// The channel on which revocations are announced; every API process clears its token cache
/// when one arrives, so a revoked token stops working at once everywhere.
pub const REVOKED_CHANNEL: &str = "zeroscale_token_revoked";

/// Revokes a token by name and tells every replica (the notification commits with the
/// revocation); false when there is no live token of that name.
pub async fn revoke(pool: &PgPool, name: &str) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query!(
        "UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL",
        name,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("SELECT pg_notify($1, '')", REVOKED_CHANNEL)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

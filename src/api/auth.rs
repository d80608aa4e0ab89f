//! Bearer-token authentication and scope checks. `Reader` and `Writer` are extractors: a handler
//! that takes one cannot run without a token holding that scope.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{header, request::Parts},
};

use super::AppState;
use crate::{error::ApiError, store::tokens};

/// How long a token lookup is trusted before the database is asked again; revocation takes
/// effect within this time.
const CACHE_TTL: Duration = Duration::from_secs(5);
/// Cache entries kept at most (random bad tokens cannot grow memory without bound).
const CACHE_MAX: usize = 10_000;

/// Who is calling: the token's name (the audit actor) and the portal user it acts for.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name.
    pub token_name: String,
    /// Scopes the token holds.
    pub scopes: Vec<String>,
    /// `X-On-Behalf-Of`: the portal user the call is made for.
    pub on_behalf_of: Option<String>,
    /// The peer address (not X-Forwarded-For, which any client can forge).
    pub source_ip: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
}

/// A caller with the `read` scope.
pub struct Reader(pub Caller);
/// A caller with the `write` scope.
pub struct Writer(pub Caller);

/// A resolved token: its name and scopes (None: unknown or revoked).
type Resolved = Option<(String, Vec<String>)>;

/// Token lookups by secret hash, briefly cached so auth costs no query on the hot path.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<Vec<u8>, (Resolved, Instant)>>,
}

impl TokenCache {
    async fn resolve(
        &self,
        state: &AppState,
        secret: &str,
    ) -> Result<Option<(String, Vec<String>)>, ApiError> {
        let hash = tokens::hash_secret(secret);
        if let Some((hit, at)) = self.entries.lock().expect("token cache").get(&hash) {
            if at.elapsed() < CACHE_TTL {
                return Ok(hit.clone());
            }
        }
        let found = match tokens::prefix_of(secret) {
            None => None,
            Some(prefix) => tokens::find_live_by_prefix(&state.pool, prefix)
                .await?
                .filter(|row| constant_time_eq(&row.secret_hash, &hash))
                .map(|row| (row.name, row.scopes)),
        };
        let mut entries = self.entries.lock().expect("token cache");
        if entries.len() >= CACHE_MAX {
            entries.clear();
        }
        entries.insert(hash, (found.clone(), Instant::now()));
        Ok(found)
    }
}

/// Compares two byte strings in time that depends only on their length.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn authenticate(parts: &Parts, state: &AppState, scope: &str) -> Result<Caller, ApiError> {
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token: send `Authorization: Bearer <token>` (create one with `zeroscale token create`)".into()))?;
    let secret = header
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
        })?;
    let (name, scopes) =
        state.tokens.resolve(state, secret).await?.ok_or_else(|| {
            ApiError::Unauthorized("the bearer token is unknown or revoked".into())
        })?;
    if !scopes.iter().any(|s| s == scope) {
        return Err(ApiError::Forbidden(format!(
            "token {name:?} lacks the {scope:?} scope this route needs (it has: {})",
            scopes.join(", ")
        )));
    }
    let on_behalf_of = match parts.headers.get("x-on-behalf-of") {
        None => None,
        Some(v) => {
            let v = v
                .to_str()
                .ok()
                .filter(|s| !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control));
            Some(
                v.ok_or_else(|| {
                    ApiError::BadRequest(
                        "X-On-Behalf-Of must be 1 to 256 printable characters".into(),
                    )
                })?
                .to_string(),
            )
        }
    };
    Ok(Caller {
        token_name: name,
        scopes,
        on_behalf_of,
        source_ip: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string()),
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
    })
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state, "read").await.map(Reader)
    }
}

impl FromRequestParts<AppState> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = authenticate(parts, state, "write").await?;
        if let Some(limiter) = &state.write_limiter {
            if let Err(not_until) = limiter.check_key(&caller.token_name) {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ));
                return Err(ApiError::RateLimited {
                    retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                });
            }
        }
        Ok(Writer(caller))
    }
}

/// Writes per token: a keyed token bucket.
pub type WriteLimiter = governor::DefaultKeyedRateLimiter<String>;

/// A limiter for `per_second` writes per token with bursts of `burst`; None when unlimited.
pub fn write_limiter(per_second: u32, burst: u32) -> Option<WriteLimiter> {
    let rate = std::num::NonZeroU32::new(per_second)?;
    let burst = std::num::NonZeroU32::new(burst.max(1)).expect("at least 1");
    Some(governor::RateLimiter::keyed(
        governor::Quota::per_second(rate).allow_burst(burst),
    ))
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn compares_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}

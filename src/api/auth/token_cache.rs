//! Token lookups: a short-lived cache of resolved and unknown secrets, rate-limited misses,
//! and the listener that clears the cache when any replica revokes a token.

use std::{net::IpAddr, num::NonZeroU32, time::Duration};
use subtle::ConstantTimeEq as _;

use super::AppState;
use crate::{error::ApiError, store::tokens};

/// How long a token lookup is trusted before the database is asked again. A revocation reaches
/// every replica at once through a notification (`store::tokens::revoke`); this bounds it when
/// that notification is missed (a replica's listener reconnecting).
const CACHE_TTL: Duration = Duration::from_secs(5);
/// Valid tokens kept at most.
const VALID_MAX: u64 = 10_000;
/// Unknown or revoked secrets remembered at most, in a cache of their own: a flood of made-up
/// tokens evicts only other made-up tokens, never a valid one.
const UNKNOWN_MAX: u64 = 1_000;

/// A resolved token: its name and scopes.
type Resolved = (String, Vec<String>);

/// Token lookups by secret hash, briefly cached so auth costs no query on the hot path; lookups
/// that reach the database are rate-limited per client address.
pub struct TokenCache {
    /// Bumped by every `clear`: a lookup that started before a revocation does not cache what
    /// it read.
    generation: std::sync::atomic::AtomicU64,
    valid: moka::future::Cache<Vec<u8>, Resolved>,
    unknown: moka::future::Cache<Vec<u8>, ()>,
    /// Database lookups (cache misses) per client address.
    lookups: governor::DefaultKeyedRateLimiter<IpAddr>,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new(LOOKUPS_PER_SECOND, LOOKUP_BURST)
    }
}

/// Database lookups of tokens not in the cache, per client address: a client that keeps
/// sending made-up tokens gets 429 before it reaches the database.
const LOOKUPS_PER_SECOND: u32 = 5;
/// Client addresses the limiter tracks before it forgets those with a full budget again.
const LIMITER_KEYS: usize = 10_000;
const LOOKUP_BURST: u32 = 20;

impl TokenCache {
    /// A cache allowing `per_second` database lookups per client address, in bursts of `burst`.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let quota = governor::Quota::per_second(NonZeroU32::new(per_second.max(1)).expect("> 0"))
            .allow_burst(NonZeroU32::new(burst.max(1)).expect("> 0"));
        Self {
            generation: std::sync::atomic::AtomicU64::new(0),
            valid: moka::future::Cache::builder()
                .max_capacity(VALID_MAX)
                .time_to_live(CACHE_TTL)
                .build(),
            unknown: moka::future::Cache::builder()
                .max_capacity(UNKNOWN_MAX)
                .time_to_live(CACHE_TTL)
                .build(),
            lookups: governor::RateLimiter::keyed(quota),
        }
    }

    /// Forgets every cached lookup (a token was revoked somewhere).
    pub fn clear(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.valid.invalidate_all();
        self.unknown.invalidate_all();
    }

    /// The token `secret` names, from the cache or one lookup shared by concurrent requests;
    /// None for an unknown or revoked token (remembered for a while).
    pub(crate) async fn resolve(
        &self,
        state: &AppState,
        secret: &str,
        client: Option<IpAddr>,
    ) -> Result<Option<Resolved>, ApiError> {
        let hash = tokens::hash_secret(secret);
        if let Some(hit) = self.valid.get(&hash).await {
            return Ok(Some(hit));
        }
        if self.unknown.contains_key(&hash) {
            return Ok(None);
        }
        let Some(prefix) = tokens::prefix_of(secret) else {
            return Ok(None); // not even shaped like a token: no lookup, nothing cached
        };
        // Concurrent requests with the same uncached token share one lookup (and one unit of
        // the client's lookup budget).
        let lookup = self
            .valid
            .try_get_with(hash.clone(), self.look_up(state, prefix, &hash, client))
            .await;
        match lookup {
            Ok(resolved) => Ok(Some(resolved)),
            Err(e) => match e.as_ref() {
                Lookup::Unknown => {
                    self.unknown.insert(hash, ()).await;
                    Ok(None)
                }
                Lookup::Uncached(resolved) => Ok(Some(resolved.clone())),
                Lookup::Limited(secs) => Err(ApiError::RateLimited {
                    retry_after_secs: *secs,
                }),
                Lookup::Database(cause) => Err(ApiError::Database {
                    code: "database_unavailable",
                    detail:
                        "the database is unavailable; nothing was changed; retry after Retry-After",
                    retry_after_secs: 5,
                    cause: cause.clone(),
                }),
            },
        }
    }

    /// One database lookup of a token, within the client's lookup budget. Compares the hash in
    /// constant time; a lookup that raced a revocation is answered but not cached.
    async fn look_up(
        &self,
        state: &AppState,
        prefix: &str,
        hash: &[u8],
        client: Option<IpAddr>,
    ) -> Result<Resolved, Lookup> {
        let generation = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        if let Some(ip) = client {
            // Keep the limiter's memory bounded: forget clients whose budget is full.
            if self.lookups.len() > LIMITER_KEYS {
                self.lookups.retain_recent();
            }
            if let Err(not_until) = self.lookups.check_key(&ip) {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ));
                return Err(Lookup::Limited(wait.as_secs_f64().ceil().max(1.0) as u64));
            }
        }
        let found = tokens::find_live_by_prefix(&state.pool, prefix).await;
        let current = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        match found {
            Ok(Some(row)) if bool::from(row.secret_hash.as_slice().ct_eq(hash)) => {
                if current == generation {
                    Ok((row.name, row.scopes))
                } else {
                    // Read before a revocation landed: answer it, do not cache it.
                    Err(Lookup::Uncached((row.name, row.scopes)))
                }
            }
            Ok(_) => Err(Lookup::Unknown),
            Err(e) => Err(Lookup::Database(ApiError::from(e).to_string_for_log())),
        }
    }
}

/// Why a token lookup gave no token.
#[derive(Debug)]
enum Lookup {
    /// Unknown or revoked.
    Unknown,
    /// Found, but read while a revocation was landing: answered, not cached.
    Uncached(Resolved),
    /// The client is over its lookup budget: retry after this many seconds.
    Limited(u64),
    /// The database failed (the text is for the log only).
    Database(String),
}

/// Clears `cache` whenever a token is revoked (on any replica), and whenever the notification
/// connection comes back (a revocation may have been missed meanwhile). Ends once the cache is
/// gone (the application stopped).
pub fn watch_revocations(pool: sqlx::PgPool, cache: std::sync::Arc<TokenCache>) {
    let cache = std::sync::Arc::downgrade(&cache);
    let alive = cache.clone();
    let clear = move || match cache.upgrade() {
        Some(cache) => {
            cache.clear();
            true
        }
        None => false,
    };
    tokio::spawn(async move {
        let mut first = true;
        loop {
            match crate::store::listener(&pool).await {
                Ok(mut listener) => {
                    if listener.listen(tokens::REVOKED_CHANNEL).await.is_ok() {
                        // Listening again after a gap: a revocation may have been missed.
                        if !std::mem::take(&mut first) && !clear() {
                            return;
                        }
                        loop {
                            let next =
                                tokio::time::timeout(Duration::from_secs(10), listener.try_recv());
                            match next.await {
                                Ok(Ok(_)) if clear() => {}
                                Ok(Ok(_)) => return,
                                Ok(Err(e)) => {
                                    tracing::debug!(error = %e, "token revocation notifications interrupted");
                                    break;
                                }
                                // Quiet: end with the application, else keep listening.
                                Err(_) if alive.strong_count() == 0 => return,
                                Err(_) => {}
                            }
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "cannot listen for token revocations yet"),
            }
            if alive.strong_count() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_up_tokens_never_evict_valid_ones() {
        let cache = TokenCache::default();
        futures::executor::block_on(async {
            cache
                .valid
                .insert(b"valid".to_vec(), ("portal".into(), vec!["read".into()]))
                .await;
            for i in 0..20_000u32 {
                cache.unknown.insert(i.to_be_bytes().to_vec(), ()).await;
            }
            cache.unknown.run_pending_tasks().await;
            cache.valid.run_pending_tasks().await;
        });
        assert!(cache.unknown.entry_count() <= UNKNOWN_MAX);
        assert!(cache.valid.contains_key(&b"valid".to_vec()));
    }

    #[test]
    fn compares_bytes() {}
}

//! Bearer-token authentication and scope checks. `Reader` and `Writer` are extractors: a handler
//! that takes one cannot run without a token holding that scope.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{header, request::Parts},
};

use super::AppState;
use crate::error::ApiError;

mod token_cache;

pub use token_cache::{watch_revocations, TokenCache};

/// Who is calling: the token's name (the audit actor) and the portal user it acts for.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name.
    pub token_name: String,
    /// Scopes the token holds.
    pub scopes: Vec<String>,
    /// `X-On-Behalf-Of`: the portal user the call is made for.
    pub on_behalf_of: Option<String>,
    /// The client's address: the peer, or with a trusted proxy in front, the address that proxy
    /// reports in `X-Forwarded-For` (see [`client_ip`]).
    pub source_ip: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
}

impl Caller {
    /// The caller as the audit log records it, with this request's id.
    pub fn actor(&self) -> crate::store::audit::Actor {
        crate::store::audit::Actor {
            name: self.token_name.clone(),
            on_behalf_of: self.on_behalf_of.clone(),
            source_ip: self.source_ip.clone(),
            user_agent: self.user_agent.clone(),
            request_id: crate::error::current_request_id(),
        }
    }

    /// The caller of this request: token `name` with `scopes`, and the client's address and
    /// User-Agent (the audit log's fields).
    pub fn of_request(
        parts: &Parts,
        state: &AppState,
        name: String,
        scopes: Vec<String>,
        on_behalf_of: Option<String>,
    ) -> Self {
        Caller {
            token_name: name,
            scopes,
            on_behalf_of,
            source_ip: client_ip(parts, &state.trusted_proxies).map(|ip| ip.to_string()),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(512).collect()),
        }
    }

    /// Whether the token holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// A caller with the `read` scope.
pub struct Reader(pub Caller);
/// A caller with the `write` scope.
pub struct Writer(pub Caller);

/// The client's address. The peer's, unless the peer is a trusted proxy
/// (`--trusted-proxy`): then `X-Forwarded-For` is read from the right, past every trusted
/// proxy, and the first address that is not one is the client (anything left of it could be
/// forged by the client itself).
pub fn client_ip(parts: &Parts, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical())?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let mut client = peer;
    let hops = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            Err(_) => break, // garbage from here on: keep the last address a proxy vouched for
        }
    }
    Some(client)
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
    let client = client_ip(parts, &state.trusted_proxies);
    let (name, scopes) = state
        .tokens
        .resolve(state, secret, client)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the bearer token is unknown or revoked".into()))?;
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
    Ok(Caller::of_request(parts, state, name, scopes, on_behalf_of))
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
        check_write_limit(state, &caller.token_name)?;
        Ok(Writer(caller))
    }
}

/// One more write by token `name` under `--write-rate-limit`: a 429 with `Retry-After` when
/// its bucket is empty (the API's `Writer` and the portal's forms share it).
pub fn check_write_limit(state: &AppState, name: &str) -> Result<(), ApiError> {
    if let Some(limiter) = &state.write_limiter {
        if let Err(not_until) = limiter.check_key(&name.to_string()) {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            return Err(ApiError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            });
        }
    }
    Ok(())
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

//! Signing in to the portal with an API token, the session cookie, and CSRF tokens.
//!
//! - `POST /ui/login` takes a token (field `token`), checks it as a bearer token is checked
//!   (same cache, same per-address limit on lookups), and starts a session: a random secret in
//!   an HttpOnly, SameSite=Strict cookie scoped to `/ui`, Secure when the request came over TLS
//!   (a trusted proxy's `X-Forwarded-Proto: https`), expiring after [`SESSION_TTL`]. Only the
//!   secret's SHA-256 is stored.
//! - A session acts as its token: its name is the audit actor, its scopes are read on every
//!   request (a revoked token ends its sessions at once).
//! - Every form that writes carries the session's CSRF token; the sign-in form carries one
//!   bound to a short-lived cookie (double submit), so a page elsewhere cannot sign a browser
//!   in as someone else.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, FromRequestParts, Query, State},
    http::{header, request::Parts, HeaderMap, Method, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Form,
};
use chrono::{TimeDelta, Utc};
use cookie::{Cookie, SameSite};
use maud::html;
use rand::RngCore;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::{html_page, layout, problem_box};
use crate::{
    api::{auth::Caller, AppState},
    error::ApiError,
    store::sessions,
};

/// The session cookie's name.
pub const COOKIE: &str = "zs_session";
/// The sign-in form's CSRF cookie.
const LOGIN_COOKIE: &str = "zs_login";
/// How long a session lasts.
pub const SESSION_TTL: TimeDelta = TimeDelta::hours(8);

/// A signed-in person: the token's caller, the session's CSRF token.
pub struct Session {
    pub caller: Caller,
    pub csrf: String,
    id_hash: Vec<u8>,
}

impl Session {
    /// Whether the session's token may write.
    pub fn can_write(&self) -> bool {
        self.caller.has_scope("write")
    }

    /// Checks a form that writes: its CSRF token, the `write` scope and the per-token write
    /// limit, as the API's `Writer` does.
    pub fn check_write(&self, state: &AppState, csrf: &str) -> Result<(), ApiError> {
        if !same_secret(csrf, &self.csrf) {
            return Err(ApiError::Forbidden(
                "the form's CSRF token does not match this session: reload the page and try again"
                    .into(),
            ));
        }
        if !self.can_write() {
            return Err(ApiError::Forbidden(format!(
                "token {:?} lacks the \"write\" scope this action needs (it has: {})",
                self.caller.token_name,
                self.caller.scopes.join(", ")
            )));
        }
        crate::api::auth::check_write_limit(state, &self.caller.token_name)
    }
}

/// Whether a CSRF token sent matches the expected one (constant time; empty never matches).
fn same_secret(sent: &str, expected: &str) -> bool {
    !expected.is_empty() && bool::from(sent.as_bytes().ct_eq(expected.as_bytes()))
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn hash(secret: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(secret.as_bytes()).to_vec()
}

/// A cookie by name from the request's `Cookie` headers.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v.to_string()))
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// Whether the browser reached us over TLS: the request's own scheme, or a trusted proxy's
/// `X-Forwarded-Proto` (zeroscale itself listens in plain HTTP behind one).
fn over_tls(parts: &Parts, state: &AppState) -> bool {
    if parts.uri.scheme_str() == Some("https") {
        return true;
    }
    let peer_trusted = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical())
        .is_some_and(|ip| state.trusted_proxies.iter().any(|n| n.contains(&ip)));
    peer_trusted
        && parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

fn set_cookie(name: &str, value: String, path: &str, max_age: TimeDelta, secure: bool) -> String {
    Cookie::build((name.to_string(), value))
        .path(path.to_string())
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(max_age.num_seconds()))
        .build()
        .to_string()
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let found = match cookie_value(&parts.headers, COOKIE) {
            None => None,
            Some(secret) => {
                let id_hash = hash(&secret);
                match sessions::find(&state.pool, &id_hash).await {
                    Ok(row) => row.map(|r| (r, id_hash)),
                    Err(e) => return Err(super::error_page(None, ApiError::from(e))),
                }
            }
        };
        let Some((row, id_hash)) = found else {
            if parts.method == Method::GET {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/ui");
                let to = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("next", next)
                    .finish();
                return Err(Redirect::to(&format!("/ui/login?{to}")).into_response());
            }
            return Err(super::error_page(
                None,
                ApiError::Unauthorized(
                    "sign in first: your session has ended or never began".into(),
                ),
            ));
        };
        Ok(Session {
            caller: Caller::of_request(parts, state, row.token_name, row.scopes, None),
            csrf: row.csrf,
            id_hash,
        })
    }
}

/// `?next=` of the sign-in page: where to go after signing in.
#[derive(Debug, Default, Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Only a path of the portal itself (never another origin, `//host` or `/\host`).
fn safe_next(next: Option<&str>) -> String {
    next.filter(|n| {
        n.starts_with("/ui")
            && !n.contains("//")
            && !n.contains('\\')
            && !n.chars().any(char::is_control)
    })
    .unwrap_or("/ui")
    .to_string()
}

fn form_page(
    parts_tls: bool,
    next: &str,
    error: Option<crate::error::Problem>,
    status: StatusCode,
) -> Response {
    let csrf = random_hex();
    let markup = layout(
        "Sign in",
        None,
        false,
        html! {
            div.narrow {
                h1 { "Sign in to zeroscale" }
                @if let Some(p) = &error { (problem_box(p)) }
                form.card method="post" action="/ui/login" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="next" value=(next);
                    label for="token" { "API token" }
                    input #token type="password" name="token" required autocomplete="current-password"
                        autofocus spellcheck="false" placeholder="zs_…";
                    p.muted { "A token from " code { "zeroscale token create --name <you> --scopes read,write" } ". A read-only token shows the fleet without buttons that change it." }
                    button.primary type="submit" { "Sign in" }
                }
            }
        },
    );
    let mut response = html_page(status, markup);
    if let Ok(v) = set_cookie(
        LOGIN_COOKIE,
        csrf,
        "/ui/login",
        TimeDelta::minutes(30),
        parts_tls,
    )
    .parse()
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// `GET /ui/login`.
pub async fn login_form(
    State(state): State<AppState>,
    parts: Parts,
    Query(q): Query<Next>,
) -> Response {
    form_page(
        over_tls(&parts, &state),
        &safe_next(q.next.as_deref()),
        None,
        StatusCode::OK,
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

/// `POST /ui/login`: a token in, a session cookie out.
pub async fn login(
    State(state): State<AppState>,
    parts: Parts,
    Form(f): Form<LoginForm>,
) -> Response {
    let tls = over_tls(&parts, &state);
    let next = safe_next(f.next.as_deref());
    let fail = |e: ApiError| form_page(tls, &next, Some(super::log_and_describe(&e)), e.status());
    let expected = cookie_value(&parts.headers, LOGIN_COOKIE).unwrap_or_default();
    if !same_secret(&f.csrf, &expected) {
        return fail(ApiError::Forbidden(
            "the sign-in form expired or came from another page: sign in from this page".into(),
        ));
    }
    let client = crate::api::auth::client_ip(&parts, &state.trusted_proxies);
    let resolved = match state.tokens.resolve(&state, f.token.trim(), client).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let Some((name, scopes)) = resolved else {
        return fail(ApiError::Unauthorized(
            "that token is unknown or revoked".into(),
        ));
    };
    if !scopes.iter().any(|s| s == "read") {
        return fail(ApiError::Forbidden(format!(
            "token {name:?} lacks the \"read\" scope the portal needs"
        )));
    }
    let secret = random_hex();
    let expires = Utc::now() + SESSION_TTL;
    match sessions::create(&state.pool, &hash(&secret), &name, &random_hex(), expires).await {
        Ok(true) => {}
        Ok(false) => {
            return fail(ApiError::Unauthorized(
                "that token is unknown or revoked".into(),
            ))
        }
        Err(e) => return fail(ApiError::from(e)),
    }
    tracing::info!(token = %name, "portal sign-in");
    let mut response = Redirect::to(&next).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = set_cookie(COOKIE, secret, "/ui", SESSION_TTL, tls).parse() {
        headers.append(header::SET_COOKIE, v);
    }
    if let Ok(v) = set_cookie(
        LOGIN_COOKIE,
        String::new(),
        "/ui/login",
        TimeDelta::zero(),
        tls,
    )
    .parse()
    {
        headers.append(header::SET_COOKIE, v);
    }
    response
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/logout`: ends the session (CSRF-checked, so another page cannot sign you out).
pub async fn logout(
    State(state): State<AppState>,
    parts: Parts,
    session: Session,
    Form(f): Form<LogoutForm>,
) -> Response {
    if !same_secret(&f.csrf, &session.csrf) {
        return super::error_page(
            Some(&session),
            ApiError::Forbidden("the form's CSRF token does not match this session".into()),
        );
    }
    if let Err(e) = sessions::delete(&state.pool, &session.id_hash).await {
        return super::error_page(Some(&session), ApiError::from(e));
    }
    let mut response = Redirect::to("/ui/login").into_response();
    let tls = over_tls(&parts, &state);
    if let Ok(v) = set_cookie(COOKIE, String::new(), "/ui", TimeDelta::zero(), tls).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

//! The portal: server-rendered pages under `/ui` for people (the fleet, one target, sign-in).
//! Pages are HTML written with maud (escaped by construction); every asset is served from here,
//! and a strict Content-Security-Policy forbids anything else (no inline script or style, no
//! other origin). Plain forms and links do everything; `app.js` only adds local times on hover
//! and a refresh while something is changing. Writes go through the same functions as the API
//! (`targets`, `controls`), so the API's rules, audit and idempotency hold here too; a session
//! acts as the token it signed in with.

mod actions;
mod data;
mod fleet;
mod fleet_page;
mod forms;
mod session;
mod svg;
mod target;

use axum::{
    http::{header, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};

use super::AppState;
use crate::error::ApiError;

pub use session::Session;

/// What the portal's pages and Swagger UI are allowed to load: only this origin.
pub const CSP: &str =
    "default-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// `/docs`'s policy: the portal's, plus what Swagger UI's bundle needs: the one `<style>`
/// element it inserts (by its hash, for the version Cargo.lock pins; the browser check reports
/// a violation if an upgrade changes it) and its icons, which its stylesheet carries as `data:`
/// SVG images. Nothing from elsewhere, no other inline code.
pub const DOCS_CSP: &str = "default-src 'self'; style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

const ICON: &str = include_str!("../../../assets/ui/icon.svg");
const STYLE: &str = include_str!("../../../assets/ui/style.css");
const SCRIPT: &str = include_str!("../../../assets/ui/app.js");

/// The portal's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(fleet_page::page))
        .route("/ui/", get(fleet_page::page))
        .route("/ui/login", get(session::login_form).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route(
            "/ui/assets/style.css",
            get(|| asset(STYLE, "text/css; charset=utf-8")),
        )
        .route(
            "/ui/assets/app.js",
            get(|| asset(SCRIPT, "text/javascript; charset=utf-8")),
        )
        .route("/ui/assets/icon.svg", get(|| asset(ICON, "image/svg+xml")))
        .route("/ui/components/{name}", get(target::component))
        .route("/ui/components/{name}/{action}", post(actions::component))
        .route(
            "/ui/endpoints/{endpoint}/variants/{variant}",
            get(target::variant),
        )
        .route(
            "/ui/endpoints/{endpoint}/variants/{variant}/{action}",
            post(actions::variant),
        )
        .layer(middleware::from_fn(headers))
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Security headers on every portal response: the CSP, no sniffing, no framing, no referrer
/// to other origins, and pages not cached (they show live state and carry CSRF tokens).
pub async fn headers(req: axum::extract::Request, next: Next) -> Response {
    let policy = if req.uri().path().starts_with("/docs") {
        DOCS_CSP
    } else {
        CSP
    };
    // Defence in depth beside the CSRF tokens and SameSite=Strict: a browser says where a form
    // post comes from (Fetch Metadata), and a post from another site is refused unread.
    let cross_site = req.method() == axum::http::Method::POST
        && req
            .headers()
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() != b"same-origin");
    let mut response = if cross_site {
        error_page(
            None,
            ApiError::Forbidden(
                "a form posted from another site was refused: use zeroscale's own pages".into(),
            ),
        )
    } else {
        next.run(req).await
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if h.get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"))
    {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The page shell: header with navigation and who is signed in, then `body`.
fn layout(title: &str, who: Option<&Session>, refresh: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · zeroscale" }
                link rel="icon" href="/ui/assets/icon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/ui/assets/style.css";
                script src="/ui/assets/app.js" defer {}
            }
            body data-refresh=[refresh.then_some("5")] {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    nav aria-label="Main" {
                        a.brand href="/ui" { "zeroscale" }
                        a href="/ui" { "Fleet" }
                        a href="/docs/" { "API docs" }
                    }
                    @if let Some(s) = who {
                        div.who {
                            span { "Signed in as " strong { (s.caller.token_name) } " (" (s.caller.scopes.join(", ")) ")" }
                            form method="post" action="/ui/logout" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

/// An HTML page with a status.
fn html_page(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// An error as a page: the API's problem detail (never SQL, SDK or debug text: a 500's cause
/// goes to the log with the request id, as the API does).
fn error_page(who: Option<&Session>, e: ApiError) -> Response {
    let status = e.status();
    let problem = log_and_describe(&e);
    let page = html_page(
        status,
        layout(
            &problem.title,
            who,
            false,
            html! {
                h1 { (problem.title) }
                (problem_box(&problem))
                p { a href="/ui" { "Back to the fleet" } }
            },
        ),
    );
    with_retry_after(page, &e)
}

/// A 429's `Retry-After`, on a page as on the API's answers.
fn with_retry_after(mut page: Response, e: &ApiError) -> Response {
    if let ApiError::RateLimited { retry_after_secs } = e {
        page.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
    }
    page
}

/// The problem document of an error, logging a 500's cause as `ApiError`'s response does.
fn log_and_describe(e: &ApiError) -> crate::error::Problem {
    if let ApiError::Internal(cause) = e {
        tracing::error!(error = format!("{cause:#}"), "internal error (portal)");
    }
    e.to_problem()
}

/// A problem, shown in words: the detail, each field, and the request id.
fn problem_box(p: &crate::error::Problem) -> Markup {
    html! {
        div.problem role="alert" {
            p { strong { (p.title) } " — " (p.detail) }
            @if !p.errors.is_empty() {
                ul { @for e in &p.errors { li { code { (e.field) } ": " (e.message) } } }
            }
            @if let Some(id) = &p.request_id { p.muted { "Request id " code { (id) } } }
        }
    }
}

/// A time in UTC; `app.js` adds the reader's local time as its tooltip.
fn time(t: DateTime<Utc>) -> Markup {
    html! { time datetime=(t.to_rfc3339()) title=(t.format("%Y-%m-%d %H:%M:%S UTC")) { (t.format("%Y-%m-%d %H:%M UTC")) } }
}

/// A duration in words: `45 s`, `12 min`, `3.5 h`, `2.1 d`.
fn duration(seconds: f64) -> String {
    match seconds {
        s if s < 90.0 => format!("{s:.0} s"),
        s if s < 5400.0 => format!("{:.0} min", s / 60.0),
        s if s < 172_800.0 => format!("{:.1} h", s / 3600.0),
        s => format!("{:.1} d", s / 86_400.0),
    }
}

/// Money, to the cent.
fn money(v: f64, currency: &str) -> String {
    match currency {
        "USD" => format!("${v:.2}"),
        c => format!("{v:.2} {c}"),
    }
}

/// A target's labels as chips.
fn labels(spec: &serde_json::Value) -> Markup {
    html! {
        @if let Some(map) = spec["labels"].as_object() {
            @for (k, v) in map { span.label { (k) "=" (v.as_str().unwrap_or_default()) } " " }
        }
    }
}

/// Whether a page showing this target should refresh itself: something is changing.
fn changing(phase: &str, meaning: data::Meaning) -> bool {
    meaning == data::Meaning::Waking || matches!(phase, "pending" | "applying")
}

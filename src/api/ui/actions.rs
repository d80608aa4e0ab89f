//! The portal's writes: one form per control, posted to `<target page>/<action>`. Each checks
//! the session's CSRF token, the write scope and the write limit, then calls the same function
//! as the API route (so validation, preflights, If-Match, Idempotency-Key and the audit log
//! are the API's), and answers 303 to the target page, or the page again with the problem.

use axum::{
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Form,
};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::{html_page, target, Session};
use crate::{
    api::{
        controls::{self, KeepWarmRequest, Lift, PauseRequest, WakeRequest},
        extract::parse_json,
        targets::{self as api_targets, EnableQuery},
        AppState,
    },
    domain::{
        ComponentName, ComponentSpec, EndpointName, TargetRef, TargetSpec, VariantName, VariantSpec,
    },
    error::ApiError,
};

/// Every field any control's form sends (each action reads its own).
#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    /// A key made when the form was drawn: a double submit replays instead of acting twice.
    idem: Option<String>,
    /// The version the form was drawn from (If-Match of an edit).
    version: Option<i32>,
    copies: Option<String>,
    keep_warm_for: Option<String>,
    until: Option<String>,
    reason: Option<String>,
    spec: Option<String>,
    intent: Option<String>,
    confirm: Option<String>,
}

/// `POST /ui/components/{name}/{action}`.
pub async fn component(
    State(state): State<AppState>,
    session: Session,
    Path((name, action)): Path<(String, String)>,
    Form(f): Form<ActionForm>,
) -> Response {
    let target = ComponentName::parse(&name)
        .map(TargetRef::Component)
        .map_err(|m| ApiError::invalid_field("name", m));
    act(&state, &session, target, &action, f).await
}

/// `POST /ui/endpoints/{endpoint}/variants/{variant}/{action}`.
pub async fn variant(
    State(state): State<AppState>,
    session: Session,
    Path((endpoint, variant, action)): Path<(String, String, String)>,
    Form(f): Form<ActionForm>,
) -> Response {
    let target = EndpointName::parse(&endpoint)
        .map_err(|m| ApiError::invalid_field("endpoint", m))
        .and_then(|endpoint| {
            VariantName::parse(&variant)
                .map(|variant| TargetRef::EndpointVariant { endpoint, variant })
                .map_err(|m| ApiError::invalid_field("variant", m))
        });
    act(&state, &session, target, &action, f).await
}

fn optional(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn copies(f: &ActionForm) -> Result<Option<u32>, ApiError> {
    optional(&f.copies)
        .map(|c| {
            c.parse::<u32>().map_err(|_| {
                ApiError::invalid_field("copies", "must be a whole number from 1 to 1000")
            })
        })
        .transpose()
}

/// A time from the form: RFC 3339, or the `YYYY-MM-DDTHH:MM` of a datetime-local input, read
/// as UTC (the label says so).
fn until(f: &ActionForm) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(v) = optional(&f.until) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|fmt| NaiveDateTime::parse_from_str(v, fmt).ok())
        .map(|t| Some(t.and_utc()))
        .ok_or_else(|| {
            ApiError::invalid_field(
                "until",
                "must be a date and time in UTC, such as 2026-12-01T18:00",
            )
        })
}

/// The headers the API call gets: the form's Idempotency-Key, and If-Match for an edit.
fn headers(f: &ActionForm, if_match: bool) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(v) = optional(&f.idem).and_then(|k| HeaderValue::from_str(k).ok()) {
        h.insert("idempotency-key", v);
    }
    if let Some(v) = f
        .version
        .filter(|_| if_match)
        .and_then(|v| HeaderValue::from_str(&format!("\"{v}\"")).ok())
    {
        h.insert("if-match", v);
    }
    h
}

async fn act(
    state: &AppState,
    session: &Session,
    target: Result<TargetRef, ApiError>,
    action: &str,
    f: ActionForm,
) -> Response {
    let target = match target {
        Ok(t) => t,
        Err(e) => return super::error_page(Some(session), e),
    };
    if let Err(e) = session.check_write(state, &f.csrf) {
        return super::error_page(Some(session), e);
    }
    let caller = &session.caller;
    let q = || EnableQuery { dry_run: None };
    let result = match action {
        "wake" => match copies(&f) {
            Ok(c) => controls::wake(state, caller, target.clone(), q(), &headers(&f, false), WakeRequest { copies: c, keep_warm_for: optional(&f.keep_warm_for).map(str::to_string) }).await,
            Err(e) => Err(e),
        },
        "keep-warm" => match (copies(&f), until(&f)) {
            (Ok(c), Ok(u)) => controls::keep_warm(state, caller, target.clone(), q(), &headers(&f, false), KeepWarmRequest { until: u, copies: c, reason: optional(&f.reason).map(str::to_string) }).await,
            (Err(e), _) | (_, Err(e)) => Err(e),
        },
        "unpin" => controls::lift(state, caller, target.clone(), q(), &headers(&f, false), Lift::Pin).await,
        "pause" => match until(&f) {
            Ok(u) => controls::pause(state, caller, target.clone(), q(), &headers(&f, false), PauseRequest { until: u, reason: optional(&f.reason).map(str::to_string) }).await,
            Err(e) => Err(e),
        },
        "resume" => controls::lift(state, caller, target.clone(), q(), &headers(&f, false), Lift::Pause).await,
        "reconcile" => api_targets::reconcile(state, caller, &target).await,
        "disable" if f.confirm.as_deref() == Some("yes") => api_targets::disable(state, caller, target.clone(), &headers(&f, false)).await,
        "disable" => Err(ApiError::invalid_field("confirm", "tick the box to confirm turning scale-to-zero off")),
        "edit" => return edit(state, session, &target, f).await,
        _ => Err(ApiError::NotFound(format!("no action {action:?}: the portal's actions are wake, keep-warm, unpin, pause, resume, reconcile, disable and edit"))),
    };
    after(state, session, &target, action, result, Default::default()).await
}

/// A 303 to the target page after a write that was accepted; the page again, with the problem
/// and its status, when it was not.
async fn after(
    state: &AppState,
    session: &Session,
    t: &TargetRef,
    action: &str,
    result: Result<Response, ApiError>,
    extra: target::Extra,
) -> Response {
    match result {
        Ok(r) if r.status() == StatusCode::ACCEPTED => {
            let op = r
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.strip_prefix("/operations/"))
                .and_then(|id| id.parse::<i64>().ok());
            let mut to = format!("/ui{}?done={action}", t.api_path());
            if let Some(op) = op {
                to.push_str(&format!("&op={op}"));
            }
            Redirect::to(&to).into_response()
        }
        Ok(_) => Redirect::to(&format!("/ui{}?done=same", t.api_path())).into_response(),
        Err(e) => {
            let status = e.status();
            let extra = target::Extra {
                problem: Some(super::log_and_describe(&e)),
                ..extra
            };
            match target::render(state, session, t, &Default::default(), extra).await {
                Ok(m) => super::with_retry_after(html_page(status, m), &e),
                Err(e) => super::error_page(Some(session), e),
            }
        }
    }
}

/// A 412 when the target's version is no longer `drawn` (None: no check asked for).
async fn drawn_from_current(
    state: &AppState,
    t: &TargetRef,
    drawn: Option<i32>,
) -> Result<(), ApiError> {
    let Some(drawn) = drawn else { return Ok(()) };
    let current = crate::store::targets::get(&state.pool, t.kind(), &t.name())
        .await?
        .map(|r| r.version);
    match current {
        Some(v) if v != drawn => Err(ApiError::PreconditionFailed(format!(
            "the target changed since this form was drawn (version {drawn}; it is now version {v}): reload the page and edit again"
        ))),
        _ => Ok(()),
    }
}

/// An edit: the spec as typed; a dry run first (the page with the AWS calls and a confirm
/// button), then the write with If-Match on the version the form was drawn from.
async fn edit(state: &AppState, session: &Session, t: &TargetRef, f: ActionForm) -> Response {
    let text = f.spec.clone().unwrap_or_default();
    let spec = if text.trim().is_empty() {
        "{}".to_string()
    } else {
        text.clone()
    };
    let parsed = match t {
        TargetRef::Component(_) => {
            parse_json::<ComponentSpec>(spec.as_bytes()).map(TargetSpec::Component)
        }
        TargetRef::EndpointVariant { .. } => {
            parse_json::<VariantSpec>(spec.as_bytes()).map(TargetSpec::Variant)
        }
    };
    let keep = target::Extra {
        spec_text: Some(text.clone()),
        ..Default::default()
    };
    let spec = match parsed {
        Ok(s) => s,
        Err(e) => return after(state, session, t, "edit", Err(e), keep).await,
    };
    let dry = f.intent.as_deref() != Some("apply");
    if dry {
        // The dry run is of the version the form was drawn from: a change made since gets the
        // 412 the confirm would get, before anyone confirms a plan drawn on stale ground.
        if let Err(e) = drawn_from_current(state, t, f.version).await {
            return after(state, session, t, "edit", Err(e), keep).await;
        }
    }
    let result = api_targets::enable(
        state,
        &session.caller,
        t.clone(),
        spec,
        EnableQuery { dry_run: Some(dry) },
        &headers(&f, !dry),
    )
    .await;
    if !dry {
        return after(state, session, t, "edit", result, keep).await;
    }
    match result {
        Ok(r) => {
            let body = axum::body::to_bytes(r.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            let verdict: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let extra = target::Extra {
                dry_run: Some(verdict),
                spec_text: Some(text),
                ..Default::default()
            };
            match target::render(state, session, t, &Default::default(), extra).await {
                Ok(m) => html_page(StatusCode::OK, m),
                Err(e) => super::error_page(Some(session), e),
            }
        }
        Err(e) => after(state, session, t, "edit", Err(e), keep).await,
    }
}

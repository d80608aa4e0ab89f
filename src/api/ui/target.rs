//! `/ui/components/{name}` and `/ui/endpoints/{e}/variants/{v}`: one target. Its capacity over
//! 24 hours or 7 days with wakes, failed wakes, schedule firings and pauses marked; its
//! conditions in words; the buttons (wake, keep-warm, pause/resume, reconcile, disable) and
//! the spec as an edit form whose dry run shows the AWS calls before you confirm; its recent
//! events and its audit trail.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::Response,
};
use chrono::{TimeDelta, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use super::{
    data::{self, Ev, History},
    duration, html_page, layout, problem_box, svg, time, Session,
};
use crate::{
    api::{kind_routes::KindPath, targets as api_targets, views::Condition, AppState},
    domain::TargetRef,
    error::{ApiError, Problem},
    store::{audit, events, targets},
};

/// `?range=24h|7d`, and what the last action did (after its redirect).
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    range: Option<String>,
    done: Option<String>,
    op: Option<i64>,
}

/// What a POST adds to the page it renders again: a problem, a dry run, the spec as typed.
#[derive(Default)]
pub struct Extra {
    pub problem: Option<Problem>,
    pub dry_run: Option<Value>,
    pub spec_text: Option<String>,
}

/// `GET /ui/components/{name}`.
pub async fn component(
    State(state): State<AppState>,
    session: Session,
    Path(path): Path<crate::api::kind_routes::ComponentPath>,
    Query(q): Query<PageQuery>,
) -> Response {
    show(&state, &session, path.target(), &q).await
}

/// `GET /ui/endpoints/{endpoint}/variants/{variant}`.
pub async fn variant(
    State(state): State<AppState>,
    session: Session,
    Path(path): Path<crate::api::kind_routes::VariantPath>,
    Query(q): Query<PageQuery>,
) -> Response {
    show(&state, &session, path.target(), &q).await
}

async fn show(
    state: &AppState,
    session: &Session,
    target: Result<TargetRef, ApiError>,
    q: &PageQuery,
) -> Response {
    let result = match target {
        Ok(t) => render(state, session, &t, q, Extra::default()).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(m) => html_page(StatusCode::OK, m),
        Err(e) => super::error_page(Some(session), e),
    }
}

/// The notice after a redirect: what was queued, or that nothing changed.
fn notice(q: &PageQuery) -> Option<Markup> {
    let what = match q.done.as_deref()? {
        "wake" => "Wake queued",
        "keep-warm" => "Keep-warm pin set",
        "unpin" => "Keep-warm pin ended",
        "pause" => "Pause queued",
        "resume" => "Resume queued",
        "reconcile" => "Reconcile queued",
        "disable" => "Scale-to-zero turned off",
        "edit" => "New version accepted",
        "same" => {
            return Some(
                html! { div.notice role="status" { "Nothing to change: the target is already in that state." } },
            )
        }
        _ => return None,
    };
    Some(html! {
        div.notice role="status" {
            (what)
            @if let Some(op) = q.op { ": operation " (op) " runs it (" code { "GET /operations/" (op) } " with a token). This page refreshes while it does." }
        }
    })
}

/// The whole page of one target.
pub async fn render(
    state: &AppState,
    session: &Session,
    target: &TargetRef,
    q: &PageQuery,
    extra: Extra,
) -> Result<Markup, ApiError> {
    let Some(row) = targets::get(&state.pool, target.kind(), &target.name()).await? else {
        return Err(api_targets::not_managed(state, target).await);
    };
    let now = Utc::now();
    let span = match q.range.as_deref() {
        None | Some("24h") => TimeDelta::hours(24),
        Some("7d") => TimeDelta::days(7),
        Some(_) => return Err(ApiError::invalid_field("range", "must be 24h or 7d")),
    };
    let mut conn = state.pool.acquire().await?;
    let before = events::capacity_before(&mut conn, &[row.id], now - span).await?;
    let evs: Vec<Ev> = events::capacity_since(&mut conn, &[row.id], now - span)
        .await?
        .into_iter()
        .map(|(_, kind, at, details)| Ev { kind, at, details })
        .collect();
    let recent = events::newest(&mut conn, row.id, now - span, 100).await?;
    drop(conn);
    // AWS's clock may run ahead of ours: the chart ends at the newest event when it is later.
    let end = evs.iter().map(|e| e.at).max().unwrap_or(now).max(now);
    let history = History::new(before.into_iter().next().map(|(_, k, d)| (k, d)), evs);
    let meaning = data::meaning(&row, &history, now);
    let pause = data::pause(&row, now);
    let pin = data::pin(&row, now);
    let steps = history.steps(end - span, end);
    let pauses = history.pauses(end - span, end, pause.is_some());
    let trail = audit::list(
        &state.pool,
        &audit::AuditFilter {
            target_kind: Some(target.kind().to_string()),
            target_name: Some(target.name()),
            limit: 50,
            ..Default::default()
        },
    )
    .await?;
    let conditions: Vec<Condition> =
        serde_json::from_value(row.conditions.clone()).unwrap_or_default();
    let ui = format!("/ui{}", target.api_path());
    let title = match target {
        TargetRef::Component(n) => n.to_string(),
        TargetRef::EndpointVariant { endpoint, variant } => format!("{endpoint} / {variant}"),
    };
    let refresh =
        extra.problem.is_none() && extra.dry_run.is_none() && super::changing(&row.phase, meaning);
    Ok(layout(
        &title,
        Some(session),
        refresh,
        html! {
            nav.crumbs aria-label="Breadcrumb" { a href="/ui" { "Fleet" } " / " span { (title) } }
            h1 { (title) " " span.muted.kind { @if matches!(target, TargetRef::Component(_)) { "inference component" } @else { "async endpoint variant" } } }
            p.status-line {
                span class=(format!("badge big {}", meaning.class())) { (meaning.word()) }
                " "
                @if let Some(c) = history.now().capacity() { "capacity " strong { (c) } " · " }
                "phase " span class=(format!("phase {}", row.phase)) { (row.phase) }
                " · version " (row.version)
                @if row.spec["labels"].as_object().is_some_and(|m| !m.is_empty()) { " · " (super::labels(&row.spec)) }
            }
            @if let Some(p) = &pause { p.hold { "Paused by " strong { (p.by) } " until " (time(p.until)) @if let Some(r) = &p.reason { ": " (r) } } }
            @if let Some(k) = &pin { p.hold { "Kept warm (" (k.copies) ") by " strong { (k.by) } " until " (time(k.until)) @if let Some(r) = &k.reason { ": " (r) } } }
            @if let Some(n) = notice(q) { (n) }
            @if let Some(p) = &extra.problem { (problem_box(p)) }
            @if let Some(d) = &extra.dry_run { (dry_run_box(d, &ui, &row, session, extra.spec_text.as_deref().unwrap_or_default())) }

            section aria-labelledby="cap-h" {
                h2 #cap-h { "Capacity" }
                p.range { "Show: "
                    @for (v, l) in [("24h", "24 hours"), ("7d", "7 days")] {
                        @if span == TimeDelta::hours(24) && v == "24h" || span == TimeDelta::days(7) && v == "7d" {
                            strong aria-current="true" { (l) }
                        } @else { a href=(format!("{ui}?range={v}")) { (l) } }
                        " "
                    }
                }
                figure.chart-wrap {
                    (svg::chart(&steps, &history.events, &pauses, end))
                    figcaption.legend {
                        span.lg.cap { "capacity" } span.lg.wake { "wake started" } span.lg.in-service { "in service" }
                        span.lg.failed { "wake failed" } span.lg.schedule { "schedule fired" } span.lg.pause-band { "paused" }
                        " Times in UTC, up to " (time(end)) "."
                    }
                }
            }

            section aria-labelledby="cond-h" {
                h2 #cond-h { "Conditions" }
                @if conditions.is_empty() { p.muted { "None recorded yet: the first job has not run." } }
                ul.conditions {
                    @for c in &conditions {
                        li class=(format!("cond {}", if c.status == "True" { "ok" } else { "no" })) {
                            strong { (words(&c.r#type)) } " " span.muted { (if c.status == "True" { "yes" } else if c.status == "False" { "no" } else { "unknown" }) " · " (words(&c.reason)) " · since " (time(c.last_transition_time)) }
                            @if !c.message.is_empty() { div.msg { (c.message) } }
                        }
                    }
                }
                @if let Some(w) = history.last_wake().filter(|w| w.failure.is_some()) {
                    div.problem { strong { "Last wake failed " } (time(w.at)) div.msg { "AWS said: " (w.failure.as_deref().unwrap_or_default()) } }
                }
            }

            @if session.can_write() {
                (super::forms::forms(&ui, &row, session, pin.is_some(), pause.is_some()))
            } @else {
                section aria-labelledby="act-h" { h2 #act-h { "Actions" } p.muted { "Your token is read-only: sign in with a token that has the write scope to wake, pause or change this target." } }
            }

            section aria-labelledby="spec-h" {
                h2 #spec-h { "Desired spec" }
                @if session.can_write() {
                    (super::forms::edit_form(&ui, &row, session, extra.spec_text.as_deref()))
                } @else {
                    pre.spec { (super::forms::editable_spec(&row)) }
                }
            }

            section aria-labelledby="ev-h" {
                h2 #ev-h { "Events" }
                @if recent.is_empty() {
                p.muted { "Nothing on the timeline in this range yet. Events appear after the next observation pass (every "
                    code { "--drift-interval" } "); a wake, a pause or an edit above makes some." }
            } @else {
                    div.table-wrap { table {
                        thead { tr { th scope="col" { "When" } th scope="col" { "What" } th scope="col" { "Details" } } }
                        tbody { @for (kind, at, details) in &recent { tr { td { (time(*at)) } td { (words(kind)) } td { (event_details(details)) } } } }
                    } }
                }
            }

            section aria-labelledby="audit-h" {
                h2 #audit-h { "Audit trail" }
                @if trail.is_empty() { p.muted { "No changes recorded." } } @else {
                    div.table-wrap { table {
                        thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Action" } th scope="col" { "Version" } th scope="col" { "Outcome" } } }
                        tbody { @for a in &trail { tr {
                            td { (time(a.at)) } td { (a.actor) @if let Some(o) = &a.on_behalf_of { " for " (o) } }
                            td { (a.action) } td { @if let Some(v) = a.version { (v) } }
                            td { (a.outcome) @if let Some(e) = &a.error { div.msg { (e) } } }
                        } } }
                    } }
                }
            }
        },
    ))
}

/// `AlarmArmed` → "alarm armed", `wake_failed` → "wake failed".
fn words(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c == '_' {
            out.push(' ');
        } else if c.is_uppercase() && i > 0 {
            out.push(' ');
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

fn event_details(d: &Value) -> Markup {
    html! {
        @if let Some(s) = d["wake_seconds"].as_f64() { "took " (duration(s)) " " }
        @if let Some(s) = d["at_zero_seconds"].as_f64() { "after " (duration(s)) " at zero " }
        @if let Some(r) = d["reason"].as_str() { "(" (r) ") " }
        @if let Some(m) = d["message"].as_str() { span.msg { (m) } }
        @if let Some(s) = d["scheduled_action"].as_str() { code { (s) } }
        @if let Some(b) = d["by"].as_str() { "by " (b) }
    }
}

/// The dry run of an edit: the verdict, warnings and the exact AWS calls, then a form that
/// confirms the same spec (and version).
fn dry_run_box(
    d: &Value,
    ui: &str,
    row: &targets::TargetRow,
    session: &Session,
    spec: &str,
) -> Markup {
    let verdict = d["verdict"].as_str().unwrap_or("unknown");
    let steps = d["plan"].as_array().cloned().unwrap_or_default();
    html! {
        section.dry-run aria-labelledby="dry-h" {
            h2 #dry-h { "Dry run: " (verdict) }
            @if let Some(m) = d["message"].as_str() { p.msg { (m) } }
            @if let Some(w) = d["warnings"].as_array().filter(|w| !w.is_empty()) {
                ul { @for x in w { li { (x["message"].as_str().map(str::to_string).unwrap_or_else(|| x.to_string())) } } }
            }
            @if steps.is_empty() { p { "No AWS call: AWS already matches this spec." } } @else {
                p { "Confirming makes these AWS calls, in order:" }
                ol.calls { @for s in &steps {
                    @let mut params = s.clone();
                    @let call = params.as_object_mut().and_then(|o| o.remove("call")).and_then(|c| c.as_str().map(str::to_string)).unwrap_or_default();
                    li { code.call { (call) } pre { (serde_json::to_string_pretty(&params).unwrap_or_default()) } }
                } }
            }
            @if verdict == "ok" || verdict == "waiting" {
                form method="post" action=(format!("{ui}/edit")) {
                    (super::forms::hidden(session, Some(row.version)))
                    input type="hidden" name="spec" value=(spec);
                    input type="hidden" name="intent" value="apply";
                    button.primary type="submit" { "Confirm: apply as version " (row.version + 1) }
                    " " a href=(ui) { "Cancel" }
                }
            }
        }
    }
}

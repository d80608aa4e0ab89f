//! `/ui`: the fleet page. The summary on top, a filter form (GET: every view is a link), the
//! table with sortable columns, and paging; the figures come from `fleet`.

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use maud::{html, Markup};

use super::{
    data::Meaning,
    duration,
    fleet::{collect, sort_rows, FleetQuery, Row, Summary, CURSOR_SCOPE},
    html_page, layout, money, svg, time, Session,
};
use crate::{
    api::{extract, AppState},
    domain::TargetRef,
    error::ApiError,
};

/// `GET /ui`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<FleetQuery>,
) -> Response {
    match render(&state, &session, &q).await {
        Ok(m) => html_page(StatusCode::OK, m),
        Err(e) => super::error_page(Some(&session), e),
    }
}

async fn render(state: &AppState, session: &Session, q: &FleetQuery) -> Result<Markup, ApiError> {
    let sort = q
        .sort
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "name".into());
    let limit = match q.limit.as_deref().filter(|l| !l.is_empty()) {
        None => 50,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=500).contains(l))
            .ok_or_else(|| {
                ApiError::invalid_field("limit", "must be a whole number from 1 to 500")
            })?,
    } as usize;
    let offset: usize =
        extract::parse_cursor(CURSOR_SCOPE, q.cursor.clone(), |_: &usize| true)?.unwrap_or(0);
    let (mut rows, summary) = collect(state, q).await?;
    sort_rows(&mut rows, &sort)?;
    let total = rows.len();
    // A cursor past the end (the fleet shrank since the link was made): the last page.
    let offset = if offset >= total {
        total.saturating_sub(1) / limit * limit
    } else {
        offset
    };
    let page: Vec<&Row> = rows.iter().skip(offset).take(limit).collect();
    let next = (offset + limit < total)
        .then(|| extract::cursor(CURSOR_SCOPE, &(offset + limit).to_string()));
    let filtered = [&q.kind, &q.phase, &q.state, &q.label]
        .iter()
        .any(|v| v.as_deref().is_some_and(|s| !s.is_empty()));
    let link = |sort: &str, cursor: Option<&str>| {
        let mut u = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("kind", &q.kind),
            ("phase", &q.phase),
            ("state", &q.state),
            ("label", &q.label),
            ("limit", &q.limit),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                u.append_pair(k, v);
            }
        }
        u.append_pair("sort", sort);
        if let Some(c) = cursor {
            u.append_pair("cursor", c);
        }
        format!("/ui?{}", u.finish())
    };
    let header = |key: &str, label: &str| {
        let (next_sort, aria) = if sort == key {
            (format!("-{key}"), Some("ascending"))
        } else if sort == format!("-{key}") {
            (key.to_string(), Some("descending"))
        } else {
            (key.to_string(), None)
        };
        html! { th scope="col" aria-sort=[aria] { a href=(link(&next_sort, None)) { (label) @if let Some(a) = aria { span.arrow aria-hidden="true" { @if a == "ascending" { " ▲" } @else { " ▼" } } } } } }
    };
    let refresh = rows
        .iter()
        .any(|r| super::changing(&r.row.phase, r.meaning));
    Ok(layout(
        "Fleet",
        Some(session),
        refresh,
        html! {
            h1 { "Fleet" }
            (summary_box(&summary))
            form.filters method="get" action="/ui" aria-label="Filter targets" {
                div { label for="f-kind" { "Kind" } select #f-kind name="kind" {
                    option value="" { "all" }
                    @for (v, l) in [("component", "inference components"), ("endpoint_variant", "async endpoint variants")] {
                        option value=(v) selected[q.kind.as_deref() == Some(v)] { (l) }
                    }
                } }
                div { label for="f-phase" { "Phase" } select #f-phase name="phase" {
                    option value="" { "all" }
                    @for v in ["pending", "applying", "ready", "failed", "disabled"] { option value=(v) selected[q.phase.as_deref() == Some(v)] { (v) } }
                } }
                div { label for="f-state" { "State" } select #f-state name="state" {
                    option value="" { "all" }
                    @for m in Meaning::ALL { option value=(m.class()) selected[q.state.as_deref() == Some(m.class())] { (m.word()) } }
                } }
                div { label for="f-label" { "Labels" } input #f-label type="text" name="label" value=[q.label.as_deref()] placeholder="team=search"; }
                input type="hidden" name="sort" value=(sort);
                div.buttons { button type="submit" { "Filter" } @if filtered { a href="/ui" { "Clear" } } }
            }
            @if rows.is_empty() {
                div.empty {
                    @if filtered {
                        p { "No target matches these filters. " a href="/ui" { "Show every target" } "." }
                    } @else {
                        p { strong { "No targets yet." } " Enable one with" }
                        pre { code { "curl -X POST -H 'Authorization: Bearer <token>' \\\n  http://<zeroscale>/components/<name>/scale-to-zero" } }
                        p { "or see the " a href="/docs/" { "API docs" } "." }
                    }
                }
            } @else {
                div.table-wrap {
                    table.fleet {
                        caption { (total) " targets" @if total > page.len() { ", " (offset + 1) "–" (offset + page.len()) " shown" } }
                        thead { tr {
                            (header("name", "Target"))
                            (header("phase", "Phase"))
                            (header("state", "Capacity now"))
                            (header("last_wake", "Last wake"))
                            (header("at_zero", "At zero, 7 days"))
                            (header("savings", "Saved this month"))
                            th scope="col" { "24 hours" }
                        } }
                        tbody {
                            @for r in &page { (row(r, &summary.currency)) }
                        }
                    }
                }
                nav.pager aria-label="Pages" {
                    @if offset > 0 { a href=(link(&sort, Some(&extract::cursor(CURSOR_SCOPE, &offset.saturating_sub(limit).to_string())))) { "← Previous" } }
                    @if let Some(c) = &next { a href=(link(&sort, Some(c))) { "Next →" } }
                }
            }
        },
    ))
}

fn summary_box(s: &Summary) -> Markup {
    html! {
        section.summary aria-label="Fleet summary" {
            div.stat { span.k { "Targets by state" } span.v {
                @for (m, n) in &s.by_meaning { span class=(format!("badge {}", m.class())) { (n) " " (m.word()) } " " }
                @if s.by_meaning.is_empty() { "—" }
            } }
            div.stat { span.k { "By phase" } span.v { @for (p, n) in &s.by_phase { span.badge { (n) " " (p) } " " } @if s.by_phase.is_empty() { "—" } } }
            div.stat { span.k { "Wakes today (UTC)" } span.v { (s.wakes_today) @if s.failed_today > 0 { ", " span.bad { (s.failed_today) " failed" } } @else { ", none failed" } } }
            div.stat { span.k { "Wake latency, 7 days" } span.v {
                @match (s.p50, s.p90) {
                    (Some(a), Some(b)) => { "median " (duration(a)) ", p90 " (duration(b)) }
                    _ => { "no wakes yet" }
                }
            } }
            div.stat { span.k { "Saved this month" } span.v.money { (money(s.savings_month, &s.currency)) } }
        }
    }
}

fn row(r: &Row, currency: &str) -> Markup {
    let (kind, name) = match &r.target {
        TargetRef::Component(n) => ("component", n.to_string()),
        TargetRef::EndpointVariant { endpoint, variant } => {
            ("async variant", format!("{endpoint} / {variant}"))
        }
    };
    html! {
        tr {
            th scope="row" {
                a href=(format!("/ui{}", r.target.api_path())) { (name) }
                div.muted { (kind) } div { (super::labels(&r.row.spec)) }
            }
            td { span class=(format!("phase {}", r.row.phase)) { (r.row.phase) } }
            td {
                span class=(format!("badge {}", r.meaning.class())) { (r.meaning.word()) }
                @if let Some(c) = r.capacity { " " span.muted { (units(c, &r.row.kind)) } }
            }
            td {
                @match &r.last_wake {
                    Some(w) if w.failure.is_some() => { span.bad { "failed" } " " (time(w.at)) }
                    Some(w) => { (time(w.at)) @if let Some(s) = w.seconds { br; span.muted { "took " (duration(s)) } } }
                    None => { span.muted { "none in 7 days" } }
                }
            }
            td.num { (duration(r.zero_seconds_7d)) br; span.muted { (share_of_week(r.zero_seconds_7d)) } }
            td.num { @match r.savings_month { Some(v) => { (money(v, currency)) } None => { span.muted { "—" } } } }
            td { (svg::sparkline(&r.steps, r.end)) }
        }
    }
}

/// `1 copy`, `3 copies`, `1 instance` (a variant counts instances).
fn units(n: i64, kind: &str) -> String {
    match (kind, n) {
        ("component", 1) => "1 copy".into(),
        ("component", n) => format!("{n} copies"),
        (_, 1) => "1 instance".into(),
        (_, n) => format!("{n} instances"),
    }
}

/// Seconds as a share of the week: `42% of the week`, `<1% of the week`.
fn share_of_week(seconds: f64) -> String {
    match seconds / 6048.0 {
        p if p > 0.0 && p < 1.0 => "<1% of the week".into(),
        p => format!("{p:.0}% of the week"),
    }
}

//! `/ui`: the fleet page. One row per target with what its state means, its last wake, its
//! time at zero this week, its savings this month and a 24-hour sparkline; a summary on top;
//! filters, sorting and paging in the query string (plain links and a GET form).

use std::collections::HashMap;

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use chrono::{DateTime, Datelike, TimeDelta, TimeZone, Utc};
use maud::{html, Markup};
use serde::Deserialize;

use super::{
    data::{self, Ev, History, Meaning},
    duration, html_page, layout, money, svg, time, Session,
};
use crate::{
    api::{extract, reports, AppState},
    domain::{EventKind, TargetKind, TargetRef},
    error::ApiError,
    store::{events, targets},
};

const CURSOR_SCOPE: &str = "ui-fleet";
/// Targets read per kind at most (the page sorts and pages them in memory).
const FLEET_MAX: i64 = 5000;

/// The fleet page's query: filters, sort and paging. Unknown parameters are ignored; a bad
/// value gets a 422 page naming it.
#[derive(Debug, Default, Deserialize, Clone)]
pub struct FleetQuery {
    kind: Option<String>,
    phase: Option<String>,
    state: Option<String>,
    label: Option<String>,
    sort: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// One row's figures.
pub struct Row {
    pub target: TargetRef,
    pub row: targets::TargetRow,
    pub meaning: Meaning,
    pub capacity: Option<i64>,
    pub last_wake: Option<data::LastWake>,
    pub zero_seconds_7d: f64,
    pub savings_month: Option<f64>,
    pub steps: Vec<(DateTime<Utc>, data::Level)>,
}

/// The fleet summary over the rows shown.
pub struct Summary {
    by_phase: Vec<(String, usize)>,
    by_meaning: Vec<(Meaning, usize)>,
    wakes_today: usize,
    failed_today: usize,
    p50: Option<f64>,
    p90: Option<f64>,
    savings_month: f64,
    currency: String,
}

const SORTS: [&str; 8] = [
    "name",
    "kind",
    "phase",
    "state",
    "last_wake",
    "latency",
    "at_zero",
    "savings",
];

/// The start of this month in UTC.
fn month_start(now: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(now)
}

/// Reads the fleet and works out every row and the summary.
async fn collect(state: &AppState, q: &FleetQuery) -> Result<(Vec<Row>, Summary), ApiError> {
    let kinds: Vec<TargetKind> = match q.kind.as_deref().filter(|k| !k.is_empty()) {
        None => vec![TargetKind::Component, TargetKind::EndpointVariant],
        Some("component") => vec![TargetKind::Component],
        Some("endpoint_variant") => vec![TargetKind::EndpointVariant],
        Some(_) => {
            return Err(ApiError::invalid_field(
                "kind",
                "must be component or endpoint_variant",
            ))
        }
    };
    const PHASES: [&str; 5] = ["pending", "applying", "ready", "failed", "disabled"];
    let phase = q.phase.clone().filter(|p| !p.is_empty());
    if phase.as_deref().is_some_and(|p| !PHASES.contains(&p)) {
        return Err(ApiError::invalid_field(
            "phase",
            format!("must be one of {}", PHASES.join(", ")),
        ));
    }
    let wanted = match q.state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(Meaning::parse(s).ok_or_else(|| {
            ApiError::invalid_field(
                "state",
                "must be asleep, waking, warm, paused, failed, off or unknown",
            )
        })?),
    };
    let labels = extract::label_selector(q.label.clone().filter(|l| !l.is_empty()))?;
    let mut rows = Vec::new();
    for kind in kinds {
        let filter = targets::TargetFilter {
            phase: phase.clone(),
            labels: labels.clone(),
            limit: FLEET_MAX,
            ..Default::default()
        };
        rows.extend(targets::list(&state.pool, kind.as_str(), &filter).await?);
    }
    let now = Utc::now();
    let week_ago = now - TimeDelta::days(7);
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut conn = state.pool.acquire().await?;
    let mut histories: HashMap<i64, History> = HashMap::new();
    for (id, kind, details) in events::capacity_before(&mut conn, &ids, week_ago).await? {
        histories.entry(id).or_default().before = Some((kind, details));
    }
    let mut newest = now;
    for (id, kind, at, details) in events::capacity_since(&mut conn, &ids, week_ago).await? {
        newest = newest.max(at);
        histories
            .entry(id)
            .or_default()
            .events
            .push(Ev { kind, at, details });
    }
    drop(conn);
    let mut histories: HashMap<i64, History> = histories
        .into_iter()
        .map(|(id, h)| (id, History::new(h.before, h.events)))
        .collect();
    // AWS's clock may run ahead of ours: the charts end at the newest event when it is later.
    let end = newest;
    let (savings, total, currency) = month_savings(state, now, end).await?;
    let today = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc())
        .unwrap_or(now);
    let all_events = || histories.values().flat_map(|h| h.events.iter());
    let latencies = data::wake_seconds(all_events());
    let count_today = |k: EventKind| {
        all_events()
            .filter(|e| e.kind == k && e.at >= today)
            .count()
    };
    let (wakes_today, failed_today) = (
        count_today(EventKind::WakeStarted),
        count_today(EventKind::WakeFailed),
    );
    let mut out = Vec::new();
    for row in rows {
        let Ok(target) = TargetRef::from_stored(&row.kind, &row.name) else {
            continue;
        };
        let history = histories.remove(&row.id).unwrap_or_default();
        let meaning = data::meaning(&row, &history, now);
        if wanted.is_some_and(|w| w != meaning) {
            continue;
        }
        let key = match &target {
            TargetRef::Component(n) => format!("component/{n}"),
            TargetRef::EndpointVariant { .. } => target.resource_id(),
        };
        out.push(Row {
            capacity: history.now().capacity(),
            last_wake: history.last_wake(),
            zero_seconds_7d: history.zero_seconds(week_ago, end),
            savings_month: savings.get(&key).copied(),
            steps: history.steps(end - TimeDelta::hours(24), end),
            meaning,
            target,
            row,
        });
    }
    let mut by_phase: HashMap<String, usize> = HashMap::new();
    let mut by_meaning: HashMap<&'static str, (Meaning, usize)> = HashMap::new();
    for r in &out {
        *by_phase.entry(r.row.phase.clone()).or_default() += 1;
        by_meaning
            .entry(r.meaning.class())
            .or_insert((r.meaning, 0))
            .1 += 1;
    }
    let mut by_phase: Vec<(String, usize)> = by_phase.into_iter().collect();
    by_phase.sort();
    let by_meaning = Meaning::ALL
        .iter()
        .filter_map(|m| by_meaning.get(m.class()).copied())
        .collect();
    let summary = Summary {
        by_phase,
        by_meaning,
        wakes_today,
        failed_today,
        p50: data::quantile(&latencies, 0.5),
        p90: data::quantile(&latencies, 0.9),
        savings_month: if wanted.is_some()
            || labels.is_some()
            || phase.is_some()
            || q.kind.as_deref().is_some_and(|k| !k.is_empty())
        {
            out.iter().filter_map(|r| r.savings_month).sum()
        } else {
            total
        },
        currency,
    };
    Ok((out, summary))
}

/// Every target's savings this month (by the report's target key), the total and currency.
async fn month_savings(
    state: &AppState,
    now: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(HashMap<String, f64>, f64, String), ApiError> {
    let mut by_target = HashMap::new();
    let mut cursor = None;
    loop {
        let report = reports::report(
            state,
            reports::SavingsQuery::period(month_start(now), end + TimeDelta::seconds(1), cursor),
        )
        .await?;
        for item in &report.items {
            by_target.insert(item.group.clone(), item.savings);
        }
        match report.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok((by_target, report.total_savings, report.currency)),
        }
    }
}

fn sort_rows(rows: &mut [Row], sort: &str) -> Result<(), ApiError> {
    let (desc, key) = match sort.strip_prefix('-') {
        Some(k) => (true, k),
        None => (false, sort),
    };
    if !SORTS.contains(&key) {
        return Err(ApiError::invalid_field(
            "sort",
            format!(
                "must be one of {} (prefix - for descending)",
                SORTS.join(", ")
            ),
        ));
    }
    let f = |v: Option<f64>| v.unwrap_or(f64::NEG_INFINITY);
    rows.sort_by(|a, b| {
        let o = match key {
            "kind" => a.row.kind.cmp(&b.row.kind),
            "phase" => a.row.phase.cmp(&b.row.phase),
            "state" => a.meaning.word().cmp(b.meaning.word()),
            "last_wake" => a
                .last_wake
                .as_ref()
                .map(|w| w.at)
                .cmp(&b.last_wake.as_ref().map(|w| w.at)),
            "latency" => f(a.last_wake.as_ref().and_then(|w| w.seconds))
                .total_cmp(&f(b.last_wake.as_ref().and_then(|w| w.seconds))),
            "at_zero" => a.zero_seconds_7d.total_cmp(&b.zero_seconds_7d),
            "savings" => f(a.savings_month).total_cmp(&f(b.savings_month)),
            _ => std::cmp::Ordering::Equal,
        };
        let o = o
            .then_with(|| a.row.kind.cmp(&b.row.kind))
            .then_with(|| a.row.name.cmp(&b.row.name));
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    Ok(())
}

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
    let refresh = rows.iter().any(|r| {
        r.meaning == Meaning::Waking || matches!(r.row.phase.as_str(), "pending" | "applying")
    });
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

fn labels(row: &targets::TargetRow) -> Markup {
    html! {
        @if let Some(map) = row.spec["labels"].as_object() {
            @for (k, v) in map { span.label { (k) "=" (v.as_str().unwrap_or_default()) } " " }
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
                div.muted { (kind) } div { (labels(&r.row)) }
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
            td { (svg::sparkline(&r.steps, r.steps.last().map(|_| r.steps[0].0 + TimeDelta::hours(24)).unwrap_or_else(Utc::now))) }
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

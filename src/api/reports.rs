//! `GET /reports/savings`: what scale-to-zero saved, per target, endpoint or label value, as
//! JSON or CSV (`Accept: text/csv`), from the timeline (`domain::savings` has the arithmetic).

use std::collections::{BTreeMap, HashMap};

use axum::{
    extract::State,
    http::{header, HeaderMap},
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{auth::Reader, extract::ApiQuery, problems, AppState};
use crate::{
    domain::{
        savings::{self, cents, PriceTable},
        EventKind,
    },
    error::ApiError,
    store::ledger::{self, LedgerTarget},
};

const CURSOR_SCOPE: &str = "savings";
/// The longest period one report covers.
const MAX_PERIOD_DAYS: i64 = 366;

/// The period, grouping, filter and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SavingsQuery {
    /// Start of the period (RFC 3339); default 30 days before `until`.
    since: Option<DateTime<Utc>>,
    /// End of the period (RFC 3339, exclusive); default now.
    until: Option<DateTime<Utc>>,
    /// `target` (default), `endpoint`, or `label:<key>`.
    #[param(example = "label:team")]
    group_by: Option<String>,
    /// Only targets with these labels: `key=value[,key=value...]`.
    label: Option<String>,
    /// Groups per page, 1-500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` from the previous page.
    cursor: Option<String>,
}

/// One group's savings in the period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SavingsRow {
    /// The target (`component/<name>`, `endpoint/<e>/variant/<v>`), endpoint, or `key=value`
    /// (`key unset` for targets without the label).
    pub group: String,
    /// Targets in the group.
    pub targets: usize,
    /// Hours at zero capacity (summed over the group's targets).
    pub hours_at_zero: f64,
    /// Hours spent waking (a wake's start to its capacity in service).
    pub hours_waking: f64,
    /// (hours at zero - hours waking) x the instances each target would have held.
    pub instance_hours_saved: f64,
    /// instance_hours_saved x the hourly list price, to the cent (priced targets only).
    pub savings: f64,
    /// Per target: its instance type, the instances it would have held (its restore minimum),
    /// and the hourly price used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hourly_price: Option<f64>,
    /// Targets left out of `savings`: the price table has no price for their instance type
    /// (or zeroscale has not applied them yet, so it does not know it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unpriced_targets: Vec<String>,
}

/// The ledger for a period.
#[derive(Debug, Serialize, ToSchema)]
pub struct SavingsReport {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// The end of what is known: an interval still open is counted up to here (the later of
    /// now and the newest event), never into the future.
    pub counted_until: DateTime<Utc>,
    pub group_by: String,
    pub currency: String,
    /// Where the prices come from (region, date, and that they are list prices).
    pub prices: PriceTable,
    /// The savings of every group, not only this page's.
    pub total_savings: f64,
    pub items: Vec<SavingsRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

enum GroupBy {
    Target,
    Endpoint,
    Label(String),
}

impl GroupBy {
    fn parse(v: Option<&str>) -> Result<Self, ApiError> {
        match v.unwrap_or("target") {
            "target" => Ok(Self::Target),
            "endpoint" => Ok(Self::Endpoint),
            other => other
                .strip_prefix("label:")
                .filter(|k| crate::domain::labels::key_problem(k).is_none())
                .map(|k| Self::Label(k.to_string()))
                .ok_or_else(|| {
                    ApiError::invalid_field("group_by", "must be target, endpoint or label:<key>")
                }),
        }
    }

    fn key(&self, t: &LedgerTarget) -> String {
        match self {
            Self::Target => display(t),
            Self::Endpoint => endpoint(t).unwrap_or_else(|| "endpoint unknown".into()),
            Self::Label(k) => match t.spec["labels"][k].as_str() {
                Some(v) => format!("{k}={v}"),
                None => format!("{k} unset"),
            },
        }
    }
}

fn display(t: &LedgerTarget) -> String {
    target_key(&t.kind, &t.name)
}

/// A target's group in a report by target: `component/<name>`, or a variant's stored name
/// (`endpoint/<e>/variant/<v>`).
pub(crate) fn target_key(kind: &str, name: &str) -> String {
    match kind {
        "component" => format!("component/{name}"),
        _ => name.to_string(),
    }
}

fn endpoint(t: &LedgerTarget) -> Option<String> {
    match t.kind.as_str() {
        "component" => t.observed["endpoint"].as_str().map(str::to_string),
        _ => t
            .name
            .strip_prefix("endpoint/")?
            .split('/')
            .next()
            .map(str::to_string),
    }
}

/// The instances a target would have held without scale-to-zero: the minimum it had before
/// zeroscale (when at least 1), else the spec's `restore_min_capacity` (what disable restores).
/// A component's copies count as one instance each.
fn would_have_held(t: &LedgerTarget) -> u32 {
    let base = &t.observed["baseline"];
    base["min"]
        .as_u64()
        .filter(|m| *m >= 1 && base["existed"] == true)
        .or_else(|| t.spec["restore_min_capacity"].as_u64())
        .unwrap_or(1)
        .max(1) as u32
}

/// One target's row.
fn target_row(t: &LedgerTarget, h: savings::Hours, prices: &PriceTable) -> SavingsRow {
    let instance_type = t.observed["instance_type"].as_str().map(str::to_string);
    let price = instance_type.as_deref().and_then(|i| prices.hourly(i));
    let instances = would_have_held(t);
    let saved = h.net() * f64::from(instances);
    SavingsRow {
        group: display(t),
        targets: 1,
        hours_at_zero: h.at_zero,
        hours_waking: h.waking,
        instance_hours_saved: saved,
        savings: price.map_or(0.0, |p| cents(saved * p)),
        instance_type,
        instances: Some(instances),
        hourly_price: price,
        unpriced_targets: if price.is_none() && saved > 0.0 {
            vec![display(t)]
        } else {
            Vec::new()
        },
    }
}

fn add(into: &mut SavingsRow, r: SavingsRow) {
    into.targets += 1;
    into.hours_at_zero += r.hours_at_zero;
    into.hours_waking += r.hours_waking;
    into.instance_hours_saved += r.instance_hours_saved;
    into.savings = cents(into.savings + r.savings);
    into.unpriced_targets.extend(r.unpriced_targets);
}

fn round_hours(mut r: SavingsRow) -> SavingsRow {
    let six = |v: f64| (v * 1e6).round() / 1e6;
    r.hours_at_zero = six(r.hours_at_zero);
    r.hours_waking = six(r.hours_waking);
    r.instance_hours_saved = six(r.instance_hours_saved);
    r
}

/// Builds the whole report (every group), then the page.
pub(crate) async fn report(state: &AppState, q: SavingsQuery) -> Result<SavingsReport, ApiError> {
    let group_by = GroupBy::parse(q.group_by.as_deref())?;
    let limit = super::extract::page_limit(q.limit)?;
    let after = super::extract::parse_cursor(CURSOR_SCOPE, q.cursor, |_: &String| true)?;
    let until = q.until.unwrap_or_else(Utc::now);
    let since = q.since.unwrap_or(until - TimeDelta::days(30));
    if since >= until {
        return Err(ApiError::invalid_field("until", "must be after since"));
    }
    if until - since > TimeDelta::days(MAX_PERIOD_DAYS) {
        return Err(ApiError::invalid_field(
            "since",
            format!("a report covers at most {MAX_PERIOD_DAYS} days"),
        ));
    }
    let labels = super::extract::label_selector(q.label)?;
    let (groups, counted_until) = grouped(state, &group_by, since, until, labels.as_ref()).await?;
    let total_savings = cents(groups.values().map(|g| g.savings).sum());
    let mut items: Vec<SavingsRow> = groups
        .into_values()
        .filter(|g| after.as_ref().is_none_or(|a| &g.group > a))
        .take(limit as usize + 1)
        .map(round_hours)
        .collect();
    let next_cursor = (items.len() as i64 > limit).then(|| {
        items.truncate(limit as usize);
        super::extract::cursor(
            CURSOR_SCOPE,
            &items.last().map(|r| r.group.clone()).unwrap_or_default(),
        )
    });
    Ok(SavingsReport {
        since,
        until,
        counted_until,
        group_by: q.group_by.unwrap_or_else(|| "target".into()),
        currency: state.prices.currency.clone(),
        prices: (*state.prices).clone(),
        total_savings,
        items,
        next_cursor,
    })
}

/// Every group's savings in [since, until) and where counting stopped (see `counted_until`).
async fn grouped(
    state: &AppState,
    group_by: &GroupBy,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    labels: Option<&serde_json::Value>,
) -> Result<(BTreeMap<String, SavingsRow>, DateTime<Utc>), ApiError> {
    let mut conn = state.pool.acquire().await?;
    let targets = ledger::targets(&mut conn, labels).await?;
    let ids: Vec<i64> = targets.iter().map(|t| t.id).collect();
    let before: HashMap<i64, EventKind> = ledger::states_before(&mut conn, &ids, since)
        .await?
        .into_iter()
        .collect();
    let mut events: HashMap<i64, Vec<(EventKind, DateTime<Utc>)>> = HashMap::new();
    let mut newest = Utc::now();
    for (id, kind, at) in ledger::events_between(&mut conn, &ids, since, until).await? {
        newest = newest.max(at);
        events.entry(id).or_default().push((kind, at));
    }
    let counted_until = until.min(newest);
    let mut groups: BTreeMap<String, SavingsRow> = BTreeMap::new();
    for t in &targets {
        let h = savings::hours(
            before.get(&t.id).copied(),
            events.get(&t.id).map(Vec::as_slice).unwrap_or_default(),
            since,
            counted_until.max(since),
        );
        let row = target_row(t, h, &state.prices);
        let key = group_by.key(t);
        match groups.get_mut(&key) {
            Some(g) => add(g, row),
            None => {
                let mut first = row;
                first.group = key.clone();
                if !matches!(group_by, GroupBy::Target) {
                    (first.instance_type, first.instances, first.hourly_price) = (None, None, None);
                }
                groups.insert(key, first);
            }
        }
    }
    Ok((groups, counted_until))
}

/// Each target's savings in [since, until), by [`target_key`], and the currency (the portal's
/// fleet page: one pass over the ledger, not a report per page).
pub(crate) async fn savings_by_target(
    state: &AppState,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<(HashMap<String, f64>, String), ApiError> {
    let (groups, _) = grouped(state, &GroupBy::Target, since, until, None).await?;
    let by_target = groups.into_iter().map(|(k, g)| (k, g.savings)).collect();
    Ok((by_target, state.prices.currency.clone()))
}

/// A report as CSV: one row per group of the page, the same figures as the JSON; the next
/// page's cursor in a `Link` header.
fn csv(report: &SavingsReport) -> Result<Response, ApiError> {
    #[derive(Serialize)]
    struct Line<'a> {
        group: &'a str,
        targets: usize,
        hours_at_zero: f64,
        hours_waking: f64,
        instance_hours_saved: f64,
        savings: f64,
        currency: &'a str,
        instance_type: Option<&'a str>,
        instances: Option<u32>,
        hourly_price: Option<f64>,
        unpriced_targets: String,
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in &report.items {
        w.serialize(Line {
            group: &r.group,
            targets: r.targets,
            hours_at_zero: r.hours_at_zero,
            hours_waking: r.hours_waking,
            instance_hours_saved: r.instance_hours_saved,
            savings: r.savings,
            currency: &report.currency,
            instance_type: r.instance_type.as_deref(),
            instances: r.instances,
            hourly_price: r.hourly_price,
            unpriced_targets: r.unpriced_targets.join(" "),
        })
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("csv: {e}")))?;
    }
    let body = w
        .into_inner()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("csv: {e}")))?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        "text/csv; charset=utf-8".parse().expect("static"),
    );
    if let Some(c) = &report.next_cursor {
        if let Ok(v) = format!("<?cursor={c}>; rel=\"next\"").parse() {
            headers.insert(header::LINK, v);
        }
    }
    Ok((headers, body).into_response())
}

/// What scale-to-zero saved: per target, endpoint or label value, for a period.
///
/// Per target: (hours at zero - hours spent waking) x the instances it would otherwise have held
/// (its minimum before zeroscale, else `restore_min_capacity`; a component's copy counts as one
/// instance) x the hourly list price of its instance type from the price table (`prices` says
/// which region and date; replace it with `--price-table`). Hours come from the timeline, on
/// AWS's clock. `Accept: text/csv` gives the same figures as CSV.
#[utoipa::path(get, path = "/reports/savings", operation_id = "savings_report", tag = "events",
    params(SavingsQuery),
    responses(
        (status = 200, description = "The ledger for the period", content(
            (SavingsReport = "application/json"),
            (String = "text/csv"),
        )),
        problems::ReadList,
    )
)]
pub async fn savings(
    State(state): State<AppState>,
    Reader(_caller): Reader,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<SavingsQuery>,
) -> Result<Response, ApiError> {
    let report = report(&state, q).await?;
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"));
    if wants_csv {
        return csv(&report);
    }
    Ok(Json::<Value>(
        serde_json::to_value(&report)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("json: {e}")))?,
    )
    .into_response())
}

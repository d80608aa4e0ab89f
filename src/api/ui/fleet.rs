//! The fleet page's figures (`fleet_page` draws them): one row per target with what its state
//! means, its last wake, its time at zero this week, its savings this month and its last 24
//! hours; the summary of the rows the filters keep; sorting. All from the database (the
//! timeline, the savings ledger): no AWS call.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, TimeDelta, TimeZone, Utc};
use serde::Deserialize;

use super::data::{self, Ev, History, Meaning};
use crate::{
    api::{extract, reports, AppState},
    domain::{EventKind, TargetKind, TargetRef},
    error::ApiError,
    store::{events, targets},
};

pub(super) const CURSOR_SCOPE: &str = "ui-fleet";
/// Targets read per query: the page reads every target the filters keep, a batch at a time by
/// name, then sorts and pages them in memory (a sort by savings or latency needs them all).
const BATCH: i64 = 1000;

/// The fleet page's query: filters, sort and paging. Unknown parameters are ignored; a bad
/// value gets a 422 page naming it.
#[derive(Debug, Default, Deserialize, Clone)]
pub struct FleetQuery {
    pub(super) kind: Option<String>,
    pub(super) phase: Option<String>,
    pub(super) state: Option<String>,
    pub(super) label: Option<String>,
    pub(super) sort: Option<String>,
    pub(super) limit: Option<String>,
    pub(super) cursor: Option<String>,
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
    /// Where the sparkline ends.
    pub end: DateTime<Utc>,
}

/// The fleet summary over the rows shown.
pub struct Summary {
    pub(super) by_phase: Vec<(String, usize)>,
    pub(super) by_meaning: Vec<(Meaning, usize)>,
    pub(super) wakes_today: usize,
    pub(super) failed_today: usize,
    pub(super) p50: Option<f64>,
    pub(super) p90: Option<f64>,
    pub(super) savings_month: f64,
    pub(super) currency: String,
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
pub(super) async fn collect(
    state: &AppState,
    q: &FleetQuery,
) -> Result<(Vec<Row>, Summary), ApiError> {
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
        let mut after = None;
        loop {
            let filter = targets::TargetFilter {
                phase: phase.clone(),
                labels: labels.clone(),
                after: after.take(),
                limit: BATCH,
                ..Default::default()
            };
            let batch = targets::list(&state.pool, kind.as_str(), &filter).await?;
            let full = batch.len() as i64 == BATCH;
            after = batch.last().map(|r| r.name.clone());
            rows.extend(batch);
            if !full {
                break;
            }
        }
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
    let (savings, currency) =
        reports::savings_by_target(state, month_start(now), end + TimeDelta::seconds(1)).await?;
    let today = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc())
        .unwrap_or(now);
    let mut out = Vec::new();
    // The summary's wakes and latencies: of the rows the filters keep.
    let (mut wakes_today, mut failed_today, mut latencies) = (0, 0, Vec::new());
    for row in rows {
        let Ok(target) = TargetRef::from_stored(&row.kind, &row.name) else {
            continue;
        };
        let history = histories.remove(&row.id).unwrap_or_default();
        let meaning = data::meaning(&row, &history, now);
        if wanted.is_some_and(|w| w != meaning) {
            continue;
        }
        let today_count = |k: EventKind| {
            history
                .events
                .iter()
                .filter(|e| e.kind == k && e.at >= today)
                .count()
        };
        wakes_today += today_count(EventKind::WakeStarted);
        failed_today += today_count(EventKind::WakeFailed);
        latencies.extend(data::wake_seconds(history.events.iter()));
        out.push(Row {
            capacity: history.now().capacity(),
            last_wake: history.last_wake(),
            zero_seconds_7d: history.zero_seconds(end - TimeDelta::days(7), end),
            savings_month: savings
                .get(&reports::target_key(&row.kind, &row.name))
                .copied(),
            steps: history.steps(end - TimeDelta::hours(24), end),
            end,
            meaning,
            target,
            row,
        });
    }
    latencies.sort_by(f64::total_cmp);
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
        savings_month: crate::domain::savings::cents(
            out.iter().filter_map(|r| r.savings_month).sum(),
        ),
        currency,
    };
    Ok((out, summary))
}

pub(super) fn sort_rows(rows: &mut [Row], sort: &str) -> Result<(), ApiError> {
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

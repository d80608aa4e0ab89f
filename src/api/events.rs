//! The timeline: `GET .../timeline` for one target and `GET /events` for the fleet, in time
//! order, filtered by time, kind and labels, and paged.

use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{auth::Reader, extract::ApiQuery, problems, views::Page, AppState};
use crate::{
    domain::{EventKind, TargetRef},
    error::ApiError,
    store::events::{self, EventFilter, EventRow},
};

/// A page cursor's scope: a cursor of another list is refused.
const CURSOR_SCOPE: &str = "events";

/// Filters and paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Events at or after this time (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// Events before this time (RFC 3339).
    until: Option<DateTime<Utc>>,
    /// Only these kinds, comma-separated (`wake_failed,drift_repaired`).
    #[param(example = "wake_started,capacity_in_service")]
    kind: Option<String>,
    /// Only targets with these labels: `key=value[,key=value...]`.
    #[param(example = "team=search")]
    label: Option<String>,
    /// Page size, 1-500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` from the previous page.
    cursor: Option<String>,
}

/// One event on a target's timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct Event {
    pub id: i64,
    /// `component` or `endpoint_variant`.
    pub target_kind: String,
    /// The component's name, or `endpoint/<endpoint>/variant/<variant>`.
    pub target: String,
    pub kind: EventKind,
    /// When it happened (AWS's time for what AWS did).
    pub at: DateTime<Utc>,
    /// What is known about it: AWS's activity id and words, `wake_seconds`,
    /// `at_zero_seconds`, the failure `reason` (`quota`, `insufficient_capacity`, `other`), ...
    #[schema(value_type = Object)]
    pub details: Value,
    /// When zeroscale recorded it.
    pub recorded_at: DateTime<Utc>,
    /// The target's labels now.
    #[schema(value_type = Object)]
    pub labels: Value,
}

fn view(r: EventRow) -> Option<Event> {
    Some(Event {
        id: r.id,
        kind: EventKind::parse(&r.kind)?,
        target_kind: r.target_kind,
        target: r.target_name,
        at: r.at,
        details: r.details,
        recorded_at: r.recorded_at,
        labels: r
            .labels
            .unwrap_or_else(|| Value::Object(Default::default())),
    })
}

/// A cursor key: the last event's time (microseconds) and id.
fn cursor_key(r: &EventRow) -> String {
    format!("{}_{}", r.at.timestamp_micros(), r.id)
}

#[derive(Debug, Clone, Copy)]
struct After(DateTime<Utc>, i64);

impl std::str::FromStr for After {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let (at, id) = s.split_once('_').ok_or(())?;
        let at = DateTime::from_timestamp_micros(at.parse().map_err(|_| ())?).ok_or(())?;
        Ok(Self(at, id.parse().map_err(|_| ())?))
    }
}

/// One page of events under `q`, for one target or all.
pub async fn page(
    state: &AppState,
    target_id: Option<i64>,
    q: EventQuery,
) -> Result<Json<Page<Event>>, ApiError> {
    let limit = super::extract::page_limit(q.limit)?;
    let after = super::extract::parse_cursor(CURSOR_SCOPE, q.cursor, |a: &After| a.1 > 0)?;
    let kinds = q
        .kind
        .map(|k| {
            k.split(',')
                .map(|s| {
                    EventKind::parse(s.trim())
                        .map(|k| k.as_str().to_string())
                        .ok_or_else(|| {
                            let all: Vec<&str> =
                                EventKind::ALL.iter().map(|k| k.as_str()).collect();
                            ApiError::invalid_field(
                                "kind",
                                format!("each kind must be one of {}", all.join(", ")),
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    if let (Some(s), Some(u)) = (q.since, q.until) {
        if u < s {
            return Err(ApiError::invalid_field("until", "must not be before since"));
        }
    }
    let filter = EventFilter {
        target_id,
        kinds,
        since: q.since,
        until: q.until,
        labels: super::extract::label_selector(q.label)?,
        after: after.map(|a| (a.0, a.1)),
        limit: limit + 1,
    };
    let mut conn = state.pool.acquire().await?;
    let mut rows = events::list(&mut conn, &filter).await?;
    let next_cursor = (rows.len() as i64 > limit).then(|| {
        rows.truncate(limit as usize);
        rows.last()
            .map(|r| super::extract::cursor(CURSOR_SCOPE, &cursor_key(r)))
            .unwrap_or_default()
    });
    Ok(Json(Page {
        items: rows.into_iter().filter_map(view).collect(),
        next_cursor,
    }))
}

/// A target's timeline (404 when it is not managed).
pub async fn timeline(
    state: &AppState,
    target: &TargetRef,
    q: EventQuery,
) -> Result<Json<Page<Event>>, ApiError> {
    let id = super::history::managed(state, target).await?;
    page(state, Some(id), q).await
}

/// The fleet's events in time order: what AWS did to every managed target (scale-ins to zero,
/// requests at zero, wakes and their latency or failure in AWS's words, scheduled actions) and
/// what zeroscale did (enabled, paused, resumed, drift repaired).
#[utoipa::path(get, path = "/events", operation_id = "list_events", tag = "events",
    params(EventQuery),
    responses(
        (status = 200, description = "A page of events, oldest first", body = Page<Event>),
        problems::ReadList,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Reader(_caller): Reader,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> Result<Json<Page<Event>>, ApiError> {
    page(&state, None, q).await
}

//! The timeline: what happened to each target, as events (`store::events`), read from what the
//! observation pass already reads (no extra AWS calls):
//! - scaling activities (DescribeScalingActivities, newest first since the last pass, and back to
//!   the oldest one still in progress, so that its end is seen): a scale-in to zero, a wake (an
//!   activity our step policy started, or any scale-out of a target at zero), its end (capacity
//!   in service, with AWS's StartTime to EndTime) or its failure in AWS's words, and our
//!   scheduled actions running;
//! - the scale-from-zero alarm's state (DescribeAlarms): when it is in ALARM, the minute of the
//!   first request at zero (the earliest evaluated datapoint above 0 in its StateReasonData) and
//!   the moment the alarm fired.
//!
//! An event is recorded once, by its source (the activity id, or the alarm and its state time).
//! zeroscale's own actions (enabled, paused, drift repaired, ...) are recorded by the run that
//! applied them (`finish`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::{
    domain::{webhook::NotificationKind, EventKind, OwnedNames},
    store::{
        events::{self, NewEvent},
        webhooks,
    },
};

/// How far back a pass follows an activity still in progress (older ones are given up: a wake
/// takes minutes, not hours).
const FOLLOW_OPEN_FOR: chrono::TimeDelta = chrono::TimeDelta::hours(2);

/// A scaling activity as the pass read it.
#[derive(Debug, Clone)]
pub struct SeenActivity {
    pub id: String,
    pub resource_id: String,
    pub status: String,
    pub description: String,
    pub cause: String,
    pub message: Option<String>,
    /// NotScaledReasons (a not-scaled activity: Application Auto Scaling decided not to scale).
    pub not_scaled: Vec<Value>,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
}

impl SeenActivity {
    fn open(&self) -> bool {
        matches!(self.status.as_str(), "InProgress" | "Pending")
    }

    /// The capacity it sets ("Setting desired copy count to 2."); None for other activities
    /// (a scheduled action's "Setting min capacity to 1 and max capacity to 4").
    fn desired(&self) -> Option<u32> {
        let rest = self
            .description
            .strip_prefix("Setting desired ")?
            .split_once(" count to ")?
            .1;
        rest.trim_end_matches('.').trim().parse().ok()
    }
}

/// An alarm's state as DescribeAlarms shows it.
#[derive(Debug, Clone)]
pub struct AlarmState {
    pub value: String,
    pub updated: DateTime<Utc>,
    pub reason_data: Option<String>,
}

/// One target as the timeline sees it.
pub struct Tracked<'a> {
    pub target_id: i64,
    pub kind: &'static str,
    pub names: &'a OwnedNames,
}

/// What a wake failure was, from AWS's StatusMessage.
pub fn wake_failure_reason(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("service limit") || m.contains("quota") {
        "quota"
    } else if m.contains("unable to provision requested ml compute capacity")
        || m.contains("insufficientinstancecapacity")
        || m.contains("insufficient capacity")
        || m.contains("capacityerror")
    {
        "insufficient_capacity"
    } else {
        "other"
    }
}

/// The at-zero state a target starts a pass in: since when, when at zero.
type AtZero = Option<DateTime<Utc>>;

/// The events one target's activities (oldest first) make, moving its at-zero state along.
pub fn from_activities(t: &Tracked, at_zero: &mut AtZero, acts: &[&SeenActivity]) -> Vec<NewEvent> {
    let mut out = Vec::new();
    let event = |kind, at, a: &SeenActivity, details: Value| NewEvent {
        target_id: t.target_id,
        kind,
        at,
        source: format!("activity:{}", a.id),
        details,
    };
    for a in acts {
        let desired = a.desired();
        if let Some(name) = a
            .cause
            .strip_prefix("scheduled action name ")
            .and_then(|r| r.strip_suffix(" was triggered"))
            .filter(|n| n.starts_with(super::objects::scheduled_action::PREFIX))
        {
            out.push(event(
                EventKind::ScheduledActionFired,
                a.start,
                a,
                json!({"scheduled_action": name, "description": a.description}),
            ));
            // Its bounds change; the capacity change it causes is an activity of its own.
            continue;
        }
        let ours = a
            .cause
            .ends_with(&format!("triggered policy {}", t.names.step_policy));
        if !a.not_scaled.is_empty() {
            // Our step policy at zero and no scale-out: a wake that did not happen (someone
            // set MaxCapacity to 0, say). Anywhere else a not-scaled activity is routine.
            if ours && at_zero.is_some() {
                let codes: Vec<&str> = a
                    .not_scaled
                    .iter()
                    .filter_map(|r| r["code"].as_str())
                    .collect();
                out.push(event(
                    EventKind::WakeFailed,
                    a.start,
                    a,
                    json!({"activity_id": a.id, "reason": "not_scaled",
                           "message": format!("Application Auto Scaling did not scale: {}", codes.join(", ")),
                           "not_scaled_reasons": a.not_scaled, "description": a.description}),
                ));
            }
            continue;
        }
        let wake = ours || (at_zero.is_some() && desired.is_some_and(|d| d > 0));
        if wake {
            let mut details = json!({"activity_id": a.id, "cause": a.cause, "desired": desired});
            if let Some(since) = *at_zero {
                details["at_zero_seconds"] =
                    json!((a.start - since).num_milliseconds() as f64 / 1e3);
            }
            out.push(event(EventKind::WakeStarted, a.start, a, details));
        }
        let Some(end) = a.end.filter(|_| !a.open()) else {
            continue;
        };
        match (a.status.as_str(), wake, desired) {
            ("Successful", true, _) => {
                let took = (end - a.start).num_milliseconds() as f64 / 1e3;
                let mut details =
                    json!({"activity_id": a.id, "wake_seconds": took, "capacity": desired});
                if let Some(since) = *at_zero {
                    // The whole stretch without capacity, waking and failed wakes included.
                    details["zero_seconds"] = json!((end - since).num_milliseconds() as f64 / 1e3);
                }
                out.push(event(EventKind::CapacityInService, end, a, details));
                *at_zero = None;
            }
            ("Failed", true, _) => {
                let message = a
                    .message
                    .clone()
                    .unwrap_or_else(|| "the scaling activity failed without a message".to_string());
                out.push(event(
                    EventKind::WakeFailed,
                    end,
                    a,
                    json!({"activity_id": a.id, "reason": wake_failure_reason(&message),
                           "message": message, "description": a.description}),
                ));
            }
            ("Successful", false, Some(0)) => {
                out.push(event(
                    EventKind::ScaledToZero,
                    end,
                    a,
                    json!({"activity_id": a.id, "cause": a.cause}),
                ));
                *at_zero = Some(end);
            }
            _ => {}
        }
    }
    out
}

/// The events the scale-from-zero alarm's state makes: in ALARM, the first request at zero and
/// the alarm firing.
pub fn from_alarm(t: &Tracked, state: &AlarmState) -> Vec<NewEvent> {
    if state.value != "ALARM" {
        return Vec::new();
    }
    let source = format!("alarm:{}@{}", t.names.alarm, state.updated.to_rfc3339());
    let data: Value = state
        .reason_data
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    let first = data["evaluatedDatapoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["value"].as_f64().is_some_and(|v| v > 0.0))
        .filter_map(|p| {
            let at = DateTime::parse_from_str(p["timestamp"].as_str()?, "%Y-%m-%dT%H:%M:%S%.3f%z")
                .ok()?;
            Some((at.with_timezone(&Utc), p["value"].as_f64()?))
        })
        .min_by_key(|(at, _)| *at);
    let (first_at, value) = first.map_or((state.updated, None), |(at, v)| (at, Some(v)));
    vec![
        NewEvent {
            target_id: t.target_id,
            kind: EventKind::RequestAtZero,
            at: first_at,
            source: source.clone(),
            details: json!({"alarm": t.names.alarm, "datapoint": value}),
        },
        NewEvent {
            target_id: t.target_id,
            kind: EventKind::AlarmFired,
            at: state.updated,
            source,
            details: json!({"alarm": t.names.alarm}),
        },
    ]
}

/// Where the next pass should read back to: just before the oldest activity of ours still in
/// progress (within [`FOLLOW_OPEN_FOR`] of the newest seen).
pub fn open_since(tracked: &[Tracked], acts: &[SeenActivity]) -> Option<DateTime<Utc>> {
    let ours: std::collections::HashSet<&str> = tracked
        .iter()
        .map(|t| t.names.resource_id.as_str())
        .collect();
    let newest = acts.iter().map(|a| a.start).max()?;
    acts.iter()
        .filter(|a| a.open() && ours.contains(a.resource_id.as_str()))
        .map(|a| a.start)
        .filter(|s| newest - *s <= FOLLOW_OPEN_FOR)
        .min()
        .map(|s| s - chrono::TimeDelta::seconds(1))
}

/// Records what one pass read as events, and counts the new ones in the metrics. Returns how
/// many were new.
pub async fn record_pass(
    pool: &PgPool,
    tracked: &[Tracked<'_>],
    acts: &[SeenActivity],
    alarms: &HashMap<String, AlarmState>,
) -> sqlx::Result<usize> {
    let mut tx = pool.begin().await?;
    let ids: Vec<i64> = tracked.iter().map(|t| t.target_id).collect();
    let states: HashMap<i64, AtZero> = events::capacity_states(&mut tx, &ids)
        .await?
        .into_iter()
        .map(|(id, kind, at)| (id, (kind == EventKind::ScaledToZero).then_some(at)))
        .collect();
    let mut by_resource: HashMap<&str, Vec<&SeenActivity>> = HashMap::new();
    for a in acts {
        by_resource
            .entry(a.resource_id.as_str())
            .or_default()
            .push(a);
    }
    let mut all = Vec::new();
    for t in tracked {
        if let Some(state) = alarms.get(&t.names.alarm) {
            all.extend(from_alarm(t, state));
        }
        if let Some(list) = by_resource.get_mut(t.names.resource_id.as_str()) {
            // AWS lists newest first: reversed, a stable sort keeps activities that started
            // in the same instant in the order AWS made them.
            list.reverse();
            list.sort_by_key(|a| a.start);
            let mut at_zero = states.get(&t.target_id).copied().flatten();
            all.extend(from_activities(t, &mut at_zero, list));
        }
    }
    let new = events::insert(&mut tx, &all).await?;
    // Subscribers hear of the new ones in the same transaction: at least once, never lost.
    for n in new.iter().filter_map(notification) {
        webhooks::fan_out(&mut tx, &n).await?;
    }
    tx.commit().await?;
    let kinds: HashMap<i64, &'static str> = tracked.iter().map(|t| (t.target_id, t.kind)).collect();
    for e in &new {
        count(kinds.get(&e.target_id).copied().unwrap_or("unknown"), e);
    }
    Ok(new.len())
}

/// What subscribers may be told of a new event: a failed wake, and a wake (slow or not: each
/// subscription has its own threshold).
pub fn notification(e: &NewEvent) -> Option<webhooks::Notification> {
    let kind = match e.kind {
        EventKind::WakeFailed => NotificationKind::WakeFailed,
        EventKind::CapacityInService => NotificationKind::WakeSlow,
        EventKind::DriftRepaired => NotificationKind::DriftRepaired,
        _ => return None,
    };
    let mut n = webhooks::Notification::new(
        kind.as_str(),
        e.target_id,
        e.source.clone(),
        e.at,
        e.details.clone(),
    );
    if kind == NotificationKind::WakeSlow {
        n.wake_seconds = Some(e.details["wake_seconds"].as_f64()?);
    }
    Some(n)
}

/// The metrics of a newly recorded event: wakes, failed wakes, wake latency, seconds at zero.
fn count(kind: &'static str, e: &NewEvent) {
    match e.kind {
        EventKind::WakeStarted => {
            metrics::counter!("zeroscale_wakes_total", "kind" => kind).increment(1);
        }
        EventKind::WakeFailed => {
            metrics::counter!("zeroscale_wake_failures_total", "kind" => kind).increment(1);
        }
        EventKind::CapacityInService => {
            if let Some(s) = e.details["wake_seconds"].as_f64() {
                metrics::histogram!("zeroscale_wake_seconds", "kind" => kind).record(s);
            }
            // Counted once per stretch at zero, when it ends.
            if let Some(s) = e.details["zero_seconds"].as_f64() {
                metrics::counter!("zeroscale_seconds_at_zero_total", "kind" => kind)
                    .increment(s.max(0.0).round() as u64);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ComponentName, TargetRef};

    fn act(
        id: &str,
        status: &str,
        to: u32,
        cause: &str,
        start: i64,
        end: Option<i64>,
    ) -> SeenActivity {
        let t = |s: i64| DateTime::<Utc>::from_timestamp(1_800_000_000 + s, 0).unwrap();
        SeenActivity {
            id: id.into(),
            resource_id: "inference-component/ic".into(),
            status: status.into(),
            description: format!("Setting desired copy count to {to}."),
            cause: cause.into(),
            message: (status == "Failed").then(|| "Failed to set desired copy count to 1. Reason: The account-level service limit 'ml.g5.xlarge for endpoint usage' is 0 Instances".into()),
            not_scaled: Vec::new(),
            start: t(start),
            end: end.map(t),
        }
    }

    #[test]
    fn a_cycle_becomes_scale_in_wake_and_in_service() {
        let names = TargetRef::Component(ComponentName::parse("ic").unwrap()).owned_names();
        let t = Tracked {
            target_id: 1,
            kind: "component",
            names: &names,
        };
        let step = format!(
            "monitor alarm {} in state ALARM triggered policy {}",
            names.alarm, names.step_policy
        );
        let to_zero = act(
            "a",
            "Successful",
            0,
            "monitor alarm AlarmLow triggered policy tt",
            0,
            Some(0),
        );
        let wake = act("b", "Successful", 1, &step, 600, Some(780));
        let mut at_zero = None;
        let evs = from_activities(&t, &mut at_zero, &[&to_zero, &wake]);
        let kinds: Vec<_> = evs.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::ScaledToZero,
                EventKind::WakeStarted,
                EventKind::CapacityInService
            ]
        );
        assert_eq!(evs[1].details["at_zero_seconds"], 600.0);
        assert_eq!(evs[2].details["wake_seconds"], 180.0);
        assert_eq!(at_zero, None);
        let failed = act("c", "Failed", 1, &step, 900, Some(960));
        let evs = from_activities(&t, &mut Some(evs[0].at), &[&failed]);
        assert_eq!(evs[1].kind, EventKind::WakeFailed);
        assert_eq!(evs[1].details["reason"], "quota");
    }

    #[test]
    fn a_scheduled_action_is_its_own_event_and_not_a_wake() {
        let names = TargetRef::Component(ComponentName::parse("ic").unwrap()).owned_names();
        let t = Tracked {
            target_id: 1,
            kind: "component",
            names: &names,
        };
        let mut fired = act(
            "s",
            "Successful",
            0,
            "scheduled action name zeroscale.schedule.day.start was triggered",
            100,
            Some(100),
        );
        fired.description = "Setting min capacity to 1 and max capacity to 4".into();
        let raise = act(
            "r",
            "Successful",
            1,
            "minimum capacity was set to 1",
            100,
            Some(280),
        );
        let mut at_zero = Some(DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap());
        let evs = from_activities(&t, &mut at_zero, &[&fired, &raise]);
        let kinds: Vec<_> = evs.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::ScheduledActionFired,
                EventKind::WakeStarted,
                EventKind::CapacityInService
            ]
        );
        assert_eq!(evs[2].details["wake_seconds"], 180.0);
        assert_eq!(evs[2].details["zero_seconds"], 280.0);
    }

    #[test]
    fn failure_reasons_read_aws_words() {
        assert_eq!(wake_failure_reason("Failed to set desired instance count to 1. Reason: Unable to provision requested ML compute capacity. Please retry using a different ML instance type."), "insufficient_capacity");
        assert_eq!(wake_failure_reason("something else"), "other");
    }
}

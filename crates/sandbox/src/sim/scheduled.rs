//! Scheduled actions run on the sandbox clock: each run sets the target's MinCapacity and/or
//! MaxCapacity, and capacity outside the new bounds is brought inside, as a scaling activity
//! (aws-facts.md, "Scheduled actions"). While ScheduledScalingSuspended is true, runs that come
//! due are skipped, not made up later ("Application Auto Scaling only evaluates scheduled
//! actions whose execution time has not yet passed").

use crate::autoscaling::schedule;
use crate::world::{Activity, TargetKey, World};

use super::scaling::{capacity, set_capacity};

/// At most this many runs of one action are made in one step of the clock (a `rate(1 minute)`
/// across a jump of days would otherwise record thousands of identical activities).
const MAX_RUNS_PER_STEP: usize = 100;

/// Makes every run due up to `until`.
pub(super) fn run_due(w: &mut World, until: f64) {
    let slots: Vec<(TargetKey, String)> = w.scheduled_actions.keys().cloned().collect();
    for slot in slots {
        for _ in 0..MAX_RUNS_PER_STEP {
            let Some(a) = w.scheduled_actions.get(&slot) else {
                break;
            };
            let (Ok(expr), Ok(tz)) = (
                schedule::parse(&a.schedule),
                schedule::zone(a.timezone.as_deref()),
            ) else {
                break;
            };
            let anchor = a.start.unwrap_or(a.created);
            let next = schedule::next_after(&expr, tz, anchor, (a.start, a.end), a.checked_until);
            match next {
                Some(at) if at <= until => {
                    if let Some(a) = w.scheduled_actions.get_mut(&slot) {
                        a.checked_until = at;
                    }
                    run(w, &slot, at);
                }
                _ => break,
            }
        }
        if let Some(a) = w.scheduled_actions.get_mut(&slot) {
            a.checked_until = a.checked_until.max(until);
        }
    }
}

/// One run of a scheduled action at `at`.
fn run(w: &mut World, (key, name): &(TargetKey, String), at: f64) {
    let Some(action) = w
        .scheduled_actions
        .get(&(key.clone(), name.clone()))
        .cloned()
    else {
        return;
    };
    let Some(target) = w.targets.get(key).cloned() else {
        return;
    };
    if target.suspended_scheduled {
        return;
    }
    let min = action.min.unwrap_or(target.min);
    let max = action.max.unwrap_or(target.max);
    let id = w.id();
    let mut activity = Activity {
        id,
        namespace: key.0.clone(),
        resource_id: key.1.clone(),
        dimension: key.2.clone(),
        description: format!("Setting min capacity to {min} and max capacity to {max}"),
        cause: format!("scheduled action name {name} was triggered"),
        start: at,
        end: at,
        status: "Successful".into(),
        message: format!("Successfully set min capacity to {min} and max capacity to {max}"),
        not_scaled: None,
    };
    if min > max {
        activity.status = "Failed".into();
        activity.message = format!(
            "Failed to set min capacity to {min} and max capacity to {max}. Reason: minimum capacity cannot be greater than maximum capacity"
        );
        w.activities.push(activity);
        return;
    }
    if let Some(t) = w.targets.get_mut(key) {
        t.min = min;
        t.max = max;
    }
    w.activities.push(activity);
    if let Some(current) = capacity(w, &key.1) {
        let new = current.clamp(min, max);
        if new != current {
            let why = if new > current {
                format!("minimum capacity was set to {min}")
            } else {
                format!("maximum capacity was set to {max}")
            };
            set_capacity(w, key, new, &why, at);
        }
    }
}

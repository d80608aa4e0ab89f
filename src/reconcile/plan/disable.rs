//! The plan of a disable: step aside, restoring what was there before zeroscale.

use super::{Baseline, Observed, ObservedTarget, Step, Suspended};
use crate::domain::OwnedNames;

/// The writes that turn scale-to-zero off: our alarms, then our policies and the target as
/// they were before zeroscale (`baseline`): a target zeroscale registered is deregistered (its
/// policies go with it), one that existed is restored to its capacities. Objects zeroscale did
/// not create are never touched; a target zeroscale registered that now carries someone
/// else's policies stays registered (at `restore_min`), with a warning. AWS's own
/// `TargetTracking-*` alarms go with their policy, by AWS.
pub fn plan_disable(
    names: &OwnedNames,
    o: &Observed,
    (baseline, restore_min, before_pause): (Option<Baseline>, i32, Option<Suspended>),
) -> (Vec<Step>, Option<String>) {
    let mut steps = Vec::new();
    if o.alarm.is_some() {
        steps.push(Step::DeleteAlarm {
            alarm_name: names.alarm.clone(),
        });
    }
    if o.legacy_alarm {
        steps.push(Step::DeleteAlarm {
            alarm_name: names.legacy_alarm.clone(),
        });
    }
    let Some(current) = o.target else {
        // Not listed: gone, or registered a moment ago and not listed yet (registration is
        // eventually consistent). If zeroscale may have written here (a baseline was recorded
        // before its first write), what it may have put is removed by name: deleting something
        // already gone is done (ObjectNotFoundException is tolerated).
        if let Some(b) = baseline {
            steps.push(Step::DeleteScalingPolicy {
                policy_name: names.step_policy.clone(),
            });
            steps.push(Step::DeleteScalingPolicy {
                policy_name: names.target_tracking_policy.clone(),
            });
            if b == Baseline::Absent {
                steps.push(Step::DeregisterScalableTarget);
            }
        }
        return (steps, None);
    };
    // Never captured and nothing of ours there: the target was never touched by zeroscale.
    let baseline = match baseline {
        Some(b) => b,
        None if o.owns_something() => Baseline::Unknown,
        None => return (steps, None),
    };
    if baseline == Baseline::Absent && o.foreign_policies.is_empty() {
        // Deregistering deletes the target's policies and scheduled actions with it.
        steps.push(Step::DeregisterScalableTarget);
        return (steps, None);
    }
    steps.extend(o.scheduled.keys().map(|name| Step::DeleteScheduledAction {
        scheduled_action_name: name.clone(),
    }));
    if o.step.is_some() {
        steps.push(Step::DeleteScalingPolicy {
            policy_name: names.step_policy.clone(),
        });
    }
    if o.target_tracking.is_some() {
        steps.push(Step::DeleteScalingPolicy {
            policy_name: names.target_tracking_policy.clone(),
        });
    }
    let (restore, register) = restore(current, baseline, restore_min, before_pause);
    steps.extend(register);
    let warning = (baseline == Baseline::Absent).then(|| format!(
        "zeroscale registered this scalable target, but policies it did not create are on it ({}): it stays registered (MinCapacity {}) so they keep working. Deregister it yourself to step aside completely (for example before an UpdateEndpoint that changes the instance type)",
        o.foreign_policies.join(", "), restore.0
    ));
    (steps, warning)
}

/// The capacities (and SuspendedState) to give back, and the registration that does it when
/// the target is not already so: the baseline's, or `restore_min` (and the current max, at
/// least that) when what came before is unknown or was nothing.
fn restore(
    current: ObservedTarget,
    baseline: Baseline,
    restore_min: i32,
    before_pause: Option<Suspended>,
) -> ((i32, i32), Option<Step>) {
    let (restore, suspended) = match baseline {
        Baseline::Existed {
            min,
            max,
            suspended,
        } => ((min, max), Some(suspended)),
        // What came before is unknown or was nothing: a pause of zeroscale's is given back as
        // the target was before it; anything else is left as it is.
        Baseline::Absent | Baseline::Unknown => (
            (restore_min, current.max.max(restore_min)),
            before_pause.map(|s| {
                (
                    s.dynamic_scaling_in_suspended,
                    s.dynamic_scaling_out_suspended,
                    s.scheduled_scaling_suspended,
                )
            }),
        ),
    };
    let now = (
        current.suspended_in,
        current.suspended_out,
        current.suspended_scheduled,
    );
    let suspended_state = suspended.filter(|s| *s != now).map(|s| Suspended {
        dynamic_scaling_in_suspended: s.0,
        dynamic_scaling_out_suspended: s.1,
        scheduled_scaling_suspended: s.2,
    });
    let register = ((current.min, current.max) != restore || suspended_state.is_some()).then_some(
        Step::RegisterScalableTarget {
            min_capacity: restore.0,
            max_capacity: restore.1,
            suspended_state,
        },
    );
    (restore, register)
}

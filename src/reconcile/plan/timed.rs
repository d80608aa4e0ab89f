//! The parts of the desired state that depend on the time: the MinCapacity the schedules and a
//! keep-warm pin hold, whether scaling is paused, and the scheduled actions that carry both on
//! AWS's clock.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{ObservedTarget, Step, Suspended};
use crate::{
    domain::{
        schedule::{scheduled_min, scheduled_mins_between},
        TargetSpec,
    },
    reconcile::objects::{scheduled_action, ScheduledAction},
};

/// The MinCapacity a target may have. Scheduled actions change it on AWS's clock, which
/// zeroscale's may not match to the second (and AWS runs an action up to a minute late), so any
/// value the schedules hold within [`SKEW`] of now is accepted, as long as it is at least an
/// active pin's copies; anything else is set to `now`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Floor {
    /// What the schedules and the pin hold now (registered when the current value is not
    /// accepted).
    pub now: i32,
    /// Every value the schedules hold within [`SKEW`] of now.
    pub accepted: Vec<i32>,
    /// An active pin's copies: never less.
    pub at_least: i32,
}

impl Floor {
    /// Whether `min` is one zeroscale leaves alone.
    pub fn accepts(&self, min: i32) -> bool {
        min >= self.at_least && (min == self.now || self.accepted.contains(&min))
    }
}

/// How far AWS's clock and zeroscale's may be apart when a scheduled action runs.
pub const SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// What the spec wants at `now`: the floor, whether scaling is paused, and our scheduled
/// actions (a pin's end only while the pin holds).
pub fn at(spec: &TargetSpec, now: DateTime<Utc>) -> (Floor, bool, Vec<ScheduledAction>) {
    let schedules = spec.schedules();
    let pin = spec.keep_warm().filter(|p| p.active(now));
    let pin_copies = pin.map_or(0, |p| p.copies as i32);
    let scheduled_now = scheduled_min(schedules, now) as i32;
    let mut actions = scheduled_action::for_schedules(schedules);
    if let Some(p) = pin {
        actions.push(scheduled_action::end_of_pin(p, schedules));
    }
    let accepted = scheduled_mins_between(schedules, now - SKEW, now + SKEW)
        .into_iter()
        .map(|m| m as i32)
        .collect();
    let floor = Floor {
        now: scheduled_now.max(pin_copies),
        accepted,
        at_least: pin_copies,
    };
    let paused = spec.pause().is_some_and(|p| p.active(now));
    (floor, paused, actions)
}

/// The SuspendedState to register, if the observed one is not what is wanted: while paused,
/// everything suspended; otherwise what the target had before the pause (`before_pause`, else
/// what it has now), with scale-out resumed (it keeps the step policy from waking the target)
/// and scheduled scaling resumed while we have scheduled actions. An owner's suspension of
/// scale-in is kept.
pub fn suspension(
    t: &ObservedTarget,
    paused: bool,
    has_actions: bool,
    before_pause: Option<Suspended>,
) -> Option<Suspended> {
    let now = Suspended {
        dynamic_scaling_in_suspended: t.suspended_in,
        dynamic_scaling_out_suspended: t.suspended_out,
        scheduled_scaling_suspended: t.suspended_scheduled,
    };
    let wanted = if paused {
        Suspended {
            dynamic_scaling_in_suspended: true,
            dynamic_scaling_out_suspended: true,
            scheduled_scaling_suspended: true,
        }
    } else {
        let base = before_pause.unwrap_or(now);
        Suspended {
            dynamic_scaling_in_suspended: base.dynamic_scaling_in_suspended,
            dynamic_scaling_out_suspended: false,
            scheduled_scaling_suspended: base.scheduled_scaling_suspended && !has_actions,
        }
    };
    (wanted != now).then_some(wanted)
}

/// The writes that bring our scheduled actions to `desired`: puts for new or changed ones,
/// deletes for ours that are no longer wanted.
pub fn scheduled_steps(
    desired: &[ScheduledAction],
    observed: &BTreeMap<String, Value>,
) -> Vec<Step> {
    let mut steps: Vec<Step> = desired
        .iter()
        .filter(|a| observed.get(&a.name) != Some(&a.config()))
        .map(|a| Step::PutScheduledAction {
            scheduled_action_name: a.name.clone(),
            configuration: a.config(),
        })
        .collect();
    steps.extend(
        observed
            .keys()
            .filter(|name| !desired.iter().any(|a| &&a.name == name))
            .map(|name| Step::DeleteScheduledAction {
                scheduled_action_name: name.clone(),
            }),
    );
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ComponentSpec, KeepWarm, Pause, Schedule};

    fn spec() -> ComponentSpec {
        ComponentSpec {
            schedules: vec![Schedule {
                name: "business-hours".into(),
                cron: "0 8 * * MON-FRI".into(),
                end_cron: Some("0 20 * * MON-FRI".into()),
                timezone: "Asia/Tokyo".into(),
                min_capacity: 1,
            }],
            ..Default::default()
        }
    }

    fn at_utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_pin_raises_the_floor_and_ends_by_an_at_action() {
        let mut s = spec();
        s.keep_warm = Some(KeepWarm {
            until: at_utc("2026-12-05T06:00:00Z"),
            copies: 3,
            reason: None,
            by: "t".into(),
        });
        // Saturday 14:00 JST: outside business hours, inside the pin.
        let (floor, paused, actions) = at(
            &TargetSpec::Component(s.clone()),
            at_utc("2026-12-05T05:00:00Z"),
        );
        assert_eq!((floor.now, floor.at_least, paused), (3, 3, false));
        assert!(!floor.accepts(1) && floor.accepts(3));
        assert_eq!(actions.len(), 3);
        assert_eq!(actions[2].schedule, "at(2026-12-05T06:00:00)");
        // After the pin, on a Saturday: the schedules hold 0.
        let (floor, _, actions) = at(
            &TargetSpec::Component(s.clone()),
            at_utc("2026-12-05T07:00:00Z"),
        );
        assert_eq!(floor.now, 0);
        assert!(floor.accepts(0) && !floor.accepts(1));
        assert_eq!(actions.len(), 2);
        // Within minutes of a run (Monday 08:00 JST), AWS's value and the one before are both
        // left alone: the clocks may differ.
        let (floor, _, _) = at(
            &TargetSpec::Component(s.clone()),
            at_utc("2026-12-06T22:58:00Z"),
        );
        assert_eq!(floor.now, 0);
        assert!(floor.accepts(1) && floor.accepts(0));
        // In business hours, 0 is no longer what the schedule holds: it is raised.
        let (floor, _, _) = at(&TargetSpec::Component(s), at_utc("2026-12-07T01:00:00Z"));
        assert_eq!(floor.now, 1);
        assert!(!floor.accepts(0) && floor.accepts(1));
    }

    #[test]
    fn a_pause_suspends_everything_and_its_end_lifts_it_whole() {
        let mut s = spec();
        s.pause = Some(Pause {
            until: at_utc("2026-12-05T06:00:00Z"),
            reason: None,
            by: "t".into(),
            since: at_utc("2026-12-05T05:00:00Z"),
        });
        let (_, paused, _) = at(&TargetSpec::Component(s), at_utc("2026-12-05T05:30:00Z"));
        assert!(paused);
        let free = ObservedTarget::default();
        let all = suspension(&free, true, true, None).unwrap();
        assert!(all.dynamic_scaling_in_suspended && all.scheduled_scaling_suspended);
        let frozen = ObservedTarget {
            suspended_in: true,
            suspended_out: true,
            suspended_scheduled: true,
            ..Default::default()
        };
        assert_eq!(suspension(&frozen, true, false, None), None);
        // After our pause: what was there before it comes back (here, nothing suspended).
        assert_eq!(
            suspension(&frozen, false, false, Some(Suspended::default())),
            Some(Suspended::default())
        );
        // The owner had suspended scale-in before the pause: it stays suspended.
        let owners = Suspended {
            dynamic_scaling_in_suspended: true,
            ..Default::default()
        };
        assert_eq!(suspension(&frozen, false, true, Some(owners)), Some(owners));
        // Nothing recorded (an owner suspended everything): scale-out is resumed, scheduled
        // scaling too while we have scheduled actions, scale-in stays the owner's.
        let resumed = suspension(&frozen, false, true, None).unwrap();
        assert!(resumed.dynamic_scaling_in_suspended);
        assert!(!resumed.dynamic_scaling_out_suspended && !resumed.scheduled_scaling_suspended);
    }
}

//! The kinds of event on a target's timeline (`target_events`): what AWS did, read from its
//! scaling activities and alarm states, and what zeroscale did.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What happened to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A version enabling (or updating) scale-to-zero was applied to AWS.
    Enabled,
    /// Scale-to-zero was turned off and AWS restored.
    Disabled,
    /// A scaling activity brought the capacity to zero.
    ScaledToZero,
    /// Requests arrived at zero capacity: the minute of the first datapoint that put the
    /// scale-from-zero alarm in ALARM.
    RequestAtZero,
    /// The scale-from-zero alarm entered ALARM (its action runs the step policy).
    AlarmFired,
    /// A scaling activity started bringing the target out of zero.
    WakeStarted,
    /// That activity finished: capacity is in service; `wake_seconds` is its StartTime to
    /// EndTime on AWS's clock.
    CapacityInService,
    /// That activity failed; `reason` is `quota`, `insufficient_capacity` or `other`, and
    /// `message` is AWS's StatusMessage. Or our step policy ran at zero and Application Auto
    /// Scaling did not scale (`reason` `not_scaled`, with its NotScaledReasons).
    WakeFailed,
    /// One of zeroscale's scheduled actions (a schedule's edge or a keep-warm end) ran.
    ScheduledActionFired,
    /// A pause was applied (scaling suspended).
    Paused,
    /// A pause was lifted (by a user, or by zeroscale when it expired).
    Resumed,
    /// The observation pass found AWS differing from the desired version, and a run repaired it.
    DriftRepaired,
}

impl EventKind {
    pub const ALL: [EventKind; 12] = [
        Self::Enabled,
        Self::Disabled,
        Self::ScaledToZero,
        Self::RequestAtZero,
        Self::AlarmFired,
        Self::WakeStarted,
        Self::CapacityInService,
        Self::WakeFailed,
        Self::ScheduledActionFired,
        Self::Paused,
        Self::Resumed,
        Self::DriftRepaired,
    ];

    /// The stored (and wire) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
            Self::ScaledToZero => "scaled_to_zero",
            Self::RequestAtZero => "request_at_zero",
            Self::AlarmFired => "alarm_fired",
            Self::WakeStarted => "wake_started",
            Self::CapacityInService => "capacity_in_service",
            Self::WakeFailed => "wake_failed",
            Self::ScheduledActionFired => "scheduled_action_fired",
            Self::Paused => "paused",
            Self::Resumed => "resumed",
            Self::DriftRepaired => "drift_repaired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }
}

//! Scheduled actions (PutScheduledAction): a schedule's start and end, and the `at(...)` that
//! ends a keep-warm window. They set MinCapacity on AWS's clock, so they hold while zeroscale is
//! down (aws-facts.md, "Scheduled actions").
//!
//! Names are unique per scalable target (the target is part of the action's key), and
//! zeroscale's are `zeroscale.` + what they are for: `zeroscale.schedule.<schedule>.start` and
//! `.end`, `zeroscale.keep-warm.end`. Schedule names are letters, digits and hyphens, and AWS
//! refuses `:`, `/` and `|` in action names, so `.` separates the parts and the name reads back
//! into them: the mapping is injective. Any other action on the target is someone else's and
//! is never touched.

use aws_sdk_applicationautoscaling::types::{ScalableTargetAction, ScheduledAction as Listed};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::domain::{schedule, KeepWarm, Schedule};

/// Every scheduled action zeroscale names starts with this.
pub const PREFIX: &str = "zeroscale.";

/// One scheduled action zeroscale puts.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledAction {
    pub name: String,
    /// `cron(...)` (AWS's six fields) or `at(yyyy-mm-ddThh:mm:ss)`.
    pub schedule: String,
    /// IANA zone; None is UTC (an `at` is written in UTC).
    pub timezone: Option<String>,
    pub min_capacity: i32,
}

impl ScheduledAction {
    /// The comparable configuration, in the shape [`read_back`] produces.
    pub fn config(&self) -> Value {
        json!({
            "Schedule": self.schedule,
            "Timezone": self.timezone,
            "StartTime": null,
            "EndTime": null,
            "MinCapacity": self.min_capacity,
            "MaxCapacity": null,
        })
    }

    /// What `apply` sends as ScalableTargetAction (MinCapacity only: MaxCapacity stays the
    /// spec's).
    pub fn target_action(&self) -> ScalableTargetAction {
        ScalableTargetAction::builder()
            .min_capacity(self.min_capacity)
            .build()
    }
}

/// UTC under either name: sent as no Timezone (AWS's default), and read back the same however
/// AWS lists it, so a UTC schedule never looks edited.
fn is_utc(zone: &str) -> bool {
    matches!(zone, "UTC" | "Etc/UTC")
}

/// The schedules' scheduled actions, start then end of each.
pub fn for_schedules(schedules: &[Schedule]) -> Vec<ScheduledAction> {
    schedules
        .iter()
        .flat_map(|s| {
            let zone = (!is_utc(&s.timezone)).then(|| s.timezone.clone());
            s.boundaries().into_iter().map(move |b| ScheduledAction {
                name: format!("{PREFIX}schedule.{}.{}", s.name, b.edge),
                schedule: format!("cron({})", b.aws_cron),
                timezone: zone.clone(),
                min_capacity: b.min_capacity as i32,
            })
        })
        .collect()
}

/// The action that ends an active keep-warm window: at `until`, MinCapacity goes to what the
/// schedules hold then. AWS's `at()` has whole seconds, so the window is rounded up to one.
pub fn end_of_pin(pin: &KeepWarm, schedules: &[Schedule]) -> ScheduledAction {
    let until = pin.until;
    let rounded = DateTime::<Utc>::from_timestamp(
        until.timestamp() + i64::from(until.timestamp_subsec_nanos() > 0),
        0,
    )
    .unwrap_or(until);
    ScheduledAction {
        name: format!("{PREFIX}keep-warm.end"),
        schedule: format!("at({})", rounded.format("%Y-%m-%dT%H:%M:%S")),
        timezone: None,
        min_capacity: schedule::scheduled_min(schedules, rounded) as i32,
    }
}

/// A scheduled action as DescribeScheduledActions lists it: its name and the configuration in
/// the shape [`ScheduledAction::config`] produces.
pub fn read_back(a: &Listed) -> (String, Value) {
    let time = |t: Option<&aws_smithy_types::DateTime>| t.map(|t| t.secs());
    let action = a.scalable_target_action();
    (
        a.scheduled_action_name().to_string(),
        json!({
            "Schedule": a.schedule(),
            "Timezone": a.timezone().filter(|z| !is_utc(z)),
            "StartTime": time(a.start_time()),
            "EndTime": time(a.end_time()),
            "MinCapacity": action.and_then(|x| x.min_capacity()),
            "MaxCapacity": action.and_then(|x| x.max_capacity()),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};

    fn listed(a: &ScheduledAction) -> Listed {
        Listed::builder()
            .scheduled_action_name(&a.name)
            .scheduled_action_arn("arn:aws:autoscaling:us-east-1:123456789012:scheduledAction:x")
            .service_namespace(ServiceNamespace::Sagemaker)
            .schedule(&a.schedule)
            .set_timezone(a.timezone.clone())
            .resource_id("inference-component/ic")
            .scalable_dimension(ScalableDimension::SageMakerInferenceComponentDesiredCopyCount)
            .scalable_target_action(a.target_action())
            .creation_time(aws_smithy_types::DateTime::from_secs(0))
            .build()
            .unwrap()
    }

    /// What `apply` puts, listed back, is what the plan configured: no repair on every check.
    #[test]
    fn what_apply_sends_reads_back_as_the_plan_configures_it() {
        let hours = Schedule {
            name: "business-hours".into(),
            cron: "0 8 * * MON-FRI".into(),
            end_cron: Some("0 20 * * MON-FRI".into()),
            timezone: "Asia/Tokyo".into(),
            min_capacity: 1,
        };
        let pin = KeepWarm {
            until: "2026-12-01T10:00:00.5Z".parse().unwrap(),
            copies: 2,
            reason: None,
            by: "t".into(),
        };
        let mut actions = for_schedules(std::slice::from_ref(&hours));
        actions.push(end_of_pin(&pin, &[hours]));
        assert_eq!(actions[0].name, "zeroscale.schedule.business-hours.start");
        assert_eq!(actions[0].schedule, "cron(0 8 ? * MON-FRI *)");
        assert_eq!(actions[1].min_capacity, 0);
        assert_eq!(actions[2].schedule, "at(2026-12-01T10:00:01)");
        for a in &actions {
            assert_eq!(read_back(&listed(a)), (a.name.clone(), a.config()));
        }
    }
}

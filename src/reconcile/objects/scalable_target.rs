//! The scalable target (RegisterScalableTarget): MinCapacity 0 while zeroscale holds it.

use aws_sdk_applicationautoscaling::types::{ScalableTarget, SuspendedState};
use serde::Serialize;

/// A SuspendedState as zeroscale sends it (the plan shows it in AWS's member names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Suspended {
    pub dynamic_scaling_in_suspended: bool,
    pub dynamic_scaling_out_suspended: bool,
    pub scheduled_scaling_suspended: bool,
}

impl Suspended {
    /// What `apply` sends as RegisterScalableTarget's SuspendedState.
    pub fn to_sdk(self) -> SuspendedState {
        SuspendedState::builder()
            .dynamic_scaling_in_suspended(self.dynamic_scaling_in_suspended)
            .dynamic_scaling_out_suspended(self.dynamic_scaling_out_suspended)
            .scheduled_scaling_suspended(self.scheduled_scaling_suspended)
            .build()
    }
}

/// The scalable target as observed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ObservedTarget {
    pub min: i32,
    pub max: i32,
    /// SuspendedState (aws-facts.md, "SuspendedState"): scale-out suspended means the step
    /// policy cannot wake the target.
    pub suspended_in: bool,
    pub suspended_out: bool,
    pub suspended_scheduled: bool,
}

impl ObservedTarget {
    /// Its SuspendedState.
    pub fn suspended(&self) -> Suspended {
        Suspended {
            dynamic_scaling_in_suspended: self.suspended_in,
            dynamic_scaling_out_suspended: self.suspended_out,
            scheduled_scaling_suspended: self.suspended_scheduled,
        }
    }

    /// The same target with scale-out resumed and the rest of its SuspendedState kept (what
    /// enable registers when scale-out was suspended).
    pub fn resume_scale_out(&self) -> Suspended {
        Suspended {
            dynamic_scaling_in_suspended: self.suspended_in,
            dynamic_scaling_out_suspended: false,
            scheduled_scaling_suspended: self.suspended_scheduled,
        }
    }
}

/// A scalable target as DescribeScalableTargets returns it.
pub fn read_back(t: &ScalableTarget) -> ObservedTarget {
    let s = t.suspended_state();
    let flag = |f: fn(&SuspendedState) -> Option<bool>| s.and_then(f).unwrap_or(false);
    ObservedTarget {
        min: t.min_capacity(),
        max: t.max_capacity(),
        suspended_in: flag(SuspendedState::dynamic_scaling_in_suspended),
        suspended_out: flag(SuspendedState::dynamic_scaling_out_suspended),
        suspended_scheduled: flag(SuspendedState::scheduled_scaling_suspended),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{ComponentName, ComponentSpec, TargetRef, TargetSpec},
        reconcile::plan::{desired_for, plan_enable, Observed, Step},
    };
    use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};

    /// What DescribeScalableTargets lists after a registration with these members.
    fn listed(min: i32, max: i32, suspended: Option<Suspended>) -> ScalableTarget {
        ScalableTarget::builder()
            .service_namespace(ServiceNamespace::Sagemaker)
            .resource_id("inference-component/ic")
            .scalable_dimension(ScalableDimension::SageMakerInferenceComponentDesiredCopyCount)
            .min_capacity(min)
            .max_capacity(max)
            .role_arn("arn:aws:iam::123456789012:role/aws-service-role/x")
            .creation_time(aws_smithy_types::DateTime::from_secs(0))
            .set_suspended_state(suspended.map(Suspended::to_sdk))
            .build()
            .unwrap()
    }

    /// For a new target and for one whose scale-out was suspended: the registration the plan
    /// asks for, sent and listed back, is one the plan no longer wants to change.
    #[test]
    fn what_apply_sends_reads_back_as_the_plan_configures_it() {
        let target = TargetRef::Component(ComponentName::parse("ic").unwrap());
        let d = desired_for(&target, &TargetSpec::Component(ComponentSpec::default()), 4).unwrap();
        let suspended_out = ObservedTarget {
            min: 1,
            max: 2,
            suspended_in: true,
            suspended_out: true,
            suspended_scheduled: false,
        };
        for before in [None, Some(suspended_out)] {
            let observed = Observed {
                target: before,
                ..Default::default()
            };
            let Some(Step::RegisterScalableTarget {
                min_capacity,
                max_capacity,
                suspended_state,
            }) = plan_enable(&d, &observed).into_iter().next()
            else {
                panic!("enabling {before:?} starts with a registration");
            };
            let after = read_back(&listed(min_capacity, max_capacity, suspended_state));
            assert_eq!((after.min, after.max), (0, 4));
            assert_eq!(
                after.suspended_in,
                before.is_some_and(|t| t.suspended_in),
                "the owner's other suspensions stay"
            );
            let again = Observed {
                target: Some(after),
                ..Default::default()
            };
            assert!(
                !plan_enable(&d, &again)
                    .iter()
                    .any(|s| matches!(s, Step::RegisterScalableTarget { .. })),
                "registered as planned, the target is converged: {after:?}"
            );
        }
    }
}

//! Everything an enable needs before its first write, for either kind of target: the kind's
//! preflight, one observation, the resolved max capacity, the quota check and the desired
//! objects. Reads only, so a refusal here means nothing was written to AWS; a dry run is this
//! plus the plan.

use serde::Serialize;

use super::{
    component,
    observe::{self, Purpose},
    plan::{self, Desired, Observed},
    quotas, variant, Warning,
};
use crate::{
    aws::AwsClients,
    domain::{TargetRef, TargetSpec},
    jobs::{ErrorClass, JobError},
};

/// What a kind's preflight learned (no writes were made to learn it).
#[derive(Debug, Clone, Serialize)]
pub struct Preflight {
    pub endpoint: String,
    pub variant: String,
    /// The endpoint's current config, the authoritative record of the variant's settings.
    pub config_name: String,
    /// The variant's instance type; None for a variant of instance pools.
    pub instance_type: Option<String>,
    /// The instance types of the variant's instance pools, if it has them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub instance_pools: Vec<String>,
    /// Components: the variant's MaxInstanceCount, which the instance quota also bounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_instance_count: Option<i32>,
    /// Copies (components) or instances (variants) running now: the last fallback for an
    /// unset max capacity. Not read (None) when the change gives its max capacity and the
    /// component's preflight was answered by the shared listing, which has no copy count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_capacity: Option<i32>,
    pub warnings: Vec<Warning>,
}

impl Preflight {
    /// A preflight of `variant` on `endpoint` that passed, on the settings `pv` of its config
    /// `config_name`.
    pub fn passed(
        (endpoint, variant): (&str, &str),
        config_name: String,
        pv: &aws_sdk_sagemaker::types::ProductionVariant,
        max_instance_count: Option<i32>,
        current_capacity: Option<i32>,
    ) -> Self {
        let (instance_type, instance_pools) = quotas::instance_types(pv);
        Self {
            endpoint: endpoint.to_string(),
            variant: variant.to_string(),
            config_name,
            instance_type,
            instance_pools,
            max_instance_count,
            current_capacity,
            warnings: Vec::new(),
        }
    }
}

/// Everything an enable needs before its first write.
pub struct Prepared {
    pub preflight: Preflight,
    pub observed: Observed,
    pub desired: Desired,
}

/// Preflight, observe and resolve the desired objects of an enabled target. Reads only: a
/// refusal here means nothing was written to AWS.
pub async fn prepare(
    aws: &AwsClients,
    target: &TargetRef,
    spec: &TargetSpec,
    had_scheduled: bool,
) -> Result<Prepared, JobError> {
    let mut pre = match target {
        TargetRef::Component(name) => {
            component::preflight(aws, name.as_str(), spec.max_capacity().is_some()).await?
        }
        TargetRef::EndpointVariant { endpoint, variant } => {
            variant::preflight(aws, endpoint, variant).await?
        }
    };
    let scheduled = had_scheduled || spec.uses_scheduled_actions();
    let observed = observe::observe(aws, &target.owned_names(), Purpose::Enable, scheduled).await?;
    // An unset max keeps the target's current MaxCapacity, else the running capacity.
    let max = spec
        .max_capacity()
        .or(observed.target.map(|t| t.max))
        .or(pre.current_capacity)
        .unwrap_or(1)
        .max(1);
    let (need, why, fix) = match target {
        TargetRef::Component(_) => component::instance_need(&pre, max),
        TargetRef::EndpointVariant { .. } => variant::instance_need(&pre, max),
    };
    holds_fit(spec, max)?;
    let warnings = quotas::check(aws, &pre, need, &why, &fix).await?;
    pre.warnings.extend(warnings);
    let desired = plan::desired_for(target, spec, max).map_err(JobError::permanent)?;
    Ok(Prepared {
        preflight: pre,
        observed,
        desired,
    })
}

/// A schedule's `min_capacity` and an active pin's copies must fit the max capacity the job
/// uses (AWS refuses a MinCapacity above MaxCapacity): refused before any write, naming them.
fn holds_fit(spec: &TargetSpec, max: i32) -> Result<(), JobError> {
    for (i, s) in spec.schedules().iter().enumerate() {
        if s.min_capacity as i32 > max {
            return Err(JobError::permanent(format!(
                "schedules[{i}].min_capacity {} is above the max capacity {max} (the scalable target's MaxCapacity): lower it, or set max_capacity to at least {}",
                s.min_capacity, s.min_capacity
            )));
        }
    }
    let pin = spec.keep_warm().filter(|p| p.active(chrono::Utc::now()));
    if let Some(p) = pin.filter(|p| p.copies as i32 > max) {
        return Err(JobError::permanent(format!(
            "the keep-warm pin's {} copies are above the max capacity {max} (the scalable target's MaxCapacity): raise max_capacity, or end the pin (DELETE .../keep-warm)",
            p.copies
        )));
    }
    Ok(())
}

/// The verdict of a dry run: what the preflight says and the exact writes a job would make.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DryRun {
    /// `ok` when a job would proceed, `blocked` when the preflight refuses, `waiting` while AWS
    /// is changing the resource (a job would wait for it).
    #[schema(example = "ok")]
    pub verdict: String,
    /// Why it is blocked and what to change (when blocked).
    pub message: Option<String>,
    /// Non-blocking findings.
    #[schema(value_type = Vec<Object>)]
    pub warnings: Vec<Warning>,
    /// Policies on the target that zeroscale did not create.
    pub foreign_policies: Vec<String>,
    /// The max capacity the job would use.
    pub resolved_max_capacity: Option<i32>,
    /// The AWS calls, in order, with their parameters (empty: nothing to change).
    #[schema(value_type = Vec<Object>)]
    pub plan: Vec<plan::Step>,
    /// The next three runs of each schedule's scheduled actions, in UTC and local time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schedule_runs: Vec<crate::domain::schedule::ScheduleRuns>,
}

impl DryRun {
    /// A verdict with a message and no plan (blocked, waiting, or a disable's).
    pub fn without_plan(verdict: &str, message: String) -> Self {
        Self {
            verdict: verdict.into(),
            message: Some(message),
            warnings: vec![],
            foreign_policies: vec![],
            resolved_max_capacity: None,
            plan: vec![],
            schedule_runs: vec![],
        }
    }
}

/// Preflight, observe and plan an enable without writing anything anywhere. A permanent
/// preflight failure is a `blocked` verdict; a transient AWS failure is an error.
pub async fn dry_run(
    aws: &AwsClients,
    target: &TargetRef,
    spec: &TargetSpec,
) -> Result<DryRun, JobError> {
    let schedule_runs = crate::domain::schedule::runs(spec.schedules(), chrono::Utc::now());
    match prepare(aws, target, spec, false).await {
        Ok(p) => Ok(DryRun {
            verdict: "ok".into(),
            message: None,
            warnings: p.preflight.warnings,
            foreign_policies: p.observed.foreign_policies.clone(),
            resolved_max_capacity: Some(p.desired.max_capacity),
            plan: plan::plan_enable(&p.desired, &p.observed),
            schedule_runs,
        }),
        // AWS is changing the resource (Updating after every scale-out): a job would wait.
        Err(e) if e.class == ErrorClass::Wait => Ok(DryRun {
            schedule_runs,
            ..DryRun::without_plan("waiting", e.message)
        }),
        Err(e) if e.class == ErrorClass::Permanent => Ok(DryRun {
            schedule_runs,
            ..DryRun::without_plan("blocked", e.message)
        }),
        Err(e) => Err(e),
    }
}

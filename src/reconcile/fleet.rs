//! The fleet observation pass (the `observe` job): drift detection for every enabled target at
//! once, paid per page rather than per target.
//!
//! One pass reads, with batched and paginated calls:
//! - the scalable targets, 50 ResourceIds a DescribeScalableTargets;
//! - our policies, by PolicyNames (50 names, 25 targets, a filter; AWS pages policies at 10).
//!   At 10 a page, reading every policy on every pass would cost 0.2 calls per component on
//!   its own, so a pass reads the policies of one target in [`POLICY_SWEEP`]; the others'
//!   policies are taken as desired, and an edited policy is found within `POLICY_SWEEP` passes.
//!   A deleted step policy shows sooner: AWS removes its ARN from our alarm's actions;
//! - our alarms, by zeroscale's name prefix, 100 a DescribeAlarms;
//! - the namespace's scaling activities newer than the last pass saw (50 a page, newest first);
//! - SageMaker status from ListInferenceComponents / ListEndpoints (100 a page).
//!
//! Each target is then planned as a reconcile would plan it. Only a target whose plan is not
//! empty (or whose component or endpoint is gone or failed while it shows `ready`) gets a
//! repair: a `reconcile` job with reason `drift`, which makes the full preflight. A target whose
//! scaling outcome changed gets its `last_scaling_failure` and Degraded condition updated. An
//! unchanged fleet costs the reads and nothing else. Everything here is background work for the
//! pacer: a user's change overtakes it.

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_applicationautoscaling::types::{ScalingPolicy, ServiceNamespace};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::PgPool;

use super::{
    job_error, objects,
    observe::{scaling_outcome, sort_policy},
    plan::{self, Observed, ObservedAlarm, ObservedPolicy},
    report,
};
use crate::{
    aws::AwsClients,
    domain::{target::ALARM_PREFIX, OwnedNames, TargetRef, TargetSpec},
    jobs::{JobContext, JobError, Registry},
    store::{observation, targets},
};

/// The job that runs one observation pass over the whole fleet.
pub const OBSERVE_JOB: &str = "observe";
/// The observe job's job target: one pass at a time, whatever the replica count.
pub const FLEET: &str = "fleet";
/// A pass reads the policies of one target in this many (see the module).
pub const POLICY_SWEEP: i64 = 2;
/// Scaling-activity pages one pass reads at most (a pass after a long pause reads the newest).
const MAX_ACTIVITY_PAGES: usize = 10;

/// What a pass found (the observe job's output).
#[derive(Debug, Default, Serialize)]
pub struct PassReport {
    pub pass: i64,
    pub targets: usize,
    /// Targets whose policies this pass read.
    pub policies_read_for: usize,
    /// Targets that differ from their desired state, with the first call that would fix each.
    pub differing: BTreeMap<String, String>,
    /// Repairs queued (a target that already has work queued is not queued again).
    pub repairs_queued: usize,
    /// Targets whose scaling outcome changed.
    pub scaling_outcomes_updated: usize,
    pub activities_read: usize,
    /// AWS calls this pass made (pages read).
    pub aws_calls: usize,
}

/// The `observe` job handler.
#[derive(Clone)]
pub struct Observer {
    pub aws: AwsClients,
    pub pool: PgPool,
}

impl Observer {
    /// Registers the `observe` handler.
    pub fn register(self, registry: Registry) -> Registry {
        registry.register(OBSERVE_JOB, self)
    }
}

impl crate::jobs::JobHandler for Observer {
    fn run(&self, _ctx: JobContext) -> crate::jobs::HandlerFuture {
        let this = self.clone();
        Box::pin(crate::aws::in_background(async move {
            let report = pass(&this.aws, &this.pool).await?;
            Ok(Some(json!(report)))
        }))
    }
}

/// A settled target with what the pass needs to plan it.
struct Item {
    row: targets::Settled,
    target: TargetRef,
    names: OwnedNames,
    spec: TargetSpec,
}

/// Runs one observation pass (see the module).
pub async fn pass(aws: &AwsClients, pool: &PgPool) -> Result<PassReport, JobError> {
    let start = observation::begin(pool).await.map_err(JobError::database)?;
    let rows = targets::settled_enabled(pool)
        .await
        .map_err(JobError::database)?;
    let items: Vec<Item> = rows.into_iter().filter_map(item).collect();
    let mut report = PassReport {
        pass: start.number,
        targets: items.len(),
        ..Default::default()
    };
    // By id, not by place in the list: a target being applied is not in this pass's list, and
    // must not move the others between windows.
    let window: Vec<&Item> = items
        .iter()
        .filter(|it| it.row.id % POLICY_SWEEP == start.number % POLICY_SWEEP)
        .collect();
    report.policies_read_for = window.len();
    let calls = &mut report.aws_calls;
    let scalable = read_targets(aws, &items, calls).await?;
    let policies = read_policies(aws, &window, calls).await?;
    let alarms = read_alarms(aws, calls).await?;
    let sagemaker = read_sagemaker(aws, &items, calls).await?;
    let (outcomes, seen_until, read) =
        read_activities(aws, start.activities_seen_until, calls).await?;
    report.activities_read = read;
    let in_window: HashSet<i64> = window.iter().map(|it| it.row.id).collect();
    for it in &items {
        let observed = observed_for(
            it,
            &scalable,
            &policies,
            &alarms,
            in_window.contains(&it.row.id),
        );
        match differs(it, &observed, &sagemaker)? {
            Some(why) => {
                report.differing.insert(it.target.to_string(), why);
                report.repairs_queued += usize::from(queue_repair(pool, it).await?);
            }
            None => {
                if let Some(outcome) = outcomes.get(&it.names.resource_id) {
                    if record_outcome(pool, it, outcome).await? {
                        report.scaling_outcomes_updated += 1;
                    }
                }
            }
        }
    }
    if report.repairs_queued > 0 {
        let _ = crate::store::jobs::notify_workers(pool).await;
    }
    observation::finish(pool, seen_until)
        .await
        .map_err(JobError::database)?;
    Ok(report)
}

/// Why a target needs a repair (the first call its plan would make, or what is wrong with its
/// SageMaker resource while it shows `ready`); None when it is as desired.
fn differs(
    it: &Item,
    observed: &Observed,
    sagemaker: &SageMakerStatus,
) -> Result<Option<String>, JobError> {
    let max = it
        .spec
        .max_capacity()
        .or(observed.target.map(|t| t.max))
        .unwrap_or(1)
        .max(1);
    let desired = plan::desired_for(&it.target, &it.spec, max).map_err(JobError::permanent)?;
    let steps = plan::plan_enable(&desired, observed);
    Ok(match (steps.first(), sagemaker.problem(&it.target)) {
        (Some(step), _) => Some(call_name(step)),
        (None, Some(problem)) if it.row.phase == "ready" => Some(problem),
        _ => None,
    })
}

/// Queues a drift repair (a `reconcile` job, reason `drift`) unless the target already has
/// work queued or running; true when queued.
async fn queue_repair(pool: &PgPool, it: &Item) -> Result<bool, JobError> {
    let args = super::reconcile_args(&it.row.kind, &it.row.name, "drift");
    crate::store::jobs::enqueue_if_idle(pool, super::RECONCILE_JOB, &it.target.job_target(), &args)
        .await
        .map_err(JobError::database)
}

/// A stored target the pass can plan; one it cannot read is logged and skipped.
fn item(row: targets::Settled) -> Option<Item> {
    let target = match TargetRef::from_stored(&row.kind, &row.name) {
        Ok(t) => t,
        Err(why) => {
            tracing::warn!(kind = %row.kind, target = %row.name, %why, "observation: unreadable stored target");
            return None;
        }
    };
    let spec = match TargetSpec::from_stored(target.target_kind(), &row.spec) {
        Ok(s) => s,
        Err(why) => {
            tracing::warn!(target = %target, %why, "observation: unreadable stored spec");
            return None;
        }
    };
    Some(Item {
        names: target.owned_names(),
        target,
        spec,
        row,
    })
}

/// The AWS call a plan step makes, for the report.
fn call_name(step: &plan::Step) -> String {
    serde_json::to_value(step)
        .ok()
        .and_then(|v| v["call"].as_str().map(str::to_string))
        .unwrap_or_else(|| "a write".into())
}

/// What AWS holds for one target, from the pass's reads. Outside the policy window, the
/// policies are taken as desired, the step policy's ARN as the one our alarm fires.
fn observed_for(
    it: &Item,
    scalable: &HashMap<String, plan::ObservedTarget>,
    policies: &HashMap<String, Vec<ScalingPolicy>>,
    alarms: &HashMap<String, Value>,
    in_window: bool,
) -> Observed {
    let mut observed = Observed {
        target: scalable.get(&it.names.resource_id).copied(),
        alarm: alarms.get(&it.names.alarm).map(|config| ObservedAlarm {
            config: config.clone(),
        }),
        ..Default::default()
    };
    if in_window {
        for p in policies.get(&it.names.resource_id).into_iter().flatten() {
            sort_policy(&it.names, p, &mut observed);
        }
    } else if observed.target.is_some() {
        let max = it.spec.max_capacity().unwrap_or(1);
        if let Ok(d) = plan::desired_for(&it.target, &it.spec, max) {
            let fired = observed
                .alarm
                .as_ref()
                .and_then(|a| a.config["AlarmActions"][0].as_str())
                .unwrap_or_default()
                .to_string();
            observed.target_tracking = Some(ObservedPolicy {
                arn: String::new(),
                config: d.target_tracking.config(),
            });
            observed.step = Some(ObservedPolicy {
                arn: fired,
                config: d.step.config(),
            });
        }
    }
    observed
}

/// Every target's scalable target, 50 ResourceIds a call, by resource id (ours: the target's
/// dimension only).
async fn read_targets(
    aws: &AwsClients,
    items: &[Item],
    calls: &mut usize,
) -> Result<HashMap<String, plan::ObservedTarget>, JobError> {
    let dims: HashMap<&str, &str> = items
        .iter()
        .map(|it| {
            (
                it.names.resource_id.as_str(),
                it.names.scalable_dimension.as_str(),
            )
        })
        .collect();
    let ids: Vec<&str> = dims.keys().copied().collect();
    let mut out = HashMap::new();
    for chunk in ids.chunks(50) {
        let pages = aws
            .autoscaling
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Sagemaker)
            .set_resource_ids(Some(chunk.iter().map(|s| s.to_string()).collect()))
            .max_results(50)
            .into_paginator()
            .send();
        let pages = aws
            .pages("application-autoscaling", "DescribeScalableTargets", pages)
            .await
            .map_err(job_error)?;
        *calls += pages.len();
        for t in pages.iter().flat_map(|p| p.scalable_targets()) {
            if dims.get(t.resource_id()) == Some(&t.scalable_dimension().as_str()) {
                out.insert(
                    t.resource_id().to_string(),
                    objects::scalable_target::read_back(t),
                );
            }
        }
    }
    Ok(out)
}

/// Our policies on the window's targets, by resource id: PolicyNames 50 at a time (two per
/// target), across the namespace.
async fn read_policies(
    aws: &AwsClients,
    window: &[&Item],
    calls: &mut usize,
) -> Result<HashMap<String, Vec<ScalingPolicy>>, JobError> {
    let ours: HashSet<(&str, &str)> = window
        .iter()
        .flat_map(|it| {
            [
                (
                    it.names.resource_id.as_str(),
                    it.names.target_tracking_policy.as_str(),
                ),
                (it.names.resource_id.as_str(), it.names.step_policy.as_str()),
            ]
        })
        .collect();
    let mut out: HashMap<String, Vec<ScalingPolicy>> = HashMap::new();
    for chunk in window.chunks(25) {
        let names: Vec<String> = chunk
            .iter()
            .flat_map(|it| {
                [
                    it.names.target_tracking_policy.clone(),
                    it.names.step_policy.clone(),
                ]
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let pages = aws
            .autoscaling
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Sagemaker)
            .set_policy_names(Some(names))
            .max_results(10)
            .into_paginator()
            .send();
        let pages = aws
            .pages("application-autoscaling", "DescribeScalingPolicies", pages)
            .await
            .map_err(job_error)?;
        *calls += pages.len();
        for p in pages.iter().flat_map(|p| p.scaling_policies()) {
            // A same-named policy on another resource is not ours.
            if ours.contains(&(p.resource_id(), p.policy_name())) {
                out.entry(p.resource_id().to_string())
                    .or_default()
                    .push(p.clone());
            }
        }
    }
    Ok(out)
}

/// Every alarm under zeroscale's prefix, 100 a page, as comparable configurations by name.
async fn read_alarms(
    aws: &AwsClients,
    calls: &mut usize,
) -> Result<HashMap<String, Value>, JobError> {
    let pages = aws
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix(ALARM_PREFIX)
        .max_records(100)
        .into_paginator()
        .send();
    let pages = aws
        .pages("monitoring", "DescribeAlarms", pages)
        .await
        .map_err(job_error)?;
    *calls += pages.len();
    Ok(pages
        .iter()
        .flat_map(|p| p.metric_alarms())
        .map(|a| {
            (
                a.alarm_name().unwrap_or_default().to_string(),
                objects::alarm::read_back(a),
            )
        })
        .collect())
}

/// SageMaker's status of every component and endpoint, from the List calls (made only for the
/// kinds the fleet has).
#[derive(Default)]
struct SageMakerStatus {
    components: HashMap<String, String>,
    endpoints: HashMap<String, String>,
}

impl SageMakerStatus {
    /// Why the target's SageMaker resource cannot be scaled (gone, failed or being deleted).
    fn problem(&self, target: &TargetRef) -> Option<String> {
        let (what, status) = match target {
            TargetRef::Component(name) => (
                format!("inference component {name}"),
                self.components.get(name.as_str()),
            ),
            TargetRef::EndpointVariant { endpoint, .. } => (
                format!("endpoint {endpoint}"),
                self.endpoints.get(endpoint.as_str()),
            ),
        };
        match status.map(String::as_str) {
            None => Some(format!("{what} is not listed")),
            Some(s @ ("Failed" | "Deleting" | "OutOfService")) => Some(format!("{what} is {s}")),
            Some(_) => None,
        }
    }
}

async fn read_sagemaker(
    aws: &AwsClients,
    items: &[Item],
    calls: &mut usize,
) -> Result<SageMakerStatus, JobError> {
    let mut out = SageMakerStatus::default();
    if items
        .iter()
        .any(|it| matches!(it.target, TargetRef::Component(_)))
    {
        let pages = aws
            .sagemaker
            .list_inference_components()
            .max_results(100)
            .into_paginator()
            .send();
        let pages = aws
            .pages("sagemaker", "ListInferenceComponents", pages)
            .await
            .map_err(job_error)?;
        *calls += pages.len();
        for c in pages.iter().flat_map(|p| p.inference_components()) {
            out.components.insert(
                c.inference_component_name().unwrap_or_default().to_string(),
                c.inference_component_status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            );
        }
    }
    if items
        .iter()
        .any(|it| matches!(it.target, TargetRef::EndpointVariant { .. }))
    {
        let pages = aws
            .sagemaker
            .list_endpoints()
            .max_results(100)
            .into_paginator()
            .send();
        let pages = aws
            .pages("sagemaker", "ListEndpoints", pages)
            .await
            .map_err(job_error)?;
        *calls += pages.len();
        for e in pages.iter().flat_map(|p| p.endpoints()) {
            out.endpoints.insert(
                e.endpoint_name().unwrap_or_default().to_string(),
                e.endpoint_status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            );
        }
    }
    Ok(out)
}

/// The namespace's scaling activities since `since`, newest first: each resource's latest
/// finished outcome (`None`: it succeeded), the newest start time seen, and how many were read.
/// The first pass reads one page.
async fn read_activities(
    aws: &AwsClients,
    since: Option<DateTime<Utc>>,
    calls: &mut usize,
) -> Result<(HashMap<String, Option<Value>>, Option<DateTime<Utc>>, usize), JobError> {
    let since_secs =
        since.map(|t| t.timestamp() as f64 + f64::from(t.timestamp_subsec_micros()) / 1e6);
    let pages = aws
        .autoscaling
        .describe_scaling_activities()
        .service_namespace(ServiceNamespace::Sagemaker)
        .max_results(50)
        .into_paginator()
        .send();
    let mut outcomes: HashMap<String, Option<Value>> = HashMap::new();
    let mut newest: Option<f64> = None;
    let (mut read, mut pages_read) = (0, 0);
    aws.find_in_pages(
        "application-autoscaling",
        "DescribeScalingActivities",
        pages,
        |page| {
            pages_read += 1;
            for a in page.scaling_activities() {
                let started = a.start_time().as_secs_f64();
                if since_secs.is_some_and(|s| started <= s) {
                    return Some(());
                }
                read += 1;
                newest = Some(newest.map_or(started, |n| n.max(started)));
                if !outcomes.contains_key(a.resource_id()) {
                    if let Some(outcome) = scaling_outcome(a) {
                        outcomes.insert(a.resource_id().to_string(), outcome);
                    }
                }
            }
            (since.is_none() || pages_read >= MAX_ACTIVITY_PAGES).then_some(())
        },
    )
    .await
    .map_err(job_error)?;
    *calls += pages_read;
    let seen_until = newest
        .and_then(|s| DateTime::<Utc>::from_timestamp(s.trunc() as i64, (s.fract() * 1e9) as u32));
    Ok((outcomes, seen_until, read))
}

/// Records a target's new scaling outcome if it differs from what it shows.
async fn record_outcome(
    pool: &PgPool,
    it: &Item,
    outcome: &Option<Value>,
) -> Result<bool, JobError> {
    let failure = outcome.clone().unwrap_or(Value::Null);
    if it.row.observed["last_scaling_failure"] == failure {
        return Ok(false);
    }
    let mut conditions: Vec<Value> = it
        .row
        .conditions
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["reason"] != report::SCALING_FAILED)
        .collect();
    if !failure.is_null() {
        conditions.push(report::scaling_condition(&failure));
    }
    targets::set_scaling_outcome(
        pool,
        it.row.id,
        it.row.version,
        &failure,
        &json!(conditions),
    )
    .await
    .map_err(JobError::database)
}

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

use aws_sdk_applicationautoscaling::types::ScalingPolicy;
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::PgPool;

mod reads;

use reads::{
    read_activities, read_alarms, read_policies, read_sagemaker, read_scheduled, read_targets,
    uses_scheduled, SageMakerStatus,
};

use super::{
    observe::sort_policy,
    plan::{self, Observed, ObservedAlarm, ObservedPolicy},
    report, timeline,
};
use crate::{
    aws::AwsClients,
    domain::{OwnedNames, TargetRef, TargetSpec},
    jobs::{JobContext, JobError, Registry},
    store::{observation, targets},
};

/// The job that runs one observation pass over the whole fleet.
pub const OBSERVE_JOB: &str = "observe";
/// The observe job's job target: one pass at a time, whatever the replica count.
pub const FLEET: &str = "fleet";
/// A pass reads the policies of one target in this many (see the module).
pub const POLICY_SWEEP: i64 = 2;

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
    /// Timeline events this pass recorded (new ones only).
    pub events_recorded: usize,
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
    let (alarms, alarm_states) = read_alarms(aws, calls).await?;
    let scheduled = read_scheduled(aws, &items, calls).await?;
    let sagemaker = read_sagemaker(aws, &items, calls).await?;
    let activities = read_activities(aws, start.read_since(), calls).await?;
    report.activities_read = activities.seen.len();
    let outcomes = &activities.outcomes;
    let in_window: HashSet<i64> = window.iter().map(|it| it.row.id).collect();
    for it in &items {
        let mut observed = observed_for(
            it,
            &scalable,
            &policies,
            &alarms,
            in_window.contains(&it.row.id),
        );
        if uses_scheduled(it) {
            observed.scheduled = scheduled
                .get(&it.names.resource_id)
                .cloned()
                .unwrap_or_default();
        }
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
    // Every managed target, not only the settled ones planned above: an activity of a target
    // being applied (or disabled) happens once, and the pass moves past it.
    let every: Vec<(i64, TargetRef, OwnedNames)> = targets::all_refs(pool)
        .await
        .map_err(JobError::database)?
        .into_iter()
        .filter_map(|(id, kind, name)| {
            let target = TargetRef::from_stored(&kind, &name).ok()?;
            let names = target.owned_names();
            Some((id, target, names))
        })
        .collect();
    let tracked: Vec<timeline::Tracked> = every
        .iter()
        .map(|(id, target, names)| timeline::Tracked {
            target_id: *id,
            kind: target.kind(),
            names,
        })
        .collect();
    report.events_recorded = timeline::record_pass(pool, &tracked, &activities.seen, &alarm_states)
        .await
        .map_err(JobError::database)?;
    let open = timeline::open_since(&tracked, &activities.seen);
    observation::finish(pool, activities.seen_until, open)
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
    let mut desired = plan::desired_for(&it.target, &it.spec, max).map_err(JobError::permanent)?;
    desired.before_pause =
        serde_json::from_value(it.row.observed["suspended_before_pause"].clone()).ok();
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
    let written: sqlx::Result<bool> = async {
        let mut tx = pool.begin().await?;
        let changed = targets::set_scaling_outcome(
            &mut tx,
            it.row.id,
            it.row.version,
            &failure,
            &json!(conditions),
        )
        .await?;
        if changed && !failure.is_null() {
            // Degraded: subscribers hear of each failed activity once, in the same
            // transaction as the condition (a failure here leaves both to the next pass).
            let n = crate::store::webhooks::Notification::new(
                crate::domain::webhook::NotificationKind::Degraded.as_str(),
                it.row.id,
                format!("at:{}", failure["at"]),
                chrono::Utc::now(),
                failure.clone(),
            );
            crate::store::webhooks::fan_out(&mut tx, &n).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }
    .await;
    let changed = written.map_err(JobError::database)?;
    Ok(changed)
}

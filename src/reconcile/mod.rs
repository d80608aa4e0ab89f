//! Desired -> observed -> plan -> apply. The `reconcile` job handler: it converges AWS to a
//! target's current desired version, records each step with AWS's request id, and reflects
//! the truth in the target's phase and conditions and in the audit log.

pub mod component;
pub mod drift;
pub mod plan;
pub mod quotas;

use chrono::Utc;
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::{
    api::changes::RECONCILE_JOB,
    aws::AwsClients,
    domain::{ComponentName, ComponentSpec, TargetRef},
    jobs::{ErrorClass, JobContext, JobError, Registry},
    store::{audit, targets},
};
use plan::{Desired, Observed};

/// A non-blocking finding (shown as a Degraded condition).
#[derive(Debug, Clone, Serialize)]
pub struct Warning {
    pub reason: String,
    pub message: String,
}

impl Warning {
    /// A warning with a reason code and a message saying what to do.
    pub fn new(reason: &str, message: String) -> Self {
        Self {
            reason: reason.into(),
            message,
        }
    }
}

/// The reconcile job handler.
#[derive(Clone)]
pub struct Reconciler {
    pub aws: AwsClients,
    pub pool: PgPool,
}

impl Reconciler {
    /// Registers the `reconcile` handler.
    pub fn register(self, registry: Registry) -> Registry {
        registry.register(RECONCILE_JOB, move |ctx: JobContext| {
            let this = self.clone();
            async move { this.run(ctx).await }
        })
    }

    async fn run(&self, ctx: JobContext) -> Result<Option<Value>, JobError> {
        let kind = ctx.job.args["kind"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = ctx.job.args["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let row = targets::get(&self.pool, &kind, &name)
            .await
            .map_err(|e| JobError::retryable(format!("database: {e}")))?
            .ok_or_else(|| {
                JobError::permanent(format!("{kind} {name:?} is no longer managed by zeroscale"))
            })?;
        let target = match kind.as_str() {
            "component" => {
                TargetRef::Component(ComponentName::parse(&name).map_err(JobError::permanent)?)
            }
            other => {
                return Err(JobError::permanent(format!(
                    "no reconciler for target kind {other:?}"
                )))
            }
        };
        set_applying(&self.pool, row.id, row.version).await;
        // Why this job runs: a user's change (default), a drift check, or a manual reconcile.
        let reason = ctx.job.args["reason"]
            .as_str()
            .unwrap_or("change")
            .to_string();
        let mut report = Report {
            version: row.version,
            enabled: row.enabled,
            reason,
            ..Default::default()
        };
        let result = self.component(&ctx, &target, &row, &mut report).await;
        let last_attempt = ctx.job.attempt >= ctx.job.max_attempts;
        match result {
            Ok(()) => {
                self.finish(&ctx, &target, &row, &report, None).await;
                Ok(Some(json!(report)))
            }
            Err(e) => {
                let final_failure = e.class == ErrorClass::Permanent || last_attempt;
                report.error = Some(e.message.clone());
                let _ = ctx.record_output(&json!(report)).await;
                if final_failure {
                    self.finish(&ctx, &target, &row, &report, Some(&e.message))
                        .await;
                }
                Err(e)
            }
        }
    }

    async fn component(
        &self,
        ctx: &JobContext,
        target: &TargetRef,
        row: &targets::TargetRow,
        report: &mut Report,
    ) -> Result<(), JobError> {
        let names = target.owned_names();
        let spec: ComponentSpec = serde_json::from_value(row.spec.clone())
            .map_err(|e| JobError::permanent(format!("stored spec unreadable: {e}")))?;
        let observed = if row.enabled {
            let pre = component::preflight(
                &self.aws,
                &target.name(),
                spec.max_capacity.map(|m| m as i32),
            )
            .await?;
            report.warnings = pre.warnings.clone();
            let observed = component::observe(&self.aws, &names).await?;
            let max = spec
                .max_capacity
                .map(|m| m as i32)
                .or(observed.target.map(|t| t.1))
                .unwrap_or(pre.current_copies)
                .max(1);
            report.preflight = Some(json!(pre));
            report.resolved_max_capacity = Some(max);
            // The capacity the target had before zeroscale first enabled it, restored on disable.
            report.original_capacity = match row.observed.get("original_capacity") {
                Some(v) => serde_json::from_value(v.clone()).unwrap_or(None),
                None => observed.target,
            };
            let desired = Desired {
                names: names.clone(),
                component: target.name(),
                max_capacity: max,
                spec: spec.clone(),
            };
            self.apply(
                ctx,
                &desired,
                plan::plan_enable(&desired, &observed),
                &observed,
                report,
            )
            .await?;
            observed
        } else {
            let observed = component::observe(&self.aws, &names).await?;
            report.original_capacity = row
                .observed
                .get("original_capacity")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .flatten();
            let restore_min = spec.restore_min_capacity as i32;
            let restore = report.original_capacity.unwrap_or_else(|| {
                (
                    restore_min,
                    observed
                        .target
                        .map(|t| t.1)
                        .unwrap_or(restore_min)
                        .max(restore_min),
                )
            });
            let desired = Desired {
                names: names.clone(),
                component: target.name(),
                max_capacity: restore.1,
                spec: spec.clone(),
            };
            self.apply(
                ctx,
                &desired,
                plan::plan_disable(&names, &observed, restore),
                &observed,
                report,
            )
            .await?;
            observed
        };
        report.foreign_policies = observed.foreign_policies.clone();
        report.last_scaling_failure = component::last_failed_activity(&self.aws, &names).await;
        Ok(())
    }

    async fn apply(
        &self,
        ctx: &JobContext,
        desired: &Desired,
        steps: Vec<plan::Step>,
        observed: &Observed,
        report: &mut Report,
    ) -> Result<(), JobError> {
        report.plan = steps.clone();
        let _ = ctx.record_output(&json!(report)).await;
        let mut step_arn = observed.step.as_ref().map(|p| p.arn.clone());
        report.target_tracking_policy_arn =
            observed.target_tracking.as_ref().map(|p| p.arn.clone());
        for step in &steps {
            let record = component::apply(&self.aws, desired, step, &mut step_arn).await?;
            if let plan::Step::PutTargetTrackingPolicy { .. } = step {
                report.target_tracking_policy_arn =
                    record.result["PolicyARN"].as_str().map(str::to_string);
            }
            report.steps.push(record);
            let _ = ctx.record_output(&json!(report)).await;
        }
        report.step_policy_arn = if desired_enabled(report) {
            step_arn
        } else {
            None
        };
        Ok(())
    }

    /// Writes the outcome onto the target (phase, conditions, observed) and the audit log.
    async fn finish(
        &self,
        ctx: &JobContext,
        target: &TargetRef,
        row: &targets::TargetRow,
        report: &Report,
        error: Option<&str>,
    ) {
        let names = target.owned_names();
        let conditions = conditions(report, error);
        let phase = match (error, row.enabled) {
            (Some(_), _) => "failed",
            (None, true) => "ready",
            (None, false) => "disabled",
        };
        let observed = json!({
            "resolved_max_capacity": report.resolved_max_capacity,
            "original_capacity": report.original_capacity,
            "target_tracking_policy_arn": report.target_tracking_policy_arn,
            "step_policy_arn": report.step_policy_arn,
            "alarm_name": if row.enabled && error.is_none() { Some(names.alarm.clone()) } else { None },
            "foreign_policies": report.foreign_policies,
            "last_scaling_failure": report.last_scaling_failure,
            "applied_version": report.version,
        });
        let drift = report.drift();
        if drift.is_some() {
            metrics::counter!("zeroscale_drift_repaired_total", "kind" => target.kind())
                .increment(1);
        }
        let action = match (&drift, row.enabled) {
            (Some(_), _) => "drift-repair",
            (None, true) => "apply",
            (None, false) => "disable",
        };
        let event = audit::NewAuditEvent {
            actor: "zeroscale".into(),
            action: action.into(),
            target_kind: target.kind().into(),
            target_name: target.name(),
            version: Some(row.version),
            job_id: Some(ctx.job.id),
            before: drift.as_ref().map(|d| json!({ "drift": d })),
            after: Some(observed.clone()),
            outcome: if error.is_some() { "failed" } else { "applied" }.into(),
            error: error.map(str::to_string),
            aws_request_ids: report
                .steps
                .iter()
                .filter_map(|s| s.request_id.clone())
                .collect(),
            ..Default::default()
        };
        // The target's status and the audit event commit together.
        let conditions = json!(conditions);
        let written: sqlx::Result<()> = async {
            let mut tx = self.pool.begin().await?;
            targets::set_status(
                &mut tx,
                row.id,
                row.version,
                Some(phase),
                Some(&conditions),
                Some(&observed),
            )
            .await?;
            audit::append(&mut tx, &event).await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not record the reconcile's outcome");
        }
    }
}

/// Marks a target as being applied (best effort: the outcome is what matters).
async fn set_applying(pool: &PgPool, id: i64, version: i32) {
    if let Ok(mut conn) = pool.acquire().await {
        let _ = targets::set_status(&mut conn, id, version, Some("applying"), None, None).await;
    }
}

fn desired_enabled(report: &Report) -> bool {
    report.enabled
}

/// What a reconcile did, stored as the operation's output.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub version: i32,
    pub enabled: bool,
    pub preflight: Option<Value>,
    pub warnings: Vec<Warning>,
    pub resolved_max_capacity: Option<i32>,
    pub original_capacity: Option<(i32, i32)>,
    pub plan: Vec<plan::Step>,
    pub steps: Vec<component::StepRecord>,
    pub target_tracking_policy_arn: Option<String>,
    pub step_policy_arn: Option<String>,
    pub foreign_policies: Vec<String>,
    pub last_scaling_failure: Option<Value>,
    pub error: Option<String>,
    /// Why the job ran: change, drift or manual.
    pub reason: String,
}

impl Report {
    /// On a drift check or manual reconcile, any write means AWS had drifted from what zeroscale
    /// last applied.
    pub fn drift(&self) -> Option<String> {
        if self.reason == "change" || self.plan.is_empty() {
            return None;
        }
        let what: Vec<String> = self
            .plan
            .iter()
            .map(|s| {
                serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v["call"].as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .collect();
        Some(format!(
            "AWS differed from version {} and was repaired with: {}",
            self.version,
            what.join(", ")
        ))
    }
}

fn condition(kind: &str, ok: bool, reason: &str, message: String) -> Value {
    json!({"type": kind, "status": if ok { "True" } else { "False" }, "reason": reason, "message": message, "last_transition_time": Utc::now()})
}

/// The conditions a report implies.
fn conditions(report: &Report, error: Option<&str>) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(e) = error {
        out.push(condition("Ready", false, "ReconcileFailed", e.to_string()));
        return out;
    }
    if report.enabled {
        let max = report.resolved_max_capacity.unwrap_or(0);
        out.push(condition(
            "Registered",
            true,
            "ScalableTarget",
            format!("scalable target registered with MinCapacity 0, MaxCapacity {max}"),
        ));
        out.push(condition(
            "PoliciesApplied",
            true,
            "TargetTrackingAndStep",
            "target-tracking and step policies are in place".into(),
        ));
        out.push(condition(
            "AlarmArmed",
            true,
            "AlarmPointsAtStepPolicy",
            "the scale-from-zero alarm's action is the step policy".into(),
        ));
        out.push(condition(
            "Ready",
            true,
            "Converged",
            format!("AWS matches version {}", report.version),
        ));
    } else {
        out.push(condition(
            "Ready",
            true,
            "Disabled",
            "scale-to-zero is off; zeroscale's alarm and policies are removed".into(),
        ));
    }
    for w in &report.warnings {
        out.push(condition("Degraded", true, &w.reason, w.message.clone()));
    }
    if !report.foreign_policies.is_empty() {
        out.push(condition("Degraded", true, "ForeignScalingPolicies", format!(
            "policies zeroscale did not create are on the target ({}); scale-in needs every target-tracking policy to agree, so they can keep it from reaching zero. zeroscale leaves them alone",
            report.foreign_policies.join(", "))));
    }
    if let Some(d) = report.drift() {
        out.push(condition("Drifted", true, "RepairedOutsideChange", d));
    }
    if let Some(f) = &report.last_scaling_failure {
        out.push(condition(
            "Degraded",
            true,
            "ScalingActivityFailed",
            f["message"]
                .as_str()
                .unwrap_or("a scaling activity failed")
                .to_string(),
        ));
    }
    out
}

/// The verdict of a dry run: what the preflight says and the exact writes a job would make.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DryRun {
    /// `ok` when a job would proceed, `blocked` when the preflight refuses.
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
}

/// Preflight, observe and plan for a component without writing anything anywhere. A permanent
/// preflight failure is a `blocked` verdict; a transient AWS failure is an error.
pub async fn dry_run_component(
    aws: &AwsClients,
    target: &TargetRef,
    spec: &ComponentSpec,
) -> Result<DryRun, JobError> {
    let pre = match component::preflight(aws, &target.name(), spec.max_capacity.map(|m| m as i32))
        .await
    {
        Ok(pre) => pre,
        Err(e) if e.class == ErrorClass::Permanent => {
            return Ok(DryRun {
                verdict: "blocked".into(),
                message: Some(e.message),
                warnings: vec![],
                foreign_policies: vec![],
                resolved_max_capacity: None,
                plan: vec![],
            })
        }
        Err(e) => return Err(e),
    };
    let names = target.owned_names();
    let observed = component::observe(aws, &names).await?;
    let max = spec
        .max_capacity
        .map(|m| m as i32)
        .or(observed.target.map(|t| t.1))
        .unwrap_or(pre.current_copies)
        .max(1);
    let desired = Desired {
        names,
        component: target.name(),
        max_capacity: max,
        spec: spec.clone(),
    };
    Ok(DryRun {
        verdict: "ok".into(),
        message: None,
        warnings: pre.warnings,
        foreign_policies: observed.foreign_policies.clone(),
        resolved_max_capacity: Some(max),
        plan: plan::plan_enable(&desired, &observed),
    })
}

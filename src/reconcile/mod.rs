//! Desired -> observed -> plan -> apply. The `reconcile` job handler: it converges AWS to a
//! target's current desired version, records each step with AWS's request id, and reflects
//! the truth in the target's phase and conditions and in the audit log. Every kind of target
//! goes through the same flow; only its preflight (and `plan::desired_for`) differ.

pub mod apply;
pub mod component;
pub mod drift;
mod finish;
pub mod fleet;
pub mod holds;
pub mod kinds;
pub mod objects;
pub mod observe;
pub mod plan;
pub mod prepare;
pub mod quotas;
mod reads;
pub mod report;
pub mod timeline;
pub mod variant;
pub mod warm;

use serde::Serialize;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::{
    aws::{AwsClients, AwsFailure, FailureKind},
    domain::{TargetRef, TargetSpec},
    jobs::{ErrorClass, JobContext, JobError, Registry},
    store::{jobs, targets},
};
use observe::Purpose;

/// The job that brings one target's AWS objects to its desired version.
pub const RECONCILE_JOB: &str = "reconcile";

/// The arguments of a reconcile job that is not a user's change (a drift check, a manual
/// reconcile): its target and why it runs. A change's job (written by `zs_record_change`) has no
/// `reason`, and only such a job has later changes folded into it. Every reconcile job
/// converges its target to the current desired version when it runs.
pub fn reconcile_args(kind: &str, name: &str, reason: &str) -> Value {
    json!({"kind": kind, "name": name, "reason": reason})
}

/// A failed AWS call as a job error: retryable or permanent, with a message that names the
/// call (and, for a refusal, where the IAM policy is).
pub fn job_error(f: AwsFailure) -> JobError {
    let mut text = f.to_string();
    if f.code.starts_with("AccessDenied") {
        // AWS's message names the IAM action; say where the full list is.
        text.push_str(
            " (grant it to the role zeroscale runs as: deploy/iam-policy.json lists every action zeroscale needs, and `zeroscale doctor` checks the reads)",
        );
    }
    match f.kind {
        FailureKind::Retryable | FailureKind::NotFound => JobError::retryable(text),
        FailureKind::Permanent => JobError::permanent(text),
    }
    .with_code(f.code)
}
use plan::{Baseline, Desired, Observed};
pub use prepare::{dry_run, prepare, DryRun, Preflight, Prepared};
pub use report::Report;

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
    /// Registers the `reconcile` handler and the fleet observation pass (`observe`).
    pub fn register(self, registry: Registry) -> Registry {
        let observer = fleet::Observer {
            aws: self.aws.clone(),
            pool: self.pool.clone(),
        };
        observer.register(registry.register(RECONCILE_JOB, self))
    }

    async fn run(&self, ctx: JobContext) -> Result<Option<Value>, JobError> {
        let arg = |k: &str| ctx.job.args[k].as_str().unwrap_or_default().to_string();
        let (kind, name) = (arg("kind"), arg("name"));
        let row = targets::get(&self.pool, &kind, &name)
            .await
            .map_err(JobError::database)?
            .ok_or_else(|| {
                JobError::permanent(format!("{kind} {name:?} is no longer managed by zeroscale"))
            })?;
        let target = TargetRef::from_stored(&kind, &name).map_err(JobError::permanent)?;
        let fence = ctx.fence();
        if !set_applying(&self.pool, &fence, row.id, row.version).await {
            return Err(lost_lease());
        }
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
        // A drift repair is background work: a user's change overtakes its AWS calls.
        let result = if report.reason == "drift" {
            crate::aws::in_background(self.converge(&ctx, &target, &row, &mut report)).await
        } else {
            self.converge(&ctx, &target, &row, &mut report).await
        };
        let last_attempt = ctx.job.attempt >= ctx.job.max_attempts;
        match result {
            Ok(()) => {
                finish::finish(&self.pool, &ctx, &target, &row, &report, None).await?;
                Ok(Some(json!(report)))
            }
            // AWS is changing the resource (an endpoint Updating while it scales): not a
            // failure. The target keeps its phase and shows what it waits for; the job retries.
            Err(e) if e.class == ErrorClass::Wait && !last_attempt => {
                report.waiting = Some(e.message.clone());
                let _ = ctx.record_output(&json!(report)).await;
                self.show_waiting(&ctx, &row, &e).await;
                Err(e)
            }
            Err(e) => {
                let final_failure = e.class == ErrorClass::Permanent || last_attempt;
                report.error = Some(e.message.clone());
                let _ = ctx.record_output(&json!(report)).await;
                if final_failure {
                    // The activity history is often what explains a failure (seed 001).
                    report.last_scaling_failure =
                        observe::last_scaling_problem(&self.aws, &target.owned_names()).await;
                    finish::finish(&self.pool, &ctx, &target, &row, &report, Some(&e)).await?;
                }
                Err(e)
            }
        }
    }

    async fn converge(
        &self,
        ctx: &JobContext,
        target: &TargetRef,
        row: &targets::TargetRow,
        report: &mut Report,
    ) -> Result<(), JobError> {
        let names = target.owned_names();
        let spec = TargetSpec::from_stored(target.target_kind(), &row.spec)
            .map_err(JobError::permanent)?;
        let stored = targets::baseline(&self.pool, row.id)
            .await
            .map_err(JobError::database)?
            .and_then(|b| Baseline::from_json(&b));
        // Until this run knows better, our scheduled actions are those the last run left (a
        // failure before the plan must not forget them).
        report.scheduled_actions = scheduled_left(row);
        let earlier = ctx.job.output.as_ref();
        report.suspended_before_pause = holds::before_pause(row, earlier, None, None);
        let observed = if row.enabled {
            let mut p = prepare(
                &self.aws,
                target,
                &spec,
                !report.scheduled_actions.is_empty(),
            )
            .await?;
            let target_now = p.observed.target;
            p.desired.before_pause = holds::before_pause(row, earlier, stored, target_now);
            report.warnings = p.preflight.warnings.clone();
            report.preflight = Some(json!(p.preflight));
            report.resolved_max_capacity = Some(p.desired.max_capacity);
            let baseline = match stored {
                Some(b) => b,
                None => self.capture_baseline(ctx, row.id, &p.observed).await?,
            };
            report.baseline = Some(baseline.to_json());
            report.original_capacity = baseline.capacity();
            if p.observed.target.is_some_and(|t| t.suspended_in) && !p.desired.paused {
                report.warnings.push(Warning::new("ScaleInSuspended", "dynamic scale-in is suspended on the scalable target (SuspendedState), so it will not scale in to zero; zeroscale leaves that to whoever suspended it. Resume it with RegisterScalableTarget".into()));
            }
            let steps = plan::plan_enable(&p.desired, &p.observed);
            // Until the writes are done, ours are those left and those wanted.
            let wanted: Vec<String> = p.desired.scheduled.iter().map(|a| a.name.clone()).collect();
            for name in &wanted {
                if !report.scheduled_actions.contains(name) {
                    report.scheduled_actions.push(name.clone());
                }
            }
            report.suspended_before_pause = holds::record_before_pause(&p.desired, &p.observed);
            report.paused = spec.pause().filter(|_| p.desired.paused).map(|x| json!(x));
            let pin = warm::pinned(&spec, &report.reason);
            if let Some(copies) = pin {
                let before =
                    earlier.and_then(|o| serde_json::from_value(o["warming"].clone()).ok());
                report.warming = Some(warm::must_warm(&self.aws, target, copies, before).await?);
            }
            self.apply(ctx, &p.desired, steps, &p.observed, report)
                .await?;
            report.scheduled_actions = wanted;
            if !p.desired.paused {
                report.suspended_before_pause = None;
            }
            if let (Some(copies), Some(warming)) = (pin, &report.warming) {
                let took = warm::await_capacity(&self.aws, target, copies, warming).await?;
                report.warm_after_seconds = Some(took);
            }
            p.observed
        } else {
            let observed = observe::observe(&self.aws, &names, Purpose::Disable, true).await?;
            report.baseline = stored.map(Baseline::to_json);
            report.original_capacity = stored.and_then(Baseline::capacity);
            let max = observed.target.map(|t| t.max).unwrap_or(1);
            let desired = plan::desired_for(target, &spec, max).map_err(JobError::permanent)?;
            let before_pause = holds::before_pause(row, earlier, stored, observed.target);
            let restore = (stored, spec.restore_min_capacity(), before_pause);
            let (steps, warning) = plan::plan_disable(&names, &observed, restore);
            if let Some(w) = warning {
                report.warnings.push(Warning::new("KeptRegistered", w));
            }
            self.apply(ctx, &desired, steps, &observed, report).await?;
            report.scheduled_actions.clear();
            report.suspended_before_pause = None;
            observed
        };
        report.foreign_policies = observed.foreign_policies.clone();
        // A target this run registered has no scaling history of its own yet; the next drift
        // check reads it. Saves one call per new target when many are enabled at once.
        if observed.target.is_some() && row.enabled {
            report.last_scaling_failure = observe::last_scaling_problem(&self.aws, &names).await;
        }
        Ok(())
    }

    /// Records, once and before zeroscale's first write, what AWS held for the target
    /// (never zeroscale's own registration read back by a retried first enable).
    async fn capture_baseline(
        &self,
        ctx: &JobContext,
        id: i64,
        observed: &plan::Observed,
    ) -> Result<Baseline, JobError> {
        let captured = Baseline::capture(observed);
        let stored = targets::capture_baseline(&self.pool, &ctx.fence(), id, &captured.to_json())
            .await
            .map_err(JobError::database)?
            .ok_or_else(lost_lease)?;
        Ok(Baseline::from_json(&stored).unwrap_or(captured))
    }

    /// While AWS changes the resource: the phase the target had, its conditions, and a
    /// `Waiting` condition naming the status.
    async fn show_waiting(&self, ctx: &JobContext, row: &targets::TargetRow, e: &JobError) {
        let mut conditions: Vec<Value> = row
            .conditions
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c["type"] != "Waiting")
            .collect();
        conditions.push(report::waiting(
            e.reason.as_deref().unwrap_or("Transitional"),
            &e.message,
        ));
        let conditions = json!(conditions);
        if let Ok(mut conn) = self.pool.acquire().await {
            let _ = targets::set_status(
                &mut conn,
                &ctx.fence(),
                row.id,
                row.version,
                Some(&row.phase),
                Some(&conditions),
                None,
            )
            .await;
        }
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
        for (i, step) in steps.iter().enumerate() {
            let record = apply::apply(&self.aws, desired, step, &mut step_arn).await?;
            if matches!(step, plan::Step::RegisterScalableTarget { .. })
                && observed.target.is_none()
                && i + 1 < steps.len()
            {
                observe::await_listed(&self.aws, &desired.names).await;
            }
            if let plan::Step::PutTargetTrackingPolicy { .. } = step {
                report.target_tracking_policy_arn =
                    record.result["PolicyARN"].as_str().map(str::to_string);
            }
            report.steps.push(record);
            let _ = ctx.record_output(&json!(report)).await;
        }
        report.step_policy_arn = if report.enabled { step_arn } else { None };
        Ok(())
    }
}

impl crate::jobs::JobHandler for Reconciler {
    fn run(&self, ctx: JobContext) -> crate::jobs::HandlerFuture {
        let this = self.clone();
        Box::pin(async move { this.run(ctx).await })
    }

    fn on_discarded(
        &self,
        job: jobs::JobRow,
        error: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let this = self.clone();
        Box::pin(async move { finish::record_discard(&this.pool, job, error).await })
    }
}

/// Marks a target as being applied (best effort: the outcome is what matters). False only when
/// the database says this run no longer holds its job.
async fn set_applying(pool: &PgPool, fence: &jobs::Fence, id: i64, version: i32) -> bool {
    match pool.acquire().await {
        Ok(mut conn) => {
            targets::set_status(&mut conn, fence, id, version, Some("applying"), None, None)
                .await
                .unwrap_or(true)
        }
        Err(_) => true,
    }
}

/// The scheduled actions of ours the target's last run left (a spec whose schedules were all
/// removed no longer says there are any).
fn scheduled_left(row: &targets::TargetRow) -> Vec<String> {
    row.observed["scheduled_actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect()
}

/// The error of a run that found it no longer holds its job (nothing is recorded for it).
fn lost_lease() -> JobError {
    JobError::retryable("this run lost its lease; another run has the job")
}

//! The end of a run: what it found is written onto the target (phase, conditions, observed)
//! and the audit log, and the job ends (completed, or discarded with its failure), all in one
//! transaction: a crash can neither lose the outcome nor make the re-run audit it twice. A
//! database failure here is retried (the re-run finds AWS converged and records the outcome
//! then). A job the engine discarded (a timeout, a panic, a lost lease on its last attempt)
//! is recorded the same way, by `record_discard`.

use serde_json::{json, Value};
use sqlx::PgPool;

use super::{lost_lease, report, Report};
use crate::{
    domain::{EventKind, TargetRef},
    jobs::{JobContext, JobError},
    store::{
        audit,
        events::{self, NewEvent},
        jobs, targets,
    },
};

/// What the end of a run writes.
struct Outcome {
    phase: &'static str,
    conditions: Value,
    observed: Value,
    /// None for a drift check that found nothing to repair: it refreshes the status (scaling
    /// problems included) but is not an event worth an audit row every interval.
    event: Option<audit::NewAuditEvent>,
    /// A completed disable has restored what was there before zeroscale: a later enable
    /// captures afresh.
    clear_baseline: bool,
}

/// Records the run's outcome and ends its job; an error if the run lost its lease (nothing
/// written) or the database failed (retried).
pub(super) async fn finish(
    pool: &PgPool,
    ctx: &JobContext,
    target: &TargetRef,
    row: &targets::TargetRow,
    report: &Report,
    failure: Option<&JobError>,
) -> Result<(), JobError> {
    let outcome = outcome(ctx.job.id, target, row, report, failure);
    match write(pool, ctx, row, report, failure, &outcome).await {
        Ok(true) => {
            ctx.mark_finished();
            Ok(())
        }
        Ok(false) => {
            tracing::warn!(
                job_id = ctx.job.id,
                attempt = ctx.job.attempt,
                "this run lost its lease: its outcome is not recorded"
            );
            Err(lost_lease())
        }
        Err(e) => Err(JobError::database(e)),
    }
}

fn outcome(
    job_id: i64,
    target: &TargetRef,
    row: &targets::TargetRow,
    report: &Report,
    failure: Option<&JobError>,
) -> Outcome {
    let error = failure.map(|e| e.message.as_str());
    let phase = match (error, row.enabled) {
        (Some(_), _) => "failed",
        (None, true) => "ready",
        (None, false) => "disabled",
    };
    let alarm = (row.enabled && error.is_none()).then(|| target.owned_names().alarm);
    let observed = json!({
        "resolved_max_capacity": report.resolved_max_capacity,
        "original_capacity": report.original_capacity,
        "baseline": report.baseline,
        "target_tracking_policy_arn": report.target_tracking_policy_arn,
        "step_policy_arn": report.step_policy_arn,
        "alarm_name": alarm,
        "foreign_policies": report.foreign_policies,
        "last_scaling_failure": report.last_scaling_failure,
        "applied_version": report.version,
        "scheduled_actions": report.scheduled_actions,
        "suspended_before_pause": report.suspended_before_pause,
        "warm_after_seconds": report.warm_after_seconds,
        // For the savings ledger: the endpoint and the instance type (a pool variant's first
        // pool), kept from an earlier run when this one made no preflight.
        "endpoint": preflight_or_kept(report, row, "endpoint"),
        "instance_type": preflight_or_kept(report, row, "instance_type"),
    });
    let drift = report.drift();
    if drift.is_some() {
        metrics::counter!("zeroscale_drift_repaired_total", "kind" => target.kind()).increment(1);
    }
    let quiet = report.reason == "drift" && drift.is_none() && error.is_none();
    let event = (!quiet).then(|| audit_event(job_id, target, row, report, drift, &observed, error));
    Outcome {
        phase,
        conditions: json!(report::conditions(report, error)),
        observed,
        event,
        clear_baseline: !row.enabled && error.is_none(),
    }
}

fn preflight_or_kept(report: &Report, row: &targets::TargetRow, key: &str) -> Value {
    let from_preflight = report.preflight.as_ref().map(|p| match (key, &p[key]) {
        ("instance_type", Value::Null) => p["instance_pools"][0].clone(),
        (_, v) => v.clone(),
    });
    match from_preflight {
        Some(v) if !v.is_null() => v,
        _ => row.observed[key].clone(),
    }
}

/// The run's `applied` / `failed` audit event, with the drift it repaired and every AWS
/// request id it made.
fn audit_event(
    job_id: i64,
    target: &TargetRef,
    row: &targets::TargetRow,
    report: &Report,
    drift: Option<String>,
    observed: &Value,
    error: Option<&str>,
) -> audit::NewAuditEvent {
    let action = match (&drift, row.enabled) {
        (Some(_), _) => "drift-repair",
        (None, true) => "apply",
        (None, false) => "disable",
    };
    let outcome = match error {
        Some(e) => audit::Outcome::Failed(e.to_string()),
        None => audit::Outcome::Applied,
    };
    audit::NewAuditEvent {
        before: drift.map(|d| json!({ "drift": d })),
        after: Some(observed.clone()),
        aws_request_ids: report
            .steps
            .iter()
            .filter_map(|s| s.request_id.clone())
            .collect(),
        ..audit::NewAuditEvent::new(
            audit::Actor::zeroscale(),
            action,
            outcome,
            target.clone(),
            row.version,
            job_id,
        )
    }
}

/// The writes, fenced: a run that lost its lease (rescued and handed to another worker) writes
/// no phase, no audit event and no baseline change; holding the job row until commit keeps a
/// rescue from slipping in between the check and the writes. False: the lease was lost.
async fn write(
    pool: &PgPool,
    ctx: &JobContext,
    row: &targets::TargetRow,
    report: &Report,
    failure: Option<&JobError>,
    o: &Outcome,
) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    if !jobs::hold(&mut tx, &ctx.fence()).await? {
        return Ok(false);
    }
    let fence = ctx.fence();
    let (phase, conditions, observed) = (Some(o.phase), Some(&o.conditions), Some(&o.observed));
    targets::set_status(
        &mut tx,
        &fence,
        row.id,
        row.version,
        phase,
        conditions,
        observed,
    )
    .await?;
    if let Some(event) = &o.event {
        audit::append(&mut tx, event).await?;
    }
    if failure.is_none() {
        let happened = own_event(&mut tx, ctx.job.id, row, report).await?;
        for new in events::insert(&mut tx, &happened).await? {
            if let Some(n) = super::timeline::notification(&new) {
                crate::store::webhooks::fan_out(&mut tx, &n).await?;
            }
        }
    }
    if o.clear_baseline {
        targets::clear_baseline(&mut tx, row.id).await?;
    }
    if !ctx
        .finish_in(&mut tx, Some(&json!(report)), failure)
        .await?
    {
        return Ok(false);
    }
    tx.commit().await.map(|()| true)
}

/// The timeline event a successful run makes: a repaired drift, or the applied version's own
/// action (enabled, disabled, paused, resumed); a version is recorded once however many runs
/// apply it.
async fn own_event(
    tx: &mut sqlx::PgConnection,
    job_id: i64,
    row: &targets::TargetRow,
    report: &Report,
) -> sqlx::Result<Vec<NewEvent>> {
    let now = chrono::Utc::now();
    if let Some(drift) = report.drift() {
        return Ok(vec![NewEvent {
            target_id: row.id,
            kind: EventKind::DriftRepaired,
            at: now,
            source: format!("job:{job_id}"),
            details: json!({"drift": drift, "version": row.version}),
        }]);
    }
    if report.reason == "drift" {
        return Ok(Vec::new());
    }
    let action = events::version_action(tx, row.id, row.version).await?;
    let kind = match (action.as_deref(), row.enabled) {
        (Some("pause"), _) => EventKind::Paused,
        (Some("resume"), _) => EventKind::Resumed,
        (Some("enable" | "update" | "rollback"), true) => EventKind::Enabled,
        (Some("disable"), _) | (Some("rollback"), false) => EventKind::Disabled,
        _ => return Ok(Vec::new()),
    };
    Ok(vec![NewEvent {
        target_id: row.id,
        kind,
        at: now,
        source: format!("version:{}", row.version),
        details: json!({"version": row.version, "action": action, "job_id": job_id}),
    }])
}

/// After the engine discarded a reconcile job (a timeout, a panic or a lost lease on its
/// last attempt): the target shows `failed` with the reason and the audit log has the
/// `failed` outcome, as when the run itself fails for good. Once per job.
pub(super) async fn record_discard(pool: &PgPool, job: jobs::JobRow, error: String) {
    let arg = |k: &str| job.args[k].as_str().unwrap_or_default().to_string();
    let (kind, name) = (arg("kind"), arg("name"));
    let written: sqlx::Result<()> = async {
        let mut tx = pool.begin().await?;
        let Some(row) = targets::lock(&mut tx, &kind, &name).await? else {
            return Ok(());
        };
        if audit::has_outcome(&mut tx, job.id).await? {
            return Ok(());
        }
        let report = Report {
            version: row.version,
            enabled: row.enabled,
            reason: job.args["reason"].as_str().unwrap_or("change").into(),
            error: Some(error.clone()),
            ..Default::default()
        };
        let conditions = json!(report::conditions(&report, Some(&error)));
        targets::set_failed(&mut tx, row.id, row.version, &conditions).await?;
        match crate::domain::TargetRef::from_stored(&kind, &name) {
            Ok(target) => {
                let event = audit::NewAuditEvent::new(
                    audit::Actor::zeroscale(),
                    if row.enabled { "apply" } else { "disable" },
                    audit::Outcome::Failed(error.clone()),
                    target,
                    row.version,
                    job.id,
                );
                audit::append(&mut tx, &event).await?;
            }
            // A stored name that today's rules refuse: the failure is still recorded on the
            // target; the event, which names a valid target, is not written.
            Err(why) => tracing::warn!(
                job_id = job.id, %kind, %name, %why,
                "a discarded job's target has a name the audit log cannot take"
            ),
        }
        tx.commit().await
    }
    .await;
    if let Err(e) = written {
        tracing::warn!(job_id = job.id, error = %e, "could not record a discarded job's outcome");
    }
}

//! Lifting what has run out: a pause at its `until` is resumed by zeroscale (audited as
//! `resume` by `zeroscale`, a new version whose job lifts the SuspendedState), and an expired
//! keep-warm pin is removed from the spec (audited as `keep_warm_expired`; AWS's own `at()`
//! action already lowered MinCapacity, and the job deletes that action). Safe on every replica:
//! each lift is made on the version that held it, so a concurrent change (an extended pause)
//! wins, and a lift made twice is unchanged the second time.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::RECONCILE_JOB;
use crate::{
    domain::TargetRef,
    store::{changes, holds},
};

/// The SuspendedState the target had when zeroscale paused it: as the last run recorded it (or
/// this job's earlier attempt, whose outcome may not have been written). When no record survived
/// (a pausing job superseded or discarded before it finished) and the target is suspended
/// entirely, as a pause leaves it, what was there before zeroscale (`baseline`) stands in:
/// nothing suspended for a target zeroscale registered or whose past is unknown, so a resume
/// never leaves scale-in suspended by a pause. Otherwise None: what is there is the owner's.
pub(super) fn before_pause(
    row: &crate::store::targets::TargetRow,
    earlier: Option<&serde_json::Value>,
    baseline: Option<super::plan::Baseline>,
    now: Option<super::plan::ObservedTarget>,
) -> Option<super::plan::Suspended> {
    use super::plan::{Baseline, Suspended};
    let read =
        |v: &serde_json::Value| serde_json::from_value(v["suspended_before_pause"].clone()).ok();
    if let Some(recorded) = read(&row.observed).or_else(|| earlier.and_then(read)) {
        return Some(recorded);
    }
    let suspended_entirely =
        now.is_some_and(|t| t.suspended_in && t.suspended_out && t.suspended_scheduled);
    if !suspended_entirely {
        return None;
    }
    match baseline? {
        Baseline::Existed { suspended, .. } => Some(Suspended {
            dynamic_scaling_in_suspended: suspended.0,
            dynamic_scaling_out_suspended: suspended.1,
            scheduled_scaling_suspended: suspended.2,
        }),
        Baseline::Absent | Baseline::Unknown => Some(Suspended::default()),
    }
}

/// What this run records as the SuspendedState before the pause: while paused, the recorded
/// one, else (the run that pauses) what the target has now, nothing suspended for a target not
/// registered yet; otherwise the recorded one until the run that resumes has given it back (the
/// caller clears it then).
pub(super) fn record_before_pause(
    d: &super::plan::Desired,
    o: &super::plan::Observed,
) -> Option<super::plan::Suspended> {
    match d.paused {
        true => d
            .before_pause
            .or_else(|| Some(o.target.map(|t| t.suspended()).unwrap_or_default())),
        false => d.before_pause,
    }
}

/// Lifts every expired pause and pin (at most 100 a call); how many were lifted.
pub async fn lift_expired(pool: &PgPool) -> sqlx::Result<usize> {
    let expired = holds::expired(pool, 100).await?;
    let mut lifted = 0;
    for e in expired {
        let Ok(target) = TargetRef::from_stored(&e.kind, &e.name) else {
            continue;
        };
        let patch = json!({ e.key.as_str(): null });
        let action = if e.key == "pause" {
            "resume"
        } else {
            "keep_warm_expired"
        };
        let job_target = target.job_target();
        let input = changes::ChangeInput {
            kind: &e.kind,
            name: &e.name,
            enabled: None,
            spec: None,
            if_match: Some(e.version),
            job_kind: RECONCILE_JOB,
            job_target: &job_target,
            token_name: "zeroscale",
            on_behalf_of: None,
            source_ip: None,
            user_agent: None,
            request_id: None,
            create: false,
            rollback_to: None,
            action: Some(action),
            patch: Some(&patch),
            carry: None,
        };
        let mut conn = pool.acquire().await?;
        let recorded = changes::record(&mut conn, &input).await?;
        if recorded.outcome.as_deref() == Some("accepted") {
            tracing::info!(%target, action, "lifted what had run out");
            lifted += 1;
        }
    }
    if lifted > 0 {
        let _ = crate::store::jobs::notify_workers(pool).await;
    }
    Ok(lifted)
}

/// Lifts expired pauses and pins every `every` until `stop`.
pub async fn run(pool: PgPool, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! { _ = stop.cancelled() => return, _ = tick.tick() => {} }
        if let Err(e) = lift_expired(&pool).await {
            tracing::warn!(error = %e, "could not lift expired pauses and keep-warm pins");
        }
    }
}

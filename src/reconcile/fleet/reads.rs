//! The observation pass's reads: each a batched or namespace-wide paginated call (see the
//! parent module), counting the calls it makes.

use std::collections::{HashMap, HashSet};

use aws_sdk_applicationautoscaling::types::{ScalingPolicy, ServiceNamespace};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::Item;
use crate::{
    aws::AwsClients,
    domain::{target::ALARM_PREFIX, TargetRef},
    jobs::JobError,
    reconcile::{
        job_error, objects,
        observe::{alarm_pages, policy_pages, scaling_outcome, scheduled_pages, target_pages},
        plan,
        timeline::{AlarmState, SeenActivity},
    },
};

/// Scaling-activity pages one pass reads at most (a pass after a long pause reads the newest).
const MAX_ACTIVITY_PAGES: usize = 10;

/// Every target's scalable target, 50 ResourceIds a call, by resource id (ours: the target's
/// dimension only).
pub(super) async fn read_targets(
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
        let request = aws
            .autoscaling
            .describe_scalable_targets()
            .set_resource_ids(Some(chunk.iter().map(|s| s.to_string()).collect()));
        let pages = target_pages(aws, request).await?;
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
pub(super) async fn read_policies(
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
        let request = aws
            .autoscaling
            .describe_scaling_policies()
            .set_policy_names(Some(names));
        let pages = policy_pages(aws, request).await?;
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

/// Whether a target may have scheduled actions of ours: its spec asks for some, or its last run
/// left some.
pub(super) fn uses_scheduled(it: &Item) -> bool {
    it.spec.uses_scheduled_actions()
        || it.row.observed["scheduled_actions"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
}

/// Our scheduled actions across the namespace, 50 a page, by resource id then name: read only
/// when some target may have them (a fleet without schedules or pins pays nothing).
pub(super) async fn read_scheduled(
    aws: &AwsClients,
    items: &[Item],
    calls: &mut usize,
) -> Result<HashMap<String, std::collections::BTreeMap<String, Value>>, JobError> {
    let mut out: HashMap<String, std::collections::BTreeMap<String, Value>> = HashMap::new();
    if !items.iter().any(uses_scheduled) {
        return Ok(out);
    }
    let pages = scheduled_pages(aws, aws.autoscaling.describe_scheduled_actions()).await?;
    *calls += pages.len();
    for a in pages.iter().flat_map(|p| p.scheduled_actions()) {
        let (name, config) = objects::scheduled_action::read_back(a);
        if name.starts_with(objects::scheduled_action::PREFIX) {
            out.entry(a.resource_id().to_string())
                .or_default()
                .insert(name, config);
        }
    }
    Ok(out)
}

/// Every alarm under zeroscale's prefix, 100 a page, as comparable configurations by name.
pub(super) async fn read_alarms(
    aws: &AwsClients,
    calls: &mut usize,
) -> Result<(HashMap<String, Value>, HashMap<String, AlarmState>), JobError> {
    let request = aws
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix(ALARM_PREFIX)
        .max_records(100);
    let pages = alarm_pages(aws, request).await?;
    *calls += pages.len();
    let alarms = || pages.iter().flat_map(|p| p.metric_alarms());
    let configs = alarms()
        .map(|a| {
            (
                a.alarm_name().unwrap_or_default().to_string(),
                objects::alarm::read_back(a),
            )
        })
        .collect();
    let states = alarms()
        .filter_map(|a| {
            let updated = a.state_updated_timestamp()?;
            Some((
                a.alarm_name()?.to_string(),
                AlarmState {
                    value: a.state_value()?.as_str().to_string(),
                    updated: DateTime::<Utc>::from_timestamp(
                        updated.secs(),
                        updated.subsec_nanos(),
                    )?,
                    reason_data: a.state_reason_data().map(str::to_string),
                },
            ))
        })
        .collect();
    Ok((configs, states))
}

/// SageMaker's status of every component and endpoint, from the List calls (made only for the
/// kinds the fleet has).
#[derive(Default)]
pub(super) struct SageMakerStatus {
    components: HashMap<String, String>,
    endpoints: HashMap<String, String>,
}

impl SageMakerStatus {
    /// Why the target's SageMaker resource cannot be scaled (gone, failed or being deleted).
    pub(super) fn problem(&self, target: &TargetRef) -> Option<String> {
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

pub(super) async fn read_sagemaker(
    aws: &AwsClients,
    items: &[Item],
    calls: &mut usize,
) -> Result<SageMakerStatus, JobError> {
    let mut out = SageMakerStatus::default();
    if items
        .iter()
        .any(|it| matches!(it.target, TargetRef::Component(_)))
    {
        let started = tokio::time::Instant::now();
        let pages = aws.component_pages().await.map_err(job_error)?;
        *calls += pages.len();
        // The component preflights of a burst may use this listing (`aws::directory`).
        aws.remember_components(started, &pages).await;
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
        let pages = aws.endpoint_pages().await.map_err(job_error)?;
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

/// The namespace's scaling activities since `since`, newest first.
pub(super) struct ActivitiesRead {
    /// Each resource's latest finished outcome (`None`: it succeeded).
    pub outcomes: HashMap<String, Option<Value>>,
    /// The newest start time seen.
    pub seen_until: Option<DateTime<Utc>>,
    /// Every activity read, for the timeline.
    pub seen: Vec<SeenActivity>,
}

/// Reads the namespace's scaling activities since `since` (see [`ActivitiesRead`]). The first
/// pass reads one page.
pub(super) async fn read_activities(
    aws: &AwsClients,
    since: Option<DateTime<Utc>>,
    calls: &mut usize,
) -> Result<ActivitiesRead, JobError> {
    let since_secs =
        since.map(|t| t.timestamp() as f64 + f64::from(t.timestamp_subsec_micros()) / 1e6);
    let pages = aws
        .autoscaling
        .describe_scaling_activities()
        .service_namespace(ServiceNamespace::Sagemaker)
        // Not-scaled activities too: a wake the step policy could not make (AlreadyAtMaxCapacity
        // at zero) is a failed wake on the timeline; routine ones are ignored there and by the
        // outcome.
        .include_not_scaled_activities(true)
        .max_results(50)
        .into_paginator()
        .send();
    let mut outcomes: HashMap<String, Option<Value>> = HashMap::new();
    let mut newest: Option<f64> = None;
    let mut seen = Vec::new();
    let mut pages_read = 0;
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
                newest = Some(newest.map_or(started, |n| n.max(started)));
                seen.extend(seen_activity(a));
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
    Ok(ActivitiesRead {
        outcomes,
        seen_until,
        seen,
    })
}

fn seen_activity(
    a: &aws_sdk_applicationautoscaling::types::ScalingActivity,
) -> Option<SeenActivity> {
    let time = |t: &aws_smithy_types::DateTime| {
        DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())
    };
    Some(SeenActivity {
        id: a.activity_id().to_string(),
        resource_id: a.resource_id().to_string(),
        status: a.status_code().as_str().to_string(),
        description: a.description().to_string(),
        cause: a.cause().to_string(),
        message: a.status_message().map(str::to_string),
        not_scaled: a
            .not_scaled_reasons()
            .iter()
            .map(|r| {
                serde_json::json!({"code": r.code(), "max_capacity": r.max_capacity(),
                                   "min_capacity": r.min_capacity(), "current_capacity": r.current_capacity()})
            })
            .collect(),
        start: time(a.start_time())?,
        end: a.end_time().and_then(time),
    })
}

//! The simulation: traffic makes metrics, alarms evaluate them once per period, alarm actions
//! run step policies, target tracking follows its metric, and every scaling decision becomes a
//! scaling activity, failing past the account's instance quota. Rules: sandbox-semantics.md.
//!
//! Simplifications (documented, not hidden): one instance per component copy; target tracking
//! decides on the last minute's value alone; a served request is one `Invocations` datapoint;
//! an async endpoint with instances drains its whole backlog each minute.

use serde_json::{json, Value};

use super::world::World;
use alarms::evaluate_alarm;
use tracking::target_tracking;

mod alarms;
mod scaling;
mod scheduled;
#[cfg(test)]
mod tests;
mod tracking;

pub use alarms::{run_actions, transition};
pub use scaling::{capacity, clamp_to_bounds, set_capacity};

/// Brings the world up to the clock: provisioning completions and every minute boundary passed.
pub fn settle(w: &mut World) {
    let now = w.now();
    let mut boundary = w.processed_until + 60.0;
    while boundary <= now {
        complete_provisioning(w, boundary);
        scheduled::run_due(w, boundary);
        minute(w, boundary);
        w.processed_until = boundary;
        boundary += 60.0;
    }
    complete_provisioning(w, now);
}

/// Traffic from the control API: `count` requests to a component or an async endpoint.
pub fn invoke(
    w: &mut World,
    component: Option<&str>,
    endpoint: Option<&str>,
    count: u32,
) -> Result<Value, String> {
    settle(w);
    let now = w.now();
    if let Some(name) = component {
        let c = w
            .components
            .get(name)
            .ok_or_else(|| format!("no inference component {name}"))?;
        let copies = c.current_copies;
        // At zero copies every request fails and is counted as NoCapacityInvocationFailures.
        let metric = if copies == 0 {
            "NoCapacityInvocationFailures"
        } else {
            "Invocations"
        };
        w.put_metric(
            "AWS/SageMaker",
            metric,
            &[("InferenceComponentName", name)],
            now,
            f64::from(count),
        );
        return Ok(
            json!({"served": if copies > 0 { count } else { 0 }, "failed": if copies == 0 { count } else { 0 }, "copies": copies}),
        );
    }
    if let Some(name) = endpoint {
        let e = w
            .endpoints
            .get_mut(name)
            .ok_or_else(|| format!("no endpoint {name}"))?;
        if e.async_config.is_none() {
            return Err(format!(
                "endpoint {name} is not an async-inference endpoint; invoke a component instead"
            ));
        }
        // Async requests queue; they are served once capacity exists.
        e.backlog += u64::from(count);
        return Ok(json!({"queued": e.backlog}));
    }
    Err("give a component or an endpoint".into())
}

fn complete_provisioning(w: &mut World, until: f64) {
    settle_statuses(w, until);
    for c in w.components.values_mut() {
        let (ready, waiting): (Vec<_>, Vec<_>) =
            c.provisioning.drain(..).partition(|(at, _)| *at <= until);
        c.provisioning = waiting;
        c.current_copies =
            (c.current_copies + ready.iter().map(|(_, n)| n).sum::<u32>()).min(c.desired_copies);
    }
    for e in w.endpoints.values_mut() {
        for v in &mut e.variants {
            let (ready, waiting): (Vec<_>, Vec<_>) =
                v.provisioning.drain(..).partition(|(at, _)| *at <= until);
            v.provisioning = waiting;
            v.current_instances = (v.current_instances + ready.iter().map(|(_, n)| n).sum::<u32>())
                .min(v.desired_instances);
        }
    }
    sync_component_instances(w);
}

/// Keeps the instance counts of variants that host components in step with their copies
/// (one instance per copy, at least the managed minimum).
pub fn sync_component_instances(w: &mut World) {
    let comps: Vec<_> = w
        .components
        .values()
        .map(|c| {
            (
                c.endpoint.clone(),
                c.variant.clone(),
                c.desired_copies,
                c.current_copies,
            )
        })
        .collect();
    for e in w.endpoints.values_mut() {
        for v in &mut e.variants {
            let hosted: Vec<_> = comps
                .iter()
                .filter(|(ep, var, _, _)| *ep == e.name && *var == v.name)
                .collect();
            if hosted.is_empty() {
                continue;
            }
            let min = v
                .managed
                .as_ref()
                .and_then(|m| m.min_instance_count)
                .unwrap_or(0);
            v.desired_instances = hosted.iter().map(|h| h.2).sum::<u32>().max(min);
            v.current_instances = hosted.iter().map(|h| h.3).sum::<u32>().max(min);
        }
    }
}

fn minute(w: &mut World, boundary: f64) {
    async_metrics(w, boundary);
    let names: Vec<String> = w
        .alarms
        .iter()
        .filter(|(_, a)| !a.aws_owned)
        .map(|(n, _)| n.clone())
        .collect();
    for name in names {
        evaluate_alarm(w, &name, boundary);
    }
    target_tracking(w, boundary);
}

fn async_metrics(w: &mut World, boundary: f64) {
    let at = boundary - 1.0;
    let mut points = Vec::new();
    for e in w
        .endpoints
        .values_mut()
        .filter(|e| e.async_config.is_some())
    {
        let instances: u32 = e.variants.iter().map(|v| v.current_instances).sum();
        if e.backlog > 0 && instances == 0 {
            points.push((e.name.clone(), "HasBacklogWithoutCapacity", 1.0));
        }
        if instances > 0 {
            points.push((
                e.name.clone(),
                "ApproximateBacklogSizePerInstance",
                e.backlog as f64 / f64::from(instances),
            ));
            e.backlog = 0;
        }
    }
    for (name, metric, value) in points {
        w.put_metric(
            "AWS/SageMaker",
            metric,
            &[("EndpointName", &name)],
            at,
            value,
        );
    }
}

/// Puts an endpoint in `Updating` until `until` (or later, if it already is).
pub fn updating(w: &mut World, endpoint: &str, at: f64, until: f64) {
    if let Some(e) = w.endpoints.get_mut(endpoint) {
        e.status = "Updating".into();
        e.status_until = Some(e.status_until.map_or(until, |u| u.max(until)));
        e.modified = at;
    }
}

/// Transitional statuses whose time has come become InService.
fn settle_statuses(w: &mut World, until: f64) {
    for e in w.endpoints.values_mut() {
        if e.status_until.is_some_and(|t| t <= until) {
            e.status = "InService".into();
            e.status_until = None;
        }
    }
    for c in w.components.values_mut() {
        if c.status_until.is_some_and(|t| t <= until) {
            c.status = "InService".into();
            c.status_until = None;
        }
    }
}

//! PutScheduledAction, DescribeScheduledActions and DeleteScheduledAction, with the model's
//! constraints (botocore application-autoscaling 2016-02-06): a name of 1-256 characters
//! without `:`, `/` or `|`, unique per scalable target; a target that must be registered
//! (ObjectNotFoundException); 200 actions per target (LimitExceededException); pages of at most
//! 50. Put creates or updates, and StartTime/EndTime left out of an update are deleted.

use serde_json::{json, Value};

use super::{key_of, not_found, schedule};
use crate::{
    params::{opt_f64, opt_str, opt_u32, page, req_str, str_list, with_token},
    protocol::{ts, AwsError},
    world::{arn, ScheduledAction, TargetKey, World},
};

/// "Scheduled actions per scalable target: 200, Adjustable: No" (the service's quotas page).
const PER_TARGET: usize = 200;

pub(super) fn put(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let key = key_of(p)?;
    let name = req_str(p, "ScheduledActionName")?;
    check_name(&name)?;
    let expr = req_str(p, "Schedule")?;
    schedule::parse(&expr).map_err(AwsError::validation)?;
    let timezone = opt_str(p, "Timezone");
    schedule::zone(timezone.as_deref()).map_err(AwsError::validation)?;
    let action = p.get("ScalableTargetAction");
    let min = action
        .map(|a| opt_u32(a, "MinCapacity"))
        .transpose()?
        .flatten();
    let max = action
        .map(|a| opt_u32(a, "MaxCapacity"))
        .transpose()?
        .flatten();
    if min.is_none() && max.is_none() {
        return Err(AwsError::validation(
            "At least one of minimum capacity and maximum capacity should be provided",
        ));
    }
    if let (Some(min), Some(max)) = (min, max) {
        if max < min {
            return Err(AwsError::validation(
                "Maximum capacity cannot be less than minimum capacity",
            ));
        }
    }
    let (start, end) = (opt_f64(p, "StartTime"), opt_f64(p, "EndTime"));
    if let (Some(s), Some(e)) = (start, end) {
        if e <= s {
            return Err(AwsError::validation("EndTime must be after StartTime"));
        }
    }
    if !w.targets.contains_key(&key) {
        return Err(not_found(format!(
            "No scalable target registered for service namespace: {}, resource ID: {}, scalable dimension: {}",
            key.0, key.1, key.2
        )));
    }
    let slot = (key.clone(), name.clone());
    let existing = w.scheduled_actions.get(&slot).cloned();
    if existing.is_none() && count(w, &key) >= PER_TARGET {
        return Err(AwsError::client(
            "LimitExceededException",
            format!("A scalable target can have at most {PER_TARGET} scheduled actions"),
        ));
    }
    let now = w.now();
    let action_arn = match &existing {
        Some(a) => a.arn.clone(),
        None => arn(
            "autoscaling",
            &format!(
                "scheduledAction:{}:resource/{}/{}:scheduledActionName/{name}",
                w.id(),
                key.0,
                key.1
            ),
        ),
    };
    w.scheduled_actions.insert(
        slot,
        ScheduledAction {
            name,
            arn: action_arn,
            schedule: expr,
            timezone,
            start,
            end,
            min,
            max,
            created: existing.as_ref().map_or(now, |a| a.created),
            // An update counts its runs from now: nothing already past runs again.
            checked_until: now,
        },
    );
    Ok(json!({}))
}

fn check_name(name: &str) -> Result<(), AwsError> {
    let bad_char = name.chars().any(|c| {
        matches!(c, ':' | '/' | '|') || c.is_control() || ('\u{7f}'..='\u{9f}').contains(&c)
    });
    if name.chars().count() > 256 || bad_char || name.starts_with(' ') || name.ends_with(' ') {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{name}' at 'scheduledActionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!((^[ ]+.*)|(.*([\\u0000-\\u001f]|[\\u007f-\\u009f]|[:/|])+.*)|(.*[ ]+$))).+"
        )));
    }
    Ok(())
}

fn count(w: &World, key: &TargetKey) -> usize {
    w.scheduled_actions.keys().filter(|(k, _)| k == key).count()
}

pub(super) fn describe(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let ns = req_str(p, "ServiceNamespace")?;
    let rid = opt_str(p, "ResourceId");
    let dim = opt_str(p, "ScalableDimension");
    if dim.is_some() && rid.is_none() {
        return Err(AwsError::validation(
            "If you specify a scalable dimension, you must also specify a resource ID",
        ));
    }
    let names = str_list(p, "ScheduledActionNames");
    if names.len() > 50 {
        return Err(AwsError::validation(
            "1 validation error detected: Value at 'scheduledActionNames' failed to satisfy constraint: Member must have length less than or equal to 50",
        ));
    }
    let items: Vec<Value> = w
        .scheduled_actions
        .iter()
        .filter(|((k, _), _)| k.0 == ns)
        .filter(|((k, _), _)| rid.as_ref().is_none_or(|r| &k.1 == r))
        .filter(|((k, _), _)| dim.as_ref().is_none_or(|d| &k.2 == d))
        .filter(|((_, n), _)| names.is_empty() || names.contains(n))
        .map(|((k, _), a)| view(k, a))
        .collect();
    let (items, next) = page(items, p, "MaxResults", 50, 50, "InvalidNextTokenException")?;
    Ok(with_token(json!({"ScheduledActions": items}), next))
}

fn view(k: &TargetKey, a: &ScheduledAction) -> Value {
    let mut out = json!({
        "ScheduledActionName": a.name,
        "ScheduledActionARN": a.arn,
        "ServiceNamespace": k.0,
        "Schedule": a.schedule,
        "ResourceId": k.1,
        "ScalableDimension": k.2,
        "CreationTime": ts(a.created),
    });
    if let Some(tz) = &a.timezone {
        out["Timezone"] = json!(tz);
    }
    if let Some(s) = a.start {
        out["StartTime"] = ts(s);
    }
    if let Some(e) = a.end {
        out["EndTime"] = ts(e);
    }
    let mut action = json!({});
    if let Some(min) = a.min {
        action["MinCapacity"] = json!(min);
    }
    if let Some(max) = a.max {
        action["MaxCapacity"] = json!(max);
    }
    out["ScalableTargetAction"] = action;
    out
}

pub(super) fn delete(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let key = key_of(p)?;
    let name = req_str(p, "ScheduledActionName")?;
    if w.scheduled_actions
        .remove(&(key.clone(), name.clone()))
        .is_none()
    {
        return Err(not_found(format!(
            "No scheduled action found for service namespace: {}, resource ID: {}, scalable dimension: {}, scheduled action name: {name}",
            key.0, key.1, key.2
        )));
    }
    Ok(json!({}))
}

/// DeregisterScalableTarget "deletes the scaling policies and the scheduled actions that are
/// associated with it".
pub(super) fn delete_all(w: &mut World, key: &TargetKey) {
    w.scheduled_actions.retain(|(k, _), _| k != key);
}

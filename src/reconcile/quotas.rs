//! The account's instance quota for an instance type, looked up by name (`<type> for endpoint
//! usage`; the `L-...` codes are opaque) with ListServiceQuotas, and cached.

use std::time::{Duration, Instant};

use super::Warning;
use crate::{
    aws::{AwsClients, AwsFailure},
    jobs::JobError,
};

/// How long a quota read is reused.
const TTL: Duration = Duration::from_secs(600);

/// The quota's value; `Ok(None)` when no quota has that name; `Err` (with the reason) when
/// Service Quotas cannot be read. aws-facts.md: an unreadable quota must not block an enable.
pub async fn instance_quota(aws: &AwsClients, instance_type: &str) -> Result<Option<f64>, String> {
    if let Some((value, at)) = aws
        .quota_cache
        .lock()
        .expect("quota cache")
        .get(instance_type)
    {
        if at.elapsed() < TTL {
            return Ok(*value);
        }
    }
    let wanted = format!("{instance_type} for endpoint usage");
    let mut token: Option<String> = None;
    let mut found = None;
    loop {
        aws.pace().await;
        let out = aws
            .quotas
            .list_service_quotas()
            .service_code("sagemaker")
            .set_next_token(token.clone())
            .max_results(100)
            .send()
            .await
            .map_err(|e| {
                // Only the error code reaches users; AWS's text (ARNs, role names) stays in the log.
                let f = AwsFailure::from_sdk("servicequotas", "ListServiceQuotas", e);
                tracing::warn!(code = %f.code, error = %f.message, "Service Quotas unreadable");
                f.code
            })?;
        if let Some(q) = out
            .quotas()
            .iter()
            .find(|q| q.quota_name() == Some(wanted.as_str()))
        {
            found = q.value();
            break;
        }
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    aws.quota_cache
        .lock()
        .expect("quota cache")
        .insert(instance_type.to_string(), (found, Instant::now()));
    Ok(found)
}

/// Refuses `need` instances of `instance_type` when the quota is read and is lower (AWS would
/// accept the max and then fail every scale-out past the quota: seed 001, pitfall 2). An
/// unknown or unreadable quota does not block: it becomes a warning that names the missing
/// quota or permission. `refuse` words the refusal from the quota's value.
pub async fn check(
    aws: &AwsClients,
    instance_type: &str,
    need: i32,
    refuse: impl FnOnce(f64) -> String,
) -> Result<Vec<Warning>, JobError> {
    match instance_quota(aws, instance_type).await {
        Ok(Some(quota)) if f64::from(need) > quota => Err(JobError::permanent(refuse(quota))),
        Ok(Some(_)) => Ok(vec![]),
        Ok(None) => Ok(vec![Warning::new("QuotaUnknown", format!("no Service Quotas entry named '{instance_type} for endpoint usage'; the max capacity could not be checked against it"))]),
        Err(why) => Ok(vec![Warning::new("QuotaUnreadable", format!("Service Quotas could not be read ({why}); grant servicequotas:ListServiceQuotas so zeroscale can check the max capacity against the instance quota"))]),
    }
}

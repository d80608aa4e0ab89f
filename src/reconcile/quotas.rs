//! The account's instance quota for an instance type, looked up by name (`<type> for endpoint
//! usage`; the `L-...` codes are opaque) with ListServiceQuotas, and cached.

use std::time::{Duration, Instant};

use crate::aws::{AwsClients, AwsFailure};

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
                let f = AwsFailure::from_sdk("servicequotas", "ListServiceQuotas", e);
                format!("{}: {}", f.code, f.message)
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

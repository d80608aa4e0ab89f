//! The account's instance quota for an instance type (`<type> for endpoint usage`; the `L-...`
//! codes are opaque, so it is looked up by name) and what other endpoints already use of it.
//!
//! aws-facts.md, "Quotas": ListServiceQuotas lists only quotas the account applied; an account
//! that never raised one has only AWS's default (ListAWSDefaultServiceQuotas). The quota counts
//! instances across the whole account and Region. Both reads are cached.

use std::{collections::HashMap, sync::Arc};

use aws_sdk_sagemaker::types::ProductionVariant;

use super::{Preflight, Warning};
pub use crate::aws::{Quota, QuotaSource};
use crate::{
    aws::{AwsClients, AwsFailure},
    jobs::JobError,
};

/// Instances of one type other variants run: ("endpoint (variant)", instances).
pub type Usage = Vec<(String, i32)>;

/// Instances of one type every variant runs: (endpoint, variant, instances).
pub type AccountUsage = Vec<(String, String, i32)>;

/// The quota in force for `instance_type`: the applied value, else AWS's default. `Ok(None)`
/// when neither exists; `Err` (what AWS answered) when Service Quotas cannot be read.
pub async fn instance_quota(
    aws: &AwsClients,
    instance_type: &str,
) -> Result<Option<Quota>, String> {
    let wanted = format!("{instance_type} for endpoint usage");
    aws.quota_cache
        .try_get_with(instance_type.to_string(), async {
            match find_quota(aws, &wanted, QuotaSource::Applied).await? {
                Some(v) => Ok(Some(v)),
                None => find_quota(aws, &wanted, QuotaSource::Default).await,
            }
        })
        .await
        .map_err(|e: Arc<String>| e.to_string())
}

/// Pages through the applied (or default) quotas of SageMaker for one by name.
async fn find_quota(
    aws: &AwsClients,
    wanted: &str,
    source: QuotaSource,
) -> Result<Option<Quota>, String> {
    // Found on a page, the rest are not read: SageMaker lists hundreds of quotas.
    let value = |quotas: &[aws_sdk_servicequotas::types::ServiceQuota]| {
        quotas
            .iter()
            .find(|q| q.quota_name() == Some(wanted))
            .map(|q| q.value())
    };
    let found = match source {
        QuotaSource::Applied => {
            let pages = aws
                .quotas
                .list_service_quotas()
                .service_code("sagemaker")
                .max_results(100)
                .into_paginator()
                .send();
            aws.find_in_pages("servicequotas", "ListServiceQuotas", pages, |p| {
                value(p.quotas())
            })
            .await
        }
        QuotaSource::Default => {
            let pages = aws
                .quotas
                .list_aws_default_service_quotas()
                .service_code("sagemaker")
                .max_results(100)
                .into_paginator()
                .send();
            aws.find_in_pages("servicequotas", "ListAWSDefaultServiceQuotas", pages, |p| {
                value(p.quotas())
            })
            .await
        }
    };
    Ok(found
        .map_err(unreadable)?
        .flatten()
        .map(|value| Quota { value, source }))
}

/// What AWS actually answered goes to the log; users see the operation and the code (or HTTP
/// status), not ARNs or role names.
fn unreadable(f: AwsFailure) -> String {
    tracing::warn!(operation = f.operation, code = %f.code, error = %f.message, "AWS read failed");
    format!("{}: {}", f.operation, f.code)
}

/// Instances of `instance_type` that variants other than `ours` (endpoint, variant) run now, read with
/// ListEndpoints and DescribeEndpoint (counts) and DescribeEndpointConfig (instance types;
/// configs are immutable under their name, so cached for good). The whole account's usage is
/// cached for 10 minutes: one sweep serves every instance type and target.
pub async fn other_usage(
    aws: &AwsClients,
    instance_type: &str,
    ours: (&str, &str),
) -> Result<Usage, String> {
    let all = aws
        .usage_cache
        .try_get_with((), async { sweep(aws).await.map(Arc::new) })
        .await
        .map_err(|e: Arc<String>| e.to_string())?;
    Ok(all
        .get(instance_type)
        .map(|u| {
            u.iter()
                .filter(|(e, v, n)| (e.as_str(), v.as_str()) != ours && *n > 0)
                .map(|(e, v, n)| (format!("{e} ({v})"), *n))
                .collect()
        })
        .unwrap_or_default())
}

/// Every endpoint's instances by instance type.
async fn sweep(aws: &AwsClients) -> Result<HashMap<String, AccountUsage>, String> {
    let names: Vec<String> = aws
        .endpoint_pages()
        .await
        .map_err(unreadable)?
        .iter()
        .flat_map(|p| p.endpoints().to_vec())
        .filter_map(|e| e.endpoint_name().map(str::to_string))
        .collect();
    let mut usage: HashMap<String, AccountUsage> = HashMap::new();
    for name in names {
        aws.pace().await;
        let ep = match aws
            .sagemaker
            .describe_endpoint()
            .endpoint_name(&name)
            .send()
            .await
        {
            Ok(ep) => ep,
            Err(e) => {
                let f = AwsFailure::from_sdk("sagemaker", "DescribeEndpoint", e);
                if super::kinds::not_found(&f) {
                    continue; // deleted meanwhile
                }
                return Err(unreadable(f));
            }
        };
        let config = ep.endpoint_config_name().unwrap_or_default();
        let types = config_types(aws, config).await?;
        for v in ep.production_variants() {
            let n = v
                .current_instance_count()
                .unwrap_or(0)
                .max(v.desired_instance_count().unwrap_or(0));
            let itype = types
                .get(v.variant_name().unwrap_or_default())
                .cloned()
                .flatten();
            if let Some(t) = itype {
                let variant = v.variant_name().unwrap_or_default().to_string();
                usage.entry(t).or_default().push((name.clone(), variant, n));
            }
        }
    }
    Ok(usage)
}

/// Keeps an endpoint config a preflight read for the usage sweep (configs are immutable under
/// their name, so it never goes stale).
pub async fn remember_config(
    aws: &AwsClients,
    name: &str,
    config: &aws_sdk_sagemaker::operation::describe_endpoint_config::DescribeEndpointConfigOutput,
) {
    aws.config_cache
        .insert(
            name.to_string(),
            Arc::new(variant_types(config.production_variants())),
        )
        .await;
}

fn variant_types(variants: &[ProductionVariant]) -> HashMap<String, Option<String>> {
    variants
        .iter()
        .map(|v| {
            (
                v.variant_name().unwrap_or_default().to_string(),
                instance_types(v).0,
            )
        })
        .collect()
}

/// Variant name -> instance type of an endpoint config (None for instance pools).
async fn config_types(
    aws: &AwsClients,
    config: &str,
) -> Result<Arc<HashMap<String, Option<String>>>, String> {
    if let Some(t) = aws.config_cache.get(config).await {
        return Ok(t);
    }
    aws.pace().await;
    let out = aws
        .sagemaker
        .describe_endpoint_config()
        .endpoint_config_name(config)
        .send()
        .await
        .map_err(|e| {
            unreadable(AwsFailure::from_sdk(
                "sagemaker",
                "DescribeEndpointConfig",
                e,
            ))
        })?;
    let types = Arc::new(variant_types(out.production_variants()));
    aws.config_cache
        .insert(config.to_string(), types.clone())
        .await;
    Ok(types)
}

/// A configured variant's instance type, or the types of its instance pools (aws-facts.md: a
/// variant may use InstancePools instead of one InstanceType).
pub fn instance_types(v: &ProductionVariant) -> (Option<String>, Vec<String>) {
    let pools = v
        .instance_pools()
        .iter()
        .filter_map(|p| p.instance_type().map(|t| t.as_str().to_string()))
        .collect();
    (v.instance_type().map(|t| t.as_str().to_string()), pools)
}

/// Checks `need` instances (derived as `why` says) against the quota of the preflight's
/// instance type. A quota that is read and too low refuses (AWS would accept the max and then
/// fail every scale-out past the quota: seed 001, pitfall 2). What other endpoints run of the
/// type only warns: it changes from minute to minute. An unknown or unreadable quota, or a
/// variant of instance pools, warns and does not block (aws-facts.md).
pub async fn check(
    aws: &AwsClients,
    pre: &Preflight,
    need: i32,
    why: &str,
    fix: &str,
) -> Result<Vec<Warning>, JobError> {
    let Some(itype) = pre.instance_type.as_deref() else {
        return Ok(vec![Warning::new("QuotaNotChecked", format!(
            "variant {:?} of endpoint {:?} uses instance pools ({}): its instances may be of any of these types, so zeroscale did not check max_capacity against a single instance quota; check the quotas '<type> for endpoint usage' of each in Service Quotas",
            pre.variant, pre.endpoint, pre.instance_pools.join(", ")))]);
    };
    let name = format!("'{itype} for endpoint usage'");
    let quota = match instance_quota(aws, itype).await {
        Ok(Some(q)) => q,
        Ok(None) => return Ok(vec![Warning::new("QuotaUnknown", format!("no Service Quotas entry (applied or AWS default) named {name}; max_capacity could not be checked against it"))]),
        Err(what) => return Ok(vec![Warning::new("QuotaUnreadable", format!("Service Quotas could not be read ({what}); grant servicequotas:ListServiceQuotas and servicequotas:ListAWSDefaultServiceQuotas so zeroscale can check max_capacity against the instance quota"))]),
    };
    let q = quota.value;
    if f64::from(need) > q {
        return Err(JobError::permanent(format!(
            "{why}, but the account's quota {name} is {q} instances ({}). AWS would accept this and then fail every scale-out past {q}, visible only in the scaling activities. {fix}, or request an increase of the quota {name} (service code sagemaker) in Service Quotas and retry once it is granted",
            quota.source
        )));
    }
    let used = match other_usage(aws, itype, (&pre.endpoint, &pre.variant)).await {
        Ok(u) => u,
        Err(what) => return Ok(vec![Warning::new("QuotaUsageUnreadable", format!(
            "what other endpoints run of {itype} could not be read ({what}); only this target's own need ({need}) was checked against the quota {name} of {q}"))]),
    };
    let others: i32 = used.iter().map(|(_, n)| n).sum();
    if f64::from(need + others) > q {
        let list: Vec<String> = used.iter().map(|(e, n)| format!("{e}: {n}")).collect();
        return Ok(vec![Warning::new("QuotaHeadroom", format!(
            "the quota {name} is {q} instances ({}), and other endpoints run {others} of them now ({}; read with DescribeEndpoint, refreshed every 10 minutes). {why}: while they do, scale-outs past {} instances will fail",
            quota.source, list.join(", "), (q - f64::from(others)).max(0.0)))]);
    }
    Ok(vec![])
}

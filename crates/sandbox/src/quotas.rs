//! Service Quotas for SageMaker: `<instance type> for endpoint usage`, looked up by name with
//! ListServiceQuotas or by code with GetServiceQuota.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{
    params::{page, req_str, with_token},
    protocol::AwsError,
    world::{arn, World},
};

/// Runs one Service Quotas operation. As on AWS (aws-facts.md, "Quotas"), ListServiceQuotas
/// and GetServiceQuota see only values the account applied; AWS's defaults come from
/// ListAWSDefaultServiceQuotas and GetAWSDefaultServiceQuota.
pub fn handle(w: &mut World, op: &str, p: &Value) -> Result<Value, AwsError> {
    match op {
        "ListServiceQuotas" => list(&w.quotas, p),
        "ListAWSDefaultServiceQuotas" => list(&w.default_quotas, p),
        "GetServiceQuota" => get(&w.quotas, p),
        "GetAWSDefaultServiceQuota" => get(&w.default_quotas, p),
        other => Err(AwsError::client(
            "UnknownOperationException",
            format!("the sandbox does not implement ServiceQuotasV20190624.{other}"),
        )),
    }
}

fn list(quotas: &BTreeMap<String, f64>, p: &Value) -> Result<Value, AwsError> {
    check_service(p)?;
    let items = quotas.iter().map(|(t, v)| quota_view(t, *v)).collect();
    // The default page size is not documented ("a value appropriate to the operation"); the
    // sandbox assumes 100, the documented maximum.
    let (items, next) = page(
        items,
        p,
        "MaxResults",
        100,
        100,
        "InvalidPaginationTokenException",
    )?;
    Ok(with_token(json!({ "Quotas": items }), next))
}

fn get(quotas: &BTreeMap<String, f64>, p: &Value) -> Result<Value, AwsError> {
    check_service(p)?;
    let code = req_str(p, "QuotaCode")?;
    quotas
        .iter()
        .find(|(t, _)| quota_code(t) == code)
        .map(|(t, v)| json!({"Quota": quota_view(t, *v)}))
        .ok_or_else(|| {
            AwsError::client(
                "NoSuchResourceException",
                format!("The request failed because the specified quota {code} does not exist."),
            )
        })
}

fn check_service(p: &Value) -> Result<(), AwsError> {
    let code = req_str(p, "ServiceCode")?;
    if code != "sagemaker" {
        return Err(AwsError::client("NoSuchResourceException", format!("The request failed because the specified service {code} does not exist in the sandbox.")));
    }
    Ok(())
}

/// The opaque `L-...` code of an instance type's quota (stable per type).
pub fn quota_code(instance_type: &str) -> String {
    let h = Sha256::digest(instance_type.as_bytes());
    format!("L-{}", hex::encode(&h[..4]).to_uppercase())
}

/// The quota's name as AWS spells it.
pub fn quota_name(instance_type: &str) -> String {
    format!("{instance_type} for endpoint usage")
}

fn quota_view(instance_type: &str, value: f64) -> Value {
    let code = quota_code(instance_type);
    json!({
        "ServiceCode": "sagemaker",
        "ServiceName": "Amazon SageMaker",
        "QuotaArn": arn("servicequotas", &format!("sagemaker/{code}")),
        "QuotaCode": code,
        "QuotaName": quota_name(instance_type),
        "Value": value,
        "Unit": "None",
        "Adjustable": true,
        "GlobalQuota": false,
    })
}

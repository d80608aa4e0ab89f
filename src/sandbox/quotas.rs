//! Service Quotas for SageMaker: `<instance type> for endpoint usage`, looked up by name with
//! ListServiceQuotas or by code with GetServiceQuota.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{
    params::req_str,
    protocol::AwsError,
    world::{arn, World},
};

/// Runs one Service Quotas operation.
pub fn handle(w: &mut World, op: &str, p: &Value) -> Result<Value, AwsError> {
    match op {
        "ListServiceQuotas" => {
            check_service(p)?;
            Ok(
                json!({"Quotas": w.quotas.iter().map(|(t, v)| quota_view(t, *v)).collect::<Vec<_>>()}),
            )
        }
        "GetServiceQuota" => {
            check_service(p)?;
            let code = req_str(p, "QuotaCode")?;
            w.quotas
                .iter()
                .find(|(t, _)| quota_code(t) == code)
                .map(|(t, v)| json!({"Quota": quota_view(t, *v)}))
                .ok_or_else(|| {
                    AwsError::client(
                        "NoSuchResourceException",
                        format!(
                            "The request failed because the specified quota {code} does not exist."
                        ),
                    )
                })
        }
        other => Err(AwsError::client(
            "UnknownOperationException",
            format!("the sandbox does not implement ServiceQuotasV20190624.{other}"),
        )),
    }
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

//! Inference components: create (placed on an endpoint's variant), describe, list, delete.

use serde_json::{json, Value};

use super::{creating, deregister, not_found_endpoint};
use crate::{
    params::{opt_str, page, req_str, with_token},
    protocol::{ts, AwsError},
    world::{arn, Component, World},
};

pub(super) fn create_component(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let name = req_str(p, "InferenceComponentName")?;
    let endpoint = req_str(p, "EndpointName")?;
    if w.components.contains_key(&name) {
        return Err(AwsError::validation(format!(
            "Cannot create already existing inference component \"{name}\"."
        )));
    }
    let ep = w
        .endpoints
        .get(&endpoint)
        .ok_or_else(|| not_found_endpoint(&endpoint))?;
    let variant = opt_str(p, "VariantName").unwrap_or_else(|| {
        ep.variants
            .first()
            .map(|v| v.name.clone())
            .unwrap_or_default()
    });
    if !ep.variants.iter().any(|v| v.name == variant) {
        return Err(AwsError::validation(format!(
            "Variant {variant} does not exist on endpoint {endpoint}."
        )));
    }
    // A component cannot be created with zero copies: the first deploy always runs one.
    let copies = p
        .pointer("/RuntimeConfig/CopyCount")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    if copies < 1 {
        return Err(AwsError::validation(
            "RuntimeConfig.CopyCount must be at least 1.",
        ));
    }
    let component_arn = arn(
        "sagemaker",
        &format!("inference-component/{}", name.to_lowercase()),
    );
    let created = w.now();
    let (status, status_until) = creating(w, created);
    w.components.insert(
        name.clone(),
        Component {
            name,
            arn: component_arn.clone(),
            endpoint,
            variant,
            status,
            status_until,
            created,
            desired_copies: copies as u32,
            current_copies: copies as u32,
            provisioning: Vec::new(),
            specification: p.get("Specification").cloned().unwrap_or(json!({})),
        },
    );
    crate::sim::sync_component_instances(w);
    Ok(json!({"InferenceComponentArn": component_arn}))
}

pub(super) fn component_view(c: &Component, endpoint_arn: &str) -> Value {
    json!({
        "InferenceComponentName": c.name,
        "InferenceComponentArn": c.arn,
        "EndpointName": c.endpoint,
        "EndpointArn": endpoint_arn,
        "VariantName": c.variant,
        "InferenceComponentStatus": c.status,
        "Specification": c.specification,
        "RuntimeConfig": {"DesiredCopyCount": c.desired_copies, "CurrentCopyCount": c.current_copies},
        "CreationTime": ts(c.created),
        "LastModifiedTime": ts(c.created),
    })
}

pub(super) fn describe_component(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let name = req_str(p, "InferenceComponentName")?;
    let c = w.components.get(&name).ok_or_else(|| {
        AwsError::validation(format!(
            "Could not find inference component \"{}\".",
            arn("sagemaker", &format!("inference-component/{name}"))
        ))
    })?;
    let endpoint_arn = w
        .endpoints
        .get(&c.endpoint)
        .map(|e| e.arn.clone())
        .unwrap_or_default();
    Ok(component_view(c, &endpoint_arn))
}

pub(super) fn list_components(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let endpoint = opt_str(p, "EndpointNameEquals");
    let variant = opt_str(p, "VariantNameEquals");
    let contains = opt_str(p, "NameContains");
    let status = opt_str(p, "StatusEquals");
    let items: Vec<Value> = w
        .components
        .values()
        .filter(|c| endpoint.as_ref().is_none_or(|e| &c.endpoint == e))
        .filter(|c| variant.as_ref().is_none_or(|v| &c.variant == v))
        .filter(|c| contains.as_ref().is_none_or(|s| c.name.contains(s.as_str())))
        .filter(|c| status.as_ref().is_none_or(|s| &c.status == s))
        .map(|c| {
            json!({
                "InferenceComponentName": c.name,
                "InferenceComponentArn": c.arn,
                "EndpointName": c.endpoint,
                "EndpointArn": w.endpoints.get(&c.endpoint).map(|e| e.arn.clone()).unwrap_or_default(),
                "VariantName": c.variant,
                "InferenceComponentStatus": c.status,
                "CreationTime": ts(c.created),
                "LastModifiedTime": ts(c.created),
            })
        })
        .collect();
    let (items, next) = page(items, p, "MaxResults", 10, 100, "ValidationException")?;
    Ok(with_token(json!({"InferenceComponents": items}), next))
}

pub(super) fn delete_component(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let name = req_str(p, "InferenceComponentName")?;
    w.components.remove(&name).ok_or_else(|| {
        AwsError::validation(format!("Could not find inference component \"{name}\"."))
    })?;
    deregister(w, &format!("inference-component/{name}"));
    crate::sim::sync_component_instances(w);
    Ok(json!({}))
}

//! SageMaker: endpoint configs, endpoints and inference components.
//!
//! Simplifications (documented): endpoints and components are InService as soon as they are
//! created; one instance hosts one component copy.

use serde_json::{json, Value};

mod components;

use components::{create_component, delete_component, describe_component, list_components};

use crate::{
    params::{opt_str, page, req_str, with_token},
    protocol::{ts, AwsError},
    world::{arn, Endpoint, ManagedScaling, Variant, World},
};

/// Runs one SageMaker operation.
pub fn handle(w: &mut World, op: &str, p: &Value) -> Result<Value, AwsError> {
    match op {
        "CreateEndpointConfig" => create_endpoint_config(w, p),
        "DescribeEndpointConfig" => describe_endpoint_config(w, p),
        "CreateEndpoint" => create_endpoint(w, p),
        "DescribeEndpoint" => describe_endpoint(w, p),
        "DeleteEndpoint" => delete_endpoint(w, p),
        "UpdateEndpoint" => update_endpoint(w, p),
        "ListEndpoints" => list_endpoints(w, p),
        "CreateInferenceComponent" => create_component(w, p),
        "DescribeInferenceComponent" => describe_component(w, p),
        "ListInferenceComponents" => list_components(w, p),
        "DeleteInferenceComponent" => delete_component(w, p),
        other => Err(AwsError::client(
            "UnknownOperationException",
            format!("the sandbox does not implement SageMaker.{other}"),
        )),
    }
}

fn create_endpoint_config(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let name = req_str(p, "EndpointConfigName")?;
    if w.endpoint_configs.contains_key(&name) {
        return Err(AwsError::validation(format!(
            "Cannot create already existing endpoint configuration \"{}\".",
            arn("sagemaker", &format!("endpoint-config/{name}"))
        )));
    }
    let variants = p
        .get("ProductionVariants")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty());
    let variants = variants.ok_or_else(|| {
        AwsError::validation("ProductionVariants must contain at least one variant")
    })?;
    for v in variants {
        req_str(v, "VariantName")?;
        if v.get("ManagedInstanceScaling").is_some() {
            let m = ManagedScaling::of(v).ok_or_else(|| {
                AwsError::validation("ManagedInstanceScaling is not a valid ManagedInstanceScaling")
            })?;
            let min = m.min_instance_count.unwrap_or(1);
            let max = m.max_instance_count.unwrap_or(1);
            if max < 1 || min > max {
                return Err(AwsError::validation("ManagedInstanceScaling needs MaxInstanceCount >= 1 and MinInstanceCount <= MaxInstanceCount"));
            }
        }
    }
    let config_arn = arn(
        "sagemaker",
        &format!("endpoint-config/{}", name.to_lowercase()),
    );
    let mut stored = p.clone();
    stored["EndpointConfigArn"] = json!(config_arn);
    stored["CreationTime"] = ts(w.now());
    w.endpoint_configs.insert(name, stored);
    Ok(json!({"EndpointConfigArn": config_arn}))
}

fn describe_endpoint_config(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let name = req_str(p, "EndpointConfigName")?;
    w.endpoint_configs.get(&name).cloned().ok_or_else(|| {
        AwsError::validation(format!(
            "Could not find endpoint configuration \"{}\".",
            arn("sagemaker", &format!("endpoint-config/{name}"))
        ))
    })
}

fn create_endpoint(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let name = req_str(p, "EndpointName")?;
    let config_name = req_str(p, "EndpointConfigName")?;
    if w.endpoints.contains_key(&name) {
        return Err(AwsError::validation(format!(
            "Cannot create already existing endpoint \"{}\".",
            arn("sagemaker", &format!("endpoint/{name}"))
        )));
    }
    let config = describe_endpoint_config(w, &json!({"EndpointConfigName": config_name}))?;
    let variants = config["ProductionVariants"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let initial = v
                .get("InitialInstanceCount")
                .and_then(Value::as_u64)
                .unwrap_or(1) as u32;
            Variant {
                name: v["VariantName"].as_str().unwrap_or_default().to_string(),
                // A variant with InstancePools has no InstanceType; its instances come from the
                // first pool (the sandbox's simplification).
                instance_type: v["InstanceType"]
                    .as_str()
                    .or_else(|| v.pointer("/InstancePools/0/InstanceType")?.as_str())
                    .unwrap_or("ml.m5.large")
                    .to_string(),
                current_instances: initial,
                desired_instances: initial,
                provisioning: Vec::new(),
                managed: ManagedScaling::of(v),
            }
        })
        .collect();
    let endpoint_arn = arn("sagemaker", &format!("endpoint/{}", name.to_lowercase()));
    let created = w.now();
    let (status, status_until) = creating(w, created);
    w.endpoints.insert(
        name.clone(),
        Endpoint {
            name,
            arn: endpoint_arn.clone(),
            config_name,
            status,
            status_until,
            created,
            modified: created,
            variants,
            async_config: config.get("AsyncInferenceConfig").cloned(),
            backlog: 0,
        },
    );
    Ok(json!({"EndpointArn": endpoint_arn}))
}

/// A new endpoint or component is `Creating` for the provisioning delay (when status
/// transitions are on, as on AWS), then InService.
fn creating(w: &World, now: f64) -> (String, Option<f64>) {
    if w.settings.status_transitions {
        (
            "Creating".into(),
            Some(now + w.settings.provisioning_delay_seconds),
        )
    } else {
        ("InService".into(), None)
    }
}

fn not_found_endpoint(name: &str) -> AwsError {
    AwsError::validation(format!(
        "Could not find endpoint \"{}\".",
        arn("sagemaker", &format!("endpoint/{name}"))
    ))
}

/// DescribeEndpoint's output for an endpoint.
pub fn endpoint_view(e: &Endpoint) -> Value {
    let variants: Vec<Value> = e
        .variants
        .iter()
        .map(|v| {
            let mut out = json!({
                "VariantName": v.name,
                "CurrentInstanceCount": v.current_instances,
                "DesiredInstanceCount": v.desired_instances,
                "CurrentWeight": 1.0,
                "DesiredWeight": 1.0,
            });
            if let Some(m) = &v.managed {
                out["ManagedInstanceScaling"] = json!(m);
            }
            out
        })
        .collect();
    let mut out = json!({
        "EndpointName": e.name,
        "EndpointArn": e.arn,
        "EndpointConfigName": e.config_name,
        "EndpointStatus": e.status,
        "ProductionVariants": variants,
        "CreationTime": ts(e.created),
        "LastModifiedTime": ts(e.modified),
    });
    if let Some(a) = &e.async_config {
        out["AsyncInferenceConfig"] = a.clone();
    }
    out
}

fn describe_endpoint(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let name = req_str(p, "EndpointName")?;
    w.endpoints
        .get(&name)
        .map(endpoint_view)
        .ok_or_else(|| not_found_endpoint(&name))
}

fn delete_endpoint(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let name = req_str(p, "EndpointName")?;
    if w.components.values().any(|c| c.endpoint == name) {
        return Err(AwsError::validation(format!(
            "Endpoint {name} still hosts inference components; delete them first."
        )));
    }
    let e = w
        .endpoints
        .remove(&name)
        .ok_or_else(|| not_found_endpoint(&name))?;
    // Deleting an endpoint deregisters its variants' scalable targets (aws-facts.md).
    for v in &e.variants {
        deregister(w, &format!("endpoint/{name}/variant/{}", v.name));
    }
    Ok(json!({}))
}

/// Deregisters a resource's scalable target, as SageMaker does when the resource goes away.
fn deregister(w: &mut World, resource_id: &str) {
    let keys: Vec<_> = w
        .targets
        .keys()
        .filter(|k| k.1 == resource_id)
        .cloned()
        .collect();
    for k in keys {
        let _ = super::autoscaling::handle(
            w,
            "DeregisterScalableTarget",
            &json!({"ServiceNamespace": k.0, "ResourceId": k.1, "ScalableDimension": k.2}),
        );
    }
}

/// The instance type of a configured variant (its first pool's, for InstancePools).
fn config_instance_type(v: &Value) -> Option<&str> {
    v["InstanceType"]
        .as_str()
        .or_else(|| v.pointer("/InstancePools/0/InstanceType")?.as_str())
}

/// UpdateEndpoint: deploys another endpoint config. As on AWS (SageMaker guide, "Update
/// endpoints that use auto scaling"), it fails when it would change the instance type of a
/// variant registered as a scalable target; changing only the model is allowed.
fn update_endpoint(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let name = req_str(p, "EndpointName")?;
    let config_name = req_str(p, "EndpointConfigName")?;
    let e = w
        .endpoints
        .get(&name)
        .cloned()
        .ok_or_else(|| not_found_endpoint(&name))?;
    if e.status != "InService" {
        return Err(AwsError::validation(format!(
            "Cannot update in-progress endpoint \"{}\".",
            e.arn
        )));
    }
    let config = describe_endpoint_config(w, &json!({"EndpointConfigName": config_name}))?;
    let new_variants: Vec<Value> = config["ProductionVariants"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let blocked: Vec<String> = e
        .variants
        .iter()
        .filter(|v| {
            let rid = format!("endpoint/{name}/variant/{}", v.name);
            w.targets.keys().any(|k| k.1 == rid)
                && new_variants.iter().any(|n| {
                    n["VariantName"].as_str() == Some(v.name.as_str())
                        && config_instance_type(n) != Some(v.instance_type.as_str())
                })
        })
        .map(|v| v.name.clone())
        .collect();
    if !blocked.is_empty() {
        return Err(AwsError::validation(format!(
            "The variant(s) \"[{}]\" must be deregistered as scalable targets with AWS Application Auto Scaling before they can have their instance type updated.",
            blocked.join(", ")
        )));
    }
    let now = w.now();
    let until = now + w.settings.provisioning_delay_seconds;
    let transitions = w.settings.status_transitions;
    let Some(ep) = w.endpoints.get_mut(&name) else {
        return Err(not_found_endpoint(&name));
    };
    ep.config_name = config_name;
    ep.async_config = config.get("AsyncInferenceConfig").cloned();
    for v in &mut ep.variants {
        if let Some(n) = new_variants
            .iter()
            .find(|n| n["VariantName"].as_str() == Some(v.name.as_str()))
        {
            if let Some(t) = config_instance_type(n) {
                v.instance_type = t.to_string();
            }
            v.managed = ManagedScaling::of(n);
        }
    }
    let arn = ep.arn.clone();
    if transitions {
        super::sim::updating(w, &name, now, until);
    }
    Ok(json!({"EndpointArn": arn}))
}

fn list_endpoints(w: &mut World, p: &Value) -> Result<Value, AwsError> {
    let contains = opt_str(p, "NameContains");
    let status = opt_str(p, "StatusEquals");
    let items: Vec<Value> = w
        .endpoints
        .values()
        .filter(|e| {
            contains
                .as_ref()
                .is_none_or(|s| e.name.contains(s.as_str()))
        })
        .filter(|e| status.as_ref().is_none_or(|s| &e.status == s))
        .map(|e| {
            json!({
                "EndpointName": e.name,
                "EndpointArn": e.arn,
                "CreationTime": ts(e.created),
                "LastModifiedTime": ts(e.modified),
                "EndpointStatus": e.status,
            })
        })
        .collect();
    // The model: MaxResults 1-100, default 10.
    let (items, next) = page(items, p, "MaxResults", 10, 100, "ValidationException")?;
    Ok(with_token(json!({"Endpoints": items}), next))
}

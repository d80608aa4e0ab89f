//! The sandbox's control API (`/_sandbox/...`, JSON): seed resources and quotas, send traffic,
//! move the clock, reset, read the call log, inject faults, change settings, attach an IAM
//! policy to the caller.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    routing::{get, post, put},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    sagemaker, sim,
    world::{Clock, Fault, Settings, World},
    Sandbox,
};

type Reply = Result<Json<Value>, (StatusCode, Json<Value>)>;

fn bad(msg: impl Into<String>) -> (StatusCode, Json<Value>) {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg.into()})))
}

pub(super) fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/seed", post(seed_route))
        .route("/invoke", post(invoke))
        .route("/clock", get(clock_get).post(clock_set))
        .route("/reset", post(reset))
        .route("/calls", get(calls).delete(clear_calls))
        .route("/faults", get(faults_get).delete(faults_clear))
        .route("/faults/{operation}", put(fault_set))
        .route("/settings", get(settings_get).put(settings_set))
        .route("/quotas/{instance_type}", put(quota_set))
        .route(
            "/insufficient-capacity/{instance_type}",
            put(shortage_set).delete(shortage_clear),
        )
        .route("/state", get(state))
        .route("/iam", get(iam_get).put(iam_set))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IamChange {
    /// The policy document to attach to the caller; null detaches it (an administrator).
    /// Required, so that a change of the other fields never detaches a policy by omission.
    policy: Value,
    /// Whether the service-linked role exists already (default: unchanged).
    #[serde(default)]
    service_linked_role: Option<bool>,
    /// The caller's ARN (default: unchanged).
    #[serde(default)]
    caller_arn: Option<String>,
}

async fn iam_get(State(sb): State<Sandbox>) -> Json<Value> {
    Json(json!(sb.world().iam))
}

/// `PUT /_sandbox/iam` with `{"policy": <IAM policy document or null>}`: from then on every
/// call is authorised against it as AWS would.
async fn iam_set(State(sb): State<Sandbox>, Json(c): Json<IamChange>) -> Reply {
    if !c.policy.is_null() {
        super::iam::validate(&c.policy).map_err(bad)?;
    }
    let mut w = sb.world();
    w.iam.policy = Some(c.policy).filter(|p| !p.is_null());
    if let Some(slr) = c.service_linked_role {
        w.iam.service_linked_role = slr;
    }
    if let Some(arn) = c.caller_arn {
        w.iam.caller_arn = arn;
    }
    Ok(Json(json!(w.iam)))
}

/// Seeds endpoints (with one variant each), components and quotas:
/// `{"endpoints": [{"name", "variant", "instance_type", "instance_pools", "min_instances",
/// "max_instances", "initial_instances", "async"}], "components": [{"name", "endpoint", "variant", "copies"}],
/// "quotas": {"ml.g5.xlarge": 4}}`. Goes through the same code as the SageMaker API.
pub(super) fn seed(w: &mut World, doc: &Value) -> Result<Value, String> {
    // `quotas`: values the account has applied (raised or lowered); `default_quotas`: AWS's
    // defaults, in force where the account never applied one.
    for (itype, v) in doc["quotas"].as_object().into_iter().flatten() {
        w.quotas
            .insert(itype.clone(), v.as_f64().ok_or("quota values are numbers")?);
    }
    for (itype, v) in doc["default_quotas"].as_object().into_iter().flatten() {
        w.default_quotas
            .insert(itype.clone(), v.as_f64().ok_or("quota values are numbers")?);
    }
    for e in doc["endpoints"].as_array().into_iter().flatten() {
        seed_endpoint(w, e)?;
    }
    for c in doc["components"].as_array().into_iter().flatten() {
        seed_component(w, c)?;
    }
    Ok(
        json!({"endpoints": w.endpoints.len(), "components": w.components.len(), "quotas": w.quotas, "default_quotas": w.default_quotas}),
    )
}

/// One seeded endpoint, with its configuration, already InService.
fn seed_endpoint(w: &mut World, e: &Value) -> Result<(), String> {
    let name = e["name"].as_str().ok_or("endpoint name missing")?;
    let variant = e["variant"].as_str().unwrap_or("AllTraffic");
    let is_async = e["async"].as_bool().unwrap_or(false);
    let mut pv = json!({
        "VariantName": variant,
        "InstanceType": e["instance_type"].as_str().unwrap_or("ml.g5.xlarge"),
        "InitialInstanceCount": e["initial_instances"].as_u64().unwrap_or(1),
    });
    // `instance_pools: ["ml.g5.xlarge", ...]`: a heterogeneous variant with no InstanceType.
    if let Some(pools) = e["instance_pools"].as_array() {
        pv.as_object_mut().map(|m| m.remove("InstanceType"));
        pv["InstancePools"] = pools
            .iter()
            .enumerate()
            .map(|(i, t)| json!({"InstanceType": t, "Priority": i + 1}))
            .collect();
    }
    if !is_async {
        pv["ManagedInstanceScaling"] = json!({
            "Status": "ENABLED",
            "MinInstanceCount": e["min_instances"].as_u64().unwrap_or(0),
            "MaxInstanceCount": e["max_instances"].as_u64().unwrap_or(4),
        });
        pv["RoutingConfig"] = json!({"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"});
    }
    let mut config =
        json!({"EndpointConfigName": format!("{name}-config"), "ProductionVariants": [pv]});
    if is_async {
        config["AsyncInferenceConfig"] =
            json!({"OutputConfig": {"S3OutputPath": format!("s3://sandbox-bucket/{name}/")}});
    }
    sagemaker::handle(w, "CreateEndpointConfig", &config).map_err(|e| e.message)?;
    sagemaker::handle(
        w,
        "CreateEndpoint",
        &json!({"EndpointName": name, "EndpointConfigName": format!("{name}-config")}),
    )
    .map_err(|e| e.message)?;
    // A seeded world already exists: its endpoints are past `Creating`.
    if let Some(ep) = w.endpoints.get_mut(name) {
        ep.status = "InService".into();
        ep.status_until = None;
    }

    Ok(())
}

/// One seeded inference component, already InService.
fn seed_component(w: &mut World, c: &Value) -> Result<(), String> {
    let req = json!({
        "InferenceComponentName": c["name"],
        "EndpointName": c["endpoint"],
        "VariantName": c["variant"].as_str().unwrap_or("AllTraffic"),
        "Specification": {"ModelName": format!("{}-model", c["name"].as_str().unwrap_or("model")),
                          "ComputeResourceRequirements": {"MinMemoryRequiredInMb": 1024, "NumberOfAcceleratorDevicesRequired": 1}},
        "RuntimeConfig": {"CopyCount": c["copies"].as_u64().unwrap_or(1)},
    });
    sagemaker::handle(w, "CreateInferenceComponent", &req).map_err(|e| e.message)?;
    if let Some(c) = c["name"].as_str().and_then(|n| w.components.get_mut(n)) {
        c.status = "InService".into();
        c.status_until = None;
    }

    Ok(())
}

async fn seed_route(State(sb): State<Sandbox>, Json(doc): Json<Value>) -> Reply {
    seed(&mut sb.world(), &doc).map(Json).map_err(bad)
}

#[derive(Deserialize)]
struct Invoke {
    component: Option<String>,
    endpoint: Option<String>,
    #[serde(default = "one")]
    count: u32,
}

fn one() -> u32 {
    1
}

async fn invoke(State(sb): State<Sandbox>, Json(i): Json<Invoke>) -> Reply {
    sim::invoke(
        &mut sb.world(),
        i.component.as_deref(),
        i.endpoint.as_deref(),
        i.count,
    )
    .map(Json)
    .map_err(bad)
}

#[derive(Deserialize)]
struct ClockChange {
    /// true freezes the clock at its current time; false lets it run again.
    freeze: Option<bool>,
    /// Moves time forward and runs the simulation through it.
    advance_seconds: Option<f64>,
}

async fn clock_get(State(sb): State<Sandbox>) -> Json<Value> {
    let w = sb.world();
    Json(json!({"now": w.now(), "frozen": w.clock.frozen.is_some()}))
}

async fn clock_set(State(sb): State<Sandbox>, Json(c): Json<ClockChange>) -> Reply {
    let mut w = sb.world();
    sim::settle(&mut w);
    match c.freeze {
        Some(true) if w.clock.frozen.is_none() => w.clock.frozen = Some(w.now()),
        Some(false) => {
            let now = w.now();
            w.clock = Clock {
                frozen: None,
                offset: 0.0,
            };
            w.clock.offset = now - w.clock.now();
        }
        _ => {}
    }
    if let Some(s) = c.advance_seconds {
        if !(0.0..=86_400.0 * 7.0).contains(&s) {
            return Err(bad("advance_seconds must be between 0 and one week"));
        }
        // Step a minute at a time so every period boundary is processed in order.
        let mut left = s;
        while left > 0.0 {
            let step = left.min(60.0);
            w.clock.advance(step);
            sim::settle(&mut w);
            left -= step;
        }
    }
    Ok(Json(
        json!({"now": w.now(), "frozen": w.clock.frozen.is_some()}),
    ))
}

async fn reset(State(sb): State<Sandbox>) -> Json<Value> {
    let mut w = sb.world();
    let clock = w.clock.clone();
    *w = World::new(clock);
    Json(json!({"reset": true}))
}

#[derive(Deserialize)]
struct CallsQuery {
    /// Only calls with a sequence number above this.
    since: Option<u64>,
}

async fn calls(State(sb): State<Sandbox>, Query(q): Query<CallsQuery>) -> Json<Value> {
    let w = sb.world();
    let since = q.since.unwrap_or(0);
    Json(json!({"calls": w.calls.iter().filter(|c| c.seq > since).collect::<Vec<_>>()}))
}

async fn clear_calls(State(sb): State<Sandbox>) -> Json<Value> {
    sb.world().calls.clear();
    Json(json!({"cleared": true}))
}

async fn faults_get(State(sb): State<Sandbox>) -> Json<Value> {
    Json(json!(sb.world().faults))
}

async fn faults_clear(State(sb): State<Sandbox>) -> Json<Value> {
    sb.world().faults.clear();
    Json(json!({"cleared": true}))
}

/// `PUT /_sandbox/faults/{operation}` (`*` for every operation) with `{"throttle": n,
/// "fail": n, "latency_ms": ms}`.
async fn fault_set(
    State(sb): State<Sandbox>,
    Path(op): Path<String>,
    Json(f): Json<Fault>,
) -> Json<Value> {
    sb.world().faults.insert(op.clone(), f.clone());
    Json(json!({"operation": op, "fault": f}))
}

async fn settings_get(State(sb): State<Sandbox>) -> Json<Value> {
    Json(json!(sb.world().settings))
}

async fn settings_set(State(sb): State<Sandbox>, Json(s): Json<Settings>) -> Json<Value> {
    let mut w = sb.world();
    w.settings = s.clone();
    w.autoscaling_bucket = (0.0, 0.0);
    Json(json!(s))
}

async fn quota_set(
    State(sb): State<Sandbox>,
    Path(itype): Path<String>,
    Json(v): Json<Value>,
) -> Reply {
    let value = v["value"]
        .as_f64()
        .ok_or_else(|| bad("send {\"value\": <number>}"))?;
    sb.world().quotas.insert(itype.clone(), value);
    Ok(Json(json!({"instance_type": itype, "value": value})))
}

/// `PUT /_sandbox/insufficient-capacity/{instance_type}`: from now on AWS has no capacity of
/// that type (scale-outs onto it fail as SageMaker words it); `DELETE` ends the shortage.
async fn shortage_set(State(sb): State<Sandbox>, Path(itype): Path<String>) -> Json<Value> {
    let mut w = sb.world();
    w.settings.insufficient_capacity.insert(itype);
    Json(json!({"insufficient_capacity": w.settings.insufficient_capacity}))
}

async fn shortage_clear(State(sb): State<Sandbox>, Path(itype): Path<String>) -> Json<Value> {
    let mut w = sb.world();
    w.settings.insufficient_capacity.remove(&itype);
    Json(json!({"insufficient_capacity": w.settings.insufficient_capacity}))
}

async fn state(State(sb): State<Sandbox>) -> Json<Value> {
    let mut w = sb.world();
    sim::settle(&mut w);
    Json(json!({
        "now": w.now(),
        "endpoints": w.endpoints,
        "components": w.components,
        "targets": w.targets.values().collect::<Vec<_>>(),
        "policies": w.policies.values().collect::<Vec<_>>(),
        "alarms": w.alarms,
        "activities": w.activities,
        "quotas": w.quotas,
        "default_quotas": w.default_quotas,
        "composite_alarms": w.composite_alarms,
    }))
}

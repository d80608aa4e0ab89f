//! A sandbox per test, and the real AWS SDK clients pointed at it.

use aws_config::{retry::RetryConfig, BehaviorVersion, Region};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use zeroscale::sandbox::Sandbox;

/// A running sandbox with SDK clients (retries off, so injected faults are seen as they are).
pub struct SandboxEnv {
    pub url: String,
    pub sandbox: Sandbox,
    stop: CancellationToken,
    pub sm: aws_sdk_sagemaker::Client,
    pub aas: aws_sdk_applicationautoscaling::Client,
    pub cw: aws_sdk_cloudwatch::Client,
    pub sq: aws_sdk_servicequotas::Client,
    http: reqwest::Client,
}

impl Drop for SandboxEnv {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// SDK config for the sandbox: any key works, signatures are parsed, not verified.
pub async fn sdk_config(url: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sagemaker::config::Credentials::new(
            "AKIDSANDBOX",
            "sandbox-secret",
            None,
            None,
            "test",
        ))
        .endpoint_url(url)
        .retry_config(RetryConfig::disabled())
        .load()
        .await
}

impl SandboxEnv {
    /// Starts an empty sandbox with a frozen clock.
    pub async fn start() -> Self {
        super::init_logs();
        let sandbox = Sandbox::new();
        let stop = CancellationToken::new();
        let addr = sandbox
            .clone()
            .start("127.0.0.1:0".parse().unwrap(), stop.clone())
            .await
            .unwrap();
        let url = format!("http://{addr}");
        let config = sdk_config(&url).await;
        let env = Self {
            url: url.clone(),
            sandbox,
            stop,
            sm: aws_sdk_sagemaker::Client::new(&config),
            aas: aws_sdk_applicationautoscaling::Client::new(&config),
            cw: aws_sdk_cloudwatch::Client::new(&config),
            sq: aws_sdk_servicequotas::Client::new(&config),
            http: reqwest::Client::new(),
        };
        env.control("POST", "/clock", json!({"freeze": true})).await;
        env
    }

    /// Starts a sandbox seeded with the demo world.
    pub async fn demo() -> Self {
        let env = Self::start().await;
        env.control("POST", "/seed", zeroscale::sandbox::demo_world())
            .await;
        env
    }

    /// Calls the control API and returns its JSON (panics on an error status).
    pub async fn control(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/_sandbox{path}", self.url);
        let req = match method {
            "GET" => self.http.get(url),
            "PUT" => self.http.put(url).json(&body),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let resp = req.send().await.unwrap();
        assert!(
            resp.status().is_success(),
            "{method} {path}: {}",
            resp.status()
        );
        resp.json().await.unwrap()
    }

    /// Attaches an IAM policy to the sandbox's caller (`Value::Null` detaches it): from then on
    /// each call is authorised as AWS would.
    pub async fn attach_policy(&self, policy: Value) {
        self.control("PUT", "/iam", json!({ "policy": policy }))
            .await;
    }

    /// Advances the frozen clock, running the simulation through it.
    pub async fn advance(&self, seconds: f64) {
        self.control("POST", "/clock", json!({"advance_seconds": seconds}))
            .await;
    }

    /// The calls received so far.
    pub async fn calls(&self) -> Vec<Value> {
        self.control("GET", "/calls", json!({})).await["calls"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Registers a scalable target and, as a client of AWS must (registration is eventually
    /// consistent), waits until DescribeScalableTargets lists it before anything else uses it.
    pub async fn register_visible(
        &self,
        rid: &str,
        dim: aws_sdk_applicationautoscaling::types::ScalableDimension,
        min: i32,
        max: i32,
    ) {
        use aws_sdk_applicationautoscaling::types::ServiceNamespace;
        self.aas
            .register_scalable_target()
            .service_namespace(ServiceNamespace::Sagemaker)
            .resource_id(rid)
            .scalable_dimension(dim.clone())
            .min_capacity(min)
            .max_capacity(max)
            .send()
            .await
            .unwrap();
        for _ in 0..5 {
            let listed = self
                .aas
                .describe_scalable_targets()
                .service_namespace(ServiceNamespace::Sagemaker)
                .resource_ids(rid)
                .scalable_dimension(dim.clone())
                .send()
                .await
                .unwrap();
            if !listed.scalable_targets().is_empty() {
                return;
            }
        }
        panic!("{rid} never became visible");
    }

    /// Desired and current copies of a component.
    pub async fn copies(&self, name: &str) -> (i32, i32) {
        let c = self
            .sm
            .describe_inference_component()
            .inference_component_name(name)
            .send()
            .await
            .unwrap();
        let rc = c.runtime_config().unwrap();
        (
            rc.desired_copy_count().unwrap(),
            rc.current_copy_count().unwrap(),
        )
    }

    /// Every scalable target and every scaling policy of SageMaker, all pages followed.
    pub async fn all_targets_and_policies(
        &self,
    ) -> (
        Vec<aws_sdk_applicationautoscaling::types::ScalableTarget>,
        Vec<aws_sdk_applicationautoscaling::types::ScalingPolicy>,
    ) {
        use aws_sdk_applicationautoscaling::types::ServiceNamespace;
        let targets = self
            .aas
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Sagemaker)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap();
        let policies = self
            .aas
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Sagemaker)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .unwrap();
        (targets, policies)
    }
}

/// deploy/iam-policy.json: the policy zeroscale's role needs.
pub fn deploy_policy() -> Value {
    serde_json::from_str(include_str!("../../../deploy/iam-policy.json"))
        .expect("the policy is JSON")
}

/// The deploy policy without one action (statements left with none are dropped).
pub fn deploy_policy_without(action: &str) -> Value {
    let mut doc = deploy_policy();
    let statements = doc["Statement"].as_array_mut().unwrap();
    for st in statements.iter_mut() {
        if let Some(list) = st["Action"].as_array_mut() {
            list.retain(|a| a != action);
        }
    }
    statements.retain(|st| st["Action"].as_array().is_some_and(|a| !a.is_empty()));
    doc
}

/// The calls AWS refused for want of a permission.
pub fn denied(calls: &[Value]) -> Vec<&Value> {
    calls
        .iter()
        .filter(|c| {
            c["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("AccessDenied"))
        })
        .collect()
}

//! Seed 000's aws CLI commands, unchanged but for `--endpoint-url` and the corrected
//! step-scaling parameter, run against the sandbox; the result is read back through the CLI's own
//! describe commands, and CloudWatch shows the same alarm to the CLI (JSON 1.0) and to the Rust
//! SDK (CBOR). The CLI comes from `scripts/ensure-python-tools` (PyPI `awscli` in `.venv/`).

use crate::common;

use common::{
    aws::SandboxEnv,
    cli::{aws_cli, Cli},
};
use serde_json::Value;

// Multi-threaded: the CLI runs as a blocking child process while the sandbox serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000_cli_commands_against_the_sandbox() {
    let env = SandboxEnv::demo().await;
    let dir = std::env::temp_dir().join(format!("zs-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), r#"{ "PredefinedMetricSpecification": { "PredefinedMetricType": "SageMakerInferenceComponentInvocationsPerCopy" }, "TargetValue": 1, "ScaleInCooldown": 300, "ScaleOutCooldown": 300 }"#).unwrap();
    std::fs::write(dir.join("step.json"), r#"{ "AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Maximum", "Cooldown": 60, "StepAdjustments": [ { "MetricIntervalLowerBound": 0, "ScalingAdjustment": 1 } ] }"#).unwrap();
    let cli = Cli {
        bin: aws_cli(),
        url: env.url.clone(),
        dir: dir.clone(),
    };
    let ic = "demo-component";
    let rid = format!("inference-component/{ic}");

    cli.run(&[
        "application-autoscaling",
        "register-scalable-target",
        "--service-namespace",
        "sagemaker",
        "--resource-id",
        &rid,
        "--scalable-dimension",
        "sagemaker:inference-component:DesiredCopyCount",
        "--min-capacity",
        "0",
        "--max-capacity",
        "2",
    ]);
    // Registration is eventually consistent: wait until a describe lists the target, as AWS
    // advises, before putting policies on it.
    let listed = |v: &Value| {
        v["ScalableTargets"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    };
    let describe = || {
        cli.run(&[
            "application-autoscaling",
            "describe-scalable-targets",
            "--service-namespace",
            "sagemaker",
            "--resource-ids",
            &rid,
        ])
    };
    assert!(!listed(&describe()), "not listed right after registering");
    assert!(listed(&describe()));
    cli.run(&[
        "application-autoscaling",
        "put-scaling-policy",
        "--policy-name",
        "my-scaling-policy",
        "--policy-type",
        "TargetTrackingScaling",
        "--resource-id",
        &rid,
        "--service-namespace",
        "sagemaker",
        "--scalable-dimension",
        "sagemaker:inference-component:DesiredCopyCount",
        "--target-tracking-scaling-policy-configuration",
        "file://config.json",
    ]);
    // Seed 000 passes --target-tracking-scaling-policy-configuration here; the step policy's
    // parameter is --step-scaling-policy-configuration.
    let step = cli.run(&[
        "application-autoscaling",
        "put-scaling-policy",
        "--policy-name",
        "my-step-scaling-policy",
        "--policy-type",
        "StepScaling",
        "--resource-id",
        &rid,
        "--service-namespace",
        "sagemaker",
        "--scalable-dimension",
        "sagemaker:inference-component:DesiredCopyCount",
        "--step-scaling-policy-configuration",
        "file://step.json",
    ]);
    let step_arn = step["PolicyARN"]
        .as_str()
        .expect("the step policy's ARN")
        .to_string();
    cli.run(&[
        "cloudwatch",
        "put-metric-alarm",
        "--alarm-actions",
        &step_arn,
        "--alarm-description",
        "Alarm when SM IC endpoint invoked that has 0 instances.",
        "--alarm-name",
        "ic-step-scaling-alarm",
        "--comparison-operator",
        "GreaterThanThreshold",
        "--datapoints-to-alarm",
        "1",
        "--dimensions",
        &format!("Name=InferenceComponentName,Value={ic}"),
        "--evaluation-periods",
        "1",
        "--metric-name",
        "NoCapacityInvocationFailures",
        "--namespace",
        "AWS/SageMaker",
        "--period",
        "60",
        "--statistic",
        "Sum",
        "--threshold",
        "1",
    ]);

    let targets = cli.run(&[
        "application-autoscaling",
        "describe-scalable-targets",
        "--service-namespace",
        "sagemaker",
        "--resource-ids",
        &rid,
    ]);
    let t = &targets["ScalableTargets"][0];
    assert_eq!(
        (t["MinCapacity"].as_i64(), t["MaxCapacity"].as_i64()),
        (Some(0), Some(2))
    );
    let policies = cli.run(&[
        "application-autoscaling",
        "describe-scaling-policies",
        "--service-namespace",
        "sagemaker",
        "--resource-id",
        &rid,
    ]);
    let policies = policies["ScalingPolicies"].as_array().unwrap();
    assert_eq!(policies.len(), 2);
    let step_policy = policies
        .iter()
        .find(|p| p["PolicyType"] == "StepScaling")
        .unwrap();
    assert_eq!(
        step_policy["StepScalingPolicyConfiguration"]["MetricAggregationType"],
        "Maximum"
    );
    assert_eq!(
        step_policy["StepScalingPolicyConfiguration"]["StepAdjustments"][0]["ScalingAdjustment"],
        1
    );
    let tt = policies
        .iter()
        .find(|p| p["PolicyType"] == "TargetTrackingScaling")
        .unwrap();
    assert_eq!(
        tt["TargetTrackingScalingPolicyConfiguration"]["TargetValue"],
        1.0
    );

    let alarms = cli.run(&[
        "cloudwatch",
        "describe-alarms",
        "--alarm-names",
        "ic-step-scaling-alarm",
    ]);
    let a = &alarms["MetricAlarms"][0];
    assert_eq!(a["AlarmActions"][0], step_arn.as_str());
    assert_eq!(a["StateValue"], "INSUFFICIENT_DATA");
    assert_eq!(a["Dimensions"][0]["Value"], ic);

    // The Rust SDK, over CBOR, sees the same alarm.
    let sdk = env
        .cw
        .describe_alarms()
        .alarm_names("ic-step-scaling-alarm")
        .send()
        .await
        .unwrap();
    let s = &sdk.metric_alarms()[0];
    assert_eq!(s.alarm_actions(), std::slice::from_ref(&step_arn));
    assert_eq!(s.threshold(), Some(1.0));
    let calls = env.calls().await;
    let protocols: Vec<&str> = calls
        .iter()
        .filter(|c| c["operation"] == "DescribeAlarms")
        .map(|c| c["protocol"].as_str().unwrap())
        .collect();
    assert_eq!(
        protocols,
        ["Json10", "RpcV2Cbor"],
        "CLI over JSON 1.0, SDK over CBOR"
    );
    let _ = std::fs::remove_dir_all(dir);
}

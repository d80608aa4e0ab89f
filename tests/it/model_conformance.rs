//! Every request zeroscale sends and every answer the sandbox gives, checked against AWS's
//! published service models (botocore's, installed into `.venv` with the aws CLI by
//! `scripts/ensure-python-tools`): unknown or missing members, wrong types, values out of range,
//! enums, patterns and error codes. The flows: `doctor` (STS and the probes, one denied), enable,
//! the observation pass, drift repair, disable and failures, for both kinds of target. Zero violations.

use crate::common;

use std::{path::Path, process::Command};

use aws_sdk_cloudwatch::types::StateValue;
use common::reconcile::{env, Env};
use reqwest::Method;
use serde_json::{json, Value};

const IC: &str = "/components/demo-component";
const VARIANT: &str = "/endpoints/demo-async-endpoint/variants/AllTraffic";

async fn change(e: &Env, method: Method, path: &str, body: Option<Value>) -> Value {
    e.converge_at(method, &format!("{path}/scale-to-zero"), body)
        .await
}

/// The flows: each kind enabled, drifted and repaired, woken, refused, and disabled.
async fn run_flows(e: &Env) {
    // `doctor`'s reads and STS, with one read denied as AWS denies a missing permission.
    e.sb.attach_policy(json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "servicequotas:ListServiceQuotas", "Resource": "*"}
    ]}))
    .await;
    let (status, report) = e.call(Method::GET, "/doctor", None).await;
    assert_eq!((status, &report["warnings"]), (200, &json!(1)), "{report}");
    e.sb.attach_policy(Value::Null).await;
    // Enable both kinds (the first policy put meets eventual consistency).
    for path in [IC, VARIANT] {
        let op = change(e, Method::POST, path, Some(json!({"max_capacity": 2}))).await;
        assert_eq!(op["state"], "completed", "{op}");
    }
    // Two observation passes (every target's policies read once): the batched and
    // namespace-wide reads, and the List calls of both kinds.
    for _ in 0..zeroscale::reconcile::fleet::POLICY_SWEEP {
        let pass = zeroscale::reconcile::fleet::pass(&e.aws, &e.app.pool)
            .await
            .unwrap();
        assert!(pass.differing.is_empty(), "{:?}", pass.differing);
    }
    // Drift: actions disabled, scale-out suspended; a manual reconcile repairs both.
    e.sb.cw
        .disable_alarm_actions()
        .alarm_names("zeroscale/inference-component/demo-component/no-capacity")
        .send()
        .await
        .unwrap();
    e.sb.aas
        .register_scalable_target()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Sagemaker)
        .resource_id("endpoint/demo-async-endpoint/variant/AllTraffic")
        .scalable_dimension(
            aws_sdk_applicationautoscaling::types::ScalableDimension::SageMakerVariantDesiredInstanceCount,
        )
        .suspended_state(
            aws_sdk_applicationautoscaling::types::SuspendedState::builder()
                .dynamic_scaling_out_suspended(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    for path in [IC, VARIANT] {
        let op = e.reconcile(path).await;
        assert_eq!(op["state"], "completed", "{op}");
    }
    // Scaling: the component's alarm fires (a scale-out, then Updating), a change waits for it.
    e.sb.cw
        .set_alarm_state()
        .alarm_name("zeroscale/inference-component/demo-component/no-capacity")
        .state_value(StateValue::Alarm)
        .state_reason("conformance")
        .send()
        .await
        .unwrap();
    let (status, out) = e
        .call(
            Method::POST,
            &format!("{IC}/scale-to-zero"),
            Some(json!({"max_capacity": 3})),
        )
        .await;
    assert_eq!(status, 202, "{out}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    e.sb.advance(60.0).await;
    let op = e
        .wait(out["target"]["last_operation"]["url"].as_str().unwrap())
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    // A routine not-scaled activity (already at max) read back by a reconcile.
    e.sb.cw
        .set_alarm_state()
        .alarm_name(
            "zeroscale/endpoint/demo-async-endpoint/variant/AllTraffic/backlog-without-capacity",
        )
        .state_value(StateValue::Alarm)
        .state_reason("conformance")
        .send()
        .await
        .unwrap();
    e.sb.advance(120.0).await;
    e.reconcile(VARIANT).await;
    // Failures: a max above the quota (refused before any write), a dry run, throttling.
    let op = change(e, Method::POST, VARIANT, Some(json!({"max_capacity": 9}))).await;
    assert_eq!(op["state"], "discarded", "{op}");
    let (status, _) = e
        .call(
            Method::POST,
            &format!("{IC}/scale-to-zero?dry_run=true"),
            Some(json!({"max_capacity": 2})),
        )
        .await;
    assert_eq!(status, 200);
    e.sb.control(
        "PUT",
        "/faults/PutMetricAlarm",
        json!({"throttle": 1, "fail": 1}),
    )
    .await;
    let op = change(e, Method::POST, IC, Some(json!({"max_capacity": 4}))).await;
    assert_eq!(op["state"], "completed", "{op}");
    // Scheduled actions: a schedule put (and read by a pass), a pause and its resume, then the
    // schedule removed (its actions deleted).
    let hours = json!({"max_capacity": 4, "schedules": [{"name": "hours", "cron": "0 8 * * MON-FRI",
        "end_cron": "0 20 * * MON-FRI", "timezone": "Asia/Tokyo", "min_capacity": 1}]});
    let op = change(e, Method::POST, IC, Some(hours)).await;
    assert_eq!(op["state"], "completed", "{op}");
    zeroscale::reconcile::fleet::pass(&e.aws, &e.app.pool)
        .await
        .unwrap();
    for step in ["pause", "resume"] {
        let (status, out) = e.call(Method::POST, &format!("{IC}/{step}"), None).await;
        assert_eq!(status, 202, "{out}");
        let op = e
            .wait(out["target"]["last_operation"]["url"].as_str().unwrap())
            .await;
        assert_eq!(op["state"], "completed", "{op}");
    }
    let op = change(e, Method::POST, IC, Some(json!({"max_capacity": 4}))).await;
    assert_eq!(op["state"], "completed", "{op}");
    // Disable both: one steps aside (deregisters), then the quota-refused variant too.
    for path in [IC, VARIANT] {
        let op = change(e, Method::DELETE, path, None).await;
        assert_eq!(op["state"], "completed", "{op}");
    }
}

#[tokio::test]
async fn every_request_and_answer_conforms_to_aws_models() {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/ensure-python-tools (scripts/test does)",
        python.display()
    );
    let e = env().await;
    run_flows(&e).await;
    let calls = e.sb.calls().await;
    let services: std::collections::BTreeSet<&str> =
        calls.iter().filter_map(|c| c["service"].as_str()).collect();
    assert_eq!(services.len(), 5, "every service took part: {services:?}");
    assert!(calls.len() > 60, "{} calls", calls.len());
    let file =
        std::env::temp_dir().join(format!("zs-calls-{}.json", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, json!({ "calls": calls }).to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-aws-models.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&file)
        .output()
        .expect("run the model checker");
    let _ = std::fs::remove_file(&file);
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    assert!(
        out.status.success(),
        "violations of AWS's models:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains(&format!("checked {} calls: 0 violations", calls.len())),
        "{report}"
    );
}

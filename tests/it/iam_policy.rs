//! deploy/iam-policy.json against what zeroscale really calls. Every flow runs against the
//! sandbox with the policy attached to the caller (the sandbox then authorises each call as AWS
//! does, including what AWS checks on the caller's behalf); the test fails when a call is
//! denied, when a flow uses an action the policy does not grant, or when the policy grants an
//! action no flow uses. `GET /doctor` is checked under the same policy.

use crate::common;

use std::collections::BTreeSet;

use aws_sdk_applicationautoscaling::types::ScalableDimension;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
use common::{
    aws::{deploy_policy as policy, deploy_policy_without as policy_without},
    reconcile::{env, Env},
};
use reqwest::Method;
use serde_json::{json, Value};

const COMPONENT: &str = "demo-component";
const VARIANT: &str = "/endpoints/demo-async-endpoint/variants/AllTraffic";
const LEGACY_ALARM: &str = "zeroscale-demo-component-no-capacity";
const ALARM: &str = "zeroscale/inference-component/demo-component/no-capacity";

/// Every action the policy allows (exact names: the policy uses no wildcards in actions).
fn granted(doc: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for st in doc["Statement"].as_array().unwrap() {
        assert_eq!(st["Effect"], "Allow", "the policy only allows: {st}");
        let actions = match &st["Action"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
            other => panic!("Action must be a string or a list: {other}"),
        };
        for a in actions {
            assert!(
                !a.contains('*') && !a.contains('?'),
                "least privilege: no wildcard actions ({a})"
            );
            out.insert(a);
        }
    }
    out
}

/// What a run of flows tells about a policy: actions used but not granted, and granted but
/// not used.
fn compare(used: &BTreeSet<String>, granted: &BTreeSet<String>) -> (Vec<String>, Vec<String>) {
    (
        used.difference(granted).cloned().collect(),
        granted.difference(used).cloned().collect(),
    )
}

/// Runs `f` (a call the test itself makes) and returns the call-log sequence numbers it used,
/// so they do not count as zeroscale's.
async fn own_calls<F: std::future::Future<Output = ()>>(
    e: &Env,
    f: F,
) -> std::ops::RangeInclusive<u64> {
    let before = e.last_seq().await;
    f.await;
    before + 1..=e.last_seq().await
}

/// Observation passes enough to read every target's policies once (the batched reads and
/// the List calls).
async fn observe(e: &common::reconcile::Env) {
    for _ in 0..zeroscale::reconcile::fleet::POLICY_SWEEP {
        let pass = zeroscale::reconcile::fleet::pass(&e.aws, &e.app.pool)
            .await
            .unwrap();
        assert!(pass.differing.is_empty(), "{:?}", pass.differing);
    }
}

async fn completed(op: Value) {
    assert_eq!(op["state"], "completed", "{op}");
}

#[tokio::test]
async fn every_flow_runs_under_the_policy_and_uses_every_line_of_it() {
    let e = env().await;
    // An alarm under the old naming scheme, as an earlier zeroscale left it: the first enable
    // moves it (DeleteAlarms on the legacy name).
    e.sb.cw
        .put_metric_alarm()
        .alarm_name(LEGACY_ALARM)
        .metric_name("NoCapacityInvocationFailures")
        .namespace("AWS/SageMaker")
        .statistic(Statistic::Maximum)
        .dimensions(
            Dimension::builder()
                .name("InferenceComponentName")
                .value(COMPONENT)
                .build(),
        )
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .send()
        .await
        .unwrap();
    let start = e.last_seq().await;
    e.sb.attach_policy(policy()).await;

    // doctor under the policy: every line passes. Its probes are not flows (they would make
    // every read look used), so its calls are set aside and checked apart.
    let mut report = Value::Null;
    let doctor = own_calls(&e, async {
        let (status, body) = e.call(Method::GET, "/doctor", None).await;
        assert_eq!(status, 200, "{body}");
        report = body;
    })
    .await;
    assert_eq!(
        (report["ok"].clone(), report["warnings"].clone()),
        (json!(true), json!(0)),
        "{report:#}"
    );

    // Components: the first enable (which creates the service-linked role), a repair of an
    // alarm deleted outside zeroscale, disable.
    completed(
        e.converge(Method::POST, COMPONENT, Some(json!({"max_capacity": 2})))
            .await,
    )
    .await;
    observe(&e).await;
    let mut excluded = vec![
        doctor.clone(),
        own_calls(&e, async {
            e.sb.cw
                .delete_alarms()
                .alarm_names(ALARM)
                .send()
                .await
                .unwrap();
        })
        .await,
    ];
    completed(e.reconcile(&format!("/components/{COMPONENT}")).await).await;
    completed(e.converge(Method::DELETE, COMPONENT, None).await).await;

    // Async endpoint variants, on a target its owner registered before zeroscale: enable,
    // change (with a schedule), and disable, which steps aside (deletes its policies by name and gives the owner
    // back their bounds) instead of deregistering.
    excluded.push(
        own_calls(&e, async {
            e.sb.register_visible(
                "endpoint/demo-async-endpoint/variant/AllTraffic",
                ScalableDimension::SageMakerVariantDesiredInstanceCount,
                1,
                2,
            )
            .await;
        })
        .await,
    );
    let path = format!("{VARIANT}/scale-to-zero");
    completed(
        e.converge_at(Method::POST, &path, Some(json!({"max_capacity": 1})))
            .await,
    )
    .await;
    // A business-hours schedule: its scheduled actions are put, then deleted by the disable.
    let hours = json!({"max_capacity": 2, "schedules": [{"name": "hours",
        "cron": "0 8 * * MON-FRI", "end_cron": "0 20 * * MON-FRI", "min_capacity": 1}]});
    completed(e.converge_at(Method::POST, &path, Some(hours)).await).await;
    observe(&e).await;
    completed(e.converge_at(Method::DELETE, &path, None).await).await;
    excluded.push(0..=start);

    let calls: Vec<Value> =
        e.sb.calls()
            .await
            .into_iter()
            .filter(|c| {
                !excluded
                    .iter()
                    .any(|r| r.contains(&c["seq"].as_u64().unwrap()))
            })
            .collect();
    let denied = common::aws::denied(&calls);
    assert!(denied.is_empty(), "calls the policy denies: {denied:#?}");
    assert!(
        calls.iter().any(|c| c["operation"] == "DeleteAlarms"
            && c["params"]["AlarmNames"]
                .as_array()
                .unwrap()
                .contains(&json!(LEGACY_ALARM))),
        "the legacy alarm was moved under the policy"
    );
    let used: BTreeSet<String> = calls
        .iter()
        .flat_map(|c| c["authorized"].as_array().unwrap().iter())
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let granted = granted(&policy());
    let all = e.sb.calls().await;
    for c in all
        .iter()
        .filter(|c| doctor.contains(&c["seq"].as_u64().unwrap()))
    {
        for a in c["authorized"].as_array().unwrap() {
            assert!(
                granted.contains(a.as_str().unwrap()),
                "doctor probes {a}, which the policy lacks"
            );
        }
    }
    let (missing, unused) = compare(&used, &granted);
    assert!(
        missing.is_empty(),
        "zeroscale calls what deploy/iam-policy.json does not grant: {missing:?}"
    );
    assert!(
        unused.is_empty(),
        "deploy/iam-policy.json grants what no flow uses: {unused:?}"
    );

    // The comparison itself can fail: one action fewer in the policy is reported.
    let mut fewer = granted.clone();
    fewer.remove("cloudwatch:DeleteAlarms");
    assert_eq!(
        compare(&used, &fewer).0,
        vec!["cloudwatch:DeleteAlarms".to_string()]
    );

    // The comment file gives a reason for each action.
    let why = include_str!("../../deploy/iam-policy.md");
    for action in &granted {
        assert!(
            why.contains(&format!("`{action}`")),
            "deploy/iam-policy.md does not explain {action}"
        );
    }
}

#[tokio::test]
async fn get_doctor_names_a_denied_permission_and_costs_aws_calls_once_per_window() {
    let e = env().await;
    let doc = policy_without("servicequotas:ListServiceQuotas");
    e.sb.attach_policy(doc).await;

    let anonymous = e.app.client.get(e.app.url("/doctor")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);

    let (status, report) = e.call(Method::GET, "/doctor", None).await;
    assert_eq!(status, 200);
    assert_eq!(report["ok"], true, "a warning is not a failure: {report:#}");
    let checks = report["checks"].as_array().unwrap();
    let quota = checks
        .iter()
        .find(|c| c["name"] == "servicequotas:ListServiceQuotas")
        .unwrap();
    assert_eq!(quota["status"], "warn", "{quota}");
    assert!(quota["hint"]
        .as_str()
        .unwrap()
        .contains("grant servicequotas:ListServiceQuotas"));
    assert!(checks
        .iter()
        .any(|c| c["name"] == "database" && c["status"] == "pass"));
    assert!(checks
        .iter()
        .any(|c| c["name"] == "aws identity" && c["status"] == "pass"));

    let before = e.last_seq().await;
    let (_, again) = e.call(Method::GET, "/doctor", None).await;
    assert_eq!(again, report);
    assert_eq!(
        e.last_seq().await,
        before,
        "a second look within 30 s makes no AWS call"
    );
}

#[tokio::test]
async fn a_job_denied_a_permission_says_which_and_where_the_policy_is() {
    let e = env().await;
    completed(
        e.converge(Method::POST, COMPONENT, Some(json!({"max_capacity": 2})))
            .await,
    )
    .await;
    let doc = policy_without("application-autoscaling:DeregisterScalableTarget");
    e.sb.attach_policy(doc).await;
    let op = e.converge(Method::DELETE, COMPONENT, None).await;
    assert_eq!(op["state"], "discarded", "AccessDenied is permanent: {op}");
    let text = op.to_string();
    assert!(
        text.contains(
            "not authorized to perform: application-autoscaling:DeregisterScalableTarget"
        ),
        "{op:#}"
    );
    assert!(text.contains("deploy/iam-policy.json"), "{op:#}");
}

//! The reconciler end to end: the API, the job engine and the reconcile handler against the
//! sandbox, over HTTP with the real AWS SDK clients.

use crate::common;

use std::time::Duration;

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
use common::{
    aws::SandboxEnv,
    reconcile::{clients, env, fast_worker_config, step_calls, WRITES},
    spawn_app,
};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use zeroscale::{
    jobs::{Registry, Worker, WorkerConfig},
    reconcile::Reconciler,
};

const DIM: ScalableDimension = ScalableDimension::SageMakerInferenceComponentDesiredCopyCount;
const RID: &str = "inference-component/demo-component";
const ALARM: &str = "zeroscale/inference-component/demo-component/no-capacity";

#[tokio::test]
async fn enabling_produces_seed_000s_objects_and_a_request_at_zero_brings_a_copy_back() {
    let e = env().await;
    let op = e
        .converge(
            reqwest::Method::POST,
            "demo-component",
            Some(json!({"max_capacity": 2})),
        )
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    assert_eq!(
        step_calls(&op),
        [
            "RegisterScalableTarget",
            "PutTargetTrackingPolicy",
            "PutStepScalingPolicy",
            "PutMetricAlarm"
        ]
    );
    assert!(op["output"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["request_id"].as_str().is_some_and(|r| !r.is_empty())));

    let aas = &e.sb.aas;
    let t = aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_ids(RID)
        .send()
        .await
        .unwrap();
    let t = &t.scalable_targets()[0];
    assert_eq!((t.min_capacity(), t.max_capacity()), (0, 2));
    let p = aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .scalable_dimension(DIM)
        .send()
        .await
        .unwrap();
    assert_eq!(p.scaling_policies().len(), 2);
    let tt = p
        .scaling_policies()
        .iter()
        .find(|p| p.policy_name() == "zeroscale-demo-component-target-tracking")
        .unwrap();
    let ttc = tt.target_tracking_scaling_policy_configuration().unwrap();
    assert_eq!(ttc.target_value(), 1.0);
    assert_eq!(
        ttc.predefined_metric_specification()
            .unwrap()
            .predefined_metric_type()
            .as_str(),
        "SageMakerInferenceComponentInvocationsPerCopy"
    );
    assert_eq!(
        (ttc.scale_in_cooldown(), ttc.scale_out_cooldown()),
        (Some(300), Some(300))
    );
    let step = p
        .scaling_policies()
        .iter()
        .find(|p| p.policy_name() == "zeroscale-demo-component-scale-from-zero")
        .unwrap();
    assert_eq!(step.policy_type().as_str(), "StepScaling");
    let sc = step.step_scaling_policy_configuration().unwrap();
    assert_eq!(sc.adjustment_type().unwrap().as_str(), "ChangeInCapacity");
    assert_eq!(sc.metric_aggregation_type().unwrap().as_str(), "Maximum");
    assert_eq!(sc.cooldown(), Some(60));
    assert_eq!(
        sc.step_adjustments()[0].metric_interval_lower_bound(),
        Some(0.0)
    );
    assert_eq!(sc.step_adjustments()[0].scaling_adjustment(), 1);
    let alarms =
        e.sb.cw
            .describe_alarms()
            .alarm_names(ALARM)
            .send()
            .await
            .unwrap();
    let a = &alarms.metric_alarms()[0];
    assert_eq!(a.metric_name(), Some("NoCapacityInvocationFailures"));
    assert_eq!(a.namespace(), Some("AWS/SageMaker"));
    assert_eq!(a.statistic(), Some(&Statistic::Sum));
    assert_eq!(a.dimensions()[0].name(), Some("InferenceComponentName"));
    assert_eq!(a.dimensions()[0].value(), Some("demo-component"));
    assert_eq!(
        (a.period(), a.evaluation_periods(), a.datapoints_to_alarm()),
        (Some(60), Some(1), Some(1))
    );
    assert_eq!(a.threshold(), Some(1.0));
    assert_eq!(
        a.comparison_operator(),
        Some(&ComparisonOperator::GreaterThanOrEqualToThreshold)
    );
    assert_eq!(
        a.alarm_actions(),
        [step.policy_arn().to_string()],
        "the alarm's action is the step policy"
    );

    let c = e.component("demo-component").await;
    assert_eq!(c["phase"], "ready");
    assert_eq!(c["observed"]["step_policy_arn"], step.policy_arn());
    let types: Vec<&str> = c["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["Registered", "PoliciesApplied", "AlarmArmed", "Ready"]
    );
    let (_, audit) = e
        .call(reqwest::Method::GET, "/audit?actor=zeroscale", None)
        .await;
    assert_eq!(audit["items"][0]["outcome"], "applied");
    assert_eq!(
        audit["items"][0]["aws_request_ids"]
            .as_array()
            .unwrap()
            .len(),
        4
    );

    // Idle: target tracking's low alarm (15 of 15 minutes, as AWS makes it) scales it in to
    // zero; one request at zero wakes it through the alarm.
    e.sb.advance(15.0 * 60.0).await;
    assert_eq!(e.sb.copies("demo-component").await, (0, 0));
    e.sb.advance(60.0).await; // the scale-in's Updating passes
    e.sb.control("POST", "/invoke", json!({"component": "demo-component"}))
        .await;
    e.sb.advance(60.0).await;
    assert_eq!(
        e.sb.copies("demo-component").await.0,
        1,
        "the first failed request started the scale-out (>= 1)"
    );
    e.sb.advance(60.0).await;
    assert_eq!(e.sb.copies("demo-component").await, (1, 1));
}

#[tokio::test]
async fn rerunning_a_converged_job_only_describes() {
    let e = env().await;
    e.converge(
        reqwest::Method::POST,
        "demo-component",
        Some(json!({"max_capacity": 2})),
    )
    .await;
    let seq = e.last_seq().await;
    let mut conn = e.app.pool.acquire().await.unwrap();
    let job = zeroscale::jobs::enqueue(
        &mut conn,
        &zeroscale::jobs::new_job(
            "reconcile",
            Some(RID.into()),
            json!({"kind": "component", "name": "demo-component"}),
        ),
    )
    .await
    .unwrap();
    zeroscale::jobs::notify_workers(&e.app.pool).await.unwrap();
    let op = e.wait(&format!("/operations/{}", job.id)).await;
    assert_eq!(op["state"], "completed");
    assert_eq!(op["output"]["plan"], json!([]));
    assert!(
        e.writes_since(seq).await.is_empty(),
        "no AWS writes when nothing differs"
    );
    assert!(
        !e.sb
            .control("GET", &format!("/calls?since={seq}"), json!({}))
            .await["calls"]
            .as_array()
            .unwrap()
            .is_empty(),
        "but it did observe"
    );
}

#[tokio::test]
async fn preflight_failures_fail_fast_write_nothing_and_say_what_to_change() {
    let e = env().await;
    e.sb.control("POST", "/seed", json!({
        "endpoints": [{"name": "ep-min1", "instance_type": "ml.g5.xlarge", "min_instances": 1, "max_instances": 2},
                      {"name": "ep-big", "instance_type": "ml.g5.xlarge", "min_instances": 0, "max_instances": 8}],
        "components": [{"name": "ic-min1", "endpoint": "ep-min1"}, {"name": "ic-big", "endpoint": "ep-big"}]
    })).await;
    let seq = e.last_seq().await;
    let cases = [
        ("ic-min1", json!({}), "MinInstanceCount 1"),
        (
            // 10 copies on a variant that may grow to 8 instances: 8 > the quota of 4.
            "ic-big",
            json!({"max_capacity": 10}),
            "'ml.g5.xlarge for endpoint usage' is 4 instances",
        ),
        ("ghost", json!({}), "does not exist"),
    ];
    for (name, body, needle) in cases {
        let op = e.converge(reqwest::Method::POST, name, Some(body)).await;
        assert_eq!(op["state"], "discarded", "{name}: {op}");
        assert_eq!(op["attempt"], 1, "{name}: permanent, no retries");
        let msg = op["errors"][0]["error"].as_str().unwrap();
        assert!(msg.contains(needle), "{name}: {msg}");
        let c = e.component(name).await;
        assert_eq!(c["phase"], "failed");
        assert!(c["conditions"][0]["message"]
            .as_str()
            .unwrap()
            .contains(needle));
        assert_eq!(c["last_operation"]["id"], op["id"]);
        assert_eq!(c["last_operation"]["state"], "discarded");
        assert!(c["last_operation"]["last_error"]
            .as_str()
            .unwrap()
            .contains(needle));
        let (_, audit) = e
            .call(
                reqwest::Method::GET,
                &format!("/audit?actor=zeroscale&target={name}"),
                None,
            )
            .await;
        assert_eq!(audit["items"][0]["outcome"], "failed");
        assert!(audit["items"][0]["error"]
            .as_str()
            .unwrap()
            .contains(needle));
    }
    assert!(
        e.writes_since(seq).await.is_empty(),
        "nothing was written to AWS"
    );
}

#[tokio::test]
async fn disabling_restores_capacity_and_leaves_what_is_not_ours() {
    let e = env().await;
    e.sb.cw
        .put_metric_alarm()
        .alarm_name("someone-elses-alarm")
        .metric_name("x")
        .namespace("Custom/y")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap();
    e.converge(
        reqwest::Method::POST,
        "demo-component",
        Some(json!({"max_capacity": 3})),
    )
    .await;
    let op = e
        .converge(reqwest::Method::DELETE, "demo-component", None)
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    assert_eq!(
        step_calls(&op),
        ["DeleteAlarm", "DeregisterScalableTarget"],
        "zeroscale registered the target: it steps aside (the policies go with it)"
    );
    let t =
        e.sb.aas
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Sagemaker)
            .resource_ids(RID)
            .send()
            .await
            .unwrap();
    assert!(t.scalable_targets().is_empty(), "deregistered");
    let p =
        e.sb.aas
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Sagemaker)
            .resource_id(RID)
            .send()
            .await
            .unwrap();
    assert!(p.scaling_policies().is_empty(), "our policies are gone");
    let alarms = e.sb.cw.describe_alarms().send().await.unwrap();
    let names: Vec<&str> = alarms
        .metric_alarms()
        .iter()
        .filter_map(|a| a.alarm_name())
        .collect();
    assert_eq!(
        names,
        ["someone-elses-alarm"],
        "our alarm is gone; others are untouched"
    );
    let c = e.component("demo-component").await;
    assert_eq!(c["phase"], "disabled");
    assert_eq!(c["enabled"], false);
}

#[tokio::test]
async fn throttling_and_5xx_on_every_write_still_converge() {
    let e = env().await;
    for op in [
        "RegisterScalableTarget",
        "PutScalingPolicy",
        "PutMetricAlarm",
    ] {
        e.sb.control(
            "PUT",
            &format!("/faults/{op}"),
            json!({"throttle": 1, "fail": 1}),
        )
        .await;
    }
    let op = e
        .converge(
            reqwest::Method::POST,
            "demo-component",
            Some(json!({"max_capacity": 2})),
        )
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    let errors: Vec<&str> = op["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["error"].as_str().unwrap())
        .collect();
    assert!(
        op["attempt"].as_i64().unwrap() >= 5,
        "retried through the faults: {errors:?}"
    );
    assert!(errors.iter().any(|x| x.contains("ThrottlingException")));
    assert!(errors
        .iter()
        .any(|x| x.contains("InternalServiceException")));
    let policies =
        e.sb.aas
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Sagemaker)
            .resource_id(RID)
            .send()
            .await
            .unwrap();
    assert_eq!(policies.scaling_policies().len(), 2, "no duplicates");
    assert_eq!(e.component("demo-component").await["phase"], "ready");

    // The metrics show the retries, the throttles and every AWS call, by operation and outcome.
    let text = e.app.metrics().await;
    for needle in [
        r#"zeroscale_jobs_finished_total{kind="reconcile",outcome="completed"}"#,
        r#"zeroscale_jobs_finished_total{kind="reconcile",outcome="retryable"}"#,
        r#"zeroscale_job_retries_total{kind="reconcile"}"#,
        "zeroscale_job_run_seconds_bucket",
        "zeroscale_job_claim_latency_seconds_bucket",
        r#"operation="RegisterScalableTarget",outcome="throttled""#,
        r#"operation="PutMetricAlarm",outcome="server_error""#,
        r#"operation="DescribeScalableTargets",outcome="ok""#,
        "zeroscale_aws_throttles_total{",
        "zeroscale_aws_call_duration_seconds_bucket",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
}

#[tokio::test]
async fn drift_is_detected_repaired_shown_and_audited() {
    let e = env().await;
    e.converge(
        reqwest::Method::POST,
        "demo-component",
        Some(json!({"max_capacity": 2})),
    )
    .await;
    // Someone edits our alarm directly in AWS.
    let step_arn = e.component("demo-component").await["observed"]["step_policy_arn"]
        .as_str()
        .unwrap()
        .to_string();
    e.sb.cw
        .put_metric_alarm()
        .alarm_name(ALARM)
        .metric_name("NoCapacityInvocationFailures")
        .namespace("AWS/SageMaker")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(5.0)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .alarm_actions(&step_arn)
        .send()
        .await
        .unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&e.app.db.url)
        .await
        .unwrap();
    let drift = CancellationToken::new();
    let scheduler = tokio::spawn(zeroscale::reconcile::drift::run(
        pool,
        Duration::from_millis(300),
        drift.clone(),
    ));
    let mut repaired = false;
    for _ in 0..100 {
        let a =
            e.sb.cw
                .describe_alarms()
                .alarm_names(ALARM)
                .send()
                .await
                .unwrap();
        let c = e.component("demo-component").await;
        let drifted = c["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Drifted");
        if a.metric_alarms()[0].threshold() == Some(1.0) && drifted {
            repaired = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        repaired,
        "the threshold is back to 1 and the component shows the drift"
    );
    let c = e.component("demo-component").await;
    let drifted = c["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Drifted")
        .unwrap()
        .clone();
    assert!(
        drifted["message"]
            .as_str()
            .unwrap()
            .contains("PutMetricAlarm"),
        "{drifted}"
    );
    let (_, audit) = e
        .call(reqwest::Method::GET, "/audit?action=drift-repair", None)
        .await;
    assert_eq!(audit["items"][0]["outcome"], "applied");
    // Passes that find nothing to repair queue no repair and add no audit rows.
    let events = e.app.count("audit_log").await;
    let pool = &e.app.pool;
    let (passes, repairs) = (
        jobs_of(pool, "observe").await,
        jobs_of(pool, "reconcile").await,
    );
    common::wait_for(
        "two more observation passes",
        Duration::from_secs(10),
        || async { (jobs_of(pool, "observe").await >= passes + 2).then_some(()) },
    )
    .await;
    assert_eq!(
        jobs_of(pool, "reconcile").await,
        repairs,
        "nothing more to repair"
    );
    assert_eq!(
        e.app.count("audit_log").await,
        events,
        "quiet passes are not audited"
    );
    drift.cancel();
    scheduler.await.unwrap();
    common::wait_for("the last pass to end", Duration::from_secs(10), || async {
        let busy: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE state IN ('available', 'retryable', 'running')",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        (busy == 0).then_some(())
    })
    .await;
    assert_eq!(audit["items"][0]["target_name"], "demo-component");
}

/// How many jobs of `kind` there are.
async fn jobs_of(pool: &sqlx::PgPool, kind: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = $1")
        .bind(kind)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn manual_reconcile_repairs_now() {
    let e = env().await;
    e.converge(reqwest::Method::POST, "demo-component", None)
        .await;
    e.sb.aas
        .delete_scaling_policy()
        .policy_name("zeroscale-demo-component-target-tracking")
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .scalable_dimension(DIM)
        .send()
        .await
        .unwrap();
    let (status, out) = e
        .call(
            reqwest::Method::POST,
            "/components/demo-component/reconcile",
            None,
        )
        .await;
    assert_eq!(status, 202, "{out}");
    let op = e
        .wait(out["target"]["last_operation"]["url"].as_str().unwrap())
        .await;
    assert_eq!(
        op["output"]["plan"][0]["call"], "PutTargetTrackingPolicy",
        "{op}"
    );
    let p =
        e.sb.aas
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Sagemaker)
            .resource_id(RID)
            .send()
            .await
            .unwrap();
    assert_eq!(p.scaling_policies().len(), 2);
    let (status, _) = e
        .call(reqwest::Method::POST, "/components/ghost/reconcile", None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn dry_run_shows_the_verdict_and_plan_and_writes_nothing() {
    let sb = SandboxEnv::demo().await;
    let aws = clients(&sb.url).await;
    let app = common::spawn_app_with(common::TestOptions {
        aws: Some(aws),
        ..Default::default()
    })
    .await;
    let token = app.token("portal", "read,write").await;
    let post = |body: Value| {
        app.client
            .post(app.url("/components/demo-component/scale-to-zero?dry_run=true"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let resp = post(json!({"max_capacity": 2})).await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["verdict"], "ok");
    let calls: Vec<&str> = v["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["call"].as_str().unwrap())
        .collect();
    assert_eq!(
        calls,
        [
            "RegisterScalableTarget",
            "PutTargetTrackingPolicy",
            "PutStepScalingPolicy",
            "PutMetricAlarm"
        ]
    );
    assert_eq!(v["plan"][0]["max_capacity"], 2);
    // Copies pack onto at most the variant's MaxInstanceCount (4, the quota): any max fits.
    let fits: Value = post(json!({"max_capacity": 9}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fits["verdict"], "ok", "{fits}");
    sb.control("POST", "/seed", json!({
        "endpoints": [{"name": "ep-big", "instance_type": "ml.g5.xlarge", "min_instances": 0, "max_instances": 8}],
        "components": [{"name": "ic-big", "endpoint": "ep-big"}]
    })).await;
    let blocked: Value = app
        .client
        .post(app.url("/components/ic-big/scale-to-zero?dry_run=true"))
        .bearer_auth(&token)
        .json(&json!({"max_capacity": 9}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(blocked["verdict"], "blocked");
    assert!(blocked["message"]
        .as_str()
        .unwrap()
        .contains("is 4 instances"));
    assert_eq!(app.count("targets").await, 0, "no desired state written");
    assert_eq!(app.count("jobs").await, 0);
    let writes: Vec<Value> = sb
        .calls()
        .await
        .into_iter()
        .filter(|c| WRITES.contains(&c["operation"].as_str().unwrap()))
        .collect();
    assert!(writes.is_empty(), "nothing written to AWS: {writes:?}");
}

#[tokio::test]
async fn a_worker_killed_between_steps_is_rescued_without_duplicates() {
    let sb = SandboxEnv::demo().await;
    let app = spawn_app().await;
    let token = app.token("portal", "read,write").await;
    // The step policy put hangs long enough for the worker to be killed after the first writes.
    sb.control(
        "PUT",
        "/faults/PutScalingPolicy",
        json!({"latency_ms": 1500}),
    )
    .await;
    let first = start_worker(&sb.url, &app.db.url, 900).await;
    let resp = app
        .client
        .post(app.url("/components/demo-component/scale-to-zero"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let out: Value = resp.json().await.unwrap();
    let op_url = out["target"]["last_operation"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    common::wait_for(
        "the first worker past RegisterScalableTarget",
        Duration::from_secs(10),
        || async {
            let calls = sb.calls().await;
            calls
                .iter()
                .any(|c| c["operation"] == "RegisterScalableTarget")
                .then_some(())
        },
    )
    .await;
    first.abort(); // kill -9, between RegisterScalableTarget and the policies
    let _ = first.await;
    sb.control("DELETE", "/faults", json!({})).await;
    let second = start_worker(&sb.url, &app.db.url, 900).await;
    let mut op = Value::Null;
    for _ in 0..200 {
        op = app
            .client
            .get(app.url(&op_url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if op["state"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.abort();
    assert_eq!(op["state"], "completed", "{op}");
    assert!(
        op["attempt"].as_i64().unwrap() >= 2,
        "rescued after the lease: {op}"
    );
    let policies = sb
        .aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .send()
        .await
        .unwrap();
    assert_eq!(policies.scaling_policies().len(), 2, "no duplicates");
    let targets = sb
        .aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Sagemaker)
        .send()
        .await
        .unwrap();
    assert_eq!(targets.scalable_targets().len(), 1);
    let alarms = sb
        .cw
        .describe_alarms()
        .alarm_name_prefix("zeroscale/")
        .send()
        .await
        .unwrap();
    assert_eq!(alarms.metric_alarms().len(), 1);
}

/// A worker process of its own (own pool, own clients), as a replica would be.
async fn start_worker(
    url: &str,
    db: &str,
    lease_ms: u64,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    let aws = clients(url).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(3)
        .connect(db)
        .await
        .unwrap();
    let registry = Reconciler {
        aws,
        pool: pool.clone(),
    }
    .register(Registry::new());
    let config = WorkerConfig {
        concurrency: 2,
        lease: Duration::from_millis(lease_ms),
        maintenance_interval: Duration::from_millis(100),
        idempotency_ttl: Duration::from_secs(86_400),
        ..fast_worker_config()
    };
    tokio::spawn(Worker::new(pool, registry, config).run(CancellationToken::new()))
}

#[tokio::test]
async fn foreign_policies_are_reported_and_left_alone_and_disable_restores_the_original_capacity() {
    let e = env().await;
    // The team had already registered the component with min 2 / max 3 and its own policy.
    e.sb.aas
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .scalable_dimension(DIM)
        .min_capacity(2)
        .max_capacity(3)
        .send()
        .await
        .unwrap();
    // The team registered it long ago: by now the scale-out to its minimum of 2 is done (the
    // component was Updating meanwhile) and the target is listed (registration is eventually
    // consistent; the first describe right after it misses it).
    e.sb.advance(60.0).await;
    for _ in 0..2 {
        e.sb.aas
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Sagemaker)
            .resource_ids(RID)
            .send()
            .await
            .unwrap();
    }
    let tt = aws_sdk_applicationautoscaling::types::TargetTrackingScalingPolicyConfiguration::builder()
        .target_value(10.0)
        .predefined_metric_specification(aws_sdk_applicationautoscaling::types::PredefinedMetricSpecification::builder()
            .predefined_metric_type(aws_sdk_applicationautoscaling::types::MetricType::SageMakerInferenceComponentInvocationsPerCopy).build().unwrap())
        .build().unwrap();
    e.sb.aas
        .put_scaling_policy()
        .policy_name("team-policy")
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .scalable_dimension(DIM)
        .policy_type(aws_sdk_applicationautoscaling::types::PolicyType::TargetTrackingScaling)
        .target_tracking_scaling_policy_configuration(tt)
        .send()
        .await
        .unwrap();

    let op = e
        .converge(reqwest::Method::POST, "demo-component", None)
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    assert_eq!(
        op["output"]["resolved_max_capacity"], 3,
        "max resolved from the existing target"
    );
    assert_eq!(
        op["output"]["foreign_policies"][0],
        "team-policy (TargetTrackingScaling)"
    );
    let c = e.component("demo-component").await;
    let degraded = c["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["reason"] == "ForeignScalingPolicies")
        .expect("reported as a warning");
    assert!(degraded["message"]
        .as_str()
        .unwrap()
        .contains("team-policy"));
    assert_eq!(
        c["observed"]["original_capacity"],
        json!([2, 3]),
        "captured at the first enable"
    );

    e.converge(reqwest::Method::DELETE, "demo-component", None)
        .await;
    let t =
        e.sb.aas
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Sagemaker)
            .resource_ids(RID)
            .send()
            .await
            .unwrap();
    assert_eq!(
        (
            t.scalable_targets()[0].min_capacity(),
            t.scalable_targets()[0].max_capacity()
        ),
        (2, 3),
        "the capacity from before zeroscale"
    );
    let p =
        e.sb.aas
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Sagemaker)
            .resource_id(RID)
            .send()
            .await
            .unwrap();
    let names: Vec<&str> = p
        .scaling_policies()
        .iter()
        .map(|p| p.policy_name())
        .collect();
    assert_eq!(names, ["team-policy"], "never deleted silently");
    // AWS's own alarms for that policy are untouched.
    let aws_alarms: Vec<String> = p.scaling_policies()[0]
        .alarms()
        .iter()
        .map(|a| a.alarm_name().to_string())
        .collect();
    assert_eq!(aws_alarms.len(), 2);
    let still =
        e.sb.cw
            .describe_alarms()
            .alarm_name_prefix("TargetTracking-")
            .send()
            .await
            .unwrap();
    let still: Vec<String> = still
        .metric_alarms()
        .iter()
        .filter_map(|a| a.alarm_name().map(str::to_string))
        .collect();
    for a in &aws_alarms {
        assert!(still.contains(a), "{a} is still there: {still:?}");
    }
}

/// The AWS request rate is the account's, shared with everything else in it: a first enable
/// makes the API's one-read kind check, the three describes the preflight needs, one describe of
/// the target (nothing else can exist without it), the quota (applied, else AWS's default: two
/// reads per instance type, then cached), one sweep of the account's other endpoints for what
/// they run of the type (cached; the endpoint config the preflight read is reused), and the four
/// writes, the first policy put twice: registration is eventually consistent. No policy, alarm or
/// activity reads.
#[tokio::test]
async fn a_first_enable_makes_only_the_calls_it_needs() {
    let e = env().await;
    let before = e.last_seq().await;
    let op = e
        .converge(
            reqwest::Method::POST,
            "demo-component",
            Some(json!({"max_capacity": 2})),
        )
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    let calls =
        e.sb.control("GET", &format!("/calls?since={before}"), json!({}))
            .await;
    let ops: Vec<&str> = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["operation"].as_str().unwrap())
        .collect();
    assert_eq!(
        ops,
        [
            "DescribeInferenceComponent",
            "DescribeInferenceComponent",
            "DescribeEndpoint",
            "DescribeEndpointConfig",
            "DescribeScalableTargets",
            "ListServiceQuotas",
            "ListAWSDefaultServiceQuotas",
            "ListEndpoints",
            "DescribeEndpoint",
            "DescribeEndpointConfig",
            "DescribeEndpoint",
            "RegisterScalableTarget",
            "PutScalingPolicy",
            "PutScalingPolicy",
            "PutScalingPolicy",
            "PutMetricAlarm",
        ]
    );
}

/// The harness's own check: a test that enqueues a job and ends without waiting for it fails
/// (the Env's drop finds the job queued or running).
#[tokio::test]
#[should_panic(expected = "not run to the end")]
async fn a_test_that_does_not_wait_for_its_job_fails() {
    let env = common::reconcile::env().await;
    let (status, _) = env
        .call(
            reqwest::Method::POST,
            "/components/demo-component/scale-to-zero",
            None,
        )
        .await;
    assert_eq!(status, 202);
}

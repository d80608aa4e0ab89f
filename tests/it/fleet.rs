//! Fleet economy (issue 16): the observation pass reads the fleet in pages, repairs only what
//! differs, gives way to users' changes; the pacer backs off on throttling and recovers.

use crate::common;

use std::{collections::BTreeMap, time::Duration};

use common::reconcile::{env_at, Env};
use serde_json::{json, Value};
use zeroscale::{config::HttpArgs, reconcile::fleet};

const FLEET_EP: &str = "fleet-ep";

/// An Env pacing at `rate` calls/s with `n` components on their own endpoint, all enabled
/// (max 2 copies) and ready.
async fn fleet(n: usize, rate: u32) -> Env {
    let http = HttpArgs {
        write_rate_limit: 0,
        ..Default::default()
    };
    let e = env_at(rate, Some(http)).await;
    let components: Vec<Value> = (0..n)
        .map(|i| json!({"name": name(i), "endpoint": FLEET_EP}))
        .collect();
    e.sb.control(
        "POST",
        "/seed",
        json!({"quotas": {"ml.g5.xlarge": 1000},
               "endpoints": [{"name": FLEET_EP, "instance_type": "ml.g5.xlarge", "min_instances": 0, "max_instances": 2}],
               "components": components}),
    )
    .await;
    for i in 0..n {
        let (status, out) = e
            .call(
                reqwest::Method::POST,
                &format!("/components/{}/scale-to-zero", name(i)),
                Some(json!({"max_capacity": 2})),
            )
            .await;
        assert_eq!(status, 202, "{out}");
    }
    e.wait_ready("fleet-ic-", n).await;
    idle(&e).await;
    e
}

fn name(i: usize) -> String {
    format!("fleet-ic-{i:03}")
}

/// Waits until no job is queued or running.
async fn idle(e: &Env) {
    common::wait_for(
        "no job queued or running",
        Duration::from_secs(60),
        || async {
            let busy: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM jobs WHERE state IN ('available', 'retryable', 'running')",
            )
            .fetch_one(&e.app.pool)
            .await
            .unwrap();
            (busy == 0).then_some(())
        },
    )
    .await;
}

async fn jobs(e: &Env) -> i64 {
    e.app.count("jobs").await
}

#[tokio::test]
async fn a_pass_over_120_targets_reads_pages_not_targets_and_an_unchanged_fleet_costs_only_the_reads(
) {
    let e = fleet(120, 1000).await;
    let jobs_before = jobs(&e).await;
    let seq = e.last_seq().await;
    let first = fleet::pass(&e.aws, &e.app.pool).await.unwrap();
    let second = fleet::pass(&e.aws, &e.app.pool).await.unwrap();
    assert_eq!(first.targets, 120);
    assert!(first.differing.is_empty(), "{:?}", first.differing);
    assert!(second.differing.is_empty(), "{:?}", second.differing);
    assert_eq!(
        first.policies_read_for + second.policies_read_for,
        120,
        "two passes read every target's policies"
    );
    // Per pass: DescribeScalableTargets 50 ResourceIds a call (3); policies of 60 targets by
    // PolicyNames, 25 targets a filter, 10 policies a page (5 + 5 + 2 = 12); our 120 alarms at
    // 100 a page (2); one page of activities (the first pass reads one; the second finds none
    // newer and stops on its first page); 123 components listed at 100 a page (2).
    let want: BTreeMap<String, usize> = [
        ("DescribeScalableTargets", 6),
        ("DescribeScalingPolicies", 24),
        ("DescribeAlarms", 4),
        ("DescribeScalingActivities", 2),
        ("ListInferenceComponents", 4),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(
        e.calls_by_operation(seq).await,
        want,
        "no writes, no per-target reads"
    );
    let calls: usize = want.values().sum();
    assert_eq!(
        first.aws_calls + second.aws_calls,
        calls,
        "the passes count their calls"
    );
    assert!(
        calls as f64 / 240.0 <= 0.2,
        "{calls} calls for two passes over 120"
    );
    assert_eq!(
        jobs(&e).await,
        jobs_before,
        "an unchanged fleet enqueues nothing"
    );
}

#[tokio::test]
async fn targets_changed_outside_zeroscale_are_found_by_the_pass_and_repaired() {
    let e = fleet(60, 1000).await;
    let names = |i: usize| {
        zeroscale::domain::TargetRef::from_stored("component", &name(i))
            .unwrap()
            .owned_names()
    };
    // Someone edits our alarm (7), raises the floor (8), deletes a step policy (9) and edits a
    // target-tracking policy (11). A pass reads the policies of the targets whose id has its
    // parity: the first pass (number 1) those of odd ids, here the even components (component
    // i has id i + 1). 9's deletion shows anyway (AWS takes the policy's ARN out of our alarm's
    // actions); 11's edit only shows in the second pass.
    let first_id: i64 = sqlx::query_scalar("SELECT id FROM targets WHERE name = $1")
        .bind(name(0))
        .fetch_one(&e.app.pool)
        .await
        .unwrap();
    assert_eq!(first_id, 1);
    let alarm =
        e.sb.cw
            .describe_alarms()
            .alarm_names(&names(7).alarm)
            .send()
            .await
            .unwrap();
    let a = &alarm.metric_alarms()[0];
    e.sb.cw
        .put_metric_alarm()
        .alarm_name(&names(7).alarm)
        .metric_name(a.metric_name().unwrap())
        .namespace(a.namespace().unwrap())
        .set_statistic(a.statistic().cloned())
        .set_dimensions(Some(a.dimensions().to_vec()))
        .period(60)
        .evaluation_periods(1)
        .threshold(9.0)
        .set_comparison_operator(a.comparison_operator().cloned())
        .set_alarm_actions(Some(a.alarm_actions().to_vec()))
        .send()
        .await
        .unwrap();
    let sagemaker = aws_sdk_applicationautoscaling::types::ServiceNamespace::Sagemaker;
    let dim = aws_sdk_applicationautoscaling::types::ScalableDimension::SageMakerInferenceComponentDesiredCopyCount;
    e.sb.aas
        .register_scalable_target()
        .service_namespace(sagemaker.clone())
        .resource_id(&names(8).resource_id)
        .scalable_dimension(dim.clone())
        .min_capacity(1)
        .max_capacity(2)
        .send()
        .await
        .unwrap();
    e.sb.aas
        .delete_scaling_policy()
        .service_namespace(sagemaker.clone())
        .resource_id(&names(9).resource_id)
        .scalable_dimension(dim.clone())
        .policy_name(&names(9).step_policy)
        .send()
        .await
        .unwrap();
    let tt =
        e.sb.aas
            .describe_scaling_policies()
            .service_namespace(sagemaker.clone())
            .resource_id(&names(11).resource_id)
            .policy_names(&names(11).target_tracking_policy)
            .send()
            .await
            .unwrap();
    let mut config = tt.scaling_policies()[0]
        .target_tracking_scaling_policy_configuration()
        .unwrap()
        .clone();
    config.target_value = 99.0;
    e.sb.aas
        .put_scaling_policy()
        .service_namespace(sagemaker)
        .resource_id(&names(11).resource_id)
        .scalable_dimension(dim)
        .policy_name(&names(11).target_tracking_policy)
        .policy_type(aws_sdk_applicationautoscaling::types::PolicyType::TargetTrackingScaling)
        .target_tracking_scaling_policy_configuration(config)
        .send()
        .await
        .unwrap();

    let first = fleet::pass(&e.aws, &e.app.pool).await.unwrap();
    let want = |i: usize, call: &str| {
        (
            format!("inference component {:?}", name(i)),
            call.to_string(),
        )
    };
    assert_eq!(
        first.differing,
        [
            want(7, "PutMetricAlarm"),
            want(8, "RegisterScalableTarget"),
            want(9, "PutMetricAlarm"),
        ]
        .into_iter()
        .collect::<BTreeMap<_, _>>(),
        "the pass finds exactly the edited targets it can see"
    );
    assert_eq!(first.repairs_queued, 3);
    let second = fleet::pass(&e.aws, &e.app.pool).await.unwrap();
    assert_eq!(
        second.differing.get(&want(11, "").0).map(String::as_str),
        Some("PutTargetTrackingPolicy"),
        "{:?}",
        second.differing
    );
    idle(&e).await;
    // The repairs ran, were audited as drift repairs, and the next passes find nothing.
    let (_, audit) = e
        .call(reqwest::Method::GET, "/audit?action=drift-repair", None)
        .await;
    let mut repaired: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["target_name"].as_str().unwrap())
        .collect();
    repaired.sort();
    assert_eq!(repaired, [name(7), name(8), name(9), name(11)]);
    // A registration shows in DescribeScalableTargets a moment later (aws-facts.md): a pass
    // right after 8's repair may not list it yet, and its repair then finds nothing to do.
    fleet::pass(&e.aws, &e.app.pool).await.unwrap();
    idle(&e).await;
    for _ in 0..fleet::POLICY_SWEEP {
        let report = fleet::pass(&e.aws, &e.app.pool).await.unwrap();
        assert!(report.differing.is_empty(), "{:?}", report.differing);
    }
    let a =
        e.sb.cw
            .describe_alarms()
            .alarm_names(&names(7).alarm)
            .send()
            .await
            .unwrap();
    assert_eq!(a.metric_alarms()[0].threshold(), Some(1.0));
}

#[tokio::test]
async fn a_users_change_overtakes_a_running_pass() {
    let e = fleet(120, 1000).await;
    // Slow this worker to 4 calls/s (as if 250 replicas shared a budget of 1,000): a pass over
    // 120 targets (about 20 calls) takes some seconds, a change about 9 calls.
    e.aws.pacer.set_replicas(250);
    let seq = e.last_seq().await;
    zeroscale::reconcile::drift::enqueue_pass(&e.app.pool, Duration::ZERO)
        .await
        .unwrap();
    // Wait until the pass is under way, then change the demo component.
    common::wait_for("the pass's first call", Duration::from_secs(10), || async {
        e.ops_since(seq)
            .await
            .iter()
            .any(|op| op == "DescribeScalableTargets")
            .then_some(())
    })
    .await;
    let change_seq = e.last_seq().await;
    let op = e
        .converge(
            reqwest::Method::POST,
            "demo-component",
            Some(json!({"max_capacity": 2})),
        )
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    let pass: (String, Option<Value>) = sqlx::query_as(
        "SELECT state::text, output FROM jobs WHERE kind = 'observe' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&e.app.pool)
    .await
    .unwrap();
    assert_eq!(
        pass.0, "running",
        "the change finished while the pass was still running"
    );
    // The pass's calls made while the change ran: at most the few already granted.
    let calls =
        e.sb.control("GET", &format!("/calls?since={change_seq}"), json!({}))
            .await;
    let during_change = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .take_while(|c| c["operation"] != "PutMetricAlarm")
        .filter(|c| is_pass_call(c))
        .count();
    assert!(
        during_change <= 3,
        "the pass made {during_change} calls while the change waited"
    );
    idle(&e).await;
}

/// A call only the observation pass makes (batched or namespace-wide reads).
fn is_pass_call(c: &Value) -> bool {
    let p = &c["params"];
    match c["operation"].as_str().unwrap_or("") {
        "DescribeScalableTargets" => p["ResourceIds"].as_array().is_some_and(|a| a.len() > 1),
        "DescribeScalingPolicies" => p.get("ResourceId").is_none(),
        "DescribeAlarms" => p.get("AlarmNamePrefix").is_some(),
        "DescribeScalingActivities" => p.get("ResourceId").is_none(),
        "ListInferenceComponents" | "ListEndpoints" => true,
        _ => false,
    }
}

#[tokio::test]
async fn throttling_lowers_the_rate_and_it_recovers() {
    let e = fleet(5, 8).await;
    assert_eq!(e.aws.pacer.rate(), (8.0, 8.0));
    // The account's other tools use most of Application Auto Scaling's budget.
    e.sb.control(
        "PUT",
        "/settings",
        json!({"autoscaling_requests_per_second": 1.0}),
    )
    .await;
    common::wait_for("the rate to drop", Duration::from_secs(30), || async {
        let _ = fleet::pass(&e.aws, &e.app.pool).await;
        (e.aws.pacer.rate().0 <= 4.0).then_some(())
    })
    .await;
    let lowered = e.aws.pacer.rate().0;
    // They finish: zeroscale's calls go through again and the rate climbs back to its share.
    e.sb.control(
        "PUT",
        "/settings",
        json!({"autoscaling_requests_per_second": null}),
    )
    .await;
    common::wait_for("the rate to recover", Duration::from_secs(60), || async {
        fleet::pass(&e.aws, &e.app.pool).await.unwrap();
        (e.aws.pacer.rate().0 >= 8.0).then_some(())
    })
    .await;
    assert!(lowered < 8.0);
    let text = e.app.metrics().await;
    assert!(text.contains("zeroscale_aws_rate "), "{text}");
    assert!(text.contains("zeroscale_aws_rate_share "), "{text}");
}

#[tokio::test]
async fn replicas_registered_in_postgres_share_one_budget() {
    let app = common::spawn_app().await;
    let pacer = std::sync::Arc::new(zeroscale::aws::Pacer::new(30));
    let stop = tokio_util::sync::CancellationToken::new();
    // Two other live replicas.
    for _ in 0..2 {
        zeroscale::store::replicas::register(&app.pool)
            .await
            .unwrap();
    }
    let task = zeroscale::aws::budget::share(app.pool.clone(), pacer.clone(), stop.clone());
    common::wait_for("a third of the budget", Duration::from_secs(10), || async {
        (pacer.rate().1 == 10.0).then_some(())
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    assert_eq!(app.count("replicas").await, 2, "a clean stop unregisters");
}

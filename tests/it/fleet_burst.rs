//! Fleet economy (issue 16), the write path: a burst of enables on one endpoint shares its
//! reads (the component listing, the endpoint, the target describes), so it costs about the four
//! writes per component.

use crate::common;

use common::reconcile::{env_with, fast_worker_config};
use serde_json::{json, Value};
use zeroscale::{config::HttpArgs, jobs::WorkerConfig};

const N: usize = 100;

/// 100 components posted at once to a worker running as `serve` does (32 jobs at a time), paced
/// at 20 calls/s so the pacer, not the sandbox, is what the jobs wait for (as against AWS).
/// Before the shared reads this burst made 7 calls per component: DescribeInferenceComponent
/// and DescribeScalableTargets for each, and a PutScalingPolicy that registration's eventual
/// consistency failed.
#[tokio::test]
async fn a_burst_of_enables_on_one_endpoint_costs_about_four_writes_per_component() {
    let http = HttpArgs {
        write_rate_limit: 0,
        ..Default::default()
    };
    let config = WorkerConfig {
        concurrency: 32,
        ..fast_worker_config()
    };
    let e = env_with(20, Some(http), config).await;
    let components: Vec<Value> = (0..N)
        .map(|i| json!({"name": format!("burst-ic-{i:02}"), "endpoint": "burst-ep"}))
        .collect();
    e.sb.control(
        "POST",
        "/seed",
        json!({"quotas": {"ml.g5.xlarge": 1000},
               "endpoints": [{"name": "burst-ep", "instance_type": "ml.g5.xlarge", "min_instances": 0, "max_instances": 2}],
               "components": components}),
    )
    .await;
    let before = e.last_seq().await;
    let mut posts = tokio::task::JoinSet::new();
    for i in 0..N {
        let url = e
            .app
            .url(&format!("/components/burst-ic-{i:02}/scale-to-zero"));
        let (client, token) = (e.app.client.clone(), e.token.clone());
        posts.spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"max_capacity": 2}))
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    while let Some(status) = posts.join_next().await {
        assert_eq!(status.unwrap(), 202);
    }
    e.wait_ready("burst-ic-", N).await;
    let calls =
        e.sb.control("GET", &format!("/calls?since={before}"), json!({}))
            .await;
    let calls = calls["calls"].as_array().unwrap().clone();
    let by_op = e.calls_by_operation(before).await;
    let failed = calls.iter().filter(|c| !c["error"].is_null()).count();
    let per = calls.len() as f64 / N as f64;
    eprintln!("{per:.2} calls per component: {by_op:?}; {failed} failed");
    for op in ["RegisterScalableTarget", "PutMetricAlarm"] {
        assert_eq!(by_op[op], N, "{op}: {by_op:?}");
    }
    // The policy puts: two per component, plus the few that registration's eventual
    // consistency made miss when no shared describe was running to wait on.
    assert!(by_op["PutScalingPolicy"] <= 2 * N + N / 10, "{by_op:?}");
    // The listing answers the jobs' preflights after the first two; the rest are the API's
    // kind check, made only while the pacer has a free slot (its first second's burst).
    let listings = calls
        .iter()
        .filter(|c| c["operation"] == "ListInferenceComponents")
        .filter(|c| c["params"]["NextToken"].is_null())
        .count();
    assert_eq!(listings, 1, "{by_op:?}");
    assert!(
        by_op
            .get("DescribeInferenceComponent")
            .copied()
            .unwrap_or(0)
            <= 2 + 20,
        "the listing answers the burst: {by_op:?}"
    );
    // Each component's target is read before its registration and until it is listed after
    // (twice in the sandbox, whose eventual consistency misses the first read): 300 reads, 100
    // describes before. How many share a call depends on how many jobs wait on the pacer at
    // once: 11 to 21 a call here, fewer on a loaded machine.
    assert!(
        by_op["DescribeScalableTargets"] <= N / 2,
        "describes are shared: {by_op:?}"
    );
    // Everything but the four writes: 0.4 to 0.5 per component here, with the burst's constant
    // (quotas, the listing, the first describes) spread over only 100 components; it was 3.2.
    let reads = calls.len() - 4 * N;
    assert!(
        reads as f64 / N as f64 <= 1.0,
        "{per:.2} calls per component: {by_op:?}"
    );
}

/// A shared listing may be up to two minutes old: a component deleted and created again on
/// another endpoint meanwhile is still listed on the old one. A preflight never refuses on the
/// listing's word: the old endpoint's refusal (its config keeps an instance) is confirmed on a
/// fresh DescribeInferenceComponent, which finds the new endpoint, and the preflight passes.
#[tokio::test]
async fn a_stale_listing_never_makes_a_preflight_refuse() {
    let sb = common::aws::SandboxEnv::start().await;
    let aws = common::reconcile::clients(&sb.url).await;
    sb.control(
        "POST",
        "/seed",
        json!({"quotas": {"ml.g5.xlarge": 10},
               "endpoints": [{"name": "old-ep", "min_instances": 1}, {"name": "new-ep", "min_instances": 0}],
               "components": [{"name": "moved-ic", "endpoint": "old-ep"}]}),
    )
    .await;
    let listed_at = tokio::time::Instant::now();
    let pages = aws.component_pages().await.unwrap();
    aws.remember_components(listed_at, &pages).await;
    aws.sagemaker
        .delete_inference_component()
        .inference_component_name("moved-ic")
        .send()
        .await
        .unwrap();
    sb.control(
        "POST",
        "/seed",
        json!({"components": [{"name": "moved-ic", "endpoint": "new-ep"}]}),
    )
    .await;
    let before = sb.control("GET", "/calls", json!({})).await["calls"]
        .as_array()
        .unwrap()
        .len();
    let pre = zeroscale::reconcile::component::preflight(&aws, "moved-ic", true)
        .await
        .expect("the preflight passes on fresh reads");
    assert_eq!(pre.endpoint, "new-ep");
    let calls = sb.control("GET", "/calls", json!({})).await;
    let ops: Vec<&str> = calls["calls"].as_array().unwrap()[before..]
        .iter()
        .map(|c| c["operation"].as_str().unwrap())
        .collect();
    // The listing answered first (no describe before the old endpoint's reads), then the
    // refusal was checked on fresh reads.
    assert_eq!(
        ops,
        [
            "DescribeEndpoint",
            "DescribeEndpointConfig",
            "DescribeEndpoint",
            "DescribeInferenceComponent",
            "DescribeEndpoint",
            "DescribeEndpointConfig",
        ],
        "{ops:?}"
    );
}

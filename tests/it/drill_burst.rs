//! Hardening drill (issue 14): a burst of 200 first-time enables while SageMaker takes 2 s per
//! describe must not stall reads. A stall would hold a read behind a 2 s describe, so the
//! assertion is about that, not about the machine's speed: no read may take half as long as
//! one describe. The latency figures are printed (`--nocapture`); the API's latency targets
//! are measured by the committed benchmark (`cargo bench --bench api`), not here, where other
//! tests share the machine.

use crate::common;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use common::{aws::SandboxEnv, reconcile::clients, spawn_app_with, TestOptions};
use serde_json::json;
use zeroscale::config::HttpArgs;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_first_enables_with_slow_sagemaker_does_not_stall_reads() {
    let sb = SandboxEnv::demo().await;
    for op in ["DescribeEndpoint", "DescribeInferenceComponent"] {
        sb.control("PUT", &format!("/faults/{op}"), json!({"latency_ms": 2000}))
            .await;
    }
    let app = Arc::new(
        spawn_app_with(TestOptions {
            aws: Some(clients(&sb.url).await),
            pool_size: Some(10),
            http: Some(HttpArgs {
                write_rate_limit: 0,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await,
    );
    let token = app.token("portal", "read,write").await;
    // Warm up: the token is cached, the pool is open.
    for _ in 0..5 {
        app.client
            .get(app.url("/components?limit=10"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
    }
    let started = Instant::now();
    let writes: Vec<_> = (0..200)
        .map(|i| {
            let (app, token) = (app.clone(), token.clone());
            tokio::spawn(async move {
                app.client
                    .post(app.url(&format!("/components/burst-ic-{i}/scale-to-zero")))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    // Two readers, a read every 10 ms each, for as long as the burst lasts: a few hundred
    // samples, so the p99 is not just the slowest read.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (app, token, done) = (app.clone(), token.clone(), done.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    let t = Instant::now();
                    let resp = app
                        .client
                        .get(app.url("/components?limit=10"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .unwrap();
                    latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                    assert_eq!(resp.status(), 200);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                latencies
            })
        })
        .collect();
    for w in writes {
        assert_eq!(w.await.unwrap(), 202);
    }
    let burst = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut latencies = Vec::new();
    for r in readers {
        latencies.extend(r.await.unwrap());
    }
    latencies.sort_by(f64::total_cmp);
    let at =
        |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).min(latencies.len()) - 1];
    eprintln!(
        "drill burst: 200 first-time enables (2 s per SageMaker describe) took {:.1} s; \
         {} reads during it: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        burst.as_secs_f64(),
        latencies.len(),
        at(0.50),
        at(0.99),
        latencies.last().unwrap()
    );
    assert!(
        latencies.len() >= 100,
        "the burst was too short to measure reads"
    );
    let slowest = *latencies.last().unwrap();
    assert!(
        slowest < 1000.0,
        "a read waited {slowest:.1} ms: reads stalled behind the 2 s SageMaker describes"
    );
    assert_eq!(app.count("targets").await, 200);
}

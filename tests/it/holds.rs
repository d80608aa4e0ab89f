//! Wake, keep-warm, business-hours schedules and pause (issue 17), against the sandbox on its
//! frozen clock, through the real SDK clients (and, for what is left after a disable, the aws
//! CLI). Each of these works through AWS's own mechanisms, so the tests also check what AWS
//! does on its own: an `at()` action ending a window while zeroscale is stopped, cron actions
//! firing at the right UTC instants across a week.

use std::time::Duration;

use aws_sdk_applicationautoscaling::types::{ScalableTarget, ScheduledAction, ServiceNamespace};
use chrono::{DateTime, Datelike, TimeZone, Utc};
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{
    self,
    cli::{aws_cli, Cli},
    reconcile::{condition, env, Env},
};

const IC: &str = "demo-component";
const RID: &str = "inference-component/demo-component";
const DIM: aws_sdk_applicationautoscaling::types::ScalableDimension =
    aws_sdk_applicationautoscaling::types::ScalableDimension::SageMakerInferenceComponentDesiredCopyCount;

async fn scheduled(e: &Env) -> Vec<ScheduledAction> {
    e.sb.aas
        .describe_scheduled_actions()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .scalable_dimension(DIM)
        .send()
        .await
        .unwrap()
        .scheduled_actions()
        .to_vec()
}

async fn scalable(e: &Env) -> Option<ScalableTarget> {
    e.sb.aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_ids(RID)
        .send()
        .await
        .unwrap()
        .scalable_targets()
        .first()
        .cloned()
}

async fn sandbox_now(e: &Env) -> f64 {
    e.sb.control("GET", "/clock", json!({})).await["now"]
        .as_f64()
        .unwrap()
}

/// Enables the component with `spec` and lets target tracking take it to zero copies.
async fn enabled_at_zero(e: &Env, spec: Value) {
    let op = e.converge(Method::POST, IC, Some(spec)).await;
    assert_eq!(op["state"], "completed", "{op}");
    e.sb.advance(16.0 * 60.0).await;
    assert_eq!(e.sb.copies(IC).await, (0, 0), "idle: scaled in to zero");
}

/// Polls until the operation's output says it waits (its first attempt found the capacity not
/// in service yet).
async fn until_waiting(e: &Env, op: &str) -> Value {
    for _ in 0..200 {
        let (_, o) = e.call(Method::GET, op, None).await;
        assert_ne!(
            o["state"], "completed",
            "completed before the capacity was in service: {o}"
        );
        if o["output"]["waiting"].is_string() {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("operation {op} never waited");
}

fn op_url(out: &Value) -> String {
    out["target"]["last_operation"]["url"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn waking_from_zero_completes_when_a_copy_is_in_service_and_aws_ends_the_window_while_zeroscale_is_stopped(
) {
    let e = env().await;
    enabled_at_zero(&e, json!({"max_capacity": 2})).await;
    e.sb.advance(120.0).await; // the scale-in's Updating passes
                               // Provisioning a GPU copy takes minutes on AWS; four here.
    e.sb.control(
        "PUT",
        "/settings",
        json!({"provisioning_delay_seconds": 240.0}),
    )
    .await;

    let (status, out) = e
        .call(
            Method::POST,
            &format!("/components/{IC}/wake"),
            Some(json!({"copies": 1, "keep_warm_for": "30m"})),
        )
        .await;
    assert_eq!(status, 202, "{out}");
    let op = op_url(&out);
    let waiting = until_waiting(&e, &op).await;
    assert!(
        waiting["output"]["waiting"]
            .as_str()
            .unwrap()
            .contains("in service"),
        "{waiting}"
    );
    let t = scalable(&e).await.unwrap();
    assert_eq!(
        t.min_capacity(),
        1,
        "MinCapacity raised: AWS scales out to it"
    );
    let end = scheduled(&e).await;
    assert_eq!(end.len(), 1);
    assert_eq!(end[0].scheduled_action_name(), "zeroscale.keep-warm.end");
    assert!(end[0].schedule().starts_with("at("), "{:?}", end[0]);
    assert_eq!(
        end[0].scalable_target_action().unwrap().min_capacity(),
        Some(0)
    );

    e.sb.advance(240.0).await;
    let done = e.wait(&op).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["output"]["warm_after_seconds"], 240.0, "{done}");
    assert_eq!(e.sb.copies(IC).await, (1, 1));
    let c = e.component(IC).await;
    assert_eq!(c["observed"]["warm_after_seconds"], 240.0);
    assert_eq!(c["spec"]["keep_warm"]["copies"], 1);

    // Waking it again while warm completes at once and extends the window.
    let (status, again) = e
        .call(
            Method::POST,
            &format!("/components/{IC}/wake"),
            Some(json!({"keep_warm_for": "45m"})),
        )
        .await;
    assert_eq!(status, 202, "{again}");
    let done = e.wait(&op_url(&again)).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["output"]["warm_after_seconds"], 0.0);
    let until: DateTime<Utc> = e.component(IC).await["spec"]["keep_warm"]["until"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(until > Utc::now() + chrono::Duration::minutes(44));

    // zeroscale stops; AWS ends the window on its own clock.
    e.stop.cancel();
    let left = until.timestamp() as f64 - sandbox_now(&e).await;
    e.sb.advance(left + 120.0).await;
    assert_eq!(
        scalable(&e).await.unwrap().min_capacity(),
        0,
        "the at() action returned MinCapacity to 0"
    );
    let activities =
        e.sb.aas
            .describe_scaling_activities()
            .service_namespace(ServiceNamespace::Sagemaker)
            .resource_id(RID)
            .send()
            .await
            .unwrap();
    assert!(activities
        .scaling_activities()
        .iter()
        .any(|a| a.cause() == "scheduled action name zeroscale.keep-warm.end was triggered"));
    // Then idle target tracking takes it back to zero.
    e.sb.advance(16.0 * 60.0).await;
    assert_eq!(e.sb.copies(IC).await, (0, 0));
}

/// The next Saturday 00:00 UTC after `now` (epoch seconds).
fn next_saturday(now: f64) -> DateTime<Utc> {
    let now = Utc.timestamp_opt(now as i64, 0).unwrap();
    let mut day = now.date_naive().succ_opt().unwrap();
    while day.weekday() != chrono::Weekday::Sat {
        day = day.succ_opt().unwrap();
    }
    day.and_hms_opt(0, 0, 0).unwrap().and_utc()
}

#[tokio::test]
async fn a_tokyo_business_hours_schedule_fires_at_the_right_utc_instants_across_a_week() {
    let e = env().await;
    let spec = json!({"max_capacity": 2, "schedules": [{
        "name": "business-hours", "cron": "0 8 * * MON-FRI", "end_cron": "0 20 * * MON-FRI",
        "timezone": "Asia/Tokyo", "min_capacity": 1
    }]});
    let op = e.converge(Method::POST, IC, Some(spec)).await;
    assert_eq!(op["state"], "completed", "{op}");

    let mut actions = scheduled(&e).await;
    actions.sort_by(|a, b| a.scheduled_action_name().cmp(b.scheduled_action_name()));
    let shown: Vec<(&str, &str, Option<&str>, Option<i32>)> = actions
        .iter()
        .map(|a| {
            (
                a.scheduled_action_name(),
                a.schedule(),
                a.timezone(),
                a.scalable_target_action().and_then(|t| t.min_capacity()),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (
                "zeroscale.schedule.business-hours.end",
                "cron(0 20 ? * MON-FRI *)",
                Some("Asia/Tokyo"),
                Some(0)
            ),
            (
                "zeroscale.schedule.business-hours.start",
                "cron(0 8 ? * MON-FRI *)",
                Some("Asia/Tokyo"),
                Some(1)
            ),
        ]
    );
    // GET shows the next three runs of each, in UTC and Tokyo time.
    let c = e.component(IC).await;
    let runs = c["schedule_runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["edge"], "start");
    assert_eq!(runs[0]["next"].as_array().unwrap().len(), 3);
    let first = &runs[0]["next"][0];
    assert!(
        first["local"]
            .as_str()
            .unwrap()
            .ends_with("T08:00:00+09:00"),
        "{first}"
    );
    assert!(
        first["utc"].as_str().unwrap().contains("T23:00:00"),
        "{first}"
    );

    // Across a week from a Saturday: runs on the five weekdays only, at 08:00 and 20:00 JST.
    let now = sandbox_now(&e).await;
    let saturday = next_saturday(now);
    e.sb.advance(saturday.timestamp() as f64 - now).await;
    e.sb.advance(7.0 * 86_400.0).await;
    let activities =
        e.sb.aas
            .describe_scaling_activities()
            .service_namespace(ServiceNamespace::Sagemaker)
            .resource_id(RID)
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
    let mut fired: Vec<(String, DateTime<Utc>)> = activities
        .into_iter()
        .map(Result::unwrap)
        .filter(|a| a.cause().starts_with("scheduled action name "))
        .map(|a| {
            let secs = a.start_time().secs();
            (a.cause().to_string(), Utc.timestamp_opt(secs, 0).unwrap())
        })
        .filter(|(_, at)| *at >= saturday)
        .collect();
    fired.sort_by_key(|(_, at)| *at);
    let day =
        |d: i64, h: u32| saturday + chrono::Duration::days(d) + chrono::Duration::hours(h.into());
    let mut expected = Vec::new();
    for weekday in 0..5 {
        // Monday 08:00 JST is Sunday 23:00 UTC; 20:00 JST is 11:00 UTC the same day.
        expected.push(("start", day(1 + weekday, 23)));
        expected.push(("end", day(2 + weekday, 11)));
    }
    let got: Vec<(&str, DateTime<Utc>)> = fired
        .iter()
        .map(|(cause, at)| {
            let edge = if cause.contains(".start ") {
                "start"
            } else {
                "end"
            };
            (edge, *at)
        })
        .collect();
    assert_eq!(
        got, expected,
        "runs on Monday-Friday JST only, weekend none"
    );
}

#[tokio::test]
async fn a_pause_suspends_scaling_resumes_on_its_own_at_its_expiry_and_is_audited_both_ways() {
    let e = env().await;
    enabled_at_zero(&e, json!({"max_capacity": 2})).await;
    // Its owner has suspended scale-in: what a pause's end gives back.
    e.sb.aas
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .scalable_dimension(DIM)
        .suspended_state(
            aws_sdk_applicationautoscaling::types::SuspendedState::builder()
                .dynamic_scaling_in_suspended(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let lifter = tokio::spawn(zeroscale::reconcile::holds::run(
        e.app.pool.clone(),
        Duration::from_millis(200),
        e.stop.clone(),
    ));
    let until = Utc::now() + chrono::Duration::seconds(6);
    let (status, out) = e
        .call(
            Method::POST,
            &format!("/components/{IC}/pause"),
            Some(json!({"until": until, "reason": "incident 4711"})),
        )
        .await;
    assert_eq!(status, 202, "{out}");
    let done = e.wait(&op_url(&out)).await;
    assert_eq!(done["state"], "completed", "{done}");
    let s = scalable(&e).await.unwrap();
    let st = s.suspended_state().unwrap();
    assert_eq!(
        (
            st.dynamic_scaling_in_suspended(),
            st.dynamic_scaling_out_suspended(),
            st.scheduled_scaling_suspended()
        ),
        (Some(true), Some(true), Some(true))
    );
    let c = e.component(IC).await;
    let paused = condition(&c, "Paused", "ScalingSuspended").expect("a Paused condition");
    let message = paused["message"].as_str().unwrap();
    assert!(
        message.contains("portal") && message.contains("incident 4711"),
        "{message}"
    );

    // A request at zero does not wake it while paused.
    e.sb.control("POST", "/invoke", json!({"component": IC}))
        .await;
    e.sb.advance(120.0).await;
    assert_eq!(
        e.sb.copies(IC).await,
        (0, 0),
        "paused: the alarm's step policy does not run"
    );

    // At the expiry zeroscale resumes by itself.
    let mut resumed = None;
    for _ in 0..200 {
        let (_, audit) = e.call(Method::GET, "/audit?actor=zeroscale", None).await;
        if let Some(ev) = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|ev| ev["action"] == "resume")
        {
            resumed = Some(ev.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resumed = resumed.expect("zeroscale resumed at the expiry");
    assert!(Utc::now() >= until);
    let op = format!("/operations/{}", resumed["job_id"].as_i64().unwrap());
    assert_eq!(e.wait(&op).await["state"], "completed");
    let st = scalable(&e)
        .await
        .unwrap()
        .suspended_state()
        .cloned()
        .unwrap();
    assert_eq!(st.dynamic_scaling_out_suspended(), Some(false));
    assert_eq!(st.scheduled_scaling_suspended(), Some(false));
    assert_eq!(
        st.dynamic_scaling_in_suspended(),
        Some(true),
        "the owner's suspension from before the pause is given back"
    );
    assert!(condition(&e.component(IC).await, "Paused", "ScalingSuspended").is_none());
    let (_, mine) = e.call(Method::GET, "/audit?actor=portal", None).await;
    assert!(mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|ev| ev["action"] == "pause"));
    // Scaling works again: a request at zero wakes it.
    e.sb.control("POST", "/invoke", json!({"component": IC}))
        .await;
    e.sb.advance(120.0).await;
    assert_eq!(e.sb.copies(IC).await.1, 1);
    e.stop.cancel();
    let _ = lifter.await;
}

// Multi-threaded: the aws CLI runs as a blocking child process while the sandbox serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_removes_scheduled_actions_and_lifts_a_pause_leaving_nothing_of_ours() {
    let e = env().await;
    // The owner had registered the component: disable restores that registration, so the
    // scheduled actions must be deleted one by one (deregistering would take them along).
    e.sb.register_visible(RID, DIM, 1, 2).await;
    let spec = json!({"max_capacity": 2, "schedules": [{
        "name": "business-hours", "cron": "0 8 * * MON-FRI", "end_cron": "0 20 * * MON-FRI",
        "timezone": "Asia/Tokyo", "min_capacity": 1
    }]});
    assert_eq!(
        e.converge(Method::POST, IC, Some(spec)).await["state"],
        "completed"
    );
    let (status, out) = e
        .call(
            Method::PUT,
            &format!("/components/{IC}/keep-warm"),
            Some(json!({"until": Utc::now() + chrono::Duration::hours(2), "copies": 1, "reason": "demo"})),
        )
        .await;
    assert_eq!(status, 202, "{out}");
    assert_eq!(e.wait(&op_url(&out)).await["state"], "completed");
    let out = e
        .call(Method::POST, &format!("/components/{IC}/pause"), None)
        .await
        .1;
    assert_eq!(e.wait(&op_url(&out)).await["state"], "completed");
    assert_eq!(scheduled(&e).await.len(), 3);

    let op = e.converge(Method::DELETE, IC, None).await;
    assert_eq!(op["state"], "completed", "{op}");

    let dir = std::env::temp_dir().join(format!("zs-holds-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let cli = Cli {
        bin: aws_cli(),
        url: e.sb.url.clone(),
        dir: dir.clone(),
    };
    let actions = cli.run(&[
        "application-autoscaling",
        "describe-scheduled-actions",
        "--service-namespace",
        "sagemaker",
    ]);
    assert_eq!(actions["ScheduledActions"], json!([]), "{actions}");
    let targets = cli.run(&[
        "application-autoscaling",
        "describe-scalable-targets",
        "--service-namespace",
        "sagemaker",
        "--resource-ids",
        RID,
    ]);
    let t = &targets["ScalableTargets"][0];
    assert_eq!(
        (t["MinCapacity"].as_i64(), t["MaxCapacity"].as_i64()),
        (Some(1), Some(2)),
        "the owner's bounds"
    );
    assert_eq!(
        t["SuspendedState"],
        json!({"DynamicScalingInSuspended": false, "DynamicScalingOutSuspended": false, "ScheduledScalingSuspended": false})
    );
    let policies = cli.run(&[
        "application-autoscaling",
        "describe-scaling-policies",
        "--service-namespace",
        "sagemaker",
        "--resource-id",
        RID,
    ]);
    assert_eq!(policies["ScalingPolicies"], json!([]));
    let alarms = cli.run(&[
        "cloudwatch",
        "describe-alarms",
        "--alarm-name-prefix",
        "zeroscale",
    ]);
    assert_eq!(alarms["MetricAlarms"], json!([]));
    let _ = std::fs::remove_dir_all(dir);
}

/// The version, the jobs and the audit log: what a refused request must leave as it was.
async fn footprint(e: &Env) -> (Value, i64, i64) {
    let version = e.component(IC).await["version"].clone();
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&e.app.pool)
            .await
            .unwrap()
    };
    (
        version,
        count("SELECT count(*) FROM jobs").await,
        count("SELECT count(*) FROM audit_log").await,
    )
}

#[tokio::test]
async fn bad_cron_timezone_pause_length_and_copies_get_a_422_naming_the_field_and_change_nothing() {
    let e = env().await;
    // A quota of 2 instances, of which the async endpoint runs 1.
    e.sb.control("PUT", "/quotas/ml.g5.xlarge", json!({"value": 2}))
        .await;
    assert_eq!(
        e.converge(Method::POST, IC, Some(json!({"max_capacity": 2})))
            .await["state"],
        "completed"
    );
    let before = footprint(&e).await;
    let schedule = |cron: &str, tz: &str| json!({"max_capacity": 2, "schedules": [{"name": "hours", "cron": cron, "timezone": tz, "min_capacity": 1}]});
    let far = Utc::now() + chrono::Duration::days(8);
    let cases: Vec<(Method, String, Value, &str, &str)> = vec![
        (
            Method::POST,
            format!("/components/{IC}/scale-to-zero"),
            schedule("0 8 31 2 *", "UTC"),
            "schedules[0].cron",
            "never fires",
        ),
        (
            Method::POST,
            format!("/components/{IC}/scale-to-zero"),
            schedule("0 8 1 * MON", "UTC"),
            "schedules[0].cron",
            "day of the month",
        ),
        (
            Method::POST,
            format!("/components/{IC}/scale-to-zero"),
            schedule("0 8 * * MON-FRI", "Asia/Tokio"),
            "schedules[0].timezone",
            "IANA",
        ),
        (
            Method::POST,
            format!("/components/{IC}/pause"),
            json!({"until": far}),
            "until",
            "at most 7 days",
        ),
        (
            Method::POST,
            format!("/components/{IC}/wake"),
            json!({"copies": 3}),
            "copies",
            "max_capacity (2)",
        ),
        (
            Method::POST,
            format!("/components/{IC}/wake"),
            json!({"copies": 2}),
            "copies",
            "quota",
        ),
        (
            Method::POST,
            format!("/components/{IC}/wake"),
            json!({"keep_warm_for": "soon"}),
            "keep_warm_for",
            "duration",
        ),
    ];
    for (method, path, body, field, words) in cases {
        let (status, problem) = e.call(method, &path, Some(body.clone())).await;
        assert_eq!(status, 422, "{path} {body}: {problem}");
        let errors = problem["errors"].as_array().unwrap();
        let named = errors.iter().find(|x| x["field"] == field);
        let named =
            named.unwrap_or_else(|| panic!("{path} {body}: no error names {field}: {problem}"));
        assert!(
            named["message"].as_str().unwrap().contains(words),
            "{path} {body}: {named}"
        );
        assert_eq!(
            footprint(&e).await,
            before,
            "{path} {body} changed something"
        );
    }
}

#[tokio::test]
async fn holds_honour_dry_runs_if_match_and_idempotency_keys() {
    let e = env().await;
    assert_eq!(
        e.converge(Method::POST, IC, Some(json!({"max_capacity": 2})))
            .await["state"],
        "completed"
    );
    let before = footprint(&e).await;
    let path = format!("/components/{IC}/wake");
    let (status, dry) = e
        .call(
            Method::POST,
            &format!("{path}?dry_run=true"),
            Some(json!({"copies": 2})),
        )
        .await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["verdict"], "ok");
    assert_eq!(dry["plan"][0]["call"], "RegisterScalableTarget");
    assert_eq!(dry["plan"][0]["min_capacity"], 2);
    assert_eq!(dry["plan"][1]["call"], "PutScheduledAction");
    assert_eq!(
        dry["plan"][1]["scheduled_action_name"],
        "zeroscale.keep-warm.end"
    );
    assert_eq!(footprint(&e).await, before, "a dry run records nothing");

    let send = |key: &'static str, if_match: Option<&'static str>, body: Value| {
        let mut r = e
            .app
            .client
            .post(e.app.url(&format!("/components/{IC}/pause")))
            .bearer_auth(&e.token)
            .header("idempotency-key", key)
            .json(&body);
        if let Some(m) = if_match {
            r = r.header("if-match", m);
        }
        r.send()
    };
    let stale = send("k0", Some("\"7\""), json!({"reason": "x"}))
        .await
        .unwrap();
    assert_eq!(stale.status().as_u16(), 412);
    let first = send("k1", None, json!({"reason": "deploy"})).await.unwrap();
    assert_eq!(first.status().as_u16(), 202);
    let first: Value = first.json().await.unwrap();
    let again = send("k1", None, json!({"reason": "deploy"})).await.unwrap();
    assert_eq!(again.status().as_u16(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["target"]["version"], first["target"]["version"]);
    let reused = send("k1", None, json!({"reason": "other"})).await.unwrap();
    assert_eq!(reused.status().as_u16(), 422);
    assert_eq!(e.wait(&op_url(&first)).await["state"], "completed");
    // While paused, a wake is refused: scaling is suspended.
    let (status, problem) = e.call(Method::POST, &path, None).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "paused");
    let (status, out) = e
        .call(Method::POST, &format!("/components/{IC}/resume"), None)
        .await;
    assert_eq!(status, 202, "{out}");
    assert_eq!(e.wait(&op_url(&out)).await["state"], "completed");
    let (_, versions) = e
        .call(Method::GET, &format!("/components/{IC}/versions"), None)
        .await;
    let actions: Vec<&str> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["resume", "pause", "enable"]);
}

#[tokio::test]
async fn drift_leaves_what_a_schedule_set_alone_repairs_a_deleted_action_and_removing_a_schedule_deletes_its_actions(
) {
    let e = env().await;
    // Every minute: MinCapacity 1 from the first run on.
    let spec = json!({"max_capacity": 2, "schedules": [{
        "name": "always", "cron": "* * * * *", "min_capacity": 1
    }]});
    assert_eq!(
        e.converge(Method::POST, IC, Some(spec)).await["state"],
        "completed"
    );
    e.sb.advance(120.0).await;
    assert_eq!(
        scalable(&e).await.unwrap().min_capacity(),
        1,
        "the schedule ran"
    );
    let pass = zeroscale::reconcile::fleet::pass(&e.aws, &e.app.pool)
        .await
        .unwrap();
    assert!(
        pass.differing.is_empty(),
        "what a schedule set is no drift: {:?}",
        pass.differing
    );

    e.sb.aas
        .delete_scheduled_action()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .scalable_dimension(DIM)
        .scheduled_action_name("zeroscale.schedule.always.start")
        .send()
        .await
        .unwrap();
    let pass = zeroscale::reconcile::fleet::pass(&e.aws, &e.app.pool)
        .await
        .unwrap();
    assert_eq!(
        pass.differing.values().collect::<Vec<_>>(),
        ["PutScheduledAction"],
        "{pass:?}"
    );
    for _ in 0..200 {
        if scheduled(&e).await.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(scheduled(&e).await.len(), 1, "repaired");
    // Wait for the repair job to end before the next change.
    for _ in 0..200 {
        if e.component(IC).await["phase"] == "ready" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Paused, MinCapacity is frozen: one set outside zeroscale is left until the resume.
    let out = e
        .call(Method::POST, &format!("/components/{IC}/pause"), None)
        .await
        .1;
    assert_eq!(e.wait(&op_url(&out)).await["state"], "completed");
    e.sb.aas
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .scalable_dimension(DIM)
        .min_capacity(0)
        .send()
        .await
        .unwrap();
    let pass = zeroscale::reconcile::fleet::pass(&e.aws, &e.app.pool)
        .await
        .unwrap();
    assert!(pass.differing.is_empty(), "frozen: {:?}", pass.differing);
    let out = e
        .call(Method::POST, &format!("/components/{IC}/resume"), None)
        .await
        .1;
    let done = e.wait(&op_url(&out)).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(
        scalable(&e).await.unwrap().min_capacity(),
        1,
        "resumed: the schedule's value"
    );

    let op = e
        .converge(Method::POST, IC, Some(json!({"max_capacity": 2})))
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    let calls = common::reconcile::step_calls(&op);
    assert!(
        calls.contains(&"DeleteScheduledAction".to_string()),
        "{calls:?}"
    );
    assert!(scheduled(&e).await.is_empty());
    assert_eq!(
        scalable(&e).await.unwrap().min_capacity(),
        0,
        "without the schedule, MinCapacity goes back to 0"
    );
}

#[tokio::test]
async fn a_variant_is_woken_in_instances_and_paused_the_same_way() {
    let e = env().await;
    let base = "/endpoints/demo-async-endpoint/variants/AllTraffic";
    let op = e
        .converge_at(
            Method::POST,
            &format!("{base}/scale-to-zero"),
            Some(json!({"max_capacity": 2})),
        )
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    let (status, out) = e
        .call(
            Method::POST,
            &format!("{base}/wake"),
            Some(json!({"instances": 1, "keep_warm_for": "2h"})),
        )
        .await;
    assert_eq!(status, 202, "{out}");
    let done = e.wait(&op_url(&out)).await;
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(
        done["output"]["warm_after_seconds"], 0.0,
        "one instance was already in service"
    );
    // A wake above the max, and a max below the pin, are refused while the pin holds.
    let (status, out) = e
        .call(
            Method::POST,
            &format!("{base}/wake"),
            Some(json!({"instances": 3})),
        )
        .await;
    assert_eq!(status, 422, "above the max: {out}");
    assert_eq!(out["errors"][0]["field"], "copies");
    let until = Utc::now() + chrono::Duration::hours(2);
    let (status, out) = e
        .call(
            Method::PUT,
            &format!("{base}/keep-warm"),
            Some(json!({"until": until, "instances": 2, "reason": "batch"})),
        )
        .await;
    assert_eq!(status, 202, "{out}");
    let op = op_url(&out);
    until_waiting(&e, &op).await;
    e.sb.advance(120.0).await;
    assert_eq!(e.wait(&op).await["state"], "completed");
    let (status, problem) = e
        .call(
            Method::POST,
            &format!("{base}/scale-to-zero"),
            Some(json!({"max_capacity": 1})),
        )
        .await;
    assert_eq!(status, 422, "a max below the pin: {problem}");
    assert_eq!(problem["errors"][0]["field"], "max_capacity");
    let rid = "endpoint/demo-async-endpoint/variant/AllTraffic";
    let listed =
        e.sb.aas
            .describe_scheduled_actions()
            .service_namespace(ServiceNamespace::Sagemaker)
            .resource_id(rid)
            .send()
            .await
            .unwrap();
    assert_eq!(
        listed.scheduled_actions()[0].scheduled_action_name(),
        "zeroscale.keep-warm.end"
    );
    // A pause during a pin freezes scaling, MinCapacity included: ending the pin lowers it
    // only when scaling resumes.
    let describe = || async {
        e.sb.aas
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Sagemaker)
            .resource_ids(rid)
            .send()
            .await
            .unwrap()
            .scalable_targets()[0]
            .clone()
    };
    for (method, route) in [(Method::POST, "pause"), (Method::DELETE, "keep-warm")] {
        let (status, out) = e.call(method, &format!("{base}/{route}"), None).await;
        assert_eq!(status, 202, "{out}");
        assert_eq!(e.wait(&op_url(&out)).await["state"], "completed");
    }
    let t = describe().await;
    assert_eq!(t.min_capacity(), 2, "frozen while paused");
    assert_eq!(
        t.suspended_state().unwrap().dynamic_scaling_out_suspended(),
        Some(true)
    );
    let (status, out) = e.call(Method::POST, &format!("{base}/resume"), None).await;
    assert_eq!(status, 202, "{out}");
    assert_eq!(e.wait(&op_url(&out)).await["state"], "completed");
    let t = describe().await;
    assert_eq!(t.min_capacity(), 0, "unpinned, once resumed");
    assert_eq!(
        t.suspended_state().unwrap().dynamic_scaling_out_suspended(),
        Some(false)
    );
}

#[tokio::test]
async fn a_resume_without_the_pause_s_record_leaves_nothing_suspended() {
    let e = env().await;
    assert_eq!(
        e.converge(Method::POST, IC, Some(json!({"max_capacity": 2})))
            .await["state"],
        "completed"
    );
    let out = e
        .call(Method::POST, &format!("/components/{IC}/pause"), None)
        .await
        .1;
    assert_eq!(e.wait(&op_url(&out)).await["state"], "completed");
    // As when the pausing job was superseded before it recorded anything.
    sqlx::query("UPDATE targets SET observed = observed - 'suspended_before_pause'")
        .execute(&e.app.pool)
        .await
        .unwrap();
    let out = e
        .call(Method::POST, &format!("/components/{IC}/resume"), None)
        .await
        .1;
    assert_eq!(e.wait(&op_url(&out)).await["state"], "completed");
    let st = scalable(&e)
        .await
        .unwrap()
        .suspended_state()
        .cloned()
        .unwrap();
    assert_eq!(
        (
            st.dynamic_scaling_in_suspended(),
            st.dynamic_scaling_out_suspended(),
            st.scheduled_scaling_suspended()
        ),
        (Some(false), Some(false), Some(false)),
        "zeroscale registered it: nothing was suspended before zeroscale"
    );
}

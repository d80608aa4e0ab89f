//! The sandbox's scheduled actions and suspensions as AWS's model and guide describe them
//! (botocore application-autoscaling 2016-02-06; "Scheduled scaling", "Suspend and resume
//! scaling"), driven by the real AWS SDK for Rust clients.

use crate::common;

use aws_sdk_applicationautoscaling::{
    error::ProvideErrorMetadata,
    types::{ScalableDimension, ScalableTargetAction, ServiceNamespace, SuspendedState},
};
use common::aws::SandboxEnv;
use serde_json::json;

const DIM: ScalableDimension = ScalableDimension::SageMakerInferenceComponentDesiredCopyCount;
const RID: &str = "inference-component/demo-component";

fn code<E: ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("<none>").to_string()
}

async fn put(env: &SandboxEnv, name: &str, schedule: &str, min: i32) -> Result<(), String> {
    env.aas
        .put_scheduled_action()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .scalable_dimension(DIM)
        .scheduled_action_name(name)
        .schedule(schedule)
        .scalable_target_action(ScalableTargetAction::builder().min_capacity(min).build())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| code(&e.into_service_error()))
}

async fn min_capacity(env: &SandboxEnv) -> i32 {
    env.aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_ids(RID)
        .send()
        .await
        .unwrap()
        .scalable_targets()[0]
        .min_capacity()
}

async fn suspend_scheduled(env: &SandboxEnv, on: bool) {
    env.aas
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .scalable_dimension(DIM)
        .suspended_state(
            SuspendedState::builder()
                .scheduled_scaling_suspended(on)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn scheduled_actions_follow_the_model_s_rules_pages_and_limit() {
    let env = SandboxEnv::demo().await;
    assert_eq!(
        put(&env, "early", "cron(0 8 ? * MON-FRI *)", 1).await,
        Err("ObjectNotFoundException".into()),
        "the target must be registered"
    );
    env.register_visible(RID, DIM, 0, 2).await;
    for bad_name in ["a/b", "a:b", "a|b", " lead"] {
        assert_eq!(
            put(&env, bad_name, "rate(1 hour)", 1).await,
            Err("ValidationException".into()),
            "{bad_name:?}"
        );
    }
    for bad in [
        "cron(0 8 * * MON-FRI *)",
        "cron(0 8 * * MON)",
        "rate(0 hours)",
        "at(2026-12-01)",
        "every day",
    ] {
        assert_eq!(
            put(&env, "x", bad, 1).await,
            Err("ValidationException".into()),
            "{bad}"
        );
    }
    let no_capacity = env
        .aas
        .put_scheduled_action()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .scalable_dimension(DIM)
        .scheduled_action_name("x")
        .schedule("rate(1 hour)")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&no_capacity.into_service_error()),
        "ValidationException"
    );

    for i in 0..200 {
        put(&env, &format!("a{i:03}"), "rate(1 day)", 0)
            .await
            .unwrap();
    }
    assert_eq!(
        put(&env, "a200", "rate(1 day)", 0).await,
        Err("LimitExceededException".into()),
        "200 per scalable target"
    );
    assert_eq!(
        put(&env, "a000", "rate(2 days)", 0).await,
        Ok(()),
        "an update is not a new one"
    );
    let first = env
        .aas
        .describe_scheduled_actions()
        .service_namespace(ServiceNamespace::Sagemaker)
        .send()
        .await
        .unwrap();
    assert_eq!(first.scheduled_actions().len(), 50, "50 a page by default");
    assert!(first.next_token().is_some());
    let all: Vec<_> = env
        .aas
        .describe_scheduled_actions()
        .service_namespace(ServiceNamespace::Sagemaker)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await;
    assert_eq!(all.len(), 200);
    let missing = env
        .aas
        .delete_scheduled_action()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .scalable_dimension(DIM)
        .scheduled_action_name("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&missing.into_service_error()),
        "ObjectNotFoundException"
    );

    // Deregistering deletes the target's scheduled actions.
    env.aas
        .deregister_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .scalable_dimension(DIM)
        .send()
        .await
        .unwrap();
    let left = env
        .aas
        .describe_scheduled_actions()
        .service_namespace(ServiceNamespace::Sagemaker)
        .send()
        .await
        .unwrap();
    assert!(left.scheduled_actions().is_empty());
}

#[tokio::test]
async fn a_run_scales_out_through_provisioning_and_runs_due_while_suspended_are_skipped() {
    let env = SandboxEnv::demo().await;
    env.register_visible(RID, DIM, 0, 2).await;
    // Idle: target tracking is not there, so the component keeps its copy; take it to zero.
    env.aas
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .scalable_dimension(DIM)
        .max_capacity(0)
        .send()
        .await
        .unwrap();
    env.advance(120.0).await;
    env.aas
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .scalable_dimension(DIM)
        .max_capacity(2)
        .send()
        .await
        .unwrap();
    assert_eq!(env.copies("demo-component").await, (0, 0));

    // Provisioning takes minutes on AWS; four here.
    env.control(
        "PUT",
        "/settings",
        json!({"provisioning_delay_seconds": 240.0}),
    )
    .await;
    put(&env, "hourly", "rate(1 hour)", 1).await.unwrap();
    suspend_scheduled(&env, true).await;
    env.advance(3700.0).await;
    assert_eq!(
        min_capacity(&env).await,
        0,
        "suspended: the run was skipped"
    );
    suspend_scheduled(&env, false).await;
    env.advance(60.0).await;
    assert_eq!(
        min_capacity(&env).await,
        0,
        "a skipped run is not made up later"
    );
    // The next run comes an hour after the first (two hours after the put, 3760 s ago).
    env.advance(3440.0 + 90.0).await;
    assert_eq!(min_capacity(&env).await, 1);
    let newest = env
        .aas
        .describe_scaling_activities()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .send()
        .await
        .unwrap();
    let scale_out = newest
        .scaling_activities()
        .iter()
        .find(|a| a.cause() == "minimum capacity was set to 1")
        .expect("the raised minimum scaled out, with AWS's cause");
    let run = newest
        .scaling_activities()
        .iter()
        .find(|a| a.cause() == "scheduled action name hourly was triggered")
        .expect("the run is an activity of its own");
    assert_eq!(run.status_code().as_str(), "Successful");
    assert_eq!(env.copies("demo-component").await, (1, 0), "provisioning");
    assert_eq!(
        scale_out.status_code().as_str(),
        "InProgress",
        "until the copy is in service"
    );
    assert!(scale_out.end_time().is_none());
    env.advance(240.0).await;
    assert_eq!(env.copies("demo-component").await, (1, 1));
    let done = env
        .aas
        .describe_scaling_activities()
        .service_namespace(ServiceNamespace::Sagemaker)
        .resource_id(RID)
        .send()
        .await
        .unwrap();
    let scale_out = done
        .scaling_activities()
        .iter()
        .find(|a| a.cause() == "minimum capacity was set to 1")
        .unwrap();
    assert_eq!(scale_out.status_code().as_str(), "Successful");
    assert_eq!(
        scale_out.end_time().unwrap().secs() - scale_out.start_time().secs(),
        240,
        "it ended when the copy came into service (the provisioning delay)"
    );
}

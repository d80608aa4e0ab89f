//! The sandbox authorises calls as AWS does once a policy is attached to its caller, and
//! answers STS GetCallerIdentity over AWS Query: what `doctor`, start-up and the policy
//! coverage test rely on.

use crate::common;

use aws_sdk_sagemaker::error::ProvideErrorMetadata as _;
use common::aws::{deploy_policy, deploy_policy_without as policy_without, sdk_config, SandboxEnv};
use serde_json::{json, Value};

#[tokio::test]
async fn get_caller_identity_over_aws_query() {
    let sb = SandboxEnv::start().await;
    // Even a policy that denies everything cannot block GetCallerIdentity.
    sb.attach_policy(json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "*", "Resource": "*"}
    ]}))
    .await;
    let sts = aws_sdk_sts::Client::new(&sdk_config(&sb.url).await);
    let me = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(me.account(), Some("123456789012"));
    assert_eq!(
        me.arn(),
        Some("arn:aws:sts::123456789012:assumed-role/zeroscale/sandbox")
    );
    let calls = sb.calls().await;
    let last = calls.last().unwrap();
    assert_eq!(last["service"], "sts");
    assert_eq!(last["protocol"], "Query");
    assert_eq!(last["authorized"], json!([]));
}

#[tokio::test]
async fn an_attached_policy_denies_what_it_does_not_allow_in_each_protocol() {
    let sb = SandboxEnv::demo().await;
    sb.attach_policy(policy_without("servicequotas:ListServiceQuotas"))
        .await;

    let e = sb
        .sq
        .list_service_quotas()
        .service_code("sagemaker")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("AccessDeniedException"));
    assert_eq!(
        e.message(),
        Some("User: arn:aws:sts::123456789012:assumed-role/zeroscale/sandbox is not authorized to perform: servicequotas:ListServiceQuotas because no identity-based policy allows the servicequotas:ListServiceQuotas action")
    );
    // What the policy grants still works.
    sb.sq
        .list_aws_default_service_quotas()
        .service_code("sagemaker")
        .send()
        .await
        .unwrap();
    sb.sm
        .describe_endpoint()
        .endpoint_name("demo-endpoint")
        .send()
        .await
        .unwrap();

    // CloudWatch (CBOR, query-compatible) says AccessDenied, on the alarm's ARN.
    let e = sb
        .cw
        .put_metric_alarm()
        .alarm_name("someone-elses-alarm")
        .metric_name("M")
        .namespace("N")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("AccessDenied"));
    assert!(
        e.message().unwrap().contains(
            "cloudwatch:PutMetricAlarm on resource: arn:aws:cloudwatch:us-east-1:123456789012:alarm:someone-elses-alarm"
        ),
        "{e:?}"
    );
    let calls = sb.calls().await;
    let denied = common::aws::denied(&calls);
    assert_eq!(denied.len(), 2, "{denied:?}");
    assert_eq!(
        denied[1]["authorized"],
        json!(["cloudwatch:PutMetricAlarm"])
    );
}

#[tokio::test]
async fn registering_needs_permission_to_scale_the_resource_and_to_create_the_role_once() {
    let sb = SandboxEnv::demo().await;
    let register = || {
        sb.aas
            .register_scalable_target()
            .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Sagemaker)
            .resource_id("inference-component/demo-component")
            .scalable_dimension(
                aws_sdk_applicationautoscaling::types::ScalableDimension::SageMakerInferenceComponentDesiredCopyCount,
            )
            .min_capacity(0)
            .max_capacity(2)
            .send()
    };
    sb.attach_policy(policy_without(
        "sagemaker:UpdateInferenceComponentRuntimeConfig",
    ))
    .await;
    let e = register().await.unwrap_err();
    assert_eq!(e.code(), Some("AccessDeniedException"));
    assert!(
        e.message().unwrap().contains("sagemaker:UpdateInferenceComponentRuntimeConfig on resource: arn:aws:sagemaker:us-east-1:123456789012:inference-component/demo-component"),
        "{e:?}"
    );

    sb.attach_policy(policy_without("iam:CreateServiceLinkedRole"))
        .await;
    let e = register().await.unwrap_err();
    assert!(
        e.message().unwrap().contains("iam:CreateServiceLinkedRole"),
        "the first registration creates the service-linked role: {e:?}"
    );

    // Once the role exists (created by someone allowed to), the policy needs no IAM action.
    sb.attach_policy(Value::Null).await;
    register().await.unwrap();
    sb.attach_policy(policy_without("iam:CreateServiceLinkedRole"))
        .await;
    register().await.unwrap();

    // The condition key narrows the writes to SageMaker targets.
    let e = sb
        .aas
        .register_scalable_target()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
        .resource_id("service/default/web")
        .scalable_dimension(
            aws_sdk_applicationautoscaling::types::ScalableDimension::EcsServiceDesiredCount,
        )
        .min_capacity(0)
        .max_capacity(2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("AccessDeniedException"), "{e:?}");
}

#[tokio::test]
async fn an_explicit_deny_wins_and_a_bad_policy_is_refused() {
    let sb = SandboxEnv::demo().await;
    let mut doc = deploy_policy();
    doc["Statement"].as_array_mut().unwrap().push(json!({
        "Effect": "Deny", "Action": "sagemaker:Describe*", "Resource": "*"
    }));
    sb.attach_policy(doc).await;
    let e = sb
        .sm
        .describe_endpoint()
        .endpoint_name("demo-endpoint")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.message()
            .unwrap()
            .ends_with("with an explicit deny in an identity-based policy"),
        "{e:?}"
    );
    // A DeleteAlarms naming no alarm still needs the action.
    let e = sb.cw.delete_alarms().send().await.unwrap_err();
    assert_eq!(e.code(), Some("AccessDenied"), "{e:?}");

    // What the sandbox cannot evaluate is refused when attached, never evaluated wrongly: a
    // Deny it skipped would allow what AWS refuses.
    let put = |body: Value| {
        reqwest::Client::new()
            .put(format!("{}/_sandbox/iam", sb.url))
            .json(&body)
            .send()
    };
    for bad in [
        json!({"policy": {"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}}),
        json!({"policy": {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}}}]}}),
        json!({"policy": {"Statement": [{"Effect": "Deny", "NotAction": "sts:*", "Action": "*", "Resource": "*"}]}}),
        // Omitting the policy never detaches it.
        json!({"service_linked_role": true}),
    ] {
        let resp = put(bad.clone()).await.unwrap();
        assert!(resp.status().is_client_error(), "{bad}: {}", resp.status());
    }
    let state = sb.control("GET", "/iam", Value::Null).await;
    assert!(state["policy"].is_object(), "still attached: {state}");
}

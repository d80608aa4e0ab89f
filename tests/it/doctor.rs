//! `zeroscale doctor` as an operator runs it, and start-up's checks of the AWS set-up: a
//! checklist that passes against the sandbox, names a denied permission, fails with a hint when
//! the database is down or unmigrated; `serve` and `worker` stop with a sentence when there is
//! no Region or no credentials.

use crate::common;

use std::{process::Output, time::Duration};

use common::{
    aws::{deploy_policy as policy, deploy_policy_without as policy_without, SandboxEnv},
    TestDb,
};
use zeroscale::config::{DatabaseUrl, DbArgs};

const BIN: &str = env!("CARGO_BIN_EXE_zeroscale");

/// The binary with an environment that owes nothing to this machine's AWS set-up: no
/// profile files, no instance metadata, no inherited AWS or zeroscale variables.
fn zeroscale(args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args)
        .env("AWS_CONFIG_FILE", "/nonexistent/zeroscale-test")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/zeroscale-test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("ZEROSCALE_LOG_FORMAT", "json")
        .kill_on_drop(true);
    for (k, _) in std::env::vars() {
        if (k.starts_with("AWS_")
            && !k.starts_with("AWS_CONFIG_FILE")
            && k != "AWS_SHARED_CREDENTIALS_FILE"
            && k != "AWS_EC2_METADATA_DISABLED")
            || k.starts_with("ZEROSCALE_")
            || k == "DATABASE_URL"
        {
            cmd.env_remove(&k);
        }
    }
    cmd
}

/// `doctor` against the sandbox at `url` and the database at `db_url`.
async fn doctor(url: &str, db_url: &str) -> Output {
    tokio::time::timeout(
        Duration::from_secs(60),
        zeroscale(&["doctor"])
            .env("DATABASE_URL", db_url)
            .env("ZEROSCALE_AWS_ENDPOINT_URL", url)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "AKIDSANDBOXEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "sandbox-secret")
            .output(),
    )
    .await
    .expect("doctor finishes")
    .unwrap()
}

async fn migrated_db() -> TestDb {
    let db = TestDb::create().await;
    let args = DbArgs::with_url(db.url.parse::<DatabaseUrl>().unwrap());
    zeroscale::store::prepare(&args, true)
        .await
        .unwrap()
        .close()
        .await;
    db
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn line<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting {start:?} in:\n{text}"))
}

#[tokio::test]
async fn doctor_passes_against_the_sandbox_and_writes_nothing() {
    let (sb, db) = (SandboxEnv::demo().await, migrated_db().await);
    sb.attach_policy(policy()).await;
    let out = doctor(&sb.url, &db.url).await;
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("FAIL") && !text.contains("WARN"), "{text}");
    line(&text, "PASS  database ");
    line(&text, "PASS  migrations ");
    assert!(line(&text, "PASS  aws region ").contains("us-east-1 (from AWS_REGION)"));
    assert!(line(&text, "PASS  aws credentials ").contains("access key ending MPLE"));
    assert!(line(&text, "PASS  aws identity ").contains(
        "account 123456789012 as arn:aws:sts::123456789012:assumed-role/zeroscale/sandbox"
    ));
    assert!(line(&text, "PASS  aws endpoints ").contains(&format!(
        "every service -> {} (from --aws-endpoint-url",
        sb.url
    )));
    for action in [
        "application-autoscaling:DescribeScalableTargets",
        "cloudwatch:DescribeAlarms",
        "sagemaker:DescribeInferenceComponent",
        "servicequotas:ListServiceQuotas",
    ] {
        line(&text, &format!("PASS  {action} "));
    }
    assert!(text.ends_with("0 warning(s), 0 failed\n"), "{text}");
    let calls = sb.calls().await;
    assert!(!calls.is_empty());
    for c in &calls {
        let op = c["operation"].as_str().unwrap();
        assert!(
            ["Describe", "List", "Get"]
                .iter()
                .any(|p| op.starts_with(p)),
            "doctor only reads: {op}"
        );
    }
}

#[tokio::test]
async fn a_denied_quota_read_warns_and_a_denied_scaling_read_fails_naming_the_permission() {
    let (sb, db) = (SandboxEnv::demo().await, migrated_db().await);
    sb.attach_policy(policy_without("servicequotas:ListServiceQuotas"))
        .await;
    let out = doctor(&sb.url, &db.url).await;
    let text = stdout(&out);
    assert!(out.status.success(), "a warning is not a failure: {text}");
    let warn = line(&text, "WARN  servicequotas:ListServiceQuotas ");
    assert!(warn.contains("denied (AccessDeniedException)"), "{warn}");
    assert!(
        text.contains("hint: grant servicequotas:ListServiceQuotas to the role"),
        "{text}"
    );
    assert!(text.ends_with("1 warning(s), 0 failed\n"), "{text}");

    sb.attach_policy(policy_without(
        "application-autoscaling:DescribeScalableTargets",
    ))
    .await;
    let out = doctor(&sb.url, &db.url).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    line(
        &text,
        "FAIL  application-autoscaling:DescribeScalableTargets ",
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("doctor found 1 failure(s)"));
}

#[tokio::test]
async fn doctor_fails_with_a_hint_when_the_database_is_down_or_unmigrated() {
    let sb = SandboxEnv::demo().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // Nothing listens there any more.
    let out = doctor(&sb.url, &format!("postgres://postgres@{closed}/zeroscale")).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let fail = line(&text, "FAIL  database ");
    assert!(fail.contains("Postgres is not reachable"), "{fail}");
    assert!(
        text.contains("hint: start Postgres, or point DATABASE_URL (--database-url) at it"),
        "{text}"
    );
    // The AWS checks still run.
    line(&text, "PASS  aws identity ");

    let db = TestDb::create().await;
    let out = doctor(&sb.url, &db.url).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    line(&text, "PASS  database ");
    assert!(
        line(&text, "FAIL  migrations ").contains("no zeroscale tables"),
        "{text}"
    );
    assert!(text.contains("run `zeroscale migrate`"), "{text}");

    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_path("zs_test_does_not_exist");
    let out = doctor(&sb.url, url.as_str()).await;
    let text = stdout(&out);
    assert!(
        line(&text, "FAIL  database ").contains("the database does not exist"),
        "{text}"
    );
}

#[tokio::test]
async fn serve_and_worker_without_a_region_or_credentials_stop_with_what_to_set() {
    let db = TestDb::create().await;
    for command in ["serve", "worker"] {
        // No Region at all, then a Region but no credentials.
        for (region, expected) in [
            (None, "error: no AWS Region: set AWS_REGION"),
            (Some("eu-west-1"), "error: no AWS credentials"),
        ] {
            let mut cmd = zeroscale(&[command]);
            cmd.env("DATABASE_URL", &db.url);
            if let Some(r) = region {
                cmd.env("AWS_REGION", r);
            }
            let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
                .await
                .expect("start-up stops at once")
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{command}: {err}");
            assert!(err.contains(expected), "{command}: {err}");
            if region.is_some() {
                assert!(err.contains("AWS_ACCESS_KEY_ID"), "{command}: {err}");
            }
        }
    }
    // Nothing was started against the database: start-up stopped before it.
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(tables, 0);
}

#[tokio::test]
async fn with_aws_unreachable_doctor_says_so_once_and_skips_the_reads() {
    let db = migrated_db().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = doctor(&format!("http://{closed}"), &db.url).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let identity = line(&text, "FAIL  aws identity ");
    assert!(identity.contains("DispatchFailure"), "{identity}");
    assert!(
        text.contains("hint: AWS is not reachable from here"),
        "{text}"
    );
    assert!(
        line(&text, "FAIL  aws permissions ").contains("not checked"),
        "{text}"
    );
    assert!(!text.contains("sagemaker:"), "no probe was tried: {text}");
    assert!(text.ends_with("2 failed\n"), "{text}");
}

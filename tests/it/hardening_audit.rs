//! The audit log's defences (issue 14): the service's role cannot alter it, and a hash chain
//! makes tampering evident even to someone who can.

use crate::common;

use std::time::Duration;

use common::{spawn_app, TestApp};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use zeroscale::{
    app::Application,
    config::{DatabaseUrl, DbArgs, HttpArgs},
};

async fn enable(app: &TestApp, token: &str, name: &str) {
    let resp = app
        .client
        .post(app.url(&format!("/components/{name}/scale-to-zero")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
}

async fn verify(app: &TestApp, token: &str) -> (u16, Value) {
    let resp = app
        .client
        .get(app.url("/audit/verify"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn the_hash_chain_shows_an_edited_event_even_when_a_superuser_edits_it() {
    let app = spawn_app().await;
    let token = app.token("security", "read,write,audit").await;
    for name in ["ic-a", "ic-b", "ic-c"] {
        enable(&app, &token, name).await;
    }
    zeroscale::store::audit::seal(&app.pool).await.unwrap();
    let (status, report) = verify(&app, &token).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        (report["events"].as_i64(), report["sealed"].as_i64()),
        (Some(3), Some(3))
    );
    assert!(report["head_hash"].as_str().unwrap().len() == 64);

    // A superuser can switch the append-only triggers off; the chain still tells.
    for sql in [
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete",
        "UPDATE audit_log SET actor = 'mallory' WHERE id = 2",
        "ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_no_update_delete",
    ] {
        sqlx::query(sql).execute(&app.pool).await.unwrap();
    }
    let (_, report) = verify(&app, &token).await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["first_broken"]["event_id"], 2, "{report}");
    assert_eq!(report["first_broken"]["reason"], "event_changed");

    let reader = app.token("dashboard", "read").await;
    assert_eq!(verify(&app, &reader).await.0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_role_writes_changes_but_cannot_alter_the_audit_log() {
    let app = spawn_app().await;
    // The login role a deployment gives the service: a member of zeroscale_app, owning nothing.
    sqlx::query(
        "DO $$ BEGIN CREATE ROLE zs_test_service LOGIN; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("GRANT zeroscale_app TO zs_test_service")
        .execute(&app.pool)
        .await
        .expect("the migrations create the zeroscale_app role");
    let mut url = url::Url::parse(&app.db.url).unwrap();
    url.set_username("zs_test_service").unwrap();
    let db = DbArgs::with_url(url.as_str().parse::<DatabaseUrl>().unwrap());
    let service_pool = zeroscale::store::prepare(&db, false).await.unwrap();

    // It serves changes: the API's writes and the workers' sealing work under this role.
    let server = Application::build(
        &HttpArgs {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        },
        zeroscale::api::AppState::new(service_pool.clone()),
        None,
    )
    .await
    .unwrap();
    let addr = server.local_addr();
    let stop = CancellationToken::new();
    tokio::spawn(server.run_until_stopped(stop.clone()));
    let token = app.token("portal", "read,write").await;
    let resp = app
        .client
        .post(format!("http://{addr}/components/ic-role/scale-to-zero"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert!(zeroscale::store::audit::seal(&service_pool)
        .await
        .unwrap()
        .is_some());
    stop.cancel();

    for sql in [
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete",
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        "UPDATE audit_log SET actor = 'mallory'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "DROP TABLE audit_log CASCADE",
        "ALTER TABLE audit_chain DISABLE TRIGGER ALL",
        "DELETE FROM audit_chain",
        "UPDATE audit_chain SET hash = hash",
    ] {
        let refused = sqlx::query(sql).execute(&service_pool).await;
        assert!(refused.is_err(), "the service's role could run {sql:?}");
    }
    assert_eq!(app.count("audit_log").await, 1);
    tokio::time::sleep(Duration::from_millis(10)).await;
}

//! Notifications (issue 18): a receiver in the test gets exactly the subscribed events, signed,
//! with a retry after it answers 500; a secret never appears in an answer or a log line.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{extract::State, http::HeaderMap, routing::post, Router};
use reqwest::Method;
use serde_json::{json, Value};
use zeroscale::reconcile::fleet;

use crate::common::{self, reconcile::env, reconcile::Env};

const IC: &str = "demo-component";
const SECRET: &str = "whsec_test_5b1f0c9e7d3a2f48";

/// What the receiver saw: (signature, delivery id, event, body).
type Seen = Arc<Mutex<Vec<(String, String, String, Vec<u8>)>>>;

/// A receiver that answers 500 to its first request and 200 after.
async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    async fn hook(
        State(seen): State<Seen>,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> axum::http::StatusCode {
        let h = |k: &str| {
            headers
                .get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let mut seen = seen.lock().unwrap();
        seen.push((
            h("zeroscale-signature"),
            h("zeroscale-delivery"),
            h("zeroscale-event"),
            body.to_vec(),
        ));
        if seen.len() == 1 {
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        } else {
            axum::http::StatusCode::OK
        }
    }
    let app = Router::new()
        .route("/hook/{token}", post(hook))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook/receiver-token-1234"), seen)
}

/// Runs the periodic notification checks once: how many deliveries they queued.
async fn periodic(e: &Env) -> usize {
    zeroscale::notify::check_periodic(&e.app.pool)
        .await
        .unwrap()
}

/// Checks a delivery's signature as a receiver would: HMAC-SHA256 of "<t>.<body>".
fn verify(header: &str, body: &[u8], secret: &str) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x.to_string()),
            Some(("v1", x)) => v1 = Some(x.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let age = chrono::Utc::now().timestamp() - t.parse::<i64>().unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = t.into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(body);
    age.abs() < 300 && ring::hmac::verify(&key, &signed, &hex::decode(v1).unwrap()).is_ok()
}

async fn call(
    e: &Env,
    answers: &mut Vec<String>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, out) = e.call(method, path, body).await;
    answers.push(out.to_string());
    (status, out)
}

#[tokio::test]
async fn a_receiver_gets_the_subscribed_events_signed_and_retried_and_never_a_secret() {
    let e = env().await;
    let mut answers = Vec::new();
    let (url, seen) = receiver().await;
    let (status, hook) = call(&e, &mut answers, Method::POST, "/webhooks", Some(json!({
        "url": url, "kinds": ["wake_failed", "drift_repaired"], "secret": SECRET, "labels": {"team": "search"}
    }))).await;
    assert_eq!(status, 201, "{hook}");
    assert_eq!(
        hook["url"],
        format!("{}/hook/***", url.split("/hook").next().unwrap()),
        "the path is masked"
    );
    let id = hook["id"].as_i64().unwrap();
    // Another team's webhook hears nothing of this target.
    let (status, other) = call(
        &e,
        &mut answers,
        Method::POST,
        "/webhooks",
        Some(json!({
            "url": url, "kinds": ["wake_failed"], "secret": SECRET, "labels": {"team": "ads"}
        })),
    )
    .await;
    assert_eq!(status, 201, "{other}");
    for (bad, field) in [
        (
            json!({"url": "http://hooks.example.com/x", "kinds": ["wake_failed"], "secret": SECRET}),
            "url",
        ),
        (json!({"url": url, "kinds": [], "secret": SECRET}), "kinds"),
        (
            json!({"url": url, "kinds": ["wake_failed"], "secret": "short"}),
            "secret",
        ),
    ] {
        let (status, out) = call(&e, &mut answers, Method::POST, "/webhooks", Some(bad)).await;
        assert_eq!(
            (status, out["errors"][0]["field"].as_str()),
            (422, Some(field)),
            "{out}"
        );
    }
    // A quota failure when the component wakes (wake_failed), and a wake that succeeds later
    // (wake_slow: not subscribed).
    let op = e
        .converge(
            Method::POST,
            IC,
            Some(json!({"max_capacity": 2, "labels": {"team": "search"}})),
        )
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    e.sb.advance(16.0 * 60.0).await;
    fleet::pass(&e.aws, &e.app.pool).await.unwrap();
    e.sb.control("PUT", "/quotas/ml.g5.xlarge", json!({"value": 0.0}))
        .await;
    e.sb.control("POST", "/invoke", json!({"component": IC, "count": 1}))
        .await;
    e.sb.advance(61.0).await;
    fleet::pass(&e.aws, &e.app.pool).await.unwrap();
    e.sb.control("PUT", "/quotas/ml.g5.xlarge", json!({"value": 4.0}))
        .await;
    e.sb.control("POST", "/invoke", json!({"component": IC, "count": 1}))
        .await;
    e.sb.advance(400.0).await;
    // Someone deletes our alarm: the pass repairs it (drift_repaired).
    let alarm = zeroscale::domain::TargetRef::Component(
        zeroscale::domain::ComponentName::parse(IC).unwrap(),
    )
    .owned_names()
    .alarm;
    e.sb.cw
        .delete_alarms()
        .alarm_names(&alarm)
        .send()
        .await
        .unwrap();
    let report = fleet::pass(&e.aws, &e.app.pool).await.unwrap();
    assert_eq!(report.repairs_queued, 1, "{report:?}");
    let types = common::wait_for(
        "both subscribed events delivered",
        Duration::from_secs(30),
        || async {
            let got = seen.lock().unwrap().clone();
            let delivered: Vec<String> = got.iter().skip(1).map(|s| s.2.clone()).collect();
            (delivered.contains(&"wake_failed".to_string())
                && delivered.contains(&"drift_repaired".to_string()))
            .then_some(got)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await; // anything else would have come by now
    let got = seen.lock().unwrap().clone();
    assert_eq!(
        got.len(),
        3,
        "exactly the subscribed events, one retried: {types:?}"
    );
    assert!(
        got[1..].iter().any(|s| s.1 == got[0].1 && s.2 == got[0].2),
        "the retry after the 500 carries the same delivery id: {got:?}"
    );
    let mut kinds: Vec<&str> = got[1..].iter().map(|s| s.2.as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["drift_repaired", "wake_failed"]);
    for (sig, _, kind, body) in &got {
        assert!(verify(sig, body, SECRET), "{kind}: {sig}");
        assert!(
            !verify(sig, body, "whsec_some_other_secret"),
            "a wrong secret fails"
        );
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["type"], kind.as_str());
        assert_eq!(v["target"]["labels"]["team"], "search");
        assert!(!String::from_utf8_lossy(body).contains(SECRET));
    }
    let failed: Value =
        serde_json::from_slice(&got.iter().find(|s| s.2 == "wake_failed").unwrap().3).unwrap();
    assert_eq!(failed["data"]["reason"], "quota", "{failed}");
    assert!(failed["data"]["message"]
        .as_str()
        .unwrap()
        .contains("account-level service limit"));
    // The delivery log: the retry and its outcome.
    let (_, log) = call(
        &e,
        &mut answers,
        Method::GET,
        &format!("/webhooks/{id}/deliveries"),
        None,
    )
    .await;
    let wake = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "wake_failed")
        .unwrap()
        .clone();
    assert_eq!(
        (
            wake["state"].as_str(),
            wake["attempts"].as_i64(),
            wake["last_status"].as_i64()
        ),
        (Some("delivered"), Some(2), Some(200)),
        "{log}"
    );
    let other_id = other["id"].as_i64().unwrap();
    let (_, none) = call(
        &e,
        &mut answers,
        Method::GET,
        &format!("/webhooks/{other_id}/deliveries"),
        None,
    )
    .await;
    assert_eq!(none["items"], json!([]), "the label filter");
    call(&e, &mut answers, Method::GET, "/webhooks", None).await;
    call(
        &e,
        &mut answers,
        Method::GET,
        &format!("/webhooks/{id}"),
        None,
    )
    .await;
    let (status, _) = call(
        &e,
        &mut answers,
        Method::DELETE,
        &format!("/webhooks/{other_id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    for a in &answers {
        assert!(
            !a.contains(SECRET) && !a.contains("receiver-token-1234"),
            "an answer shows a secret: {a}"
        );
    }
    // Every test's log lines at INFO and above (the service's default level), this one's
    // among them.
    let text = common::captured_logs();
    assert!(
        text.contains(&format!("webhook created webhook_id={id}")),
        "the capture works"
    );
    assert!(!text.contains(SECRET), "a log line shows the secret");
    assert!(
        !text.contains("receiver-token-1234"),
        "a log line shows the URL's credential"
    );
}

#[tokio::test]
async fn a_retried_post_with_its_idempotency_key_creates_one_webhook() {
    let e = env().await;
    let post = |body: Value| {
        e.app
            .client
            .post(e.app.url("/webhooks"))
            .bearer_auth(&e.token)
            .header("idempotency-key", "hook-1")
            .json(&body)
            .send()
    };
    let body =
        json!({"url": "https://hooks.example.com/z", "kinds": ["wake_failed"], "secret": SECRET});
    let first = post(body.clone()).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = post(body).await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let other = post(json!({"url": "https://hooks.example.com/z", "kinds": ["wake_failed"], "secret": "whsec_another_secret_00"}))
        .await
        .unwrap();
    assert_eq!(other.status(), 422, "the same key with another body");
    assert_eq!(e.app.count("webhooks").await, 1);
}

#[tokio::test]
async fn a_pause_about_to_end_and_a_target_that_never_reaches_zero_are_noticed_once() {
    let e = env().await;
    let (url, seen) = receiver().await;
    let (status, hook) = e
        .call(
            Method::POST,
            "/webhooks",
            Some(json!({
                "url": url, "kinds": ["pause_expiring", "not_reaching_zero"], "secret": SECRET,
                "format": "slack", "not_at_zero_days": 3
            })),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let op = e
        .converge(Method::POST, IC, Some(json!({"max_capacity": 2})))
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    assert_eq!(periodic(&e).await, 0, "nothing to say yet");
    // Enabled four days ago and never at zero since (Postgres's clock cannot be moved: the
    // records are).
    for table in [
        "targets SET created_at = created_at",
        "target_events SET at = at",
    ] {
        sqlx::query(&format!("UPDATE {table} - interval '4 days'"))
            .execute(&e.app.pool)
            .await
            .unwrap();
    }
    assert_eq!(periodic(&e).await, 1, "not reaching zero");
    assert_eq!(periodic(&e).await, 0, "once");
    let until = (chrono::Utc::now() + chrono::TimeDelta::minutes(30)).to_rfc3339();
    let op = e
        .converge_at(
            Method::POST,
            &format!("/components/{IC}/pause"),
            Some(json!({"until": until, "reason": "incident 4711"})),
        )
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    assert_eq!(periodic(&e).await, 1, "the pause ends within the hour");
    assert_eq!(periodic(&e).await, 0, "once");
    // Resumed, it reaches zero and stays there for days: that is what it is for.
    let op = e
        .converge_at(Method::POST, &format!("/components/{IC}/resume"), None)
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    e.sb.advance(16.0 * 60.0).await;
    fleet::pass(&e.aws, &e.app.pool).await.unwrap();
    sqlx::query(
        "UPDATE target_events SET at = at - interval '5 days' WHERE kind = 'scaled_to_zero'",
    )
    .execute(&e.app.pool)
    .await
    .unwrap();
    assert_eq!(periodic(&e).await, 0, "at zero is not 'not reaching zero'");
    common::wait_for("two deliveries", Duration::from_secs(30), || async {
        (seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| !s.1.is_empty())
            .count()
            >= 3)
            .then_some(())
    })
    .await;
    let got = seen.lock().unwrap().clone();
    let texts: Vec<String> = got
        .iter()
        .map(|s| {
            serde_json::from_slice::<Value>(&s.3).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("is paused until") && t.contains(IC)),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("has not reached zero for 4 days")),
        "{texts:?}"
    );
    for (sig, _, _, body) in &got {
        assert!(verify(sig, body, SECRET));
    }
}

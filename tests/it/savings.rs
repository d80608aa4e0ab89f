//! The savings ledger (issue 18): a scripted day on the sandbox's frozen clock, priced with a
//! price table of the test's own, to the cent, as JSON and as CSV.

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use zeroscale::{config::HttpArgs, reconcile::fleet};

use crate::common::reconcile::{env_with, fast_worker_config, Env};

const IC: &str = "demo-component";
const PRICE: f64 = 1.37;

async fn pass(e: &Env) {
    fleet::pass(&e.aws, &e.app.pool).await.unwrap();
}

fn at(events: &[Value], kind: &str, nth: usize) -> DateTime<Utc> {
    events
        .iter()
        .filter(|e| e["kind"] == kind)
        .nth(nth)
        .unwrap_or_else(|| panic!("no {kind} #{nth} in {events:#?}"))["at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn get(e: &Env, path: &str, accept: &str) -> (u16, String) {
    let r = e
        .app
        .client
        .get(e.app.url(path))
        .bearer_auth(&e.token)
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_scripted_day_is_priced_to_the_cent_and_csv_agrees_with_json() {
    let table = std::env::temp_dir().join(format!("zeroscale-prices-{}.json", std::process::id()));
    std::fs::write(
        &table,
        json!({"region": "us-east-1", "currency": "USD", "as_of": "2026-11-30", "kind": "list prices",
               "hourly": {"ml.g5.xlarge": PRICE}})
        .to_string(),
    )
    .unwrap();
    let http = HttpArgs {
        price_table: Some(table),
        ..Default::default()
    };
    let e = env_with(100, Some(http), fast_worker_config()).await;
    e.sb.control("PUT", "/settings", json!({"provisioning_delay_seconds": 180.0, "eventual_consistency": true, "status_transitions": true}))
        .await;
    // Enabled with a restore minimum of 2: without scale-to-zero it would hold 2 copies.
    let op = e
        .converge(
            Method::POST,
            IC,
            Some(
                json!({"max_capacity": 2, "restore_min_capacity": 2, "labels": {"team": "search"}}),
            ),
        )
        .await;
    assert_eq!(op["state"], "completed", "{op}");
    e.sb.advance(16.0 * 60.0).await;
    pass(&e).await;
    // Six hours at zero, then a request wakes it (180 s to provision), then idle to zero again.
    e.sb.advance(6.0 * 3600.0).await;
    e.sb.control("POST", "/invoke", json!({"component": IC, "count": 2}))
        .await;
    e.sb.advance(60.0).await;
    pass(&e).await;
    e.sb.advance(200.0).await;
    pass(&e).await;
    e.sb.advance(16.0 * 60.0).await;
    pass(&e).await;
    let (_, page) = e
        .call(Method::GET, &format!("/components/{IC}/timeline"), None)
        .await;
    let events = page["items"].as_array().unwrap().clone();
    let (zero, wake, ready, zero_again) = (
        at(&events, "scaled_to_zero", 0),
        at(&events, "wake_started", 0),
        at(&events, "capacity_in_service", 0),
        at(&events, "scaled_to_zero", 1),
    );
    assert_eq!((ready - wake).num_seconds(), 180, "the provisioning delay");
    assert!(wake - zero >= TimeDelta::hours(6), "{events:#?}");
    // The day: from an hour before the first scale-in to the second one. At zero from the
    // scale-in to the capacity in service, of which 180 s waking: the saving is the hours from
    // the scale-in to the wake's start.
    let since = zero - TimeDelta::hours(1);
    let until = zero_again;
    let hours_at_zero = (ready - zero).num_milliseconds() as f64 / 3.6e6;
    let hours_waking = 0.05;
    let expected = ((hours_at_zero - hours_waking) * 2.0 * PRICE * 100.0).round() / 100.0;
    let idle = (wake - zero).num_milliseconds() as f64 / 3.6e6;
    assert_eq!(
        expected,
        (idle * 2.0 * PRICE * 100.0).round() / 100.0,
        "nothing ran from the scale-in to the wake"
    );
    let query = format!(
        "/reports/savings?since={}&until={}",
        since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let (status, body) = get(&e, &query, "application/json").await;
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    let row = &report["items"][0];
    assert_eq!(row["group"], format!("component/{IC}"));
    assert_eq!(row["instances"], 2);
    assert_eq!(row["hourly_price"], PRICE);
    assert_eq!(row["instance_type"], "ml.g5.xlarge");
    assert!(
        (row["hours_at_zero"].as_f64().unwrap() - hours_at_zero).abs() < 1e-6,
        "{report:#}"
    );
    assert_eq!(row["hours_waking"], hours_waking, "{report:#}");
    assert_eq!(row["savings"], expected, "{report:#}");
    assert_eq!(report["total_savings"], expected);
    assert_eq!(report["prices"]["as_of"], "2026-11-30");
    assert_eq!(report["prices"]["kind"], "list prices");
    assert!(
        report["prices"].get("hourly").is_none(),
        "the table itself is not repeated"
    );
    // CSV: the same figures.
    let (status, text) = get(&e, &query, "text/csv").await;
    assert_eq!(status, 200, "{text}");
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let header = rows.headers().unwrap().clone();
    let line = rows.records().next().unwrap().unwrap();
    let field = |name: &str| line[header.iter().position(|h| h == name).unwrap()].to_string();
    assert_eq!(field("group"), format!("component/{IC}"));
    assert_eq!(field("savings").parse::<f64>().unwrap(), expected);
    assert_eq!(
        field("hours_at_zero").parse::<f64>().unwrap(),
        row["hours_at_zero"].as_f64().unwrap()
    );
    assert_eq!(field("currency"), "USD");
    // Grouped by label and by endpoint: the same money; filtered by another label: none.
    for group in ["label:team", "endpoint"] {
        let (_, body) = get(&e, &format!("{query}&group_by={group}"), "application/json").await;
        let r: Value = serde_json::from_str(&body).unwrap();
        let groups: Vec<&str> = r["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["group"].as_str().unwrap())
            .collect();
        assert!(
            groups.contains(&"team=search") || groups.contains(&"demo-endpoint"),
            "{r:#}"
        );
        assert_eq!(r["total_savings"], expected, "{r:#}");
    }
    let (_, body) = get(&e, &format!("{query}&label=team=ads"), "application/json").await;
    let r: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (r["items"].clone(), r["total_savings"].clone()),
        (json!([]), json!(0.0))
    );
    // Paged: one group a page, the cursor leads on.
    let (_, body) = get(&e, &format!("{query}&limit=1"), "application/json").await;
    let r: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["items"].as_array().unwrap().len(), 1);
    for bad in [
        format!("{query}&group_by=color"),
        format!("{query}&label=team"),
        "/reports/savings?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z".to_string(),
        "/reports/savings?since=2024-01-01T00:00:00Z&until=2026-01-01T00:00:00Z".to_string(),
    ] {
        let (status, body) = get(&e, &bad, "application/json").await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert!(
            !body.contains("sqlx") && !body.contains("panicked"),
            "{body}"
        );
    }
}

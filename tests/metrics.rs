//! `GET /metrics`: off without `CHATTR_METRICS_TOKEN`, only for its bearer, and the figures
//! follow what happens (logins by kind, messages, deliveries, flood refusals, the store).

use serde_json::json;

use crate::common::{Client, TestServer};

const TOKEN: &str = "scrape-token-4b1d";

async fn with_metrics() -> TestServer {
    TestServer::start_with(|c| c.metrics_token = Some(TOKEN.into())).await
}

/// `GET /metrics` with this `Authorization` header: status, content type, body.
async fn scrape(server: &TestServer, authorization: Option<&str>) -> (u16, String, String) {
    let mut req = reqwest::Client::new().get(server.url("/metrics"));
    if let Some(auth) = authorization {
        req = req.header("authorization", auth);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let kind = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, kind, res.text().await.unwrap())
}

/// The sample `series` (a name with its labels) in a scrape; absent is a failure.
fn value(text: &str, series: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.strip_prefix(series).is_some_and(|rest| rest.starts_with(' ')))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"));
    line[series.len()..].trim().parse().unwrap()
}

async fn figures(server: &TestServer) -> String {
    let (status, kind, text) = scrape(server, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 200, "{text}");
    assert!(kind.starts_with("text/plain") && kind.contains("version=0.0.4"), "{kind}");
    text
}

#[tokio::test]
async fn without_a_token_there_are_no_metrics() {
    let server = TestServer::start().await;
    let (status, _, text) = scrape(&server, Some("Bearer anything")).await;
    assert_eq!(status, 404);
    assert!(text.contains("CHATTR_METRICS_TOKEN"), "{text}");
}

#[tokio::test]
async fn only_the_bearer_of_the_token_reads_them() {
    let server = with_metrics().await;
    for refused in
        [None, Some("Bearer wrong"), Some(TOKEN), Some(&*format!("Basic {TOKEN}")), Some("Bearer ")]
    {
        let (status, _, text) = scrape(&server, refused).await;
        assert_eq!(status, 401, "{refused:?}");
        assert!(!text.contains("chattr_"), "{refused:?} read {text}");
    }
    let res = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"chattr metrics\"");
    // The shared secret of the app API is not the metrics token.
    let (status, _, _) = scrape(&server, Some(&format!("Bearer {}", crate::common::SECRET))).await;
    assert_eq!(status, 401);
    figures(&server).await;
}

#[tokio::test]
async fn the_figures_follow_what_happens() {
    let server = TestServer::start_with(|c| {
        c.metrics_token = Some(TOKEN.into());
        c.flood_burst = 3;
        c.flood_rate = 1;
        c.flood_strikes = 10;
    })
    .await;
    let before = figures(&server).await;
    assert_eq!(value(&before, "chattr_sessions"), 0.0);
    assert_eq!(value(&before, "chattr_messages_total"), 0.0);
    assert_eq!(value(&before, "chattr_store_up"), 1.0);

    let [mut alice, mut bob] = server.in_channel("#c", ["alice", "bob"]).await;
    let _carol = server.user("carol").await;
    let mut refused = Client::connect(&server).await;
    refused.send(json!({"type":"auth","token":"ct1.forged"})).await;
    refused.expect_error("auth_failed").await;
    alice.say("#c", "hello").await;
    bob.expect("message").await;

    let after = figures(&server).await;
    assert_eq!(value(&after, "chattr_sessions"), 3.0);
    assert_eq!(value(&after, "chattr_connections"), 3.0);
    assert_eq!(value(&after, "chattr_channels"), 1.0);
    assert_eq!(value(&after, r#"chattr_logins_total{kind="guest"}"#), 2.0);
    assert_eq!(value(&after, r#"chattr_logins_total{kind="token"}"#), 1.0);
    assert_eq!(value(&after, r#"chattr_logins_total{kind="resume"}"#), 0.0);
    assert_eq!(value(&after, r#"chattr_login_refusals_total{code="auth_failed"}"#), 1.0);
    assert_eq!(value(&after, "chattr_messages_total"), 1.0);
    // The message reached bob and came back to alice; welcomes, joins and names count too.
    assert!(value(&after, "chattr_deliveries_total") >= 2.0 + value(&before, "chattr_deliveries_total"));
    assert_eq!(value(&after, "chattr_store_batch_seconds_count"), 1.0);
    assert_eq!(value(&after, "chattr_store_batch_messages_sum"), 1.0);
    assert_eq!(value(&after, "chattr_flood_refusals_total"), 0.0);

    // A flood: refusals, then a disconnect.
    let mut flooder = server.guest("flooder").await;
    let (events, _close) = {
        for i in 0..40 {
            if !flooder.try_say("#nowhere", &format!("spam {i}")).await {
                break;
            }
        }
        flooder.events_until_close().await
    };
    assert!(events.iter().any(|e| e["code"] == "rate_limited"), "{events:?}");
    let flooded = figures(&server).await;
    assert!(value(&flooded, "chattr_flood_refusals_total") >= 1.0);
    assert_eq!(value(&flooded, "chattr_flood_disconnects_total"), 1.0);
}

/// The `chattr_…` names in `text` (a query, a rule).
fn series_in(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("chattr_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.push(name);
    }
    names
}

/// The dashboard (docs/monitoring/grafana-dashboard.json) and the alerting rules
/// (docs/monitoring/prometheus-alerts.yml) query only series a real scrape has, and the
/// dashboard shows every family the server exports. The server scraped is a node of a cluster
/// (of one, on a Redis of its own), which has the cluster's families besides the rest.
#[tokio::test]
async fn the_dashboard_and_the_alerts_ask_for_series_that_exist_and_show_them_all() {
    let redis = crate::cluster::Redis::start().await;
    let server = TestServer::start_with(|c| {
        c.metrics_token = Some(TOKEN.into());
        c.cluster = Some(redis.url());
    })
    .await;
    // A login, a message and a refusal, so the labelled families have samples.
    let [mut alice, mut bob] = server.in_channel("#m", ["alice", "bob"]).await;
    alice.say("#m", "hi").await;
    bob.expect("message").await;
    let mut refused = Client::connect(&server).await;
    refused.send(json!({"type":"auth","token":"ct1.forged"})).await;
    refused.expect_error("auth_failed").await;
    let scrape = figures(&server).await;
    let exported =
        |name: &str| scrape.lines().any(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']));
    let families: Vec<&str> =
        scrape.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).collect();
    assert!(families.len() >= 20, "{scrape}");

    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/monitoring");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{docs}/grafana-dashboard.json")).unwrap())
            .unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let mut queried = Vec::new();
    for panel in panels {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "a panel without a query: {}", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().unwrap();
            let names = series_in(expr);
            assert!(!names.is_empty(), "{expr}");
            queried.extend(names);
        }
    }
    let rules = std::fs::read_to_string(format!("{docs}/prometheus-alerts.yml")).unwrap();
    let alerted: Vec<String> =
        rules.lines().filter_map(|l| l.trim().strip_prefix("expr:")).flat_map(series_in).collect();
    assert!(alerted.len() >= 5, "{rules}");
    for name in queried.iter().chain(&alerted) {
        assert!(exported(name), "{name} is queried but not exported:\n{scrape}");
    }
    for family in families {
        let shows = |q: &String| {
            q.strip_prefix(family)
                .is_some_and(|rest| ["", "_total", "_bucket", "_sum", "_count"].contains(&rest))
        };
        assert!(queried.iter().any(shows), "the dashboard does not show {family}");
    }
}

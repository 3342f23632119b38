//! The app's message filter: accept, reject with a reason, rewrite; and what happens when it
//! does not answer (fail open or closed).

use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::net::TcpListener;

use crate::common::{TestServer, SECRET};

/// A filter that decides by the text: `spam…` is refused, `shout …` is rewritten in capitals,
/// `stall` gets no answer in time, anything else passes. Every request's signature is checked.
async fn decide(headers: HeaderMap, body: String) -> Json<Value> {
    let signature = headers.get("chattr-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let (t, v1) = signature.split_once(",v1=").expect("a signature");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{}.{body}", t.trim_start_matches("t=")).as_bytes());
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(v1, expected, "the filter request is signed");
    let request: Value = serde_json::from_str(&body).unwrap();
    let text = request["text"].as_str().unwrap();
    Json(if text.starts_with("spam") {
        json!({"action":"reject","reason":"no advertising here"})
    } else if let Some(rest) = text.strip_prefix("shout ") {
        json!({"action":"rewrite","text":rest.to_uppercase()})
    } else if text == "stall" {
        tokio::time::sleep(Duration::from_secs(30)).await;
        json!({"action":"accept"})
    } else {
        json!({"action":"accept"})
    })
}

async fn filter_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/filter", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, Router::new().route("/filter", post(decide))).await });
    url
}

#[tokio::test]
async fn the_filter_accepts_rejects_and_rewrites_before_anything_is_stored() {
    let url = filter_url().await;
    let server = TestServer::start_with(|c| {
        c.message_filter_url = Some(url);
        c.message_filter_timeout = Duration::from_millis(300);
    })
    .await;
    let [mut alice, mut bob] = server.in_channel("#c", ["alice", "bob"]).await;

    alice.send(json!({"type":"message","target":"#c","text":"hello","txn":"t1"})).await;
    assert_eq!(bob.expect("message").await["text"], "hello");

    alice.send(json!({"type":"message","target":"#c","text":"spam spam","txn":"t2"})).await;
    let refused = alice.expect_error("message_rejected").await;
    assert_eq!(
        (refused["message"].as_str(), refused["txn"].as_str()),
        (Some("no advertising here"), Some("t2"))
    );

    alice.send(json!({"type":"message","target":"bob","text":"shout quiet please","txn":"t3"})).await;
    assert_eq!(bob.expect("message").await["text"], "QUIET PLEASE");
    let echo = alice.expect("message").await;
    assert_eq!((echo["text"].as_str(), echo["txn"].as_str()), (Some("QUIET PLEASE"), Some("t3")));

    // Fail open (the default): a filter that does not answer in time lets the message through.
    alice.send(json!({"type":"message","target":"#c","text":"stall"})).await;
    assert_eq!(bob.expect("message").await["text"], "stall");

    // Nothing refused was stored.
    bob.send(json!({"type":"history","target":"#c"})).await;
    let texts: Vec<String> = bob.expect("history").await["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["hello", "stall"]);
}

#[tokio::test]
async fn a_filter_that_fails_closed_refuses_what_it_cannot_judge() {
    let url = filter_url().await;
    let server = TestServer::start_with(|c| {
        c.message_filter_url = Some(url);
        c.message_filter_timeout = Duration::from_millis(200);
        c.message_filter_fail = "closed".into();
    })
    .await;
    let [mut alice, mut bob] = server.in_channel("#c", ["alice", "bob"]).await;
    alice.send(json!({"type":"message","target":"#c","text":"stall","txn":"s1"})).await;
    assert_eq!(alice.expect_error("busy").await["txn"], "s1");
    // The same transaction id may be sent again: it was not stored.
    alice.send(json!({"type":"message","target":"#c","text":"ok now","txn":"s1"})).await;
    assert_eq!(bob.expect("message").await["text"], "ok now");
}

//! Webhooks: every event reaches the app's endpoint as a signed JSON POST; failures are tried
//! again and end as dead letters; a stuck endpoint never holds the chat up.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};

use crate::common::{TestServer, SECRET, WAIT};

/// How the test endpoint answers.
#[derive(Clone)]
struct Endpoint {
    /// Each delivery's signature header and body, in the order they came.
    got: mpsc::UnboundedSender<(String, String)>,
    /// Attempts still to refuse with a 500.
    refuse: Arc<Mutex<u32>>,
    /// When set, each request waits for a permit before it is answered.
    gate: Option<Arc<Semaphore>>,
}

async fn receive(State(endpoint): State<Endpoint>, headers: HeaderMap, body: String) -> StatusCode {
    let signature =
        headers.get("chattr-signature").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let _ = endpoint.got.send((signature, body));
    if let Some(gate) = &endpoint.gate {
        let _ = gate.acquire().await.map(|p| p.forget());
    }
    let mut refuse = endpoint.refuse.lock().unwrap();
    if *refuse > 0 {
        *refuse -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::NO_CONTENT
}

/// Starts an endpoint; its URL and what it receives.
pub(crate) async fn endpoint(
    refuse: u32,
    gate: Option<Arc<Semaphore>>,
) -> (String, mpsc::UnboundedReceiver<(String, String)>) {
    let (got, received) = mpsc::unbounded_channel();
    let state = Endpoint { got, refuse: Arc::new(Mutex::new(refuse)), gate };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = Router::new().route("/hook", post(receive)).with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// Checks a delivery's signature as a receiver must, and answers its JSON.
fn verified(signature: &str, body: &str) -> Value {
    let (t, v1) = signature
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("a signature header: {signature:?}"));
    let t: u64 = t.parse().unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert!(now.abs_diff(t) < 300, "a fresh timestamp");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(v1, expected, "signed with the shared secret over t.body");
    serde_json::from_str(body).unwrap()
}

/// The next delivery that is not one of `skip`'s kinds.
pub(crate) async fn next_event(received: &mut mpsc::UnboundedReceiver<(String, String)>) -> Value {
    let (signature, body) =
        tokio::time::timeout(WAIT, received.recv()).await.expect("a delivery in time").unwrap();
    verified(&signature, &body)
}

async fn expect_event(received: &mut mpsc::UnboundedReceiver<(String, String)>, kind: &str) -> Value {
    loop {
        let event = next_event(received).await;
        if event["event"] == kind {
            return event;
        }
    }
}

#[tokio::test]
async fn every_kind_of_event_arrives_signed() {
    let (url, mut received) = endpoint(0, None).await;
    let server = TestServer::start_with(|c| c.webhook_urls = vec![url]).await;
    let mut alice = server.guest("alice").await;
    assert_eq!(expect_event(&mut received, "connect").await["nick"], "alice");
    alice.join("#c").await;
    let join = expect_event(&mut received, "join").await;
    assert_eq!((join["channel"].as_str(), join["nick"].as_str()), (Some("#c"), Some("alice")));
    let mut bob = server.guest("bob").await;
    bob.join("#c").await;
    alice.say("#c", "hello hooks").await;
    let message = expect_event(&mut received, "message").await;
    assert_eq!(
        (message["from"].as_str(), message["target"].as_str(), message["text"].as_str()),
        (Some("alice"), Some("#c"), Some("hello hooks"))
    );
    assert_eq!(message["private"], false);
    assert!(
        message["delivery"].is_string() && message["at"].is_u64() && message["id"].is_u64(),
        "a delivery id and a time: {message}"
    );
    alice.cmd("/topic #c hooked").await;
    assert_eq!(expect_event(&mut received, "topic").await["topic"], "hooked");
    alice.cmd("/ban #c mallory!*@*").await;
    assert_eq!(expect_event(&mut received, "ban").await["mask"], "mallory!*@*");
    alice.cmd("/kick #c bob bye").await;
    let kick = expect_event(&mut received, "kick").await;
    assert_eq!(
        (kick["nick"].as_str(), kick["by"].as_str(), kick["reason"].as_str()),
        (Some("bob"), Some("alice"), Some("bye"))
    );
    bob.cmd("/nick robert").await;
    assert_eq!(expect_event(&mut received, "nick").await["new"], "robert");
    alice.cmd("/part #c later").await;
    assert_eq!(expect_event(&mut received, "part").await["reason"], "later");
    alice.cmd("/potato register correct-horse-battery alice@mail.example").await;
    assert_eq!(expect_event(&mut received, "account_register").await["account"], "potato:alice");
    bob.cmd("/quit gone fishing").await;
    let gone = expect_event(&mut received, "disconnect").await;
    assert_eq!((gone["nick"].as_str(), gone["reason"].as_str()), (Some("robert"), Some("gone fishing")));
}

#[tokio::test]
async fn a_failed_delivery_is_tried_again_and_then_kept_as_a_dead_letter() {
    // The first endpoint refuses twice, then takes it; the second refuses for good.
    let (flaky, mut flaky_received) = endpoint(2, None).await;
    let (dead, mut dead_received) = endpoint(u32::MAX, None).await;
    let server = TestServer::start_with(|c| {
        c.webhook_urls = vec![flaky, dead.clone()];
        c.webhook_backoff = Duration::from_millis(20);
        c.webhook_attempts = 3;
    })
    .await;
    let _alice = server.guest("alice").await;
    let first = next_event(&mut flaky_received).await;
    let second = next_event(&mut flaky_received).await;
    let third = next_event(&mut flaky_received).await;
    assert_eq!(
        (first["delivery"].clone(), second["delivery"].clone()),
        (third["delivery"].clone(), third["delivery"].clone()),
        "the same delivery, tried again"
    );
    for _ in 0..3 {
        assert_eq!(next_event(&mut dead_received).await["event"], "connect");
    }
    let letters = tokio::time::timeout(WAIT, async {
        loop {
            let letters = server.state.dead_webhooks().await;
            if !letters.is_empty() {
                return letters;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("a dead letter");
    assert_eq!((letters[0].0.as_str(), letters[0].2), (dead.as_str(), 3));
    assert_eq!(serde_json::from_str::<Value>(&letters[0].1).unwrap()["event"], "connect");
    // The flaky endpoint's success is counted once its answer is back.
    let counts = tokio::time::timeout(WAIT, async {
        loop {
            let counts = server.state.webhook_counts();
            if counts.0 == 1 {
                return counts;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the retried delivery is counted");
    assert_eq!(counts, (1, 5, 1, 0), "delivered, failed attempts, dead letters, dropped");
}

#[tokio::test]
async fn a_stuck_endpoint_does_not_hold_the_chat_up() {
    let gate = Arc::new(Semaphore::new(0));
    let (url, mut received) = endpoint(0, Some(gate.clone())).await;
    let server = TestServer::start_with(|c| c.webhook_urls = vec![url]).await;
    let [mut alice, mut bob] = server.in_channel("#c", ["alice", "bob"]).await;
    // The endpoint holds its first delivery unanswered; the chat goes on meanwhile.
    let (_, first) = tokio::time::timeout(WAIT, received.recv()).await.unwrap().unwrap();
    assert!(first.contains("\"connect\""));
    for i in 0..50 {
        alice.say("#c", &format!("message {i}")).await;
        assert_eq!(bob.expect("message").await["text"], format!("message {i}"));
    }
    assert!(received.try_recv().is_err(), "the endpoint is still on its first delivery");
    gate.add_permits(10_000);
    // Then everything arrives, in order.
    let mut texts = Vec::new();
    while texts.len() < 50 {
        let event = next_event(&mut received).await;
        if event["event"] == "message" {
            texts.push(event["text"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(texts, (0..50).map(|i| format!("message {i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn webhooks_without_a_secret_to_sign_them_are_refused_at_startup() {
    let mut config = crate::common::test_config();
    config.shared_secret = None;
    config.webhook_urls = vec!["http://127.0.0.1:9/hook".into()];
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let served = tokio::time::timeout(WAIT, chattr::serve(config, listener, std::future::pending()))
        .await
        .expect("refused at startup, not served");
    let error = served.expect_err("refused");
    assert!(error.to_string().contains("CHATTR_SHARED_SECRET"), "{error}");
}

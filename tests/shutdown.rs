//! Shutting down: in-process, and the real `chattrd` binary under SIGTERM, restarted on the
//! same data directory.

use futures::future::join_all;

use crate::common::{TestServer, SECRET};
use crate::process::{connect, tempdir, Process};

#[tokio::test]
async fn shutdown_sends_every_client_a_close_frame_and_serve_returns() {
    let mut server = TestServer::start().await;
    let mut clients = Vec::new();
    for i in 0..20 {
        let mut c = server.guest(&format!("user{i}")).await;
        c.join("#c").await;
        clients.push(c);
    }
    server.stop().await.expect("a clean stop");
    let closes = join_all(clients.iter_mut().map(|c| c.events_until_close())).await;
    for (events, close) in closes {
        // Nobody is told that everyone else left: the whole server is going.
        assert!(!events.iter().any(|e| e["type"] == "quit"), "{events:?}");
        let close = close.expect("a close frame");
        assert_eq!(u16::from(close.code), 1001);
        assert_eq!(close.reason.as_str(), "shutting_down");
    }
}

#[tokio::test]
async fn sigterm_drains_clients_exits_zero_and_the_data_dir_reopens() {
    let dir = tempdir();
    let mut first = Process::start(&dir).await.expect("first start");
    let chosen = "survives-a-restart-0123456789";
    let res = reqwest::get(first.url(&format!("/gettoken/alice/{chosen}/{SECRET}"))).await.unwrap();
    assert_eq!(res.status(), 200);

    // A second process on the same directory fails fast with a clear message.
    let second = Process::start(&dir).await.err().expect("a second process must not start");
    assert!(second.contains("in use by another chattrd process"), "{second}");

    let mut clients = Vec::new();
    for i in 0..50 {
        clients.push(connect(&first.addr, &format!("u{i}")).await);
    }
    let status = first.terminate().await;
    assert_eq!(status.code(), Some(0), "a clean exit");
    let closes = join_all(clients.iter_mut().map(|c| c.expect_close())).await;
    for close in closes {
        assert_eq!(close.map(|c| u16::from(c.code)), Some(1001));
    }

    // An immediate restart works and still knows the stored token.
    let restarted = Process::start(&dir).await.expect("restart");
    let user = reqwest::get(restarted.url(&format!("/getuser/{chosen}"))).await.unwrap();
    assert_eq!(user.text().await.unwrap(), "alice");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A message the server stored while it was shutting down is acknowledged to its sender before
/// the close frame: a client never has to resend (and so duplicate) what was stored.
#[tokio::test]
async fn every_message_stored_during_a_shutdown_is_acknowledged_before_the_close() {
    use serde_json::json;

    for round in 0..10 {
        let mut server = TestServer::start().await;
        let mut alice = server.guest("alice").await;
        alice.join("#r").await;
        // A stream of messages, the server stopping in the middle of it (after the first
        // echo): one is being stored when the stop comes.
        for i in 0..40 {
            alice.send(json!({"type":"message","target":"#r","text":format!("warm-up {i}"),"txn":format!("w{i}")})).await;
        }
        let first = alice.expect("message").await;
        server.stop().await.expect("a clean stop");
        let (mut events, close) = alice.events_until_close().await;
        events.insert(0, first);
        assert_eq!(close.expect("a close frame").reason.as_str(), "shutting_down");
        let echoed: Vec<&str> = events.iter().filter_map(|e| e["txn"].as_str()).collect();
        let stored = server.state.stored_texts("#r", 50).await;
        assert!(!stored.is_empty());
        for (i, text) in stored.iter().enumerate() {
            let txn = format!("w{i}");
            assert!(
                echoed.contains(&txn.as_str()),
                "round {round}: {text:?} stored but not acknowledged: {events:?}"
            );
        }
    }
}

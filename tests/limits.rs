//! Limits and robustness: frame caps, flood control, slow consumers, timeouts, and garbage
//! input that must never take the server down.

use std::time::Duration;

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{Client, TestServer};

#[tokio::test]
async fn an_oversized_frame_closes_only_that_connection() {
    let server = TestServer::start_with(|c| c.max_frame_bytes = 4096).await;
    let mut alice = server.guest("alice").await;
    let mut bob = server.guest("bob").await;
    alice.join("#c").await;
    bob.join("#c").await;
    let huge = json!({"type":"message","target":"#c","text":"x".repeat(8192)});
    bob.send(huge).await;
    let frame = bob.expect_close().await.expect("a close frame");
    assert_eq!((u16::from(frame.code), frame.reason.as_str()), (1009, "too_big"));
    let quit = alice.expect("quit").await;
    assert_eq!(quit["nick"], "bob");
    alice.assert_no("message").await;
    // The server carries on.
    server.guest("carol").await;
}

#[tokio::test]
async fn a_burst_is_allowed_then_excess_is_refused_and_sustained_flooding_disconnects() {
    let server = TestServer::start_with(|c| {
        c.flood_burst = 5;
        c.flood_rate = 1;
        c.flood_strikes = 10;
    })
    .await;
    let mut alice = server.guest("alice").await;
    let mut watcher = server.guest("watcher").await;
    alice.join("#c").await;
    watcher.join("#c").await;
    // The burst of five passes (the join above used one).
    for i in 0..4 {
        alice.say("#c", &format!("burst {i}")).await;
    }
    for i in 0..4 {
        assert_eq!(watcher.expect("message").await["text"], format!("burst {i}"));
    }
    alice.say("#c", "one too many").await;
    alice.expect_error("rate_limited").await;
    // Keep pushing: after ten refusals the connection is dropped.
    for _ in 0..20 {
        if !alice.try_say("#c", "flood").await {
            break;
        }
    }
    let (events, close) = alice.events_until_close().await;
    assert!(events.iter().any(|e| e["code"] == "flood"), "{events:?}");
    assert_eq!(close.map(|c| c.reason.to_string()).as_deref(), Some("flood"));
    let quit = watcher.expect("quit").await;
    assert_eq!(quit["reason"], "flooding");
    // Nothing past the burst reached the channel.
    let seen = watcher.drain().await;
    assert!(!seen.iter().any(|e| e["type"] == "message"), "{seen:?}");
}

#[tokio::test]
async fn a_client_that_does_not_read_is_dropped_and_others_get_every_message() {
    let server = TestServer::start_with(|c| c.send_queue = 16).await;
    let mut sender = server.guest("sender").await;
    let mut reader = server.guest("reader").await;
    let mut sleeper = server.guest("sleeper").await;
    sender.join("#busy").await;
    reader.join("#busy").await;
    sleeper.join("#busy").await;
    sender.expect("joined").await;
    sender.expect("joined").await;
    reader.expect("joined").await;
    // From here on `sleeper` never reads. Each message is ~3.9 KB; the kernel buffers fill,
    // then sleeper's queue of 16, and the server must drop it rather than wait.
    let text = "z".repeat(3900);
    let mut sent = 0u32;
    let dropped = loop {
        assert!(sent < 20_000, "the slow consumer was never dropped");
        sender.say("#busy", &text).await;
        sent += 1;
        let event = sender.next_event().await;
        if event["type"] == "quit" {
            break event;
        }
        assert_eq!(event["type"], "message");
        let got = reader.expect("message").await;
        assert_eq!(got["id"], event["id"], "the reader gets every message in order");
    };
    assert_eq!(dropped["nick"], "sleeper");
    assert_eq!(dropped["reason"], "connection too slow");
    let last = reader.expect("quit").await;
    assert_eq!(last["nick"], "sleeper");
    drop(sleeper);
}

#[tokio::test]
async fn a_connection_that_never_authenticates_times_out() {
    let server = TestServer::start_with(|c| c.auth_timeout = Duration::from_millis(200)).await;
    let mut c = Client::connect(&server).await;
    let (events, close) = c.events_until_close().await;
    assert_eq!(events[0]["code"], "timeout");
    assert_eq!(close.map(|c| c.reason.to_string()).as_deref(), Some("timeout"));
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_dropped() {
    let server = TestServer::start_with(|c| {
        c.ping_interval = Duration::from_millis(100);
        c.ping_timeout = Duration::from_millis(200);
        // A client that stopped answering may come back: its session is held this long first.
        c.resume_grace = Duration::from_millis(200);
    })
    .await;
    let mut watcher = server.guest("watcher").await;
    let mut silent = server.guest("silent").await;
    watcher.join("#c").await;
    silent.join("#c").await;
    // `silent` stops reading, so its client never answers the server's pings. `watcher` keeps
    // reading (and so answering pings) and sees `silent` dropped.
    let quit = watcher.expect("quit").await;
    assert_eq!(quit["nick"], "silent");
    assert_eq!(quit["reason"], "ping timeout");
    drop(silent);
    // The watcher, which answers pings, stays connected.
    watcher.drain().await;
}

#[tokio::test]
async fn a_client_that_sends_nothing_is_dropped_after_the_idle_timeout() {
    let server = TestServer::start_with(|c| c.idle_timeout = Duration::from_millis(300)).await;
    let mut watcher = server.guest("watcher").await;
    let mut idler = server.guest("idler").await;
    idler.join("#c").await;
    watcher.join("#c").await;
    // The watcher keeps talking (each drain sends a ping frame), the idler says nothing.
    let quit = loop {
        let events = watcher.drain().await;
        if let Some(q) = events.into_iter().find(|e| e["type"] == "quit") {
            break q;
        }
    };
    assert_eq!(quit["nick"], "idler");
    assert_eq!(quit["reason"], "idle timeout");
    let (events, close) = idler.events_until_close().await;
    assert!(events.iter().any(|e| e["code"] == "timeout"));
    assert_eq!(close.map(|c| c.reason.to_string()).as_deref(), Some("timeout"));
}

#[tokio::test]
async fn garbage_input_gets_errors_and_never_breaks_the_server() {
    let server = TestServer::start().await;
    let mut c = server.guest("fuzzer").await;
    let garbage = [
        "",
        "{",
        "}",
        "[]",
        "null",
        "42",
        "\"str\"",
        r#"{"type":7}"#,
        r#"{"type":"message"}"#,
        r#"{"type":"message","target":null,"text":"x"}"#,
        r#"{"type":"command","line":42}"#,
        r#"{"type":"command","line":""}"#,
        r#"{"type":"command","line":"/"}"#,
        r#"{"type":"command","line":"/join"}"#,
        r#"{"type":"command","line":"/mode #x +++---"}"#,
        r#"{"type":"command","line":"/kick"}"#,
        r#"{"type":"command","line":"/ban # *"}"#,
        r#"{"type":"message","target":"","text":"x"}"#,
        r##"{"type":"message","target":"#","text":"x"}"##,
        r#"{"type":"auth","nick":"again"}"#,
        "\u{0}\u{1}\u{2}",
        "{\"type\":\"message\",\"target\":\"#c\",\"text\":\"\\ud800\"}",
        // Commands as data skip the parser's checks: the core's must hold on their own.
        r##"{"type":"run"}"##,
        r##"{"type":"run","command":{"command":"fly"}}"##,
        r##"{"type":"run","command":{"command":"join","channel":""}}"##,
        r##"{"type":"run","command":{"command":"join","channel":"# spaced out"}}"##,
        r##"{"type":"run","command":{"command":"mode","channel":"#x","modes":"","args":[]}}"##,
        r##"{"type":"run","command":{"command":"mode","channel":"#x","modes":"zq","args":[]}}"##,
        r##"{"type":"run","command":{"command":"nick","nick":"two words"}}"##,
        r##"{"type":"run","command":{"command":"msg","target":"","text":""}}"##,
        r##"{"type":"run","command":{"command":"kick","channel":"#x","nick":""}}"##,
        r##"{"type":"run","command":{"command":"ban","channel":"#x","mask":"a b"}}"##,
        r##"{"type":"run","command":{"command":"away","message":"bell\u0007"}}"##,
        r##"{"type":"run","command":{"command":"potato","request":{"action":"register","nick":"not me","password":"x","email":"e"}}}"##,
        r##"{"type":"run","command":{"command":"potato","request":{"action":"identify","password":""}}}"##,
        r##"{"type":"run","command":{"command":"celery","request":{"action":"op","channel":"","account":""}}}"##,
    ];
    for g in garbage {
        c.send_raw(Message::Text(g.into())).await;
        let event = c.expect("error").await;
        assert!(event["code"].is_string(), "{g}: {event}");
    }
    c.send_raw(Message::Binary(vec![0, 159, 146, 150].into())).await;
    c.expect_error("invalid_frame").await;
    // Still connected and served.
    c.join("#still-here").await;
    server.guest("another").await;
}

#[tokio::test]
async fn binary_frames_and_websocket_pings_count_against_flood_control() {
    let server = TestServer::start_with(|c| {
        c.flood_burst = 5;
        c.flood_rate = 1;
        c.flood_strikes = 10;
        c.auth_timeout = Duration::from_secs(60);
    })
    .await;
    let mut watcher = server.guest("watcher").await;
    watcher.join("#c").await;
    // Binary frames are refused, and a stream of them is flooding like any other.
    let mut binary = server.guest("binary").await;
    binary.join("#c").await;
    for _ in 0..1000 {
        if !binary.try_send(Message::Binary(vec![0; 1024].into())).await {
            break;
        }
    }
    let (events, close) = binary.events_until_close().await;
    assert!(events.iter().any(|e| e["code"] == "flood"), "{events:?}");
    assert_eq!(close.map(|c| c.reason.to_string()).as_deref(), Some("flood"));
    assert_eq!(watcher.expect("quit").await["reason"], "flooding");
    // So are WebSocket pings, before and after login. (A client that floods may not get to
    // read its close frame: the server closes with its frames unread, which resets the
    // connection. What counts is that it is dropped, for flooding.)
    let mut pinger = server.guest("pinger").await;
    pinger.join("#c").await;
    assert_eq!(watcher.expect("joined").await["nick"], "pinger");
    for _ in 0..1000 {
        if !pinger.try_send(Message::Ping(vec![1].into())).await {
            break;
        }
    }
    let quit = watcher.expect("quit").await;
    assert_eq!((quit["nick"].as_str(), quit["reason"].as_str()), (Some("pinger"), Some("flooding")));
    let mut anonymous = Client::connect(&server).await;
    for _ in 0..1000 {
        if !anonymous.try_send(Message::Ping(vec![1].into())).await {
            break;
        }
    }
    // Dropped long before the (one minute) auth timeout.
    let (_, close) = anonymous.events_until_close().await;
    if let Some(close) = close {
        assert_eq!(close.reason.as_str(), "flood");
    }
}

#[tokio::test]
async fn clients_that_ask_for_big_pages_and_never_read_are_dropped_by_the_bytes_they_hold() {
    let server = TestServer::start_with(|c| c.send_queue_bytes = 256 * 1024).await;
    let mut writer = server.guest("writer").await;
    writer.join("#big").await;
    let text = "y".repeat(3000);
    for _ in 0..100 {
        writer.say("#big", &text).await;
        writer.expect("message").await;
    }
    let mut hoarders = Vec::new();
    for i in 0..3 {
        let mut c = server.guest(&format!("hoarder{i}")).await;
        c.join("#big").await;
        writer.expect("joined").await;
        hoarders.push(c);
    }
    // Each page is ~300 KB. A page is always accepted into an empty queue; once the socket
    // is full and more wait, the connection is dropped — long before 1024 pages (300 MB) of
    // a count-only bound.
    for c in &mut hoarders {
        for _ in 0..60 {
            if !c
                .try_send(Message::Text(
                    json!({"type":"history","target":"#big","limit":100}).to_string().into(),
                ))
                .await
            {
                break;
            }
        }
    }
    let mut dropped = Vec::new();
    while dropped.len() < 3 {
        let quit = writer.expect("quit").await;
        assert_eq!(quit["reason"], "connection too slow", "{quit}");
        dropped.push(quit["nick"].as_str().unwrap().to_owned());
    }
    dropped.sort();
    assert_eq!(dropped, ["hoarder0", "hoarder1", "hoarder2"]);
    drop(hoarders);
    // The writer still gets its pages, and the queued bytes went back to the budget.
    writer.send(json!({"type":"history","target":"#big","limit":100})).await;
    assert_eq!(writer.expect("history").await["messages"].as_array().unwrap().len(), 100);
    assert!(server.state.queued_bytes() < 1024 * 1024);
}

//! Message history: the last messages on join, paging back, and private conversations that
//! only their two parties can read.

use serde_json::{json, Value};

use crate::common::{Client, TestServer};

fn ids(history: &Value) -> Vec<u64> {
    history["messages"].as_array().unwrap().iter().map(|m| m["id"].as_u64().unwrap()).collect()
}

fn texts(history: &Value) -> Vec<String> {
    history["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect()
}

async fn say_all(c: &mut Client, target: &str, texts: impl IntoIterator<Item = String>) {
    for text in texts {
        c.say(target, &text).await;
        c.expect("message").await;
    }
}

#[tokio::test]
async fn joiners_get_the_last_messages_before_live_traffic_and_can_page_back() {
    let server = TestServer::start_with(|c| c.history_on_join = 5).await;
    let mut alice = server.guest("alice").await;
    alice.cmd("/join #h").await;
    let empty = alice.expect("history").await;
    assert_eq!((ids(&empty).len(), empty["more"].as_bool()), (0, Some(false)));
    say_all(&mut alice, "#h", (1..=8).map(|i| format!("m{i}"))).await;

    let mut bob = server.guest("bob").await;
    bob.cmd("/join #h").await;
    let events = bob.drain().await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["joined", "members", "registration", "history"],
        "history right after the channel's state"
    );
    let history = &events[3];
    assert_eq!(history["target"], "#h");
    assert_eq!(texts(history), ["m4", "m5", "m6", "m7", "m8"]);
    assert_eq!(history["more"], true);
    let oldest = ids(history)[0];

    bob.send(json!({"type":"history","target":"#H","before":oldest,"limit":2})).await;
    let page = bob.expect("history").await;
    assert_eq!(texts(&page), ["m2", "m3"]);
    assert_eq!(page["more"], true);
    bob.send(json!({"type":"history","target":"#h","before":ids(&page)[0],"limit":0})).await;
    bob.expect_error("bad_arguments").await;
    bob.send(json!({"type":"history","target":"#h","before":ids(&page)[0],"limit":100})).await;
    let rest = bob.expect("history").await;
    assert_eq!((texts(&rest), rest["more"].as_bool()), (vec!["m1".to_owned()], Some(false)));

    // Live traffic after the history.
    alice.say("#h", "live").await;
    assert_eq!(bob.expect("message").await["text"], "live");
    // Only members read a channel's history.
    let mut carol = server.guest("carol").await;
    carol.send(json!({"type":"history","target":"#h"})).await;
    carol.expect_error("not_on_channel").await;
}

#[tokio::test]
async fn history_outlives_an_empty_channel() {
    let server = TestServer::start_with(|c| c.history_on_join = 3).await;
    let mut alice = server.guest("alice").await;
    alice.join("#gone").await;
    say_all(&mut alice, "#gone", ["a", "b", "c", "d"].map(String::from)).await;
    alice.send(json!({"type":"command","line":"/me waves","target":"#gone"})).await;
    alice.expect("message").await;
    alice.cmd("/part #gone").await;
    alice.expect("parted").await;

    let mut bob = server.guest("bob").await;
    bob.cmd("/join #gone").await;
    let history = bob.expect("history").await;
    assert_eq!(texts(&history), ["c", "d", "waves"]);
    assert_eq!(history["messages"][2]["action"], true);
    assert_eq!(history["messages"][2]["from"], "alice");
}

#[tokio::test]
async fn private_messages_are_only_ever_shown_to_their_two_parties() {
    let server = TestServer::start().await;
    let mut alice = server.guest("alice").await;
    let mut bob = server.guest("bob").await;
    let mut carol = server.guest("carol").await;
    alice.say("bob", "secret for bob").await;
    alice.expect("message").await;
    bob.expect("message").await;
    bob.say("alice", "secret reply").await;
    bob.expect("message").await;

    alice.send(json!({"type":"history","target":"bob"})).await;
    assert_eq!(texts(&alice.expect("history").await), ["secret for bob", "secret reply"]);
    bob.send(json!({"type":"history","target":"ALICE"})).await;
    assert_eq!(texts(&bob.expect("history").await), ["secret for bob", "secret reply"]);
    for other in ["alice", "bob"] {
        carol.send(json!({"type":"history","target":other})).await;
        assert!(ids(&carol.expect("history").await).is_empty(), "carol reads nothing with {other}");
    }

    // A later guest on bob's nick is someone else: the conversation is not theirs.
    bob.cmd("/quit").await;
    bob.expect_close().await;
    let mut new_bob = server.guest("bob").await;
    new_bob.send(json!({"type":"history","target":"alice"})).await;
    assert!(ids(&new_bob.expect("history").await).is_empty());
}

#[tokio::test]
async fn identified_users_read_their_private_history_from_a_new_session() {
    let server = TestServer::start().await;
    let pw = "a-long-enough-password";
    let mut alice = server.guest("alice").await;
    alice.register(pw).await;
    let mut bob = server.guest("bob").await;
    bob.register(pw).await;
    alice.say("bob", "kept for us").await;
    bob.expect("message").await;
    bob.cmd("/quit").await;
    bob.expect_close().await;

    // Offline but registered: alice still reads the conversation.
    alice.send(json!({"type":"history","target":"bob"})).await;
    assert_eq!(texts(&alice.expect("history").await), ["kept for us"]);
    let mut again = server.guest("someone").await;
    again.send(json!({"type":"history","target":"alice"})).await;
    assert!(ids(&again.expect("history").await).is_empty(), "not before identifying");
    again.identify("bob", pw).await;
    again.send(json!({"type":"history","target":"alice"})).await;
    assert_eq!(texts(&again.expect("history").await), ["kept for us"]);
    again.send(json!({"type":"history","target":"nobody-at-all"})).await;
    again.expect_error("no_such_nick").await;
}

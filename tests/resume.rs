//! Sessions outliving their connection: resuming with the `welcome`'s secret, the grace after
//! a drop, taking over a connection still open, and transaction ids that make a resent
//! message count once.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{member, Client, TestServer};

/// Logs in with `auth` and returns the client with its `welcome`.
async fn login(server: &TestServer, auth: Value) -> (Client, Value) {
    let mut c = Client::connect(server).await;
    c.send(auth).await;
    let welcome = c.expect("welcome").await;
    c.nick = welcome["nick"].as_str().unwrap().to_owned();
    (c, welcome)
}

fn secret(welcome: &Value) -> String {
    let secret = welcome["resume"].as_str().expect("every welcome has a resume secret");
    assert!(secret.len() >= 32, "a long random secret: {secret}");
    secret.to_owned()
}

/// Waits until the server holds `n` sessions (it noticed the dropped connections).
async fn until_held(server: &TestServer, n: usize) {
    tokio::time::timeout(Duration::from_secs(5), async {
        while server.state.held_sessions() != n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} sessions held, not {n}", server.state.held_sessions()));
}

#[tokio::test]
async fn a_dropped_guest_resumes_with_nick_channels_roles_missed_events_and_private_history() {
    let server = TestServer::start_with(|c| c.resume_grace = Duration::from_secs(30)).await;
    let (mut alice, welcome) = login(&server, json!({"type":"auth","nick":"alice"})).await;
    assert!(welcome.get("resumed").is_none(), "a fresh login is not a resumed one");
    alice.join("#r").await;
    alice.cmd("/topic #r the resumable room").await;
    alice.expect("topic").await;
    let mut bob = server.guest("bob").await;
    bob.join("#r").await;
    bob.say("alice", "a pm before the drop").await;
    bob.expect("message").await;
    alice.expect("message").await;
    let before = secret(&welcome);

    drop(alice);
    until_held(&server, 1).await;
    bob.say("#r", "while you were away").await;
    bob.say("alice", "psst").await;
    // Nobody sees the drop.
    let seen = bob.drain().await;
    assert!(!seen.iter().any(|e| e["type"] == "quit"), "no quit for a held session: {seen:?}");

    // The nick is still taken while held.
    let mut other = Client::connect(&server).await;
    other.send(json!({"type":"auth","nick":"alice"})).await;
    other.expect_error("nick_in_use").await;

    let (mut alice, welcome) =
        login(&server, json!({"type":"auth","nick":"someone_else","resume":before})).await;
    assert_eq!(welcome["resumed"], true);
    assert_eq!(welcome["nick"], "alice", "the session's nick, not the fallback's");
    assert_eq!(welcome["channels"], json!(["#r"]), "the channels it is still in");
    assert_eq!(secret(&welcome), before, "the secret is the session's, for its whole life");
    // What was missed comes first, in order, then the channel's state.
    let events = alice.drain().await;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds, ["message", "message", "topic", "members", "registration", "history"], "{events:?}");
    assert_eq!(events[0]["text"], "while you were away");
    assert_eq!((events[1]["text"].as_str(), events[1]["from"].as_str()), (Some("psst"), Some("bob")));
    assert_eq!(events[2]["topic"], "the resumable room");
    assert_eq!(member(&events[3], "alice").expect("still in #r")["op"], true, "roles kept");
    // Still in the channel: saying something works without a join, and bob sees no join.
    alice.say("#r", "back").await;
    assert_eq!(bob.expect("message").await["text"], "back");
    let seen = bob.drain().await;
    assert!(!seen.iter().any(|e| e["type"] == "joined" || e["type"] == "quit"), "{seen:?}");
    // A guest's private history is the session's: still there after the resume.
    alice.send(json!({"type":"history","target":"bob"})).await;
    let history = alice.expect("history").await;
    let texts: Vec<&str> =
        history["messages"].as_array().unwrap().iter().filter_map(|m| m["text"].as_str()).collect();
    assert_eq!(texts, ["a pm before the drop", "psst"]);
}

#[tokio::test]
async fn a_session_not_resumed_within_the_grace_quits_and_its_secret_no_longer_works() {
    let server = TestServer::start_with(|c| c.resume_grace = Duration::from_millis(300)).await;
    let (mut alice, welcome) = login(&server, json!({"type":"auth","nick":"alice"})).await;
    alice.join("#r").await;
    let mut bob = server.guest("bob").await;
    bob.join("#r").await;
    drop(alice);
    let quit = bob.expect("quit").await;
    assert_eq!(quit["nick"], "alice");
    // The test drops its socket without a closing handshake.
    assert_eq!(quit["reason"], "connection error");
    assert_eq!(server.state.held_sessions(), 0);

    // `resume` alone fails and closes; with a nick it logs in afresh.
    let mut c = Client::connect(&server).await;
    c.send(json!({"type":"auth","resume":secret(&welcome)})).await;
    c.expect_error("resume_failed").await;
    let close = c.expect_close().await.expect("a close frame");
    assert_eq!(close.reason.as_str(), "resume_failed");
    let (mut alice, welcome) =
        login(&server, json!({"type":"auth","nick":"alice","resume":secret(&welcome)})).await;
    assert!(welcome.get("resumed").is_none());
    assert_eq!(welcome["nick"], "alice");
    alice.say("#r", "hi").await;
    alice.expect_error("not_on_channel").await;
}

#[tokio::test]
async fn resuming_takes_over_a_connection_that_is_still_open() {
    let server = TestServer::start_with(|c| c.resume_grace = Duration::from_secs(30)).await;
    let (mut first, welcome) = login(&server, json!({"type":"auth","nick":"alice"})).await;
    first.join("#r").await;
    let mut bob = server.guest("bob").await;
    bob.join("#r").await;
    let (mut second, welcome) =
        login(&server, json!({"type":"auth","nick":"alice","resume":secret(&welcome)})).await;
    assert_eq!(welcome["resumed"], true);
    let close = first.expect_close().await.expect("a close frame");
    assert_eq!(close.reason.as_str(), "session_replaced");
    second.expect("members").await;
    second.say("#r", "from the new tab").await;
    assert_eq!(bob.expect("message").await["text"], "from the new tab");
    let seen = bob.drain().await;
    assert!(!seen.iter().any(|e| e["type"] == "quit" || e["type"] == "joined"), "{seen:?}");
    // The replaced connection ending does not end the session.
    assert_eq!(server.state.held_sessions(), 0);
    second.say("#r", "still here").await;
    assert_eq!(bob.expect("message").await["text"], "still here");
}

#[tokio::test]
async fn quitting_ghosting_and_revoking_end_a_session_at_once() {
    let server = TestServer::start_with(|c| c.resume_grace = Duration::from_secs(30)).await;
    let mut bob = server.guest("bob").await;
    bob.join("#r").await;

    // `/quit` is not held.
    let (mut alice, welcome) = login(&server, json!({"type":"auth","nick":"alice"})).await;
    alice.join("#r").await;
    alice.cmd("/quit bye").await;
    assert_eq!(bob.expect("quit").await["reason"], "bye");
    let mut c = Client::connect(&server).await;
    c.send(json!({"type":"auth","resume":secret(&welcome)})).await;
    c.expect_error("resume_failed").await;

    drop(c);

    // The owner of a registered nick can disconnect a held session on it.
    let (mut carol, _) = login(&server, json!({"type":"auth","nick":"carol"})).await;
    carol.register("carrot-cake-9").await;
    carol.join("#r").await;
    bob.expect("joined").await;
    drop(carol);
    until_held(&server, 1).await;
    let mut owner = server.guest("carol_2").await;
    owner.cmd("/potato disconnect carol carrot-cake-9").await;
    assert!(owner.notice("Potato").await.contains("carol was disconnected"));
    let quit = bob.expect("quit").await;
    assert_eq!(
        (quit["nick"].as_str(), quit["reason"].as_str()),
        (Some("carol"), Some("disconnected by the owner of the nick"))
    );
    until_held(&server, 0).await;

    // An app revoking its user ends a held session of theirs.
    let token = server.token("erin").await;
    let (mut erin, _) = login(&server, json!({"type":"auth","token":token})).await;
    erin.join("#r").await;
    bob.expect("joined").await;
    drop(erin);
    until_held(&server, 1).await;
    let auth = format!("Bearer {}", crate::common::SECRET);
    let (status, _) = server.post_api("/api/revoke", Some(&auth), r#"{"user":"erin"}"#).await;
    assert_eq!(status, 200);
    let quit = bob.expect("quit").await;
    assert_eq!((quit["nick"].as_str(), quit["reason"].as_str()), (Some("erin"), Some("login revoked")));
    until_held(&server, 0).await;
}

#[tokio::test]
async fn a_resent_transaction_is_acknowledged_again_and_never_delivered_twice() {
    let server = TestServer::start_with(|c| c.resume_grace = Duration::from_secs(30)).await;
    let (mut alice, welcome) = login(&server, json!({"type":"auth","nick":"alice"})).await;
    alice.join("#r").await;
    let mut bob = server.guest("bob").await;
    bob.join("#r").await;
    let frame = json!({"type":"message","target":"#r","text":"exactly once","txn":"page1-1"});
    alice.send(frame.clone()).await;
    let echo = alice.expect("message").await;
    assert_eq!(echo["txn"], "page1-1", "the sender's echo carries its txn");
    let delivered = bob.expect("message").await;
    assert!(delivered.get("txn").is_none(), "others never see it: {delivered}");
    assert_eq!(delivered["id"], echo["id"]);

    // The connection drops before the client saw the echo; it resumes and sends again.
    drop(alice);
    until_held(&server, 1).await;
    let (mut alice, _) =
        login(&server, json!({"type":"auth","nick":"alice","resume":secret(&welcome)})).await;
    drop(alice.drain().await);
    alice.send(frame).await;
    let again = alice.expect("message").await;
    assert_eq!((&again["id"], &again["txn"]), (&echo["id"], &echo["txn"]), "the same echo");
    bob.assert_no("message").await;
    alice.send(json!({"type":"history","target":"#r"})).await;
    let history = alice.expect("history").await;
    let stored =
        history["messages"].as_array().unwrap().iter().filter(|m| m["text"] == "exactly once").count();
    assert_eq!(stored, 1);

    // `/me` as a command carries it too; errors about a frame carry its txn.
    alice.send(json!({"type":"command","line":"/me waves","target":"#r","txn":"page1-2"})).await;
    let action = alice.expect("message").await;
    assert_eq!((action["action"].as_bool(), action["txn"].as_str()), (Some(true), Some("page1-2")));
    assert_eq!(bob.expect("message").await["text"], "waves");
    alice.send(json!({"type":"message","target":"#nowhere","text":"hi","txn":"page1-3"})).await;
    let error = alice.expect_error("no_such_channel").await;
    assert_eq!(error["txn"], "page1-3");
    for bad in ["", "has space", "é", &"x".repeat(65)] {
        alice.send(json!({"type":"message","target":"#r","text":"hi","txn":bad})).await;
        let error = alice.expect_error("invalid_frame").await;
        assert!(error.get("txn").is_none(), "an invalid txn is not echoed: {error}");
    }
    bob.assert_no("message").await;
}

#[tokio::test]
async fn one_address_holds_only_so_many_sessions_and_the_longest_held_goes_first() {
    let server = TestServer::start_with(|c| {
        c.resume_grace = Duration::from_secs(30);
        c.max_conns_per_ip = 2;
        c.conn_rate_per_ip = 0;
    })
    .await;
    let mut bob = server.guest("bob").await;
    bob.join("#r").await;
    for (n, nick) in ["first", "second", "third"].into_iter().enumerate() {
        let (mut c, _) = login(&server, json!({"type":"auth","nick":nick})).await;
        c.join("#r").await;
        bob.expect("joined").await;
        drop(c);
        until_held(&server, (n + 1).min(2)).await;
    }
    let quit = bob.expect("quit").await;
    assert_eq!(quit["nick"], "first");
    bob.assert_no("quit").await;
    assert_eq!(server.state.held_sessions(), 2);
}

#[tokio::test]
async fn a_resume_cut_off_before_its_welcome_can_be_tried_again() {
    let server = TestServer::start_with(|c| c.resume_grace = Duration::from_secs(30)).await;
    let (alice, welcome) = login(&server, json!({"type":"auth","nick":"alice"})).await;
    drop(alice);
    until_held(&server, 1).await;
    for _ in 0..3 {
        // The connection dies right after asking, its welcome unread.
        let mut c = Client::connect(&server).await;
        c.send(json!({"type":"auth","resume":secret(&welcome)})).await;
        drop(c);
        until_held(&server, 1).await;
    }
    let (_alice, again) = login(&server, json!({"type":"auth","resume":secret(&welcome)})).await;
    assert_eq!((again["resumed"].as_bool(), again["nick"].as_str()), (Some(true), Some("alice")));
}

#[tokio::test]
async fn ghosting_or_revoking_a_connected_session_ends_it_at_once_and_its_secret_with_it() {
    let server = TestServer::start_with(|c| c.resume_grace = Duration::from_secs(30)).await;
    let token = server.token("erin").await;
    let (mut erin, welcome) = login(&server, json!({"type":"auth","token":token})).await;
    erin.join("#r").await;
    // Its reader busy with a password check while the revoke comes.
    erin.cmd("/potato identify nobody some-password-1").await;
    let auth = format!("Bearer {}", crate::common::SECRET);
    let (status, _) = server.post_api("/api/revoke", Some(&auth), r#"{"user":"erin"}"#).await;
    assert_eq!(status, 200);
    // Before the old connection has even been closed, the secret is dead.
    let mut c = Client::connect(&server).await;
    c.send(json!({"type":"auth","resume":secret(&welcome)})).await;
    c.expect_error("resume_failed").await;
    assert_eq!(erin.expect_close().await.map(|c| c.reason.to_string()).as_deref(), Some("token_revoked"));

    let (mut carol, welcome) = login(&server, json!({"type":"auth","nick":"carol"})).await;
    carol.register("carrot-cake-9").await;
    let mut owner = server.guest("carol_2").await;
    carol.cmd("/potato identify nobody some-password-1").await;
    owner.cmd("/potato disconnect carol carrot-cake-9").await;
    assert!(owner.notice("Potato").await.contains("carol was disconnected"));
    let mut c = Client::connect(&server).await;
    c.send(json!({"type":"auth","resume":secret(&welcome)})).await;
    c.expect_error("resume_failed").await;
    assert_eq!(server.state.held_sessions(), 0);
}

#[tokio::test]
async fn a_connection_reset_with_messages_in_flight_is_held_not_ended() {
    let server = TestServer::start_with(|c| c.resume_grace = Duration::from_secs(30)).await;
    let mut bob = server.guest("bob").await;
    bob.join("#r").await;
    for round in 0..10 {
        let nick = format!("flaky{round}");
        let (mut c, welcome) = login(&server, json!({"type":"auth","nick":nick})).await;
        c.join("#r").await;
        for i in 0..3 {
            c.send(
                json!({"type":"message","target":"#r","text":format!("{nick} {i}"),"txn":format!("t{i}")}),
            )
            .await;
        }
        drop(c);
        until_held(&server, 1).await;
        let (mut c, again) = login(&server, json!({"type":"auth","resume":secret(&welcome)})).await;
        assert_eq!(again["resumed"], true, "round {round}");
        c.cmd("/quit").await;
        let quit = bob.expect("quit").await;
        assert_eq!((quit["nick"].as_str(), quit["reason"].as_str()), (Some(nick.as_str()), Some("quit")));
    }
}

#[tokio::test]
async fn a_transaction_resent_while_the_first_is_being_stored_is_delivered_once() {
    let server = TestServer::start_with(|c| c.resume_grace = Duration::from_secs(30)).await;
    let mut bob = server.guest("bob").await;
    bob.join("#r").await;
    let (mut alice, welcome) = login(&server, json!({"type":"auth","nick":"alice"})).await;
    alice.join("#r").await;
    bob.expect("joined").await;
    for round in 0..10 {
        let frame =
            json!({"type":"message","target":"#r","text":format!("once {round}"),"txn":format!("r{round}")});
        alice.send(frame.clone()).await;
        // At once, from a new connection taking the session over.
        let (next, _) = login(&server, json!({"type":"auth","resume":secret(&welcome)})).await;
        alice = next;
        alice.send(frame).await;
        let echo = alice.expect("message").await;
        assert_eq!(echo["txn"], format!("r{round}"));
        assert_eq!(bob.expect("message").await["text"], format!("once {round}"));
    }
    let extra = bob.drain().await;
    assert!(!extra.iter().any(|e| e["type"] == "message"), "each message once: {extra:?}");
}

#[tokio::test]
async fn a_resumed_session_is_where_its_new_connection_is() {
    let server = TestServer::start_with(|c| c.resume_grace = Duration::from_secs(30)).await;
    let (alice, welcome) = login(&server, json!({"type":"auth","nick":"alice"})).await;
    drop(alice);
    until_held(&server, 1).await;
    let mut c = Client::connect_from(&server, "127.0.0.2".parse().unwrap()).await;
    c.send(json!({"type":"auth","resume":secret(&welcome)})).await;
    let again = c.expect("welcome").await;
    assert_ne!(again["host"], welcome["host"], "a new address, a new cloak");
    c.cmd("/whois alice").await;
    assert_eq!(c.expect("whois").await["host"], "127.0.0.2");
}

/// A server with a burst of 4 frames and 1 a second, and alice on it in `#r`, her burst spent
/// (the join and three messages); her connection and her first `welcome`.
async fn alice_with_her_burst_spent() -> (TestServer, Client, Value) {
    let server = TestServer::start_with(|c| {
        c.resume_grace = Duration::from_secs(30);
        c.flood_burst = 4;
        c.flood_rate = 1;
        c.flood_strikes = 100;
    })
    .await;
    let (mut alice, welcome) = login(&server, json!({"type":"auth","nick":"alice"})).await;
    alice.join("#r").await;
    for i in 0..3 {
        alice.say("#r", &format!("m{i}")).await;
    }
    for _ in 0..3 {
        alice.expect("message").await;
    }
    (server, alice, welcome)
}

/// The session resumed on `resumed` with what `again` says is left: hardly anything, so of two
/// frames at once the second is refused (a fresh allowance would take both).
async fn goes_on_with_what_was_left(resumed: &mut Client, again: &Value) {
    assert_eq!(again["resumed"], true);
    let allowance = again["limits"]["allowance"].as_u64().expect("a resumed welcome's allowance");
    assert!(allowance < 2, "{again}");
    resumed.say("#r", "again 1").await;
    resumed.say("#r", "again 2").await;
    let error = resumed.expect("error").await;
    assert_eq!(error["code"], "rate_limited", "{error}");
}

#[tokio::test]
async fn dropping_and_resuming_does_not_refill_the_flood_allowance() {
    let (server, alice, welcome) = alice_with_her_burst_spent().await;
    drop(alice);
    until_held(&server, 1).await;
    assert!(welcome["limits"].get("allowance").is_none(), "a new session has the whole burst: {welcome}");
    // Its welcome says what is left (refilled by a frame a second since), not the burst.
    let (mut alice, again) = login(&server, json!({"type":"auth","resume":secret(&welcome)})).await;
    goes_on_with_what_was_left(&mut alice, &again).await;
}

#[tokio::test]
async fn taking_a_session_over_from_its_open_connection_does_not_refill_the_flood_allowance() {
    let (server, mut alice, welcome) = alice_with_her_burst_spent().await;
    // A new connection takes the session over while this one is open.
    let (mut taken, again) = login(&server, json!({"type":"auth","resume":secret(&welcome)})).await;
    goes_on_with_what_was_left(&mut taken, &again).await;
    let (_, close) = alice.events_until_close().await;
    assert_eq!(close.map(|c| c.reason.to_string()).as_deref(), Some("session_replaced"));
}

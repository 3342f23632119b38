//! Potato and Celery end to end: every command, its permission rules, throttling and nick
//! protection.

use serde_json::{json, Value};

use crate::common::{captured_logs, member, Client, TestServer};

const PW: &str = "hunter2-but-longer";

#[tokio::test]
async fn potato_registers_the_current_nick_with_checked_input() {
    let server = TestServer::start().await;
    let mut alice = server.guest("alice").await;
    alice.cmd("/potato register short alice@mail.example").await;
    alice.expect_error("weak_password").await;
    alice.cmd(&format!("/potato register {PW} not-an-email")).await;
    alice.expect_error("invalid_email").await;
    alice.cmd(&format!("/potato register bob {PW} alice@mail.example")).await;
    alice.expect_error("bad_arguments").await;

    alice.cmd(&format!("/potato register alice {PW} alice@mail.example")).await;
    assert_eq!(alice.expect("account_changed").await["account"], "potato:alice");
    assert!(alice.notice("Potato").await.contains("registered to you"));
    alice.cmd(&format!("/potato register {PW} alice@mail.example")).await;
    alice.expect_error("account_exists").await;

    // Info: everyone sees the account; only its owner sees the email.
    alice.cmd("/potato info").await;
    let own = alice.notice("Potato").await;
    assert!(own.contains("alice@mail.example") && own.contains("online as alice"), "{own}");
    let mut bob = server.guest("bob").await;
    bob.cmd("/potato info ALICE").await;
    let other = bob.notice("Potato").await;
    assert!(other.contains("alice was registered on") && !other.contains("@mail"), "{other}");
    bob.cmd("/potato info nobody").await;
    bob.expect_error("no_such_account").await;
    bob.cmd("/potato frobnicate").await;
    bob.expect_error("unknown_command").await;

    // The password never reaches the log.
    assert!(!captured_logs().contains(PW));
}

#[tokio::test]
async fn registrations_of_one_nick_sent_at_once_let_exactly_one_succeed() {
    let server = TestServer::start().await;
    let mut alice = server.guest("racer").await;
    for i in 0..8 {
        alice.cmd(&format!("/potato register {PW} racer{i}@mail.example")).await;
    }
    let events = alice.drain().await;
    let wins = events.iter().filter(|e| e["type"] == "account_changed").count();
    let refusals = events.iter().filter(|e| e["code"] == "account_exists").count();
    assert_eq!((wins, refusals), (1, 7), "{events:?}");
}

#[tokio::test]
async fn msg_potato_works_like_the_command_and_is_no_private_message() {
    let server = TestServer::start().await;
    let mut alice = server.guest("alice").await;
    alice.say("Potato", &format!("register {PW} alice@mail.example")).await;
    assert_eq!(alice.expect("account_changed").await["account"], "potato:alice");
    assert!(alice.notice("Potato").await.contains("registered to you"));
    alice.cmd("/msg potato info").await;
    assert!(alice.notice("Potato").await.contains("alice was registered"));
    alice.send(json!({"type":"history","target":"Potato"})).await;
    alice.expect_error("no_such_nick").await;
}

#[tokio::test]
async fn identify_takes_the_account_and_its_nick_from_whoever_sits_on_it() {
    let server = TestServer::start().await;
    registered_and_gone(&server, "alice").await;

    let mut squatter = server.guest("alice").await;
    let warning = squatter.expect("notice").await;
    assert_eq!(warning["from"], "Potato");
    assert_eq!(warning["code"], "not_identified", "the warning names its condition: {warning}");
    assert!(warning["text"].as_str().unwrap().contains("registered nick"));
    squatter.join("#c").await;
    let mut carol = server.guest("carol").await;
    carol.join("#c").await;

    let events = carol.identify("ALICE", PW).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["account_changed", "nick_changed", "nick_changed"], "{events:?}");
    assert_eq!(events[0]["account"], "potato:alice");
    // The squatter moves off the nick first, then carol takes it.
    let guest = events[1]["new"].as_str().unwrap();
    assert_eq!(events[1]["old"], "alice");
    assert!(guest.starts_with("Guest-"), "{guest}");
    assert_eq!((events[2]["old"].as_str(), events[2]["new"].as_str()), (Some("carol"), Some("alice")));
    assert!(squatter.notice("Potato").await.contains(&format!("you are now {guest}")));
    assert_eq!(squatter.expect("nick_changed").await["new"], guest);
    carol.cmd("/whois alice").await;
    assert_eq!(carol.expect("whois").await["account"], "potato:alice");
}

#[tokio::test]
async fn failed_identifies_look_alike_and_are_throttled_per_connection_and_per_account_from_one_address() {
    let server = TestServer::start().await;
    let mut alice = server.guest("alice").await;
    alice.register(PW).await;

    let mut mallory = server.guest("mallory").await;
    let hashes = server.state.hash_runs();
    mallory.cmd(&format!("/potato identify nobody {PW}")).await;
    let unknown = mallory.expect_error("identify_failed").await;
    assert_eq!(
        server.state.hash_runs(),
        hashes + 1,
        "an unknown nick costs a (decoy) hash like a wrong password, so timing tells nothing"
    );
    mallory.cmd("/potato identify alice wrong-password").await;
    let wrong = mallory.expect_error("identify_failed").await;
    assert_eq!(unknown["message"], wrong["message"]);
    mallory.cmd("/potato identify alice wrong-again").await;
    mallory.expect_error("identify_failed").await;
    // Three attempts on this connection: even the right password waits now.
    mallory.cmd(&format!("/potato identify alice {PW}")).await;
    mallory.expect_error("throttled").await;
    // alice's account saw two failures from this address; one more and it is held back here.
    let mut eve = server.guest("eve").await;
    eve.cmd("/potato identify alice guess").await;
    eve.expect_error("identify_failed").await;
    let mut alice2 = server.guest("alice2").await;
    alice2.cmd(&format!("/potato identify alice {PW}")).await;
    alice2.expect_error("throttled").await;
    // From another address the owner gets in: a stranger cannot lock them out.
    let mut owner = Client::guest_from(&server, [127, 0, 0, 2].into(), "owner").await;
    owner.identify("alice", PW).await;
    // Other accounts are unaffected for fresh connections.
    let mut bob = server.guest("bob").await;
    bob.register(PW).await;
    let mut bob2 = server.guest("bob2").await;
    bob2.identify("bob", PW).await;
}

#[tokio::test]
async fn forty_identifies_at_once_are_counted_before_they_are_checked() {
    let server = TestServer::start().await;
    registered_and_gone(&server, "alice").await;
    let mut guessers = Vec::new();
    for i in 0..40 {
        guessers.push(server.guest(&format!("guesser{i}")).await);
    }
    let hashes = server.state.hash_runs();
    for (i, g) in guessers.iter_mut().enumerate() {
        g.cmd(&format!("/potato identify alice wrong-guess-{i}")).await;
    }
    let mut failed = 0;
    let mut throttled = 0;
    for g in &mut guessers {
        match g.expect("error").await["code"].as_str().unwrap() {
            "identify_failed" => failed += 1,
            "throttled" => throttled += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((failed, throttled), (3, 37), "three attempts per account from one address");
    assert_eq!(server.state.hash_runs(), hashes + 3, "refused attempts cost no hash");
}

#[tokio::test]
async fn registration_checks_the_cheap_things_before_hashing_and_is_throttled() {
    let server = TestServer::start_with(|c| c.registrations_per_address = 3).await;
    registered_and_gone(&server, "alice").await;
    let hashes = server.state.hash_runs();
    let mut squatter = server.guest("Alice").await;
    squatter.cmd(&format!("/potato register {PW} a@mail.example")).await;
    squatter.expect_error("account_exists").await;
    squatter.cmd("/quit").await;
    squatter.expect_close().await;
    let mut lookalike = server.guest("\u{430}lice").await;
    lookalike.cmd(&format!("/potato register {PW} a@mail.example")).await;
    lookalike.expect_error("account_exists").await;
    assert_eq!(server.state.hash_runs(), hashes, "a taken nick is refused before any hash");
    // Per address: alice above and two more, then no more from here for an hour.
    for nick in ["second", "third"] {
        let mut c = server.guest(nick).await;
        c.register(PW).await;
    }
    let mut fourth = server.guest("fourth").await;
    fourth.cmd(&format!("/potato register {PW} a@mail.example")).await;
    fourth.expect_error("throttled").await;
    let mut elsewhere = Client::guest_from(&server, [127, 0, 0, 3].into(), "elsewhere").await;
    elsewhere.register(PW).await;
}

#[tokio::test]
async fn an_unidentified_user_on_a_registered_nick_is_renamed_after_the_grace_period() {
    let server = TestServer::start_with(|c| c.nick_grace = std::time::Duration::from_millis(300)).await;
    registered_and_gone(&server, "alice").await;

    let mut squatter = server.guest("alice").await;
    assert!(squatter.notice("Potato").await.contains("within 300ms"));
    assert!(squatter.notice("Potato").await.contains("did not identify in time"));
    let renamed = squatter.expect("nick_changed").await;
    assert!(renamed["new"].as_str().unwrap().starts_with("Guest-"));

    // Switching to the nick with /nick starts the same clock; identifying in time stops it.
    let mut bob = server.guest("bob").await;
    bob.cmd("/nick alice").await;
    bob.expect("nick_changed").await;
    assert!(bob.notice("Potato").await.contains("registered nick"));
    bob.identify("alice", PW).await;
    let mut watcher = server.guest("watcher").await;
    // Past the grace period bob still has the nick.
    watcher.cmd("/whois alice").await;
    let whois = watcher.expect("whois").await;
    assert_eq!(whois["account"], "potato:alice");
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    watcher.cmd("/whois alice").await;
    assert_eq!(watcher.expect("whois").await["account"], "potato:alice");
    bob.assert_no("nick_changed").await;
}

#[tokio::test]
async fn disconnect_ghosts_whoever_uses_your_nick() {
    let server = TestServer::start().await;
    registered_and_gone(&server, "alice").await;
    let mut squatter = server.guest("alice").await;
    squatter.join("#c").await;
    let mut me = server.guest("me").await;
    me.join("#c").await;
    me.cmd("/potato disconnect alice wrong-password").await;
    me.expect_error("identify_failed").await;
    me.cmd(&format!("/potato ghost alice {PW}")).await;
    // The ghost is gone (everyone sees it quit) by the time Potato confirms.
    let seen = me.drain().await;
    let quit = seen.iter().find(|e| e["type"] == "quit").expect("a quit");
    assert_eq!(quit["reason"], "disconnected by the owner of the nick");
    let confirmed =
        seen.iter().position(|e| e["type"] == "notice" && e["from"] == "Potato").expect("a notice");
    assert!(seen[confirmed]["text"].as_str().unwrap().contains("alice was disconnected"));
    assert!(seen.iter().position(|e| e["type"] == "quit").unwrap() < confirmed);
    let (events, close) = squatter.events_until_close().await;
    assert!(events.iter().any(|e| e["type"] == "notice" && e["from"] == "Potato"));
    assert_eq!(close.map(|c| c.reason.to_string()).as_deref(), Some("ghosted"));
    me.cmd(&format!("/potato ghost alice {PW}")).await;
    me.expect_error("no_such_nick").await;
}

#[tokio::test]
async fn passwd_and_drop_need_the_account_and_its_password() {
    let server = TestServer::start().await;
    let mut alice = server.guest("alice").await;
    alice.cmd(&format!("/potato passwd {PW} new-password-1")).await;
    alice.expect_error("not_identified").await;
    alice.register(PW).await;
    alice.cmd(&format!("/potato passwd {PW} short")).await;
    alice.expect_error("weak_password").await;
    alice.cmd(&format!("/potato passwd {PW} new-password-1")).await;
    assert!(alice.notice("Potato").await.contains("password is changed"));

    let mut other = server.guest("other").await;
    other.cmd(&format!("/potato identify alice {PW}")).await;
    other.expect_error("identify_failed").await;
    other.identify("alice", "new-password-1").await;

    alice.cmd("/potato drop wrong-password").await;
    alice.expect_error("identify_failed").await;
    alice.cmd("/potato drop new-password-1").await;
    assert_eq!(alice.expect("account_changed").await["account"], Value::Null);
    assert!(alice.notice("Potato").await.contains("dropped"));
    // Everyone identified as it is logged out of it.
    assert_eq!(other.expect("account_changed").await["account"], Value::Null);
    alice.cmd("/potato info alice").await;
    alice.expect_error("no_such_account").await;
    alice.register(PW).await;
}

#[tokio::test]
async fn an_app_users_nick_cannot_be_registered_with_potato() {
    let server = TestServer::start().await;
    let mut dave = server.user("dave").await;
    dave.cmd(&format!("/potato register {PW} dave@mail.example")).await;
    dave.expect_error("nick_reserved").await;
    // Nor does an app user switch to a Potato account.
    let mut alice = server.guest("alice").await;
    alice.register(PW).await;
    dave.cmd(&format!("/potato identify alice {PW}")).await;
    dave.expect_error("bad_arguments").await;
}

#[tokio::test]
async fn an_app_user_takes_their_nick_from_whoever_sits_on_it_and_cannot_be_ghosted() {
    let server = TestServer::start().await;
    // A Potato account registered before the app user ever logged in.
    let mut early = server.guest("newbie").await;
    early.register(PW).await;
    early.join("#c").await;
    let mut watcher = server.guest("watcher").await;
    watcher.join("#c").await;
    // The app user's first login moves the holder off the nick instead of failing.
    let mut app_user = server.user("newbie").await;
    let moved = early.expect("nick_changed").await;
    assert_eq!(moved["old"], "newbie");
    assert!(moved["new"].as_str().unwrap().starts_with("Guest-"));
    assert_eq!(watcher.expect("nick_changed").await["old"], "newbie");
    // The Potato owner of the same name cannot ghost the app user.
    let mut owner = server.guest("owner").await;
    owner.cmd(&format!("/potato disconnect newbie {PW}")).await;
    owner.expect_error("nick_reserved").await;
    app_user.cmd("/whois newbie").await;
    assert_eq!(app_user.expect("whois").await["account"], "app:newbie");
}

#[tokio::test]
async fn an_app_user_on_a_look_alike_of_a_registered_nick_is_never_renamed() {
    let server = TestServer::start_with(|c| c.nick_grace = std::time::Duration::from_millis(200)).await;
    registered_and_gone(&server, "alice").await;
    let mut app_user = server.user("\u{430}lice").await;
    // Past the grace period: the app is authoritative for its user's nick.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let events = app_user.drain().await;
    assert!(!events.iter().any(|e| e["type"] == "nick_changed" || e["type"] == "notice"), "{events:?}");
}

#[tokio::test]
async fn celery_tells_outsiders_nothing_about_a_secret_channel() {
    let server = TestServer::start().await;
    let mut alice = identified(&server, "alice").await;
    alice.join("#hidden").await;
    alice.cmd("/celery register #hidden").await;
    alice.notice("Celery").await;
    alice.cmd("/mode #hidden +s").await;
    alice.expect("mode_changed").await;
    let mut outsider = server.guest("outsider").await;
    outsider.cmd("/celery info #hidden").await;
    outsider.expect_error("channel_not_registered").await;
    alice.cmd("/celery info #hidden").await;
    assert!(alice.notice("Celery").await.contains("#hidden was registered"));
    // Kept while empty, it stays secret.
    alice.cmd("/part #hidden").await;
    alice.expect("parted").await;
    outsider.cmd("/celery info #hidden").await;
    outsider.expect_error("channel_not_registered").await;
    alice.cmd("/celery info #hidden").await;
    assert!(alice.notice("Celery").await.contains("#hidden was registered"), "the founder still sees it");
}

#[tokio::test]
async fn a_dropped_accounts_history_and_op_list_places_never_pass_to_the_next_owner() {
    let server = TestServer::start().await;
    let mut alice = identified(&server, "alice").await;
    let mut bob = identified(&server, "bob").await;
    bob.join("#c").await;
    bob.cmd("/celery register #c").await;
    bob.notice("Celery").await;
    bob.cmd("/celery op #c alice").await;
    bob.notice("Celery").await;
    bob.say("alice", "for alice only").await;
    alice.expect("message").await;
    alice.cmd(&format!("/potato drop {PW}")).await;
    assert!(alice.notice("Potato").await.contains("dropped"));
    alice.cmd("/quit").await;
    alice.expect_close().await;

    // Someone else registers the nick.
    let mut next = identified(&server, "alice").await;
    next.send(json!({"type":"history","target":"bob"})).await;
    assert_eq!(next.expect("history").await["messages"], json!([]), "the old PMs stay with the old account");
    let members = next.join("#c").await;
    assert_eq!(member(&members, "alice").unwrap()["op"], false, "the op list named the old account");
    bob.cmd("/celery info #c").await;
    let info = bob.notice("Celery").await;
    assert!(info.contains("ops: none"), "{info}");
}

#[tokio::test]
async fn passwords_with_spaces_quotes_and_other_scripts_work_typed_and_as_data() {
    let server = TestServer::start().await;
    let potato = |request: Value| json!({"type":"run","command":{"command":"potato","request":request}});
    // Registered as data, identified with a typed line that quotes the password.
    let secret = r#"alice "secret" ünï ☃"#;
    let mut alice = server.guest("alice").await;
    alice.send(potato(json!({"action":"register","password":secret,"email":"alice@mail.example"}))).await;
    assert_eq!(alice.expect("account_changed").await["account"], "potato:alice");
    alice.cmd("/quit").await;
    alice.expect_close().await;
    let mut again = server.guest("someone").await;
    // The old way to lose it: unquoted, the words after the nick are too many.
    again.cmd(&format!("/potato identify alice {secret}")).await;
    again.expect_error("bad_arguments").await;
    // One word of it is not the password (the old bug stored only the last word).
    again.cmd("/potato identify alice ☃").await;
    again.expect_error("identify_failed").await;
    again.cmd(r#"/potato identify alice "alice \"secret\" ünï ☃""#).await;
    assert_eq!(again.expect("account_changed").await["account"], "potato:alice");

    // Registered with a typed, quoted line, identified as data.
    let mut bob = server.guest("bob").await;
    bob.cmd(r#"/potato register "bob's pass phrase" bob@mail.example"#).await;
    assert_eq!(bob.expect("account_changed").await["account"], "potato:bob");
    bob.cmd("/quit").await;
    bob.expect_close().await;
    let mut other = server.guest("other").await;
    other.send(potato(json!({"action":"identify","nick":"bob","password":"bob's pass"}))).await;
    other.expect_error("identify_failed").await;
    other.send(potato(json!({"action":"identify","nick":"bob","password":"bob's pass phrase"}))).await;
    assert_eq!(other.expect("account_changed").await["account"], "potato:bob");
}

/// Registers `nick` with Potato from a session that then quits, leaving the nick free.
async fn registered_and_gone(server: &TestServer, nick: &str) {
    let mut owner = server.guest(nick).await;
    owner.register(PW).await;
    owner.cmd("/quit").await;
    owner.expect_close().await;
}

async fn identified(server: &TestServer, nick: &str) -> Client {
    let mut c = server.guest(nick).await;
    c.register(PW).await;
    c
}

#[tokio::test]
async fn celery_registers_a_channel_for_an_identified_op() {
    let server = TestServer::start().await;
    let mut guest = server.guest("guest").await;
    guest.join("#g").await;
    guest.cmd("/celery register #g").await;
    guest.expect_error("not_identified").await;

    let mut alice = identified(&server, "alice").await;
    alice.join("#g").await;
    alice.cmd("/celery register #g").await;
    alice.expect_error("not_op").await;
    alice.join("#mine").await;
    alice.cmd("/celery register").await;
    alice.expect_error("bad_arguments").await;
    alice.send(json!({"type":"command","line":"/celery register","target":"#mine"})).await;
    assert!(alice.notice("Celery").await.contains("#mine is registered to you"));
    alice.cmd("/celery register #mine").await;
    alice.expect_error("channel_registered").await;
    alice.cmd("/celery info #mine").await;
    let info = alice.notice("Celery").await;
    assert!(info.contains("by potato:alice") && info.contains("ops: none"), "{info}");
    alice.cmd("/celery info #g").await;
    alice.expect_error("channel_not_registered").await;
}

#[tokio::test]
async fn the_op_list_ops_accounts_on_join_and_only_founder_and_trusted_change_it() {
    let server = TestServer::start().await;
    let mut alice = identified(&server, "alice").await;
    let mut bob = identified(&server, "bob").await;
    let mut carol = identified(&server, "carol").await;
    alice.join("#c").await;
    alice.cmd("/celery register #c").await;
    alice.notice("Celery").await;
    bob.join("#c").await;
    carol.join("#c").await;

    bob.cmd("/celery op #c carol").await;
    bob.expect_error("access_denied").await;
    alice.cmd("/celery op #c nobody").await;
    alice.expect_error("no_such_account").await;
    // Listing bob ops him at once, by Celery.
    alice.cmd("/celery op #c bob").await;
    assert!(alice.notice("Celery").await.contains("potato:bob is on the op list"));
    let mode = bob.expect("mode_changed").await;
    assert_eq!((mode["by"].as_str(), mode["modes"].as_str()), (Some("Celery"), Some("+o")));
    // A listed op may not change the list until trusted.
    bob.cmd("/celery op #c carol").await;
    bob.expect_error("access_denied").await;
    bob.cmd("/celery trust #c bob").await;
    bob.expect_error("access_denied").await;
    alice.cmd("/celery trust #c bob").await;
    alice.notice("Celery").await;
    bob.cmd("/celery op #c carol").await;
    bob.notice("Celery").await;
    loop {
        let mode = carol.expect("mode_changed").await;
        if mode["args"] == json!(["carol"]) {
            assert_eq!(mode["modes"], "+o");
            break;
        }
    }
    alice.cmd("/celery untrust #c bob").await;
    alice.notice("Celery").await;
    bob.cmd("/celery deop #c carol").await;
    bob.expect_error("access_denied").await;

    // Ops come back on join; a guest who finds the channel empty is not op.
    carol.cmd("/part #c").await;
    carol.expect("parted").await;
    let rejoined = carol.join("#c").await;
    assert_eq!(member(&rejoined, "carol").unwrap()["op"], true);
    alice.cmd("/celery deop #c carol").await;
    alice.notice("Celery").await;
    let mode = carol.expect("mode_changed").await;
    assert_eq!(mode["modes"], "-o");
    alice.cmd("/celery deop #c alice").await;
    alice.expect_error("bad_arguments").await;

    for c in [&mut alice, &mut bob, &mut carol] {
        c.cmd("/part #c").await;
        c.expect("parted").await;
    }
    let mut guest = server.guest("guest").await;
    let members = guest.join("#c").await;
    assert_eq!(member(&members, "guest").unwrap()["op"], false);

    // Info, then drop (founder only).
    bob.cmd("/celery info #c").await;
    let info = bob.notice("Celery").await;
    assert!(info.contains("ops: potato:bob") && info.contains("trusted: none"), "{info}");
    bob.cmd("/celery drop #c").await;
    bob.expect_error("access_denied").await;
    alice.cmd("/celery drop #c").await;
    assert!(alice.notice("Celery").await.contains("no longer registered"));
    alice.cmd("/celery info #c").await;
    alice.expect_error("channel_not_registered").await;
}

#[tokio::test]
async fn a_registered_channel_keeps_its_topic_bans_and_modes_while_empty() {
    let server = TestServer::start().await;
    let mut alice = identified(&server, "alice").await;
    let mut bob = server.guest("bob").await;
    alice.join("#keep").await;
    alice.cmd("/celery register #keep").await;
    alice.notice("Celery").await;
    alice.cmd("/topic #keep kept topic").await;
    alice.expect("topic").await;
    // By nick: every test client shares 127.0.0.1, so a host ban would cover them all.
    alice.cmd("/ban #keep bob!*@*").await;
    alice.expect("banned").await;
    alice.cmd("/mode #keep +m").await;
    alice.expect("mode_changed").await;
    alice.cmd("/part #keep").await;
    alice.expect("parted").await;

    bob.cmd("/join #keep").await;
    bob.expect_error("banned").await;
    let mut carol = server.guest("carol").await;
    carol.cmd("/join #keep").await;
    let topic = carol.expect("topic").await;
    assert_eq!(topic["topic"], "kept topic");
    let members = carol.expect("members").await;
    assert!(members["modes"].as_str().unwrap().contains('m'), "{members}");
    // An unregistered channel forgets everything once empty.
    carol.join("#loose").await;
    carol.cmd("/topic #loose gone soon").await;
    carol.expect("topic").await;
    carol.cmd("/part #loose").await;
    carol.expect("parted").await;
    carol.join("#loose").await;
    carol.cmd("/topic #loose").await;
    assert_eq!(carol.expect("topic").await["topic"], Value::Null);
}

/// The next `registration` event's founder and op list (`None`: not registered).
async fn registration(c: &mut Client) -> (Option<String>, Value, Value) {
    let r = c.expect("registration").await;
    (r["founder"].as_str().map(str::to_owned), r["ops"].clone(), r["trusted"].clone())
}

#[tokio::test]
async fn members_see_the_registration_on_join_and_every_change_to_it() {
    let server = TestServer::start().await;
    let mut alice = identified(&server, "alice").await;
    let mut carol = identified(&server, "carol").await;
    let mut bob = server.guest("bob").await;
    alice.join("#p").await;
    assert_eq!(registration_on_join(&mut bob, "#p").await, (None, json!([]), json!([])));
    carol.join("#p").await;

    alice.cmd("/celery register #p").await;
    let registered = (Some("potato:alice".to_owned()), json!([]), json!([]));
    for c in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(registration(c).await, registered, "{}", c.nick);
    }
    alice.cmd("/celery trust #p carol").await;
    let trusted = (Some("potato:alice".to_owned()), json!(["potato:carol"]), json!(["potato:carol"]));
    assert_eq!(registration(&mut bob).await, trusted);
    // Someone joining later gets it with the channel's state.
    let mut dave = server.guest("dave").await;
    assert_eq!(registration_on_join(&mut dave, "#p").await, trusted);
    // Refused edits change nothing and tell nobody.
    bob.cmd("/celery op #p alice").await;
    bob.expect_error("not_identified").await;
    carol.cmd("/celery deop #p potato:carol").await;
    let off = (Some("potato:alice".to_owned()), json!([]), json!([]));
    assert_eq!(registration(&mut dave).await, off, "an entry comes off as the list shows it");
    let told = bob.drain().await;
    assert_eq!(
        told.iter().filter(|e| e["type"] == "registration").count(),
        1,
        "only the one change: {told:?}"
    );
    alice.cmd("/celery drop #p").await;
    assert_eq!(registration(&mut dave).await, (None, json!([]), json!([])));
    // Not in the channel: not told.
    let mut erin = identified(&server, "erin").await;
    erin.join("#elsewhere").await;
    erin.cmd("/celery register #elsewhere").await;
    erin.notice("Celery").await;
    let seen = dave.drain().await;
    assert!(seen.iter().all(|e| e["type"] != "registration"), "{seen:?}");
}

#[tokio::test]
async fn dropping_an_account_tells_members_of_the_channels_it_founded_or_was_listed_on() {
    let server = TestServer::start().await;
    let mut alice = identified(&server, "alice").await;
    let mut bob = identified(&server, "bob").await;
    let mut carol = server.guest("carol").await;
    alice.join("#p").await;
    alice.cmd("/celery register #p").await;
    alice.notice("Celery").await;
    bob.join("#q").await;
    bob.cmd("/celery register #q").await;
    bob.notice("Celery").await;
    bob.cmd("/celery trust #q alice").await;
    bob.notice("Celery").await;
    carol.join("#p").await;
    carol.join("#q").await;
    alice.cmd(&format!("/potato drop {PW}")).await;
    assert!(alice.notice("Potato").await.contains("dropped"));
    let mut seen = Vec::new();
    for _ in 0..2 {
        let r = carol.expect("registration").await;
        seen.push((r["channel"].as_str().unwrap().to_owned(), r["founder"].clone(), r["ops"].clone()));
    }
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        [("#p".to_owned(), Value::Null, json!([])), ("#q".to_owned(), json!("potato:bob"), json!([])),]
    );
}

/// Joins `channel` and returns the registration that comes with its state.
async fn registration_on_join(c: &mut Client, channel: &str) -> (Option<String>, Value, Value) {
    c.cmd(&format!("/join {channel}")).await;
    c.expect("members").await;
    let r = registration(c).await;
    c.expect("history").await;
    r
}

#[tokio::test]
async fn the_ban_list_says_who_set_each_ban_on_whom_and_when() {
    let server = TestServer::start().await;
    let mut alice = server.guest("alice").await;
    let mut bob = server.guest("bob").await;
    let mut outsider = server.guest("outsider").await;
    alice.join("#b").await;
    bob.join("#b").await;
    bob.cmd("/bans #b").await;
    assert_eq!(bob.expect("ban_list").await, json!({"type":"ban_list","channel":"#b","bans":[]}));

    alice.cmd("/ban #b dave!*@*").await;
    alice.expect("banned").await;
    alice.cmd("/mode #b +b erin").await;
    alice.expect("banned").await;
    // By nick, online: the person's address (every test client shares it, so last).
    alice.cmd("/ban #b outsider").await;
    alice.expect("banned").await;
    for ask in ["/bans #b", "/mode #b +b"] {
        bob.cmd(ask).await;
        let list = bob.expect("ban_list").await;
        let bans = list["bans"].as_array().unwrap();
        let masks: Vec<&str> = bans.iter().map(|b| b["mask"].as_str().unwrap()).collect();
        assert_eq!(masks[..2], ["dave!*@*", "erin!*@*"], "{ask}: {list}");
        assert!(masks[2].starts_with("*!*@"), "{list}");
        assert!(bans
            .iter()
            .all(|b| b["by"] == "alice" && b["at"].as_u64().is_some_and(|t| t > 1_700_000_000_000)));
        assert_eq!(bans[2]["nick"], "outsider");
        assert_eq!(bans[0].get("nick"), None);
    }
    // One lifted, one left; bad asks refused.
    alice.cmd("/unban #b dave!*@*").await;
    alice.expect("unbanned").await;
    bob.cmd("/bans #b").await;
    assert_eq!(bob.expect("ban_list").await["bans"].as_array().unwrap().len(), 2);
    bob.cmd("/bans #b extra").await;
    bob.expect_error("bad_arguments").await;
    bob.cmd("/bans #nowhere").await;
    bob.expect_error("no_such_channel").await;
    alice.cmd("/mode #b +s").await;
    alice.expect("mode_changed").await;
    outsider.cmd("/bans #b").await;
    outsider.expect_error("no_such_channel").await;
}

#[tokio::test]
async fn both_services_list_their_commands() {
    let server = TestServer::start().await;
    let mut alice = server.guest("alice").await;
    alice.cmd("/potato help").await;
    let mut lines = Vec::new();
    for _ in 0..7 {
        lines.push(alice.notice("Potato").await);
    }
    for sub in ["register", "identify", "disconnect", "info", "passwd", "drop", "help"] {
        assert!(lines.iter().any(|l| l.starts_with(&format!("/potato {sub}"))), "{sub}: {lines:?}");
    }
    alice.say("Celery", "help").await;
    let first = alice.notice("Celery").await;
    assert!(first.starts_with("/celery register"), "{first}");
}

#[tokio::test]
async fn app_users_are_accounts_for_celery_without_potato() {
    let server = TestServer::start().await;
    let mut dave = server.user("dave").await;
    let mut erin = server.user("erin").await;
    dave.join("#app").await;
    dave.cmd("/celery register #app").await;
    assert!(dave.notice("Celery").await.contains("registered to you"));
    erin.join("#app").await;
    dave.cmd("/celery op #app app:erin").await;
    assert!(dave.notice("Celery").await.contains("app:erin is on the op list"));
    let mode = erin.expect("mode_changed").await;
    assert_eq!((mode["modes"].as_str(), mode["args"][0].as_str()), (Some("+o"), Some("erin")));
    dave.cmd("/celery info #app").await;
    assert!(dave.notice("Celery").await.contains("by app:dave"));
}

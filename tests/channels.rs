//! Channels, private messages and every command's permission rules, end to end.

use serde_json::{json, Value};

use crate::common::{assert_cloaked, from_flags, member, Client, TestServer};

#[tokio::test]
async fn two_users_chat_in_a_channel_and_both_see_the_message_with_its_id() {
    let server = TestServer::start().await;
    let mut alice = server.guest("alice").await;
    let mut bob = server.guest("bob").await;
    let members = alice.join("#rust").await;
    assert_eq!(members["channel"], "#rust");
    bob.join("#rust").await;
    let joined = alice.expect("joined").await;
    assert_eq!(joined["nick"], "bob");
    assert!(joined["host"].as_str().unwrap().ends_with(".cloak"));

    alice.say("#rust", "hello <b>bob</b>").await;
    let echo = alice.expect("message").await;
    let got = bob.expect("message").await;
    assert_eq!(echo, got);
    assert_eq!(got["from"], "alice");
    assert_eq!(got["target"], "#rust");
    assert_eq!(got["text"], "hello <b>bob</b>");
    assert!(got["id"].as_u64().unwrap() > 0);
    assert!(got["ts"].as_u64().unwrap() > 1_700_000_000_000);

    bob.say("#rust", "hi").await;
    let second = alice.expect("message").await;
    assert!(second["id"].as_u64() > got["id"].as_u64(), "ids grow");
}

#[tokio::test]
async fn the_first_joiner_is_op_and_later_joiners_are_not() {
    let server = TestServer::start().await;
    let mut alice = server.guest("alice").await;
    let mut bob = server.guest("bob").await;
    let first = alice.join("#c").await;
    assert_eq!(member(&first, "alice").unwrap()["op"], true);
    let second = bob.join("#c").await;
    assert_eq!(member(&second, "alice").unwrap()["op"], true);
    assert_eq!(member(&second, "bob").unwrap()["op"], false);
    assert_eq!(second["modes"], "+t");
}

#[tokio::test]
async fn only_members_post_to_a_channel() {
    let server = TestServer::start().await;
    let mut alice = server.guest("alice").await;
    let mut bob = server.guest("bob").await;
    alice.join("#c").await;
    bob.say("#c", "let me in").await;
    bob.expect_error("not_on_channel").await;
    bob.say("#nowhere", "hello?").await;
    bob.expect_error("no_such_channel").await;
    alice.assert_no("message").await;
}

#[tokio::test]
async fn private_messages_reach_only_their_two_parties() {
    let server = TestServer::start().await;
    let mut alice = server.guest("alice").await;
    let mut bob = server.guest("Bob").await;
    let mut carol = server.guest("carol").await;
    alice.join("#c").await;
    carol.join("#c").await;

    alice.send(json!({"type":"message","target":"bob","text":"psst"})).await;
    let got = bob.expect("message").await;
    assert_eq!(got["from"], "alice");
    assert_eq!(got["target"], "Bob", "a PM's target is the recipient's nick as they spell it");
    let echo = alice.expect("message").await;
    assert_eq!(echo["id"], got["id"]);
    carol.assert_no("message").await;

    alice.cmd("/msg carol hi there").await;
    assert_eq!(carol.expect("message").await["text"], "hi there");
    alice.cmd("/msg nobody hi").await;
    alice.expect_error("no_such_nick").await;
}

#[tokio::test]
async fn me_sends_an_action_to_the_conversation_in_context() {
    let server = TestServer::start().await;
    let [mut alice, mut bob] = server.in_channel("#c", ["alice", "bob"]).await;
    alice.send(json!({"type":"command","line":"/me waves","target":"#c"})).await;
    let got = bob.expect("message").await;
    assert_eq!(got["action"], true);
    assert_eq!(got["text"], "waves");
    alice.cmd("/me waves").await;
    alice.expect_error("bad_arguments").await;
}

#[tokio::test]
async fn parting_tells_the_channel_and_an_empty_channel_disappears() {
    let server = TestServer::start().await;
    let [mut alice, mut bob] = server.in_channel("#c", ["alice", "bob"]).await;
    bob.cmd("/part #c see you").await;
    let parted = alice.expect("parted").await;
    assert_eq!(parted["nick"], "bob");
    assert_eq!(parted["reason"], "see you");
    assert_eq!(bob.expect("parted").await["nick"], "bob");
    bob.cmd("/part #c").await;
    bob.expect_error("not_on_channel").await;

    alice.cmd("/part #c").await;
    alice.expect("parted").await;
    alice.cmd("/list").await;
    let list = alice.expect("list").await;
    assert_eq!(list["channels"], json!([]));
    // The channel was deleted: a new joiner creates it afresh and is its op.
    let members = bob.join("#c").await;
    assert_eq!(member(&members, "bob").unwrap()["op"], true);
}

#[tokio::test]
async fn nick_changes_are_seen_by_channel_members_and_collisions_are_refused() {
    let server = TestServer::start().await;
    let [mut alice, mut bob] = server.in_channel("#c", ["alice", "bob"]).await;
    bob.cmd("/nick robert").await;
    let changed = alice.expect("nick_changed").await;
    assert_eq!((changed["old"].as_str(), changed["new"].as_str()), (Some("bob"), Some("robert")));
    assert_eq!(bob.expect("nick_changed").await["new"], "robert");

    bob.cmd("/nick ALICE").await;
    bob.expect_error("nick_in_use").await;
    bob.cmd("/nick bad nick").await;
    bob.expect_error("bad_arguments").await;
    bob.cmd("/nick 9lives").await;
    bob.expect_error("invalid_nick").await;
    bob.cmd("/nick potato").await;
    bob.expect_error("nick_reserved").await;
    // The old nick is free again; the new one is taken.
    let carol = server.guest("bob").await;
    drop(carol);
    let mut late = Client::connect(&server).await;
    late.send(json!({"type":"auth","nick":"Robert"})).await;
    late.expect_error("nick_in_use").await;
    bob.cmd("/msg alice still me").await;
    assert_eq!(alice.expect("message").await["from"], "robert");
}

#[tokio::test]
async fn the_topic_is_for_ops_under_plus_t_and_for_members_without_it() {
    let server = TestServer::start().await;
    let [mut alice, mut bob] = server.in_channel("#c", ["alice", "bob"]).await;
    bob.cmd("/topic #c bob's topic").await;
    bob.expect_error("not_op").await;

    alice.cmd("/topic #c Rust and friends").await;
    alice.expect("topic").await;
    let topic = bob.expect("topic").await;
    assert_eq!(topic["topic"], "Rust and friends");
    assert_eq!(topic["set_by"], "alice");

    bob.cmd("/topic #c").await;
    assert_eq!(bob.expect("topic").await["topic"], "Rust and friends");

    alice.cmd("/mode #c -t").await;
    assert_eq!(bob.expect("mode_changed").await["modes"], "-t");
    bob.send(json!({"type":"command","line":"/topic now mine","target":"#c"})).await;
    assert_eq!(alice.expect("topic").await["topic"], "now mine");
    bob.expect("topic").await;

    alice.cmd("/topic #c -").await;
    let cleared = bob.expect("topic").await;
    assert_eq!(cleared["topic"], Value::Null);
    assert_eq!(cleared["set_by"], "alice");

    // A later joiner gets the topic on join.
    alice.cmd("/topic #c welcome").await;
    let mut carol = server.guest("carol").await;
    carol.cmd("/join #c").await;
    assert_eq!(carol.expect("topic").await["topic"], "welcome");
}

#[tokio::test]
async fn only_ops_kick_and_a_kicked_user_leaves_the_channel() {
    let server = TestServer::start().await;
    let [mut alice, mut bob] = server.in_channel("#c", ["alice", "bob"]).await;
    bob.cmd("/kick #c alice").await;
    bob.expect_error("not_op").await;

    alice.cmd("/kick #c bob spamming").await;
    let kicked = bob.expect("kicked").await;
    assert_eq!(kicked["by"], "alice");
    assert_eq!(kicked["reason"], "spamming");
    assert_eq!(alice.expect("kicked").await["nick"], "bob");
    bob.say("#c", "still here?").await;
    bob.expect_error("not_on_channel").await;
    alice.cmd("/kick #c bob").await;
    alice.expect_error("user_not_on_channel").await;
    alice.cmd("/kick #c ghost").await;
    alice.expect_error("no_such_nick").await;
    // Kicking is not banning: bob may come back.
    bob.join("#c").await;
}

#[tokio::test]
async fn banned_users_can_neither_speak_nor_join_until_unbanned() {
    let server = TestServer::start().await;
    let [mut alice, mut bob] = server.in_channel("#c", ["alice", "bob"]).await;
    bob.cmd("/ban #c alice").await;
    bob.expect_error("not_op").await;

    alice.cmd("/ban #c bob").await;
    let banned = bob.expect("banned").await;
    let mask = banned["mask"].as_str().unwrap().to_owned();
    assert!(mask.starts_with("*!*@") && mask.ends_with(".cloak"), "{mask}");
    assert!(!mask.contains("127.0.0.1"), "a ban never shows the real address");
    assert_eq!(banned["nick"], "bob", "a ban set by nick names the person");
    bob.say("#c", "can I talk?").await;
    bob.expect_error("banned").await;
    alice.assert_no("message").await;

    bob.cmd("/part #c").await;
    bob.expect("parted").await;
    bob.cmd("/join #c").await;
    bob.expect_error("banned").await;
    // A new nick does not dodge a host ban.
    bob.cmd("/nick bobby").await;
    bob.cmd("/join #c").await;
    bob.expect_error("banned").await;

    alice.cmd("/unban #c bobby").await;
    assert_eq!(alice.expect("unbanned").await["mask"], mask);
    bob.join("#c").await;
    alice.cmd("/unban #c bobby").await;
    alice.expect_error("no_such_ban").await;
}

#[tokio::test]
async fn bans_take_nick_masks_with_wildcards() {
    let server = TestServer::start().await;
    let mut alice = server.guest("alice").await;
    let mut troll = server.guest("troll42").await;
    alice.join("#c").await;
    alice.cmd("/ban #c troll*!*@*").await;
    let banned = alice.expect("banned").await;
    assert_eq!(banned["mask"], "troll*!*@*");
    assert!(banned.get("nick").is_none(), "a mask names nobody");
    troll.cmd("/join #c").await;
    troll.expect_error("banned").await;
    alice.cmd("/mode #c -b troll*!*@*").await;
    alice.expect("unbanned").await;
    troll.join("#c").await;
    alice.cmd("/ban #c bad mask").await;
    alice.expect_error("bad_arguments").await;
}

#[tokio::test]
async fn op_deop_voice_and_devoice_change_roles_and_powers() {
    let server = TestServer::start().await;
    let [mut alice, mut bob, mut carol] = server.in_channel("#c", ["alice", "bob", "carol"]).await;

    bob.cmd("/op #c bob").await;
    bob.expect_error("not_op").await;
    alice.cmd("/op #c bob").await;
    let mode = carol.expect("mode_changed").await;
    assert_eq!(
        (mode["modes"].as_str(), mode["args"][0].as_str(), mode["by"].as_str()),
        (Some("+o"), Some("bob"), Some("alice"))
    );
    bob.cmd("/names #c").await;
    let names = bob.expect("members").await;
    assert_eq!(member(&names, "bob").unwrap()["op"], true);
    // As an op, bob can now kick.
    bob.cmd("/kick #c carol").await;
    carol.expect("kicked").await;

    alice.cmd("/deop #c bob").await;
    assert_eq!(bob.expect("mode_changed").await["modes"], "-o");
    bob.cmd("/kick #c alice").await;
    bob.expect_error("not_op").await;

    alice.cmd("/voice #c bob").await;
    assert_eq!(bob.expect("mode_changed").await["modes"], "+v");
    alice.cmd("/devoice #c bob").await;
    assert_eq!(bob.expect("mode_changed").await["modes"], "-v");
    alice.cmd("/op #c nobody").await;
    alice.expect_error("no_such_nick").await;
}

#[tokio::test]
async fn a_moderated_channel_needs_voice_to_speak() {
    let server = TestServer::start().await;
    let [mut alice, mut bob] = server.in_channel("#c", ["alice", "bob"]).await;
    alice.cmd("/mode #c +m").await;
    assert_eq!(bob.expect("mode_changed").await["modes"], "+m");
    bob.say("#c", "hello?").await;
    bob.expect_error("cannot_send").await;
    alice.say("#c", "ops may speak").await;
    bob.expect("message").await;
    alice.expect("message").await;
    alice.cmd("/voice #c bob").await;
    bob.expect("mode_changed").await;
    bob.say("#c", "now I can").await;
    assert_eq!(alice.expect("message").await["text"], "now I can");
}

#[tokio::test]
async fn invite_only_channels_admit_the_invited() {
    let server = TestServer::start().await;
    let mut alice = server.guest("alice").await;
    let mut bob = server.guest("bob").await;
    alice.join("#club").await;
    alice.cmd("/mode #club +i").await;
    alice.expect("mode_changed").await;
    bob.cmd("/join #club").await;
    bob.expect_error("invite_only").await;
    alice.cmd("/invite bob #club").await;
    let invited = bob.expect("invited").await;
    assert_eq!((invited["channel"].as_str(), invited["by"].as_str()), (Some("#club"), Some("alice")));
    bob.join("#club").await;
    // The invite is used up: after leaving, bob needs a new one.
    bob.cmd("/part #club").await;
    bob.expect("parted").await;
    bob.cmd("/join #club").await;
    bob.expect_error("invite_only").await;
    alice.cmd("/invite alice #club").await;
    alice.expect_error("already_on_channel").await;
}

#[tokio::test]
async fn keys_and_limits_guard_the_door() {
    let server = TestServer::start().await;
    let mut alice = server.guest("alice").await;
    let mut bob = server.guest("bob").await;
    let mut carol = server.guest("carol").await;
    alice.join("#c").await;
    alice.cmd("/mode #c +kl sesame 2").await;
    let mode = alice.expect("mode_changed").await;
    assert_eq!(mode["modes"], "+k+l");
    assert_eq!(mode["args"], json!(["sesame", "2"]));
    bob.cmd("/join #c").await;
    bob.expect_error("bad_key").await;
    bob.cmd("/join #c wrong").await;
    bob.expect_error("bad_key").await;
    bob.cmd("/join #c sesame").await;
    bob.expect("members").await;
    carol.cmd("/join #c sesame").await;
    carol.expect_error("channel_full").await;

    alice.cmd("/mode #c").await;
    assert_eq!(alice.expect("members").await["modes"], "+tkl 2");
    alice.cmd("/mode #c -kl").await;
    alice.expect("mode_changed").await;
    carol.join("#c").await;
}

#[tokio::test]
async fn a_bad_mode_change_is_refused_whole() {
    let server = TestServer::start().await;
    let [mut alice, mut bob] = server.in_channel("#c", ["alice", "bob"]).await;
    alice.cmd("/ban #c *!*@kept.example").await;
    alice.expect("banned").await;
    bob.expect("banned").await;
    for (line, code) in [
        ("/mode #c +mz", "bad_arguments"),
        ("/mode #c +mo ghost", "no_such_nick"),
        ("/mode #c +l many", "bad_arguments"),
        // Valid parts before and after a refused one change nothing either.
        ("/mode #c +i-b nosuch!*@*", "no_such_ban"),
        ("/mode #c +kv sesame ghost", "no_such_nick"),
        ("/mode #c -b+mo *!*@kept.example ghost", "no_such_nick"),
        ("/mode #c +ov bob nobody", "no_such_nick"),
    ] {
        alice.cmd(line).await;
        alice.expect_error(code).await;
    }
    let events = bob.drain().await;
    assert!(
        !events.iter().any(|e| ["mode_changed", "banned", "unbanned"].contains(&e["type"].as_str().unwrap())),
        "nothing was announced: {events:?}"
    );
    alice.cmd("/mode #c").await;
    let members = alice.expect("members").await;
    assert_eq!(members["modes"], "+t", "nothing changed");
    assert_eq!(member(&members, "bob").unwrap()["op"], false);
    // The ban is still there, and bob can still join without a key.
    alice.cmd("/unban #c *!*@kept.example").await;
    alice.expect("unbanned").await;
    bob.cmd("/part #c").await;
    bob.join("#c").await;
}

#[tokio::test]
async fn an_invite_is_for_the_person_not_the_nick_and_expires_with_their_session() {
    let server = TestServer::start().await;
    let mut alice = server.guest("alice").await;
    let mut bob = server.guest("bob").await;
    alice.join("#club").await;
    alice.cmd("/mode #club +ik sesame").await;
    alice.expect("mode_changed").await;
    alice.cmd("/invite bob #club").await;
    bob.expect("invited").await;
    // bob leaves without joining; someone else takes the nick.
    bob.cmd("/quit").await;
    bob.expect_close().await;
    let mut impostor = server.guest("bob").await;
    impostor.cmd("/join #club").await;
    impostor.expect_error("invite_only").await;
    // An invited session keeps its invite across a nick change.
    let mut carol = server.guest("carol").await;
    alice.cmd("/invite carol #club").await;
    carol.expect("invited").await;
    carol.cmd("/nick carol2").await;
    carol.expect("nick_changed").await;
    carol.join("#club").await;
}

#[tokio::test]
async fn whois_shows_the_real_host_only_to_the_user_by_default() {
    let server = TestServer::start().await;
    let [mut alice, mut bob, mut carol] = server.in_channel("#c", ["alice", "bob", "carol"]).await;
    // Neither the channel's op nor a member sees bob's address.
    for asker in [&mut alice, &mut carol] {
        asker.cmd("/whois bob").await;
        let seen = asker.expect("whois").await;
        let cloak = seen["host"].as_str().unwrap();
        assert_cloaked(cloak);
        assert_eq!(seen["channels"], json!(["#c"]));
    }
    bob.cmd("/whois bob").await;
    assert_eq!(bob.expect("whois").await["host"], "127.0.0.1", "you see your own address");
    bob.cmd("/whois nobody").await;
    bob.expect_error("no_such_nick").await;
}

#[tokio::test]
async fn whois_shows_channel_ops_the_real_host_when_the_server_says_so() {
    let server = TestServer::start_with(|c| {
        c.whois_real_host = from_flags(&["--whois-real-host=channel-ops"]).whois_real_host
    })
    .await;
    let [mut alice, _bob, mut carol] = server.in_channel("#c", ["alice", "bob", "carol"]).await;
    alice.cmd("/whois bob").await;
    assert_eq!(alice.expect("whois").await["host"], "127.0.0.1");
    carol.cmd("/whois bob").await;
    assert!(carol.expect("whois").await["host"].as_str().unwrap().ends_with(".cloak"));
}

#[tokio::test]
async fn secret_and_private_channels_keep_their_insides_to_their_members() {
    let server = TestServer::start().await;
    let mut alice = server.guest("alice").await;
    let mut bob = server.guest("bob").await;
    alice.join("#hidden").await;
    alice.join("#quiet").await;
    alice.join("#open").await;
    alice.cmd("/topic #hidden the plan").await;
    alice.cmd("/topic #quiet the other plan").await;
    alice.cmd("/mode #hidden +s").await;
    assert_eq!(alice.expect("mode_changed").await["modes"], "+s");
    alice.cmd("/mode #quiet +p").await;
    assert_eq!(alice.expect("mode_changed").await["modes"], "+p");
    alice.drain().await;

    bob.cmd("/list").await;
    assert_eq!(
        bob.expect("list").await["channels"],
        json!([{"channel":"#open","members":1},{"channel":"#quiet","members":1}]),
        "a secret channel is not listed, a private one without its topic"
    );
    bob.cmd("/whois alice").await;
    assert_eq!(bob.expect("whois").await["channels"], json!(["#open"]));
    for (line, code) in [
        ("/names #hidden", "no_such_channel"),
        ("/topic #hidden", "no_such_channel"),
        ("/mode #hidden", "no_such_channel"),
        ("/names #quiet", "not_on_channel"),
        ("/topic #quiet", "not_on_channel"),
    ] {
        bob.cmd(line).await;
        bob.expect_error(code).await;
    }
    // Members see everything.
    alice.cmd("/list").await;
    let list = alice.expect("list").await;
    assert_eq!(list["channels"].as_array().unwrap().len(), 3);
    alice.cmd("/mode #hidden").await;
    assert_eq!(alice.expect("members").await["modes"], "+st");
    // Anyone may still join (the modes hide, they do not lock).
    bob.join("#hidden").await;
    bob.cmd("/topic #hidden").await;
    assert_eq!(bob.expect("topic").await["topic"], "the plan");
}

#[tokio::test]
async fn list_and_names_describe_channels() {
    let server = TestServer::start().await;
    let [mut alice, mut bob] = server.in_channel("#big", ["alice", "bob"]).await;
    bob.join("#small").await;
    alice.cmd("/topic #big the big one").await;
    alice.cmd("/list").await;
    let list = alice.expect("list").await;
    assert_eq!(
        list["channels"],
        json!([{"channel":"#big","members":2,"topic":"the big one"},{"channel":"#small","members":1}])
    );
    alice.cmd("/names #small").await;
    let names = alice.expect("members").await;
    assert_eq!(names["members"], json!([{"nick":"bob","op":true,"voice":false,"away":false}]));
    alice.cmd("/names #none").await;
    alice.expect_error("no_such_channel").await;
}

#[tokio::test]
async fn quitting_tells_channel_members_and_closes_normally() {
    let server = TestServer::start().await;
    let [mut alice, mut bob] = server.in_channel("#c", ["alice", "bob"]).await;
    bob.cmd("/quit off to bed").await;
    let close = bob.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1000);
    let quit = alice.expect("quit").await;
    assert_eq!((quit["nick"].as_str(), quit["reason"].as_str()), (Some("bob"), Some("off to bed")));
    // The nick is free again.
    server.guest("bob").await;
}

#[tokio::test]
async fn names_and_channels_are_validated_and_case_insensitive() {
    let server = TestServer::start().await;
    let mut alice = server.guest("alice").await;
    let mut bob = server.guest("bob").await;
    for bad in ["#", "#a,b", "#bidi\u{202e}x", "#ctl\u{7}"] {
        alice.send(json!({"type":"command","line":format!("/join {bad}")})).await;
        alice.expect_error("invalid_channel").await;
    }
    alice.cmd("/join nochan").await;
    alice.expect_error("invalid_channel").await;
    alice.join("#Rust").await;
    let members = bob.join("#rust").await;
    assert_eq!(members["channel"], "#Rust", "one channel, spelled as created");
    alice.cmd("/join #RUST").await;
    alice.expect_error("already_on_channel").await;
}

#[tokio::test]
async fn a_user_may_be_in_a_limited_number_of_channels() {
    let server = TestServer::start_with(|c| c.max_channels = 2).await;
    let mut alice = server.guest("alice").await;
    alice.join("#a").await;
    alice.join("#b").await;
    alice.cmd("/join #c").await;
    alice.expect_error("too_many_channels").await;
}

#[tokio::test]
async fn messages_are_checked_for_length_and_content() {
    let server = TestServer::start_with(|c| c.max_text_bytes = 100).await;
    let mut alice = server.guest("alice").await;
    alice.join("#c").await;
    alice.say("#c", &"x".repeat(101)).await;
    alice.expect_error("too_long").await;
    alice.say("#c", "   ").await;
    alice.expect_error("empty_text").await;
    alice.say("#c", "nul\u{0}byte").await;
    alice.expect_error("invalid_text").await;
    alice.say("#c", "line one\nline two").await;
    assert_eq!(alice.expect("message").await["text"], "line one\nline two");
}

#[tokio::test]
async fn away_reaches_everyone_sharing_a_channel_and_members_carry_the_message() {
    let server = TestServer::start().await;
    let mut alice = server.guest("alice").await;
    let mut bob = server.guest("bob").await;
    alice.join("#a").await;
    bob.join("#a").await;
    bob.cmd("/away gone for lunch").await;
    assert_eq!(alice.expect("away").await, json!({"type":"away","nick":"bob","message":"gone for lunch"}));
    let mut carol = server.guest("carol").await;
    let members = carol.join("#a").await;
    let entry = member(&members, "bob").unwrap();
    assert_eq!(
        (entry["away"].as_bool(), entry["away_message"].as_str()),
        (Some(true), Some("gone for lunch"))
    );
    // Too long, with control characters or on two lines: refused, and nothing changes.
    let bad = [
        ("x".repeat(301), "too_long"),
        ("a\u{7}b".to_owned(), "invalid_text"),
        ("a\u{2028}b".to_owned(), "invalid_text"),
        ("a\u{2029}b".to_owned(), "invalid_text"),
    ];
    for (bad, code) in bad {
        bob.cmd(&format!("/away {bad}")).await;
        bob.expect_error(code).await;
    }
    carol.cmd("/names #a").await;
    let names = carol.expect("members").await;
    assert_eq!(member(&names, "bob").unwrap()["away_message"], "gone for lunch");
    bob.cmd("/away").await;
    assert_eq!(carol.expect("away").await, json!({"type":"away","nick":"bob"}));
    carol.cmd("/names #a").await;
    let names = carol.expect("members").await;
    assert_eq!(member(&names, "bob").unwrap(), &json!({"nick":"bob","op":false,"voice":false,"away":false}));
}

#[tokio::test]
async fn an_empty_channel_key_is_refused_as_a_command_and_as_data() {
    let server = TestServer::start().await;
    let mut op = server.guest("keyop").await;
    op.join("#k").await;
    op.send(json!({"type":"run","command":{"command":"mode","channel":"#k","modes":"+k","args":[""]}})).await;
    op.expect_error("bad_arguments").await;
    op.cmd("/mode #k +k has,comma").await;
    op.expect_error("bad_arguments").await;
    // No key was set: anyone joins without one.
    let mut other = server.guest("keyless").await;
    other.join("#k").await;
}

//! The server API that apps call with the shared secret: posting as a bot.

use serde_json::{json, Value};

use crate::common::{Client, TestServer, SECRET};

async fn post(server: &TestServer, body: Value) -> (u16, Value) {
    server.post_api("/api/messages", Some(&format!("Bearer {SECRET}")), &body.to_string()).await
}

#[tokio::test]
async fn a_bot_posts_to_a_channel_and_to_someone_and_its_messages_are_stored() {
    let server = TestServer::start().await;
    let [mut alice, mut bob] = server.in_channel("#news", ["alice", "bob"]).await;

    let (status, posted) =
        post(&server, json!({"target":"#NEWS","text":"build 42 is out","from":"ci-bot"})).await;
    assert_eq!(status, 200, "{posted}");
    assert_eq!((posted["from"].as_str(), posted["target"].as_str()), (Some("ci-bot"), Some("#news")));
    assert_eq!(posted["bot"], true);
    for member in [&mut alice, &mut bob] {
        let got = member.expect("message").await;
        assert_eq!(
            (got["id"].clone(), got["text"].as_str(), got["bot"].clone()),
            (posted["id"].clone(), Some("build 42 is out"), json!(true))
        );
    }
    // In the channel's history, bot mark and all, for whoever joins later.
    let mut carol = server.guest("carol").await;
    carol.cmd("/join #news").await;
    let history = carol.expect("history").await;
    assert_eq!(history["messages"][0]["text"], "build 42 is out");
    assert_eq!(history["messages"][0]["bot"], true);

    // A private message goes to that user alone.
    let (status, _) =
        post(&server, json!({"target":"alice","text":"your build passed","from":"ci-bot"})).await;
    assert_eq!(status, 200);
    let pm = alice.expect("message").await;
    assert_eq!(
        (pm["from"].as_str(), pm["target"].as_str(), pm["bot"].clone()),
        (Some("ci-bot"), Some("alice"), json!(true))
    );
    bob.assert_no("message").await;

    // A channel nobody is in keeps the message for whoever comes.
    let (status, _) = post(&server, json!({"target":"#later","text":"first!","from":"ci-bot"})).await;
    assert_eq!(status, 200);
    carol.cmd("/join #later").await;
    assert_eq!(carol.expect("history").await["messages"][0]["text"], "first!");
}

#[tokio::test]
async fn a_bot_name_is_nobody_elses_and_nobody_takes_it() {
    let server = TestServer::start().await;
    let _alice = server.guest("alice").await;
    let _app_user = server.user("shopkeeper").await;
    let say = |from: &str| json!({"target":"#c","text":"hi","from":from});
    for (from, status, code) in [
        ("alice", 409, "nick_in_use"),
        ("ALICE", 409, "nick_in_use"),
        ("shopkeeper", 409, "nick_reserved"),
        ("Potato", 409, "nick_reserved"),
        ("has space", 400, "invalid_nick"),
    ] {
        let (got, body) = post(&server, say(from)).await;
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{from}: {body}");
    }
    // Once used, the name is the bot's: no guest logs in with it, no user takes it by /nick.
    assert_eq!(post(&server, say("helper")).await.0, 200);
    let mut guest = Client::connect(&server).await;
    guest.send(json!({"type":"auth","nick":"Helper"})).await;
    guest.expect_error("nick_reserved").await;
    let mut dave = server.guest("dave").await;
    dave.cmd("/nick helper").await;
    dave.expect_error("nick_reserved").await;
    assert_eq!(post(&server, say("helper")).await.0, 200, "the bot goes on posting");
}

#[tokio::test]
async fn bad_posts_are_refused_with_a_code_and_change_nothing() {
    let server = TestServer::start().await;
    let [mut alice] = server.in_channel("#c", ["alice"]).await;
    let cases = [
        (json!({"target":"#c","text":"","from":"bot"}), 400, "empty_text"),
        (json!({"target":"#c","text":"x".repeat(4001),"from":"bot"}), 400, "too_long"),
        (json!({"target":"#c","text":"bell\u{7}","from":"bot"}), 400, "invalid_text"),
        (json!({"target":"nobody","text":"hi","from":"bot"}), 404, "no_such_nick"),
        (json!({"target":"#bad name","text":"hi","from":"bot"}), 400, "invalid_channel"),
        (json!({"target":"#c","text":"hi","from":"bot","extra":1}), 400, "bad_arguments"),
    ];
    for (body, status, code) in cases {
        let (got, answer) = post(&server, body.clone()).await;
        assert_eq!((got, answer["code"].as_str()), (status, Some(code)), "{body}: {answer}");
    }
    let (status, _) = server
        .post_api("/api/messages", Some("Bearer wrong"), r##"{"target":"#c","text":"hi","from":"bot"}"##)
        .await;
    assert_eq!(status, 401);
    alice.assert_no("message").await;
}

async fn get(server: &TestServer, path: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .get(server.url(path))
        .header("authorization", format!("Bearer {SECRET}"))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_app_sees_channels_members_presence_and_history() {
    let server = TestServer::start().await;
    let [mut alice, _bob] = server.in_channel("#Rust", ["alice", "bob"]).await;
    alice.cmd("/topic #rust borrowck talk").await;
    alice.expect("topic").await;
    alice.cmd("/mode #rust +s").await;
    alice.expect("mode_changed").await;
    alice.cmd("/away lunch").await;
    alice.expect("away").await;
    alice.say("#rust", "first").await;
    alice.expect("message").await;
    let _carol = server.guest("carol").await;

    let (status, channels) = get(&server, "/api/channels").await;
    assert_eq!(status, 200);
    assert_eq!(
        channels,
        json!([{"channel":"#Rust","members":2,"topic":"borrowck talk","modes":"+st","registered":false}]),
        "secret channels included"
    );

    for path in ["/api/channels/%23rust/members", "/api/channels/rust/members"] {
        let (status, members) = get(&server, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(members["channel"], "#Rust");
        let nicks: Vec<&str> =
            members["members"].as_array().unwrap().iter().map(|m| m["nick"].as_str().unwrap()).collect();
        assert_eq!(nicks, ["alice", "bob"], "the op first");
        assert_eq!(members["members"][0]["away_message"], "lunch");
    }
    assert_eq!(get(&server, "/api/channels/%23nowhere/members").await.1["code"], "no_such_channel");
    assert_eq!(get(&server, "/api/channels/bad%20name/members").await.1["code"], "invalid_channel");

    let (status, users) = get(&server, "/api/users").await;
    assert_eq!(status, 200);
    let nicks: Vec<&str> = users.as_array().unwrap().iter().map(|u| u["nick"].as_str().unwrap()).collect();
    assert_eq!(nicks, ["alice", "bob", "carol"]);
    let (status, alice_now) = get(&server, "/api/users/ALICE").await;
    assert_eq!(status, 200);
    assert_eq!(
        (alice_now["nick"].clone(), alice_now["away"].clone(), alice_now["channels"].clone()),
        (json!("alice"), json!("lunch"), json!(["#Rust"]))
    );
    assert!(alice_now.get("account").is_none(), "a guest has no account");
    assert_eq!(get(&server, "/api/users/nobody").await, (404, get(&server, "/api/users/nobody").await.1));
    assert_eq!(get(&server, "/api/users/nobody").await.1["code"], "no_such_nick");

    let (status, page) = get(&server, "/api/channels/rust/history?limit=10").await;
    assert_eq!(status, 200);
    assert_eq!((page["messages"][0]["text"].clone(), page["more"].clone()), (json!("first"), json!(false)));
    let before = page["messages"][0]["id"].as_u64().unwrap();
    let (_, older) = get(&server, &format!("/api/channels/rust/history?before={before}")).await;
    assert_eq!(older["messages"], json!([]));
    assert_eq!(get(&server, "/api/channels/rust/history?limit=x").await.0, 400);
    assert_eq!(
        get(&server, "/api/channels/rust/history?limit=0").await,
        (400, json!({"type":"error","code":"bad_arguments","message":"a history page's limit is 1 to 100"}))
    );
    // Without the secret, nothing.
    let res = reqwest::get(server.url("/api/users")).await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
}

async fn act(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    server.post_api(path, Some(&format!("Bearer {SECRET}")), &body.to_string()).await
}

#[tokio::test]
async fn the_app_moderates_with_an_operators_rights_under_a_name_of_its_own() {
    let server = TestServer::start().await;
    let [mut alice, mut mallory] = server.in_channel("#room", ["alice", "mallory"]).await;
    alice.cmd("/mode #room +t").await;

    let (status, done) =
        act(&server, "/api/channels/room/topic", json!({"topic":"Release day","by":"modbot"})).await;
    assert_eq!((status, done), (200, json!({"channel":"#room","changes":["topic"]})));
    let topic = mallory.expect("topic").await;
    assert_eq!((topic["topic"].as_str(), topic["set_by"].as_str()), (Some("Release day"), Some("modbot")));

    let (status, done) = act(&server, "/api/channels/%23room/bans", json!({"mask":"mallory"})).await;
    assert_eq!((status, done["changes"].clone()), (200, json!(["banned"])));
    let banned = alice.expect("banned").await;
    assert_eq!((banned["by"].as_str(), banned["nick"].as_str()), (Some("Chattr"), Some("mallory")));
    assert!(
        banned["mask"].as_str().unwrap().starts_with("*!*@"),
        "an online nick bans their cloak: {banned}"
    );
    assert_eq!(
        act(&server, "/api/channels/room/bans", json!({"mask":"mallory"})).await.1["changes"],
        json!([])
    );
    assert!(
        !mallory.try_say("#room", "still here").await
            || mallory.expect_error("banned").await["code"] == "banned"
    );

    let (status, _) =
        act(&server, "/api/channels/room/kick", json!({"nick":"mallory","reason":"spam","by":"modbot"}))
            .await;
    assert_eq!(status, 200);
    let kicked = mallory.expect("kicked").await;
    assert_eq!((kicked["by"].as_str(), kicked["reason"].as_str()), (Some("modbot"), Some("spam")));
    mallory.cmd("/join #room").await;
    mallory.expect_error("banned").await;

    let (status, done) = act(&server, "/api/channels/room/unban", json!({"mask":"mallory"})).await;
    assert_eq!((status, done["changes"].clone()), (200, json!(["unbanned"])));
    mallory.cmd("/join #room").await;
    mallory.expect("joined").await;

    let (status, reached) =
        act(&server, "/api/notices", json!({"target":"#room","text":"Maintenance at 18:00","from":"ops"}))
            .await;
    assert_eq!((status, reached), (200, json!({"reached":2})));
    let notice = alice.expect("notice").await;
    assert_eq!(
        (notice["from"].as_str(), notice["text"].as_str()),
        (Some("ops"), Some("Maintenance at 18:00"))
    );

    for (path, body, status, code) in [
        ("/api/channels/room/kick", json!({"nick":"nobody"}), 404, "no_such_nick"),
        ("/api/channels/nowhere/kick", json!({"nick":"alice"}), 404, "no_such_channel"),
        ("/api/channels/room/unban", json!({"mask":"zed!*@*"}), 404, "no_such_ban"),
        ("/api/channels/room/topic", json!({"topic":"x","by":"has space"}), 400, "invalid_nick"),
        ("/api/notices", json!({"target":"#room","text":""}), 400, "empty_text"),
        ("/api/channels/room/kick", json!({"nick":"alice","extra":true}), 400, "bad_arguments"),
    ] {
        let (got, answer) = act(&server, path, body.clone()).await;
        assert_eq!((got, answer["code"].as_str()), (status, Some(code)), "{path} {body}: {answer}");
    }
}

#[tokio::test]
async fn the_app_posts_as_the_system_under_the_servers_own_name() {
    let server = TestServer::start().await;
    let [mut alice] = server.in_channel("#news", ["alice"]).await;
    let (status, posted) = post(&server, json!({"target":"#news","text":"Maintenance at noon"})).await;
    assert_eq!(status, 200, "{posted}");
    assert_eq!((posted["from"].as_str(), posted["bot"].as_bool()), (Some("Chattr"), Some(true)));
    let got = alice.expect("message").await;
    assert_eq!((got["from"].as_str(), got["text"].as_str()), (Some("Chattr"), Some("Maintenance at noon")));
    // To one person too, and nobody can be Chattr.
    assert_eq!(post(&server, json!({"target":"alice","text":"your order shipped"})).await.0, 200);
    assert_eq!(alice.expect("message").await["from"], "Chattr");
    let mut guest = Client::connect(&server).await;
    guest.send(json!({"type":"auth","nick":"Chattr"})).await;
    guest.expect_error("nick_reserved").await;
}

async fn create(server: &TestServer, body: Value) -> (u16, Value) {
    server.post_api("/api/channels", Some(&format!("Bearer {SECRET}")), &body.to_string()).await
}

#[tokio::test]
async fn the_app_sets_up_a_channel_with_its_settings_before_anyone_is_in_it() {
    let server = TestServer::start().await;
    let (status, created) = create(
        &server,
        json!({"channel":"#Support","topic":"Ask us anything","moderated":true,"key":"hunter2",
               "limit":50,"ops":["alice","app:alice"],"founder":"boss"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created,
        json!({"channel":"#Support","founder":"app:boss","ops":["app:alice"],"modes":"+mtkl 50",
               "topic":"Ask us anything","members":0})
    );
    let (status, again) = create(&server, json!({"channel":"#support"})).await;
    assert_eq!((status, again["code"].as_str()), (409, Some("channel_registered")));

    // The key keeps strangers out; inside, +m keeps a non-op quiet and the topic is there.
    let mut visitor = server.guest("visitor").await;
    visitor.cmd("/join #support").await;
    visitor.expect_error("bad_key").await;
    visitor.cmd("/join #support hunter2").await;
    visitor.expect("joined").await;
    assert_eq!(visitor.expect("topic").await["topic"], "Ask us anything");
    let members = visitor.expect("members").await;
    assert_eq!(
        members["members"][0]["op"], false,
        "a registered channel makes no first joiner op: {members}"
    );
    visitor.say("#support", "hello?").await;
    visitor.expect_error("cannot_send").await;
    // The app's user on the op list is op on joining, and may speak.
    let mut alice = server.user("alice").await;
    alice.cmd("/join #support hunter2").await;
    let members = loop {
        let m = alice.expect("members").await;
        if m["channel"] == "#Support" {
            break m;
        }
    };
    let me = crate::common::member(&members, "alice").cloned().unwrap();
    assert_eq!(me["op"], true, "{members}");
    // The channel is listed as registered.
    let (_, channels) = get(&server, "/api/channels").await;
    assert_eq!(channels[0]["registered"], true, "{channels}");
}

#[tokio::test]
async fn the_app_sets_up_a_channel_people_are_in_and_they_see_it_change() {
    let server = TestServer::start().await;
    let mut carol = server.user("carol").await;
    let [mut alice, mut bob] = server.in_channel("#room", ["alice", "bob"]).await;
    carol.join("#room").await;
    alice.drain().await;
    let (status, created) = create(
        &server,
        json!({"channel":"#room","moderated":true,"topic":"Quiet please","ops":["carol"],"by":"modbot"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!((created["members"].as_u64(), created["modes"].as_str()), (Some(3), Some("+mt")));
    let mode = bob.expect("mode_changed").await;
    assert_eq!((mode["by"].as_str(), mode["modes"].as_str()), (Some("modbot"), Some("+m")));
    let topic = bob.expect("topic").await;
    assert_eq!((topic["topic"].as_str(), topic["set_by"].as_str()), (Some("Quiet please"), Some("modbot")));
    // carol, on the op list, is op now.
    let op = loop {
        let e = bob.expect("mode_changed").await;
        if e["modes"] == "+o" {
            break e;
        }
    };
    assert_eq!(op["args"], json!(["carol"]));
    let registration = bob.expect("registration").await;
    assert_eq!(registration["founder"], "Chattr");
    bob.say("#room", "can I talk?").await;
    bob.expect_error("cannot_send").await;
}

#[tokio::test]
async fn bad_channel_settings_are_refused_with_a_code_and_change_nothing() {
    let server = TestServer::start().await;
    for (body, status, code) in [
        (json!({"channel":"support"}), 400, "invalid_channel"),
        (json!({"channel":"#a b"}), 400, "invalid_channel"),
        (json!({"channel":"#x","key":"has space"}), 400, "bad_arguments"),
        (json!({"channel":"#x","key":""}), 400, "bad_arguments"),
        (json!({"channel":"#x","limit":0}), 400, "bad_arguments"),
        (json!({"channel":"#x","limit":-1}), 400, "bad_arguments"),
        (json!({"channel":"#x","topic":"t".repeat(391)}), 400, "too_long"),
        (json!({"channel":"#x","ops":["potato:nobody"]}), 404, "no_such_account"),
        (json!({"channel":"#x","ops":["has space"]}), 400, "invalid_nick"),
        (json!({"channel":"#x","founder":"Potato"}), 400, "invalid_nick"),
        (json!({"channel":"#x","by":"has space"}), 400, "invalid_nick"),
        (json!({"channel":"#x","moderated":"yes"}), 400, "bad_arguments"),
        (json!({"channel":"#x","colour":"red"}), 400, "bad_arguments"),
    ] {
        let (got, answer) = create(&server, body.clone()).await;
        assert_eq!((got, answer["code"].as_str()), (status, Some(code)), "{body}: {answer}");
    }
    // None of them set anything up: #x is still free to set up.
    assert_eq!(create(&server, json!({"channel":"#x"})).await.0, 201);
    let (status, _) =
        server.post_api("/api/channels", Some("Bearer wrong"), &json!({"channel":"#y"}).to_string()).await;
    assert_eq!(status, 401);
    assert_eq!(create(&server, json!({"channel":"#y"})).await.0, 201, "a refused secret set nothing up");
}

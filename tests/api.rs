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
        (json!({"target":"#c","text":"hi"}), 400, "bad_arguments"),
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

//! Durability on the real binary and the real on-disk store: a clean restart keeps accounts,
//! registered channels (op list, bans, topic) and history, and `kill -9` loses nothing the
//! server acknowledged.

use app::protocol::ChatMessage;
use futures::future::join_all;
use serde_json::{json, Value};

use crate::common::{Client, SECRET};
use crate::internals::store_channel_messages;
use crate::process::{connect, tempdir, Process};

const PW: &str = "restart-proof-password";

async fn registered(addr: &str, nick: &str) -> Client {
    let mut c = connect(addr, nick).await;
    c.nick = nick.to_owned();
    c.register(PW).await;
    c
}

async fn identified(addr: &str, nick: &str) -> Client {
    let mut c = connect(addr, &format!("{nick}-new")).await;
    c.nick = format!("{nick}-new");
    c.identify(nick, PW).await;
    c.nick = nick.to_owned();
    c
}

#[tokio::test]
async fn accounts_channels_bans_topic_and_history_survive_a_restart() {
    let dir = tempdir();
    let mut first = Process::start(&dir).await.expect("start");
    let opened = first.startup_log.iter().find(|l| l.contains("store opened")).expect("the store is logged");
    assert!(opened.contains("every commit is fsynced"), "{opened}");
    let mut alice = registered(&first.addr, "alice").await;
    let mut bob = registered(&first.addr, "bob").await;
    alice.join("#r").await;
    alice.cmd("/celery register #r").await;
    alice.notice("Celery").await;
    alice.cmd("/celery op #r bob").await;
    alice.notice("Celery").await;
    alice.cmd("/ban #r mallory!*@*").await;
    alice.expect("banned").await;
    alice.cmd("/topic #r survives restarts").await;
    alice.expect("topic").await;
    alice.say("#r", "remember me").await;
    alice.expect("message").await;
    alice.say("bob", "a private word").await;
    bob.expect("message").await;
    assert_eq!(first.terminate().await.code(), Some(0));

    let restarted = Process::start(&dir).await.expect("restart");
    let mut alice = identified(&restarted.addr, "alice").await;
    alice.cmd("/join #r").await;
    let topic = alice.expect("topic").await;
    assert_eq!(topic["topic"], "survives restarts");
    let members = alice.expect("members").await;
    assert_eq!(members["members"][0]["op"], true, "the founder is op on join: {members}");
    let history = alice.expect("history").await;
    assert_eq!(history["messages"][0]["text"], "remember me");

    let mut bob = identified(&restarted.addr, "bob").await;
    let members = bob.join("#r").await;
    let bob_entry = members["members"].as_array().unwrap().iter().find(|m| m["nick"] == "bob").cloned();
    assert_eq!(bob_entry.map(|m| m["op"].clone()), Some(Value::Bool(true)), "bob is on the op list");
    bob.send(json!({"type":"history","target":"alice"})).await;
    assert_eq!(bob.expect("history").await["messages"][0]["text"], "a private word");

    let mut mallory = connect(&restarted.addr, "mallory").await;
    mallory.cmd("/join #r").await;
    mallory.expect_error("banned").await;
    // The nick is still protected.
    let mut squatter = connect(&restarted.addr, "alice-old").await;
    squatter.cmd("/nick bob").await;
    squatter.expect_error("nick_in_use").await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn kill_9_loses_no_acknowledged_registration_or_message() {
    const N: usize = 20;
    let dir = tempdir();
    let mut first = Process::start(&dir).await.expect("start");
    let addr = first.addr.clone();
    // Registrations run concurrently; each counts once its acknowledgement arrived.
    let clients = join_all((0..N).map(|i| {
        let addr = addr.clone();
        async move { registered(&addr, &format!("user{i}")).await }
    }))
    .await;
    let mut talker = connect(&addr, "talker").await;
    talker.join("#log").await;
    for i in 0..N {
        talker.say("#log", &format!("line {i}")).await;
        talker.expect("message").await;
    }
    first.kill().await;
    drop(clients);

    let restarted = Process::start(&dir).await.expect("restart after kill -9");
    for i in 0..N {
        identified(&restarted.addr, &format!("user{i}")).await;
    }
    let mut reader = connect(&restarted.addr, "reader").await;
    reader.cmd("/join #log").await;
    let history = reader.expect("history").await;
    let texts: Vec<&str> =
        history["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    let want: Vec<String> = (0..N).map(|i| format!("line {i}")).collect();
    assert_eq!(texts, want);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn messages_past_the_retention_age_are_gone_after_a_restart() {
    let dir = tempdir();
    let mut first = Process::start(&dir).await.expect("start");
    let mut alice = connect(&first.addr, "alice").await;
    alice.join("#old").await;
    alice.say("#old", "soon expired").await;
    alice.expect("message").await;
    assert_eq!(first.terminate().await.code(), Some(0));

    // Kept by default.
    let mut second = Process::start(&dir).await.expect("restart");
    let mut bob = connect(&second.addr, "bob").await;
    bob.cmd("/join #old").await;
    assert_eq!(bob.expect("history").await["messages"][0]["text"], "soon expired");
    assert_eq!(second.terminate().await.code(), Some(0));

    let third = Process::start_with(&dir, &[("CHATTR_HISTORY_MAX_AGE", "1ms")]).await.expect("restart");
    let mut carol = connect(&third.addr, "carol").await;
    carol.cmd("/join #old").await;
    assert_eq!(carol.expect("history").await["messages"], json!([]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_second_process_on_the_same_data_dir_fails_fast_and_says_why() {
    let dir = tempdir();
    let mut first = Process::start(&dir).await.expect("start");
    let refusal = Process::start(&dir).await.err().expect("the second process is refused");
    assert!(refusal.contains("exit status: 1"), "{refusal}");
    assert!(refusal.contains("in use by another chattrd process"), "{refusal}");
    // The first one is unharmed.
    connect(&first.addr, "alice").await;
    assert!(first.terminate().await.success());
}

#[tokio::test]
async fn a_revocation_holds_across_a_restart() {
    let dir = tempdir();
    let mut first = Process::start(&dir).await.expect("start");
    let http = reqwest::Client::new();
    let token = |addr: String| {
        let http = http.clone();
        async move {
            let res = http
                .post(format!("http://{addr}/api/token"))
                .bearer_auth(SECRET)
                .json(&json!({"user":"alice"}))
                .send()
                .await
                .unwrap();
            res.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
        }
    };
    let old = token(first.addr.clone()).await;
    let res = http
        .post(first.url("/api/revoke"))
        .bearer_auth(SECRET)
        .json(&json!({"user":"alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let fresh = token(first.addr.clone()).await;
    assert!(first.terminate().await.success());

    let mut second = Process::start(&dir).await.expect("restart");
    let login = |token: String| {
        let addr = second.addr.clone();
        async move {
            let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await.unwrap();
            let mut c = Client::from_socket(ws);
            c.send(json!({"type":"auth","token":token})).await;
            c.next_event().await
        }
    };
    let refused = login(old).await;
    assert_eq!((refused["type"].as_str(), refused["code"].as_str()), (Some("error"), Some("token_revoked")));
    assert_eq!(login(fresh).await["type"], "welcome");
    assert!(second.terminate().await.success());
}

#[tokio::test]
async fn after_the_clock_steps_back_new_messages_still_get_higher_ids_and_none_is_refused() {
    // A store written while the clock was an hour ahead: that is what a clock stepped back
    // (NTP, a restored VM) leaves behind.
    let dir = tempdir();
    let ahead_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
        as u64
        + 3_600_000;
    let early = (0..50)
        .map(|i| ChatMessage {
            id: (ahead_ms << 10) + i,
            ts: ahead_ms,
            from: "early".into(),
            target: "#c".into(),
            text: format!("from the future {i}"),
            action: false,
            bot: false,
            txn: None,
        })
        .collect();
    store_channel_messages(&format!("surrealkv://{}", dir.display()), early).await;
    // The embedded store releases its directory shortly after its last handle is gone; there
    // is no signal for that, so retry for a bounded time.
    let mut attempts = 0;
    let mut server = loop {
        match Process::start(&dir).await {
            Ok(p) => break p,
            Err(e) if e.contains("in use by another chattrd process") && attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    let mut alice = connect(&server.addr, "alice").await;
    alice.join("#c").await;
    let mut ids = Vec::new();
    for i in 0..400 {
        alice.say("#c", &format!("now {i}")).await;
        let event = alice.expect("message").await;
        ids.push(event["id"].as_u64().unwrap());
    }
    assert!(
        ids[0] > (ahead_ms << 10) + 49,
        "new ids are above every stored one: {} <= {}",
        ids[0],
        (ahead_ms << 10) + 49
    );
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    alice.send(json!({"type":"history","target":"#c","limit":100})).await;
    let page = alice.expect("history").await;
    let texts: Vec<&str> =
        page["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts.last(), Some(&"now 399"), "new messages sort after the old ones");
    assert!(server.terminate().await.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_clean_stop_logs_no_errors() {
    let dir = tempdir();
    let mut server = Process::start(&dir).await.expect("start");
    let mut alice = connect(&server.addr, "alice").await;
    alice.nick = "alice".into();
    alice.register(PW).await;
    alice.join("#c").await;
    alice.say("#c", "hello").await;
    alice.expect("message").await;
    assert!(server.terminate().await.success());
    let log = server.log();
    assert!(log.iter().any(|l| l.contains("chattrd stopped")), "{log:?}");
    // (SurrealDB drops one handle on the engine on a thread of its own pool, which makes the
    // engine warn that it has no runtime there; it then closes cleanly. Warnings page nobody.)
    let errors: Vec<&String> = log.iter().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "a clean stop pages nobody: {errors:?}");
    assert!(log.iter().any(|l| l.contains("LSM tree shutdown complete")), "the engine closed: {log:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_channel_the_app_set_up_keeps_its_settings_across_a_restart() {
    let dir = tempdir();
    let mut first = Process::start(&dir).await.expect("start");
    let res = reqwest::Client::new()
        .post(first.url("/api/channels"))
        .bearer_auth(SECRET)
        .json(&json!({"channel":"#desk","topic":"Opening hours: 9-5","invite_only":true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert!(first.terminate().await.success());

    let restarted = Process::start(&dir).await.expect("restart");
    let mut visitor = connect(&restarted.addr, "visitor").await;
    visitor.cmd("/join #desk").await;
    visitor.expect_error("invite_only").await;
    visitor.cmd("/celery info #desk").await;
    let info = visitor.notice("Celery").await;
    assert!(info.contains("by Chattr") && info.contains("topic: Opening hours: 9-5"), "{info}");
    let _ = std::fs::remove_dir_all(&dir);
}

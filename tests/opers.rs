//! Server operators (`CHATTR_OPERS`): accounts that, while identified, may disconnect anyone,
//! ban from the whole server (at once, at every login, across restarts), lift such bans, send
//! everyone a notice, read the figures and the audit log, and see real addresses. Everyone
//! else is refused with `not_oper`.

use serde_json::{json, Value};

use crate::common::{Client, TestServer};
use crate::process::{connect, tempdir, Process};

const PW: &str = "operator-password-1";

async fn with_opers() -> TestServer {
    TestServer::start_with(|c| c.opers = vec!["potato:root".into(), "app:admin".into()]).await
}

/// `root`, registered with Potato (and so identified as `potato:root`, an operator): it is
/// told so before Potato's confirmation.
async fn root(server: &TestServer) -> Client {
    let mut root = server.guest("root").await;
    register(&mut root).await;
    root
}

async fn register(root: &mut Client) {
    root.cmd(&format!("/potato register {PW} root@mail.example")).await;
    let mut events = Vec::new();
    loop {
        let event = root.next_event().await;
        let done = event["type"] == "notice" && event["from"] == "Potato";
        events.push(event);
        if done {
            break;
        }
    }
    assert!(events.iter().any(|e| e["type"] == "oper_status" && e["oper"] == true), "{events:?}");
}

#[tokio::test]
async fn only_identified_operators_have_the_powers() {
    let server = with_opers().await;
    let _root = root(&server).await;
    let mut mallory = server.guest("mallory").await;
    for line in
        ["/kill root", "/kline 1.2.3.4", "/unkline 1.2.3.4", "/klines", "/gnotice hi", "/stats", "/audit"]
    {
        mallory.cmd(line).await;
        mallory.expect_error("not_oper").await;
    }
    // A registered account that is not named is no operator either.
    let mut bob = server.guest("bob").await;
    bob.register(PW).await;
    bob.cmd("/stats").await;
    bob.expect_error("not_oper").await;
    // An app user named in CHATTR_OPERS is one from the login on.
    let mut admin = server.user("admin").await;
    assert_eq!(admin.expect("oper_status").await["oper"], true);
    admin.cmd("/stats").await;
    assert_eq!(admin.expect("stats").await["opers"], 2);
}

#[tokio::test]
async fn kill_disconnects_with_a_reason_everyone_sees_and_the_audit_log_keeps_it() {
    let server = with_opers().await;
    let mut root = root(&server).await;
    let [mut bob, mut carol] = server.in_channel("#c", ["bob", "carol"]).await;
    root.cmd("/kill bob flooding the channel").await;
    let (events, close) = bob.events_until_close().await;
    assert!(
        events.iter().any(|e| e["type"] == "notice" && e["text"] == "Killed by root: flooding the channel"),
        "{events:?}"
    );
    assert_eq!(close.map(|c| c.reason.to_string()).as_deref(), Some("killed"));
    let quit = carol.expect("quit").await;
    assert_eq!(
        (quit["nick"].as_str(), quit["reason"].as_str()),
        (Some("bob"), Some("Killed by root: flooding the channel"))
    );
    root.cmd("/kill bob").await;
    root.expect_error("no_such_nick").await;

    root.cmd("/audit").await;
    let entries = root.expect("audit_log").await["entries"].clone();
    let kill = &entries[0];
    assert_eq!(kill["action"], "kill");
    assert_eq!(kill["target"], "bob");
    assert_eq!(kill["reason"], "flooding the channel");
    assert_eq!(kill["oper"], "potato:root");
    assert_eq!(kill["nick"], "root");
    assert_eq!(kill["from"], "127.0.0.1");
}

#[tokio::test]
async fn a_kline_ends_the_sessions_it_matches_and_refuses_their_logins_until_lifted() {
    let server = with_opers().await;
    let mut root = root(&server).await;
    let bob = Client::guest_from(&server, [127, 0, 0, 2].into(), "bob").await;
    let mut carol = Client::guest_from(&server, [127, 0, 0, 3].into(), "carol").await;

    root.cmd("/kline 127.0.0.2 1d open proxy").await;
    let list = root.expect("kline_list").await;
    let kline = &list["klines"][0];
    assert_eq!(
        (kline["mask"].as_str(), kline["reason"].as_str(), kline["by"].as_str()),
        (Some("127.0.0.2/32"), Some("open proxy"), Some("root"))
    );
    let day = kline["expires"].as_u64().unwrap() - kline["at"].as_u64().unwrap();
    assert_eq!(day, 86_400_000);
    banned_from_127_0_0_2(&server, bob, &mut carol, "open proxy").await;

    // By nick mask, and by account (once identified).
    root.cmd("/kline evil*").await;
    assert_eq!(root.expect("kline_list").await["klines"].as_array().unwrap().len(), 2);
    let mut evil = Client::connect(&server).await;
    evil.send(json!({"type":"auth","nick":"evilbot"})).await;
    evil.expect_error("server_banned").await;
    let mut dave = server.guest("dave").await;
    dave.register(PW).await;
    dave.cmd("/quit").await;
    dave.expect_close().await;
    root.cmd("/kline potato:dave sock puppet").await;
    root.expect("kline_list").await;
    let mut returning = server.guest("someone").await;
    returning.cmd(&format!("/potato identify dave {PW}")).await;
    let (events, _) = returning.events_until_close().await;
    assert!(events.iter().any(|e| e["code"] == "server_banned"), "{events:?}");

    // Not on yourself; nothing that is no mask.
    root.cmd("/kline 127.0.0.0/8").await;
    root.expect_error("bad_arguments").await;
    root.cmd("/kline bad\u{7}mask").await;
    root.expect_error("bad_arguments").await;
    // A mistyped address or network, which as a nick mask would ban nobody.
    for typo in ["1.2.3.4/33", "203.0.113.300", "2001:db8::zz/64"] {
        root.cmd(&format!("/kline {typo}")).await;
        root.expect_error("bad_arguments").await;
    }

    // Lifted: bob may come back.
    root.cmd("/unkline 127.0.0.2").await;
    assert_eq!(root.expect("kline_list").await["klines"].as_array().unwrap().len(), 2);
    Client::guest_from(&server, [127, 0, 0, 2].into(), "bob").await;
    root.cmd("/unkline 127.0.0.2").await;
    root.expect_error("no_such_kline").await;
    root.cmd("/audit").await;
    let actions: Vec<Value> = root.expect("audit_log").await["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert_eq!(actions, [json!("unkline"), json!("kline"), json!("kline"), json!("kline 1day")]);
}

#[tokio::test]
async fn operators_see_real_addresses_send_global_notices_and_read_stats() {
    let server = with_opers().await;
    let mut root = root(&server).await;
    let mut bob = Client::guest_from(&server, [127, 0, 0, 2].into(), "bob").await;
    let mut carol = server.guest("carol").await;
    root.cmd("/whois bob").await;
    assert_eq!(root.expect("whois").await["host"], "127.0.0.2");
    carol.cmd("/whois bob").await;
    assert!(carol.expect("whois").await["host"].as_str().unwrap().ends_with(".cloak"));

    root.cmd("/gnotice Maintenance at 18:00").await;
    for client in [&mut bob, &mut carol] {
        let notice = client.expect("notice").await;
        assert_eq!(
            (notice["from"].as_str(), notice["text"].as_str()),
            (Some("root"), Some("Maintenance at 18:00"))
        );
    }

    root.join("#c").await;
    root.say("#c", "one").await;
    root.expect("message").await;
    root.cmd("/stats").await;
    let stats = root.expect("stats").await;
    assert_eq!((stats["connections"].as_u64(), stats["sessions"].as_u64()), (Some(3), Some(3)));
    assert_eq!((stats["channels"].as_u64(), stats["opers"].as_u64()), (Some(1), Some(1)));
    assert_eq!(stats["messages_last_minute"], 1);
    assert_eq!(stats["messages_total"], 1);
}

#[tokio::test]
async fn klines_and_the_audit_log_survive_a_restart() {
    let dir = tempdir();
    let opers = [("CHATTR_OPERS", "potato:root")];
    let mut first = Process::start_with(&dir, &opers).await.expect("start");
    let mut root = connect(&first.addr, "root").await;
    root.nick = "root".into();
    register(&mut root).await;
    root.cmd("/kline evil* spam").await;
    root.expect("kline_list").await;
    assert_eq!(first.terminate().await.code(), Some(0));

    let second = Process::start_with(&dir, &opers).await.expect("restart");
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", second.addr)).await.unwrap();
    let mut evil = Client::from_socket(ws);
    evil.send(json!({"type":"auth","nick":"evilbot"})).await;
    evil.expect_error("server_banned").await;
    let mut root = connect(&second.addr, "root-again").await;
    root.nick = "root-again".into();
    let events = root.identify("root", PW).await;
    assert!(events.iter().any(|e| e["type"] == "oper_status" && e["oper"] == true), "{events:?}");
    root.cmd("/klines").await;
    assert_eq!(root.expect("kline_list").await["klines"][0]["mask"], "evil*!*@*");
    root.cmd("/audit").await;
    assert_eq!(root.expect("audit_log").await["entries"][0]["target"], "evil*!*@*");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn samode_overrides_a_channels_modes_in_the_open() {
    let server = with_opers().await;
    let mut root = root(&server).await;
    let [mut alice, mut bob] = server.in_channel("#club", ["alice", "bob"]).await;
    alice.cmd("/mode #club +i").await;
    alice.expect("mode_changed").await;
    bob.expect("mode_changed").await;
    root.cmd("/join #club").await;
    root.expect_error("invite_only").await;
    let mut mallory = server.guest("mallory").await;
    mallory.cmd("/samode #club -i").await;
    mallory.expect_error("not_oper").await;

    root.cmd("/samode #club -i").await;
    for member in [&mut alice, &mut bob] {
        let notice = member.expect("notice").await;
        assert_eq!(notice["from"], "root");
        assert_eq!(notice["text"], "root used a server operator override on #club: -i");
        let changed = member.expect("mode_changed").await;
        assert_eq!(
            (changed["modes"].as_str(), changed["by"].as_str()),
            (Some("-i"), Some("root")),
            "{changed}"
        );
    }
    root.join("#club").await;
    root.cmd("/samode #club +o root").await;
    assert_eq!(root.expect("notice").await["text"], "root used a server operator override on #club: +o root");
    assert_eq!(alice.expect("notice").await["from"], "root");
    // All or nothing, as /mode: a nick not in the channel refuses the whole change.
    root.cmd("/samode #club +m+v nobody").await;
    root.expect_error("no_such_nick").await;
    root.cmd("/audit").await;
    let entries = root.expect("audit_log").await["entries"].clone();
    assert_eq!(
        (entries[0]["action"].as_str(), entries[0]["target"].as_str()),
        (Some("samode"), Some("#club +o root"))
    );
    assert_eq!(entries[1]["target"], "#club -i");
}

#[tokio::test]
async fn a_bare_nick_bans_the_address_of_whoever_uses_it() {
    let server = with_opers().await;
    let mut root = root(&server).await;
    let bob = Client::guest_from(&server, [127, 0, 0, 2].into(), "bob").await;
    let mut carol = Client::guest_from(&server, [127, 0, 0, 3].into(), "carol").await;
    root.cmd("/kline Bob 1h flooding").await;
    let list = root.expect("kline_list").await;
    assert_eq!(list["klines"][0]["mask"], "127.0.0.2/32", "{list}");
    banned_from_127_0_0_2(&server, bob, &mut carol, "flooding").await;
    // Nobody online by that nick: refused, pointing at the nick mask; nothing is banned.
    root.cmd("/kline nobody").await;
    let refusal = root.expect_error("no_such_nick").await;
    assert!(refusal["message"].as_str().unwrap().contains("nobody!*@*"), "{refusal}");
    root.cmd("/klines").await;
    assert_eq!(root.expect("kline_list").await["klines"].as_array().unwrap().len(), 1);
    let audit = last_audit(&mut root).await;
    assert_eq!(
        (audit["action"].as_str(), audit["target"].as_str()),
        (Some("kline 1h"), Some("127.0.0.2/32 (bob)")),
        "the log says whose address it was"
    );
}

/// `bob`, on 127.0.0.2, is told why and disconnected; a new login from there (another nick) is
/// refused; `carol`, elsewhere, carries on.
async fn banned_from_127_0_0_2(server: &TestServer, mut bob: Client, carol: &mut Client, why: &str) {
    let (events, close) = bob.events_until_close().await;
    assert!(
        events.iter().any(|e| e["code"] == "server_banned" && e["message"].as_str().unwrap().contains(why)),
        "{events:?}"
    );
    assert_eq!(close.map(|c| c.reason.to_string()).as_deref(), Some("server_banned"));
    let mut again = Client::connect_from(server, [127, 0, 0, 2].into()).await;
    again.send(json!({"type":"auth","nick":"bob2"})).await;
    again.expect_error("server_banned").await;
    carol.cmd("/whois carol").await;
    carol.expect("whois").await;
}

async fn last_audit(root: &mut Client) -> Value {
    root.cmd("/audit").await;
    root.expect("audit_log").await["entries"][0].clone()
}

#[tokio::test]
async fn a_kline_holds_on_resume_nick_change_and_any_spelling() {
    let server = with_opers().await;
    let mut root = root(&server).await;
    // bob's session, held after its connection drops, resumed from a banned address.
    let mut bob = Client::connect_from(&server, [127, 0, 0, 2].into()).await;
    bob.send(json!({"type":"auth","nick":"bob"})).await;
    let secret = bob.expect("welcome").await["resume"].as_str().unwrap().to_owned();
    drop(bob);
    root.cmd("/kline 127.0.0.5").await;
    root.expect("kline_list").await;
    let mut elsewhere = Client::connect_from(&server, [127, 0, 0, 5].into()).await;
    elsewhere.send(json!({"type":"auth","resume":secret})).await;
    elsewhere.expect_error("server_banned").await;
    root.cmd("/whois bob").await;
    root.expect_error("no_such_nick").await;

    // A nick a ban names is refused on /nick too.
    root.cmd("/kline Evil*").await;
    root.expect("kline_list").await;
    let mut nice = server.guest("nice").await;
    nice.cmd("/nick EVILbot").await;
    nice.expect_error("server_banned").await;
    // Lifted in another spelling.
    root.cmd("/unkline evil*!*@*").await;
    root.expect("kline_list").await;
    nice.cmd("/nick EVILbot").await;
    nice.expect("nick_changed").await;
    root.cmd("/unkline 127.0.0.5/32").await;
    root.expect("kline_list").await;
    // A duration typed wrong is refused, not taken as a ban for good.
    root.cmd("/kline spammer 1y spam").await;
    root.expect_error("bad_arguments").await;
}

#[tokio::test]
async fn an_operator_name_dropped_and_registered_again_by_someone_else_is_no_operator() {
    let server = with_opers().await;
    let mut root = root(&server).await;
    root.cmd(&format!("/potato drop {PW}")).await;
    root.notice("Potato").await;
    root.cmd("/quit").await;
    root.expect_close().await;
    let mut mallory = server.guest("root").await;
    mallory.register("another-password-2").await;
    mallory.cmd("/stats").await;
    mallory.expect_error("not_oper").await;
}

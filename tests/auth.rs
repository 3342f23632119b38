//! Logging in: guests, tokens from the token API and the legacy routes, and every way a login
//! is refused.

use std::time::{Duration, SystemTime};

use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{assert_cloaked, Client, TestServer, SECRET};

async fn refused(server: &TestServer, auth: serde_json::Value, code: &str) {
    let mut c = Client::connect(server).await;
    c.send(auth).await;
    let (events, close) = c.events_until_close().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "error");
    assert_eq!(events[0]["code"], code, "{events:?}");
    let close = close.expect("a close frame");
    assert_eq!(u16::from(close.code), 1008);
    assert_eq!(close.reason.as_str(), code);
}

#[tokio::test]
async fn a_guest_logs_in_with_a_nick_and_gets_a_cloaked_host() {
    let server = TestServer::start().await;
    let mut c = Client::connect(&server).await;
    c.send(json!({"type":"auth","nick":"alice"})).await;
    let welcome = c.expect("welcome").await;
    assert_eq!(welcome["nick"], "alice");
    assert!(welcome.get("account").is_none());
    let host = welcome["host"].as_str().unwrap();
    assert_cloaked(host);
    assert_eq!(welcome["limits"]["max_text_bytes"], 4000);
}

#[tokio::test]
async fn the_first_frame_must_be_a_well_formed_auth() {
    let server = TestServer::start().await;
    refused(&server, json!({"type":"message","target":"#c","text":"hi"}), "not_authenticated").await;
    refused(&server, json!({"type":"auth"}), "bad_arguments").await;
    refused(&server, json!({"type":"auth","nick":"a","token":"t"}), "bad_arguments").await;
    refused(&server, json!({"type":"nonsense"}), "invalid_frame").await;
    let mut c = Client::connect(&server).await;
    c.send_raw(Message::Text("not json".into())).await;
    let (events, _) = c.events_until_close().await;
    assert_eq!(events[0]["code"], "invalid_frame");
}

#[tokio::test]
async fn guest_nicks_are_validated_and_unique_ignoring_case() {
    let server = TestServer::start().await;
    refused(&server, json!({"type":"auth","nick":"has space"}), "invalid_nick").await;
    refused(&server, json!({"type":"auth","nick":"evil\u{202e}"}), "invalid_nick").await;
    refused(&server, json!({"type":"auth","nick":""}), "invalid_nick").await;
    refused(&server, json!({"type":"auth","nick":"Celery"}), "nick_reserved").await;
    let _alice = server.guest("alice").await;
    refused(&server, json!({"type":"auth","nick":"ALICE"}), "nick_in_use").await;
    // A nick NFKC would change is refused outright: it would show as one name and be another.
    refused(&server, json!({"type":"auth","nick":"Ａlice"}), "invalid_nick").await;
}

#[tokio::test]
async fn look_alike_nicks_count_as_the_same_nick() {
    let server = TestServer::start().await;
    server.token("alice").await;
    let lookalikes = [
        "\u{430}lice",  // Cyrillic а
        "alic\u{435}",  // Cyrillic е
        "al\u{456}ce",  // Ukrainian і
        "\u{13AA}LICE", // Cherokee Ꭺ
        "aIice",        // capital I for l
        "\u{E0}lice",   // à
        "al\u{EF}ce",   // ï
    ];
    for nick in lookalikes {
        refused(&server, json!({"type":"auth","nick":nick}), "nick_reserved").await;
    }
    // Combining marks on their own are not nick characters at all.
    refused(&server, json!({"type":"auth","nick":"a\u{300}lice"}), "invalid_nick").await;
    let _bob = server.guest("bob").await;
    refused(&server, json!({"type":"auth","nick":"b\u{43E}b"}), "nick_in_use").await;
    let mut carol = server.guest("carol").await;
    carol.cmd("/nick B\u{41E}B").await; // Cyrillic О
    carol.expect_error("nick_in_use").await;
    // Changing only the case of your own nick is checked like any other change: `aiice` is
    // not a look-alike of alice, `aIice` is.
    let mut mallory = server.guest("aiice").await;
    mallory.cmd("/nick aIice").await;
    mallory.expect_error("nick_reserved").await;
    let _bill = server.guest("bill").await;
    mallory.cmd("/nick biII").await;
    mallory.expect_error("nick_in_use").await;
    // Nor can anyone pose as a service.
    refused(&server, json!({"type":"auth","nick":"\u{420}\u{43E}tato"}), "nick_reserved").await;
    mallory.cmd("/nick C\u{435}lery").await;
    mallory.expect_error("nick_reserved").await;
    // Different names that merely share letters are fine.
    server.guest("alicia").await;
}

#[tokio::test]
async fn app_user_names_are_one_spelling_each_and_never_look_like_another_app_user() {
    let server = TestServer::start().await;
    server.user("bob").await;
    // Fullwidth b: NFKC folds it into bob, so it is refused rather than keyed as bob.
    let (status, body) =
        server.post_api("/api/token", Some(&format!("Bearer {SECRET}")), r#"{"user":"\uff42ob"}"#).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_nick")), "{body}");
    let legacy = reqwest::get(server.url(&format!("/gettoken/%EF%BD%82ob/nil/{SECRET}"))).await.unwrap();
    assert_eq!(legacy.status(), 400);
    // A name that looks like an existing app user's is a conflict, not a second user.
    let (status, body) =
        server.post_api("/api/token", Some(&format!("Bearer {SECRET}")), r#"{"user":"b\u043eb"}"#).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("nick_reserved")), "{body}");
    // Case is not a different user: BOB is bob.
    let mut again = server.user("BOB").await;
    again.cmd("/whois BOB").await;
    assert_eq!(again.expect("whois").await["account"], "app:BOB");
}

#[tokio::test]
async fn guests_can_be_switched_off() {
    let server = TestServer::start_with(|c| c.guests = false).await;
    refused(&server, json!({"type":"auth","nick":"alice"}), "guests_disabled").await;
    // Token users still get in.
    server.user("alice").await;
}

#[tokio::test]
async fn a_token_from_the_api_logs_in_as_its_user_with_an_account() {
    let server = TestServer::start().await;
    let token = server.token("alice").await;
    let mut c = Client::connect(&server).await;
    c.send(json!({"type":"auth","token":token})).await;
    let welcome = c.expect("welcome").await;
    assert_eq!(welcome["nick"], "alice");
    assert_eq!(welcome["account"], "app:alice");
}

#[tokio::test]
async fn expired_tampered_and_foreign_tokens_are_refused_and_the_socket_closed() {
    let server = TestServer::start().await;
    // A token of this server that lived one second, used once that second is over.
    let (status, short) = server
        .post_api("/api/token", Some(&format!("Bearer {SECRET}")), r#"{"user":"alice","ttl_secs":1}"#)
        .await;
    assert_eq!(status, 200, "{short}");
    let expires_at = humantime::parse_rfc3339(short["expires_at"].as_str().unwrap()).unwrap();
    let left = expires_at.duration_since(SystemTime::now()).unwrap_or_default();
    assert!(left <= Duration::from_secs(1), "{left:?}");
    tokio::time::sleep(left + Duration::from_millis(50)).await;
    refused(&server, json!({"type":"auth","token":short["token"]}), "token_expired").await;

    let good = server.token("alice").await;
    let mut tampered = good.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    refused(&server, json!({"type":"auth","token":tampered}), "auth_failed").await;

    // A token that another Chattr, with another shared secret, gave out.
    let other = TestServer::start_with(|c| c.shared_secret = Some("some other secret".into())).await;
    let (status, foreign) =
        other.post_api("/api/token", Some("Bearer some other secret"), r#"{"user":"alice"}"#).await;
    assert_eq!(status, 200, "{foreign}");
    refused(&server, json!({"type":"auth","token":foreign["token"]}), "auth_failed").await;
    refused(&server, json!({"type":"auth","token":"never-issued-token-123"}), "auth_failed").await;
    refused(&server, json!({"type":"auth","token":""}), "auth_failed").await;
}

#[tokio::test]
async fn a_token_for_alice_never_logs_in_as_bob() {
    let server = TestServer::start().await;
    let alice_token = server.token("alice").await;
    refused(&server, json!({"type":"auth","token":alice_token,"nick":"bob"}), "bad_arguments").await;
    let mut c = Client::connect(&server).await;
    c.send(json!({"type":"auth","token":alice_token})).await;
    assert_eq!(c.expect("welcome").await["nick"], "alice");
    c.cmd("/nick bob").await;
    assert_eq!(c.expect("nick_changed").await["new"], "bob", "a token user may pick another free nick");
    // A payload re-signed for bob without the secret does not verify.
    let forged = alice_token.replacen("ct1.", "ct1.x", 1);
    refused(&server, json!({"type":"auth","token":forged}), "auth_failed").await;
}

#[tokio::test]
async fn a_token_users_nick_is_theirs_and_no_guest_can_take_it() {
    let server = TestServer::start().await;
    server.token("alice").await;
    refused(&server, json!({"type":"auth","nick":"alice"}), "nick_reserved").await;
    refused(&server, json!({"type":"auth","nick":"ALICE"}), "nick_reserved").await;
    let mut guest = server.guest("mallory").await;
    guest.cmd("/nick Alice").await;
    guest.expect_error("nick_reserved").await;
    // Alice herself still logs in.
    server.user("alice").await;
}

#[tokio::test]
async fn a_second_login_of_a_token_user_replaces_the_first_session() {
    let server = TestServer::start().await;
    let mut first = server.user("alice").await;
    let mut observer = server.guest("bob").await;
    first.join("#c").await;
    observer.join("#c").await;
    let _second = server.user("alice").await;
    let close = first.expect_close().await.expect("a close frame");
    assert_eq!(close.reason.as_str(), "session_replaced");
    let quit = observer.expect("quit").await;
    assert_eq!(quit["nick"], "alice");
}

#[tokio::test]
async fn legacy_routes_issue_bind_and_resolve_tokens() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        let url = server.url(&path);
        async move {
            let res = http.get(url).send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };

    let (status, generated) = get(format!("/gettoken/alice/nil/{SECRET}")).await;
    assert_eq!(status, 200);
    assert!(generated.starts_with("ct1."));
    assert_eq!(get(format!("/getuser/{generated}")).await, (200, "alice".into()));

    let chosen = "app-chosen-token-0123456789";
    assert_eq!(get(format!("/gettoken/bob/{chosen}/{SECRET}")).await, (200, chosen.into()));
    assert_eq!(get(format!("/getuser/{chosen}")).await, (200, "bob".into()));
    let mut c = Client::connect(&server).await;
    c.send(json!({"type":"auth","token":chosen})).await;
    assert_eq!(c.expect("welcome").await["nick"], "bob");

    assert_eq!(get("/gettoken/carol/nil/wrong-secret".into()).await, (403, "Error: Access Denied".into()));
    assert_eq!(
        get(format!("/gettoken/carol/{chosen}/wrong-secret")).await,
        (403, "Error: Access Denied".into())
    );
    assert_eq!(
        get(format!("/getuser/{chosen}")).await,
        (200, "bob".into()),
        "a refused call changed nothing"
    );
    assert_eq!(get("/getuser/unknown-token-0123456789".into()).await, (404, "Not Found".into()));
    assert_eq!(get("/getuser/ct1.abc.def".into()).await, (404, "Not Found".into()));
    let (status, _) = get(format!("/gettoken/bad%20nick/nil/{SECRET}")).await;
    assert_eq!(status, 400);
    let (status, _) = get(format!("/gettoken/dave/short/{SECRET}")).await;
    assert_eq!(status, 400);
}

async fn revoke(server: &TestServer, auth: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    server.post_api("/api/revoke", auth, body).await
}

async fn get_user(server: &TestServer, token: &str) -> (u16, String) {
    let res = reqwest::get(server.url(&format!("/getuser/{token}"))).await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn the_app_revokes_a_users_tokens_and_ends_their_sessions() {
    let server = TestServer::start().await;
    let bearer = format!("Bearer {SECRET}");
    let spare = server.token("alice").await;
    let chosen = "alice-chosen-token-0123456789";
    let res = reqwest::get(server.url(&format!("/gettoken/alice/{chosen}/{SECRET}"))).await.unwrap();
    assert_eq!(res.status(), 200);
    let mut alice = server.user("alice").await;
    alice.join("#c").await;
    let mut bob = server.guest("bob").await;
    bob.join("#c").await;
    alice.drain().await;

    // Refused revocations change nothing.
    for (auth, body, status, code) in [
        (None, r#"{"user":"alice"}"#, 401, "access_denied"),
        (Some("Bearer wrong"), r#"{"user":"alice"}"#, 401, "access_denied"),
        (Some(bearer.as_str()), "not json", 400, "bad_arguments"),
        (Some(bearer.as_str()), r#"{"user":"alice","extra":1}"#, 400, "bad_arguments"),
        (Some(bearer.as_str()), r#"{"user":"has space"}"#, 400, "invalid_nick"),
    ] {
        let (got_status, got) = revoke(&server, auth, body).await;
        assert_eq!((got_status, got["code"].as_str()), (status, Some(code)), "{auth:?} {body}");
    }
    assert_eq!(get_user(&server, &spare).await, (200, "alice".into()));
    assert_eq!(get_user(&server, chosen).await, (200, "alice".into()));

    // The folded name reaches every spelling of the user.
    let (status, body) = revoke(&server, Some(&bearer), r#"{"user":"ALICE"}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"], "ALICE");
    assert_eq!(body["sessions_closed"], 1);
    humantime::parse_rfc3339(body["revoked_at"].as_str().unwrap()).unwrap();

    let (events, close) = alice.events_until_close().await;
    assert!(events.iter().any(|e| e["type"] == "error" && e["code"] == "token_revoked"), "{events:?}");
    let close = close.expect("a close frame");
    assert_eq!((u16::from(close.code), close.reason.as_str()), (1008, "token_revoked"));
    let quit = bob.expect("quit").await;
    assert_eq!((quit["nick"].as_str(), quit["reason"].as_str()), (Some("alice"), Some("login revoked")));

    refused(&server, json!({"type":"auth","token":spare}), "token_revoked").await;
    refused(&server, json!({"type":"auth","token":chosen}), "auth_failed").await;
    assert_eq!(get_user(&server, &spare).await, (404, "Not Found".into()));
    assert_eq!(get_user(&server, chosen).await, (404, "Not Found".into()));

    // A token issued after the revocation works, and the nick is still the user's.
    let fresh = server.token("alice").await;
    assert_eq!(get_user(&server, &fresh).await, (200, "alice".into()));
    server.user("alice").await;
    refused(&server, json!({"type":"auth","nick":"alice"}), "nick_reserved").await;

    // Revoking a guest's name touches no session: guests hold no tokens.
    let (_, body) = revoke(&server, Some(&bearer), r#"{"user":"bob"}"#).await;
    assert_eq!(body["sessions_closed"], 0);
    bob.say("#c", "still here").await;
    assert_eq!(bob.expect("message").await["text"], "still here");
}

#[tokio::test]
async fn a_taken_nick_is_refused_with_free_ones_to_pick_from() {
    let server = TestServer::start().await;
    let _alice = server.guest("alice").await;
    let _alice_ = server.guest("alice_").await;
    let mut c = Client::connect(&server).await;
    c.send(json!({"type":"auth","nick":"alice"})).await;
    let error = c.expect_error("nick_in_use").await;
    let offered: Vec<String> = error["nicks"]
        .as_array()
        .expect("free nicks")
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(offered, ["alice-", "alice2", "alice3"], "alice_ is taken, so not offered");
    // Each offered nick works.
    let _ = server.guest(&offered[0]).await;
    // A service's look-alike is refused as reserved, with nicks that are free.
    let mut c = Client::connect(&server).await;
    c.send(json!({"type":"auth","nick":"potato"})).await;
    let error = c.expect_error("nick_reserved").await;
    assert_eq!(error["nicks"][0], "potato_");
    // So is a /nick to a taken one.
    let mut bob = server.guest("bob").await;
    bob.cmd("/nick alice").await;
    let error = bob.expect_error("nick_in_use").await;
    assert_eq!(error["nicks"][0], "alice2", "alice- was taken meanwhile");
    // A nick as long as allowed gets offers that still fit.
    let long = "n".repeat(30);
    let _holder = server.guest(&long).await;
    let mut c = Client::connect(&server).await;
    c.send(json!({"type":"auth","nick":long})).await;
    let error = c.expect_error("nick_in_use").await;
    assert_eq!(error["nicks"][0], format!("{}_", "n".repeat(28)));
}

#[tokio::test]
async fn welcome_names_the_channels_to_offer_newcomers() {
    let server = TestServer::start().await;
    let mut c = Client::connect(&server).await;
    c.send(json!({"type":"auth","nick":"newcomer"})).await;
    assert_eq!(c.expect("welcome").await["default_channels"], json!(["#lobby"]));
    let server = TestServer::start_with(|c| c.default_channels = vec!["#help".into(), "#rust".into()]).await;
    let mut c = Client::connect(&server).await;
    c.send(json!({"type":"auth","nick":"newcomer"})).await;
    assert_eq!(c.expect("welcome").await["default_channels"], json!(["#help", "#rust"]));
    let server = TestServer::start_with(|c| c.default_channels = vec![]).await;
    let mut c = Client::connect(&server).await;
    c.send(json!({"type":"auth","nick":"newcomer"})).await;
    assert!(c.expect("welcome").await.get("default_channels").is_none());
}

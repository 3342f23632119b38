//! Logging in with a JWT the app signed itself (HS256, the shared secret), over the real
//! WebSocket: what logs in, and the usual ways such tokens are forged or go stale.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::common::{Client, TestServer, SECRET};

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn signed_with(secret: &str, algorithm: Algorithm, claims: &Value) -> String {
    encode(&Header::new(algorithm), claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

fn jwt(claims: &Value) -> String {
    signed_with(SECRET, Algorithm::HS256, claims)
}

/// Logs in with `token`; the welcome, or the refusal's code (the socket then closes 1008).
async fn login(server: &TestServer, token: &str) -> Result<Value, String> {
    let mut c = Client::connect(server).await;
    c.send(json!({"type":"auth","token":token})).await;
    let first = c.next_event().await;
    if first["type"] == "welcome" {
        return Ok(first);
    }
    let close = c.expect_close().await.expect("a refused login is closed");
    assert_eq!(u16::from(close.code), 1008);
    Err(first["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_jwt_logs_in_as_its_subject_with_the_nick_it_names() {
    let server = TestServer::start().await;
    let welcome = login(&server, &jwt(&json!({"sub":"alice","exp":now() + 600}))).await.unwrap();
    assert_eq!((welcome["nick"].as_str(), welcome["account"].as_str()), (Some("alice"), Some("app:alice")));
    let welcome = login(&server, &jwt(&json!({"sub":"bob","exp":now() + 600,"nick":"bobby"}))).await.unwrap();
    assert_eq!((welcome["nick"].as_str(), welcome["account"].as_str()), (Some("bobby"), Some("app:bob")));
    // The subject became an app user: its name is reserved, as a token from the API would do.
    let mut guest = Client::connect(&server).await;
    guest.send(json!({"type":"auth","nick":"bob"})).await;
    assert_eq!(guest.expect_error("nick_reserved").await["code"], "nick_reserved");
    // Bad names are refused like the API's.
    assert_eq!(
        login(&server, &jwt(&json!({"sub":"has space","exp":now() + 60}))).await.unwrap_err(),
        "invalid_nick"
    );
    assert_eq!(
        login(&server, &jwt(&json!({"sub":"carol","exp":now() + 60,"nick":"Potato"}))).await.unwrap_err(),
        "nick_reserved"
    );
}

#[tokio::test]
async fn forged_stale_and_unbounded_jwts_are_refused() {
    let server = TestServer::start().await;
    let claims = json!({"sub":"alice","exp":now() + 600});
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let cases = [
        // alg none, unsigned.
        (format!("{}.{}.", part(&json!({"alg":"none","typ":"JWT"})), part(&claims)), "auth_failed"),
        // Another HMAC with the right secret: the algorithm is pinned, not read from the token.
        (signed_with(SECRET, Algorithm::HS512, &claims), "auth_failed"),
        // The right algorithm and another secret.
        (signed_with("not-the-secret", Algorithm::HS256, &claims), "auth_failed"),
        (jwt(&json!({"sub":"alice"})), "auth_failed"),
        (jwt(&json!({"exp":now() + 600})), "auth_failed"),
        (jwt(&json!({"sub":"alice","exp":now() - 120})), "token_expired"),
        // Longer-lived than the server's token lifetime (24 h here).
        (jwt(&json!({"sub":"alice","exp":now() + 2 * 86_400})), "auth_failed"),
    ];
    for (token, code) in cases {
        assert_eq!(login(&server, &token).await.unwrap_err(), code, "{token}");
    }
    // A name that looks like an existing app user's is refused, as the API refuses it.
    login(&server, &jwt(&json!({"sub":"bob","exp":now() + 60}))).await.unwrap();
    assert_eq!(
        login(&server, &jwt(&json!({"sub":"bоb","exp":now() + 60}))).await.unwrap_err(),
        "nick_reserved"
    );
}

#[tokio::test]
async fn a_revocation_refuses_jwts_signed_before_it() {
    let server = TestServer::start().await;
    let signed_now = jwt(&json!({"sub":"alice","iat":now() - 5,"exp":now() + 600}));
    let unstamped = jwt(&json!({"sub":"alice","exp":now() + 600}));
    let mut alice = Client::connect(&server).await;
    alice.send(json!({"type":"auth","token":signed_now})).await;
    alice.expect("welcome").await;
    let (status, _) =
        server.post_api("/api/revoke", Some(&format!("Bearer {SECRET}")), r#"{"user":"alice"}"#).await;
    assert_eq!(status, 200);
    assert_eq!(alice.expect_error("token_revoked").await["code"], "token_revoked");
    assert_eq!(login(&server, &signed_now).await.unwrap_err(), "token_revoked");
    // Without iat a token counts as signed as early as its lifetime allows.
    assert_eq!(login(&server, &unstamped).await.unwrap_err(), "token_revoked");
    // Signed after the revocation, it works.
    let later = jwt(&json!({"sub":"alice","iat":now() + 1,"exp":now() + 600}));
    assert_eq!(login(&server, &later).await.unwrap()["account"], "app:alice");
    // One dated ahead (a signer's clock running fast) would escape every revocation until it
    // expires: refused.
    let ahead = jwt(&json!({"sub":"alice","iat":now() + 3000,"exp":now() + 3600}));
    assert_eq!(login(&server, &ahead).await.unwrap_err(), "auth_failed");
}

#[tokio::test]
async fn audience_and_issuer_are_required_when_configured() {
    let server = TestServer::start_with(|c| {
        c.jwt_audience = Some("chat.example".into());
        c.jwt_issuer = Some("shop.example".into());
    })
    .await;
    let exp = now() + 600;
    let ok = json!({"sub":"alice","exp":exp,"aud":"chat.example","iss":"shop.example"});
    assert_eq!(login(&server, &jwt(&ok)).await.unwrap()["nick"], "alice");
    for claims in [
        json!({"sub":"alice","exp":exp,"aud":"other.example","iss":"shop.example"}),
        json!({"sub":"alice","exp":exp,"iss":"shop.example"}),
        json!({"sub":"alice","exp":exp,"aud":"chat.example","iss":"evil.example"}),
        json!({"sub":"alice","exp":exp,"aud":"chat.example"}),
    ] {
        assert_eq!(login(&server, &jwt(&claims)).await.unwrap_err(), "auth_failed", "{claims}");
    }
}

//! The HTTP surface: the token API's refusals, CORS, the WebSocket `Origin` check, health, and
//! that secrets and tokens never reach the logs.

use reqwest::header::{ACCESS_CONTROL_ALLOW_ORIGIN, ORIGIN};
use serde_json::{json, Value};

use crate::common::{captured_logs, Client, TestServer, ALLOWED_ORIGIN, SECRET};

async fn post_token(server: &TestServer, auth: Option<&str>, body: &str) -> (u16, Value) {
    server.post_api("/api/token", auth, body).await
}

#[tokio::test]
async fn the_token_api_answers_a_token_and_its_expiry() {
    let server = TestServer::start().await;
    let (status, body) = post_token(&server, Some(&format!("Bearer {SECRET}")), r#"{"user":"alice"}"#).await;
    assert_eq!(status, 200);
    assert!(body["token"].as_str().unwrap().starts_with("ct1."));
    let expires = humantime::parse_rfc3339(body["expires_at"].as_str().unwrap()).unwrap();
    let left = expires.duration_since(std::time::SystemTime::now()).unwrap();
    assert!(left.as_secs() > 23 * 3600 && left.as_secs() <= 24 * 3600, "{left:?}");
    let (_, short) =
        post_token(&server, Some(&format!("Bearer {SECRET}")), r#"{"user":"alice","ttl_secs":60}"#).await;
    let expires = humantime::parse_rfc3339(short["expires_at"].as_str().unwrap()).unwrap();
    assert!(expires.duration_since(std::time::SystemTime::now()).unwrap().as_secs() <= 60);
}

#[tokio::test]
async fn the_token_api_refuses_bad_requests_with_stable_codes() {
    let server = TestServer::start().await;
    let good = format!("Bearer {SECRET}");
    let cases: &[(Option<&str>, &str, u16, &str)] = &[
        (None, r#"{"user":"alice"}"#, 401, "access_denied"),
        (Some("Bearer wrong"), r#"{"user":"alice"}"#, 401, "access_denied"),
        (Some(&format!("Basic {SECRET}")), r#"{"user":"alice"}"#, 401, "access_denied"),
        (Some(&format!("Bearer {SECRET}x")), r#"{"user":"alice"}"#, 401, "access_denied"),
        (Some(&good), "not json", 400, "bad_arguments"),
        (Some(&good), r#"{"name":"alice"}"#, 400, "bad_arguments"),
        (Some(&good), r#"["alice"]"#, 400, "bad_arguments"),
        (Some(&good), r#"{"user":"alice","ttl_secs":0}"#, 400, "bad_arguments"),
        (Some(&good), r#"{"user":"has space"}"#, 400, "invalid_nick"),
        (Some(&good), r#"{"user":"potato"}"#, 400, "nick_reserved"),
        // A key given twice is refused, not merged (the second `user` would win).
        (Some(&good), r#"{"user":"mallory","user":"alice"}"#, 400, "bad_arguments"),
        (Some(&good), r#"{"user":"alice","ttl_secs":60,"ttl_secs":99999}"#, 400, "bad_arguments"),
    ];
    for (auth, body, status, code) in cases {
        let (got_status, got) = post_token(&server, *auth, body).await;
        assert_eq!((got_status, got["code"].as_str()), (*status, Some(*code)), "{auth:?} {body}");
        assert_eq!(got["type"], "error");
    }
    // None of the refused requests reserved a nick.
    server.guest("alice").await;
}

#[tokio::test]
async fn without_a_shared_secret_the_token_endpoints_are_disabled() {
    let server = TestServer::start_with(|c| c.shared_secret = None).await;
    let (status, body) = post_token(&server, Some("Bearer anything"), r#"{"user":"alice"}"#).await;
    assert_eq!((status, body["code"].as_str()), (503, Some("tokens_disabled")));
    let res = reqwest::get(server.url("/gettoken/alice/nil/anything")).await.unwrap();
    assert_eq!(res.status(), 503);
    server.guest("alice").await;
}

#[tokio::test]
async fn secret_bearing_endpoints_send_no_cors_headers_and_browser_facing_ones_do() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    for origin in ["https://evil.example", ALLOWED_ORIGIN] {
        let preflight = http
            .request(reqwest::Method::OPTIONS, server.url("/api/token"))
            .header(ORIGIN, origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
            .send()
            .await
            .unwrap();
        assert!(preflight.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none(), "{origin}");
        for path in ["/api/token", "/api/revoke"] {
            let post = http
                .post(server.url(path))
                .header(ORIGIN, origin)
                .bearer_auth(SECRET)
                .json(&json!({"user":"alice"}))
                .send()
                .await
                .unwrap();
            assert_eq!(post.status(), 200, "{path}");
            assert!(post.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none(), "{path} {origin}");
        }
        let legacy = http
            .get(server.url(&format!("/gettoken/alice/nil/{SECRET}")))
            .header(ORIGIN, origin)
            .send()
            .await
            .unwrap();
        assert!(legacy.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none(), "{origin}");
    }
    let allowed = http.get(server.url("/healthz")).header(ORIGIN, ALLOWED_ORIGIN).send().await.unwrap();
    assert_eq!(allowed.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(), ALLOWED_ORIGIN);
    let evil = http.get(server.url("/healthz")).header(ORIGIN, "https://evil.example").send().await.unwrap();
    assert!(evil.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
}

#[tokio::test]
async fn the_websocket_upgrade_checks_origin() {
    let server = TestServer::start().await;
    assert_eq!(Client::upgrade_status(&server, Some("https://evil.example")).await, 403);
    assert_eq!(Client::upgrade_status(&server, Some("null")).await, 403);
    assert_eq!(Client::upgrade_status(&server, Some(ALLOWED_ORIGIN)).await, 101);
    let same_origin = format!("http://{}", server.addr);
    assert_eq!(Client::upgrade_status(&server, Some(&same_origin)).await, 101);
    assert_eq!(Client::upgrade_status(&server, None).await, 101, "non-browser clients send no Origin");
}

#[tokio::test]
async fn healthz_answers_ok_while_the_store_is_reachable() {
    let server = TestServer::start().await;
    let res = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn the_ui_page_is_served_and_contains_no_secret() {
    let server = TestServer::start().await;
    let res = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("<title>Chattr</title>"), "{html}");
    assert!(html.contains("/pkg/chattr.js"), "the hydration script is referenced");
    assert!(!html.contains(SECRET));
}

#[tokio::test]
async fn logs_never_contain_secrets_or_tokens() {
    let server = TestServer::start().await;
    let token = server.token("alice").await;
    let legacy = "legacy-token-that-must-not-be-logged";
    reqwest::get(server.url(&format!("/gettoken/bob/{legacy}/{SECRET}"))).await.unwrap();
    reqwest::get(server.url(&format!("/getuser/{legacy}"))).await.unwrap();
    reqwest::get(server.url("/gettoken/bob/nil/a-wrong-secret-value")).await.unwrap();
    let mut c = Client::connect(&server).await;
    c.send(json!({"type":"auth","token":token})).await;
    c.expect("welcome").await;
    let mut bad = Client::connect(&server).await;
    bad.send(json!({"type":"auth","token":format!("{token}x")})).await;
    bad.expect_close().await;
    let logs = captured_logs();
    assert!(logs.contains("/gettoken/{user}/{token}/{secret}"), "requests are logged by route: {logs}");
    for needle in [SECRET, token.as_str(), legacy, "a-wrong-secret-value"] {
        assert!(!logs.contains(needle), "the logs contain {needle}");
    }
}

#[tokio::test]
async fn revoke_refuses_a_key_given_twice() {
    let server = TestServer::start().await;
    let (status, body) = server
        .post_api("/api/revoke", Some(&format!("Bearer {SECRET}")), r#"{"user":"x","user":"alice"}"#)
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_arguments")), "{body}");
}

#[tokio::test]
async fn pages_carry_a_nonce_policy_and_every_response_the_browser_security_headers() {
    let server = TestServer::start().await;
    let page = reqwest::get(server.url("/")).await.unwrap();
    let headers = page.headers().clone();
    let html = page.text().await.unwrap();
    let csp = headers["content-security-policy"].to_str().unwrap().to_owned();
    let nonce = csp
        .split(';')
        .find_map(|d| d.trim().strip_prefix("script-src 'self' 'nonce-"))
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("a nonce in {csp}"));
    assert!(csp.contains("'wasm-unsafe-eval'") && !csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains(&format!("frame-ancestors 'self' {ALLOWED_ORIGIN}")), "{csp}");
    // Every inline script of the page carries this response's nonce.
    let scripts = html.matches("<script").count();
    assert!(scripts > 0);
    assert_eq!(html.matches(&format!("nonce=\"{nonce}\"")).count(), scripts, "{html}");
    // A second render has another nonce.
    let again = reqwest::get(server.url("/")).await.unwrap();
    assert!(!again.headers()["content-security-policy"].to_str().unwrap().contains(nonce));
    for path in ["/", "/healthz", "/pkg/nothing.js", "/no/such/page"] {
        let res = reqwest::get(server.url(path)).await.unwrap();
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(h["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'self' "), "{path}");
        assert!(h.get("x-frame-options").is_none(), "{path}: another origin may frame the UI");
    }
    let api = server.post_api("/api/token", None, "{}").await;
    assert_eq!(api.0, 401);
    // With no other origin allowed, nobody else may frame the UI, old browsers included.
    let alone = TestServer::start_with(|c| c.allowed_origins = vec![]).await;
    let res = reqwest::get(alone.url("/")).await.unwrap();
    assert_eq!(res.headers()["x-frame-options"], "SAMEORIGIN");
    assert!(res.headers()["content-security-policy"].to_str().unwrap().ends_with("frame-ancestors 'self'"));
}

#[tokio::test]
async fn static_files_and_pages_answer_only_get_and_head() {
    let server = TestServer::start().await;
    let client = reqwest::Client::new();
    for method in
        [reqwest::Method::PUT, reqwest::Method::DELETE, reqwest::Method::POST, reqwest::Method::PATCH]
    {
        for path in ["/favicon.ico", "/pkg/chattr.js", "/no/such/file"] {
            let res = client.request(method.clone(), server.url(path)).send().await.unwrap();
            assert_eq!(res.status(), 405, "{method} {path}");
            assert_eq!(res.headers()["allow"], "GET, HEAD");
        }
    }
    assert_ne!(client.head(server.url("/")).send().await.unwrap().status(), 405);
}

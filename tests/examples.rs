//! The example apps (examples/php, examples/python, examples/node), each run as its own process
//! against a real server, the way an integrator would: its own sign-in, the widget's token on
//! its page (which logs in over the WebSocket), a post through the server API as its bot,
//! webhooks received and verified (forged and replayed ones refused), and signing out, which
//! ends the user's chat session.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::common::{Client, TestServer, SECRET, WAIT};

/// One example: how to start it and where its pages are.
struct Example {
    name: &'static str,
    /// The command that serves it on a port (`{port}`), from the repository root.
    command: fn(u16) -> Command,
    login: &'static str,
    announce: &'static str,
    webhook: &'static str,
    events: &'static str,
    logout: &'static str,
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

const PHP: Example = Example {
    name: "php",
    command: |port| {
        let mut c = Command::new("php");
        let sessions = std::env::temp_dir().join(format!("chattr-php-sessions-{port}"));
        std::fs::create_dir_all(&sessions).unwrap();
        c.arg("-d")
            .arg(format!("session.save_path={}", sessions.display()))
            .arg("-S")
            .arg(format!("127.0.0.1:{port}"))
            .arg("-t")
            .arg(repo("examples/php"))
            .env("WEBHOOK_LOG", sessions.join("webhooks.jsonl"));
        c
    },
    login: "/",
    announce: "/announce.php",
    webhook: "/webhook.php",
    events: "/events.php",
    logout: "/logout.php",
};

const PYTHON: Example = Example {
    name: "python",
    command: |port| {
        let mut c = Command::new("python3");
        c.arg(repo("examples/python/app.py")).arg("--port").arg(port.to_string());
        c
    },
    login: "/login",
    announce: "/announce",
    webhook: "/webhook",
    events: "/events",
    logout: "/logout",
};

const NODE: Example = Example {
    name: "node",
    command: |port| {
        let mut c = Command::new("node");
        c.arg(repo("examples/node/app.mjs")).arg("--port").arg(port.to_string());
        c
    },
    login: "/login",
    announce: "/announce",
    webhook: "/webhook",
    events: "/events",
    logout: "/logout",
};

/// A running example, stopped when dropped.
struct Running {
    child: Child,
    base: String,
    http: reqwest::Client,
    cookie: Option<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    async fn start(example: &Example, server: &TestServer, port: u16) -> Self {
        let child = (example.command)(port)
            .env("CHATTR_URL", server.url(""))
            .env("CHATTR_SHARED_SECRET", SECRET)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", example.name));
        let http = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
        let running = Self { child, base: format!("http://127.0.0.1:{port}"), http, cookie: None };
        // Ready when its first page answers.
        let deadline = tokio::time::Instant::now() + WAIT;
        while running.http.get(running.url("/")).send().await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "{} answers in time", example.name);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        running
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `req` with the session cookie, and keeps the one it sets.
    async fn send(&mut self, mut req: reqwest::RequestBuilder) -> reqwest::Response {
        if let Some(cookie) = &self.cookie {
            req = req.header(COOKIE, cookie);
        }
        let res = req.send().await.unwrap();
        if let Some(set) = res.headers().get(SET_COOKIE).and_then(|v| v.to_str().ok()) {
            self.cookie = set.split(';').next().map(str::to_owned);
        }
        res
    }

    async fn get(&mut self, path: &str) -> reqwest::Response {
        let req = self.http.get(self.url(path));
        self.send(req).await
    }

    /// Posts a form as the page would: with the CSRF token the page's forms carry, if any.
    async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let page = self.get("/").await.text().await.unwrap();
        let csrf = page.split("name=\"csrf\" value=\"").nth(1).and_then(|rest| rest.split('"').next());
        let mut fields = form.to_vec();
        fields.extend(csrf.map(|token| ("csrf", token)));
        let req = self.http.post(self.url(path)).form(&fields);
        self.send(req).await
    }

    /// The token the signed-in page hands the widget: `Chattr.login(<JSON string>)`.
    async fn page_token(&mut self, chat: &str) -> String {
        let page = self.get("/").await.text().await.unwrap();
        assert!(page.contains(&format!("src=\"{chat}/embed.js\"")), "the page embeds the widget: {page}");
        let call = page.split("Chattr.login(").nth(1).expect("the page logs the widget in");
        let literal = &call[..call.find(')').unwrap()];
        serde_json::from_str(literal).unwrap()
    }

    /// What its webhook endpoint recorded: for its operators, with the shared secret.
    async fn events(&self, path: &str) -> Vec<Value> {
        let res = self.http.get(self.url(path)).bearer_auth(SECRET).send().await.unwrap();
        res.json().await.unwrap()
    }
}

/// A webhook signature as the server makes it, at `t`.
fn signature(t: u64, body: &str, secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

async fn check(example: &Example) {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let hook = format!("http://127.0.0.1:{port}{}", example.webhook);
    let server = TestServer::start_with(|c| {
        c.webhook_urls = vec![hook];
        c.webhook_backoff = Duration::from_millis(50);
    })
    .await;
    let mut app = Running::start(example, &server, port).await;
    let chat = server.url("");

    // Its own sign-in: a wrong password gets nowhere, the right one a session.
    let refused = app.post_form(example.login, &[("user", "alice"), ("password", "nope")]).await;
    assert_eq!(refused.status(), 401, "{}: a wrong password is refused", example.name);
    app.cookie = None;
    let signed_in = app.post_form(example.login, &[("user", "alice"), ("password", "wonderland")]).await;
    assert!(signed_in.status().is_redirection(), "{}: signed in", example.name);
    assert_eq!(signed_in.headers().get(LOCATION).unwrap(), "/");

    // The page's token logs alice in on the WebSocket, as the widget would; the next page
    // hands over the same one (the widget keeps its session).
    let token = app.page_token(&chat).await;
    assert_eq!(app.page_token(&chat).await, token, "{}: one token per sign-in", example.name);
    let mut alice = Client::connect(&server).await;
    alice.send(json!({"type": "auth", "token": token})).await;
    let welcome = alice.expect("welcome").await;
    assert_eq!((welcome["nick"].as_str(), welcome["account"].as_str()), (Some("alice"), Some("app:alice")));
    alice.nick = "alice".into();
    alice.join("#support").await;
    let mut visitor = server.guest("visitor").await;
    visitor.join("#support").await;

    // Nothing but its own pages may post for her: a form without the page's token is refused.
    let forged = app.http.post(app.url(example.announce)).header(COOKIE, app.cookie.clone().unwrap());
    let forged = forged.form(&[("text", "forged announcement")]).send().await.unwrap();
    assert_eq!(forged.status(), 403, "{}: a cross-site post is refused", example.name);
    // The events are for its operators only (they hold private messages).
    assert_eq!(app.get(example.events).await.status(), 401, "{}: events need the secret", example.name);

    // The app posts as its bot.
    let text = format!("hello from the {} app", example.name);
    let posted = app.post_form(example.announce, &[("text", &text)]).await;
    assert!(posted.status().is_redirection(), "{}: posted ({})", example.name, posted.status());
    for client in [&mut alice, &mut visitor] {
        let message = loop {
            let m = client.expect("message").await;
            if m["text"] == text.as_str() {
                break m;
            }
        };
        assert_eq!((message["from"].as_str(), message["bot"].as_bool()), (Some("helpdesk"), Some(true)));
    }

    // Webhooks reach it, and it verified them: a visitor's message shows among its events.
    visitor.say("#support", "is anyone there?").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let events = app.events(example.events).await;
        if events.iter().any(|e| e["event"] == "message" && e["text"] == "is anyone there?") {
            assert!(events.iter().any(|e| e["event"] == "join" && e["nick"] == "alice"), "{events:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}: the webhook arrived: {events:?}", example.name);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Forged, replayed or unsigned deliveries are refused and not recorded; a good one is taken.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let body =
        json!({"delivery": "d-forged", "event": "message", "id": "forged", "text": "forged"}).to_string();
    let deliver = |sig: Option<String>| {
        let mut req = app.http.post(app.url(example.webhook)).body(body.clone());
        if let Some(sig) = sig {
            req = req.header("Chattr-Signature", sig);
        }
        req.send()
    };
    for (why, sig) in [
        ("unsigned", None),
        ("another secret", Some(signature(now, &body, "not-the-secret"))),
        ("a replay from an hour ago", Some(signature(now - 3600, &body, SECRET))),
        ("a tampered body", Some(signature(now, &body.replace("forged", "tampered"), SECRET))),
        ("garbage", Some("t=abc,v1=zz".into())),
    ] {
        assert_eq!(deliver(sig).await.unwrap().status(), 401, "{}: {why} is refused", example.name);
    }
    assert!(!app.events(example.events).await.iter().any(|e| e["id"] == "forged"));
    assert!(deliver(Some(signature(now, &body, SECRET))).await.unwrap().status().is_success());
    // The same delivery again (a retry, or a replay inside the window) is taken once.
    assert!(deliver(Some(signature(now, &body, SECRET))).await.unwrap().status().is_success());
    let recorded = app.events(example.events).await.iter().filter(|e| e["id"] == "forged").count();
    assert_eq!(recorded, 1, "{}: one delivery, recorded once", example.name);
    assert!(
        !app.events(example.events).await.iter().any(|e| e["text"] == "forged announcement"),
        "nor did the forged form post anything"
    );

    // Signing out of the app ends alice's chat session (the app revokes her tokens).
    let link = app.http.get(app.url(example.logout)).header(COOKIE, app.cookie.clone().unwrap());
    assert!(
        !link.send().await.unwrap().status().is_redirection(),
        "{}: a link does not sign out",
        example.name
    );
    let out = app.post_form(example.logout, &[]).await;
    assert!(out.status().is_redirection(), "{}: signed out ({})", example.name, out.status());
    let (_, close) = alice.events_until_close().await;
    assert!(
        close.is_some_and(|c| c.reason.contains("revoked")),
        "{}: alice's session was closed",
        example.name
    );
    let mut again = Client::connect(&server).await;
    again.send(json!({"type": "auth", "token": token})).await;
    again.expect_error("token_revoked").await;
}

#[tokio::test]
async fn the_php_example_works_against_a_real_server() {
    check(&PHP).await;
}

#[tokio::test]
async fn the_python_example_works_against_a_real_server() {
    check(&PYTHON).await;
}

#[tokio::test]
async fn the_node_example_works_against_a_real_server() {
    check(&NODE).await;
}

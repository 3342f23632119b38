//! The harness: the real server on 127.0.0.1:0 (in this process, `mem://` store) and real
//! WebSocket and HTTP clients. Waiting is done on signals from the server (an event, a
//! `pong`, a close), never on sleeps; every wait has a timeout so a broken server fails the
//! test instead of hanging it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chattr::{Config, ServeError};
use clap::Parser;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::internals::ServerState;

pub const SECRET: &str = "test-shared-secret-7f3a9c";
pub const ALLOWED_ORIGIN: &str = "https://app.example";
/// How long any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// Everything the server logged during this test binary's run.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug,surrealdb=info,surrealkv=info,hyper=info,tungstenite=info")
            .with_writer(move || LogWriter(writer.clone()))
            .with_ansi(false)
            .try_init();
        buffer
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Test defaults: a secret, one allowed origin, flood control loose enough that tests
/// sending many commands are not throttled (the flood tests set their own), and no
/// per-address connection limits, since every test client connects from 127.0.0.1 (the tests
/// of those limits set their own).
pub fn test_config() -> Config {
    let mut config = Config::for_tests();
    config.shared_secret = Some(SECRET.into());
    config.allowed_origins = vec![ALLOWED_ORIGIN.into()];
    config.flood_burst = 10_000;
    config.flood_rate = 10_000;
    config.registrations_per_address = 10_000;
    config.max_conns_per_ip = 0;
    config.conn_rate_per_ip = 0;
    config
}

/// The settings `chattrd` would run with given these command-line flags (the rest from the
/// environment and the defaults): for a test to set a setting the way an operator does.
pub fn from_flags(flags: &[&str]) -> Config {
    Config::try_parse_from(std::iter::once("chattrd").chain(flags.iter().copied())).expect("valid flags")
}

pub struct TestServer {
    pub addr: SocketAddr,
    /// The server's state, to look at what no client can see (how many hashes ran).
    pub state: ServerState,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), ServeError>>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = test_config();
        adjust(&mut config);
        Self::start_config(config).await
    }

    pub async fn start_config(config: Config) -> Self {
        log_buffer();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let (state, handle) = ServerState::serve(config, listener, async {
            let _ = stopped.await;
        })
        .await;
        Self { addr, state, stop: Some(stop), handle: Some(handle) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Shuts the server down and waits for `serve` to return.
    pub async fn stop(&mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let handle = self.handle.take().expect("stopped once");
        tokio::time::timeout(WAIT, handle).await.expect("server stops in time").expect("server task")
    }

    /// A connected, authenticated guest.
    pub async fn guest(&self, nick: &str) -> Client {
        let mut c = Client::connect(self).await;
        c.send(json!({"type":"auth","nick":nick})).await;
        let welcome = c.expect("welcome").await;
        assert_eq!(welcome["nick"], nick);
        c.nick = nick.to_owned();
        c
    }

    /// Guests with these nicks, each joined to `channel` in turn (so the first is its op).
    pub async fn in_channel<const N: usize>(&self, channel: &str, nicks: [&str; N]) -> [Client; N] {
        let mut clients = Vec::with_capacity(N);
        for nick in nicks {
            let mut c = self.guest(nick).await;
            c.join(channel).await;
            clients.push(c);
        }
        match clients.try_into() {
            Ok(clients) => clients,
            Err(_) => unreachable!("one client per nick"),
        }
    }

    /// A login token from the token API.
    pub async fn token(&self, user: &str) -> String {
        let res = reqwest::Client::new()
            .post(self.url("/api/token"))
            .bearer_auth(SECRET)
            .json(&json!({"user": user}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
    }

    /// POSTs `body` to an app endpoint (`/api/…`) with an optional `Authorization` header;
    /// answers the status and the JSON body (`null` when there is none).
    pub async fn post_api(&self, path: &str, auth: Option<&str>, body: &str) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let res = req.send().await.unwrap();
        (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
    }

    /// A connected user logged in with a token.
    pub async fn user(&self, user: &str) -> Client {
        let token = self.token(user).await;
        let mut c = Client::connect(self).await;
        c.send(json!({"type":"auth","token":token})).await;
        let welcome = c.expect("welcome").await;
        assert_eq!(welcome["nick"], user);
        c.nick = user.to_owned();
        c
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub nick: String,
    next_ping: u64,
}

impl Client {
    pub async fn connect(server: &TestServer) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(server.ws_url()).await.expect("websocket connects");
        Self::from_socket(ws)
    }

    /// Connects from another loopback address (`127.0.0.2`, say), which the server sees as
    /// another client address.
    pub async fn connect_from(server: &TestServer, local: std::net::IpAddr) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(local, 0)).unwrap();
        let tcp = socket.connect(server.addr).await.expect("connects");
        let (ws, _) = tokio_tungstenite::client_async(server.ws_url(), MaybeTlsStream::Plain(tcp))
            .await
            .expect("websocket connects");
        Self::from_socket(ws)
    }

    /// A guest logged in from another loopback address.
    pub async fn guest_from(server: &TestServer, local: std::net::IpAddr, nick: &str) -> Self {
        let mut c = Self::connect_from(server, local).await;
        c.send(json!({"type":"auth","nick":nick})).await;
        assert_eq!(c.expect("welcome").await["nick"], nick);
        c.nick = nick.to_owned();
        c
    }

    /// Connects with extra request headers (those a reverse proxy adds, say), from another
    /// loopback address if `local` names one; the upgrade's status if it is refused.
    pub async fn connect_with(
        server: &TestServer,
        local: Option<std::net::IpAddr>,
        headers: &[(&'static str, &str)],
    ) -> Result<Self, u16> {
        let mut request = server.ws_url().into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().append(*name, value.parse().unwrap());
        }
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(local.unwrap_or([127, 0, 0, 1].into()), 0)).unwrap();
        let tcp = socket.connect(server.addr).await.expect("connects");
        match tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp)).await {
            Ok((ws, _)) => Ok(Self::from_socket(ws)),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
            Err(e) => panic!("unexpected upgrade failure: {e}"),
        }
    }

    /// A guest logged in over [`Client::connect_with`].
    pub async fn guest_with(
        server: &TestServer,
        local: Option<std::net::IpAddr>,
        headers: &[(&'static str, &str)],
        nick: &str,
    ) -> Self {
        let mut c = Self::connect_with(server, local, headers).await.expect("upgrade accepted");
        c.send(json!({"type":"auth","nick":nick})).await;
        assert_eq!(c.expect("welcome").await["nick"], nick);
        c.nick = nick.to_owned();
        c
    }

    pub fn from_socket(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> Self {
        Self { ws, nick: String::new(), next_ping: 0 }
    }

    /// Connects with an `Origin` header; returns the HTTP status of the upgrade.
    pub async fn upgrade_status(server: &TestServer, origin: Option<&str>) -> u16 {
        let mut request = server.ws_url().into_client_request().unwrap();
        if let Some(origin) = origin {
            request.headers_mut().insert("Origin", origin.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((_, response)) => response.status().as_u16(),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
            Err(e) => panic!("unexpected upgrade failure: {e}"),
        }
    }

    pub async fn send(&mut self, frame: Value) {
        self.ws.send(Message::Text(frame.to_string().into())).await.expect("send");
    }

    /// Sends without failing the test when the server has already closed the connection.
    pub async fn try_say(&mut self, target: &str, text: &str) -> bool {
        let frame = json!({"type":"message","target":target,"text":text});
        self.ws.send(Message::Text(frame.to_string().into())).await.is_ok()
    }

    /// Sends a raw frame; `false` once the server has closed the connection.
    pub async fn try_send(&mut self, message: Message) -> bool {
        self.ws.send(message).await.is_ok()
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    pub async fn cmd(&mut self, line: &str) {
        self.send(json!({"type":"command","line":line})).await;
    }

    pub async fn say(&mut self, target: &str, text: &str) {
        self.send(json!({"type":"message","target":target,"text":text})).await;
    }

    /// The next server event; panics on a close or a timeout.
    pub async fn next_event(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{}: no event within {WAIT:?}", self.nick))
                .unwrap_or_else(|| panic!("{}: connection ended", self.nick))
                .unwrap_or_else(|e| panic!("{}: read failed: {e}", self.nick));
            match message {
                Message::Text(text) => return serde_json::from_str(&text).expect("server sends JSON"),
                Message::Close(frame) => panic!("{}: closed unexpectedly: {frame:?}", self.nick),
                _ => continue,
            }
        }
    }

    /// The next server event, or the close frame (`Err`) when the server closed instead.
    pub async fn next_or_close(&mut self) -> Result<Value, Option<CloseFrame>> {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{}: no event within {WAIT:?}", self.nick));
            match message {
                Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).expect("JSON")),
                Some(Ok(Message::Close(frame))) => return Err(frame),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(None),
            }
        }
    }

    /// Reads until an event of type `kind` arrives and returns it; other events are skipped,
    /// but an error while waiting for something else fails the test at once, with the error
    /// (a wrong refusal would otherwise show only as a timeout).
    pub async fn expect(&mut self, kind: &str) -> Value {
        loop {
            let event = self.next_event().await;
            if event["type"] == kind {
                return event;
            }
            assert!(event["type"] != "error", "{}: waiting for {kind}, got {event}", self.nick);
        }
    }

    /// Reads until an error arrives and checks its code.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let event = self.expect("error").await;
        assert_eq!(event["code"], code, "{}: wrong error: {event}", self.nick);
        assert!(event["message"].as_str().is_some_and(|m| !m.is_empty()));
        event
    }

    /// Everything the server sends until it has answered a ping sent now: since a session's
    /// events are delivered in order, this is everything already queued for this client.
    pub async fn drain(&mut self) -> Vec<Value> {
        self.next_ping += 1;
        let id = self.next_ping;
        self.send(json!({"type":"ping","id":id})).await;
        let mut events = Vec::new();
        loop {
            let event = self.next_event().await;
            if event["type"] == "pong" && event["id"] == id {
                return events;
            }
            events.push(event);
        }
    }

    /// Asserts that nothing of type `kind` is queued for this client.
    pub async fn assert_no(&mut self, kind: &str) {
        let events = self.drain().await;
        assert!(!events.iter().any(|e| e["type"] == kind), "{}: unexpected {kind}: {events:?}", self.nick);
    }

    /// Closes the connection (a close frame) and waits for the server's answer.
    pub async fn close(&mut self) {
        self.send_raw(Message::Close(None)).await;
        self.expect_close().await;
    }

    /// Reads until the server closes the connection; returns the close frame, skipping events.
    pub async fn expect_close(&mut self) -> Option<CloseFrame> {
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next()).await.expect("close within the wait");
            match next {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Reads until the server closes, returning every event before the close frame.
    pub async fn events_until_close(&mut self) -> (Vec<Value>, Option<CloseFrame>) {
        let mut events = Vec::new();
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next()).await.expect("close within the wait");
            match next {
                Some(Ok(Message::Text(text))) => events.push(serde_json::from_str(&text).unwrap()),
                Some(Ok(Message::Close(frame))) => return (events, frame),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return (events, None),
            }
        }
    }

    /// Reads until a notice from `from` (a service) arrives; returns its text.
    pub async fn notice(&mut self, from: &str) -> String {
        loop {
            let event = self.expect("notice").await;
            if event["from"] == from {
                return event["text"].as_str().unwrap_or_default().to_owned();
            }
        }
    }

    /// Registers the current nick with Potato and waits for the confirmation.
    pub async fn register(&mut self, password: &str) {
        self.cmd(&format!("/potato register {password} {}@mail.example", self.nick)).await;
        let text = self.notice("Potato").await;
        assert!(text.contains("registered to you"), "{}: {text}", self.nick);
    }

    /// Identifies with Potato; returns the events up to Potato's confirmation, which comes
    /// last (the account change first, then any nick changes).
    pub async fn identify(&mut self, nick: &str, password: &str) -> Vec<Value> {
        self.cmd(&format!("/potato identify {nick} {password}")).await;
        let mut events = Vec::new();
        loop {
            let event = self.next_event().await;
            if event["type"] == "error" {
                panic!("{}: identify failed: {event}", self.nick);
            }
            if event["type"] == "notice" && event["from"] == "Potato" {
                assert!(event["text"].as_str().unwrap().contains("identified as"), "{event}");
                return events;
            }
            events.push(event);
        }
    }

    /// Joins a channel and waits for the member list and the history that follows it.
    pub async fn join(&mut self, channel: &str) -> Value {
        self.cmd(&format!("/join {channel}")).await;
        let members = self.expect("members").await;
        let registration = self.next_event().await;
        assert_eq!(
            registration["type"], "registration",
            "{}: the registration follows the members",
            self.nick
        );
        let history = self.next_event().await;
        assert_eq!(history["type"], "history", "{}: history follows the registration", self.nick);
        members
    }
}

/// A member entry of a `members` event, by nick.
pub fn member<'a>(members: &'a Value, nick: &str) -> Option<&'a Value> {
    members["members"].as_array()?.iter().find(|m| m["nick"] == nick)
}

/// `host` is a cloak, which hides the address: 16 hex digits of a keyed hash and `.cloak`, no
/// part of a dotted or colon-separated address. (The key is random per server: a check for
/// digits such as "127" in it failed now and then.)
pub fn assert_cloaked(host: &str) {
    let hex = host.strip_suffix(".cloak").unwrap_or_else(|| panic!("not a cloak: {host}"));
    assert!(hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()), "not a cloak: {host}");
}

//! The WebSocket as the wire carries it: the upgrade and its refusals, and events longer than
//! a frame sent as several frames that clients see as one message.
//!
//! These tests speak WebSocket over raw TCP (the upgrade by hand, frames parsed here), since a
//! WebSocket library would hide how a message was cut into frames.

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::common::{TestServer, WAIT};

/// The longest frame the server sends (`ws::FRAME_BYTES`).
const FRAME_BYTES: usize = 1024;

const TEXT: u8 = 0x1;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xa;

/// One frame as it arrived.
#[derive(Debug)]
struct Frame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

/// A WebSocket client that shows frames as they are on the wire.
struct RawSocket {
    stream: TcpStream,
    read: Vec<u8>,
}

impl RawSocket {
    /// Sends an upgrade request with these extra header lines; returns the status and the
    /// response's head, and the socket (upgraded when the status is 101).
    async fn request(server: &TestServer, headers: &str) -> (u16, String, Self) {
        Self::request_with(server, "GET", headers, &[]).await
    }

    /// [`RawSocket::request`] with this method, and `after` sent in the same write as the
    /// request.
    async fn request_with(
        server: &TestServer,
        method: &str,
        headers: &str,
        after: &[u8],
    ) -> (u16, String, Self) {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let mut request = format!("{method} /ws HTTP/1.1\r\nHost: chattr.test\r\n{headers}\r\n").into_bytes();
        request.extend_from_slice(after);
        stream.write_all(&request).await.unwrap();
        let mut socket = Self { stream, read: Vec::new() };
        let end = loop {
            if let Some(end) = socket.read.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            socket.fill().await;
        };
        let head = String::from_utf8(socket.read.drain(..end).collect()).unwrap();
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
        (status, head, socket)
    }

    async fn open(server: &TestServer) -> Self {
        let (status, head, socket) = Self::request(server, UPGRADE_HEADERS).await;
        assert_eq!(status, 101, "{head}");
        socket
    }

    async fn fill(&mut self) {
        let mut buf = [0u8; 4096];
        let n = timeout(WAIT, self.stream.read(&mut buf)).await.expect("the server answers").unwrap();
        assert!(n > 0, "the server closed the connection");
        self.read.extend_from_slice(&buf[..n]);
    }

    /// Sends a frame, masked as a client must.
    async fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        self.stream.write_all(&masked(fin, opcode, payload)).await.unwrap();
    }

    async fn send(&mut self, value: Value) {
        self.send_frame(true, TEXT, value.to_string().as_bytes()).await;
    }

    /// The next frame from the server (unmasked, as a server's are).
    async fn frame(&mut self) -> Frame {
        loop {
            if let Some((frame, used)) = parse(&self.read) {
                self.read.drain(..used);
                return frame;
            }
            self.fill().await;
        }
    }

    /// The next data message: its frames (control frames between them skipped) and its text.
    async fn message(&mut self) -> (Vec<Frame>, Value) {
        let mut frames: Vec<Frame> = Vec::new();
        loop {
            let frame = self.frame().await;
            if frame.opcode >= 0x8 {
                continue;
            }
            let fin = frame.fin;
            frames.push(frame);
            if fin {
                let text: Vec<u8> = frames.iter().flat_map(|f| f.payload.iter().copied()).collect();
                let text = String::from_utf8(text).expect("a text message is UTF-8");
                return (frames, serde_json::from_str(&text).expect("a message is one JSON object"));
            }
        }
    }

    /// Messages until one of this type; returns its frames and it.
    async fn until(&mut self, kind: &str) -> (Vec<Frame>, Value) {
        loop {
            let (frames, event) = self.message().await;
            if event["type"] == kind {
                return (frames, event);
            }
        }
    }
}

/// A frame as a client sends it (masked).
fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x5a, 0x17, 0xc3, 0x08];
    let mut frame = vec![u8::from(fin) << 7 | opcode];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// A whole frame at the start of `bytes`, and how many bytes it took.
fn parse(bytes: &[u8]) -> Option<(Frame, usize)> {
    let [first, second, ..] = *bytes else { return None };
    assert_eq!(second & 0x80, 0, "server frames are not masked");
    let (len, at) = match second & 0x7f {
        126 => (u16::from_be_bytes(bytes.get(2..4)?.try_into().unwrap()) as usize, 4),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().unwrap()) as usize, 10),
        n => (usize::from(n), 2),
    };
    let payload = bytes.get(at..at + len)?.to_vec();
    Some((Frame { fin: first & 0x80 != 0, opcode: first & 0x0f, payload }, at + len))
}

const UPGRADE_HEADERS: &str = "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

#[tokio::test]
async fn an_event_longer_than_a_frame_arrives_in_frames_of_at_most_1_kib_as_one_message() {
    let server = TestServer::start().await;
    let mut alice = server.guest("alice").await;
    alice.join("#long").await;
    // Texts in other scripts, so frames could end inside a character.
    let texts: Vec<String> =
        ["ж", "中", "😀", "a"].iter().enumerate().map(|(i, s)| format!("{i}{}", s.repeat(900))).collect();
    for text in &texts {
        alice.say("#long", text).await;
        alice.expect("message").await;
    }

    let mut raw = RawSocket::open(&server).await;
    raw.send(json!({"type":"auth","nick":"raw"})).await;
    raw.until("welcome").await;
    raw.send(json!({"type":"command","line":"/join #long"})).await;
    let (frames, history) = raw.until("history").await;
    let said: Vec<&str> =
        history["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(said, texts.iter().map(String::as_str).collect::<Vec<_>>(), "one message, whole");
    assert!(
        frames.len() > 1,
        "the history ({} bytes) came in one frame",
        frames.iter().map(|f| f.payload.len()).sum::<usize>()
    );
    assert!(
        frames.iter().all(|f| f.payload.len() <= FRAME_BYTES),
        "{:?}",
        frames.iter().map(|f| f.payload.len()).collect::<Vec<_>>()
    );
    assert_eq!(frames[0].opcode, TEXT);
    assert!(frames[1..].iter().all(|f| f.opcode == CONTINUATION));
    assert_eq!(frames.iter().filter(|f| f.fin).count(), 1);
    assert!(frames.last().unwrap().fin);

    // A long message said now reaches a member the same way, and a library client as one text.
    let mut bob = server.guest("bob").await;
    bob.join("#long").await;
    raw.until("joined").await;
    bob.say("#long", &texts[0]).await;
    let (frames, message) = raw.until("message").await;
    assert_eq!(message["text"], texts[0].as_str());
    assert!(frames.len() > 1 && frames.iter().all(|f| f.payload.len() <= FRAME_BYTES));
    assert_eq!(alice.expect("message").await["text"], texts[0].as_str());
}

#[tokio::test]
async fn a_client_may_send_a_frame_in_pieces() {
    let server = TestServer::start().await;
    let mut raw = RawSocket::open(&server).await;
    let auth = json!({"type":"auth","nick":"pieces"}).to_string();
    let (a, b) = auth.split_at(10);
    raw.send_frame(false, TEXT, a.as_bytes()).await;
    raw.send_frame(true, CONTINUATION, b.as_bytes()).await;
    let (frames, welcome) = raw.until("welcome").await;
    assert_eq!(welcome["nick"], "pieces");
    assert_eq!(frames.len(), 1, "a short event is one frame");
}

#[tokio::test]
async fn requests_that_are_not_websocket_upgrades_are_refused() {
    let server = TestServer::start().await;
    let (status, head, _) = RawSocket::request(&server, "").await;
    assert_eq!(status, 426, "{head}");
    assert!(head.to_ascii_lowercase().contains("upgrade: websocket"), "426 names the protocol: {head}");
    let old = UPGRADE_HEADERS.replace("Version: 13", "Version: 8");
    assert_eq!(RawSocket::request(&server, &old).await.0, 400);
    let keyless = UPGRADE_HEADERS.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
    assert_eq!(RawSocket::request(&server, &keyless).await.0, 400);
    let head_request = RawSocket::request_with(&server, "HEAD", UPGRADE_HEADERS, &[]).await;
    assert_eq!(head_request.0, 405, "{}", head_request.1);
    let (status, head, _) = RawSocket::request(&server, UPGRADE_HEADERS).await;
    assert_eq!(status, 101);
    // RFC 6455's own example key and its answer.
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
}

#[tokio::test]
async fn pings_are_answered_with_their_payload_before_and_after_login() {
    let server = TestServer::start().await;
    let mut raw = RawSocket::open(&server).await;
    // Before login the answer waits for the connection's writer, which starts with the session.
    raw.send_frame(true, PING, b"early").await;
    raw.send(json!({"type":"auth","nick":"pinger"})).await;
    let mut pongs = Vec::new();
    let mut welcomed = false;
    while !welcomed || pongs.is_empty() {
        let frame = raw.frame().await;
        match frame.opcode {
            PONG => pongs.push(frame.payload),
            TEXT => welcomed |= serde_json::from_slice::<Value>(&frame.payload).unwrap()["type"] == "welcome",
            other => panic!("unexpected opcode {other}"),
        }
    }
    assert_eq!(pongs, [b"early".to_vec()]);
    raw.send_frame(true, PING, "später".as_bytes()).await;
    let pong = loop {
        let frame = raw.frame().await;
        if frame.opcode == PONG {
            break frame.payload;
        }
    };
    assert_eq!(pong, "später".as_bytes());
    // The session is alive: a command still gets its answer.
    raw.send(json!({"type":"command","line":"/join #p"})).await;
    raw.until("joined").await;
}

#[tokio::test]
async fn frames_sent_with_the_upgrade_request_are_read() {
    let server = TestServer::start().await;
    // The auth frame in the same write as the request: the server reads it with the request's head.
    let auth = masked(true, TEXT, json!({"type":"auth","nick":"eager"}).to_string().as_bytes());
    let (status, head, mut raw) = RawSocket::request_with(&server, "GET", UPGRADE_HEADERS, &auth).await;
    assert_eq!(status, 101, "{head}");
    let (_, welcome) = raw.until("welcome").await;
    assert_eq!(welcome["nick"], "eager");
}

#[tokio::test]
async fn a_clients_close_frame_is_answered_with_the_servers() {
    let server = TestServer::start().await;
    let mut raw = RawSocket::open(&server).await;
    raw.send(json!({"type":"auth","nick":"leaver"})).await;
    raw.until("welcome").await;
    raw.send_frame(true, CLOSE, &1001u16.to_be_bytes()).await;
    let close = loop {
        let frame = raw.frame().await;
        if frame.opcode == CLOSE {
            break frame;
        }
    };
    assert_eq!(close.payload[..2], 1000u16.to_be_bytes(), "{close:?}");
}

//! Connections before HTTP: slow and silent clients are cut off (header, request and keep-alive
//! timeouts, and a client that stops reading its answers), one address cannot hold more than
//! its share of connections or open them faster than its rate, the global cap keeps
//! descriptors in reserve, and none of it gets in the way of ordinary keep-alive HTTP and
//! WebSocket chat.
//!
//! These tests speak HTTP over raw TCP, since they need to send less than a whole request.
//! The timeouts are shortened; a client that trickles bytes waits on the socket between them,
//! so the pause between bytes is also the wait for the server to hang up.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::common::{TestServer, SECRET, WAIT};

const HOME: &[u8] = b"GET / HTTP/1.1\r\nHost: chattr.test\r\n\r\n";
const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: chattr.test\r\n\r\n";
const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: chattr.test\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// The pause between two bytes of a slow client.
const BYTE_PAUSE: Duration = Duration::from_millis(50);

/// What the server did while a client sent it bytes one at a time.
#[derive(Debug)]
enum Trickled {
    /// It closed the connection after this many bytes, having sent `answer` first.
    Closed { sent: usize, answer: String },
    /// Every byte went out and the connection is still open.
    AllSent,
}

/// Sends `bytes` one at a time, [`BYTE_PAUSE`] apart, until the server hangs up.
async fn trickle(stream: &mut TcpStream, bytes: &[u8]) -> Trickled {
    let mut buf = [0u8; 4096];
    for (i, byte) in bytes.iter().enumerate() {
        if stream.write_all(&[*byte]).await.is_err() {
            return Trickled::Closed { sent: i, answer: String::new() };
        }
        match timeout(BYTE_PAUSE, stream.read(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => return Trickled::Closed { sent: i + 1, answer: String::new() },
            Ok(Ok(n)) => {
                let mut answer = String::from_utf8_lossy(&buf[..n]).into_owned();
                answer.push_str(&read_until_closed(stream).await);
                return Trickled::Closed { sent: i + 1, answer };
            }
        }
    }
    Trickled::AllSent
}

/// Everything the server sends until it closes the connection (a reset counts as a close).
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let read = timeout(WAIT, stream.read(&mut buf)).await;
        match read.expect("the server closes the connection") {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&got).into_owned(),
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one response with a `Content-Length` body; returns its status and body, or `None`
/// when the server closes the connection first.
async fn read_response(stream: &mut TcpStream) -> Option<(u16, String)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .expect("a Content-Length");
            if got.len() >= end + 4 + length {
                let status = text[9..12].parse().expect("a status line");
                return Some((status, text[end + 4..end + 4 + length].to_owned()));
            }
        }
        let read = timeout(WAIT, stream.read(&mut buf)).await;
        match read.expect("an answer or a close in time") {
            Ok(0) | Err(_) if got.is_empty() => return None,
            Ok(0) | Err(_) => panic!("the connection closed mid-response: {text:?}"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// `GET /healthz` on `stream`: its status, or `None` when the server closes the connection
/// without answering.
async fn healthz(stream: &mut TcpStream) -> Option<u16> {
    if stream.write_all(HEALTHZ).await.is_err() {
        return None;
    }
    read_response(stream).await.map(|(status, _)| status)
}

/// A new connection and whether the server serves it.
async fn try_connection(server: &TestServer) -> (TcpStream, bool) {
    let mut stream = TcpStream::connect(server.addr).await.expect("connects");
    let served = healthz(&mut stream).await == Some(200);
    (stream, served)
}

/// Opens connections until the server serves one; fails the test after `within`.
async fn served_again_within(server: &TestServer, within: Duration) -> TcpStream {
    let deadline = Instant::now() + within;
    loop {
        let (stream, served) = try_connection(server).await;
        if served {
            return stream;
        }
        assert!(Instant::now() < deadline, "no connection was served again within {within:?}");
        // The server frees the slot when it sees the close; give it a moment between tries.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts that a slow client was cut off by the header timeout: closed before its head was
/// complete, with no answer, and not before the timeout.
fn assert_cut_off(result: Trickled, head: &[u8], started: Instant, header_timeout: Duration) {
    match result {
        Trickled::Closed { sent, answer } => {
            assert!(sent < head.len(), "the whole head went out ({sent} bytes) before the close");
            assert_eq!(answer, "", "a head that never finished gets no answer");
        }
        Trickled::AllSent => panic!("the server waited for the whole slow head"),
    }
    assert!(started.elapsed() >= header_timeout, "closed after {:?}", started.elapsed());
}

/// Sends `head` a byte at a time to a server with a short header timeout and checks it is cut
/// off; answers the server, for the test to check it still serves others.
async fn slow_head_is_cut_off(head: &[u8]) -> TestServer {
    let header_timeout = Duration::from_millis(400);
    let server = TestServer::start_with(|c| {
        c.header_timeout = header_timeout;
        c.keepalive_timeout = Duration::from_secs(60);
    })
    .await;
    let started = Instant::now();
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let result = trickle(&mut slow, head).await;
    assert_cut_off(result, head, started, header_timeout);
    server
}

#[tokio::test]
async fn a_request_head_sent_byte_by_byte_is_cut_off_at_the_header_timeout() {
    let server = slow_head_is_cut_off(HOME).await;
    assert!(try_connection(&server).await.1, "the server still serves others");
}

#[tokio::test]
async fn a_websocket_upgrade_sent_byte_by_byte_is_cut_off_at_the_header_timeout() {
    let server = slow_head_is_cut_off(UPGRADE).await;
    server.guest("after").await;
}

#[tokio::test]
async fn a_slow_second_head_on_a_kept_alive_connection_is_cut_off_too() {
    let header_timeout = Duration::from_millis(400);
    let server = TestServer::start_with(|c| {
        c.header_timeout = header_timeout;
        c.keepalive_timeout = Duration::from_secs(60);
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(healthz(&mut stream).await, Some(200));
    let started = Instant::now();
    let result = trickle(&mut stream, HEALTHZ).await;
    assert_cut_off(result, HEALTHZ, started, header_timeout);
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_at_the_header_timeout() {
    let header_timeout = Duration::from_millis(300);
    let server = TestServer::start_with(|c| {
        c.header_timeout = header_timeout;
        c.keepalive_timeout = Duration::from_secs(60);
    })
    .await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(read_until_closed(&mut silent).await, "");
    assert!(started.elapsed() >= header_timeout, "closed after {:?}", started.elapsed());
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_at_the_keepalive_timeout() {
    let keepalive = Duration::from_millis(300);
    let server = TestServer::start_with(|c| {
        c.header_timeout = Duration::from_secs(60);
        c.keepalive_timeout = keepalive;
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(healthz(&mut stream).await, Some(200));
    let answered = Instant::now();
    assert_eq!(read_until_closed(&mut stream).await, "");
    assert!(
        answered.elapsed() >= keepalive - Duration::from_millis(20),
        "closed after {:?}",
        answered.elapsed()
    );
}

#[tokio::test]
async fn a_request_body_sent_byte_by_byte_is_cut_off_at_the_request_timeout() {
    let server = TestServer::start_with(|c| {
        c.request_timeout = Duration::from_millis(300);
        c.header_timeout = Duration::from_secs(60);
        c.keepalive_timeout = Duration::from_secs(60);
    })
    .await;
    let body = br#"{"user":"alice","ttl_secs":600}"#;
    let head = format!(
        "POST /api/token HTTP/1.1\r\nHost: chattr.test\r\nAuthorization: Bearer {SECRET}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    match trickle(&mut stream, body).await {
        Trickled::Closed { sent, answer } => {
            assert!(sent < body.len(), "the whole body went out before the close");
            // A byte sent just as the server closed can reset the connection before the
            // answer is read, so no answer is fine; any answer is the timeout.
            assert!(
                answer.is_empty()
                    || answer.starts_with("HTTP/1.1 408") && answer.contains(r#""code":"timeout""#),
                "a 408 or nothing: {answer:?}"
            );
        }
        Trickled::AllSent => panic!("the server waited for the whole slow body"),
    }
    // The API still works for clients that send at a normal pace.
    server.token("alice").await;
}

#[tokio::test]
async fn a_client_that_stops_reading_its_answers_is_cut_off_at_the_send_timeout() {
    let stall = Duration::from_millis(500);
    let server = TestServer::start_with(|c| {
        c.max_conns_per_ip = 1;
        c.conn_rate_per_ip = 0;
        c.send_timeout = stall;
        c.header_timeout = Duration::from_secs(60);
        c.keepalive_timeout = Duration::from_secs(60);
    })
    .await;
    // Requests pipelined, their answers never read: some 13 MB of answers, far more than the
    // client's small receive buffer and the server's send buffer (at most 4 MiB here) hold.
    const ASKED: usize = 300;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(server.addr).await.unwrap();
    let asked = Instant::now();
    stalled
        .write_all(&b"GET /api/openapi.json HTTP/1.1\r\nHost: chattr.test\r\n\r\n".repeat(ASKED))
        .await
        .unwrap();
    // The address may hold one connection: it gets another once the server lets go of that one.
    let _next = served_again_within(&server, WAIT).await;
    assert!(asked.elapsed() >= stall, "let go after {:?}", asked.elapsed());
    // What had reached the client is all it gets: the answers stop short and the connection is
    // closed.
    let got = read_until_closed(&mut stalled).await;
    let answers = got.matches("HTTP/1.1 200").count();
    assert!((1..ASKED).contains(&answers), "{answers} answers of {ASKED} came");
}

#[tokio::test]
async fn one_address_may_hold_only_its_share_of_connections() {
    let server = TestServer::start_with(|c| {
        c.max_conns_per_ip = 3;
        c.conn_rate_per_ip = 0;
        c.header_timeout = Duration::from_secs(60);
        c.keepalive_timeout = Duration::from_secs(60);
    })
    .await;
    // The server takes connections in the order they arrived, so these three are let in.
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(TcpStream::connect(server.addr).await.unwrap());
    }
    // The fourth is closed before the server reads its request.
    let (_, served) = try_connection(&server).await;
    assert!(!served, "a fourth connection from one address was served");
    // The three work; this request is a real one.
    assert_eq!(healthz(&mut first[0]).await, Some(200));
    assert_eq!(healthz(&mut first[2]).await, Some(200));
    // Closing one makes room for one more, and only one.
    drop(first.remove(1));
    let _again = served_again_within(&server, WAIT).await;
    let (_, served) = try_connection(&server).await;
    assert!(!served, "the freed slot was given twice");
}

#[tokio::test]
async fn websocket_sessions_count_against_their_address_until_they_end() {
    let server = TestServer::start_with(|c| {
        c.max_conns_per_ip = 2;
        c.conn_rate_per_ip = 0;
    })
    .await;
    let mut alice = server.guest("alice").await;
    let mut bob = server.guest("bob").await;
    let (_, served) = try_connection(&server).await;
    assert!(!served, "a third connection was served beside two sessions");
    alice.cmd("/quit").await;
    alice.expect_close().await;
    let _again = served_again_within(&server, WAIT).await;
    bob.drain().await;
}

#[tokio::test]
async fn one_address_may_open_connections_only_as_fast_as_its_rate() {
    let server = TestServer::start_with(|c| {
        c.max_conns_per_ip = 0;
        c.conn_burst_per_ip = 3;
        // One new connection every 200 ms once the burst is spent.
        c.conn_rate_per_ip = 5;
    })
    .await;
    // Six connections at once: the first three are the burst; the others come faster than
    // 200 ms apart, except on a machine so busy that it took that long between two accepts.
    let mut attempts = Vec::new();
    for _ in 0..6 {
        attempts.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let mut served = Vec::new();
    for stream in &mut attempts {
        served.push(healthz(stream).await == Some(200));
    }
    assert_eq!(served[..3], [true, true, true], "{served:?}");
    assert!(served.contains(&false), "a burst of six was let in whole: {served:?}");
    // The bucket refills: connections are let in again within a fraction of a second.
    let refused_at = Instant::now();
    served_again_within(&server, Duration::from_secs(2)).await;
    assert!(refused_at.elapsed() < Duration::from_secs(1), "refilled after {:?}", refused_at.elapsed());
}

#[tokio::test]
async fn at_the_global_cap_new_connections_wait_until_one_closes() {
    let server = TestServer::start_with(|c| {
        c.max_conns = 2;
        c.header_timeout = Duration::from_secs(60);
        c.keepalive_timeout = Duration::from_secs(60);
    })
    .await;
    let first = TcpStream::connect(server.addr).await.unwrap();
    let _second = TcpStream::connect(server.addr).await.unwrap();
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    third.write_all(HEALTHZ).await.unwrap();
    // Nothing can answer it while two connections are open: it waits in the kernel's queue.
    let mut buf = [0u8; 64];
    let early = timeout(Duration::from_millis(300), third.read(&mut buf)).await;
    assert!(early.is_err(), "the third connection was served at a cap of two: {early:?}");
    drop(first);
    let (status, body) = read_response(&mut third).await.expect("served once a slot is free");
    assert_eq!((status, body.as_str()), (200, "ok"));
}

#[tokio::test]
async fn keep_alive_http_and_websocket_chat_work_under_the_default_limits() {
    let timeouts = Duration::from_millis(300);
    let server = TestServer::start_with(|c| {
        // Per-address limits as shipped; timeouts short, to see sessions outlive them.
        let shipped = chattr::Config::for_tests();
        c.max_conns_per_ip = shipped.max_conns_per_ip;
        c.conn_rate_per_ip = shipped.conn_rate_per_ip;
        c.conn_burst_per_ip = shipped.conn_burst_per_ip;
        c.header_timeout = timeouts;
        c.request_timeout = timeouts;
        c.keepalive_timeout = timeouts;
    })
    .await;
    // Three requests on one connection.
    let mut kept = TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..3 {
        assert_eq!(healthz(&mut kept).await, Some(200));
    }
    let mut alice = server.guest("alice").await;
    let mut bob = server.guest("bob").await;
    alice.join("#c").await;
    bob.join("#c").await;
    // Once the server has closed a connection opened now for sending nothing, every timeout
    // has passed.
    let opened = Instant::now();
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(read_until_closed(&mut silent).await, "");
    assert!(opened.elapsed() >= timeouts, "closed after {:?}", opened.elapsed());
    alice.say("#c", "still here").await;
    let message = bob.expect("message").await;
    assert_eq!((message["from"].as_str(), message["text"].as_str()), (Some("alice"), Some("still here")));
    bob.drain().await;
}

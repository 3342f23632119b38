//! The clients' WebSocket: fastwebsockets on the TCP socket's own halves.
//!
//! The generator must cost less than the servers it measures. Here the reading half reads
//! frames straight out of its own buffer (never zeroed; fastwebsockets makes it 8 KiB), taking
//! no lock but to answer a ping or a close; the writing half, which the sender and those
//! answers share, is behind a mutex taken per frame sent (a few thousand a second). With
//! tokio-tungstenite a fifth of the generator's CPU was its reading (a `Message` made per frame,
//! the read buffer zeroed before each read) and a tenth the lock its split halves share
//! (docs/benchmarks.md, "A client without tungstenite").

use std::io::Cursor;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use fastwebsockets::{FragmentCollectorRead, Frame, OpCode, Payload, Role, WebSocketError, WebSocketWrite};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Chain};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// What the reading half reads from: the bytes the handshake read past the server's answer
/// (Engine.IO's `open` packet comes in the same segment), then the socket.
type ReadStream = Chain<Cursor<Bytes>, OwnedReadHalf>;

/// One client's connection.
pub(crate) struct Socket {
    reader: Reader,
}

/// The reading half; it holds the writing half too, for the pongs and the close it owes.
pub(crate) struct Reader {
    ws: FragmentCollectorRead<ReadStream>,
    writer: Writer,
}

/// The writing half. The connection stays open while any clone of it, or the reader, lives.
#[derive(Clone)]
pub(crate) struct Writer(Arc<Mutex<WebSocketWrite<OwnedWriteHalf>>>);

/// A text frame's payload, known to be UTF-8.
pub(crate) struct Text(BytesMut);

impl Text {
    pub(crate) fn as_str(&self) -> &str {
        // The collector has checked text frames; a failure here is an empty text, never a panic.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The longest answer to the upgrade request read before giving up on it.
const MAX_HANDSHAKE_BYTES: usize = 16 * 1024;

impl Socket {
    /// Opens a WebSocket to `path` (with its query) on the server at `addr` (host:port).
    pub(crate) async fn connect(addr: &str, path: &str) -> Result<Self, String> {
        let mut stream =
            TcpStream::connect(addr).await.map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let past_answer = handshake(&mut stream, addr, path)
            .await
            .map_err(|e| format!("the WebSocket handshake with {addr} failed: {e}"))?;
        let (read, write) = stream.into_split();
        let (read, write) =
            fastwebsockets::after_handshake_split(Cursor::new(past_answer).chain(read), write, Role::Client);
        Ok(Self {
            reader: Reader {
                ws: FragmentCollectorRead::new(read),
                writer: Writer(Arc::new(Mutex::new(write))),
            },
        })
    }

    pub(crate) async fn send_text(&mut self, text: String) -> Result<(), String> {
        self.reader.writer.send_text(text).await
    }

    /// The next text frame; `None` once the connection is closed or broken.
    pub(crate) async fn next_text(&mut self) -> Option<Text> {
        self.reader.next_text().await
    }

    /// The reading half and a writing half that can be used at the same time.
    pub(crate) fn split(self) -> (Reader, Writer) {
        let writer = self.reader.writer.clone();
        (self.reader, writer)
    }
}

impl Reader {
    /// The next text frame, answering pings and a close on the way; `None` once the connection
    /// is closed or broken.
    pub(crate) async fn next_text(&mut self) -> Option<Text> {
        loop {
            let writer = &self.writer;
            let mut obligated = |frame: Frame<'static>| async move { writer.send(frame).await };
            let frame = self.ws.read_frame(&mut obligated).await.ok()?;
            match frame.opcode {
                OpCode::Text => {
                    return Some(Text(match frame.payload {
                        Payload::Bytes(bytes) => bytes,
                        other => BytesMut::from(&*other),
                    }))
                }
                OpCode::Close => return None,
                _ => {}
            }
        }
    }
}

impl Writer {
    pub(crate) async fn send_text(&self, text: String) -> Result<(), String> {
        self.send(Frame::text(Payload::Owned(text.into_bytes())))
            .await
            .map_err(|_| "the connection closed".to_owned())
    }

    async fn send(&self, frame: Frame<'_>) -> Result<(), WebSocketError> {
        self.0.lock().await.write_frame(frame).await
    }
}

/// The client's opening handshake (RFC 6455, section 4.1): the upgrade request, and the answer
/// checked for its status, `Upgrade`, `Connection` and `Sec-WebSocket-Accept`. Answers the bytes
/// read past the answer (the server's first frames may come in the same segment).
async fn handshake(stream: &mut TcpStream, addr: &str, path: &str) -> Result<Bytes, String> {
    let key = BASE64.encode(rand::random::<[u8; 16]>());
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut answer = BytesMut::with_capacity(1024);
    loop {
        if stream.read_buf(&mut answer).await.map_err(|e| e.to_string())? == 0 {
            return Err("the server closed the connection".into());
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&answer).map_err(|e| e.to_string())? {
            httparse::Status::Partial if answer.len() < MAX_HANDSHAKE_BYTES => continue,
            httparse::Status::Partial => return Err("the answer's headers never ended".into()),
            httparse::Status::Complete(length) => {
                if response.code != Some(101) {
                    return Err(format!("answered {} instead of 101", response.code.unwrap_or_default()));
                }
                let header = |name: &str| {
                    let found = response.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name));
                    found.and_then(|h| std::str::from_utf8(h.value).ok()).unwrap_or_default()
                };
                if !header("upgrade").eq_ignore_ascii_case("websocket")
                    || !header("connection").split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
                {
                    return Err("the answer does not upgrade the connection to a WebSocket".into());
                }
                if header("sec-websocket-accept") != accept_for(&key) {
                    return Err("a wrong or missing Sec-WebSocket-Accept".into());
                }
                // Copied out, so that the answer's buffer is not held for the connection's life.
                return Ok(Bytes::copy_from_slice(&answer[length..]));
            }
        }
    }
}

/// The `Sec-WebSocket-Accept` a server answers to `key`.
fn accept_for(key: &str) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    BASE64.encode(sha1.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts a server that reads one upgrade request and writes what `answer` makes of its key
    /// (then keeps the connection open until the test ends); answers its address.
    async fn answering(answer: impl FnOnce(&str) -> Vec<u8> + Send + 'static) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                assert!(socket.read_buf(&mut request).await.unwrap() > 0);
            }
            let request = String::from_utf8(request).unwrap();
            let key = request.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).unwrap();
            socket.write_all(&answer(key)).await.unwrap();
            std::future::pending::<()>().await;
            drop(socket);
        });
        addr
    }

    fn upgrade(accept: &str) -> String {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\n\
             sec-websocket-accept: {accept}\r\n\r\n"
        )
    }

    #[tokio::test]
    async fn a_frame_in_the_same_segment_as_the_answer_is_read() {
        let addr = answering(|key| {
            let mut answer = upgrade(&accept_for(key)).into_bytes();
            answer.extend_from_slice(&[0x81, 5]);
            answer.extend_from_slice(b"hello");
            answer
        })
        .await;
        let mut socket = Socket::connect(&addr, "/ws").await.unwrap();
        let first = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next_text()).await;
        let first = first.expect("the frame came with the answer").map(|t| t.as_str().to_owned());
        assert_eq!(first.as_deref(), Some("hello"));
    }

    #[tokio::test]
    async fn an_answer_that_does_not_upgrade_or_accept_the_key_is_refused() {
        type Answer = fn(&str) -> Vec<u8>;
        let refusals: [(Answer, &str); 3] = [
            (|_| b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_vec(), "answered 200 instead of 101"),
            (|_| upgrade("c29tZXRoaW5nIGVsc2U=").into_bytes(), "Sec-WebSocket-Accept"),
            (
                |key| upgrade(&accept_for(key)).replace("upgrade: WebSocket", "upgrade: h2c").into_bytes(),
                "does not upgrade",
            ),
        ];
        for (answer, why) in refusals {
            let addr = answering(answer).await;
            let refused = Socket::connect(&addr, "/ws").await.err().unwrap_or_default();
            assert!(refused.contains(why), "{refused}");
        }
    }

    #[test]
    fn the_accept_is_the_rfc_s_example() {
        // RFC 6455, section 1.3.
        assert_eq!(accept_for("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }
}

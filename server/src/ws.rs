//! The WebSocket upgrade, and the frames the writer sends.
//!
//! The upgrade is done here rather than by axum's `WebSocketUpgrade`, so that a session gets the
//! socket's two halves: tungstenite reads and parses what the client sends, and the session's
//! writer writes its frames to the other half itself, each batch in one vectored `write` of
//! the frames' headers (made here) and the events' own bytes. Through tungstenite's sending
//! half each frame was copied into a write buffer, behind a lock shared with the reading half
//! (docs/benchmarks.md). A long event is sent as several frames of at most [`FRAME_BYTES`] (one
//! WebSocket message: clients see the same text), so a frame's header stays a few bytes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame, FrameHeader};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Bytes;
use tokio_tungstenite::WebSocketStream;

use crate::listener::Conn;

/// An upgraded connection's receiving half: tungstenite, reading.
pub(crate) type Receiver = WebSocketStream<ReadOnly>;

/// An upgraded connection's sending half, written to by the session's writer alone.
pub(crate) type Sender = Box<dyn AsyncWrite + Send + Unpin>;

/// The longest frame the writer sends; a longer event is sent as several.
pub(crate) const FRAME_BYTES: usize = 1024;

/// The longest header of a frame the server sends (unmasked, a payload of at most
/// [`FRAME_BYTES`], or a control frame's 125 bytes).
const HEADER_BYTES: usize = 4;

/// A WebSocket upgrade request (HTTP/1.1, RFC 6455 §4.2.1), checked; answered with
/// [`WebSocketUpgrade::on_upgrade`].
pub(crate) struct WebSocketUpgrade {
    accept: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// Why a request to the WebSocket endpoint is not an upgrade.
#[derive(Debug)]
pub(crate) struct NotAnUpgrade(StatusCode, &'static str);

impl IntoResponse for NotAnUpgrade {
    fn into_response(self) -> Response {
        let mut response = (self.0, self.1).into_response();
        if self.0 == StatusCode::UPGRADE_REQUIRED {
            response.headers_mut().insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        }
        response
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = NotAnUpgrade;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // (The route takes HEAD too, which hyper would upgrade all the same.)
        if parts.method != Method::GET {
            return Err(NotAnUpgrade(StatusCode::METHOD_NOT_ALLOWED, "a WebSocket upgrade is a GET"));
        }
        let headers = &parts.headers;
        if !has_token(headers, &header::CONNECTION, "upgrade")
            || !has_token(headers, &header::UPGRADE, "websocket")
        {
            return Err(NotAnUpgrade(StatusCode::UPGRADE_REQUIRED, "this endpoint speaks WebSocket only"));
        }
        if headers.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
            return Err(NotAnUpgrade(StatusCode::BAD_REQUEST, "Sec-WebSocket-Version must be 13"));
        }
        let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
            return Err(NotAnUpgrade(StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is missing"));
        };
        // (Base64 is always a valid header value.)
        let accept = HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
            .map_err(|_| NotAnUpgrade(StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is not usable"))?;
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            return Err(NotAnUpgrade(StatusCode::UPGRADE_REQUIRED, "this connection cannot be upgraded"));
        };
        Ok(Self { accept, on_upgrade })
    }
}

impl WebSocketUpgrade {
    /// Answers `101 Switching Protocols`; once the connection is handed over, `session` runs
    /// with the socket's halves on a task of its own. A connection lost before that is dropped
    /// quietly.
    pub(crate) fn on_upgrade<F, Fut>(self, config: WebSocketConfig, session: F) -> Response
    where
        F: FnOnce(Sender, Receiver) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else { return };
            let (reader, sender, read_ahead) = halves(upgraded);
            let receiver = WebSocketStream::from_partially_read(
                ReadOnly(reader),
                read_ahead,
                Role::Server,
                Some(config),
            )
            .await;
            session(sender, receiver).await;
        });
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, self.accept);
        response
    }
}

/// Whether a comma-separated header lists `token` (case-insensitively), as `Connection: keep-alive, Upgrade` does.
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

/// The upgraded socket's halves, and what the server had read of it past the upgrade request
/// (copied: hyper's bytes would keep its whole read buffer alive for the connection's life). A
/// connection accepted by chattrd's listener is split into its TCP halves, which need no lock
/// between them; anything else (a test's, a TLS stream) is split behind tokio's lock.
fn halves(upgraded: Upgraded) -> (Box<dyn AsyncRead + Send + Unpin>, Sender, Vec<u8>) {
    match upgraded.downcast::<TokioIo<Conn>>() {
        Ok(parts) => {
            let (read, write) = parts.io.into_inner().into_split();
            (Box::new(read), Box::new(write), parts.read_buf.to_vec())
        }
        Err(upgraded) => {
            let (read, write) = tokio::io::split(TokioIo::new(upgraded));
            (Box::new(read), Box::new(write), Vec::new())
        }
    }
}

/// The reading half as tungstenite's stream. Tungstenite answers a ping, and a close, by
/// writing; nothing it writes is sent from here (it is dropped): the session's writer is the
/// only one that writes, and answers pings itself (the reader hands it their payload) and
/// sends the close frame.
pub(crate) struct ReadOnly(Box<dyn AsyncRead + Send + Unpin>);

impl AsyncRead for ReadOnly {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ReadOnly {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The header of a frame the server sends.
pub(crate) struct Header {
    bytes: [u8; HEADER_BYTES],
    len: u8,
}

impl Header {
    fn new(opcode: OpCode, is_final: bool, payload: usize) -> Self {
        let header = FrameHeader { is_final, opcode, ..FrameHeader::default() };
        let mut bytes = [0; HEADER_BYTES];
        let mut out = &mut bytes[..];
        // (Never fails: the payload is at most FRAME_BYTES, so the header fits.)
        let _ = header.format(payload as u64, &mut out);
        let len = (HEADER_BYTES - out.len()) as u8;
        Self { bytes, len }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A text message as the frames the writer sends, each a header and the piece of the text it
/// carries: one text frame if it fits in [`FRAME_BYTES`], otherwise pieces of at most that size
/// (cut between characters, so every piece is text a lenient client could show), the first a
/// text frame, the rest continuations, the last final.
pub(crate) fn frames(text: &str) -> impl Iterator<Item = (Header, &[u8])> {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut first = true;
    std::iter::from_fn(move || {
        if start == bytes.len() && !first {
            return None;
        }
        let end = piece_end(bytes, start);
        let opcode = if first { Data::Text } else { Data::Continue };
        let piece = &bytes[start..end];
        first = false;
        start = end;
        Some((Header::new(OpCode::Data(opcode), end == bytes.len(), piece.len()), piece))
    })
}

/// How many frames [`frames`] makes of a text.
pub(crate) fn frame_count(text: &str) -> usize {
    if text.len() <= FRAME_BYTES {
        return 1;
    }
    frames(text).count()
}

/// How many bytes the frames of a text are on the wire.
pub(crate) fn wire_len(text: &str) -> usize {
    frames(text).map(|(header, piece)| header.as_bytes().len() + piece.len()).sum()
}

/// A ping frame (empty), as sent.
pub(crate) fn ping() -> Vec<u8> {
    control(Frame::ping(Bytes::new()))
}

/// The pong answering a ping that carried `payload`, as sent.
pub(crate) fn pong(payload: Bytes) -> Vec<u8> {
    control(Frame::pong(payload))
}

/// A close frame with its code and reason, as sent.
pub(crate) fn close(code: CloseCode, reason: &str) -> Vec<u8> {
    control(Frame::close(Some(CloseFrame { code, reason: reason.into() })))
}

fn control(frame: Frame) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(frame.len());
    // (Writing to a Vec does not fail.)
    let _ = frame.format(&mut bytes);
    bytes
}

/// Where the piece of a long text that starts at `start` ends: [`FRAME_BYTES`] on, or the
/// text's end, moved back to the start of a character.
fn piece_end(bytes: &[u8], start: usize) -> usize {
    let mut end = (start + FRAME_BYTES).min(bytes.len());
    // A character is at most 4 bytes: a boundary is found within 3 steps back.
    while end < bytes.len() && !is_char_start(bytes[end]) {
        end -= 1;
    }
    end
}

/// Whether a byte of UTF-8 text begins a character (is not a continuation byte).
fn is_char_start(byte: u8) -> bool {
    byte & 0b1100_0000 != 0b1000_0000
}

/// Parses frames the server wrote: each one's opcode, whether it is final, its payload.
#[cfg(test)]
pub(crate) fn parse(wire: &[u8]) -> Vec<(OpCode, bool, Vec<u8>)> {
    let mut cursor = std::io::Cursor::new(wire);
    let mut parsed = Vec::new();
    while (cursor.position() as usize) < wire.len() {
        let (header, len) = FrameHeader::parse(&mut cursor).expect("a valid header").expect("a whole header");
        assert!(header.mask.is_none(), "the server does not mask");
        let start = cursor.position() as usize;
        let end = start + len as usize;
        parsed.push((header.opcode, header.is_final, wire[start..end].to_vec()));
        cursor.set_position(end as u64);
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames' payloads and whether each is final, with each one's kind, read back from
    /// the bytes the writer would send.
    fn pieces(text: &str) -> (Vec<String>, Vec<bool>, Vec<&'static str>) {
        let wire: Vec<u8> =
            frames(text).flat_map(|(header, piece)| [header.as_bytes(), piece].concat()).collect();
        assert_eq!(wire.len(), wire_len(text));
        let mut payloads = Vec::new();
        let mut finals = Vec::new();
        let mut kinds = Vec::new();
        for (opcode, is_final, payload) in parse(&wire) {
            finals.push(is_final);
            kinds.push(match opcode {
                OpCode::Data(Data::Text) => "text",
                OpCode::Data(Data::Continue) => "continue",
                _ => "other",
            });
            payloads.push(String::from_utf8(payload).expect("whole characters"));
        }
        (payloads, finals, kinds)
    }

    #[test]
    fn a_short_message_is_one_text_frame() {
        assert_eq!(
            pieces("{\"type\":\"pong\"}"),
            (vec!["{\"type\":\"pong\"}".to_owned()], vec![true], vec!["text"])
        );
        let exact = "x".repeat(FRAME_BYTES);
        assert_eq!(pieces(&exact).0, vec![exact.clone()]);
        assert_eq!(
            pieces(""),
            (vec![String::new()], vec![true], vec!["text"]),
            "an empty message is still sent"
        );
    }

    #[test]
    fn a_long_message_is_a_text_frame_then_continuations_the_last_final() {
        let text = "y".repeat(FRAME_BYTES * 2 + 10);
        let (payloads, finals, kinds) = pieces(&text);
        assert_eq!(payloads.iter().map(String::len).collect::<Vec<_>>(), [FRAME_BYTES, FRAME_BYTES, 10]);
        assert_eq!(finals, [false, false, true]);
        assert_eq!(kinds, ["text", "continue", "continue"]);
        assert_eq!(payloads.concat(), text);
        assert_eq!(frame_count(&text), 3);
    }

    #[test]
    fn pieces_are_cut_between_characters() {
        // Four-byte characters offset by one byte: no multiple of 1024 falls between two.
        let text = format!("a{}", "😀".repeat(FRAME_BYTES));
        let (payloads, finals, _) = pieces(&text);
        assert!(payloads.iter().all(|p| !p.is_empty() && p.len() <= FRAME_BYTES));
        assert_eq!(finals.iter().filter(|last| **last).count(), 1);
        assert_eq!(payloads.concat(), text);
        assert_eq!(frame_count(&text), payloads.len());
        for script in ["ж", "中", "é"] {
            let text = script.repeat(FRAME_BYTES);
            let payloads = pieces(&text).0;
            assert_eq!(payloads.concat(), text, "{script}");
            assert_eq!(frame_count(&text), payloads.len(), "{script}");
        }
    }

    #[test]
    fn control_frames_are_final_and_carry_their_payloads() {
        use tokio_tungstenite::tungstenite::protocol::frame::coding::Control;
        let wire = [ping(), pong(Bytes::from_static(b"abc")), close(CloseCode::Policy, "flood")].concat();
        let mut reason = 1008u16.to_be_bytes().to_vec();
        reason.extend_from_slice(b"flood");
        assert_eq!(
            parse(&wire),
            [
                (OpCode::Control(Control::Ping), true, Vec::new()),
                (OpCode::Control(Control::Pong), true, b"abc".to_vec()),
                (OpCode::Control(Control::Close), true, reason),
            ]
        );
    }

    #[test]
    fn connection_tokens_are_found_in_lists_whatever_their_case() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(has_token(&headers, &header::CONNECTION, "upgrade"));
        assert!(!has_token(&headers, &header::UPGRADE, "websocket"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocketx"));
        assert!(!has_token(&headers, &header::UPGRADE, "websocket"));
    }
}

//! The WebSocket upgrade and the frames the writer sends.
//!
//! The upgrade is done here, on tokio-tungstenite, rather than by axum's `WebSocketUpgrade`,
//! because axum's socket can only send whole messages, and tungstenite formats each frame into
//! one write buffer that keeps, for the connection's whole life, the capacity of the largest
//! thing it was ever given: a join's member list and history made it 7–16 KiB on every
//! connection, idle or not (docs/benchmarks.md). With the socket itself the writer sends a long
//! event as several frames of at most [`FRAME_BYTES`] (one WebSocket message: clients see the
//! same text), and tungstenite writes out whenever [`WRITE_BUFFER_BYTES`] are gathered, so the
//! buffer stays a few KiB whatever is sent.

use std::future::Future;

use futures::stream::{SplitSink, SplitStream};
use futures::StreamExt;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

/// An upgraded connection.
pub(crate) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// An upgraded connection's sending half.
pub(crate) type Sender = SplitSink<Socket, Message>;

/// An upgraded connection's receiving half.
pub(crate) type Receiver = SplitStream<Socket>;

/// The longest frame the writer sends; a longer event is sent as several.
pub(crate) const FRAME_BYTES: usize = 1024;

/// How many bytes of frames tungstenite gathers before writing them to the socket (the
/// writer's flush writes out the rest). Under load a connection's batch is a few frames of a
/// few hundred bytes, one write as before; a burst (a join, a resume) goes out in writes of
/// about this size instead of one write buffer as big as the burst.
pub(crate) const WRITE_BUFFER_BYTES: usize = 1024;

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
    /// quietly. (The halves, not the socket: a session's future would otherwise keep room for
    /// the whole socket, moved out at its start, for as long as the connection lives.)
    pub(crate) fn on_upgrade<F, Fut>(self, config: WebSocketConfig, session: F) -> Response
    where
        F: FnOnce(Sender, Receiver) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else { return };
            let socket =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
            let (sender, receiver) = socket.split();
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

/// A text message as the frames the writer sends: itself if it fits in [`FRAME_BYTES`],
/// otherwise pieces of at most that size (cut between characters, so every piece is text a
/// lenient client could show), the first a text frame, the rest continuations, the last
/// final. The pieces share the message's bytes.
pub(crate) fn frames(text: Utf8Bytes) -> impl Iterator<Item = Message> {
    let (whole, long) = if text.len() <= FRAME_BYTES {
        (Some(Message::Text(text)), Bytes::new())
    } else {
        (None, Bytes::from(text))
    };
    let mut start = 0;
    whole.into_iter().chain(std::iter::from_fn(move || {
        if start == long.len() {
            return None;
        }
        let end = piece_end(&long, start);
        let opcode = if start == 0 { Data::Text } else { Data::Continue };
        let frame = Frame::message(long.slice(start..end), OpCode::Data(opcode), end == long.len());
        start = end;
        Some(Message::Frame(frame))
    }))
}

/// How many frames [`frames`] makes of a text. (It borrows the text: the writer counts every
/// event it takes, and a copy of the handle would touch the count of references that every
/// recipient of the event shares.)
pub(crate) fn frame_count(text: &str) -> usize {
    let bytes = text.as_bytes();
    if bytes.len() <= FRAME_BYTES {
        return 1;
    }
    let (mut start, mut count) = (0, 0);
    while start < bytes.len() {
        start = piece_end(bytes, start);
        count += 1;
    }
    count
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames' payloads and whether each is final, with the first's kind.
    fn pieces(text: &str) -> (Vec<String>, Vec<bool>, Vec<&'static str>) {
        let mut payloads = Vec::new();
        let mut finals = Vec::new();
        let mut kinds = Vec::new();
        for message in frames(Utf8Bytes::from(text.to_owned())) {
            match message {
                Message::Text(t) => {
                    payloads.push(t.as_str().to_owned());
                    finals.push(true);
                    kinds.push("text");
                }
                Message::Frame(frame) => {
                    let header = frame.header();
                    finals.push(header.is_final);
                    kinds.push(match header.opcode {
                        OpCode::Data(Data::Text) => "text",
                        OpCode::Data(Data::Continue) => "continue",
                        _ => "other",
                    });
                    payloads
                        .push(String::from_utf8(frame.into_payload().to_vec()).expect("whole characters"));
                }
                other => panic!("unexpected {other:?}"),
            }
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
    fn connection_tokens_are_found_in_lists_whatever_their_case() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        assert!(has_token(&headers, &header::CONNECTION, "upgrade"));
        assert!(!has_token(&headers, &header::UPGRADE, "websocket"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocketx"));
        assert!(!has_token(&headers, &header::UPGRADE, "websocket"));
    }
}

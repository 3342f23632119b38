//! The WebSocket transport: the upgrade (with its `Origin` check and size caps), the `auth`
//! frame, then a reader loop that parses frames and hands them to the
//! [`ChatService`](crate::service::ChatService), and a
//! writer task that drains the connection's outbox onto the socket. What a frame does is the
//! service's business; this module only knows sockets, frames, liveness and flood control.
//!
//! The loops are generic over the socket's write half (`AsyncWrite`) and the `Stream` of frames
//! tungstenite reads, so tests drive them without a socket.

use std::io::IoSlice;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tracing::Instrument;

use app::protocol::frames::validate_txn;
use app::protocol::{ClientFrame, CloseReason, ErrorCode, ProtocolError, ServerEvent};

use crate::chat::{Close, ConnId, Event, FloodFrom, Left, Outbox, OutboxQueue};
use crate::flood::{FloodControl, Verdict};
use crate::service::{Auth, Flow, Login};
use crate::ws::{self, WebSocketUpgrade};
use crate::{AppState, Inner};

/// How long the writer waits on a socket for the last frames before giving up on it.
const FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// The socket's read buffer to begin with, and the most tungstenite reads at once. Clients
/// send a few frames a second (flood control), mostly shorter than this; a longer one takes a
/// read per 512 bytes, and the buffer grows to hold it.
const READ_BUFFER_BYTES: usize = 512;

/// The most frames in one write (an event longer than a frame is several; it is never split
/// between batches).
const MAX_BATCH: usize = 64;

/// The batch's capacity kept between batches; a burst's bigger one is given back.
const KEPT_BATCH: usize = 8;

/// # GET /ws
/// Upgrades to a WebSocket after checking `Origin` against the allow-list (403 otherwise).
pub(crate) async fn upgrade(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let inner = app.inner;
    if inner.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "the server is shutting down").into_response();
    }
    if inner.chat.store_failure().is_some() {
        return (StatusCode::SERVICE_UNAVAILABLE, "the server cannot store anything and is restarting")
            .into_response();
    }
    if !origin_allowed(&headers, &inner.config.allowed_origins) {
        return (StatusCode::FORBIDDEN, "this origin may not open a chat connection").into_response();
    }
    // Behind a trusted proxy the client is the one its header names, and that client's
    // connections are counted here (the listener counted none of the proxy's).
    let client = inner.proxies.client(peer.ip(), &headers);
    let counted = if client.via_proxy {
        match inner.gate.admit(client.ip) {
            Ok(counted) => counted,
            Err(refusal) => return (StatusCode::TOO_MANY_REQUESTS, refusal.as_str()).into_response(),
        }
    } else {
        None
    };
    let max = inner.config.max_frame_bytes;
    // The read buffer starts small (it grows for a bigger frame): tungstenite's default of
    // 128 KiB was most of an idle connection's memory (docs/benchmarks.md).
    let config = WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
        .read_buffer_size(READ_BUFFER_BYTES);
    // One span per connection: whatever its session logs names the connection and the client.
    // At debug level, like what the session logs: a span at rest keeps some memory in the
    // log's registry for as long as the connection lives and pins the heap around it after
    // (1,500 connections kept about 9 MiB from being given back), so it exists only when
    // connections are being looked at.
    let span = tracing::debug_span!(
        "conn",
        id = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed),
        client = %client.ip,
        session = tracing::field::Empty,
    );
    ws.on_upgrade(config, move |socket, stream| {
        let sessions = inner.sessions.clone();
        sessions.track_future(
            async move {
                run(socket, stream, &inner, client.ip).await;
                drop(counted);
                crate::memory::departed();
            }
            .instrument(span),
        )
    })
}

/// Browsers always send `Origin`; other clients (bots, app servers) need not, and cannot be
/// hijacked by a web page, so a missing `Origin` is allowed. A present one must be the
/// server's own origin or on the allow-list.
pub(crate) fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed.iter().any(|a| a.trim().trim_end_matches('/').eq_ignore_ascii_case(origin)) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

fn close_frame(close: &Close) -> Vec<u8> {
    ws::close(close.reason.code().into(), close.reason.as_str())
}

/// Numbers connections for their log spans.
static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// Runs a session to its end.
pub(crate) async fn run<W, R, E>(mut socket: W, mut stream: R, app: &Inner, ip: IpAddr)
where
    W: AsyncWrite + Unpin + Send + 'static,
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: std::fmt::Display,
{
    let chat = &app.chat;
    let (outbox, mut queue) = chat.outbox();
    let cfg = &app.config;
    let mut flood = FloodControl::new(cfg.flood_burst, cfg.flood_rate, cfg.flood_strikes, Instant::now());
    let login = async {
        let auth = tokio::select! {
            result = read_auth(&mut stream, app, &outbox, &mut flood) => result?,
            _ = app.shutdown.cancelled() => {
                return Err(ProtocolError::new(ErrorCode::ShuttingDown, "the server is shutting down"))
            }
        };
        chat.login(auth, &outbox, ip).await
    };
    // Boxed, like a frame's handling below: a connection holds its future for as long as it
    // lives, and what logging in awaits (the store, password hashing) would make it several
    // times bigger than the connection needs at rest.
    let (attached, outbox, queue) = match Box::pin(login).await {
        Ok(Login::Fresh(attached)) => (attached, outbox, queue),
        Ok(Login::Resumed(mut resumed)) => {
            // A resumed session goes on with the flood allowance it had, not a fresh one, and
            // its `welcome` says how much is left (a client pacing itself starts from that).
            match std::mem::replace(&mut resumed.flood, FloodFrom::Fresh) {
                FloodFrom::Left(saved) => flood = saved,
                FloodFrom::Spent => flood.spend_all(Instant::now()),
                FloodFrom::Fresh => {}
            }
            if let ServerEvent::Welcome { limits, .. } = &mut resumed.welcome {
                limits.allowance = flood.allowance(Instant::now());
            }
            // The welcome goes first, ahead of whatever the held session has queued.
            if !write_alone(&mut socket, Some(Event::new(&resumed.welcome)), Vec::new()).await {
                let unsent = resumed.held.map(|(_, queue)| queue);
                chat.leave(resumed.attached, Some("connection closed".into()), Some(Left { unsent, flood }));
                return;
            }
            match resumed.held {
                Some((held, held_queue)) => {
                    // A ping sent before `auth` is answered by the session it resumed.
                    if let Some(payload) = queue.take_pong() {
                        held.pong(payload);
                    }
                    (resumed.attached, held, held_queue)
                }
                None => (resumed.attached, outbox, queue),
            }
        }
        Err(e) => {
            tracing::debug!(code = e.code.as_str(), "login refused");
            return refuse(&mut socket, e).await;
        }
    };
    tracing::Span::current().record("session", attached.conn);
    tracing::debug!("logged in");
    let (stop_writer, stop) = oneshot::channel();
    let writer = tokio::spawn(write_loop(socket, queue, app.config.ping_interval, stop));
    let ending = read_loop(&mut stream, app, attached.conn, &outbox, &mut flood).await;
    // A close asked for by the core (a slow consumer, a replaced session) names the reason.
    let quit_reason = match outbox.close_reason() {
        Some(c) if c.reason == CloseReason::SessionReplaced => None,
        Some(c) if ending.quit.is_none() => Some(describe(&c)),
        _ => ending.quit,
    };
    if ending.hold {
        // The connection is gone (or the client closed it): the writer stops where it is, and
        // the held session keeps what it had not sent yet.
        let stop = if ending.peer_closed { WriterStop::PeerClosed } else { WriterStop::ConnectionLost };
        let _ = stop_writer.send(stop);
        let unsent = writer.await.ok();
        chat.leave(attached, quit_reason, Some(Left { unsent, flood }));
        return;
    }
    // The nick is free before the client sees its close frame, so it can log in again at once.
    chat.leave(attached, quit_reason, None);
    outbox.close(ending.close);
    let _ = stop_writer.send(WriterStop::ReadingDone);
    let _ = writer.await;
    closing_handshake(&mut stream).await;
}

/// After our close frame: reads (and drops) what the client still sends until its own close
/// frame, for a moment. Closing the socket with the client's frames unread would reset the
/// connection, and a reset can throw away what we sent last (the error saying why, the close
/// frame) before the client reads it.
async fn closing_handshake<R, E>(stream: &mut R)
where
    R: Stream<Item = Result<Message, E>> + Unpin,
{
    let _ = timeout(FLUSH_TIMEOUT, async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// How a connection ended.
struct Ending {
    close: Close,
    /// The quit message others see.
    quit: Option<String>,
    /// The connection dropped without the user or the server ending the session: it is held
    /// for the client to resume.
    hold: bool,
    /// The client sent a close frame, which is answered.
    peer_closed: bool,
}

impl Ending {
    fn new(close: Close, quit: Option<&str>, hold: bool) -> Self {
        Self { close, quit: quit.map(str::to_owned), hold, peer_closed: false }
    }
}

/// Answers a failed login with its error, then closes the socket (code 1008, reason = the code).
async fn refuse<W: AsyncWrite + Unpin>(socket: &mut W, error: ProtocolError) {
    let close = Close::error(error.code);
    if write_alone(socket, Some(Event::new(&ServerEvent::from(error))), Vec::new()).await {
        write_alone(socket, None, close_frame(&close)).await;
    }
}

/// The quit message others see for a close the user did not ask for.
fn describe(close: &Close) -> String {
    match close.reason {
        CloseReason::Error(ErrorCode::SlowConsumer) => "connection too slow",
        CloseReason::Error(ErrorCode::Flood) => "flooding",
        CloseReason::Error(ErrorCode::Timeout) => "ping timeout",
        CloseReason::Error(ErrorCode::ShuttingDown) => "server shutting down",
        CloseReason::TooBig => "frame too large",
        CloseReason::Ghosted => "disconnected by the owner of the nick",
        CloseReason::Error(ErrorCode::TokenRevoked) => "login revoked",
        _ => "connection closed",
    }
    .to_owned()
}

/// Waits for the `auth` frame.
async fn read_auth<R, E>(
    stream: &mut R,
    app: &Inner,
    outbox: &Outbox,
    flood: &mut FloodControl,
) -> Result<Auth, ProtocolError>
where
    R: Stream<Item = Result<Message, E>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + app.config.auth_timeout;
    let text = loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => return Err(ProtocolError::new(ErrorCode::Timeout, "no auth frame arrived in time")),
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => {
                return Err(ProtocolError::new(
                    ErrorCode::NotAuthenticated,
                    "the connection closed before auth",
                ))
            }
            Ok(Some(Ok(Message::Text(text)))) => break text,
            Ok(Some(Ok(Message::Binary(_)))) => {
                return Err(ProtocolError::new(ErrorCode::InvalidFrame, "frames are JSON text"))
            }
            Ok(Some(Ok(Message::Pong(_)))) => continue,
            // Pings before `auth` count against the flood budget like any other frame. (Their
            // pongs go out once the writer starts.)
            Ok(Some(Ok(message))) => {
                if let Message::Ping(payload) = message {
                    outbox.pong(payload);
                }
                if judge(flood, Instant::now(), app) == Verdict::Disconnect {
                    return Err(ProtocolError::new(ErrorCode::Flood, "disconnected for flooding"));
                }
            }
        }
    };
    Auth::from_frame(ClientFrame::from_json(&text)?)
}

/// Flood control's verdict on a frame arriving `now`, counted for `/metrics`.
fn judge(flood: &mut FloodControl, now: Instant, app: &Inner) -> Verdict {
    let verdict = flood.check(now);
    app.counters.flood(verdict);
    verdict
}

/// Moves queued events onto the socket and pings it, until the session closes. What is queued
/// goes out in batches: every event waiting (up to [`MAX_BATCH`] frames), with a pong or a ping
/// due ahead of them, is written in one vectored `write` (more only if the socket takes part of
/// it). A close that delivers what is queued (a shutdown, a quit) waits for the reader to be
/// done with the frame it was handling, so the answer to it (a message's echo, once stored)
/// still goes out, after what was being written. When the connection is lost, or a write
/// fails, it stops at once. Gives the queue back, with whatever it did not send.
async fn write_loop<W>(
    mut socket: W,
    mut queue: OutboxQueue,
    ping_every: std::time::Duration,
    mut stop: oneshot::Receiver<WriterStop>,
) -> OutboxQueue
where
    W: AsyncWrite + Unpin,
{
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    // Whether the close (if any) is one that ends the loop at once; a delivering one is waited
    // out until the reader is done.
    let closing = queue.closing();
    let waiting_for_close = || !closing.is_closed() || closing.discards();
    let mut batch = Batch::default();
    loop {
        batch.clear();
        tokio::select! {
            biased;
            why = &mut stop => match why {
                Ok(WriterStop::ReadingDone) => break,
                Ok(WriterStop::PeerClosed) => return Box::pin(answer_close(socket, queue)).await,
                // (The session gone without a word is a connection lost.)
                Ok(WriterStop::ConnectionLost) | Err(_) => return queue,
            },
            _ = closing.closed(), if waiting_for_close() => {
                if closing.discards() {
                    break;
                }
                continue;
            }
            more = queue.ready() => {
                if !more {
                    break;
                }
                batch.control = queue.take_pong().map(ws::pong).unwrap_or_default();
            }
            _ = ping.tick() => batch.control = ws::ping(),
        };
        batch.take(&mut queue);
        let after = {
            // A client that stops reading blocks this write; the close request must still get through.
            let send = batch.write(&mut socket);
            let closed = async {
                while !closing.discards() {
                    closing.closed().await;
                    if !closing.discards() {
                        // A delivering close: what is being written still goes out.
                        std::future::pending::<()>().await;
                    }
                }
            };
            tokio::select! {
                biased;
                why = &mut stop => match why {
                    Ok(WriterStop::ReadingDone) => Sent::Closing,
                    Ok(WriterStop::PeerClosed) => Sent::PeerClosed,
                    Ok(WriterStop::ConnectionLost) | Err(_) => Sent::Lost,
                },
                () = closed => Sent::Closing,
                sent = send => if sent.is_ok() { Sent::All } else { Sent::Lost },
            }
        };
        match after {
            Sent::All => {}
            Sent::Closing => break,
            Sent::Lost | Sent::PeerClosed => {
                // Events not wholly written never reached the client.
                queue.give_back(batch.unsent());
                // (A close frame after part of a frame would not be one.)
                if matches!(after, Sent::PeerClosed) && batch.written == 0 {
                    return Box::pin(answer_close(socket, queue)).await;
                }
                return queue;
            }
        }
    }
    // Boxed: the close happens once, and its waits would make every writer's future bigger.
    Box::pin(finish(socket, queue, batch)).await
}

/// What one write sends: a control frame (a pong, a ping) if one is due, then the frames of a
/// batch of events; and how much of it the socket has taken.
#[derive(Default)]
struct Batch {
    control: Vec<u8>,
    events: Vec<Event>,
    written: usize,
}

impl Batch {
    fn clear(&mut self) {
        self.control = Vec::new();
        self.events.clear();
        self.events.shrink_to(KEPT_BATCH);
        self.written = 0;
    }

    /// Takes queued events, in order, until the batch holds [`MAX_BATCH`] frames or more (an
    /// event is never split between batches).
    fn take(&mut self, queue: &mut OutboxQueue) {
        let mut frames = 0;
        queue.take_while(|event| {
            frames += ws::frame_count(event.text());
            self.events.push(event);
            frames < MAX_BATCH
        });
    }

    fn is_empty(&self) -> bool {
        self.control.is_empty() && self.events.is_empty()
    }

    /// Writes what the socket has not taken yet: the frames' headers and the events' own bytes
    /// in one vectored write, again for what is left if the socket took only part. `written`
    /// counts what went, write by write, so a write cut short (by a close, a lost connection)
    /// knows where it stopped.
    async fn write<W: AsyncWrite + Unpin>(&mut self, socket: &mut W) -> std::io::Result<()> {
        let frames: Vec<(ws::Header, &[u8])> =
            self.events.iter().flat_map(|event| ws::frames(event.text())).collect();
        let mut slices: Vec<IoSlice<'_>> = std::iter::once(IoSlice::new(&self.control))
            .chain(
                frames
                    .iter()
                    .flat_map(|(header, piece)| [IoSlice::new(header.as_bytes()), IoSlice::new(piece)]),
            )
            .collect();
        let mut left = &mut slices[..];
        IoSlice::advance_slices(&mut left, self.written);
        while !left.is_empty() {
            let n = socket.write_vectored(left).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.written += n;
            IoSlice::advance_slices(&mut left, n);
        }
        socket.flush().await
    }

    /// The events the socket did not wholly take, in order.
    fn unsent(&mut self) -> impl DoubleEndedIterator<Item = Event> + '_ {
        let mut end = self.control.len();
        let written = self.written;
        let first = self.events.iter().position(|event| {
            end += ws::wire_len(event.text());
            end > written
        });
        self.events.drain(first.unwrap_or(self.events.len())..)
    }
}

/// The writer's end on a close: what the close delivers (what a batch had not written yet, then
/// what is still queued, batch by batch, each within the flush timeout), then the close frame.
/// Gives the queue back.
async fn finish<W>(mut socket: W, mut queue: OutboxQueue, mut batch: Batch) -> OutboxQueue
where
    W: AsyncWrite + Unpin,
{
    let close = queue.close_reason().unwrap_or_else(|| Close::new(CloseReason::Closed));
    if close.drain {
        loop {
            if !batch.is_empty() && !write_within_timeout(&mut socket, &mut batch).await {
                return queue;
            }
            batch.clear();
            batch.take(&mut queue);
            if batch.is_empty() {
                break;
            }
        }
    }
    batch.clear();
    batch.control = close_frame(&close);
    let _ = write_within_timeout(&mut socket, &mut batch).await;
    queue
}

/// How a batch's write ended.
enum Sent {
    All,
    /// The session is closing: what is left goes out if the close delivers it.
    Closing,
    /// The connection is gone, or the write failed.
    Lost,
    /// The client sent a close frame.
    PeerClosed,
}

/// Answers the client's close frame with the server's, within [`FLUSH_TIMEOUT`]. Gives the
/// queue back.
async fn answer_close<W: AsyncWrite + Unpin>(mut socket: W, queue: OutboxQueue) -> OutboxQueue {
    write_alone(&mut socket, None, close_frame(&Close::new(CloseReason::Closed))).await;
    queue
}

/// Writes what is left of a batch within [`FLUSH_TIMEOUT`]; whether it went.
async fn write_within_timeout<W: AsyncWrite + Unpin>(socket: &mut W, batch: &mut Batch) -> bool {
    matches!(timeout(FLUSH_TIMEOUT, batch.write(socket)).await, Ok(Ok(())))
}

/// Writes one event, or a close frame, on its own within [`FLUSH_TIMEOUT`] (before the writer
/// runs); whether it went.
async fn write_alone<W: AsyncWrite + Unpin>(socket: &mut W, event: Option<Event>, control: Vec<u8>) -> bool {
    let mut batch = Batch { control, events: event.into_iter().collect(), written: 0 };
    write_within_timeout(socket, &mut batch).await
}

/// Why the session stops its writer.
#[derive(Debug, Clone, Copy)]
enum WriterStop {
    /// The reader is done (the client left, or the core closed the connection): the writer
    /// sends what the close delivers, then the close frame.
    ReadingDone,
    /// The connection is gone: the writer stops where it is and gives back what it did not
    /// send, for the held session.
    ConnectionLost,
    /// The client sent a close frame: as [`WriterStop::ConnectionLost`], and the writer
    /// answers with its own (RFC 6455 §5.5.1) unless it was cut off in the middle of a write.
    PeerClosed,
}

/// Reads frames until the client leaves or must be dropped; returns how it ended.
async fn read_loop<R, E>(
    stream: &mut R,
    app: &Inner,
    conn: ConnId,
    outbox: &Outbox,
    flood: &mut FloodControl,
) -> Ending
where
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: std::fmt::Display,
{
    let cfg = &app.config;
    // The writer pings every `ping_interval`; any frame (a pong included) proves the client lives.
    let liveness = cfg.ping_interval + cfg.ping_timeout;
    let mut last_data = Instant::now();
    loop {
        let idle_left =
            (!cfg.idle_timeout.is_zero()).then(|| cfg.idle_timeout.saturating_sub(last_data.elapsed()));
        let wait = idle_left.map_or(liveness, |left| left.min(liveness));
        let next = tokio::select! {
            biased;
            _ = outbox.closed() => {
                let close = outbox.close_reason().unwrap_or_else(|| Close::new(CloseReason::Closed));
                return Ending::new(close, None, false);
            }
            next = timeout(wait, stream.next()) => next,
        };
        let message = match next {
            Err(_) => {
                let idle = idle_left.is_some_and(|left| left <= liveness);
                let (why, quit) = if idle {
                    ("no activity for too long", "idle timeout")
                } else {
                    ("no answer to pings", "ping timeout")
                };
                outbox.send(ProtocolError::new(ErrorCode::Timeout, why).into());
                // A client that stopped answering may come back; an idle one was let go.
                return Ending::new(Close::error(ErrorCode::Timeout), Some(quit), !idle);
            }
            Ok(None) => return Ending::new(Close::new(CloseReason::Closed), Some("connection closed"), true),
            // Closing the socket is not quitting (a browser closes it on a reload): the session
            // is held too.
            Ok(Some(Ok(Message::Close(_)))) => {
                let ending = Ending::new(Close::new(CloseReason::Closed), Some("connection closed"), true);
                return Ending { peer_closed: true, ..ending };
            }
            Ok(Some(Err(e))) => {
                let e = e.to_string();
                let too_big = e.contains("too long") || e.contains("too big") || e.contains("Space limit");
                tracing::debug!(conn, error = %e, "websocket read failed");
                let close = if too_big {
                    Close::new(CloseReason::TooBig)
                } else {
                    Close::new(CloseReason::ProtocolError)
                };
                let reason = if too_big { "frame too large" } else { "connection error" };
                return Ending::new(close, Some(reason), !too_big);
            }
            Ok(Some(Ok(message))) => message,
        };
        // Every frame the client chooses to send counts against its flood budget, whatever it
        // holds: binary frames and WebSocket pings cost the server work too. Only pongs, which
        // answer the server's own pings, are free.
        match &message {
            Message::Pong(_) => continue,
            Message::Ping(payload) => outbox.pong(payload.clone()),
            _ => {}
        }
        let now = Instant::now();
        match judge(flood, now, app) {
            Verdict::Allow => {}
            Verdict::Refuse => {
                outbox
                    .send(ProtocolError::new(ErrorCode::RateLimited, "too many messages; slow down").into());
                continue;
            }
            Verdict::Disconnect => {
                outbox.send(ProtocolError::new(ErrorCode::Flood, "disconnected for flooding").into());
                return Ending::new(Close::error(ErrorCode::Flood), Some("flooding"), false);
            }
        }
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                outbox.send(
                    ProtocolError::new(ErrorCode::InvalidFrame, "frames are JSON text, not binary").into(),
                );
                continue;
            }
            _ => continue,
        };
        last_data = now;
        let frame = match ClientFrame::from_json(&text) {
            Ok(frame) => frame,
            Err(e) => {
                outbox.send(e.into());
                continue;
            }
        };
        // Errors about the frame carry its transaction id, once it is known to be one.
        let txn = match frame.txn().map(|t| validate_txn(t).map(|()| t.to_owned())).transpose() {
            Ok(txn) => txn,
            Err(e) => {
                outbox.send(e.into());
                continue;
            }
        };
        // Boxed: the future of the longest command (a store write, a password hash) would
        // otherwise be part of every connection's, waiting or not (docs/benchmarks.md).
        match Box::pin(app.chat.handle(conn, outbox, frame)).await {
            Ok(Flow::Continue) => {}
            Ok(Flow::Quit(reason)) => {
                let reason = reason.unwrap_or_else(|| "quit".into());
                return Ending::new(Close::new(CloseReason::Quit), Some(&reason), false);
            }
            Err(e) => {
                outbox.send(ServerEvent::Error { code: e.code, message: e.message, txn, nicks: e.nicks })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, OpCode};
    use tokio_tungstenite::tungstenite::Bytes;

    use super::*;
    use crate::chat::{Event, SendBudget};
    use axum::http::HeaderValue;

    /// A socket's sending half that keeps what it is given, and counts the writes it took.
    #[derive(Default)]
    struct Recorder {
        wire: Vec<u8>,
        writes: usize,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.wire.extend_from_slice(buf);
            self.writes += 1;
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let before = self.wire.len();
            for buf in bufs {
                self.wire.extend_from_slice(buf);
            }
            self.writes += 1;
            Poll::Ready(Ok(self.wire.len() - before))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// What the frames on the wire say: each message's text (its frames joined), or `ping`,
    /// `pong <payload>`, `close <reason>`.
    fn said(wire: &[u8]) -> Vec<String> {
        let mut said = Vec::new();
        let mut text = Vec::new();
        for (opcode, is_final, payload) in ws::parse(wire) {
            match opcode {
                OpCode::Data(_) => {
                    text.extend_from_slice(&payload);
                    if is_final {
                        said.push(String::from_utf8(std::mem::take(&mut text)).expect("text"));
                    }
                }
                OpCode::Control(Control::Ping) => said.push("ping".into()),
                OpCode::Control(Control::Pong) => {
                    said.push(format!("pong {}", String::from_utf8_lossy(&payload)))
                }
                OpCode::Control(Control::Close) => {
                    said.push(format!("close {}", String::from_utf8_lossy(&payload[2..])))
                }
                other => panic!("{other:?}"),
            }
        }
        said
    }

    /// A connection's queue with room to spare.
    fn queue() -> (Outbox, OutboxQueue) {
        Outbox::new(1000, SendBudget::new(1 << 20, 1 << 30))
    }

    fn notice(i: usize) -> ServerEvent {
        ServerEvent::Notice { from: "x".into(), text: format!("n{i}"), code: None }
    }

    /// Runs a writer on a [`Recorder`] until it has taken everything queued, then stops it
    /// with `then`; what it wrote.
    async fn write_what_is_queued(outbox: &Outbox, queue: OutboxQueue, then: WriterStop) -> Recorder {
        let (stop_writer, stop) = oneshot::channel();
        let mut recorder = Recorder::default();
        let writer = write_loop(&mut recorder, queue, std::time::Duration::from_secs(3600), stop);
        let session = async {
            while outbox.queued_bytes() > 0 {
                tokio::task::yield_now().await;
            }
            stop_writer.send(then).unwrap();
        };
        let (_, ()) = tokio::join!(writer, session);
        recorder
    }

    #[tokio::test]
    async fn queued_events_go_out_in_order_then_the_close_frame() {
        let (outbox, queue) = queue();
        for i in 0..100 {
            outbox.push(Event::new(&notice(i)));
        }
        outbox.close(Close::new(CloseReason::Closed));
        let (stop_writer, stop) = oneshot::channel();
        stop_writer.send(WriterStop::ReadingDone).unwrap();
        let mut recorder = Recorder::default();
        write_loop(&mut recorder, queue, std::time::Duration::from_secs(60), stop).await;
        let mut expected: Vec<String> = (0..100).map(|i| notice(i).to_json()).collect();
        expected.push("close closed".into());
        assert_eq!(said(&recorder.wire), expected, "every event, in order, then the close frame");
    }

    #[tokio::test]
    async fn a_backlog_is_written_in_batches_not_one_write_per_event() {
        let (outbox, queue) = queue();
        for i in 0..200 {
            outbox.push(Event::new(&notice(i)));
        }
        let own = write_what_is_queued(&outbox, queue, WriterStop::ReadingDone).await;
        let events = said(&own.wire).iter().filter(|m| m.starts_with('{')).count();
        assert_eq!(events, 200);
        assert!(own.writes <= 200 / MAX_BATCH + 2, "{} writes for 200 events", own.writes);
    }

    #[tokio::test]
    async fn a_ping_is_answered_ahead_of_the_events_waiting_and_only_the_latest_of_several() {
        let (outbox, queue) = queue();
        outbox.push(Event::new(&notice(0)));
        outbox.pong(Bytes::from_static(b"first"));
        outbox.pong(Bytes::from_static(b"second"));
        outbox.push(Event::new(&notice(1)));
        let recorder = write_what_is_queued(&outbox, queue, WriterStop::ConnectionLost).await;
        assert_eq!(
            said(&recorder.wire),
            ["pong second".to_owned(), notice(0).to_json(), notice(1).to_json()]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_writer_pings_a_quiet_connection() {
        let (_outbox, queue) = queue();
        let (stop_writer, stop) = oneshot::channel();
        let mut recorder = Recorder::default();
        let writer = write_loop(&mut recorder, queue, std::time::Duration::from_secs(30), stop);
        let session = async {
            // (The clock is paused: it moves to the writer's ping, then to this.)
            tokio::time::sleep(std::time::Duration::from_secs(61)).await;
            stop_writer.send(WriterStop::ConnectionLost).unwrap();
        };
        let (_, ()) = tokio::join!(writer, session);
        assert_eq!(said(&recorder.wire), ["ping", "ping"]);
    }

    /// A socket's sending half that never takes anything: a client that stopped reading.
    struct Stuck;

    impl AsyncWrite for Stuck {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    /// A writer on a [`Stuck`] socket that has taken one event and is stuck writing it; its
    /// queue's sending side, the task, and the session's stop.
    async fn writer_stuck_in_a_send(
    ) -> (Outbox, tokio::task::JoinHandle<OutboxQueue>, oneshot::Sender<WriterStop>) {
        let (outbox, queue) = queue();
        let (stop_writer, stop) = oneshot::channel();
        let writer = tokio::spawn(write_loop(Stuck, queue, std::time::Duration::from_secs(3600), stop));
        outbox.push(Event::new(&notice(0)));
        while outbox.queued_bytes() > 0 {
            tokio::task::yield_now().await;
        }
        (outbox, writer, stop_writer)
    }

    #[tokio::test]
    async fn a_close_that_drops_the_queue_reaches_a_writer_stuck_in_a_send() {
        // The session never says a word: only the core's close can end the writer.
        let (outbox, writer, _stop_writer) = writer_stuck_in_a_send().await;
        outbox.close(Close { drain: false, ..Close::error(ErrorCode::SlowConsumer) });
        // (The close frame then waits FLUSH_TIMEOUT on the stuck socket.)
        let ended = tokio::time::timeout(std::time::Duration::from_secs(10), writer).await;
        assert!(matches!(ended, Ok(Ok(_))), "the writer ended on the close");
    }

    #[tokio::test]
    async fn a_delivering_close_lets_the_writer_send_what_comes_until_the_reader_is_done() {
        let (outbox, queue) = queue();
        let (stop_writer, stop) = oneshot::channel();
        let mut recorder = Recorder::default();
        let writer = write_loop(&mut recorder, queue, std::time::Duration::from_secs(3600), stop);
        let session = async {
            outbox.close(Close::new(CloseReason::Quit));
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            // The answer to the frame the reader was handling, sent after the close.
            outbox.push(Event::new(&notice(1)));
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            stop_writer.send(WriterStop::ReadingDone).unwrap();
        };
        let (_, ()) = tokio::join!(writer, session);
        assert_eq!(
            said(&recorder.wire),
            [notice(1).to_json(), "close quit".into()],
            "the event, then the close frame"
        );
    }

    #[tokio::test]
    async fn a_lost_connection_stops_a_stuck_writer_and_gives_back_what_it_did_not_send() {
        let (outbox, writer, stop_writer) = writer_stuck_in_a_send().await;
        outbox.push(Event::new(&notice(1)));
        stop_writer.send(WriterStop::ConnectionLost).unwrap();
        let mut queue = tokio::time::timeout(std::time::Duration::from_secs(10), writer)
            .await
            .expect("the writer stopped at once")
            .unwrap();
        let left: Vec<String> =
            std::iter::from_fn(|| queue.try_recv()).map(|e| e.json().to_string()).collect();
        assert_eq!(
            left,
            [notice(0).to_json(), notice(1).to_json()],
            "the event it was stuck on comes back first, then the one not yet taken"
        );
    }

    /// A socket's sending half that takes `room` bytes, then blocks like a client that
    /// stopped reading.
    struct Partial {
        room: usize,
        wire: Vec<u8>,
    }

    impl AsyncWrite for Partial {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.room - self.wire.len());
            if n == 0 {
                return Poll::Pending;
            }
            self.wire.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    /// A notice longer than three frames.
    fn long_notice() -> ServerEvent {
        ServerEvent::Notice { from: "x".into(), text: "ж".repeat(ws::FRAME_BYTES * 3 / 2), code: None }
    }

    #[tokio::test]
    async fn an_event_cut_off_in_its_frames_by_a_lost_connection_is_given_back_whole() {
        let (outbox, queue) = queue();
        outbox.push(Event::new(&notice(0)));
        outbox.push(Event::new(&long_notice()));
        outbox.push(Event::new(&notice(2)));
        let (stop_writer, stop) = oneshot::channel();
        // The short notice and two frames and a bit of the long one are taken, then the socket
        // blocks.
        let room = ws::wire_len(&notice(0).to_json()) + 2 * (ws::FRAME_BYTES + 4) + 10;
        let mut socket = Partial { room, wire: Vec::new() };
        let writer = write_loop(&mut socket, queue, std::time::Duration::from_secs(3600), stop);
        let session = async {
            while outbox.queued_bytes() > 0 {
                tokio::task::yield_now().await;
            }
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            stop_writer.send(WriterStop::ConnectionLost).unwrap();
        };
        let (mut queue, ()) = tokio::join!(writer, session);
        assert_eq!(socket.wire.len(), room, "the socket took what it had room for");
        let held = outbox.queued_bytes();
        let left: Vec<String> =
            std::iter::from_fn(|| queue.try_recv()).map(|e| e.json().to_string()).collect();
        assert_eq!(
            left,
            [long_notice().to_json(), notice(2).to_json()],
            "the cut event whole, then the rest"
        );
        assert_eq!(held, left.iter().map(String::len).sum::<usize>(), "counted again");
    }

    #[tokio::test]
    async fn a_delivering_close_sends_queued_events_cut_in_frames_in_order_then_the_close_frame() {
        let (outbox, queue) = queue();
        for i in 0..3 {
            outbox.push(Event::new(&if i == 1 { long_notice() } else { notice(i) }));
        }
        outbox.close(Close::new(CloseReason::Quit));
        let (stop_writer, stop) = oneshot::channel();
        stop_writer.send(WriterStop::ReadingDone).unwrap();
        let mut recorder = Recorder::default();
        write_loop(&mut recorder, queue, std::time::Duration::from_secs(60), stop).await;
        let expected =
            [notice(0).to_json(), long_notice().to_json(), notice(2).to_json(), "close quit".into()];
        assert_eq!(said(&recorder.wire), expected);
        assert_eq!(ws::parse(&recorder.wire).len(), 1 + ws::frame_count(&long_notice().to_json()) + 1 + 1);
    }

    #[tokio::test]
    async fn a_clients_close_is_answered_and_what_is_queued_is_kept_for_the_held_session() {
        let (outbox, queue) = queue();
        let (stop_writer, stop) = oneshot::channel();
        stop_writer.send(WriterStop::PeerClosed).unwrap();
        outbox.push(Event::new(&notice(0)));
        let mut recorder = Recorder::default();
        let mut queue = write_loop(&mut recorder, queue, std::time::Duration::from_secs(3600), stop).await;
        assert_eq!(said(&recorder.wire), ["close closed"]);
        assert_eq!(queue.try_recv().map(|e| e.json().to_string()), Some(notice(0).to_json()));
    }

    #[tokio::test]
    async fn a_writer_whose_session_is_gone_stops_without_a_close_frame() {
        let (_outbox, queue) = queue();
        let (stop_writer, stop) = oneshot::channel::<WriterStop>();
        drop(stop_writer);
        let mut recorder = Recorder::default();
        write_loop(&mut recorder, queue, std::time::Duration::from_secs(3600), stop).await;
        assert!(recorder.wire.is_empty(), "{:?}", said(&recorder.wire));
    }

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn origins_are_checked_against_the_host_and_the_allow_list() {
        let allowed = vec!["https://app.example".to_owned()];
        assert!(origin_allowed(&headers(None, "chat.example"), &allowed));
        assert!(origin_allowed(&headers(Some("https://app.example"), "chat.example"), &allowed));
        assert!(origin_allowed(&headers(Some("http://chat.example"), "chat.example"), &allowed));
        assert!(origin_allowed(&headers(Some("http://127.0.0.1:3000"), "127.0.0.1:3000"), &[]));
        assert!(!origin_allowed(&headers(Some("https://evil.example"), "chat.example"), &allowed));
        assert!(!origin_allowed(&headers(Some("null"), "chat.example"), &allowed));
        assert!(!origin_allowed(&headers(Some("https://app.example.evil"), "chat.example"), &allowed));
        assert!(!origin_allowed(&headers(Some("http://127.0.0.1:3001"), "127.0.0.1:3000"), &[]));
    }

    /// Every connection holds its session's future for as long as it lives: at rest (waiting
    /// for a frame) it must cost a few hundred bytes, not the size of the biggest thing a frame
    /// or the login can await (over 3 KiB before those were boxed). So does its writer's (1.1
    /// KiB while the close's waits were part of it).
    #[tokio::test]
    async fn a_session_at_rest_holds_a_small_future() {
        let config = crate::config::Config::for_tests();
        let chat = crate::service::ChatService::open(&config).await.expect("an in-memory store opens");
        let app = Inner::new(config, chat);
        let mut stream = futures::stream::pending::<Result<Message, String>>();
        let (outbox, _queue) = app.chat.outbox();
        let mut flood = FloodControl::new(1, 1, 1, Instant::now());
        let ip = IpAddr::from([127, 0, 0, 1]);
        let session = std::mem::size_of_val(&run(
            tokio::io::sink(),
            futures::stream::pending::<Result<Message, String>>(),
            &app,
            ip,
        ));
        let reading = std::mem::size_of_val(&read_loop(&mut stream, &app, 1, &outbox, &mut flood));
        let (_stop, stop) = oneshot::channel();
        let writing = std::mem::size_of_val(&write_loop(
            tokio::io::sink(),
            app.chat.outbox().1,
            std::time::Duration::from_secs(1),
            stop,
        ));
        assert!(session <= 1024, "a session's future is {session} bytes");
        assert!(reading <= 512, "the read loop's future is {reading} bytes");
        assert!(writing <= 640, "the writer's future is {writing} bytes");
    }
}

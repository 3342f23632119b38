//! The accept loop, chattrd's own rather than `axum::serve`: that one gives hyper no timer, so
//! no header-read timeout, and takes every connection it is offered, so one address could hold
//! every descriptor with half-sent requests.
//!
//! Here a connection first waits for a free slot under the global cap (see
//! [`connection_cap`]: descriptors for the store always remain), then passes its address's
//! limits ([`crate::admission`]) or is closed before a byte of it is read. hyper then serves
//! it as HTTP/1.1 with a header-read timeout (the first request's head and every later one)
//! and a keep-alive idle timeout, and hands WebSocket upgrades to axum. An answer that has
//! waited the send timeout for room in the socket (its client takes no byte) is cut off: a
//! client that pipelines requests (or asks for a backup) and never reads would hold its
//! connection for good otherwise. A connection gives its slot and its address's count
//! back when its socket closes, which for a WebSocket is when the session ends.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::admission::{Counted, Gate, Limits};
use crate::proxy::TrustedProxies;
use crate::tls::Tls;
use crate::Config;

/// Descriptors kept out of the connection cap when it comes from the open-file limit: the
/// store's files, the listener, logs. Half the limit at most, for very low limits.
pub(crate) const DESCRIPTOR_RESERVE: u64 = 256;

/// The open-file limit assumed when the process's own cannot be read.
const ASSUMED_OPEN_FILES: u64 = 1024;

/// How long to wait before accepting again after an error such as EMFILE: the connection that
/// could not be taken is still queued, so accepting at once would fail again at once.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// How connections are accepted and timed.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Time to send a request head; `None` for no limit.
    pub header_timeout: Option<Duration>,
    /// Time without a byte either way after which a connection with no request in progress
    /// is closed; `None` for no limit.
    pub keepalive_timeout: Option<Duration>,
    /// Time an answer may wait for the client to take more of its bytes (the socket's buffer
    /// full, not a byte written) before the connection is closed; `None` for no limit.
    pub send_timeout: Option<Duration>,
    /// Connections open at once, in all.
    pub max_conns: usize,
    pub per_address: Limits,
    /// Reverse proxies, whose connections are not counted by address here.
    pub proxies: TrustedProxies,
    /// TLS, when the server speaks it itself.
    pub tls: Option<Arc<Tls>>,
    /// On shutdown, how long connections may take to finish their requests.
    pub grace: Duration,
}

impl Settings {
    pub(crate) fn from_config(config: &Config) -> Self {
        let nonzero = |d: Duration| (!d.is_zero()).then_some(d);
        Self {
            header_timeout: nonzero(config.header_timeout),
            keepalive_timeout: nonzero(config.keepalive_timeout),
            send_timeout: nonzero(config.send_timeout),
            max_conns: connection_cap(config.max_conns, open_file_limit()),
            per_address: Limits::of(config),
            grace: config.shutdown_grace,
            proxies: TrustedProxies::of(config),
            tls: None,
        }
    }
}

/// The global cap: `configured` when set, else the open-file limit less a reserve.
pub(crate) fn connection_cap(configured: usize, open_files: Option<u64>) -> usize {
    let cap = if configured > 0 {
        configured
    } else {
        let limit = open_files.unwrap_or(ASSUMED_OPEN_FILES);
        let reserve = DESCRIPTOR_RESERVE.min(limit / 2);
        usize::try_from(limit - reserve).unwrap_or(usize::MAX)
    };
    cap.clamp(1, Semaphore::MAX_PERMITS)
}

/// This process's soft limit on open files (`RLIMIT_NOFILE`), from `/proc` (Linux).
pub(crate) fn open_file_limit() -> Option<u64> {
    parse_open_file_limit(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

/// The soft limit in a `/proc/<pid>/limits` text; `unlimited` as `u64::MAX`.
fn parse_open_file_limit(limits: &str) -> Option<u64> {
    let soft = limits.lines().find_map(|l| l.strip_prefix("Max open files"))?.split_whitespace().next()?;
    if soft == "unlimited" {
        return Some(u64::MAX);
    }
    soft.parse().ok()
}

/// Serves `router` on `listener` until `shutdown` is cancelled; then stops accepting, lets
/// open connections finish their requests for up to `settings.grace`, and closes the rest.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    settings: Settings,
    gate: Gate,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(settings.max_conns));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(settings.header_timeout);
    let connections = TaskTracker::new();
    let stop_now = CancellationToken::new();
    tracing::info!(
        max_conns = settings.max_conns,
        per_address = settings.per_address.max_open,
        rate_per_address = settings.per_address.per_second,
        burst_per_address = settings.per_address.burst,
        "connection limits"
    );
    let mut failing = false;
    loop {
        // At the cap, new connections wait in the kernel's queue, using no descriptor of ours.
        let slot = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                // Never closed, so never here; were it closed, nothing more could be served.
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // The client gave up while queued; nothing is wrong with the listener.
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "cannot accept connections; retrying");
                    }
                    failing = true;
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(ACCEPT_RETRY) => continue,
                    }
                }
            },
        };
        if failing {
            tracing::info!("accepting connections again");
            failing = false;
        }
        // A trusted proxy holds many clients' connections: those are counted by client, at the
        // upgrade (session.rs), not here by the proxy's address.
        let counted = if settings.proxies.trusts(peer.ip()) {
            None
        } else {
            match gate.admit(peer.ip()) {
                Ok(counted) => counted,
                // Dropping the socket closes it; not a byte of it has been read.
                Err(_) => continue,
            }
        };
        // Chat frames are small and wanted now: no Nagle delay (it would hold a sender's echo
        // until the client's delayed ACK, about 40 ms, as the benchmark showed).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let conn = Conn { tcp, activity: Arc::new(Activity::new()), _slot: slot, _counted: counted };
        let serving = Serving {
            peer,
            router: router.clone(),
            http: http.clone(),
            keepalive: settings.keepalive_timeout,
            send_timeout: settings.send_timeout,
            shutdown: shutdown.clone(),
            stop_now: stop_now.clone(),
        };
        match &settings.tls {
            None => connections.spawn(serve_connection(conn.activity.clone(), conn, serving)),
            Some(tls) => connections.spawn(serve_tls(tls.acceptor(), conn, settings.header_timeout, serving)),
        };
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(settings.grace, connections.wait()).await.is_err() {
        tracing::warn!(
            open = connections.len(),
            "HTTP connections still busy after the shutdown grace period; closing them"
        );
        stop_now.cancel();
        connections.wait().await;
    }
}

/// Errors of one queued connection, as opposed to the listener's.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// What serving one connection takes.
struct Serving {
    peer: SocketAddr,
    router: Router,
    http: http1::Builder,
    keepalive: Option<Duration>,
    send_timeout: Option<Duration>,
    shutdown: CancellationToken,
    stop_now: CancellationToken,
}

/// Completes the TLS handshake, then serves the connection. The handshake has the header
/// timeout to finish: a client stalling in it holds a slot as one trickling a request head does.
async fn serve_tls(acceptor: TlsAcceptor, conn: Conn, limit: Option<Duration>, serving: Serving) {
    let activity = conn.activity.clone();
    let too_slow = async {
        match limit {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    let stream = tokio::select! {
        done = acceptor.accept(conn) => match done {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                return;
            }
        },
        _ = too_slow => {
            tracing::debug!("TLS handshake not done within the header timeout");
            return;
        }
        _ = serving.shutdown.cancelled() => return,
    };
    serve_connection(activity, stream, serving).await;
}

/// Serves one connection until it closes or is upgraded (the WebSocket then lives on in its
/// session task, with the socket). `activity` is the socket's, for the keep-alive timeout.
async fn serve_connection<I>(activity: Arc<Activity>, io: I, serving: Serving)
where
    I: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let Serving { peer, router, http, keepalive, send_timeout, shutdown, stop_now } = serving;
    let service = service_fn(move |mut request: axum::http::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(request)
    });
    let connection = http.serve_connection(TokioIo::new(io), service).with_upgrades();
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        tokio::select! {
            done = connection.as_mut() => {
                if let Err(e) = done {
                    // Header timeouts, clients that hang up mid-request, garbage: the client's
                    // problem, not the server's.
                    tracing::debug!(error = %e, "HTTP connection ended");
                }
                return;
            }
            // Closes an idle connection at once; a busy one after its response.
            _ = shutdown.cancelled(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            _ = quiet_for(&activity, keepalive), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            // (A graceful shutdown waits for the answer under way, which would be for ever.)
            _ = stalled_for(&activity, send_timeout) => {
                tracing::debug!("the client stopped reading its answer; connection closed");
                return;
            }
            _ = stop_now.cancelled() => return,
        }
    }
}

/// Resolves once `activity` has seen no byte for `span`; never for `None`.
async fn quiet_for(activity: &Activity, span: Option<Duration>) {
    let Some(span) = span else {
        return std::future::pending().await;
    };
    loop {
        let last = activity.last();
        sleep_until_after(activity, last, span).await;
        if activity.last() == last {
            return;
        }
    }
}

/// Resolves once a write has waited `span` for room in the socket, not a byte of it taken
/// meanwhile; never for `None`. Looks every `span` while nothing waits (an idle connection
/// costs a timer).
async fn stalled_for(activity: &Activity, span: Option<Duration>) {
    let Some(span) = span else {
        return std::future::pending().await;
    };
    loop {
        match activity.blocked_since() {
            Some(since) => {
                sleep_until_after(activity, since, span).await;
                if activity.blocked_since() == Some(since) {
                    return;
                }
            }
            None => tokio::time::sleep(span).await,
        }
    }
}

/// Sleeps until `span` after `from` (a time since the connection's opening); for ever if that is
/// past what the clock can hold: a limit set absurdly high is no limit.
async fn sleep_until_after(activity: &Activity, from: Duration, span: Duration) {
    match from.checked_add(span).and_then(|after| activity.opened.checked_add(after)) {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// When a connection last moved a byte, and since when a write has been waiting for room.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    /// Milliseconds from `opened` to the last byte read or written.
    last_ms: AtomicU64,
    /// Milliseconds from `opened` to the first write that found the socket full since the
    /// last byte written; [`NOT_BLOCKED`] when the last write went through.
    blocked_ms: AtomicU64,
}

/// [`Activity::blocked_ms`] when no write is waiting.
const NOT_BLOCKED: u64 = u64::MAX;

impl Activity {
    fn new() -> Self {
        Self { opened: Instant::now(), last_ms: AtomicU64::new(0), blocked_ms: AtomicU64::new(NOT_BLOCKED) }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(NOT_BLOCKED - 1)
    }

    /// Notes a write's outcome: bytes taken, or the socket full (the first such write since
    /// the last bytes taken starts the stall's clock).
    fn wrote(&self, polled: &Poll<io::Result<usize>>) {
        match polled {
            Poll::Ready(Ok(n)) if *n > 0 => {
                self.blocked_ms.store(NOT_BLOCKED, Ordering::Relaxed);
                self.touch();
            }
            Poll::Pending => {
                let now = self.elapsed_ms();
                // Only the first: a stall keeps the time it started.
                let _ =
                    self.blocked_ms.compare_exchange(NOT_BLOCKED, now, Ordering::Relaxed, Ordering::Relaxed);
            }
            Poll::Ready(_) => {}
        }
    }

    /// Time from `opened` to the start of the stall under way, if a write is waiting.
    fn blocked_since(&self) -> Option<Duration> {
        let ms = self.blocked_ms.load(Ordering::Relaxed);
        (ms != NOT_BLOCKED).then(|| Duration::from_millis(ms))
    }

    fn touch(&self) {
        self.last_ms.store(self.elapsed_ms(), Ordering::Relaxed);
    }

    /// Time from `opened` to the last byte.
    fn last(&self) -> Duration {
        Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// An accepted socket and what it holds: a slot under the global cap and its count in its
/// address group, both freed when the socket is dropped. It notes when bytes move, for the
/// keep-alive timeout.
pub(crate) struct Conn {
    tcp: TcpStream,
    activity: Arc<Activity>,
    _slot: OwnedSemaphorePermit,
    _counted: Option<Counted>,
}

impl Conn {
    /// The socket's two halves, once the connection is a WebSocket: its session reads from one
    /// and writes to the other, each on its own, without a lock between them. The read half
    /// keeps the slot and the count (the session drops it last); the keep-alive clock is
    /// HTTP's, and a session keeps its own.
    pub(crate) fn into_split(self) -> (ReadHalf, OwnedWriteHalf) {
        let (read, write) = self.tcp.into_split();
        (ReadHalf { tcp: read, _slot: self._slot, _counted: self._counted }, write)
    }
}

/// A WebSocket's read half, holding its connection's slot and count (see [`Conn::into_split`]).
pub(crate) struct ReadHalf {
    tcp: OwnedReadHalf,
    _slot: OwnedSemaphorePermit,
    _counted: Option<Counted>,
}

impl AsyncRead for ReadHalf {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.tcp).poll_write(cx, buf);
        this.activity.wrote(&polled);
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs);
        this.activity.wrote(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str = "\
Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
";

    #[test]
    fn the_soft_open_file_limit_is_read_from_proc() {
        assert_eq!(parse_open_file_limit(LIMITS), Some(1024));
        let unlimited = LIMITS.replace("1024                 524288", "unlimited   unlimited");
        assert_eq!(parse_open_file_limit(&unlimited), Some(u64::MAX));
        assert_eq!(parse_open_file_limit("Max processes 10 10 processes\n"), None);
        assert!(open_file_limit().is_some(), "this test runs on Linux");
    }

    #[test]
    fn the_cap_leaves_descriptors_for_the_store() {
        assert_eq!(connection_cap(0, Some(1024)), 1024 - 256);
        assert_eq!(connection_cap(0, Some(20_000)), 20_000 - 256);
        // A very low limit keeps half for connections.
        assert_eq!(connection_cap(0, Some(300)), 150);
        assert_eq!(connection_cap(0, None), 1024 - 256);
        assert_eq!(connection_cap(0, Some(u64::MAX)), Semaphore::MAX_PERMITS);
        // A configured cap wins, whatever the limit.
        assert_eq!(connection_cap(5000, Some(1024)), 5000);
        assert_eq!(connection_cap(0, Some(1)), 1);
    }
}

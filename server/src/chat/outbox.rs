//! A connection's outbound queue. The chat core pushes already-serialized events without ever
//! waiting; the connection's writer task drains the queue onto the socket. A full queue means
//! the client is not reading: it is closed as a slow consumer instead of slowing anyone else.

use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use app::protocol::{ErrorCode, ServerEvent};

/// One serialized event. Cloning shares the bytes, so a fan-out serializes once.
pub type Payload = Utf8Bytes;

/// Serializes an event once, ready to be shared among recipients.
pub fn payload(event: &ServerEvent) -> Payload {
    Payload::from(event.to_json())
}

/// Why and how a connection is being closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// WebSocket close code: 1000 normal, 1001 going away, 1008 policy, 1009 too big, 1011 error.
    pub code: u16,
    /// A protocol error code (or `quit`), sent as the close frame's reason.
    pub reason: String,
    /// Whether events already queued are still delivered before the close frame.
    pub drain: bool,
}

impl Close {
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        Self { code, reason: reason.into(), drain: true }
    }

    pub fn error(code: ErrorCode) -> Self {
        Self::new(1008, code.as_str())
    }
}

struct Shared {
    kill: CancellationToken,
    close: Mutex<Option<Close>>,
}

/// The sending side of a connection's queue, held by the chat core.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Payload>,
    shared: Arc<Shared>,
}

impl Outbox {
    /// A queue holding at most `capacity` events, and its receiving end for the writer task.
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<Payload>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let shared = Arc::new(Shared { kill: CancellationToken::new(), close: Mutex::new(None) });
        (Self { tx, shared }, rx)
    }

    /// Queues an event without waiting. A full queue closes the connection.
    pub fn push(&self, payload: Payload) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(payload) {
            self.close(Close { drain: false, ..Close::error(ErrorCode::SlowConsumer) });
        }
    }

    /// Serializes and queues one event (for events with a single recipient).
    pub fn send(&self, event: &ServerEvent) {
        self.push(payload(event));
    }

    /// Asks the connection to close. The first reason given wins.
    pub fn close(&self, close: Close) {
        let mut slot = self.shared.close.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(close);
        }
        drop(slot);
        self.shared.kill.cancel();
    }

    /// Whether a close was asked for.
    pub fn is_closed(&self) -> bool {
        self.shared.kill.is_cancelled()
    }

    /// Resolves once a close is asked for.
    pub fn closed(&self) -> WaitForCancellationFuture<'_> {
        self.shared.kill.cancelled()
    }

    /// The reason given to [`Outbox::close`], if any.
    pub fn close_reason(&self) -> Option<Close> {
        self.shared.close.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_closes_the_connection_as_a_slow_consumer() {
        let (outbox, mut rx) = Outbox::new(2);
        let p = payload(&ServerEvent::Pong { id: None });
        outbox.push(p.clone());
        outbox.push(p.clone());
        assert!(!outbox.is_closed());
        outbox.push(p);
        assert!(outbox.is_closed());
        let close = outbox.close_reason().unwrap();
        assert_eq!(close.reason, "slow_consumer");
        assert!(!close.drain);
        assert!(rx.try_recv().is_ok());
    }

    #[test]
    fn the_first_close_reason_wins() {
        let (outbox, _rx) = Outbox::new(1);
        outbox.close(Close::new(1000, "quit"));
        outbox.close(Close::error(ErrorCode::Flood));
        assert_eq!(outbox.close_reason().unwrap().reason, "quit");
    }
}

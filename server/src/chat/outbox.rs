//! A connection's outbound queue. The chat core pushes [`Event`]s without ever waiting; the
//! connection's writer task drains the queue onto its transport. A full queue means
//! the client is not reading: it is closed as a slow consumer instead of slowing anyone else.
//! Queues are bounded by count and by bytes, per connection and over the whole server (a
//! [`SendBudget`]), so clients that stop reading cannot make the server hold unbounded output.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use tokio_tungstenite::tungstenite::{Bytes, Utf8Bytes};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use app::protocol::{CloseReason, ErrorCode, ServerEvent};

/// One event on its way to any number of recipients, encoded once for all of them (cloning is
/// a reference count). The core makes it from a typed [`ServerEvent`]; a transport takes the
/// encoding it speaks — the JSON text today; another transport adds its own here, computed
/// once per event, instead of encoding again for each recipient — or the typed event back.
/// Only the JSON is kept: queued output is what the send budget counts, byte for byte, and a
/// typed copy beside it would double it unseen. The typed event is decoded again, once per
/// event, the first time a transport asks for it.
#[derive(Debug, Clone)]
pub struct Event(Arc<Encoded>);

#[derive(Debug)]
struct Encoded {
    json: Utf8Bytes,
    typed: OnceLock<Option<ServerEvent>>,
}

impl Event {
    pub fn new(event: &ServerEvent) -> Self {
        Self(Arc::new(Encoded { json: Utf8Bytes::from(event.to_json()), typed: OnceLock::new() }))
    }

    /// The event, typed. (`None` only if its JSON did not decode, which the protocol's round
    /// trip tests rule out.)
    pub fn event(&self) -> Option<&ServerEvent> {
        self.0.typed.get_or_init(|| serde_json::from_str(self.0.json.as_str()).ok()).as_ref()
    }

    /// The event as a JSON text frame.
    pub fn json(&self) -> Utf8Bytes {
        self.0.json.clone()
    }

    /// The event's JSON, borrowed.
    pub fn text(&self) -> &str {
        self.0.json.as_str()
    }

    /// The bytes a queue holding it is charged with.
    pub fn size(&self) -> usize {
        self.0.json.len()
    }
}

impl From<ServerEvent> for Event {
    fn from(event: ServerEvent) -> Self {
        Self::new(&event)
    }
}

impl From<&ServerEvent> for Event {
    fn from(event: &ServerEvent) -> Self {
        Self::new(event)
    }
}

/// Why and how a connection is being closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// Why, as the close frame says it; the WebSocket close code follows from it.
    pub reason: CloseReason,
    /// Whether events already queued are still delivered before the close frame.
    pub drain: bool,
}

impl Close {
    pub fn new(reason: CloseReason) -> Self {
        Self { reason, drain: true }
    }

    pub fn error(code: ErrorCode) -> Self {
        Self::new(CloseReason::Error(code))
    }
}

/// How much queued output the server holds, in bytes, over every connection.
#[derive(Debug)]
pub struct SendBudget {
    /// Most bytes one connection may have queued.
    per_connection: usize,
    /// Bytes queued over all connections past which the connections holding more than their
    /// share are dropped.
    total_limit: usize,
    total: AtomicUsize,
    connections: AtomicUsize,
    /// Connections closed as slow consumers since the start.
    slow_consumers: AtomicU64,
}

impl SendBudget {
    pub fn new(per_connection: usize, total_limit: usize) -> Arc<Self> {
        Arc::new(Self {
            per_connection: per_connection.max(1),
            total_limit: total_limit.max(1),
            total: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            slow_consumers: AtomicU64::new(0),
        })
    }

    /// Bytes queued right now over all connections.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Connections closed as slow consumers since the start.
    pub fn slow_consumers(&self) -> u64 {
        self.slow_consumers.load(Ordering::Relaxed)
    }
}

struct Shared {
    /// The queued events. A plain ring under a lock rather than a channel: a connection holds
    /// its queue for as long as it lives, mostly empty, and a channel's first block of slots
    /// and padded counters were a kilobyte of every idle connection (docs/benchmarks.md); the
    /// ring allocates as events come and gives a burst's room back once drained.
    queue: Mutex<Queue>,
    /// Most events the queue may hold.
    capacity: usize,
    /// Live [`Outbox`] handles: the writer's [`OutboxQueue::recv`] ends once none is left.
    senders: AtomicUsize,
    /// A close was asked for. The writer reads this flag and waits on `writer` (an atomic
    /// load and a waker swap per wake-up), not on `kill`, whose every wait takes a lock: the
    /// writer waits once per batch it writes, and the locks cost a tenth of the server's CPU
    /// under load (docs/benchmarks.md).
    closing: AtomicBool,
    /// The writer task waiting for an event (woken by one, or by the last sender leaving).
    ready: AtomicWaker,
    /// The writer task waiting for a close. Apart from `ready`, so that events queued for a
    /// writer busy on a slow socket do not wake it for nothing.
    writer: AtomicWaker,
    /// Cancelled by a close, for everything else that waits on one (the reader).
    kill: CancellationToken,
    close: Mutex<Option<Close>>,
    /// Closed without delivering what is queued: nothing more is taken. (A close that
    /// delivers still takes events, such as the echo of a message being stored as the close
    /// came, until the connection's writer has sent what it has.)
    discard: AtomicBool,
    /// Bytes in this connection's queue.
    bytes: AtomicUsize,
    /// Most bytes this queue may hold.
    max_bytes: usize,
    budget: Arc<SendBudget>,
}

struct Queue {
    events: VecDeque<Event>,
    /// The payload of the client's latest ping, not answered yet (a pong may answer only the
    /// latest of several, RFC 6455 §5.5.3).
    pong: Option<Bytes>,
    /// The writer's end is still there; once it is gone, events are dropped as they come.
    open: bool,
}

/// The room a drained queue keeps; more, left by a burst, is given back.
const KEPT_ROOM: usize = 16;

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts an event's bytes again, against the connection and the budget.
    fn hold(&self, n: usize) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        self.budget.total.fetch_add(n, Ordering::Relaxed);
    }

    /// Gives an event's bytes back, from the connection and from the budget.
    fn release(&self, n: usize) {
        self.bytes.fetch_sub(n, Ordering::Relaxed);
        self.budget.total.fetch_sub(n, Ordering::Relaxed);
    }
}

/// The sending side of a connection's queue, held by the chat core.
pub struct Outbox {
    shared: Arc<Shared>,
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Self { shared: self.shared.clone() }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.ready.wake();
        }
    }
}

/// The receiving side, drained by the connection's writer task.
pub struct OutboxQueue {
    shared: Arc<Shared>,
}

impl OutboxQueue {
    /// The next queued event, once there is one; `None` when every sender is gone and nothing
    /// is left.
    pub async fn recv(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| self.poll_until(cx, Self::try_recv)).await
    }

    /// Resolves once there is something to write (an event, a pong): `true`; or `false` once
    /// every sender is gone and nothing is left.
    pub async fn ready(&mut self) -> bool {
        let waiting = |queue: &mut Self| {
            let queue = queue.shared.queue();
            (!queue.events.is_empty() || queue.pong.is_some()).then_some(())
        };
        std::future::poll_fn(|cx| self.poll_until(cx, waiting)).await.is_some()
    }

    /// Ready with what `look` finds, or with `None` once every sender is gone and `look` finds
    /// nothing; otherwise registers to be woken by the next sender.
    fn poll_until<T>(
        &mut self,
        cx: &mut Context<'_>,
        mut look: impl FnMut(&mut Self) -> Option<T>,
    ) -> Poll<Option<T>> {
        for registered in [false, true] {
            if let Some(found) = look(self) {
                return Poll::Ready(Some(found));
            }
            if self.shared.senders.load(Ordering::Acquire) == 0 {
                // The last sender may have queued something just before it went.
                return Poll::Ready(look(self));
            }
            if !registered {
                // Then look again: what came between the look and the registration woke nobody.
                self.shared.ready.register(cx.waker());
            }
        }
        Poll::Pending
    }

    /// The payload of a ping waiting for its pong, if any.
    pub fn take_pong(&mut self) -> Option<Bytes> {
        self.shared.queue().pong.take()
    }

    /// Puts events the writer took but did not send back at the front of the queue, in their
    /// order, counted again: a held session sends them first on its next connection.
    pub fn give_back(&mut self, events: impl DoubleEndedIterator<Item = Event>) {
        let mut queue = self.shared.queue();
        for event in events.rev() {
            self.shared.hold(event.size());
            queue.events.push_front(event);
        }
    }

    /// The next queued event, if one is waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        let mut next = None;
        self.take_while(|event| {
            next = Some(event);
            false
        });
        next
    }

    /// Takes queued events in order, under one lock, for as long as `take` wants more: it is
    /// handed each event and answers whether it takes the next one too. Their bytes are given
    /// back to the budget at once. (The writer takes its batches so: one lock and one update
    /// of the counters per batch, instead of one per event; the server-wide counter is shared
    /// by every core.)
    pub fn take_while(&mut self, mut take: impl FnMut(Event) -> bool) {
        let mut bytes = 0;
        {
            let mut queue = self.shared.queue();
            while let Some(event) = queue.events.pop_front() {
                bytes += event.size();
                if !take(event) {
                    break;
                }
            }
            if queue.events.is_empty() && queue.events.capacity() > KEPT_ROOM {
                queue.events.shrink_to(KEPT_ROOM);
            }
        }
        if bytes > 0 {
            self.shared.release(bytes);
        }
    }

    /// How the queue's writer learns of a close (see [`Closing`]).
    pub fn closing(&self) -> Closing {
        Closing(self.shared.clone())
    }

    /// The reason given to [`Outbox::close`], if any.
    pub fn close_reason(&self) -> Option<Close> {
        self.shared.close_reason()
    }
}

/// The writer's view of a close asked for by [`Outbox::close`]. Only the queue's writer
/// waits on it, so it has one waker, and waiting takes no lock.
pub struct Closing(Arc<Shared>);

impl Closing {
    /// Ready once a close is asked for.
    pub fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.writer.register(cx.waker());
        if self.is_closed() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Resolves once a close is asked for.
    pub async fn closed(&self) {
        std::future::poll_fn(|cx| self.poll_closed(cx)).await;
    }

    /// Whether a close was asked for.
    pub fn is_closed(&self) -> bool {
        self.0.closing.load(Ordering::Acquire)
    }

    /// Whether a close was asked for that drops what is queued.
    pub fn discards(&self) -> bool {
        self.0.discard.load(Ordering::Relaxed)
    }
}

impl Shared {
    fn close_reason(&self) -> Option<Close> {
        self.close.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for OutboxQueue {
    fn drop(&mut self) {
        // What is still queued goes, and gives its bytes back; what is pushed later is dropped.
        let left = {
            let mut queue = self.shared.queue();
            queue.open = false;
            std::mem::take(&mut queue.events)
        };
        for event in left {
            self.shared.release(event.size());
        }
        self.shared.budget.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The budget of the outboxes of sessions on other nodes, which never queue anything.
static ELSEWHERE: std::sync::LazyLock<Arc<SendBudget>> = std::sync::LazyLock::new(|| SendBudget::new(1, 1));

impl Outbox {
    /// A queue holding at most `capacity` events and the budget's share of bytes, and its
    /// receiving end for the writer task.
    pub fn new(capacity: usize, budget: Arc<SendBudget>) -> (Self, OutboxQueue) {
        let max_bytes = budget.per_connection;
        Self::with_limit(capacity, budget, max_bytes)
    }

    /// [`Outbox::new`] with a byte limit of its own, below the budget's per-connection one.
    fn with_limit(capacity: usize, budget: Arc<SendBudget>, max_bytes: usize) -> (Self, OutboxQueue) {
        budget.connections.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue { events: VecDeque::new(), pong: None, open: true }),
            capacity: capacity.max(1),
            senders: AtomicUsize::new(1),
            ready: AtomicWaker::new(),
            closing: AtomicBool::new(false),
            writer: AtomicWaker::new(),
            kill: CancellationToken::new(),
            close: Mutex::new(None),
            discard: AtomicBool::new(false),
            bytes: AtomicUsize::new(0),
            max_bytes: max_bytes.clamp(1, budget.per_connection),
            budget,
        });
        (Self { shared: shared.clone() }, OutboxQueue { shared })
    }

    /// The outbox of a session on another node of the cluster: that node delivers its events,
    /// so here they are dropped at once.
    pub fn elsewhere() -> Self {
        let (outbox, queue) = Self::with_limit(1, ELSEWHERE.clone(), 1);
        drop(queue);
        outbox.shared.discard.store(true, Ordering::Relaxed);
        outbox
    }

    /// Whether this is the outbox of a session on another node.
    pub fn is_elsewhere(&self) -> bool {
        Arc::ptr_eq(&self.shared.budget, &ELSEWHERE)
    }

    /// A new queue like this one (same capacity, same budget) holding at most `max_bytes`,
    /// and its receiving end.
    pub fn sibling(&self, max_bytes: usize) -> (Self, OutboxQueue) {
        Self::with_limit(self.shared.capacity, self.shared.budget.clone(), max_bytes)
    }

    /// Queues an event without waiting. A connection whose queue is full, by count or by
    /// bytes, is closed as a slow consumer; so is one holding more than its share of the
    /// server's whole budget while the server is over it.
    pub fn push(&self, event: Event) {
        let shared = &*self.shared;
        if shared.discard.load(Ordering::Relaxed) {
            return;
        }
        let n = event.size();
        let mut queue = shared.queue();
        // A queue whose reader is gone belongs to a connection that is ending anyway: the
        // event is dropped, and the connection is not a slow consumer.
        if !queue.open {
            return;
        }
        let budget = &shared.budget;
        let own = shared.bytes.load(Ordering::Relaxed) + n;
        let total = budget.total.fetch_add(n, Ordering::Relaxed) + n;
        let share = budget.total_limit / budget.connections.load(Ordering::Relaxed).max(1);
        // One event always fits an empty queue, however large (a history page can be bigger
        // than a small budget); a queue that already holds some must stay within its bytes.
        let too_much = !queue.events.is_empty()
            && (own > shared.max_bytes || (total > budget.total_limit && own > share));
        if too_much || queue.events.len() >= shared.capacity {
            drop(queue);
            budget.total.fetch_sub(n, Ordering::Relaxed);
            if self.close_first(Close { drain: false, ..Close::error(ErrorCode::SlowConsumer) }) {
                budget.slow_consumers.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        shared.bytes.fetch_add(n, Ordering::Relaxed);
        queue.events.push_back(event);
        drop(queue);
        shared.ready.wake();
    }

    /// Asks the writer to answer a ping that carried `payload` (replacing an answer to an
    /// earlier one not sent yet).
    pub fn pong(&self, payload: Bytes) {
        let mut queue = self.shared.queue();
        if !queue.open || self.shared.discard.load(Ordering::Relaxed) {
            return;
        }
        queue.pong = Some(payload);
        drop(queue);
        self.shared.ready.wake();
    }

    /// Queues one event for this connection alone.
    pub fn send(&self, event: ServerEvent) {
        self.push(Event::new(&event));
    }

    /// Bytes waiting in this connection's queue.
    pub fn queued_bytes(&self) -> usize {
        self.shared.bytes.load(Ordering::Relaxed)
    }

    /// Asks the connection to close. The first reason given wins.
    pub fn close(&self, close: Close) {
        self.close_first(close);
    }

    /// [`Outbox::close`], answering whether this was the first close asked for (whose reason
    /// stands).
    fn close_first(&self, close: Close) -> bool {
        let mut slot = self.shared.close.lock().unwrap_or_else(|e| e.into_inner());
        let first = slot.is_none();
        let chosen = slot.get_or_insert(close);
        if !chosen.drain {
            self.shared.discard.store(true, Ordering::Relaxed);
        }
        drop(slot);
        self.shared.closing.store(true, Ordering::Release);
        self.shared.writer.wake();
        self.shared.kill.cancel();
        first
    }

    /// Whether a close was asked for.
    pub fn is_closed(&self) -> bool {
        self.shared.closing.load(Ordering::Acquire)
    }

    /// Resolves once a close is asked for.
    pub fn closed(&self) -> WaitForCancellationFuture<'_> {
        self.shared.kill.cancelled()
    }

    /// The reason given to [`Outbox::close`], if any.
    pub fn close_reason(&self) -> Option<Close> {
        self.shared.close_reason()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> Arc<SendBudget> {
        SendBudget::new(1 << 20, 1 << 30)
    }

    /// A waker that counts its wake-ups.
    struct Counter(AtomicUsize);

    impl futures::task::ArcWake for Counter {
        fn wake_by_ref(arc_self: &Arc<Self>) {
            arc_self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_close_wakes_the_writer_waiting_on_it_once_and_says_whether_it_discards() {
        let (outbox, queue) = Outbox::new(8, budget());
        let closing = queue.closing();
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let waker = futures::task::waker(counter.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(closing.poll_closed(&mut cx).is_pending());
        assert!(!closing.is_closed());
        // From another thread, as the core closes it.
        std::thread::spawn(move || {
            outbox.close(Close { drain: false, ..Close::error(ErrorCode::SlowConsumer) })
        })
        .join()
        .unwrap();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1, "woken once");
        assert!(closing.poll_closed(&mut cx).is_ready());
        assert!(closing.is_closed() && closing.discards());
    }

    #[tokio::test]
    async fn the_writer_waits_for_events_and_ends_once_the_last_sender_has_gone_and_all_is_read() {
        let (outbox, mut queue) = Outbox::new(8, budget());
        let second = outbox.clone();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(event) = queue.recv().await {
                got.push(event.json().to_string());
            }
            got
        });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!reader.is_finished(), "nothing queued yet, a sender left");
        outbox.send(ServerEvent::Pong { id: Some(1) });
        drop(outbox);
        // The last sender queues and goes at once: what it queued is still read.
        std::thread::spawn(move || {
            second.send(ServerEvent::Pong { id: Some(2) });
            drop(second);
        })
        .join()
        .unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), reader).await.unwrap().unwrap();
        let expected: Vec<String> = [1, 2].map(|id| ServerEvent::Pong { id: Some(id) }.to_json()).to_vec();
        assert_eq!(got, expected);
    }

    #[test]
    fn pushes_from_many_threads_racing_the_readers_end_leave_no_bytes_counted() {
        let budget = budget();
        for _ in 0..20 {
            let (outbox, mut queue) = Outbox::new(10_000, budget.clone());
            let pushers: Vec<_> = (0..4)
                .map(|_| {
                    let outbox = outbox.clone();
                    std::thread::spawn(move || {
                        for _ in 0..500 {
                            outbox.push(bytes(100));
                        }
                    })
                })
                .collect();
            for _ in 0..300 {
                queue.try_recv();
            }
            drop(queue);
            for pusher in pushers {
                pusher.join().unwrap();
            }
            assert!(!outbox.is_closed(), "not a slow consumer");
            assert_eq!(outbox.queued_bytes(), 0);
        }
        assert_eq!(budget.total(), 0);
    }

    #[test]
    fn a_drained_queue_gives_a_bursts_room_back() {
        let (outbox, mut queue) = Outbox::new(1000, budget());
        for _ in 0..500 {
            outbox.push(bytes(40));
        }
        assert!(queue.shared.queue().events.capacity() >= 500);
        while queue.try_recv().is_some() {}
        assert!(queue.shared.queue().events.capacity() <= KEPT_ROOM);
    }

    #[test]
    fn a_batch_is_taken_in_order_until_it_says_enough_and_its_bytes_are_given_back() {
        let budget = budget();
        let (outbox, mut queue) = Outbox::new(8, budget.clone());
        for size in [40, 50, 60, 70] {
            outbox.push(bytes(size));
        }
        let mut batch = Vec::new();
        queue.take_while(|event| {
            batch.push(event.size());
            batch.len() < 3
        });
        assert_eq!(batch, [40, 50, 60], "three taken, in order; the one it stopped on is in");
        assert_eq!((outbox.queued_bytes(), budget.total()), (70, 70));
        queue.take_while(|event| {
            batch.push(event.size());
            true
        });
        assert_eq!(batch, [40, 50, 60, 70], "taking everything ends with the queue");
        assert_eq!((outbox.queued_bytes(), budget.total()), (0, 0));
        queue.take_while(|_| panic!("an empty queue hands nothing over"));
    }

    #[test]
    fn events_given_back_come_first_in_their_order_and_are_counted_again() {
        let budget = budget();
        let (outbox, mut queue) = Outbox::new(8, budget.clone());
        let (a, b, c) = (bytes(40), bytes(50), bytes(60));
        outbox.push(a.clone());
        outbox.push(b.clone());
        outbox.push(c.clone());
        let taken = [queue.try_recv().unwrap(), queue.try_recv().unwrap()];
        assert_eq!(budget.total(), 60);
        queue.give_back(taken.into_iter());
        assert_eq!((outbox.queued_bytes(), budget.total()), (150, 150));
        let sizes: Vec<usize> = std::iter::from_fn(|| queue.try_recv()).map(|e| e.size()).collect();
        assert_eq!(sizes, [40, 50, 60]);
        assert_eq!(budget.total(), 0);
    }

    #[test]
    fn a_full_queue_closes_the_connection_as_a_slow_consumer_counted_once() {
        let budget = budget();
        let (outbox, mut rx) = Outbox::new(2, budget.clone());
        let p = Event::new(&ServerEvent::Pong { id: None });
        outbox.push(p.clone());
        outbox.push(p.clone());
        assert!(!outbox.is_closed());
        assert_eq!(budget.slow_consumers(), 0);
        outbox.push(p.clone());
        assert!(outbox.is_closed());
        outbox.push(p);
        assert_eq!(budget.slow_consumers(), 1);
        let close = outbox.close_reason().unwrap();
        assert_eq!(close.reason, CloseReason::Error(ErrorCode::SlowConsumer));
        assert!(!close.drain);
        assert!(rx.try_recv().is_some());
    }

    #[test]
    fn a_queue_whose_reader_is_gone_is_not_a_slow_consumer_and_a_sibling_has_its_own_limit() {
        let (outbox, rx) = Outbox::new(2, budget());
        drop(rx);
        outbox.send(ServerEvent::Pong { id: None });
        assert!(!outbox.is_closed(), "the connection is ending, not slow");
        let (held, held_rx) = outbox.sibling(100);
        held.push(bytes(80));
        held.push(bytes(40));
        assert!(held_rx.closing().discards(), "past its own 100 bytes");
        assert_eq!(held.close_reason().unwrap().reason, CloseReason::Error(ErrorCode::SlowConsumer));
    }

    #[test]
    fn an_event_is_encoded_once_and_decodes_to_itself() {
        let notice = ServerEvent::Notice { from: "Potato".into(), text: "hé \"quoted\"".into(), code: None };
        let event = Event::new(&notice);
        let copy = event.clone();
        assert_eq!(copy.json().as_str(), notice.to_json());
        assert_eq!(copy.size(), notice.to_json().len());
        assert_eq!(event.event(), Some(&notice));
    }

    #[test]
    fn the_first_close_reason_wins() {
        let (outbox, _rx) = Outbox::new(1, budget());
        outbox.close(Close::new(CloseReason::Quit));
        outbox.close(Close::error(ErrorCode::Flood));
        assert_eq!(outbox.close_reason().unwrap().reason, CloseReason::Quit);
    }

    /// An event whose JSON is `n` bytes long (at least 40).
    fn bytes(n: usize) -> Event {
        let notice =
            |text: String| Event::new(&ServerEvent::Notice { from: String::new(), text, code: None });
        let text = "x".repeat(n - notice(String::new()).size());
        let event = notice(text);
        assert_eq!(event.size(), n);
        event
    }

    #[test]
    fn a_queue_is_bounded_by_bytes_and_reading_frees_them() {
        let budget = SendBudget::new(1000, 1 << 30);
        let (outbox, mut rx) = Outbox::new(1000, budget.clone());
        outbox.push(bytes(600));
        outbox.push(bytes(300));
        assert_eq!((outbox.queued_bytes(), budget.total()), (900, 900));
        {
            let (big, _big_rx) = Outbox::new(10, budget.clone());
            big.push(bytes(5000));
            assert!(!big.is_closed(), "one event always fits an empty queue");
            big.push(bytes(40));
            assert!(big.is_closed());
        }
        assert!(rx.try_recv().is_some());
        assert_eq!(outbox.queued_bytes(), 300);
        outbox.push(bytes(600));
        assert!(!outbox.is_closed());
        outbox.push(bytes(200));
        assert!(outbox.is_closed(), "past 1000 bytes queued");
        assert_eq!(outbox.close_reason().unwrap().reason, CloseReason::Error(ErrorCode::SlowConsumer));
        drop(rx);
        assert_eq!(budget.total(), 0, "a closed queue gives its bytes back");
    }

    #[test]
    fn over_the_total_the_biggest_holders_are_dropped_and_small_ones_kept() {
        let budget = SendBudget::new(10_000, 3000);
        let queues: Vec<_> = (0..3).map(|_| Outbox::new(1000, budget.clone())).collect();
        let (hog, small, other) = (&queues[0].0, &queues[1].0, &queues[2].0);
        for _ in 0..5 {
            hog.push(bytes(500));
        }
        small.push(bytes(200));
        assert!(!hog.is_closed(), "under the total nobody is dropped");
        // Past the total: whoever holds more than a third of it goes when it gets more.
        other.push(bytes(400));
        hog.push(bytes(40));
        assert!(hog.is_closed());
        small.push(bytes(40));
        assert!(!small.is_closed());
        drop(queues);
        assert_eq!(budget.total(), 0);
    }
}

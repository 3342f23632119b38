//! The message writer: one task that stores chat messages in batches (one transaction, one
//! disk sync per batch) and another that delivers each batch once it is stored, in order, while
//! the next one commits. A message's echo to its sender therefore means it is stored.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use tokio::sync::{mpsc, oneshot};

use app::protocol::{ErrorCode, ProtocolError};

use crate::chat::{Hub, PreparedMessage};
use crate::cluster::{Cluster, Op};
use crate::store::{Store, StoreError};

/// Most messages stored in one transaction.
const MAX_BATCH: usize = 256;
/// Messages waiting to be stored before senders wait for room.
const QUEUE: usize = 4096;

/// How long storing a batch takes (its commit and disk sync included), and how many messages
/// a batch holds: the store's latency as `/metrics` reports it.
#[derive(Debug, Clone)]
pub(crate) struct StoreTimes {
    pub seconds: Histogram,
    pub messages: Histogram,
}

impl StoreTimes {
    pub(crate) fn new() -> Self {
        Self {
            // 100 µs to about 3 s.
            seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            // 1 to MAX_BATCH.
            messages: Histogram::new(exponential_buckets(1.0, 2.0, 9)),
        }
    }
}

struct Job {
    message: PreparedMessage,
    stored: oneshot::Sender<Ack>,
}

/// A handle on the writer task. The task ends once every handle is dropped and the queue is
/// empty.
pub(super) struct MessageWriter {
    jobs: mpsc::Sender<Job>,
    store: Store,
}

impl MessageWriter {
    pub(super) fn start(store: Store, delivery: Delivery, times: StoreTimes) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(queue, store.clone(), delivery, times));
        Self { jobs, store }
    }

    /// Stores and delivers a message; returns once it is both, or with an error when it could
    /// not be stored (then nobody got it).
    pub(super) async fn submit(&self, message: PreparedMessage) -> Result<(), ProtocolError> {
        let (stored, done) = oneshot::channel();
        let failed = || match self.store.failure() {
            Some(_) => StoreError::Failed(String::new()).to_protocol(""),
            None => {
                ProtocolError::new(ErrorCode::Internal, "the message could not be stored, so it was not sent")
            }
        };
        self.jobs.send(Job { message, stored }).await.map_err(|_| failed())?;
        match done.await {
            Ok(Ack::Sent) => Ok(()),
            Ok(Ack::Unsent) => Err(ProtocolError::new(
                ErrorCode::Internal,
                "the message is stored, but the server cannot reach the rest of its cluster, so it was not sent",
            )),
            _ => Err(failed()),
        }
    }
}

/// What became of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ack {
    /// Stored and delivered.
    Sent,
    /// Not stored, so sent to nobody.
    NotStored,
    /// Stored, but the cluster's log did not take it: nobody got it.
    Unsent,
}

/// A batch whose commit is over: which of its messages are stored.
struct Stored {
    messages: Vec<PreparedMessage>,
    acks: Vec<oneshot::Sender<Ack>>,
    stored: Vec<bool>,
}

/// Stores batch after batch, and hands each stored batch to a delivering task: the next batch's
/// commit overlaps the last one's delivery. Batches are stored one at a time and delivered one
/// at a time, in order, each only once its commit is over.
async fn run(mut queue: mpsc::Receiver<Job>, store: Store, delivery: Delivery, times: StoreTimes) {
    // One stored batch may wait for its delivery while the next one commits.
    let (to_deliver, mut stored_batches) = mpsc::channel::<Stored>(1);
    let delivering = tokio::spawn(async move {
        while let Some(batch) = stored_batches.recv().await {
            deliver(&delivery, batch).await;
        }
    });
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (messages, acks): (Vec<PreparedMessage>, Vec<oneshot::Sender<Ack>>) =
            jobs.drain(..).map(|j| (j.message, j.stored)).unzip();
        let started = Instant::now();
        let stored = store_batch(&store, &messages).await;
        times.seconds.observe(started.elapsed().as_secs_f64());
        times.messages.observe(messages.len() as f64);
        if to_deliver.send(Stored { messages, acks, stored }).await.is_err() {
            break;
        }
    }
    drop(to_deliver);
    let _ = delivering.await;
}

/// Where stored messages go to be delivered.
pub(super) enum Delivery {
    /// To the core on this node.
    Here(Arc<Hub>),
    /// Into the cluster's log, for every node to deliver to its own connections.
    Cluster(Arc<Cluster>),
}

/// Delivers what a batch stored, then tells each sender whether its message was. In a
/// cluster a batch the log did not take is stored but goes to nobody, and its senders hear it
/// was not sent.
async fn deliver(delivery: &Delivery, batch: Stored) {
    let Stored { messages, acks, stored } = batch;
    let delivered: Vec<PreparedMessage> =
        messages.into_iter().zip(&stored).filter(|(_, ok)| **ok).map(|(m, _)| m).collect();
    let sent = match delivery {
        Delivery::Here(hub) => {
            hub.deliver(&delivered);
            true
        }
        Delivery::Cluster(cluster) => cluster.append(Op::Deliver { batch: delivered }).await.is_ok(),
    };
    for (ack, ok) in acks.into_iter().zip(stored) {
        let _ = ack.send(match (ok, sent) {
            (false, _) => Ack::NotStored,
            (true, true) => Ack::Sent,
            (true, false) => Ack::Unsent,
        });
    }
}

/// Stores a batch in one transaction; answers which messages are stored. When the batch is
/// refused for something about one row (a duplicate id), each message is stored on its own,
/// so one bad row does not fail the others.
async fn store_batch(store: &Store, messages: &[PreparedMessage]) -> Vec<bool> {
    match store.append_messages(messages.iter().map(|m| &m.stored)).await {
        Ok(()) => vec![true; messages.len()],
        Err(e) if e.is_about_the_data() && messages.len() > 1 => {
            tracing::warn!(error = %e, count = messages.len(), "a batch of messages was refused; storing them one by one");
            let mut stored = Vec::with_capacity(messages.len());
            for m in messages {
                let one = store.append_messages([&m.stored]).await;
                if let Err(e) = &one {
                    tracing::error!(error = %e, id = m.stored.message.id, "storing a message failed; it was not sent");
                }
                stored.push(one.is_ok());
            }
            stored
        }
        Err(e) => {
            tracing::error!(error = %e, count = messages.len(), "storing messages failed; they were not sent");
            vec![false; messages.len()]
        }
    }
}

//! Webhooks: a transport out. Every [`AppEvent`] the core reports is sent as a JSON `POST` to
//! each configured URL, signed with the shared secret:
//!
//! ```text
//! Chattr-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
//! ```
//!
//! Each URL has its own worker and bounded queue, so a slow or dead endpoint delays only its
//! own deliveries and never the chat (the core hands events over without waiting; a full queue
//! drops and counts). A failed delivery is tried again after 1×, 2×, 4×… the backoff, up to the
//! configured attempts; then it is a dead letter, logged and kept in the store. Deliveries still
//! queued at shutdown are kept in the store and sent after the next start.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::auth::token::{unix_millis, unix_secs};
use crate::auth::TokenAuth;
use crate::chat::{AppEvent, TapFeed};
use crate::config::Config;
use crate::store::{Store, WebhookDelivery};

/// Deliveries one endpoint may have waiting; more are dropped (and counted).
const QUEUE_PER_URL: usize = 4096;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Counts, for stats and logs.
#[derive(Debug, Default)]
pub(crate) struct WebhookCounts {
    pub(crate) delivered: AtomicU64,
    pub(crate) failed_attempts: AtomicU64,
    pub(crate) dead: AtomicU64,
    pub(crate) dropped: AtomicU64,
}

/// What the body carries besides the event: a delivery id (for the receiver to spot a retry
/// of a delivery it already has) and when it happened.
#[derive(Serialize)]
struct Envelope<'a> {
    delivery: String,
    at: u64,
    #[serde(flatten)]
    event: &'a AppEvent,
}

struct Settings {
    timeout: Duration,
    attempts: u32,
    backoff: Duration,
}

/// The running webhooks.
pub(crate) struct Webhooks {
    counts: Arc<WebhookCounts>,
    /// Events the core could not hand over (the feed was full).
    feed_dropped: Arc<AtomicU64>,
    stop: CancellationToken,
    workers: tokio::sync::Mutex<JoinSet<()>>,
}

/// The `Chattr-Signature` header of a request sent now with `body`.
pub(crate) fn signature(auth: &TokenAuth, body: &str) -> String {
    let t = unix_secs(SystemTime::now());
    let mac = auth.sign(format!("{t}.{body}").as_bytes());
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// The HTTP client for requests to the app (webhooks, the message filter).
pub(crate) fn app_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("chattr/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

impl Webhooks {
    /// Starts a worker per URL, fed from `feed`, and sends what the last run kept.
    pub(crate) async fn start(config: &Config, auth: Arc<TokenAuth>, feed: TapFeed, store: Store) -> Self {
        let settings = Arc::new(Settings {
            timeout: config.webhook_timeout,
            attempts: config.webhook_attempts.max(1),
            backoff: config.webhook_backoff,
        });
        let counts = Arc::new(WebhookCounts::default());
        let stop = CancellationToken::new();
        let client = app_client(settings.timeout);
        let mut pending = store.take_pending_webhooks().await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "reading the webhook deliveries kept at the last stop failed");
            Vec::new()
        });
        let mut workers = JoinSet::new();
        let mut queues = Vec::new();
        for url in config.webhook_urls.iter().map(|u| u.trim()).filter(|u| !u.is_empty()) {
            let (tx, rx) = mpsc::channel(QUEUE_PER_URL);
            for kept in pending.extract_if(.., |d| d.url == url) {
                let _ = tx.try_send(kept);
            }
            let worker = Worker {
                url: url.to_owned(),
                client: client.clone(),
                auth: auth.clone(),
                store: store.clone(),
                settings: settings.clone(),
                counts: counts.clone(),
                stop: stop.clone(),
            };
            workers.spawn(worker.run(rx));
            queues.push((url.to_owned(), tx));
        }
        for orphan in pending {
            tracing::warn!(url = %orphan.url, "a kept webhook delivery is for a URL no longer configured; dropped");
        }
        let feed_dropped = feed.dropped_counter();
        workers.spawn(dispatch(feed, queues, counts.clone(), stop.clone()));
        tracing::info!(urls = config.webhook_urls.len(), "webhooks on");
        Self { counts, feed_dropped, stop, workers: tokio::sync::Mutex::new(workers) }
    }

    pub(crate) fn counts(&self) -> (u64, u64, u64, u64) {
        let c = &self.counts;
        (
            c.delivered.load(Ordering::Relaxed),
            c.failed_attempts.load(Ordering::Relaxed),
            c.dead.load(Ordering::Relaxed),
            c.dropped.load(Ordering::Relaxed) + self.feed_dropped.load(Ordering::Relaxed),
        )
    }

    /// Stops the workers; what is still queued is kept in the store for the next start.
    pub(crate) async fn stop(&self) {
        self.stop.cancel();
        let mut workers = self.workers.lock().await;
        while workers.join_next().await.is_some() {}
    }
}

/// Hands each event, encoded once, to every endpoint's queue.
async fn dispatch(
    mut feed: TapFeed,
    queues: Vec<(String, mpsc::Sender<WebhookDelivery>)>,
    counts: Arc<WebhookCounts>,
    stop: CancellationToken,
) {
    let mut next_id: u64 = 0;
    loop {
        let event = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            event = feed.rx.recv() => match event {
                Some(event) => event,
                None => return,
            },
        };
        next_id += 1;
        let envelope = {
            let at = unix_millis(SystemTime::now());
            Envelope { delivery: format!("{at:x}-{next_id}"), at, event: &event }
        };
        let Ok(body) = serde_json::to_string(&envelope) else { continue };
        for (url, queue) in &queues {
            let delivery = WebhookDelivery { url: url.clone(), body: body.clone(), attempts: 0, error: None };
            if queue.try_send(delivery).is_err() {
                let n = counts.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(%url, dropped = n, "webhook deliveries dropped: the endpoint is too far behind");
                }
            }
        }
    }
}

struct Worker {
    url: String,
    client: reqwest::Client,
    auth: Arc<TokenAuth>,
    store: Store,
    settings: Arc<Settings>,
    counts: Arc<WebhookCounts>,
    stop: CancellationToken,
}

impl Worker {
    async fn run(self, mut queue: mpsc::Receiver<WebhookDelivery>) {
        let mut kept = Vec::new();
        loop {
            let delivery = tokio::select! {
                biased;
                _ = self.stop.cancelled() => break,
                next = queue.recv() => match next {
                    Some(delivery) => delivery,
                    None => break,
                },
            };
            if let Some(unsent) = self.deliver(delivery).await {
                // Stopped while it waited to try again: kept with the rest.
                kept.push(unsent);
                break;
            }
        }
        while let Ok(d) = queue.try_recv() {
            kept.push(d);
        }
        self.keep(kept).await;
    }

    async fn keep(&self, kept: Vec<WebhookDelivery>) {
        if kept.is_empty() {
            return;
        }
        let n = kept.len();
        match self.store.save_pending_webhooks(kept).await {
            Ok(()) => tracing::info!(url = %self.url, kept = n, "webhook deliveries kept for the next start"),
            Err(e) => {
                tracing::error!(url = %self.url, lost = n, error = %e, "keeping webhook deliveries failed")
            }
        }
    }

    /// Delivers, trying again with backoff; a delivery that fails every attempt becomes a dead
    /// letter. Answers the delivery when a stop came before it was done.
    async fn deliver(&self, mut delivery: WebhookDelivery) -> Option<WebhookDelivery> {
        loop {
            delivery.attempts += 1;
            match self.attempt(&delivery.body).await {
                Ok(()) => {
                    self.counts.delivered.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                Err(why) => {
                    self.counts.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(url = %self.url, attempt = delivery.attempts, error = %why, "webhook delivery failed");
                    delivery.error = Some(why);
                }
            }
            if delivery.attempts >= i64::from(self.settings.attempts) {
                self.counts.dead.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(url = %self.url, attempts = delivery.attempts, error = ?delivery.error, "webhook delivery failed every attempt; kept as a dead letter");
                if let Err(e) = self.store.add_dead_webhook(delivery).await {
                    tracing::error!(url = %self.url, error = %e, "keeping a dead webhook letter failed");
                }
                return None;
            }
            let exponent = u32::try_from(delivery.attempts - 1).unwrap_or(u32::MAX).min(16);
            let wait = self.settings.backoff.saturating_mul(1 << exponent).min(MAX_BACKOFF);
            tokio::select! {
                _ = self.stop.cancelled() => return Some(delivery),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn attempt(&self, body: &str) -> Result<(), String> {
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("chattr-signature", signature(&self.auth, body))
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", response.status()))
        }
    }
}

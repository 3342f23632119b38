//! Everything the suite reaches inside the server crate instead of through what `chattrd` offers
//! anyone (its serve API, `chattr::{serve, Config, ServeError}`; HTTP; the WebSocket; its files
//! and its log). Each item says why no public surface shows it. This is the one module to change
//! when those internals do.

use app::protocol::names::fold;
use app::protocol::ChatMessage;
use chattr::store::{Conversation, Store, StoredMessage};
use chattr::{serve_state, AppState, Config, ServeError};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The state of a server running in the test's process, kept so a test can look at what no
/// client can see. (Started with `AppState::new` and `serve_state` rather than `chattr::serve`,
/// which keeps its state to itself.)
pub struct ServerState(AppState);

impl ServerState {
    /// Opens the store of `config` and serves on `listener` until `stop` resolves.
    pub async fn serve(
        config: Config,
        listener: TcpListener,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> (Self, JoinHandle<Result<(), ServeError>>) {
        let state = AppState::new(config).await.expect("server state");
        let handle = tokio::spawn(serve_state(state.clone(), listener, stop));
        (Self(state), handle)
    }

    /// Sessions held for their clients to resume. A held session is invisible by design: its
    /// nick and channels stay, nobody sees it quit, and a client can only tell that it ended
    /// by trying to resume it, which ends it or takes it over.
    pub fn held_sessions(&self) -> usize {
        self.0.inner.chat.stats().held_sessions
    }

    /// Password hashes computed so far (registrations, password checks, decoys). The tests that
    /// a refusal costs no hash need the count: a hash takes milliseconds here, too little to
    /// tell from the answer's timing.
    pub fn hash_runs(&self) -> u64 {
        self.0.inner.chat.stats().password_hashes
    }

    /// The server's counts of webhook deliveries, failed attempts, dead letters and drops: a
    /// retry and a drop show nowhere else (the receiver sees only what arrives).
    pub fn webhook_counts(&self) -> (u64, u64, u64, u64) {
        let s = self.0.inner.chat.stats();
        (s.webhooks_delivered, s.webhooks_failed_attempts, s.webhooks_dead, s.webhooks_dropped)
    }

    /// The dead webhook letters the store keeps (an operator reads them there).
    pub async fn dead_webhooks(&self) -> Vec<(String, String, i64)> {
        let dead = self.0.inner.chat.dead_webhooks().await.expect("dead letters read");
        dead.into_iter().map(|d| (d.url, d.body, d.attempts)).collect()
    }

    /// Bytes queued for all clients at once (the send budget): that a slow consumer's queue went
    /// back to the budget when it was dropped shows nowhere else.
    pub fn queued_bytes(&self) -> usize {
        self.0.inner.chat.stats().queued_bytes
    }

    /// The newest `limit` texts the store holds for `channel`, oldest first: read after the
    /// server stopped, which no client can do (the test's in-memory store ends with its state).
    pub async fn stored_texts(&self, channel: &str, limit: usize) -> Vec<String> {
        let stored = self
            .0
            .inner
            .chat
            .history(&Conversation::channel(&fold(channel)), None, limit)
            .await
            .expect("history reads after the stop");
        stored.into_iter().map(|m| m.text).collect()
    }
}

/// Writes `messages` into the history of their channel in the store at `db` (a data directory's
/// `surrealkv://` URL), with their ids and times as given: a store as a server whose clock was
/// elsewhere would have left it. No client chooses a message's id or time, and `chattrd` takes
/// both from the clock.
pub async fn store_channel_messages(db: &str, messages: Vec<ChatMessage>) {
    let store = Store::open(db).await.expect("the store opens");
    let batch: Vec<StoredMessage> = messages
        .into_iter()
        .map(|message| StoredMessage { conversation: Conversation::channel(&fold(&message.target)), message })
        .collect();
    store.append_messages(&batch).await.expect("the messages are stored");
}

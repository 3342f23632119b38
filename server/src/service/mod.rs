//! The application layer: every use case of the chat, for any transport. A transport (the
//! WebSocket session today; an HTTP API or an IRC listener tomorrow) turns its wire format
//! into calls here and drains each connection's [`Outbox`] of [`Event`](crate::chat::Event)s
//! onto its wire; it never touches the chat core or the store itself.
//!
//! [`ChatService`] owns the core ([`Hub`], synchronous, behind one lock) and the store, and
//! does what involves both: a message is checked by the core, stored, then delivered and
//! acknowledged ([`writer`]); a join that needs a channel's history reads it from the store
//! before the core applies it; a change to a registered channel is saved; Potato, Celery and
//! token requests are checked, written, then applied online.

mod celery;
mod login;
mod oper;
mod password;
mod potato;
mod throttle;
mod tokens;
mod writer;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use app::protocol::names::{fold, validate_channel, validate_nick};
use app::protocol::text::{validate_text, MAX_REASON_BYTES};
use app::protocol::{ChatMessage, ClientFrame, Command, ErrorCode, Limits, ProtocolError, ServerEvent};

use crate::auth::{Cloaker, TokenAuth};
use crate::chat::{Call, Effect, Hub, HubSettings, PotatoAccount, Prepared, SendBudget, Tap, APP_NAME};
use crate::cluster::Cluster;
use crate::config::{Config, RealHostTo};
use crate::filter::{MessageFilter, Verdict};
use crate::store::{ChannelRecord, Conversation, Store, StoreError};
use crate::webhooks::Webhooks;
use crate::ServeError;
// What a transport handles: a connection's outbox and queue, the events in them, and what a
// dropped connection leaves to its session.
pub use crate::chat::{Attached, Close, ConnId, Event, Left, Outbox, OutboxQueue, Resumed};
pub use crate::chat::{
    ChannelMembers, ChannelOverview, ChannelSettings, CreatedChannel, Moderated, Presence,
};
pub use crate::flood::FloodControl;
pub use login::{Auth, Login};
use password::Hasher;
use throttle::Throttle;
pub use tokens::{valid_legacy_token, IssuedToken, Revoked, TokenUser};
use writer::MessageWriter;

type Result<T> = std::result::Result<T, ProtocolError>;

/// Events the core may have waiting for the webhooks' dispatcher.
const WEBHOOK_FEED: usize = 16 * 1024;

/// Most messages one `history` request returns.
const MAX_HISTORY_PAGE: u32 = 100;
/// Messages a `history` request returns when it names no limit.
const DEFAULT_HISTORY_PAGE: u32 = 50;

/// The chat's use cases, shared by every transport.
pub struct ChatService {
    config: Config,
    hub: Arc<Hub>,
    /// This node's part in a cluster; none on a single node.
    cluster: Option<Arc<Cluster>>,
    store: Store,
    /// Stores chat messages, then delivers them.
    writer: MessageWriter,
    /// Password attempts and registrations, for Potato.
    throttle: Throttle,
    /// Runs argon2 with bounded concurrency and memory.
    hasher: Hasher,
    tokens: Option<Arc<TokenAuth>>,
    /// Bounds the output queued for clients, per connection and in all.
    send_budget: Arc<SendBudget>,
    /// The app's webhooks, when it has any.
    webhooks: Option<Webhooks>,
    /// The app's message filter, when it has one.
    filter: Option<MessageFilter>,
    /// Logins by kind, refusals by code.
    logins: login::LoginCounts,
    /// How long storing a batch of messages takes, and how many a batch holds.
    store_times: writer::StoreTimes,
    /// When it started, for `/stats`.
    started: std::time::Instant,
    /// One kline change (store and core together) at a time.
    kline_changes: tokio::sync::Mutex<()>,
}

/// What the transport does once a frame is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The user quit, with this message for the others.
    Quit(Option<String>),
}

/// Figures about the running service, for tests and health reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub online: usize,
    /// Sessions whose connection dropped, held for a resume.
    pub held_sessions: usize,
    /// Bytes queued for clients over every connection.
    pub queued_bytes: usize,
    /// Password hashes computed or checked since the start.
    pub password_hashes: u64,
    /// Webhook deliveries made, attempts that failed, deliveries that failed every attempt
    /// (dead letters), and deliveries dropped because an endpoint was too far behind.
    pub webhooks_delivered: u64,
    pub webhooks_failed_attempts: u64,
    pub webhooks_dead: u64,
    pub webhooks_dropped: u64,
}

fn internal(e: StoreError) -> ProtocolError {
    tracing::error!(error = %e, "service store operation failed");
    e.to_protocol("the service is unavailable right now; try again")
}

fn date(unix_secs: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(unix_secs.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Whether a command only shows the state (which a node of a cluster answers from its copy,
/// Redis or not) rather than changing it.
fn only_looks(command: &Command) -> bool {
    matches!(
        command,
        Command::Topic { topic: None, .. }
            | Command::Mode { modes: None, .. }
            | Command::Bans { .. }
            | Command::Whois { .. }
            | Command::List
            | Command::Names { .. }
    )
}

/// A node's name when it is given none: the host's name and the port it listens on.
fn default_node_name(config: &Config) -> String {
    let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
    format!("{}:{}", if host.is_empty() { "chattrd" } else { &host }, config.addr.port())
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl ChatService {
    /// Opens the store and loads what the core keeps in memory: token users' reserved nicks,
    /// Potato accounts, registered channels, the last message id.
    pub async fn open(config: &Config) -> std::result::Result<Self, ServeError> {
        let root = config.db_user.clone().zip(config.db_pass.clone());
        let store = Store::open_as(&config.db, root).await?;
        tracing::info!(db = %config.db, sync = %crate::store::sync_mode(&config.db), "store opened");
        let cloaker = Cloaker::new(store.server_key().await?);
        let hub = Hub::new(hub_settings(config), cloaker);
        for user in store.token_users().await? {
            if validate_nick(&user).is_ok() {
                hub.reserve_nick(&user);
            }
        }
        let accounts = store
            .account_names()
            .await?
            .into_iter()
            .map(|a| PotatoAccount::new(a.name, a.uid.unwrap_or_default()))
            .collect();
        hub.load_registrations(accounts, store.channels().await?);
        hub.resume_message_ids(store.message_id_mark().await?);
        hub.load_klines(store.klines(crate::chat::now_ms()).await?);
        hub.load_oper_pins(store.oper_pins().await?);
        let tokens = TokenAuth::new(config.shared_secret.as_deref()).map(Arc::new);
        let webhooks = if config.webhook_urls.iter().all(|u| u.trim().is_empty()) {
            None
        } else {
            let Some(auth) = tokens.clone() else {
                return Err(ServeError::Config(
                    "CHATTR_WEBHOOK_URLS needs CHATTR_SHARED_SECRET, which signs the deliveries".into(),
                ));
            };
            let (tap, feed) = Tap::new(WEBHOOK_FEED);
            hub.attach_tap(tap);
            Some(Webhooks::start(config, auth, feed, store.clone()).await)
        };
        let filter = match config.message_filter_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            None => None,
            Some(url) => {
                let Some(auth) = tokens.clone() else {
                    return Err(ServeError::Config(
                        "CHATTR_MESSAGE_FILTER_URL needs CHATTR_SHARED_SECRET, which signs the requests"
                            .into(),
                    ));
                };
                let fail_open = config.message_filter_fail != "closed";
                Some(MessageFilter::new(url, auth, config.message_filter_timeout, fail_open))
            }
        };
        let cluster = match config.cluster.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            None => None,
            Some(url) => {
                let name = config.node_name.clone().unwrap_or_else(|| default_node_name(config));
                let mut rules = hub.agreement();
                if config.db.starts_with("mem://") {
                    // (The cloak key lives in the store: nodes that share one have the same.)
                    tracing::warn!("each node of this cluster has a store of its own in memory: accounts, channels and history are not shared (fit for measuring only)");
                    rules.retain(|(name, _)| *name != "cloak_key");
                }
                Some(Cluster::join(url, name, config.node_lease, hub.clone(), &rules).await?)
            }
        };
        let delivery = match &cluster {
            Some(cluster) => writer::Delivery::Cluster(cluster.clone()),
            None => writer::Delivery::Here(hub.clone()),
        };
        let store_times = writer::StoreTimes::new();
        Ok(Self {
            writer: MessageWriter::start(store.clone(), delivery, store_times.clone()),
            cluster,
            logins: login::LoginCounts::default(),
            store_times,
            started: std::time::Instant::now(),
            kline_changes: tokio::sync::Mutex::new(()),
            hub,
            store,
            throttle: Throttle::new(),
            hasher: Hasher::for_this_machine(),
            tokens,
            send_budget: SendBudget::new(config.send_queue_bytes, config.send_budget_bytes),
            webhooks,
            filter,
            config: config.clone(),
        })
    }

    /// A new connection's outbox, bounded as configured, and the queue its transport drains.
    pub fn outbox(&self) -> (Outbox, OutboxQueue) {
        Outbox::new(self.config.send_queue, self.send_budget.clone())
    }

    /// Handles one frame of a logged-in connection; `outbox` is the connection's. Replies and
    /// events go to outboxes; a refusal comes back as the error (its `txn` is the caller's to
    /// add).
    pub async fn handle(&self, conn: ConnId, outbox: &Outbox, frame: ClientFrame) -> Result<Flow> {
        match frame {
            ClientFrame::Auth { .. } => {
                Err(ProtocolError::new(ErrorCode::AlreadyAuthenticated, "you are already logged in"))
            }
            ClientFrame::Message { target, text, txn } => match Command::for_service(&target, &text, None) {
                Some(command) => self.run(conn, command?, txn.as_deref()).await,
                None => self.send_message(conn, &target, &text, false, txn.as_deref()).await,
            },
            ClientFrame::Command { line, target, txn } => {
                self.run(conn, Command::parse(&line, target.as_deref())?, txn.as_deref()).await
            }
            ClientFrame::Run { command, txn } => self.run(conn, command, txn.as_deref()).await,
            ClientFrame::History { target, before, limit } => {
                let (target, conversation) = self.hub.history_conversation(conn, &target)?;
                let (messages, more) = self.history_page(&conversation, before, limit).await?;
                outbox.send(ServerEvent::History { target, messages, more });
                Ok(Flow::Continue)
            }
            ClientFrame::Ping { id } => {
                outbox.send(ServerEvent::Pong { id });
                Ok(Flow::Continue)
            }
        }
    }

    /// Runs a command; `txn` is the frame's transaction id, which messages it sends carry.
    pub async fn run(&self, conn: ConnId, command: Command, txn: Option<&str>) -> Result<Flow> {
        match command {
            Command::Quit { reason } => {
                if let Some(r) = &reason {
                    validate_text("reason", r, MAX_REASON_BYTES, false)?;
                }
                Ok(Flow::Quit(reason))
            }
            Command::Msg { target, text } => match Command::for_service(&target, &text, None) {
                Some(command) => Box::pin(self.run(conn, command?, None)).await,
                None => self.send_message(conn, &target, &text, false, txn).await,
            },
            Command::Me { target, text } => self.send_message(conn, &target, &text, true, txn).await,
            Command::Potato { request } => self.potato(conn, request).await.map(|()| Flow::Continue),
            Command::Celery { request } => self.celery(conn, request).await.map(|()| Flow::Continue),
            Command::Oper { request } => self.oper(conn, request).await.map(|()| Flow::Continue),
            command => self.apply(conn, command).await.map(|()| Flow::Continue),
        }
    }

    /// Up to `limit` messages of a conversation, the newest before message id `before` (or
    /// the newest of all), oldest first.
    pub async fn history(
        &self,
        conversation: &Conversation,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<ChatMessage>> {
        self.store.history(conversation, before, limit).await.map_err(|e| {
            tracing::error!(error = %e, "reading history failed");
            ProtocolError::new(ErrorCode::Internal, "history is unavailable right now")
        })
    }

    /// A message: checked by the core, stored, then delivered to its recipients and echoed to
    /// its sender (the echo means it is stored). A `txn` already stored is answered again.
    async fn send_message(
        &self,
        conn: ConnId,
        target: &str,
        text: &str,
        action: bool,
        txn: Option<&str>,
    ) -> Result<Flow> {
        if let Prepared::New(mut message) = self.hub.prepare_message(conn, target, text, action, txn)? {
            if let Err(e) = self.filtered(&mut message).await {
                if let Some(txn) = txn {
                    self.hub.not_stored(conn, txn);
                }
                return Err(e);
            }
            if let Err(e) = self.writer.submit(message).await {
                if let Some(txn) = txn {
                    self.hub.not_stored(conn, txn);
                }
                return Err(e);
            }
        }
        Ok(Flow::Continue)
    }

    /// A message an app posts as its bot `bot` (to a channel, or to someone online): stored,
    /// then delivered, like any message. Answers it as stored.
    pub async fn post_bot_message(&self, bot: &str, target: &str, text: &str) -> Result<ChatMessage> {
        let message = self.hub.prepare_bot_message(bot, target, text)?;
        let posted = message.stored.message.clone();
        self.writer.submit(message).await?;
        tracing::info!(bot, target = %posted.target, id = posted.id, "an app posted a message");
        Ok(posted)
    }

    /// Every channel with anyone in it.
    pub fn channels(&self) -> Vec<ChannelOverview> {
        self.hub.channels_overview()
    }

    /// A channel's members.
    pub fn channel_members(&self, channel: &str) -> Result<ChannelMembers> {
        validate_channel(channel)?;
        self.hub.channel_members(channel)
    }

    /// Everyone online.
    pub fn online_users(&self) -> Vec<Presence> {
        self.hub.online_users()
    }

    /// Someone online, by nick (`no_such_nick` when they are not).
    pub fn presence(&self, nick: &str) -> Result<Presence> {
        self.hub.user_presence(nick)
    }

    /// A page of a channel's stored history, whether anyone is in it or not: up to `limit` (at
    /// most 100) messages before message id `before`, oldest first, and whether older ones may
    /// exist.
    pub async fn channel_history(
        &self,
        channel: &str,
        before: Option<u64>,
        limit: Option<u32>,
    ) -> Result<(Vec<ChatMessage>, bool)> {
        validate_channel(channel)?;
        self.history_page(&Conversation::channel(&fold(channel)), before, limit).await
    }

    /// A page of history as clients ask for it: `limit` (1 to 100, 50 when unsaid; a larger
    /// one is 100, 0 is refused) messages before `before`, and whether older ones may exist.
    async fn history_page(
        &self,
        conversation: &Conversation,
        before: Option<u64>,
        limit: Option<u32>,
    ) -> Result<(Vec<ChatMessage>, bool)> {
        if limit == Some(0) {
            return Err(ProtocolError::new(
                ErrorCode::BadArguments,
                format!("a history page's limit is 1 to {MAX_HISTORY_PAGE}"),
            ));
        }
        let limit = limit.unwrap_or(DEFAULT_HISTORY_PAGE).min(MAX_HISTORY_PAGE) as usize;
        let messages = self.history(conversation, before, limit).await?;
        let more = messages.len() == limit;
        Ok((messages, more))
    }

    /// The app kicks `nick` out of `channel`, as `by`.
    pub async fn app_kick(
        &self,
        channel: &str,
        nick: &str,
        reason: Option<String>,
        by: &str,
    ) -> Result<Moderated> {
        let call = Call::AppKick { channel: channel.into(), nick: nick.into(), reason, by: by.into() };
        self.change::<Result<Moderated>>(call).await?
    }

    /// The app bans a mask (or the nick of someone online) from `channel`, as `by`.
    pub async fn app_ban(&self, channel: &str, mask: &str, by: &str) -> Result<Moderated> {
        let call = Call::AppBan { channel: channel.into(), mask: mask.into(), by: by.into() };
        let (done, effect) = self.change::<Result<(Moderated, Effect)>>(call).await??;
        self.save(effect).await?;
        Ok(done)
    }

    /// The app lifts the bans on a mask (or covering someone online) in `channel`, as `by`.
    pub async fn app_unban(&self, channel: &str, mask: &str, by: &str) -> Result<Moderated> {
        let call = Call::AppUnban { channel: channel.into(), mask: mask.into(), by: by.into() };
        let (done, effect) = self.change::<Result<(Moderated, Effect)>>(call).await??;
        self.save(effect).await?;
        Ok(done)
    }

    /// The app sets (or, with an empty text, clears) the topic of `channel`, as `by`.
    pub async fn app_topic(&self, channel: &str, topic: String, by: &str) -> Result<Moderated> {
        let call = Call::AppTopic { channel: channel.into(), topic, by: by.into() };
        let (done, effect) = self.change::<Result<(Moderated, Effect)>>(call).await??;
        self.save(effect).await?;
        Ok(done)
    }

    /// The app sets up a channel with its settings: registered (so it lasts while empty and
    /// across restarts), stored before anyone sees it, then applied to the channel if people
    /// are in it.
    pub async fn app_create_channel(&self, settings: ChannelSettings) -> Result<CreatedChannel> {
        let (key, record) = self.hub.app_channel_plan(&settings)?;
        if !self.store.create_channel(&key, &record).await.map_err(internal)? {
            return Err(ProtocolError::new(
                ErrorCode::ChannelRegistered,
                format!("{} is registered already", record.name),
            ));
        }
        let by = settings.by.as_deref().unwrap_or(APP_NAME);
        let call = Call::AppChannelCreated { key, record, by: by.into() };
        let (created, effect) = self.change::<(CreatedChannel, Effect)>(call).await?;
        self.save(effect).await?;
        tracing::info!(channel = %created.channel, "an app set up a channel");
        Ok(created)
    }

    /// A notice from the app to a channel or to someone online; answers how many it reached.
    pub async fn app_notice(&self, target: &str, text: &str, from: &str) -> Result<usize> {
        let call = Call::AppNotice { target: target.into(), text: text.into(), from: from.into() };
        self.change::<Result<usize>>(call).await?
    }

    /// Makes a change to the core: at once on a single node, through the log in a cluster
    /// (answered once this node has applied it).
    async fn change<R: 'static>(&self, call: Call) -> Result<R> {
        let reply = match &self.cluster {
            Some(cluster) => return cluster.call(call).await,
            None => call.apply(&self.hub),
        };
        reply.downcast::<R>().map(|r| *r).map_err(|_| {
            tracing::error!("a change to the core answered in a type its caller did not expect");
            ProtocolError::new(ErrorCode::Internal, "internal error")
        })
    }

    /// Stores what the core asks to keep (a registered channel's state).
    async fn save(&self, effect: Effect) -> Result<()> {
        let Effect::Save(key, record) = effect else { return Ok(()) };
        self.save_channel(&key, &record).await.map(drop)
    }

    /// Stores a registered channel's state, changed live already; `Ok(false)` when the
    /// channel is no longer registered.
    async fn save_channel(&self, key: &str, record: &ChannelRecord) -> Result<bool> {
        self.store.save_channel(key, record).await.map_err(|e| {
            tracing::error!(error = %e, channel = %record.name, "saving a registered channel failed");
            e.to_protocol("the change is live but could not be saved; it will not survive a restart")
        })
    }

    /// Puts a message to the app's filter, if there is one: it may pass, be rewritten or be
    /// refused.
    async fn filtered(&self, message: &mut crate::chat::PreparedMessage) -> Result<()> {
        let Some(filter) = &self.filter else { return Ok(()) };
        let private = message.is_private();
        match filter.check(&message.stored.message, private).await? {
            Verdict::Accept => Ok(()),
            Verdict::Reject(reason) => Err(ProtocolError::new(ErrorCode::MessageRejected, reason)),
            Verdict::Rewrite(text) => {
                validate_text("message", &text, self.config.max_text_bytes, true).map_err(|e| {
                    tracing::warn!(error = %e.message, "the message filter rewrote a message into one the chat refuses");
                    ProtocolError::new(ErrorCode::MessageRejected, "the message was refused")
                })?;
                message.stored.message.text = text;
                Ok(())
            }
        }
    }

    /// A channel command, applied by the core. A join of a channel nobody is in needs its
    /// recent history, read here and handed to the core; a change to a registered channel is
    /// saved.
    async fn apply(&self, conn: ConnId, command: Command) -> Result<()> {
        let mut history = None;
        // The history is loaded once at most, but a channel emptied and refilled meanwhile
        // makes the core ask again.
        for _ in 0..3 {
            // A command that only looks is answered from this node's copy of the state.
            let applied = match &self.cluster {
                Some(cluster) if !only_looks(&command) => {
                    cluster.apply(conn, command.clone(), history.take()).await
                }
                _ => self.hub.apply(conn, command.clone(), history.take()),
            };
            match applied? {
                Effect::Done => return Ok(()),
                effect @ Effect::Save(..) => return self.save(effect).await,
                Effect::NeedHistory(folded) => {
                    let recent = self
                        .store
                        .history(&Conversation::channel(&folded), None, self.config.history_on_join)
                        .await
                        .map_err(|e| {
                            tracing::error!(error = %e, "reading history failed");
                            ProtocolError::new(ErrorCode::Internal, "the channel cannot be loaded right now")
                        })?;
                    history = Some(recent);
                }
            }
        }
        Err(ProtocolError::new(ErrorCode::Internal, "the channel is busy; try again"))
    }

    /// A connection is done: its session quits with `reason`, or, given what the dropped
    /// connection `left`, is held for a resume.
    pub fn leave(&self, attached: Attached, reason: Option<String>, left: Option<Left>) {
        match &self.cluster {
            // Held (the client may resume it), the session changes nothing the others see.
            Some(cluster) if left.is_none() || self.config.resume_grace.is_zero() => {
                cluster.leave_later(attached, reason);
            }
            _ => self.hub.release(attached, reason, left),
        }
    }

    /// This node's part in a cluster, if it is one's.
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_deref()
    }

    /// Closes every connection.
    pub fn close_all(&self, close: Close) {
        self.hub.close_all(close);
    }

    /// Why the store failed a write, once it has: from then on nothing is acknowledged.
    pub fn store_failure(&self) -> Option<&str> {
        self.store.failure()
    }

    /// Resolves when the store fails a write.
    pub async fn store_failed(&self) {
        self.store.failed().await;
    }

    /// Whether the store answers.
    pub async fn store_healthy(&self) -> bool {
        self.store.healthy().await
    }

    /// Deletes messages older than `max_age`.
    pub async fn prune_history(&self, max_age: Duration) {
        let now = SystemTime::now();
        let ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let cutoff = now.checked_sub(max_age).unwrap_or(UNIX_EPOCH);
        if let Err(e) = self.store.prune_history(ms(cutoff), ms(now)).await {
            tracing::warn!(error = %e, "pruning old messages failed");
        }
    }

    pub fn stats(&self) -> Stats {
        let (webhooks_delivered, webhooks_failed_attempts, webhooks_dead, webhooks_dropped) =
            self.webhooks.as_ref().map_or((0, 0, 0, 0), Webhooks::counts);
        Stats {
            online: self.hub.online(),
            held_sessions: self.hub.held_sessions(),
            queued_bytes: self.send_budget.total(),
            password_hashes: self.hasher.runs(),
            webhooks_delivered,
            webhooks_failed_attempts,
            webhooks_dead,
            webhooks_dropped,
        }
    }

    /// The store as a SurrealQL dump (see [`Store::export`]).
    pub async fn export(
        &self,
    ) -> std::result::Result<impl futures::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static, StoreError>
    {
        self.store.export().await
    }

    /// What the chat core holds and has delivered, for `/metrics`.
    pub(crate) fn hub_figures(&self) -> crate::chat::HubFigures {
        self.hub.figures()
    }

    /// Logins by kind and refusals by code, for `/metrics`.
    pub(crate) fn login_counts(&self) -> &login::LoginCounts {
        &self.logins
    }

    /// The store's batch latencies and sizes, for `/metrics`.
    pub(crate) fn store_times(&self) -> &writer::StoreTimes {
        &self.store_times
    }

    /// Connections closed as slow consumers since the start.
    pub(crate) fn slow_consumers(&self) -> u64 {
        self.send_budget.slow_consumers()
    }

    /// Stops the webhooks, keeping what they had not delivered for the next start.
    pub async fn stop_webhooks(&self) {
        if let Some(webhooks) = &self.webhooks {
            webhooks.stop().await;
        }
    }

    /// The dead webhook letters: deliveries that failed every attempt.
    pub async fn dead_webhooks(&self) -> Result<Vec<crate::store::WebhookDelivery>> {
        self.store.dead_webhooks().await.map_err(internal)
    }
}

fn hub_settings(config: &Config) -> HubSettings {
    HubSettings {
        limits: Limits {
            max_text_bytes: config.max_text_bytes,
            max_frame_bytes: config.max_frame_bytes,
            burst: config.flood_burst,
            per_second: config.flood_rate,
            allowance: None,
        },
        max_channels: config.max_channels,
        history_on_join: config.history_on_join,
        nick_grace: config.nick_grace,
        resume_grace: config.resume_grace,
        max_held_per_address: config.max_conns_per_ip as usize,
        default_channels: config.default_channels.iter().filter(|c| !c.is_empty()).cloned().collect(),
        ops_see_real_host: config.whois_real_host == RealHostTo::ChannelOps,
        opers: config.opers.iter().map(|o| fold(o)).collect(),
    }
}

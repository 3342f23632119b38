//! The chat core: who is online, which channels exist, and the rules of every command. It
//! knows no transport: sessions hand it parsed commands, and it answers by pushing serialized
//! events into the recipients' [`Outbox`]es. All state sits behind one `std` mutex that is
//! never held across an `.await`; each operation is a short, synchronous critical section.

mod account;
mod by_app;
mod calls;
pub(crate) mod channel;
pub(crate) mod clock;
mod cmd;
mod directory;
pub(crate) mod names;
mod opers;
pub(crate) mod outbox;
mod resume;
mod services;
mod snapshot;
mod tap;
#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use app::protocol::names::{fold, is_channel, validate_channel, validate_nick};
use app::protocol::text::validate_text;
use app::protocol::{ChatMessage, CloseReason, Command, ErrorCode, Limits, ProtocolError, ServerEvent};

use crate::auth::Cloaker;
use crate::store::{ChannelRecord, Conversation, StoredMessage};
pub(crate) use account::{display_key, Account, PotatoAccount};
pub(crate) use by_app::APP_NAME;
pub use by_app::{ChannelSettings, CreatedChannel, Moderated};
pub(crate) use calls::{Call, Reply};
use channel::Channel;
pub use directory::{ChannelMembers, ChannelOverview, Presence};
use names::NameIndex;
pub(crate) use opers::Oper;
pub(crate) use outbox::SendBudget;
pub use outbox::{Close, Event, Outbox, OutboxQueue};
pub(crate) use resume::FloodFrom;
pub(crate) use resume::{key_of as resume_key_of, ResumeKey};
pub use resume::{Attached, Left, Resumed};
pub(crate) use services::OpListEdit;
pub(crate) use snapshot::Snapshot;
pub(crate) use tap::{AppEvent, Tap, TapFeed};

/// Identifies one session for its lifetime, which a resumed session carries over from one
/// connection to the next.
pub type ConnId = u64;

type Result<T> = std::result::Result<T, ProtocolError>;

/// Who is logging in.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Identity {
    pub nick: String,
    /// Set for users logged in by their app with a token; their nick is reserved for them.
    pub account: Option<Account>,
    pub ip: IpAddr,
}

/// What a new session gets from the node it logs in on: its number, the key its guest's
/// private conversations are filed under, and its resume secret (only the node that made it
/// knows the secret itself; every node knows its hash).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Fresh {
    pub conn: ConnId,
    pub guest_key: String,
    pub resume_key: resume::ResumeKey,
    #[serde(skip)]
    pub resume_secret: String,
}

/// Settings the core needs.
#[derive(Debug, Clone)]
pub(crate) struct HubSettings {
    pub limits: Limits,
    pub max_channels: usize,
    /// How many stored messages a joiner gets before live traffic.
    pub history_on_join: usize,
    /// How long someone on a registered nick has to identify before being renamed.
    pub nick_grace: Duration,
    /// Whether operators of a channel a user is in see the user's real address in `/whois`
    /// (otherwise only the user does).
    pub ops_see_real_host: bool,
    /// How long a session whose connection dropped is held (nick, channels, roles, queued
    /// events) for the client to resume it; zero quits it at once.
    pub resume_grace: Duration,
    /// Channels offered to newcomers in `welcome`.
    pub default_channels: Vec<String>,
    /// Most sessions held at once for one address (IPv4, or IPv6 /64); past it the longest
    /// held one quits. Zero: no limit.
    pub max_held_per_address: usize,
    /// Server operators' accounts, folded wire forms (`potato:alice`, `app:admin`).
    pub opers: Vec<String>,
}

/// What the caller must do after [`Hub::apply`] succeeded.
#[derive(Debug)]
pub(crate) enum Effect {
    Done,
    /// The channel (folded name) must be loaded first: fetch its recent history from the store
    /// and apply the command again with it.
    NeedHistory(String),
    /// A registered channel's kept state changed: store this record under this key.
    Save(String, Box<ChannelRecord>),
}

/// A message checked and numbered, waiting to be stored; delivered once it is.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct PreparedMessage {
    pub stored: StoredMessage,
    /// The sender's connection; none for a bot's message.
    from: Option<ConnId>,
    /// For a private message, the recipient.
    to: Option<ConnId>,
    /// The sender's transaction id, echoed back to it alone.
    txn: Option<String>,
}

impl PreparedMessage {
    /// Whether it goes to a nick rather than a channel.
    pub(crate) fn is_private(&self) -> bool {
        self.to.is_some()
    }
}

/// What [`Hub::prepare_message`] made of a message.
#[derive(Debug)]
pub(crate) enum Prepared {
    /// A new message, to store and then deliver.
    New(PreparedMessage),
    /// The session stored this transaction already; its echo was sent again.
    Repeat,
}

/// Messages with a transaction id remembered per session, to acknowledge a resent one again.
const REMEMBERED_TXNS: usize = 64;

struct Client {
    nick: String,
    account: Option<Account>,
    /// Who this session is in private-message history when it has no account: a random key,
    /// so a later guest on the same nick never sees these conversations.
    guest_key: String,
    ip: IpAddr,
    cloak: String,
    outbox: Outbox,
    /// Folded names of the channels this client is in.
    channels: HashSet<String>,
    away: Option<String>,
    signon: u64,
    last_active: Instant,
    /// Finds the secret that resumes this session on a new connection.
    resume: resume::ResumeKey,
    /// The node its connection is on (0 on a single node); a resume may move it.
    home: u64,
    /// Counts the connections that carried this session: one that was taken over cannot end it.
    attachment: u64,
    /// While no connection carries the session: what it keeps for the one that resumes it.
    held: Option<resume::Held>,
    /// The echoes of the last messages stored with a transaction id, oldest first.
    sent: VecDeque<ChatMessage>,
    /// Transaction ids of messages being stored right now.
    storing: HashSet<String>,
}

impl Client {
    /// The party this client is in private conversations: its account, or its guest key.
    fn party(&self) -> String {
        self.account.as_ref().map_or_else(|| self.guest_key.clone(), Account::key)
    }

    /// The folded `nick!user@host` forms bans are matched against: cloaked and real host.
    fn masks(&self) -> Vec<String> {
        let user = self.account.as_ref().map_or("guest", Account::name);
        vec![
            fold(&format!("{}!{user}@{}", self.nick, self.cloak)),
            fold(&format!("{}!{user}@{}", self.nick, self.ip)),
        ]
    }
}

#[derive(Default)]
struct State {
    clients: HashMap<ConnId, Client>,
    /// Nick → connection.
    nicks: NameIndex<ConnId>,
    /// Folded channel name → channel.
    channels: HashMap<String, Channel>,
    /// Nicks of token users (the app user's name), which only that user may use.
    reserved: NameIndex<String>,
    /// Nicks registered with Potato, with their accounts.
    registered: NameIndex<PotatoAccount>,
    /// Folded channel name → registration: channels registered with Celery.
    regs: HashMap<String, ChannelRecord>,
    /// Nicks with a Potato registration in progress.
    pending_registrations: NameIndex<()>,
    /// Resume secret (hashed) → session.
    resumes: HashMap<resume::ResumeKey, ConnId>,
    /// Where the app's webhooks hear of what happens, when there are any.
    tap: Option<Tap>,
    next_conn: ConnId,
    last_message_id: u64,
    /// Chat messages delivered, and events queued for connections (a message to a channel of
    /// 100 is 100), since the start; counted under the lock, read by `/metrics`.
    messages_delivered: u64,
    /// Of those, the ones stored by this node (all of them on a single node).
    messages_sent_here: u64,
    events_queued: Cell<u64>,
    /// Messages delivered per second over the last minute, for `/stats`.
    rate: opers::MessageRate,
    /// Server bans in force (some maybe expired, dropped as they are met).
    klines: Vec<opers::KlineRule>,
    /// Operator names (folded) → the Potato account key each is pinned to.
    oper_pins: HashMap<String, String>,
    /// This node's share of message ids.
    ids: clock::IdSpace,
    /// This node's number in a cluster (0 on a single node).
    node: u64,
}

/// Counts of the hub's, at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HubFigures {
    /// This node's sessions, held ones included (on a single node, all of them).
    pub online: usize,
    /// Sessions held for their client to resume them.
    pub held: usize,
    /// Channels (on a cluster, every node has them all).
    pub channels: usize,
    /// Messages this node stored and had delivered.
    pub messages: u64,
    /// Events queued for this node's connections.
    pub events_queued: u64,
}

/// What a timer the core started does when it runs out.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) enum Timer {
    /// Renames `conn` when it still sits on the registered nick `nick` without identifying.
    EnforceNick { conn: ConnId, nick: String },
    /// Ends a held session nobody resumed in time (or one held too many from its address),
    /// unless a connection took it over since.
    EndHeld { attached: Attached, reason: Option<String> },
}

/// Where a timer that ran out goes: in a cluster, to the log, so every node applies it alike.
pub(crate) type TimerSink = Box<dyn Fn(Timer) + Send + Sync>;

/// The chat core. Cheap to share behind an `Arc`.
pub(crate) struct Hub {
    state: Mutex<State>,
    settings: HubSettings,
    cloaker: Cloaker,
    /// This hub, for the timers it starts.
    me: Weak<Hub>,
    /// Where its timers go when they run out; unset, they apply here at once.
    timers: std::sync::OnceLock<TimerSink>,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn err(code: ErrorCode, message: impl Into<String>) -> ProtocolError {
    ProtocolError::new(code, message)
}

impl State {
    fn client(&self, conn: ConnId) -> Result<&Client> {
        self.clients.get(&conn).ok_or_else(|| err(ErrorCode::NotAuthenticated, "you are not logged in"))
    }

    /// Someone online a command names by `nick`.
    fn target(&self, nick: &str) -> Result<channel::Target> {
        let conn = self.conn_by_nick(nick)?;
        Ok(channel::Target { conn, nick: self.nick_of(conn), named: nick.to_owned() })
    }

    fn conn_by_nick(&self, nick: &str) -> Result<ConnId> {
        self.nicks
            .get(nick)
            .copied()
            .ok_or_else(|| err(ErrorCode::NoSuchNick, format!("{nick} is not online")))
    }

    fn channel(&self, name: &str) -> Result<&Channel> {
        self.channels
            .get(&fold(name))
            .ok_or_else(|| err(ErrorCode::NoSuchChannel, format!("{name} does not exist")))
    }

    fn channel_mut(&mut self, name: &str) -> Result<&mut Channel> {
        self.channels
            .get_mut(&fold(name))
            .ok_or_else(|| err(ErrorCode::NoSuchChannel, format!("{name} does not exist")))
    }

    /// The channel, as far as `conn` may look into it: the topic and members of a secret or
    /// private channel are for its members only, and a secret one does not exist for others.
    fn visible_channel(&self, conn: ConnId, name: &str) -> Result<&Channel> {
        let channel = self.channel(name)?;
        if !channel.is_hidden() || channel.members.contains_key(&conn) {
            return Ok(channel);
        }
        if channel.modes.secret {
            return Err(err(ErrorCode::NoSuchChannel, format!("{name} does not exist")));
        }
        Err(err(ErrorCode::NotOnChannel, format!("{} is private; join it to see inside", channel.name)))
    }

    /// The channel, which the client must be in.
    fn joined_channel(&self, conn: ConnId, name: &str) -> Result<&Channel> {
        let channel = self.channel(name)?;
        if !channel.members.contains_key(&conn) {
            return Err(err(ErrorCode::NotOnChannel, format!("you are not in {}", channel.name)));
        }
        Ok(channel)
    }

    /// The channel, where the client must be an operator.
    fn opped_channel(&self, conn: ConnId, name: &str) -> Result<&Channel> {
        let channel = self.joined_channel(conn, name)?;
        if !channel.is_op(conn) {
            return Err(err(ErrorCode::NotOp, format!("you are not an operator in {}", channel.name)));
        }
        Ok(channel)
    }

    /// The nick as its user spells it, when `name` is the nick of someone online.
    fn online_nick(&self, name: &str) -> Option<String> {
        self.nicks.get(name).map(|&c| self.nick_of(c))
    }

    fn nick_of(&self, conn: ConnId) -> String {
        self.clients.get(&conn).map(|c| c.nick.clone()).unwrap_or_default()
    }

    /// When `conn` sits on a nick registered with Potato (or one that looks like it) that is
    /// not its own account's, warns it and returns the nick, so the caller can start the grace
    /// timer.
    fn check_registered_nick(&self, conn: ConnId, grace: Duration) -> Option<String> {
        let name = &self.foreign_registration(conn)?.name;
        let text = format!(
            "{name} is a registered nick. Identify with /potato identify {name} <password> within {}, \
             or you will be renamed.",
            humantime::format_duration(grace)
        );
        self.to_one(
            conn,
            ServerEvent::Notice {
                from: app::protocol::command::POTATO.into(),
                text,
                code: Some(ErrorCode::NotIdentified),
            },
        );
        Some(self.nick_of(conn))
    }

    /// The Potato account whose nick (or a look-alike of it) `conn` sits on without being it:
    /// what nick protection acts on. An app user on their own nick has none: the app is
    /// authoritative, and Potato never renames them.
    fn foreign_registration(&self, conn: ConnId) -> Option<&PotatoAccount> {
        let c = self.clients.get(&conn)?;
        if matches!(&c.account, Some(Account::App(n)) if fold(n) == fold(&c.nick)) {
            return None;
        }
        self.registered
            .find_all(&c.nick)
            .into_iter()
            .find(|(key, _)| !c.account.as_ref().is_some_and(|a| a.owns(key)))
            .map(|(_, account)| account)
    }

    /// The registration of a channel, when the channel is registered.
    fn reg_of(&self, folded: &str) -> Option<&ChannelRecord> {
        self.regs.get(folded)
    }

    /// Copies a registered channel's live state into its registration, for storing.
    fn save_reg(&mut self, channel: &str) -> Effect {
        let folded = fold(channel);
        let (Some(ch), Some(reg)) = (self.channels.get(&folded), self.regs.get_mut(&folded)) else {
            return Effect::Done;
        };
        ch.save_into(reg);
        reg.rev += 1;
        Effect::Save(folded, Box::new(reg.clone()))
    }

    fn deliver<'a>(&self, recipients: impl IntoIterator<Item = &'a ConnId>, event: impl Into<Event>) {
        let event = event.into();
        let mut queued = 0;
        for conn in recipients {
            // (A session on another node of a cluster gets it from its own node.)
            if let Some(c) = self.clients.get(conn).filter(|c| !c.outbox.is_elsewhere()) {
                c.outbox.push(event.clone());
                queued += 1;
            }
        }
        self.events_queued.set(self.events_queued.get() + queued);
    }

    fn to_channel(&self, channel: &Channel, event: impl std::borrow::Borrow<ServerEvent>) {
        let event = event.borrow();
        self.tell_app(|| AppEvent::of_channel_event(event));
        self.deliver(channel.members.keys(), event);
    }

    /// Tells the app's webhooks, if it has any, of what happened.
    /// In a cluster only the node an operation came from tells them.
    fn tell_app(&self, event: impl FnOnce() -> Option<AppEvent>) {
        if clock::OpClock::current(|c| c.is_some_and(|c| !c.here())) {
            return;
        }
        if let Some(tap) = &self.tap {
            if let Some(event) = event() {
                tap.send(event);
            }
        }
    }

    fn to_one(&self, conn: ConnId, event: impl Into<Event>) {
        self.deliver([&conn], event);
    }

    /// Sends events a channel's rules returned to everyone in it.
    fn tell_channel(&self, channel: &str, events: impl IntoIterator<Item = ServerEvent>) -> Result<()> {
        let ch = self.channel(channel)?;
        for event in events {
            self.to_channel(ch, event);
        }
        Ok(())
    }

    /// Everyone sharing a channel with `conn`, and `conn` itself.
    fn audience(&self, conn: ConnId) -> HashSet<ConnId> {
        let mut seen = HashSet::from([conn]);
        if let Some(c) = self.clients.get(&conn) {
            for name in &c.channels {
                if let Some(ch) = self.channels.get(name) {
                    seen.extend(ch.members.keys().copied());
                }
            }
        }
        seen
    }

    fn members_event(&self, channel: &Channel) -> ServerEvent {
        let members =
            channel.member_list(|conn| self.clients.get(&conn).map(|c| (c.nick.clone(), c.away.clone())));
        ServerEvent::Members { channel: channel.name.clone(), modes: channel.modes.describe(), members }
    }

    fn topic_event(channel: &Channel) -> ServerEvent {
        ServerEvent::Topic {
            channel: channel.name.clone(),
            topic: channel.topic.as_ref().map(|t| t.text.clone()),
            set_by: channel.topic.as_ref().map(|t| t.set_by.clone()),
            set_at: channel.topic.as_ref().map(|t| t.set_at),
        }
    }

    /// The channel's registration with Celery as its members see it (`founder: None` when it
    /// has none): always part of its state, so a client never keeps a dropped one.
    fn registration_event(&self, channel: &Channel) -> ServerEvent {
        let reg = self.regs.get(&fold(&channel.name));
        let shown = |keys: &[String]| keys.iter().map(|k| display_key(k).to_owned()).collect();
        ServerEvent::Registration {
            channel: channel.name.clone(),
            founder: reg.map(|r| display_key(&r.founder).to_owned()),
            ops: reg.map_or_else(Vec::new, |r| shown(&r.ops)),
            trusted: reg.map_or_else(Vec::new, |r| shown(&r.trusted)),
        }
    }

    /// What a member learns of a channel on joining: its topic (if set), its members and
    /// modes, and up to `history` recent messages.
    fn channel_state(&self, channel: &Channel, history: usize) -> Vec<ServerEvent> {
        let mut events = Vec::with_capacity(4);
        if channel.topic.is_some() {
            events.push(State::topic_event(channel));
        }
        events.push(self.members_event(channel));
        events.push(self.registration_event(channel));
        if history > 0 {
            let messages: Vec<ChatMessage> = channel.recent.iter().cloned().collect();
            let more = messages.len() >= history;
            events.push(ServerEvent::History { target: channel.name.clone(), messages, more });
        }
        events
    }

    fn next_message_id(&mut self) -> u64 {
        self.last_message_id = self.ids.next(self.last_message_id, self.now_ms());
        self.last_message_id
    }

    /// Unix milliseconds now, or when the operation being applied was made.
    fn now_ms(&self) -> u64 {
        clock::OpClock::current(|c| c.map_or_else(now_ms, clock::OpClock::ms))
    }

    /// [`State::now_ms`] on the monotonic clock.
    fn instant(&self) -> Instant {
        clock::OpClock::current(|c| c.map_or_else(Instant::now, clock::OpClock::instant))
    }

    /// A random number: the operation's own when it came from the cluster's log.
    fn random(&self) -> u64 {
        clock::OpClock::current(|c| c.map_or_else(rand::random, clock::OpClock::random))
    }

    /// Removes `conn` from a channel, deleting the channel when it empties.
    fn leave(&mut self, conn: ConnId, folded: &str) {
        if let Some(ch) = self.channels.get_mut(folded) {
            ch.members.remove(&conn);
            if ch.members.is_empty() {
                self.channels.remove(folded);
            }
        }
        if let Some(c) = self.clients.get_mut(&conn) {
            c.channels.remove(folded);
        }
    }
}

impl Hub {
    pub(crate) fn new(settings: HubSettings, cloaker: Cloaker) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            state: Mutex::new(State::default()),
            settings,
            cloaker,
            me: me.clone(),
            timers: std::sync::OnceLock::new(),
        })
    }

    /// The settings applying an operation reads, by name: the nodes of a cluster apply the
    /// same log, so they must agree on these (a node whose history on join, text limit or
    /// operators differ would come to another state). The cloak key is given by a hash of it.
    /// (Settings a node uses for its own connections only — timers it keeps, what it answers
    /// locally, admission — may differ.)
    pub(crate) fn agreement(&self) -> Vec<(&'static str, String)> {
        use sha2::Digest;
        let s = &self.settings;
        let key = sha2::Sha256::digest(self.cloaker.key());
        vec![
            ("max_text_bytes", s.limits.max_text_bytes.to_string()),
            ("max_channels", s.max_channels.to_string()),
            ("history_on_join", s.history_on_join.to_string()),
            ("opers", {
                let mut opers = s.opers.clone();
                opers.sort();
                opers.join(",")
            }),
            ("cloak_key", key.iter().take(8).map(|b| format!("{b:02x}")).collect()),
        ]
    }

    /// Sends the core's timers, when they run out, to `sink` instead of applying them.
    pub(crate) fn send_timers_to(&self, sink: TimerSink) {
        let _ = self.timers.set(sink);
    }

    /// A timer of the core's ran out: applied at once on a single node; in a cluster sent to
    /// the log, for every node to apply.
    fn timer_ran_out(&self, timer: Timer) {
        match self.timers.get() {
            Some(sink) => sink(timer),
            None => self.apply_timer(timer),
        }
    }

    /// Applies a timer that ran out.
    pub(crate) fn apply_timer(&self, timer: Timer) {
        match timer {
            Timer::EnforceNick { conn, nick } => self.enforce_registered_nick(conn, &nick),
            Timer::EndHeld { attached, reason } => {
                let mut st = self.lock();
                if st.clients.get(&attached.conn).is_some_and(|c| c.attachment == attached.attachment) {
                    remove_client(&mut st, attached.conn, reason);
                }
            }
        }
    }

    /// Whether `conn`'s connection is on this node (always, on a single node).
    fn is_here(&self, conn: ConnId) -> bool {
        self.lock().clients.get(&conn).is_some_and(|c| !c.outbox.is_elsewhere())
    }

    /// The nodes (numbers) that sessions known here are on, this one's excepted.
    pub(crate) fn other_nodes(&self) -> HashSet<u64> {
        let st = self.lock();
        st.clients.values().filter(|c| c.outbox.is_elsewhere()).map(|c| c.home).collect()
    }

    /// A node left the cluster: its users quit, with `reason`. When it is this one (the others
    /// gave up on it while it could not reach them), its connections are closed too: their
    /// users log in again as new sessions.
    pub(crate) fn drop_node(&self, node: u64, reason: &str) -> usize {
        let mut st = self.lock();
        let gone: Vec<ConnId> =
            st.clients.iter().filter(|(_, c)| c.home == node).map(|(&conn, _)| conn).collect();
        for &conn in &gone {
            if let Some(c) = st.clients.get(&conn) {
                c.outbox.close(Close::error(ErrorCode::Internal));
            }
            remove_client(&mut st, conn, Some(reason.to_owned()));
        }
        gone.len()
    }

    /// Starts the grace timer of nick protection for `conn` on the registered nick `folded`.
    /// The node the session is on keeps the time.
    fn protect(&self, conn: ConnId, folded: Option<String>) {
        let Some(nick) = folded else { return };
        if !self.is_here(conn) {
            return;
        }
        let hub = self.me.clone();
        let grace = self.settings.nick_grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if let Some(hub) = hub.upgrade() {
                hub.timer_ran_out(Timer::EnforceNick { conn, nick });
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters more than refusing service forever, so keep going with the inner value.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session's number, guest key and resume secret, made on this node.
    pub(crate) fn fresh_session(&self) -> Fresh {
        let mut st = self.lock();
        st.next_conn += 1;
        let (resume_secret, resume_key) = resume::new_secret();
        Fresh {
            conn: st.next_conn,
            guest_key: format!("guest:{:016x}", rand::random::<u64>()),
            resume_key,
            resume_secret,
        }
    }

    /// Makes this hub one node of a cluster: its sessions are numbered from `node << 40`, and
    /// its message ids are `slot` modulo `slots`.
    pub(crate) fn join_cluster(&self, node: u64, slot: u64, slots: u64) {
        let mut st = self.lock();
        st.next_conn = st.next_conn.max(node << 40);
        st.ids = clock::IdSpace { step: slots, slot };
        st.node = node;
    }

    /// Tells `tap` of what happens from now on (the app's webhooks listen there).
    pub(crate) fn attach_tap(&self, tap: Tap) {
        self.lock().tap = Some(tap);
    }

    /// Makes every message id from now on larger than `highest`, the largest one stored.
    pub(crate) fn resume_message_ids(&self, highest: u64) {
        let mut st = self.lock();
        st.last_message_id = st.last_message_id.max(highest);
    }

    /// Reserves `account`'s nick for it alone (token users).
    pub(crate) fn reserve_nick(&self, account: &str) {
        self.lock().reserved.insert(account, account.to_owned());
    }

    /// Logs a user in. A nick (or a look-alike of one) that an app user owns is theirs alone.
    /// A token user whose nick is held by an older session of the same account takes it over
    /// (the old session is closed); held by anyone else, the app user still takes it — the
    /// app is authoritative — and the holder is renamed to a guest nick. Anyone else on a
    /// taken nick gets `nick_in_use`.
    pub(crate) fn connect(&self, identity: Identity, outbox: Outbox, fresh: Fresh) -> Result<Attached> {
        let mut st = self.lock();
        validate_nick(&identity.nick).map_err(|e| match e.code {
            ErrorCode::NickReserved => e.with_nicks(st.free_nicks_like(&identity.nick)),
            _ => e,
        })?;
        // A server ban refuses the login before it changes anything (an older session of the
        // same account stays).
        let cloak = self.cloaker.cloak(identity.ip);
        if let Some(kline) = st.kline_for(&identity, &cloak) {
            return Err(opers::banned_error(kline));
        }
        let app_user = match &identity.account {
            Some(Account::App(name)) => Some(fold(name)),
            _ => None,
        };
        let reserved_for_others =
            st.reserved.find_all(&identity.nick).iter().any(|(owner, _)| app_user.as_deref() != Some(*owner));
        if reserved_for_others || names::is_service_name(&identity.nick) {
            let error =
                err(ErrorCode::NickReserved, format!("the nick {} belongs to an account", identity.nick));
            return Err(error.with_nicks(st.free_nicks_like(&identity.nick)));
        }
        // Everyone on the nick or a look-alike of it: an older session of the same account is
        // replaced, anyone but another app user is moved off for an app user; otherwise the
        // nick is taken. All are checked before anything changes.
        let mut replaced = Vec::new();
        let mut moved = Vec::new();
        for (_, &holder) in st.nicks.find_all(&identity.nick) {
            let account = st.clients.get(&holder).and_then(|c| c.account.as_ref());
            if identity.account.is_some()
                && account.map(Account::key) == identity.account.as_ref().map(Account::key)
            {
                replaced.push(holder);
            } else if app_user.is_some() && !matches!(account, Some(Account::App(_))) {
                moved.push(holder);
            } else {
                return Err(st.nick_in_use(&identity.nick));
            }
        }
        for holder in replaced {
            let old = st.clients.get(&holder).map(|c| c.outbox.clone());
            remove_client(&mut st, holder, Some("logged in from elsewhere".into()));
            if let Some(old) = old {
                old.close(Close::new(CloseReason::SessionReplaced));
            }
        }
        for holder in moved {
            st.evict(
                holder,
                &format!("the nick {} belongs to an app user who just logged in", identity.nick),
            );
        }
        let Fresh { conn, guest_key, resume_key: resume, resume_secret: secret } = fresh;
        st.resumes.insert(resume, conn);
        st.nicks.insert(&identity.nick, conn);
        let (signon, last_active) = (st.now_ms(), st.instant());
        st.clients.insert(
            conn,
            Client {
                nick: identity.nick,
                account: identity.account,
                guest_key,
                ip: identity.ip,
                cloak,
                outbox,
                channels: HashSet::new(),
                away: None,
                signon,
                last_active,
                resume,
                home: conn >> 40,
                attachment: 0,
                held: None,
                sent: VecDeque::new(),
                storing: HashSet::new(),
            },
        );
        let welcome = self.welcome(&st, conn, secret, false);
        st.to_one(conn, &welcome);
        st.tell_oper_status(conn, &self.settings.opers, false);
        st.tell_app(|| {
            let c = st.clients.get(&conn)?;
            Some(AppEvent::Connect { nick: c.nick.clone(), account: c.account.as_ref().map(Account::wire) })
        });
        let protect = st.check_registered_nick(conn, self.settings.nick_grace);
        drop(st);
        self.protect(conn, protect);
        Ok(Attached { conn, attachment: 0 })
    }

    /// The `welcome` of a session, with its new resume secret.
    fn welcome(&self, st: &State, conn: ConnId, resume: String, resumed: bool) -> ServerEvent {
        let c = &st.clients[&conn];
        // A resumed session says which channels it is still in (it may have been kicked while
        // away); a new one is in none.
        let mut channels: Vec<String> = if resumed {
            c.channels.iter().filter_map(|f| st.channels.get(f)).map(|ch| ch.name.clone()).collect()
        } else {
            Vec::new()
        };
        channels.sort_by_key(|name| fold(name));
        ServerEvent::Welcome {
            nick: c.nick.clone(),
            account: c.account.as_ref().map(Account::wire),
            host: c.cloak.clone(),
            server: "chattr".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            limits: self.settings.limits.clone(),
            resume: Some(resume),
            resumed,
            channels,
            default_channels: self.settings.default_channels.clone(),
        }
    }

    /// Closes every connection (server shutdown).
    pub(crate) fn close_all(&self, close: Close) {
        let st = self.lock();
        for c in st.clients.values() {
            c.outbox.close(close.clone());
        }
    }

    /// Ends the sessions of the app user `user` after the app revoked its tokens: each gets
    /// the error and a close frame. Answers how many sessions were closed.
    pub(crate) fn revoke_app_user(&self, user: &str) -> usize {
        let key = Account::App(user.to_owned()).key();
        let mut st = self.lock();
        let revoked = ProtocolError::new(ErrorCode::TokenRevoked, "your login was revoked by the app");
        let sessions: Vec<ConnId> = st
            .clients
            .iter()
            .filter(|(_, c)| c.account.as_ref().map(Account::key).as_ref() == Some(&key))
            .map(|(&conn, _)| conn)
            .collect();
        for &conn in &sessions {
            st.to_one(conn, ServerEvent::from(revoked.clone()));
            st.end_session(conn, Close::error(ErrorCode::TokenRevoked), "login revoked");
        }
        sessions.len()
    }

    /// How many users are online.
    pub(crate) fn online(&self) -> usize {
        self.lock().clients.len()
    }

    /// What the hub holds and has done, for `/metrics`.
    pub(crate) fn figures(&self) -> HubFigures {
        let st = self.lock();
        HubFigures {
            online: st.sessions_here(),
            held: st.held_count(),
            channels: st.channels.len(),
            messages: st.messages_sent_here,
            events_queued: st.events_queued.get(),
        }
    }

    /// Checks and numbers a message (or a `/me` action) to a channel or a nick. Nothing is
    /// delivered yet: the message is stored first, then [`Hub::deliver`]ed.
    /// A `txn` the session already stored is not sent again: its echo is repeated instead.
    pub(crate) fn prepare_message(
        &self,
        conn: ConnId,
        target: &str,
        text: &str,
        action: bool,
        txn: Option<&str>,
    ) -> Result<Prepared> {
        validate_text("message", text, self.settings.limits.max_text_bytes, true)?;
        let mut st = self.lock();
        let from = st.client(conn)?;
        if let Some(echo) = txn.and_then(|t| from.sent.iter().find(|m| m.txn.as_deref() == Some(t))) {
            st.to_one(conn, ServerEvent::Message(echo.clone()));
            return Ok(Prepared::Repeat);
        }
        // Sent again while the first is being stored: that one's echo will answer both.
        if txn.is_some_and(|t| from.storing.contains(t)) {
            return Ok(Prepared::Repeat);
        }
        let from_nick = from.nick.clone();
        let (conversation, target, to) = if is_channel(target) {
            let ch = st.joined_channel(conn, target)?;
            // Masks are built only when there are bans to match: this is the hottest path.
            if !ch.bans.is_empty() && ch.is_banned(&from.masks()) {
                return Err(err(ErrorCode::Banned, format!("you are banned from {}", ch.name)));
            }
            if !ch.may_speak(conn) {
                return Err(err(
                    ErrorCode::CannotSend,
                    format!("{} is moderated and you have no voice", ch.name),
                ));
            }
            (Conversation::channel(&fold(&ch.name)), ch.name.clone(), None)
        } else {
            let to = st.conn_by_nick(target)?;
            let recipient = st.client(to)?;
            (Conversation::private(&from.party(), &recipient.party()), recipient.nick.clone(), Some(to))
        };
        let message = ChatMessage {
            id: st.next_message_id(),
            ts: st.now_ms(),
            from: from_nick,
            target,
            text: text.to_owned(),
            action,
            bot: false,
            txn: None,
        };
        let now = st.instant();
        if let Some(c) = st.clients.get_mut(&conn) {
            c.last_active = now;
            if let Some(t) = txn {
                c.storing.insert(t.to_owned());
            }
        }
        Ok(Prepared::New(PreparedMessage {
            stored: StoredMessage { conversation, message },
            from: Some(conn),
            to,
            txn: txn.map(str::to_owned),
        }))
    }

    /// A message an app posts as its bot `bot`: to a channel (whoever is in it now, and its
    /// history, even when nobody is) or to someone online. A bot's name is no user's: it is
    /// refused while it is (or looks like) an online nick, an app user's, a Potato account's
    /// or a service's, and once used it is kept from users until the server restarts.
    pub(crate) fn prepare_bot_message(&self, bot: &str, target: &str, text: &str) -> Result<PreparedMessage> {
        validate_text("message", text, self.settings.limits.max_text_bytes, true)?;
        // The server's own name (the app posting "as the system") is nobody's to take.
        let system = bot == APP_NAME;
        if !system {
            validate_nick(bot)?;
        }
        let mut st = self.lock();
        let key = format!("bot:{}", fold(bot));
        let taken = |why: &str| {
            err(ErrorCode::NickReserved, format!("{bot} is {why}; a bot needs a name of its own"))
        };
        if !system && (names::is_service_name(bot) || !st.registered.find_all(bot).is_empty()) {
            return Err(taken("a registered nick"));
        }
        if !system && st.reserved.find_all(bot).iter().any(|(_, owner)| **owner != key) {
            return Err(taken("an app user's name"));
        }
        if !system && !st.nicks.find_all(bot).is_empty() {
            return Err(err(ErrorCode::NickInUse, format!("{bot} is the nick of someone online")));
        }
        let (conversation, target, to) = if is_channel(target) {
            validate_channel(target)?;
            let folded = fold(target);
            let name = st.channels.get(&folded).map_or_else(|| target.to_owned(), |ch| ch.name.clone());
            (Conversation::channel(&folded), name, None)
        } else {
            let to = st.conn_by_nick(target)?;
            let recipient = st.client(to)?;
            (Conversation::private(&key, &recipient.party()), recipient.nick.clone(), Some(to))
        };
        // On a single node the name is kept from now on; in a cluster, as its message is
        // delivered, when the log has put it in order with the logins of every node.
        if !system && st.node == 0 {
            st.reserved.insert(bot, key);
        }
        let message = ChatMessage {
            id: st.next_message_id(),
            ts: st.now_ms(),
            from: bot.to_owned(),
            target,
            text: text.to_owned(),
            action: false,
            bot: true,
            txn: None,
        };
        Ok(PreparedMessage { stored: StoredMessage { conversation, message }, from: None, to, txn: None })
    }

    /// Delivers stored messages, in order, to whoever is in the conversation now; the sender
    /// always gets its echo, with its transaction id.
    pub(crate) fn deliver(&self, batch: &[PreparedMessage]) {
        let mut st = self.lock();
        st.messages_delivered += batch.len() as u64;
        if clock::OpClock::current(|c| c.is_none_or(clock::OpClock::here)) {
            st.messages_sent_here += batch.len() as u64;
        }
        let now = st.now_ms();
        st.rate.add(now / 1000, batch.len() as u64);
        let cap = self.settings.history_on_join;
        for m in batch {
            st.tell_app(|| {
                Some(AppEvent::Message { message: m.stored.message.clone(), private: m.to.is_some() })
            });
            let sender = &m.stored.message.from;
            if m.stored.message.bot && sender != APP_NAME {
                // A bot's name is kept from users (its node reserved it already; in a cluster
                // the others do it here).
                st.reserved.insert(sender, format!("bot:{}", fold(sender)));
            }
            let event = ServerEvent::Message(m.stored.message.clone());
            match m.to {
                Some(to) if Some(to) != m.from => st.to_one(to, &event),
                Some(_) => {}
                None => {
                    let folded = m.stored.conversation.as_str().to_owned();
                    // A message the channel has already was stored before someone joined the
                    // empty channel and loaded it with its history: everyone in it has it.
                    let fresh =
                        st.channels.get_mut(&folded).is_some_and(|ch| ch.remember(&m.stored.message, cap));
                    if fresh {
                        let ch = &st.channels[&folded];
                        st.deliver(ch.members.keys().filter(|&&c| Some(c) != m.from), &event);
                    }
                }
            }
            let Some(from) = m.from else { continue };
            let echo = ChatMessage { txn: m.txn.clone(), ..m.stored.message.clone() };
            st.to_one(from, ServerEvent::Message(echo.clone()));
            // (A transaction's echo is remembered where the session is: its node alone answers
            // a resent one.)
            if let Some(c) =
                st.clients.get_mut(&from).filter(|c| echo.txn.is_some() && !c.outbox.is_elsewhere())
            {
                c.storing.remove(echo.txn.as_deref().unwrap_or_default());
                if c.sent.len() == REMEMBERED_TXNS {
                    c.sent.pop_front();
                }
                c.sent.push_back(echo);
            }
        }
    }

    /// A message with transaction id `txn` could not be stored: a resend is a new attempt.
    pub(crate) fn not_stored(&self, conn: ConnId, txn: &str) {
        if let Some(c) = self.lock().clients.get_mut(&conn) {
            c.storing.remove(txn);
        }
    }

    /// The stored conversation `conn` may read as `target`: a channel it is in, or its private
    /// conversation with a nick (online, or registered while offline).
    pub(crate) fn history_conversation(&self, conn: ConnId, target: &str) -> Result<(String, Conversation)> {
        let st = self.lock();
        let me = st.client(conn)?;
        if is_channel(target) {
            let ch = st.joined_channel(conn, target)?;
            return Ok((ch.name.clone(), Conversation::channel(&fold(&ch.name))));
        }
        let other = match st.nicks.get(target).and_then(|c| st.clients.get(c)) {
            Some(c) => c.party(),
            None => match (st.registered.get(target), st.reserved.get(target)) {
                (Some(account), _) => account.key(),
                (None, Some(user)) => Account::App(user.clone()).key(),
                (None, None) => return Err(err(ErrorCode::NoSuchNick, format!("{target} is not online"))),
            },
        };
        Ok((target.to_owned(), Conversation::private(&me.party(), &other)))
    }

    /// Applies a slash command. `Quit`, messages and the services are the session's business
    /// and are refused here. `history` is the recent history of a channel that [`Effect::NeedHistory`]
    /// asked for.
    pub(crate) fn apply(
        &self,
        conn: ConnId,
        command: Command,
        history: Option<Vec<ChatMessage>>,
    ) -> Result<Effect> {
        let mut st = self.lock();
        st.client(conn)?;
        let now = st.instant();
        if let Some(c) = st.clients.get_mut(&conn) {
            c.last_active = now;
        }
        let nick_change = matches!(command, Command::Nick { .. });
        let effect = self.apply_locked(&mut st, conn, command, history);
        let protect = match &effect {
            Ok(_) if nick_change => st.check_registered_nick(conn, self.settings.nick_grace),
            _ => None,
        };
        drop(st);
        self.protect(conn, protect);
        effect
    }
}

fn remove_client(st: &mut State, conn: ConnId, reason: Option<String>) {
    remove_client_telling(st, conn, reason, true);
}

/// Removes a client; `tell` says whether those who share a channel with it see it quit.
fn remove_client_telling(st: &mut State, conn: ConnId, reason: Option<String>, tell: bool) {
    let Some(client) = st.clients.get(&conn) else {
        return;
    };
    let resume = client.resume;
    st.resumes.remove(&resume);
    let channels: Vec<String> = client.channels.iter().cloned().collect();
    let nick = st.nick_of(conn);
    let account = client.account.as_ref().map(Account::wire);
    st.tell_app(|| Some(AppEvent::Disconnect { nick: nick.clone(), account, reason: reason.clone() }));
    if tell {
        let mut audience = st.audience(conn);
        audience.remove(&conn);
        st.deliver(&audience, &ServerEvent::Quit { nick: nick.clone(), reason });
    }
    for folded in channels {
        st.leave(conn, &folded);
    }
    st.nicks.remove(&nick);
    st.clients.remove(&conn);
}

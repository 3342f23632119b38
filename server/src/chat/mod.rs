//! The chat core: who is online, which channels exist, and the rules of every command. It
//! knows no transport: sessions hand it parsed commands, and it answers by pushing serialized
//! events into the recipients' [`Outbox`]es. All state sits behind one `std` mutex that is
//! never held across an `.await`; each operation is a short, synchronous critical section.

mod account;
pub mod channel;
pub mod names;
pub mod outbox;
mod resume;
mod services;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use app::protocol::names::{fold, is_channel, validate_channel, validate_nick};
use app::protocol::text::{validate_text, MAX_REASON_BYTES, MAX_TOPIC_BYTES};
use app::protocol::{
    ChannelSummary, ChatMessage, CloseReason, Command, ErrorCode, Limits, ProtocolError, ServerEvent,
};

use crate::auth::Cloaker;
use crate::store::{ChannelRecord, Conversation, StoredMessage};
pub use account::{display_key, Account, PotatoAccount};
use channel::{Ban, Channel, Invitee, Roles, Topic};
use names::NameIndex;
pub use outbox::{Close, Event, Outbox, OutboxQueue, SendBudget};
pub use resume::{Attached, Left, Resumed};
pub use services::{AccountInfo, ChannelInfo, OpListEdit, RegistrationClaim};

/// Identifies one session for its lifetime, which a resumed session carries over from one
/// connection to the next.
pub type ConnId = u64;

type Result<T> = std::result::Result<T, ProtocolError>;

/// Most bans one channel keeps.
pub const MAX_BANS: usize = 100;
/// Longest ban mask, in bytes.
const MAX_MASK_BYTES: usize = 100;
/// Longest channel key, in characters.
const MAX_KEY_CHARS: usize = 32;

/// Who is logging in.
#[derive(Debug, Clone)]
pub struct Identity {
    pub nick: String,
    /// Set for users logged in by their app with a token; their nick is reserved for them.
    pub account: Option<Account>,
    pub ip: IpAddr,
}

/// Settings the core needs.
#[derive(Debug, Clone)]
pub struct HubSettings {
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
}

/// What the caller must do after [`Hub::apply`] succeeded.
#[derive(Debug)]
pub enum Effect {
    Done,
    /// The channel (folded name) must be loaded first: fetch its recent history from the store
    /// and apply the command again with it.
    NeedHistory(String),
    /// A registered channel's kept state changed: store this record under this key.
    Save(String, Box<ChannelRecord>),
}

/// A message checked and numbered, waiting to be stored; delivered once it is.
#[derive(Debug, Clone)]
pub struct PreparedMessage {
    pub stored: StoredMessage,
    from: ConnId,
    /// For a private message, the recipient.
    to: Option<ConnId>,
    /// The sender's transaction id, echoed back to it alone.
    txn: Option<String>,
}

/// What [`Hub::prepare_message`] made of a message.
#[derive(Debug)]
pub enum Prepared {
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
    next_conn: ConnId,
    last_message_id: u64,
}

/// The chat core. Cheap to share behind an `Arc`.
pub struct Hub {
    state: Mutex<State>,
    settings: HubSettings,
    cloaker: Cloaker,
    /// This hub, for the timers it starts.
    me: Weak<Hub>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn err(code: ErrorCode, message: impl Into<String>) -> ProtocolError {
    ProtocolError::new(code, message)
}

impl State {
    fn client(&self, conn: ConnId) -> Result<&Client> {
        self.clients.get(&conn).ok_or_else(|| err(ErrorCode::NotAuthenticated, "you are not logged in"))
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

    /// A member of `channel` by nick.
    fn member_by_nick(&self, channel: &Channel, nick: &str) -> Result<ConnId> {
        let target = self.conn_by_nick(nick)?;
        if !channel.members.contains_key(&target) {
            return Err(err(ErrorCode::UserNotOnChannel, format!("{nick} is not in {}", channel.name)));
        }
        Ok(target)
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
        self.to_one(conn, &ServerEvent::Notice { from: app::protocol::command::POTATO.into(), text });
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
        for conn in recipients {
            if let Some(c) = self.clients.get(conn) {
                c.outbox.push(event.clone());
            }
        }
    }

    fn to_channel(&self, channel: &Channel, event: impl Into<Event>) {
        self.deliver(channel.members.keys(), event);
    }

    fn to_one(&self, conn: ConnId, event: impl Into<Event>) {
        self.deliver([&conn], event);
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
        // Ids grow with time so they stay unique across restarts, and stay below 2^53 so
        // JavaScript reads them exactly.
        self.last_message_id = (self.last_message_id + 1).max(now_ms() << 10);
        self.last_message_id
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

    /// Applies a role change to a member and tells the channel.
    fn set_role(&mut self, conn: ConnId, channel: &str, nick: &str, mode: char, on: bool) -> Result<()> {
        if let Some(event) = self.change_role(conn, channel, nick, mode, on)? {
            self.to_channel(self.channel(channel)?, &event);
        }
        Ok(())
    }

    /// Applies a role change to a member; returns the event to tell the channel, if anything
    /// changed.
    fn change_role(
        &mut self,
        conn: ConnId,
        channel: &str,
        nick: &str,
        mode: char,
        on: bool,
    ) -> Result<Option<ServerEvent>> {
        let ch = self.opped_channel(conn, channel)?;
        let target = self.member_by_nick(ch, nick)?;
        let by = self.nick_of(conn);
        let target_nick = self.nick_of(target);
        let ch = self.channel_mut(channel)?;
        let roles = ch.members.entry(target).or_default();
        let changed = match mode {
            'o' => std::mem::replace(&mut roles.op, on) != on,
            _ => std::mem::replace(&mut roles.voice, on) != on,
        };
        let modes = format!("{}{mode}", if on { '+' } else { '-' });
        Ok(changed.then(|| ServerEvent::ModeChanged {
            channel: ch.name.clone(),
            by,
            modes,
            args: vec![target_nick],
        }))
    }

    /// Turns `/ban` or `/unban`'s argument into a mask: masks are taken as they are, an online
    /// nick becomes `*!*@<their cloak>`, an offline one `nick!*@*`.
    fn mask_for(&self, arg: &str) -> Result<String> {
        if arg.len() > MAX_MASK_BYTES || arg.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(err(
                ErrorCode::BadArguments,
                "a ban mask is at most 100 bytes with no spaces or control characters",
            ));
        }
        if arg.contains(['!', '@', '*', '?']) {
            return Ok(if arg.contains('!') || arg.contains('@') {
                arg.to_owned()
            } else {
                format!("{arg}!*@*")
            });
        }
        Ok(match self.nicks.get(arg).and_then(|c| self.clients.get(c)) {
            Some(c) => format!("*!*@{}", c.cloak),
            None => format!("{arg}!*@*"),
        })
    }

    /// Adds a ban on `arg` (a mask, or the nick of someone online, who the ban then names);
    /// answers the mask added and that nick, or `None` when the channel had the mask already.
    fn add_ban(
        &mut self,
        conn: ConnId,
        channel: &str,
        arg: &str,
    ) -> Result<Option<(String, Option<String>)>> {
        self.opped_channel(conn, channel)?;
        let nick = self.online_nick(arg);
        let mask = self.mask_for(arg)?;
        let by = self.nick_of(conn);
        let ch = self.channel_mut(channel)?;
        if ch.bans.iter().any(|b| fold(&b.mask) == fold(&mask)) {
            return Ok(None);
        }
        if ch.bans.len() >= MAX_BANS {
            return Err(err(ErrorCode::BanListFull, format!("{} already has {MAX_BANS} bans", ch.name)));
        }
        ch.bans.push(Ban::set(&mask, nick.clone(), by, now_ms()));
        Ok(Some((mask, nick)))
    }

    /// Sends `conn` the bans of `channel`.
    fn ban_list(&self, conn: ConnId, channel: &str) -> Result<()> {
        let ch = self.visible_channel(conn, channel)?;
        let bans = ch.bans.iter().map(Ban::entry).collect();
        self.to_one(conn, &ServerEvent::BanList { channel: ch.name.clone(), bans });
        Ok(())
    }

    fn remove_bans(&mut self, conn: ConnId, channel: &str, arg: &str) -> Result<Vec<String>> {
        self.opped_channel(conn, channel)?;
        let mask = self.mask_for(arg)?;
        // A nick that is online lifts every ban that covers them.
        let user_masks = self.nicks.get(arg).and_then(|c| self.clients.get(c)).map(Client::masks);
        let ch = self.channel_mut(channel)?;
        let mut removed = Vec::new();
        ch.bans.retain(|b| {
            let hit = fold(&b.mask) == fold(&mask) || user_masks.as_ref().is_some_and(|m| b.matches_any(m));
            if hit {
                removed.push(b.mask.clone());
            }
            !hit
        });
        if removed.is_empty() {
            return Err(err(ErrorCode::NoSuchBan, format!("no ban in {} matches {arg}", ch.name)));
        }
        Ok(removed)
    }
}

impl Hub {
    pub fn new(settings: HubSettings, cloaker: Cloaker) -> Arc<Self> {
        Arc::new_cyclic(|me| Self { state: Mutex::new(State::default()), settings, cloaker, me: me.clone() })
    }

    /// Starts the grace timer of nick protection for `conn` on the registered nick `folded`.
    fn protect(&self, conn: ConnId, folded: Option<String>) {
        let Some(folded) = folded else { return };
        let hub = self.me.clone();
        let grace = self.settings.nick_grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if let Some(hub) = hub.upgrade() {
                hub.enforce_registered_nick(conn, &folded);
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters more than refusing service forever, so keep going with the inner value.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn settings(&self) -> &HubSettings {
        &self.settings
    }

    /// Makes every message id from now on larger than `highest`, the largest one stored.
    pub fn resume_message_ids(&self, highest: u64) {
        let mut st = self.lock();
        st.last_message_id = st.last_message_id.max(highest);
    }

    /// Reserves `account`'s nick for it alone (token users).
    pub fn reserve_nick(&self, account: &str) {
        self.lock().reserved.insert(account, account.to_owned());
    }

    /// Logs a user in. A nick (or a look-alike of one) that an app user owns is theirs alone.
    /// A token user whose nick is held by an older session of the same account takes it over
    /// (the old session is closed); held by anyone else, the app user still takes it — the
    /// app is authoritative — and the holder is renamed to a guest nick. Anyone else on a
    /// taken nick gets `nick_in_use`.
    pub fn connect(&self, identity: Identity, outbox: Outbox) -> Result<Attached> {
        let mut st = self.lock();
        validate_nick(&identity.nick).map_err(|e| match e.code {
            ErrorCode::NickReserved => e.with_nicks(st.free_nicks_like(&identity.nick)),
            _ => e,
        })?;
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
        st.next_conn += 1;
        let conn = st.next_conn;
        let cloak = self.cloaker.cloak(identity.ip);
        let (secret, resume) = resume::new_secret();
        st.resumes.insert(resume, conn);
        st.nicks.insert(&identity.nick, conn);
        st.clients.insert(
            conn,
            Client {
                nick: identity.nick,
                account: identity.account,
                guest_key: format!("guest:{:016x}", rand::random::<u64>()),
                ip: identity.ip,
                cloak,
                outbox,
                channels: HashSet::new(),
                away: None,
                signon: now_ms(),
                last_active: Instant::now(),
                resume,
                attachment: 0,
                held: None,
                sent: VecDeque::new(),
                storing: HashSet::new(),
            },
        );
        let welcome = self.welcome(&st, conn, secret, false);
        st.to_one(conn, &welcome);
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
    pub fn close_all(&self, close: Close) {
        let st = self.lock();
        for c in st.clients.values() {
            c.outbox.close(close.clone());
        }
    }

    /// Ends the sessions of the app user `user` after the app revoked its tokens: each gets
    /// the error and a close frame. Answers how many sessions were closed.
    pub fn revoke_app_user(&self, user: &str) -> usize {
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
    pub fn online(&self) -> usize {
        self.lock().clients.len()
    }

    /// Checks and numbers a message (or a `/me` action) to a channel or a nick. Nothing is
    /// delivered yet: the message is stored first, then [`Hub::deliver`]ed.
    /// A `txn` the session already stored is not sent again: its echo is repeated instead.
    pub fn prepare_message(
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
            ts: now_ms(),
            from: from_nick,
            target,
            text: text.to_owned(),
            action,
            txn: None,
        };
        if let Some(c) = st.clients.get_mut(&conn) {
            c.last_active = Instant::now();
            if let Some(t) = txn {
                c.storing.insert(t.to_owned());
            }
        }
        Ok(Prepared::New(PreparedMessage {
            stored: StoredMessage { conversation, message },
            from: conn,
            to,
            txn: txn.map(str::to_owned),
        }))
    }

    /// Delivers stored messages, in order, to whoever is in the conversation now; the sender
    /// always gets its echo, with its transaction id.
    pub fn deliver(&self, batch: &[PreparedMessage]) {
        let mut st = self.lock();
        let cap = self.settings.history_on_join;
        for m in batch {
            let event = ServerEvent::Message(m.stored.message.clone());
            match m.to {
                Some(to) if to != m.from => st.to_one(to, &event),
                Some(_) => {}
                None => {
                    let folded = m.stored.conversation.as_str().to_owned();
                    if let Some(ch) = st.channels.get_mut(&folded) {
                        ch.remember(&m.stored.message, cap);
                        let ch = &st.channels[&folded];
                        st.deliver(ch.members.keys().filter(|&&c| c != m.from), &event);
                    }
                }
            }
            let echo = ChatMessage { txn: m.txn.clone(), ..m.stored.message.clone() };
            st.to_one(m.from, ServerEvent::Message(echo.clone()));
            if let Some(c) = st.clients.get_mut(&m.from).filter(|_| echo.txn.is_some()) {
                c.storing.remove(echo.txn.as_deref().unwrap_or_default());
                if c.sent.len() == REMEMBERED_TXNS {
                    c.sent.pop_front();
                }
                c.sent.push_back(echo);
            }
        }
    }

    /// A message with transaction id `txn` could not be stored: a resend is a new attempt.
    pub fn not_stored(&self, conn: ConnId, txn: &str) {
        if let Some(c) = self.lock().clients.get_mut(&conn) {
            c.storing.remove(txn);
        }
    }

    /// The stored conversation `conn` may read as `target`: a channel it is in, or its private
    /// conversation with a nick (online, or registered while offline).
    pub fn history_conversation(&self, conn: ConnId, target: &str) -> Result<(String, Conversation)> {
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
    pub fn apply(&self, conn: ConnId, command: Command, history: Option<Vec<ChatMessage>>) -> Result<Effect> {
        let mut st = self.lock();
        st.client(conn)?;
        if let Some(c) = st.clients.get_mut(&conn) {
            c.last_active = Instant::now();
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

    fn apply_locked(
        &self,
        st: &mut State,
        conn: ConnId,
        command: Command,
        history: Option<Vec<ChatMessage>>,
    ) -> Result<Effect> {
        let done = |r: Result<()>| r.map(|()| Effect::Done);
        match command {
            Command::Join { channel, key } => self.join(st, conn, &channel, key.as_deref(), history),
            Command::Part { channel, reason } => {
                check_reason(reason.as_deref())?;
                let ch = st.joined_channel(conn, &channel)?;
                let event = ServerEvent::Parted { channel: ch.name.clone(), nick: st.nick_of(conn), reason };
                st.to_channel(ch, &event);
                st.leave(conn, &fold(&channel));
                Ok(Effect::Done)
            }
            Command::Nick { nick } => done(change_nick(st, conn, &nick)),
            Command::Topic { channel, topic: None } => {
                let event = State::topic_event(st.visible_channel(conn, &channel)?);
                st.to_one(conn, &event);
                Ok(Effect::Done)
            }
            Command::Topic { channel, topic: Some(text) } => {
                let ch = st.joined_channel(conn, &channel)?;
                if ch.modes.topic_ops_only && !ch.is_op(conn) {
                    return Err(err(
                        ErrorCode::NotOp,
                        format!("only operators may change the topic of {}", ch.name),
                    ));
                }
                if !text.is_empty() {
                    validate_text("topic", &text, MAX_TOPIC_BYTES, false)?;
                }
                let set_by = st.nick_of(conn);
                let ch = st.channel_mut(&channel)?;
                ch.topic =
                    (!text.is_empty()).then(|| Topic { text, set_by: set_by.clone(), set_at: now_ms() });
                // Unlike the stored state, the event names who cleared a topic.
                let event = ServerEvent::Topic {
                    channel: ch.name.clone(),
                    topic: ch.topic.as_ref().map(|t| t.text.clone()),
                    set_by: Some(set_by),
                    set_at: ch.topic.as_ref().map(|t| t.set_at),
                };
                st.to_channel(st.channel(&channel)?, &event);
                Ok(st.save_reg(&channel))
            }
            Command::Kick { channel, nick, reason } => {
                check_reason(reason.as_deref())?;
                let ch = st.opped_channel(conn, &channel)?;
                let target = st.member_by_nick(ch, &nick)?;
                let event = ServerEvent::Kicked {
                    channel: ch.name.clone(),
                    nick: st.nick_of(target),
                    by: st.nick_of(conn),
                    reason,
                };
                st.to_channel(ch, &event);
                st.leave(target, &fold(&channel));
                Ok(Effect::Done)
            }
            Command::Ban { channel, mask } => {
                if let Some((mask, nick)) = st.add_ban(conn, &channel, &mask)? {
                    let ch = st.channel(&channel)?;
                    let by = st.nick_of(conn);
                    st.to_channel(ch, &ServerEvent::Banned { channel: ch.name.clone(), mask, by, nick });
                }
                Ok(st.save_reg(&channel))
            }
            Command::Unban { channel, mask } => {
                for mask in st.remove_bans(conn, &channel, &mask)? {
                    let ch = st.channel(&channel)?;
                    st.to_channel(
                        ch,
                        &ServerEvent::Unbanned { channel: ch.name.clone(), mask, by: st.nick_of(conn) },
                    );
                }
                Ok(st.save_reg(&channel))
            }
            Command::Op { channel, nick } => {
                st.set_role(conn, &channel, &nick, 'o', true).map(|()| Effect::Done)
            }
            Command::Deop { channel, nick } => {
                st.set_role(conn, &channel, &nick, 'o', false).map(|()| Effect::Done)
            }
            Command::Voice { channel, nick } => {
                st.set_role(conn, &channel, &nick, 'v', true).map(|()| Effect::Done)
            }
            Command::Devoice { channel, nick } => {
                st.set_role(conn, &channel, &nick, 'v', false).map(|()| Effect::Done)
            }
            Command::Bans { channel } => st.ban_list(conn, &channel).map(|()| Effect::Done),
            // `/mode #channel +b` with no mask lists the bans, as on IRC.
            Command::Mode { channel, modes: Some(modes), args }
                if args.is_empty() && modes.trim_start_matches('+') == "b" =>
            {
                st.ban_list(conn, &channel).map(|()| Effect::Done)
            }
            Command::Mode { channel, modes: None, .. } => {
                let event = st.members_event(st.visible_channel(conn, &channel)?);
                st.to_one(conn, &event);
                Ok(Effect::Done)
            }
            Command::Mode { channel, modes: Some(modes), args } => {
                apply_modes(st, conn, &channel, &modes, &args)?;
                Ok(st.save_reg(&channel))
            }
            Command::Invite { nick, channel } => {
                let ch = st.joined_channel(conn, &channel)?;
                if ch.modes.invite_only && !ch.is_op(conn) {
                    return Err(err(ErrorCode::NotOp, format!("only operators may invite to {}", ch.name)));
                }
                let target = st.conn_by_nick(&nick)?;
                if ch.members.contains_key(&target) {
                    return Err(err(
                        ErrorCode::AlreadyOnChannel,
                        format!("{nick} is already in {}", ch.name),
                    ));
                }
                let event = ServerEvent::Invited {
                    channel: ch.name.clone(),
                    nick: st.nick_of(target),
                    by: st.nick_of(conn),
                };
                let account = st.client(target)?.account.as_ref().map(Account::key);
                let invitees = std::iter::once(Invitee::Session(target)).chain(account.map(Invitee::Account));
                st.channel_mut(&channel)?.invite(invitees, Instant::now());
                st.deliver(&HashSet::from([conn, target]), &event);
                Ok(Effect::Done)
            }
            Command::Away { message } => {
                check_reason(message.as_deref())?;
                if let Some(c) = st.clients.get_mut(&conn) {
                    c.away = message.clone();
                }
                let event = ServerEvent::Away { nick: st.nick_of(conn), message };
                st.deliver(&st.audience(conn), &event);
                Ok(Effect::Done)
            }
            Command::Whois { nick } => {
                let target = st.conn_by_nick(&nick)?;
                let t = st.client(target)?;
                // The user sees their own address; others see the cloak, unless the server lets
                // operators of a channel the user is in see it too.
                let sees_real_host = target == conn
                    || (self.settings.ops_see_real_host
                        && t.channels
                            .iter()
                            .any(|name| st.channels.get(name).is_some_and(|ch| ch.is_op(conn))));
                // Secret and private channels show only to those who share them.
                let mut channels: Vec<String> = t
                    .channels
                    .iter()
                    .filter_map(|n| st.channels.get(n))
                    .filter(|ch| !ch.is_hidden() || ch.members.contains_key(&conn))
                    .map(|ch| ch.name.clone())
                    .collect();
                channels.sort();
                let event = ServerEvent::Whois {
                    nick: t.nick.clone(),
                    account: t.account.as_ref().map(Account::wire),
                    host: if sees_real_host { t.ip.to_string() } else { t.cloak.clone() },
                    channels,
                    away: t.away.clone(),
                    idle_secs: t.last_active.elapsed().as_secs(),
                    signon: t.signon,
                };
                st.to_one(conn, &event);
                Ok(Effect::Done)
            }
            Command::List => {
                // Secret channels are listed only to their members, private ones without a topic.
                let mut channels: Vec<ChannelSummary> = st
                    .channels
                    .values()
                    .filter(|ch| !ch.modes.secret || ch.members.contains_key(&conn))
                    .map(|ch| ChannelSummary {
                        channel: ch.name.clone(),
                        members: ch.members.len(),
                        topic: ch
                            .topic
                            .as_ref()
                            .filter(|_| !ch.is_hidden() || ch.members.contains_key(&conn))
                            .map(|t| t.text.clone()),
                    })
                    .collect();
                channels.sort_by(|a, b| b.members.cmp(&a.members).then_with(|| a.channel.cmp(&b.channel)));
                st.to_one(conn, &ServerEvent::List { channels });
                Ok(Effect::Done)
            }
            Command::Names { channel } => {
                let event = st.members_event(st.visible_channel(conn, &channel)?);
                st.to_one(conn, &event);
                Ok(Effect::Done)
            }
            Command::Quit { .. }
            | Command::Msg { .. }
            | Command::Me { .. }
            | Command::Potato { .. }
            | Command::Celery { .. } => {
                Err(err(ErrorCode::Internal, "this command is handled by the session"))
            }
        }
    }

    fn join(
        &self,
        st: &mut State,
        conn: ConnId,
        channel: &str,
        key: Option<&str>,
        history: Option<Vec<ChatMessage>>,
    ) -> Result<Effect> {
        validate_channel(channel)?;
        let folded = fold(channel);
        let client = st.client(conn)?;
        if client.channels.contains(&folded) {
            return Err(err(ErrorCode::AlreadyOnChannel, format!("you are already in {channel}")));
        }
        if client.channels.len() >= self.settings.max_channels {
            return Err(err(
                ErrorCode::TooManyChannels,
                format!("you are in {} channels already", client.channels.len()),
            ));
        }
        let masks = client.masks();
        let account_key = client.account.as_ref().map(Account::key);
        let creating = !st.channels.contains_key(&folded);
        // A channel nobody is in is loaded afresh: its recent history first, from the store.
        let Some(history) = history.filter(|_| creating).or_else(|| (!creating).then(Vec::new)) else {
            return Ok(Effect::NeedHistory(folded));
        };
        if creating {
            let mut ch = st.reg_of(&folded).map_or_else(|| Channel::new(channel), Channel::from_record);
            ch.recent = history.into_iter().collect();
            while ch.recent.len() > self.settings.history_on_join {
                ch.recent.pop_front();
            }
            st.channels.insert(folded.clone(), ch);
        }
        let refusal = st.channels.get(&folded).and_then(|ch| {
            let invited = ch.is_invited(conn, account_key.as_deref(), Instant::now());
            ch.refusal(&masks, invited, key)
        });
        if let Some(refusal) = refusal {
            if creating {
                st.channels.remove(&folded);
            }
            return Err(refusal);
        }
        // In a registered channel, ops come from its op list; elsewhere the first joiner is op.
        let op = match st.reg_of(&folded) {
            Some(reg) => account_key.as_ref().is_some_and(|k| reg.founder == *k || reg.ops.contains(k)),
            None => creating,
        };
        let Some(ch) = st.channels.get_mut(&folded) else {
            return Err(err(ErrorCode::Internal, "the channel vanished"));
        };
        ch.forget_invites(conn, account_key.as_deref());
        ch.members.insert(conn, Roles { op, voice: false });
        let mut cloak = String::new();
        if let Some(client) = st.clients.get_mut(&conn) {
            client.channels.insert(folded.clone());
            cloak.clone_from(&client.cloak);
        }
        let ch = st.channel(channel)?;
        let joined = ServerEvent::Joined { channel: ch.name.clone(), nick: st.nick_of(conn), host: cloak };
        st.to_channel(ch, &joined);
        for event in st.channel_state(ch, self.settings.history_on_join) {
            st.to_one(conn, &event);
        }
        Ok(Effect::Done)
    }
}

fn check_reason(reason: Option<&str>) -> Result<()> {
    match reason {
        Some(r) => validate_text("reason", r, MAX_REASON_BYTES, false),
        None => Ok(()),
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

fn change_nick(st: &mut State, conn: ConnId, nick: &str) -> Result<()> {
    validate_nick(nick)?;
    let client = st.client(conn)?;
    let old = client.nick.clone();
    if old == nick {
        return Ok(());
    }
    // Someone banned in a channel they are still in may not shed the ban with a new nick (a
    // ban by nick would no longer match), as IRC servers refuse it too.
    let masks = client.masks();
    if let Some(ch) =
        client.channels.iter().filter_map(|n| st.channels.get(n)).find(|ch| ch.is_banned(&masks))
    {
        return Err(err(
            ErrorCode::Banned,
            format!("you are banned in {}, so you cannot change nick", ch.name),
        ));
    }
    // Every nick the new spelling is or looks like counts, not only the first found (which
    // may be the caller's own when only the case changes).
    if st.nicks.find_all(nick).iter().any(|(_, &holder)| holder != conn) {
        return Err(st.nick_in_use(nick));
    }
    let not_mine = st
        .reserved
        .find_all(nick)
        .iter()
        .any(|(owner, _)| !matches!(&client.account, Some(Account::App(name)) if fold(name) == *owner));
    if not_mine || names::is_service_name(nick) {
        return Err(err(ErrorCode::NickReserved, format!("the nick {nick} belongs to an account")));
    }
    st.nicks.remove(&old);
    st.nicks.insert(nick, conn);
    if let Some(c) = st.clients.get_mut(&conn) {
        c.nick = nick.to_owned();
    }
    let event = ServerEvent::NickChanged { old, new: nick.to_owned() };
    st.deliver(&st.audience(conn), &event);
    Ok(())
}

/// One mode change as parsed from `/mode`.
enum ModeChange {
    Flag(char, bool),
    Key(Option<String>),
    Limit(Option<usize>),
    Role(char, bool, String),
    Ban(bool, String),
}

fn parse_modes(modes: &str, args: &[String]) -> Result<Vec<ModeChange>> {
    let mut changes = Vec::new();
    let mut args = args.iter();
    let mut on = true;
    let mut arg = |what: &str| {
        args.next()
            .cloned()
            .ok_or_else(|| err(ErrorCode::BadArguments, format!("mode {what} needs an argument")))
    };
    for c in modes.chars() {
        match c {
            '+' => on = true,
            '-' => on = false,
            'm' | 'i' | 't' | 's' | 'p' => changes.push(ModeChange::Flag(c, on)),
            'k' if on => {
                let key = arg("+k")?;
                if key.chars().count() > MAX_KEY_CHARS
                    || key.chars().any(|c| c.is_control() || c.is_whitespace() || c == ',')
                {
                    return Err(err(
                        ErrorCode::BadArguments,
                        "a key is at most 32 characters, without spaces or commas",
                    ));
                }
                changes.push(ModeChange::Key(Some(key)));
            }
            'k' => changes.push(ModeChange::Key(None)),
            'l' if on => {
                let limit = arg("+l")?;
                let limit = limit
                    .parse::<usize>()
                    .ok()
                    .filter(|&l| l > 0)
                    .ok_or_else(|| err(ErrorCode::BadArguments, "mode +l needs a positive number"))?;
                changes.push(ModeChange::Limit(Some(limit)));
            }
            'l' => changes.push(ModeChange::Limit(None)),
            'o' | 'v' => changes.push(ModeChange::Role(c, on, arg(&format!("{c}"))?)),
            'b' => changes.push(ModeChange::Ban(on, arg("b")?)),
            other => {
                return Err(err(
                    ErrorCode::BadArguments,
                    format!("unknown mode {other:?}; known: m i t s p k l o v b"),
                ))
            }
        }
    }
    if changes.is_empty() {
        return Err(err(ErrorCode::BadArguments, "no mode given"));
    }
    Ok(changes)
}

/// Applies a `/mode` change as a whole: every part is checked and applied to the channel, and
/// only when all of them succeed is the result kept and announced. A refused part leaves the
/// channel exactly as it was.
fn apply_modes(st: &mut State, conn: ConnId, channel: &str, modes: &str, args: &[String]) -> Result<()> {
    st.opped_channel(conn, channel)?;
    let changes = parse_modes(modes, args)?;
    let folded = fold(channel);
    let before = st.channels.get(&folded).cloned();
    match apply_mode_changes(st, conn, channel, changes) {
        Ok(events) => {
            let ch = st.channel(channel)?;
            for event in &events {
                st.to_channel(ch, event);
            }
            Ok(())
        }
        Err(e) => {
            if let Some(before) = before {
                st.channels.insert(folded, before);
            }
            Err(e)
        }
    }
}

/// Applies parsed mode changes in order, returning the events they make; on an error the
/// caller restores the channel.
fn apply_mode_changes(
    st: &mut State,
    conn: ConnId,
    channel: &str,
    changes: Vec<ModeChange>,
) -> Result<Vec<ServerEvent>> {
    let by = st.nick_of(conn);
    let mut events = Vec::new();
    let mut flags = String::new();
    let mut flag_args = Vec::new();
    let mut push = |on: bool, c: char, arg: Option<String>| {
        flags.push(if on { '+' } else { '-' });
        flags.push(c);
        flag_args.extend(arg);
    };
    for change in changes {
        match change {
            ModeChange::Flag(c, on) => {
                let modes = &mut st.channel_mut(channel)?.modes;
                let slot = match c {
                    'm' => &mut modes.moderated,
                    'i' => &mut modes.invite_only,
                    's' => &mut modes.secret,
                    'p' => &mut modes.private,
                    _ => &mut modes.topic_ops_only,
                };
                if std::mem::replace(slot, on) != on {
                    push(on, c, None);
                }
            }
            ModeChange::Key(key) => {
                let on = key.is_some();
                st.channel_mut(channel)?.modes.key = key.clone();
                push(on, 'k', key);
            }
            ModeChange::Limit(limit) => {
                st.channel_mut(channel)?.modes.limit = limit;
                push(limit.is_some(), 'l', limit.map(|l| l.to_string()));
            }
            ModeChange::Role(c, on, nick) => events.extend(st.change_role(conn, channel, &nick, c, on)?),
            ModeChange::Ban(true, mask) => {
                if let Some((mask, nick)) = st.add_ban(conn, channel, &mask)? {
                    let name = st.channel(channel)?.name.clone();
                    events.push(ServerEvent::Banned { channel: name, mask, by: by.clone(), nick });
                }
            }
            ModeChange::Ban(false, mask) => {
                for mask in st.remove_bans(conn, channel, &mask)? {
                    let name = st.channel(channel)?.name.clone();
                    events.push(ServerEvent::Unbanned { channel: name, mask, by: by.clone() });
                }
            }
        }
    }
    if !flags.is_empty() {
        let name = st.channel(channel)?.name.clone();
        events.push(ServerEvent::ModeChanged { channel: name, by, modes: flags, args: flag_args });
    }
    Ok(events)
}

//! What the browser knows about the chat, and how each server event changes it. Pure data and
//! functions (no signals, no DOM), so the rules are unit-tested without a browser.

use std::collections::HashSet;

use crate::protocol::names::{fold, is_channel};
use crate::protocol::{
    AuditEntry, BanEntry, ChannelSummary, ChatMessage, ClientFrame, Command, ErrorCode, Kline, Member,
    ServerEvent,
};

use super::text::mentions;

/// One line in a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Unique within the page, for keyed rendering.
    pub seq: u64,
    /// The message id, for chat messages.
    pub id: Option<u64>,
    /// Milliseconds since the Unix epoch; 0 when unknown.
    pub ts: u64,
    pub kind: LineKind,
    pub from: String,
    pub text: String,
    /// The line mentions you (or is a private message to you).
    pub mention: bool,
    /// For your own messages: whether the server has stored it yet.
    pub delivery: Delivery,
    /// For a refusal: its code, for what the line offers to do about it.
    pub code: Option<ErrorCode>,
    /// Posted by an app's bot.
    pub bot: bool,
}

/// Where one of your messages stands.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Delivery {
    /// Stored and delivered (or not yours).
    #[default]
    Sent,
    /// Waiting to be sent or acknowledged, under this transaction id.
    Pending(String),
    /// Refused (the reason in words), under this transaction id; may be retried.
    Failed { txn: String, why: String },
}

impl Delivery {
    pub fn txn(&self) -> Option<&str> {
        match self {
            Delivery::Sent => None,
            Delivery::Pending(txn) | Delivery::Failed { txn, .. } => Some(txn),
        }
    }
}

/// A message of yours not yet acknowledged: what to (re)send after each login.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Outgoing {
    pub txn: String,
    pub target: String,
    pub text: String,
    #[serde(default)]
    pub action: bool,
}

impl Outgoing {
    /// The frame that sends it.
    pub fn frame(&self) -> ClientFrame {
        if self.action {
            ClientFrame::Run {
                command: Command::Me { target: self.target.clone(), text: self.text.clone() },
                txn: Some(self.txn.clone()),
            }
        } else {
            ClientFrame::Message {
                target: self.target.clone(),
                text: self.text.clone(),
                txn: Some(self.txn.clone()),
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Message,
    Action,
    /// Joins, parts, kicks, topic changes and other events.
    System,
    /// A service's answer (Potato, Celery).
    Notice,
    Error,
}

/// A channel or a private conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversation {
    /// As the server spells it.
    pub name: String,
    pub lines: Vec<Line>,
    pub members: Vec<Member>,
    pub topic: Option<String>,
    /// Channel modes, e.g. `+nt`.
    pub modes: String,
    pub unread: u32,
    /// Unread lines that mention you: a badge of their own.
    pub mentions: u32,
    /// Ids of the messages shown, so history never repeats a live message.
    pub ids: HashSet<u64>,
    /// The first line that arrived while you looked elsewhere.
    pub first_unread: Option<u64>,
    /// While the conversation is open: the line the "new messages" divider sits above.
    pub marker: Option<u64>,
    /// The oldest message id shown, where paging back starts.
    pub oldest_id: Option<u64>,
    /// Whether older stored messages may exist.
    pub more: bool,
    /// An older page was asked for and has not come yet.
    pub loading: bool,
    /// The member list is from before the connection dropped.
    pub stale: bool,
    /// A channel's join went out again on a fresh login and the server has not confirmed it
    /// yet (with the channel's members): if the connection drops meanwhile, the session the
    /// next one resumes may not be in it, and it is joined again rather than given up.
    pub rejoining: bool,
    /// The newest message id you have seen here, as remembered across reloads: newer ones
    /// arriving with history count as unread.
    pub read_upto: Option<u64>,
    /// A channel's bans, once asked for (kept current by `banned` and `unbanned`).
    pub bans: Option<Vec<BanEntry>>,
    /// The ban list was asked for by the channel panel: it is shown there, not as a line.
    pub bans_asked: bool,
    /// A channel's registration with Celery; `None` when it has none.
    pub registration: Option<Registration>,
}

/// A channel's registration as the channel panel shows it. Accounts read `potato:alice`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registration {
    pub founder: String,
    pub ops: Vec<String>,
    pub trusted: Vec<String>,
}

/// What Celery lets you do with a channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CeleryRights {
    /// Register it: it is not registered, and you have an account and are an operator there.
    pub register: bool,
    /// Change its op list: you founded it or are trusted on its op list.
    pub edit_ops: bool,
    /// Trust others, drop the registration: you founded it.
    pub founder: bool,
}

/// A member's absence in words, `away` or `away: <their message>`; `None` when present.
pub fn away_words(member: &Member) -> Option<String> {
    member.away.then(|| match &member.away_message {
        Some(why) => format!("away: {why}"),
        None => "away".to_owned(),
    })
}

/// Who a ban is on: `nick (mask)` when it named someone online, else the mask.
pub fn ban_target(mask: &str, nick: Option<&str>) -> String {
    nick.map_or_else(|| mask.to_owned(), |n| format!("{n} ({mask})"))
}

/// One ban in words: `mask (nick), set by by`.
fn ban_words(ban: &BanEntry) -> String {
    let mut text = ban.mask.clone();
    if let Some(nick) = &ban.nick {
        text.push_str(&format!(" ({nick})"));
    }
    if let Some(by) = &ban.by {
        text.push_str(&format!(", set by {by}"));
    }
    text
}

/// One server ban in words: `mask (reason), by root, 2d left`.
pub fn kline_words(kline: &Kline, now: u64) -> String {
    let mut text = kline.mask.clone();
    if let Some(why) = &kline.reason {
        text.push_str(&format!(" ({why})"));
    }
    text.push_str(&format!(", by {}", kline.by));
    match kline.expires {
        Some(expires) => text.push_str(&format!(", {} left", span_words(expires.saturating_sub(now)))),
        None => text.push_str(", for good"),
    }
    text
}

/// One operator action in words: who (account, from where), what, on what, why.
pub fn audit_words(entry: &AuditEntry) -> String {
    let AuditEntry { oper, nick, action, target, reason, from, .. } = entry;
    let why = reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default();
    format!("{nick} ({oper}, from {from}) {action} {target}{why}")
}

/// A length of time, roughly (to the nearest unit): `45s`, `12m`, `5h`, `3d`.
pub fn span_words(ms: u64) -> String {
    let secs = ms / 1000;
    let nearest = |unit: u64| (secs + unit / 2) / unit;
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", nearest(60)),
        7200..=172_799 => format!("{}h", nearest(3600)),
        _ => format!("{}d", nearest(86_400)),
    }
}

impl Conversation {
    pub fn is_channel(&self) -> bool {
        is_channel(&self.name)
    }

    /// Records a message line's id: shown (never repeated) and, if older, where paging starts.
    fn note(&mut self, line: &Line) {
        if let Some(id) = line.id {
            self.ids.insert(id);
            self.oldest_id = Some(self.oldest_id.map_or(id, |o| o.min(id)));
        }
    }
}

/// A live message from someone else: worth a desktop notification when it mentions you (a
/// private message always does), and an embedding page's `message` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub conversation: String,
    pub from: String,
    pub text: String,
    pub mention: bool,
}

/// The whole client-side view of the chat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatState {
    pub me: Option<String>,
    /// `potato:alice`, `app:alice`, or none for a guest.
    pub account: Option<String>,
    /// Whether this session is a server operator's (`oper_status`).
    pub oper: bool,
    pub conversations: Vec<Conversation>,
    pub current: Option<String>,
    /// Lines that belong to no conversation (server notices, errors before any join).
    pub server: Vec<Line>,
    /// Whether the connection is up and the session logged in.
    pub online: bool,
    /// The longest message the server takes, in bytes (0 until it said).
    pub max_text_bytes: usize,
    /// Channels the server suggests to newcomers.
    pub default_channels: Vec<String>,
    /// The last `/list` answer, shown in the channel browser; `None` until one came.
    pub channel_list: Option<Vec<ChannelSummary>>,
    /// Whether the channel browser is open.
    pub browsing: bool,
    /// Whether the command help is open.
    pub helping: bool,
    /// Whether the operator page is open: the server bans and the audit log go there, not
    /// into the conversation as lines.
    pub administering: bool,
    /// The last server ban list (`kline_list`), for an operator.
    pub klines: Option<Vec<Kline>>,
    /// The last audit log page, newest first, for an operator.
    pub audit: Option<Vec<AuditEntry>>,
    /// The last refusal of an operator's request while the operator page is open, shown there.
    pub admin_problem: Option<String>,
    /// The UI asked for the server ban list (or made a change the server answers with it):
    /// the answer updates `klines` without a line, as the page's own requests do.
    pub klines_asked: bool,
    /// Invitations to you not yet acted on: (channel, who invited).
    pub invites: Vec<(String, String)>,
    /// The last message that arrived live, in words, for screen readers (history is not).
    pub announcement: String,
    /// The browser's clock (ms since the epoch) when the event being applied came: the time
    /// of the lines the server sends without one (joins, errors, answers).
    pub now: u64,
    /// The chat is out of sight (an embedding page's closed widget): lines in the open
    /// conversation count as unread too.
    pub out_of_sight: bool,
    next_seq: u64,
}

/// The most lines kept per conversation; older ones are dropped from memory.
pub const MAX_LINES: usize = 2000;
/// Messages asked for when paging back.
pub const PAGE: u32 = 50;
/// Consecutive messages from one sender within this many milliseconds are grouped.
const GROUP_WINDOW_MS: u64 = 5 * 60 * 1000;

/// How many colours authors' names come in: `nick-c0`… in the stylesheet, each readable on
/// the message background in both themes.
pub const NICK_COLOURS: u32 = 8;

/// The colour of an author's name, from a hash (FNV-1a) of the case-folded nick: the same in
/// every line, session and browser.
pub fn nick_colour(nick: &str) -> u32 {
    let hash = fold(nick).bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    hash % NICK_COLOURS
}

/// Whether `line` continues `prev` (same sender, close in time) and so is shown without the
/// sender's name.
pub fn grouped(prev: Option<&Line>, line: &Line) -> bool {
    prev.is_some_and(|p| {
        matches!(p.kind, LineKind::Message)
            && matches!(line.kind, LineKind::Message)
            && p.from == line.from
            && line.ts >= p.ts
            && line.ts - p.ts < GROUP_WINDOW_MS
    })
}

/// One line as shown, with what it needs from its neighbours and the calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub line: Line,
    /// Shown under the line before, without the author's name.
    pub grouped: bool,
    /// The "new messages" divider goes above it.
    pub divider: bool,
    /// A day separator goes above it, saying this ("Today", "Yesterday", a date).
    pub day: Option<String>,
    /// The UTC offset (minutes) at the line's time, for its clock.
    pub offset: i64,
}

/// Lays out lines: a day separator above the first line of each local day, the "new
/// messages" divider above `marker`, and lines grouped under the one before, except right
/// after a separator or the divider (where the author is named again). `offset_at` answers
/// the UTC offset at a time, `today` is the local day now (see [`super::time::day`]).
pub fn arrange(
    lines: &[Line],
    marker: Option<u64>,
    today: i64,
    mut offset_at: impl FnMut(u64) -> i64,
) -> Vec<Shown> {
    let mut prev: Option<&Line> = None;
    let mut last_day = None;
    lines
        .iter()
        .map(|line| {
            let offset = if line.ts > 0 { offset_at(line.ts) } else { 0 };
            let day = (line.ts > 0).then(|| super::time::day(line.ts, offset));
            let new_day = day.filter(|d| last_day != Some(*d));
            last_day = day.or(last_day);
            let divider = marker == Some(line.seq);
            let shown = Shown {
                line: line.clone(),
                grouped: !divider && new_day.is_none() && grouped(prev, line),
                divider,
                day: new_day.map(|d| super::time::day_label(d, today)),
                offset,
            };
            prev = Some(line);
            shown
        })
        .collect()
}

/// Turns a channel flag on or off in a mode string like `+nt` (arguments after a space stay).
fn set_flag(modes: &mut String, flag: char, on: bool) {
    let (flags, args) = modes.split_once(' ').map_or((modes.as_str(), ""), |(f, a)| (f, a));
    let mut flags: String = flags.trim_start_matches('+').chars().filter(|&c| c != flag).collect();
    if on {
        flags.push(flag);
    }
    *modes = if args.is_empty() { format!("+{flags}") } else { format!("+{flags} {args}") };
}

impl ChatState {
    /// A new line; one without a time of its own (`ts` 0) gets the time it came.
    fn line(&mut self, ts: u64, kind: LineKind, from: &str, text: String) -> Line {
        self.next_seq += 1;
        Line {
            seq: self.next_seq,
            id: None,
            ts: if ts == 0 { self.now } else { ts },
            kind,
            from: from.to_owned(),
            text,
            mention: false,
            delivery: Delivery::Sent,
            code: None,
            bot: false,
        }
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        let key = fold(name);
        self.conversations.iter().position(|c| fold(&c.name) == key)
    }

    /// The conversation called `name`, if there is one.
    fn existing_mut(&mut self, name: &str) -> Option<&mut Conversation> {
        self.index_of(name).map(|i| &mut self.conversations[i])
    }

    /// The conversation called `name`, created if new.
    pub fn conversation_mut(&mut self, name: &str) -> &mut Conversation {
        let i = match self.index_of(name) {
            Some(i) => i,
            None => {
                self.conversations.push(Conversation {
                    name: name.to_owned(),
                    more: true,
                    ..Default::default()
                });
                self.conversations.len() - 1
            }
        };
        &mut self.conversations[i]
    }

    pub fn conversation(&self, name: &str) -> Option<&Conversation> {
        self.index_of(name).map(|i| &self.conversations[i])
    }

    /// The conversation on screen.
    pub fn current_conversation(&self) -> Option<&Conversation> {
        self.current.as_deref().and_then(|c| self.conversation(c))
    }

    fn is_current(&self, name: &str) -> bool {
        self.current.as_deref().is_some_and(|c| fold(c) == fold(name))
    }

    /// The conversation a message belongs to: a PM is shown under the other party's nick.
    fn conversation_of(&self, m: &ChatMessage) -> String {
        if is_channel(&m.target) || !self.is_me(&m.target) {
            m.target.clone()
        } else {
            m.from.clone()
        }
    }

    pub fn is_me(&self, nick: &str) -> bool {
        self.me.as_deref().is_some_and(|me| fold(me) == fold(nick))
    }

    /// Your own entry in a channel's member list.
    pub fn my_membership(&self, channel: &str) -> Option<&Member> {
        let me = self.me.as_deref()?;
        self.conversation(channel)?.members.iter().find(|m| fold(&m.nick) == fold(me))
    }

    /// Whether you are an operator of `channel`.
    pub fn is_op(&self, channel: &str) -> bool {
        self.my_membership(channel).is_some_and(|m| m.op)
    }

    /// How `nick` is, as the channels you share with them show it: `online`, `away` or
    /// `away: <their message>`; `None` when none of your channels lists them.
    pub fn presence(&self, nick: &str) -> Option<String> {
        let key = fold(nick);
        let m = self
            .conversations
            .iter()
            .filter(|c| c.is_channel())
            .flat_map(|c| &c.members)
            .find(|m| fold(&m.nick) == key)?;
        Some(away_words(m).unwrap_or_else(|| "online".to_owned()))
    }

    /// What Celery lets you do with `channel`, as the channel panel offers it.
    pub fn celery_rights(&self, channel: &str) -> CeleryRights {
        let Some(conv) = self.conversation(channel) else { return CeleryRights::default() };
        let me = self.account.as_deref().map(fold);
        let is = |key: &String| me.as_deref() == Some(fold(key).as_str());
        match &conv.registration {
            None => CeleryRights { register: me.is_some() && self.is_op(channel), ..Default::default() },
            Some(r) => CeleryRights {
                register: false,
                edit_ops: is(&r.founder) || r.trusted.iter().any(is),
                founder: is(&r.founder),
            },
        }
    }

    /// Whether you may change the topic of `channel` (anyone unless `+t`, else ops).
    pub fn may_set_topic(&self, channel: &str) -> bool {
        let Some(conv) = self.conversation(channel) else { return false };
        self.my_membership(channel).is_some() && (!conv.modes.contains('t') || self.is_op(channel))
    }

    /// Channels you are in, to rejoin after a reconnect.
    pub fn channels(&self) -> Vec<String> {
        self.conversations.iter().filter(|c| c.is_channel()).map(|c| c.name.clone()).collect()
    }

    /// The channels a new connection joins: after a fresh login every one, the new session
    /// being in none (each marked as rejoining until the server confirms it); after a resume
    /// those whose join never got through (the connection before dropped first), once more
    /// only (a join the server refused gets no confirmation either).
    pub fn rejoins(&mut self, resumed: bool) -> Vec<String> {
        let channels = self.conversations.iter_mut().filter(|c| c.is_channel() && (c.rejoining || !resumed));
        channels
            .map(|c| {
                c.rejoining = !resumed;
                c.name.clone()
            })
            .collect()
    }

    /// The channels being rejoined (see `rejoins`).
    pub fn rejoining(&self) -> Vec<String> {
        self.conversations.iter().filter(|c| c.rejoining).map(|c| c.name.clone()).collect()
    }

    /// Private conversations open.
    pub fn private_conversations(&self) -> Vec<String> {
        self.conversations.iter().filter(|c| !c.is_channel()).map(|c| c.name.clone()).collect()
    }

    /// The frame that loads the page of messages before the oldest one shown, if any may exist.
    pub fn older(&self, name: &str) -> Option<ClientFrame> {
        let conv = self.conversation(name)?;
        conv.more.then(|| ClientFrame::History {
            target: conv.name.clone(),
            before: conv.oldest_id,
            limit: Some(PAGE),
        })
    }

    /// Asks for the page before the oldest message shown: the frame to send, unless there is
    /// nothing older or a page is already on its way. The conversation shows it is loading
    /// until the page comes (or the connection drops).
    pub fn page_back(&mut self, name: &str) -> Option<ClientFrame> {
        if self.conversation(name)?.loading {
            return None;
        }
        let frame = self.older(name)?;
        self.conversation_mut(name).loading = true;
        Some(frame)
    }

    /// Appends a line. `counts` marks lines that count as unread when not on screen.
    fn push(&mut self, conversation: &str, line: Line, counts: bool) {
        let seen = self.is_current(conversation) && !self.out_of_sight;
        let conv = self.conversation_mut(conversation);
        conv.note(&line);
        if counts && !seen {
            conv.unread += 1;
            if line.mention {
                conv.mentions += 1;
            }
            conv.first_unread.get_or_insert(line.seq);
        }
        conv.lines.push(line);
        if conv.lines.len() > MAX_LINES {
            conv.lines.remove(0);
            conv.more = true;
        }
    }

    /// The channel panel asks for `channel`'s bans: the answer goes to the panel only.
    pub fn ask_bans(&mut self, channel: &str) {
        if let Some(conv) = self.existing_mut(channel) {
            conv.bans_asked = true;
        }
    }

    fn system(&mut self, conversation: &str, text: String) {
        let line = self.line(0, LineKind::System, "", text);
        self.push(conversation, line, false);
    }

    /// Shows `name`: clears its unread counts and puts the "new messages" divider above the
    /// first line you had not seen.
    /// Opening the one already open keeps its divider.
    pub fn open(&mut self, name: &str) {
        if let Some(prev) = self.current.clone().filter(|prev| fold(prev) != fold(name)) {
            if let Some(i) = self.index_of(&prev) {
                self.conversations[i].marker = None;
            }
        }
        let conv = self.conversation_mut(name);
        conv.unread = 0;
        conv.mentions = 0;
        if let Some(first) = conv.first_unread.take() {
            conv.marker = Some(first);
        }
        let name = conv.name.clone();
        self.current = Some(name);
    }

    /// The chat comes into sight or goes out of it: back in sight, the open conversation is
    /// read (its divider above what came meanwhile).
    pub fn set_out_of_sight(&mut self, hidden: bool) {
        let was = std::mem::replace(&mut self.out_of_sight, hidden);
        if let (true, false, Some(current)) = (was, hidden, self.current.clone()) {
            self.open(&current);
        }
    }

    /// Opens the next (`+1`) or previous (`-1`) conversation in the sidebar, wrapping around.
    pub fn cycle(&mut self, step: i32) {
        let n = self.conversations.len() as i32;
        if n == 0 {
            return;
        }
        let at = self.current.as_deref().and_then(|c| self.index_of(c)).map_or(-1, |i| i as i32);
        let next = (at + step).rem_euclid(n) as usize;
        let name = self.conversations[next].name.clone();
        self.open(&name);
    }

    /// Closes a conversation (a channel you left, or a private one you dismiss).
    pub fn remove(&mut self, name: &str) {
        if let Some(i) = self.index_of(name) {
            self.conversations.remove(i);
        }
        if self.is_current(name) {
            self.current = self.conversations.first().map(|c| c.name.clone());
        }
    }

    /// Channels that list `nick` as a member.
    fn channels_with(&self, nick: &str) -> Vec<String> {
        let key = fold(nick);
        self.conversations
            .iter()
            .filter(|c| c.members.iter().any(|m| fold(&m.nick) == key))
            .map(|c| c.name.clone())
            .collect()
    }

    /// A line for the conversation on screen, or the server lines when there is none.
    fn in_view(&mut self, kind: LineKind, from: &str, text: String) {
        let line = self.line(0, kind, from, text);
        self.show(line);
    }

    /// Puts a line where the user is looking.
    fn show(&mut self, line: Line) {
        match self.current.clone() {
            Some(c) => self.push(&c, line, false),
            None => self.server.push(line),
        }
    }

    /// The connection dropped: member lists are kept, marked stale, until the server says again.
    pub fn disconnected(&mut self) {
        self.online = false;
        for conv in &mut self.conversations {
            conv.stale = true;
            // A page asked for is not coming on this connection.
            conv.loading = false;
        }
    }

    /// Shows a message of yours at once, greyed until the server acknowledges it.
    pub fn add_pending(&mut self, out: &Outgoing, now_ms: u64) {
        let me = self.me.clone().unwrap_or_default();
        let kind = if out.action { LineKind::Action } else { LineKind::Message };
        let mut line = self.line(now_ms, kind, &me, out.text.clone());
        line.delivery = Delivery::Pending(out.txn.clone());
        self.push(&out.target, line, false);
    }

    /// Your messages not yet acknowledged (pending, not failed), oldest first.
    pub fn outgoing(&self) -> Vec<Outgoing> {
        let mut out: Vec<(u64, Outgoing)> = Vec::new();
        for conv in &self.conversations {
            for line in &conv.lines {
                if let Delivery::Pending(txn) = &line.delivery {
                    out.push((
                        line.seq,
                        Outgoing {
                            txn: txn.clone(),
                            target: conv.name.clone(),
                            text: line.text.clone(),
                            action: line.kind == LineKind::Action,
                        },
                    ));
                }
            }
        }
        out.sort_by_key(|(seq, _)| *seq);
        out.into_iter().map(|(_, o)| o).collect()
    }

    /// The line of yours sent under `txn`: the conversation's index and the line's.
    fn line_by_txn(&self, txn: &str) -> Option<(usize, usize)> {
        self.conversations.iter().enumerate().find_map(|(c, conv)| {
            conv.lines.iter().position(|l| l.delivery.txn() == Some(txn)).map(|l| (c, l))
        })
    }

    /// Unread lines and mentions of you in the conversations not on screen (all of them
    /// while the chat is out of sight).
    pub fn unread_elsewhere(&self) -> (u32, u32) {
        self.conversations
            .iter()
            .filter(|c| self.out_of_sight || !self.is_current(&c.name))
            .fold((0, 0), |(u, m), c| (u + c.unread, m + c.mentions))
    }

    /// The conversation holding the message of yours sent under `txn`.
    pub fn conversation_of_txn(&self, txn: &str) -> Option<String> {
        self.line_by_txn(txn).map(|(c, _)| self.conversations[c].name.clone())
    }

    /// Marks a failed message pending again, for resending; answers what to send.
    pub fn retry(&mut self, txn: &str) -> Option<Outgoing> {
        let (c, l) = self.line_by_txn(txn)?;
        let conv = &mut self.conversations[c];
        let line = &mut conv.lines[l];
        line.delivery = Delivery::Pending(txn.to_owned());
        Some(Outgoing {
            txn: txn.to_owned(),
            target: conv.name.clone(),
            text: line.text.clone(),
            action: line.kind == LineKind::Action,
        })
    }

    /// Takes a failed or pending message back out of the conversation (to edit it); answers
    /// its conversation and text.
    pub fn withdraw(&mut self, txn: &str) -> Option<(String, String)> {
        let (c, l) = self.line_by_txn(txn)?;
        let conv = &mut self.conversations[c];
        let line = conv.lines.remove(l);
        Some((conv.name.clone(), line.text))
    }

    /// The newest message id in each conversation, for remembering where you read up to.
    pub fn read_positions(&self) -> Vec<(String, u64)> {
        self.conversations
            .iter()
            .filter_map(|c| {
                let newest = c.lines.iter().filter_map(|l| l.id).max().or(c.read_upto)?;
                // What arrived while you looked elsewhere is not read yet.
                let read = match c.first_unread {
                    Some(seq) => c
                        .lines
                        .iter()
                        .take_while(|l| l.seq != seq)
                        .filter_map(|l| l.id)
                        .max()
                        .or(c.read_upto)?,
                    None => newest,
                };
                Some((c.name.clone(), read))
            })
            .collect()
    }

    fn message_line(&mut self, m: ChatMessage) -> (String, Line) {
        let conv = self.conversation_of(&m);
        let kind = if m.action { LineKind::Action } else { LineKind::Message };
        let from_me = self.is_me(&m.from);
        let mention = !from_me
            && (!is_channel(&m.target) || self.me.as_deref().is_some_and(|me| mentions(&m.text, me)));
        let mut line = self.line(m.ts, kind, &m.from, m.text);
        line.id = Some(m.id);
        line.mention = mention;
        line.bot = m.bot;
        (conv, line)
    }

    /// Back to the login form: nobody is logged in; what the server said (its errors) stays.
    /// Everything forgotten for a fresh login, but whether the chat is in sight.
    pub fn reset(&mut self) {
        *self = Self { out_of_sight: self.out_of_sight, ..Self::default() };
    }

    pub fn logged_out(&mut self) {
        self.me = None;
        self.account = None;
        self.online = false;
        self.set_oper(false);
    }

    /// Whether this session is a server operator's; an operator's lists go with the powers.
    fn set_oper(&mut self, oper: bool) {
        self.oper = oper;
        if !oper {
            self.administering = false;
            self.klines = None;
            self.audit = None;
            self.admin_problem = None;
        }
    }

    /// Applies one server event; returns an alert for a live message from someone else.
    pub fn apply(&mut self, event: ServerEvent) -> Option<Alert> {
        match event {
            ServerEvent::Welcome { nick, account, limits, default_channels, resumed, channels, .. } => {
                self.me = Some(nick);
                self.account = account;
                self.online = true;
                // A session is no operator until the server says so (`oper_status` follows
                // `welcome` for one): operators can be struck from the list between logins.
                self.set_oper(false);
                self.max_text_bytes = limits.max_text_bytes;
                self.default_channels = default_channels;
                // A resumed session says where it still is: a channel it left meanwhile (kicked
                // while away) goes, but for one still being rejoined (joined again instead).
                if resumed {
                    let mut gone = Vec::new();
                    for conv in self.conversations.iter_mut().filter(|c| c.is_channel()) {
                        if channels.iter().any(|kept| fold(kept) == fold(&conv.name)) {
                            conv.rejoining = false;
                        } else if !conv.rejoining {
                            gone.push(conv.name.clone());
                        }
                    }
                    for channel in gone {
                        self.remove(&channel);
                        let line =
                            self.line(0, LineKind::System, "", format!("you are no longer in {channel}"));
                        self.server.push(line);
                    }
                }
                // Private conversations have no member list to refresh.
                for conv in self.conversations.iter_mut().filter(|c| !c.is_channel()) {
                    conv.stale = false;
                }
            }
            ServerEvent::AccountChanged { account } => self.account = account,
            ServerEvent::Message(m) => {
                // The echo of a message of yours: the greyed line becomes the stored one.
                if let Some((c, l)) = m.txn.as_deref().and_then(|t| self.line_by_txn(t)) {
                    let conv = &mut self.conversations[c];
                    if conv.ids.contains(&m.id) {
                        conv.lines.remove(l);
                        return None;
                    }
                    let line = &mut conv.lines[l];
                    line.id = Some(m.id);
                    line.ts = m.ts;
                    line.delivery = Delivery::Sent;
                    let line = line.clone();
                    conv.note(&line);
                    return None;
                }
                let (conv, line) = self.message_line(m);
                if self.conversation(&conv).is_some_and(|c| line.id.is_some_and(|id| c.ids.contains(&id))) {
                    return None;
                }
                let from_me = self.is_me(&line.from);
                if !from_me {
                    let place = if self.is_current(&conv) { String::new() } else { format!(" in {conv}") };
                    self.announcement = format!("{}{place}: {}", line.from, line.text);
                }
                let alert = (!from_me).then(|| Alert {
                    conversation: conv.clone(),
                    from: line.from.clone(),
                    text: line.text.clone(),
                    mention: line.mention,
                });
                self.push(&conv, line, !from_me);
                return alert;
            }
            ServerEvent::History { target, messages, more } => {
                // Stored messages go before what is on screen, skipping any already shown.
                let known = self.conversation(&target).map(|c| c.ids.clone()).unwrap_or_default();
                let oldest_sent = messages.iter().map(|m| m.id).min();
                let lines: Vec<Line> = messages
                    .into_iter()
                    .filter(|m| !known.contains(&m.id))
                    .map(|m| self.message_line(m).1)
                    .collect();
                let is_current = self.is_current(&target);
                let me = self.me.clone();
                let conv = self.conversation_mut(&target);
                // Whether there is more before this page, unless it only fills a gap above
                // newer lines (after a reconnect): that says nothing about older ones.
                let fills_gap = oldest_sent.zip(conv.oldest_id).is_some_and(|(sent, shown)| sent > shown);
                if !fills_gap {
                    conv.more = more;
                }
                conv.loading = false;
                for line in &lines {
                    conv.note(line);
                }
                // After a reload: what came in since you last read here is unread.
                if let Some(read) = conv.read_upto {
                    let mine = |l: &Line| me.as_deref().is_some_and(|me| fold(me) == fold(&l.from));
                    for line in lines.iter().filter(|l| l.id.is_some_and(|id| id > read) && !mine(l)) {
                        if is_current {
                            conv.marker.get_or_insert(line.seq);
                        } else {
                            conv.unread += 1;
                            conv.mentions += u32::from(line.mention);
                            conv.first_unread.get_or_insert(line.seq);
                        }
                    }
                    conv.read_upto = None;
                }
                // Older than everything shown (on join, when paging back): above it all, in
                // order. Otherwise (the gap after a reconnect): before the first newer message.
                let oldest_shown = conv.lines.iter().filter_map(|l| l.id).min();
                for line in lines {
                    let id = line.id.unwrap_or(0);
                    let above_all = oldest_shown.is_none_or(|o| id < o);
                    let at = conv
                        .lines
                        .iter()
                        .position(|l| match l.id {
                            Some(shown) => shown > id,
                            None => above_all,
                        })
                        .unwrap_or(conv.lines.len());
                    conv.lines.insert(at, line);
                }
                conv.lines.truncate(MAX_LINES);
            }
            ServerEvent::Notice { from, text, code } => {
                let mut line = self.line(0, LineKind::Notice, &from, text);
                line.code = code;
                self.show(line);
            }
            ServerEvent::Error { code, message, txn, .. } => {
                if let Some((c, l)) = txn.as_deref().and_then(|t| self.line_by_txn(t)) {
                    let line = &mut self.conversations[c].lines[l];
                    let why = super::reconnect::refusal(code, &message);
                    line.delivery = Delivery::Failed { txn: txn.unwrap_or_default(), why };
                    return None;
                }
                // Perhaps the refusal of a history page or a ban list (they carry no id): stop
                // waiting for them, or paging back and the panel would wait for good.
                for conv in &mut self.conversations {
                    conv.loading = false;
                    conv.bans_asked = false;
                }
                self.klines_asked = false;
                let why = super::reconnect::refusal(code, &message);
                let operators = [
                    ErrorCode::NotOper,
                    ErrorCode::NoSuchKline,
                    ErrorCode::NoSuchNick,
                    ErrorCode::BadArguments,
                ];
                if self.administering && operators.contains(&code) {
                    self.admin_problem = Some(why.clone());
                }
                let mut line = self.line(0, LineKind::Error, "", why);
                line.code = Some(code);
                self.show(line);
            }
            ServerEvent::Joined { channel, nick, .. } => {
                if self.is_me(&nick) {
                    self.invites.retain(|(c, _)| fold(c) != fold(&channel));
                    // A rejoin after a reconnect keeps the view where it is, without a line.
                    if self.conversation(&channel).is_some() {
                        return None;
                    }
                    self.open(&channel);
                } else {
                    let conv = self.conversation_mut(&channel);
                    if !conv.members.iter().any(|m| fold(&m.nick) == fold(&nick)) {
                        conv.members.push(Member {
                            nick: nick.clone(),
                            op: false,
                            voice: false,
                            away: false,
                            away_message: None,
                        });
                    }
                }
                self.system(&channel, format!("{nick} joined {channel}"));
            }
            ServerEvent::Parted { channel, nick, reason } => {
                if self.is_me(&nick) {
                    self.remove(&channel);
                } else {
                    self.conversation_mut(&channel).members.retain(|m| fold(&m.nick) != fold(&nick));
                    let why = reason.map(|r| format!(" ({r})")).unwrap_or_default();
                    self.system(&channel, format!("{nick} left{why}"));
                }
            }
            ServerEvent::Kicked { channel, nick, by, reason } => {
                let why = reason.map(|r| format!(" ({r})")).unwrap_or_default();
                if self.is_me(&nick) {
                    self.remove(&channel);
                    self.in_view(LineKind::Error, "", format!("you were kicked from {channel} by {by}{why}"));
                } else {
                    self.conversation_mut(&channel).members.retain(|m| fold(&m.nick) != fold(&nick));
                    self.system(&channel, format!("{nick} was kicked by {by}{why}"));
                }
            }
            ServerEvent::Quit { nick, reason } => {
                let why = reason.map(|r| format!(" ({r})")).unwrap_or_default();
                for channel in self.channels_with(&nick) {
                    self.conversation_mut(&channel).members.retain(|m| fold(&m.nick) != fold(&nick));
                    self.system(&channel, format!("{nick} quit{why}"));
                }
            }
            ServerEvent::NickChanged { old, new } => {
                if self.is_me(&old) {
                    self.me = Some(new.clone());
                }
                for channel in self.channels_with(&old) {
                    let conv = self.conversation_mut(&channel);
                    for m in conv.members.iter_mut().filter(|m| fold(&m.nick) == fold(&old)) {
                        m.nick = new.clone();
                    }
                    self.system(&channel, format!("{old} is now known as {new}"));
                }
            }
            ServerEvent::Banned { channel, mask, by, nick } => {
                let whom = ban_target(&mask, nick.as_deref());
                self.system(&channel, format!("{by} banned {whom}"));
                // A ban list on show follows.
                if let Some(bans) = self.conversation_mut(&channel).bans.as_mut() {
                    bans.retain(|b| fold(&b.mask) != fold(&mask));
                    bans.push(BanEntry { mask, nick, by: Some(by), at: None });
                }
            }
            ServerEvent::Unbanned { channel, mask, by } => {
                self.system(&channel, format!("{by} unbanned {mask}"));
                if let Some(bans) = self.conversation_mut(&channel).bans.as_mut() {
                    bans.retain(|b| fold(&b.mask) != fold(&mask));
                }
            }
            ServerEvent::ModeChanged { channel, by, modes, args } => {
                let conv = self.conversation_mut(&channel);
                let mut sign = '+';
                let mut targets = args.iter();
                for c in modes.chars() {
                    match c {
                        '+' | '-' => sign = c,
                        'o' | 'v' => {
                            if let Some(nick) = targets.next() {
                                for m in conv.members.iter_mut().filter(|m| fold(&m.nick) == fold(nick)) {
                                    if c == 'o' {
                                        m.op = sign == '+'
                                    } else {
                                        m.voice = sign == '+'
                                    }
                                }
                            }
                        }
                        'b' => {
                            targets.next();
                        }
                        'k' | 'l' => {
                            if sign == '+' {
                                targets.next();
                            }
                            set_flag(&mut conv.modes, c, sign == '+');
                        }
                        flag => set_flag(&mut conv.modes, flag, sign == '+'),
                    }
                }
                let text = format!("{by} sets mode {modes} {}", args.join(" "));
                self.system(&channel, text.trim_end().to_owned());
            }
            ServerEvent::Topic { channel, topic, set_by, .. } => {
                let text = match (&topic, &set_by) {
                    (Some(t), Some(by)) => format!("{by} set the topic: {t}"),
                    (Some(t), None) => format!("topic: {t}"),
                    (None, Some(by)) => format!("{by} cleared the topic"),
                    (None, None) => "no topic is set".to_owned(),
                };
                self.conversation_mut(&channel).topic = topic;
                self.system(&channel, text);
            }
            ServerEvent::Members { channel, modes, members } => {
                let conv = self.conversation_mut(&channel);
                conv.members = members;
                conv.modes = modes;
                conv.stale = false;
                conv.rejoining = false;
            }
            ServerEvent::Away { nick, message } => {
                for conv in &mut self.conversations {
                    for m in conv.members.iter_mut().filter(|m| fold(&m.nick) == fold(&nick)) {
                        m.away = message.is_some();
                        m.away_message.clone_from(&message);
                    }
                }
            }
            ServerEvent::Invited { channel, nick, by } => {
                if self.is_me(&nick) {
                    // Shown where you are, with a way to accept; once is enough.
                    self.invites.retain(|(c, _)| fold(c) != fold(&channel));
                    self.invites.push((channel, by));
                } else {
                    self.in_view(LineKind::System, "", format!("you invited {nick} to {channel}"));
                }
            }
            ServerEvent::Whois { nick, account, host, channels, away, idle_secs, .. } => {
                let account = account.map(|a| format!(", account {a}")).unwrap_or_default();
                let away = away.map(|a| format!(", away: {a}")).unwrap_or_default();
                let text =
                    format!("{nick} is {host}{account}, in {}, idle {idle_secs}s{away}", channels.join(" "));
                self.in_view(LineKind::System, "", text);
            }
            ServerEvent::List { mut channels } => {
                // Busiest first, then by name.
                channels.sort_by(|a, b| {
                    b.members.cmp(&a.members).then_with(|| fold(&a.channel).cmp(&fold(&b.channel)))
                });
                self.channel_list = Some(channels);
                self.browsing = true;
            }
            ServerEvent::BanList { channel, bans } => {
                let quiet = self.conversation(&channel).is_some_and(|c| c.bans_asked);
                if !quiet {
                    let text = if bans.is_empty() {
                        format!("{channel} has no bans")
                    } else {
                        let list: Vec<String> = bans.iter().map(ban_words).collect();
                        format!("bans in {channel}: {}", list.join("; "))
                    };
                    self.in_view(LineKind::System, "", text);
                }
                if let Some(conv) = self.existing_mut(&channel) {
                    conv.bans = Some(bans);
                    conv.bans_asked = false;
                }
            }
            ServerEvent::Registration { channel, founder, ops, trusted } => {
                if let Some(conv) = self.existing_mut(&channel) {
                    conv.registration = founder.map(|founder| Registration { founder, ops, trusted });
                }
            }
            ServerEvent::Pong { .. } => {}
            ServerEvent::OperStatus { oper } => {
                self.set_oper(oper);
                if oper {
                    self.in_view(LineKind::System, "", "you are a server operator".to_owned());
                }
            }
            ServerEvent::KlineList { klines } => {
                if !self.administering && !std::mem::take(&mut self.klines_asked) {
                    let text = if klines.is_empty() {
                        "no server bans".to_owned()
                    } else {
                        let list: Vec<String> = klines.iter().map(|k| kline_words(k, self.now)).collect();
                        format!("server bans: {}", list.join("; "))
                    };
                    self.in_view(LineKind::System, "", text);
                }
                self.klines = Some(klines);
            }
            ServerEvent::AuditLog { entries } => {
                if !self.administering {
                    if entries.is_empty() {
                        self.in_view(LineKind::System, "", "no operator actions yet".to_owned());
                    }
                    for e in &entries {
                        let line = self.line(e.at, LineKind::System, "", audit_words(e));
                        self.show(line);
                    }
                }
                self.audit = Some(entries);
            }
            ServerEvent::Stats {
                connections,
                sessions,
                channels,
                opers,
                messages_last_minute,
                messages_total,
                uptime_secs,
            } => {
                let text = format!(
                    "server: {connections} connected ({sessions} sessions), {channels} channels, operators online: \
                     {opers}, messages: {messages_last_minute} in the last minute, {messages_total} since the start, up {}",
                    span_words(uptime_secs.saturating_mul(1000))
                );
                self.in_view(LineKind::System, "", text);
            }
        }
        None
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn msg(from: &str, target: &str, text: &str) -> ServerEvent {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1000);
        ServerEvent::Message(ChatMessage {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            ts: 1,
            from: from.into(),
            target: target.into(),
            text: text.into(),
            action: false,
            bot: false,
            txn: None,
        })
    }

    /// A message of alice's in #r as stored, its time the same as its id.
    fn stored(id: u64, text: &str) -> ChatMessage {
        ChatMessage {
            id,
            ts: id,
            from: "alice".into(),
            target: "#r".into(),
            text: text.into(),
            action: false,
            bot: false,
            txn: None,
        }
    }

    /// Bob's `welcome`: `resumed` in `channels`, or a new session.
    pub(in crate::ui) fn welcome(resumed: bool, channels: &[&str]) -> ServerEvent {
        ServerEvent::Welcome {
            nick: "bob".into(),
            account: None,
            host: "h".into(),
            server: "chattr".into(),
            version: "0".into(),
            limits: crate::protocol::Limits {
                max_text_bytes: 4000,
                max_frame_bytes: 16384,
                burst: 10,
                per_second: 2,
                allowance: None,
            },
            resume: Some("s".into()),
            resumed,
            channels: channels.iter().map(|c| c.to_string()).collect(),
            default_channels: vec![],
        }
    }

    /// Bob, in `channels`.
    pub(in crate::ui) fn bob_in(channels: &[&str]) -> ChatState {
        let mut s = ChatState { me: Some("bob".into()), ..Default::default() };
        for channel in channels {
            s.apply(joined(channel, "bob"));
        }
        s
    }

    fn joined(channel: &str, nick: &str) -> ServerEvent {
        ServerEvent::Joined { channel: channel.into(), nick: nick.into(), host: "h".into() }
    }

    #[test]
    fn history_goes_before_live_lines_and_never_repeats_them() {
        let mut s = ChatState { me: Some("bob".into()), ..Default::default() };
        s.apply(joined("#r", "bob"));
        let m = stored;
        s.apply(ServerEvent::Message(m(3, "live")));
        s.apply(ServerEvent::History {
            target: "#r".into(),
            messages: vec![m(1, "old"), m(3, "live")],
            more: false,
        });
        let texts: Vec<&str> = s.conversation("#r").unwrap().lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["old", "bob joined #r", "live"]);
    }

    #[test]
    fn mentions_and_private_messages_alert_and_get_their_own_badge() {
        let mut s = ChatState { me: Some("alice".into()), ..Default::default() };
        s.apply(joined("#a", "alice"));
        s.apply(joined("#b", "alice"));
        assert!(!s.apply(msg("bob", "#a", "no ping here")).unwrap().mention);
        let alert = s.apply(msg("bob", "#a", "hey ALICE, look")).unwrap();
        assert_eq!((alert.conversation.as_str(), alert.from.as_str(), alert.mention), ("#a", "bob", true));
        let conv = s.conversation("#a").unwrap();
        assert_eq!((conv.unread, conv.mentions), (2, 1));
        assert!(conv.lines.last().unwrap().mention);
        assert!(s.apply(msg("bob", "alice", "psst")).unwrap().mention, "a PM to me alerts");
        assert!(s.apply(msg("alice", "#a", "alice talks to herself")).is_none(), "my own lines never do");
        // Opening puts the divider above the first unread line and clears the counts.
        let first_unread = s.conversation("#a").unwrap().first_unread;
        s.open("#a");
        let conv = s.conversation("#a").unwrap();
        assert_eq!((conv.unread, conv.mentions, conv.marker), (0, 0, first_unread));
        s.open("#b");
        assert_eq!(s.conversation("#a").unwrap().marker, None);
    }

    #[test]
    fn out_of_sight_the_open_conversation_counts_as_unread_until_seen() {
        let mut s = ChatState { me: Some("alice".into()), ..Default::default() };
        s.apply(joined("#a", "alice"));
        s.apply(joined("#b", "alice"));
        s.open("#a");
        s.apply(msg("bob", "#a", "seen at once"));
        assert_eq!(s.unread_elsewhere(), (0, 0));
        s.set_out_of_sight(true);
        s.apply(msg("bob", "#a", "while hidden"));
        s.apply(msg("bob", "#b", "alice: elsewhere"));
        assert_eq!(s.unread_elsewhere(), (2, 1));
        let first_hidden = s.conversation("#a").unwrap().first_unread;
        assert!(first_hidden.is_some());
        s.set_out_of_sight(false);
        let conv = s.conversation("#a").unwrap();
        assert_eq!((conv.unread, conv.marker), (0, first_hidden), "read, the divider above what came");
        assert_eq!(s.unread_elsewhere(), (1, 1), "the other conversation is still unread");
        s.open("#a");
        assert_eq!(s.conversation("#a").unwrap().marker, first_hidden, "opened again, the divider stays");
    }

    #[test]
    fn paging_back_and_gap_filling_put_history_where_it_belongs() {
        let mut s = ChatState { me: Some("bob".into()), ..Default::default() };
        let m = |id: u64| stored(id, &format!("m{id}"));
        s.apply(joined("#r", "bob"));
        s.apply(ServerEvent::History { target: "#r".into(), messages: vec![m(5), m(6)], more: true });
        assert_eq!(
            s.older("#r"),
            Some(ClientFrame::History { target: "#r".into(), before: Some(5), limit: Some(PAGE) })
        );
        s.apply(ServerEvent::History { target: "#r".into(), messages: vec![m(3), m(4)], more: false });
        assert_eq!(s.older("#r"), None);
        s.apply(ServerEvent::Message(m(9)));
        // After a reconnect the server resends the latest: the gap (7, 8) fills in, 9 is not repeated.
        s.apply(ServerEvent::History { target: "#r".into(), messages: vec![m(7), m(8), m(9)], more: true });
        let texts: Vec<&str> = s.conversation("#r").unwrap().lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["m3", "m4", "m5", "m6", "bob joined #r", "m7", "m8", "m9"]);
    }

    fn line(seq: u64, from: &str, ts: u64) -> Line {
        Line {
            seq,
            id: None,
            ts,
            kind: LineKind::Message,
            from: from.into(),
            text: String::new(),
            mention: false,
            delivery: Delivery::Sent,
            code: None,
            bot: false,
        }
    }

    #[test]
    fn lines_group_by_sender() {
        assert!(grouped(Some(&line(0, "a", 1_000)), &line(0, "a", 60_000)));
        assert!(!grouped(Some(&line(0, "a", 1_000)), &line(0, "b", 2_000)));
        assert!(!grouped(Some(&line(0, "a", 0)), &line(0, "a", 6 * 60_000)));
        assert!(!grouped(None, &line(0, "a", 0)));
    }

    #[test]
    fn days_are_separated_and_grouping_restarts_after_a_separator_or_the_divider() {
        const DAY: u64 = 86_400_000;
        // Local days an hour east of UTC: 22:58 UTC is 23:58, three minutes later is tomorrow.
        let (d, late) = (20_000 * DAY, 20_000 * DAY + 22 * 3_600_000 + 58 * 60_000);
        let lines = [
            line(1, "amy", d + 60_000),
            line(2, "amy", d + 120_000),
            line(3, "amy", d + 180_000),
            line(4, "amy", late),
            line(5, "amy", late + 3 * 60_000),
            line(6, "amy", late + 4 * 60_000),
        ];
        let shown = arrange(&lines, Some(3), 20_001, |_| 60);
        let days: Vec<Option<&str>> = shown.iter().map(|s| s.day.as_deref()).collect();
        assert_eq!(days, [Some("Yesterday"), None, None, None, Some("Today"), None]);
        let grouped: Vec<bool> = shown.iter().map(|s| s.grouped).collect();
        // 3 is the first unread (the divider), 5 the first of a day, 4 came long after 3.
        assert_eq!(grouped, [false, true, false, false, false, true]);
        assert!(shown[2].divider && shown.iter().filter(|s| s.divider).count() == 1);
        assert!(shown.iter().all(|s| s.offset == 60));
        // A line of unknown time neither starts a day nor counts as one.
        let shown = arrange(&[line(1, "a", d), line(2, "b", 0), line(3, "a", d + 1)], None, 20_000, |_| 0);
        let days: Vec<Option<&str>> = shown.iter().map(|s| s.day.as_deref()).collect();
        assert_eq!(days, [Some("Today"), None, None]);
    }

    #[test]
    fn nick_colours_are_stable_case_blind_and_spread() {
        assert_eq!(nick_colour("Alice"), nick_colour("alice"));
        assert_eq!(nick_colour("ALICE"), nick_colour("alice"));
        let used: HashSet<u32> = (0..64).map(|i| nick_colour(&format!("user{i}"))).collect();
        assert_eq!(used.len(), NICK_COLOURS as usize, "64 nicks use every colour");
        assert!(used.iter().all(|&c| c < NICK_COLOURS));
        // As end2end/tests/lines.spec.ts works them out.
        assert_eq!((nick_colour("hue-one"), nick_colour("hue-two"), nick_colour("alice")), (0, 6, 7));
    }

    #[test]
    fn lines_without_a_time_of_their_own_get_the_time_they_came() {
        let mut s = ChatState { me: Some("bob".into()), now: 1_234_000, ..Default::default() };
        s.apply(joined("#r", "bob"));
        assert_eq!(s.conversation("#r").unwrap().lines[0].ts, 1_234_000);
    }

    #[test]
    fn a_page_back_is_asked_for_once_until_it_comes_and_the_beginning_is_known() {
        let mut s = ChatState { me: Some("bob".into()), ..Default::default() };
        let m = |id: u64| stored(id, &format!("m{id}"));
        s.apply(joined("#r", "bob"));
        s.apply(ServerEvent::History { target: "#r".into(), messages: vec![m(5), m(6)], more: true });
        assert!(s.page_back("#r").is_some());
        assert!(s.conversation("#r").unwrap().loading);
        assert_eq!(s.page_back("#r"), None, "one page at a time");
        // The connection dropped: the page is not coming; asking again is possible.
        s.disconnected();
        assert!(!s.conversation("#r").unwrap().loading);
        assert!(s.page_back("#r").is_some());
        s.apply(ServerEvent::History { target: "#r".into(), messages: vec![m(3), m(4)], more: false });
        let conv = s.conversation("#r").unwrap();
        assert!(!conv.loading && !conv.more);
        // The recent messages resent after a reconnect fill a gap; they say nothing of older ones.
        s.apply(ServerEvent::History { target: "#r".into(), messages: vec![m(6), m(7)], more: true });
        assert!(!s.conversation("#r").unwrap().more);
        assert_eq!(s.page_back("#r"), None, "the beginning was reached");
    }

    #[test]
    fn modes_decide_who_may_set_the_topic() {
        let mut s = ChatState { me: Some("bob".into()), ..Default::default() };
        s.apply(joined("#a", "bob"));
        s.apply(ServerEvent::Members {
            channel: "#a".into(),
            modes: "+t".into(),
            members: vec![Member {
                nick: "bob".into(),
                op: false,
                voice: false,
                away: false,
                away_message: None,
            }],
        });
        assert!(!s.may_set_topic("#a"));
        s.apply(ServerEvent::ModeChanged {
            channel: "#a".into(),
            by: "x".into(),
            modes: "-t+l".into(),
            args: vec!["9".into()],
        });
        assert_eq!(s.conversation("#a").unwrap().modes, "+l");
        assert!(s.may_set_topic("#a"));
        s.cycle(1);
        assert_eq!(s.current.as_deref(), Some("#a"));
    }

    #[test]
    fn invitations_wait_until_acted_on_and_list_answers_open_the_browser() {
        let mut s = ChatState { me: Some("bob".into()), ..Default::default() };
        let invite =
            |by: &str| ServerEvent::Invited { channel: "#club".into(), nick: "bob".into(), by: by.into() };
        s.apply(invite("alice"));
        s.apply(invite("carol"));
        assert_eq!(s.invites, [("#club".to_owned(), "carol".to_owned())], "one invitation per channel");
        s.apply(joined("#club", "bob"));
        assert!(s.invites.is_empty(), "joining accepts it");
        s.apply(ServerEvent::Invited { channel: "#x".into(), nick: "dave".into(), by: "bob".into() });
        assert!(s.invites.is_empty());
        assert!(s.conversation("#club").unwrap().lines.iter().any(|l| l.text == "you invited dave to #x"));
        let summary = |name: &str, members| ChannelSummary { channel: name.into(), members, topic: None };
        s.apply(ServerEvent::List { channels: vec![summary("#b", 1), summary("#a", 1), summary("#big", 9)] });
        assert!(s.browsing);
        let names: Vec<&str> = s.channel_list.as_ref().unwrap().iter().map(|c| c.channel.as_str()).collect();
        assert_eq!(names, ["#big", "#a", "#b"]);
    }

    #[test]
    fn a_resumed_session_drops_the_channels_it_is_no_longer_in() {
        let mut s = ChatState { me: Some("bob".into()), ..Default::default() };
        s.apply(joined("#kept", "bob"));
        s.apply(joined("#lost", "bob"));
        s.apply(msg("amy", "bob", "a pm"));
        s.apply(welcome(false, &[]));
        assert_eq!(s.channels(), ["#kept", "#lost"], "a fresh login rejoins instead");
        assert_eq!(s.rejoins(false), ["#kept", "#lost"]);
        // Both rejoins confirmed (the server sends a channel's members on a join).
        for channel in ["#kept", "#lost"] {
            s.apply(ServerEvent::Members { channel: channel.into(), modes: String::new(), members: vec![] });
        }
        s.disconnected();
        s.apply(welcome(true, &["#KEPT"]));
        assert_eq!(s.channels(), ["#kept"]);
        assert!(s.rejoins(true).is_empty(), "nothing to join again");
        assert!(s.conversation("amy").is_some(), "private conversations stay");
        assert!(s.server.iter().any(|l| l.text == "you are no longer in #lost"));

        // A fresh login whose rejoins had not all gone through when the connection dropped:
        // the resumed session is in #a only, and #b, #c are joined again, not given up.
        let mut s = bob_in(&["#a", "#b", "#c"]);
        s.disconnected();
        s.apply(welcome(false, &[]));
        assert_eq!(s.rejoins(false), ["#a", "#b", "#c"]);
        s.disconnected();
        s.apply(welcome(true, &["#a"]));
        assert_eq!(s.channels(), ["#a", "#b", "#c"]);
        assert!(!s.server.iter().any(|l| l.text.starts_with("you are no longer in")));
        assert_eq!(s.rejoins(true), ["#b", "#c"]);
        // Confirmed, #b is kept; #c, refused (no members came), is not tried a third time.
        s.apply(ServerEvent::Members { channel: "#b".into(), modes: String::new(), members: vec![] });
        s.apply(welcome(true, &["#a", "#b"]));
        assert_eq!(s.channels(), ["#a", "#b"]);
        assert!(s.server.iter().any(|l| l.text == "you are no longer in #c"));
        assert!(s.rejoins(true).is_empty());
        // Once confirmed, a later resume without it means it was left (kicked meanwhile).
        s.apply(welcome(true, &["#a"]));
        assert_eq!(s.channels(), ["#a"]);
    }

    #[test]
    fn a_pm_to_me_is_filed_under_the_sender() {
        let mut s = ChatState { me: Some("alice".into()), ..Default::default() };
        s.apply(msg("bob", "alice", "hi"));
        s.apply(msg("alice", "bob", "hello"));
        let conv = s.conversation("bob").unwrap();
        assert_eq!(conv.lines.len(), 2);
        assert!(s.conversation("alice").is_none());
    }

    #[test]
    fn joining_opens_the_channel_and_other_traffic_counts_as_unread() {
        let mut s = ChatState { me: Some("alice".into()), ..Default::default() };
        s.apply(joined("#a", "alice"));
        s.apply(joined("#b", "alice"));
        assert_eq!(s.current.as_deref(), Some("#b"));
        s.apply(msg("bob", "#a", "x"));
        s.apply(msg("bob", "#b", "y"));
        assert_eq!(s.conversation("#a").unwrap().unread, 1);
        assert_eq!(s.conversation("#b").unwrap().unread, 0);
        s.open("#a");
        assert_eq!(s.conversation("#a").unwrap().unread, 0);
    }

    #[test]
    fn kicks_parts_and_nick_changes_update_members() {
        let mut s = ChatState { me: Some("alice".into()), ..Default::default() };
        s.apply(joined("#a", "alice"));
        s.apply(ServerEvent::Members {
            channel: "#a".into(),
            modes: "+t".into(),
            members: vec![
                Member { nick: "alice".into(), op: true, voice: false, away: false, away_message: None },
                Member { nick: "bob".into(), op: false, voice: false, away: false, away_message: None },
            ],
        });
        s.apply(ServerEvent::NickChanged { old: "bob".into(), new: "bobby".into() });
        s.apply(ServerEvent::ModeChanged {
            channel: "#a".into(),
            by: "alice".into(),
            modes: "+o".into(),
            args: vec!["bobby".into()],
        });
        let bobby =
            s.conversation("#a").unwrap().members.iter().find(|m| m.nick == "bobby").cloned().unwrap();
        assert!(bobby.op);
        s.apply(ServerEvent::Kicked {
            channel: "#a".into(),
            nick: "bobby".into(),
            by: "alice".into(),
            reason: None,
        });
        assert_eq!(s.conversation("#a").unwrap().members.len(), 1);
        s.apply(ServerEvent::Kicked {
            channel: "#a".into(),
            nick: "alice".into(),
            by: "x".into(),
            reason: None,
        });
        assert!(s.conversation("#a").is_none());
    }

    #[test]
    fn operators_answers_go_to_the_operator_page_while_it_is_open_and_go_with_the_powers() {
        let mut s = ChatState { me: Some("root".into()), now: 1_000_000, ..Default::default() };
        s.apply(joined("#r", "root"));
        s.open("#r");
        s.apply(ServerEvent::OperStatus { oper: true });
        let texts = |s: &ChatState| {
            s.conversation("#r").unwrap().lines.iter().map(|l| l.text.clone()).collect::<Vec<_>>()
        };
        let kline = |mask: &str, expires| Kline {
            mask: mask.into(),
            reason: Some("spam".into()),
            by: "root".into(),
            at: 5,
            expires,
        };
        // Typed (`/klines`, `/audit`), the answers are lines.
        s.apply(ServerEvent::KlineList {
            klines: vec![kline("10.0.0.0/8", None), kline("potato:bob", Some(1_000_000 + 86_399_000))],
        });
        assert_eq!(
            texts(&s).last().unwrap(),
            "server bans: 10.0.0.0/8 (spam), by root, for good; potato:bob (spam), by root, 24h left"
        );
        let entry = AuditEntry {
            at: 7,
            oper: "potato:root".into(),
            nick: "root".into(),
            action: "kill".into(),
            target: "bob".into(),
            reason: Some("flood".into()),
            from: "203.0.113.9".into(),
        };
        s.apply(ServerEvent::AuditLog { entries: vec![entry.clone()] });
        let line = s.conversation("#r").unwrap().lines.last().unwrap().clone();
        assert_eq!(
            (line.text.as_str(), line.ts),
            ("root (potato:root, from 203.0.113.9) kill bob: flood", 7)
        );
        // With the page open: kept for the page, no line; a refusal is shown there too.
        s.administering = true;
        let before = texts(&s);
        s.apply(ServerEvent::KlineList { klines: vec![] });
        s.apply(ServerEvent::AuditLog { entries: vec![entry.clone(), entry] });
        assert_eq!(texts(&s), before);
        assert_eq!((s.klines.as_ref().map(Vec::len), s.audit.as_ref().map(Vec::len)), (Some(0), Some(2)));
        s.apply(ServerEvent::Error {
            code: ErrorCode::NoSuchKline,
            message: "no server ban on x!*@*".into(),
            txn: None,
            nicks: vec![],
        });
        assert_eq!(s.admin_problem.as_deref(), Some("no server ban on x!*@*"));
        // Someone else's refusal (a message sent from another tab) is not the page's.
        s.admin_problem = None;
        s.apply(ServerEvent::Error {
            code: ErrorCode::NotOnChannel,
            message: "not there".into(),
            txn: None,
            nicks: vec![],
        });
        assert_eq!(s.admin_problem, None);
        // A ban from a member's menu: its answer updates the list without a line, once.
        s.administering = false;
        s.klines_asked = true;
        let before = texts(&s);
        s.apply(ServerEvent::KlineList { klines: vec![kline("10.0.0.0/8", None)] });
        assert_eq!(texts(&s), before);
        assert!(!s.klines_asked);
        s.apply(ServerEvent::KlineList { klines: vec![] });
        assert_eq!(texts(&s).last().unwrap(), "no server bans", "a typed /klines afterwards shows");
        // No longer an operator: the page closes and its lists are forgotten.
        s.administering = true;
        s.apply(ServerEvent::OperStatus { oper: false });
        assert!(
            !s.oper
                && !s.administering
                && s.klines.is_none()
                && s.audit.is_none()
                && s.admin_problem.is_none()
        );
        // A new login is no operator's until the server says so.
        s.apply(ServerEvent::OperStatus { oper: true });
        s.apply(ServerEvent::Welcome {
            nick: "root".into(),
            account: None,
            host: "h".into(),
            server: "chattr".into(),
            version: "0".into(),
            limits: crate::protocol::Limits {
                max_text_bytes: 1,
                max_frame_bytes: 1,
                burst: 1,
                per_second: 1,
                allowance: None,
            },
            resume: None,
            resumed: false,
            channels: vec![],
            default_channels: vec![],
        });
        assert!(!s.oper);
    }

    #[test]
    fn lengths_of_time_read_to_the_nearest_unit() {
        let cases = [
            (0, "0s"),
            (119_000, "119s"),
            (150_000, "3m"),
            (7_199_000, "120m"),
            (86_399_000, "24h"),
            (172_800_000, "2d"),
            (3 * 86_400_000 + 50_000_000, "4d"),
        ];
        for (ms, words) in cases {
            assert_eq!(span_words(ms), words, "{ms}");
        }
    }

    #[test]
    fn the_ban_list_asked_by_the_panel_stays_in_the_panel_and_follows_bans() {
        let mut s = ChatState { me: Some("op".into()), ..Default::default() };
        s.apply(joined("#r", "op"));
        s.open("#r");
        let lines = |s: &ChatState| s.conversation("#r").unwrap().lines.len();
        let before = lines(&s);
        s.ask_bans("#r");
        let entry = |mask: &str| BanEntry { mask: mask.into(), nick: None, by: None, at: None };
        s.apply(ServerEvent::BanList { channel: "#r".into(), bans: vec![entry("a!*@*")] });
        assert_eq!(lines(&s), before, "asked by the panel: no line");
        let ban = ServerEvent::Banned {
            channel: "#r".into(),
            mask: "*!*@c.cloak".into(),
            by: "op".into(),
            nick: Some("bob".into()),
        };
        s.apply(ban);
        s.apply(ServerEvent::Unbanned { channel: "#r".into(), mask: "A!*@*".into(), by: "op".into() });
        let bans = s.conversation("#r").unwrap().bans.clone().unwrap();
        assert_eq!(bans.len(), 1);
        assert_eq!((bans[0].mask.as_str(), bans[0].nick.as_deref()), ("*!*@c.cloak", Some("bob")));
        // Typed (`/bans`), the answer is a line too.
        let before = lines(&s);
        s.apply(ServerEvent::BanList { channel: "#r".into(), bans: vec![] });
        assert_eq!(lines(&s), before + 1);
        assert_eq!(s.conversation("#r").unwrap().lines.last().unwrap().text, "#r has no bans");
    }

    #[test]
    fn celery_rights_follow_the_registration_and_your_account() {
        let mut s = ChatState { me: Some("Alice".into()), ..Default::default() };
        s.apply(joined("#r", "Alice"));
        let me_op = |op: bool| ServerEvent::Members {
            channel: "#r".into(),
            modes: "+nt".into(),
            members: vec![Member { nick: "Alice".into(), op, voice: false, away: false, away_message: None }],
        };
        s.apply(me_op(true));
        assert_eq!(s.celery_rights("#r"), CeleryRights::default(), "a guest may not register");
        s.account = Some("potato:Alice".into());
        assert!(s.celery_rights("#r").register);
        s.apply(me_op(false));
        assert!(!s.celery_rights("#r").register, "only an op may register");
        let registration = |founder: Option<&str>, trusted: &[&str]| ServerEvent::Registration {
            channel: "#r".into(),
            founder: founder.map(Into::into),
            ops: vec!["potato:bob".into(), "potato:alice".into()],
            trusted: trusted.iter().map(|&t| t.into()).collect(),
        };
        s.apply(registration(Some("potato:alice"), &[]));
        assert_eq!(s.celery_rights("#r"), CeleryRights { register: false, edit_ops: true, founder: true });
        s.apply(registration(Some("potato:bob"), &[]));
        assert_eq!(s.celery_rights("#r"), CeleryRights::default(), "on the op list, not trusted");
        s.apply(registration(Some("potato:bob"), &["potato:alice"]));
        assert_eq!(s.celery_rights("#r"), CeleryRights { register: false, edit_ops: true, founder: false });
        s.apply(registration(None, &[]));
        assert_eq!(s.conversation("#r").unwrap().registration, None, "dropped");
    }

    #[test]
    fn presence_comes_from_the_channels_you_share_with_the_away_message() {
        let mut s = ChatState { me: Some("me".into()), ..Default::default() };
        s.apply(joined("#r", "me"));
        s.apply(msg("Bob", "me", "hi"));
        assert_eq!(s.presence("bob"), None, "no shared channel lists bob: nothing is claimed");
        s.apply(joined("#r", "Bob"));
        assert_eq!(s.presence("bob").as_deref(), Some("online"));
        s.apply(ServerEvent::Away { nick: "BOB".into(), message: Some("lunch".into()) });
        assert_eq!(s.presence("bob").as_deref(), Some("away: lunch"));
        let bob = s.conversation("#r").unwrap().members.iter().find(|m| m.nick == "Bob").cloned().unwrap();
        assert_eq!((bob.away, bob.away_message.as_deref()), (true, Some("lunch")));
        s.apply(ServerEvent::Away { nick: "bob".into(), message: None });
        assert_eq!(s.presence("bob").as_deref(), Some("online"));
    }

    #[test]
    fn a_refusal_ends_the_wait_for_a_history_page_or_a_ban_list() {
        let mut s = ChatState { me: Some("me".into()), ..Default::default() };
        s.apply(joined("#r", "me"));
        s.apply(ServerEvent::History { target: "#r".into(), messages: vec![], more: true });
        s.conversation_mut("#r").oldest_id = Some(10);
        assert!(s.page_back("#r").is_some());
        s.ask_bans("#r");
        let refusal = ServerEvent::Error {
            code: crate::protocol::ErrorCode::RateLimited,
            message: "slow down".into(),
            txn: None,
            nicks: vec![],
        };
        s.apply(refusal);
        let conv = s.conversation("#r").unwrap();
        assert!(!conv.loading && !conv.bans_asked);
        assert!(s.page_back("#r").is_some(), "paging back works again");
    }
}

//! A channel's state: members with their roles, modes, topic, bans and invites.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use app::protocol::text::{validate_text, MAX_TOPIC_BYTES};
use app::protocol::{names::fold, BanEntry, ChatMessage, ErrorCode, Member, ProtocolError, ServerEvent};
use serde::{Deserialize, Serialize};
use wildmatch::WildMatch;

use super::ConnId;
use crate::store::ChannelRecord;

type Result<T> = std::result::Result<T, ProtocolError>;

/// Most bans one channel keeps.
pub(crate) const MAX_BANS: usize = 100;

fn err(code: ErrorCode, message: impl Into<String>) -> ProtocolError {
    ProtocolError::new(code, message)
}

/// A member role that `/op`, `/voice` and `/mode ±o ±v` give and take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Op,
    Voice,
}

impl Role {
    /// The role a mode letter stands for.
    pub(crate) fn of_mode(letter: char) -> Option<Self> {
        match letter {
            'o' => Some(Self::Op),
            'v' => Some(Self::Voice),
            _ => None,
        }
    }

    fn letter(self) -> char {
        match self {
            Self::Op => 'o',
            Self::Voice => 'v',
        }
    }
}

/// What `/unban` (or `/mode -b`) lifts: bans with this mask, and, when it named someone online
/// (known by these folded masks), every ban covering them.
#[derive(Debug, Clone)]
pub(crate) struct BanLift {
    /// As the user gave it, for the refusal when nothing matches.
    pub arg: String,
    pub mask: String,
    pub user_masks: Option<Vec<String>>,
}

/// Who acts on a channel: one of its members, or the app through the server API, which may do
/// what an operator may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Actor {
    Member(ConnId),
    App,
}

/// Someone a command acts on.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) conn: ConnId,
    /// Their nick as they spell it, for events.
    pub(crate) nick: String,
    /// As the command named them, for refusals.
    pub(crate) named: String,
}

/// One change `/mode` asks of a channel, its nicks and masks already resolved.
#[derive(Debug, Clone)]
pub(crate) enum ModeChange {
    /// One of `m i t s p`, on or off.
    Flag(char, bool),
    Key(Option<String>),
    Limit(Option<usize>),
    Role {
        role: Role,
        on: bool,
        member: Target,
    },
    Ban(Ban),
    Unban(BanLift),
}

/// A member's roles in one channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Roles {
    pub op: bool,
    pub voice: bool,
}

/// Channel modes other than member roles and bans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Modes {
    /// +m: only ops and voiced members may speak.
    pub moderated: bool,
    /// +i: joining needs an invite.
    pub invite_only: bool,
    /// +t: only ops may change the topic (on by default).
    pub topic_ops_only: bool,
    /// +s: secret. Not listed, and its topic, members and existence are hidden from everyone
    /// outside it (`/list`, `/names`, `/topic`, `/whois`).
    pub secret: bool,
    /// +p: private. Listed by name and size only; its topic and members are hidden from
    /// everyone outside it, and `/whois` does not show it.
    pub private: bool,
    /// +k: joining needs this key.
    pub key: Option<String>,
    /// +l: at most this many members.
    pub limit: Option<usize>,
}

impl Default for Modes {
    fn default() -> Self {
        Self {
            moderated: false,
            invite_only: false,
            topic_ops_only: true,
            secret: false,
            private: false,
            key: None,
            limit: None,
        }
    }
}

/// Longest channel key (`+k`), in characters.
const MAX_KEY_CHARS: usize = 32;

/// Checks a channel key, as `/mode +k` and the app's channel settings take it.
pub(crate) fn check_key(key: &str) -> Result<()> {
    if key.is_empty()
        || key.chars().count() > MAX_KEY_CHARS
        || key.chars().any(|c| c.is_control() || c.is_whitespace() || c == ',')
    {
        return Err(ProtocolError::new(
            ErrorCode::BadArguments,
            "a key is 1 to 32 characters, without spaces or commas",
        ));
    }
    Ok(())
}

impl Modes {
    /// The mode string shown to members, e.g. `+itl 20` (the key itself is not shown).
    pub(crate) fn describe(&self) -> String {
        let mut flags = String::from("+");
        let mut args = Vec::new();
        for (on, c) in [
            (self.invite_only, 'i'),
            (self.moderated, 'm'),
            (self.private, 'p'),
            (self.secret, 's'),
            (self.topic_ops_only, 't'),
        ] {
            if on {
                flags.push(c);
            }
        }
        if self.key.is_some() {
            flags.push('k');
        }
        if let Some(limit) = self.limit {
            flags.push('l');
            args.push(limit.to_string());
        }
        std::iter::once(flags).chain(args).collect::<Vec<_>>().join(" ")
    }
}

/// A channel's topic and who set it when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Topic {
    pub text: String,
    pub set_by: String,
    pub set_at: u64,
}

/// A ban mask (`nick!user@host` with `*` and `?` wildcards), kept in its folded form too, and
/// what is known of how it came: who it was set on and by, and when (ms since the epoch). A
/// registered channel stores the mask only.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "BanCopy", into = "BanCopy")]
pub(crate) struct Ban {
    pub mask: String,
    folded: WildMatch,
    pub nick: Option<String>,
    pub by: Option<String>,
    pub at: Option<u64>,
}

/// A ban as a snapshot of the cluster's state carries it: its matcher is made again.
#[derive(Serialize, Deserialize)]
struct BanCopy {
    mask: String,
    nick: Option<String>,
    by: Option<String>,
    at: Option<u64>,
}

impl From<BanCopy> for Ban {
    fn from(b: BanCopy) -> Self {
        Self { nick: b.nick, by: b.by, at: b.at, ..Ban::new(&b.mask) }
    }
}

impl From<Ban> for BanCopy {
    fn from(b: Ban) -> Self {
        Self { mask: b.mask, nick: b.nick, by: b.by, at: b.at }
    }
}

impl Ban {
    pub(crate) fn new(mask: &str) -> Self {
        Self { mask: mask.to_owned(), folded: WildMatch::new(&fold(mask)), nick: None, by: None, at: None }
    }

    /// A ban set now by `by`, on `nick` when it was named by nick.
    pub(crate) fn set(mask: &str, nick: Option<String>, by: String, at: u64) -> Self {
        Self { nick, by: Some(by), at: Some(at), ..Self::new(mask) }
    }

    pub(crate) fn entry(&self) -> BanEntry {
        BanEntry { mask: self.mask.clone(), nick: self.nick.clone(), by: self.by.clone(), at: self.at }
    }

    /// Whether the ban covers a user known by these (already folded) masks.
    pub(crate) fn matches_any(&self, folded_masks: &[String]) -> bool {
        folded_masks.iter().any(|m| self.folded.matches(m))
    }
}

/// How long an invite stays good.
pub(crate) const INVITE_TTL: Duration = Duration::from_secs(3600);
/// Most invites one channel keeps; past that the oldest goes.
const MAX_INVITES: usize = 200;

/// Who an invite is for: the session that was invited, or — when that session was logged in to
/// an account — the account, so the person can still use it from a new session. Never a nick:
/// whoever takes the nick later is someone else.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) enum Invitee {
    Session(ConnId),
    Account(String),
}

/// One channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Channel {
    /// As first spelled by its creator.
    pub name: String,
    pub members: HashMap<ConnId, Roles>,
    pub modes: Modes,
    pub topic: Option<Topic>,
    pub bans: Vec<Ban>,
    /// Invites not used yet, with when they expire (Unix milliseconds: the time of the
    /// operation that made them, which every node of a cluster applies alike).
    #[serde(with = "invite_list")]
    pub invites: HashMap<Invitee, u64>,
    /// The newest stored messages, oldest first, sent to whoever joins.
    pub recent: VecDeque<ChatMessage>,
}

/// Invites in a snapshot of the cluster's state: a list of pairs (a JSON object's keys are
/// strings, and an invitee is not one), in the invitees' order.
mod invite_list {
    use std::collections::HashMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Invitee;

    pub(super) fn serialize<S: Serializer>(invites: &HashMap<Invitee, u64>, s: S) -> Result<S::Ok, S::Error> {
        let mut list: Vec<(&Invitee, &u64)> = invites.iter().collect();
        list.sort();
        list.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<HashMap<Invitee, u64>, D::Error> {
        Ok(Vec::<(Invitee, u64)>::deserialize(d)?.into_iter().collect())
    }
}

impl Channel {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            members: HashMap::new(),
            modes: Modes::default(),
            topic: None,
            bans: Vec::new(),
            invites: HashMap::new(),
            recent: VecDeque::new(),
        }
    }

    /// A registered channel coming back to life: its stored topic, bans and modes.
    pub(crate) fn from_record(record: &ChannelRecord) -> Self {
        let mut ch = Self::new(&record.name);
        ch.modes = Modes {
            moderated: record.flags.contains('m'),
            invite_only: record.flags.contains('i'),
            topic_ops_only: record.flags.contains('t'),
            secret: record.flags.contains('s'),
            private: record.flags.contains('p'),
            key: record.chan_key.clone(),
            limit: record.user_limit.and_then(|l| usize::try_from(l).ok()),
        };
        ch.topic = record.topic.clone().map(|text| Topic {
            text,
            set_by: record.topic_by.clone().unwrap_or_default(),
            set_at: record.topic_at.unwrap_or(0).max(0) as u64,
        });
        ch.bans = record.bans.iter().map(|m| Ban::new(m)).collect();
        ch
    }

    /// Copies the state a registration keeps (topic, bans, modes) into `record`.
    pub(crate) fn save_into(&self, record: &mut ChannelRecord) {
        let m = &self.modes;
        record.flags = [
            (m.moderated, 'm'),
            (m.invite_only, 'i'),
            (m.topic_ops_only, 't'),
            (m.secret, 's'),
            (m.private, 'p'),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, c)| *c)
        .collect();
        record.chan_key = m.key.clone();
        record.user_limit = m.limit.and_then(|l| i64::try_from(l).ok());
        record.topic = self.topic.as_ref().map(|t| t.text.clone());
        record.topic_by = self.topic.as_ref().map(|t| t.set_by.clone());
        record.topic_at = self.topic.as_ref().map(|t| t.set_at as i64);
        record.bans = self.bans.iter().map(|b| b.mask.clone()).collect();
    }

    /// Keeps a message in the recent ring, which holds at most `cap`; false when the ring has
    /// it already. (A channel nobody was in is loaded with its stored history when someone joins:
    /// a message stored before that but delivered after is in it, and so was in the joiner's
    /// history.)
    pub(crate) fn remember(&mut self, message: &ChatMessage, cap: usize) -> bool {
        if cap == 0 {
            return true;
        }
        if self.recent.iter().any(|m| m.id == message.id) {
            return false;
        }
        if self.recent.len() >= cap {
            self.recent.pop_front();
        }
        self.recent.push_back(message.clone());
        true
    }

    pub(crate) fn roles(&self, conn: ConnId) -> Option<Roles> {
        self.members.get(&conn).copied()
    }

    pub(crate) fn is_op(&self, conn: ConnId) -> bool {
        self.roles(conn).is_some_and(|r| r.op)
    }

    pub(crate) fn is_banned(&self, folded_masks: &[String]) -> bool {
        self.bans.iter().any(|b| b.matches_any(folded_masks))
    }

    /// Records an invite for `invitees` until `now` (Unix milliseconds) + [`INVITE_TTL`].
    pub(crate) fn add_invites(&mut self, invitees: impl IntoIterator<Item = Invitee>, now: u64) {
        self.invites.retain(|_, expires| *expires > now);
        for invitee in invitees {
            if self.invites.len() >= MAX_INVITES {
                // (Ties broken by the invitee, so every node of a cluster drops the same one.)
                let oldest = self.invites.iter().min_by_key(|(i, e)| (**e, *i)).map(|(i, _)| i.clone());
                if let Some(oldest) = oldest {
                    self.invites.remove(&oldest);
                }
            }
            self.invites.insert(invitee, now.saturating_add(INVITE_TTL.as_millis() as u64));
        }
    }

    /// Whether the session `conn` (logged in to the account `account`, a key, if any) holds an
    /// invite that has not expired.
    pub(crate) fn is_invited(&self, conn: ConnId, account: Option<&str>, now: u64) -> bool {
        let valid = |invitee: &Invitee| self.invites.get(invitee).is_some_and(|e| *e > now);
        valid(&Invitee::Session(conn)) || account.is_some_and(|a| valid(&Invitee::Account(a.to_owned())))
    }

    /// Uses up the invites of a session and its account.
    pub(crate) fn forget_invites(&mut self, conn: ConnId, account: Option<&str>) {
        self.invites.remove(&Invitee::Session(conn));
        if let Some(a) = account {
            self.invites.remove(&Invitee::Account(a.to_owned()));
        }
    }

    /// Why someone (known by these folded masks, `invited` or not, giving `key`) may not join.
    pub(crate) fn refusal(
        &self,
        folded_masks: &[String],
        invited: bool,
        key: Option<&str>,
    ) -> Option<ProtocolError> {
        let (code, why) = if self.is_banned(folded_masks) {
            (ErrorCode::Banned, format!("you are banned from {}", self.name))
        } else if self.modes.invite_only && !invited {
            (ErrorCode::InviteOnly, format!("{} is invite-only", self.name))
        } else if self.modes.key.as_deref().is_some_and(|k| Some(k) != key) && !invited {
            (ErrorCode::BadKey, format!("{} needs the right key", self.name))
        } else if self.modes.limit.is_some_and(|l| self.members.len() >= l) {
            (ErrorCode::ChannelFull, format!("{} is full", self.name))
        } else {
            return None;
        };
        Some(ProtocolError::new(code, why))
    }

    /// Whether the channel hides its topic and members from those outside it (+s or +p).
    pub(crate) fn is_hidden(&self) -> bool {
        self.modes.secret || self.modes.private
    }

    /// Whether a member may speak under the current modes.
    pub(crate) fn may_speak(&self, conn: ConnId) -> bool {
        match self.roles(conn) {
            Some(r) => !self.modes.moderated || r.op || r.voice,
            None => false,
        }
    }

    /// The member list, ops first, then voiced, then by nick.
    /// The members as clients see them; `nick_of` gives a member's nick and away message.
    pub(crate) fn member_list(
        &self,
        nick_of: impl Fn(ConnId) -> Option<(String, Option<String>)>,
    ) -> Vec<Member> {
        let mut members: Vec<Member> = self
            .members
            .iter()
            .filter_map(|(&conn, roles)| {
                let (nick, away_message) = nick_of(conn)?;
                Some(Member {
                    nick,
                    op: roles.op,
                    voice: roles.voice,
                    away: away_message.is_some(),
                    away_message,
                })
            })
            .collect();
        members.sort_by_cached_key(|m| (!m.op, !m.voice, fold(&m.nick)));
        members
    }
}

/// The channel's rules. Each checks that the member acting (`by`, whose nick is `by_nick`) may
/// do it, changes the channel, and returns the events for its members; the caller delivers
/// them, and updates what lives outside the channel (a client's list of channels, the store).
impl Channel {
    /// Refuses someone who is not in the channel.
    pub(crate) fn require_member(&self, conn: ConnId) -> Result<()> {
        if self.members.contains_key(&conn) {
            Ok(())
        } else {
            Err(err(ErrorCode::NotOnChannel, format!("you are not in {}", self.name)))
        }
    }

    /// Refuses someone who is not an operator of the channel.
    pub(crate) fn require_op(&self, conn: ConnId) -> Result<()> {
        self.require_member(conn)?;
        if self.is_op(conn) {
            Ok(())
        } else {
            Err(err(ErrorCode::NotOp, format!("you are not an operator in {}", self.name)))
        }
    }

    /// Refuses an actor who is not in the channel (the app always may).
    fn check_member(&self, by: Actor) -> Result<()> {
        match by {
            Actor::Member(conn) => self.require_member(conn),
            Actor::App => Ok(()),
        }
    }

    /// Refuses an actor who is not an operator (the app always may).
    fn check_op(&self, by: Actor) -> Result<()> {
        match by {
            Actor::Member(conn) => self.require_op(conn),
            Actor::App => Ok(()),
        }
    }

    fn has_op_rights(&self, by: Actor) -> bool {
        match by {
            Actor::Member(conn) => self.is_op(conn),
            Actor::App => true,
        }
    }

    /// Refuses to act on someone who is not in the channel.
    fn require_target(&self, target: &Target) -> Result<()> {
        if self.members.contains_key(&target.conn) {
            Ok(())
        } else {
            Err(err(ErrorCode::UserNotOnChannel, format!("{} is not in {}", target.named, self.name)))
        }
    }

    /// A member leaves.
    pub(crate) fn part(&self, by: ConnId, by_nick: String, reason: Option<String>) -> Result<ServerEvent> {
        self.require_member(by)?;
        Ok(ServerEvent::Parted { channel: self.name.clone(), nick: by_nick, reason })
    }

    /// Sets the topic, or clears it with an empty text; under +t only operators may.
    pub(crate) fn set_topic(
        &mut self,
        by: Actor,
        by_nick: String,
        text: String,
        now_ms: u64,
    ) -> Result<ServerEvent> {
        self.check_member(by)?;
        if self.modes.topic_ops_only && !self.has_op_rights(by) {
            return Err(err(
                ErrorCode::NotOp,
                format!("only operators may change the topic of {}", self.name),
            ));
        }
        if !text.is_empty() {
            validate_text("topic", &text, MAX_TOPIC_BYTES, false)?;
        }
        self.topic = (!text.is_empty()).then(|| Topic { text, set_by: by_nick.clone(), set_at: now_ms });
        // Unlike the stored state, the event names who cleared a topic.
        Ok(ServerEvent::Topic {
            channel: self.name.clone(),
            topic: self.topic.as_ref().map(|t| t.text.clone()),
            set_by: Some(by_nick),
            set_at: self.topic.as_ref().map(|t| t.set_at),
        })
    }

    /// An operator kicks a member. The caller removes them.
    pub(crate) fn kick(
        &self,
        by: Actor,
        by_nick: String,
        target: Target,
        reason: Option<String>,
    ) -> Result<ServerEvent> {
        self.check_op(by)?;
        self.require_target(&target)?;
        Ok(ServerEvent::Kicked { channel: self.name.clone(), nick: target.nick, by: by_nick, reason })
    }

    /// An operator gives or takes a member's role; the event, when that changed anything.
    pub(crate) fn set_role(
        &mut self,
        by: Actor,
        by_nick: String,
        change: (Role, bool),
        target: Target,
    ) -> Result<Option<ServerEvent>> {
        self.check_op(by)?;
        self.require_target(&target)?;
        let (role, on) = change;
        let roles = self.members.entry(target.conn).or_default();
        let slot = match role {
            Role::Op => &mut roles.op,
            Role::Voice => &mut roles.voice,
        };
        let changed = std::mem::replace(slot, on) != on;
        let modes = format!("{}{}", if on { '+' } else { '-' }, role.letter());
        Ok(changed.then(|| ServerEvent::ModeChanged {
            channel: self.name.clone(),
            by: by_nick,
            modes,
            args: vec![target.nick],
        }))
    }

    /// An operator adds a ban; the event, or none when the channel has the mask already.
    pub(crate) fn add_ban(&mut self, by: Actor, ban: Ban) -> Result<Option<ServerEvent>> {
        self.check_op(by)?;
        if self.bans.iter().any(|b| fold(&b.mask) == fold(&ban.mask)) {
            return Ok(None);
        }
        if self.bans.len() >= MAX_BANS {
            return Err(err(ErrorCode::BanListFull, format!("{} already has {MAX_BANS} bans", self.name)));
        }
        let event = ServerEvent::Banned {
            channel: self.name.clone(),
            mask: ban.mask.clone(),
            by: ban.by.clone().unwrap_or_default(),
            nick: ban.nick.clone(),
        };
        self.bans.push(ban);
        Ok(Some(event))
    }

    /// An operator lifts bans; an event for each (at least one, or it is refused).
    pub(crate) fn lift_bans(&mut self, by: Actor, by_nick: &str, lift: &BanLift) -> Result<Vec<ServerEvent>> {
        self.check_op(by)?;
        let mut removed = Vec::new();
        self.bans.retain(|b| {
            let hit = fold(&b.mask) == fold(&lift.mask)
                || lift.user_masks.as_ref().is_some_and(|m| b.matches_any(m));
            if hit {
                removed.push(b.mask.clone());
            }
            !hit
        });
        if removed.is_empty() {
            return Err(err(ErrorCode::NoSuchBan, format!("no ban in {} matches {}", self.name, lift.arg)));
        }
        Ok(removed
            .into_iter()
            .map(|mask| ServerEvent::Unbanned { channel: self.name.clone(), mask, by: by_nick.to_owned() })
            .collect())
    }

    /// Refuses an invite from `by`: only members may, and under +i only operators.
    pub(crate) fn may_invite(&self, by: ConnId) -> Result<()> {
        self.require_member(by)?;
        if self.modes.invite_only && !self.is_op(by) {
            return Err(err(ErrorCode::NotOp, format!("only operators may invite to {}", self.name)));
        }
        Ok(())
    }

    /// A member invites someone (also known by `invitees`); under +i only operators may. The
    /// event is for the two of them, not the channel.
    pub(crate) fn invite(
        &mut self,
        by: ConnId,
        by_nick: String,
        target: Target,
        invitees: impl IntoIterator<Item = Invitee>,
        now: u64,
    ) -> Result<ServerEvent> {
        self.may_invite(by)?;
        if self.members.contains_key(&target.conn) {
            let why = format!("{} is already in {}", target.named, self.name);
            return Err(err(ErrorCode::AlreadyOnChannel, why));
        }
        self.add_invites(invitees, now);
        Ok(ServerEvent::Invited { channel: self.name.clone(), nick: target.nick, by: by_nick })
    }

    /// An operator changes modes as a whole, on this channel taken by value: the changed
    /// channel comes back only when every part was accepted, so a refused part leaves the
    /// caller's channel exactly as it was. The parts are taken in order, each made ready (its nick or mask looked
    /// up, by `ready`, which sees the channel as the parts before left it) just before it
    /// applies, so the first part that fails, in whatever way, is the one refused. Roles and
    /// bans each get their usual event; flags, key and limit that changed go in one
    /// `mode_changed`.
    pub(crate) fn change_modes<A>(
        mut self,
        by: Actor,
        by_nick: &str,
        asked: Vec<A>,
        mut ready: impl FnMut(&Channel, A) -> Result<ModeChange>,
    ) -> Result<(Self, Vec<ServerEvent>)> {
        self.check_op(by)?;
        let mut events = Vec::new();
        let (mut flags, mut args) = (String::new(), Vec::new());
        let mut announce = |on: bool, letter: char, arg: Option<String>| {
            flags.push(if on { '+' } else { '-' });
            flags.push(letter);
            args.extend(arg);
        };
        for asked in asked {
            match ready(&self, asked)? {
                ModeChange::Flag(letter, on) => {
                    let modes = &mut self.modes;
                    let slot = match letter {
                        'm' => &mut modes.moderated,
                        'i' => &mut modes.invite_only,
                        's' => &mut modes.secret,
                        'p' => &mut modes.private,
                        _ => &mut modes.topic_ops_only,
                    };
                    if std::mem::replace(slot, on) != on {
                        announce(on, letter, None);
                    }
                }
                ModeChange::Key(key) => {
                    if std::mem::replace(&mut self.modes.key, key.clone()) != key {
                        announce(key.is_some(), 'k', key);
                    }
                }
                ModeChange::Limit(limit) => {
                    if std::mem::replace(&mut self.modes.limit, limit) != limit {
                        announce(limit.is_some(), 'l', limit.map(|l| l.to_string()));
                    }
                }
                ModeChange::Role { role, on, member } => {
                    events.extend(self.set_role(by, by_nick.to_owned(), (role, on), member)?);
                }
                ModeChange::Ban(ban) => events.extend(self.add_ban(by, ban)?),
                ModeChange::Unban(lift) => events.extend(self.lift_bans(by, by_nick, &lift)?),
            }
        }
        if !flags.is_empty() {
            events.push(ServerEvent::ModeChanged {
                channel: self.name.clone(),
                by: by_nick.to_owned(),
                modes: flags,
                args,
            });
        }
        Ok((self, events))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bans_match_case_insensitively_with_wildcards() {
        let masks = vec![fold("Bob!guest@abc.cloak"), fold("Bob!guest@203.0.113.9")];
        assert!(Ban::new("bob!*@*").matches_any(&masks));
        assert!(Ban::new("*!*@ABC.cloak").matches_any(&masks));
        assert!(Ban::new("*!*@203.0.113.*").matches_any(&masks));
        assert!(Ban::new("b?b!*@*").matches_any(&masks));
        assert!(!Ban::new("alice!*@*").matches_any(&masks));
        assert!(!Ban::new("*!*@def.cloak").matches_any(&masks));
    }

    #[test]
    fn a_channel_round_trips_through_its_record() {
        let mut ch = Channel::new("#Rust");
        ch.modes = Modes {
            moderated: true,
            invite_only: false,
            topic_ops_only: true,
            secret: true,
            private: false,
            key: Some("k".into()),
            limit: Some(9),
        };
        ch.topic = Some(Topic { text: "hi".into(), set_by: "alice".into(), set_at: 42 });
        ch.bans = vec![Ban::new("*!*@evil")];
        let mut rec =
            ChannelRecord { name: "#Rust".into(), founder: "potato:alice".into(), ..Default::default() };
        ch.save_into(&mut rec);
        assert_eq!(rec.flags, "mts");
        let back = Channel::from_record(&rec);
        assert_eq!(back.modes, ch.modes);
        assert_eq!(back.topic, ch.topic);
        assert_eq!(back.bans.iter().map(|b| b.mask.as_str()).collect::<Vec<_>>(), vec!["*!*@evil"]);
    }

    #[test]
    fn the_recent_ring_keeps_the_newest() {
        let mut ch = Channel::new("#r");
        for id in 1..=5 {
            let m = ChatMessage {
                id,
                ts: id,
                from: "a".into(),
                target: "#r".into(),
                text: "x".into(),
                action: false,
                bot: false,
                txn: None,
            };
            assert!(ch.remember(&m, 3));
            assert!(!ch.remember(&m, 3), "a message the ring has is not kept twice");
        }
        assert_eq!(ch.recent.iter().map(|m| m.id).collect::<Vec<_>>(), vec![3, 4, 5]);
    }

    #[test]
    fn invites_are_for_a_session_or_an_account_and_expire() {
        let t0 = 1_700_000_000_000;
        let mut ch = Channel::new("#i");
        ch.add_invites([Invitee::Session(7), Invitee::Account("potato:bob".into())], t0);
        assert!(ch.is_invited(7, None, t0));
        assert!(ch.is_invited(8, Some("potato:bob"), t0));
        assert!(!ch.is_invited(8, None, t0), "another session on any nick is not invited");
        assert!(!ch.is_invited(8, Some("potato:carol"), t0));
        let ttl = INVITE_TTL.as_millis() as u64;
        assert!(ch.is_invited(7, None, t0 + ttl - 1));
        assert!(!ch.is_invited(7, None, t0 + ttl), "invites expire");
        ch.forget_invites(8, Some("potato:bob"));
        assert!(!ch.is_invited(9, Some("potato:bob"), t0));
        assert!(ch.is_invited(7, None, t0));
        for i in 0..1000 {
            ch.add_invites([Invitee::Session(100 + i)], t0);
        }
        assert_eq!(ch.invites.len(), MAX_INVITES);
    }

    #[test]
    fn invites_survive_a_snapshot() {
        let mut ch = Channel::new("#i");
        ch.add_invites([Invitee::Session(7), Invitee::Account("potato:bob".into())], 1_000);
        let json = serde_json::to_string(&ch).expect("a channel with invites is written out");
        let back: Channel = serde_json::from_str(&json).expect("and read back");
        assert_eq!(back.invites, ch.invites);
        assert!(back.is_invited(7, None, 1_000) && back.is_invited(8, Some("potato:bob"), 1_000));
    }

    #[test]
    fn mode_strings_list_flags_and_limit_but_not_the_key() {
        let mut m = Modes::default();
        assert_eq!(m.describe(), "+t");
        m.invite_only = true;
        m.key = Some("sekrit".into());
        m.limit = Some(20);
        assert_eq!(m.describe(), "+itkl 20");
        m.topic_ops_only = false;
        m.invite_only = false;
        m.key = None;
        m.limit = None;
        assert_eq!(m.describe(), "+");
    }
}

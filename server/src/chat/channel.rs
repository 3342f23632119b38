//! A channel's state: members with their roles, modes, topic, bans and invites.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use app::protocol::{names::fold, BanEntry, ChatMessage, ErrorCode, Member, ProtocolError};
use wildmatch::WildMatch;

use super::ConnId;
use crate::store::ChannelRecord;

/// A member's roles in one channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Roles {
    pub op: bool,
    pub voice: bool,
}

/// Channel modes other than member roles and bans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modes {
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

impl Modes {
    /// The mode string shown to members, e.g. `+itl 20` (the key itself is not shown).
    pub fn describe(&self) -> String {
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub text: String,
    pub set_by: String,
    pub set_at: u64,
}

/// A ban mask (`nick!user@host` with `*` and `?` wildcards), kept in its folded form too, and
/// what is known of how it came: who it was set on and by, and when (ms since the epoch). A
/// registered channel stores the mask only.
#[derive(Debug, Clone)]
pub struct Ban {
    pub mask: String,
    folded: WildMatch,
    pub nick: Option<String>,
    pub by: Option<String>,
    pub at: Option<u64>,
}

impl Ban {
    pub fn new(mask: &str) -> Self {
        Self { mask: mask.to_owned(), folded: WildMatch::new(&fold(mask)), nick: None, by: None, at: None }
    }

    /// A ban set now by `by`, on `nick` when it was named by nick.
    pub fn set(mask: &str, nick: Option<String>, by: String, at: u64) -> Self {
        Self { nick, by: Some(by), at: Some(at), ..Self::new(mask) }
    }

    pub fn entry(&self) -> BanEntry {
        BanEntry { mask: self.mask.clone(), nick: self.nick.clone(), by: self.by.clone(), at: self.at }
    }

    /// Whether the ban covers a user known by these (already folded) masks.
    pub fn matches_any(&self, folded_masks: &[String]) -> bool {
        folded_masks.iter().any(|m| self.folded.matches(m))
    }
}

/// How long an invite stays good.
pub const INVITE_TTL: Duration = Duration::from_secs(3600);
/// Most invites one channel keeps; past that the oldest goes.
const MAX_INVITES: usize = 200;

/// Who an invite is for: the session that was invited, or — when that session was logged in to
/// an account — the account, so the person can still use it from a new session. Never a nick:
/// whoever takes the nick later is someone else.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Invitee {
    Session(ConnId),
    Account(String),
}

/// One channel.
#[derive(Debug, Clone)]
pub struct Channel {
    /// As first spelled by its creator.
    pub name: String,
    pub members: HashMap<ConnId, Roles>,
    pub modes: Modes,
    pub topic: Option<Topic>,
    pub bans: Vec<Ban>,
    /// Invites not used yet, with when they expire.
    pub invites: HashMap<Invitee, Instant>,
    /// The newest stored messages, oldest first, sent to whoever joins.
    pub recent: VecDeque<ChatMessage>,
}

impl Channel {
    pub fn new(name: &str) -> Self {
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
    pub fn from_record(record: &ChannelRecord) -> Self {
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
    pub fn save_into(&self, record: &mut ChannelRecord) {
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

    /// Keeps a message in the recent ring, which holds at most `cap`.
    pub fn remember(&mut self, message: &ChatMessage, cap: usize) {
        if cap == 0 {
            return;
        }
        if self.recent.len() >= cap {
            self.recent.pop_front();
        }
        self.recent.push_back(message.clone());
    }

    pub fn roles(&self, conn: ConnId) -> Option<Roles> {
        self.members.get(&conn).copied()
    }

    pub fn is_op(&self, conn: ConnId) -> bool {
        self.roles(conn).is_some_and(|r| r.op)
    }

    pub fn is_banned(&self, folded_masks: &[String]) -> bool {
        self.bans.iter().any(|b| b.matches_any(folded_masks))
    }

    /// Records an invite for `invitees` until `now + INVITE_TTL`.
    pub fn invite(&mut self, invitees: impl IntoIterator<Item = Invitee>, now: Instant) {
        self.invites.retain(|_, expires| *expires > now);
        for invitee in invitees {
            if self.invites.len() >= MAX_INVITES {
                let oldest = self.invites.iter().min_by_key(|(_, e)| **e).map(|(i, _)| i.clone());
                if let Some(oldest) = oldest {
                    self.invites.remove(&oldest);
                }
            }
            self.invites.insert(invitee, now + INVITE_TTL);
        }
    }

    /// Whether the session `conn` (logged in to the account `account`, a key, if any) holds an
    /// invite that has not expired.
    pub fn is_invited(&self, conn: ConnId, account: Option<&str>, now: Instant) -> bool {
        let valid = |invitee: &Invitee| self.invites.get(invitee).is_some_and(|e| *e > now);
        valid(&Invitee::Session(conn)) || account.is_some_and(|a| valid(&Invitee::Account(a.to_owned())))
    }

    /// Uses up the invites of a session and its account.
    pub fn forget_invites(&mut self, conn: ConnId, account: Option<&str>) {
        self.invites.remove(&Invitee::Session(conn));
        if let Some(a) = account {
            self.invites.remove(&Invitee::Account(a.to_owned()));
        }
    }

    /// Why someone (known by these folded masks, `invited` or not, giving `key`) may not join.
    pub fn refusal(
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
    pub fn is_hidden(&self) -> bool {
        self.modes.secret || self.modes.private
    }

    /// Whether a member may speak under the current modes.
    pub fn may_speak(&self, conn: ConnId) -> bool {
        match self.roles(conn) {
            Some(r) => !self.modes.moderated || r.op || r.voice,
            None => false,
        }
    }

    /// The member list, ops first, then voiced, then by nick.
    /// The members as clients see them; `nick_of` gives a member's nick and away message.
    pub fn member_list(&self, nick_of: impl Fn(ConnId) -> Option<(String, Option<String>)>) -> Vec<Member> {
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
                txn: None,
            };
            ch.remember(&m, 3);
        }
        assert_eq!(ch.recent.iter().map(|m| m.id).collect::<Vec<_>>(), vec![3, 4, 5]);
    }

    #[test]
    fn invites_are_for_a_session_or_an_account_and_expire() {
        let t0 = Instant::now();
        let mut ch = Channel::new("#i");
        ch.invite([Invitee::Session(7), Invitee::Account("potato:bob".into())], t0);
        assert!(ch.is_invited(7, None, t0));
        assert!(ch.is_invited(8, Some("potato:bob"), t0));
        assert!(!ch.is_invited(8, None, t0), "another session on any nick is not invited");
        assert!(!ch.is_invited(8, Some("potato:carol"), t0));
        assert!(!ch.is_invited(7, None, t0 + INVITE_TTL), "invites expire");
        ch.forget_invites(8, Some("potato:bob"));
        assert!(!ch.is_invited(9, Some("potato:bob"), t0));
        assert!(ch.is_invited(7, None, t0));
        for i in 0..1000 {
            ch.invite([Invitee::Session(100 + i)], t0);
        }
        assert_eq!(ch.invites.len(), MAX_INVITES);
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

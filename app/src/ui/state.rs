//! What the browser knows about the chat, and how each server event changes it. Pure data and
//! functions (no signals, no DOM), so the rules are unit-tested without a browser.

use std::collections::HashSet;

use crate::protocol::{names::fold, ChatMessage, Member, ServerEvent};

/// One line in a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Unique within the page, for keyed rendering.
    pub seq: u64,
    pub ts: u64,
    pub kind: LineKind,
    pub from: String,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Message,
    Action,
    /// Joins, parts, kicks, topic changes and other events.
    System,
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
    pub unread: u32,
    /// Ids of the messages shown, so history never repeats a live message.
    pub ids: HashSet<u64>,
}

/// The whole client-side view of the chat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatState {
    pub me: Option<String>,
    pub conversations: Vec<Conversation>,
    pub current: Option<String>,
    /// Lines that belong to no conversation (server notices, errors before any join).
    pub server: Vec<Line>,
    next_seq: u64,
}

/// The most lines kept per conversation; older ones are dropped from memory.
pub const MAX_LINES: usize = 1000;

impl ChatState {
    fn line(&mut self, ts: u64, kind: LineKind, from: &str, text: String) -> Line {
        self.next_seq += 1;
        Line { seq: self.next_seq, ts, kind, from: from.to_owned(), text }
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        let key = fold(name);
        self.conversations.iter().position(|c| fold(&c.name) == key)
    }

    /// The conversation called `name`, created if new.
    pub fn conversation_mut(&mut self, name: &str) -> &mut Conversation {
        let i = match self.index_of(name) {
            Some(i) => i,
            None => {
                self.conversations.push(Conversation { name: name.to_owned(), ..Default::default() });
                self.conversations.len() - 1
            }
        };
        &mut self.conversations[i]
    }

    pub fn conversation(&self, name: &str) -> Option<&Conversation> {
        self.index_of(name).map(|i| &self.conversations[i])
    }

    /// The conversation a message belongs to: a PM is shown under the other party's nick.
    fn conversation_of(&self, m: &ChatMessage) -> String {
        if crate::protocol::names::is_channel(&m.target) || !self.is_me(&m.target) {
            m.target.clone()
        } else {
            m.from.clone()
        }
    }

    fn is_me(&self, nick: &str) -> bool {
        self.me.as_deref().is_some_and(|me| fold(me) == fold(nick))
    }

    fn push(&mut self, conversation: &str, ts: u64, kind: LineKind, from: &str, text: String) {
        let line = self.line(ts, kind, from, text);
        let is_current = self.current.as_deref().is_some_and(|c| fold(c) == fold(conversation));
        let conv = self.conversation_mut(conversation);
        conv.lines.push(line);
        if conv.lines.len() > MAX_LINES {
            conv.lines.remove(0);
        }
        if !is_current && kind != LineKind::System {
            conv.unread += 1;
        }
    }

    /// Shows `name` and clears its unread count.
    pub fn open(&mut self, name: &str) {
        let conv = self.conversation_mut(name);
        conv.unread = 0;
        let name = conv.name.clone();
        self.current = Some(name);
    }

    fn remove(&mut self, name: &str) {
        if let Some(i) = self.index_of(name) {
            self.conversations.remove(i);
        }
        if self.current.as_deref().is_some_and(|c| fold(c) == fold(name)) {
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

    fn add_error(&mut self, text: String) {
        let line = self.line(0, LineKind::Error, "", text);
        match self.current.clone() {
            Some(c) => self.conversation_mut(&c).lines.push(line),
            None => self.server.push(line),
        }
    }

    /// Applies one server event.
    pub fn apply(&mut self, event: ServerEvent) {
        match event {
            ServerEvent::Welcome { nick, .. } => self.me = Some(nick),
            ServerEvent::Message(m) => {
                let conv = self.conversation_of(&m);
                let kind = if m.action { LineKind::Action } else { LineKind::Message };
                self.conversation_mut(&conv).ids.insert(m.id);
                self.push(&conv, m.ts, kind, &m.from, m.text);
            }
            ServerEvent::History { target, messages, .. } => {
                // Stored messages go before what is on screen, skipping any already shown.
                let mut lines = Vec::new();
                for m in messages {
                    if self.conversation(&target).is_some_and(|c| c.ids.contains(&m.id)) {
                        continue;
                    }
                    let kind = if m.action { LineKind::Action } else { LineKind::Message };
                    lines.push((m.id, self.line(m.ts, kind, &m.from, m.text)));
                }
                let conv = self.conversation_mut(&target);
                conv.ids.extend(lines.iter().map(|(id, _)| *id));
                conv.lines.splice(0..0, lines.into_iter().map(|(_, l)| l));
                conv.lines.truncate(MAX_LINES);
            }
            ServerEvent::AccountChanged { .. } => {}
            ServerEvent::Notice { from, text } => {
                let line = self.line(0, LineKind::System, &from, text);
                self.server.push(line);
            }
            ServerEvent::Error { code, message } => self.add_error(format!("{message} ({})", code.as_str())),
            ServerEvent::Joined { channel, nick, .. } => {
                if self.is_me(&nick) {
                    self.open(&channel);
                } else {
                    let conv = self.conversation_mut(&channel);
                    if !conv.members.iter().any(|m| fold(&m.nick) == fold(&nick)) {
                        conv.members.push(Member {
                            nick: nick.clone(),
                            op: false,
                            voice: false,
                            away: false,
                        });
                    }
                }
                self.push(&channel, 0, LineKind::System, "", format!("{nick} joined {channel}"));
            }
            ServerEvent::Parted { channel, nick, reason } => {
                if self.is_me(&nick) {
                    self.remove(&channel);
                } else {
                    self.conversation_mut(&channel).members.retain(|m| fold(&m.nick) != fold(&nick));
                    let why = reason.map(|r| format!(" ({r})")).unwrap_or_default();
                    self.push(&channel, 0, LineKind::System, "", format!("{nick} left{why}"));
                }
            }
            ServerEvent::Kicked { channel, nick, by, reason } => {
                let why = reason.map(|r| format!(" ({r})")).unwrap_or_default();
                if self.is_me(&nick) {
                    self.remove(&channel);
                    self.add_error(format!("you were kicked from {channel} by {by}{why}"));
                } else {
                    self.conversation_mut(&channel).members.retain(|m| fold(&m.nick) != fold(&nick));
                    self.push(&channel, 0, LineKind::System, "", format!("{nick} was kicked by {by}{why}"));
                }
            }
            ServerEvent::Quit { nick, reason } => {
                let why = reason.map(|r| format!(" ({r})")).unwrap_or_default();
                for channel in self.channels_with(&nick) {
                    self.conversation_mut(&channel).members.retain(|m| fold(&m.nick) != fold(&nick));
                    self.push(&channel, 0, LineKind::System, "", format!("{nick} quit{why}"));
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
                    self.push(&channel, 0, LineKind::System, "", format!("{old} is now known as {new}"));
                }
            }
            ServerEvent::Banned { channel, mask, by } => {
                self.push(&channel, 0, LineKind::System, "", format!("{by} banned {mask}"))
            }
            ServerEvent::Unbanned { channel, mask, by } => {
                self.push(&channel, 0, LineKind::System, "", format!("{by} unbanned {mask}"))
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
                        'k' | 'l' | 'b' if sign == '+' => {
                            targets.next();
                        }
                        _ => {}
                    }
                }
                let text = format!("{by} sets mode {modes} {}", args.join(" "));
                self.push(&channel, 0, LineKind::System, "", text.trim_end().to_owned());
            }
            ServerEvent::Topic { channel, topic, set_by, .. } => {
                let text = match (&topic, &set_by) {
                    (Some(t), Some(by)) => format!("{by} set the topic: {t}"),
                    (Some(t), None) => format!("topic: {t}"),
                    (None, Some(by)) => format!("{by} cleared the topic"),
                    (None, None) => "no topic is set".to_owned(),
                };
                self.conversation_mut(&channel).topic = topic;
                self.push(&channel, 0, LineKind::System, "", text);
            }
            ServerEvent::Members { channel, members, .. } => {
                self.conversation_mut(&channel).members = members
            }
            ServerEvent::Away { nick, message } => {
                let away = message.is_some();
                for conv in &mut self.conversations {
                    for m in conv.members.iter_mut().filter(|m| fold(&m.nick) == fold(&nick)) {
                        m.away = away;
                    }
                }
            }
            ServerEvent::Invited { channel, nick, by } => {
                let line = self.line(0, LineKind::System, &by, format!("{by} invited {nick} to {channel}"));
                self.server.push(line);
            }
            ServerEvent::Whois { nick, account, host, channels, away, idle_secs, .. } => {
                let account = account.map(|a| format!(", account {a}")).unwrap_or_default();
                let away = away.map(|a| format!(", away: {a}")).unwrap_or_default();
                let text =
                    format!("{nick} is {host}{account}, in {}, idle {idle_secs}s{away}", channels.join(" "));
                let line = self.line(0, LineKind::System, "", text);
                match self.current.clone() {
                    Some(c) => self.conversation_mut(&c).lines.push(line),
                    None => self.server.push(line),
                }
            }
            ServerEvent::List { channels } => {
                for c in channels {
                    let text = format!("{} ({} users) {}", c.channel, c.members, c.topic.unwrap_or_default());
                    let line = self.line(0, LineKind::System, "", text);
                    self.server.push(line);
                }
            }
            ServerEvent::Pong { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(from: &str, target: &str, text: &str) -> ServerEvent {
        ServerEvent::Message(ChatMessage {
            id: 1,
            ts: 1,
            from: from.into(),
            target: target.into(),
            text: text.into(),
            action: false,
        })
    }

    fn joined(channel: &str, nick: &str) -> ServerEvent {
        ServerEvent::Joined { channel: channel.into(), nick: nick.into(), host: "h".into() }
    }

    #[test]
    fn history_goes_before_live_lines_and_never_repeats_them() {
        let mut s = ChatState { me: Some("bob".into()), ..Default::default() };
        s.apply(joined("#r", "bob"));
        let m = |id: u64, text: &str| ChatMessage {
            id,
            ts: id,
            from: "alice".into(),
            target: "#r".into(),
            text: text.into(),
            action: false,
        };
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
                Member { nick: "alice".into(), op: true, voice: false, away: false },
                Member { nick: "bob".into(), op: false, voice: false, away: false },
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
}

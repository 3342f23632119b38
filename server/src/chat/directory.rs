//! What an app may look up through the server API: every channel with its members, and
//! everyone online. The app sees what a server operator would (secret channels included, real
//! addresses never); users see less, through `/list`, `/names` and `/whois`.

use serde::Serialize;

use app::protocol::names::fold;
use app::protocol::{ErrorCode, Member};

use super::{err, Account, Channel, Hub, Result, State};

/// A channel as the server API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelOverview {
    pub channel: String,
    pub members: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Its modes as `/mode` shows them (`+nt`), without the key.
    pub modes: String,
    /// Whether it is registered with Celery.
    pub registered: bool,
}

/// A channel's members, ops first.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelMembers {
    pub channel: String,
    pub members: Vec<Member>,
}

/// Someone online, as the server API shows them.
#[derive(Debug, Clone, Serialize)]
pub struct Presence {
    pub nick: String,
    /// `app:<user>` or `potato:<account>`; none for a guest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Their away message, when away.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub away: Option<String>,
    pub channels: Vec<String>,
    /// Seconds since they last sent a message or command.
    pub idle_secs: u64,
    /// When they connected, in milliseconds since the Unix epoch.
    pub signon: u64,
    /// Whether their connection dropped and the session waits for them to resume it.
    pub held: bool,
}

impl State {
    fn overview(&self, ch: &Channel) -> ChannelOverview {
        ChannelOverview {
            channel: ch.name.clone(),
            members: ch.members.len(),
            topic: ch.topic.as_ref().map(|t| t.text.clone()),
            modes: ch.modes.describe(),
            registered: self.regs.contains_key(&fold(&ch.name)),
        }
    }

    fn presence(&self, conn: super::ConnId) -> Option<Presence> {
        let c = self.clients.get(&conn)?;
        let mut channels: Vec<String> =
            c.channels.iter().filter_map(|n| self.channels.get(n)).map(|ch| ch.name.clone()).collect();
        channels.sort();
        Some(Presence {
            nick: c.nick.clone(),
            account: c.account.as_ref().map(Account::wire),
            away: c.away.clone(),
            channels,
            idle_secs: c.last_active.elapsed().as_secs(),
            signon: c.signon,
            held: c.held.is_some(),
        })
    }
}

impl Hub {
    /// Every channel with anyone in it, the fullest first.
    pub(crate) fn channels_overview(&self) -> Vec<ChannelOverview> {
        let st = self.lock();
        let mut all: Vec<ChannelOverview> = st.channels.values().map(|ch| st.overview(ch)).collect();
        all.sort_by(|a, b| b.members.cmp(&a.members).then_with(|| a.channel.cmp(&b.channel)));
        all
    }

    /// The members of a channel.
    pub(crate) fn channel_members(&self, channel: &str) -> Result<ChannelMembers> {
        let st = self.lock();
        let ch = st.channel(channel)?;
        let members = ch.member_list(|conn| st.clients.get(&conn).map(|c| (c.nick.clone(), c.away.clone())));
        Ok(ChannelMembers { channel: ch.name.clone(), members })
    }

    /// Everyone online, by nick.
    pub(crate) fn online_users(&self) -> Vec<Presence> {
        let st = self.lock();
        let mut all: Vec<Presence> = st.clients.keys().filter_map(|&conn| st.presence(conn)).collect();
        all.sort_by_cached_key(|p| fold(&p.nick));
        all
    }

    /// Someone online, by nick.
    pub(crate) fn user_presence(&self, nick: &str) -> Result<Presence> {
        let st = self.lock();
        let conn = st.conn_by_nick(nick)?;
        st.presence(conn).ok_or_else(|| err(ErrorCode::NoSuchNick, format!("{nick} is not online")))
    }
}

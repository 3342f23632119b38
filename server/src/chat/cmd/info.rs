//! `/whois nick`, `/list` and `/names #channel`: what a user may see of others and of
//! channels (secret and private channels show only to those inside).

use app::protocol::{ChannelSummary, ServerEvent};

use crate::chat::{Account, ConnId, HubSettings, Result, State};

pub(super) fn whois(st: &State, settings: &HubSettings, conn: ConnId, nick: &str) -> Result<()> {
    let target = st.conn_by_nick(nick)?;
    let t = st.client(target)?;
    // The user and server operators see the real address; others see the cloak, unless the
    // server lets operators of a channel the user is in see it too.
    let sees_real_host = target == conn
        || st.is_oper_conn(conn, &settings.opers)
        || (settings.ops_see_real_host
            && t.channels.iter().any(|name| st.channels.get(name).is_some_and(|ch| ch.is_op(conn))));
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
    st.to_one(conn, event);
    Ok(())
}

pub(super) fn list(st: &State, conn: ConnId) -> Result<()> {
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
    st.to_one(conn, ServerEvent::List { channels });
    Ok(())
}

pub(super) fn names(st: &State, conn: ConnId, channel: &str) -> Result<()> {
    let event = st.members_event(st.visible_channel(conn, channel)?);
    st.to_one(conn, event);
    Ok(())
}

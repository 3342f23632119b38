//! `/join #channel [key]` and `/part #channel [reason]`.

use app::protocol::names::{fold, validate_channel};
use app::protocol::{ChatMessage, ErrorCode, ServerEvent};

use super::check_reason;
use crate::chat::channel::{Channel, Roles};
use crate::chat::{err, Account, ConnId, Effect, HubSettings, Result, State};

/// Joins a channel. A channel nobody is in is created, or loaded from its registration, with
/// its recent history, which the service reads from the store when asked
/// ([`Effect::NeedHistory`]) and hands back in `history`.
pub(super) fn join(
    st: &mut State,
    settings: &HubSettings,
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
    if client.channels.len() >= settings.max_channels {
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
        while ch.recent.len() > settings.history_on_join {
            ch.recent.pop_front();
        }
        st.channels.insert(folded.clone(), ch);
    }
    let now = st.now_ms();
    let refusal = st.channels.get(&folded).and_then(|ch| {
        let invited = ch.is_invited(conn, account_key.as_deref(), now);
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
    for event in st.channel_state(ch, settings.history_on_join) {
        st.to_one(conn, &event);
    }
    Ok(Effect::Done)
}

pub(super) fn part(st: &mut State, conn: ConnId, channel: &str, reason: Option<String>) -> Result<()> {
    check_reason(reason.as_deref())?;
    let ch = st.channel(channel)?;
    let event = ch.part(conn, st.nick_of(conn), reason)?;
    st.to_channel(ch, event);
    st.leave(conn, &fold(channel));
    Ok(())
}

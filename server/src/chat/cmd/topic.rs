//! `/topic #channel [text]`: shows the topic, or sets it (clears it with an empty text).

use crate::chat::channel::Actor;
use crate::chat::{ConnId, Effect, Result, State};

pub(super) fn show(st: &State, conn: ConnId, channel: &str) -> Result<()> {
    let event = State::topic_event(st.visible_channel(conn, channel)?);
    st.to_one(conn, event);
    Ok(())
}

pub(super) fn set(st: &mut State, conn: ConnId, channel: &str, text: String) -> Result<Effect> {
    let by = st.nick_of(conn);
    let now = st.now_ms();
    let event = st.channel_mut(channel)?.set_topic(Actor::Member(conn), by, text, now)?;
    st.tell_channel(channel, Some(event))?;
    Ok(st.save_reg(channel))
}

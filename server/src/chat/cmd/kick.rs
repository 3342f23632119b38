//! `/kick #channel nick [reason]`: an operator puts a member out.

use app::protocol::names::fold;

use super::check_reason;
use crate::chat::channel::Actor;
use crate::chat::{ConnId, Result, State};

pub(super) fn kick(
    st: &mut State,
    conn: ConnId,
    channel: &str,
    nick: &str,
    reason: Option<String>,
) -> Result<()> {
    check_reason(reason.as_deref())?;
    let ch = st.channel(channel)?;
    ch.require_op(conn)?;
    let target = st.target(nick)?;
    let gone = target.conn;
    let event = ch.kick(Actor::Member(conn), st.nick_of(conn), target, reason)?;
    st.to_channel(ch, event);
    st.leave(gone, &fold(channel));
    Ok(())
}

//! `/op`, `/deop`, `/voice`, `/devoice`: an operator gives or takes a member's role.

use crate::chat::channel::{Actor, Role};
use crate::chat::{ConnId, Result, State};

pub(super) fn set(
    st: &mut State,
    conn: ConnId,
    channel: &str,
    nick: &str,
    change: (Role, bool),
) -> Result<()> {
    st.channel(channel)?.require_op(conn)?;
    let target = st.target(nick)?;
    let by = st.nick_of(conn);
    let event = st.channel_mut(channel)?.set_role(Actor::Member(conn), by, change, target)?;
    st.tell_channel(channel, event)
}

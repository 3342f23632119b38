//! `/away [message]`: marks you away (with a message) or back (without).

use super::check_reason;
use crate::chat::{ConnId, Result, State};

pub(super) fn away(st: &mut State, conn: ConnId, message: Option<String>) -> Result<()> {
    check_reason(message.as_deref())?;
    if let Some(c) = st.clients.get_mut(&conn) {
        c.away.clone_from(&message);
    }
    let event = app::protocol::ServerEvent::Away { nick: st.nick_of(conn), message };
    st.deliver(&st.audience(conn), event);
    Ok(())
}

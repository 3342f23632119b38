//! `/invite nick #channel`: lets someone into an invite-only or keyed channel, for an hour.

use std::collections::HashSet;

use crate::chat::channel::Invitee;
use crate::chat::{Account, ConnId, Result, State};

pub(super) fn invite(st: &mut State, conn: ConnId, nick: &str, channel: &str) -> Result<()> {
    st.channel(channel)?.may_invite(conn)?;
    let target = st.target(nick)?;
    let invited = target.conn;
    // The invite is for the session, and for its account when it has one (so it still holds
    // from a new session); never for the nick, which someone else may take.
    let account = st.client(invited)?.account.as_ref().map(Account::key);
    let invitees = std::iter::once(Invitee::Session(invited)).chain(account.map(Invitee::Account));
    let by = st.nick_of(conn);
    let now = st.now_ms();
    let event = st.channel_mut(channel)?.invite(conn, by, target, invitees, now)?;
    st.deliver(&HashSet::from([conn, invited]), event);
    Ok(())
}

//! `/nick new`: a new nick, if it is free, not reserved, and not a way out of a ban.

use app::protocol::names::{fold, validate_nick};
use app::protocol::{ErrorCode, ServerEvent};

use crate::chat::{err, names, Account, AppEvent, ConnId, Result, State};

pub(in crate::chat) fn change_nick(st: &mut State, conn: ConnId, nick: &str) -> Result<()> {
    validate_nick(nick)?;
    let client = st.client(conn)?;
    let old = client.nick.clone();
    if old == nick {
        return Ok(());
    }
    // Someone banned in a channel they are still in may not shed the ban with a new nick (a
    // ban by nick would no longer match), as IRC servers refuse it too.
    let masks = client.masks();
    if let Some(ch) =
        client.channels.iter().filter_map(|n| st.channels.get(n)).find(|ch| ch.is_banned(&masks))
    {
        return Err(err(
            ErrorCode::Banned,
            format!("you are banned in {}, so you cannot change nick", ch.name),
        ));
    }
    // A nick a server ban names is refused, as at login.
    let there =
        crate::chat::Identity { nick: nick.to_owned(), account: client.account.clone(), ip: client.ip };
    if st.kline_for(&there, &client.cloak).is_some() {
        return Err(err(ErrorCode::ServerBanned, format!("the nick {nick} is banned from this server")));
    }
    // Every nick the new spelling is or looks like counts, not only the first found (which
    // may be the caller's own when only the case changes).
    if st.nicks.find_all(nick).iter().any(|(_, &holder)| holder != conn) {
        return Err(st.nick_in_use(nick));
    }
    let not_mine = st
        .reserved
        .find_all(nick)
        .iter()
        .any(|(owner, _)| !matches!(&client.account, Some(Account::App(name)) if fold(name) == *owner));
    if not_mine || names::is_service_name(nick) {
        return Err(err(ErrorCode::NickReserved, format!("the nick {nick} belongs to an account")));
    }
    st.nicks.remove(&old);
    st.nicks.insert(nick, conn);
    if let Some(c) = st.clients.get_mut(&conn) {
        c.nick = nick.to_owned();
    }
    st.tell_app(|| Some(AppEvent::Nick { old: old.clone(), new: nick.to_owned() }));
    let event = ServerEvent::NickChanged { old, new: nick.to_owned() };
    st.deliver(&st.audience(conn), &event);
    Ok(())
}

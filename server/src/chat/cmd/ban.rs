//! `/ban #channel mask-or-nick`, `/unban #channel mask-or-nick`, and `/bans #channel` (also
//! `/mode #channel +b` with no mask).

use app::protocol::{ErrorCode, ServerEvent};

use crate::chat::channel::{Actor, Ban, BanLift};
use crate::chat::{err, Client, ConnId, Effect, Result, State};

/// Longest ban mask, in bytes.
const MAX_MASK_BYTES: usize = 100;

pub(super) fn ban(st: &mut State, conn: ConnId, channel: &str, arg: &str) -> Result<Effect> {
    st.channel(channel)?.require_op(conn)?;
    let ban = st.ban_for(st.nick_of(conn), arg)?;
    let event = st.channel_mut(channel)?.add_ban(Actor::Member(conn), ban)?;
    st.tell_channel(channel, event)?;
    Ok(st.save_reg(channel))
}

pub(super) fn unban(st: &mut State, conn: ConnId, channel: &str, arg: &str) -> Result<Effect> {
    st.channel(channel)?.require_op(conn)?;
    let lift = st.ban_lift(arg)?;
    let by = st.nick_of(conn);
    let events = st.channel_mut(channel)?.lift_bans(Actor::Member(conn), &by, &lift)?;
    st.tell_channel(channel, events)?;
    Ok(st.save_reg(channel))
}

/// Sends `conn` the bans of `channel`.
pub(super) fn list(st: &State, conn: ConnId, channel: &str) -> Result<()> {
    let ch = st.visible_channel(conn, channel)?;
    let bans = ch.bans.iter().map(Ban::entry).collect();
    st.to_one(conn, ServerEvent::BanList { channel: ch.name.clone(), bans });
    Ok(())
}

impl State {
    /// Turns `/ban` or `/unban`'s argument into a mask: masks are taken as they are, an online
    /// nick becomes `*!*@<their cloak>`, an offline one `nick!*@*`.
    fn mask_for(&self, arg: &str) -> Result<String> {
        if arg.len() > MAX_MASK_BYTES || arg.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(err(
                ErrorCode::BadArguments,
                "a ban mask is at most 100 bytes with no spaces or control characters",
            ));
        }
        if arg.contains(['!', '@', '*', '?']) {
            return Ok(if arg.contains('!') || arg.contains('@') {
                arg.to_owned()
            } else {
                format!("{arg}!*@*")
            });
        }
        Ok(match self.nicks.get(arg).and_then(|c| self.clients.get(c)) {
            Some(c) => format!("*!*@{}", c.cloak),
            None => format!("{arg}!*@*"),
        })
    }

    /// A ban set now by `conn` on `arg` (a mask, or the nick of someone online, who the ban
    /// then names).
    pub(in crate::chat) fn ban_for(&self, by: String, arg: &str) -> Result<Ban> {
        let nick = self.online_nick(arg);
        let mask = self.mask_for(arg)?;
        Ok(Ban::set(&mask, nick, by, self.now_ms()))
    }

    /// What lifting `arg` lifts: its mask, and every ban covering a nick that is online.
    pub(in crate::chat) fn ban_lift(&self, arg: &str) -> Result<BanLift> {
        let mask = self.mask_for(arg)?;
        let user_masks = self.nicks.get(arg).and_then(|c| self.clients.get(c)).map(Client::masks);
        Ok(BanLift { arg: arg.to_owned(), mask, user_masks })
    }
}

//! `/mode #channel [changes] [args…]`: shows the modes and members, or changes modes — flags
//! (`m i t s p`), key, limit, roles (`o v`) and bans (`b`) — all or nothing.

use app::protocol::ErrorCode;

use crate::chat::channel::{check_key, Actor, Channel, ModeChange, Role};
use crate::chat::{err, ConnId, Effect, Result, State};

/// A change as typed, before its nicks and masks are looked up.
enum Asked {
    Change(ModeChange),
    Role(char, bool, String),
    Ban(bool, String),
}

pub(super) fn mode(
    st: &mut State,
    conn: ConnId,
    channel: &str,
    modes: Option<&str>,
    args: &[String],
) -> Result<Effect> {
    let Some(modes) = modes else {
        let event = st.members_event(st.visible_channel(conn, channel)?);
        st.to_one(conn, event);
        return Ok(Effect::Done);
    };
    // `+b` with no mask lists the bans, as on IRC.
    if args.is_empty() && modes.trim_start_matches('+') == "b" {
        return super::ban::list(st, conn, channel).map(|()| Effect::Done);
    }
    st.channel(channel)?.require_op(conn)?;
    let asked = parse(modes, args)?;
    let by = st.nick_of(conn);
    // Changed on a copy, which replaces the channel only when every part was accepted.
    let copy = st.channel(channel)?.clone();
    let (changed, events) =
        copy.change_modes(Actor::Member(conn), &by, asked, |ch, asked| resolve(st, ch, conn, asked))?;
    *st.channel_mut(channel)? = changed;
    st.tell_channel(channel, events)?;
    Ok(st.save_reg(channel))
}

/// `/samode`: a server operator's mode change on any channel, past its rules (no need to be in
/// it or an op there), all or nothing like `/mode`. Everyone in the channel is told it was an
/// operator override before the change itself. `apply: false` only checks it.
pub(in crate::chat) fn samode(
    st: &mut State,
    oper: &str,
    channel: &str,
    modes: &str,
    args: &[String],
    apply: bool,
) -> Result<()> {
    let asked = parse(modes, args)?;
    let copy = st.channel(channel)?.clone();
    let (changed, events) = copy.change_modes(Actor::App, oper, asked, |_, asked| match asked {
        Asked::Change(change) => Ok(change),
        Asked::Role(letter, on, nick) => {
            let member = st.target(&nick)?;
            let role = Role::of_mode(letter).ok_or_else(|| err(ErrorCode::BadArguments, "no such role"))?;
            Ok(ModeChange::Role { role, on, member })
        }
        Asked::Ban(true, arg) => Ok(ModeChange::Ban(st.ban_for(oper.to_owned(), &arg)?)),
        Asked::Ban(false, arg) => Ok(ModeChange::Unban(st.ban_lift(&arg)?)),
    })?;
    if !apply {
        return Ok(());
    }
    let name = changed.name.clone();
    *st.channel_mut(channel)? = changed;
    let line = std::iter::once(modes.to_owned()).chain(args.iter().cloned()).collect::<Vec<_>>().join(" ");
    let notice = app::protocol::ServerEvent::Notice {
        from: oper.to_owned(),
        text: format!("{oper} used a server operator override on {name}: {line}"),
        code: None,
    };
    st.tell_channel(channel, std::iter::once(notice).chain(events))?;
    Ok(())
}

/// Looks up the member a role change is for and the mask a ban change is about, once the
/// acting member is still an operator (a part before may have deopped them): in that order,
/// as `/op` and `/ban` check.
fn resolve(st: &State, ch: &Channel, conn: ConnId, asked: Asked) -> Result<ModeChange> {
    if !matches!(asked, Asked::Change(_)) {
        ch.require_op(conn)?;
    }
    Ok(match asked {
        Asked::Change(change) => change,
        Asked::Role(letter, on, nick) => {
            let member = st.target(&nick)?;
            let role = Role::of_mode(letter).ok_or_else(|| err(ErrorCode::BadArguments, "no such role"))?;
            ModeChange::Role { role, on, member }
        }
        Asked::Ban(true, arg) => ModeChange::Ban(st.ban_for(st.nick_of(conn), &arg)?),
        Asked::Ban(false, arg) => ModeChange::Unban(st.ban_lift(&arg)?),
    })
}

fn parse(modes: &str, args: &[String]) -> Result<Vec<Asked>> {
    let mut changes = Vec::new();
    let mut args = args.iter();
    let mut on = true;
    let mut arg = |what: &str| {
        args.next()
            .cloned()
            .ok_or_else(|| err(ErrorCode::BadArguments, format!("mode {what} needs an argument")))
    };
    for c in modes.chars() {
        match c {
            '+' => on = true,
            '-' => on = false,
            'm' | 'i' | 't' | 's' | 'p' => changes.push(Asked::Change(ModeChange::Flag(c, on))),
            'k' if on => {
                let key = arg("+k")?;
                check_key(&key)?;
                changes.push(Asked::Change(ModeChange::Key(Some(key))));
            }
            'k' => changes.push(Asked::Change(ModeChange::Key(None))),
            'l' if on => {
                let limit = arg("+l")?;
                let limit = limit
                    .parse::<usize>()
                    .ok()
                    .filter(|&l| l > 0)
                    .ok_or_else(|| err(ErrorCode::BadArguments, "mode +l needs a positive number"))?;
                changes.push(Asked::Change(ModeChange::Limit(Some(limit))));
            }
            'l' => changes.push(Asked::Change(ModeChange::Limit(None))),
            'o' | 'v' => changes.push(Asked::Role(c, on, arg(&format!("{c}"))?)),
            'b' => changes.push(Asked::Ban(on, arg("b")?)),
            other => {
                return Err(err(
                    ErrorCode::BadArguments,
                    format!("unknown mode {other:?}; known: m i t s p k l o v b"),
                ))
            }
        }
    }
    if changes.is_empty() {
        return Err(err(ErrorCode::BadArguments, "no mode given"));
    }
    Ok(changes)
}

//! The channel and user commands, one module each, as the core applies them: a command looks
//! up who is acting and on whom, asks the [`Channel`](super::channel::Channel) (whose rules
//! decide what is allowed and what everyone sees), and delivers the events it returns. Messages,
//! Potato and Celery are not here: they need the store, and the service runs them.

mod away;
mod ban;
mod info;
mod invite;
mod join;
mod kick;
mod mode;
mod nick;
mod roles;
mod topic;

use app::protocol::text::{validate_text, MAX_REASON_BYTES};
use app::protocol::{ChatMessage, Command, ErrorCode};

use super::channel::Role;
use super::{err, ConnId, Effect, Hub, Result, State};
pub(super) use mode::samode;
pub(super) use nick::change_nick;

/// A part, kick or quit reason, or an away message.
fn check_reason(reason: Option<&str>) -> Result<()> {
    match reason {
        Some(r) => validate_text("reason", r, MAX_REASON_BYTES, false),
        None => Ok(()),
    }
}

impl Hub {
    /// Runs one command under the lock; `history` is the channel's recent history when a join
    /// asked for it.
    pub(super) fn apply_locked(
        &self,
        st: &mut State,
        conn: ConnId,
        command: Command,
        history: Option<Vec<ChatMessage>>,
    ) -> Result<Effect> {
        let settings = &self.settings;
        let done = |r: Result<()>| r.map(|()| Effect::Done);
        match command {
            Command::Join { channel, key } => {
                join::join(st, settings, conn, &channel, key.as_deref(), history)
            }
            Command::Part { channel, reason } => done(join::part(st, conn, &channel, reason)),
            Command::Nick { nick } => done(change_nick(st, conn, &nick)),
            Command::Topic { channel, topic: None } => done(topic::show(st, conn, &channel)),
            Command::Topic { channel, topic: Some(text) } => topic::set(st, conn, &channel, text),
            Command::Kick { channel, nick, reason } => done(kick::kick(st, conn, &channel, &nick, reason)),
            Command::Ban { channel, mask } => ban::ban(st, conn, &channel, &mask),
            Command::Unban { channel, mask } => ban::unban(st, conn, &channel, &mask),
            Command::Bans { channel } => done(ban::list(st, conn, &channel)),
            Command::Op { channel, nick } => done(roles::set(st, conn, &channel, &nick, (Role::Op, true))),
            Command::Deop { channel, nick } => done(roles::set(st, conn, &channel, &nick, (Role::Op, false))),
            Command::Voice { channel, nick } => {
                done(roles::set(st, conn, &channel, &nick, (Role::Voice, true)))
            }
            Command::Devoice { channel, nick } => {
                done(roles::set(st, conn, &channel, &nick, (Role::Voice, false)))
            }
            Command::Mode { channel, modes, args } => mode::mode(st, conn, &channel, modes.as_deref(), &args),
            Command::Invite { nick, channel } => done(invite::invite(st, conn, &nick, &channel)),
            Command::Away { message } => done(away::away(st, conn, message)),
            Command::Whois { nick } => done(info::whois(st, settings, conn, &nick)),
            Command::List => done(info::list(st, conn)),
            Command::Names { channel } => done(info::names(st, conn, &channel)),
            Command::Quit { .. }
            | Command::Msg { .. }
            | Command::Me { .. }
            | Command::Potato { .. }
            | Command::Celery { .. }
            | Command::Oper { .. } => Err(err(ErrorCode::Internal, "this command is run by the service")),
        }
    }
}

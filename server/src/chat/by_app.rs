//! What an app does to channels and users through the server API, under a name of its
//! choosing (`by`): the channel's own rules apply, with the rights of an operator
//! ([`Actor::App`]).

use serde::Serialize;

use app::protocol::names::{fold, is_channel, validate_nick};
use app::protocol::text::{validate_text, MAX_REASON_BYTES, MAX_TOPIC_BYTES};
use app::protocol::{ErrorCode, ServerEvent};

use super::channel::Actor;
use super::{err, now_ms, Effect, Hub, Result};

/// What an app's moderation did.
#[derive(Debug, Clone, Serialize)]
pub struct Moderated {
    pub channel: String,
    /// The events the channel's members were sent, by type (`kicked`, `banned`, `unbanned`,
    /// `topic`); empty when nothing changed (a ban already set).
    pub changes: Vec<&'static str>,
}

fn kinds(events: &[ServerEvent]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e {
            ServerEvent::Kicked { .. } => "kicked",
            ServerEvent::Banned { .. } => "banned",
            ServerEvent::Unbanned { .. } => "unbanned",
            ServerEvent::Topic { .. } => "topic",
            _ => "other",
        })
        .collect()
}

/// The name an app acts under when it gives none: the server's own, which no user may take.
pub(crate) const APP_NAME: &str = "Chattr";

/// The name an app acts under: the server's, or a nick-like label that is not a service's
/// (the app may not speak as Potato).
fn check_by(by: &str) -> Result<()> {
    if by == APP_NAME {
        return Ok(());
    }
    validate_nick(by).map_err(|e| {
        err(ErrorCode::InvalidNick, format!("`by` and `from` follow the nick rules: {}", e.message))
    })
}

impl Hub {
    /// The app puts someone out of a channel.
    pub(crate) fn app_kick(
        &self,
        channel: &str,
        nick: &str,
        reason: Option<String>,
        by: &str,
    ) -> Result<Moderated> {
        check_by(by)?;
        if let Some(r) = &reason {
            validate_text("reason", r, MAX_REASON_BYTES, false)?;
        }
        let mut st = self.lock();
        let ch = st.channel(channel)?;
        let target = st.target(nick)?;
        let gone = target.conn;
        let event = ch.kick(Actor::App, by.to_owned(), target, reason)?;
        let done = Moderated { channel: ch.name.clone(), changes: kinds(std::slice::from_ref(&event)) };
        st.to_channel(ch, event);
        st.leave(gone, &fold(channel));
        Ok(done)
    }

    /// The app bans a mask, or the nick of someone online, from a channel.
    pub(crate) fn app_ban(&self, channel: &str, arg: &str, by: &str) -> Result<(Moderated, Effect)> {
        check_by(by)?;
        let mut st = self.lock();
        st.channel(channel)?;
        let ban = st.ban_for(by.to_owned(), arg)?;
        let event = st.channel_mut(channel)?.add_ban(Actor::App, ban)?;
        let events: Vec<ServerEvent> = event.into_iter().collect();
        let done = Moderated { channel: st.channel(channel)?.name.clone(), changes: kinds(&events) };
        st.tell_channel(channel, events)?;
        Ok((done, st.save_reg(channel)))
    }

    /// The app lifts bans on a mask, or every ban covering someone online.
    pub(crate) fn app_unban(&self, channel: &str, arg: &str, by: &str) -> Result<(Moderated, Effect)> {
        check_by(by)?;
        let mut st = self.lock();
        st.channel(channel)?;
        let lift = st.ban_lift(arg)?;
        let events = st.channel_mut(channel)?.lift_bans(Actor::App, by, &lift)?;
        let done = Moderated { channel: st.channel(channel)?.name.clone(), changes: kinds(&events) };
        st.tell_channel(channel, events)?;
        Ok((done, st.save_reg(channel)))
    }

    /// The app sets a channel's topic (an empty one clears it).
    pub(crate) fn app_topic(&self, channel: &str, topic: String, by: &str) -> Result<(Moderated, Effect)> {
        check_by(by)?;
        if !topic.is_empty() {
            validate_text("topic", &topic, MAX_TOPIC_BYTES, false)?;
        }
        let mut st = self.lock();
        let event = st.channel_mut(channel)?.set_topic(Actor::App, by.to_owned(), topic, now_ms())?;
        let done = Moderated {
            channel: st.channel(channel)?.name.clone(),
            changes: kinds(std::slice::from_ref(&event)),
        };
        st.tell_channel(channel, Some(event))?;
        Ok((done, st.save_reg(channel)))
    }

    /// A notice from the app (`from`) to a channel's members or to someone online; answers
    /// how many it reached.
    pub(crate) fn app_notice(&self, target: &str, text: &str, from: &str) -> Result<usize> {
        check_by(from)?;
        validate_text("notice", text, self.settings.limits.max_text_bytes, true)?;
        let st = self.lock();
        let notice = ServerEvent::Notice { from: from.to_owned(), text: text.to_owned(), code: None };
        if is_channel(target) {
            let ch = st.channel(target)?;
            st.to_channel(ch, notice);
            return Ok(ch.members.len());
        }
        let conn = st.conn_by_nick(target)?;
        st.to_one(conn, notice);
        Ok(1)
    }
}

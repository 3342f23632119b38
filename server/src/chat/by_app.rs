//! What an app does to channels and users through the server API, under a name of its
//! choosing (`by`): the channel's own rules apply, with the rights of an operator
//! ([`Actor::App`]).

use serde::{Deserialize, Serialize};

use app::protocol::names::{fold, is_channel, validate_channel, validate_nick};
use app::protocol::text::{validate_text, MAX_REASON_BYTES, MAX_TOPIC_BYTES};
use app::protocol::{ErrorCode, ServerEvent};

use super::account::Account;
use super::channel::{check_key, Actor, Channel, ModeChange};
use super::{err, now_ms, Effect, Hub, Result};
use crate::store::ChannelRecord;

/// A channel an app sets up (`POST /api/channels`). It is registered at once, so it and its
/// settings last while nobody is in it and across restarts, as a Celery registration's do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSettings {
    pub channel: String,
    #[serde(default)]
    pub topic: Option<String>,
    /// `+m`
    #[serde(default)]
    pub moderated: bool,
    /// `+i`
    #[serde(default)]
    pub invite_only: bool,
    /// `+t`, on unless asked otherwise.
    #[serde(default = "on")]
    pub topic_ops_only: bool,
    /// `+s`
    #[serde(default)]
    pub secret: bool,
    /// `+p`
    #[serde(default)]
    pub private: bool,
    /// `+k`
    #[serde(default)]
    pub key: Option<String>,
    /// `+l`
    #[serde(default)]
    pub limit: Option<u32>,
    /// Who is op on joining: the app's users by name, Potato accounts as `potato:name`.
    #[serde(default)]
    pub ops: Vec<String>,
    /// An app user who founds it (may edit its op list and drop it with Celery); otherwise the
    /// app itself, as `Chattr`.
    #[serde(default)]
    pub founder: Option<String>,
    /// The name the changes to a channel people are in are announced under.
    #[serde(default)]
    pub by: Option<String>,
}

fn on() -> bool {
    true
}

/// A channel the app set up, as it now stands.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedChannel {
    pub channel: String,
    pub founder: String,
    pub ops: Vec<String>,
    /// Its modes, e.g. `+itkl 20` (never the key itself).
    pub modes: String,
    pub topic: Option<String>,
    /// How many are in it now.
    pub members: usize,
}

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
        let now = st.now_ms();
        let event = st.channel_mut(channel)?.set_topic(Actor::App, by.to_owned(), topic, now)?;
        let done = Moderated {
            channel: st.channel(channel)?.name.clone(),
            changes: kinds(std::slice::from_ref(&event)),
        };
        st.tell_channel(channel, Some(event))?;
        Ok((done, st.save_reg(channel)))
    }

    /// Checks an app's channel settings against the rules and the chat as it is; answers the
    /// registration to store (the channel is not touched until it is stored).
    pub(crate) fn app_channel_plan(&self, settings: &ChannelSettings) -> Result<(String, ChannelRecord)> {
        let by = settings.by.as_deref().unwrap_or(APP_NAME);
        check_by(by)?;
        validate_channel(&settings.channel)?;
        if let Some(topic) = settings.topic.as_deref().filter(|t| !t.is_empty()) {
            validate_text("topic", topic, MAX_TOPIC_BYTES, false)?;
        }
        if let Some(key) = &settings.key {
            check_key(key)?;
        }
        if settings.limit == Some(0) {
            return Err(err(ErrorCode::BadArguments, "a member limit is a positive number"));
        }
        let app_user = |name: &str| {
            validate_nick(name)
                .map(|()| Account::App(name.to_owned()).key())
                .map_err(|e| err(ErrorCode::InvalidNick, format!("{name}: {}", e.message)))
        };
        let founder = settings.founder.as_deref().map_or_else(|| Ok(APP_NAME.to_owned()), app_user)?;
        let st = self.lock();
        let key = fold(&settings.channel);
        let mut ops: Vec<String> = Vec::new();
        for name in &settings.ops {
            let op = match name.strip_prefix("potato:") {
                Some(nick) => st.registered.get(nick).map(|a| a.key()).ok_or_else(|| {
                    err(ErrorCode::NoSuchAccount, format!("no Potato account is called {nick}"))
                })?,
                None => app_user(name.strip_prefix("app:").unwrap_or(name))?,
            };
            if !ops.contains(&op) && op != founder {
                ops.push(op);
            }
        }
        let live = st.channels.get(&key);
        let name = live.map_or_else(|| settings.channel.clone(), |ch| ch.name.clone());
        if st.regs.contains_key(&key) {
            return Err(err(ErrorCode::ChannelRegistered, format!("{name} is registered already")));
        }
        // What the channel keeps of its own (its bans, a topic the app does not replace), then
        // the app's settings.
        let mut record = ChannelRecord { name, founder, ops, rev: 1, ..Default::default() };
        if let Some(ch) = live {
            ch.save_into(&mut record);
        }
        let mut planned = Channel::from_record(&record);
        let m = &mut planned.modes;
        (m.moderated, m.invite_only, m.topic_ops_only, m.secret, m.private) = (
            settings.moderated,
            settings.invite_only,
            settings.topic_ops_only,
            settings.secret,
            settings.private,
        );
        m.key.clone_from(&settings.key);
        m.limit = settings.limit.map(|l| l as usize);
        if let Some(topic) = &settings.topic {
            planned.topic = (!topic.is_empty()).then(|| super::channel::Topic {
                text: topic.clone(),
                set_by: by.to_owned(),
                set_at: now_ms(),
            });
        }
        planned.save_into(&mut record);
        Ok((key, record))
    }

    /// The app's channel is stored: it is registered now, and a channel people are in takes
    /// its settings, announced as `by` (and its listed ops get op). Answers the channel as it
    /// stands and what to store of a live channel's state.
    pub(crate) fn app_channel_created(
        &self,
        key: &str,
        record: ChannelRecord,
        by: &str,
    ) -> (CreatedChannel, Effect) {
        let mut st = self.lock();
        let now = st.now_ms();
        let effect = if let Some(live) = st.channels.get(key).cloned() {
            let want = Channel::from_record(&record);
            let w = &want.modes;
            let changes = vec![
                ModeChange::Flag('m', w.moderated),
                ModeChange::Flag('i', w.invite_only),
                ModeChange::Flag('t', w.topic_ops_only),
                ModeChange::Flag('s', w.secret),
                ModeChange::Flag('p', w.private),
                ModeChange::Key(w.key.clone()),
                ModeChange::Limit(w.limit),
            ];
            let mut events = Vec::new();
            let mut ch = match live.clone().change_modes(Actor::App, by, changes, |_, c| Ok(c)) {
                Ok((changed, said)) => {
                    events.extend(said);
                    changed
                }
                Err(e) => {
                    tracing::warn!(error = %e.message, channel = %record.name, "an app's channel modes did not apply");
                    live
                }
            };
            let topic = |t: &Channel| t.topic.as_ref().map(|t| t.text.clone());
            if topic(&want) != topic(&ch) {
                let text = topic(&want).unwrap_or_default();
                if let Ok(event) = ch.set_topic(Actor::App, by.to_owned(), text, now) {
                    events.push(event);
                }
            }
            st.channels.insert(key.to_owned(), ch);
            st.regs.insert(key.to_owned(), record.clone());
            let _ = st.tell_channel(key, events);
            // Members whose account is on the list are op from now on, as on joining.
            let listed: Vec<_> = st.channels[key]
                .members
                .keys()
                .copied()
                .filter(|c| {
                    st.clients.get(c).and_then(|c| c.account.as_ref()).is_some_and(|a| {
                        let k = a.key();
                        record.founder == k || record.ops.contains(&k)
                    })
                })
                .collect();
            for conn in listed {
                st.celery_set_op(key, conn, true);
            }
            st.save_reg(key)
        } else {
            st.regs.insert(key.to_owned(), record.clone());
            Effect::Done
        };
        st.registration_changed(key);
        let record = st.regs.get(key).cloned().unwrap_or(record);
        let modes = Channel::from_record(&record).modes.describe();
        let created = CreatedChannel {
            channel: record.name.clone(),
            founder: display_name(&record.founder),
            ops: record.ops.iter().map(|k| display_name(k)).collect(),
            modes,
            topic: record.topic.clone(),
            members: st.channels.get(key).map_or(0, |ch| ch.members.len()),
        };
        (created, effect)
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

/// An account key as the API shows it: `app:alice`, `potato:bob`, or `Chattr` for the app.
fn display_name(key: &str) -> String {
    super::display_key(key).to_owned()
}

//! The changes the services (Potato, Celery, operators, tokens, the app's server API) make to
//! the core once their checks and their writes to the store are done, each as one value: a
//! single node applies it at once, a cluster puts it in its log for every node to apply
//! alike. [`Call::apply`] answers what the core's method answered.

use serde::{Deserialize, Serialize};

use app::protocol::Kline;

use super::opers::{KlineRule, Oper};
use super::{ConnId, Hub, OpListEdit, PotatoAccount};
use crate::store::ChannelRecord;

/// What applying a change answers, for the caller to take back as the method's own type.
pub(crate) type Reply = Box<dyn std::any::Any + Send>;

/// One change of the services' to the chat's state.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Call {
    PotatoRegistered { conn: ConnId, account: PotatoAccount },
    PotatoIdentified { conn: ConnId, account: PotatoAccount },
    PotatoGhost { conn: ConnId, nick: String },
    PotatoDropped { account: PotatoAccount, founded: Vec<String> },
    CeleryRegistered { key: String, record: ChannelRecord },
    CeleryDropped { key: String },
    CeleryChanged { key: String },
    CeleryEdit { conn: ConnId, channel: String, account: String, edit: OpListEdit },
    AppKick { channel: String, nick: String, reason: Option<String>, by: String },
    AppBan { channel: String, mask: String, by: String },
    AppUnban { channel: String, mask: String, by: String },
    AppTopic { channel: String, topic: String, by: String },
    AppChannelCreated { key: String, record: ChannelRecord, by: String },
    AppNotice { target: String, text: String, from: String },
    Kill { oper: Oper, target: ConnId, reason: Option<String> },
    AddKline { by: ConnId, kline: Kline },
    RemoveKline { by: ConnId, mask: String },
    GlobalNotice { oper: Oper, text: String },
    Samode { conn: ConnId, channel: String, modes: String, args: Vec<String> },
    OperPinned { name: String, key: String },
    ReserveNick { user: String },
    RevokeAppUser { user: String },
}

impl Call {
    /// Applies the change to `hub`.
    // The core's methods that answer nothing answer `()`, boxed like any other answer.
    #[allow(clippy::unit_arg)]
    pub(crate) fn apply(self, hub: &Hub) -> Reply {
        match self {
            Call::PotatoRegistered { conn, account } => Box::new(hub.potato_registered(conn, account)),
            Call::PotatoIdentified { conn, account } => Box::new(hub.potato_identified(conn, account)),
            Call::PotatoGhost { conn, nick } => Box::new(hub.potato_ghost(conn, &nick)),
            Call::PotatoDropped { account, founded } => Box::new(hub.potato_dropped(&account, &founded)),
            Call::CeleryRegistered { key, record } => Box::new(hub.celery_registered(&key, record)),
            Call::CeleryDropped { key } => Box::new(hub.celery_dropped(&key)),
            Call::CeleryChanged { key } => Box::new(hub.celery_changed(&key)),
            Call::CeleryEdit { conn, channel, account, edit } => {
                Box::new(hub.celery_edit(conn, &channel, &account, edit))
            }
            Call::AppKick { channel, nick, reason, by } => {
                Box::new(hub.app_kick(&channel, &nick, reason, &by))
            }
            Call::AppBan { channel, mask, by } => Box::new(hub.app_ban(&channel, &mask, &by)),
            Call::AppUnban { channel, mask, by } => Box::new(hub.app_unban(&channel, &mask, &by)),
            Call::AppTopic { channel, topic, by } => Box::new(hub.app_topic(&channel, topic, &by)),
            Call::AppChannelCreated { key, record, by } => {
                Box::new(hub.app_channel_created(&key, record, &by))
            }
            Call::AppNotice { target, text, from } => Box::new(hub.app_notice(&target, &text, &from)),
            Call::Kill { oper, target, reason } => Box::new(hub.kill(&oper, target, reason.as_deref())),
            // A kline was checked when it was made; one that no longer reads bans nothing.
            Call::AddKline { by, kline } => {
                Box::new(KlineRule::new(kline).map_or(0, |rule| hub.add_kline(by, rule)))
            }
            Call::RemoveKline { by, mask } => Box::new(hub.remove_kline(by, &mask)),
            Call::GlobalNotice { oper, text } => Box::new(hub.global_notice(&oper, &text)),
            Call::Samode { conn, channel, modes, args } => {
                Box::new(hub.samode(conn, &channel, &modes, &args, true))
            }
            Call::OperPinned { name, key } => Box::new(hub.oper_pinned(name, key)),
            Call::ReserveNick { user } => Box::new(hub.reserve_nick(&user)),
            Call::RevokeAppUser { user } => Box::new(hub.revoke_app_user(&user)),
        }
    }
}

//! Celery, the channel service: register a channel, keep its op list, drop it. A registration
//! (and a drop) is written to the store before it is applied online and answered; a change to
//! the op list is applied, then saved, like every change to a registered channel (its state is
//! saved whole, newest revision winning), and a save that fails says the change is live but
//! not kept.

use app::protocol::command::{CELERY, CELERY_COMMANDS};
use app::protocol::{CeleryRequest, ErrorCode, ProtocolError};

use super::{date, internal, now_secs, ChatService, Result};
use crate::chat::{display_key, Call, ConnId, OpListEdit};
use crate::store::ChannelRecord;

impl ChatService {
    /// Handles a Celery request for `conn`.
    pub(super) async fn celery(&self, conn: ConnId, request: CeleryRequest) -> Result<()> {
        let say = |text: String| self.hub.notify(conn, CELERY, text);
        let edit = |channel: String, account: String, edit: OpListEdit| async move {
            let (key, record, target): (String, ChannelRecord, String) = self
                .change::<Result<_>>(Call::CeleryEdit { conn, channel: channel.clone(), account, edit })
                .await??;
            if !self.save_channel(&key, &record).await? {
                return Err(ProtocolError::new(
                    ErrorCode::ChannelNotRegistered,
                    format!("{channel} is not registered"),
                ));
            }
            self.change::<()>(Call::CeleryChanged { key }).await?;
            Ok::<_, ProtocolError>((record.name, display_key(&target).to_owned()))
        };
        match request {
            CeleryRequest::Register { channel } => {
                let (key, record) = self.hub.celery_register_check(conn, &channel)?;
                if !self.store.create_channel(&key, &record).await.map_err(internal)? {
                    return Err(ProtocolError::new(
                        ErrorCode::ChannelRegistered,
                        format!("{channel} is registered already"),
                    ));
                }
                let name = record.name.clone();
                self.change::<()>(Call::CeleryRegistered { key, record }).await?;
                say(format!("{name} is registered to you; its topic, bans and modes are kept from now on"));
            }
            CeleryRequest::Op { channel, account } => {
                let (name, target) = edit(channel, account, OpListEdit::Op).await?;
                say(format!("{target} is on the op list of {name}"));
            }
            CeleryRequest::Deop { channel, account } => {
                let (name, target) = edit(channel, account, OpListEdit::Deop).await?;
                say(format!("{target} is off the op list of {name}"));
            }
            CeleryRequest::Trust { channel, account } => {
                let (name, target) = edit(channel, account, OpListEdit::Trust).await?;
                say(format!("{target} may now change the op list of {name}"));
            }
            CeleryRequest::Untrust { channel, account } => {
                let (name, target) = edit(channel, account, OpListEdit::Untrust).await?;
                say(format!("{target} may no longer change the op list of {name}"));
            }
            CeleryRequest::Info { channel } => {
                let info = self.hub.celery_info(conn, &channel)?;
                let created =
                    self.store.channel_created(&info.key).await.map_err(internal)?.unwrap_or_else(now_secs);
                let r = &info.record;
                let list = |l: &[String]| {
                    if l.is_empty() {
                        "none".to_owned()
                    } else {
                        l.iter().map(|k| display_key(k)).collect::<Vec<_>>().join(", ")
                    }
                };
                say(format!(
                    "{} was registered on {} by {}; ops: {}; trusted: {}; topic: {}",
                    r.name,
                    date(created),
                    display_key(&r.founder),
                    list(&r.ops),
                    list(&r.trusted),
                    r.topic.as_deref().unwrap_or("none"),
                ));
            }
            CeleryRequest::Drop { channel } => {
                let key = self.hub.celery_founder_check(conn, &channel)?;
                self.store.drop_channel(&key).await.map_err(internal)?;
                self.change::<()>(Call::CeleryDropped { key }).await?;
                say(format!("{channel} is no longer registered"));
            }
            CeleryRequest::Help => {
                for (_, usage, help) in CELERY_COMMANDS {
                    say(format!("{usage} — {help}"));
                }
            }
        }
        Ok(())
    }
}

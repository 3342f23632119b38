//! Server operators' commands. Each is checked by the core (is this an operator, does the
//! target exist, is the mask sound), written to the audit log, and only then carried out: an
//! operator action the log could not record does not happen. A kline is stored before it is
//! in force, so an acknowledged ban survives a restart.

use app::protocol::names::fold;
use app::protocol::text::{validate_text, MAX_REASON_BYTES};
use app::protocol::OperRequest;

use super::{internal, ChatService, Result};
use crate::chat::{Call, ConnId, Effect, Oper};

/// Audit entries `/audit` shows.
const AUDIT_PAGE: usize = 50;

impl ChatService {
    /// Runs an operator's command.
    pub(super) async fn oper(&self, conn: ConnId, request: OperRequest) -> Result<()> {
        match request {
            OperRequest::Kill { nick, reason } => {
                check_reason(reason.as_deref())?;
                let (oper, target, nick) = self.hub.prepare_kill(conn, &nick)?;
                self.audit(oper.entry("kill", &nick, reason.clone())).await?;
                self.change(Call::Kill { oper, target, reason }).await?
            }
            OperRequest::Kline { mask, duration_secs, reason } => {
                check_reason(reason.as_deref())?;
                let (oper, rule, target) =
                    self.hub.prepare_kline(conn, &mask, duration_secs, reason.clone())?;
                let mut entry = oper.entry("kline", &target, reason);
                if let Some(secs) = duration_secs {
                    entry.action =
                        format!("kline {}", humantime::format_duration(std::time::Duration::from_secs(secs)));
                }
                // One kline change at a time, stored and put in force together.
                let _turn = self.kline_changes.lock().await;
                self.audit(entry).await?;
                self.store.save_kline(&rule.kline).await.map_err(internal)?;
                let ended: usize = self.change(Call::AddKline { by: conn, kline: rule.kline }).await?;
                tracing::info!(oper = %oper.account, ended, "kline set");
                Ok(())
            }
            OperRequest::Unkline { mask } => {
                let _turn = self.kline_changes.lock().await;
                let (oper, mask) = self.hub.kline_mask(conn, &mask)?;
                self.audit(oper.entry("unkline", &mask, None)).await?;
                self.store.delete_kline(&mask).await.map_err(internal)?;
                self.change::<()>(Call::RemoveKline { by: conn, mask }).await?;
                Ok(())
            }
            OperRequest::Klines => self.hub.show_klines(conn),
            OperRequest::GlobalNotice { text } => {
                validate_text("notice", &text, self.config.max_text_bytes, false)?;
                let oper = self.hub.oper(conn)?;
                self.audit(oper.entry("global_notice", "*", Some(text.clone()))).await?;
                self.change::<usize>(Call::GlobalNotice { oper, text }).await?;
                Ok(())
            }
            OperRequest::Samode { channel, modes, args } => {
                let (oper, _) = self.hub.samode(conn, &channel, &modes, &args, false)?;
                let line =
                    std::iter::once(modes.clone()).chain(args.iter().cloned()).collect::<Vec<_>>().join(" ");
                self.audit(oper.entry("samode", &format!("{channel} {line}"), None)).await?;
                let (_, effect): (Oper, Effect) =
                    self.change::<Result<_>>(Call::Samode { conn, channel, modes, args }).await??;
                self.save(effect).await
            }
            OperRequest::Stats => self.hub.stats(conn, self.started.elapsed().as_secs()),
            OperRequest::Audit => {
                self.hub.oper(conn)?;
                let entries = self.store.audit_log(AUDIT_PAGE).await.map_err(internal)?;
                self.hub.show_audit(conn, entries);
                Ok(())
            }
        }
    }

    /// Pins an operator's Potato account the first time it is registered or identified: from
    /// then on only that account (its registration id) is the operator, so a name dropped and
    /// registered again by someone else does not carry the powers over.
    pub(super) async fn pin_oper(&self, account: &crate::chat::PotatoAccount) -> Result<()> {
        if !self.hub.needs_oper_pin(account) {
            return Ok(());
        }
        let name = fold(&account.name);
        let pinned = self.store.pin_oper(&name, &account.key()).await.map_err(internal)?;
        self.change::<()>(Call::OperPinned { name, key: pinned }).await?;
        Ok(())
    }

    /// Writes an operator action to the audit log, which must take it before it is done.
    async fn audit(&self, entry: app::protocol::AuditEntry) -> Result<()> {
        self.store.append_audit(&entry).await.map_err(internal)?;
        tracing::info!(oper = %entry.oper, action = %entry.action, target = %entry.target, "operator action");
        Ok(())
    }
}

fn check_reason(reason: Option<&str>) -> Result<()> {
    match reason {
        Some(r) => validate_text("reason", r, MAX_REASON_BYTES, false),
        None => Ok(()),
    }
}

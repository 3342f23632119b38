//! Potato, the nickname service: register, identify, ghost, info, password changes, drop.
//! Each request is checked against the chat core, written to the store, and only then
//! applied online and answered, so what Potato acknowledges is on disk.

use std::time::{Duration, Instant};

use app::protocol::command::{POTATO, POTATO_COMMANDS};
use app::protocol::names::fold;
use app::protocol::{ErrorCode, PotatoRequest, ProtocolError};

use super::password::{check_email, check_password};
use super::throttle::Limit;
use super::{date, internal, ChatService, Result};
use crate::admission::Group;
use crate::chat::{Account, Call, ConnId, PotatoAccount};
use crate::store::AccountRecord;

const MINUTE: Duration = Duration::from_secs(60);
/// Password attempts per connection, and per account from one address.
pub(super) const PASSWORD_ATTEMPTS: Limit = Limit { max: 3, window: MINUTE };
/// Registrations per connection.
pub(super) const REGISTRATIONS: Limit = Limit { max: 3, window: Duration::from_secs(600) };
/// The window of `CHATTR_REGISTRATIONS_PER_ADDRESS`.
const HOUR: Duration = Duration::from_secs(3600);

/// The account a stored record is.
fn potato_account(record: &AccountRecord) -> PotatoAccount {
    PotatoAccount::new(record.name.clone(), record.uid.clone().unwrap_or_default())
}

impl ChatService {
    /// Checks `password` against the account registered for the folded nick. Every attempt is
    /// counted before the check (so parallel attempts cannot all get through) per connection, per
    /// account from this address, and per address, and given back when the password is right;
    /// limits are per address, so a stranger cannot lock the owner out. Unknown accounts and wrong
    /// passwords look the same and take the same time.
    async fn check_account_password(
        &self,
        conn: ConnId,
        folded: &str,
        password: String,
    ) -> Result<AccountRecord> {
        let group = Group::of(self.hub.peer(conn)?);
        let per_address = Limit { max: self.config.password_attempts_per_address, window: MINUTE };
        let keys = [
            (format!("password-conn:{conn}"), PASSWORD_ATTEMPTS),
            (format!("password-account:{folded}@{group}"), PASSWORD_ATTEMPTS),
            (format!("password-address:{group}"), per_address),
        ];
        let Some(attempt) = self.throttle.reserve(&keys, Instant::now()) else {
            return Err(ProtocolError::new(
                ErrorCode::Throttled,
                "too many password attempts; wait a minute and try again",
            ));
        };
        let record = self.store.account(folded).await.map_err(internal)?;
        let hash = record.as_ref().map(|r| r.password_hash.clone());
        // The hash is checked whether or not the account exists (against a decoy when it does not).
        let matches = match self.hasher.verify(password, hash).await {
            Ok(matches) => matches,
            Err(busy) => {
                // Nothing was checked: the attempt is not counted against anyone.
                self.throttle.refund(attempt);
                return Err(busy);
            }
        };
        let failed = || ProtocolError::new(ErrorCode::IdentifyFailed, "unknown nick or wrong password");
        match record {
            Some(record) if matches => {
                self.throttle.refund(attempt);
                // The account may have been dropped (and the nick registered again) while the hash
                // ran: the password proves the account it was checked against, nothing newer.
                let now = self.store.account(folded).await.map_err(internal)?;
                if now.as_ref().map(|r| &r.uid) != Some(&record.uid) {
                    return Err(failed());
                }
                Ok(record)
            }
            _ => Err(failed()),
        }
    }

    /// Checks the password of the account the session is identified as, which must still be the
    /// account stored under its nick (not one dropped and registered again since).
    async fn check_own_password(
        &self,
        conn: ConnId,
        account: &PotatoAccount,
        password: String,
    ) -> Result<()> {
        let record = self.check_account_password(conn, &fold(&account.name), password).await?;
        if potato_account(&record) != *account {
            return Err(ProtocolError::new(
                ErrorCode::NoSuchAccount,
                format!("the account {} you identified as no longer exists", account.name),
            ));
        }
        Ok(())
    }

    /// The Potato account the session is identified as.
    fn identified_potato(&self, conn: ConnId) -> Result<PotatoAccount> {
        match self.hub.whoami(conn)?.1 {
            Some(Account::Potato(account)) => Ok(account),
            _ => Err(ProtocolError::new(
                ErrorCode::NotIdentified,
                "identify first: /potato identify <nick> <password>",
            )),
        }
    }

    /// Handles a Potato request for `conn`.
    pub(super) async fn potato(&self, conn: ConnId, request: PotatoRequest) -> Result<()> {
        let say = |text: String| self.hub.notify(conn, POTATO, text);
        match request {
            PotatoRequest::Register { nick, password, email } => {
                let (current, account) = self.hub.whoami(conn)?;
                if nick.as_deref().is_some_and(|n| fold(n) != fold(&current)) {
                    return Err(ProtocolError::new(
                        ErrorCode::BadArguments,
                        format!(
                            "you can only register the nick you are using ({current}); /nick to it first"
                        ),
                    ));
                }
                let folded = fold(&current);
                if let Some(Account::Potato(PotatoAccount { name, .. })) = account {
                    let code = if fold(&name) == folded {
                        ErrorCode::AccountExists
                    } else {
                        ErrorCode::BadArguments
                    };
                    return Err(ProtocolError::new(code, format!("you are already identified as {name}")));
                }
                if self.hub.app_owns(&current) {
                    return Err(ProtocolError::new(
                        ErrorCode::NickReserved,
                        format!("{current} belongs to an app user"),
                    ));
                }
                check_password(&password.0)?;
                check_email(&email)?;
                // The cheap checks come before the expensive hash: a nick that is taken, or being
                // registered right now, is refused without hashing anything.
                let exists = || {
                    ProtocolError::new(ErrorCode::AccountExists, format!("{current} is registered already"))
                };
                let Some(claim) = self.hub.potato_claim(&current) else { return Err(exists()) };
                if self.store.account(&folded).await.map_err(internal)?.is_some() {
                    return Err(exists());
                }
                let group = Group::of(self.hub.peer(conn)?);
                let keys = [
                    (format!("register-conn:{conn}"), REGISTRATIONS),
                    (
                        format!("register-address:{group}"),
                        Limit { max: self.config.registrations_per_address, window: HOUR },
                    ),
                ];
                let Some(_attempt) = self.throttle.reserve(&keys, Instant::now()) else {
                    return Err(ProtocolError::new(
                        ErrorCode::Throttled,
                        "too many registrations from here; try again later",
                    ));
                };
                let hash = self.hasher.hash(password.0).await?;
                let account = PotatoAccount::new(current.clone(), PotatoAccount::new_uid());
                if !self
                    .store
                    .create_account(&folded, &current, &email, &hash, &account.uid)
                    .await
                    .map_err(internal)?
                {
                    return Err(exists());
                }
                self.pin_oper(&account).await?;
                self.change::<()>(Call::PotatoRegistered { conn, account }).await?;
                drop(claim);
                say(format!("{current} is now registered to you and you are identified. Next time: /potato identify {current} <password>"));
            }
            PotatoRequest::Identify { nick, password } => {
                let (current, account) = self.hub.whoami(conn)?;
                if let Some(account @ Account::App(_)) = account {
                    return Err(ProtocolError::new(
                        ErrorCode::BadArguments,
                        format!("you are logged in by your app as {}", account.wire()),
                    ));
                }
                let name = nick.unwrap_or(current);
                let record = self.check_account_password(conn, &fold(&name), password.0).await?;
                let account = potato_account(&record);
                self.pin_oper(&account).await?;
                self.change::<Result<()>>(Call::PotatoIdentified { conn, account }).await??;
                say(format!("you are now identified as {}", record.name));
            }
            PotatoRequest::Disconnect { nick, password } => {
                let record = self.check_account_password(conn, &fold(&nick), password.0).await?;
                let gone: String =
                    self.change::<Result<_>>(Call::PotatoGhost { conn, nick: record.name.clone() }).await??;
                say(format!("{gone} was disconnected"));
            }
            PotatoRequest::Info { nick } => {
                let name = match nick {
                    Some(n) => n,
                    None => self.hub.whoami(conn)?.0,
                };
                let folded = fold(&name);
                let record = self.store.account(&folded).await.map_err(internal)?.ok_or_else(|| {
                    ProtocolError::new(ErrorCode::NoSuchAccount, format!("{name} is not registered"))
                })?;
                let online = match self.hub.potato_info(&folded).online_as {
                    Some(nick) => format!("online as {nick}"),
                    None => "not identified right now".into(),
                };
                let own = matches!(self.hub.whoami(conn)?.1, Some(Account::Potato(a)) if a == potato_account(&record));
                let email = if own { format!(", email {}", record.email) } else { String::new() };
                say(format!("{} was registered on {}; {online}{email}", record.name, date(record.created)));
            }
            PotatoRequest::Passwd { old, new } => {
                let account = self.identified_potato(conn)?;
                let name = &account.name;
                check_password(&new.0)?;
                self.check_own_password(conn, &account, old.0).await?;
                let hash = self.hasher.hash(new.0).await?;
                if !self.store.set_password(&fold(name), &hash).await.map_err(internal)? {
                    return Err(ProtocolError::new(
                        ErrorCode::NoSuchAccount,
                        format!("{name} is not registered"),
                    ));
                }
                say("your password is changed".into());
            }
            PotatoRequest::Drop { password } => {
                let account = self.identified_potato(conn)?;
                let name = account.name.clone();
                self.check_own_password(conn, &account, password.0).await?;
                let founded =
                    self.store.drop_account(&fold(&name), &account.key()).await.map_err(internal)?;
                self.change::<()>(Call::PotatoDropped { account: account.clone(), founded: founded.clone() })
                    .await?;
                let channels = if founded.is_empty() {
                    String::new()
                } else {
                    format!(", with the channels it founded: {}", founded.join(" "))
                };
                say(format!("the account {name} is dropped{channels}"));
            }
            PotatoRequest::Help => {
                for (_, usage, help) in POTATO_COMMANDS {
                    say(format!("{usage} — {help}"));
                }
            }
        }
        Ok(())
    }
}

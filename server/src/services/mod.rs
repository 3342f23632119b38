//! Potato (nicknames) and Celery (channels): the built-in services. Each request is checked
//! against the chat core, written to the store, and only then applied online and answered,
//! so what a service acknowledges is on disk.

mod password;
mod throttle;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use app::protocol::command::{CELERY, CELERY_COMMANDS, POTATO, POTATO_COMMANDS};
use app::protocol::names::fold;
use app::protocol::{CeleryRequest, ErrorCode, PotatoRequest, ProtocolError};

use crate::admission::Group;
use crate::chat::{display_key, Account, ConnId, OpListEdit, PotatoAccount};
use crate::store::{AccountRecord, StoreError};
use crate::Inner;
pub use password::Hasher;
pub use throttle::{Limit, Throttle};

type Result<T> = std::result::Result<T, ProtocolError>;

const MINUTE: Duration = Duration::from_secs(60);
/// Password attempts per connection, and per account from one address.
pub const PASSWORD_ATTEMPTS: Limit = Limit { max: 3, window: MINUTE };
/// Registrations per connection.
pub const REGISTRATIONS: Limit = Limit { max: 3, window: Duration::from_secs(600) };
/// The window of `CHATTR_REGISTRATIONS_PER_ADDRESS`.
const HOUR: Duration = Duration::from_secs(3600);

fn internal(e: StoreError) -> ProtocolError {
    tracing::error!(error = %e, "service store operation failed");
    e.to_protocol("the service is unavailable right now; try again")
}

fn date(unix_secs: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(unix_secs.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Checks `password` against the account registered for the folded nick. Every attempt is
/// counted before the check (so parallel attempts cannot all get through) per connection, per
/// account from this address, and per address, and given back when the password is right;
/// limits are per address, so a stranger cannot lock the owner out. Unknown accounts and wrong
/// passwords look the same and take the same time.
async fn check_account_password(
    app: &Inner,
    conn: ConnId,
    folded: &str,
    password: String,
) -> Result<AccountRecord> {
    let group = Group::of(app.hub.peer(conn)?);
    let per_address = Limit { max: app.config.password_attempts_per_address, window: MINUTE };
    let keys = [
        (format!("password-conn:{conn}"), PASSWORD_ATTEMPTS),
        (format!("password-account:{folded}@{group}"), PASSWORD_ATTEMPTS),
        (format!("password-address:{group}"), per_address),
    ];
    let Some(attempt) = app.throttle.reserve(&keys, Instant::now()) else {
        return Err(ProtocolError::new(
            ErrorCode::Throttled,
            "too many password attempts; wait a minute and try again",
        ));
    };
    let record = app.store.account(folded).await.map_err(internal)?;
    let hash = record.as_ref().map(|r| r.password_hash.clone());
    // The hash is checked whether or not the account exists (against a decoy when it does not).
    let matches = match app.hasher.verify(password, hash).await {
        Ok(matches) => matches,
        Err(busy) => {
            // Nothing was checked: the attempt is not counted against anyone.
            app.throttle.refund(attempt);
            return Err(busy);
        }
    };
    let failed = || ProtocolError::new(ErrorCode::IdentifyFailed, "unknown nick or wrong password");
    match record {
        Some(record) if matches => {
            app.throttle.refund(attempt);
            // The account may have been dropped (and the nick registered again) while the hash
            // ran: the password proves the account it was checked against, nothing newer.
            let now = app.store.account(folded).await.map_err(internal)?;
            if now.as_ref().map(|r| &r.uid) != Some(&record.uid) {
                return Err(failed());
            }
            Ok(record)
        }
        _ => Err(failed()),
    }
}

/// The account a stored record is.
fn potato_account(record: &AccountRecord) -> PotatoAccount {
    PotatoAccount::new(record.name.clone(), record.uid.clone().unwrap_or_default())
}

/// Checks the password of the account the session is identified as, which must still be the
/// account stored under its nick (not one dropped and registered again since).
async fn check_own_password(
    app: &Inner,
    conn: ConnId,
    account: &PotatoAccount,
    password: String,
) -> Result<()> {
    let record = check_account_password(app, conn, &fold(&account.name), password).await?;
    if potato_account(&record) != *account {
        return Err(ProtocolError::new(
            ErrorCode::NoSuchAccount,
            format!("the account {} you identified as no longer exists", account.name),
        ));
    }
    Ok(())
}

/// The Potato account the session is identified as.
fn identified_potato(app: &Inner, conn: ConnId) -> Result<PotatoAccount> {
    match app.hub.whoami(conn)?.1 {
        Some(Account::Potato(account)) => Ok(account),
        _ => Err(ProtocolError::new(
            ErrorCode::NotIdentified,
            "identify first: /potato identify <nick> <password>",
        )),
    }
}

/// Handles a Potato request for `conn`.
pub async fn potato(app: &Inner, conn: ConnId, request: PotatoRequest) -> Result<()> {
    let say = |text: String| app.hub.notify(conn, POTATO, text);
    match request {
        PotatoRequest::Register { nick, password, email } => {
            let (current, account) = app.hub.whoami(conn)?;
            if nick.as_deref().is_some_and(|n| fold(n) != fold(&current)) {
                return Err(ProtocolError::new(
                    ErrorCode::BadArguments,
                    format!("you can only register the nick you are using ({current}); /nick to it first"),
                ));
            }
            let folded = fold(&current);
            if let Some(Account::Potato(PotatoAccount { name, .. })) = account {
                let code =
                    if fold(&name) == folded { ErrorCode::AccountExists } else { ErrorCode::BadArguments };
                return Err(ProtocolError::new(code, format!("you are already identified as {name}")));
            }
            if app.hub.app_owns(&current) {
                return Err(ProtocolError::new(
                    ErrorCode::NickReserved,
                    format!("{current} belongs to an app user"),
                ));
            }
            password::check_password(&password.0)?;
            password::check_email(&email)?;
            // The cheap checks come before the expensive hash: a nick that is taken, or being
            // registered right now, is refused without hashing anything.
            let exists =
                || ProtocolError::new(ErrorCode::AccountExists, format!("{current} is registered already"));
            let Some(claim) = app.hub.potato_claim(&current) else { return Err(exists()) };
            if app.store.account(&folded).await.map_err(internal)?.is_some() {
                return Err(exists());
            }
            let group = Group::of(app.hub.peer(conn)?);
            let keys = [
                (format!("register-conn:{conn}"), REGISTRATIONS),
                (
                    format!("register-address:{group}"),
                    Limit { max: app.config.registrations_per_address, window: HOUR },
                ),
            ];
            let Some(_attempt) = app.throttle.reserve(&keys, Instant::now()) else {
                return Err(ProtocolError::new(
                    ErrorCode::Throttled,
                    "too many registrations from here; try again later",
                ));
            };
            let hash = app.hasher.hash(password.0).await?;
            let account = PotatoAccount::new(current.clone(), PotatoAccount::new_uid());
            if !app
                .store
                .create_account(&folded, &current, &email, &hash, &account.uid)
                .await
                .map_err(internal)?
            {
                return Err(exists());
            }
            app.hub.potato_registered(conn, account);
            drop(claim);
            say(format!("{current} is now registered to you and you are identified. Next time: /potato identify {current} <password>"));
        }
        PotatoRequest::Identify { nick, password } => {
            let (current, account) = app.hub.whoami(conn)?;
            if let Some(account @ Account::App(_)) = account {
                return Err(ProtocolError::new(
                    ErrorCode::BadArguments,
                    format!("you are logged in by your app as {}", account.wire()),
                ));
            }
            let name = nick.unwrap_or(current);
            let record = check_account_password(app, conn, &fold(&name), password.0).await?;
            app.hub.potato_identified(conn, potato_account(&record))?;
            say(format!("you are now identified as {}", record.name));
        }
        PotatoRequest::Disconnect { nick, password } => {
            let record = check_account_password(app, conn, &fold(&nick), password.0).await?;
            let gone = app.hub.potato_ghost(conn, &record.name)?;
            say(format!("{gone} was disconnected"));
        }
        PotatoRequest::Info { nick } => {
            let name = match nick {
                Some(n) => n,
                None => app.hub.whoami(conn)?.0,
            };
            let folded = fold(&name);
            let record = app.store.account(&folded).await.map_err(internal)?.ok_or_else(|| {
                ProtocolError::new(ErrorCode::NoSuchAccount, format!("{name} is not registered"))
            })?;
            let online = match app.hub.potato_info(&folded).online_as {
                Some(nick) => format!("online as {nick}"),
                None => "not identified right now".into(),
            };
            let own =
                matches!(app.hub.whoami(conn)?.1, Some(Account::Potato(a)) if a == potato_account(&record));
            let email = if own { format!(", email {}", record.email) } else { String::new() };
            say(format!("{} was registered on {}; {online}{email}", record.name, date(record.created)));
        }
        PotatoRequest::Passwd { old, new } => {
            let account = identified_potato(app, conn)?;
            let name = &account.name;
            password::check_password(&new.0)?;
            check_own_password(app, conn, &account, old.0).await?;
            let hash = app.hasher.hash(new.0).await?;
            if !app.store.set_password(&fold(name), &hash).await.map_err(internal)? {
                return Err(ProtocolError::new(
                    ErrorCode::NoSuchAccount,
                    format!("{name} is not registered"),
                ));
            }
            say("your password is changed".into());
        }
        PotatoRequest::Drop { password } => {
            let account = identified_potato(app, conn)?;
            let name = account.name.clone();
            check_own_password(app, conn, &account, password.0).await?;
            let founded = app.store.drop_account(&fold(&name), &account.key()).await.map_err(internal)?;
            app.hub.potato_dropped(&account, &founded);
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

/// Handles a Celery request for `conn`.
pub async fn celery(app: &Inner, conn: ConnId, request: CeleryRequest) -> Result<()> {
    let say = |text: String| app.hub.notify(conn, CELERY, text);
    let edit = |channel: String, account: String, edit: OpListEdit| async move {
        let (key, record, target) = app.hub.celery_edit(conn, &channel, &account, edit)?;
        if !app.store.save_channel(&key, &record).await.map_err(internal)? {
            return Err(ProtocolError::new(
                ErrorCode::ChannelNotRegistered,
                format!("{channel} is not registered"),
            ));
        }
        app.hub.celery_changed(&key);
        Ok::<_, ProtocolError>((record.name, display_key(&target).to_owned()))
    };
    match request {
        CeleryRequest::Register { channel } => {
            let (key, record) = app.hub.celery_register_check(conn, &channel)?;
            if !app.store.create_channel(&key, &record).await.map_err(internal)? {
                return Err(ProtocolError::new(
                    ErrorCode::ChannelRegistered,
                    format!("{channel} is registered already"),
                ));
            }
            let name = record.name.clone();
            app.hub.celery_registered(&key, record);
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
            let info = app.hub.celery_info(conn, &channel)?;
            let created =
                app.store.channel_created(&info.key).await.map_err(internal)?.unwrap_or_else(now_secs);
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
            let key = app.hub.celery_founder_check(conn, &channel)?;
            app.store.drop_channel(&key).await.map_err(internal)?;
            app.hub.celery_dropped(&key);
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

//! Potato (nicknames) and Celery (channels): the built-in services. Each request is checked
//! against the chat core, written to the store, and only then applied online and answered,
//! so what a service acknowledges is on disk.

mod password;
mod throttle;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use app::protocol::command::{CELERY, CELERY_COMMANDS, POTATO, POTATO_COMMANDS};
use app::protocol::names::fold;
use app::protocol::{CeleryRequest, ErrorCode, PotatoRequest, ProtocolError};

use crate::chat::{Account, ConnId, OpListEdit};
use crate::store::{AccountRecord, StoreError};
use crate::Inner;
pub use throttle::Throttle;

type Result<T> = std::result::Result<T, ProtocolError>;

/// Failed password attempts allowed per account and per connection within [`THROTTLE_WINDOW`].
pub const MAX_PASSWORD_FAILURES: usize = 3;
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(60);

fn internal(e: StoreError) -> ProtocolError {
    tracing::error!(error = %e, "service store operation failed");
    ProtocolError::new(ErrorCode::Internal, "the service is unavailable right now; try again")
}

fn date(unix_secs: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(unix_secs.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Checks `password` against the account registered for the folded nick, counting failures
/// per account and per connection. Unknown accounts and wrong passwords look the same.
async fn check_account_password(
    app: &Inner,
    conn: ConnId,
    folded: &str,
    password: String,
) -> Result<AccountRecord> {
    let keys = [format!("account:{folded}"), format!("conn:{conn}")];
    if !app.throttle.allowed(&keys, Instant::now()) {
        return Err(ProtocolError::new(
            ErrorCode::Throttled,
            "too many failed attempts; wait a minute and try again",
        ));
    }
    let record = app.store.account(folded).await.map_err(internal)?;
    let hash = record.as_ref().map(|r| r.password_hash.clone());
    match record {
        Some(record) if password::verify(password, hash).await => Ok(record),
        _ => {
            app.throttle.failed(&keys, Instant::now());
            Err(ProtocolError::new(ErrorCode::IdentifyFailed, "unknown nick or wrong password"))
        }
    }
}

/// The Potato account the session is identified as.
fn identified_potato(app: &Inner, conn: ConnId) -> Result<String> {
    match app.hub.whoami(conn)?.1 {
        Some(Account::Potato(name)) => Ok(name),
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
            if let Some(Account::Potato(name)) = account {
                let code =
                    if fold(&name) == folded { ErrorCode::AccountExists } else { ErrorCode::BadArguments };
                return Err(ProtocolError::new(code, format!("you are already identified as {name}")));
            }
            if app.hub.app_owns(&folded) {
                return Err(ProtocolError::new(
                    ErrorCode::NickReserved,
                    format!("{current} belongs to an app user"),
                ));
            }
            password::check_password(&password.0)?;
            password::check_email(&email)?;
            let hash = password::hash(password.0).await?;
            if !app.store.create_account(&folded, &current, &email, &hash).await.map_err(internal)? {
                return Err(ProtocolError::new(
                    ErrorCode::AccountExists,
                    format!("{current} is registered already"),
                ));
            }
            app.hub.potato_registered(conn, &current);
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
            app.hub.potato_identified(conn, &record.name)?;
            say(format!("you are now identified as {}", record.name));
        }
        PotatoRequest::Disconnect { nick, password } => {
            let record = check_account_password(app, conn, &fold(&nick), password.0).await?;
            let gone = app.hub.potato_ghost(conn, &fold(&record.name))?;
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
            let own = matches!(app.hub.whoami(conn)?.1, Some(Account::Potato(n)) if fold(&n) == folded);
            let email = if own { format!(", email {}", record.email) } else { String::new() };
            say(format!("{} was registered on {}; {online}{email}", record.name, date(record.created)));
        }
        PotatoRequest::Passwd { old, new } => {
            let name = identified_potato(app, conn)?;
            password::check_password(&new.0)?;
            check_account_password(app, conn, &fold(&name), old.0).await?;
            let hash = password::hash(new.0).await?;
            if !app.store.set_password(&fold(&name), &hash).await.map_err(internal)? {
                return Err(ProtocolError::new(
                    ErrorCode::NoSuchAccount,
                    format!("{name} is not registered"),
                ));
            }
            say("your password is changed".into());
        }
        PotatoRequest::Drop { password } => {
            let name = identified_potato(app, conn)?;
            let folded = fold(&name);
            check_account_password(app, conn, &folded, password.0).await?;
            let key = Account::Potato(name.clone()).key();
            let founded = app.store.drop_account(&folded, &key).await.map_err(internal)?;
            app.hub.potato_dropped(&name, &founded);
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
        Ok::<_, ProtocolError>((record.name, target))
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
            let info = app.hub.celery_info(&channel)?;
            let created =
                app.store.channel_created(&info.key).await.map_err(internal)?.unwrap_or_else(now_secs);
            let r = &info.record;
            let list = |l: &[String]| if l.is_empty() { "none".to_owned() } else { l.join(", ") };
            say(format!(
                "{} was registered on {} by {}; ops: {}; trusted: {}; topic: {}",
                r.name,
                date(created),
                r.founder,
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

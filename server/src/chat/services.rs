//! The chat core's side of Potato and Celery: what changes online when an account is
//! registered, identified or dropped, and when a channel's registration changes. The services
//! themselves (passwords, the store) live in `crate::services`. Accounts and registrations
//! change online once the store has them; op list edits change online first (the hub's lock
//! orders concurrent edits) and are stored with a revision number, so an older snapshot that
//! is written late never replaces a newer one. Services acknowledge only after storing.

use std::collections::HashSet;

use app::protocol::command::{CELERY, POTATO};
use app::protocol::names::{fold, validate_nick, MAX_NICK_CHARS};
use app::protocol::{CloseReason, ErrorCode, ServerEvent};

use super::{display_key, err, names, Account, AppEvent, Close, ConnId, Hub, PotatoAccount, Result, State};
use crate::store::ChannelRecord;

/// A change to a registered channel's op list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum OpListEdit {
    Op,
    Deop,
    Trust,
    Untrust,
}

/// What Potato shows about an account besides its stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccountInfo {
    /// The nick of a session identified as the account, if one is online.
    pub online_as: Option<String>,
}

/// A registered channel as Celery shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChannelInfo {
    pub key: String,
    pub record: ChannelRecord,
}

/// A registration in progress; see [`Hub::potato_claim`].
pub(crate) struct RegistrationClaim {
    hub: std::sync::Weak<Hub>,
    key: String,
}

impl Drop for RegistrationClaim {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.lock().pending_registrations.remove(&self.key);
        }
    }
}

impl State {
    fn notice(&self, conn: ConnId, from: &str, text: String) {
        self.to_one(conn, ServerEvent::Notice { from: from.into(), text, code: None });
    }

    pub(super) fn registration_changed(&self, key: &str) {
        if let Some(ch) = self.channels.get(key) {
            self.to_channel(ch, self.registration_event(ch));
        }
    }

    /// A free `Guest-NNNNN` nick: nobody's, and no look-alike of a registered or app user's.
    fn guest_nick(&self) -> String {
        loop {
            let nick = format!("Guest-{:05}", self.random() % 100_000);
            let taken = !self.nicks.find_all(&nick).is_empty()
                || !self.registered.find_all(&nick).is_empty()
                || !self.reserved.find_all(&nick).is_empty();
            if !taken {
                return nick;
            }
        }
    }

    /// Whether nobody has `nick` or a look-alike of it (online, registered, an app user's), and
    /// it is not a service's.
    fn nick_free(&self, nick: &str) -> bool {
        self.nicks.find_all(nick).is_empty()
            && self.registered.find_all(nick).is_empty()
            && self.reserved.find_all(nick).is_empty()
            && !names::is_service_name(nick)
    }

    /// `nick_in_use` for `nick`, offering free nicks like it.
    pub(super) fn nick_in_use(&self, nick: &str) -> super::ProtocolError {
        err(ErrorCode::NickInUse, format!("{nick} is already in use")).with_nicks(self.free_nicks_like(nick))
    }

    /// Up to three free nicks like `nick`, to offer when it is taken: `nick_`, `nick2`, …
    pub(super) fn free_nicks_like(&self, nick: &str) -> Vec<String> {
        // Room for a two-character ending within the longest nick.
        let base: String = nick.chars().take(MAX_NICK_CHARS - 2).collect();
        let endings = ["_".to_owned(), "-".to_owned()].into_iter().chain((2..100).map(|n| n.to_string()));
        endings
            .map(|end| format!("{base}{end}"))
            .filter(|n| validate_nick(n).is_ok() && self.nick_free(n))
            .take(3)
            .collect()
    }

    /// Renames `conn` without the checks of `/nick` (the caller made sure `new` is free). A
    /// rename the user did not choose is no way out of a ban either: a channel that banned
    /// them under the old nick, and would not under the new one, loses them (`/nick` refuses).
    fn force_nick(&mut self, conn: ConnId, new: &str) {
        let Some(c) = self.clients.get(&conn) else { return };
        let masks = c.masks();
        let banned: Vec<String> = c
            .channels
            .iter()
            .filter(|name| self.channels.get(*name).is_some_and(|ch| ch.is_banned(&masks)))
            .cloned()
            .collect();
        let Some(c) = self.clients.get_mut(&conn) else { return };
        let old = std::mem::replace(&mut c.nick, new.to_owned());
        let masks = c.masks();
        self.nicks.remove(&old);
        self.nicks.insert(new, conn);
        self.tell_app(|| Some(AppEvent::Nick { old: old.clone(), new: new.to_owned() }));
        let event = ServerEvent::NickChanged { old, new: new.to_owned() };
        self.deliver(&self.audience(conn), &event);
        for folded in banned {
            let Some(ch) = self.channels.get(&folded).filter(|ch| !ch.is_banned(&masks)) else { continue };
            let reason = "banned here under the nick you had".to_owned();
            let kicked = ServerEvent::Kicked {
                channel: ch.name.clone(),
                nick: new.to_owned(),
                by: POTATO.into(),
                reason: Some(reason),
            };
            self.to_channel(ch, kicked);
            self.leave(conn, &folded);
        }
    }

    /// Moves everyone who sits on `nick` or a look-alike of it (other than `except`) to a
    /// guest nick.
    fn evict_nick(&mut self, nick: &str, except: Option<ConnId>, why: &str) {
        let holders: Vec<ConnId> =
            self.nicks.find_all(nick).into_iter().map(|(_, &h)| h).filter(|&h| Some(h) != except).collect();
        for holder in holders {
            self.evict(holder, why);
        }
    }

    /// Moves `holder` to a guest nick, telling them why.
    pub(super) fn evict(&mut self, holder: ConnId, why: &str) {
        let guest = self.guest_nick();
        self.notice(holder, POTATO, format!("{why}; you are now {guest}"));
        self.force_nick(holder, &guest);
    }

    /// Ops `conn` in the registered channels it is in whose op list names its account.
    fn op_from_lists(&mut self, conn: ConnId) {
        let Some(key) = self.clients.get(&conn).and_then(|c| c.account.as_ref()).map(Account::key) else {
            return;
        };
        let channels: Vec<String> =
            self.clients.get(&conn).map(|c| c.channels.iter().cloned().collect()).unwrap_or_default();
        for folded in channels {
            let listed = self.regs.get(&folded).is_some_and(|r| r.founder == key || r.ops.contains(&key));
            if listed {
                self.celery_set_op(&folded, conn, true);
            }
        }
    }

    /// Celery ops or deops a member, telling the channel.
    pub(super) fn celery_set_op(&mut self, folded: &str, conn: ConnId, on: bool) {
        let nick = self.nick_of(conn);
        let Some(ch) = self.channels.get_mut(folded) else { return };
        let Some(roles) = ch.members.get_mut(&conn) else { return };
        if std::mem::replace(&mut roles.op, on) == on {
            return;
        }
        let ch = &self.channels[folded];
        let event = ServerEvent::ModeChanged {
            channel: ch.name.clone(),
            by: CELERY.into(),
            modes: if on { "+o" } else { "-o" }.into(),
            args: vec![nick],
        };
        self.to_channel(ch, &event);
    }

    /// The account key an argument of `/celery op` names: `app:x` / `potato:x` as given, a
    /// registered nick, or the account of someone online.
    fn resolve_account(&self, arg: &str) -> Option<String> {
        if let Some(rest) = arg.strip_prefix("app:") {
            return self.reserved.get(rest).map(|user| Account::App(user.clone()).key());
        }
        if let Some(rest) = arg.strip_prefix("potato:") {
            return self.registered.get(rest).map(PotatoAccount::key);
        }
        if let Some(account) = self.registered.get(arg) {
            return Some(account.key());
        }
        if let Some(account) =
            self.nicks.get(arg).and_then(|c| self.clients.get(c)).and_then(|c| c.account.as_ref())
        {
            return Some(account.key());
        }
        self.reserved.get(arg).map(|user| Account::App(user.clone()).key())
    }

    /// The caller's account key, which Celery needs.
    fn account_key(&self, conn: ConnId) -> Result<String> {
        self.client(conn)?.account.as_ref().map(Account::key).ok_or_else(|| {
            err(ErrorCode::NotIdentified, "identify first: /potato identify <nick> <password>")
        })
    }

    fn registration(&self, channel: &str) -> Result<(String, &ChannelRecord)> {
        let folded = fold(channel);
        match self.regs.get(&folded) {
            Some(reg) => Ok((folded, reg)),
            None => Err(err(ErrorCode::ChannelNotRegistered, format!("{channel} is not registered"))),
        }
    }
}

impl Hub {
    /// Accounts and registered channels from the store, at startup.
    pub(crate) fn load_registrations(&self, accounts: Vec<PotatoAccount>, channels: Vec<ChannelRecord>) {
        let mut st = self.lock();
        for account in accounts {
            let name = account.name.clone();
            st.registered.insert(&name, account);
        }
        st.regs.extend(channels.into_iter().map(|rec| (fold(&rec.name), rec)));
    }

    /// A notice from a service to one session.
    pub(crate) fn notify(&self, conn: ConnId, from: &str, text: impl Into<String>) {
        self.lock().notice(conn, from, text.into());
    }

    /// The session's nick and account.
    pub(crate) fn whoami(&self, conn: ConnId) -> Result<(String, Option<Account>)> {
        let st = self.lock();
        let c = st.client(conn)?;
        Ok((c.nick.clone(), c.account.clone()))
    }

    /// The address `conn` connected from.
    pub(crate) fn peer(&self, conn: ConnId) -> Result<std::net::IpAddr> {
        Ok(self.lock().client(conn)?.ip)
    }

    /// Claims `nick` for a Potato registration in progress, so a second registration of it
    /// is refused before it hashes anything. `None` when it is registered or being registered.
    /// The claim ends when the returned guard is dropped.
    pub(crate) fn potato_claim(&self, nick: &str) -> Option<RegistrationClaim> {
        let mut st = self.lock();
        if !st.registered.find_all(nick).is_empty() || !st.pending_registrations.find_all(nick).is_empty() {
            return None;
        }
        st.pending_registrations.insert(nick, ());
        Some(RegistrationClaim { hub: self.me.clone(), key: nick.to_owned() })
    }

    /// Whether an app user owns `nick` or a look-alike of it.
    pub(crate) fn app_owns(&self, nick: &str) -> bool {
        !self.lock().reserved.find_all(nick).is_empty()
    }

    /// Whether `user` would be a new app user whose name looks like another app user's
    /// (`Some(that user)`), which would make the two indistinguishable in the chat.
    pub(crate) fn app_user_lookalike(&self, user: &str) -> Option<String> {
        let st = self.lock();
        let folded = fold(user);
        st.reserved.find_all(user).into_iter().find(|(f, _)| *f != folded).map(|(_, other)| other.clone())
    }

    /// Potato stored a new account for `conn`'s nick: it now owns it and is identified.
    pub(crate) fn potato_registered(&self, conn: ConnId, account: PotatoAccount) {
        let mut st = self.lock();
        st.registered.insert(&account.name.clone(), account.clone());
        let was_oper = st.is_oper_conn(conn, &self.settings.opers);
        let account = Account::Potato(account);
        if st.ban_as(conn, &account) {
            return;
        }
        st.to_one(conn, &ServerEvent::AccountChanged { account: Some(account.wire()) });
        let nick = st.nick_of(conn);
        st.tell_app(|| Some(AppEvent::AccountRegister { nick, account: account.wire() }));
        if let Some(c) = st.clients.get_mut(&conn) {
            c.account = Some(account);
        }
        st.tell_oper_status(conn, &self.settings.opers, was_oper);
    }

    /// `conn` proved it owns the Potato account: it becomes that account and takes the
    /// nick, moving whoever sits on it to a guest nick (unless an app user owns it).
    pub(crate) fn potato_identified(&self, conn: ConnId, account: PotatoAccount) -> Result<()> {
        let mut st = self.lock();
        st.client(conn)?;
        let was_oper = st.is_oper_conn(conn, &self.settings.opers);
        let name = account.name.clone();
        let account = Account::Potato(account);
        // A server ban on the account holds once it is identified, before anything it does.
        if st.ban_as(conn, &account) {
            return Ok(());
        }
        st.to_one(conn, &ServerEvent::AccountChanged { account: Some(account.wire()) });
        let nick = st.nick_of(conn);
        st.tell_app(|| Some(AppEvent::AccountIdentify { nick, account: account.wire() }));
        if let Some(c) = st.clients.get_mut(&conn) {
            c.account = Some(account);
        }
        if !st.reserved.find_all(&name).is_empty() {
            st.notice(conn, POTATO, format!("the nick {name} belongs to an app user; you keep your nick"));
        } else if fold(&st.nick_of(conn)) != fold(&name) {
            st.evict_nick(&name, Some(conn), &format!("{name} identified for the nick you were using"));
            st.force_nick(conn, &name);
        }
        st.op_from_lists(conn);
        st.tell_oper_status(conn, &self.settings.opers, was_oper);
        Ok(())
    }

    /// Disconnects whoever other than `conn` uses `nick` (or a look-alike of it); returns their
    /// nick. An app user's session is never disconnected this way: the app owns its nick.
    pub(crate) fn potato_ghost(&self, conn: ConnId, nick: &str) -> Result<String> {
        let mut st = self.lock();
        let holder = st.nicks.find_all(nick).into_iter().map(|(_, &h)| h).find(|&h| h != conn);
        let Some((holder, c)) = holder.and_then(|h| st.clients.get(&h).map(|c| (h, c))) else {
            return Err(err(ErrorCode::NoSuchNick, "nobody else is using that nick"));
        };
        if matches!(c.account, Some(Account::App(_))) {
            return Err(err(
                ErrorCode::NickReserved,
                format!("{} is an app user; their app decides who uses that nick", c.nick),
            ));
        }
        let ghost = c.nick.clone();
        c.outbox.send(ServerEvent::Notice {
            from: POTATO.into(),
            text: "you were disconnected by the owner of this nick".into(),
            code: None,
        });
        st.end_session(holder, Close::new(CloseReason::Ghosted), "disconnected by the owner of the nick");
        Ok(ghost)
    }

    /// A Potato account was deleted, with the channels it founded.
    pub(crate) fn potato_dropped(&self, account: &PotatoAccount, founded: &[String]) {
        let mut st = self.lock();
        st.registered.remove(&account.name);
        let key = account.key();
        // Channels whose registration changes: those it was listed on, and those it founded.
        let mut changed: Vec<String> = Vec::new();
        for (channel, reg) in &mut st.regs {
            let listed = reg.ops.len() + reg.trusted.len();
            reg.ops.retain(|k| *k != key);
            reg.trusted.retain(|k| *k != key);
            if reg.ops.len() + reg.trusted.len() != listed {
                changed.push(channel.clone());
            }
        }
        for channel in founded {
            let folded = fold(channel);
            st.regs.remove(&folded);
            changed.push(folded);
        }
        changed.sort_unstable();
        changed.dedup();
        for channel in &changed {
            st.registration_changed(channel);
        }
        let logged_in: Vec<ConnId> = st
            .clients
            .iter()
            .filter(|(_, c)| c.account.as_ref().is_some_and(|a| a.key() == key))
            .map(|(&conn, _)| conn)
            .collect();
        for conn in logged_in {
            let was_oper = st.is_oper_conn(conn, &self.settings.opers);
            if let Some(c) = st.clients.get_mut(&conn) {
                c.account = None;
            }
            st.to_one(conn, &ServerEvent::AccountChanged { account: None });
            st.tell_oper_status(conn, &self.settings.opers, was_oper);
        }
    }

    /// Who is identified as the Potato account `folded` right now.
    pub(crate) fn potato_info(&self, folded: &str) -> AccountInfo {
        let st = self.lock();
        let online_as = st
            .clients
            .values()
            .find(|c| matches!(&c.account, Some(a @ Account::Potato(_)) if a.owns(folded)))
            .map(|c| c.nick.clone());
        AccountInfo { online_as }
    }

    /// The grace period is over: if `conn` still sits on `nick`, which is registered (or looks
    /// like a registered nick), without being its account, it is renamed to a guest nick.
    pub(crate) fn enforce_registered_nick(&self, conn: ConnId, nick: &str) {
        let mut st = self.lock();
        let Some(c) = st.clients.get(&conn) else { return };
        if fold(&c.nick) != fold(nick) || st.foreign_registration(conn).is_none() {
            return;
        }
        let guest = st.guest_nick();
        st.notice(conn, POTATO, format!("you did not identify in time; you are now {guest}"));
        st.force_nick(conn, &guest);
    }

    /// Checks that `conn` may register `channel` with Celery: identified, op there, and the
    /// channel not registered yet. Returns the key and the record to store.
    pub(crate) fn celery_register_check(
        &self,
        conn: ConnId,
        channel: &str,
    ) -> Result<(String, ChannelRecord)> {
        let st = self.lock();
        let founder = st.account_key(conn)?;
        let ch = st.opped_channel(conn, channel)?;
        let folded = fold(&ch.name);
        if st.regs.contains_key(&folded) {
            return Err(err(ErrorCode::ChannelRegistered, format!("{} is registered already", ch.name)));
        }
        let mut record = ChannelRecord { name: ch.name.clone(), founder, rev: 1, ..Default::default() };
        ch.save_into(&mut record);
        Ok((folded, record))
    }

    /// Celery stored a channel's registration.
    pub(crate) fn celery_registered(&self, key: &str, record: ChannelRecord) {
        let mut st = self.lock();
        st.regs.insert(key.to_owned(), record);
        st.registration_changed(key);
    }

    /// A registered channel as it is now.
    /// Of a secret or private channel (`+s`/`+p`, live or kept while empty), only its members,
    /// founder and listed ops learn anything; to others a secret one is not registered at all.
    pub(crate) fn celery_info(&self, conn: ConnId, channel: &str) -> Result<ChannelInfo> {
        let st = self.lock();
        let (key, record) = st.registration(channel)?;
        let live = st.channels.get(&key);
        let hidden = live.map_or_else(|| record.flags.contains(['s', 'p']), |ch| ch.is_hidden());
        let me = st.clients.get(&conn).and_then(|c| c.account.as_ref()).map(Account::key);
        let inside = live.is_some_and(|ch| ch.members.contains_key(&conn))
            || me.is_some_and(|k| record.founder == k || record.ops.contains(&k));
        if hidden && !inside {
            let secret = live.map_or_else(|| record.flags.contains('s'), |ch| ch.modes.secret);
            return Err(if secret {
                err(ErrorCode::ChannelNotRegistered, format!("{channel} is not registered"))
            } else {
                err(ErrorCode::NotOnChannel, format!("{} is private; join it to see inside", record.name))
            });
        }
        Ok(ChannelInfo { key, record: record.clone() })
    }

    /// Checks that `conn` founded `channel`; returns its key.
    pub(crate) fn celery_founder_check(&self, conn: ConnId, channel: &str) -> Result<String> {
        let st = self.lock();
        let me = st.account_key(conn)?;
        let (key, record) = st.registration(channel)?;
        if record.founder != me {
            return Err(err(
                ErrorCode::AccessDenied,
                format!("only the founder of {} may do that", record.name),
            ));
        }
        Ok(key)
    }

    /// Celery removed a channel's registration.
    pub(crate) fn celery_dropped(&self, key: &str) {
        let mut st = self.lock();
        st.regs.remove(key);
        st.registration_changed(key);
    }

    /// Tells the members of a channel (by folded name) its registration as it is now.
    pub(crate) fn celery_changed(&self, key: &str) {
        self.lock().registration_changed(key);
    }

    /// Changes a registered channel's op list (the founder; trusted ops for op and deop) and
    /// applies it to members online. Returns the key and record to store, and the account key.
    pub(crate) fn celery_edit(
        &self,
        conn: ConnId,
        channel: &str,
        account: &str,
        edit: OpListEdit,
    ) -> Result<(String, ChannelRecord, String)> {
        let mut st = self.lock();
        let me = st.account_key(conn)?;
        let (folded, record) = st.registration(channel)?;
        let founder = record.founder == me;
        let allowed = match edit {
            OpListEdit::Op | OpListEdit::Deop => founder || record.trusted.contains(&me),
            OpListEdit::Trust | OpListEdit::Untrust => founder,
        };
        if !allowed {
            return Err(err(
                ErrorCode::AccessDenied,
                format!("you may not change the op list of {}", record.name),
            ));
        }
        // An entry is taken off as the list shows it (`potato:alice`), even when its account
        // has since been dropped and so no longer resolves.
        let listed = matches!(edit, OpListEdit::Deop | OpListEdit::Untrust)
            .then(|| record.ops.iter().chain(&record.trusted).find(|k| fold(display_key(k)) == fold(account)))
            .flatten()
            .cloned();
        let target = listed
            .or_else(|| st.resolve_account(account))
            .ok_or_else(|| err(ErrorCode::NoSuchAccount, format!("no account is called {account}")))?;
        if target == record.founder && edit != OpListEdit::Op {
            return Err(err(ErrorCode::BadArguments, "the founder is always op"));
        }
        let Some(reg) = st.regs.get_mut(&folded) else {
            return Err(err(ErrorCode::ChannelNotRegistered, format!("{channel} is not registered")));
        };
        let add = |list: &mut Vec<String>| {
            if !list.contains(&target) {
                list.push(target.clone());
            }
        };
        match edit {
            OpListEdit::Op => add(&mut reg.ops),
            OpListEdit::Trust => {
                add(&mut reg.ops);
                add(&mut reg.trusted);
            }
            OpListEdit::Deop => {
                reg.ops.retain(|k| *k != target);
                reg.trusted.retain(|k| *k != target);
            }
            OpListEdit::Untrust => reg.trusted.retain(|k| *k != target),
        }
        reg.rev += 1;
        let record = reg.clone();
        // Members identified as the account get (or lose) op now.
        let affected: HashSet<ConnId> = st
            .channels
            .get(&folded)
            .map(|ch| ch.members.keys().copied().collect::<HashSet<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|c| st.clients.get(c).and_then(|c| c.account.as_ref()).is_some_and(|a| a.key() == target))
            .collect();
        match edit {
            OpListEdit::Op | OpListEdit::Trust => {
                affected.iter().for_each(|&c| st.celery_set_op(&folded, c, true))
            }
            OpListEdit::Deop => affected.iter().for_each(|&c| st.celery_set_op(&folded, c, false)),
            OpListEdit::Untrust => {}
        }
        Ok((folded, record, target))
    }
}

//! Server operators: the accounts named in `CHATTR_OPERS`, while a session is identified as
//! one. What they may do that nobody else may: disconnect anyone (`/kill`), ban from the whole
//! server (`/kline`, applied at login and to the sessions it matches at once), lift such a ban,
//! send everyone a notice, read the server's figures, and see real addresses in `/whois`. The
//! core checks who is an operator and applies what they do; the service stores klines and the
//! audit log before anything is acknowledged.

use std::net::IpAddr;

use app::protocol::names::fold;
use app::protocol::{AuditEntry, CloseReason, ErrorCode, Kline, ServerEvent};
use ipnet::IpNet;
use wildmatch::WildMatch;

use super::{err, now_ms, Account, Client, Close, ConnId, Hub, Identity, Result, State};

/// The longest kline mask, as for channel bans.
const MAX_MASK_BYTES: usize = 100;

/// The most klines in force: each login is matched against all of them.
const MAX_KLINES: usize = 1000;

/// What a kline matches, parsed from its mask.
#[derive(Debug, Clone)]
enum Matcher {
    /// An account's wire form, folded (`potato:bob`, `app:bob`).
    Account(String),
    /// An address or a network, compared with the real address.
    Net(IpNet),
    /// A `nick!user@host` mask, folded (compiled once), against both the cloaked and the real
    /// host.
    Mask(WildMatch),
}

/// A kline in force: as stored and shown, and what it matches.
#[derive(Debug, Clone)]
pub(crate) struct KlineRule {
    pub kline: Kline,
    matcher: Matcher,
}

impl KlineRule {
    /// Reads `mask` as an account, an address or network, or a `nick!user@host` mask (a bare
    /// word is a nick mask: `evil*` bans `evil*!*@*`; a kline names someone online by their bare
    /// nick, see [`user_named`]); the mask is kept in the form that shows which.
    fn parse(mask: &str) -> Result<(String, Matcher)> {
        let mask = mask.trim();
        if mask.is_empty()
            || mask.len() > MAX_MASK_BYTES
            || mask.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(err(
                ErrorCode::BadArguments,
                "a server ban mask is at most 100 bytes with no spaces or control characters",
            ));
        }
        // Every mask is kept in one spelling (folded, an address as its network), so `/unkline`
        // and a second `/kline` find it however it is typed.
        if let Some((kind, name)) = mask.split_once(':') {
            let kind = kind.to_ascii_lowercase();
            if matches!(kind.as_str(), "potato" | "app") {
                if name.is_empty() || name.contains(['!', '@', '*', '?', ':']) {
                    return Err(err(
                        ErrorCode::BadArguments,
                        "an account ban names one account: potato:<nick> or app:<user>",
                    ));
                }
                let wire = fold(&format!("{kind}:{name}"));
                return Ok((wire.clone(), Matcher::Account(wire)));
            }
        }
        let net = mask.parse::<IpNet>().ok().or_else(|| mask.parse::<IpAddr>().ok().map(IpNet::from));
        if let Some(net) = net {
            let net = crate::proxy::canonical(net.trunc());
            return Ok((net.to_string(), Matcher::Net(net)));
        }
        let bare = !mask.contains(['!', '@']);
        // No nick has a '/', ':' or '.': such a word was meant as an address or a network (a
        // typo such as `1.2.3.4/33`), and as a nick mask it would ban nobody.
        if bare && mask.contains(['/', ':', '.']) {
            return Err(err(
                ErrorCode::BadArguments,
                "that is no address or network (203.0.113.7, 203.0.113.0/24, 2001:db8::/64), \
                 no account (potato:bob) and no nick mask (a host mask is written *!*@host)",
            ));
        }
        let mask = fold(&if bare { format!("{mask}!*@*") } else { mask.to_owned() });
        Ok((mask.clone(), Matcher::Mask(WildMatch::new(&mask))))
    }

    pub(crate) fn new(kline: Kline) -> Result<Self> {
        let (_, matcher) = Self::parse(&kline.mask)?;
        Ok(Self { kline, matcher })
    }

    fn expired(&self, now: u64) -> bool {
        self.kline.expires.is_some_and(|at| at <= now)
    }

    /// Whether this kline bans a session of `nick` on `account` from `ip`, whose cloaked and
    /// real `nick!user@host` forms are `masks`.
    fn matches(&self, ip: IpAddr, account: Option<&Account>, masks: &[String]) -> bool {
        match &self.matcher {
            Matcher::Account(wire) => account.is_some_and(|a| fold(&a.wire()) == *wire),
            Matcher::Net(net) => net.contains(&ip.to_canonical()),
            Matcher::Mask(pattern) => masks.iter().any(|m| pattern.matches(m)),
        }
    }

    fn matches_client(&self, c: &Client) -> bool {
        self.matches(c.ip, c.account.as_ref(), &c.masks())
    }
}

/// The nick a kline mask names, when it is a bare nick (no wildcards, and neither an account,
/// an address nor a `nick!user@host` mask): `/kline bob` bans whoever is `bob` now by their
/// address, as IRC servers' `KLINE nick` does. A nick mask is written with its `!` (`bob!*@*`),
/// or has wildcards (`evil*`).
fn user_named(mask: &str) -> Option<&str> {
    let mask = mask.trim();
    let plain = !mask.is_empty() && !mask.contains([':', '!', '@', '*', '?', '/']);
    (plain && mask.parse::<IpAddr>().is_err()).then_some(mask)
}

/// What a ban of someone's address covers: the address itself for IPv4, its /64 for IPv6 (one
/// subscriber's prefix, within which they can pick any address).
fn address_ban(ip: IpAddr) -> IpNet {
    let ip = ip.to_canonical();
    let prefix = if ip.is_ipv4() { 32 } else { 64 };
    IpNet::new(ip, prefix).map(|net| net.trunc()).unwrap_or_else(|_| IpNet::from(ip))
}

/// Who is acting as an operator.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Oper {
    pub account: String,
    pub nick: String,
    pub ip: IpAddr,
}

impl Oper {
    /// The audit log's line for an action of this operator's.
    pub(crate) fn entry(&self, action: &str, target: &str, reason: Option<String>) -> AuditEntry {
        AuditEntry {
            at: now_ms(),
            oper: self.account.clone(),
            nick: self.nick.clone(),
            action: action.to_owned(),
            target: target.to_owned(),
            reason,
            from: self.ip.to_string(),
        }
    }
}

/// Messages delivered in each of the last 60 seconds, for `/stats`.
#[derive(Debug)]
pub(super) struct MessageRate {
    buckets: [u64; 60],
    /// The second (since the epoch) the newest bucket counts.
    newest: u64,
}

impl Default for MessageRate {
    fn default() -> Self {
        Self { buckets: [0; 60], newest: 0 }
    }
}

impl MessageRate {
    pub(super) fn add(&mut self, now_secs: u64, count: u64) {
        self.advance(now_secs);
        self.buckets[(now_secs % 60) as usize] += count;
    }

    fn advance(&mut self, now_secs: u64) {
        if now_secs <= self.newest {
            return;
        }
        // Empty every bucket between the newest counted second and now.
        for s in (self.newest + 1..=now_secs).take(60) {
            self.buckets[(s % 60) as usize] = 0;
        }
        self.newest = now_secs;
    }

    fn last_minute(&mut self, now_secs: u64) -> u64 {
        self.advance(now_secs);
        self.buckets.iter().sum()
    }
}

impl State {
    /// Whether `c` is identified as an account named in `CHATTR_OPERS`: an app user by name, a
    /// Potato account by name and by the registration it was pinned to.
    fn is_oper(&self, c: &Client, opers: &[String]) -> bool {
        match &c.account {
            None => false,
            Some(a @ Account::App(_)) => opers.contains(&fold(&a.wire())),
            Some(a @ Account::Potato(p)) => {
                opers.contains(&fold(&a.wire())) && self.oper_pins.get(&fold(&p.name)) == Some(&p.key())
            }
        }
    }

    /// Whether the session `conn` is an operator's.
    pub(super) fn is_oper_conn(&self, conn: ConnId, opers: &[String]) -> bool {
        self.clients.get(&conn).is_some_and(|c| self.is_oper(c, opers))
    }

    /// `conn` as an operator, or `not_oper`.
    fn oper(&self, conn: ConnId, opers: &[String]) -> Result<Oper> {
        let c = self.client(conn)?;
        if !self.is_oper(c, opers) {
            return Err(err(ErrorCode::NotOper, "that is for server operators"));
        }
        let account = c.account.as_ref().map(Account::wire).unwrap_or_default();
        Ok(Oper { account, nick: c.nick.clone(), ip: c.ip })
    }

    /// Tells `conn` it became an operator, or is one no longer, when that changed from `was`.
    pub(super) fn tell_oper_status(&self, conn: ConnId, opers: &[String], was: bool) {
        if let Some(c) = self.clients.get(&conn) {
            let oper = self.is_oper(c, opers);
            if oper != was {
                self.to_one(conn, ServerEvent::OperStatus { oper });
            }
        }
    }

    /// The kline in force that bans `identity`, if any.
    pub(super) fn kline_for(&self, identity: &Identity, cloak: &str) -> Option<&Kline> {
        let now = self.now_ms();
        let user = identity.account.as_ref().map_or("guest", Account::name);
        let masks = [
            fold(&format!("{}!{user}@{cloak}", identity.nick)),
            fold(&format!("{}!{user}@{}", identity.nick, identity.ip)),
        ];
        self.klines
            .iter()
            .find(|k| !k.expired(now) && k.matches(identity.ip, identity.account.as_ref(), &masks))
            .map(|k| &k.kline)
    }

    /// Ends the sessions a kline bans: each is told why, then closed (the operator who asked
    /// was refused a kline that would match their own session).
    fn enforce(&mut self, rule: &KlineRule) -> usize {
        let banned: Vec<ConnId> =
            self.clients.iter().filter(|(_, c)| rule.matches_client(c)).map(|(&conn, _)| conn).collect();
        for &conn in &banned {
            if let Some(c) = self.clients.get(&conn) {
                c.outbox.send(banned_error(&rule.kline).into());
            }
            self.end_session(conn, Close::error(ErrorCode::ServerBanned), "banned from the server");
        }
        banned.len()
    }

    /// Ends `conn`'s session, before anything else happens, if a kline bans it as `account`
    /// (the account it is about to become); answers whether it did.
    pub(super) fn ban_as(&mut self, conn: ConnId, account: &Account) -> bool {
        let Some(c) = self.clients.get(&conn) else { return false };
        let there = Identity { nick: c.nick.clone(), account: Some(account.clone()), ip: c.ip };
        let Some(kline) = self.kline_for(&there, &c.cloak).cloned() else { return false };
        c.outbox.send(banned_error(&kline).into());
        self.end_session(conn, Close::error(ErrorCode::ServerBanned), "banned from the server");
        true
    }

    fn kline_list(&self) -> ServerEvent {
        let now = self.now_ms();
        let mut klines: Vec<Kline> =
            self.klines.iter().filter(|k| !k.expired(now)).map(|k| k.kline.clone()).collect();
        klines.sort_by(|a, b| a.mask.cmp(&b.mask));
        ServerEvent::KlineList { klines }
    }
}

/// What a banned user is told.
pub(super) fn banned_error(kline: &Kline) -> app::protocol::ProtocolError {
    let why = kline.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
    err(ErrorCode::ServerBanned, format!("you are banned from this server{why}"))
}

impl Hub {
    /// `conn` as an operator, or `not_oper`.
    pub(crate) fn oper(&self, conn: ConnId) -> Result<Oper> {
        self.lock().oper(conn, &self.settings.opers)
    }

    /// The operator pins stored, at startup.
    pub(crate) fn load_oper_pins(&self, pins: Vec<(String, String)>) {
        self.lock().oper_pins = pins.into_iter().collect();
    }

    /// Whether `account` is named an operator and its name not pinned yet.
    pub(crate) fn needs_oper_pin(&self, account: &super::PotatoAccount) -> bool {
        let name = fold(&account.name);
        self.settings.opers.contains(&format!("potato:{name}")) && !self.lock().oper_pins.contains_key(&name)
    }

    /// Records a pin the store took (or already had).
    pub(crate) fn oper_pinned(&self, name: String, key: String) {
        self.lock().oper_pins.insert(name, key);
    }

    /// The klines stored, at startup.
    pub(crate) fn load_klines(&self, klines: Vec<Kline>) {
        let rules = klines
            .into_iter()
            .filter_map(|k| match KlineRule::new(k.clone()) {
                Ok(rule) => Some(rule),
                Err(e) => {
                    tracing::warn!(mask = %k.mask, error = %e.message, "a stored server ban is not understood; it is not in force");
                    None
                }
            })
            .collect();
        self.lock().klines = rules;
    }

    /// Checks a kline an operator asks for and makes it: the mask in its shown form, by whom,
    /// until when, and what the audit log says it is on (the mask, and for a ban named by nick
    /// whose address it is). Refused when it would match the operator's own session.
    pub(crate) fn prepare_kline(
        &self,
        conn: ConnId,
        mask: &str,
        duration_secs: Option<u64>,
        reason: Option<String>,
    ) -> Result<(Oper, KlineRule, String)> {
        let st = self.lock();
        let oper = st.oper(conn, &self.settings.opers)?;
        // Checked as a mask first: its length and characters.
        let parsed = KlineRule::parse(mask)?;
        let mut whose = None;
        let (mask, matcher) = match user_named(mask) {
            Some(nick) => {
                let target = st.conn_by_nick(nick).map_err(|_| {
                    err(
                        ErrorCode::NoSuchNick,
                        format!("{nick} is not online (to ban the nick itself: {nick}!*@*)"),
                    )
                })?;
                let net = address_ban(st.client(target)?.ip);
                whose = Some(st.nick_of(target));
                (net.to_string(), Matcher::Net(net))
            }
            None => parsed,
        };
        let now = now_ms();
        let live = st.klines.iter().filter(|k| !k.expired(now) && k.kline.mask != mask).count();
        if live >= MAX_KLINES {
            return Err(err(
                ErrorCode::BadArguments,
                format!("{MAX_KLINES} server bans are in force already; lift some first"),
            ));
        }
        let at = now;
        let expires = duration_secs.map(|s| at.saturating_add(s.saturating_mul(1000)));
        let rule = KlineRule { kline: Kline { mask, reason, by: oper.nick.clone(), at, expires }, matcher };
        if st.client(conn).is_ok_and(|c| rule.matches_client(c)) {
            return Err(err(ErrorCode::BadArguments, "that server ban would match you"));
        }
        let target = match whose {
            Some(nick) => format!("{} ({nick})", rule.kline.mask),
            None => rule.kline.mask.clone(),
        };
        Ok((oper, rule, target))
    }

    /// Puts a stored kline in force (replacing one with the same mask), ends the sessions it
    /// matches, and shows `by` the list. Answers how many sessions ended.
    pub(crate) fn add_kline(&self, by: ConnId, rule: KlineRule) -> usize {
        let mut st = self.lock();
        let now = st.now_ms();
        st.klines.retain(|k| k.kline.mask != rule.kline.mask && !k.expired(now));
        let ended = st.enforce(&rule);
        st.klines.push(rule);
        let list = st.kline_list();
        st.to_one(by, list);
        ended
    }

    /// Whether a kline with this mask (in any spelling `parse` takes) is in force.
    pub(crate) fn kline_mask(&self, conn: ConnId, mask: &str) -> Result<(Oper, String)> {
        let st = self.lock();
        let oper = st.oper(conn, &self.settings.opers)?;
        let (mask, _) = KlineRule::parse(mask)?;
        if !st.klines.iter().any(|k| k.kline.mask == mask) {
            return Err(err(ErrorCode::NoSuchKline, format!("no server ban on {mask}")));
        }
        Ok((oper, mask))
    }

    /// Lifts the kline `mask` (stored as lifted already) and shows `by` the list.
    pub(crate) fn remove_kline(&self, by: ConnId, mask: &str) {
        let mut st = self.lock();
        let now = st.now_ms();
        st.klines.retain(|k| k.kline.mask != mask && !k.expired(now));
        let list = st.kline_list();
        st.to_one(by, list);
    }

    /// Shows an operator the klines in force.
    pub(crate) fn show_klines(&self, conn: ConnId) -> Result<()> {
        let st = self.lock();
        st.oper(conn, &self.settings.opers)?;
        st.to_one(conn, st.kline_list());
        Ok(())
    }

    /// Checks a `/kill`: the operator, and the session it ends with its nick.
    pub(crate) fn prepare_kill(&self, conn: ConnId, nick: &str) -> Result<(Oper, ConnId, String)> {
        let st = self.lock();
        let oper = st.oper(conn, &self.settings.opers)?;
        let target = st.conn_by_nick(nick)?;
        Ok((oper, target, st.nick_of(target)))
    }

    /// Ends the session `target` (whatever its nick is by now): it is told who and why, and
    /// everyone who shares a channel sees it quit "Killed by <oper>".
    pub(crate) fn kill(&self, oper: &Oper, target: ConnId, reason: Option<&str>) -> Result<()> {
        let mut st = self.lock();
        st.client(target).map_err(|_| err(ErrorCode::NoSuchNick, "they left already"))?;
        let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
        let text = format!("Killed by {}{why}", oper.nick);
        if let Some(c) = st.clients.get(&target) {
            c.outbox.send(ServerEvent::Notice { from: oper.nick.clone(), text: text.clone(), code: None });
        }
        st.end_session(target, Close::new(CloseReason::Killed), &text);
        Ok(())
    }

    /// Sends everyone a notice from an operator; answers to how many sessions.
    pub(crate) fn global_notice(&self, oper: &Oper, text: &str) -> usize {
        let st = self.lock();
        let event = ServerEvent::Notice { from: oper.nick.clone(), text: text.to_owned(), code: None };
        st.deliver(st.clients.keys(), &event);
        st.clients.len()
    }

    /// `/samode`: checks the change (`apply: false`), or makes it, announced as an override;
    /// a registered channel's kept state is saved as after `/mode`.
    pub(crate) fn samode(
        &self,
        conn: ConnId,
        channel: &str,
        modes: &str,
        args: &[String],
        apply: bool,
    ) -> Result<(Oper, super::Effect)> {
        let mut st = self.lock();
        let oper = st.oper(conn, &self.settings.opers)?;
        super::cmd::samode(&mut st, &oper.nick, channel, modes, args, apply)?;
        let effect = if apply { st.save_reg(channel) } else { super::Effect::Done };
        Ok((oper, effect))
    }

    /// Shows an operator the server's figures.
    pub(crate) fn stats(&self, conn: ConnId, uptime_secs: u64) -> Result<()> {
        let mut st = self.lock();
        st.oper(conn, &self.settings.opers)?;
        let now_secs = now_ms() / 1000;
        let messages_last_minute = st.rate.last_minute(now_secs);
        let opers = st.clients.values().filter(|c| st.is_oper(c, &self.settings.opers)).count();
        let event = ServerEvent::Stats {
            // This node's (a cluster's other nodes hold theirs, and their held sessions are
            // theirs alone to know); sessions are the whole chat's.
            connections: st.sessions_here().saturating_sub(st.held_count()),
            sessions: st.clients.len(),
            channels: st.channels.len(),
            opers,
            messages_last_minute,
            messages_total: st.messages_delivered,
            uptime_secs,
        };
        st.to_one(conn, event);
        Ok(())
    }

    /// Sends an operator the audit log (the service read it from the store).
    pub(crate) fn show_audit(&self, conn: ConnId, entries: Vec<AuditEntry>) {
        self.lock().to_one(conn, ServerEvent::AuditLog { entries });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn rule(mask: &str) -> KlineRule {
        KlineRule::new(Kline { mask: mask.into(), reason: None, by: "op".into(), at: 0, expires: None })
            .unwrap()
    }

    #[test]
    fn masks_are_read_as_accounts_networks_or_user_masks() {
        // One spelling each, however typed.
        assert_eq!(KlineRule::parse("POTATO:Bob").unwrap().0, "potato:bob");
        assert_eq!(KlineRule::parse("203.0.113.7/24").unwrap().0, "203.0.113.0/24");
        assert_eq!(KlineRule::parse("203.0.113.7").unwrap().0, "203.0.113.7/32");
        assert_eq!(KlineRule::parse("::ffff:203.0.113.7").unwrap().0, "203.0.113.7/32");
        assert_eq!(KlineRule::parse("::ffff:203.0.113.0/120").unwrap().0, "203.0.113.0/24");
        assert_eq!(KlineRule::parse("BOB").unwrap().0, "bob!*@*");
        assert_eq!(KlineRule::parse("potato:bob*").unwrap_err().code, ErrorCode::BadArguments);
        assert_eq!(KlineRule::parse("*!*@abc.cloak").unwrap().0, "*!*@abc.cloak");
        for bad in ["", "a b", &"x".repeat(101), "bell\u{7}"] {
            assert_eq!(KlineRule::parse(bad).unwrap_err().code, ErrorCode::BadArguments, "{bad:?}");
        }
    }

    #[test]
    fn a_bare_nick_names_someone_whose_address_is_banned() {
        assert_eq!(user_named(" bob "), Some("bob"));
        for mask in
            ["evil*", "b?b", "bob!*@*", "*@host", "potato:bob", "203.0.113.7", "10.0.0.0/8", "::1", ""]
        {
            assert_eq!(user_named(mask), None, "{mask}");
        }
        assert_eq!(address_ban(ip("203.0.113.7")).to_string(), "203.0.113.7/32");
        assert_eq!(address_ban(ip("::ffff:203.0.113.7")).to_string(), "203.0.113.7/32");
        assert_eq!(address_ban(ip("2001:db8:1:2:3:4:5:6")).to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn a_kline_matches_by_account_address_or_mask() {
        let bob = Account::Potato(super::super::PotatoAccount::new("Bob", "1"));
        let masks = |nick: &str| {
            vec![fold(&format!("{nick}!bob@abc.cloak")), fold(&format!("{nick}!bob@203.0.113.7"))]
        };
        assert!(rule("potato:bob").matches(ip("198.51.100.1"), Some(&bob), &masks("x")));
        assert!(!rule("app:bob").matches(ip("198.51.100.1"), Some(&bob), &masks("x")));
        assert!(rule("203.0.113.0/24").matches(ip("203.0.113.7"), None, &masks("x")));
        assert!(rule("203.0.113.0/24").matches(ip("::ffff:203.0.113.7"), None, &masks("x")));
        assert!(!rule("203.0.114.0/24").matches(ip("203.0.113.7"), None, &masks("x")));
        assert!(rule("*!*@abc.cloak").matches(ip("1.2.3.4"), None, &masks("x")));
        assert!(rule("BOB").matches(ip("1.2.3.4"), None, &masks("bob")));
        assert!(!rule("bob").matches(ip("1.2.3.4"), None, &masks("bobby")));
        let mut expiring = rule("bob");
        expiring.kline.expires = Some(10);
        assert!(expiring.expired(10) && !expiring.expired(9));
    }

    #[test]
    fn the_rate_counts_the_last_sixty_seconds() {
        let mut rate = MessageRate::default();
        rate.add(1000, 5);
        rate.add(1030, 2);
        assert_eq!(rate.last_minute(1030), 7);
        assert_eq!(rate.last_minute(1059), 7);
        assert_eq!(rate.last_minute(1060), 2, "the first second has left the window");
        assert_eq!(rate.last_minute(5000), 0);
        rate.add(5000, 1);
        assert_eq!(rate.last_minute(5000), 1);
    }
}

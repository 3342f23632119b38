//! Sessions that outlive their connection. Every `welcome` carries a resume secret. A
//! connection that drops (a reload, a phone switching networks) leaves its session held for
//! the resume grace: the nick, channels, roles and away state stay, nobody sees a quit, and
//! events for it wait in a queue. A new connection that presents the secret takes the session
//! over, gets what it missed and then each channel's state; a session nobody resumes quits
//! when the grace is over. The secret also takes over a session whose connection is still open
//! (a tab the server has not seen go): that connection is closed as replaced. The secret stays
//! the same for the session's life, so a resume cut off before its `welcome` arrived can be
//! tried again.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use app::protocol::{CloseReason, ErrorCode, ServerEvent};

use std::net::IpAddr;
use std::time::Instant;

use super::{
    remove_client, remove_client_telling, Close, ConnId, Hub, Identity, Outbox, OutboxQueue, Result, State,
    Timer,
};
use crate::admission::Group;
use crate::flood::FloodControl;

/// Most bytes a held session's queue keeps (far below a live connection's): a held session
/// cannot pin much of the server's send budget.
const HELD_QUEUE_BYTES: usize = 256 * 1024;

/// What a resume secret is found by: its SHA-256, so the table holds no usable secret.
pub(crate) type ResumeKey = [u8; 32];

/// A fresh resume secret (192 random bits) and its key.
pub(super) fn new_secret() -> (String, ResumeKey) {
    let secret = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>());
    let key = key_of(&secret);
    (secret, key)
}

pub(crate) fn key_of(secret: &str) -> ResumeKey {
    Sha256::digest(secret.as_bytes()).into()
}

/// What a connection that dropped leaves to its session, to be held.
pub struct Left {
    /// Its queue, with what it had not sent yet.
    pub unsent: Option<OutboxQueue>,
    /// Its flood allowance, so dropping and resuming does not refill it.
    pub flood: FloodControl,
}

/// What a held session keeps for the connection that resumes it.
pub(super) struct Held {
    /// Events that came for it meanwhile.
    queue: OutboxQueue,
    since: Instant,
    flood: FloodControl,
}

/// A connection carrying a session: which session, and which of its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attached {
    pub conn: ConnId,
    pub attachment: u64,
}

/// A session a new connection took over.
pub struct Resumed {
    pub attached: Attached,
    /// To send before anything else the session has queued.
    pub welcome: ServerEvent,
    /// The session's held queue and its sending side, when events waited for it there; the
    /// connection drains it instead of its own. Otherwise its own queue holds the channels'
    /// state.
    pub held: Option<(Outbox, OutboxQueue)>,
    /// The flood allowance the new connection goes on with.
    pub flood: FloodFrom,
}

/// Where a resumed session's flood allowance comes from.
pub enum FloodFrom {
    /// The one its last connection left, dropped.
    Left(FloodControl),
    /// None left: its connection was still open and is replaced. That connection's allowance
    /// is its own reader's, unknown here; starting afresh would let a client refill its
    /// allowance at will by taking its own session over.
    Spent,
    /// A fresh one: the session comes from another node, which kept its allowance.
    Fresh,
}

impl State {
    /// Ends a session for a reason of the server's (ghosted, revoked) at once: it quits, its
    /// secret stops working, and a connection carrying it is closed.
    pub(super) fn end_session(&mut self, conn: ConnId, close: Close, reason: &str) {
        if let Some(c) = self.clients.get(&conn) {
            let outbox = c.outbox.clone();
            remove_client(self, conn, Some(reason.to_owned()));
            outbox.close(close);
        }
    }

    /// How many sessions are on this node (held ones included). On a cluster every node knows
    /// every session: each counts its own.
    pub(super) fn sessions_here(&self) -> usize {
        self.clients.values().filter(|c| !c.outbox.is_elsewhere()).count()
    }

    /// How many sessions are held, waiting for their client to resume them.
    pub(super) fn held_count(&self) -> usize {
        self.clients.values().filter(|c| c.held.is_some()).count()
    }

    /// The state of every channel `conn` is in, as a join sends it: topic, members, history.
    pub(super) fn channel_states(&self, conn: ConnId, history: usize) -> Vec<ServerEvent> {
        let Some(client) = self.clients.get(&conn) else { return Vec::new() };
        let mut names: Vec<&String> = client.channels.iter().collect();
        names.sort();
        names
            .into_iter()
            .filter_map(|folded| self.channels.get(folded))
            .flat_map(|ch| self.channel_state(ch, history))
            .collect()
    }
}

impl Hub {
    /// How many sessions are held, waiting for their client to resume them.
    pub(crate) fn held_sessions(&self) -> usize {
        self.lock().held_count()
    }

    /// Takes over the session `secret` resumes, for a connection from `ip` whose own queue is
    /// `outbox`. `None` when no session has that secret (it quit, its grace ran out, the server
    /// restarted) or the server is closing the connection that carries it (flooding, a slow
    /// consumer).
    /// A server ban on where the session is now (its new address) ends it: `server_banned`.
    pub(crate) fn resume(&self, secret: &str, outbox: &Outbox, ip: IpAddr) -> Result<Option<Resumed>> {
        let node = self.lock().node;
        self.resume_on(key_of(secret), secret, Some(outbox), ip, node)
    }

    /// [`Hub::resume`] as every node of a cluster applies it: the session (found by its
    /// secret's `key`) moves to node `home`, whose connection `outbox` is when this node is
    /// that one (`secret` is known there only). The node it leaves closes its old connection
    /// and drops what it held for it (the client fills the gap from history); the others only
    /// note where it is.
    pub(crate) fn resume_on(
        &self,
        key: ResumeKey,
        secret: &str,
        outbox: Option<&Outbox>,
        ip: IpAddr,
        home: u64,
    ) -> Result<Option<Resumed>> {
        let mut st = self.lock();
        let Some(&conn) = st.resumes.get(&key) else { return Ok(None) };
        let cloak = self.cloaker.cloak(ip);
        let Some(client) = st.clients.get(&conn) else { return Ok(None) };
        let here = Identity { nick: client.nick.clone(), account: client.account.clone(), ip };
        if let Some(kline) = st.kline_for(&here, &cloak).cloned() {
            st.end_session(conn, Close::error(ErrorCode::ServerBanned), "banned from the server");
            return Err(super::opers::banned_error(&kline));
        }
        let here = st.node;
        let Some(client) = st.clients.get_mut(&conn) else { return Ok(None) };
        // (Only the node the session is on knows its connection is being closed; a cluster
        // resumes it all the same.)
        if client.held.is_none() && client.outbox.is_closed() && self.timers.get().is_none() {
            return Ok(None);
        }
        client.attachment += 1;
        // The session is where its connection is now.
        client.ip = ip;
        client.cloak = cloak;
        let attached = Attached { conn, attachment: client.attachment };
        let moved = client.home != home;
        let was_here = client.home == here;
        client.home = home;
        let outbox = match outbox {
            Some(outbox) if home == here => outbox,
            _ => {
                // Not this node's any more: its old connection (if it was here) goes.
                if was_here {
                    client.outbox.close(Close { drain: false, ..Close::new(CloseReason::SessionReplaced) });
                    client.held = None;
                }
                client.outbox = Outbox::elsewhere();
                let welcome = self.welcome(&st, conn, String::new(), true);
                return Ok(Some(Resumed { attached, welcome, held: None, flood: FloodFrom::Fresh }));
            }
        };
        let (held, flood) = match client.held.take() {
            Some(Held { queue, flood, .. }) if !client.outbox.is_closed() => {
                (Some((client.outbox.clone(), queue)), FloodFrom::Left(flood))
            }
            kept => {
                // Either another connection still carries the session, and is replaced, or
                // what waited overflowed its queue and is dropped: the client fills the gap
                // from history.
                // (A session that comes from another node had nothing here: nothing waited for
                // it, and its flood allowance starts afresh.)
                let took_over = kept.is_none() && !moved;
                if took_over {
                    client.outbox.close(Close { drain: false, ..Close::new(CloseReason::SessionReplaced) });
                }
                client.outbox = outbox.clone();
                let flood = match kept {
                    Some(kept) => FloodFrom::Left(kept.flood),
                    None if took_over => FloodFrom::Spent,
                    None => FloodFrom::Fresh,
                };
                (None, flood)
            }
        };
        let welcome = self.welcome(&st, conn, secret.to_owned(), true);
        st.tell_oper_status(conn, &self.settings.opers, false);
        for event in st.channel_states(conn, self.settings.history_on_join) {
            st.to_one(conn, &event);
        }
        Ok(Some(Resumed { attached, welcome, held, flood }))
    }

    /// Whether some session has the resume secret that hashes to `key`.
    pub(crate) fn knows_resume(&self, key: &ResumeKey) -> bool {
        self.lock().resumes.contains_key(key)
    }

    /// A connection ends its hold on its session (unless another connection took it over).
    /// With what it `left` (the connection dropped; the client may come back) and a resume
    /// grace, the session stays, its events queued (the connection's unsent ones first), until
    /// it is resumed or the grace is over; otherwise the user quits now with `reason`.
    pub(crate) fn release(&self, attached: Attached, reason: Option<String>, left: Option<Left>) {
        let mut st = self.lock();
        let Some(client) = st.clients.get_mut(&attached.conn) else { return };
        if client.attachment != attached.attachment {
            return;
        }
        // When the whole server stops, nobody is told that everyone else left.
        if client
            .outbox
            .close_reason()
            .is_some_and(|c| c.reason == CloseReason::Error(ErrorCode::ShuttingDown))
        {
            remove_client_telling(&mut st, attached.conn, reason, false);
            return;
        }
        let grace = self.settings.resume_grace;
        let Some(Left { unsent, flood }) = left.filter(|_| !grace.is_zero()) else {
            remove_client(&mut st, attached.conn, reason);
            return;
        };
        let (outbox, queue) = client.outbox.sibling(HELD_QUEUE_BYTES);
        // Under the lock nothing new can come in between: the old queue's events first.
        if let Some(mut unsent) = unsent {
            while let Some(event) = unsent.try_recv() {
                outbox.push(event);
            }
        }
        client.outbox.close(Close { drain: false, ..Close::new(CloseReason::Held) });
        client.outbox = outbox;
        client.held = Some(Held { queue, since: Instant::now(), flood });
        let group = Group::of(client.ip);
        // One address cannot keep nicks held without end by connecting and dropping: past
        // its share, the session held longest goes.
        let cap = self.settings.max_held_per_address;
        let held_here = || {
            st.clients.iter().filter_map(move |(&conn, c)| {
                c.held.as_ref().filter(|_| Group::of(c.ip) == group).map(|held| (held.since, conn))
            })
        };
        let over = cap > 0 && held_here().count() > cap;
        let oldest = held_here().min().filter(|_| over).map(|(_, oldest)| oldest);
        let evicted = oldest
            .and_then(|conn| st.clients.get(&conn).map(|c| Attached { conn, attachment: c.attachment }));
        drop(st);
        if let Some(attached) = evicted {
            self.timer_ran_out(Timer::EndHeld { attached, reason: Some("connection closed".into()) });
        }
        let hub = self.me.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if let Some(hub) = hub.upgrade() {
                let still_held = hub
                    .lock()
                    .clients
                    .get(&attached.conn)
                    .is_some_and(|c| c.attachment == attached.attachment && c.held.is_some());
                if still_held {
                    hub.timer_ran_out(Timer::EndHeld { attached, reason });
                }
            }
        });
    }
}

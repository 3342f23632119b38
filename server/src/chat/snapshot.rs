//! The chat's whole live state as one value, for a node that joins a running cluster: another
//! node takes it at a position of the log, and the newcomer loads it and applies the log from
//! there on. What only the node a session is on keeps (its queue, its echoes, a held
//! connection) stays there; every session comes to the newcomer as one on another node.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use app::protocol::Kline;

use super::channel::Channel;
use super::names::NameIndex;
use super::opers::KlineRule;
use super::{resume, Account, Client, ConnId, Hub, Outbox, PotatoAccount};
use crate::store::ChannelRecord;

/// A session as every node knows it.
#[derive(Debug, Serialize, Deserialize)]
struct Session {
    conn: ConnId,
    nick: String,
    account: Option<Account>,
    guest_key: String,
    ip: IpAddr,
    cloak: String,
    channels: HashSet<String>,
    away: Option<String>,
    signon: u64,
    resume: resume::ResumeKey,
    home: u64,
    attachment: u64,
}

/// The chat's state at one position of the cluster's log.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    sessions: Vec<Session>,
    nicks: NameIndex<ConnId>,
    channels: HashMap<String, Channel>,
    reserved: NameIndex<String>,
    registered: NameIndex<PotatoAccount>,
    regs: HashMap<String, ChannelRecord>,
    klines: Vec<Kline>,
    oper_pins: HashMap<String, String>,
}

impl Hub {
    /// The state as it stands.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let st = self.lock();
        Snapshot {
            sessions: st
                .clients
                .iter()
                .map(|(&conn, c)| Session {
                    conn,
                    nick: c.nick.clone(),
                    account: c.account.clone(),
                    guest_key: c.guest_key.clone(),
                    ip: c.ip,
                    cloak: c.cloak.clone(),
                    channels: c.channels.clone(),
                    away: c.away.clone(),
                    signon: c.signon,
                    resume: c.resume,
                    home: c.home,
                    attachment: c.attachment,
                })
                .collect(),
            nicks: st.nicks.clone(),
            channels: st.channels.clone(),
            reserved: st.reserved.clone(),
            registered: st.registered.clone(),
            regs: st.regs.clone(),
            klines: st.klines.iter().map(|k| k.kline.clone()).collect(),
            oper_pins: st.oper_pins.clone(),
        }
    }

    /// Takes `snapshot` as the state; every session in it is on another node.
    pub(crate) fn restore(&self, snapshot: Snapshot) {
        let mut st = self.lock();
        let now = Instant::now();
        st.resumes = snapshot.sessions.iter().map(|s| (s.resume, s.conn)).collect();
        st.clients = snapshot
            .sessions
            .into_iter()
            .map(|s| {
                let client = Client {
                    nick: s.nick,
                    account: s.account,
                    guest_key: s.guest_key,
                    ip: s.ip,
                    cloak: s.cloak,
                    outbox: Outbox::elsewhere(),
                    channels: s.channels,
                    away: s.away,
                    signon: s.signon,
                    last_active: now,
                    resume: s.resume,
                    home: s.home,
                    attachment: s.attachment,
                    held: None,
                    sent: Default::default(),
                    storing: HashSet::new(),
                };
                (s.conn, client)
            })
            .collect();
        st.nicks = snapshot.nicks;
        st.channels = snapshot.channels;
        st.reserved = snapshot.reserved;
        st.registered = snapshot.registered;
        st.regs = snapshot.regs;
        st.klines = snapshot.klines.into_iter().filter_map(|k| KlineRule::new(k).ok()).collect();
        st.oper_pins = snapshot.oper_pins;
    }
}

impl Hub {
    /// Takes `snapshot` as the state after the cluster's log was lost, keeping this node's
    /// (`node`'s) connections: each session the state has is given its connection back and
    /// shown where it stands now (a `welcome`, then its channels); a session it does not have
    /// is closed, for its client to log in again. Answers this node's sessions the state has
    /// but whose connection is gone, for the caller to end.
    pub(crate) fn reset(&self, snapshot: Snapshot, node: u64) -> Vec<super::Attached> {
        // This node's connections, and what it holds for sessions whose connection dropped.
        let mut connected: HashMap<ConnId, (Outbox, Option<resume::Held>)> = {
            let mut st = self.lock();
            st.clients
                .iter_mut()
                .filter(|(_, c)| !c.outbox.is_elsewhere())
                .map(|(&conn, c)| (conn, (c.outbox.clone(), c.held.take())))
                .collect()
        };
        self.restore(snapshot);
        let mut st = self.lock();
        let mine: Vec<ConnId> =
            st.clients.iter().filter(|(_, c)| c.home == node).map(|(&conn, _)| conn).collect();
        let mut gone = Vec::new();
        for conn in mine {
            let Some(client) = st.clients.get_mut(&conn) else { continue };
            let Some((outbox, held)) = connected.remove(&conn) else {
                gone.push(super::Attached { conn, attachment: client.attachment });
                continue;
            };
            client.outbox = outbox;
            client.held = held;
            if client.held.is_some() {
                // Nobody is connected to be shown anything; its grace timer still runs.
                continue;
            }
            let mut welcome = self.welcome(&st, conn, String::new(), true);
            if let app::protocol::ServerEvent::Welcome { resume, .. } = &mut welcome {
                *resume = None;
            }
            st.to_one(conn, &welcome);
            for event in st.channel_states(conn, self.settings.history_on_join) {
                st.to_one(conn, &event);
            }
        }
        for (outbox, _) in connected.into_values() {
            outbox.close(super::Close::error(app::protocol::ErrorCode::Internal));
        }
        gone
    }
}

//! Several `chattrd` nodes as one server (`CHATTR_CLUSTER=redis://…`), on Redis.
//!
//! Every node keeps a whole copy of the chat's live state (the core, [`Hub`]), and every change
//! to it goes through one log, a Redis stream: a node appends an operation ([`Op`]: a login,
//! a command, stored messages to deliver, a node gone), every node reads the log in order and
//! applies each operation to its copy, with the time and random seed the operation carries, so
//! the copies agree. Two operators changing a channel's modes at once, two logins racing for a
//! nick, a kick racing a message: the log puts one first, and every node shows the same
//! outcome. Each node delivers events to its own connections only (sessions on other nodes
//! have an [`Outbox::elsewhere`]), and the node an operation came from answers its caller when
//! it applies it. Reads (`/whois`, names, the channel list) are answered from the local copy.
//!
//! Each node holds a lease in Redis, renewed well within its length: a slot (0 to
//! [`SLOTS`] − 1) that spreads message ids and a key saying it is alive. A node whose key has
//! expired is gone: the first node to notice appends [`Op::NodeGone`] and every node takes its
//! users out of their channels and frees their nicks. What is stored (history, accounts,
//! channels) lives in the SurrealDB server the nodes share.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::protocol::{ChatMessage, Command, ErrorCode, ProtocolError};
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::chat::clock::OpClock;
use crate::chat::{
    now_ms, resume_key_of, Attached, Call, ConnId, Effect, Fresh, Hub, Identity, Outbox, PreparedMessage,
    Reply, ResumeKey, Resumed, Snapshot, Timer,
};
use crate::ServeError;

type Result<T> = std::result::Result<T, ProtocolError>;

/// Most nodes in one cluster: message ids are spread over this many slots.
pub(crate) const SLOTS: u64 = 16;
/// The log; trimmed (roughly) to this many operations. A node that falls further behind (its
/// entries trimmed before it read them) stops, and loads the state again when it restarts.
const LOG: &str = "chattr:log";
const LOG_KEEP: usize = 500_000;
/// How long a read of the log waits for something new before asking again.
const BLOCK: Duration = Duration::from_secs(1);
/// How many times an append is tried again after the connection to Redis dropped.
const APPEND_TRIES: u32 = 3;
/// How many times a session's end is appended while Redis cannot be reached (every 500 ms).
const LEAVE_TRIES: u32 = 600;
/// How long a joining node waits for a running one to hand its state over.
const HANDOVER_WAIT: Duration = Duration::from_secs(10);
/// The version of the log's operations and of the core's rules applying them: nodes that
/// differ in it would come to different states, so a node refuses to join a cluster running
/// another. Raised whenever an operation or a rule changes.
const RULES_VERSION: u32 = 1;
/// How long a node that shuts down tries to tell the others.
const LEAVING: Duration = Duration::from_secs(3);
/// How long a caller waits for its operation to come back from the log.
const ROUND_TRIP: Duration = Duration::from_secs(10);

/// One change to the chat's state, as the log carries it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Op {
    /// A user logs in on the node `fresh.conn` names.
    Connect { identity: Identity, fresh: Fresh },
    /// A new connection on node `home`, from `ip`, takes over the session whose resume secret
    /// hashes to `key`.
    Resume { key: ResumeKey, ip: std::net::IpAddr, home: u64 },
    /// A logged-in user's command (a channel's recent history with it, when it needs one).
    Apply { conn: ConnId, command: Command, history: Option<Vec<ChatMessage>> },
    /// A session ends.
    Leave { attached: Attached, reason: Option<String> },
    /// Messages stored: to everyone in their conversations.
    Deliver { batch: Vec<PreparedMessage> },
    /// A timer of the core's ran out on the node of the session it is about.
    Timer(Timer),
    /// A node stopped renewing its lease, or (`stopped`) told it is shutting down: its users
    /// quit.
    NodeGone {
        node: u64,
        #[serde(default)]
        stopped: bool,
    },
    /// A change of the services'.
    Call(Call),
    /// Node `by` joins the cluster: node `from` hands it the state as it stands here, under
    /// the request's `ticket` (a late answer to an earlier request is never taken for it).
    SnapshotWanted { by: u64, from: u64, ticket: u64 },
    /// Redis lost the log: node `by` will hand every node its state as it stands at this
    /// position; until that state comes (under `ticket`), nodes apply nothing after this.
    ResetWanted { by: u64, ticket: u64 },
    /// The state `ResetWanted` asked for: every node takes it, then applies what came after
    /// the request, and goes on with its own sessions.
    Reset { ticket: u64, snapshot: Box<Snapshot> },
}

/// An operation in the log: which node appended it (and its number there), when, and the seed
/// of its random numbers.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    node: u64,
    seq: u64,
    ms: u64,
    seed: u64,
    op: Op,
}

/// Gives back a lease held as `key` = `value`, if it is still this node's.
async fn give_back(redis: &mut ConnectionManager, key: &str, value: &str) -> redis::RedisResult<()> {
    const SCRIPT: &str =
        "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end return 0";
    let _: i64 = redis::cmd("EVAL").arg(SCRIPT).arg(1).arg(key).arg(value).query_async(redis).await?;
    Ok(())
}

/// Renews a lease held as `key` = `value` for `ms`; false when someone else holds it.
async fn renew(redis: &mut ConnectionManager, key: &str, value: &str, ms: u64) -> redis::RedisResult<bool> {
    const SCRIPT: &str = "local v = redis.call('GET', KEYS[1]) \
        if v == false or v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end \
        return 0";
    let kept: i64 =
        redis::cmd("EVAL").arg(SCRIPT).arg(1).arg(key).arg(value).arg(ms).query_async(redis).await?;
    Ok(kept == 1)
}

/// The nodes whose lease is held now: number → name.
async fn alive(redis: &mut ConnectionManager) -> HashMap<u64, String> {
    let names: HashMap<u64, String> = redis.hgetall("chattr:names").await.unwrap_or_default();
    let mut alive = HashMap::new();
    for (node, name) in names {
        if redis.exists(format!("chattr:node:{node}")).await.unwrap_or(false) {
            alive.insert(node, name);
        }
    }
    alive
}

/// This node's `rules` (what applying the log depends on, [`Hub::agreement`]) as the cluster
/// keeps them: one text, the same on every node that agrees.
fn rules_text(rules: &[(&'static str, String)]) -> String {
    let mut all: std::collections::BTreeMap<&str, &str> =
        rules.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let version = RULES_VERSION.to_string();
    all.insert("rules_version", &version);
    serde_json::to_string(&all).unwrap_or_default()
}

/// Makes `rules` the cluster's for `ms` when it has none (no node has renewed them for that
/// long), or renews them when they are; answers the cluster's.
async fn rules_of_cluster(redis: &mut ConnectionManager, rules: &str, ms: u64) -> redis::RedisResult<String> {
    const SCRIPT: &str = "local v = redis.call('GET', KEYS[1]) \
        if v == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return ARGV[1] end \
        if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end \
        return v";
    redis::cmd("EVAL").arg(SCRIPT).arg(1).arg("chattr:rules").arg(rules).arg(ms).query_async(redis).await
}

/// Checks that this node's `rules` are the running cluster's (or makes them the cluster's when
/// none runs); refuses the start, naming each that differs, when they are not.
async fn agree(redis: &mut ConnectionManager, rules: &str, ms: u64) -> std::result::Result<(), ServeError> {
    let theirs = rules_of_cluster(redis, rules, ms).await.map_err(redis_error)?;
    if theirs == rules {
        return Ok(());
    }
    let read = |text: &str| serde_json::from_str::<HashMap<String, String>>(text).unwrap_or_default();
    let mine: Vec<(String, String)> = read(rules).into_iter().collect();
    Err(ServeError::Config(format!(
        "this node's settings differ from those of the cluster's running nodes, which would make it \
         apply the log otherwise (start every node with the same ones; once every node has stopped, \
         the cluster's expire within two leases): {}",
        disagreements(&mine, &read(&theirs)).join("; ")
    )))
}

/// Each of `mine` that is not as in `theirs`, as "name: here …, the cluster …".
fn disagreements(mine: &[(String, String)], theirs: &HashMap<String, String>) -> Vec<String> {
    let mut differ: Vec<String> = mine
        .iter()
        .filter(|(name, value)| theirs.get(name) != Some(value))
        .map(|(name, value)| {
            let there = theirs.get(name).map_or("(unset)", String::as_str);
            format!("{name}: here {value:?}, the cluster {there:?}")
        })
        .collect();
    differ.extend(
        theirs
            .keys()
            .filter(|name| !mine.iter().any(|(n, _)| n == *name))
            .map(|name| format!("{name}: here (unset), the cluster {:?}", theirs[name])),
    );
    differ.sort();
    differ
}

/// A stream entry id (`<ms>-<seq>`) as numbers, to compare.
fn stream_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// A field of a Redis reply that is a map (RESP3) or a list of names and values (RESP2).
fn field(reply: &redis::Value, name: &str) -> Option<String> {
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    match reply {
        redis::Value::Map(pairs) => {
            pairs.iter().find(|(k, _)| text(k).as_deref() == Some(name)).and_then(|(_, v)| text(v))
        }
        redis::Value::Array(items) => items
            .chunks(2)
            .find(|kv| text(&kv[0]).as_deref() == Some(name))
            .and_then(|kv| kv.get(1).and_then(text)),
        _ => None,
    }
}

/// The operations applied lately, by node and number, to apply each once.
#[derive(Default)]
struct Recent {
    seen: std::collections::HashSet<(u64, u64)>,
    order: std::collections::VecDeque<(u64, u64)>,
}

impl Recent {
    /// How many are remembered: far more than can be in flight while an append is retried.
    const KEEP: usize = 65_536;

    /// Whether (`node`, `seq`) is new; remembers it.
    fn first_time(&mut self, node: u64, seq: u64) -> bool {
        if !self.seen.insert((node, seq)) {
            return false;
        }
        self.order.push_back((node, seq));
        if self.order.len() > Self::KEEP {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

/// This node's part in the cluster.
pub struct Cluster {
    hub: Arc<Hub>,
    /// This node's number (unique for the cluster's life: a restarted node gets a new one),
    /// its slot and its name.
    node: u64,
    slot: u64,
    name: String,
    redis: ConnectionManager,
    next_seq: AtomicU64,
    /// Callers waiting for their operation to come back from the log.
    waiting: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    /// Sessions logging in here, until their `Connect` is applied: their connection's outbox
    /// and their resume secret (which the log carries only the hash of).
    arriving: Mutex<HashMap<ConnId, (Outbox, String)>>,
    /// Connections resuming a session here (with its secret), until their `Resume` is applied.
    resuming: Mutex<HashMap<ResumeKey, (String, Outbox)>>,
    lease: Duration,
    /// Whether Redis answered the last renewal.
    up: AtomicBool,
    /// The task renewing the lease, stopped when the node leaves.
    renewing: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The settings applying the log depends on, as the cluster keeps them (renewed with the
    /// lease: they expire two leases after the last node stopped).
    rules: String,
    /// The value of `chattr:epoch` when this node last looked: a Redis that lost its data
    /// (restarted without persistence, flushed) has none or another, and the log it had.
    epoch: Mutex<String>,
    /// This node's part, for the tasks it starts.
    me: std::sync::Weak<Cluster>,
    /// The id of the last entry of the log this node read.
    last_read: Mutex<String>,
    /// Operations applied from the log, appended by this node, and appends that failed.
    applied: AtomicU64,
    appended: AtomicU64,
    append_failures: AtomicU64,
    /// How far behind the log's newest entry this node was at its last renewal (ms).
    lag_ms: AtomicU64,
}

/// A node's figures, for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClusterFigures {
    pub up: bool,
    pub applied: u64,
    pub appended: u64,
    pub append_failures: u64,
    pub lag_ms: u64,
}

fn redis_error(e: redis::RedisError) -> ServeError {
    ServeError::Config(format!("the cluster's Redis: {e}"))
}

fn unavailable() -> ProtocolError {
    ProtocolError::new(
        ErrorCode::Internal,
        "the server cannot reach the rest of its cluster right now; try again",
    )
}

/// A connection to read the log on: a read blocks up to [`BLOCK`], so its answer may take
/// that long (the connection's default timeout is shorter).
async fn log_reader(client: &redis::Client) -> redis::RedisResult<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(BLOCK * 3));
    client.get_multiplexed_async_connection_with_config(&config).await
}

impl Cluster {
    /// Joins the cluster whose Redis is at `url`: takes a node number and a slot, and starts
    /// reading the log from its end.
    pub(crate) async fn join(
        url: &str,
        name: String,
        lease: Duration,
        hub: Arc<Hub>,
        rules: &[(&'static str, String)],
    ) -> std::result::Result<Arc<Self>, ServeError> {
        let rules = rules_text(rules);
        let client = redis::Client::open(url).map_err(redis_error)?;
        // While Redis is away, a request fails within a second or so (and is answered as
        // "cannot reach the cluster") rather than waiting out a long reconnection.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500))
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let mut redis =
            ConnectionManager::new_with_config(client.clone(), config).await.map_err(redis_error)?;
        let lease_ms = lease.as_millis() as u64;
        agree(&mut redis, &rules, 2 * lease_ms).await?;
        let claim = || {
            redis::SetOptions::default()
                .conditional_set(redis::ExistenceCheck::NX)
                .with_expiration(redis::SetExpiry::PX(lease_ms))
        };
        // A number no live node has (a Redis that lost its data counts from 1 again).
        let node = loop {
            let node: u64 = redis.incr("chattr:nodes", 1).await.map_err(redis_error)?;
            let taken: Option<String> = redis
                .set_options(format!("chattr:node:{node}"), &name, claim())
                .await
                .map_err(redis_error)?;
            if taken.is_some() {
                break node;
            }
        };
        let epoch = Self::epoch_of(&mut redis).await.map_err(redis_error)?;
        let mut slot = None;
        for s in 0..SLOTS {
            let opts = claim();
            let taken: Option<String> =
                redis.set_options(format!("chattr:slot:{s}"), node, opts).await.map_err(redis_error)?;
            if taken.is_some() {
                slot = Some(s);
                break;
            }
        }
        let Some(slot) = slot else {
            return Err(ServeError::Config(format!("the cluster has {SLOTS} nodes already")));
        };
        let _: () = redis.hset("chattr:names", node, &name).await.map_err(redis_error)?;
        let last: redis::streams::StreamRangeReply =
            redis.xrevrange_count(LOG, "+", "-", 1).await.map_err(redis_error)?;
        let from = last.ids.first().map_or_else(|| "0-0".to_owned(), |e| e.id.clone());
        hub.join_cluster(node, slot, SLOTS);
        let mut reader = log_reader(&client).await.map_err(redis_error)?;
        let cluster = Arc::new_cyclic(|me| Self {
            hub: hub.clone(),
            node,
            slot,
            name,
            redis,
            next_seq: AtomicU64::new(0),
            waiting: Mutex::new(HashMap::new()),
            arriving: Mutex::new(HashMap::new()),
            resuming: Mutex::new(HashMap::new()),
            lease,
            up: AtomicBool::new(true),
            renewing: Mutex::new(None),
            rules,
            epoch: Mutex::new(epoch),
            me: me.clone(),
            last_read: Mutex::new(String::new()),
            applied: AtomicU64::new(0),
            appended: AtomicU64::new(0),
            append_failures: AtomicU64::new(0),
            lag_ms: AtomicU64::new(0),
        });
        // Nodes already running know who is online: one of them hands its state over.
        let from = cluster.catch_up(&mut reader, from).await?;
        let weak = Arc::downgrade(&cluster);
        hub.send_timers_to(Box::new(move |timer| {
            if let Some(cluster) = weak.upgrade() {
                tokio::spawn(async move { cluster.append(Op::Timer(timer)).await.ok() });
            }
        }));
        tokio::spawn(cluster.clone().read_log(reader, client, from));
        let renewing = tokio::spawn(cluster.clone().keep_lease());
        *cluster.renewing.lock().unwrap_or_else(|e| e.into_inner()) = Some(renewing);
        tracing::info!(node, slot, name = %cluster.name, "joined the cluster");
        Ok(cluster)
    }

    /// This node's number.
    pub fn node(&self) -> u64 {
        self.node
    }

    /// This node's name and slot, and whether Redis answers.
    pub fn describe(&self) -> (String, u64, bool) {
        (self.name.clone(), self.slot, self.up.load(Ordering::Relaxed))
    }

    /// This node's figures.
    pub(crate) fn figures(&self) -> ClusterFigures {
        ClusterFigures {
            up: self.up.load(Ordering::Relaxed),
            applied: self.applied.load(Ordering::Relaxed),
            appended: self.appended.load(Ordering::Relaxed),
            append_failures: self.append_failures.load(Ordering::Relaxed),
            lag_ms: self.lag_ms.load(Ordering::Relaxed),
        }
    }

    /// The nodes alive now, by name.
    pub async fn members(&self) -> Vec<String> {
        let mut names: Vec<String> = self.alive().await.into_values().collect();
        names.sort();
        names
    }

    /// The nodes whose lease is held now: number → name.
    async fn alive(&self) -> HashMap<u64, String> {
        alive(&mut self.redis.clone()).await
    }

    /// Logs a user in, on this node, through the log.
    pub(crate) async fn connect(&self, identity: Identity, outbox: Outbox) -> Result<Attached> {
        let fresh = self.hub.fresh_session();
        let conn = fresh.conn;
        let secret = fresh.resume_secret.clone();
        self.arriving.lock().unwrap_or_else(|e| e.into_inner()).insert(conn, (outbox, secret));
        let result = self.run(Op::Connect { identity, fresh }).await;
        self.arriving.lock().unwrap_or_else(|e| e.into_inner()).remove(&conn);
        result?
    }

    /// Takes over the session `secret` resumes for a connection here, through the log.
    pub(crate) async fn resume(
        &self,
        secret: &str,
        outbox: Outbox,
        ip: std::net::IpAddr,
    ) -> Result<Option<Resumed>> {
        let key = resume_key_of(secret);
        // A secret no session has goes no further than this node.
        if !self.hub.knows_resume(&key) {
            return Ok(None);
        }
        self.resuming.lock().unwrap_or_else(|e| e.into_inner()).insert(key, (secret.to_owned(), outbox));
        let result = self.run(Op::Resume { key, ip, home: self.node }).await;
        self.resuming.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        result?
    }

    /// Applies a command of `conn`'s through the log.
    pub(crate) async fn apply(
        &self,
        conn: ConnId,
        command: Command,
        history: Option<Vec<ChatMessage>>,
    ) -> Result<Effect> {
        self.run(Op::Apply { conn, command, history }).await?
    }

    /// Makes a change of the services' through the log; answers what applying it answered.
    pub(crate) async fn call<R: 'static>(&self, call: Call) -> Result<R> {
        self.run(Op::Call(call)).await
    }

    /// Appends `op` and waits for this node to apply it; answers what applying it answered.
    async fn run<R: 'static>(&self, op: Op) -> Result<R> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).insert(seq, tx);
        let sent = self.append_as(seq, op).await;
        let reply = match sent {
            Ok(_) => tokio::time::timeout(ROUND_TRIP, rx).await.ok().and_then(std::result::Result::ok),
            Err(()) => None,
        };
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&seq);
        let reply = reply.ok_or_else(unavailable)?;
        reply.downcast::<R>().map(|r| *r).map_err(|_| unavailable())
    }

    /// Appends `op` without waiting for it to be applied.
    pub(crate) async fn append(&self, op: Op) -> std::result::Result<(), ProtocolError> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        self.append_as(seq, op).await.map(drop).map_err(|()| unavailable())
    }

    /// Appends `op`; answers its id in the log.
    async fn append_as(&self, seq: u64, op: Op) -> std::result::Result<String, ()> {
        let json = self.entry_text(seq, op).ok_or(())?;
        self.xadd(&json).await
    }

    /// `op` as the log holds it, numbered `seq` by this node.
    fn entry_text(&self, seq: u64, op: Op) -> Option<String> {
        let entry = Entry { node: self.node, seq, ms: now_ms(), seed: rand::random(), op };
        serde_json::to_string(&entry)
            .map_err(|e| tracing::error!(error = %e, "an operation could not be written out for the log"))
            .ok()
    }

    /// Adds an entry to the log; answers its id.
    async fn xadd(&self, json: &str) -> std::result::Result<String, ()> {
        let mut redis = self.redis.clone();
        let mut tries = 0;
        loop {
            let added: redis::RedisResult<String> = redis
                .xadd_maxlen(LOG, redis::streams::StreamMaxlen::Approx(LOG_KEEP), "*", &[("e", json)])
                .await;
            match added {
                Ok(id) => {
                    self.appended.fetch_add(1, Ordering::Relaxed);
                    return Ok(id);
                }
                // The connection reconnects after it failed once: Redis may be back already.
                Err(e) if (e.is_io_error() || e.is_connection_dropped()) && tries < APPEND_TRIES => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(tries))).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "appending to the cluster's log failed");
                    self.append_failures.fetch_add(1, Ordering::Relaxed);
                    return Err(());
                }
            }
        }
    }

    /// The nodes alive now, by number, this one excepted.
    async fn others_alive(&self) -> Vec<u64> {
        let mut others: Vec<u64> = self.alive().await.into_keys().filter(|&n| n != self.node).collect();
        others.sort_unstable();
        others
    }

    /// Loads the state from a running node, if there is one: asks for it in the log and waits
    /// for it. Answers where to read the log from: after the request (the state is the one
    /// at that position), or `from` when this node is the first.
    async fn catch_up(
        &self,
        reader: &mut MultiplexedConnection,
        from: String,
    ) -> std::result::Result<String, ServeError> {
        let givers = self.others_alive().await;
        for &giver in &givers {
            let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
            let ticket = rand::random();
            let wanted = Op::SnapshotWanted { by: self.node, from: giver, ticket };
            let Ok(at) = self.append_as(seq, wanted).await else {
                return Err(ServeError::Config("the cluster's Redis does not take the log's entries".into()));
            };
            let key = format!("chattr:snapshot:{}:{ticket}", self.node);
            let mut waited = Duration::ZERO;
            while waited < HANDOVER_WAIT {
                let got: Option<(String, String)> = reader.blpop(&key, 1.0).await.map_err(redis_error)?;
                if let Some((_, json)) = got {
                    let snapshot: Snapshot = serde_json::from_str(&json)
                        .map_err(|e| ServeError::Config(format!("the cluster's state does not read: {e}")))?;
                    self.hub.restore(snapshot);
                    tracing::info!(from = giver, at = %at, "loaded the cluster's state");
                    return Ok(at);
                }
                waited += Duration::from_secs(1);
            }
            tracing::warn!(node = giver, "a node did not hand its state over; asking another");
        }
        if givers.is_empty() {
            return Ok(from);
        }
        // Running without the state would hand out nicks that are in use elsewhere.
        Err(ServeError::Config("no node of the running cluster handed its state over; try again".into()))
    }

    /// This node shuts down (its sessions are closed): the others are told at once, through
    /// the log, rather than once its lease has run out, and its number and slot are given back.
    /// (Within [`LEAVING`]: with Redis away, the lease runs out instead.)
    pub(crate) async fn leave(&self) {
        let renewing = self.renewing.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(renewing) = renewing {
            renewing.abort();
            let _ = renewing.await;
        }
        // Applied here too before going on, so the app hears of these users' end from this node
        // (the node an operation comes from tells the webhooks) before they stop.
        let told =
            tokio::time::timeout(LEAVING, self.run::<()>(Op::NodeGone { node: self.node, stopped: true }));
        if !matches!(told.await, Ok(Ok(()))) {
            tracing::warn!("the cluster could not be told this node stops; its lease will run out");
            return;
        }
        let mut redis = self.redis.clone();
        let given: redis::RedisResult<()> = async {
            give_back(&mut redis, &format!("chattr:node:{}", self.node), &self.name).await?;
            give_back(&mut redis, &format!("chattr:slot:{}", self.slot), &self.node.to_string()).await?;
            redis.hdel("chattr:names", self.node).await
        }
        .await;
        // The last node to stop takes the cluster's settings with it: the next start sets them.
        if given.is_ok() && self.others_alive().await.is_empty() {
            let _ = give_back(&mut redis, "chattr:rules", &self.rules).await;
        }
        match given {
            Ok(()) => tracing::info!(node = self.node, "left the cluster"),
            Err(e) => tracing::warn!(error = %e, "giving this node's lease back failed; it will run out"),
        }
    }

    /// Ends a session of this node's through the log, without waiting; while Redis cannot be
    /// reached, tries again (the others would keep the session otherwise).
    pub(crate) fn leave_later(&self, attached: Attached, reason: Option<String>) {
        let me = self.me.clone();
        tokio::spawn(async move {
            for _ in 0..LEAVE_TRIES {
                let Some(cluster) = me.upgrade() else { return };
                if cluster.append(Op::Leave { attached, reason: reason.clone() }).await.is_ok() {
                    return;
                }
                drop(cluster);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }

    /// Hands this node's state (as it stands at the request's position in the log) to node
    /// `to`, which waits for it.
    fn hand_over(&self, to: u64, ticket: u64, snapshot: Snapshot) {
        let mut redis = self.redis.clone();
        tokio::spawn(async move {
            // (Written out off the log's reader: a large state takes a while.)
            let json = match serde_json::to_string(&snapshot) {
                Ok(json) => json,
                Err(e) => {
                    return tracing::error!(error = %e, "the state could not be written out for a joining node")
                }
            };
            let key = format!("chattr:snapshot:{to}:{ticket}");
            let pushed: redis::RedisResult<()> = async {
                let _: () = redis.rpush(&key, json).await?;
                redis.expire(&key, 60).await
            }
            .await;
            if let Err(e) = pushed {
                tracing::warn!(error = %e, to, "handing the state over failed");
            }
        });
    }

    /// Reads the log from `from` on, applying each operation in order, for as long as the
    /// node runs; reconnects when Redis goes away.
    async fn read_log(
        self: Arc<Self>,
        mut reader: MultiplexedConnection,
        client: redis::Client,
        mut from: String,
    ) {
        let opts = StreamReadOptions::default().block(BLOCK.as_millis() as usize).count(512);
        // An append tried again after a timeout may be in the log twice: applied once.
        let mut recent = Recent::default();
        // After a `ResetWanted`: whose reset, its ticket, since when, and what came after it.
        let mut fence: Option<(u64, tokio::time::Instant, Vec<Entry>)> = None;
        self.last_read.lock().unwrap_or_else(|e| e.into_inner()).clone_from(&from);
        loop {
            let read: redis::RedisResult<StreamReadReply> =
                reader.xread_options(&[LOG], &[&from], &opts).await;
            let reply = match read {
                Ok(reply) => reply,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the cluster's log failed; reconnecting");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if let Ok(again) = log_reader(&client).await {
                        reader = again;
                    }
                    continue;
                }
            };
            for key in reply.keys {
                for item in key.ids {
                    from.clone_from(&item.id);
                    self.last_read.lock().unwrap_or_else(|e| e.into_inner()).clone_from(&item.id);
                    let Some(redis::Value::BulkString(bytes)) = item.map.get("e") else { continue };
                    match serde_json::from_slice::<Entry>(bytes) {
                        Ok(entry) if recent.first_time(entry.node, entry.seq) => {
                            self.fenced(&mut fence, entry);
                        }
                        Ok(_) => {
                            tracing::debug!(id = %item.id, "an entry in the cluster's log twice, applied once")
                        }
                        Err(e) => {
                            tracing::error!(error = %e, id = %item.id, "an entry of the cluster's log does not read")
                        }
                    }
                }
            }
            // A reset whose state never came (its node died): go on without it.
            if fence.as_ref().is_some_and(|(_, since, _)| since.elapsed() > HANDOVER_WAIT) {
                tracing::error!(
                    "the state asked for after Redis lost its log never came; going on without it"
                );
                if let Some((_, _, held)) = fence.take() {
                    held.into_iter().for_each(|e| self.apply_entry(e));
                }
            }
        }
    }

    /// Applies `entry`, or holds it back while a reset is awaited (`fence`): between a
    /// `ResetWanted` and its `Reset` nothing is applied, so the state the reset brings is the
    /// one at the request, and what came after it is applied on top, on every node alike.
    fn fenced(&self, fence: &mut Option<(u64, tokio::time::Instant, Vec<Entry>)>, entry: Entry) {
        match (&entry.op, fence.as_mut()) {
            (Op::ResetWanted { by, ticket }, None) => {
                if *by == self.node {
                    self.hand_reset(*ticket);
                }
                *fence = Some((*ticket, tokio::time::Instant::now(), Vec::new()));
                self.applied.fetch_add(1, Ordering::Relaxed);
            }
            (Op::Reset { ticket, .. }, Some((awaited, _, _))) if ticket == awaited => {
                let held = fence.take().map(|(_, _, held)| held).unwrap_or_default();
                self.apply_entry(entry);
                held.into_iter().for_each(|e| self.apply_entry(e));
            }
            (_, Some((_, _, held))) => held.push(entry),
            (_, None) => self.apply_entry(entry),
        }
    }

    /// Applies one operation of the log to this node's copy of the state.
    fn apply_entry(&self, entry: Entry) {
        let Entry { node, seq, ms, seed, op } = entry;
        self.applied.fetch_add(1, Ordering::Relaxed);
        tracing::trace!(node, seq, ?op, "applying an operation of the cluster's log");
        let clock = OpClock::new(ms, seed, node == self.node);
        // A panic in the core (a bug) may have left this node's copy half changed, and parts
        // of applying are this node's own (its connections, its callers): its copy may no
        // longer be the others'. The node stops, for its supervisor to start it again with the
        // state of a running node, rather than go on unlike them (or, were the reader to stop
        // with the panic, no longer apply the log at all).
        let applied: std::thread::Result<Reply> =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                clock.during(|| self.apply_op(node, op))
            }));
        let reply = match applied {
            Ok(reply) => reply,
            Err(panic) => {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(node, seq, panic = %why, "applying an operation of the cluster's log panicked");
                self.give_up(
                    "applying an operation of the log failed: this node's state may differ from the others'",
                )
            }
        };
        if node == self.node {
            if let Some(waiting) = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&seq) {
                let _ = waiting.send(reply);
            }
        }
    }

    /// Applies `op`, which node `node` appended, to this node's copy (at the operation's
    /// clock); answers what its caller gets.
    fn apply_op(&self, node: u64, op: Op) -> Reply {
        let hub = &self.hub;
        match op {
            Op::Connect { identity, mut fresh } => {
                let here = (node == self.node)
                    .then(|| {
                        self.arriving.lock().unwrap_or_else(|e| e.into_inner()).get(&fresh.conn).cloned()
                    })
                    .flatten();
                let orphan = node == self.node && here.is_none();
                let outbox = match here {
                    Some((outbox, secret)) => {
                        fresh.resume_secret = secret;
                        outbox
                    }
                    None => Outbox::elsewhere(),
                };
                let result = hub.connect(identity, outbox, fresh);
                // Its caller gave up waiting (Redis was slow): nobody carries the session.
                if let (true, Ok(attached)) = (orphan, &result) {
                    self.leave_later(*attached, Some("connection closed".into()));
                }
                Box::new(result) as Reply
            }
            Op::Resume { key, ip, home } => {
                let here = (node == self.node)
                    .then(|| self.resuming.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned())
                    .flatten();
                let orphan = node == self.node && here.is_none();
                let (secret, outbox) = here.map_or((String::new(), None), |(s, o)| (s, Some(o)));
                let result = hub.resume_on(key, &secret, outbox.as_ref(), ip, home);
                if let (true, Ok(Some(resumed))) = (orphan, &result) {
                    self.leave_later(resumed.attached, Some("connection closed".into()));
                }
                Box::new(result) as Reply
            }
            Op::Apply { conn, command, history } => Box::new(hub.apply(conn, command, history)) as Reply,
            Op::Leave { attached, reason } => {
                hub.release(attached, reason, None);
                Box::new(())
            }
            Op::Deliver { batch } => {
                hub.deliver(&batch);
                Box::new(())
            }
            Op::Timer(timer) => {
                hub.apply_timer(timer);
                Box::new(())
            }
            Op::Call(call) => call.apply(hub),
            // (Read by `read_log`, which holds the log back until its `Reset` comes.)
            Op::ResetWanted { .. } => Box::new(()),
            Op::Reset { snapshot, .. } => {
                let gone = hub.reset(*snapshot, self.node);
                tracing::warn!(
                    from = node,
                    sessions_gone = gone.len(),
                    "the cluster's state was reset after Redis lost its log"
                );
                for attached in gone {
                    self.leave_later(attached, Some("connection closed".into()));
                }
                Box::new(())
            }
            Op::SnapshotWanted { by, from, ticket } => {
                if from == self.node {
                    self.hand_over(by, ticket, hub.snapshot());
                }
                Box::new(())
            }
            Op::NodeGone { node, stopped } => {
                let reason = if stopped { "their server shut down" } else { "their server went away" };
                let gone = hub.drop_node(node, reason);
                tracing::info!(node, stopped, users = gone, "a node left the cluster");
                Box::new(())
            }
        }
    }

    /// Renews this node's lease (its slot and its key) three times per lease, and looks for
    /// nodes whose lease ran out.
    /// A node whose key has been missing for a whole lease is gone (not at once: after Redis
    /// lost its data, every node's key is missing until its next renewal).
    async fn keep_lease(self: Arc<Self>) {
        let lease_ms = self.lease.as_millis() as u64;
        let mut tick = tokio::time::interval(self.lease / 3);
        let mut missing: HashMap<u64, tokio::time::Instant> = HashMap::new();
        loop {
            tick.tick().await;
            let mut redis = self.redis.clone();
            let renewed: redis::RedisResult<(bool, String)> = async {
                let node_key = format!("chattr:node:{}", self.node);
                let kept = renew(&mut redis, &node_key, &self.name, lease_ms).await?
                    && renew(
                        &mut redis,
                        &format!("chattr:slot:{}", self.slot),
                        &self.node.to_string(),
                        lease_ms,
                    )
                    .await?;
                let _: () = redis.hset("chattr:names", self.node, &self.name).await?;
                let rules = rules_of_cluster(&mut redis, &self.rules, 2 * lease_ms).await?;
                if rules != self.rules {
                    tracing::error!(
                        cluster = %rules,
                        here = %self.rules,
                        "the cluster's settings in Redis are not this node's (a node with other settings started while Redis had none); restart the nodes with the same settings"
                    );
                }
                Ok((kept, Self::epoch_of(&mut redis).await?))
            }
            .await;
            let epoch = match renewed {
                Ok((false, _)) => self.give_up("another node holds this node's number or slot"),
                Ok((true, epoch)) => epoch,
                Err(e) => {
                    tracing::warn!(error = %e, "renewing this node's lease failed");
                    self.up.store(false, Ordering::Relaxed);
                    continue;
                }
            };
            self.up.store(true, Ordering::Relaxed);
            let lost = {
                let mut mine = self.epoch.lock().unwrap_or_else(|e| e.into_inner());
                std::mem::replace(&mut *mine, epoch.clone()) != epoch
            };
            if lost {
                missing.clear();
                self.log_lost(&epoch).await;
                continue;
            }
            let (trimmed, lag) = self.behind(&mut redis).await;
            if trimmed {
                self.give_up("the log was trimmed past what this node had read");
            }
            if let Some(lag) = lag {
                self.lag_ms.store(lag, Ordering::Relaxed);
            }
            // The nodes some user is on, and those named in the cluster (a node that died with
            // no users is forgotten too).
            let with_users = self.hub.other_nodes();
            let named: Vec<u64> = redis.hkeys("chattr:names").await.unwrap_or_default();
            let mut others = with_users.clone();
            others.extend(named.into_iter().filter(|&n| n != self.node));
            missing.retain(|node, _| others.contains(node));
            for node in others {
                let alive: bool = redis.exists(format!("chattr:node:{node}")).await.unwrap_or(true);
                if alive {
                    missing.remove(&node);
                    continue;
                }
                let since = *missing.entry(node).or_insert_with(tokio::time::Instant::now);
                if since.elapsed() < self.lease {
                    continue;
                }
                let told = !with_users.contains(&node)
                    || self.append(Op::NodeGone { node, stopped: false }).await.is_ok();
                if told {
                    let _: redis::RedisResult<()> = redis.hdel("chattr:names", node).await;
                }
            }
        }
    }

    /// This node can no longer be one of the cluster (it would hand out ids or apply a log
    /// another node's copy does not match): it stops, for its supervisor to start it again,
    /// which loads the state afresh. Its users reconnect to the other nodes.
    fn give_up(&self, why: &str) -> ! {
        tracing::error!(node = self.node, why, "leaving the cluster: this node stops");
        std::process::exit(1)
    }

    /// Whether Redis has trimmed entries of the log this node has not read yet, and how long
    /// the oldest entry it has not read has waited (ms; none when Redis did not say).
    async fn behind(&self, redis: &mut ConnectionManager) -> (bool, Option<u64>) {
        let info: redis::RedisResult<redis::Value> =
            redis::cmd("XINFO").arg("STREAM").arg(LOG).query_async(redis).await;
        let Ok(info) = info else { return (false, None) };
        let last_read = self.last_read.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let read = stream_id(&last_read);
        let deleted = field(&info, "max-deleted-entry-id").and_then(|id| stream_id(&id));
        let trimmed = matches!((deleted, read), (Some(deleted), Some(read)) if deleted > read);
        let newest = field(&info, "last-generated-id").and_then(|id| stream_id(&id));
        if newest.is_none() || newest <= read {
            return (trimmed, Some(0));
        }
        // The first entry after the last one read: its id is when Redis took it.
        let unread: redis::RedisResult<(redis::streams::StreamRangeReply, (String, String))> = async {
            let from = format!("({last_read}");
            let unread = redis.xrange_count(LOG, from, "+", 1).await?;
            let time = redis::cmd("TIME").query_async(redis).await?;
            Ok((unread, time))
        }
        .await;
        let Ok((unread, (secs, micros))) = unread else { return (trimmed, None) };
        let now = secs.parse::<u64>().unwrap_or(0) * 1000 + micros.parse::<u64>().unwrap_or(0) / 1000;
        let since = unread.ids.first().and_then(|e| stream_id(&e.id)).map(|(ms, _)| ms);
        (trimmed, Some(since.map_or(0, |since| now.saturating_sub(since))))
    }

    /// The cluster's epoch in Redis, set by the first node to look.
    async fn epoch_of(redis: &mut ConnectionManager) -> redis::RedisResult<String> {
        let fresh = format!("{:016x}", rand::random::<u64>());
        let _: Option<String> = redis
            .set_options(
                "chattr:epoch",
                &fresh,
                redis::SetOptions::default().conditional_set(redis::ExistenceCheck::NX),
            )
            .await?;
        redis.get("chattr:epoch").await
    }

    /// Redis lost the log (it restarted without its data): the nodes may have applied
    /// different parts of what it had. The node that set the new epoch hands every node its
    /// state through the new log; the sessions each node has are fitted to it.
    async fn log_lost(&self, epoch: &str) {
        let mut redis = self.redis.clone();
        let setter: Option<String> = redis.get(format!("chattr:epoch:{epoch}")).await.ok().flatten();
        let claimed: Option<String> = redis
            .set_options(
                format!("chattr:epoch:{epoch}"),
                self.node,
                redis::SetOptions::default().conditional_set(redis::ExistenceCheck::NX),
            )
            .await
            .unwrap_or(None);
        if setter.is_some() || claimed.is_none() {
            return;
        }
        tracing::warn!(epoch, "Redis lost the cluster's log; handing this node's state to the others");
        // The epoch is claimed: the others wait for this state, so the request must get in.
        let ticket = rand::random();
        for _ in 0..LEAVE_TRIES {
            if self.append(Op::ResetWanted { by: self.node, ticket }).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Appends the state as it stands (at the position of this node's `ResetWanted`), for
    /// every node to take.
    fn hand_reset(&self, ticket: u64) {
        let snapshot = Box::new(self.hub.snapshot());
        let me = self.me.clone();
        tokio::spawn(async move {
            let op = Op::Reset { ticket, snapshot };
            let Some(cluster) = me.upgrade() else { return };
            if !cluster.append_reset(op).await {
                tracing::error!("the cluster's state could not be handed over after Redis lost its log");
            }
        });
    }

    /// Appends a `Reset`, trying again while Redis does not take it.
    /// (One entry, one number, however often it is tried: a try that landed unseen is applied
    /// once.)
    async fn append_reset(&self, op: Op) -> bool {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let Some(json) = self.entry_text(seq, op) else { return false };
        for _ in 0..LEAVE_TRIES {
            if self.xadd(&json).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_says_which_of_its_settings_differ_from_the_clusters() {
        let mine = |pairs: &[(&str, &str)]| {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>()
        };
        let theirs: HashMap<String, String> =
            mine(&[("history_on_join", "50"), ("opers", "potato:alice")]).into_iter().collect();
        assert!(
            disagreements(&mine(&[("history_on_join", "50"), ("opers", "potato:alice")]), &theirs).is_empty()
        );
        assert_eq!(
            disagreements(&mine(&[("history_on_join", "100"), ("opers", "potato:alice")]), &theirs),
            vec![r#"history_on_join: here "100", the cluster "50""#]
        );
        assert_eq!(
            disagreements(&mine(&[("history_on_join", "50"), ("cloak_key", "ab")]), &theirs),
            vec![
                r#"cloak_key: here "ab", the cluster "(unset)""#,
                r#"opers: here (unset), the cluster "potato:alice""#,
            ]
        );
    }

    #[test]
    fn stream_ids_compare_by_time_then_sequence() {
        assert!(stream_id("1700-2") > stream_id("1700-1"));
        assert!(stream_id("1701-0") > stream_id("1700-9"));
        assert_eq!(stream_id("0-0"), Some((0, 0)));
        assert_eq!(stream_id("nonsense"), None);
    }

    #[test]
    fn a_field_is_found_in_either_reply_shape() {
        let bulk = |s: &str| redis::Value::BulkString(s.as_bytes().to_vec());
        let list = redis::Value::Array(vec![
            bulk("length"),
            redis::Value::Int(3),
            bulk("max-deleted-entry-id"),
            bulk("5-1"),
        ]);
        assert_eq!(field(&list, "max-deleted-entry-id").as_deref(), Some("5-1"));
        let map = redis::Value::Map(vec![(bulk("max-deleted-entry-id"), bulk("7-0"))]);
        assert_eq!(field(&map, "max-deleted-entry-id").as_deref(), Some("7-0"));
        assert_eq!(field(&map, "absent"), None);
    }

    #[test]
    fn an_operation_is_applied_once_however_often_it_is_read() {
        let mut recent = Recent::default();
        assert!(recent.first_time(1, 7));
        assert!(!recent.first_time(1, 7));
        assert!(recent.first_time(2, 7));
        for seq in 0..Recent::KEEP as u64 + 1 {
            recent.first_time(3, seq);
        }
        assert!(recent.first_time(1, 7), "the oldest are forgotten, within a bound");
    }
}

//! The frames on the `/ws` WebSocket: [`ClientFrame`] from browser to server, [`ServerEvent`]
//! from server to browser. Each is one JSON text frame tagged by a snake_case `"type"`;
//! `docs/protocol.md` shows every variant with an example.

use serde::{Deserialize, Serialize};

use super::tag_first;

use super::error::{ErrorCode, ProtocolError};

/// A frame sent by a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// The first frame of every session: a login token from the host app, or a guest nick.
    /// `resume` is the secret of an earlier `welcome`: while that session is still held (its
    /// connection open, or dropped less than the resume grace ago) the new connection takes it
    /// over, nick, account, channels and roles unchanged; otherwise the token or nick logs in
    /// afresh. `resume` alone either resumes or fails with `resume_failed`.
    Auth {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nick: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
    },
    /// A message to a channel (`#name`) or to a nick (a private message). `txn` is a
    /// client-chosen id (at most 64 printable ASCII characters): the echo of the stored message
    /// and any error about this frame carry it, and a message resent with a `txn` the session
    /// already stored is acknowledged again instead of being sent twice.
    Message {
        target: String,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        txn: Option<String>,
    },
    /// A slash command line, parsed by [`super::Command::parse`]. `target` is the channel or
    /// nick the user is looking at; commands like `/me` or `/topic` without a channel use it.
    /// `txn` as for `message`.
    Command {
        line: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        txn: Option<String>,
    },
    /// A command as data, for programs and forms: the same [`super::Command`] a typed line
    /// parses to, so nothing in it needs quoting (a password may hold spaces and quotes).
    /// `txn` as for `message`.
    Run {
        command: super::Command,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        txn: Option<String>,
    },
    /// Asks for stored messages of a channel you are in, or of your private conversation with a
    /// nick: the `limit` (default 50, at most 100) newest ones older than message id `before`
    /// (newest first when left out). Answered by a `history` event.
    History {
        target: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// An application-level keepalive (browsers cannot send WebSocket pings); answered by `pong`.
    Ping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
}

/// Longest client transaction id (`txn`), in bytes.
pub const MAX_TXN_BYTES: usize = 64;

impl ClientFrame {
    /// Parses one text frame, turning any serde failure into a client-safe error.
    pub fn from_json(text: &str) -> Result<Self, ProtocolError> {
        serde_json::from_str(text).map_err(|e| {
            ProtocolError::new(ErrorCode::InvalidFrame, format!("not a valid client frame: {e}"))
        })
    }

    /// The client's transaction id, if the frame carries one.
    pub fn txn(&self) -> Option<&str> {
        match self {
            ClientFrame::Message { txn, .. } | ClientFrame::Command { txn, .. } => txn.as_deref(),
            _ => None,
        }
    }
}

/// Checks a client transaction id: 1 to [`MAX_TXN_BYTES`] printable ASCII characters.
pub fn validate_txn(txn: &str) -> Result<(), ProtocolError> {
    let printable = txn.bytes().all(|b| b.is_ascii_graphic());
    if txn.is_empty() || txn.len() > MAX_TXN_BYTES || !printable {
        return Err(ProtocolError::new(
            ErrorCode::InvalidFrame,
            format!("txn is 1 to {MAX_TXN_BYTES} printable ASCII characters"),
        ));
    }
    Ok(())
}

/// A message in a channel or a private message, live or from history. For a PM, `target` is
/// the recipient's nick. `action` is true for `/me`. Ids grow with time: a later message has a
/// larger id, so they order and page history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct ChatMessage {
    pub id: u64,
    /// Milliseconds since the Unix epoch.
    pub ts: u64,
    pub from: String,
    pub target: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub action: bool,
    /// Posted by an app as one of its bots (`from` is the bot's name), not typed by a user.
    #[serde(default, skip_serializing_if = "is_false")]
    pub bot: bool,
    /// On the sender's own echo only: the `txn` its `message` frame carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn: Option<String>,
}

/// One member of a channel as shown in a member list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct Member {
    pub nick: String,
    #[serde(default)]
    pub op: bool,
    #[serde(default)]
    pub voice: bool,
    #[serde(default)]
    pub away: bool,
    /// What they said when they went away, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away_message: Option<String>,
}

/// One line of a `/list` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct ChannelSummary {
    pub channel: String,
    pub members: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

/// One ban of a `ban_list`. `nick`, `by` and `at` (ms since the epoch) are known for bans set
/// while the channel was alive; a registered channel keeps only the masks while it is empty
/// and across restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct BanEntry {
    pub mask: String,
    /// Who the ban was set on, when named by nick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nick: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
}

/// Limits the server enforces, announced in `welcome` so clients can check input early.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct Limits {
    /// Longest message text, in bytes.
    pub max_text_bytes: usize,
    /// Largest frame the server accepts, in bytes.
    pub max_frame_bytes: usize,
    /// Messages allowed in a burst before rate limiting starts.
    pub burst: u32,
    /// Sustained messages per second.
    pub per_second: u32,
    /// On a resumed session's `welcome`: the frames it may send at once now. It goes on with
    /// the allowance its last connection left (dropping and resuming does not refill it); a new
    /// session has the whole `burst`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowance: Option<u32>,
}

tag_first::tagged_enum! {
"type", "ServerEvent", ServerEventByName,
/// A frame sent by the server. Events are named in the past tense; `topic` and `members`
/// describe a channel's state and are sent on join and on request. `type` is always the first
/// key, and an event is read that way (so from its text, not from a `serde_json::Value`, whose
/// keys are sorted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// Login succeeded. `host` is your own cloaked host as others see it. `resume` is this
    /// session's secret for `auth`'s `resume` (a new one with every `welcome`); `resumed` says
    /// this connection took over a held session: its channels are kept, each one's state
    /// (`topic`, `members`, `history`) follows, after any events queued while it was away.
    /// `default_channels` are channels to offer a newcomer.
    Welcome {
        nick: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        host: String,
        server: String,
        version: String,
        limits: Limits,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<String>,
        #[serde(default, skip_serializing_if = "is_false")]
        resumed: bool,
        /// For a resumed session: the channels it is in.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        channels: Vec<String>,
        /// Channels this server suggests to newcomers (`CHATTR_DEFAULT_CHANNELS`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        default_channels: Vec<String>,
    },
    /// A message in a channel or a private message. The sender gets its own messages back with
    /// their `id` once they are stored: that echo is the acknowledgement.
    Message(ChatMessage),
    /// Stored messages of a conversation, oldest first: sent on join (the last few, before any
    /// live traffic) and in answer to a `history` frame. `more` says older ones may exist.
    History { target: String, messages: Vec<ChatMessage>, more: bool },
    /// Your session's account changed: identified with Potato (`"potato:alice"`), logged in by
    /// an app (`"app:alice"`), or logged out (`null`) when the account was dropped.
    AccountChanged {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
    },
    /// Informational text from the server or a service (`from`), not part of any conversation.
    /// `code`, when present, names the condition it warns about, as an error's would
    /// (`not_identified`: you are using a registered nick without being identified).
    Notice {
        from: String,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<ErrorCode>,
    },
    /// A refused request; `txn` is the refused frame's, if it had one. A nick refused as
    /// taken comes with free `nicks` to offer instead.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        txn: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        nicks: Vec<String>,
    },
    /// Someone (maybe you) joined a channel.
    Joined { channel: String, nick: String, host: String },
    /// Someone (maybe you) left a channel.
    Parted {
        channel: String,
        nick: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Someone sharing a channel with you disconnected.
    Quit {
        nick: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Someone (maybe you) changed nick.
    NickChanged { old: String, new: String },
    /// Someone (maybe you) was kicked out of a channel.
    Kicked {
        channel: String,
        nick: String,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A ban mask was added to a channel; `nick` is who it was set on, when named by nick.
    Banned {
        channel: String,
        mask: String,
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nick: Option<String>,
    },
    /// A ban mask was removed from a channel.
    Unbanned { channel: String, mask: String, by: String },
    /// A channel's bans, in answer to `/bans` (or `/mode #channel +b` with no mask).
    BanList { channel: String, bans: Vec<BanEntry> },
    /// A channel's registration with Celery: with the channel's state on joining a registered
    /// channel, and to its members whenever it changes. `founder: null` says it is not (or no
    /// longer) registered. Accounts read `potato:alice` or `app:alice`.
    Registration {
        channel: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        founder: Option<String>,
        /// The op list: accounts opped on joining (besides the founder).
        #[serde(default)]
        ops: Vec<String>,
        /// Those on the op list who may change it too.
        #[serde(default)]
        trusted: Vec<String>,
    },
    /// Channel or member modes changed, e.g. `"+o"` with `["bob"]` or `"+mt"` with `[]`.
    ModeChanged { channel: String, by: String, modes: String, args: Vec<String> },
    /// A channel's topic: sent on join, on `/topic #chan`, and to everyone when it changes.
    Topic {
        channel: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        set_by: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        set_at: Option<u64>,
    },
    /// A channel's members with their roles, and its modes; sent on join and on `/names`.
    Members { channel: String, modes: String, members: Vec<Member> },
    /// Someone sharing a channel with you (or you) went away (`message` set) or came back (`null`).
    Away {
        nick: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// `by` invited `nick` to `channel`; sent to both.
    Invited { channel: String, nick: String, by: String },
    /// The answer to `/whois`. `host` is the real address for channel operators who share a
    /// channel with the user, the cloaked one for everyone else.
    Whois {
        nick: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        host: String,
        channels: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        away: Option<String>,
        /// Seconds since the user last sent a message or command.
        idle_secs: u64,
        /// When the user connected, in milliseconds since the Unix epoch.
        signon: u64,
    },
    /// The answer to `/list`: channels with their member counts and topics.
    List { channels: Vec<ChannelSummary> },
    /// The answer to a client `ping`.
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// You are a server operator now (`true`: right after `welcome`, or once you identified
    /// to an account in `CHATTR_OPERS`), or no longer (`false`).
    OperStatus { oper: bool },
    /// The server bans, for an operator (`/klines`, and after `/kline` or `/unkline`).
    KlineList { klines: Vec<Kline> },
    /// The latest operator actions, newest first, for an operator (`/audit`).
    AuditLog { entries: Vec<AuditEntry> },
    /// The server's figures, for an operator (`/stats`).
    Stats {
        /// Sessions with a live connection to this node (of a cluster).
        connections: usize,
        /// Sessions, held ones included: the whole chat's, every node of a cluster.
        sessions: usize,
        channels: usize,
        /// Operators online.
        opers: usize,
        /// Chat messages stored and delivered in the last 60 seconds.
        messages_last_minute: u64,
        /// Chat messages since the server started.
        messages_total: u64,
        uptime_secs: u64,
    },
}
}

/// A server ban: who it bans (`mask`: an account such as `potato:bob`, an address or network
/// such as `203.0.113.0/24`, or a `nick!user@host` mask), why, by whom, when (ms since the
/// epoch) and until when (`expires`; never when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct Kline {
    pub mask: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub by: String,
    pub at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
}

/// One operator action: when (ms since the epoch), the operator's account and nick, what
/// (`kill`, `kline`, `unkline`, `global_notice`), on what, why, and from which address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct AuditEntry {
    pub at: u64,
    pub oper: String,
    pub nick: String,
    pub action: String,
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub from: String,
}

tag_first::read_from_objects!(ChatMessage, Member, ChannelSummary, BanEntry, Limits, Kline, AuditEntry);

fn is_false(b: &bool) -> bool {
    !*b
}

impl ServerEvent {
    /// The JSON text of this event. Serializing these types cannot fail (no maps with
    /// non-string keys, no custom serializers), so this never returns an error string.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"event could not be encoded"}"#.to_owned()
        })
    }
}

impl From<ProtocolError> for ServerEvent {
    fn from(e: ProtocolError) -> Self {
        ServerEvent::Error { code: e.code, message: e.message, txn: None, nicks: e.nicks }
    }
}

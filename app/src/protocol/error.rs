//! Errors a client may see. Every refused request is answered with
//! `{"type":"error","code":…,"message":…}`; the `code` is stable and meant for programs,
//! the `message` is for people.

use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident => $wire:literal, )*) => {
        /// The stable error codes of the protocol, each with its wire spelling.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, for documentation and tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The code as it appears on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $wire,)* }
            }
        }
    };
}

// By its wire spelling, looked up in `ALL`: serde's derive would generate a matcher of its own
// for every spelling, which the browser bundle pays for.
impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|code| code.as_str() == wire)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown error code '{wire}'")))
    }
}

error_codes! {
    /// The frame is not valid JSON or not a known frame type.
    InvalidFrame => "invalid_frame",
    /// A slash command the server does not know.
    UnknownCommand => "unknown_command",
    /// A known command with missing or malformed arguments; the message shows the usage.
    BadArguments => "bad_arguments",
    /// A frame that needs a logged-in session arrived before `auth`.
    NotAuthenticated => "not_authenticated",
    /// A second `auth` on a session that is already logged in.
    AlreadyAuthenticated => "already_authenticated",
    /// The token is malformed, forged, signed with another secret, or unknown.
    AuthFailed => "auth_failed",
    /// The token's lifetime is over.
    TokenExpired => "token_expired",
    /// The app revoked this user's tokens; it must issue a new one.
    TokenRevoked => "token_revoked",
    /// `auth` asked to resume a session that is over (or never was) and gave nothing to log in
    /// with instead.
    ResumeFailed => "resume_failed",
    /// Guest (nick only) logins are switched off on this server.
    GuestsDisabled => "guests_disabled",
    /// The nick breaks the naming rules.
    InvalidNick => "invalid_nick",
    /// The nick belongs to a service or to an account.
    NickReserved => "nick_reserved",
    /// Someone else is using that nick.
    NickInUse => "nick_in_use",
    /// The channel name breaks the naming rules.
    InvalidChannel => "invalid_channel",
    /// Nobody by that nick is online.
    NoSuchNick => "no_such_nick",
    /// The channel does not exist.
    NoSuchChannel => "no_such_channel",
    /// The command needs you to be in the channel.
    NotOnChannel => "not_on_channel",
    /// The user named is not in the channel.
    UserNotOnChannel => "user_not_on_channel",
    /// You are already in the channel (or the user you invite is).
    AlreadyOnChannel => "already_on_channel",
    /// You are in as many channels as the server allows.
    TooManyChannels => "too_many_channels",
    /// No ban in the channel matches what you named.
    NoSuchBan => "no_such_ban",
    /// The channel has as many bans as the server allows.
    BanListFull => "ban_list_full",
    /// The command needs channel operator status.
    NotOp => "not_op",
    /// You are banned from the channel.
    Banned => "banned",
    /// The command is for server operators (`CHATTR_OPERS`, identified).
    NotOper => "not_oper",
    /// A server ban (`/kline`) matches you: the login is refused, or the session ends.
    ServerBanned => "server_banned",
    /// No server ban has that mask.
    NoSuchKline => "no_such_kline",
    /// The channel is invite-only (+i) and you were not invited.
    InviteOnly => "invite_only",
    /// The channel has a key (+k) and you gave a wrong one or none.
    BadKey => "bad_key",
    /// The channel is at its user limit (+l).
    ChannelFull => "channel_full",
    /// The channel is moderated (+m) and you have no voice.
    CannotSend => "cannot_send",
    /// The text, reason or topic is empty where it may not be.
    EmptyText => "empty_text",
    /// The text, reason or topic contains characters that are not allowed.
    InvalidText => "invalid_text",
    /// The text, reason or topic is longer than the server allows.
    TooLong => "too_long",
    /// Too many frames too fast; wait and retry.
    RateLimited => "rate_limited",
    /// Sustained flooding; the connection is closed.
    Flood => "flood",
    /// The client did not read its messages fast enough; the connection is closed.
    SlowConsumer => "slow_consumer",
    /// No `auth` frame arrived in time, or the client stopped answering pings.
    Timeout => "timeout",
    /// A token endpoint was called without the right shared secret.
    AccessDenied => "access_denied",
    /// The token endpoints are disabled because no shared secret is configured.
    TokensDisabled => "tokens_disabled",
    /// The server is shutting down.
    ShuttingDown => "shutting_down",
    /// Potato: the nick is registered already.
    AccountExists => "account_exists",
    /// Potato: no account by that name.
    NoSuchAccount => "no_such_account",
    /// Potato: the email address is not of the form `name@domain.tld`.
    InvalidEmail => "invalid_email",
    /// Potato: the password is too short or too long.
    WeakPassword => "weak_password",
    /// Potato: unknown account or wrong password (deliberately not told apart).
    IdentifyFailed => "identify_failed",
    /// Too many password attempts or registrations from here; wait and try again.
    Throttled => "throttled",
    /// The command needs you to be identified with an account.
    NotIdentified => "not_identified",
    /// Celery: the channel is registered already.
    ChannelRegistered => "channel_registered",
    /// Celery: the channel is not registered.
    ChannelNotRegistered => "channel_not_registered",
    /// The server is busy (too many password checks at once, or the app's message filter did
    /// not answer in time); try again in a moment.
    Busy => "busy",
    /// The app's message filter refused the message; the error's message is the app's reason.
    MessageRejected => "message_rejected",
    /// The store failed a write; the server acknowledges nothing more until it has restarted.
    Unavailable => "unavailable",
    /// Something failed inside the server; nothing about it is disclosed.
    Internal => "internal",
}

/// An error that is safe to show to a client: a stable code and a readable message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
    /// With `nick_in_use` and `nick_reserved`: free nicks to offer instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nicks: Vec<String>,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), nicks: Vec::new() }
    }

    /// The error, offering these nicks instead.
    pub fn with_nicks(self, nicks: Vec<String>) -> Self {
        Self { nicks, ..self }
    }
}

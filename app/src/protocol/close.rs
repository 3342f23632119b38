//! Why the server closes a WebSocket: the close frame's reason, shared by the server (which
//! sends it) and clients (which decide from it whether to reconnect, and say it in words).

use super::error::ErrorCode;

/// The reason in a close frame: one of these words, or the code of the refusal that ended
/// the session (`flood`, `timeout`, `slow_consumer`, `token_revoked`, a login refusal…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The user quit (`/quit`).
    Quit,
    /// Another connection took the session over (a resume, or the same app user again).
    SessionReplaced,
    /// The owner of the nick disconnected this session (Potato's `disconnect`).
    Ghosted,
    /// A server operator disconnected this session (`/kill`).
    Killed,
    /// The connection was dropped and its session is held for a resume (written to the
    /// dropped connection, so seldom seen).
    Held,
    /// The client closed, or the connection ended with nothing more to say.
    Closed,
    /// A frame over the size limit.
    TooBig,
    /// The client broke the WebSocket protocol.
    ProtocolError,
    /// A refusal that ends the session, or the server's own end (`shutting_down`, and
    /// `unavailable` when it cannot store anything).
    Error(ErrorCode),
}

/// The reasons that are words of their own, with their spelling.
const WORDS: &[(CloseReason, &str)] = &[
    (CloseReason::Quit, "quit"),
    (CloseReason::SessionReplaced, "session_replaced"),
    (CloseReason::Ghosted, "ghosted"),
    (CloseReason::Killed, "killed"),
    (CloseReason::Held, "held"),
    (CloseReason::Closed, "closed"),
    (CloseReason::TooBig, "too_big"),
    (CloseReason::ProtocolError, "protocol_error"),
];

impl CloseReason {
    /// The reason as the close frame spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Error(code) => code.as_str(),
            reason => WORDS.iter().find(|(r, _)| *r == reason).map_or("closed", |(_, word)| word),
        }
    }

    /// The reason a close frame gave; `None` for anything else (an empty reason included).
    pub fn parse(text: &str) -> Option<Self> {
        WORDS
            .iter()
            .find(|(_, word)| *word == text)
            .map(|(reason, _)| *reason)
            .or_else(|| ErrorCode::ALL.iter().find(|c| c.as_str() == text).map(|&c| CloseReason::Error(c)))
    }

    /// The WebSocket close code that goes with it.
    pub fn code(self) -> u16 {
        match self {
            CloseReason::Quit
            | CloseReason::SessionReplaced
            | CloseReason::Ghosted
            | CloseReason::Killed
            | CloseReason::Held
            | CloseReason::Closed => 1000,
            CloseReason::Error(ErrorCode::ShuttingDown) => 1001,
            CloseReason::ProtocolError => 1002,
            CloseReason::TooBig => 1009,
            CloseReason::Error(ErrorCode::Unavailable) => 1011,
            CloseReason::Error(_) => 1008,
        }
    }

    /// Whether the session ended on purpose (the user, the nick's owner, another login, the
    /// host app, a server operator): a client must not reconnect by itself.
    pub fn ends_session(self) -> bool {
        matches!(
            self,
            CloseReason::Quit
                | CloseReason::SessionReplaced
                | CloseReason::Ghosted
                | CloseReason::Killed
                | CloseReason::Error(ErrorCode::TokenRevoked)
                | CloseReason::Error(ErrorCode::ServerBanned)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_reads_back_from_its_spelling() {
        let words = WORDS.iter().map(|(r, _)| *r);
        for reason in words.chain(ErrorCode::ALL.iter().map(|&c| CloseReason::Error(c))) {
            assert_eq!(CloseReason::parse(reason.as_str()), Some(reason), "{reason:?}");
        }
        assert_eq!(CloseReason::parse(""), None);
        assert_eq!(CloseReason::parse("Quit"), None);
        assert_eq!(CloseReason::Error(ErrorCode::Flood).as_str(), "flood");
        assert_eq!(CloseReason::Error(ErrorCode::Flood).code(), 1008);
    }
}

//! When and how soon the UI reconnects: exponential backoff with jitter, and never after the
//! server said no to the login or the user (or the nick's owner) ended the session.

/// First retry after this long; each failure doubles it up to [`MAX_DELAY_MS`].
pub const BASE_DELAY_MS: u32 = 500;
pub const MAX_DELAY_MS: u32 = 30_000;

/// The wait before reconnect attempt `attempt` (0 for the first). `jitter` in `0.0..1.0`
/// spreads clients out so a restarted server is not hit by all of them at once.
pub fn delay_ms(attempt: u32, jitter: f64) -> u32 {
    let exp = BASE_DELAY_MS.saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX));
    let capped = exp.min(MAX_DELAY_MS) as f64;
    (capped * (0.5 + 0.5 * jitter.clamp(0.0, 1.0))) as u32
}

use crate::protocol::{CloseReason, ErrorCode};

/// Login refusals that a retry cannot fix.
const FINAL_LOGIN_ERRORS: &[ErrorCode] = &[
    ErrorCode::AuthFailed,
    ErrorCode::ResumeFailed,
    ErrorCode::TokenExpired,
    ErrorCode::TokenRevoked,
    ErrorCode::GuestsDisabled,
    ErrorCode::InvalidNick,
    ErrorCode::NickReserved,
    ErrorCode::AccessDenied,
    ErrorCode::ServerBanned,
];

/// Why a session ended, for people.
pub fn ending(reason: CloseReason) -> String {
    let words = match reason {
        CloseReason::Quit => "you left the chat",
        CloseReason::SessionReplaced => "you logged in from another window",
        CloseReason::Ghosted => "the owner of this nick disconnected you",
        CloseReason::Killed => "a server operator disconnected you",
        CloseReason::TooBig => "a message was too large",
        CloseReason::Held | CloseReason::Closed | CloseReason::ProtocolError => "the connection closed",
        CloseReason::Error(code) => return in_words(code),
    };
    words.to_owned()
}

/// An error code in words, where the server's message is not at hand or says too little.
fn in_words(code: ErrorCode) -> String {
    let words = match code {
        ErrorCode::TokenRevoked => "your login was ended by the site you came from",
        ErrorCode::ServerBanned => "you are banned from this server",
        ErrorCode::TokenExpired => "your login has expired; reload the page you came from",
        ErrorCode::AuthFailed => "the login was refused",
        ErrorCode::ResumeFailed => "your session has ended; log in again",
        ErrorCode::GuestsDisabled => "this chat only admits users of its site",
        ErrorCode::InvalidNick => "that nick is not allowed",
        ErrorCode::NickReserved => "that nick belongs to someone else",
        ErrorCode::NickInUse => "someone is using that nick; pick another",
        ErrorCode::IdentifyFailed => "unknown nick or wrong password",
        ErrorCode::AccountExists => "that nick is registered already; sign in or pick another",
        ErrorCode::WeakPassword => "a password has 8 to 128 characters",
        ErrorCode::InvalidEmail => "an email address looks like name@example.com",
        ErrorCode::Throttled => "too many attempts; wait a minute",
        ErrorCode::Flood => "too many messages too fast",
        ErrorCode::SlowConsumer => "the connection could not keep up",
        ErrorCode::Timeout => "the connection timed out",
        ErrorCode::ShuttingDown => "the server is restarting",
        ErrorCode::Unavailable => "the server cannot save anything right now and is restarting",
        ErrorCode::Busy => "the server is busy; try again in a moment",
        other => return other.as_str().replace('_', " "),
    };
    words.to_owned()
}

/// A refused request in plain words: the server's own message, which is written for people,
/// except where a code says more (or the message says too little).
pub fn refusal(code: ErrorCode, message: &str) -> String {
    match code {
        ErrorCode::Internal => "something went wrong on the server; try again".to_owned(),
        ErrorCode::RateLimited => "too many messages too fast; wait a moment and retry".to_owned(),
        ErrorCode::Unavailable | ErrorCode::Busy | ErrorCode::Throttled => in_words(code),
        _ if message.trim().is_empty() => in_words(code),
        _ => message.to_owned(),
    }
}

/// Whether the session is over for good: the server turned the login down for a reason a
/// retry cannot fix, or closed the socket saying the session ended on purpose.
pub fn is_final(login_error: Option<ErrorCode>, close: Option<CloseReason>) -> bool {
    login_error.is_some_and(|code| FINAL_LOGIN_ERRORS.contains(&code))
        || close.is_some_and(CloseReason::ends_session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_up_to_a_cap_with_jitter_below_it() {
        assert_eq!(delay_ms(0, 1.0), 500);
        assert_eq!(delay_ms(1, 1.0), 1000);
        assert_eq!(delay_ms(3, 1.0), 4000);
        assert_eq!(delay_ms(10, 1.0), MAX_DELAY_MS);
        assert_eq!(delay_ms(u32::MAX, 1.0), MAX_DELAY_MS);
        assert_eq!(delay_ms(2, 0.0), 1000);
    }

    #[test]
    fn refusals_read_as_words_without_codes() {
        assert_eq!(refusal(ErrorCode::NotOnChannel, "you are not in #a"), "you are not in #a");
        assert_eq!(refusal(ErrorCode::Internal, "db: oops"), "something went wrong on the server; try again");
        assert_eq!(refusal(ErrorCode::NickInUse, ""), "someone is using that nick; pick another");
    }

    #[test]
    fn endings_are_told_in_words() {
        let revoked = CloseReason::Error(ErrorCode::TokenRevoked);
        assert_eq!(ending(revoked), "your login was ended by the site you came from");
        assert_eq!(ending(CloseReason::Quit), "you left the chat");
        assert_eq!(ending(CloseReason::Error(ErrorCode::NotOp)), "not op", "a code without words of its own");
    }

    #[test]
    fn refused_logins_and_chosen_endings_are_final_and_outages_are_not() {
        let error = |code| Some(CloseReason::Error(code));
        assert!(is_final(Some(ErrorCode::AuthFailed), None));
        assert!(is_final(Some(ErrorCode::TokenExpired), error(ErrorCode::TokenExpired)));
        assert!(is_final(None, Some(CloseReason::Quit)));
        assert!(is_final(None, Some(CloseReason::Ghosted)));
        assert!(is_final(None, Some(CloseReason::SessionReplaced)));
        assert!(is_final(None, error(ErrorCode::TokenRevoked)));
        assert!(!is_final(None, error(ErrorCode::ShuttingDown)));
        assert!(!is_final(None, error(ErrorCode::Unavailable)), "a failed store restarts: come back later");
        assert!(!is_final(None, Some(CloseReason::Held)));
        assert!(!is_final(None, None));
        // A guest's nick may still be held by the dead session for a moment: try again.
        assert!(!is_final(Some(ErrorCode::NickInUse), error(ErrorCode::NickInUse)));
    }
}

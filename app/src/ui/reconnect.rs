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

use crate::protocol::ErrorCode;

/// Login refusals that a retry cannot fix.
const FINAL_LOGIN_ERRORS: &[&str] = &[
    "auth_failed",
    "resume_failed",
    "token_expired",
    "token_revoked",
    "guests_disabled",
    "invalid_nick",
    "nick_reserved",
    "access_denied",
];
/// Close reasons that end a session on purpose.
const FINAL_CLOSE_REASONS: &[&str] = &["quit", "session_replaced", "ghosted", "token_revoked"];

/// Why a session ended, for people: the server's error code or close reason in words.
pub fn ending(code: &str) -> String {
    let words = match code {
        "quit" => "you left the chat",
        "session_replaced" => "you logged in from another window",
        "ghosted" => "the owner of this nick disconnected you",
        "token_revoked" => "your login was ended by the site you came from",
        "token_expired" => "your login has expired; reload the page you came from",
        "auth_failed" => "the login was refused",
        "resume_failed" => "your session has ended; log in again",
        "guests_disabled" => "this chat only admits users of its site",
        "invalid_nick" => "that nick is not allowed",
        "nick_reserved" => "that nick belongs to someone else",
        "nick_in_use" => "someone is using that nick; pick another",
        "identify_failed" => "unknown nick or wrong password",
        "account_exists" => "that nick is registered already; sign in or pick another",
        "weak_password" => "a password has 8 to 128 characters",
        "invalid_email" => "an email address looks like name@example.com",
        "throttled" => "too many attempts; wait a minute",
        "flood" => "too many messages too fast",
        "slow_consumer" => "the connection could not keep up",
        "timeout" => "the connection timed out",
        "too_big" => "a message was too large",
        "shutting_down" => "the server is restarting",
        "unavailable" => "the server cannot save anything right now and is restarting",
        "busy" => "the server is busy; try again in a moment",
        other => return other.replace('_', " "),
    };
    words.to_owned()
}

/// A refused request in plain words: the server's own message, which is written for people,
/// except where a code says more (or the message says too little).
pub fn refusal(code: ErrorCode, message: &str) -> String {
    match code {
        ErrorCode::Internal => "something went wrong on the server; try again".to_owned(),
        ErrorCode::RateLimited => "too many messages too fast; wait a moment and retry".to_owned(),
        ErrorCode::Unavailable | ErrorCode::Busy | ErrorCode::Throttled => ending(code.as_str()),
        _ if message.trim().is_empty() => ending(code.as_str()),
        _ => message.to_owned(),
    }
}

/// Whether the session is over for good. `login_error` is the error code the server sent
/// before `welcome`, if any; `close_reason` the close frame's reason.
pub fn is_final(login_error: Option<&str>, close_reason: &str) -> bool {
    login_error.is_some_and(|code| FINAL_LOGIN_ERRORS.contains(&code))
        || FINAL_CLOSE_REASONS.contains(&close_reason)
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
        assert_eq!(ending("token_revoked"), "your login was ended by the site you came from");
        assert_eq!(ending("quit"), "you left the chat");
        // A code this build does not know yet still reads as words.
        assert_eq!(ending("some_new_reason"), "some new reason");
    }

    #[test]
    fn refused_logins_and_chosen_endings_are_final_and_outages_are_not() {
        assert!(is_final(Some("auth_failed"), ""));
        assert!(is_final(Some("token_expired"), "token_expired"));
        assert!(is_final(None, "quit"));
        assert!(is_final(None, "ghosted"));
        assert!(is_final(None, "token_revoked"));
        assert!(is_final(Some("token_revoked"), "token_revoked"));
        assert!(!is_final(None, "shutting_down"));
        assert!(!is_final(None, "unavailable"), "a failed store restarts: come back later");
        assert!(!is_final(None, ""));
        // A guest's nick may still be held by the dead session for a moment: try again.
        assert!(!is_final(Some("nick_in_use"), "nick_in_use"));
    }
}

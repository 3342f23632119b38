//! Rules for free text: message bodies, topics, reasons and away messages.

use super::error::{ErrorCode, ProtocolError};

/// Longest topic, in bytes.
pub const MAX_TOPIC_BYTES: usize = 390;
/// Longest part/kick/quit reason or away message, in bytes.
pub const MAX_REASON_BYTES: usize = 300;

/// Checks a piece of text: not blank, at most `max_bytes`, and free of control characters
/// (newlines and tabs are allowed only when `multiline`); one that is not `multiline` has no
/// line or paragraph separator (U+2028, U+2029) either, which are no control characters but
/// break a line all the same.
pub fn validate_text(what: &str, text: &str, max_bytes: usize, multiline: bool) -> Result<(), ProtocolError> {
    if text.trim().is_empty() {
        return Err(ProtocolError::new(ErrorCode::EmptyText, format!("the {what} is empty")));
    }
    if text.len() > max_bytes {
        return Err(ProtocolError::new(
            ErrorCode::TooLong,
            format!("the {what} is {} bytes long; the limit is {max_bytes}", text.len()),
        ));
    }
    let allowed = |c: char| multiline && (c == '\n' || c == '\t');
    let breaks_line = |c: char| !multiline && matches!(c, '\u{2028}' | '\u{2029}');
    if text.chars().any(|c| (c.is_control() && !allowed(c)) || breaks_line(c)) {
        return Err(ProtocolError::new(
            ErrorCode::InvalidText,
            format!(
                "the {what} contains control characters{}",
                if multiline { "" } else { " or a line break" }
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        assert!(validate_text("message", "hello <b>world</b>", 100, true).is_ok());
        assert!(validate_text("message", "two\nlines", 100, true).is_ok());
        for line_break in ["\n", "\r", "\u{85}", "\u{2028}", "\u{2029}"] {
            let text = format!("two{line_break}lines");
            assert_eq!(validate_text("topic", &text, 100, false).unwrap_err().code, ErrorCode::InvalidText);
        }
        assert!(validate_text("message", "two\u{2028}lines", 100, true).is_ok());
        assert_eq!(validate_text("message", "   ", 100, true).unwrap_err().code, ErrorCode::EmptyText);
        assert_eq!(
            validate_text("message", "bell\u{7}", 100, true).unwrap_err().code,
            ErrorCode::InvalidText
        );
        assert_eq!(
            validate_text("message", &"x".repeat(101), 100, true).unwrap_err().code,
            ErrorCode::TooLong
        );
        assert!(validate_text("message", &"é".repeat(50), 100, true).is_ok());
        assert_eq!(
            validate_text("message", &"é".repeat(51), 100, true).unwrap_err().code,
            ErrorCode::TooLong
        );
    }
}

//! Nick and channel name rules, shared by the server (which enforces them) and the UI (which
//! checks input before sending it).
//!
//! Names compare case-insensitively: two names are "the same" when their [`fold`]ed forms are
//! equal. Folding applies Unicode NFKC and then lowercases, so `Ａlice`, `ALICE` and `alice` are
//! one nick.

use unicode_normalization::is_nfkc;

use super::error::{ErrorCode, ProtocolError};

/// Longest nick, in characters.
pub const MAX_NICK_CHARS: usize = 30;
/// Longest channel name including the leading `#`, in characters.
pub const MAX_CHANNEL_CHARS: usize = 50;

/// Nicks nobody may take: the built-in services and the server's own name.
pub const RESERVED_NICKS: &[&str] = &["potato", "celery", "server", "chattr", "nickserv", "chanserv"];

/// The case-folded form of a name: the key for uniqueness and lookups.
pub fn fold(name: &str) -> String {
    nfkc(name).chars().flat_map(char::to_lowercase).collect()
}

/// Unicode NFKC. In the browser it is the browser's own (`String.prototype.normalize`): the
/// crate's composition tables would be a sixth of the WebAssembly. The server, which decides
/// what a name is, uses the crate.
#[cfg(not(all(target_arch = "wasm32", feature = "hydrate")))]
fn nfkc(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    s.nfkc().collect()
}

#[cfg(all(target_arch = "wasm32", feature = "hydrate"))]
fn nfkc(s: &str) -> String {
    js_sys::JsString::from(s).normalize("NFKC").into()
}

/// Characters no name may contain: controls, whitespace, separators the protocol gives meaning
/// to, and invisible formatting characters (bidi overrides, zero-width marks) used for spoofing.
pub fn is_forbidden_in_name(c: char) -> bool {
    c.is_control()
        || c.is_whitespace()
        || matches!(c, ',' | ':' | '!' | '@' | '*' | '?')
        || is_invisible_format(c)
}

/// Bidi controls, zero-width characters and other invisible format characters.
pub fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFFB}'
        | '\u{E0000}'..='\u{E007F}')
}

/// Checks a nick: 1 to [`MAX_NICK_CHARS`] letters, digits or `_-[]{}|^\``, not starting with a
/// digit or `-`, and not a reserved name.
pub fn validate_nick(nick: &str) -> Result<(), ProtocolError> {
    let invalid = |why: &str| Err(ProtocolError::new(ErrorCode::InvalidNick, format!("invalid nick: {why}")));
    let count = nick.chars().count();
    if count == 0 {
        return invalid("it is empty");
    }
    if count > MAX_NICK_CHARS {
        return invalid(&format!("it is longer than {MAX_NICK_CHARS} characters"));
    }
    let first = nick.chars().next().unwrap_or_default();
    if first.is_ascii_digit() || first == '-' {
        return invalid("it may not start with a digit or '-'");
    }
    if let Some(bad) =
        nick.chars().find(|&c| is_forbidden_in_name(c) || !(c.is_alphanumeric() || "_-[]{}|^`\\".contains(c)))
    {
        return invalid(&format!("character {} is not allowed", bad.escape_unicode()));
    }
    // One spelling per name: a nick that NFKC would change (fullwidth letters, ligatures,
    // compatibility forms) would show one name and be keyed as another.
    if !is_nfkc(nick) {
        let normal = nfkc(nick);
        return invalid(&format!("it is not in Unicode normal form (NFKC); write {normal} instead"));
    }
    if RESERVED_NICKS.contains(&fold(nick).as_str()) {
        return Err(ProtocolError::new(ErrorCode::NickReserved, format!("the nick {nick} is reserved")));
    }
    Ok(())
}

/// Checks a channel name: `#` followed by 1 to 49 characters, none of them forbidden.
pub fn validate_channel(name: &str) -> Result<(), ProtocolError> {
    let invalid = |why: &str| {
        Err(ProtocolError::new(ErrorCode::InvalidChannel, format!("invalid channel name: {why}")))
    };
    let Some(rest) = name.strip_prefix('#') else {
        return invalid("it must start with '#'");
    };
    let count = name.chars().count();
    if rest.is_empty() {
        return invalid("it needs a name after '#'");
    }
    if count > MAX_CHANNEL_CHARS {
        return invalid(&format!("it is longer than {MAX_CHANNEL_CHARS} characters"));
    }
    if let Some(bad) = rest.chars().find(|&c| is_forbidden_in_name(c)) {
        return invalid(&format!("character {} is not allowed", bad.escape_unicode()));
    }
    Ok(())
}

/// True when `target` names a channel rather than a nick.
pub fn is_channel(target: &str) -> bool {
    target.starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicks_follow_the_rules() {
        let cases: &[(&str, Option<ErrorCode>)] = &[
            ("alice", None),
            ("Bob_42", None),
            ("[away]", None),
            ("zoë", None),
            ("a", None),
            ("", Some(ErrorCode::InvalidNick)),
            ("1abc", Some(ErrorCode::InvalidNick)),
            ("-abc", Some(ErrorCode::InvalidNick)),
            ("with space", Some(ErrorCode::InvalidNick)),
            ("comma,nick", Some(ErrorCode::InvalidNick)),
            ("tab\tnick", Some(ErrorCode::InvalidNick)),
            ("nul\0nick", Some(ErrorCode::InvalidNick)),
            ("evil\u{202E}kcin", Some(ErrorCode::InvalidNick)),
            ("zero\u{200B}width", Some(ErrorCode::InvalidNick)),
            ("#chan", Some(ErrorCode::InvalidNick)),
            ("a!b", Some(ErrorCode::InvalidNick)),
            ("a@b", Some(ErrorCode::InvalidNick)),
            ("<script>", Some(ErrorCode::InvalidNick)),
            ("abcdefghijklmnopqrstuvwxyz01234", Some(ErrorCode::InvalidNick)),
            ("Potato", Some(ErrorCode::NickReserved)),
            ("\u{FF42}ob", Some(ErrorCode::InvalidNick)),
            ("\u{FB01}ne", Some(ErrorCode::InvalidNick)),
            ("e\u{301}mile", Some(ErrorCode::InvalidNick)),
            ("\u{E9}mile", None),
            ("CELERY", Some(ErrorCode::NickReserved)),
        ];
        for (nick, want) in cases {
            let got = validate_nick(nick).err().map(|e| e.code);
            assert_eq!(&got, want, "nick {nick:?}");
        }
    }

    #[test]
    fn channels_follow_the_rules() {
        let cases: &[(&str, bool)] = &[
            ("#rust", true),
            ("#Rust-Lang.fr", true),
            ("#日本語", true),
            ("#a", true),
            ("rust", false),
            ("#", false),
            ("#two words", false),
            ("#a,b", false),
            ("#bell\u{7}", false),
            ("#rtl\u{202E}", false),
            ("#zw\u{FEFF}", false),
        ];
        for (name, ok) in cases {
            assert_eq!(validate_channel(name).is_ok(), *ok, "channel {name:?}");
        }
        let long = format!("#{}", "x".repeat(MAX_CHANNEL_CHARS));
        assert_eq!(validate_channel(&long).unwrap_err().code, ErrorCode::InvalidChannel);
    }

    #[test]
    fn folding_makes_case_and_width_variants_equal() {
        assert_eq!(fold("ALICE"), fold("alice"));
        assert_eq!(fold("Ａlice"), fold("alice"));
        assert_eq!(fold("#RuSt"), "#rust");
        assert_ne!(fold("alice"), fold("alicf"));
    }
}

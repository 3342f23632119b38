//! How message text is shown: split into plain text and links (only `http://` and `https://`
//! become links; everything else, markup included, stays text), and whether it mentions you.

use crate::protocol::names::fold;

/// A piece of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Text(String),
    /// An `http(s)://` address, shown as a link that opens with `rel="noopener noreferrer"`.
    Link(String),
}

/// Characters that end a link when they are its last one: sentence punctuation and closers.
fn trailing_punctuation(c: char) -> bool {
    matches!(c, '.' | ',' | ';' | ':' | '!' | '?' | ')' | ']' | '}' | '\'' | '"' | '>')
}

/// Splits text into plain runs and links.
pub fn segments(text: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut plain = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        let start = ["https://", "http://"]
            .iter()
            .filter_map(|scheme| find_ascii_case_insensitive(rest, scheme))
            .min();
        let Some(start) = start else {
            plain.push_str(rest);
            break;
        };
        // A scheme glued to a word ("xhttp://") is not a link start.
        let glued = rest[..start].chars().next_back().is_some_and(|c| c.is_alphanumeric());
        let end =
            rest[start..].find(|c: char| c.is_whitespace() || c == '<').map_or(rest.len(), |e| start + e);
        let mut link = &rest[start..end];
        while link.ends_with(trailing_punctuation) {
            link = &link[..link.len() - 1];
        }
        let has_host = link.split_once("://").is_some_and(|(_, after)| !after.is_empty());
        if glued || !has_host {
            let skip = start + link.len().max(1);
            let skip = (skip..=rest.len()).find(|&i| rest.is_char_boundary(i)).unwrap_or(rest.len());
            plain.push_str(&rest[..skip]);
            rest = &rest[skip..];
            continue;
        }
        plain.push_str(&rest[..start]);
        if !plain.is_empty() {
            out.push(Segment::Text(std::mem::take(&mut plain)));
        }
        out.push(Segment::Link(link.to_owned()));
        rest = &rest[start + link.len()..];
    }
    if !plain.is_empty() {
        out.push(Segment::Text(plain));
    }
    out
}

fn find_ascii_case_insensitive(haystack: &str, needle: &str) -> Option<usize> {
    haystack.as_bytes().windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Whether `text` mentions `nick` as a whole word, ignoring case.
pub fn mentions(text: &str, nick: &str) -> bool {
    let nick = fold(nick);
    if nick.is_empty() {
        return false;
    }
    let text = fold(text);
    let is_word = |c: char| c.is_alphanumeric() || "_-[]{}|^`\\".contains(c);
    text.match_indices(&nick).any(|(i, m)| {
        let before = text[..i].chars().next_back();
        let after = text[i + m.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn link(s: &str) -> Segment {
        Segment::Link(s.into())
    }
    fn text(s: &str) -> Segment {
        Segment::Text(s.into())
    }

    #[test]
    fn only_http_and_https_become_links() {
        assert_eq!(
            segments("see https://example.com/a?b=1, then http://x.example."),
            vec![
                text("see "),
                link("https://example.com/a?b=1"),
                text(", then "),
                link("http://x.example"),
                text(".")
            ]
        );
        assert_eq!(segments("javascript:alert(1)"), vec![text("javascript:alert(1)")]);
        assert_eq!(segments("data:text/html,<b>x</b>"), vec![text("data:text/html,<b>x</b>")]);
        assert_eq!(
            segments("(https://example.com)"),
            vec![text("("), link("https://example.com"), text(")")]
        );
        assert_eq!(segments("https://"), vec![text("https://")]);
        assert_eq!(segments("xhttps://evil.example"), vec![text("xhttps://evil.example")]);
        assert_eq!(segments("HTTPS://EXAMPLE.COM"), vec![link("HTTPS://EXAMPLE.COM")]);
        assert_eq!(segments("<img src=x onerror=alert(1)>"), vec![text("<img src=x onerror=alert(1)>")]);
    }

    #[test]
    fn mentions_are_whole_words_in_any_case() {
        assert!(mentions("hey Alice, look", "alice"));
        assert!(mentions("ALICE", "alice"));
        assert!(!mentions("malice aforethought", "alice"));
        assert!(!mentions("alice_2 is here", "alice"));
        assert!(mentions("@alice: hi", "alice"));
        assert!(!mentions("anything", ""));
    }

    proptest! {
        #[test]
        fn segments_keep_every_character(s in "\\PC{0,80}") {
            let joined: String = segments(&s).into_iter().map(|seg| match seg {
                Segment::Text(t) | Segment::Link(t) => t,
            }).collect();
            prop_assert_eq!(joined, s);
        }

        #[test]
        fn links_always_start_with_http(s in "(\\PC|https?://[a-z.]{0,8}){0,12}") {
            for seg in segments(&s) {
                if let Segment::Link(l) = seg {
                    let lower = l.to_ascii_lowercase();
                    prop_assert!(lower.starts_with("http://") || lower.starts_with("https://"));
                }
            }
        }
    }
}

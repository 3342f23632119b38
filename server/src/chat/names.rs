//! Which nicks count as the same. Two nicks are the same nick when they fold equal (case and
//! width, see [`fold`]) **or** when they look alike: when their confusable skeletons (Unicode
//! TS #39, from the `unicode-security` crate) match, taken on the nick lowercased, uppercased
//! and as written, with combining marks left out. So with `alice` taken, `аlice` (Cyrillic а),
//! `alіce` (Ukrainian і), `ᎪLICE` (Cherokee), `aIice` (capital I) and `alice` with combining
//! marks are all taken too.

use std::collections::HashMap;
use std::sync::OnceLock;

use unicode_normalization::char::is_combining_mark;
use unicode_security::confusable_detection::skeleton;

use app::protocol::names::fold;

/// The look-alike keys of a name: two names whose key sets meet look alike.
pub(crate) fn lookalike_keys(name: &str) -> [String; 3] {
    let skel = |s: &str| -> String { skeleton(s).filter(|c| !is_combining_mark(*c)).collect() };
    let folded = fold(name);
    [
        format!("l:{}", fold(&skel(&folded))),
        format!("u:{}", skel(&name.to_uppercase())),
        format!("w:{}", fold(&skel(name))),
    ]
}

/// Whether `nick` is, or looks like, the name of a built-in service or the server itself
/// (`Роtato` with Cyrillic letters would take private messages meant for Potato).
pub(crate) fn is_service_name(nick: &str) -> bool {
    static SERVICES: OnceLock<NameIndex<()>> = OnceLock::new();
    let services = SERVICES.get_or_init(|| {
        let mut index = NameIndex::default();
        for name in app::protocol::names::RESERVED_NICKS {
            index.insert(name, ());
        }
        index
    });
    !services.find_all(nick).is_empty()
}

/// Names and what they map to, found by their folded form or by looking alike.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct NameIndex<V> {
    /// Folded name → value, and the look-alike keys the name was indexed under.
    by_fold: HashMap<String, (V, [String; 3])>,
    /// Look-alike key → the folded name it belongs to.
    by_look: HashMap<String, String>,
}

impl<V> Default for NameIndex<V> {
    fn default() -> Self {
        Self { by_fold: HashMap::new(), by_look: HashMap::new() }
    }
}

impl<V> NameIndex<V> {
    /// Maps `name` to `value`, replacing what its folded form mapped to.
    pub(crate) fn insert(&mut self, name: &str, value: V) -> Option<V> {
        let old = self.remove(name);
        let folded = fold(name);
        let keys = lookalike_keys(name);
        for key in &keys {
            // The first name to claim a look-alike key keeps it (only data from before
            // look-alikes were refused can hold two that clash).
            self.by_look.entry(key.clone()).or_insert_with(|| folded.clone());
        }
        self.by_fold.insert(folded, (value, keys));
        old
    }

    /// Forgets the name that folds like `name`.
    pub(crate) fn remove(&mut self, name: &str) -> Option<V> {
        let folded = fold(name);
        let (value, keys) = self.by_fold.remove(&folded)?;
        for key in keys {
            if self.by_look.get(&key) == Some(&folded) {
                self.by_look.remove(&key);
            }
        }
        Some(value)
    }

    /// The value of exactly this name (up to case and width).
    pub(crate) fn get(&self, name: &str) -> Option<&V> {
        self.by_fold.get(&fold(name)).map(|(v, _)| v)
    }

    /// The name that is `name` or looks like it (its own folded form first): its folded form
    /// and value.
    #[cfg(test)]
    pub(crate) fn find(&self, name: &str) -> Option<(&str, &V)> {
        self.find_all(name).into_iter().next()
    }

    /// Every name that is `name` or looks like it (the relation is not transitive, so there
    /// can be several), with their folded forms. A check that a name is free must look at all
    /// of them: the caller's own entry among them says nothing about the others.
    pub(crate) fn find_all(&self, name: &str) -> Vec<(&str, &V)> {
        let folded = fold(name);
        let mut found: Vec<(&str, &V)> = Vec::new();
        let owners = std::iter::once(&folded)
            .chain(lookalike_keys(name).iter().filter_map(|k| self.by_look.get(k)).collect::<Vec<_>>());
        for owner in owners {
            if let Some((k, (v, _))) = self.by_fold.get_key_value(owner) {
                if !found.iter().any(|(f, _)| *f == k.as_str()) {
                    found.push((k.as_str(), v));
                }
            }
        }
        found
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_fold.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_of_a_name_are_found() {
        let mut names = NameIndex::default();
        names.insert("alice", 1);
        for lookalike in [
            "alice",
            "ALICE",
            "Alice",
            "\u{430}lice",  // Cyrillic а
            "alic\u{435}",  // Cyrillic е
            "al\u{456}ce",  // Ukrainian і
            "\u{13AA}LICE", // Cherokee Ꭺ
            "aIice",        // capital I for l
            "a\u{301}lice", // a combining acute accent
            "alice\u{335}", // a combining stroke
            "\u{391}LICE",  // Greek Α
        ] {
            assert_eq!(
                names.find(lookalike).map(|(k, v)| (k.to_owned(), *v)),
                Some(("alice".into(), 1)),
                "{lookalike}"
            );
        }
        for other in ["bob", "alicia", "malice", "ali", "allce", "a1ice_"] {
            assert!(names.find(other).is_none(), "{other}");
        }
        // Exact lookups do not match look-alikes.
        assert!(names.get("\u{430}lice").is_none());
        assert_eq!(names.get("ALICE"), Some(&1));
    }

    #[test]
    fn all_the_names_a_spelling_looks_like_are_found_not_just_its_own() {
        let mut names = NameIndex::default();
        names.insert("alice", 1);
        names.insert("aiice", 2);
        // `aIice` folds like `aiice` but looks like `alice`.
        let all: Vec<i32> = names.find_all("aIice").into_iter().map(|(_, v)| *v).collect();
        assert_eq!(all, vec![2, 1]);
        assert!(names.find_all("bob").is_empty());
    }

    #[test]
    fn service_names_and_their_look_alikes_are_taken() {
        assert!(is_service_name("Potato"));
        assert!(is_service_name("\u{420}\u{43E}tato"), "Cyrillic Р and о");
        assert!(is_service_name("CELERY"));
        assert!(!is_service_name("potatoes"));
    }

    #[test]
    fn removing_a_name_frees_its_look_alikes() {
        let mut names = NameIndex::default();
        names.insert("alice", ());
        names.insert("bob", ());
        assert!(names.remove("ALICE").is_some());
        assert!(names.find("\u{430}lice").is_none());
        assert!(names.find("b\u{43E}b").is_some(), "Cyrillic о in bob");
        assert_eq!(names.len(), 1);
    }
}

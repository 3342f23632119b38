//! Accounts. Two kinds live side by side, in namespaces of their own: users an app logs in
//! with a token (`app:alice`), and nicks registered with Potato (`potato:alice`). Both own
//! their nick; an account key never collides across kinds.
//!
//! A Potato account's key also carries the random id it got when it was registered, so an
//! account that is dropped and registered again by someone else is a different account: its
//! private history, op-list places and anything else filed under the old key stay with the old
//! account. (Accounts registered before ids existed keep their plain `potato:<nick>` key.)

use app::protocol::names::fold;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Account {
    /// Logged in by an app's server with a token.
    App(String),
    /// Identified with Potato.
    Potato(PotatoAccount),
}

/// A registered nick: its name as registered and the id it was registered with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PotatoAccount {
    pub name: String,
    /// Random, made at registration; empty for accounts older than ids.
    pub uid: String,
}

impl PotatoAccount {
    pub(crate) fn new(name: impl Into<String>, uid: impl Into<String>) -> Self {
        Self { name: name.into(), uid: uid.into() }
    }

    /// A fresh id for a new registration.
    pub(crate) fn new_uid() -> String {
        format!("{:016x}", rand::random::<u64>())
    }

    /// `potato:<folded>~<uid>` (or `potato:<folded>` for accounts older than ids).
    pub(crate) fn key(&self) -> String {
        if self.uid.is_empty() {
            format!("potato:{}", fold(&self.name))
        } else {
            format!("potato:{}~{}", fold(&self.name), self.uid)
        }
    }
}

impl Account {
    /// The name as registered or as the app spells it.
    pub(crate) fn name(&self) -> &str {
        match self {
            Account::App(n) => n,
            Account::Potato(p) => &p.name,
        }
    }

    /// The stable key stored in op lists and history: `app:<folded>` or the Potato account's
    /// key.
    pub(crate) fn key(&self) -> String {
        match self {
            Account::App(n) => format!("app:{}", fold(n)),
            Account::Potato(p) => p.key(),
        }
    }

    /// As clients see it: `app:Alice` or `potato:Alice`.
    pub(crate) fn wire(&self) -> String {
        match self {
            Account::App(n) => format!("app:{n}"),
            Account::Potato(p) => format!("potato:{}", p.name),
        }
    }

    /// Whether this account owns the nick `folded`.
    pub(crate) fn owns(&self, folded: &str) -> bool {
        fold(self.name()) == folded
    }
}

/// How an account key reads to people: without the registration id.
pub(crate) fn display_key(key: &str) -> &str {
    key.split_once('~').map_or(key, |(shown, _)| shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_kinds_never_share_a_key() {
        let app = Account::App("Alice".into());
        let potato = Account::Potato(PotatoAccount::new("alice", ""));
        assert_ne!(app.key(), potato.key());
        assert_eq!(app.key(), "app:alice");
        assert_eq!(potato.wire(), "potato:alice");
        assert!(app.owns("alice") && potato.owns("alice"));
    }

    #[test]
    fn a_registration_again_is_another_account() {
        let first = PotatoAccount::new("Alice", PotatoAccount::new_uid());
        let second = PotatoAccount::new("alice", PotatoAccount::new_uid());
        assert_ne!(first.key(), second.key());
        assert!(first.key().starts_with("potato:alice~"));
        assert_eq!(display_key(&first.key()), "potato:alice");
        assert_eq!(display_key("app:bob"), "app:bob");
    }
}

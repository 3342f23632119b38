//! Accounts. Two kinds live side by side, in namespaces of their own: users an app logs in
//! with a token (`app:alice`), and nicks registered with Potato (`potato:alice`). Both own
//! their nick; an account key never collides across kinds.

use app::protocol::names::fold;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    /// Logged in by an app's server with a token.
    App(String),
    /// Identified with Potato.
    Potato(String),
}

impl Account {
    /// The name as registered or as the app spells it.
    pub fn name(&self) -> &str {
        match self {
            Account::App(n) | Account::Potato(n) => n,
        }
    }

    /// The stable key stored in op lists and history: `app:<folded>` or `potato:<folded>`.
    pub fn key(&self) -> String {
        match self {
            Account::App(n) => format!("app:{}", fold(n)),
            Account::Potato(n) => format!("potato:{}", fold(n)),
        }
    }

    /// As clients see it: `app:Alice` or `potato:Alice`.
    pub fn wire(&self) -> String {
        match self {
            Account::App(n) => format!("app:{n}"),
            Account::Potato(n) => format!("potato:{n}"),
        }
    }

    /// Whether this account owns the nick `folded`.
    pub fn owns(&self, folded: &str) -> bool {
        fold(self.name()) == folded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_kinds_never_share_a_key() {
        let app = Account::App("Alice".into());
        let potato = Account::Potato("alice".into());
        assert_ne!(app.key(), potato.key());
        assert_eq!(app.key(), "app:alice");
        assert_eq!(potato.wire(), "potato:alice");
        assert!(app.owns("alice") && potato.owns("alice"));
    }
}

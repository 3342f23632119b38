//! Users that apps log in with tokens: who they are, the legacy tokens bound to them (stored as
//! hashes, so the database never holds a usable token), and when their tokens were revoked.

use sha2::{Digest, Sha256};
use surrealdb::types::SurrealValue;

use super::Checked;
use super::{Result, Store};

#[derive(Debug, SurrealValue)]
struct UserRow {
    user: String,
}

#[derive(Debug, SurrealValue)]
struct NameRow {
    name: String,
}

/// Legacy tokens are looked up by a hash, so the database never holds a usable token.
fn token_id(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Binds an app-chosen token to a user (the legacy `/gettoken` route); `folded` is the
    /// user's folded name, by which a revocation finds the token.
    pub async fn bind_legacy_token(&self, token: &str, user: &str, folded: &str) -> Result<()> {
        let token = token.to_owned();
        let user = user.to_owned();
        let folded = folded.to_owned();
        let store = self.clone();
        self.write(async move {
            store
                .db()
                .query(
                    "UPSERT type::record('legacy_token', $id)
                 CONTENT { user: $user, folded: $folded, created_at: time::now() }",
                )
                .bind(("id", token_id(&token)))
                .bind(("user", user.to_owned()))
                .bind(("folded", folded.to_owned()))
                .await?
                .checked()?;
            Ok(())
        })
        .await
    }

    /// The user a legacy token was bound to.
    pub async fn legacy_token_user(&self, token: &str) -> Result<Option<String>> {
        let mut res = self
            .db()
            .query("SELECT user FROM ONLY type::record('legacy_token', $id)")
            .bind(("id", token_id(token)))
            .await?
            .checked()?;
        let row: Option<UserRow> = res.take(0)?;
        Ok(row.map(|r| r.user))
    }

    /// Records that `user` logs in through its app, so its nick is reserved for it. Answers
    /// when the user's tokens were last revoked (milliseconds since the Unix epoch), if ever:
    /// a token issued now must say it was issued later than that.
    pub async fn add_token_user(&self, folded: &str, user: &str) -> Result<Option<i64>> {
        let folded = folded.to_owned();
        let user = user.to_owned();
        let store = self.clone();
        self.write(async move {
            let mut res = store
                .db()
                .query(
                    "INSERT IGNORE INTO token_user { id: $id, name: $name, created_at: time::now() };
                 SELECT VALUE revoked_before FROM ONLY type::record('token_user', $id);",
                )
                .bind(("id", folded.to_owned()))
                .bind(("name", user.to_owned()))
                .await?
                .checked()?;
            Ok(res.take(1)?)
        })
        .await
    }

    /// When the tokens of the user `folded` were last revoked (milliseconds since the Unix
    /// epoch): every token issued at or before that instant is refused.
    pub async fn tokens_revoked_before(&self, folded: &str) -> Result<Option<i64>> {
        let mut res = self
            .db()
            .query("SELECT VALUE revoked_before FROM ONLY type::record('token_user', $id)")
            .bind(("id", folded.to_owned()))
            .await?
            .checked()?;
        Ok(res.take(0)?)
    }

    /// Revokes every token the user `folded` holds: signed tokens issued up to `at_ms`, and
    /// all legacy tokens bound to the user (deleted). One transaction.
    pub async fn revoke_tokens(&self, folded: &str, at_ms: i64) -> Result<()> {
        let folded = folded.to_owned();
        let store = self.clone();
        self.write(async move {
            store
                .db()
                .query(
                    "BEGIN;
                 UPDATE type::record('token_user', $id) SET revoked_before = $at RETURN NONE;
                 DELETE legacy_token WHERE folded = $id RETURN NONE;
                 COMMIT;",
                )
                .bind(("id", folded.to_owned()))
                .bind(("at", at_ms))
                .await?
                .checked()?;
            Ok(())
        })
        .await
    }

    /// Every user that ever logged in through its app.
    pub async fn token_users(&self) -> Result<Vec<String>> {
        let mut res = self.db().query("SELECT name FROM token_user").await?.checked()?;
        let rows: Vec<NameRow> = res.take(0)?;
        Ok(rows.into_iter().map(|r| r.name).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn legacy_tokens_are_bound_and_looked_up_by_hash() {
        let store = Store::open("mem://").await.unwrap();
        assert_eq!(store.legacy_token_user("abc123").await.unwrap(), None);
        store.bind_legacy_token("abc123", "alice", "alice").await.unwrap();
        assert_eq!(store.legacy_token_user("abc123").await.unwrap().as_deref(), Some("alice"));
        store.bind_legacy_token("abc123", "bob", "bob").await.unwrap();
        assert_eq!(store.legacy_token_user("abc123").await.unwrap().as_deref(), Some("bob"));
    }

    #[tokio::test]
    async fn token_users_are_recorded_once() {
        let store = Store::open("mem://").await.unwrap();
        assert_eq!(store.add_token_user("alice", "Alice").await.unwrap(), None);
        assert_eq!(store.add_token_user("alice", "ALICE").await.unwrap(), None);
        assert_eq!(store.token_users().await.unwrap(), vec!["Alice".to_owned()]);
    }

    #[tokio::test]
    async fn revoking_records_the_instant_and_deletes_only_that_users_legacy_tokens() {
        let store = Store::open("mem://").await.unwrap();
        store.add_token_user("alice", "Alice").await.unwrap();
        store.add_token_user("bob", "bob").await.unwrap();
        store.bind_legacy_token("alice-token-0001", "Alice", "alice").await.unwrap();
        store.bind_legacy_token("bob-token-000001", "bob", "bob").await.unwrap();

        store.revoke_tokens("alice", 1_700_000_000_123).await.unwrap();
        assert_eq!(store.tokens_revoked_before("alice").await.unwrap(), Some(1_700_000_000_123));
        assert_eq!(store.add_token_user("alice", "Alice").await.unwrap(), Some(1_700_000_000_123));
        assert_eq!(store.tokens_revoked_before("bob").await.unwrap(), None);
        assert_eq!(store.legacy_token_user("alice-token-0001").await.unwrap(), None);
        assert_eq!(store.legacy_token_user("bob-token-000001").await.unwrap().as_deref(), Some("bob"));

        // A user nobody ever issued a token for has nothing to revoke, and no record appears.
        store.revoke_tokens("carol", 1).await.unwrap();
        assert_eq!(store.tokens_revoked_before("carol").await.unwrap(), None);
        assert_eq!(store.token_users().await.unwrap().len(), 2);
    }
}

//! Potato accounts: one record per registered nick, keyed by the folded nick.

use surrealdb::types::SurrealValue;

use super::Checked;
use super::{Result, Store, StoreError};

/// A registered nick as stored. The password is only ever stored as an argon2id PHC string.
#[derive(Debug, Clone, SurrealValue)]
pub struct AccountRecord {
    /// The nick as it was registered.
    pub name: String,
    pub email: String,
    pub password_hash: String,
    /// Seconds since the Unix epoch.
    pub created: i64,
    /// Made at registration, so a nick registered again is another account; `None` for
    /// accounts older than ids.
    pub uid: Option<String>,
}

/// A registered nick and its registration id, as loaded at startup.
#[derive(Debug, Clone, SurrealValue)]
pub struct AccountName {
    pub name: String,
    pub uid: Option<String>,
}

impl Store {
    /// Creates the account unless one exists for `key` (the folded nick). `Ok(false)` when it
    /// exists: of any number of racing registrations of one nick, exactly one gets `Ok(true)`.
    pub async fn create_account(
        &self,
        key: &str,
        name: &str,
        email: &str,
        password_hash: &str,
        uid: &str,
    ) -> Result<bool> {
        let key = key.to_owned();
        let name = name.to_owned();
        let email = email.to_owned();
        let password_hash = password_hash.to_owned();
        let uid = uid.to_owned();
        let store = self.clone();
        self.write(async move {
            for _ in 0..5 {
                let result = store
                    .db()
                    .query(
                        "CREATE type::record('account', $id)
                     CONTENT { name: $name, email: $email, password_hash: $hash, uid: $uid } RETURN NONE",
                    )
                    .bind(("id", key.to_owned()))
                    .bind(("name", name.to_owned()))
                    .bind(("email", email.to_owned()))
                    .bind(("hash", password_hash.to_owned()))
                    .bind(("uid", uid.to_owned()))
                    .await
                    .and_then(|r| r.checked());
                match result {
                    Ok(_) => return Ok(true),
                    Err(e) => {
                        // Whether it lost to an existing record or to a concurrent transaction, the
                        // record tells: if it is there, someone else registered the nick.
                        if store.account(&key).await?.is_some() {
                            return Ok(false);
                        }
                        let text = e.to_string();
                        if !(text.contains("conflict")
                            || text.contains("retry")
                            || text.contains("already exists"))
                        {
                            return Err(StoreError::Query(e));
                        }
                    }
                }
            }
            Err(StoreError::Corrupt(format!("registering {key} kept conflicting")))
        })
        .await
    }

    /// The account registered for `key` (a folded nick).
    pub async fn account(&self, key: &str) -> Result<Option<AccountRecord>> {
        let mut res = self
            .db()
            .query(
                "SELECT name, email, password_hash, time::unix(created_at) AS created, uid FROM ONLY type::record('account', $id)",
            )
            .bind(("id", key.to_owned()))
            .await?
            .checked()?;
        Ok(res.take(0)?)
    }

    /// Every registered nick with its registration id, to protect them from the start.
    pub async fn account_names(&self) -> Result<Vec<AccountName>> {
        let mut res = self.db().query("SELECT name, uid FROM account").await?.checked()?;
        Ok(res.take(0)?)
    }

    /// Replaces an account's password hash. `Ok(false)` when the account is gone.
    pub async fn set_password(&self, key: &str, password_hash: &str) -> Result<bool> {
        let key = key.to_owned();
        let password_hash = password_hash.to_owned();
        let store = self.clone();
        self.write(async move {
            let mut res = store
                .db()
                .query("UPDATE type::record('account', $id) SET password_hash = $hash RETURN VALUE name")
                .bind(("id", key.to_owned()))
                .bind(("hash", password_hash.to_owned()))
                .await?
                .checked()?;
            let names: Vec<String> = res.take(0)?;
            Ok(!names.is_empty())
        })
        .await
    }

    /// Deletes an account, the channels it founded, and its places on op lists, in one
    /// transaction. Returns the names of the channels that were dropped with it.
    pub async fn drop_account(&self, key: &str, account: &str) -> Result<Vec<String>> {
        let key = key.to_owned();
        let account = account.to_owned();
        let store = self.clone();
        self.write(async move {
            let mut res = store
                .db()
                .query(
                    "BEGIN TRANSACTION;
                 DELETE type::record('account', $id);
                 DELETE channel_reg WHERE founder = $account RETURN BEFORE;
                 UPDATE channel_reg SET ops -= $account, trusted -= $account
                     WHERE ops CONTAINS $account OR trusted CONTAINS $account RETURN NONE;
                 COMMIT TRANSACTION;",
                )
                .bind(("id", key.to_owned()))
                .bind(("account", account.to_owned()))
                .await?
                .checked()?;
            // Statement 0 is BEGIN, 1 the account, 2 the founded channels.
            let founded: Vec<super::ChannelRecord> = res.take(2)?;
            Ok(founded.into_iter().map(|c| c.name).collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;

    #[tokio::test]
    async fn an_account_is_created_once_and_read_back() {
        let store = Store::open("mem://").await.unwrap();
        assert!(store.create_account("alice", "Alice", "a@x.example", "$argon2id$fake", "u1").await.unwrap());
        assert!(!store
            .create_account("alice", "ALICE", "b@x.example", "$argon2id$other", "u2")
            .await
            .unwrap());
        let acc = store.account("alice").await.unwrap().unwrap();
        assert_eq!((acc.name.as_str(), acc.email.as_str()), ("Alice", "a@x.example"));
        assert_eq!(acc.password_hash, "$argon2id$fake");
        assert!(acc.created > 1_700_000_000);
        assert!(store.account("bob").await.unwrap().is_none());
        assert_eq!(acc.uid.as_deref(), Some("u1"));
        let names = store.account_names().await.unwrap();
        assert_eq!((names[0].name.as_str(), names[0].uid.as_deref()), ("Alice", Some("u1")));
        assert!(store.set_password("alice", "$argon2id$new").await.unwrap());
        assert!(!store.set_password("bob", "$argon2id$new").await.unwrap());
        assert_eq!(store.account("alice").await.unwrap().unwrap().password_hash, "$argon2id$new");
    }

    /// Eight registrations of one nick at once, on the real on-disk engine: exactly one wins.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_registrations_of_one_nick_let_exactly_one_succeed() {
        let dir = std::env::temp_dir().join(format!("chattr-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&format!("surrealkv://{}", dir.display())).await.unwrap();
        for round in 0..5 {
            let key = format!("racer{round}");
            let tasks: Vec<_> = (0..8)
                .map(|i| {
                    let (store, key) = (store.clone(), key.clone());
                    tokio::spawn(async move {
                        store
                            .create_account(&key, &key, &format!("{i}@x.example"), &format!("h{i}"), "u")
                            .await
                    })
                })
                .collect();
            let mut wins = 0;
            for t in tasks {
                if t.await.unwrap().unwrap() {
                    wins += 1;
                }
            }
            assert_eq!(wins, 1, "round {round}");
        }
        assert_eq!(store.account_names().await.unwrap().len(), 5);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

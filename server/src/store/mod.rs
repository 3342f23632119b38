//! Persistence in SurrealDB: embedded (`surrealkv://dir`, `mem://`) or a server (`ws://`).
//! The schema is defined at startup, idempotently; every statement's result is checked, not
//! just the query call. Records that must be unique per name (accounts, registered channels)
//! use the case-folded name as their record id, so the database itself refuses a second one
//! even when two registrations race.

mod accounts;
mod channels;
mod history;
mod tokens;

pub use accounts::AccountRecord;
pub use channels::ChannelRecord;
pub use history::{Conversation, StoredMessage};

use std::time::Duration;

use surrealdb::engine::any::{connect, Any};
use surrealdb::types::SurrealValue;
use surrealdb::Surreal;

/// Why the store failed. Shown to operators in logs, never to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the data directory {0} is in use by another chattrd process (only one may open it)")]
    Locked(String),
    #[error("cannot open the store at {url}: {source}")]
    Open { url: String, source: surrealdb::Error },
    #[error("store query failed: {0}")]
    Query(#[from] surrealdb::Error),
    #[error("store data is not as expected: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

const SCHEMA: &str = r#"
DEFINE TABLE IF NOT EXISTS server_key SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS key ON server_key TYPE string;

DEFINE TABLE IF NOT EXISTS legacy_token SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS user ON legacy_token TYPE string;
DEFINE FIELD IF NOT EXISTS folded ON legacy_token TYPE string;
DEFINE FIELD IF NOT EXISTS created_at ON legacy_token TYPE datetime;
DEFINE INDEX IF NOT EXISTS legacy_token_folded ON legacy_token FIELDS folded;

DEFINE TABLE IF NOT EXISTS token_user SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS name ON token_user TYPE string;
DEFINE FIELD IF NOT EXISTS created_at ON token_user TYPE datetime;
DEFINE FIELD IF NOT EXISTS revoked_before ON token_user TYPE option<int>;

DEFINE TABLE IF NOT EXISTS account SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS name ON account TYPE string;
DEFINE FIELD IF NOT EXISTS email ON account TYPE string;
DEFINE FIELD IF NOT EXISTS password_hash ON account TYPE string;
DEFINE FIELD IF NOT EXISTS created_at ON account TYPE datetime DEFAULT time::now();

DEFINE TABLE IF NOT EXISTS channel_reg SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS name ON channel_reg TYPE string;
DEFINE FIELD IF NOT EXISTS founder ON channel_reg TYPE string;
DEFINE FIELD IF NOT EXISTS ops ON channel_reg TYPE array<string>;
DEFINE FIELD IF NOT EXISTS trusted ON channel_reg TYPE array<string>;
DEFINE FIELD IF NOT EXISTS topic ON channel_reg TYPE option<string>;
DEFINE FIELD IF NOT EXISTS topic_by ON channel_reg TYPE option<string>;
DEFINE FIELD IF NOT EXISTS topic_at ON channel_reg TYPE option<int>;
DEFINE FIELD IF NOT EXISTS bans ON channel_reg TYPE array<string>;
DEFINE FIELD IF NOT EXISTS flags ON channel_reg TYPE string;
DEFINE FIELD IF NOT EXISTS chan_key ON channel_reg TYPE option<string>;
DEFINE FIELD IF NOT EXISTS user_limit ON channel_reg TYPE option<int>;
DEFINE FIELD IF NOT EXISTS rev ON channel_reg TYPE int DEFAULT 0;
DEFINE FIELD IF NOT EXISTS created_at ON channel_reg TYPE datetime DEFAULT time::now();

DEFINE TABLE IF NOT EXISTS message SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS conv ON message TYPE string;
DEFINE FIELD IF NOT EXISTS mid ON message TYPE int;
DEFINE FIELD IF NOT EXISTS ts ON message TYPE int;
DEFINE FIELD IF NOT EXISTS sender ON message TYPE string;
DEFINE FIELD IF NOT EXISTS target ON message TYPE string;
DEFINE FIELD IF NOT EXISTS text ON message TYPE string;
DEFINE FIELD IF NOT EXISTS action ON message TYPE bool;
DEFINE INDEX IF NOT EXISTS message_conv ON message FIELDS conv, mid;
DEFINE INDEX IF NOT EXISTS message_ts ON message FIELDS ts;
"#;

/// How durable a write is once the store acknowledges it, for the startup log.
pub fn sync_mode(url: &str) -> String {
    if url.starts_with("mem:") {
        return "none: in memory, gone when the process stops".into();
    }
    if let Some(rest) = url.strip_prefix("surrealkv://") {
        let sync = rest
            .split_once('?')
            .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("sync=")).map(str::to_owned));
        return match sync.as_deref() {
            None | Some("every") => "every commit is fsynced before it is acknowledged".into(),
            Some(other) => format!("fsync on a timer ({other}): a crash may lose the last writes"),
        };
    }
    "decided by the SurrealDB server".into()
}

/// A handle on the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Surreal<Any>,
}

#[derive(Debug, SurrealValue)]
struct KeyRow {
    key: String,
}

impl Store {
    /// Connects, selects the `chattr` namespace and database, and defines the schema.
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_as(url, None).await
    }

    /// [`Store::open`], signing in as a root user first (for a SurrealDB server).
    pub async fn open_as(url: &str, root: Option<(String, String)>) -> Result<Self> {
        let db = connect(url).await.map_err(|source| {
            if source.to_string().contains("already locked") {
                StoreError::Locked(url.trim_start_matches("surrealkv://").to_owned())
            } else {
                StoreError::Open { url: url.to_owned(), source }
            }
        })?;
        if let Some((username, password)) = root {
            db.signin(surrealdb::opt::auth::Root { username, password }).await?;
        }
        db.use_ns("chattr").use_db("chattr").await?;
        db.query(SCHEMA).await?.check()?;
        Ok(Self { db })
    }

    /// The underlying database, for the submodules.
    fn db(&self) -> &Surreal<Any> {
        &self.db
    }

    /// Whether the database answers a trivial query within a second.
    pub async fn healthy(&self) -> bool {
        let probe = async { self.db.query("RETURN 1").await?.check() };
        matches!(tokio::time::timeout(Duration::from_secs(1), probe).await, Ok(Ok(_)))
    }

    /// The server's own secret key (for cloaks), created on first start and kept from then on.
    pub async fn server_key(&self) -> Result<[u8; 32]> {
        let fresh: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
        // INSERT IGNORE keeps an existing key; the SELECT then reads whichever key won.
        let mut res = self
            .db
            .query("INSERT IGNORE INTO server_key { id: 'cloak', key: $key }; SELECT key FROM ONLY server_key:cloak;")
            .bind(("key", fresh))
            .await?
            .check()?;
        let row: Option<KeyRow> = res.take(1)?;
        let hex = row.ok_or_else(|| StoreError::Corrupt("server key missing".into()))?.key;
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .filter_map(|i| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect();
        bytes.try_into().map_err(|_| StoreError::Corrupt("server key has the wrong length".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_server_key_is_created_once() {
        let store = Store::open("mem://").await.unwrap();
        let a = store.server_key().await.unwrap();
        let b = store.server_key().await.unwrap();
        assert_eq!(a, b);
        assert_ne!(a, [0; 32]);
    }

    #[tokio::test]
    async fn the_schema_can_be_defined_twice() {
        let store = Store::open("mem://").await.unwrap();
        store.db.query(SCHEMA).await.unwrap().check().unwrap();
        assert!(store.healthy().await);
    }
}

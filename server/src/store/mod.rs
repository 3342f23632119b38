//! Persistence in SurrealDB: embedded (`surrealkv://dir`, `mem://`) or a server (`ws://`).
//! The schema is defined at startup, idempotently; every statement's result is checked, not
//! just the query call. Records that must be unique per name (accounts, registered channels)
//! use the case-folded name as their record id, so the database itself refuses a second one
//! even when two registrations race.

mod accounts;
mod channels;
mod history;
mod opers;
mod tokens;
mod webhooks;

pub use accounts::{AccountName, AccountRecord};
pub use channels::ChannelRecord;
pub use history::{Conversation, StoredMessage};
pub use webhooks::WebhookDelivery;

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use surrealdb::engine::any::{connect, Any};
use surrealdb::types::SurrealValue;
use surrealdb::Surreal;
use tokio_util::sync::CancellationToken;

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
    #[error("the store failed a write earlier ({0}); nothing more is written until chattrd restarts")]
    Failed(String),
}

impl StoreError {
    /// The error a client gets: `unavailable` once the store has failed (nothing more is
    /// written until a restart), `internal` with `message` otherwise.
    pub fn to_protocol(&self, message: &str) -> app::protocol::ProtocolError {
        use app::protocol::{ErrorCode, ProtocolError};
        match self {
            StoreError::Failed(_) => ProtocolError::new(
                ErrorCode::Unavailable,
                "the server could not store this and is restarting; it may or may not have been saved",
            ),
            _ => ProtocolError::new(ErrorCode::Internal, message),
        }
    }

    /// Whether the failure was about the data (a duplicate, a conflict), not the store.
    pub fn is_about_the_data(&self) -> bool {
        matches!(self, StoreError::Query(e) if Self::is_benign(e))
    }

    /// Whether the error says something about the data or the request (a record that exists,
    /// a conflict to retry, a value the schema refuses), as opposed to the store itself
    /// failing (I/O, a full disk, a lost connection). Only the latter poison the store.
    fn is_benign(e: &surrealdb::Error) -> bool {
        let text = e.to_string().to_ascii_lowercase();
        e.is_already_exists()
            || e.is_validation()
            || text.contains("already exists")
            || text.contains("conflict")
            || text.contains("can be retried")
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A query's answer checked for its statements' errors, reporting the cause. When a
/// transaction fails (a write conflict with another node on a shared SurrealDB server, a failed
/// commit), every statement in it reads "not executed" and the cause is on another statement
/// (the `COMMIT`): that one is the error, so a conflict is told from a failing store.
pub(crate) trait Checked: Sized {
    fn checked(self) -> surrealdb::Result<Self>;
}

impl Checked for surrealdb::IndexedResults {
    fn checked(mut self) -> surrealdb::Result<Self> {
        let mut errors: Vec<(usize, surrealdb::Error)> = self.take_errors().into_iter().collect();
        if errors.is_empty() {
            return Ok(self);
        }
        errors.sort_by_key(|(index, _)| *index);
        let not_executed =
            |e: &surrealdb::Error| e.query_details() == Some(&surrealdb::types::QueryError::NotExecuted);
        let cause = match errors.iter().position(|(_, e)| !not_executed(e)) {
            Some(i) => errors.swap_remove(i),
            None => errors.swap_remove(0),
        };
        Err(cause.1)
    }
}

impl StoreError {
    /// Whether another transaction wrote the same data first: the write may be tried again.
    pub(crate) fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Query(e)
            if e.query_details() == Some(&surrealdb::types::QueryError::TransactionConflict)
                || e.to_string().to_ascii_lowercase().contains("can be retried"))
    }
}

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
DEFINE FIELD IF NOT EXISTS uid ON account TYPE option<string>;

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

DEFINE TABLE IF NOT EXISTS webhook_pending SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS url ON webhook_pending TYPE string;
DEFINE FIELD IF NOT EXISTS body ON webhook_pending TYPE string;
DEFINE FIELD IF NOT EXISTS attempts ON webhook_pending TYPE int;
DEFINE FIELD IF NOT EXISTS error ON webhook_pending TYPE option<string>;
DEFINE FIELD IF NOT EXISTS at ON webhook_pending TYPE datetime;
DEFINE TABLE IF NOT EXISTS webhook_dead SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS url ON webhook_dead TYPE string;
DEFINE FIELD IF NOT EXISTS body ON webhook_dead TYPE string;
DEFINE FIELD IF NOT EXISTS attempts ON webhook_dead TYPE int;
DEFINE FIELD IF NOT EXISTS error ON webhook_dead TYPE option<string>;
DEFINE FIELD IF NOT EXISTS at ON webhook_dead TYPE datetime;

-- Messages, as history:[conversation, -id] (see store/history.rs): no index beside them.
DEFINE TABLE IF NOT EXISTS history SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS ts ON history TYPE int;
DEFINE FIELD IF NOT EXISTS sender ON history TYPE string;
DEFINE FIELD IF NOT EXISTS target ON history TYPE string;
DEFINE FIELD IF NOT EXISTS text ON history TYPE string;
DEFINE FIELD IF NOT EXISTS action ON history TYPE bool;
DEFINE FIELD IF NOT EXISTS bot ON history TYPE option<bool>;
-- conversation:[day, conversation]: the conversations with messages of each day, for pruning.
DEFINE TABLE IF NOT EXISTS conversation SCHEMAFULL;

DEFINE TABLE IF NOT EXISTS kline SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS mask ON kline TYPE string;
DEFINE FIELD IF NOT EXISTS reason ON kline TYPE option<string>;
DEFINE FIELD IF NOT EXISTS by ON kline TYPE string;
DEFINE FIELD IF NOT EXISTS at ON kline TYPE int;
DEFINE FIELD IF NOT EXISTS expires ON kline TYPE option<int>;

DEFINE TABLE IF NOT EXISTS oper_pin SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS name ON oper_pin TYPE string;
DEFINE FIELD IF NOT EXISTS key ON oper_pin TYPE string;

DEFINE TABLE IF NOT EXISTS oper_audit SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS at ON oper_audit TYPE int;
DEFINE FIELD IF NOT EXISTS oper ON oper_audit TYPE string;
DEFINE FIELD IF NOT EXISTS nick ON oper_audit TYPE string;
DEFINE FIELD IF NOT EXISTS action ON oper_audit TYPE string;
DEFINE FIELD IF NOT EXISTS target ON oper_audit TYPE string;
DEFINE FIELD IF NOT EXISTS reason ON oper_audit TYPE option<string>;
DEFINE FIELD IF NOT EXISTS from ON oper_audit TYPE string;
DEFINE INDEX IF NOT EXISTS oper_audit_at ON oper_audit FIELDS at;

DEFINE TABLE IF NOT EXISTS store_meta SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS high ON store_meta TYPE option<int>;
"#;

/// Longest a single write may take before the store counts as failed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

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

/// The data directory of an embedded on-disk store (`surrealkv://<dir>[?options]`).
fn surrealkv_dir(url: &str) -> Option<&Path> {
    let rest = url.strip_prefix("surrealkv://")?;
    Some(Path::new(rest.split_once('?').map_or(rest, |(dir, _)| dir)))
}

/// Lets surrealkv recover an existing data directory on its own, and close it cleanly, before
/// SurrealDB opens it.
///
/// surrealkv 0.21.4 opens its active write-ahead log before it repairs a damaged one, and the
/// repair then replaces that file: the process that ran the repair writes into a deleted file,
/// and a crash before its first memtable flush loses everything it acknowledged. A failed
/// repair also leaves `wal/repair_temp/` behind for the next one to trip on. So any repair
/// happens here, in a handle whose data a clean close then writes into an SST, and SurrealDB
/// starts on an intact log. See `docs/surrealkv-disk-full.md`.
async fn recover_surrealkv(dir: &Path) -> Result<()> {
    if !dir.join("wal").exists() {
        return Ok(());
    }
    let failed = |what: &str, e: surrealkv::Error| {
        let text = e.to_string();
        if text.contains("locked") {
            StoreError::Locked(dir.display().to_string())
        } else {
            StoreError::Corrupt(format!("{what} {}: {text}", dir.display()))
        }
    };
    let stale = dir.join("wal").join("repair_temp");
    // Only while holding the directory's lock: a running chattrd may be repairing right now.
    let lock = std::fs::File::open(dir.join("LOCK")).ok();
    if lock.as_ref().is_some_and(|f| f.try_lock().is_err()) {
        return Err(StoreError::Locked(dir.display().to_string()));
    }
    if stale.exists() {
        tracing::warn!(path = %stale.display(), "removing what an interrupted WAL repair left behind");
        std::fs::remove_dir_all(&stale)
            .map_err(|e| StoreError::Corrupt(format!("cannot remove {}: {e}", stale.display())))?;
    }
    drop(lock);
    // The options SurrealDB 3.3.5 opens `surrealkv://` with (surrealdb-kvs-surrealkv), at the
    // smallest memory tier: they shape the files, and recovery must read them the same way.
    let tree = surrealkv::TreeBuilder::new()
        .with_enable_vlog(true)
        .with_vlog_max_file_size(64 << 20)
        .with_vlog_value_threshold(4 << 10)
        .with_versioning(false, 0)
        .with_versioned_index(false)
        .with_max_memtable_size(64 << 20)
        .with_block_cache_capacity(16 << 20)
        .with_block_size(64 << 10)
        .with_path(dir.to_path_buf())
        .build()
        .map_err(|e| failed("cannot recover the store at", e))?;
    tree.close().await.map_err(|e| failed("cannot close the recovered store at", e))?;
    // Dropping a closed tree would close it again in a background task, racing SurrealDB's
    // open of the same directory; what it holds after a clean close is small, so keep it.
    std::mem::forget(tree);
    Ok(())
}

/// Loads a dump [`Store::export`] wrote into the empty embedded store at `url`, as it is: the
/// schema a later open defines is already in it. Runs no recovery and defines nothing first, so
/// the store holds exactly what the dump does.
pub async fn import_dump(url: &str, dump: &Path) -> Result<()> {
    let db = connect_to(url).await?;
    db.use_ns("chattr").use_db("chattr").await?;
    db.import(dump).await?;
    Ok(())
}

/// The dump of the embedded store at `url`, which no process holds, as [`Store::export`] makes
/// it: opened after the usual recovery, with no schema defined (a backup changes nothing), and
/// closed once the dump has been read.
pub async fn export_unopened(
    url: &str,
) -> Result<impl futures::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static> {
    use futures::StreamExt;
    if let Some(dir) = surrealkv_dir(url) {
        recover_surrealkv(dir).await?;
    }
    let db = connect_to(url).await?;
    db.use_ns("chattr").use_db("chattr").await?;
    let backup = db.export(()).await?;
    // The handle lives as long as the stream: dropping the last one closes the engine.
    Ok(backup.map(move |chunk| {
        let _open = &db;
        chunk.map_err(|e| std::io::Error::other(e.to_string()))
    }))
}

/// Connects to the store at `url`; a data directory another process holds is `Locked`.
async fn connect_to(url: &str) -> Result<Surreal<Any>> {
    connect(url).await.map_err(|source| {
        if source.to_string().contains("already locked") {
            StoreError::Locked(url.trim_start_matches("surrealkv://").to_owned())
        } else {
            StoreError::Open { url: url.to_owned(), source }
        }
    })
}

/// Whether the embedded data directory of `url` is held by a running process (`None` for
/// stores without one).
pub fn in_use(url: &str) -> Option<bool> {
    surrealkv_dir(url).map(held)
}

/// Whether an open engine holds the directory: it keeps an exclusive flock on `LOCK`.
fn held(dir: &Path) -> bool {
    std::fs::File::open(dir.join("LOCK")).is_ok_and(|f| f.try_lock().is_err())
}

/// The data directory of an embedded on-disk store.
pub fn data_dir(url: &str) -> Option<&Path> {
    surrealkv_dir(url)
}

/// Waits, up to `within`, until the embedded engine at `url` has closed: SurrealDB closes it in
/// a task of its own once the last handle is dropped, and the engine releases its lock on the
/// directory last. A process that exits before then leaves its log unclosed (and the engine
/// logs errors as the runtime goes away under it). Answers whether it closed in time; stores
/// other than `surrealkv://` have nothing to wait for.
pub async fn wait_closed(url: &str, within: Duration) -> bool {
    let Some(dir) = surrealkv_dir(url) else { return true };
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if !held(dir) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A handle on the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// One session of the database for every clone of the store: a clone of the SDK's handle
    /// is a session of its own, which on a server (`ws://`) signs in again — an argon2 hash
    /// of the root password on the server for every write — and is ended when dropped.
    db: Arc<Surreal<Any>>,
    health: Arc<Health>,
    /// The mark on message ids this process has stored (see `Store::append_messages`): ids at
    /// or below it are taken. 0 until it stores one.
    ids_marked: Arc<std::sync::atomic::AtomicI64>,
    /// The conversations' days whose record this process has stored (see
    /// `Store::append_messages`).
    conversations: Arc<std::sync::Mutex<std::collections::HashSet<(i64, String)>>>,
}

/// Whether the store can still be trusted with writes.
///
/// An embedded engine whose write or sync failed (a full disk, an I/O error) may have left a
/// torn record in its log; later commits that succeed are written after it and are dropped by
/// recovery (see `docs/surrealkv-disk-full.md`). So the first such failure poisons the store:
/// no write is attempted, and so nothing is acknowledged, until the process has restarted and
/// recovery has run. Writes go through one gate, one at a time, so no write can commit after a
/// failed one without seeing the failure first.
#[derive(Default)]
struct Health {
    gate: tokio::sync::Mutex<()>,
    failure: OnceLock<String>,
    failed: CancellationToken,
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
        if let Some(dir) = surrealkv_dir(url) {
            recover_surrealkv(dir).await?;
        }
        let db = connect_to(url).await?;
        if let Some((username, password)) = root {
            db.signin(surrealdb::opt::auth::Root { username, password }).await?;
        }
        db.use_ns("chattr").use_db("chattr").await?;
        db.query(SCHEMA).await?.checked()?;
        let store = Self {
            db: Arc::new(db),
            health: Arc::default(),
            ids_marked: Arc::default(),
            conversations: Arc::default(),
        };
        store.move_old_messages().await?;
        Ok(store)
    }

    /// Holds every write back until the guard is dropped (the writes wait their turn).
    #[cfg(test)]
    pub(crate) async fn hold_writes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.health.gate.lock().await
    }

    /// Marks the store failed, as a failed write would.
    #[cfg(test)]
    pub(crate) fn fail_for_test(&self, why: &str) {
        self.fail(why);
    }

    /// Runs one write (any number of statements) through the write gate: refused once the
    /// store has failed, and failing the store when the write fails in a way that is not about
    /// the data. The write runs in a task of its own, so a caller that gives up (a request
    /// timed out, a session ended) never leaves a write half-watched: every write's outcome is
    /// seen, and the gate stays shut until it is.
    async fn write<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let store = self.clone();
        tokio::spawn(async move { store.gated(work).await })
            .await
            .map_err(|e| StoreError::Failed(format!("a write task ended abnormally: {e}")))?
    }

    async fn gated<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let _turn = self.health.gate.lock().await;
        if let Some(why) = self.health.failure.get() {
            return Err(StoreError::Failed(why.clone()));
        }
        // A write that hangs (a SurrealDB server that stopped answering) would hold the gate
        // forever; after this long it counts as failed.
        let Ok(result) = tokio::time::timeout(WRITE_TIMEOUT, work).await else {
            let why = format!("a write did not finish within {WRITE_TIMEOUT:?}");
            self.fail(&why);
            return Err(StoreError::Failed(why));
        };
        if let Err(e) = &result {
            let fatal = match e {
                StoreError::Query(q) => !StoreError::is_benign(q),
                StoreError::Corrupt(_) => false,
                _ => true,
            };
            if fatal {
                let why = e.to_string();
                self.fail(&why);
                return Err(StoreError::Failed(why));
            }
        }
        result
    }

    /// Marks the store failed: every later write is refused.
    fn fail(&self, why: &str) {
        if self.health.failure.set(why.to_owned()).is_ok() {
            tracing::error!(
                error = why,
                "the store failed a write: acknowledging nothing more; restart chattrd so that recovery runs"
            );
        }
        self.health.failed.cancel();
    }

    /// Why the store failed, once it has.
    pub fn failure(&self) -> Option<&str> {
        self.health.failure.get().map(String::as_str)
    }

    /// Resolves once the store has failed.
    pub async fn failed(&self) {
        self.health.failed.cancelled().await;
    }

    /// The underlying database, for the submodules.
    fn db(&self) -> &Surreal<Any> {
        &self.db
    }

    /// Whether the database answers a trivial query within a second and has not failed a write.
    pub async fn healthy(&self) -> bool {
        if self.failure().is_some() {
            return false;
        }
        let probe = async { self.db.query("RETURN 1").await?.checked() };
        matches!(tokio::time::timeout(Duration::from_secs(1), probe).await, Ok(Ok(_)))
    }

    /// The whole database as SurrealQL (its definitions and every record), read in one
    /// transaction: a consistent copy, taken while writes go on. Embedded stores only: the SDK
    /// cannot export over `ws://`.
    pub async fn export(
        &self,
    ) -> Result<impl futures::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static> {
        use futures::StreamExt;
        let backup = self.db.export(()).await?;
        Ok(backup.map(|chunk| chunk.map_err(|e| std::io::Error::other(e.to_string()))))
    }

    /// The server's own secret key (for cloaks), created on first start and kept from then on.
    pub async fn server_key(&self) -> Result<[u8; 32]> {
        let store = self.clone();
        self.write(async move {
            let fresh: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
            // INSERT IGNORE keeps an existing key; the SELECT then reads whichever key won.
            let mut res = store
                .db
                .query(
                    "INSERT IGNORE INTO server_key { id: 'cloak', key: $key };
                 SELECT key FROM ONLY server_key:cloak;",
                )
                .bind(("key", fresh))
                .await?
                .checked()?;
            let row: Option<KeyRow> = res.take(1)?;
            let hex = row.ok_or_else(|| StoreError::Corrupt("server key missing".into()))?.key;
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .filter_map(|i| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect();
            bytes.try_into().map_err(|_| StoreError::Corrupt("server key has the wrong length".into()))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every clone of the store uses one session of the database: a session of its own each
    /// would sign in to a SurrealDB server again (an argon2 hash there) for every write.
    #[tokio::test]
    async fn clones_of_the_store_share_one_database_session() {
        let store = Store::open("mem://").await.unwrap();
        let clone = store.clone();
        clone.db().set("probe", 7).await.unwrap();
        let mut seen = store.db().query("RETURN $probe").await.unwrap();
        let seen: Option<i64> = seen.take(0).unwrap();
        assert_eq!(seen, Some(7), "what a clone set is the original's session's");
    }

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
        store.db.query(SCHEMA).await.unwrap().checked().unwrap();
        assert!(store.healthy().await);
    }
}

//! `chattrd backup <file>` and `chattrd restore <file>`: the store as a SurrealQL dump
//! (SurrealDB's export), and back.
//!
//! Only one process may open an embedded data directory, so a backup of a running server is
//! taken by that server: the command asks it (`GET /api/backup` with the shared secret) and
//! writes what it streams. When no server holds the directory, the command opens the store
//! itself. Either way the dump is read in one transaction (a consistent copy while chats go on)
//! and written to `<file>.partial`, synced, then renamed: a file named `<file>` is always a
//! whole backup.
//!
//! A restore fills an empty data directory from a dump, with the server stopped; it refuses a
//! directory holding data (move it aside first), and removes what it wrote if the dump does not
//! load, so a failed restore leaves nothing half-loaded behind.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use crate::store::{self, Store, StoreError};
use crate::Config;

/// Why a backup or a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
    #[error("the running chattrd at {addr} did not give a backup: {why}")]
    Server { addr: String, why: String },
    #[error("reading the store's dump failed: {0}")]
    Read(std::io::Error),
    #[error("{0}")]
    Refused(String),
}

fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::File { path: path.to_owned(), source }
}

/// Writes a backup of the store `config` names to `file`; answers its size in bytes.
pub async fn backup(config: &Config, file: &Path) -> Result<u64, BackupError> {
    let url = config.db.as_str();
    if url.starts_with("ws://") || url.starts_with("wss://") {
        return Err(BackupError::Refused(
            "a SurrealDB server's data is backed up with its own tool: `surreal export --ns chattr --db chattr`"
                .into(),
        ));
    }
    match store::in_use(url) {
        // Nobody holds the directory: read it here.
        Some(false) => {
            let dir = store::data_dir(url).unwrap_or(Path::new("."));
            if !dir.join("LOCK").exists() {
                return Err(BackupError::Refused(format!("there is no store at {}", dir.display())));
            }
            let store = Store::open(url).await?;
            let written = write_dump(file, store.export().await?).await;
            drop(store);
            store::wait_closed(url, config.shutdown_grace).await;
            written
        }
        // A running chattrd holds it (or it lives in that process's memory): ask it.
        Some(true) | None => from_server(config, file).await,
    }
}

/// Asks the running chattrd for its backup.
async fn from_server(config: &Config, file: &Path) -> Result<u64, BackupError> {
    let addr = loopback_if_unspecified(config.addr);
    let failed = |why: String| BackupError::Server { addr: addr.to_string(), why };
    let Some(secret) = config.shared_secret.as_deref().filter(|s| !s.is_empty()) else {
        return Err(failed("it is asked with CHATTR_SHARED_SECRET, which is not set here".into()));
    };
    let response = reqwest::Client::new()
        .get(format!("http://{addr}/api/backup"))
        .bearer_auth(secret)
        .send()
        .await
        .map_err(|e| failed(format!("{e} (is it running, on CHATTR_ADDR?)")))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(failed(format!("{status}: {}", body.trim())));
    }
    let chunks =
        response.bytes_stream().map(|chunk| chunk.map(|b| b.to_vec()).map_err(std::io::Error::other));
    write_dump(file, chunks).await
}

/// Where to reach a server listening on `addr` from this machine.
fn loopback_if_unspecified(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

/// Writes `chunks` to `<file>.partial`, syncs it and renames it to `file`; answers the size.
/// On any failure the partial file is removed and `file` is untouched.
async fn write_dump(
    file: &Path,
    chunks: impl Stream<Item = std::io::Result<Vec<u8>>>,
) -> Result<u64, BackupError> {
    let mut partial = file.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let written = async {
        let mut out = tokio::fs::File::create(&partial).await.map_err(file_error(&partial))?;
        let mut size = 0u64;
        futures::pin_mut!(chunks);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(BackupError::Read)?;
            out.write_all(&chunk).await.map_err(file_error(&partial))?;
            size += chunk.len() as u64;
        }
        out.sync_all().await.map_err(file_error(&partial))?;
        if size == 0 {
            return Err(BackupError::Refused("the store gave an empty backup".into()));
        }
        tokio::fs::rename(&partial, file).await.map_err(file_error(file))?;
        Ok(size)
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    written
}

/// Loads the backup `file` into the empty store `config` names.
pub async fn restore(config: &Config, file: &Path) -> Result<(), BackupError> {
    let url = config.db.as_str();
    let Some(dir) = store::data_dir(url) else {
        return Err(BackupError::Refused(if url.starts_with("mem:") {
            "a restore needs an on-disk store (CHATTR_DB=surrealkv://<dir>); mem:// is gone when its process ends".into()
        } else {
            "a SurrealDB server is restored with its own tool: `surreal import --ns chattr --db chattr`"
                .into()
        }));
    };
    tokio::fs::metadata(file).await.map_err(file_error(file))?;
    if store::in_use(url) == Some(true) {
        return Err(BackupError::Refused(format!(
            "{} is in use by a running chattrd: stop it first",
            dir.display()
        )));
    }
    let created = match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::Refused(format!(
                    "{} already holds data: restore into an empty or new directory (move this one aside)",
                    dir.display()
                )));
            }
            false
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(file_error(dir)(e)),
    };
    let loaded = store::import_dump(url, file).await;
    store::wait_closed(url, config.shutdown_grace).await;
    if let Err(e) = loaded {
        // Nothing half-loaded stays behind: the directory goes back to how it was (empty).
        let emptied = if created { std::fs::remove_dir_all(dir) } else { empty_dir(dir) };
        if let Err(cleanup) = emptied {
            tracing::warn!(dir = %dir.display(), error = %cleanup, "could not remove a failed restore");
        }
        return Err(e.into());
    }
    Ok(())
}

fn empty_dir(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

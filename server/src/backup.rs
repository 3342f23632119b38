//! `chattrd backup <file>` and `chattrd restore <file>`: the store as a SurrealQL dump
//! (SurrealDB's export), and back.
//!
//! Only one process may open an embedded data directory, so a backup of a running server is
//! taken by that server: the command asks it (`GET /api/backup`) and writes what it streams.
//! The request carries the server's backup token, which the server writes into its data
//! directory at every start (`backup.token`, readable by its user alone): whoever may read the
//! data directory may read a backup of it, and nobody else — not even an app holding the shared
//! secret, since a dump holds password hashes, stored tokens and the cloaking key. When no
//! server holds the directory, the command reads the store itself. Either way the dump is read
//! in one transaction (a consistent copy while chats go on), written to a new file of its own
//! (mode 0600) next to `<file>`, synced, then renamed: a file named `<file>` is always a whole
//! backup.
//!
//! A restore loads a dump into a new directory beside the target, then renames it onto the
//! target, which must be missing or empty: the rename fails if anything appeared there in the
//! meantime (a server that started), and a dump that does not load leaves only its own
//! directory to remove. The target is never written to or deleted from.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use crate::store::{self, StoreError};
use crate::Config;

/// The file in an embedded store's data directory holding the running server's backup token.
pub(crate) const TOKEN_FILE: &str = "backup.token";

/// How long the command waits to reach the running server (not for the whole backup).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a backup or a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(Box<StoreError>),
    #[error("{path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
    #[error("the running chattrd at {addr} did not give a backup: {why}")]
    Server { addr: String, why: String },
    #[error("reading the store's dump failed: {0}")]
    Read(std::io::Error),
    #[error("{0}")]
    Refused(String),
}

impl From<StoreError> for BackupError {
    fn from(e: StoreError) -> Self {
        Self::Store(Box::new(e))
    }
}

fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::File { path: path.to_owned(), source }
}

/// Makes the backup token of a server starting on the embedded store at `url`, and writes it
/// into the data directory for `chattrd backup` to read; `None` for other stores (no live
/// backup over HTTP for them).
pub(crate) fn issue_token(url: &str) -> std::io::Result<Option<String>> {
    let Some(dir) = store::data_dir(url) else { return Ok(None) };
    let token: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
    let path = dir.join(TOKEN_FILE);
    let staged = dir.join(format!(".{TOKEN_FILE}.{}", std::process::id()));
    let _ = std::fs::remove_file(&staged);
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&staged)?;
    std::io::Write::write_all(&mut file, token.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&staged, &path)?;
    Ok(Some(token))
}

/// The data directory of the embedded on-disk store `url` names; other stores are refused,
/// a SurrealDB server pointed to its own tool (`surreal export` or `import`).
fn embedded_dir<'a>(url: &'a str, server_tool: &str) -> Result<&'a Path, BackupError> {
    store::data_dir(url).ok_or_else(|| {
        BackupError::Refused(if url.starts_with("mem:") {
            "a mem:// store lives and dies with its process: back up and restore an on-disk one (CHATTR_DB=surrealkv://<dir>)".into()
        } else {
            format!("a SurrealDB server's data is handled by its own tool: `surreal {server_tool} --ns chattr --db chattr`")
        })
    })
}

/// Writes a backup of the store `config` names to `file`; answers its size in bytes.
pub async fn backup(config: &Config, file: &Path) -> Result<u64, BackupError> {
    let url = config.db.as_str();
    let dir = embedded_dir(url, "export")?;
    if store::in_use(url) == Some(true) {
        return from_server(config, dir, file).await;
    }
    // Nobody holds the directory: read it here. (A chattrd starting meanwhile finds it locked
    // and stops; its supervisor starts it again.)
    if !dir.join("LOCK").exists() {
        return Err(BackupError::Refused(format!("there is no store at {}", dir.display())));
    }
    let dump = store::export_unopened(url).await?;
    let written = write_dump(file, dump).await;
    store::wait_closed(url, config.shutdown_grace).await;
    written
}

/// Asks the running chattrd for its backup, with the token it wrote into `dir`.
async fn from_server(config: &Config, dir: &Path, file: &Path) -> Result<u64, BackupError> {
    let addr = loopback_if_unspecified(config.addr);
    let token_file = dir.join(TOKEN_FILE);
    let token = std::fs::read_to_string(&token_file).map_err(|e| {
        BackupError::Refused(format!(
            "a running chattrd holds {}, and its backup token {} cannot be read ({e}): run this as the server's user",
            dir.display(),
            token_file.display()
        ))
    })?;
    let failed = |why: String| BackupError::Server { addr: addr.to_string(), why };
    let mut client = reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT);
    // A server that stops sending (its store stuck) fails the backup instead of holding the
    // command for ever: the same limit the server puts on a client that stops reading.
    if !config.send_timeout.is_zero() {
        client = client.read_timeout(config.send_timeout);
    }
    let scheme = match &config.tls_cert {
        // The server's own certificate is what it must present, whatever name it is for.
        Some(cert) => {
            let pem = std::fs::read(cert).map_err(file_error(cert))?;
            let chain = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| failed(e.to_string()))?;
            client = chain
                .into_iter()
                .fold(client.tls_built_in_root_certs(false), reqwest::ClientBuilder::add_root_certificate)
                .danger_accept_invalid_hostnames(true);
            "https"
        }
        None => "http",
    };
    let response = client
        .build()
        .map_err(|e| failed(e.to_string()))?
        .get(format!("{scheme}://{addr}/api/backup"))
        .bearer_auth(token.trim())
        .send()
        .await
        .map_err(|e| failed(format!("{e} (is it listening on CHATTR_ADDR?)")))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(failed(format!("{status}: {}", body.trim())));
    }
    let chunks = response
        .bytes_stream()
        .map(|chunk| chunk.map(|b| b.to_vec()).map_err(|e| std::io::Error::other(with_causes(&e))));
    write_dump(file, chunks).await
}

/// An error and what caused it, `a: b: c` (reqwest says "error decoding response body" for a
/// read that timed out, and why only in its source).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// Where to reach a server listening on `addr` from this machine.
fn loopback_if_unspecified(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

/// Writes `chunks` to a new file of this run's own beside `file` (readable by this user alone,
/// never an existing file or a link), syncs it, renames it to `file` and syncs the directory;
/// answers the size. On any failure the new file is removed and `file` is untouched.
async fn write_dump(
    file: &Path,
    chunks: impl Stream<Item = std::io::Result<Vec<u8>>>,
) -> Result<u64, BackupError> {
    let mut partial = file.as_os_str().to_owned();
    partial.push(format!(".{}.partial", std::process::id()));
    let partial = PathBuf::from(partial);
    let written = async {
        let mut out = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .await
            .map_err(file_error(&partial))?;
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
    match written {
        Ok(size) => {
            sync_parent(file)?;
            Ok(size)
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            Err(e)
        }
    }
}

/// Makes a rename in `path`'s directory durable.
fn sync_parent(path: &Path) -> Result<(), BackupError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(parent).and_then(|d| d.sync_all()).map_err(file_error(parent))
}

/// Loads the backup `file` into the store `config` names, which must be missing or empty.
pub async fn restore(config: &Config, file: &Path) -> Result<(), BackupError> {
    let url = config.db.as_str();
    let dir = embedded_dir(url, "import")?;
    tokio::fs::metadata(file).await.map_err(file_error(file))?;
    if store::in_use(url) == Some(true) {
        return Err(BackupError::Refused(format!(
            "{} is in use by a running chattrd: stop it first",
            dir.display()
        )));
    }
    let occupied = || {
        BackupError::Refused(format!(
            "{} already holds data: restore into an empty or new directory (move this one aside)",
            dir.display()
        ))
    };
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(occupied());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(file_error(dir)(e)),
    }
    // Loaded beside the target, then renamed onto it.
    let name = dir.file_name().map_or_else(|| "store".into(), |n| n.to_string_lossy().into_owned());
    let staging = dir.with_file_name(format!(".{name}.restoring-{}", std::process::id()));
    let staging_url = format!("surrealkv://{}", staging.display());
    if staging.exists() {
        return Err(BackupError::Refused(format!("{} is in the way: remove it", staging.display())));
    }
    let loaded = store::import_dump(&staging_url, file).await;
    store::wait_closed(&staging_url, config.shutdown_grace).await;
    let placed = loaded.map_err(BackupError::from).and_then(|()| {
        // Replaces a missing or empty target; fails, leaving it be, if anything is in it now.
        std::fs::rename(&staging, dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::DirectoryNotEmpty | std::io::ErrorKind::AlreadyExists => occupied(),
            _ => file_error(dir)(e),
        })?;
        sync_parent(dir)
    });
    if placed.is_err() && staging.exists() {
        if let Err(e) = std::fs::remove_dir_all(&staging) {
            tracing::warn!(dir = %staging.display(), error = %e, "could not remove a failed restore");
        }
    }
    placed
}

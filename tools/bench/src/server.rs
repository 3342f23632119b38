//! A chattrd the benchmark starts for itself: on a free port, with a fresh store, flood control
//! and the per-address connection limits out of the way (every client connects from
//! 127.0.0.1), and what it cost (CPU time, peak memory) read from `/proc`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::wire::Protocol;

/// Linux reports CPU times in `/proc/<pid>/stat` in clock ticks of this length.
const TICKS_PER_SECOND: f64 = 100.0;

pub(crate) struct Spawned {
    child: Child,
    pub addr: String,
    data_dir: PathBuf,
}

/// With `--pin`: the server's CPU, and the generator's.
const SERVER_CPU: &str = "0";
pub(crate) const GENERATOR_CPU: &str = "1";

/// The shared secret of a spawned server: the benchmark asks it who is online.
pub(crate) const SECRET: &str = "chattr-bench-secret";

/// CPU time used so far, and the resident memory now and at its peak, from `/proc`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Usage {
    pub cpu: Duration,
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
}

/// What process `pid` (`self` for this one) has used so far.
pub(crate) fn usage_of(pid: &str) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some(Usage {
        cpu: Duration::from_secs_f64(ticks as f64 / TICKS_PER_SECOND),
        rss_kib: kib("VmRSS:")?,
        peak_rss_kib: kib("VmHWM:")?,
    })
}

/// A message filter that accepts everything after `delay`; answers its URL.
async fn accepting_filter(delay: Duration) -> Result<String, String> {
    use axum::routing::post;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let url = format!("http://{}/filter", listener.local_addr().map_err(|e| e.to_string())?);
    let accept = move || async move {
        tokio::time::sleep(delay).await;
        axum::Json(serde_json::json!({"action":"accept"}))
    };
    let app = axum::Router::new().route("/filter", post(accept));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

impl Spawned {
    /// Starts `binary` with the store `store` (`disk`: surrealkv in a temporary directory, with
    /// its default fsync on every commit; `mem`: in memory) and waits for it to listen. For the
    /// Socket.IO protocol, `binary` is the peer's script, run with `node` on a free port.
    pub(crate) async fn start(
        binary: &Path,
        store: &str,
        filter: Option<Duration>,
        protocol: Protocol,
        pin: bool,
    ) -> Result<Self, String> {
        // Pinned, the server runs on CPU 0 only (`taskset` execs it: same process).
        let program = |program: &dyn AsRef<std::ffi::OsStr>| {
            if pin {
                let mut command = Command::new("taskset");
                command.args(["-c", SERVER_CPU]).arg(program);
                command
            } else {
                Command::new(program)
            }
        };
        let data_dir = std::env::temp_dir().join(format!("chattr-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        let db = match store {
            "mem" => "mem://".to_owned(),
            _ => format!("surrealkv://{}", data_dir.display()),
        };
        if protocol == Protocol::Socketio {
            let mut node = program(&"node");
            node.arg(binary).env("PORT", "0");
            return Self::listening(node, data_dir).await;
        }
        let mut command = program(&binary);
        command.env("CHATTR_SHARED_SECRET", SECRET);
        if let Some(delay) = filter {
            command
                .env("CHATTR_MESSAGE_FILTER_URL", accepting_filter(delay).await?)
                .env("CHATTR_MESSAGE_FILTER_FAIL", "closed");
        }
        command
            .env("CHATTR_ADDR", "127.0.0.1:0")
            .env("CHATTR_DB", db)
            .env("CHATTR_GUESTS", "true")
            .env("CHATTR_FLOOD_BURST", "1000000")
            .env("CHATTR_FLOOD_RATE", "1000000")
            .env("CHATTR_MAX_CONNS_PER_IP", "0")
            .env("CHATTR_CONN_RATE_PER_IP", "0")
            .env("CHATTR_LOG", "info");
        Self::listening(command, data_dir).await
    }

    /// Runs `command` and waits until it says where it listens (`… addr=<host:port>`).
    async fn listening(mut command: Command, data_dir: PathBuf) -> Result<Self, String> {
        let program = format!("{:?}", command.as_std().get_program());
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let mut lines =
            BufReader::new(child.stdout.take().ok_or("the server's output is not piped")?).lines();
        let wait = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.contains("listening").then(|| line.split("addr=").nth(1)).flatten() {
                    return Some(addr.split_whitespace().next().unwrap_or_default().to_owned());
                }
            }
            None
        });
        let addr = wait.await.ok().flatten().ok_or(format!("{program} did not start listening"))?;
        // Keep reading its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { child, addr, data_dir })
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// What the server has used so far, when `/proc` can tell.
    pub(crate) fn usage(&self) -> Option<Usage> {
        usage_of(&self.child.id()?.to_string())
    }

    /// SIGTERM, wait for the exit, and remove the data directory.
    pub(crate) async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

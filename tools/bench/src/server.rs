//! A chattrd the benchmark starts for itself: on a free port, with a fresh store, flood control
//! and the per-address connection limits out of the way (every client connects from
//! 127.0.0.1), and what it cost (CPU time, peak memory) read from `/proc`. Or a cluster of
//! them, with the `redis-server` and the SurrealDB server they share.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::wire::Protocol;

/// Linux reports CPU times in `/proc/<pid>/stat` in clock ticks of this length.
const TICKS_PER_SECOND: f64 = 100.0;

pub(crate) struct Spawned {
    /// The server (each node of a cluster), then what a cluster shares (Redis, SurrealDB).
    children: Vec<Child>,
    /// Where it listens; a cluster's nodes, comma-separated.
    pub addr: String,
    data_dir: PathBuf,
    /// A cluster's Redis port.
    redis: Option<u16>,
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
    /// Write system calls made through the file layer (`syscw` of /proc/PID/io: `write` and
    /// `writev` to sockets and files alike, so the disk store's log too; not `send`/`sendto`),
    /// when the process may be read so (it is this user's).
    pub writes: Option<u64>,
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
        writes: std::fs::read_to_string(format!("/proc/{pid}/io"))
            .ok()
            .and_then(|io| io.lines().find_map(|l| l.strip_prefix("syscw:")?.trim().parse().ok())),
    })
}

/// The machine's CPU time so far, from the first line of /proc/stat: what the hypervisor gave
/// to others (steal) and the whole, in ticks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostTimes {
    pub steal: u64,
    pub total: u64,
}

pub(crate) fn host_times() -> Option<HostTimes> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|t| t.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user and nice).
    Some(HostTimes { steal: *ticks.get(7)?, total: ticks.iter().take(8).sum() })
}

/// The share of the machine's CPU time (%) the hypervisor gave to others between two readings.
pub(crate) fn steal_between(before: HostTimes, after: HostTimes) -> f64 {
    let total = after.total.saturating_sub(before.total).max(1);
    after.steal.saturating_sub(before.steal) as f64 * 100.0 / total as f64
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

/// A free port on loopback.
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Sends one Redis command (RESP, on a connection of its own) and answers the reply's text.
async fn redis_command(port: u16, args: &[&str]) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    let mut request = format!("*{}\r\n", args.len());
    for a in args {
        request += &format!("${}\r\n{a}\r\n", a.len());
    }
    s.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    // A reply ends with CRLF; a bulk reply's header comes first, so read until both are in.
    loop {
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply);
        let complete = match text.strip_prefix('$') {
            Some(bulk) => bulk
                .split_once("\r\n")
                .and_then(|(len, rest)| len.parse::<usize>().ok().map(|len| rest.len() >= len + 2))
                .unwrap_or(false),
            None => text.ends_with("\r\n"),
        };
        if complete {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

/// Waits until something listens on `port` (a server starting), up to a minute.
async fn listening_on(port: u16, what: &str) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if tokio::time::Instant::now() > deadline {
            return Err(format!("{what} did not start listening"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

impl Spawned {
    /// The server (or cluster) a run's arguments ask for.
    pub(crate) async fn start_for(args: &crate::Args, binary: &Path) -> Result<Self, String> {
        match (args.cluster, &args.surreal) {
            (Some(nodes), surreal) if args.protocol == Protocol::Chattr => {
                let surreal = if args.store == "mem" { None } else { surreal.as_deref() };
                if args.store != "mem" && surreal.is_none() {
                    return Err(
                        "--cluster needs --surreal (the SurrealDB server the nodes share), or --store mem"
                            .into(),
                    );
                }
                Self::start_cluster(binary, nodes.max(1), surreal).await
            }
            _ => Self::start(binary, &args.store, args.filter, args.protocol, args.pin).await,
        }
    }

    /// Starts `nodes` chattrd nodes of one cluster, with the `redis-server` and the SurrealDB
    /// server (`surreal`, in memory) they share; without `surreal`, each node has a store of
    /// its own in memory.
    async fn start_cluster(binary: &Path, nodes: usize, surreal: Option<&Path>) -> Result<Self, String> {
        let redis_port = free_port()?;
        let redis = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--port"])
            .arg(redis_port.to_string())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        let mut children = vec![redis];
        let mut db = "mem://".to_owned();
        if let Some(surreal) = surreal {
            let surreal_port = free_port()?;
            let child = Command::new(surreal)
                .args(["start", "--user", "root", "--pass", "bench-pass", "--bind"])
                .arg(format!("127.0.0.1:{surreal_port}"))
                .arg("memory")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot start the SurrealDB server: {e}"))?;
            children.push(child);
            listening_on(surreal_port, "the SurrealDB server").await?;
            db = format!("ws://127.0.0.1:{surreal_port}");
        }
        listening_on(redis_port, "redis-server").await?;
        let mut addrs = Vec::new();
        for i in 0..nodes {
            let mut command = Command::new(binary);
            Self::chattrd_env(&mut command, &db);
            if surreal.is_some() {
                command.env("CHATTR_DB_USER", "root").env("CHATTR_DB_PASS", "bench-pass");
            }
            command
                .env("CHATTR_CLUSTER", format!("redis://127.0.0.1:{redis_port}"))
                .env("CHATTR_NODE_NAME", format!("bench-{i}"));
            let node = Self::listening(command, std::env::temp_dir()).await?;
            addrs.push(node.addr.clone());
            // The nodes first: the profiler and the first pid are a node's.
            let at = children.len() - if surreal.is_some() { 2 } else { 1 };
            children.splice(at..at, node.children);
        }
        Ok(Self { children, addr: addrs.join(","), data_dir: PathBuf::new(), redis: Some(redis_port) })
    }

    /// Commands the cluster's Redis has run so far.
    pub(crate) async fn redis_commands(&self) -> Option<u64> {
        let info = redis_command(self.redis?, &["INFO", "stats"]).await.ok()?;
        info.lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .and_then(|n| n.trim().parse().ok())
    }

    /// The settings every spawned chattrd runs with, its store at `db`.
    fn chattrd_env(command: &mut Command, db: &str) {
        command
            .env("CHATTR_SHARED_SECRET", SECRET)
            .env("CHATTR_ADDR", "127.0.0.1:0")
            .env("CHATTR_DB", db)
            .env("CHATTR_GUESTS", "true")
            .env("CHATTR_FLOOD_BURST", "1000000")
            .env("CHATTR_FLOOD_RATE", "1000000")
            .env("CHATTR_MAX_CONNS_PER_IP", "0")
            .env("CHATTR_CONN_RATE_PER_IP", "0")
            .env("CHATTR_LOG", "info");
    }

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
        Self::chattrd_env(&mut command, &db);
        if let Some(delay) = filter {
            command
                .env("CHATTR_MESSAGE_FILTER_URL", accepting_filter(delay).await?)
                .env("CHATTR_MESSAGE_FILTER_FAIL", "closed");
        }
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
        Ok(Self { children: vec![child], addr, data_dir, redis: None })
    }

    /// The server's process id (a cluster's first node's).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.children.first()?.id()
    }

    /// What the server (a cluster: every process of it, summed) has used so far, when `/proc`
    /// can tell.
    pub(crate) fn usage(&self) -> Option<Usage> {
        let mut total = Usage { cpu: Duration::ZERO, rss_kib: 0, peak_rss_kib: 0, writes: Some(0) };
        for child in &self.children {
            let u = usage_of(&child.id()?.to_string())?;
            total.cpu += u.cpu;
            total.rss_kib += u.rss_kib;
            total.peak_rss_kib += u.peak_rss_kib;
            total.writes = total.writes.zip(u.writes).map(|(a, b)| a + b);
        }
        Some(total)
    }

    /// SIGTERM to each process, wait for them to exit, and remove the data directory.
    pub(crate) async fn stop(mut self) {
        for child in &mut self.children {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            }
            let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
        }
        if !self.data_dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

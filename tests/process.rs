//! The real `chattrd` binary as a child process on a real data directory, for the tests that
//! restart, terminate or kill it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::common::{Client, SECRET, WAIT};

/// The `chattrd` binary the process tests run: `CHATTR_BIN` when set (as for the Playwright
/// suite), else `chattrd` in the target directory this test binary was built in, which is where
/// `cargo build -p server --bin chattrd` puts it (`scripts/test.sh` builds it first). Cargo only
/// tells the tests of the `server` package where its binaries are (`CARGO_BIN_EXE_chattrd`), so
/// this suite, a package of its own, finds it by location. The default one must be newer than
/// each source file it was built from (as cargo listed them in `chattrd.d`): a stale binary
/// fails here rather than test old code.
pub fn chattrd() -> &'static Path {
    static CHATTRD: OnceLock<PathBuf> = OnceLock::new();
    CHATTRD.get_or_init(|| {
        if let Some(path) = std::env::var_os("CHATTR_BIN") {
            let path = PathBuf::from(path);
            assert!(path.is_file(), "CHATTR_BIN={} is not a file", path.display());
            return path;
        }
        // This binary is <target>/<profile>/deps/blackbox-<hash>; chattrd is <target>/<profile>/chattrd.
        let exe = std::env::current_exe().expect("the test binary's path");
        let path = exe.parent().and_then(Path::parent).expect("a target directory").join("chattrd");
        let build = "build it with `cargo build -p server --bin chattrd` (scripts/test.sh does), \
                     or name another one in CHATTR_BIN";
        let built = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| panic!("{} is missing: {build}", path.display()));
        for source in sources(&path.with_extension("d")) {
            let changed = std::fs::metadata(&source).and_then(|m| m.modified());
            if changed.is_ok_and(|changed| changed > built) {
                panic!("{} is older than {}: {build}", path.display(), source.display());
            }
        }
        path
    })
}

/// The source files in a dep-info file that cargo writes next to a binary
/// (`<binary>: <source> <source> …`, spaces in names escaped); none when it is missing.
fn sources(dep_info: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(dep_info) else {
        return Vec::new();
    };
    let Some((_, list)) = text.lines().next().unwrap_or_default().split_once(": ") else {
        return Vec::new();
    };
    let mut sources = vec![String::new()];
    let mut chars = list.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => sources.last_mut().unwrap().extend(chars.next()),
            ' ' => sources.push(String::new()),
            c => sources.last_mut().unwrap().push(c),
        }
    }
    sources.into_iter().filter(|s| !s.is_empty()).map(PathBuf::from).collect()
}

/// A `chattrd` process on a free port; its address comes from its own log line.
pub struct Process {
    child: Child,
    pub addr: String,
    /// What it logged up to listening.
    pub startup_log: Vec<String>,
    /// Everything it logged after that.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Process {
    pub async fn start(data_dir: &Path) -> Result<Self, String> {
        Self::start_with(data_dir, &[]).await
    }

    /// [`Process::start`] with extra environment variables, which win over the defaults here.
    pub async fn start_with(data_dir: &Path, env: &[(&str, &str)]) -> Result<Self, String> {
        Self::start_unset(data_dir, &[], env).await
    }

    /// [`Process::start_with`] without the variables named in `unset`, defaults here included.
    pub async fn start_unset(data_dir: &Path, unset: &[&str], env: &[(&str, &str)]) -> Result<Self, String> {
        let mut command = Command::new(chattrd());
        command
            .env("CHATTR_ADDR", "127.0.0.1:0")
            .env("CHATTR_DB", format!("surrealkv://{}", data_dir.display()))
            .env("CHATTR_SHARED_SECRET", SECRET)
            .env("CHATTR_LOG", "info")
            // These tests send faster than a person types.
            .env("CHATTR_FLOOD_BURST", "10000")
            .env("CHATTR_FLOOD_RATE", "10000")
            .env("CHATTR_REGISTRATIONS_PER_ADDRESS", "10000")
            // Every client of these tests connects from 127.0.0.1.
            .env("CHATTR_MAX_CONNS_PER_IP", "0")
            .env("CHATTR_CONN_RATE_PER_IP", "0")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for name in unset {
            command.env_remove(name);
        }
        let mut child = command.spawn().expect("chattrd starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = Vec::new();
        while let Ok(Ok(Some(line))) = tokio::time::timeout(WAIT, lines.next_line()).await {
            if line.contains("listening") {
                if let Some(addr) = listening_on(&line) {
                    // Keep draining the log so the process never blocks on a full pipe.
                    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
                    let sink = log.clone();
                    tokio::spawn(async move {
                        while let Ok(Some(line)) = lines.next_line().await {
                            sink.lock().unwrap().push(line);
                        }
                    });
                    return Ok(Self { child, addr, startup_log: seen, log });
                }
            }
            seen.push(line);
        }
        let status = tokio::time::timeout(WAIT, child.wait()).await.expect("exits").expect("wait");
        Err(format!("chattrd exited ({status}) before listening: {}", seen.join("\n")))
    }

    /// What it logged since it started listening.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until a line of the log contains `needle` (the log is read on a task of its own);
    /// returns that line.
    pub async fn wait_for_log(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(line) = self.log().into_iter().find(|l| l.contains(needle)) {
                return line;
            }
            assert!(std::time::Instant::now() < deadline, "no {needle:?} in the log: {:?}", self.log());
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Sends the process a signal (`HUP`, `TERM`…) with `kill`.
    pub fn signal(&self, name: &str) {
        let pid = self.pid().to_string();
        assert!(std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap()
            .success());
    }

    /// Waits for the process to exit by itself.
    pub async fn exited(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(WAIT, self.child.wait()).await.expect("chattrd exits in time").expect("wait")
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("chattrd exits after SIGTERM")
            .expect("wait")
    }

    /// `kill -9`: no shutdown, no flush, nothing.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL");
    }
}

/// The address in chattrd's "listening" line, as text (`addr=…`) or JSON (`"addr":"…"`).
fn listening_on(line: &str) -> Option<String> {
    if let Some(addr) = line.split("addr=").nth(1) {
        return addr.split_whitespace().next().map(str::to_owned);
    }
    let json: serde_json::Value = serde_json::from_str(line).ok()?;
    json["fields"]["addr"].as_str().map(str::to_owned)
}

pub async fn connect(addr: &str, nick: &str) -> Client {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await.expect("connects");
    let mut c = Client::from_socket(ws);
    c.send(json!({"type":"auth","nick":nick})).await;
    c.expect("welcome").await;
    c
}

/// Runs `chattrd <args>` (a subcommand) on the store in `data_dir`, with the harness's secret
/// and `env` on top; what it printed is in the output.
pub async fn run_chattrd(data_dir: &Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    Command::new(chattrd())
        .env("CHATTR_DB", format!("surrealkv://{}", data_dir.display()))
        .env("CHATTR_ADDR", "127.0.0.1:1")
        .env("CHATTR_SHARED_SECRET", SECRET)
        .env("CHATTR_LOG", "warn,chattr=info,chattrd=info")
        .envs(env.iter().copied())
        .args(args)
        .output()
        .await
        .expect("chattrd runs")
}

/// What a finished `chattrd` printed, both streams.
pub fn printed(output: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

pub fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chattr-test-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

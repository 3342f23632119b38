//! Shutting down: in-process, and the real `chattrd` binary under SIGTERM, restarted on the
//! same data directory.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use futures::future::join_all;
use serde_json::json;

use crate::common::{Client, TestServer, SECRET, WAIT};

#[tokio::test]
async fn shutdown_sends_every_client_a_close_frame_and_serve_returns() {
    let mut server = TestServer::start().await;
    let mut clients = Vec::new();
    for i in 0..20 {
        let mut c = server.guest(&format!("user{i}")).await;
        c.join("#c").await;
        clients.push(c);
    }
    server.stop().await.expect("a clean stop");
    let closes = join_all(clients.iter_mut().map(|c| c.expect_close())).await;
    for close in closes {
        let close = close.expect("a close frame");
        assert_eq!(u16::from(close.code), 1001);
        assert_eq!(close.reason.as_str(), "shutting_down");
    }
}

/// A `chattrd` process on a free port; its address comes from its own log line.
struct Process {
    child: Child,
    addr: String,
}

impl Process {
    async fn start(data_dir: &std::path::Path) -> Result<Self, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chattrd"))
            .env("CHATTR_ADDR", "127.0.0.1:0")
            .env("CHATTR_DB", format!("surrealkv://{}", data_dir.display()))
            .env("CHATTR_SHARED_SECRET", SECRET)
            .env("CHATTR_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chattrd starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = Vec::new();
        while let Ok(Ok(Some(line))) = tokio::time::timeout(WAIT, lines.next_line()).await {
            if line.contains("listening") {
                if let Some(addr) = line.split("addr=").nth(1) {
                    let addr = addr.split_whitespace().next().unwrap_or_default().to_owned();
                    // Keep draining the log so the process never blocks on a full pipe.
                    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                    return Ok(Self { child, addr });
                }
            }
            seen.push(line);
        }
        let status = tokio::time::timeout(WAIT, child.wait()).await.expect("exits").expect("wait");
        Err(format!("chattrd exited ({status}) before listening: {}", seen.join("\n")))
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running").to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("chattrd exits after SIGTERM")
            .expect("wait")
    }
}

async fn connect(addr: &str, nick: &str) -> Client {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await.expect("connects");
    let mut c = Client::from_socket(ws);
    c.send(json!({"type":"auth","nick":nick})).await;
    c.expect("welcome").await;
    c
}

#[tokio::test]
async fn sigterm_drains_clients_exits_zero_and_the_data_dir_reopens() {
    let dir = tempdir();
    let mut first = Process::start(&dir).await.expect("first start");
    let chosen = "survives-a-restart-0123456789";
    let res = reqwest::get(first.url(&format!("/gettoken/alice/{chosen}/{SECRET}"))).await.unwrap();
    assert_eq!(res.status(), 200);

    // A second process on the same directory fails fast with a clear message.
    let second = Process::start(&dir).await.err().expect("a second process must not start");
    assert!(second.contains("in use by another chattrd process"), "{second}");

    let mut clients = Vec::new();
    for i in 0..50 {
        clients.push(connect(&first.addr, &format!("u{i}")).await);
    }
    let status = first.terminate().await;
    assert_eq!(status.code(), Some(0), "a clean exit");
    let closes = join_all(clients.iter_mut().map(|c| c.expect_close())).await;
    for close in closes {
        assert_eq!(close.map(|c| u16::from(c.code)), Some(1001));
    }

    // An immediate restart works and still knows the stored token.
    let restarted = Process::start(&dir).await.expect("restart");
    let user = reqwest::get(restarted.url(&format!("/getuser/{chosen}"))).await.unwrap();
    assert_eq!(user.text().await.unwrap(), "alice");
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("chattr-test-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

//! `CHATTR_DB=ws://…`: Chattr on a real SurrealDB server (the stock server, built from the
//! `surrealdb-server` crate by `tools/surreal-test-server`, in-memory storage), with root
//! credentials. Two chattrd instances in turn share what the server stores.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::common::{TestServer, WAIT};

/// The SurrealDB server binary: `CHATTR_SURREAL_BIN`, or where `scripts/test.sh` builds it
/// (`cargo build -p surreal-test-server`, next to this test binary's chattrd).
fn surreal_binary() -> PathBuf {
    let path = match std::env::var_os("CHATTR_SURREAL_BIN") {
        Some(path) => PathBuf::from(path),
        None => {
            let exe = std::env::current_exe().expect("the test binary's path");
            exe.parent().and_then(Path::parent).expect("a target directory").join("surreal-test-server")
        }
    };
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p surreal-test-server` \
         (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A SurrealDB server on a free port, in memory, stopped when dropped.
pub struct Surreal {
    _child: Child,
    pub url: String,
}

impl Surreal {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(surreal_binary())
            .args(["start", "--user", "root", "--pass", "root-pass", "--bind"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("memory")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the SurrealDB server starts");
        // Ready when its health endpoint answers.
        let health = format!("http://127.0.0.1:{port}/health");
        let deadline = tokio::time::Instant::now() + WAIT * 3;
        loop {
            if reqwest::get(&health).await.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "SurrealDB server not ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { _child: child, url: format!("ws://127.0.0.1:{port}") }
    }
}

#[tokio::test]
async fn chattr_runs_on_a_surrealdb_server_over_ws() {
    let surreal = Surreal::start().await;
    let on_server = |c: &mut chattr::Config| {
        c.db = surreal.url.clone();
        c.db_user = Some("root".into());
        c.db_pass = Some("root-pass".into());
    };
    let mut first = TestServer::start_with(on_server).await;
    assert_eq!(reqwest::get(first.url("/healthz")).await.unwrap().status(), 200);
    let mut alice = first.guest("alice").await;
    alice.register("a-long-enough-password").await;
    alice.join("#ws").await;
    alice.say("#ws", "stored on the server").await;
    alice.expect("message").await;
    first.stop().await.expect("a clean stop");

    // A second chattrd on the same SurrealDB server finds the account and the history.
    let second = TestServer::start_with(on_server).await;
    let mut again = second.guest("someone").await;
    again.identify("alice", "a-long-enough-password").await;
    again.cmd("/join #ws").await;
    let history = again.expect("history").await;
    assert_eq!(history["messages"][0]["text"], "stored on the server");

    // Wrong credentials are refused at startup, with the reason.
    let mut bad = crate::common::test_config();
    bad.db = surreal.url.clone();
    bad.db_user = Some("root".into());
    bad.db_pass = Some("wrong".into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let served = tokio::time::timeout(WAIT, chattr::serve(bad, listener, std::future::pending()))
        .await
        .expect("refused at startup, not served");
    let error = served.expect_err("a wrong password is refused");
    assert!(!error.to_string().is_empty());
}

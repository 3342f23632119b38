//! A full disk under the real binary: the store's first failed write stops every
//! acknowledgement (`unavailable`), `/healthz` says so, the process exits non-zero so that the
//! store's recovery runs on the next start, and nothing acknowledged before is lost — after the
//! failure-exit and after a `kill -9` alike.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::common::Client;
use crate::process::{connect, tempdir, Process};

const PW: &str = "disk-full-password";

/// A small tmpfs mounted on a fresh directory for one test; unmounted and removed on drop.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempdir();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs for the disk-full test needs root (CI runs as root)");
        Self { dir }
    }

    /// Writes a filler file until the filesystem is full.
    fn fill(&self) -> PathBuf {
        let path = self.dir.join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0xA5u8; 4096];
        while file.write_all(&chunk).is_ok() {}
        while file.write_all(&[0]).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a chattrd this test started may still be exiting.
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start(data: &Path) -> Process {
    Process::start_with(data, &[("CHATTR_SHUTDOWN_GRACE", "3s")]).await.expect("chattrd starts")
}

/// Sends messages until one is refused; answers the texts acknowledged, the refusal (an error
/// code, or the close frame's reason when the session was closed first) and the refused text.
async fn say_until_refused(c: &mut Client, prefix: &str) -> (Vec<String>, String, String) {
    let mut acked = Vec::new();
    for i in 0..10_000 {
        let text = format!("{prefix} {i}");
        if !c.try_say("#log", &text).await {
            return (acked, "closed".into(), text);
        }
        let event = loop {
            match c.next_or_close().await {
                Ok(e) if e["type"] == "message" || e["type"] == "error" => break Ok(e),
                Ok(_) => continue,
                Err(close) => break Err(close.map(|f| f.reason.to_string()).unwrap_or_default()),
            }
        };
        match event {
            Ok(e) if e["type"] == "message" => {
                assert_eq!(e["text"], text.as_str());
                acked.push(text);
            }
            Ok(e) => return (acked, e["code"].as_str().unwrap_or_default().to_owned(), text),
            Err(reason) => return (acked, reason, text),
        }
    }
    panic!("the disk never filled up");
}

async fn health(p: &Process) -> Option<(u16, String)> {
    let res = reqwest::get(p.url("/healthz")).await.ok()?;
    Some((res.status().as_u16(), res.text().await.unwrap_or_default()))
}

async fn history(addr: &str) -> Vec<String> {
    let mut reader = connect(addr, "reader").await;
    reader.join("#log").await;
    let mut texts = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        reader.send(json!({"type":"history","target":"#log","before":before,"limit":100})).await;
        let page = reader.expect("history").await;
        let messages = page["messages"].as_array().unwrap().clone();
        let mut chunk: Vec<String> =
            messages.iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect();
        chunk.extend(texts);
        texts = chunk;
        if page["more"] != true || messages.is_empty() {
            return texts;
        }
        before = messages[0]["id"].as_u64();
    }
}

async fn registered(addr: &str, nick: &str) -> bool {
    let mut c = connect(addr, &format!("{nick}-check")).await;
    c.cmd(&format!("/potato identify {nick} {PW}")).await;
    loop {
        let e = c.next_event().await;
        if e["type"] == "error" {
            return false;
        }
        if e["type"] == "notice" && e["from"] == "Potato" {
            return true;
        }
    }
}

#[tokio::test]
async fn after_a_full_disk_nothing_more_is_acknowledged_and_nothing_acknowledged_is_lost() {
    let disk = SmallDisk::mount("24m");
    let data = disk.dir.join("data");

    // 1. Acknowledged writes, then the disk fills: the next message fails, the store is
    //    failed, and the server stops acknowledging and says so.
    let mut first = start(&data).await;
    let mut alice = connect(&first.addr, "alice").await;
    alice.nick = "alice".into();
    alice.register(PW).await;
    alice.join("#log").await;
    let mut acked = Vec::new();
    for i in 0..20 {
        alice.say("#log", &format!("before {i}")).await;
        assert_eq!(alice.expect("message").await["text"], format!("before {i}"));
        acked.push(format!("before {i}"));
    }
    let filler = disk.fill();
    let (more, refusal, failed) = say_until_refused(&mut alice, "filling").await;
    acked.extend(more);
    assert_eq!(refusal, "unavailable");
    let (status, text) = health(&first).await.expect("still answering during the grace period");
    assert_eq!(status, 503, "{text}");
    // Space comes back, but this process acknowledges nothing more: its session is closed,
    // and new logins (a registration, say) are turned away until it has restarted.
    std::fs::remove_file(&filler).unwrap();
    alice.events_until_close().await;
    let upgrade = tokio_tungstenite::connect_async(format!("ws://{}/ws", first.addr)).await;
    assert!(upgrade.is_err(), "no new session while the store is failed");
    let status = first.exited().await;
    assert!(!status.success(), "exits non-zero so that a supervisor restarts it: {status}");
    assert!(first.log().iter().any(|l| l.contains("the store failed a write")), "{:?}", first.log());

    // 2. Restarted: everything acknowledged is there; new writes work and are acknowledged.
    //    The write that failed has an unknown outcome (its bytes may have reached the log):
    //    it may be there too, and nothing else is.
    let mut second = start(&data).await;
    assert_eq!(health(&second).await.map(|h| h.0), Some(200));
    let stored = history(&second.addr).await;
    if stored.len() > acked.len() {
        acked.push(failed);
    }
    assert_eq!(stored, acked);
    assert!(registered(&second.addr, "alice").await);
    let mut bob = connect(&second.addr, "bob").await;
    bob.nick = "bob".into();
    bob.register(PW).await;
    bob.join("#log").await;
    for i in 0..5 {
        bob.say("#log", &format!("after {i}")).await;
        assert_eq!(bob.expect("message").await["text"], format!("after {i}"));
        acked.push(format!("after {i}"));
    }

    // 3. The disk fills again, this time under a registration; then kill -9 before the
    //    process has exited by itself.
    let filler = disk.fill();
    let mut carol = connect(&second.addr, "carol").await;
    carol.cmd(&format!("/potato register {PW} carol@mail.example")).await;
    // Refused with `unavailable`, or the session closed (reason `unavailable`) first.
    let answer = loop {
        match carol.next_or_close().await {
            Ok(e) if e["type"] == "error" || e["type"] == "account_changed" => break Ok(e),
            Ok(_) => continue,
            Err(close) => break Err(close.map(|f| f.reason.to_string())),
        }
    };
    let carol_acked = matches!(&answer, Ok(e) if e["type"] == "account_changed");
    if !carol_acked {
        match &answer {
            // `internal` when a read before the write failed on the full disk.
            Ok(e) => assert!(["unavailable", "internal"].contains(&e["code"].as_str().unwrap()), "{e}"),
            Err(reason) => assert!(reason.as_deref().is_none_or(|r| r == "unavailable"), "{reason:?}"),
        }
    }
    // Until a write fails, writes are acknowledged (a failed read does not fail the store; the
    // engine may still have room it set aside); from the failed write on, nothing is.
    let (more, refusal, refused) = say_until_refused(&mut bob, "more").await;
    acked.extend(more);
    assert!(["unavailable", "closed"].contains(&refusal.as_str()), "{refusal}");
    let (after, _, _) = say_until_refused(&mut bob, "after the failure").await;
    assert!(after.is_empty(), "nothing is acknowledged after the failure: {after:?}");
    std::fs::remove_file(&filler).unwrap();
    second.kill().await;

    let third = start(&data).await;
    let stored = history(&third.addr).await;
    if stored.len() > acked.len() {
        acked.push(refused);
    }
    assert_eq!(stored, acked, "kill -9 after the failure lost nothing acknowledged");
    assert!(registered(&third.addr, "bob").await);
    // Acknowledged, carol is registered; refused, the outcome was unknown.
    if carol_acked {
        assert!(registered(&third.addr, "carol").await);
    }
    drop(third);
}

//! Memory under attack, on the real binary: a burst of Potato registrations (each an argon2
//! hash of 19 MiB) stays within the hasher's bound, and what it used is the same memory it
//! keeps using, not a new pile per burst.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use futures::future::join_all;

use crate::process::{connect, tempdir, Process};

const MIB: u64 = 1024 * 1024;

/// The resident set size of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// Sends a registration from each of `n` new guests at once; answers once all are answered.
async fn burst(addr: &str, round: usize, n: usize) -> (usize, usize) {
    let mut clients = Vec::new();
    for i in 0..n {
        clients.push(connect(addr, &format!("r{round}x{i}")).await);
    }
    let answers = join_all(clients.iter_mut().map(|c| async move {
        c.cmd("/potato register burst-password-1 someone@mail.example").await;
        loop {
            let e = c.next_event().await;
            if e["type"] == "account_changed" {
                return true;
            }
            if e["type"] == "error" {
                assert!(["busy", "throttled"].contains(&e["code"].as_str().unwrap()), "{e}");
                return false;
            }
        }
    }))
    .await;
    let registered = answers.iter().filter(|a| **a).count();
    (registered, n - registered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_registrations_stays_within_the_hashing_memory_bound() {
    let dir = tempdir();
    let server = Process::start(&dir).await.expect("start");
    let pid = server.pid();
    // Warm up: one registration allocates one hashing buffer and the usual runtime memory.
    burst(&server.addr, 0, 1).await;
    let before = rss(pid);

    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss(pid), Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
    };
    let mut registered = 0;
    for round in 1..=2 {
        let (ok, refused) = burst(&server.addr, round, 100).await;
        assert!(ok > 0, "round {round}: some registrations go through ({refused} refused as busy)");
        registered += ok;
    }
    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let peak = peak.load(Ordering::Relaxed);
    let after = rss(pid);
    eprintln!(
        "registrations: {registered}; RSS before {} MiB, peak {} MiB, after {} MiB",
        before / MIB,
        peak / MIB,
        after / MIB
    );
    // At most four hashes at once, 19 MiB each, in buffers that are reused; 200 connections
    // and their sessions take some more. Unbounded, 100 hashes at once take ~1.9 GiB.
    let bound = 4 * 19 * MIB + 96 * MIB;
    assert!(peak - before <= bound, "peak grew by {} MiB", (peak - before) / MIB);
    assert!(after <= before + bound, "after the bursts: {} MiB", after / MIB);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The allocator keeps what a program frees unless asked to give it back: chattrd asks after a
/// wave of departures. 1,500 guests in channels of 100 take their memory; once they have left,
/// most of it is the system's again within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_crowd_took_is_given_back_once_it_leaves() {
    let dir = tempdir();
    let server =
        Process::start_with(&dir, &[("CHATTR_LOG", "info,chattr::memory=debug")]).await.expect("start");
    let pid = server.pid();
    connect(&server.addr, "warmup").await.join("#warmup").await;
    let before = rss(pid);
    let mut crowd = Vec::new();
    for i in 0..1_500 {
        let mut c = connect(&server.addr, &format!("crowd{i}")).await;
        c.join(&format!("#crowd{}", i / 100)).await;
        crowd.push(c);
    }
    let held = rss(pid);
    assert!(held >= before + 8 * MIB, "1,500 connections took {} KiB", (held - before) / 1024);
    for c in &mut crowd {
        c.cmd("/quit").await;
    }
    for mut c in crowd {
        c.expect_close().await;
    }
    let target = before + (held - before) / 2;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut now = rss(pid);
    while now > target && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        now = rss(pid);
    }
    let trims: Vec<String> = server.log().into_iter().filter(|l| l.contains("memory trimmed")).collect();
    assert!(
        now <= target,
        "RSS before {} MiB, with 1,500 more connections {} MiB, 20 s after they left {} MiB; {trims:?}",
        before / MIB,
        held / MIB,
        now / MIB
    );
    let _ = std::fs::remove_dir_all(&dir);
}

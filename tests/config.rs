//! Settings as the real binary takes them.

use crate::process::{connect, tempdir, Process};

/// `cargo leptos watch` runs chattrd with `LEPTOS_SITE_ADDR` (its `site-addr`), then points the
/// browser there and waits for it before reloading the page: chattrd listens there unless
/// `CHATTR_ADDR` says otherwise.
#[tokio::test]
async fn without_chattr_addr_chattrd_listens_on_cargo_leptos_site_addr() {
    let dir = tempdir();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let mut watched = Process::start_unset(&dir, &["CHATTR_ADDR"], &[("LEPTOS_SITE_ADDR", &free)])
        .await
        .expect("chattrd starts on LEPTOS_SITE_ADDR");
    assert_eq!(watched.addr, free);
    connect(&watched.addr, "alice").await;
    assert!(watched.terminate().await.success());

    // Its own setting wins (the harness sets CHATTR_ADDR=127.0.0.1:0), whatever the other says.
    let mut own = Process::start_with(&dir, &[("LEPTOS_SITE_ADDR", "no address")]).await.expect("start");
    assert_ne!(own.addr, "no address");
    connect(&own.addr, "bob").await;
    assert!(own.terminate().await.success());

    // A site address that is none is refused, as a bad CHATTR_ADDR is (a usage error, status 2).
    let refused = Process::start_unset(&dir, &["CHATTR_ADDR"], &[("LEPTOS_SITE_ADDR", "no address")])
        .await
        .err()
        .expect("no address to listen on");
    assert!(refused.contains("exit status: 2"), "{refused}");
    let _ = std::fs::remove_dir_all(&dir);
}

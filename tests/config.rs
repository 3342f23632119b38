//! Settings as the real binary takes them.

use serde_json::Value;

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

/// `CHATTR_LOG_FORMAT=json`: every line is one JSON object, and what a session logs carries its
/// connection's span (its number, the client's address, the session once logged in).
#[tokio::test]
async fn json_logs_are_an_object_a_line_with_the_connection_span() {
    let dir = tempdir();
    let json = [("CHATTR_LOG_FORMAT", "json"), ("CHATTR_LOG", "info,chattr=debug")];
    let mut server = Process::start_with(&dir, &json).await.expect("chattrd starts");
    connect(&server.addr, "alice").await;
    assert!(server.terminate().await.success());
    server.wait_for_log("chattrd stopped").await;
    let lines: Vec<Value> = server
        .startup_log
        .iter()
        .chain(&server.log())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let logged_in = lines
        .iter()
        .find(|l| l["fields"]["message"] == "logged in")
        .unwrap_or_else(|| panic!("no login logged: {lines:?}"));
    let span = &logged_in["span"];
    assert_eq!(span["name"], "conn", "{logged_in}");
    assert_eq!(span["client"], "127.0.0.1", "{logged_in}");
    assert!(span["id"].is_u64() && span["session"].is_u64(), "{logged_in}");
    assert_eq!(logged_in["level"], "DEBUG");
    let _ = std::fs::remove_dir_all(&dir);
}

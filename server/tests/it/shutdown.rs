//! Shutting down: in-process, and the real `chattrd` binary under SIGTERM, restarted on the
//! same data directory.

use futures::future::join_all;

use crate::common::{TestServer, SECRET};
use crate::process::{connect, tempdir, Process};

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

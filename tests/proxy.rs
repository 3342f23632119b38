//! Behind reverse proxies: only a trusted proxy's word on the client's address is taken, and
//! then cloaks, bans, `/whois` and connection limits are the client's, not the proxy's. A
//! forwarding header from anywhere else changes nothing.

use std::net::IpAddr;
use std::time::Instant;

use crate::common::{assert_cloaked, from_flags, Client, TestServer, WAIT};

/// A server trusting the proxies `flags` name (`--trusted-proxies ...`, `--proxy-header ...`).
async fn behind(flags: &[&str]) -> TestServer {
    let parsed = from_flags(flags);
    TestServer::start_with(|c| {
        c.trusted_proxies = parsed.trusted_proxies;
        c.proxy_header = parsed.proxy_header;
    })
    .await
}

/// The address `client` sees for itself in `/whois` (its real one).
async fn own_address(client: &mut Client) -> String {
    let nick = client.nick.clone();
    client.cmd(&format!("/whois {nick}")).await;
    client.expect("whois").await["host"].as_str().unwrap().to_owned()
}

/// The cloak `asker` sees for `nick`.
async fn cloak_of(asker: &mut Client, nick: &str) -> String {
    asker.cmd(&format!("/whois {nick}")).await;
    let host = asker.expect("whois").await["host"].as_str().unwrap().to_owned();
    assert!(host.ends_with(".cloak"), "{host}");
    host
}

fn loopback(last: u8) -> Option<IpAddr> {
    Some([127, 0, 0, last].into())
}

#[tokio::test]
async fn without_trusted_proxies_forwarding_headers_change_nothing() {
    let server = TestServer::start().await;
    let mut alice = server.guest("alice").await;
    let forged = [("x-forwarded-for", "198.51.100.7"), ("forwarded", "for=203.0.113.5")];
    let mut bob = Client::guest_with(&server, None, &forged, "bob").await;
    let mut carol = server.guest("carol").await;
    assert_eq!(own_address(&mut bob).await, "127.0.0.1");
    // Others see the cloak of the socket's address, the same as another client's from there.
    assert_eq!(cloak_of(&mut alice, "bob").await, cloak_of(&mut alice, "carol").await);
    carol.assert_no("whois").await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_address_cloak_and_bans() {
    let server = behind(&["--trusted-proxies", "10.0.0.0/8,127.0.0.1"]).await;
    let [mut alice] = server.in_channel("#c", ["alice"]).await;
    // The proxy appended the real address after whatever the client sent.
    let bob_hops = [("x-forwarded-for", "1.1.1.1, 198.51.100.7")];
    let mut bob = Client::guest_with(&server, None, &bob_hops, "bob").await;
    let carol_hops = [("forwarded", "for=203.0.113.5;proto=https")];
    let mut carol = Client::guest_with(&server, None, &carol_hops, "carol").await;
    assert_eq!(own_address(&mut bob).await, "198.51.100.7");
    assert_eq!(own_address(&mut carol).await, "203.0.113.5");
    let (bob_cloak, carol_cloak) = (cloak_of(&mut alice, "bob").await, cloak_of(&mut alice, "carol").await);
    assert_ne!(bob_cloak, carol_cloak, "two clients behind one proxy are two hosts");
    assert_cloaked(&bob_cloak);
    assert_cloaked(&carol_cloak);

    // A host ban of one client bans that client only, not everyone behind the proxy.
    bob.join("#c").await;
    carol.join("#c").await;
    alice.cmd("/ban #c bob").await;
    let mask = bob.expect("banned").await["mask"].as_str().unwrap().to_owned();
    assert_eq!(mask, format!("*!*@{bob_cloak}"));
    bob.say("#c", "still here?").await;
    bob.expect_error("banned").await;
    carol.say("#c", "I am").await;
    assert_eq!(alice.expect("message").await["text"], "I am");
}

#[tokio::test]
async fn a_forged_header_from_an_untrusted_peer_is_ignored_even_when_a_proxy_is_trusted() {
    let server = behind(&["--trusted-proxies", "127.0.0.2"]).await;
    let forged = [("x-forwarded-for", "198.51.100.7")];
    let mut mallory = Client::guest_with(&server, loopback(1), &forged, "mallory").await;
    assert_eq!(own_address(&mut mallory).await, "127.0.0.1");
    let mut proxied = Client::guest_with(&server, loopback(2), &forged, "proxied").await;
    assert_eq!(own_address(&mut proxied).await, "198.51.100.7");
}

#[tokio::test]
async fn the_header_read_is_the_one_configured() {
    let server = behind(&["--trusted-proxies", "127.0.0.1", "--proxy-header", "forwarded"]).await;
    // This proxy writes `Forwarded` only: an `X-Forwarded-For` is the client's own forgery.
    let both = [("x-forwarded-for", "198.51.100.7"), ("forwarded", "for=\"[2001:db8::5]:4711\"")];
    let mut bob = Client::guest_with(&server, None, &both, "bob").await;
    assert_eq!(own_address(&mut bob).await, "2001:db8::5");
    let mut carol = Client::guest_with(&server, None, &both[..1], "carol").await;
    assert_eq!(own_address(&mut carol).await, "127.0.0.1", "the proxy named nobody");
}

#[tokio::test]
async fn connection_limits_count_the_client_behind_the_proxy_not_the_proxy() {
    let server = TestServer::start_with(|c| {
        c.trusted_proxies = from_flags(&["--trusted-proxies", "127.0.0.1"]).trusted_proxies;
        c.max_conns_per_ip = 2;
    })
    .await;
    let x = [("x-forwarded-for", "198.51.100.7")];
    let y = [("x-forwarded-for", "198.51.100.8")];
    let mut first = Client::connect_with(&server, None, &x).await.expect("first of x");
    let _second = Client::connect_with(&server, None, &x).await.expect("second of x");
    assert_eq!(Client::connect_with(&server, None, &x).await.err(), Some(429), "x holds its two");
    // The proxy itself is not limited: another client's connections through it are let in.
    let _y1 = Client::connect_with(&server, None, &y).await.expect("first of y");
    let _y2 = Client::connect_with(&server, None, &y).await.expect("second of y");

    // A closed connection gives its client's count back (once its session has ended).
    first.close().await;
    let deadline = Instant::now() + WAIT;
    loop {
        match Client::connect_with(&server, None, &x).await {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(status, 429);
                assert!(Instant::now() < deadline, "x's closed connection was never given back");
                tokio::task::yield_now().await;
            }
        }
    }
}

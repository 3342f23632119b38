//! chattrd speaking TLS itself (`CHATTR_TLS_CERT` / `CHATTR_TLS_KEY`), with certificates made at
//! test time: HTTPS and WSS work, plain HTTP gets nothing, SIGHUP swaps the certificate for new
//! connections while open ones carry on, and a renewal that does not load keeps the old one.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::json;
use tokio_tungstenite::Connector;

use crate::common::Client;
use crate::process::{printed, run_chattrd, tempdir, Process};

/// A self-signed certificate for 127.0.0.1 and localhost, and its key, as PEM.
struct Cert {
    pem: String,
    key: String,
}

fn make_cert() -> Cert {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let made = rcgen::generate_simple_self_signed(names).unwrap();
    Cert { pem: made.cert.pem(), key: made.signing_key.serialize_pem() }
}

fn install(dir: &Path, cert: &Cert) {
    std::fs::write(dir.join("cert.pem"), &cert.pem).unwrap();
    std::fs::write(dir.join("key.pem"), &cert.key).unwrap();
}

/// `GET https://addr/healthz` by a client that trusts only `cert`.
async fn healthz(addr: &str, cert: &Cert) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert.pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let res = client.get(format!("https://{addr}/healthz")).send().await.map_err(|e| format!("{e:?}"))?;
    Ok(res.text().await.unwrap())
}

/// A guest logged in over `wss://` by a client that trusts only `cert`.
async fn wss_guest(addr: &str, cert: &Cert, nick: &str) -> Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(cert.pem.as_bytes()).unwrap()).unwrap();
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        format!("wss://{addr}/ws"),
        None,
        false,
        Some(Connector::Rustls(Arc::new(config))),
    )
    .await
    .expect("wss connects");
    let mut client = Client::from_socket(ws);
    client.send(json!({"type":"auth","nick":nick})).await;
    client.expect("welcome").await;
    client.nick = nick.to_owned();
    client
}

#[tokio::test]
async fn https_and_wss_with_a_certificate_swapped_on_sighup() {
    let dir = tempdir();
    let (first, renewed) = (make_cert(), make_cert());
    install(&dir, &first);
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let tls = [("CHATTR_TLS_CERT", cert.to_str().unwrap()), ("CHATTR_TLS_KEY", key.to_str().unwrap())];
    let mut server = Process::start_with(&dir.join("data"), &tls).await.expect("starts with TLS");
    let addr = server.addr.clone();

    assert_eq!(healthz(&addr, &first).await.unwrap(), "ok");
    assert!(healthz(&addr, &renewed).await.is_err(), "a certificate the client does not trust");
    let plain = reqwest::get(format!("http://{addr}/healthz")).await;
    assert!(plain.is_err(), "no answer to plain HTTP: {plain:?}");

    let mut alice = wss_guest(&addr, &first, "alice").await;
    alice.join("#tls").await;
    alice.say("#tls", "over wss").await;
    assert_eq!(alice.expect("message").await["text"], "over wss");

    // A renewal: new connections get the new certificate, the open one carries on.
    install(&dir, &renewed);
    server.signal("HUP");
    server.wait_for_log("TLS certificate reloaded").await;
    assert_eq!(healthz(&addr, &renewed).await.unwrap(), "ok");
    assert!(healthz(&addr, &first).await.is_err(), "the old certificate is no longer presented");
    let mut bob = wss_guest(&addr, &renewed, "bob").await;
    bob.join("#tls").await;
    alice.say("#tls", "still here").await;
    assert_eq!(bob.expect("message").await["text"], "still here");

    // `chattrd backup` reaches the running server over TLS, trusting the certificate configured.
    let dump = dir.join("backup.surql");
    let env = [tls[0], tls[1], ("CHATTR_ADDR", addr.as_str())];
    let backup = run_chattrd(&dir.join("data"), &env, &["backup", dump.to_str().unwrap()]).await;
    assert!(backup.status.success(), "{}", printed(&backup));
    assert!(std::fs::read_to_string(&dump).unwrap().contains("DEFINE TABLE history"));

    // A renewal gone wrong keeps the certificate in use.
    std::fs::write(&cert, "not a certificate").unwrap();
    server.signal("HUP");
    server.wait_for_log("TLS certificate not reloaded").await;
    assert_eq!(healthz(&addr, &renewed).await.unwrap(), "ok");
    assert!(server.terminate().await.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_certificate_that_does_not_load_stops_the_start_saying_why() {
    let dir = tempdir();
    std::fs::write(dir.join("cert.pem"), "garbage").unwrap();
    std::fs::write(dir.join("key.pem"), make_cert().key).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let tls = [("CHATTR_TLS_CERT", cert.to_str().unwrap()), ("CHATTR_TLS_KEY", key.to_str().unwrap())];
    let refused = Process::start_with(&dir.join("data"), &tls).await.err().expect("refused");
    assert!(refused.contains("cert.pem") && refused.contains("no certificate"), "{refused}");
    // A key that is not the certificate's.
    install(&dir, &make_cert());
    std::fs::write(&key, make_cert().key).unwrap();
    let refused = Process::start_with(&dir.join("data"), &tls).await.err().expect("refused");
    assert!(refused.contains("do not make a certificate"), "{refused}");
    let _ = std::fs::remove_dir_all(&dir);
}

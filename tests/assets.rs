//! The built UI as chattrd serves it, on a site root made here the way a release build makes it
//! (hashed names, a hash.txt, `.br` and `.gz` next to each file): the page refers to the hashed
//! names, each request gets the encoding it accepts, and hashed files are cached for good while
//! pages are revalidated. (The real bundle's size is checked by end2end/tests/assets.spec.ts.)

use std::path::{Path, PathBuf};

use reqwest::header::{HeaderMap, ACCEPT_ENCODING, IF_MODIFIED_SINCE};

use crate::common::TestServer;
use crate::process::tempdir;

const JS: &str = "Jsjsjsjsjsjsjsjsjsjs-_";
const WASM: &str = "Wasmwasmwasmwasmwasm01";
const CSS: &str = "Csscsscsscsscsscsscs23";

/// A site root as `cargo leptos build --release --precompress` leaves it. The compressed files'
/// contents only need to tell the variants apart.
fn release_site() -> PathBuf {
    let root = tempdir();
    std::fs::create_dir_all(root.join("pkg")).unwrap();
    for (name, body) in [
        (format!("pkg/chattr.{JS}.js"), "export default function init() {}"),
        (format!("pkg/chattr.{WASM}.wasm"), "\0asm plain"),
        (format!("pkg/chattr.{CSS}.css"), "body { margin: 0 }"),
        ("favicon.svg".to_owned(), "<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
    ] {
        std::fs::write(root.join(&name), body).unwrap();
        std::fs::write(root.join(format!("{name}.br")), format!("br of {name}")).unwrap();
        std::fs::write(root.join(format!("{name}.gz")), format!("gz of {name}")).unwrap();
    }
    std::fs::write(root.join("hash.txt"), format!("js: {JS}\nwasm: {WASM}\ncss: {CSS}\n")).unwrap();
    root
}

async fn get(server: &TestServer, path: &str, accept_encoding: Option<&str>) -> (u16, HeaderMap, String) {
    let mut req = reqwest::Client::new().get(server.url(path));
    if let Some(encodings) = accept_encoding {
        req = req.header(ACCEPT_ENCODING, encodings);
    }
    let res = req.send().await.unwrap();
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    (status, headers, res.text().await.unwrap())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).map_or("", |v| v.to_str().unwrap())
}

async fn serve(root: &Path) -> TestServer {
    let root = root.to_path_buf();
    TestServer::start_with(move |c| c.site_root = root).await
}

#[tokio::test]
async fn the_page_refers_to_the_hashed_files_and_is_revalidated() {
    let root = release_site();
    let server = serve(&root).await;
    let (status, headers, html) = get(&server, "/", Some("br, gzip")).await;
    assert_eq!(status, 200);
    for file in
        [format!("/pkg/chattr.{JS}.js"), format!("/pkg/chattr.{WASM}.wasm"), format!("/pkg/chattr.{CSS}.css")]
    {
        assert!(html.contains(&format!("href=\"{file}\"")), "{file} in {html}");
    }
    assert!(!html.contains("/pkg/chattr.js") && !html.contains("/pkg/chattr.css"), "{html}");
    assert_eq!(header(&headers, "cache-control"), "no-cache");
    assert_eq!(header(&headers, "content-encoding"), "", "pages are rendered, not precompressed");
    // Other paths get a plain page: the UI is a single page at `/`.
    let (status, headers, html) = get(&server, "/no/such/page", None).await;
    assert_eq!((status, header(&headers, "cache-control")), (404, "no-cache"));
    assert!(html.contains("Page not found") && !html.contains("<script"), "{html}");
    std::fs::remove_dir_all(root).unwrap();
}

#[tokio::test]
async fn files_come_in_the_encoding_the_request_accepts() {
    let root = release_site();
    let server = serve(&root).await;
    let wasm = format!("/pkg/chattr.{WASM}.wasm");
    for (accept, encoding, body) in [
        (Some("br"), "br", format!("br of pkg/chattr.{WASM}.wasm")),
        (Some("gzip, deflate, br, zstd"), "br", format!("br of pkg/chattr.{WASM}.wasm")),
        (Some("gzip"), "gzip", format!("gz of pkg/chattr.{WASM}.wasm")),
        (Some("br;q=0.5, gzip"), "gzip", format!("gz of pkg/chattr.{WASM}.wasm")),
        (Some("br;q=0, gzip;q=0"), "", "\0asm plain".to_owned()),
        (Some("identity"), "", "\0asm plain".to_owned()),
        (None, "", "\0asm plain".to_owned()),
    ] {
        let (status, headers, text) = get(&server, &wasm, accept).await;
        assert_eq!(status, 200, "{accept:?}");
        assert_eq!(header(&headers, "content-encoding"), encoding, "{accept:?}");
        assert_eq!(text, body, "{accept:?}");
        assert_eq!(header(&headers, "content-type"), "application/wasm", "{accept:?}");
        assert_eq!(header(&headers, "vary"), "accept-encoding", "{accept:?}");
        assert_eq!(header(&headers, "cache-control"), "public, max-age=31536000, immutable");
    }
    let (_, headers, _) = get(&server, &format!("/pkg/chattr.{JS}.js"), Some("br")).await;
    assert_eq!(header(&headers, "content-type"), "text/javascript");
    let (_, headers, _) = get(&server, &format!("/pkg/chattr.{CSS}.css"), Some("gzip")).await;
    assert_eq!(
        (header(&headers, "content-type"), header(&headers, "content-encoding")),
        ("text/css", "gzip")
    );
    std::fs::remove_dir_all(root).unwrap();
}

#[tokio::test]
async fn other_assets_are_kept_an_hour_and_can_be_revalidated() {
    let root = release_site();
    let server = serve(&root).await;
    let (status, headers, _) = get(&server, "/favicon.svg", Some("br")).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "cache-control"), "public, max-age=3600");
    assert_eq!(header(&headers, "content-type"), "image/svg+xml");
    assert_eq!(header(&headers, "content-encoding"), "br");
    let modified = headers["last-modified"].clone();
    let again = reqwest::Client::new()
        .get(server.url("/favicon.svg"))
        .header(IF_MODIFIED_SINCE, modified)
        .send()
        .await;
    let again = again.unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(header(again.headers(), "cache-control"), "public, max-age=3600");
    // A file under pkg/ without a hash in its name may change under the same name.
    std::fs::write(root.join("pkg/chattr.js"), "export {}").unwrap();
    let (status, headers, _) = get(&server, "/pkg/chattr.js", None).await;
    assert_eq!((status, header(&headers, "cache-control")), (200, "no-cache"));
    std::fs::remove_dir_all(root).unwrap();
}

#[tokio::test]
async fn a_hash_file_that_names_missing_files_is_not_used() {
    let root = release_site();
    std::fs::remove_file(root.join(format!("pkg/chattr.{WASM}.wasm"))).unwrap();
    let server = serve(&root).await;
    let (_, _, html) = get(&server, "/", None).await;
    assert!(html.contains("href=\"/pkg/chattr.js\""), "the build's plain names: {html}");
    let (_, headers, _) = get(&server, &format!("/pkg/chattr.{JS}.js"), None).await;
    assert_eq!(header(&headers, "cache-control"), "no-cache", "not known as hashed");
    std::fs::remove_dir_all(root).unwrap();
}

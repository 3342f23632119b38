//! The built UI in the site root (`LEPTOS_SITE_ROOT`): which file names the page refers to, and
//! how the files are served.
//!
//! A release build names the UI's files after their content (`pkg/chattr.<hash>.wasm`, `.js`,
//! `.css`; cargo-leptos's `hash-files`) and lists the hashes in a `hash.txt`. The page is
//! rendered with those names, so a file under a hashed name never changes and browsers may keep
//! it for a year without asking again (`immutable`); the page itself is revalidated on every
//! visit (`no-cache`), so a new release is picked up at once. Unhashed files (a dev build,
//! wasm-bindgen snippets) are revalidated too, and the other assets (the favicon) are kept for
//! an hour.
//!
//! Release builds also write each file compressed next to it (`.br`, `.gz`; `cargo leptos build
//! --release --precompress`). A request gets the best one its `Accept-Encoding` allows, with
//! `Content-Encoding` and the type of the original file, and `Vary: Accept-Encoding`; without
//! one, the plain file.
//!
//! The UI is one page, at `/`; any other path that is no file gets a plain not-found page.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use leptos::prelude::LeptosOptions;
use tower::ServiceExt;
use tower_http::services::ServeDir;

use crate::AppState;

/// For files whose name carries a hash of their content.
pub(crate) const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// For pages and for files whose name does not change with their content.
pub(crate) const REVALIDATE: &str = "no-cache";
/// For the other static assets (the favicon).
pub(crate) const SHORT: &str = "public, max-age=3600";

/// The name of the file, in the site root, that lists the hashes of the UI's files.
pub(crate) const HASH_FILE: &str = "hash.txt";
/// The folder of the UI's wasm, js and css files in the site root.
pub(crate) const PKG_DIR: &str = "pkg";

/// The hashes of the UI's entry files, as cargo-leptos lists them (`js: <hash>` lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hashes {
    pub js: String,
    pub wasm: String,
    pub css: String,
}

impl Hashes {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let find = |key: &str| {
            text.lines().find_map(|line| {
                let (k, v) = line.split_once(':')?;
                (k.trim() == key).then(|| v.trim().to_owned()).filter(|v| is_hash(v))
            })
        };
        Some(Self { js: find("js")?, wasm: find("wasm")?, css: find("css")? })
    }

    /// The files these hashes name, relative to the site root.
    pub(crate) fn files(&self, output_name: &str) -> [String; 3] {
        [
            format!("{PKG_DIR}/{output_name}.{}.js", self.js),
            format!("{PKG_DIR}/{output_name}.{}.wasm", self.wasm),
            format!("{PKG_DIR}/{output_name}.{}.css", self.css),
        ]
    }
}

/// cargo-leptos's hashes: an MD5 in unpadded base64url, 22 characters.
fn is_hash(s: &str) -> bool {
    s.len() == 22 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// True for a file name like `chattr.<hash>.wasm`.
fn has_hash(file_name: &str) -> bool {
    let mut parts = file_name.rsplit('.');
    let (Some(_ext), Some(hash), Some(stem)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    !stem.is_empty() && is_hash(hash)
}

/// The site root, and whether the page refers to its files by hashed names.
#[derive(Debug, Clone)]
pub(crate) struct Site {
    pub root: PathBuf,
    /// The hash file in use, when the build has hashed names.
    pub hash_file: Option<PathBuf>,
}

impl Site {
    /// Looks at what was built into `root`: the hash file is `root/hash.txt`, or, when
    /// `cargo leptos serve` runs the server and says so in `LEPTOS_HASH_FILE_NAME`, that file
    /// (a relative name is next to the executable, as cargo-leptos writes it). One is used only
    /// if the files it names are there, so a hash file left from another build is not.
    pub(crate) fn find(root: &Path, output_name: &str) -> Self {
        let mut candidates = vec![root.join(HASH_FILE)];
        if let Ok(name) = std::env::var("LEPTOS_HASH_FILE_NAME") {
            let exe_dir = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf));
            candidates.push(exe_dir.unwrap_or_default().join(name));
        }
        let hash_file = candidates.into_iter().find(|candidate| {
            let Ok(text) = std::fs::read_to_string(candidate) else {
                return false;
            };
            let built = Hashes::parse(&text)
                .is_some_and(|h| h.files(output_name).iter().all(|f| root.join(f).is_file()));
            if !built {
                tracing::warn!(
                    file = %candidate.display(),
                    site_root = %root.display(),
                    "a hash file names UI files that are not in the site root; it is not used"
                );
            }
            built
        });
        let hash_file = hash_file.map(|f| std::path::absolute(&f).unwrap_or(f));
        if hash_file.is_none() && !root.join(PKG_DIR).join(format!("{output_name}.js")).is_file() {
            tracing::warn!(
                site_root = %root.display(),
                "no UI build in the site root: pages will load without their script and style \
                 (build it with `cargo leptos build`, or set LEPTOS_SITE_ROOT)"
            );
        }
        Self { root: root.to_path_buf(), hash_file }
    }

    /// Leptos's settings: the page refers to the hashed names when there are some.
    pub(crate) fn leptos_options(&self, output_name: &str, addr: SocketAddr) -> LeptosOptions {
        let hash_file = self.hash_file.as_deref().and_then(Path::to_str);
        LeptosOptions::builder()
            .output_name(output_name)
            .site_root(self.root.to_string_lossy().into_owned())
            .site_pkg_dir(PKG_DIR)
            .site_addr(addr)
            // An absolute path: leptos joins it to the executable's folder.
            .hash_file(hash_file.unwrap_or(HASH_FILE).into())
            .hash_files(hash_file.is_some())
            // Where the pages' live-reload script connects under `cargo leptos watch`.
            .reload_port(
                std::env::var("LEPTOS_RELOAD_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3001),
            )
            .build()
    }

    /// The cache policy of a static file at `path` (the request path).
    pub(crate) fn cache_policy(&self, path: &str) -> &'static str {
        let Some(rest) = path.strip_prefix('/').and_then(|p| p.strip_prefix(PKG_DIR)) else {
            return SHORT;
        };
        let Some(rest) = rest.strip_prefix('/') else {
            return SHORT;
        };
        // Only the files directly in pkg/ are named by hash; snippets keep wasm-bindgen's names.
        if self.hash_file.is_some() && !rest.contains('/') && has_hash(rest) {
            IMMUTABLE
        } else {
            REVALIDATE
        }
    }
}

/// The router's fallback: a file of the site root, in the best encoding the request accepts,
/// with its cache policy, or else the not-found page. Only `GET` and `HEAD` are answered;
/// anything else is `405 Method Not Allowed`.
pub(crate) async fn files(State(state): State<AppState>, req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let refused = (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
            "only GET and HEAD are allowed here",
        );
        return refused.into_response();
    }
    let path = req.uri().path().to_owned();
    // The method, the path and the conditional, range and encoding headers all count; a body,
    // if any, does not.
    let (parts, _) = req.into_parts();
    let files = ServeDir::new(&state.site.root)
        .precompressed_br()
        .precompressed_gzip()
        .append_index_html_on_directories(false);
    let Ok(res) = files.oneshot(Request::from_parts(parts, Body::empty())).await;
    if res.status() == StatusCode::NOT_FOUND {
        return not_found();
    }
    let mut res = res.map(Body::new);
    let fresh =
        matches!(res.status(), StatusCode::OK | StatusCode::PARTIAL_CONTENT | StatusCode::NOT_MODIFIED);
    let h = res.headers_mut();
    if fresh {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(state.site.cache_policy(&path)));
    }
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    res
}

/// A plain page for any other path: the UI is a single page, at `/`.
pub(crate) fn not_found() -> Response {
    const PAGE: &str = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
        <title>Not found · Chattr</title></head><body><p>Page not found. \
        <a href=\"/\">Go to Chattr</a></p></body></html>";
    (StatusCode::NOT_FOUND, Html(PAGE)).into_response()
}

/// Middleware: a page (HTML) is revalidated on every visit, unless its handler said otherwise.
pub(crate) async fn revalidate_pages(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let is_html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    if is_html {
        res.headers_mut().entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static(REVALIDATE));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "AbCdEfGhIjKlMnOpQr-_12";

    #[test]
    fn hash_files_are_read_as_cargo_leptos_writes_them() {
        let text = format!("js: {H}\nwasm: {H}\ncss: {H}\n");
        let hashes = Hashes::parse(&text).unwrap();
        assert_eq!(hashes.files("chattr")[1], format!("pkg/chattr.{H}.wasm"));
        assert_eq!(Hashes::parse("js: x\nwasm: y\ncss: z\n"), None, "not hashes");
        assert_eq!(Hashes::parse(&format!("js: {H}\nwasm: {H}\n")), None, "no css");
    }

    #[test]
    fn only_hashed_names_in_pkg_are_immutable() {
        let hashed = Site { root: "site".into(), hash_file: Some("/site/hash.txt".into()) };
        assert_eq!(hashed.cache_policy(&format!("/pkg/chattr.{H}.wasm")), IMMUTABLE);
        assert_eq!(hashed.cache_policy(&format!("/pkg/chattr.{H}.css")), IMMUTABLE);
        assert_eq!(hashed.cache_policy("/pkg/chattr.wasm"), REVALIDATE);
        assert_eq!(hashed.cache_policy(&format!("/pkg/snippets/x-{H}/inline0.js")), REVALIDATE);
        assert_eq!(hashed.cache_policy(&format!("/pkg/.{H}.js")), REVALIDATE);
        assert_eq!(hashed.cache_policy("/favicon.svg"), SHORT);
        assert_eq!(hashed.cache_policy(&format!("/pkgx/chattr.{H}.js")), SHORT);
        let plain = Site { root: "site".into(), hash_file: None };
        assert_eq!(plain.cache_policy(&format!("/pkg/chattr.{H}.wasm")), REVALIDATE);
    }
}

//! Browser security headers. Rendered pages get a Content-Security-Policy whose script source
//! is the nonce leptos_axum makes for each render (every inline script Leptos writes carries
//! it), plus `'wasm-unsafe-eval'` for the UI's WebAssembly; everything else (static files,
//! JSON, the WebSocket upgrade) gets a policy that allows nothing. Every response says
//! `nosniff` and `no-referrer`, and only the server itself and `CHATTR_ALLOWED_ORIGINS` may
//! frame the UI (`frame-ancestors`; `X-Frame-Options: SAMEORIGIN` too when no other origin
//! may).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use leptos::prelude::use_context;
use leptos_axum::ResponseOptions;

/// The headers, built once from the configuration.
#[derive(Clone)]
pub(crate) struct SecurityHeaders(Arc<Inner>);

struct Inner {
    /// `'self'` plus the configured origins that are valid CSP host sources.
    frame_ancestors: String,
    /// Where pages may connect: the server itself, and the live-reload socket of
    /// `cargo leptos watch` while developing.
    connect_src: String,
    /// For responses that are not rendered pages.
    resource_policy: HeaderValue,
    /// Only when nobody else may frame the UI: old browsers know no `frame-ancestors`, and
    /// `X-Frame-Options` cannot name other origins (`ALLOW-FROM` is dead).
    frame_options: Option<HeaderValue>,
}

impl SecurityHeaders {
    #[allow(
        clippy::expect_used,
        reason = "only origins that pass is_origin (visible ASCII) go in the header"
    )]
    pub(crate) fn new(allowed_origins: &[String], live_reload_port: Option<u16>) -> Self {
        let extra: Vec<&str> =
            allowed_origins.iter().map(|o| o.trim().trim_end_matches('/')).filter(|o| is_origin(o)).collect();
        let frame_ancestors =
            std::iter::once("'self'").chain(extra.iter().copied()).collect::<Vec<_>>().join(" ");
        let resource_policy =
            HeaderValue::from_str(&format!("default-src 'none'; frame-ancestors {frame_ancestors}"))
                .expect("validated origins make a valid header");
        let frame_options = extra.is_empty().then(|| HeaderValue::from_static("SAMEORIGIN"));
        let connect_src = match live_reload_port {
            Some(port) => format!("'self' ws://*:{port}"),
            None => "'self'".to_owned(),
        };
        Self(Arc::new(Inner { frame_ancestors, connect_src, resource_policy, frame_options }))
    }

    /// The policy of a rendered page whose inline scripts carry `nonce`.
    pub(crate) fn page_policy(&self, nonce: &str) -> String {
        format!(
            "default-src 'none'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
             style-src 'self'; img-src 'self'; connect-src {}; base-uri 'none'; \
             form-action 'self'; frame-ancestors {}",
            self.0.connect_src, self.0.frame_ancestors
        )
    }

    /// Call inside a Leptos render (the `app_fn` / shell closure): puts the page policy, with
    /// the nonce leptos_axum generated for this render, on the response.
    pub(crate) fn attach_page_policy(&self) {
        let (Some(nonce), Some(res)) = (leptos::nonce::use_nonce(), use_context::<ResponseOptions>()) else {
            return;
        };
        if let Ok(value) = HeaderValue::from_str(&self.page_policy(&nonce)) {
            res.insert_header(header::CONTENT_SECURITY_POLICY, value);
        }
    }
}

/// `scheme://host[:port]` with characters a CSP host source allows; anything else (`*`, paths,
/// spaces, `;`, quotes) is skipped rather than let into the header.
fn is_origin(o: &str) -> bool {
    let Some(rest) = o.strip_prefix("https://").or_else(|| o.strip_prefix("http://")) else {
        return false;
    };
    !rest.is_empty()
        && !rest.starts_with('*')
        && rest.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

/// Middleware for the whole router.
pub(crate) async fn add_headers(State(sec): State<SecurityHeaders>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    // Pages already carry their nonce policy; everything else gets the strict one.
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert_with(|| sec.0.resource_policy.clone());
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Some(xfo) = &sec.0.frame_options {
        h.insert(header::X_FRAME_OPTIONS, xfo.clone());
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_origins_reach_frame_ancestors() {
        let sec = SecurityHeaders::new(
            &[
                "https://app.example/".into(),
                "http://127.0.0.1:3211".into(),
                "*".into(),
                "https://*.evil.example".into(),
                "https://x.example; script-src *".into(),
                "javascript:alert(1)".into(),
            ],
            None,
        );
        assert_eq!(sec.0.frame_ancestors, "'self' https://app.example http://127.0.0.1:3211");
        assert!(sec.0.frame_options.is_none(), "X-Frame-Options cannot name other origins");
        let policy = sec.page_policy("abc");
        assert!(policy.contains("script-src 'self' 'nonce-abc' 'wasm-unsafe-eval';"), "{policy}");
        assert!(!policy.contains("unsafe-inline"));
        assert!(policy.contains("connect-src 'self';"), "{policy}");
        let alone = SecurityHeaders::new(&[], None);
        assert_eq!(alone.0.frame_options.as_ref().map(|v| v.to_str().unwrap()), Some("SAMEORIGIN"));
        assert_eq!(alone.0.resource_policy, "default-src 'none'; frame-ancestors 'self'");
    }

    #[test]
    fn under_cargo_leptos_watch_pages_may_reach_the_reload_socket_only() {
        let dev = SecurityHeaders::new(&[], Some(3001));
        let policy = dev.page_policy("n");
        assert!(policy.contains("connect-src 'self' ws://*:3001;"), "{policy}");
        assert_eq!(dev.0.resource_policy, "default-src 'none'; frame-ancestors 'self'");
    }
}

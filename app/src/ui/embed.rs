//! The chat page's side of `embed.js` (public/embed.js): how a host page mounted it, what that
//! page may ask of it, and what it tells that page.
//!
//! embed.js puts the page in an iframe at `/?embed=widget|inline&host=<its origin>&…`. Both
//! sides post with the other's exact origin as the target and take messages only from the
//! other's window and origin: the frame listens to its parent alone, and only when the message
//! comes from the origin named in `host`. The address cannot lie its way in: only pages on
//! `CHATTR_ALLOWED_ORIGINS` may frame the chat at all (frame-ancestors), and the browser
//! delivers the frame's events only to the origin named, which must be the parent's. What the
//! host may ask is what the person could do by hand in the frame (log in with a token the app
//! gave, open a conversation, log out, show or hide it, pick the theme), never speaking for them.

#![cfg_attr(
    not(feature = "hydrate"),
    allow(dead_code, reason = "the server build renders the page: it never meets a host page")
)]

use crate::protocol::names::{is_channel, is_forbidden_in_name, MAX_CHANNEL_CHARS, MAX_NICK_CHARS};

/// Longest token or JWT a host may hand over (the server refuses longer ones anyway).
const MAX_TOKEN: usize = 4096;

/// How the page was mounted, from its query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Embedding {
    /// A floating panel the host opens and closes (it starts closed), rather than inline.
    pub widget: bool,
    /// The host page's origin: where events go, and the only origin requests are taken from.
    pub host: Option<String>,
    /// The channel to join and show on each login (`data-channel`).
    pub channel: Option<String>,
    /// What `Chattr.open` asked for before the login it is waiting for.
    pub open: Option<String>,
    /// `light`, `dark` or `system`, as the host asked.
    pub theme: Option<String>,
}

impl Embedding {
    /// Reads the (decoded) query parameters; `None` when the page was not mounted by embed.js.
    pub(crate) fn from_params(get: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let mode = get("embed")?;
        Some(Self {
            widget: mode == "widget",
            host: get("host").filter(|h| is_origin(h)),
            channel: get("channel").filter(|c| is_channel(c) && is_name(c)),
            open: None,
            theme: get("theme").filter(|t| is_theme(t)),
        })
    }
}

/// What the host page asks, by `postMessage({type: "chattr:…", …})`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostRequest {
    /// `chattr:login` (or `chattr:token`, the older name) with `token`: a token or a JWT.
    Login(String),
    /// `chattr:open` with `target`: a channel (joined if need be) or a nick (a private chat).
    Open(String),
    /// `chattr:logout`.
    Logout,
    /// `chattr:view` with `open`: whether the person can see the chat (a widget's panel).
    View(bool),
    /// `chattr:theme` with `theme`.
    Theme(String),
}

impl HostRequest {
    /// From a message's `type` and its string and boolean fields; anything malformed is `None`
    /// (and ignored).
    pub(crate) fn parse(
        kind: &str,
        text: impl Fn(&str) -> Option<String>,
        flag: impl Fn(&str) -> Option<bool>,
    ) -> Option<Self> {
        Some(match kind {
            "chattr:login" | "chattr:token" => {
                Self::Login(text("token").filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN)?)
            }
            "chattr:open" => Self::Open(text("target").filter(|t| is_name(t))?),
            "chattr:logout" => Self::Logout,
            "chattr:view" => Self::View(flag("open")?),
            "chattr:theme" => Self::Theme(text("theme").filter(|t| is_theme(t))?),
            _ => return None,
        })
    }
}

/// What the page tells its host, as `postMessage({type: "chattr:…", …})`, JSON-shaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostEvent {
    /// Listening: requests may come now.
    Ready,
    /// Unread lines and mentions the person has not seen.
    Unread { unread: u32, mentions: u32 },
    /// `idle` (logged out), `connecting`, `online`, `reconnecting` or `offline` (for good),
    /// with the nick when logged in.
    Connection { state: &'static str, nick: Option<String> },
    /// A message from someone else, for the host's own notifications.
    Message { conversation: String, from: String, text: String, mention: bool },
}

impl HostEvent {
    pub(crate) fn to_json(&self) -> String {
        let s = |text: &str| serde_json::to_string(text).unwrap_or_default();
        match self {
            Self::Ready => r#"{"type":"chattr:ready"}"#.to_owned(),
            Self::Unread { unread, mentions } => {
                format!(r#"{{"type":"chattr:unread","unread":{unread},"mentions":{mentions}}}"#)
            }
            Self::Connection { state, nick } => format!(
                r#"{{"type":"chattr:connection","state":"{state}","nick":{}}}"#,
                nick.as_deref().map_or("null".to_owned(), s)
            ),
            Self::Message { conversation, from, text, mention } => format!(
                r#"{{"type":"chattr:message","conversation":{},"from":{},"text":{},"mention":{mention}}}"#,
                s(conversation),
                s(from),
                s(text)
            ),
        }
    }
}

/// Could name a channel or a nick (the server judges the rest when it is used): a channel with
/// a name after its `#`, a nick as long as nicks may be and not starting with a digit or `-`
/// (`open("0")` would open a conversation with nobody), neither holding a character no name
/// may. The protocol's own checks are not used here: their Unicode tables would cost the page
/// tens of kilobytes.
fn is_name(t: &str) -> bool {
    let len = t.chars().count();
    let shaped = if is_channel(t) {
        t != "#" && len <= MAX_CHANNEL_CHARS
    } else {
        (1..=MAX_NICK_CHARS).contains(&len) && !t.starts_with(|c: char| c.is_ascii_digit() || c == '-')
    };
    shaped && !t.chars().any(is_forbidden_in_name)
}

fn is_theme(t: &str) -> bool {
    ["light", "dark", "system"].contains(&t)
}

/// `http(s)://host[:port]`: an origin as `location.origin` spells it, nothing after it.
fn is_origin(o: &str) -> bool {
    let rest = o.strip_prefix("https://").or_else(|| o.strip_prefix("http://"));
    rest.is_some_and(|r| {
        !r.is_empty()
            && r.len() <= 253
            && r.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    })
}

/// The page's embedding, read from its address (never in the server build).
pub(crate) fn embedding() -> Option<Embedding> {
    #[cfg(feature = "hydrate")]
    {
        let search = web_sys::window()?.location().search().ok()?;
        let params = web_sys::UrlSearchParams::new_with_str(&search).ok()?;
        Embedding::from_params(|name| params.get(name))
    }
    #[cfg(not(feature = "hydrate"))]
    None
}

/// Calls `on_request` with what the parent window asks, when it comes from `host` (or, for a
/// page framed without embed.js, from the parent whatever its origin: the older token handover).
pub(crate) fn listen(host: Option<String>, on_request: impl Fn(HostRequest) + 'static) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsValue;
        let handle =
            leptos::prelude::window_event_listener(leptos::ev::message, move |ev: web_sys::MessageEvent| {
                let Some(window) = web_sys::window() else { return };
                // Identity, not type checks: a cross-origin parent is an opaque window proxy.
                let from_parent = match (ev.source(), window.parent().ok().flatten()) {
                    (Some(source), Some(parent)) => {
                        js_sys::Object::is(&source, &parent) && !js_sys::Object::is(&parent, &window)
                    }
                    _ => false,
                };
                if !from_parent || host.as_ref().is_some_and(|h| *h != ev.origin()) {
                    return;
                }
                let data = ev.data();
                let field = |name: &str| js_sys::Reflect::get(&data, &JsValue::from_str(name)).ok();
                let Some(kind) = field("type").and_then(|v| v.as_string()) else { return };
                let request = HostRequest::parse(
                    &kind,
                    |name| field(name).and_then(|v| v.as_string()),
                    |name| field(name).and_then(|v| v.as_bool()),
                );
                // A plain framing page may only hand over a token, as it always could.
                if let Some(request) =
                    request.filter(|r| host.is_some() || matches!(r, HostRequest::Login(_)))
                {
                    on_request(request);
                }
            });
        // Listen for the page's lifetime.
        std::mem::forget(handle);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (host, on_request);
}

/// Tells the host page (at origin `host`) about `event`.
pub(crate) fn tell(host: &str, event: &HostEvent) {
    #[cfg(feature = "hydrate")]
    {
        let parent = web_sys::window().and_then(|w| w.parent().ok().flatten());
        if let (Some(parent), Ok(message)) = (parent, js_sys::JSON::parse(&event.to_json())) {
            let _ = parent.post_message(&message, host);
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (host, event);
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn embedding(query: &[(&str, &str)]) -> Option<Embedding> {
        let params: HashMap<&str, &str> = query.iter().copied().collect();
        Embedding::from_params(|name| params.get(name).map(|v| (*v).to_owned()))
    }

    #[test]
    fn the_address_says_how_the_page_was_mounted_and_nothing_unchecked_gets_through() {
        assert_eq!(embedding(&[("channel", "#x")]), None, "not mounted by embed.js");
        assert_eq!(
            embedding(&[
                ("embed", "widget"),
                ("host", "https://app.example:8443"),
                ("channel", "#support"),
                ("theme", "dark")
            ]),
            Some(Embedding {
                widget: true,
                host: Some("https://app.example:8443".into()),
                channel: Some("#support".into()),
                open: None,
                theme: Some("dark".into()),
            })
        );
        let odd = embedding(&[
            ("embed", "inline"),
            ("host", "https://app.example/path"),
            ("channel", "support"),
            ("theme", "neon"),
        ]);
        assert_eq!(odd, Some(Embedding::default()));
        for host in ["*", "null", "javascript:alert(1)", "https://", "https://a b", "ftp://x", "https://x\"y"]
        {
            assert_eq!(
                embedding(&[("embed", "inline"), ("host", host)]).and_then(|e| e.host),
                None,
                "{host}"
            );
        }
        assert!(embedding(&[("embed", "inline"), ("host", "http://127.0.0.1:3211")])
            .is_some_and(|e| e.host.is_some()));
    }

    fn request(kind: &str, fields: &[(&str, &str)], open: Option<bool>) -> Option<HostRequest> {
        let fields: HashMap<&str, &str> = fields.iter().copied().collect();
        HostRequest::parse(kind, |n| fields.get(n).map(|v| (*v).to_owned()), |_| open)
    }

    #[test]
    fn host_requests_are_read_strictly() {
        assert_eq!(
            request("chattr:login", &[("token", "ct1.abc")], None),
            Some(HostRequest::Login("ct1.abc".into()))
        );
        assert_eq!(
            request("chattr:token", &[("token", "ct1.abc")], None),
            Some(HostRequest::Login("ct1.abc".into()))
        );
        assert_eq!(request("chattr:login", &[("token", "")], None), None);
        assert_eq!(request("chattr:login", &[("token", &"x".repeat(MAX_TOKEN + 1))], None), None);
        assert_eq!(
            request("chattr:open", &[("target", "#help")], None),
            Some(HostRequest::Open("#help".into()))
        );
        assert_eq!(
            request("chattr:open", &[("target", "alice")], None),
            Some(HostRequest::Open("alice".into()))
        );
        assert_eq!(request("chattr:open", &[("target", "two words")], None), None);
        assert_eq!(request("chattr:open", &[("target", "#")], None), None);
        assert_eq!(request("chattr:open", &[("target", &"n".repeat(MAX_CHANNEL_CHARS + 1))], None), None);
        let longest_channel = format!("#{}", "c".repeat(MAX_CHANNEL_CHARS - 1));
        assert_eq!(
            request("chattr:open", &[("target", &longest_channel)], None),
            Some(HostRequest::Open(longest_channel.clone()))
        );
        assert_eq!(request("chattr:open", &[("target", &format!("{longest_channel}c"))], None), None);
        let longest_nick = "n".repeat(MAX_NICK_CHARS);
        assert_eq!(
            request("chattr:open", &[("target", &longest_nick)], None),
            Some(HostRequest::Open(longest_nick.clone()))
        );
        assert_eq!(request("chattr:open", &[("target", &format!("{longest_nick}n"))], None), None);
        // No nick starts with a digit or '-': no conversation with nobody.
        assert_eq!(request("chattr:open", &[("target", "0")], None), None);
        assert_eq!(request("chattr:open", &[("target", "-x")], None), None);
        assert_eq!(request("chattr:open", &[("target", "a\u{202e}b")], None), None);
        assert_eq!(request("chattr:open", &[], None), None);
        assert_eq!(request("chattr:logout", &[], None), Some(HostRequest::Logout));
        assert_eq!(request("chattr:view", &[], Some(false)), Some(HostRequest::View(false)));
        assert_eq!(request("chattr:view", &[], None), None);
        assert_eq!(
            request("chattr:theme", &[("theme", "light")], None),
            Some(HostRequest::Theme("light".into()))
        );
        assert_eq!(request("chattr:theme", &[("theme", "url(x)")], None), None);
        assert_eq!(request("chattr:run", &[("line", "/quit")], None), None, "no commands by proxy");
    }

    #[test]
    fn events_are_json_with_every_string_escaped() {
        let parse = |e: HostEvent| serde_json::from_str::<serde_json::Value>(&e.to_json()).unwrap();
        assert_eq!(parse(HostEvent::Ready)["type"], "chattr:ready");
        let unread = parse(HostEvent::Unread { unread: 3, mentions: 1 });
        assert_eq!((unread["unread"].as_u64(), unread["mentions"].as_u64()), (Some(3), Some(1)));
        let conn = parse(HostEvent::Connection { state: "online", nick: Some("zoë".into()) });
        assert_eq!((conn["state"].as_str(), conn["nick"].as_str()), (Some("online"), Some("zoë")));
        assert!(parse(HostEvent::Connection { state: "idle", nick: None })["nick"].is_null());
        let text = "\"},\"type\":\"chattr:ready\\ <b>\u{2028}";
        let message = parse(HostEvent::Message {
            conversation: "#a".into(),
            from: "bob".into(),
            text: text.into(),
            mention: true,
        });
        assert_eq!(message["type"], "chattr:message");
        assert_eq!(message["text"], text);
        assert_eq!(message["mention"], true);
    }
}

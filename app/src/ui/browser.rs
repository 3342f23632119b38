//! The few browser facilities the UI uses beyond the DOM it renders: local storage for the
//! theme, desktop notifications, the local time zone, the tab's title and icon, the URL
//! fragment (a host app's login token; `embed` has the rest of the embedding). In the server build every function
//! is a harmless no-op.

/// The light/dark choice: `"light"`, `"dark"`, or `"system"` (follow the OS).
pub(super) fn load_theme() -> String {
    #[cfg(feature = "hydrate")]
    {
        let stored = web_sys::window()
            .and_then(|w| w.local_storage().ok().flatten())
            .and_then(|s| s.get_item("chattr-theme").ok().flatten());
        if let Some(theme) = stored.filter(|t| ["light", "dark", "system"].contains(&t.as_str())) {
            return theme;
        }
    }
    "system".into()
}

/// Applies and remembers a theme (`data-theme` on `<html>`).
pub(super) fn set_theme(theme: &str) {
    #[cfg(feature = "hydrate")]
    {
        if let Some(w) = web_sys::window() {
            if let Some(storage) = w.local_storage().ok().flatten() {
                let _ = storage.set_item("chattr-theme", theme);
            }
            if let Some(root) = w.document().and_then(|d| d.document_element()) {
                let _ = root.set_attribute("data-theme", theme);
            }
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = theme;
}

/// Minutes to add to UTC for local time at `ts_ms` (ms since the epoch): the offset moves
/// with daylight saving time.
pub(super) fn utc_offset_minutes(ts_ms: u64) -> i64 {
    #[cfg(feature = "hydrate")]
    {
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ts_ms as f64));
        -(date.get_timezone_offset() as i64)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = ts_ms;
        0
    }
}

/// Whether desktop notifications are allowed.
pub(super) fn notifications_granted() -> bool {
    #[cfg(feature = "hydrate")]
    {
        web_sys::Notification::permission() == web_sys::NotificationPermission::Granted
    }
    #[cfg(not(feature = "hydrate"))]
    false
}

/// Asks for permission to show desktop notifications (only ever on the user's click).
pub(super) fn request_notifications(done: impl Fn(bool) + 'static) {
    #[cfg(feature = "hydrate")]
    {
        if let Ok(promise) = web_sys::Notification::request_permission() {
            leptos::task::spawn_local(async move {
                let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
                done(notifications_granted());
            });
            return;
        }
    }
    done(false);
}

/// Shows a desktop notification when allowed and the page is not in view.
pub(super) fn notify(title: &str, body: &str) {
    #[cfg(feature = "hydrate")]
    {
        let hidden = web_sys::window().and_then(|w| w.document()).is_some_and(|d| d.hidden());
        if hidden && notifications_granted() {
            let options = web_sys::NotificationOptions::new();
            options.set_body(body);
            let _ = web_sys::Notification::new_with_options(title, &options);
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (title, body);
}

/// A login token handed over in the URL fragment (`#token=…`), removed from the address bar
/// once read so it never lingers in history.
pub(super) fn take_fragment_token() -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        let window = web_sys::window()?;
        let hash = window.location().hash().ok()?;
        let token = hash
            .trim_start_matches('#')
            .split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .filter(|t| !t.is_empty())?
            .to_owned();
        let path = window.location().pathname().unwrap_or_else(|_| "/".into());
        if let Ok(history) = window.history() {
            let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&path));
        }
        Some(token)
    }
    #[cfg(not(feature = "hydrate"))]
    None
}

/// A number in `0.0..1.0` for jitter.
pub(super) fn random() -> f64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Math::random()
    }
    #[cfg(not(feature = "hydrate"))]
    0.5
}

/// Which of the browser's stores a record lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Store {
    /// Per browser, kept until cleared.
    Local,
    /// Per tab, kept across reloads, gone with the tab.
    Tab,
}

#[cfg(feature = "hydrate")]
fn storage(store: Store) -> Option<web_sys::Storage> {
    let window = web_sys::window()?;
    match store {
        Store::Local => window.local_storage().ok().flatten(),
        Store::Tab => window.session_storage().ok().flatten(),
    }
}

/// A remembered record, if there is one and it still reads.
pub(super) fn load<T: serde::de::DeserializeOwned>(store: Store, key: &str) -> Option<T> {
    #[cfg(feature = "hydrate")]
    {
        let text = storage(store)?.get_item(key).ok().flatten()?;
        serde_json::from_str(&text).ok()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (store, key);
        None
    }
}

/// Remembers a record (a full or unavailable store just does not remember).
pub(super) fn save<T: serde::Serialize>(store: Store, key: &str, value: &T) {
    #[cfg(feature = "hydrate")]
    if let (Some(storage), Ok(text)) = (storage(store), serde_json::to_string(value)) {
        let _ = storage.set_item(key, &text);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (store, key, value);
}

/// Forgets a record.
pub(super) fn forget(store: Store, key: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(storage) = storage(store) {
        let _ = storage.remove_item(key);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (store, key);
}

/// Milliseconds since the Unix epoch, by the browser's clock.
pub(super) fn now_ms() -> u64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now() as u64
    }
    #[cfg(not(feature = "hydrate"))]
    0
}

/// Whether the window is phone-narrow (the one-column layout).
pub(super) fn is_narrow() -> bool {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window()
            .and_then(|w| w.inner_width().ok())
            .and_then(|w| w.as_f64())
            .is_some_and(|w| w <= 720.0)
    }
    #[cfg(not(feature = "hydrate"))]
    false
}

/// Points the page's icon (`<link rel="icon">`) at `href`, if it is not there already.
pub(super) fn set_favicon(href: &str) {
    #[cfg(feature = "hydrate")]
    {
        let link = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.query_selector("link[rel~='icon']").ok().flatten());
        if let Some(link) = link.filter(|l| l.get_attribute("href").as_deref() != Some(href)) {
            let _ = link.set_attribute("href", href);
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = href;
}

/// Sets the document's title (the tab's label).
pub(super) fn set_title(title: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(document) = web_sys::window().and_then(|w| w.document()) {
        document.set_title(title);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = title;
}

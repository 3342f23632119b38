//! The browser entry point: hydrates the server-rendered page and marks `<body data-hydrated>` for tests.

use wasm_bindgen::prelude::wasm_bindgen;

/// Called by the hydration script cargo-leptos generates.
#[wasm_bindgen]
pub fn hydrate() {
    // A panic's message in the console, in debug builds. The release bundle goes without it
    // (about 900 bytes of its size budget): a panic there still shows, as the wasm's trap.
    #[cfg(debug_assertions)]
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::Root);
    if let Some(body) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.body()) {
        // Ignored on failure: the attribute only helps tests know the page is interactive.
        let _ = body.set_attribute("data-hydrated", "true");
    }
}

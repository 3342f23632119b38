//! Chattr's shared crate: the wire [`protocol`] (used by the server and the browser alike) and
//! the Leptos UI, server-rendered by `chattrd` and hydrated in the browser by `frontend`.

pub mod protocol;
pub mod ui;

use leptos::prelude::*;
use leptos_meta::HashedStylesheet;

pub use ui::App;

/// The HTML document around the app, rendered by the server. The stylesheet, script and wasm
/// are referred to by the names the build gave them (content-hashed in a release build).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HashedStylesheet id="leptos" options=options.clone()/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <title>Chattr</title>
            </head>
            <body>
                <Root/>
            </body>
        </html>
    }
}

/// The body content, shared by server rendering and hydration. Chattr is one page, so there is
/// no router (chattrd answers other paths with a plain not-found page), and the head is the
/// shell's alone (no leptos_meta context): each would add their hydration code to the wasm.
#[component]
pub fn Root() -> impl IntoView {
    view! { <App/> }
}

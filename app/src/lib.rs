//! Chattr's shared crate: the wire [`protocol`] (used by the server and the browser alike) and
//! the Leptos UI, server-rendered by `chattrd` and hydrated in the browser by `frontend`.

pub mod protocol;
pub mod ui;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::StaticSegment;

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
                <MetaTags/>
            </head>
            <body>
                <Root/>
            </body>
        </html>
    }
}

/// The body content, shared by server rendering and hydration.
#[component]
pub fn Root() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title text="Chattr"/>
        <Router>
            <Routes fallback=|| "Page not found.">
                <Route path=StaticSegment("") view=App/>
            </Routes>
        </Router>
    }
}

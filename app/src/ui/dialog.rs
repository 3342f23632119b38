//! A modal dialog that behaves as keyboard and screen-reader users expect: it takes focus (the
//! first field or button in it), keeps Tab and Shift+Tab inside, closes on Escape or a click
//! on the backdrop, and gives focus back to what had it before. Also the arrow-key moves of a
//! menu.

use leptos::html;
use leptos::prelude::*;

use super::switch::component;

/// What can take focus inside a dialog.
#[cfg(feature = "hydrate")]
const FOCUSABLE: &str = "input:not([disabled]), textarea:not([disabled]), select:not([disabled]), \
                         button:not([disabled]), a[href], [tabindex]:not([tabindex='-1'])";

#[cfg(feature = "hydrate")]
fn focusables(root: &web_sys::Element) -> Vec<web_sys::HtmlElement> {
    use wasm_bindgen::JsCast;
    let Ok(list) = root.query_selector_all(FOCUSABLE) else { return Vec::new() };
    (0..list.length()).filter_map(|i| list.item(i)?.dyn_into::<web_sys::HtmlElement>().ok()).collect()
}

// `#[component]` re-emits the function in a way `unreachable_pub` misreads.
#[allow(unreachable_pub)]
#[component]
pub(super) fn Modal<C: IntoView + 'static>(
    /// The dialog's accessible name.
    #[prop(into)]
    label: String,
    /// Asked to close (Escape, the backdrop); the owner hides the dialog.
    #[prop(into)]
    on_close: Callback<()>,
    /// A class for the dialog box.
    #[prop(optional, into)]
    class: String,
    /// Typed, not erased: each erased view carries its own render code into the bundle.
    children: TypedChildren<C>,
) -> impl IntoView {
    let children = children.into_inner();
    let dialog = NodeRef::<html::Div>::new();
    #[cfg(feature = "hydrate")]
    {
        let previous = StoredValue::new_local(
            web_sys::window().and_then(|w| w.document()).and_then(|d| d.active_element()),
        );
        Effect::new(move |_| {
            if let Some(el) = dialog.get() {
                if let Some(first) = focusables(&el).into_iter().next() {
                    let _ = first.focus();
                }
            }
        });
        on_cleanup(move || {
            use wasm_bindgen::JsCast;
            let back =
                previous.try_get_value().flatten().and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
            if let Some(back) = back {
                let _ = back.focus();
            }
        });
    }
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| match ev.key().as_str() {
        "Escape" => {
            ev.prevent_default();
            on_close.run(());
        }
        #[cfg(feature = "hydrate")]
        "Tab" => {
            let Some(el) = dialog.get_untracked() else { return };
            let items = focusables(&el);
            let active = web_sys::window().and_then(|w| w.document()).and_then(|d| d.active_element());
            let at = |i: Option<&web_sys::HtmlElement>| {
                i.zip(active.as_ref()).is_some_and(|(a, b)| js_sys::Object::is(a, b))
            };
            let target = if ev.shift_key() && at(items.first()) {
                items.last()
            } else if !ev.shift_key() && at(items.last()) {
                items.first()
            } else {
                None
            };
            if let Some(target) = target {
                ev.prevent_default();
                let _ = target.focus();
            }
        }
        _ => {}
    };
    let on_backdrop = move |ev: leptos::ev::MouseEvent| {
        // Only a click on the backdrop itself, not one that bubbled up from inside.
        if ev.target() == ev.current_target() {
            on_close.run(());
        }
    };
    component(view! {
        <div class="modal" on:click=on_backdrop>
            <div
                class=format!("dialog {class}")
                role="dialog"
                aria-modal="true"
                aria-label=label
                node_ref=dialog
                on:keydown=on_keydown
            >
                {children()}
            </div>
        </div>
    })
}

/// Moves focus within a menu for an arrow key (↓ ↑ Home End); answers whether the key was one.
pub(super) fn menu_key(menu: Option<leptos::web_sys::HtmlDivElement>, key: &str) -> bool {
    #[cfg(feature = "hydrate")]
    {
        let Some(menu) = menu else { return false };
        let items = focusables(&menu);
        if items.is_empty() {
            return false;
        }
        let active = web_sys::window().and_then(|w| w.document()).and_then(|d| d.active_element());
        let at = items.iter().position(|i| active.as_ref().is_some_and(|a| js_sys::Object::is(i, a)));
        let n = items.len();
        let next = match (key, at) {
            ("ArrowDown", Some(i)) => (i + 1) % n,
            ("ArrowUp", Some(i)) => (i + n - 1) % n,
            ("ArrowDown" | "Home", _) => 0,
            ("ArrowUp" | "End", _) => n - 1,
            _ => return false,
        };
        let _ = items[next].focus();
        true
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (menu, key);
        false
    }
}

/// Focuses the first field or button in `root`, if any.
pub(super) fn focus_first(root: Option<leptos::web_sys::HtmlElement>) {
    #[cfg(feature = "hydrate")]
    if let Some(first) = root.and_then(|r| focusables(&r).into_iter().next()) {
        let _ = first.focus();
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = root;
}

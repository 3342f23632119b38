//! Where views keep their types and where they lose them. In the browser every type-erased
//! view (`AnyView`: `.into_any()`, Leptos's `<Show>`, `Children`) brings its own copy of the
//! build, hydrate and diff code into the bundle, so there views keep their concrete types:
//! `show` and `show_else` replace `<Show>` with an `Option` or an `Either`. On the server the
//! opposite holds: rendering is generic over the whole tree's type, and with every view typed
//! the debug info of those nested types alone runs to gigabytes, so `component` erases each
//! component's view there. Both render the same HTML.

use leptos::either::Either;
use leptos::prelude::*;

/// `view` while `when` holds. `when` is memoised, so the view is built again only when the
/// condition changes, not whenever something it reads does.
pub(super) fn show<V>(
    when: impl Fn() -> bool + Send + Sync + 'static,
    view: impl Fn() -> V + Send + Sync + 'static,
) -> impl IntoView
where
    V: IntoView + 'static,
{
    let when = Memo::new(move |_| when());
    move || when.get().then(&view)
}

/// `view` while `when` holds, `otherwise` when it does not.
pub(super) fn show_else<V, W>(
    when: impl Fn() -> bool + Send + Sync + 'static,
    view: impl Fn() -> V + Send + Sync + 'static,
    otherwise: impl Fn() -> W + Send + Sync + 'static,
) -> impl IntoView
where
    V: IntoView + 'static,
    W: IntoView + 'static,
{
    let when = Memo::new(move |_| when());
    move || if when.get() { Either::Left(view()) } else { Either::Right(otherwise()) }
}

/// `value`, memoised: what reads it is told only when it changes, not whenever something it
/// reads does (the chat state changes with every event). A plain list rebuilt from a value
/// (`move || list().into_iter().map(…).collect_view()`) whose items hold reactive parts reads
/// its value through this: rebuilt, those parts are made anew, and a button among them would
/// lose the focus to any message arriving.
pub(super) fn memo<T>(
    value: impl Fn() -> T + Send + Sync + 'static,
) -> impl Fn() -> T + Copy + Send + Sync + 'static
where
    T: Clone + PartialEq + Send + Sync + 'static,
{
    let memo = Memo::new(move |_| value());
    move || memo.get()
}

/// A component's view, type-erased: the server's side.
#[cfg(feature = "ssr")]
pub(super) fn component<V: IntoView + 'static>(view: V) -> AnyView {
    view.into_any()
}

/// A component's view, with its type: the browser's side.
#[cfg(not(feature = "ssr"))]
pub(super) fn component<V: IntoView>(view: V) -> V {
    view
}

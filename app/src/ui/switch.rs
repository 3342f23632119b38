//! `<Show>` without its type erasure. Leptos's `Show` takes its children as an `AnyView`,
//! and every erased view brings its own copy of the build, hydrate and diff code into the
//! bundle; these keep each view's concrete type (as an `Option` or an `Either`) instead.

use leptos::either::Either;
use leptos::prelude::*;

/// `view` while `when` holds. `when` is memoised, so the view is built again only when the
/// condition changes, not whenever something it reads does.
pub fn show<V>(
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
pub fn show_else<V, W>(
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

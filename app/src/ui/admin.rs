//! The operator page, for a server operator: the server bans, each with a way to lift it, and
//! the audit log. Opening it asks for both lists; the server answers a lift with the new ban
//! list, and the page asks for the log again after it. A ban is set from a member's menu
//! (`ban`), whose answer updates the list quietly.

use leptos::either::Either;
use leptos::prelude::*;

use super::dialog::Modal;
use super::state::{audit_words, kline_words};
use super::switch::{component, memo};
use super::{browser, time, Ctx};
use crate::protocol::{Command, Kline, OperRequest};

/// The lengths a server ban is offered for: seconds (empty: for good) and label.
pub(super) const DURATIONS: &[(&str, &str)] =
    &[("3600", "1 hour"), ("86400", "1 day"), ("604800", "7 days"), ("2592000", "30 days"), ("", "For good")];

/// The operator's command `request`.
pub(super) fn oper(ctx: Ctx, request: OperRequest) {
    ctx.run(Command::Oper { request });
}

/// Opens the operator page, asking for the server bans and the audit log.
pub(super) fn open(ctx: Ctx) {
    ctx.state.update(|s| {
        s.administering = true;
        s.admin_problem = None;
    });
    oper(ctx, OperRequest::Klines);
    oper(ctx, OperRequest::Audit);
}

/// Bans `mask` from the server for `length` (one of [`DURATIONS`]). The server answers with
/// the ban list, which updates the operator page without a line in the conversation.
pub(super) fn ban(ctx: Ctx, mask: String, length: &str, reason: Option<String>) {
    ctx.state.update(|s| s.klines_asked = true);
    oper(ctx, OperRequest::Kline { mask, duration_secs: length.parse().ok(), reason });
}

/// A time as the page shows it, in the browser's zone.
fn when(ts: u64) -> String {
    time::full(ts, browser::utc_offset_minutes(ts))
}

/// The server bans (each with a button to lift it) and the audit log. Plain text lines, kept
/// few elements on purpose: each element is code in the browser bundle.
// `#[component]` re-emits the function in a way `unreachable_pub` misreads.
#[allow(unreachable_pub)]
#[component]
pub(super) fn AdminPage() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let close = move || ctx.state.update(|s| s.administering = false);
    let klines = memo(move || ctx.state.with(|s| s.klines.clone()));
    let problem = move || ctx.state.with(|s| s.admin_problem.clone());
    component(view! {
        <Modal label="Server administration" on_close=move |()| close() class="admin-page">
            <h2>"Server administration"</h2>
            {move || problem().map(|p| view! { <p class="field-error" role="alert" data-testid="admin-problem">{p}</p> })}
            <h3>"Server bans"</h3>
            <p class="hint">"Ban someone from their menu in a channel's member list, or with /kline."</p>
            <ul class="ban-list" data-testid="klines">
                {move || match klines() {
                    None => Either::Left(view! { <li class="hint">"Loading…"</li> }),
                    Some(list) if list.is_empty() => Either::Left(view! { <li class="hint">"No server bans."</li> }),
                    Some(list) => Either::Right(list.into_iter().map(|k| kline_item(ctx, k)).collect_view()),
                }}
            </ul>
            <h3>"Audit log"</h3>
            <ol class="audit-log" data-testid="audit-log">
                {move || ctx.state.with(|s| s.audit.iter().flatten().map(|e| view! { <li>{format!("{}: {}", when(e.at), audit_words(e))}</li> }).collect_view())}
            </ol>
            <div class="row">
                <button type="button" class="secondary" on:click=move |_| close()>"Close"</button>
            </div>
        </Modal>
    })
}

fn kline_item(ctx: Ctx, kline: Kline) -> impl IntoView {
    let text = kline_words(&kline, browser::now_ms());
    let mask = kline.mask;
    let label = format!("Lift the ban on {mask}");
    let lift = move |_| {
        ctx.state.update(|s| s.admin_problem = None);
        oper(ctx, OperRequest::Unkline { mask: mask.clone() });
        oper(ctx, OperRequest::Audit);
    };
    view! {
        <li class="ban">
            {text}
            <button type="button" class="link-button" aria-label=label on:click=lift>"Lift"</button>
        </li>
    }
}

//! The login view: come in as a guest, sign in to a registered nick, or register one. A host
//! app logs its users in without this form, with a token (see `browser`).

use leptos::prelude::*;

use super::switch::{component, show};
use super::{Ctx, Potato, StatusLine};
use crate::protocol::ClientFrame;

/// How the form logs in; kept in [`Ctx`] so a refused login comes back to the same tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Mode {
    #[default]
    Guest,
    SignIn,
    Register,
}

/// A throwaway nick to log in with before identifying takes the account's nick.
fn temporary_nick() -> String {
    format!("Guest-{:05}", (super::browser::random() * 100_000.0) as u32)
}

// `#[component]` re-emits the function in a way `unreachable_pub` misreads.
#[allow(unreachable_pub)]
#[component]
pub(super) fn Login() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    // The last login's tab and nick, so a refused one comes back as it was typed.
    let mode = ctx.login_mode;
    let nick = RwSignal::new(ctx.login_nick.get_untracked());
    let password = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    // Server-rendered, the form is inert until the page is hydrated (effects run only then):
    // submitted earlier, it would reload the page as `GET /?nick=…` and lose what was typed.
    let ready = RwSignal::new(false);
    Effect::new(move |_| ready.set(true));
    // What the form itself refuses, before anything is sent: the browser's own checks
    // (`minlength`) do not run on values written back by the page.
    let refused = RwSignal::new(None::<String>);
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let nick = nick.get_untracked().trim().to_owned();
        let password = password.get_untracked();
        refused.set(None);
        ctx.login_problem.set(None);
        ctx.login_nick.set(nick.clone());
        if nick.is_empty() {
            return;
        }
        let m = mode.get_untracked();
        let problem = match m {
            Mode::Guest => None,
            Mode::SignIn => password_problem(&password),
            Mode::Register => password_problem(&password).or_else(|| email_problem(&email.get_untracked())),
        };
        if let Some(problem) = problem {
            refused.set(Some(problem.into()));
            return;
        }
        let auth = |nick: String| ClientFrame::Auth { token: None, nick: Some(nick), resume: None };
        match mode.get_untracked() {
            Mode::Guest => ctx.start(auth(nick), Potato::None),
            Mode::SignIn => ctx.start(auth(temporary_nick()), Potato::Identify { nick, password }),
            Mode::Register => {
                let email = email.get_untracked().trim().to_owned();
                ctx.start(auth(nick), Potato::Register { password, email });
            }
        }
    };
    // Tabs as the pattern has them: the chosen one is the one Tab reaches, ←/→ (and Home/End)
    // move between them, and they control the fields below.
    const MODES: [Mode; 3] = [Mode::Guest, Mode::SignIn, Mode::Register];
    let on_tab_key = move |ev: leptos::ev::KeyboardEvent| {
        let at = MODES.iter().position(|&m| m == mode.get_untracked()).unwrap_or(0);
        let next = match ev.key().as_str() {
            "ArrowRight" => (at + 1) % MODES.len(),
            "ArrowLeft" => (at + MODES.len() - 1) % MODES.len(),
            "Home" => 0,
            "End" => MODES.len() - 1,
            _ => return,
        };
        ev.prevent_default();
        mode.set(MODES[next]);
        #[cfg(feature = "hydrate")]
        if let Some(tab) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id(&format!("login-tab-{next}")))
        {
            use leptos::wasm_bindgen::JsCast;
            if let Ok(tab) = tab.dyn_into::<web_sys::HtmlElement>() {
                let _ = tab.focus();
            }
        }
    };
    let tab = move |m: Mode, label: &'static str| {
        let i = MODES.iter().position(|&x| x == m).unwrap_or(0);
        view! {
            <button
                type="button"
                role="tab"
                id=format!("login-tab-{i}")
                aria-controls="login-panel"
                aria-selected=move || (mode.get() == m).to_string()
                tabindex=move || if mode.get() == m { "0" } else { "-1" }
                class:active=move || mode.get() == m
                on:click=move |_| mode.set(m)
                on:keydown=on_tab_key
            >
                {label}
            </button>
        }
    };
    let panel_label = move || {
        let i = MODES.iter().position(|&x| x == mode.get()).unwrap_or(0);
        format!("login-tab-{i}")
    };
    // The nick field takes focus once the form works.
    let nick_field = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if ready.get() {
            // Once the form is enabled, after this update. A hidden page (a closed widget) runs
            // no frames until it is shown, and by then the form may be gone.
            request_animation_frame(move || {
                if let Some(el) = nick_field.try_get_untracked().flatten() {
                    let _ = el.focus();
                }
            });
        }
    });
    let errors = move || ctx.login_problem.get().into_iter().chain(refused.get()).collect::<Vec<_>>();
    let submit_label = move || match mode.get() {
        _ if !ready.get() => "Loading…",
        Mode::Guest => "Start chatting",
        Mode::SignIn => "Sign in",
        Mode::Register => "Register",
    };
    component(view! {
        <main class="login-page">
            <form class="login" on:submit=on_submit aria-labelledby="login-title" aria-busy=move || (!ready.get()).to_string()>
                <h1 id="login-title">"Chattr"</h1>
                <fieldset class="login-fields" disabled=move || !ready.get()>
                <div class="tabs" role="tablist" aria-label="How to log in">
                    {tab(Mode::Guest, "Guest")}
                    {tab(Mode::SignIn, "Sign in")}
                    {tab(Mode::Register, "Register")}
                </div>
                <div id="login-panel" role="tabpanel" aria-labelledby=panel_label class="login-panel">
                <label for="nick">"Nick"</label>
                <input id="nick" name="nick" autocomplete="nickname" maxlength="30" required node_ref=nick_field bind:value=nick/>
                {show(move || mode.get() != Mode::Guest, move || view! {
                    <label for="password">"Password"</label>
                    <input
                        id="password"
                        name="password"
                        type="password"
                        minlength="8"
                        maxlength="128"
                        required
                        autocomplete=move || if mode.get() == Mode::Register { "new-password" } else { "current-password" }
                        bind:value=password
                    />
                })}
                {show(move || mode.get() == Mode::Register, move || view! {
                    <label for="email">"Email"</label>
                    <input id="email" name="email" type="email" autocomplete="email" required bind:value=email/>
                })}
                <button type="submit" id="login">{submit_label}</button>
                </div>
                </fieldset>
                <ul class="login-errors" role="alert">
                    {move || errors().into_iter().map(|error| view! {
                        <li>{error}</li>
                    }).collect_view()}
                </ul>
                {show(move || !ctx.login_nicks.with(Vec::is_empty), move || view! {
                    <p class="nick-suggestions" data-testid="free-nicks">
                        "Free nicks: "
                        {move || ctx.login_nicks.get().into_iter().map(|free| view! {
                            <button type="button" class="link-button" on:click={
                                let free = free.clone();
                                move |_| {
                                    nick.set(free.clone());
                                    ctx.login_nicks.set(Vec::new());
                                }
                            }>{free.clone()}</button>
                            " "
                        }).collect_view()}
                    </p>
                })}
                <StatusLine/>
            </form>
        </main>
    })
}

/// Why Potato would refuse this password, in words: it has 8 to 128 characters. Checked here
/// too, because the browser's own `minlength` is not reliable once a field's value is written
/// from code.
pub(crate) fn password_problem(password: &str) -> Option<&'static str> {
    (!(8..=128).contains(&password.chars().count())).then_some("A password has 8 to 128 characters.")
}

/// Why Potato would refuse this email address, in words.
pub(crate) fn email_problem(email: &str) -> Option<&'static str> {
    let looks_right = email.trim().split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
    });
    (!looks_right).then_some("An email address looks like name@example.com.")
}

//! The browser UI. Components render [`state::ChatState`] and send frames; the rules live in
//! `state`, `input`, `text` and `reconnect`, which are plain Rust and unit-tested. The socket
//! and other browser facilities exist only in the hydrated (wasm) build.

mod browser;
mod chat;
pub mod input;
mod login;
pub mod reconnect;
pub mod socket;
pub mod state;
pub mod text;

use leptos::prelude::*;

use crate::protocol::{ClientFrame, ErrorCode, ServerEvent};
use state::{ChatState, PAGE};

/// Where the connection stands, shown in the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Idle,
    Connecting,
    Online,
    /// Waiting this many milliseconds before the next attempt.
    Reconnecting(u32),
    Offline(String),
}

/// How the user logs in to Potato after each `welcome`. The password is kept in memory only,
/// as any client that identifies again after a reconnect does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Potato {
    #[default]
    None,
    Identify {
        nick: String,
        password: String,
    },
    /// Register the nick logged in with; once done, identify from then on.
    Register {
        password: String,
        email: String,
    },
}

/// One login: what to send to log in, and what to send after each `welcome`.
#[derive(Debug, Clone, Default)]
struct Session {
    auth: Option<ClientFrame>,
    potato: Potato,
    attempt: u32,
    /// The error the server sent before `welcome`, if any.
    login_error: Option<String>,
    /// The user quit: no reconnecting.
    over: bool,
    /// A first login's Potato step (identify or register) has not succeeded yet: the session
    /// is not the user's until it has, and a refusal sends them back to the form.
    potato_pending: bool,
    /// Which socket is current; callbacks of older ones are ignored.
    generation: u64,
}

/// What every component needs: the chat state, the connection and the user's settings.
#[derive(Clone, Copy)]
pub(crate) struct Ctx {
    pub state: RwSignal<ChatState>,
    pub status: RwSignal<Status>,
    link: StoredValue<Option<socket::Link>>,
    session: StoredValue<Session>,
    /// Desktop notifications on.
    pub notifications: RwSignal<bool>,
    /// `light`, `dark` or `system`.
    pub theme: RwSignal<String>,
    /// The login form's tab and nick, kept while the chat is shown.
    login_mode: RwSignal<login::Mode>,
    login_nick: RwSignal<String>,
}

impl Ctx {
    pub fn send(&self, frame: ClientFrame) {
        self.link.with_value(|link| {
            if let Some(link) = link {
                socket::send(link, &frame);
            }
        });
    }

    pub fn command(&self, line: impl Into<String>) {
        let target = self.state.with_untracked(|s| s.current.clone());
        self.send(ClientFrame::Command { line: line.into(), target });
    }

    /// Sends what the user typed: a slash command, or a message to the open conversation.
    pub fn submit_input(&self, text: String) {
        let current = self.state.with_untracked(|s| s.current.clone());
        if let Some(line) = text.strip_prefix('/').filter(|rest| !rest.starts_with('/')) {
            if line.trim_start().to_ascii_lowercase().starts_with("quit") {
                self.session.update_value(|s| s.over = true);
            }
            self.send(ClientFrame::Command { line: format!("/{line}"), target: current });
        } else if let Some(target) = current {
            // "//text" sends "/text" as a message.
            let text = text.strip_prefix('/').map(str::to_owned).unwrap_or(text);
            self.send(ClientFrame::Message { target, text });
        } else {
            self.state.update(|s| {
                s.apply(ServerEvent::Error {
                    code: ErrorCode::BadArguments,
                    message: "join a channel first: /join #channel".into(),
                });
            });
        }
    }

    /// Leaves the chat (`/quit`); the page goes back to the login form with the nick filled in.
    pub fn log_out(&self) {
        self.session.update_value(|s| s.over = true);
        self.send(ClientFrame::Command { line: "/quit".into(), target: None });
    }

    /// Logs in: connects, sends `auth`, then identifies or registers with Potato as asked;
    /// reconnects by itself from then on.
    /// One session per tab: a new login closes the socket of the one before and makes its
    /// pending reconnect (and its socket's callbacks) stale.
    pub fn start(&self, auth: ClientFrame, potato: Potato) {
        self.link.update_value(|link| {
            if let Some(old) = link.take() {
                socket::close(&old);
            }
        });
        self.session.update_value(|s| {
            *s = Session { auth: Some(auth), potato, generation: s.generation + 1, ..Default::default() }
        });
        self.connect_now();
    }

    /// The `auth` frame for the next connection: a guest comes back under the nick they had.
    fn auth_frame(&self) -> Option<ClientFrame> {
        let me = self.state.with_untracked(|s| s.me.clone());
        self.session.with_value(|s| s.auth.clone()).map(|auth| match auth {
            ClientFrame::Auth { nick: Some(_), token: None } if me.is_some() => {
                ClientFrame::Auth { nick: me, token: None }
            }
            other => other,
        })
    }

    /// The Potato command to send after a welcome.
    fn potato_command(&self) -> Option<ClientFrame> {
        let line = match self.session.with_value(|s| s.potato.clone()) {
            Potato::None => return None,
            Potato::Identify { nick, password } => format!("/potato identify {nick} {password}"),
            Potato::Register { password, email } => format!("/potato register {password} {email}"),
        };
        Some(ClientFrame::Command { line, target: None })
    }

    fn connect_now(&self) {
        let ctx = *self;
        let mut generation = 0;
        self.session.update_value(|s| {
            s.generation += 1;
            s.login_error = None;
            generation = s.generation;
        });
        self.status.set(Status::Connecting);
        #[cfg(feature = "hydrate")]
        {
            let current = move || ctx.session.with_value(|s| s.generation) == generation;
            let on_event = move |event: ServerEvent| {
                if current() {
                    ctx.on_event(event);
                }
            };
            let on_close = move |reason: String| {
                if current() {
                    ctx.on_close(reason);
                }
            };
            match socket::connect(&socket::socket_url(), on_event, on_close) {
                Ok(link) => {
                    if let Some(auth) = ctx.auth_frame() {
                        socket::send(&link, &auth);
                    }
                    ctx.link.set_value(Some(link));
                }
                Err(e) => ctx.on_close(e),
            }
        }
        // The server build renders the page and never connects.
        #[cfg(not(feature = "hydrate"))]
        let _ = (ctx, generation, Self::on_event, Self::on_close, Self::auth_frame);
    }

    fn on_event(&self, event: ServerEvent) {
        match &event {
            ServerEvent::Welcome { .. } => {
                self.status.set(Status::Online);
                let first_login = self.state.with_untracked(|s| s.me.is_none());
                self.session.update_value(|s| s.attempt = 0);
                // Identify first: the server handles frames in order, so the rejoins below
                // already count as the account (and get its ops).
                if let Some(frame) = self.potato_command() {
                    self.session.update_value(|s| s.potato_pending = first_login);
                    self.send(frame);
                }
                // After a reconnect: back into every channel (the server resends recent
                // history, which fills the gap) and the gap of private conversations.
                let (channels, private) =
                    self.state.with_untracked(|s| (s.channels(), s.private_conversations()));
                for channel in channels {
                    self.send(ClientFrame::Command { line: format!("/join {channel}"), target: None });
                }
                for nick in private {
                    self.send(ClientFrame::History { target: nick, before: None, limit: Some(PAGE) });
                }
            }
            ServerEvent::AccountChanged { account: Some(account) } => {
                self.session.update_value(|s| s.potato_pending = false);
                // Registered: identify from now on.
                if let Some(nick) = account.strip_prefix("potato:") {
                    self.session.update_value(|s| {
                        if let Potato::Register { password, .. } = &s.potato {
                            s.potato = Potato::Identify { nick: nick.to_owned(), password: password.clone() };
                        }
                    });
                }
            }
            ServerEvent::Error { code, .. } if self.status.get_untracked() != Status::Online => {
                let code = code.as_str().to_owned();
                self.session.update_value(|s| s.login_error = Some(code));
            }
            ServerEvent::Error { code, .. } if self.session.with_value(|s| s.potato_pending) => {
                // The sign-in or registration was refused: no session was wanted without it.
                // Back to the form, which shows the error; nothing reconnects.
                let code = code.as_str().to_owned();
                self.session.update_value(|s| {
                    s.potato_pending = false;
                    s.over = true;
                    s.login_error = Some(code);
                });
                self.link.update_value(|link| {
                    if let Some(link) = link.take() {
                        socket::close(&link);
                    }
                });
                let _ = self.state.try_update(|s| s.apply(event.clone()));
                self.state.update(|s| s.logged_out());
                return;
            }
            _ => {}
        }
        let alert = self.state.try_update(|s| s.apply(event)).flatten();
        if let Some(alert) = alert.filter(|_| self.notifications.get_untracked()) {
            browser::notify(&format!("{} in {}", alert.from, alert.conversation), &alert.text);
        }
    }

    fn on_close(&self, reason: String) {
        self.link.set_value(None);
        self.state.update(|s| s.disconnected());
        let (over, login_error) = self.session.with_value(|s| (s.over, s.login_error.clone()));
        // A first login the server turned down stays on the form with its error; a reconnect
        // retries (the old session may still hold the nick until the server notices it is gone).
        let first_login = self.state.with_untracked(|s| s.me.is_none());
        let refused_at_first = first_login && login_error.is_some();
        if over || refused_at_first || reconnect::is_final(login_error.as_deref(), &reason) {
            let why = login_error
                .clone()
                .or((!reason.is_empty()).then_some(reason))
                .unwrap_or_else(|| "closed".into());
            self.status.set(Status::Offline(why));
            // The user left (log out, `/quit`): back to a fresh login form, nick filled in.
            if over && login_error.is_none() {
                if let Some(me) = self.state.with_untracked(|s| s.me.clone()) {
                    self.login_nick.set(me);
                }
                self.state.set(ChatState::default());
            }
            return;
        }
        let mut attempt = 0;
        self.session.update_value(|s| {
            attempt = s.attempt;
            s.attempt += 1;
        });
        let delay = reconnect::delay_ms(attempt, browser::random());
        self.status.set(Status::Reconnecting(delay));
        let ctx = *self;
        // Only if nothing connected since: a new login (or another retry) makes this one stale.
        let generation = self.session.with_value(|s| s.generation);
        set_timeout(
            move || {
                if ctx.session.with_value(|s| s.generation) == generation {
                    ctx.connect_now();
                }
            },
            std::time::Duration::from_millis(delay.into()),
        );
    }
}

/// The whole chat client.
#[component]
pub fn App() -> impl IntoView {
    let ctx = Ctx {
        state: RwSignal::new(ChatState::default()),
        status: RwSignal::new(Status::Idle),
        link: StoredValue::new(None),
        session: StoredValue::new(Session::default()),
        notifications: RwSignal::new(false),
        theme: RwSignal::new("system".into()),
        login_mode: RwSignal::new(login::Mode::default()),
        login_nick: RwSignal::new(String::new()),
    };
    provide_context(ctx);
    // Browser-only setup, once the page is interactive.
    Effect::new(move |_| {
        ctx.theme.set(browser::load_theme());
        ctx.notifications.set(browser::notifications_granted());
        if let Some(token) = browser::take_fragment_token() {
            ctx.start(ClientFrame::Auth { token: Some(token), nick: None }, Potato::None);
        }
        browser::listen_for_host_token(move |token| {
            if ctx.state.with_untracked(|s| s.me.is_none()) {
                ctx.start(ClientFrame::Auth { token: Some(token), nick: None }, Potato::None);
            }
        });
    });
    Effect::new(move |_| browser::set_theme(&ctx.theme.get()));
    let logged_in = move || ctx.state.with(|s| s.me.is_some());
    view! {
        <div class="chattr">
            // Each component's view is type-erased (`into_any`): nesting their concrete types
            // makes rustc's layout computation overflow its recursion limit.
            <Show when=logged_in fallback=|| view! { <login::Login/> }>
                <chat::Chat/>
            </Show>
        </div>
    }
}

/// The connection state, always visible.
#[component]
pub(crate) fn StatusLine() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let status = move || ctx.status.get();
    let text = move || match status() {
        Status::Idle => "Not connected".to_owned(),
        Status::Connecting => "Connecting…".to_owned(),
        Status::Online => "Connected".to_owned(),
        Status::Reconnecting(ms) => {
            format!("Connection lost; reconnecting in {:.0} s…", (ms as f64 / 1000.0).ceil())
        }
        Status::Offline(why) => format!("Disconnected: {}", reconnect::ending(&why)),
    };
    let class = move || match status() {
        Status::Online => "status online",
        Status::Connecting | Status::Reconnecting(_) => "status connecting",
        Status::Idle | Status::Offline(_) => "status offline",
    };
    view! { <div class=class role="status" aria-live="polite" data-testid="status">{text}</div> }.into_any()
}

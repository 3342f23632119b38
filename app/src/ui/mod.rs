//! The browser UI. Components render [`state::ChatState`] and send frames; the rules live in
//! `state`, `input`, `text` and `reconnect`, which are plain Rust and unit-tested. The socket
//! and other browser facilities exist only in the hydrated (wasm) build.

mod admin;
mod browser;
mod chat;
mod dialog;
mod embed;
pub mod input;
mod login;
mod pace;
pub mod reconnect;
pub mod saved;
pub mod socket;
pub mod state;
mod switch;
pub mod text;
pub mod time;

use std::collections::BTreeMap;

use leptos::prelude::*;

use crate::protocol::names::{fold, is_channel};
use crate::protocol::{ClientFrame, CloseReason, Command, ErrorCode, Password, PotatoRequest, ServerEvent};
use browser::Store;
use embed::{Embedding, HostEvent, HostRequest};
use saved::{Place, Resume, SavedLogin};
use state::{ChatState, Outgoing, PAGE};
use switch::{component, show, show_else};

/// Storage keys of the remembered records (see `saved`).
const PLACE_KEY: &str = "chattr-place";
const RESUME_KEY: &str = "chattr-resume";

/// Where the connection stands, shown in the status line and the connection banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Idle,
    Connecting,
    Online,
    /// The next attempt is due at this time (ms since the epoch).
    Reconnecting(u64),
    /// Ended for good, and why: a login refusal or the close frame's reason.
    Offline(CloseReason),
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
    /// The error the server sent before `welcome`, if any, and its message.
    login_error: Option<ErrorCode>,
    login_message: String,
    /// The user quit: no reconnecting.
    over: bool,
    /// A `welcome` arrived: the session exists, and a failure from now on reconnects.
    established: bool,
    /// A first login's Potato step (identify or register) has not succeeded yet: the session
    /// is not the user's until it has, and a refusal sends them back to the form.
    potato_pending: bool,
    /// The server's secret for resuming this session on the next connection.
    resume: Option<String>,
    /// Which socket is current; callbacks of older ones are ignored.
    generation: u64,
}

/// What every component needs: the chat state, the connection and the user's settings.
#[derive(Clone, Copy)]
pub(crate) struct Ctx {
    pub state: RwSignal<ChatState>,
    pub status: RwSignal<Status>,
    /// The clock (ms since the epoch), ticking while a countdown is shown.
    pub now: RwSignal<u64>,
    link: StoredValue<Option<socket::Link>>,
    session: StoredValue<Session>,
    /// Unsent text per conversation (folded name), kept across reloads.
    pub drafts: RwSignal<BTreeMap<String, String>>,
    /// Desktop notifications on.
    pub notifications: RwSignal<bool>,
    /// `light`, `dark` or `system`.
    pub theme: RwSignal<String>,
    /// The login form's tab and nick, kept while the chat is shown.
    login_mode: RwSignal<login::Mode>,
    login_nick: RwSignal<String>,
    /// Why the last login went back to the form, in words.
    login_problem: RwSignal<Option<String>>,
    /// Free nicks the server offered when the one asked for was taken.
    login_nicks: RwSignal<Vec<String>>,
    /// Transaction ids: this page's random prefix and a counter.
    txns: StoredValue<(String, u64)>,
    /// How a host page mounted the chat with embed.js, if it did.
    embedding: StoredValue<Option<Embedding>>,
}

impl Ctx {
    pub(crate) fn send(&self, frame: ClientFrame) {
        self.link.with_value(|link| {
            if let Some(link) = link {
                socket::send(link, &frame);
            }
        });
    }

    /// Sends a command as data (a form's or a button's): nothing in it needs quoting.
    pub(crate) fn run(&self, command: Command) {
        self.send(ClientFrame::Run { command, txn: None });
    }

    fn online(&self) -> bool {
        self.status.get_untracked() == Status::Online
    }

    fn next_txn(&self) -> String {
        self.txns
            .try_update_value(|(prefix, n)| {
                *n += 1;
                format!("{prefix}-{n}")
            })
            .unwrap_or_default()
    }

    /// The draft of a conversation.
    pub(crate) fn draft(&self, conversation: &str) -> String {
        self.drafts.with(|d| d.get(&fold(conversation)).cloned().unwrap_or_default())
    }

    pub(crate) fn set_draft(&self, conversation: &str, text: String) {
        self.drafts.update(|d| {
            if text.is_empty() {
                d.remove(&fold(conversation));
            } else {
                d.insert(fold(conversation), text);
            }
        });
    }

    /// A message of yours: shown at once (greyed), sent now or, while offline, as soon as the
    /// session is back; the echo or an error settles it.
    fn send_message(&self, target: String, text: String, action: bool) {
        let out = Outgoing { txn: self.next_txn(), target, text, action };
        self.state.update(|s| s.add_pending(&out, browser::now_ms()));
        if self.online() {
            self.send(out.frame());
        }
    }

    /// Sends a failed message again.
    pub(crate) fn retry(&self, txn: &str) {
        if let Some(out) = self.state.try_update(|s| s.retry(txn)).flatten() {
            if self.online() {
                self.send(out.frame());
            }
        }
    }

    /// Takes a failed message back into its conversation's composer.
    pub(crate) fn edit(&self, txn: &str) {
        if let Some((conversation, text)) = self.state.try_update(|s| s.withdraw(txn)).flatten() {
            self.set_draft(&conversation, text);
        }
    }

    /// Sends what the user typed: a slash command, or a message to the open conversation.
    /// Answers whether it was taken (the composer clears) or refused (the text stays).
    pub(crate) fn submit_input(&self, text: String) -> bool {
        let current = self.state.with_untracked(|s| s.current.clone());
        let refuse = |why: &str| {
            self.state.update(|s| {
                s.now = browser::now_ms();
                s.apply(ServerEvent::Error {
                    code: ErrorCode::BadArguments,
                    message: why.into(),
                    txn: None,
                    nicks: Vec::new(),
                });
            });
            false
        };
        if let Some(line) = text.strip_prefix('/').filter(|rest| !rest.starts_with('/')) {
            let lower = line.trim_start().to_ascii_lowercase();
            // `/me` is a message: it waits while offline like any other.
            if let (Some(action), Some(target)) =
                (line.trim_start().get(3..).filter(|_| lower.starts_with("me ")), &current)
            {
                self.send_message(target.clone(), action.to_owned(), true);
                return true;
            }
            // `/help` is answered here: the commands with their usage.
            if lower.trim_end() == "help" {
                self.state.update(|s| s.helping = true);
                return true;
            }
            if !self.online() {
                return refuse("You are offline; commands can be sent once the connection is back");
            }
            if lower.starts_with("quit") {
                self.session.update_value(|s| s.over = true);
            }
            self.send(ClientFrame::Command { line: format!("/{line}"), target: current, txn: None });
            true
        } else if let Some(target) = current {
            // "//text" sends "/text" as a message.
            let text = text.strip_prefix('/').map(str::to_owned).unwrap_or(text);
            self.send_message(target, text, false);
            true
        } else {
            refuse("Join a channel first: /join #channel")
        }
    }

    /// Leaves the chat (`/quit`); the page goes back to the login form with the nick filled in.
    pub(crate) fn log_out(&self) {
        self.session.update_value(|s| s.over = true);
        browser::forget(Store::Tab, RESUME_KEY);
        if self.link.with_value(Option::is_some) {
            self.run(Command::Quit { reason: None });
        } else {
            // Offline: nothing to tell the server (it lets the held session go after the
            // resume grace); a fresh form now.
            self.log_in_again();
            self.forget_person();
        }
    }

    /// Forgets who was logged in: their conversations, drafts and remembered place (someone
    /// else may come next, in this browser or on this embedding page).
    fn forget_person(&self) {
        self.state.update(ChatState::reset);
        self.drafts.set(BTreeMap::new());
        browser::forget(Store::Local, PLACE_KEY);
    }

    /// Logs in: connects, sends `auth`, then identifies or registers with Potato as asked;
    /// reconnects by itself from then on.
    /// One session per tab: a new login ends the one before (it quits, its socket closes) and
    /// makes its pending reconnect (and its socket's callbacks) stale.
    pub(crate) fn start(&self, auth: ClientFrame, potato: Potato) {
        self.link.update_value(|link| {
            if let Some(old) = link.take() {
                socket::send(&old, &ClientFrame::Run { command: Command::Quit { reason: None }, txn: None });
                socket::close(&old);
            }
        });
        self.login_problem.set(None);
        self.login_nicks.set(Vec::new());
        self.session.update_value(|s| {
            *s = Session { auth: Some(auth), potato, generation: s.generation + 1, ..Default::default() }
        });
        self.connect_now();
    }

    /// After a reload: puts back where the user was and resumes the tab's session.
    fn restore(&self, resume: Resume, place: Option<Place>) {
        self.state.update(|s| {
            s.me = Some(resume.nick.clone());
            if let Some(place) = &place {
                place.restore_into(s);
            }
            for out in &resume.outgoing {
                s.add_pending(out, browser::now_ms());
            }
            resume.restore_rejoins(s);
        });
        if resume.login == SavedLogin::Account {
            self.login_mode.set(login::Mode::SignIn);
        }
        self.login_nick.set(resume.nick.clone());
        self.session.update_value(|s| {
            *s = Session {
                auth: Some(resume.auth()),
                resume: Some(resume.secret.clone()),
                generation: s.generation + 1,
                ..Default::default()
            }
        });
        self.connect_now();
    }

    /// Reconnects at once instead of waiting for the countdown.
    pub(crate) fn reconnect_now(&self) {
        if matches!(self.status.get_untracked(), Status::Reconnecting(_)) {
            self.connect_now();
        }
    }

    /// Back to the login form, with the nick last typed (or resumed) filled in; `problem`
    /// says why, if it was not the user's choice.
    pub(crate) fn back_to_form(&self, problem: Option<String>) {
        self.session.update_value(|s| {
            s.over = true;
            s.generation += 1;
        });
        self.link.update_value(|link| {
            if let Some(link) = link.take() {
                socket::close(&link);
            }
        });
        browser::forget(Store::Tab, RESUME_KEY);
        self.login_problem.set(problem);
        self.status.set(Status::Idle);
        self.state.update(|s| s.logged_out());
    }

    /// After the session ended for good (replaced, ghosted, revoked): the login form, with
    /// the nick the session had.
    pub(crate) fn log_in_again(&self) {
        if let Some(me) = self.state.with_untracked(|s| s.me.clone()) {
            self.login_nick.set(me);
        }
        self.back_to_form(None);
    }

    /// The `auth` frame for the next connection: the session's resume secret, and a guest
    /// comes back under the nick they had.
    fn auth_frame(&self) -> Option<ClientFrame> {
        let me = self.state.with_untracked(|s| s.me.clone());
        let resume = self.session.with_value(|s| s.resume.clone());
        self.session.with_value(|s| s.auth.clone()).map(|auth| match auth {
            ClientFrame::Auth { nick: Some(nick), token: None, .. } => {
                ClientFrame::Auth { nick: me.or(Some(nick)), token: None, resume }
            }
            ClientFrame::Auth { token, nick, resume: saved } => {
                ClientFrame::Auth { token, nick, resume: resume.or(saved) }
            }
            other => other,
        })
    }

    /// The Potato command to send after a welcome.
    fn potato_command(&self) -> Option<ClientFrame> {
        let request = match self.session.with_value(|s| s.potato.clone()) {
            Potato::None => return None,
            Potato::Identify { nick, password } => {
                PotatoRequest::Identify { nick: Some(nick), password: Password(password) }
            }
            Potato::Register { password, email } => {
                PotatoRequest::Register { nick: None, password: Password(password), email }
            }
        };
        Some(ClientFrame::Run { command: Command::Potato { request }, txn: None })
    }

    /// Remembers the session for a reload of this tab, and where the user is for this browser.
    fn remember(&self) {
        let (secret, over, token) = self.session.with_value(|s| {
            let token = match &s.auth {
                Some(ClientFrame::Auth { token: Some(t), .. }) => Some(t.clone()),
                _ => None,
            };
            (s.resume.clone(), s.over, token)
        });
        let drafts = self.drafts.get_untracked();
        self.state.with_untracked(|s| {
            if s.me.is_some() {
                browser::save(Store::Local, PLACE_KEY, &Place::of(s, &drafts));
            }
            let (Some(secret), Some(nick), false) = (secret, s.me.clone(), over) else { return };
            let login = match (&s.account, token) {
                (Some(a), _) if a.starts_with("potato:") => SavedLogin::Account,
                (_, Some(token)) => SavedLogin::Token { token },
                _ => SavedLogin::Guest,
            };
            let rejoining = s.rejoining();
            browser::save(
                Store::Tab,
                RESUME_KEY,
                &Resume { secret, nick, login, outgoing: s.outgoing(), rejoining },
            );
        });
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
                    ctx.on_close(&reason);
                }
            };
            match socket::connect(&socket::socket_url(), on_event, on_close) {
                Ok(link) => {
                    if let Some(auth) = ctx.auth_frame() {
                        socket::send(&link, &auth);
                    }
                    ctx.link.set_value(Some(link));
                }
                Err(e) => ctx.on_close(&e),
            }
        }
        // The server build renders the page and never connects.
        #[cfg(not(feature = "hydrate"))]
        let _ = (ctx, generation, Self::on_event, Self::on_close, Self::auth_frame);
    }

    fn on_welcome(&self, resumed: bool, resume: Option<String>) {
        self.status.set(Status::Online);
        let first_login = !self.session.with_value(|s| s.established);
        // A cluster's unasked `welcome` (after a node rejoined) has no secret: the session's
        // stays, and what this connection is still sending goes on, its rejoins among it.
        let unasked = resume.is_none();
        self.session.update_value(|s| {
            s.attempt = 0;
            s.established = true;
            if !unasked {
                s.resume = resume;
            }
        });
        // A resumed session is still identified, in its channels, with its roles: the server
        // sends each channel's state. Otherwise identify first (the server handles frames in
        // order, so the rejoins below already count as the account and get its ops), then
        // rejoin every channel (the server resends recent history, which fills the gap). A
        // resume after a connection that dropped before all those rejoins went out sends the
        // rest.
        if !resumed {
            if let Some(frame) = self.potato_command() {
                self.session.update_value(|s| s.potato_pending = first_login);
                self.send(frame);
            }
        }
        if !unasked {
            for channel in self.state.try_update_untracked(|s| s.rejoins(resumed)).unwrap_or_default() {
                self.run(Command::Join { channel, key: None });
            }
        }
        for nick in self.state.with_untracked(|s| s.private_conversations()) {
            self.send(ClientFrame::History { target: nick, before: None, limit: Some(PAGE) });
        }
        // Then what was typed while offline, in order; the server drops repeats of any it
        // stored before the connection went.
        for out in self.state.with_untracked(|s| s.outgoing()) {
            self.send(out.frame());
        }
        // What the embedding page asked for: the conversation it opened meanwhile, else, on a
        // new login, its channel (a resumed session stays where it was).
        let asked = self.embedding.try_update_value(|e| {
            let e = e.as_mut()?;
            e.open.take().or_else(|| e.channel.clone().filter(|_| first_login && !resumed))
        });
        if let Some(target) = asked.flatten() {
            self.open_target(target);
        }
    }

    /// Shows a channel (joining it first if need be) or a private conversation. A channel the
    /// page already has is one it is in, or is rejoining (a resumed session's come with its
    /// `welcome`; after a reconnect every one is rejoined), not one to join again.
    fn open_target(&self, target: String) {
        let known = self.state.with_untracked(|s| s.conversation(&target).is_some());
        if is_channel(&target) && !known {
            self.run(Command::Join { channel: target, key: None });
        } else {
            self.state.update(|s| s.open(&target));
        }
    }

    /// Tells the embedding page about `event`, if a host page mounted the chat.
    fn tell_host(&self, event: HostEvent) {
        if let Some(host) = self.embedding.with_value(|e| e.as_ref().and_then(|e| e.host.clone())) {
            embed::tell(&host, &event);
        }
    }

    /// What the embedding page asks: only what the person could do here by hand.
    fn on_host_request(&self, request: HostRequest) {
        let logged_in = self.state.with_untracked(|s| s.me.is_some());
        match request {
            HostRequest::Login(token) => {
                // The same token again (the host page reloaded, or sent it twice) keeps the
                // session; another one is another login.
                let same = self.session.with_value(|s| {
                    matches!(&s.auth, Some(ClientFrame::Auth { token: Some(t), .. }) if *t == token)
                        && !s.over
                });
                if !same {
                    // Another person, maybe: nothing of the one before may show or be sent.
                    self.forget_person();
                    self.start(
                        ClientFrame::Auth { token: Some(token), nick: None, resume: None },
                        Potato::None,
                    );
                }
            }
            HostRequest::Open(target) if logged_in && self.online() => self.open_target(target),
            HostRequest::Open(target) => self.embedding.update_value(|e| {
                if let Some(e) = e {
                    e.open = Some(target);
                }
            }),
            HostRequest::Logout if logged_in => self.log_out(),
            HostRequest::Logout => {}
            HostRequest::View(open) => self.state.update(|s| s.set_out_of_sight(!open)),
            HostRequest::Theme(theme) => self.theme.set(theme),
        }
    }

    fn on_event(&self, event: ServerEvent) {
        // The time of the lines this event makes, when it carries none of its own.
        self.state.update_untracked(|s| s.now = browser::now_ms());
        match &event {
            ServerEvent::Welcome { resumed, resume, .. } => {
                let (resumed, resume) = (*resumed, resume.clone());
                self.state.update(|s| {
                    s.apply(event);
                });
                self.on_welcome(resumed, resume);
                self.remember();
                return;
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
            ServerEvent::Error { code, message, nicks, .. }
                if self.status.get_untracked() != Status::Online =>
            {
                let code = *code;
                self.session.update_value(|s| {
                    s.login_error = Some(code);
                    s.login_message.clone_from(message);
                });
                self.login_nicks.set(nicks.clone());
                return;
            }
            ServerEvent::Error { code, message, txn: None, .. }
                if self.session.with_value(|s| s.potato_pending) =>
            {
                // The sign-in or registration was refused: no session was wanted without it.
                // Back to the form, which shows the error; nothing reconnects.
                self.session.update_value(|s| s.potato_pending = false);
                self.back_to_form(Some(reconnect::refusal(*code, message)));
                return;
            }
            ServerEvent::Error {
                code: ErrorCode::TooLong | ErrorCode::InvalidText | ErrorCode::EmptyText,
                txn: Some(txn),
                ..
            } => {
                // A message refused for its text goes back into the composer to be fixed,
                // unless something else is being written there.
                let conversation = self.state.with_untracked(|s| s.conversation_of_txn(txn));
                if conversation.is_some_and(|c| self.draft(&c).is_empty()) {
                    self.edit(txn);
                    return;
                }
            }
            _ => {}
        }
        let alert = self.state.try_update(|s| s.apply(event)).flatten();
        if let Some(alert) = alert {
            if alert.mention && self.notifications.get_untracked() {
                browser::notify(&format!("{} in {}", alert.from, alert.conversation), &alert.text);
            }
            let crate::ui::state::Alert { conversation, from, text, mention } = alert;
            self.tell_host(HostEvent::Message { conversation, from, text, mention });
        }
    }

    /// The socket closed: `reason` is the close frame's, if it gave one.
    fn on_close(&self, reason: &str) {
        let reason = CloseReason::parse(reason);
        self.link.set_value(None);
        self.state.update(|s| s.disconnected());
        let (over, login_error, established) =
            self.session.with_value(|s| (s.over, s.login_error, s.established));
        // A first login the server turned down goes back to the form with its error; a
        // reconnect retries (the old session may still hold the nick until the server notices
        // it is gone).
        if let (false, Some(code)) = (established, login_error) {
            // A server ban says why; other refusals in the UI's own words.
            let why = if code == ErrorCode::ServerBanned {
                self.session.with_value(|s| reconnect::refusal(code, &s.login_message))
            } else {
                reconnect::ending(CloseReason::Error(code))
            };
            self.back_to_form(Some(why));
            return;
        }
        if over || reconnect::is_final(login_error, reason) {
            let why = login_error.map(CloseReason::Error).or(reason).unwrap_or(CloseReason::Closed);
            browser::forget(Store::Tab, RESUME_KEY);
            self.status.set(Status::Offline(why));
            // The user left (log out, `/quit`): back to a fresh login form, nick filled in.
            if over && login_error.is_none() {
                if let Some(me) = self.state.with_untracked(|s| s.me.clone()) {
                    self.login_nick.set(me);
                }
                self.forget_person();
            }
            return;
        }
        let mut attempt = 0;
        self.session.update_value(|s| {
            attempt = s.attempt;
            s.attempt += 1;
        });
        let delay = reconnect::delay_ms(attempt, browser::random());
        let now = browser::now_ms();
        self.now.set(now);
        self.status.set(Status::Reconnecting(now + u64::from(delay)));
        let ctx = *self;
        // Only if nothing connected since: a new login (or another retry) makes this one stale.
        let generation = self.session.with_value(|s| s.generation);
        // (Boxed, as the socket's pacing timer is: one timer function in the wasm for both.)
        let retry: Box<dyn FnOnce()> = Box::new(move || {
            if ctx.session.with_value(|s| s.generation) == generation {
                ctx.connect_now();
            }
        });
        set_timeout(retry, std::time::Duration::from_millis(delay.into()));
    }
}

/// The whole chat client.
#[component]
pub fn App() -> impl IntoView {
    let ctx = Ctx {
        state: RwSignal::new(ChatState::default()),
        status: RwSignal::new(Status::Idle),
        now: RwSignal::new(0),
        link: StoredValue::new(None),
        session: StoredValue::new(Session::default()),
        drafts: RwSignal::new(BTreeMap::new()),
        notifications: RwSignal::new(false),
        theme: RwSignal::new("system".into()),
        login_mode: RwSignal::new(login::Mode::default()),
        login_nick: RwSignal::new(String::new()),
        login_problem: RwSignal::new(None),
        login_nicks: RwSignal::new(Vec::new()),
        txns: StoredValue::new((String::new(), 0)),
        embedding: StoredValue::new(None),
    };
    provide_context(ctx);
    // Browser-only setup, once the page is interactive.
    Effect::new(move |_| {
        let embedding = embed::embedding();
        ctx.theme.set(embedding.as_ref().and_then(|e| e.theme.clone()).unwrap_or_else(browser::load_theme));
        // A widget starts closed: what comes counts as unread until the host shows it.
        if embedding.as_ref().is_some_and(|e| e.widget) {
            ctx.state.update(|s| s.out_of_sight = true);
        }
        let host = embedding.as_ref().and_then(|e| e.host.clone());
        ctx.embedding.set_value(embedding);
        ctx.notifications.set(browser::notifications_granted());
        // Transaction ids must not repeat across reloads: a random prefix per page.
        let prefix = format!("{:x}", (browser::random() * 2f64.powi(48)) as u64);
        ctx.txns.set_value((prefix, 0));
        let place: Option<Place> = browser::load(Store::Local, PLACE_KEY);
        if let Some(place) = &place {
            ctx.login_nick.set(place.nick.clone());
            ctx.drafts.set(place.drafts.clone());
        }
        if let Some(token) = browser::take_fragment_token() {
            ctx.start(ClientFrame::Auth { token: Some(token), nick: None, resume: None }, Potato::None);
        } else if let Some(resume) = browser::load::<Resume>(Store::Tab, RESUME_KEY) {
            ctx.restore(resume, place);
        }
        embed::listen(host, move |request| ctx.on_host_request(request));
        ctx.tell_host(HostEvent::Ready);
    });
    Effect::new(move |_| browser::set_theme(&ctx.theme.get()));
    // The tab's title and icon carry the unread count (mentions first), to be seen from other
    // tabs.
    Effect::new(move |before: Option<(u32, u32)>| {
        let counts = ctx.state.with(ChatState::unread_elsewhere);
        if before == Some(counts) {
            return counts;
        }
        let (unread, mentions) = counts;
        let title = match (unread, mentions) {
            (0, _) => "Chattr".to_owned(),
            (u, 0) => format!("({u}) Chattr"),
            (u, m) => format!("({m}!) ({u}) Chattr"),
        };
        browser::set_title(&title);
        browser::set_favicon(&favicon(unread, mentions));
        ctx.tell_host(HostEvent::Unread { unread, mentions });
        counts
    });
    // An embedding page hears how the connection stands (the nick is set by the time the
    // session is online).
    Effect::new(move |_| {
        let state = match ctx.status.get() {
            Status::Idle => "idle",
            Status::Connecting => "connecting",
            Status::Online => "online",
            Status::Reconnecting(_) => "reconnecting",
            Status::Offline(_) => "offline",
        };
        let nick = ctx.state.with_untracked(|s| s.me.clone()).filter(|_| state == "online");
        ctx.tell_host(HostEvent::Connection { state, nick });
    });
    // Remember the session and the user's place whenever they change.
    Effect::new(move |_| {
        ctx.state.track();
        ctx.drafts.track();
        ctx.remember();
    });
    // The countdown ticks while a reconnect is waiting.
    #[cfg(feature = "hydrate")]
    {
        let tick = set_interval_with_handle(
            move || {
                if matches!(ctx.status.get_untracked(), Status::Reconnecting(_)) {
                    ctx.now.set(browser::now_ms());
                }
            },
            std::time::Duration::from_millis(250),
        );
        on_cleanup(move || {
            if let Ok(tick) = tick {
                tick.clear();
            }
        });
    }
    let logged_in = move || ctx.state.with(|s| s.me.is_some());
    component(view! {
        <div class="chattr">
            {show_else(logged_in, || view! { <chat::Chat/> }, || view! { <login::Login/> })}
        </div>
    })
}

/// The tab's icon: the plain one, or one with a badge of the unread count elsewhere (the
/// mentions, in their colour, when there are any), up to "9+". The badged icons are files of
/// their own (`public/badges`, made by `scripts/badges.sh`): the page's Content-Security-Policy
/// allows images from the server only, not `data:` URLs.
fn favicon(unread: u32, mentions: u32) -> String {
    let (kind, n) = match (unread, mentions) {
        (0, _) => return "/favicon.svg".to_owned(),
        (u, 0) => ("unread", u),
        (_, m) => ("mention", m),
    };
    if n > 9 {
        format!("/badges/{kind}-9plus.svg")
    } else {
        format!("/badges/{kind}-{n}.svg")
    }
}

/// The connection state in words; `None` when there is nothing to say (online, or never
/// connected).
fn status_text(status: &Status, now: u64) -> Option<String> {
    Some(match status {
        Status::Idle | Status::Online => return None,
        Status::Connecting => "Connecting…".to_owned(),
        Status::Reconnecting(at) => {
            let secs = at.saturating_sub(now).div_ceil(1000);
            format!("Connection lost. Reconnecting in {secs} s…")
        }
        Status::Offline(why) => format!("Disconnected: {}.", reconnect::ending(*why)),
    })
}

/// The connection state in the sidebar, always there (and read out when it changes).
#[component]
pub(crate) fn StatusLine() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let status = move || ctx.status.get();
    let text = move || match status() {
        Status::Online => "Connected".to_owned(),
        // The countdown ticks in the banner; here it would be read out every second.
        Status::Reconnecting(_) => "Reconnecting…".to_owned(),
        other => status_text(&other, 0).unwrap_or_default(),
    };
    let class = move || match status() {
        Status::Online => "status online",
        Status::Connecting | Status::Reconnecting(_) => "status connecting",
        Status::Idle => "status idle",
        Status::Offline(_) => "status offline",
    };
    component(view! { <div class=class role="status" aria-live="polite" data-testid="status">{text}</div> })
}

/// Over the conversation whenever the connection is not up: what is happening, a live
/// countdown to the next attempt, and a way to act now.
#[component]
pub(crate) fn ConnectionBanner() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let text = move || status_text(&ctx.status.get(), ctx.now.get());
    let waiting = move || matches!(ctx.status.get(), Status::Reconnecting(_));
    let ended = move || matches!(ctx.status.get(), Status::Offline(_));
    component(view! {
        {show(move || text().is_some(), move || view! {
            <div class="connection-banner" class:ended=ended data-testid="connection-banner">
                <span>{text}</span>
                {show(waiting, move || view! {
                    <button type="button" on:click=move |_| ctx.reconnect_now()>"Reconnect now"</button>
                })}
                {show(ended, move || view! {
                    <button type="button" on:click=move |_| ctx.log_in_again()>"Log in again"</button>
                })}
            </div>
        })}
    })
}

#[cfg(test)]
mod tests {
    use super::favicon;

    #[test]
    fn the_tab_icon_badges_the_unread_count_mentions_first() {
        assert_eq!(favicon(0, 0), "/favicon.svg");
        assert_eq!(favicon(3, 0), "/badges/unread-3.svg");
        assert_eq!(favicon(5, 2), "/badges/mention-2.svg");
        assert_eq!(favicon(12, 0), "/badges/unread-9plus.svg");
        assert_eq!(favicon(40, 10), "/badges/mention-9plus.svg");
        // Every icon it names exists.
        let public = concat!(env!("CARGO_MANIFEST_DIR"), "/../public");
        for (u, m) in [(0, 0), (10, 0), (10, 10)].into_iter().chain((1..=9).flat_map(|n| [(n, 0), (n, n)])) {
            let path = format!("{public}{}", favicon(u, m));
            assert!(std::path::Path::new(&path).is_file(), "{path}");
        }
    }
}

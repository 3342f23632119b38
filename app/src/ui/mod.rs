//! The browser UI: a login form, then the channel list, the conversation and the member list.
//! Components only render [`state::ChatState`] and send frames; every rule lives in `state`.

pub mod socket;
pub mod state;

use leptos::prelude::*;

use crate::protocol::{ClientFrame, ServerEvent};
use state::{ChatState, LineKind};

/// Where the connection stands, shown in the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Idle,
    Connecting,
    Online,
    Offline(String),
}

/// What every component needs: the chat state, the connection status and the socket link.
#[derive(Clone, Copy)]
struct Ctx {
    state: RwSignal<ChatState>,
    status: RwSignal<Status>,
    link: StoredValue<Option<socket::Link>>,
}

impl Ctx {
    fn send(&self, frame: ClientFrame) {
        self.link.with_value(|link| {
            if let Some(link) = link {
                socket::send(link, &frame);
            }
        });
    }

    /// Sends what the user typed: a slash command, or a message to the open conversation.
    fn submit_input(&self, text: String) {
        let current = self.state.with_untracked(|s| s.current.clone());
        if let Some(line) = text.strip_prefix('/').filter(|rest| !rest.starts_with('/')) {
            self.send(ClientFrame::Command { line: format!("/{line}"), target: current });
        } else if let Some(target) = current {
            // "//text" sends "/text" as a message.
            let text = text.strip_prefix('/').map(str::to_owned).unwrap_or(text);
            self.send(ClientFrame::Message { target, text });
        } else {
            self.state.update(|s| {
                s.apply(ServerEvent::Error {
                    code: crate::protocol::ErrorCode::BadArguments,
                    message: "join a channel first: /join #channel".into(),
                })
            });
        }
    }
}

/// The whole chat client.
#[component]
pub fn App() -> impl IntoView {
    let ctx = Ctx {
        state: RwSignal::new(ChatState::default()),
        status: RwSignal::new(Status::Idle),
        link: StoredValue::new(None),
    };
    provide_context(ctx);
    let logged_in = move || ctx.state.with(|s| s.me.is_some());
    view! {
        <div class="chattr">
            <StatusLine/>
            // Each component's view is type-erased (`into_any`): nesting their concrete types
            // makes rustc's layout computation overflow its recursion limit.
            <Show when=logged_in fallback=|| view! { <Login/> }>
                <Chat/>
            </Show>
        </div>
    }
}

#[component]
fn StatusLine() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let text = move || match ctx.status.get() {
        Status::Idle => "Not connected".to_owned(),
        Status::Connecting => "Connecting…".to_owned(),
        Status::Online => "Connected".to_owned(),
        Status::Offline(why) => format!("Disconnected: {why}"),
    };
    view! { <div class="status" role="status" aria-live="polite">{text}</div> }
}

#[component]
fn Login() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let nick = RwSignal::new(String::new());
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let nick = nick.get_untracked().trim().to_owned();
        if nick.is_empty() {
            return;
        }
        connect(ctx, ClientFrame::Auth { token: None, nick: Some(nick) });
    };
    view! {
        <form class="login" on:submit=on_submit>
            <h1>"Chattr"</h1>
            <label for="nick">"Nick"</label>
            <input id="nick" name="nick" autocomplete="nickname" maxlength="30" required bind:value=nick/>
            <button type="submit" id="login">"Start chatting"</button>
            <ServerLines/>
        </form>
    }
    .into_any()
}

/// Opens the socket and sends `auth` (browser only; on the server this is never called).
fn connect(ctx: Ctx, auth: ClientFrame) {
    ctx.status.set(Status::Connecting);
    #[cfg(feature = "hydrate")]
    {
        let on_event = move |event: ServerEvent| {
            if matches!(event, ServerEvent::Welcome { .. }) {
                ctx.status.set(Status::Online);
            }
            ctx.state.update(|s| s.apply(event));
        };
        let on_close = move |why: String| {
            ctx.status.set(Status::Offline(why));
            ctx.link.set_value(None);
        };
        match socket::connect(&socket::socket_url(), on_event, on_close) {
            Ok(link) => {
                socket::send(&link, &auth);
                ctx.link.set_value(Some(link));
            }
            Err(e) => ctx.status.set(Status::Offline(e)),
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = auth;
}

#[component]
fn ServerLines() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let lines = move || ctx.state.with(|s| s.server.clone());
    view! {
        <ul class="server-lines">
            <For each=lines key=|l| l.seq let:line>
                <li class="line system">{line.text}</li>
            </For>
        </ul>
    }
}

#[component]
fn Chat() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let join = RwSignal::new(String::new());
    let on_join = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut channel = join.get_untracked().trim().to_owned();
        if channel.is_empty() {
            return;
        }
        if !channel.starts_with('#') {
            channel.insert(0, '#');
        }
        ctx.send(ClientFrame::Command { line: format!("/join {channel}"), target: None });
        join.set(String::new());
    };
    let conversations = move || {
        ctx.state.with(|s| s.conversations.iter().map(|c| (c.name.clone(), c.unread)).collect::<Vec<_>>())
    };
    let me = move || ctx.state.with(|s| s.me.clone().unwrap_or_default());
    view! {
        <div class="layout">
            <nav class="sidebar" aria-label="Conversations">
                <div class="me">{me}</div>
                <ul class="conversations">
                    <For each=conversations key=|c| c.clone() let:((name, unread))>
                        <ConversationItem name unread/>
                    </For>
                </ul>
                <form class="join" on:submit=on_join>
                    <label for="join-channel">"Join a channel"</label>
                    <input id="join-channel" placeholder="#channel" bind:value=join/>
                    <button type="submit">"Join"</button>
                </form>
            </nav>
            <Conversation/>
        </div>
    }
    .into_any()
}

#[component]
fn ConversationItem(name: String, unread: u32) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let key = name.clone();
    let is_current = move || ctx.state.with(|s| s.current.as_deref() == Some(key.as_str()));
    let open = {
        let name = name.clone();
        move |_| ctx.state.update(|s| s.open(&name))
    };
    view! {
        <li>
            <button class="conversation" class:current=is_current on:click=open>
                <span class="name">{name}</span>
                <Show when=move || { unread > 0 }>
                    <span class="unread" aria-label="unread messages">{unread}</span>
                </Show>
            </button>
        </li>
    }
    .into_any()
}

#[component]
fn Conversation() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let input = RwSignal::new(String::new());
    let current = move || ctx.state.with(|s| s.current.clone());
    let lines = move || {
        ctx.state.with(|s| {
            s.current.as_deref().and_then(|c| s.conversation(c)).map(|c| c.lines.clone()).unwrap_or_default()
        })
    };
    let members = move || {
        ctx.state.with(|s| {
            s.current
                .as_deref()
                .and_then(|c| s.conversation(c))
                .map(|c| c.members.clone())
                .unwrap_or_default()
        })
    };
    let topic = move || {
        ctx.state.with(|s| s.current.as_deref().and_then(|c| s.conversation(c)).and_then(|c| c.topic.clone()))
    };
    let on_send = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = input.get_untracked();
        if text.trim().is_empty() {
            return;
        }
        ctx.submit_input(text);
        input.set(String::new());
    };
    view! {
        <main class="conversation-pane">
            <header class="topic">
                <strong class="title">{move || current().unwrap_or_else(|| "No conversation".into())}</strong>
                <span class="topic-text">{move || topic().unwrap_or_default()}</span>
            </header>
            <ol class="lines" aria-live="polite">
                <For each=lines key=|l| l.seq let:line>
                    <li class=match line.kind {
                        LineKind::Message => "line message",
                        LineKind::Action => "line action",
                        LineKind::System => "line system",
                        LineKind::Error => "line error",
                    }>
                        <span class="from">{line.from}</span>
                        " "
                        <span class="text">{line.text}</span>
                    </li>
                </For>
            </ol>
            <form class="composer" on:submit=on_send>
                <label class="visually-hidden" for="message-input">"Message"</label>
                <input id="message-input" autocomplete="off" placeholder="Message, or /command" bind:value=input/>
                <button type="submit">"Send"</button>
            </form>
        </main>
        <aside class="members" aria-label="Members">
            <ul>
                <For each=members key=|m| (m.nick.clone(), m.op, m.voice, m.away) let:member>
                    <li class="member" class:away=member.away>
                        {if member.op { "@" } else if member.voice { "+" } else { "" }}
                        {member.nick}
                    </li>
                </For>
            </ul>
        </aside>
    }
    .into_any()
}

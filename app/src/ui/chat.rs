//! The chat view: the sidebar of conversations, the open conversation (topic bar, lines,
//! composer) and the member list, plus the channel settings and account panels.

use leptos::either::{Either, EitherOf3};
use leptos::html;
use leptos::prelude::*;

use super::admin::{self, AdminPage, DURATIONS};
use super::dialog::{focus_first, menu_key, Modal};
use super::input::{complete_nick, suggestions, Recall};
use super::login::{email_problem, password_problem};
use super::state::{arrange, away_words, ban_target, nick_colour, ChatState, Delivery, LineKind, Shown};
use super::switch::{component, memo, show, show_else};
use super::text::{segments, Segment};
use super::time;
use super::{browser, ConnectionBanner, Ctx, StatusLine};
use crate::protocol::command::{CommandHelp, COMMANDS};
use crate::protocol::names::{fold, is_channel};
use crate::protocol::Member;
use crate::protocol::{CeleryRequest, Command, ErrorCode, OperRequest, Password, PotatoRequest};

/// Which side panels are open (on a phone they cover the conversation).
#[derive(Clone, Copy)]
struct Panels {
    sidebar: RwSignal<bool>,
    members: RwSignal<bool>,
    settings: RwSignal<bool>,
    account: RwSignal<bool>,
}

// `#[component]` re-emits the function in a way `unreachable_pub` misreads.
#[allow(unreachable_pub)]
#[component]
pub(super) fn Chat() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let panels = Panels {
        sidebar: RwSignal::new(false),
        members: RwSignal::new(false),
        settings: RwSignal::new(false),
        account: RwSignal::new(false),
    };
    provide_context(panels);
    // Alt+↑/↓ move between conversations, Alt+1…9 jump to one.
    #[cfg(feature = "hydrate")]
    {
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            if !ev.alt_key() {
                return;
            }
            let key = ev.key();
            let handled = match key.as_str() {
                "ArrowUp" => {
                    ctx.state.update(|s| s.cycle(-1));
                    true
                }
                "ArrowDown" => {
                    ctx.state.update(|s| s.cycle(1));
                    true
                }
                digit if digit.len() == 1 && ("1"..="9").contains(&digit) => {
                    let n = digit.parse::<usize>().unwrap_or(1) - 1;
                    ctx.state.update(|s| {
                        if let Some(name) = s.conversations.get(n).map(|c| c.name.clone()) {
                            s.open(&name);
                        }
                    });
                    true
                }
                _ => false,
            };
            if handled {
                ev.prevent_default();
            }
        });
        on_cleanup(move || handle.remove());
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ctx;
    component(view! {
        <div
            class="layout"
            class:show-sidebar=move || panels.sidebar.get()
            class:show-members=move || panels.members.get()
            // A private conversation has no member list.
            class:private=move || ctx.state.with(|s| s.current.as_deref().is_some_and(|c| !is_channel(c)))
        >
            <h1 class="visually-hidden">"Chattr"</h1>
            // New messages read out as they come (the list itself stays quiet, so history
            // loading is not read out).
            <div class="visually-hidden" role="status" aria-live="polite" data-testid="announcer">
                {move || ctx.state.with(|s| s.announcement.clone())}
            </div>
            <Sidebar/>
            <Pane/>
            <Members/>
            // On a phone, behind an open panel: a tap outside closes it.
            {show(move || panels.sidebar.get() || panels.members.get(), move || view! {
                <div
                    class="scrim"
                    data-testid="scrim"
                    aria-hidden="true"
                    on:click=move |_| {
                        panels.sidebar.set(false);
                        panels.members.set(false);
                    }
                ></div>
            })}
            {show(move || panels.account.get(), move || view! {
                <AccountPanel/>
            })}
            {show(move || ctx.state.with(|s| s.browsing), move || view! {
                <ChannelBrowser/>
            })}
            {show(move || ctx.state.with(|s| s.helping), move || view! {
                <HelpDialog/>
            })}
            {show(move || ctx.state.with(|s| s.administering), move || view! {
                <AdminPage/>
            })}
            <Invitations/>
        </div>
    })
}

/// Joins a channel (or shows it, when already in).
fn join_channel(ctx: Ctx, channel: &str) {
    if ctx.state.with_untracked(|s| s.conversation(channel).is_some()) {
        ctx.state.update(|s| s.open(channel));
    } else {
        ctx.run(Command::Join { channel: channel.to_owned(), key: None });
    }
}

/// The commands `shown` picks, with their usage and help.
fn command_list(shown: impl Fn(&CommandHelp) -> bool) -> impl IntoView {
    view! {
        <dl class="command-help">
            {COMMANDS
                .iter()
                .filter(|c| shown(c))
                .map(|c| view! { <dt><code>{c.usage}</code></dt><dd>{c.help}</dd> })
                .collect_view()}
        </dl>
    }
}

/// The first thing after logging in, while no conversation is open: where to go next.
#[component]
fn WelcomeView() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let me = move || ctx.state.with(|s| s.me.clone().unwrap_or_default());
    let defaults = move || ctx.state.with(|s| s.default_channels.clone());
    let common = ["join", "msg", "nick", "me", "away", "list"];
    component(view! {
        <section class="welcome" aria-labelledby="welcome-title" data-testid="welcome">
            <h2 id="welcome-title">{move || format!("Welcome, {}!", me())}</h2>
            <p>"Pick a channel to start talking."</p>
            <div class="row">
                {move || defaults().into_iter().map(|channel| view! {
                    <button type="button" on:click={
                        let channel = channel.clone();
                        move |_| join_channel(ctx, &channel)
                    }>{format!("Join {channel}")}</button>
                }).collect_view()}
                <button type="button" class="secondary" on:click=move |_| ctx.run(Command::List)>
                    "Browse channels"
                </button>
            </div>
            <p class="hint">"Or type a command below. Some to start with:"</p>
            {command_list(move |c| common.contains(&c.name))}
            <button type="button" class="link-button" on:click=move |_| ctx.state.update(|s| s.helping = true)>
                "All commands (/help)"
            </button>
        </section>
    })
}

/// The channels on the server, from `/list`: name, topic, members, and a button to join.
#[component]
fn ChannelBrowser() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let filter = RwSignal::new(String::new());
    let close = move || ctx.state.update(|s| s.browsing = false);
    let channels = move || {
        let wanted = fold(filter.get().trim());
        ctx.state.with(|s| {
            s.channel_list
                .iter()
                .flatten()
                .filter(|c| {
                    wanted.is_empty()
                        || fold(&c.channel).contains(&wanted)
                        || c.topic.as_deref().is_some_and(|t| fold(t).contains(&wanted))
                })
                .map(|c| (c.clone(), s.conversation(&c.channel).is_some()))
                .collect::<Vec<_>>()
        })
    };
    component(view! {
        <Modal label="Channels" on_close=move |()| close() class="channel-browser">
            <h2>"Channels"</h2>
            <label for="channel-filter">"Find a channel"</label>
            <input id="channel-filter" autocomplete="off" placeholder="name or topic" bind:value=filter/>
            <ul class="channel-list" data-testid="channel-list">
                {move || channels().into_iter().map(|item| view! {
                    {
                        let (summary, joined) = item;
                        let name = summary.channel.clone();
                        let people = if summary.members == 1 { "1 person".to_owned() } else { format!("{} people", summary.members) };
                        view! {
                            <li class="channel-row">
                                <div class="channel-info">
                                    <strong>{summary.channel.clone()}</strong>
                                    <span class="hint">{people}</span>
                                    <span class="topic">{summary.topic.clone().unwrap_or_default()}</span>
                                </div>
                                <button
                                    type="button"
                                    aria-label=format!("{} {}", if joined { "Open" } else { "Join" }, summary.channel)
                                    on:click=move |_| {
                                        join_channel(ctx, &name);
                                        close();
                                    }
                                >
                                    {if joined { "Open" } else { "Join" }}
                                </button>
                            </li>
                        }
                    }
                }).collect_view()}
            </ul>
            {show(move || channels().is_empty(), move || view! {
                <p class="hint">"No channels match. Type a name in the sidebar's Join box to create one."</p>
            })}
            <div class="row">
                <button type="button" class="secondary" on:click=move |_| ctx.run(Command::List)>"Refresh"</button>
                <button type="button" class="secondary" on:click=move |_| close()>"Close"</button>
            </div>
        </Modal>
    })
}

/// `/help`: every command with its usage.
#[component]
fn HelpDialog() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let close = move || ctx.state.update(|s| s.helping = false);
    let oper = ctx.state.with_untracked(|s| s.oper);
    component(view! {
        <Modal label="Commands" on_close=move |()| close() class="help-dialog">
            <h2>"Commands"</h2>
            {command_list(move |c| oper || !c.oper)}
            <p class="hint">"Services: /potato help (your nick), /celery help (channels)."</p>
            <button type="button" class="secondary" on:click=move |_| close()>"Close"</button>
        </Modal>
    })
}

/// Invitations to channels, wherever you are, with a way to accept.
#[component]
fn Invitations() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let invites = move || ctx.state.with(|s| s.invites.clone());
    let dismiss = move |channel: &str| {
        let key = fold(channel);
        ctx.state.update(|s| s.invites.retain(|(c, _)| fold(c) != key));
    };
    component(view! {
        <div class="toasts" role="status" aria-live="polite">
            {move || invites().into_iter().map(|invite| view! {
                {
                    let (channel, by) = invite;
                    let (join, skip) = (channel.clone(), channel.clone());
                    view! {
                        <div class="toast" data-testid="invitation">
                            <span>{format!("{by} invited you to {channel}")}</span>
                            <button type="button" on:click=move |_| {
                                ctx.run(Command::Join { channel: join.clone(), key: None });
                                dismiss(&join);
                            }>"Join"</button>
                            <button type="button" class="secondary" on:click=move |_| dismiss(&skip)>"Dismiss"</button>
                        </div>
                    }
                }
            }).collect_view()}
        </div>
    })
}

#[component]
fn Sidebar() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let panels = expect_context::<Panels>();
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
        ctx.run(Command::Join { channel, key: None });
        join.set(String::new());
        panels.sidebar.set(false);
    };
    let conversations = move || {
        ctx.state.with(|s| {
            s.conversations.iter().map(|c| (c.name.clone(), c.unread, c.mentions)).collect::<Vec<_>>()
        })
    };
    let me = move || ctx.state.with(|s| s.me.clone().unwrap_or_default());
    let account = move || ctx.state.with(|s| s.account.clone());
    let on_notifications = move |ev: leptos::ev::Event| {
        if event_target_checked(&ev) {
            browser::request_notifications(move |granted| ctx.notifications.set(granted));
        } else {
            ctx.notifications.set(false);
        }
    };
    component(view! {
        <nav class="sidebar" aria-label="Conversations">
            <header class="identity">
                <span class="me" data-testid="me">{me}</span>
                <span class="account">{move || account().unwrap_or_else(|| "guest".into())}</span>
                <button type="button" class="link-button" on:click=move |_| panels.account.set(true)>
                    "Account"
                </button>
                {show(move || ctx.state.with(|s| s.oper), move || view! {
                    <button type="button" class="link-button" on:click=move |_| admin::open(ctx)>"Server"</button>
                })}
                <button type="button" class="link-button" on:click=move |_| ctx.log_out()>
                    "Log out"
                </button>
            </header>
            <ul class="conversations">
                <For each=conversations key=|c| c.clone() let:((name, unread, mentions))>
                    <ConversationItem name unread mentions/>
                </For>
            </ul>
            <form class="join" on:submit=on_join>
                <label for="join-channel">"Join a channel"</label>
                <div class="row">
                    <input id="join-channel" placeholder="#channel" autocomplete="off" bind:value=join/>
                    <button type="submit">"Join"</button>
                </div>
                <button type="button" class="link-button" on:click=move |_| {
                    ctx.run(Command::List);
                    panels.sidebar.set(false);
                }>"Browse channels"</button>
            </form>
            <footer class="settings">
                <label for="theme">"Theme"</label>
                <select
                    id="theme"
                    prop:value=move || ctx.theme.get()
                    on:change=move |ev| ctx.theme.set(event_target_value(&ev))
                >
                    <option value="system">"System"</option>
                    <option value="light">"Light"</option>
                    <option value="dark">"Dark"</option>
                </select>
                <label class="check">
                    <input type="checkbox" prop:checked=move || ctx.notifications.get() on:change=on_notifications/>
                    "Desktop notifications"
                </label>
                <StatusLine/>
            </footer>
        </nav>
    })
}

#[component]
fn ConversationItem(name: String, unread: u32, mentions: u32) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let panels = expect_context::<Panels>();
    let key = name.clone();
    let is_current = move || ctx.state.with(|s| s.current.as_deref() == Some(key.as_str()));
    let open = {
        let name = name.clone();
        move |_| {
            ctx.state.update(|s| s.open(&name));
            panels.sidebar.set(false);
            panels.settings.set(false);
        }
    };
    let kind = if is_channel(&name) { "channel" } else { "private" };
    let label = match (unread, mentions) {
        (0, _) => name.clone(),
        (u, 0) => format!("{name}, {u} unread"),
        (u, m) => format!("{name}, {u} unread, {m} mentioning you"),
    };
    component(view! {
        <li>
            <button
                class=format!("conversation {kind}")
                class:current=is_current.clone()
                aria-current=move || if is_current() { "page" } else { "false" }
                aria-label=label
                on:click=open
            >
                <span class="name">{name}</span>
                {show(move || { mentions > 0 }, move || view! {
                    <span class="badge mention" data-testid="mention-badge">{mentions}</span>
                })}
                {show(move || { unread > 0 && mentions == 0 }, move || view! {
                    <span class="badge unread" data-testid="unread-badge">{unread}</span>
                })}
            </button>
        </li>
    })
}

#[component]
fn Pane() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let panels = expect_context::<Panels>();
    let current = move || ctx.state.with(|s| s.current.clone());
    let is_chan = move || current().is_some_and(|c| is_channel(&c));
    // Unread lines and mentions in conversations other than the one on screen.
    let elsewhere = move || ctx.state.with(ChatState::unread_elsewhere);
    component(view! {
        <main class="pane">
            <div class="mobile-bar">
                <button
                    type="button"
                    class="menu-button"
                    aria-label=move || {
                        let (unread, mentions) = elsewhere();
                        match (unread, mentions) {
                            (0, _) => "Conversations".to_owned(),
                            (u, 0) => format!("Conversations, {u} unread elsewhere"),
                            (u, m) => format!("Conversations, {u} unread elsewhere, {m} mentioning you"),
                        }
                    }
                    on:click=move |_| panels.sidebar.update(|v| *v = !*v)
                >
                    "☰"
                    // What waits in other conversations, on a phone where the list is hidden.
                    {show(move || { elsewhere().0 > 0 }, move || view! {
                        <span
                            class="badge"
                            class:mention=move || { elsewhere().1 > 0 }
                            class:unread=move || { elsewhere().1 == 0 }
                            data-testid="menu-badge"
                            aria-hidden="true"
                        >
                            {move || { let (u, m) = elsewhere(); if m > 0 { m } else { u } }}
                        </span>
                    })}
                </button>
                <strong>{move || current().unwrap_or_default()}</strong>
                <button type="button" class="members-button" aria-label="Members" on:click=move |_| panels.members.update(|v| *v = !*v)>
                    "Members"
                </button>
            </div>
            <TopicBar/>
            <ConnectionBanner/>
            {show(move || panels.settings.get() && is_chan(), move || view! {
                <ChannelSettings/>
            })}
            {show(move || current().is_none(), move || view! {
                <WelcomeView/>
            })}
            <Lines/>
            <Composer/>
        </main>
    })
}

#[component]
fn TopicBar() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let panels = expect_context::<Panels>();
    let editing = RwSignal::new(false);
    let draft = RwSignal::new(String::new());
    let current = move || ctx.state.with(|s| s.current.clone());
    let topic = move || ctx.state.with(|s| s.current_conversation().and_then(|c| c.topic.clone()));
    let may_edit = move || ctx.state.with(|s| s.current.as_deref().is_some_and(|c| s.may_set_topic(c)));
    let is_chan = move || current().is_some_and(|c| is_channel(&c));
    let start_edit = move |_| {
        draft.set(topic().unwrap_or_default());
        editing.set(true);
    };
    let topic_field = NodeRef::<html::Input>::new();
    Effect::new(move |_| {
        if let Some(el) = topic_field.get() {
            let _ = el.focus();
        }
    });
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Some(channel) = current() {
            let text = draft.get_untracked();
            // Nothing but spaces clears the topic.
            let text = if text.trim().is_empty() { String::new() } else { text };
            ctx.run(Command::Topic { channel, topic: Some(text) });
        }
        editing.set(false);
    };
    let leave = move |_| {
        if let Some(name) = current() {
            if is_channel(&name) {
                ctx.run(Command::Part { channel: name, reason: None });
            } else {
                ctx.state.update(|s| s.remove(&name));
            }
        }
    };
    component(view! {
        <header class="topic-bar">
            <h2 class="title">{move || current().unwrap_or_else(|| "No conversation".into())}</h2>
            {show_else(move || editing.get(), move || view! {
                <form class="topic-edit" on:submit=save on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    if ev.key() == "Escape" {
                        ev.prevent_default();
                        editing.set(false);
                    }
                }>
                    <label class="visually-hidden" for="topic-input">"Topic"</label>
                    <input id="topic-input" maxlength="390" node_ref=topic_field bind:value=draft/>
                    <button type="submit">"Save topic"</button>
                    <button type="button" class="secondary" on:click=move |_| editing.set(false)>"Cancel"</button>
                </form>
            }, move || view! {
                <span class="topic-text" data-testid="topic">{move || render_text(topic().unwrap_or_default())}</span>
                // Of a private conversation: whether the other person is around.
                {show(move || current().is_some_and(|c| !is_channel(&c)), move || view! {
                    <span class="presence" data-testid="presence">
                        {move || ctx.state.with(|s| {
                            let nick = s.current.clone().unwrap_or_default();
                            s.presence(&nick).unwrap_or_else(|| "in none of your channels".to_owned())
                        })}
                    </span>
                })}
                {show(may_edit, move || view! {
                    <button type="button" class="link-button" on:click=start_edit>"Edit topic"</button>
                })}
            })}
            <div class="topic-actions">
                {show(is_chan, move || view! {
                    <button
                        type="button"
                        class="secondary"
                        aria-expanded=move || panels.settings.get().to_string()
                        on:click=move |_| panels.settings.update(|v| *v = !*v)
                    >
                        "Channel settings"
                    </button>
                })}
                {show(move || current().is_some(), move || view! {
                    <button type="button" class="secondary" on:click=leave>
                        {move || if is_chan() { "Leave" } else { "Close" }}
                    </button>
                })}
            </div>
        </header>
    })
}

/// How an account reads in the channel panel: `alice` for a Potato account, `bob (app)` for
/// one an app logged in.
fn account_words(key: &str) -> String {
    match key.split_once(':') {
        Some(("potato", name)) => name.to_owned(),
        Some(("app", name)) => format!("{name} (app)"),
        _ => key.to_owned(),
    }
}

/// The channel's panel: its registration with Celery (founder, the op list as chips) and its
/// bans, each with only the actions you may take.
#[component]
fn ChannelSettings() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let channel = Memo::new(move |_| ctx.state.with(|s| s.current.clone().unwrap_or_default()));
    // The bans are asked for when the panel opens, for each channel it shows and after each
    // reconnect; the answer goes to the panel only.
    let online = Memo::new(move |_| ctx.state.with(|s| s.online));
    Effect::new(move |_| {
        let channel = channel.get();
        if online.get() {
            ctx.state.update(|s| s.ask_bans(&channel));
            ctx.run(Command::Bans { channel });
        }
    });
    let registration =
        move || ctx.state.with(|s| s.current_conversation().and_then(|c| c.registration.clone()));
    let rights = move || ctx.state.with(|s| s.celery_rights(&channel.get()));
    let i_am_op = move || ctx.state.with(|s| s.is_op(&channel.get()));
    let bans = memo(move || ctx.state.with(|s| s.current_conversation().and_then(|c| c.bans.clone())));
    let celery = move |request: CeleryRequest| ctx.run(Command::Celery { request });
    let account = RwSignal::new(String::new());
    let add_op = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let who = account.get_untracked().trim().to_owned();
        if !who.is_empty() {
            celery(CeleryRequest::Op { channel: channel.get_untracked(), account: who });
            account.set(String::new());
        }
    };
    let dropping = RwSignal::new(false);
    // What was begun for one channel does not carry over to the next.
    Effect::new(move |_| {
        channel.track();
        dropping.set(false);
        account.set(String::new());
    });
    let ops = memo(move || {
        registration().map_or_else(Vec::new, |r| {
            r.ops.iter().map(|k| (k.clone(), r.trusted.contains(k))).collect::<Vec<_>>()
        })
    });
    component(view! {
        <section class="channel-settings" aria-label="Channel settings" data-testid="channel-settings">
            <h3>"Registration"</h3>
            {show_else(
                move || registration().is_some(),
                move || view! {
                    <p data-testid="registration">
                        "Registered with Celery; founder "
                        <strong>{move || registration().map(|r| account_words(&r.founder)).unwrap_or_default()}</strong>
                        ". Its topic, bans and modes are kept."
                    </p>
                    <h4 id="op-list-title">"Op list"</h4>
                    <p class="hint">"These accounts become operators when they join."</p>
                    <ul class="chips" aria-labelledby="op-list-title" data-testid="op-list">
                        {move || ops().into_iter().map(|op| view! {
                            {
                                let (key, trusted) = op;
                                let name = account_words(&key);
                                let (untrust, trust, deop) = (key.clone(), key.clone(), key);
                                view! {
                                    <li class="chip">
                                        <span>{name.clone()}</span>
                                        {trusted.then_some(view! { <span class="hint">" · may edit the list"</span> })}
                                        {show(move || rights().founder, {
                                            let (untrust, trust, name) = (untrust.clone(), trust.clone(), name.clone());
                                            move || {
                                                let (untrust, trust) = (untrust.clone(), trust.clone());
                                                if trusted {
                                                    Either::Left(view! {
                                                        <button type="button" class="link-button" aria-label=format!("Stop {name} editing the op list")
                                                            on:click=move |_| celery(CeleryRequest::Untrust { channel: channel.get_untracked(), account: untrust.clone() })>"Untrust"</button>
                                                    })
                                                } else {
                                                    Either::Right(view! {
                                                        <button type="button" class="link-button" aria-label=format!("Let {name} edit the op list")
                                                            on:click=move |_| celery(CeleryRequest::Trust { channel: channel.get_untracked(), account: trust.clone() })>"Trust"</button>
                                                    })
                                                }
                                            }
                                        })}
                                        {show(move || rights().edit_ops, {
                                            let (deop, name) = (deop.clone(), name.clone());
                                            move || {
                                                let deop = deop.clone();
                                                view! {
                                                    <button type="button" class="chip-remove" aria-label=format!("Remove {name} from the op list")
                                                        on:click=move |_| celery(CeleryRequest::Deop { channel: channel.get_untracked(), account: deop.clone() })>"×"</button>
                                                }
                                            }
                                        })}
                                    </li>
                                }
                            }
                        }).collect_view()}
                    </ul>
                    {show(move || ops().is_empty(), || view! { <p class="hint">"Nobody is on it yet."</p> })}
                    {show(move || rights().edit_ops, move || view! {
                        <form class="row" on:submit=add_op>
                            <label class="visually-hidden" for="op-account">"Account to add to the op list"</label>
                            <input id="op-account" placeholder="nick or account" autocomplete="off" bind:value=account/>
                            <button type="submit">"Add to op list"</button>
                        </form>
                    })}
                    {show(move || rights().founder, move || view! {
                        {show_else(
                            move || dropping.get(),
                            move || view! {
                                <p class="row" role="alert">
                                    {move || format!("Drop the registration of {}? The channel keeps nothing once it empties.", channel.get())}
                                    <button type="button" class="danger-button" on:click=move |_| {
                                        dropping.set(false);
                                        celery(CeleryRequest::Drop { channel: channel.get_untracked() });
                                    }>"Drop registration"</button>
                                    <button type="button" class="secondary" on:click=move |_| dropping.set(false)>"Cancel"</button>
                                </p>
                            },
                            move || view! {
                                <div class="row">
                                    <button type="button" class="secondary" on:click=move |_| dropping.set(true)>"Drop registration…"</button>
                                </div>
                            },
                        )}
                    })}
                },
                move || view! {
                    <p class="hint" data-testid="registration">
                        "Not registered. Registering a channel with Celery keeps its topic, bans and modes, and makes the accounts on its op list operators when they join."
                    </p>
                    {show_else(
                        move || rights().register,
                        move || view! {
                            <div class="row">
                                <button type="button" on:click=move |_| celery(CeleryRequest::Register { channel: channel.get_untracked() })>
                                    "Register channel"
                                </button>
                            </div>
                        },
                        move || view! {
                            <p class="hint">
                                {move || if ctx.state.with(|s| s.account.is_none()) {
                                    "To register it, sign in to a registered nick (Account) and be an operator here."
                                } else {
                                    "To register it, be an operator here."
                                }}
                            </p>
                        },
                    )}
                },
            )}
            <h3 id="ban-list-title">"Bans"</h3>
            {show_else(
                move || bans().is_some_and(|b| !b.is_empty()),
                move || view! {
                    <ul class="ban-list" aria-labelledby="ban-list-title" data-testid="ban-list">
                        {move || bans().unwrap_or_default().into_iter().map(|ban| view! {
                            {
                                let mask = ban.mask.clone();
                                let whom = ban_target(&mask, ban.nick.as_deref());
                                let by = ban.by.clone().map(|b| format!(" · set by {b}"));
                                view! {
                                    <li class="ban">
                                        <span class="mask">{whom.clone()}</span>
                                        <span class="hint">{by}</span>
                                        {show(i_am_op, move || {
                                            let mask = mask.clone();
                                            view! {
                                                <button type="button" class="link-button" aria-label=format!("Unban {whom}")
                                                    on:click=move |_| ctx.run(Command::Unban { channel: channel.get_untracked(), mask: mask.clone() })>"Unban"</button>
                                            }
                                        })}
                                    </li>
                                }
                            }
                        }).collect_view()}
                    </ul>
                },
                move || view! {
                    <p class="hint" data-testid="ban-list">
                        {move || ctx.state.with(|s| match s.current_conversation() {
                            Some(c) if c.bans.is_some() => "Nobody is banned.",
                            Some(c) if c.bans_asked => "Loading…",
                            _ => "The ban list could not be loaded.",
                        })}
                    </p>
                },
            )}
        </section>
    })
}

/// Kick or ban from the channel, or (for a server operator) disconnect or ban from the server,
/// asked for from a member's menu: with a reason, confirmed. A ban also removes the user from
/// the channel (and keeps them out); a server ban is for a length chosen here.
#[component]
fn ModerationDialog(confirm: RwSignal<Option<(&'static str, String)>>) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let reason = RwSignal::new(String::new());
    let length = RwSignal::new("86400".to_owned());
    let (verb, nick) = confirm.get_untracked().unwrap_or(("kick", String::new()));
    let channel = ctx.state.with_untracked(|s| s.current.clone().unwrap_or_default());
    let close = move || confirm.set(None);
    let (title, action, explain) = match verb {
        "ban" => (
            format!("Ban {nick} from {channel}"),
            format!("Ban {nick}"),
            "They are removed from the channel and cannot come back (their address is banned) until an operator lifts the ban.",
        ),
        "kill" => (
            format!("Disconnect {nick} from the server"),
            format!("Disconnect {nick}"),
            "Their session ends at once, in every channel. They may connect again.",
        ),
        "kline" => (
            format!("Ban {nick} from the server"),
            format!("Ban {nick} from the server"),
            "Their address is banned from the whole server: their session ends and nobody can log in from there until the ban ends or is lifted.",
        ),
        _ => (
            format!("Kick {nick} from {channel}"),
            format!("Kick {nick}"),
            "They are removed from the channel and may join again.",
        ),
    };
    let on_submit = {
        let (channel, nick) = (channel.clone(), nick.clone());
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let why = reason.get_untracked().trim().to_owned();
            let reason = (!why.is_empty()).then_some(why);
            let (channel, nick) = (channel.clone(), nick.clone());
            match verb {
                "kill" => admin::oper(ctx, OperRequest::Kill { nick, reason }),
                "kline" => admin::ban(ctx, nick, &length.get_untracked(), reason),
                _ => {
                    if verb == "ban" {
                        ctx.run(Command::Ban { channel: channel.clone(), mask: nick.clone() });
                    }
                    ctx.run(Command::Kick { channel, nick, reason });
                }
            }
            close();
        }
    };
    component(view! {
        <Modal label=title.clone() on_close=move |()| close()>
            <form class="account-form" on:submit=on_submit>
                <h2>{title.clone()}</h2>
                <p class="hint">{explain}</p>
                <label for="moderation-reason">{if matches!(verb, "kill" | "kline") { "Reason (shown to them and in the audit log)" } else { "Reason (shown to everyone)" }}</label>
                <input id="moderation-reason" maxlength="300" autocomplete="off" bind:value=reason/>
                {show(move || verb == "kline", move || view! {
                    <label for="moderation-length">"For"</label>
                    <select id="moderation-length" prop:value=move || length.get() on:change=move |ev| length.set(event_target_value(&ev))>
                        {DURATIONS.iter().map(|(secs, label)| view! { <option value=*secs>{*label}</option> }).collect_view()}
                    </select>
                })}
                <div class="row">
                    <button type="submit" class="danger-button">{action}</button>
                    <button type="button" class="secondary" on:click=move |_| close()>"Cancel"</button>
                </div>
            </form>
        </Modal>
    })
}

/// Potato from a panel, for someone already chatting: two forms, one to sign in to a
/// registered nick, one to register the nick in use.
#[component]
fn AccountPanel() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let panels = expect_context::<Panels>();
    let me = ctx.state.with_untracked(|s| s.me.clone().unwrap_or_default());
    let nick = RwSignal::new(me.clone());
    let password = RwSignal::new(String::new());
    let new_password = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    // What keeps the registration from going out, in words.
    let problem = RwSignal::new(None::<&'static str>);
    let close = move || panels.account.set(false);
    let identify = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (nick, secret) = (nick.get_untracked().trim().to_owned(), Password(password.get_untracked()));
        ctx.run(Command::Potato { request: PotatoRequest::Identify { nick: Some(nick), password: secret } });
        password.set(String::new());
        close();
    };
    let register = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let found =
            password_problem(&new_password.get_untracked()).or_else(|| email_problem(&email.get_untracked()));
        if found.is_some() {
            problem.set(found);
            return;
        }
        let (password, email) =
            (Password(new_password.get_untracked()), email.get_untracked().trim().to_owned());
        ctx.run(Command::Potato { request: PotatoRequest::Register { nick: None, password, email } });
        new_password.set(String::new());
        close();
    };
    component(view! {
        <Modal label="Your nick" on_close=move |()| close()>
            <h2>"Your nick"</h2>
            <form class="account-form" on:submit=identify aria-labelledby="sign-in-title">
                <h3 id="sign-in-title">"Sign in to a registered nick"</h3>
                <label for="account-nick">"Nick"</label>
                <input id="account-nick" autocomplete="username" required bind:value=nick/>
                <label for="account-password">"Password"</label>
                <input id="account-password" type="password" required autocomplete="current-password" bind:value=password/>
                <div class="row">
                    <button type="submit">"Sign in"</button>
                </div>
            </form>
            <form class="account-form" on:submit=register aria-labelledby="register-title">
                <h3 id="register-title">{format!("Register {me}, the nick you are using")}</h3>
                <p class="hint">"Nobody else can use it then, and Celery can list you as a channel operator."</p>
                <label for="account-new-password">"New password (8 characters or more)"</label>
                <input id="account-new-password" type="password" required minlength="8" autocomplete="new-password" bind:value=new_password/>
                <label for="account-email">"Email"</label>
                <input id="account-email" type="email" required autocomplete="email" bind:value=email/>
                {move || problem.get().map(|p| view! { <p class="field-error" role="alert" data-testid="account-problem">{p}</p> })}
                <div class="row">
                    <button type="submit">"Register"</button>
                </div>
            </form>
            <div class="row">
                <button type="button" class="secondary" on:click=move |_| close()>"Close"</button>
            </div>
        </Modal>
    })
}

fn render_text(text: String) -> impl IntoView {
    segments(&text)
        .into_iter()
        .map(|seg| match seg {
            Segment::Text(t) => Either::Left(t),
            Segment::Link(url) => {
                let href = url.clone();
                Either::Right(view! { <a href=href target="_blank" rel="noopener noreferrer">{url}</a> })
            }
        })
        .collect_view()
}

#[component]
fn Lines() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let list = NodeRef::<html::Div>::new();
    // Distance from the bottom to keep when older lines are put above, and whether to follow
    // new lines (the reader is at the bottom).
    let anchor = StoredValue::new(None::<i32>);
    let follow = StoredValue::new(true);
    let shown = move || {
        // The UTC offset at each line's time (it moves with daylight saving time), asked of
        // the browser once per hour of lines.
        let mut zone = (u64::MAX, 0);
        let mut offset_at = move |ts: u64| {
            if zone.0 != ts / 3_600_000 {
                zone = (ts / 3_600_000, browser::utc_offset_minutes(ts));
            }
            zone.1
        };
        let now = browser::now_ms();
        let today = time::day(now, offset_at(now));
        ctx.state.with(|s| {
            // With no conversation open, the server's lines (errors, notices) show instead.
            match s.current_conversation() {
                Some(conv) => arrange(&conv.lines, conv.marker, today, offset_at),
                None => arrange(&s.server, None, today, offset_at),
            }
        })
    };
    let current = move || ctx.state.with(|s| s.current.clone());
    let loading = move || ctx.state.with(|s| s.current_conversation().is_some_and(|c| c.loading));
    // The name of the conversation whose first message is shown, if it is.
    let at_beginning =
        move || ctx.state.with(|s| s.current_conversation().filter(|c| !c.more).map(|c| c.name.clone()));
    // A new conversation starts at its bottom.
    Effect::new(move |_| {
        current();
        follow.set_value(true);
        anchor.set_value(None);
    });
    // After lines change: keep the reader's place when older lines came in above, or follow.
    Effect::new(move |_| {
        shown();
        let waiting = loading();
        if let Some(el) = list.get() {
            request_animation_frame(move || {
                // A hidden page (a closed widget) runs no frames until it is shown, and by
                // then this list may be gone.
                let (Some(anchored), Some(following)) = (anchor.try_get_value(), follow.try_get_value())
                else {
                    return;
                };
                if let Some(from_bottom) = anchored {
                    el.set_scroll_top(el.scroll_height() - from_bottom);
                    // Held until the page asked for has come.
                    if !waiting {
                        anchor.set_value(None);
                    }
                } else if following {
                    el.set_scroll_top(el.scroll_height());
                }
            });
        }
    });
    let on_scroll = move |_| {
        let Some(el) = list.get() else { return };
        follow.set_value(el.scroll_height() - el.scroll_top() - el.client_height() < 40);
        if el.scroll_top() < 40 && anchor.get_value().is_none() {
            // The lines change (and are laid out again) only when a page is asked for.
            let frame = ctx
                .state
                .try_maybe_update(|s| {
                    let frame = s.current.clone().and_then(|c| s.page_back(&c));
                    (frame.is_some(), frame)
                })
                .flatten();
            if let Some(frame) = frame {
                anchor.set_value(Some(el.scroll_height() - el.scroll_top()));
                ctx.send(frame);
            }
        }
    };
    component(view! {
        <div class="lines" node_ref=list on:scroll=on_scroll role="log" aria-live="off" aria-label="Messages" tabindex="0">
            {move || at_beginning().map(|name| {
                let what = if is_channel(&name) { name } else { format!("your conversation with {name}") };
                view! { <p class="beginning" data-testid="beginning">{format!("Beginning of {what}")}</p> }
            })}
            {show(loading, || view! {
                <p class="paging" role="status" data-testid="loading-older">"Loading older messages…"</p>
            })}
            <ol class="line-list">
                <For
                    each=shown
                    key=|s| (s.line.seq, s.grouped, s.divider, s.day.clone(), s.line.mention, s.line.delivery.clone())
                    let:item
                >
                    <LineView item/>
                </For>
            </ol>
        </div>
    })
}

/// A refused message of yours: the reason and what to do about it.
fn delivery_view(delivery: Delivery) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    match delivery {
        Delivery::Sent | Delivery::Pending(_) => None,
        Delivery::Failed { txn, why } => {
            let (retry, edit) = (txn.clone(), txn);
            Some(view! {
                <span class="delivery failed" role="alert">
                    <span class="why">{format!("Not sent: {why}")}</span>
                    <button type="button" class="link-button" on:click=move |_| ctx.retry(&retry)>"Retry"</button>
                    <button type="button" class="link-button" on:click=move |_| ctx.edit(&edit)>"Edit"</button>
                </span>
            })
        }
    }
}

#[component]
fn LineView(item: Shown) -> impl IntoView {
    let Shown { line, grouped, divider, day, offset } = item;
    let delivery = line.delivery.clone();
    let state = match &delivery {
        Delivery::Sent => "",
        Delivery::Pending(_) => "pending",
        Delivery::Failed { .. } => "failed",
    };
    let kind = match line.kind {
        LineKind::Message => "message",
        LineKind::Action => "action",
        LineKind::System => "system",
        LineKind::Notice => "notice",
        LineKind::Error => "error",
    };
    // People's names in their colour; a service's (a notice) in the accent colour.
    let from_class = match line.kind {
        LineKind::Notice => "from".to_owned(),
        _ => format!("from nick-c{}", nick_colour(&line.from)),
    };
    let body = match line.kind {
        LineKind::Action => EitherOf3::A(view! {
            <span class="text"><span class=from_class>{line.from.clone()}</span>" "{render_text(line.text.clone())}</span>
        }),
        // A line grouped under the one before shows no author, but still says it to a screen
        // reader.
        LineKind::Message | LineKind::Notice => EitherOf3::B(view! {
            <span class=from_class class:hidden=grouped class:bot=line.bot>{line.from.clone()}</span>
            <span class="text">{render_text(line.text.clone())}</span>
        }),
        LineKind::System | LineKind::Error => {
            EitherOf3::C(view! { <span class="text">{line.text.clone()}</span> })
        }
    };
    // A line that asks you to identify (a refusal for want of an account, Potato's warning
    // to whoever sits on a registered nick) leads to the forms that do it.
    let to_account = (line.code == Some(ErrorCode::NotIdentified)).then(|| {
        let panels = expect_context::<Panels>();
        view! {
            <button type="button" class="link-button account-link" on:click=move |_| panels.account.set(true)>
                "Sign in or register"
            </button>
        }
    });
    // A message not sent yet shows a clock where its time will be. Every other line has its
    // time, and the full date and time on hover.
    let time = if matches!(delivery, Delivery::Pending(_)) {
        Either::Left(
            view! { <span class="ts" title="Not sent yet" role="img" aria-label="not sent yet">"🕓"</span> },
        )
    } else {
        let ts = (line.ts > 0).then_some(line.ts);
        Either::Right(view! {
            <time
                class="ts"
                datetime=ts.map(time::iso)
                title=ts.map(|ts| time::full(ts, offset))
            >
                {ts.map(|ts| time::clock(ts, offset))}
            </time>
        })
    };
    component(view! {
        {day.map(|day| view! { <li class="day" data-testid="day">{day}</li> })}
        {divider.then(|| view! {
            <li class="divider" role="separator" data-testid="new-messages">"New messages"</li>
        })}
        <li class=format!("line {kind} {state}") class:grouped=grouped class:mention=line.mention>
            {time}
            {body}
            {to_account}
            {delivery_view(delivery)}
        </li>
    })
}

#[component]
fn Composer() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let current = move || ctx.state.with(|s| s.current.clone()).unwrap_or_default();
    // The text being written is the open conversation's draft.
    let input = Signal::derive(move || ctx.draft(&current()));
    let set_draft = move |text: String| {
        ctx.set_draft(&ctx.state.with_untracked(|s| s.current.clone()).unwrap_or_default(), text)
    };
    let field = NodeRef::<html::Textarea>::new();
    let recall = StoredValue::new(Recall::default());
    // The Tab cycle: the text and cursor before the first press, and how many presses.
    let tab_cycle = StoredValue::new(None::<(String, usize, usize)>);
    let oper = move || ctx.state.with(|s| s.oper);
    let hints = move || suggestions(&input.get(), oper());
    let numbered_hints = move || hints().into_iter().enumerate().collect::<Vec<_>>();
    // The suggestion chosen with ↑/↓, if any; a change to the text starts over.
    let chosen = RwSignal::new(None::<usize>);
    Effect::new(move |_| {
        input.track();
        chosen.set(None);
    });
    let max_bytes = move || ctx.state.with(|s| s.max_text_bytes);
    // Near the limit, how many bytes are left.
    let left = move || {
        let max = max_bytes();
        let left = max as i64 - input.get().len() as i64;
        (max > 0 && left < 200).then_some(left)
    };
    // The field grows with its text, up to the height the stylesheet allows.
    let fit = move || {
        #[cfg(feature = "hydrate")]
        if let Some(el) = field.get_untracked() {
            let style = web_sys::HtmlElement::style(&el);
            let _ = style.set_property("height", "auto");
            let _ = style.set_property("height", &format!("{}px", el.scroll_height()));
        }
    };
    Effect::new(move |_| {
        input.track();
        fit();
    });
    // After login and on every change of conversation the composer is where typing goes (on
    // a phone, where focus would pop the keyboard up, only when asked).
    Effect::new(move |shown: Option<(bool, Option<String>)>| {
        let now = (field.get().is_some(), ctx.state.with(|s| s.current.clone()));
        if shown.as_ref() != Some(&now) && !browser::is_narrow() {
            if let Some(el) = field.get_untracked() {
                let _ = el.focus();
            }
        }
        now
    });
    let send = move || {
        let text = input.get_untracked();
        if text.trim().is_empty() {
            return;
        }
        recall.update_value(|r| r.push(&text));
        if ctx.submit_input(text) {
            set_draft(String::new());
        }
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        send();
    };
    let set_input = move |text: String, cursor: Option<usize>| {
        set_draft(text.clone());
        if let Some(el) = field.get() {
            el.set_value(&text);
            let at = cursor.unwrap_or(text.len()) as u32;
            let _ = el.set_selection_range(at, at);
        }
    };
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        let key = ev.key();
        if key != "Tab" {
            tab_cycle.set_value(None);
        }
        let text = input.get_untracked();
        let multiline = text.contains('\n');
        let offered = suggestions(&text, oper());
        // ↑/↓ move through the suggestions while there are some; Enter or Tab takes one.
        let step = |delta: isize| {
            let n = offered.len() as isize;
            let next = chosen
                .get_untracked()
                .map_or(if delta > 0 { 0 } else { n - 1 }, |i| (i as isize + delta).rem_euclid(n));
            chosen.set(Some(next as usize));
        };
        match key.as_str() {
            "ArrowDown" | "ArrowUp" if !offered.is_empty() && !ev.alt_key() => {
                ev.prevent_default();
                step(if key == "ArrowDown" { 1 } else { -1 });
            }
            "Enter" | "Tab" if chosen.get_untracked().is_some_and(|i| i < offered.len()) => {
                ev.prevent_default();
                let i = chosen.get_untracked().unwrap_or(0);
                set_input(offered[i].complete.clone(), None);
            }
            // Enter sends; Shift+Enter (and Enter while composing with an input method)
            // starts a new line.
            "Enter" if !ev.shift_key() && !ev.is_composing() => {
                ev.prevent_default();
                send();
            }
            "Tab" if !ev.shift_key() => {
                if let Some(first) = offered.first() {
                    ev.prevent_default();
                    set_input(first.complete.clone(), None);
                    return;
                }
                let cursor =
                    field.get().and_then(|el| el.selection_start().ok().flatten()).unwrap_or(0) as usize;
                let (base, base_cursor, nth) = tab_cycle.get_value().unwrap_or((text.clone(), cursor, 0));
                let nicks: Vec<String> = ctx.state.with_untracked(|s| {
                    s.current_conversation()
                        .map(|c| c.members.iter().map(|m: &Member| m.nick.clone()).collect())
                        .unwrap_or_default()
                });
                if let Some((completed, at)) = complete_nick(&base, base_cursor, &nicks, nth) {
                    ev.prevent_default();
                    tab_cycle.set_value(Some((base, base_cursor, nth + 1)));
                    set_input(completed, Some(at));
                }
            }
            // Recall earlier lines, unless moving between the lines of what is written.
            "ArrowUp" if !ev.alt_key() && !multiline => {
                if let Some(line) = recall.try_update_value(|r| r.up(&text)).flatten() {
                    ev.prevent_default();
                    set_input(line, None);
                }
            }
            "ArrowDown" if !ev.alt_key() && !multiline => {
                if let Some(line) = recall.try_update_value(|r| r.down()).flatten() {
                    ev.prevent_default();
                    set_input(line, None);
                }
            }
            "Escape" => set_input(String::new(), None),
            _ => {}
        }
    };
    component(view! {
        <form class="composer" on:submit=on_submit>
            {show(move || !hints().is_empty(), move || view! {
                <ul class="suggestions" id="command-suggestions" role="listbox" aria-label="Commands">
                    {move || numbered_hints().into_iter().map(|item| view! {
                        {
                            let (i, hint) = item;
                            let complete = hint.complete.clone();
                            view! {
                                // Chosen with the keyboard from the message field (which keeps
                                // focus), or with a click.
                                <li
                                    role="option"
                                    id=format!("suggestion-{i}")
                                    class="suggestion"
                                    class:chosen=move || chosen.get() == Some(i)
                                    aria-selected=move || (chosen.get() == Some(i)).to_string()
                                    on:mousedown=move |ev| {
                                        ev.prevent_default();
                                        set_input(complete.clone(), None);
                                    }
                                >
                                    <code>{hint.usage}</code>
                                    <span class="help">{hint.help}</span>
                                </li>
                            }
                        }
                    }).collect_view()}
                </ul>
            })}
            <label class="visually-hidden" for="message-input">"Message"</label>
            <textarea
                id="message-input"
                node_ref=field
                rows="1"
                autocomplete="off"
                placeholder="Message, or / for commands (Shift+Enter for a new line)"
                aria-controls=move || (!hints().is_empty()).then_some("command-suggestions")
                aria-activedescendant=move || chosen.get().map(|i| format!("suggestion-{i}"))
                prop:value=move || input.get()
                on:input=move |ev| set_draft(event_target_value(&ev))
                on:keydown=on_keydown
            ></textarea>
            {show(move || left().is_some(), move || view! {
                <span
                    class="byte-counter"
                    class:over=move || left().is_some_and(|l| l < 0)
                    data-testid="byte-counter"
                    aria-live="polite"
                >
                    {move || left().map(|l| if l < 0 { format!("{} bytes too long", -l) } else { format!("{l} bytes left") })}
                </span>
            })}
            <button type="submit">"Send"</button>
        </form>
    })
}

#[component]
fn Members() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let menu = RwSignal::new(None::<String>);
    // A kick or ban waiting for its reason and confirmation: (verb, nick).
    let confirm = RwSignal::new(None::<(&'static str, String)>);
    let members =
        move || ctx.state.with(|s| s.current_conversation().map(|c| c.members.clone()).unwrap_or_default());
    let count = move || members().len();
    let stale = move || ctx.state.with(|s| s.current_conversation().is_some_and(|c| c.stale));
    // A confirmation asked for someone who has left (or changed nick, or another channel is
    // open now) is closed: the nick could be someone else's by the time it is confirmed.
    Effect::new(move |_| {
        if let Some((_, nick)) = confirm.get() {
            if !members().iter().any(|m| fold(&m.nick) == fold(&nick)) {
                confirm.set(None);
            }
        }
    });
    // A click anywhere but in a member's menu (or on a member) closes the open menu.
    #[cfg(feature = "hydrate")]
    {
        use leptos::wasm_bindgen::JsCast;
        let handle = window_event_listener(leptos::ev::mousedown, move |ev| {
            if menu.get_untracked().is_none() {
                return;
            }
            let inside = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                .and_then(|e| e.closest(".member-menu, .member-name").ok().flatten())
                .is_some();
            if !inside {
                menu.set(None);
            }
        });
        on_cleanup(move || handle.remove());
    }
    component(view! {
        <aside class="members" class:stale=stale aria-label="Members">
            <h2 class="members-title">
                {move || format!("Members ({})", count())}
                {show(stale, move || view! {
                    <span class="stale-note" data-testid="members-stale">" · as of the last connection"</span>
                })}
            </h2>
            <ul>
                <For each=members key=|m| (m.nick.clone(), m.op, m.voice, m.away_message.clone(), m.away) let:member>
                    <MemberItem member menu confirm/>
                </For>
            </ul>
            {show(move || confirm.with(Option::is_some), move || view! {
                <ModerationDialog confirm/>
            })}
        </aside>
    })
}

#[component]
fn MemberItem(
    member: Member,
    menu: RwSignal<Option<String>>,
    confirm: RwSignal<Option<(&'static str, String)>>,
) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let nick = member.nick.clone();
    let role = if member.op {
        "@"
    } else if member.voice {
        "+"
    } else {
        ""
    };
    let role_name = if member.op {
        ", operator"
    } else if member.voice {
        ", voiced"
    } else {
        ""
    };
    // The away message on hover.
    let title = away_words(&member);
    let away = title.as_ref().map(|words| format!(", {words}")).unwrap_or_default();
    // Copy handles, so the menu's buttons can be rebuilt each time it opens.
    let name = StoredValue::new(nick.clone());
    let open = move || name.with_value(|n| menu.get().as_deref() == Some(n.as_str()));
    let toggle = move |_| {
        let n = name.get_value();
        menu.update(|m| *m = if m.as_deref() == Some(n.as_str()) { None } else { Some(n.clone()) })
    };
    let i_am_op = move || ctx.state.with(|s| s.current.as_deref().is_some_and(|c| s.is_op(c)));
    // A server operator's powers, on anyone but themselves.
    let server_oper = move || ctx.state.with(|s| s.oper && !name.with_value(|n| s.is_me(n)));
    let trigger = NodeRef::<html::Button>::new();
    let menu_el = NodeRef::<html::Div>::new();
    // An opened menu takes focus; ↑/↓/Home/End move in it, Escape closes it and goes back.
    Effect::new(move |_| {
        if open() {
            if let Some(el) = menu_el.get() {
                focus_first(Some(el.into()));
            }
        }
    });
    let on_menu_key = move |ev: leptos::ev::KeyboardEvent| {
        let key = ev.key();
        if key == "Escape" {
            ev.prevent_default();
            menu.set(None);
            if let Some(b) = trigger.get_untracked() {
                let _ = b.focus();
            }
        } else if menu_key(menu_el.get_untracked(), &key) {
            ev.prevent_default();
        }
    };
    let act = move |role: fn(String, String) -> Command| {
        move |_| {
            let channel = ctx.state.with_untracked(|s| s.current.clone().unwrap_or_default());
            ctx.run(role(channel, name.get_value()));
            menu.set(None);
        }
    };
    let message = move |_| {
        ctx.state.update(|s| s.open(&name.get_value()));
        menu.set(None);
    };
    let whois = move |_| {
        ctx.run(Command::Whois { nick: name.get_value() });
        menu.set(None);
    };
    let (is_op, is_voiced) = (member.op, member.voice);
    component(view! {
        <li class="member" class:away=member.away class:op=member.op title=title>
            <button
                type="button"
                class="member-name"
                node_ref=trigger
                aria-haspopup="menu"
                aria-expanded=move || open().to_string()
                aria-label=format!("{nick}{role_name}{away}")
                on:click=toggle
            >
                <span class="role">{role}</span>
                {nick.clone()}
            </button>
            {show(open, move || view! {
                <div class="member-menu" role="menu" aria-label=format!("Actions for {nick}") node_ref=menu_el on:keydown=on_menu_key>
                    <button type="button" role="menuitem" on:click=message>"Message"</button>
                    <button type="button" role="menuitem" on:click=whois>"Whois"</button>
                    {show(i_am_op, move || view! {
                        <button type="button" role="menuitem" on:click=act(if is_op { |channel, nick| Command::Deop { channel, nick } } else { |channel, nick| Command::Op { channel, nick } })>
                            {if is_op { "Deop" } else { "Op" }}
                        </button>
                        <button type="button" role="menuitem" on:click=act(if is_voiced { |channel, nick| Command::Devoice { channel, nick } } else { |channel, nick| Command::Voice { channel, nick } })>
                            {if is_voiced { "Devoice" } else { "Voice" }}
                        </button>
                        <button type="button" role="menuitem" class="danger" on:click=move |_| {
                            menu.set(None);
                            confirm.set(Some(("kick", name.get_value())));
                        }>"Kick…"</button>
                        <button type="button" role="menuitem" class="danger" on:click=move |_| {
                            menu.set(None);
                            confirm.set(Some(("ban", name.get_value())));
                        }>"Ban…"</button>
                    })}
                    {show(server_oper, move || view! {
                        <button type="button" role="menuitem" class="danger" on:click=move |_| {
                            menu.set(None);
                            confirm.set(Some(("kill", name.get_value())));
                        }>"Disconnect from server…"</button>
                        <button type="button" role="menuitem" class="danger" on:click=move |_| {
                            menu.set(None);
                            confirm.set(Some(("kline", name.get_value())));
                        }>"Ban from server…"</button>
                    })}
                </div>
            })}
        </li>
    })
}

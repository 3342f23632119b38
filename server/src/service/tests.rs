//! The transport seam. A fake transport — frames in and events out on plain channels, no
//! socket, no JSON — drives the chat through [`ChatService`] alone, as an HTTP API or an IRC
//! listener would: users log in, join, chat, and one is kicked. Nothing here reaches into the
//! core; the store is SurrealDB's in-memory engine.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use app::protocol::{ChatMessage, ClientFrame, Command, ErrorCode, ServerEvent};

use super::{Auth, ChatService, Flow, Login};
use crate::Config;

/// The whole transport: the first frame logs in, every later one goes to the service, and
/// whatever the connection's outbox receives goes out as it is, typed.
async fn fake_transport(
    chat: Arc<ChatService>,
    mut frames: mpsc::Receiver<ClientFrame>,
    events: mpsc::UnboundedSender<ServerEvent>,
) {
    let (outbox, mut queue) = chat.outbox();
    let out = events.clone();
    tokio::spawn(async move {
        while let Some(event) = queue.recv().await {
            let _ = out.send(event.event().expect("an event the core made decodes").clone());
        }
    });
    let Some(first) = frames.recv().await else { return };
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let attached = match Auth::from_frame(first) {
        Ok(auth) => chat.login(auth, &outbox, ip).await,
        Err(e) => Err(e),
    };
    let attached = match attached {
        Ok(Login::Fresh(attached)) => attached,
        Ok(Login::Resumed(_)) => unreachable!("nobody asked to resume"),
        Err(e) => {
            let _ = events.send(e.into());
            return;
        }
    };
    let mut reason = Some("connection closed".to_owned());
    while let Some(frame) = frames.recv().await {
        match chat.handle(attached.conn, &outbox, frame).await {
            Ok(Flow::Continue) => {}
            Ok(Flow::Quit(quit)) => {
                reason = quit;
                break;
            }
            Err(e) => {
                let _ = events.send(e.into());
            }
        }
    }
    chat.leave(attached, reason, None);
}

/// One user on the fake transport.
struct User {
    frames: mpsc::Sender<ClientFrame>,
    events: mpsc::UnboundedReceiver<ServerEvent>,
}

impl User {
    async fn guest(chat: &Arc<ChatService>, nick: &str) -> Self {
        let (frames, inbound) = mpsc::channel(16);
        let (outbound, events) = mpsc::unbounded_channel();
        tokio::spawn(fake_transport(chat.clone(), inbound, outbound));
        let mut user = Self { frames, events };
        user.send(ClientFrame::Auth { token: None, nick: Some(nick.into()), resume: None }).await;
        let welcome = user.next().await;
        assert!(matches!(&welcome, ServerEvent::Welcome { nick: n, .. } if n == nick), "{welcome:?}");
        user
    }

    async fn send(&self, frame: ClientFrame) {
        self.frames.send(frame).await.expect("the transport is running");
    }

    async fn run(&self, command: Command) {
        self.send(ClientFrame::Run { command, txn: None }).await;
    }

    async fn say(&self, target: &str, text: &str) {
        self.send(ClientFrame::Message { target: target.into(), text: text.into(), txn: None }).await;
    }

    async fn next(&mut self) -> ServerEvent {
        tokio::time::timeout(Duration::from_secs(5), self.events.recv())
            .await
            .expect("an event within 5 s")
            .expect("the transport is running")
    }

    /// Skips events until one `matches` (an error on the way fails the test).
    async fn until<T>(&mut self, mut matches: impl FnMut(&ServerEvent) -> Option<T>) -> T {
        loop {
            let event = self.next().await;
            if let Some(found) = matches(&event) {
                return found;
            }
            assert!(!matches!(event, ServerEvent::Error { .. }), "unexpected {event:?}");
        }
    }

    async fn message(&mut self) -> ChatMessage {
        self.until(|e| match e {
            ServerEvent::Message(m) => Some(m.clone()),
            _ => None,
        })
        .await
    }

    async fn error(&mut self) -> ErrorCode {
        loop {
            if let ServerEvent::Error { code, .. } = self.next().await {
                return code;
            }
        }
    }
}

fn join(channel: &str) -> Command {
    Command::Join { channel: channel.into(), key: None }
}

#[tokio::test]
async fn a_transport_on_plain_channels_logs_in_joins_chats_and_is_kicked_through_the_service() {
    let chat = Arc::new(ChatService::open(&Config::for_tests()).await.expect("an in-memory store opens"));
    let mut alice = User::guest(&chat, "alice").await;
    let mut bob = User::guest(&chat, "bob").await;

    alice.run(join("#room")).await;
    let members = alice
        .until(|e| match e {
            ServerEvent::Members { channel, members, .. } if channel == "#room" => Some(members.clone()),
            _ => None,
        })
        .await;
    assert!(members.iter().any(|m| m.nick == "alice" && m.op), "the first to join is op: {members:?}");
    bob.run(join("#room")).await;
    let joined = alice
        .until(|e| match e {
            ServerEvent::Joined { channel, nick, .. } => Some((channel.clone(), nick.clone())),
            _ => None,
        })
        .await;
    assert_eq!(joined, ("#room".into(), "bob".into()));

    // A message is stored, delivered to the channel and echoed to its sender.
    alice.say("#room", "hello, bob").await;
    let got = bob.message().await;
    assert_eq!((got.from.as_str(), got.target.as_str(), got.text.as_str()), ("alice", "#room", "hello, bob"));
    assert_eq!(alice.message().await.id, got.id, "the sender's echo is the same message");
    let page = chat.history(&crate::store::Conversation::channel("#room"), None, 10).await.expect("history");
    assert_eq!(page.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["hello, bob"], "stored");

    // A private message takes the same path.
    bob.say("alice", "hi alice").await;
    assert_eq!(alice.message().await.text, "hi alice");

    // The op kicks bob: both see it, and bob is out of the channel.
    alice
        .run(Command::Kick { channel: "#room".into(), nick: "bob".into(), reason: Some("test".into()) })
        .await;
    for user in [&mut alice, &mut bob] {
        let kicked = user
            .until(|e| match e {
                ServerEvent::Kicked { channel, nick, by, reason } => {
                    Some((channel.clone(), nick.clone(), by.clone(), reason.clone()))
                }
                _ => None,
            })
            .await;
        assert_eq!(kicked, ("#room".into(), "bob".into(), "alice".into(), Some("test".into())));
    }
    bob.say("#room", "still here?").await;
    assert_eq!(bob.error().await, ErrorCode::NotOnChannel);

    // Quitting ends the session (its event stream ends once the core lets go of its
    // outbox), and the nick is free again.
    bob.run(Command::Quit { reason: None }).await;
    let ended =
        tokio::time::timeout(Duration::from_secs(5), async { while bob.events.recv().await.is_some() {} });
    ended.await.expect("the session ends");
    assert_eq!(chat.stats().online, 1);
    User::guest(&chat, "bob").await;
    assert_eq!(chat.stats().online, 2);
}

/// The writer stores batch after batch while it delivers the last one: every message must
/// still be stored before anyone sees it, and each sender's messages arrive in the order sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_from_many_senders_are_stored_before_anyone_sees_them_and_arrive_in_order() {
    let chat = Arc::new(ChatService::open(&Config::for_tests()).await.expect("an in-memory store opens"));
    let joined = |e: &ServerEvent| matches!(e, ServerEvent::Members { .. }).then_some(());
    let mut reader = User::guest(&chat, "reader").await;
    reader.run(join("#busy")).await;
    reader.until(joined).await;
    let mut senders = Vec::new();
    for i in 0..4 {
        let mut sender = User::guest(&chat, &format!("sender{i}")).await;
        sender.run(join("#busy")).await;
        sender.until(joined).await;
        senders.push(sender);
    }
    // While the store takes no write, nobody sees anything. (Fewer messages than each
    // sender's transport queues: it waits for each to be stored before the next.)
    let held = chat.store.hold_writes().await;
    for k in 0..10 {
        for sender in &senders {
            sender.say("#busy", &k.to_string()).await;
        }
    }
    let early = tokio::time::timeout(Duration::from_millis(300), reader.message()).await;
    assert!(early.is_err(), "delivered while the store could not write: {early:?}");
    drop(held);
    for k in 10..50 {
        for sender in &senders {
            sender.say("#busy", &k.to_string()).await;
        }
    }
    let mut next = std::collections::HashMap::new();
    let busy = crate::store::Conversation::channel("#busy");
    for _ in 0..200 {
        let m = reader.message().await;
        let expected = next.entry(m.from.clone()).or_insert(0);
        assert_eq!(m.text, expected.to_string(), "{}'s messages in the order sent", m.from);
        *expected += 1;
        let stored = chat.history(&busy, Some(m.id + 1), 1).await.expect("history");
        assert_eq!(stored.first().map(|s| s.id), Some(m.id), "delivered before it was stored: {m:?}");
    }
    assert_eq!(next.values().sum::<usize>(), 200);
}

/// A store that fails while a batch waits for its commit: what was stored before is delivered
/// and acknowledged, the waiting message is refused to its sender and reaches nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_waiting_when_the_store_fails_is_refused_and_reaches_nobody() {
    let chat = Arc::new(ChatService::open(&Config::for_tests()).await.expect("an in-memory store opens"));
    let joined = |e: &ServerEvent| matches!(e, ServerEvent::Members { .. }).then_some(());
    let mut users = Vec::new();
    for nick in ["reader", "early", "late"] {
        let mut user = User::guest(&chat, nick).await;
        user.run(join("#fragile")).await;
        user.until(joined).await;
        users.push(user);
    }
    let [mut reader, mut early, mut late] = <[User; 3]>::try_from(users).ok().expect("three users");

    early.say("#fragile", "stored in time").await;
    assert_eq!(reader.message().await.text, "stored in time");
    assert_eq!(early.message().await.text, "stored in time", "the echo");

    let held = chat.store.hold_writes().await;
    late.say("#fragile", "too late").await;
    // The message waits at the store's gate (or, if its session is slower than this test,
    // comes after): the store fails meanwhile.
    tokio::task::yield_now().await;
    chat.store.fail_for_test("the disk is full");
    drop(held);
    assert_eq!(late.error().await, ErrorCode::Unavailable);
    let seen = tokio::time::timeout(Duration::from_millis(300), reader.message()).await;
    assert!(seen.is_err(), "a message that was never stored reached the channel: {seen:?}");
    let history =
        chat.history(&crate::store::Conversation::channel("#fragile"), None, 10).await.expect("history");
    assert_eq!(history.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["stored in time"]);
}

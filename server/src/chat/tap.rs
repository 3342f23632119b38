//! What the core tells the outside of what happens, for the app's webhooks: one [`AppEvent`]
//! per thing that happened (not one per recipient), handed over without waiting. When the
//! listener falls behind and its queue is full, events are dropped and counted: the chat
//! never waits for a webhook.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::mpsc;

use app::protocol::{ChatMessage, ServerEvent};

/// Something that happened, as an app's webhook receives it (`"event"` names it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum AppEvent {
    /// A message, stored and delivered; `private` when sent to a nick.
    Message {
        #[serde(flatten)]
        message: ChatMessage,
        private: bool,
    },
    Join {
        channel: String,
        nick: String,
    },
    Part {
        channel: String,
        nick: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Nick {
        old: String,
        new: String,
    },
    Kick {
        channel: String,
        nick: String,
        by: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Ban {
        channel: String,
        mask: String,
        by: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        nick: Option<String>,
    },
    Unban {
        channel: String,
        mask: String,
        by: String,
    },
    Topic {
        channel: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// A new session (not a resumed one).
    Connect {
        nick: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        account: Option<String>,
    },
    /// A session ended, with why.
    Disconnect {
        nick: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A Potato account was registered.
    AccountRegister {
        nick: String,
        account: String,
    },
    /// Someone identified with a Potato account.
    AccountIdentify {
        nick: String,
        account: String,
    },
}

impl AppEvent {
    /// The app's view of an event the core sent to a channel, for those the app hears of.
    pub(crate) fn of_channel_event(event: &ServerEvent) -> Option<Self> {
        Some(match event.clone() {
            ServerEvent::Joined { channel, nick, .. } => Self::Join { channel, nick },
            ServerEvent::Parted { channel, nick, reason } => Self::Part { channel, nick, reason },
            ServerEvent::Kicked { channel, nick, by, reason } => Self::Kick { channel, nick, by, reason },
            ServerEvent::Banned { channel, mask, by, nick } => Self::Ban { channel, mask, by, nick },
            ServerEvent::Unbanned { channel, mask, by } => Self::Unban { channel, mask, by },
            ServerEvent::Topic { channel, topic, set_by, .. } => Self::Topic { channel, topic, by: set_by },
            _ => return None,
        })
    }
}

/// The core's end of the feed.
#[derive(Debug, Clone)]
pub(crate) struct Tap {
    tx: mpsc::Sender<AppEvent>,
    dropped: Arc<AtomicU64>,
}

/// The listener's end.
pub(crate) struct TapFeed {
    pub rx: mpsc::Receiver<AppEvent>,
    dropped: Arc<AtomicU64>,
}

impl TapFeed {
    /// Counts the events dropped because the feed was full.
    pub(crate) fn dropped_counter(&self) -> Arc<AtomicU64> {
        self.dropped.clone()
    }
}

impl Tap {
    /// A feed holding at most `capacity` events.
    pub(crate) fn new(capacity: usize) -> (Self, TapFeed) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        (Self { tx, dropped: dropped.clone() }, TapFeed { rx, dropped })
    }

    pub(crate) fn send(&self, event: AppEvent) {
        if self.tx.try_send(event).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "webhook events dropped: the webhook queue is full");
            }
        }
    }
}

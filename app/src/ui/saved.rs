//! What the UI remembers across reloads, as two records:
//! - [`Resume`], in the tab's session storage: how to take the session back (the server's
//!   resume secret and how the user logged in) and the messages not yet acknowledged. It is
//!   the tab's own and ends with it; logging out forgets it.
//! - [`Place`], in the browser's local storage: the nick last used, the conversations open,
//!   the one on screen, drafts and how far each conversation was read.
//!
//! Pure data and functions; `browser` reads and writes them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::state::{ChatState, Outgoing};
use crate::protocol::names::fold;
use crate::protocol::tag_first::tagged_enum;
use crate::protocol::ClientFrame;

/// Most drafts kept, and the longest one, in bytes: local storage is small.
const MAX_DRAFTS: usize = 50;
const MAX_DRAFT_BYTES: usize = 16 * 1024;

tagged_enum! {
"kind", "SavedLogin", SavedLoginByName,
/// How the session was logged in, so a reload can resume it or, failing that, log in again.
/// Read with `kind` first, as it is written (without serde's buffer for tagged enums).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavedLogin {
    /// A guest: if the session is over, log in again under the same nick.
    Guest,
    /// A host app's user: the token logs in again while it is valid.
    Token { token: String },
    /// Identified with Potato: only the session resumes; after that, the sign-in form.
    Account,
}
}

/// The tab's way back into its session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    pub secret: String,
    pub nick: String,
    pub login: SavedLogin,
    #[serde(default)]
    pub outgoing: Vec<Outgoing>,
    /// Channels whose rejoin after a fresh login the server had not confirmed yet (see
    /// `ChatState::rejoins`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejoining: Vec<String>,
}

impl Resume {
    /// Marks the channels still being rejoined when the page went (made anew if the place did
    /// not keep them): a resumed session that is not in them joins them once more rather than
    /// dropping them.
    pub fn restore_rejoins(&self, state: &mut ChatState) {
        for channel in &self.rejoining {
            state.conversation_mut(channel).rejoining = true;
        }
    }

    /// The `auth` frame that resumes the session, or logs in again as the same user.
    pub fn auth(&self) -> ClientFrame {
        let (token, nick) = match &self.login {
            SavedLogin::Guest => (None, Some(self.nick.clone())),
            SavedLogin::Token { token } => (Some(token.clone()), None),
            SavedLogin::Account => (None, None),
        };
        ClientFrame::Auth { token, nick, resume: Some(self.secret.clone()) }
    }
}

/// Where the user was, per browser.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    #[serde(default)]
    pub nick: String,
    #[serde(default)]
    pub conversations: Vec<String>,
    #[serde(default)]
    pub current: Option<String>,
    /// Unsent text per conversation (folded name).
    #[serde(default)]
    pub drafts: BTreeMap<String, String>,
    /// The newest message id read per conversation (folded name).
    #[serde(default)]
    pub read: BTreeMap<String, u64>,
}

impl Place {
    /// The place to remember for `state` and the composer's `drafts`.
    pub fn of(state: &ChatState, drafts: &BTreeMap<String, String>) -> Self {
        let drafts = drafts
            .iter()
            .filter(|(_, text)| !text.trim().is_empty() && text.len() <= MAX_DRAFT_BYTES)
            .take(MAX_DRAFTS)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Self {
            nick: state.me.clone().unwrap_or_default(),
            conversations: state.conversations.iter().map(|c| c.name.clone()).collect(),
            current: state.current.clone(),
            drafts,
            read: state.read_positions().into_iter().map(|(name, id)| (fold(&name), id)).collect(),
        }
    }

    /// Puts the remembered conversations back (empty, to be filled from the server), with
    /// where each was read up to, and opens the one that was on screen.
    pub fn restore_into(&self, state: &mut ChatState) {
        for name in &self.conversations {
            let conv = state.conversation_mut(name);
            conv.read_upto = self.read.get(&fold(name)).copied();
            conv.stale = true;
        }
        if let Some(current) = self.current.as_ref().filter(|c| state.conversation(c).is_some()) {
            state.open(current);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::state::tests::{bob_in, welcome};
    use super::*;
    use crate::protocol::{ChatMessage, ServerEvent};

    fn message(id: u64, from: &str, target: &str) -> ChatMessage {
        ChatMessage {
            id,
            ts: id,
            from: from.into(),
            target: target.into(),
            text: format!("m{id}"),
            action: false,
            bot: false,
            txn: None,
        }
    }

    #[test]
    fn a_reload_reopens_conversations_and_counts_what_came_since_as_unread() {
        let mut before = bob_in(&["#a", "#b"]);
        before.open("#a");
        before.apply(ServerEvent::Message(message(10, "alice", "#a")));
        before.open("#b");
        before.apply(ServerEvent::Message(message(11, "alice", "#b")));
        before.apply(ServerEvent::Message(message(12, "alice", "#a")));
        let drafts =
            BTreeMap::from([("#b".to_owned(), "half a thought".to_owned()), ("#a".into(), " ".into())]);
        let place = Place::of(&before, &drafts);
        assert_eq!(place.conversations, ["#a", "#b"]);
        assert_eq!(place.current.as_deref(), Some("#b"));
        assert_eq!(place.read.get("#a"), Some(&10), "#a was read up to 10; 12 came while #b was open");
        assert_eq!(place.read.get("#b"), Some(&11));
        assert_eq!(place.drafts.len(), 1, "blank drafts are not kept");

        let saved = serde_json::to_string(&place).unwrap();
        let place: Place = serde_json::from_str(&saved).unwrap();
        let mut after = ChatState::default();
        after.me = Some("bob".into());
        place.restore_into(&mut after);
        assert_eq!(after.current.as_deref(), Some("#b"));
        after.apply(ServerEvent::History {
            target: "#a".into(),
            messages: vec![message(10, "alice", "#a"), message(12, "carol", "#a"), message(13, "bob", "#a")],
            more: false,
        });
        assert_eq!(after.conversation("#a").unwrap().unread, 1, "one new message from someone else");
        after.apply(ServerEvent::History {
            target: "#b".into(),
            messages: vec![message(11, "alice", "#b"), message(14, "alice", "#b")],
            more: false,
        });
        let b = after.conversation("#b").unwrap();
        assert_eq!(b.unread, 0, "the open conversation gets the divider instead");
        let marked = b.lines.iter().find(|l| Some(l.seq) == b.marker).unwrap();
        assert_eq!(marked.id, Some(14));
    }

    /// Ann's way back, a guest's or as `login` says.
    fn ann(login: SavedLogin) -> Resume {
        Resume { secret: "s".into(), nick: "ann".into(), login, outgoing: vec![], rejoining: vec![] }
    }

    #[test]
    fn the_way_back_is_kept_as_it_was_written_before() {
        let resume = ann;
        for login in [SavedLogin::Guest, SavedLogin::Token { token: "t".into() }, SavedLogin::Account] {
            let saved = serde_json::to_string(&resume(login.clone())).unwrap();
            let back: Resume = serde_json::from_str(&saved).unwrap();
            assert_eq!(back.login, login, "{saved}");
        }
        // What earlier builds wrote reads the same.
        let earlier = r#"{"secret":"s","nick":"ann","login":{"kind":"token","token":"t"}}"#;
        let back: Resume = serde_json::from_str(earlier).unwrap();
        assert_eq!(back.login, SavedLogin::Token { token: "t".into() });
        let guest = r#"{"secret":"s","nick":"ann","login":{"kind":"guest"},"outgoing":[]}"#;
        assert_eq!(serde_json::from_str::<Resume>(guest).unwrap().login, SavedLogin::Guest);
    }

    #[test]
    fn a_reload_while_rejoins_go_out_rejoins_the_rest_after_the_resume() {
        let mut before = bob_in(&["#a", "#b"]);
        // A fresh login's rejoins, #a confirmed, then the reload.
        before.rejoins(false);
        before.apply(ServerEvent::Members { channel: "#a".into(), modes: String::new(), members: vec![] });
        let place = Place::of(&before, &BTreeMap::new());
        let resume = Resume {
            secret: "s".into(),
            nick: "bob".into(),
            login: SavedLogin::Guest,
            outgoing: vec![],
            rejoining: before.rejoining(),
        };
        let saved = serde_json::to_string(&resume).unwrap();
        assert!(saved.contains(r##""rejoining":["#b"]"##), "{saved}");
        let resume: Resume = serde_json::from_str(&saved).unwrap();

        let mut after = bob_in(&[]);
        place.restore_into(&mut after);
        resume.restore_rejoins(&mut after);
        after.apply(welcome(true, &["#a"]));
        assert_eq!(after.channels(), ["#a", "#b"]);
        assert_eq!(after.rejoins(true), ["#b"]);
    }

    #[test]
    fn the_auth_frame_resumes_and_falls_back_to_the_same_login() {
        let resume = ann;
        assert_eq!(
            resume(SavedLogin::Guest).auth(),
            ClientFrame::Auth { token: None, nick: Some("ann".into()), resume: Some("s".into()) }
        );
        assert_eq!(
            resume(SavedLogin::Token { token: "t".into() }).auth(),
            ClientFrame::Auth { token: Some("t".into()), nick: None, resume: Some("s".into()) }
        );
        assert_eq!(
            resume(SavedLogin::Account).auth(),
            ClientFrame::Auth { token: None, nick: None, resume: Some("s".into()) }
        );
    }
}

//! The chat protocols chattr-bench speaks, so that one generator drives Chattr and its peers
//! with the same workload: Chattr's own JSON frames on `/ws`, and Socket.IO 4 (Engine.IO v4
//! packets over WebSocket, no polling) as `tools/bench/peers/socketio/server.mjs` serves it.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::json;

/// Which server the clients talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Protocol {
    Chattr,
    /// Socket.IO 4: `auth: {nick}` on connect, `join` (answered `joined`), `message`.
    Socketio,
}

/// What an incoming frame means to a client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event<'a> {
    /// Logged in.
    Welcome,
    /// In this room now.
    Joined(Cow<'a, str>),
    Message {
        from: Cow<'a, str>,
        text: Cow<'a, str>,
    },
    /// Refused, and why.
    Error(String),
    Other,
}

/// The fields of Chattr's events that the clients look at, borrowed from the frame where they
/// can be: parsing every event into a `serde_json::Value` is work the generator can spare.
#[derive(Deserialize)]
struct ChattrEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    channel: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    from: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    message: Option<Cow<'a, str>>,
}

/// A Socket.IO `message` event's payload.
#[derive(Deserialize)]
struct SocketIoMessage<'a> {
    #[serde(borrow)]
    from: Cow<'a, str>,
    #[serde(borrow)]
    text: Cow<'a, str>,
}

impl Protocol {
    /// The path (and query) of the server's WebSocket.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Self::Chattr => "/ws",
            Self::Socketio => "/socket.io/?EIO=4&transport=websocket",
        }
    }

    /// The first frame after connecting: log in as `nick`.
    pub(crate) fn login_frame(self, nick: &str) -> String {
        match self {
            Self::Chattr => json!({"type":"auth","nick":nick}).to_string(),
            // Socket.IO's CONNECT to the main namespace, with the auth payload.
            Self::Socketio => format!("40{}", json!({"nick": nick})),
        }
    }

    pub(crate) fn join_frame(self, room: &str) -> String {
        match self {
            Self::Chattr => json!({"type":"command","line":format!("/join {room}")}).to_string(),
            Self::Socketio => format!("42{}", json!(["join", room])),
        }
    }

    pub(crate) fn message_frame(self, room: &str, text: &str) -> String {
        match self {
            Self::Chattr => json!({"type":"message","target":room,"text":text}).to_string(),
            Self::Socketio => format!("42{}", json!(["message", room, text])),
        }
    }

    /// What a frame from the server means.
    pub(crate) fn read(self, frame: &str) -> Event<'_> {
        match self {
            Self::Chattr => {
                let Ok(e) = serde_json::from_str::<ChattrEvent>(frame) else { return Event::Other };
                match (e.kind.as_ref(), e.channel, e.from, e.text) {
                    ("welcome", ..) => Event::Welcome,
                    ("members", Some(channel), ..) => Event::Joined(channel),
                    ("message", _, Some(from), Some(text)) => Event::Message { from, text },
                    ("error", ..) => Event::Error(e.message.unwrap_or_default().into_owned()),
                    _ => Event::Other,
                }
            }
            Self::Socketio => {
                // Engine.IO packet type 4 (message) carrying a Socket.IO packet: 0 CONNECT,
                // 2 EVENT, 4 CONNECT_ERROR.
                if let Some(event) = frame.strip_prefix("42") {
                    if let Ok((name, message)) = serde_json::from_str::<(&str, SocketIoMessage)>(event) {
                        if name == "message" {
                            return Event::Message { from: message.from, text: message.text };
                        }
                    }
                    if let Ok((name, room)) = serde_json::from_str::<(&str, Cow<str>)>(event) {
                        if name == "joined" {
                            return Event::Joined(room);
                        }
                    }
                    return Event::Other;
                }
                if frame.starts_with("40") {
                    return Event::Welcome;
                }
                if let Some(error) = frame.strip_prefix("44") {
                    return Event::Error(error.to_owned());
                }
                Event::Other
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_protocols_read_what_their_servers_send() {
        let c = Protocol::Chattr;
        assert_eq!(c.read(r#"{"type":"welcome","nick":"a"}"#), Event::Welcome);
        assert_eq!(c.read(r##"{"type":"members","channel":"#r","members":[]}"##), Event::Joined("#r".into()));
        assert_eq!(
            c.read(r##"{"type":"message","id":1,"from":"a","target":"#r","text":"12 a \"q\""}"##),
            Event::Message { from: "a".into(), text: "12 a \"q\"".into() }
        );
        assert_eq!(c.read(r#"{"type":"error","code":"x","message":"no"}"#), Event::Error("no".into()));
        let s = Protocol::Socketio;
        assert_eq!(s.read(r#"0{"sid":"x","upgrades":[]}"#), Event::Other);
        assert_eq!(s.read(r#"40{"sid":"y"}"#), Event::Welcome);
        assert_eq!(s.read(r##"42["joined","#r"]"##), Event::Joined("#r".into()));
        assert_eq!(
            s.read(r##"42["message",{"from":"a","target":"#r","text":"12 a 0"}]"##),
            Event::Message { from: "a".into(), text: "12 a 0".into() }
        );
        assert_eq!(s.read(r#"44{"message":"no"}"#), Event::Error(r#"{"message":"no"}"#.into()));
        assert_eq!(s.message_frame("#r", "hi \"x\""), r##"42["message","#r","hi \"x\""]"##);
        assert_eq!(s.login_frame("a"), r#"40{"nick":"a"}"#);
    }
}

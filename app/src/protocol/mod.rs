//! The wire protocol, shared by `chattrd` and the browser: frames, slash commands, name rules
//! and errors. Plain serde types with no platform code, so both the server and the wasm build
//! compile exactly the same definitions.

pub mod close;
pub mod command;
pub mod error;
pub mod frames;
pub mod names;
pub(crate) mod tag_first;
pub mod text;

pub use close::CloseReason;
pub use command::{CeleryRequest, Command, CommandHelp, OperRequest, Password, PotatoRequest, COMMANDS};
pub use error::{ErrorCode, ProtocolError};
pub use frames::{
    AuditEntry, BanEntry, ChannelSummary, ChatMessage, ClientFrame, Kline, Limits, Member, ServerEvent,
};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// alice's "hi" in #r, as message `id` at `ts`.
    fn chat(id: u64, ts: u64) -> ChatMessage {
        ChatMessage {
            id,
            ts,
            from: "a".into(),
            target: "#r".into(),
            text: "hi".into(),
            action: false,
            bot: false,
            txn: None,
        }
    }

    fn round_trip_server(ev: ServerEvent) {
        let text = ev.to_json();
        let back: ServerEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(back, ev, "{text}");
    }

    #[test]
    fn every_server_event_round_trips() {
        let limits = Limits {
            max_text_bytes: 4000,
            max_frame_bytes: 16384,
            burst: 10,
            per_second: 2,
            allowance: None,
        };
        let events = vec![
            ServerEvent::Welcome {
                nick: "alice".into(),
                account: Some("alice".into()),
                host: "c-1.cloak".into(),
                server: "chattr".into(),
                version: "0.1.0".into(),
                limits,
                resume: Some("r3sume".into()),
                resumed: true,
                channels: vec!["#rust".into()],
                default_channels: vec!["#lobby".into()],
            },
            ServerEvent::Message(ChatMessage {
                id: 7,
                ts: 1,
                from: "alice".into(),
                target: "#r".into(),
                text: "hi".into(),
                action: false,
                bot: false,
                txn: None,
            }),
            ServerEvent::History {
                target: "#r".into(),
                messages: vec![ChatMessage {
                    id: 6,
                    ts: 1,
                    from: "bob".into(),
                    target: "#r".into(),
                    text: "earlier".into(),
                    action: false,
                    bot: false,
                    txn: None,
                }],
                more: true,
            },
            ServerEvent::AccountChanged { account: Some("potato:alice".into()) },
            ServerEvent::AccountChanged { account: None },
            ServerEvent::Message(ChatMessage {
                id: 8,
                ts: 2,
                from: "alice".into(),
                target: "bob".into(),
                text: "waves".into(),
                action: true,
                bot: false,
                txn: None,
            }),
            ServerEvent::Notice { from: "server".into(), text: "hello".into(), code: None },
            ServerEvent::Error {
                code: ErrorCode::NotOp,
                message: "no".into(),
                txn: None,
                nicks: vec!["alice_".into()],
            },
            ServerEvent::Joined { channel: "#r".into(), nick: "a".into(), host: "h".into() },
            ServerEvent::Parted { channel: "#r".into(), nick: "a".into(), reason: Some("bye".into()) },
            ServerEvent::Quit { nick: "a".into(), reason: None },
            ServerEvent::NickChanged { old: "a".into(), new: "b".into() },
            ServerEvent::Kicked { channel: "#r".into(), nick: "b".into(), by: "a".into(), reason: None },
            ServerEvent::Banned {
                channel: "#r".into(),
                mask: "*!*@c.cloak".into(),
                by: "a".into(),
                nick: Some("b".into()),
            },
            ServerEvent::Unbanned { channel: "#r".into(), mask: "b!*@*".into(), by: "a".into() },
            ServerEvent::BanList {
                channel: "#r".into(),
                bans: vec![
                    BanEntry {
                        mask: "*!*@c.cloak".into(),
                        nick: Some("b".into()),
                        by: Some("a".into()),
                        at: Some(3),
                    },
                    BanEntry { mask: "d!*@*".into(), nick: None, by: None, at: None },
                ],
            },
            ServerEvent::Registration {
                channel: "#r".into(),
                founder: Some("potato:a".into()),
                ops: vec!["app:b".into()],
                trusted: vec![],
            },
            ServerEvent::Registration { channel: "#r".into(), founder: None, ops: vec![], trusted: vec![] },
            ServerEvent::ModeChanged {
                channel: "#r".into(),
                by: "a".into(),
                modes: "+o".into(),
                args: vec!["b".into()],
            },
            ServerEvent::Topic {
                channel: "#r".into(),
                topic: Some("t".into()),
                set_by: Some("a".into()),
                set_at: Some(3),
            },
            ServerEvent::Members {
                channel: "#r".into(),
                modes: "+t".into(),
                members: vec![Member {
                    nick: "a".into(),
                    op: true,
                    voice: false,
                    away: false,
                    away_message: None,
                }],
            },
            ServerEvent::Away { nick: "a".into(), message: Some("lunch".into()) },
            ServerEvent::Invited { channel: "#r".into(), nick: "b".into(), by: "a".into() },
            ServerEvent::Whois {
                nick: "a".into(),
                account: None,
                host: "h".into(),
                channels: vec!["#r".into()],
                away: None,
                idle_secs: 0,
                signon: 9,
            },
            ServerEvent::List {
                channels: vec![ChannelSummary { channel: "#r".into(), members: 2, topic: None }],
            },
            ServerEvent::Pong { id: Some(1) },
            ServerEvent::OperStatus { oper: true },
            ServerEvent::KlineList {
                klines: vec![Kline {
                    mask: "203.0.113.0/24".into(),
                    reason: Some("open proxy".into()),
                    by: "root".into(),
                    at: 5,
                    expires: Some(9),
                }],
            },
            ServerEvent::AuditLog {
                entries: vec![AuditEntry {
                    at: 5,
                    oper: "potato:root".into(),
                    nick: "root".into(),
                    action: "kill".into(),
                    target: "bob".into(),
                    reason: None,
                    from: "203.0.113.9".into(),
                }],
            },
            ServerEvent::Stats {
                connections: 1,
                sessions: 2,
                channels: 3,
                opers: 1,
                messages_last_minute: 4,
                messages_total: 5,
                uptime_secs: 6,
            },
        ];
        for ev in events {
            // Written with its type first, which is how it is read back.
            assert!(ev.to_json().starts_with(r#"{"type":""#), "{ev:?}");
            round_trip_server(ev);
        }
    }

    #[test]
    fn events_are_read_by_their_type_first_and_anything_else_is_refused() {
        let read = |text: &str| serde_json::from_str::<ServerEvent>(text);
        // Unknown fields are ignored and missing defaults filled in, as serde's own reading does.
        assert_eq!(
            read(r##"{"type":"parted","channel":"#r","nick":"a","new_field":[1,{"x":2}]}"##).unwrap(),
            ServerEvent::Parted { channel: "#r".into(), nick: "a".into(), reason: None }
        );
        assert_eq!(
            read(r##"{"type":"message","id":1,"ts":2,"from":"a","target":"#r","text":"hi"}"##).unwrap(),
            ServerEvent::Message(chat(1, 2))
        );
        let refused = [
            r##"{"channel":"#r","type":"parted","nick":"a"}"##,
            r##"{"type":"no_such_event"}"##,
            r##"{"type":"parted","channel":"#r"}"##,
            r##"{"type":7}"##,
            r##"{}"##,
            r##"["parted","#r","a"]"##,
            r##"{"type":"parted","channel":"#r","nick":"a"} trailing"##,
        ];
        for text in refused {
            assert!(read(text).is_err(), "{text}");
        }
        assert!(read(r##"{"kind":"x","type":"pong"}"##).unwrap_err().to_string().contains("first key"));
    }

    #[test]
    fn transaction_ids_are_short_printable_ascii() {
        assert!(frames::validate_txn("c1-7").is_ok());
        assert!(frames::validate_txn(&"x".repeat(frames::MAX_TXN_BYTES)).is_ok());
        for bad in ["", " ", "a b", "é", "\n"] {
            assert_eq!(frames::validate_txn(bad).unwrap_err().code, ErrorCode::InvalidFrame, "{bad:?}");
        }
        assert!(frames::validate_txn(&"x".repeat(frames::MAX_TXN_BYTES + 1)).is_err());
    }

    #[test]
    fn a_message_event_is_a_flat_object() {
        let ev = ServerEvent::Message(chat(7, 1));
        assert_eq!(
            serde_json::to_value(&ev).unwrap(),
            json!({"type":"message","id":7,"ts":1,"from":"a","target":"#r","text":"hi"})
        );
    }

    #[test]
    fn the_protocol_doc_lists_every_error_code_command_and_frame() {
        let doc = include_str!("../../../docs/protocol.md");
        for code in ErrorCode::ALL {
            assert!(
                doc.contains(&format!("`{}`", code.as_str())),
                "docs/protocol.md lacks {}",
                code.as_str()
            );
        }
        for c in COMMANDS {
            assert!(doc.contains(&format!("`/{}", c.name)), "docs/protocol.md lacks /{}", c.name);
            for alias in c.aliases {
                assert!(doc.contains(&format!("`/{alias}`")), "docs/protocol.md lacks the alias /{alias}");
            }
        }
        for (name, ..) in command::POTATO_COMMANDS.iter().chain(command::CELERY_COMMANDS) {
            assert!(doc.contains(name), "docs/protocol.md lacks the service command {name}");
        }
        for kind in [
            "welcome",
            "message",
            "history",
            "account_changed",
            "notice",
            "error",
            "joined",
            "parted",
            "quit",
            "nick_changed",
            "kicked",
            "banned",
            "unbanned",
            "ban_list",
            "registration",
            "mode_changed",
            "topic",
            "members",
            "away",
            "invited",
            "oper_status",
            "kline_list",
            "audit_log",
            "stats",
            "whois",
            "list",
            "pong",
            "auth",
            "command",
            "run",
            "ping",
        ] {
            assert!(
                doc.contains(&format!("{{\"type\":\"{kind}\"")),
                "docs/protocol.md has no example of {kind}"
            );
        }
    }

    #[test]
    fn every_error_code_round_trips_with_its_wire_name() {
        for &code in ErrorCode::ALL {
            let v = serde_json::to_value(code).unwrap();
            assert_eq!(v, json!(code.as_str()));
            assert_eq!(serde_json::from_value::<ErrorCode>(v).unwrap(), code);
        }
    }

    #[test]
    fn client_frames_match_the_documented_contract() {
        let cases = [
            (
                json!({"type":"auth","token":"t"}),
                ClientFrame::Auth { token: Some("t".into()), nick: None, resume: None },
            ),
            (
                json!({"type":"auth","nick":"bob"}),
                ClientFrame::Auth { token: None, nick: Some("bob".into()), resume: None },
            ),
            (
                json!({"type":"message","target":"#r","text":"hi"}),
                ClientFrame::Message { target: "#r".into(), text: "hi".into(), txn: None },
            ),
            (
                json!({"type":"command","line":"/join #rust"}),
                ClientFrame::Command { line: "/join #rust".into(), target: None, txn: None },
            ),
            (
                json!({"type":"auth","nick":"bob","resume":"s"}),
                ClientFrame::Auth { token: None, nick: Some("bob".into()), resume: Some("s".into()) },
            ),
            (
                json!({"type":"message","target":"#r","text":"hi","txn":"c1-7"}),
                ClientFrame::Message { target: "#r".into(), text: "hi".into(), txn: Some("c1-7".into()) },
            ),
            (
                json!({"type":"command","line":"/me hi","target":"#r"}),
                ClientFrame::Command { line: "/me hi".into(), target: Some("#r".into()), txn: None },
            ),
            (
                json!({"type":"run","command":{"command":"join","channel":"#rust","key":null}}),
                ClientFrame::Run { command: Command::Join { channel: "#rust".into(), key: None }, txn: None },
            ),
            (
                json!({"type":"run","command":{"command":"potato","request":{"action":"identify","nick":"alice","password":"a \"b\" ü"}},"txn":"t-1"}),
                ClientFrame::Run {
                    command: Command::Potato {
                        request: PotatoRequest::Identify {
                            nick: Some("alice".into()),
                            password: Password("a \"b\" ü".into()),
                        },
                    },
                    txn: Some("t-1".into()),
                },
            ),
            (json!({"type":"ping","id":3}), ClientFrame::Ping { id: Some(3) }),
            (
                json!({"type":"history","target":"#r","before":99,"limit":20}),
                ClientFrame::History { target: "#r".into(), before: Some(99), limit: Some(20) },
            ),
            (
                json!({"type":"history","target":"bob"}),
                ClientFrame::History { target: "bob".into(), before: None, limit: None },
            ),
        ];
        for (value, frame) in cases {
            assert_eq!(ClientFrame::from_json(&value.to_string()).unwrap(), frame);
            assert_eq!(serde_json::to_value(&frame).unwrap(), value);
        }
    }

    #[test]
    fn malformed_client_frames_are_invalid_frame_errors() {
        for text in [
            "",
            "null",
            "[]",
            "{}",
            r#"{"type":"nope"}"#,
            r##"{"type":"message","target":"#r"}"##,
            "{\"type\":\"auth\",",
            r#"{"type":"message","target":1,"text":"x"}"#,
        ] {
            assert_eq!(ClientFrame::from_json(text).unwrap_err().code, ErrorCode::InvalidFrame, "{text}");
        }
    }

    proptest! {
        #[test]
        fn client_frame_parsing_never_panics(text in "\\PC*") {
            let _ = ClientFrame::from_json(&text);
        }

        #[test]
        fn messages_round_trip_for_any_text(target in "\\PC{0,20}", text in "\\PC{0,200}") {
            let frame = ClientFrame::Message { target, text, txn: None };
            let json = serde_json::to_string(&frame).unwrap();
            prop_assert_eq!(ClientFrame::from_json(&json).unwrap(), frame);
        }
    }
}

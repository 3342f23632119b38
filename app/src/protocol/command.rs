//! Slash commands: the [`Command`] enum and [`COMMANDS`], the one table of them (names,
//! aliases, usage, help, parser), shared by the server (which parses typed lines and applies
//! commands) and the UI (which suggests them as the user types and sends its own as data). The
//! parser itself is in `parse`, left out of the browser build.
//!
//! A line is `/name arg arg… [rest of line]`. Where a command takes a channel first, the
//! channel may be left out and the context — the channel the user is looking at — is used.

use serde::{Deserialize, Serialize};

#[cfg(not(target_arch = "wasm32"))]
mod parse;

/// A parsed slash command. Imperative names; the server answers with past-tense events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Join {
        channel: String,
        key: Option<String>,
    },
    Part {
        channel: String,
        reason: Option<String>,
    },
    Msg {
        target: String,
        text: String,
    },
    Me {
        target: String,
        text: String,
    },
    Nick {
        nick: String,
    },
    /// `topic: None` asks for the topic; `Some("")` clears it.
    Topic {
        channel: String,
        topic: Option<String>,
    },
    Kick {
        channel: String,
        nick: String,
        reason: Option<String>,
    },
    Ban {
        channel: String,
        mask: String,
    },
    Unban {
        channel: String,
        mask: String,
    },
    /// Asks for a channel's bans (also `/mode #channel +b` with no mask).
    Bans {
        channel: String,
    },
    Op {
        channel: String,
        nick: String,
    },
    Deop {
        channel: String,
        nick: String,
    },
    Voice {
        channel: String,
        nick: String,
    },
    Devoice {
        channel: String,
        nick: String,
    },
    /// `modes: None` asks for the channel's modes.
    Mode {
        channel: String,
        modes: Option<String>,
        args: Vec<String>,
    },
    Invite {
        nick: String,
        channel: String,
    },
    /// `message: None` marks you as back.
    Away {
        message: Option<String>,
    },
    Whois {
        nick: String,
    },
    List,
    Names {
        channel: String,
    },
    Quit {
        reason: Option<String>,
    },
    /// `/potato …`, or `/msg Potato …`: the nickname service.
    Potato {
        request: PotatoRequest,
    },
    /// `/celery …`, or `/msg Celery …`: the channel service.
    Celery {
        request: CeleryRequest,
    },
    /// A server operator's command.
    Oper {
        request: OperRequest,
    },
}

/// A password as typed. Its `Debug` form hides it, so it never reaches a log by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A request to Potato, the nickname service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum PotatoRequest {
    /// Registers your current nick (`nick`, when given, must be it).
    Register {
        nick: Option<String>,
        password: Password,
        email: String,
    },
    /// Logs you into an account (your current nick's when `nick` is left out).
    Identify {
        nick: Option<String>,
        password: Password,
    },
    /// Disconnects whoever is using your registered nick.
    Disconnect {
        nick: String,
        password: Password,
    },
    /// About an account (your own when `nick` is left out).
    Info {
        nick: Option<String>,
    },
    /// Changes your account's password.
    Passwd {
        old: Password,
        new: Password,
    },
    /// Deletes your account.
    Drop {
        password: Password,
    },
    Help,
}

/// A request to Celery, the channel service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum CeleryRequest {
    /// Registers a channel you are an operator of; you become its founder.
    Register {
        channel: String,
    },
    /// Adds an account to the channel's op list.
    Op {
        channel: String,
        account: String,
    },
    /// Removes an account from the op list.
    Deop {
        channel: String,
        account: String,
    },
    /// Lets an account on the op list change the op list too (founder only).
    Trust {
        channel: String,
        account: String,
    },
    /// Takes that right away again (founder only).
    Untrust {
        channel: String,
        account: String,
    },
    /// About a registered channel.
    Info {
        channel: String,
    },
    /// Unregisters a channel (founder only).
    Drop {
        channel: String,
    },
    Help,
}

/// A server operator's command (`CHATTR_OPERS`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum OperRequest {
    /// Disconnects someone from the server.
    Kill { nick: String, reason: Option<String> },
    /// Bans a mask from the whole server — an account (`potato:bob`, `app:bob`), an address
    /// or network (`203.0.113.7`, `203.0.113.0/24`), a `nick!user@host` mask (the host a cloak
    /// or an address; `evil*` reads `evil*!*@*`), or the bare nick of someone online (their
    /// address, an IPv6 one's /64) — for `duration_secs` (for good when `None`), and
    /// disconnects the sessions it matches.
    Kline { mask: String, duration_secs: Option<u64>, reason: Option<String> },
    /// Lifts a server ban.
    Unkline { mask: String },
    /// Lists the server bans.
    Klines,
    /// Sends a notice to everyone on the server.
    GlobalNotice { text: String },
    /// Shows the server's figures.
    Stats,
    /// Shows the latest operator actions.
    Audit,
    /// Changes a channel's modes past its rules (an override everyone in the channel
    /// Is told of): ops, voice, bans, `+i`, `+k`, `+l` and the rest, without being in it.
    Samode { channel: String, modes: String, args: Vec<String> },
}

/// Usage and help of one service subcommand.
pub type SubcommandHelp = (&'static str, &'static str, &'static str);

/// Potato's subcommands: name, usage, help.
pub const POTATO_COMMANDS: &[SubcommandHelp] = &[
    ("register", "/potato register [nick] <password> <email>", "Register the nick you are using"),
    ("identify", "/potato identify [nick] <password>", "Log into your account (and take its nick)"),
    ("disconnect", "/potato disconnect <nick> <password>", "Disconnect whoever is using your nick"),
    ("info", "/potato info [nick]", "Show an account"),
    ("passwd", "/potato passwd <old password> <new password>", "Change your password"),
    ("drop", "/potato drop <password>", "Delete your account"),
    ("help", "/potato help", "List Potato's commands"),
];

/// Celery's subcommands: name, usage, help.
pub const CELERY_COMMANDS: &[SubcommandHelp] = &[
    ("register", "/celery register [#channel]", "Register a channel you are op in; you become its founder"),
    ("op", "/celery op [#channel] <account>", "Add an account to the channel's op list"),
    ("deop", "/celery deop [#channel] <account>", "Remove an account from the op list"),
    ("trust", "/celery trust [#channel] <account>", "Let a listed op change the op list (founder)"),
    ("untrust", "/celery untrust [#channel] <account>", "Take that right away (founder)"),
    ("info", "/celery info [#channel]", "Show a registered channel"),
    ("drop", "/celery drop [#channel]", "Unregister a channel (founder)"),
    ("help", "/celery help", "List Celery's commands"),
];

/// One command: its names, usage and help (for error messages, the UI's suggestions and the
/// protocol document's test) and its parser. [`COMMANDS`] is the one list of them.
#[derive(Clone, Copy)]
pub struct CommandHelp {
    pub name: &'static str,
    /// Other spellings the parser takes.
    pub aliases: &'static [&'static str],
    pub usage: &'static str,
    pub help: &'static str,
    /// A server operator's command: suggested to operators only.
    pub oper: bool,
    #[cfg(not(target_arch = "wasm32"))]
    parse: fn(&mut parse::Line<'_>) -> Result<Command, super::ProtocolError>,
}

impl std::fmt::Debug for CommandHelp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandHelp").field("name", &self.name).field("usage", &self.usage).finish()
    }
}

/// A [`CommandHelp`]: name, aliases, usage, help, and the function in [`parse`] that parses
/// its arguments (left out of the browser build, which never parses a line).
macro_rules! command {
    (oper $($rest:tt)*) => {
        CommandHelp { oper: true, ..command!($($rest)*) }
    };
    ($name:literal $(| $alias:literal)*, $usage:literal, $help:literal, $parse:ident) => {
        CommandHelp {
            name: $name,
            aliases: &[$($alias),*],
            usage: $usage,
            help: $help,
            oper: false,
            #[cfg(not(target_arch = "wasm32"))]
            parse: parse::$parse,
        }
    };
}

/// Every command the parser knows, in the order the UI lists them.
pub const COMMANDS: &[CommandHelp] = &[
    command!(
        "join" | "j",
        "/join #channel [key]",
        "Join a channel (created if empty; you become its op)",
        join
    ),
    command!("part" | "leave", "/part [#channel] [reason]", "Leave a channel", part),
    command!(
        "msg" | "query",
        "/msg <nick|#channel> <text>",
        "Send a private message or a message to a channel",
        msg
    ),
    command!("me", "/me <action>", "Describe an action in the current conversation", me),
    command!("nick", "/nick <new nick>", "Change your nick", nick),
    command!("topic", "/topic [#channel] [text | -]", "Show or set the topic; '-' clears it", topic),
    command!("kick", "/kick [#channel] <nick> [reason]", "Remove someone from a channel (ops)", kick),
    command!("ban", "/ban [#channel] <nick|mask>", "Ban a nick or a nick!user@host mask (ops)", ban),
    command!("unban", "/unban [#channel] <nick|mask>", "Lift a ban (ops)", unban),
    command!("bans", "/bans [#channel]", "List a channel's bans", bans),
    command!("op", "/op [#channel] <nick>", "Make someone a channel operator (ops)", op),
    command!("deop", "/deop [#channel] <nick>", "Take operator status away (ops)", deop),
    command!("voice", "/voice [#channel] <nick>", "Let someone speak in a moderated channel (ops)", voice),
    command!("devoice", "/devoice [#channel] <nick>", "Take voice away (ops)", devoice),
    command!(
        "mode",
        "/mode [#channel] [(+|-)modes] [args…]",
        "Show or change modes: m i t k l o v b (ops)",
        mode
    ),
    command!("invite", "/invite <nick> [#channel]", "Invite someone to a channel", invite),
    command!("away", "/away [message]", "Mark yourself away, or back without a message", away),
    command!("whois" | "w", "/whois <nick>", "Show who someone is", whois),
    command!("list", "/list", "List channels", list),
    command!("names", "/names [#channel]", "List a channel's members", names),
    command!("quit", "/quit [reason]", "Disconnect", quit),
    command!(oper "kill", "/kill <nick> [reason]", "Disconnect someone from the server (operators)", kill),
    command!(oper
        "kline" | "gban",
        "/kline <nick|account|address/net|nick!user@host> [duration: 30m, 12h, 7d] [reason]",
        "Ban from the whole server (a nick: their address), disconnecting who it matches (operators)",
        kline
    ),
    command!(oper "unkline" | "ungban", "/unkline <mask>", "Lift a server ban (operators)", unkline),
    command!(oper "klines", "/klines", "List the server bans (operators)", klines),
    command!(oper "gnotice", "/gnotice <text>", "Send a notice to everyone on the server (operators)", gnotice),
    command!(oper "stats", "/stats", "Show the server's figures (operators)", stats),
    command!(oper "audit", "/audit", "Show the latest operator actions (operators)", audit),
    command!(oper
        "samode",
        "/samode [#channel] (+|-)<modes> [args…]",
        "Change a channel's modes past its rules, announced (operators)",
        samode
    ),
    command!(
        "potato" | "ns",
        "/potato <register|identify|disconnect|info|passwd|drop|help> …",
        "Potato, the nickname service: register and identify your nick",
        potato
    ),
    command!(
        "celery" | "cs",
        "/celery <register|op|deop|trust|untrust|info|drop|help> [#channel] …",
        "Celery, the channel service: register a channel and keep its ops",
        celery
    ),
];

/// The nicks of the services, as they sign their replies.
pub const POTATO: &str = "Potato";
pub const CELERY: &str = "Celery";

/// The entry for a command name or alias, case-insensitively.
pub fn help_for(name: &str) -> Option<&'static CommandHelp> {
    let name = name.to_ascii_lowercase();
    COMMANDS.iter().find(|c| c.name == name || c.aliases.contains(&name.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ErrorCode, ProtocolError};

    fn p(line: &str) -> Result<Command, ProtocolError> {
        Command::parse(line, None)
    }

    fn oper(request: OperRequest) -> Command {
        Command::Oper { request }
    }

    #[test]
    fn every_listed_command_parses_with_its_usage_example() {
        let lines = [
            ("/join #rust", Command::Join { channel: "#rust".into(), key: None }),
            ("/join #rust sekrit", Command::Join { channel: "#rust".into(), key: Some("sekrit".into()) }),
            ("/j #rust", Command::Join { channel: "#rust".into(), key: None }),
            (
                "/part #rust bye all",
                Command::Part { channel: "#rust".into(), reason: Some("bye all".into()) },
            ),
            ("/msg bob hi  there", Command::Msg { target: "bob".into(), text: "hi  there".into() }),
            ("/nick alice2", Command::Nick { nick: "alice2".into() }),
            ("/topic #rust", Command::Topic { channel: "#rust".into(), topic: None }),
            (
                "/topic #rust Rust talk",
                Command::Topic { channel: "#rust".into(), topic: Some("Rust talk".into()) },
            ),
            ("/topic #rust -", Command::Topic { channel: "#rust".into(), topic: Some(String::new()) }),
            (
                "/kick #rust bob spam",
                Command::Kick { channel: "#rust".into(), nick: "bob".into(), reason: Some("spam".into()) },
            ),
            ("/ban #rust bob", Command::Ban { channel: "#rust".into(), mask: "bob".into() }),
            ("/unban #rust *!*@x", Command::Unban { channel: "#rust".into(), mask: "*!*@x".into() }),
            ("/bans #rust", Command::Bans { channel: "#rust".into() }),
            ("/op #rust bob", Command::Op { channel: "#rust".into(), nick: "bob".into() }),
            ("/deop #rust bob", Command::Deop { channel: "#rust".into(), nick: "bob".into() }),
            ("/voice #rust bob", Command::Voice { channel: "#rust".into(), nick: "bob".into() }),
            ("/devoice #rust bob", Command::Devoice { channel: "#rust".into(), nick: "bob".into() }),
            ("/mode #rust", Command::Mode { channel: "#rust".into(), modes: None, args: vec![] }),
            (
                "/mode #rust +kl key 10",
                Command::Mode {
                    channel: "#rust".into(),
                    modes: Some("+kl".into()),
                    args: vec!["key".into(), "10".into()],
                },
            ),
            ("/invite bob #rust", Command::Invite { nick: "bob".into(), channel: "#rust".into() }),
            ("/away lunch", Command::Away { message: Some("lunch".into()) }),
            ("/away", Command::Away { message: None }),
            ("/whois bob", Command::Whois { nick: "bob".into() }),
            (
                "/kill bob spamming",
                oper(OperRequest::Kill { nick: "bob".into(), reason: Some("spamming".into()) }),
            ),
            (
                "/kline 203.0.113.0/24 7d open proxy",
                oper(OperRequest::Kline {
                    mask: "203.0.113.0/24".into(),
                    duration_secs: Some(7 * 86_400),
                    reason: Some("open proxy".into()),
                }),
            ),
            (
                "/kline potato:bob spam bot",
                oper(OperRequest::Kline {
                    mask: "potato:bob".into(),
                    duration_secs: None,
                    reason: Some("spam bot".into()),
                }),
            ),
            (
                "/kline *!*@x.cloak 0",
                oper(OperRequest::Kline { mask: "*!*@x.cloak".into(), duration_secs: None, reason: None }),
            ),
            (
                "/gban bob 30m",
                oper(OperRequest::Kline { mask: "bob".into(), duration_secs: Some(1800), reason: None }),
            ),
            ("/unkline potato:bob", oper(OperRequest::Unkline { mask: "potato:bob".into() })),
            ("/klines", oper(OperRequest::Klines)),
            (
                "/gnotice restart at 18:00",
                oper(OperRequest::GlobalNotice { text: "restart at 18:00".into() }),
            ),
            ("/stats", oper(OperRequest::Stats)),
            ("/audit", oper(OperRequest::Audit)),
            (
                "/samode #rust +o root",
                oper(OperRequest::Samode {
                    channel: "#rust".into(),
                    modes: "+o".into(),
                    args: vec!["root".into()],
                }),
            ),
            ("/list", Command::List),
            ("/names #rust", Command::Names { channel: "#rust".into() }),
            ("/quit", Command::Quit { reason: None }),
            ("/QUIT gone", Command::Quit { reason: Some("gone".into()) }),
        ];
        for (line, want) in lines {
            assert_eq!(p(line).as_ref(), Ok(&want), "{line}");
        }
    }

    #[test]
    fn service_commands_parse() {
        let pw = |s: &str| Password(s.into());
        let cases = [
            (
                "/potato register hunter22 a@b.example",
                PotatoRequest::Register { nick: None, password: pw("hunter22"), email: "a@b.example".into() },
            ),
            (
                "/potato REGISTER alice hunter22 a@b.example",
                PotatoRequest::Register {
                    nick: Some("alice".into()),
                    password: pw("hunter22"),
                    email: "a@b.example".into(),
                },
            ),
            (
                "/potato identify alice pw",
                PotatoRequest::Identify { nick: Some("alice".into()), password: pw("pw") },
            ),
            ("/ns identify pw", PotatoRequest::Identify { nick: None, password: pw("pw") }),
            (
                "/potato ghost alice pw",
                PotatoRequest::Disconnect { nick: "alice".into(), password: pw("pw") },
            ),
            ("/potato info", PotatoRequest::Info { nick: None }),
            ("/potato passwd a b", PotatoRequest::Passwd { old: pw("a"), new: pw("b") }),
            ("/potato drop pw", PotatoRequest::Drop { password: pw("pw") }),
            ("/potato", PotatoRequest::Help),
        ];
        for (line, want) in cases {
            assert_eq!(p(line), Ok(Command::Potato { request: want }), "{line}");
        }
        assert_eq!(
            Command::parse("/celery op bob", Some("#rust")),
            Ok(Command::Celery {
                request: CeleryRequest::Op { channel: "#rust".into(), account: "bob".into() }
            })
        );
        assert_eq!(
            p("/cs register #rust"),
            Ok(Command::Celery { request: CeleryRequest::Register { channel: "#rust".into() } })
        );
        assert_eq!(
            Command::for_service("potato", "identify alice pw", None),
            Some(Ok(Command::Potato {
                request: PotatoRequest::Identify { nick: Some("alice".into()), password: pw("pw") }
            }))
        );
        assert_eq!(Command::for_service("bob", "hi", None), None);
        for line in [
            "/potato register onlyone",
            "/potato identify",
            "/potato drop",
            "/celery op #c",
            "/celery register",
        ] {
            assert_eq!(p(line).unwrap_err().code, ErrorCode::BadArguments, "{line}");
        }
        assert_eq!(p("/potato frob").unwrap_err().code, ErrorCode::UnknownCommand);
        assert_eq!(p("/celery frob #c").unwrap_err().code, ErrorCode::UnknownCommand);
    }

    #[test]
    fn passwords_never_show_in_debug_output() {
        let cmd = p("/potato identify alice s3cr3t-pw").unwrap();
        assert!(!format!("{cmd:?}").contains("s3cr3t"));
    }

    #[test]
    fn a_potato_password_may_be_quoted_to_hold_spaces_and_quotes() {
        let identify = |line: &str| match Command::parse(line, None) {
            Ok(Command::Potato { request: PotatoRequest::Identify { nick, password } }) => {
                Ok((nick, password.0))
            }
            other => Err(other),
        };
        let some = |nick: &str, pw: &str| Ok((Some(nick.to_owned()), pw.to_owned()));
        assert_eq!(identify(r#"/potato identify alice "alice secret""#), some("alice", "alice secret"));
        assert_eq!(
            identify(r#"/potato identify alice "say \"hi\" \\o/ ünïcødé""#),
            some("alice", r#"say "hi" \o/ ünïcødé"#)
        );
        assert_eq!(
            identify(r#"/potato identify "alice" pass"word"#),
            some("alice", r#"pass"word"#),
            "quotes inside a word are plain"
        );
        assert_eq!(identify("/potato identify alice plain-word"), some("alice", "plain-word"));
        assert_eq!(identify(r#"/potato identify """#), Ok((None, String::new())));
        for bad in [
            r#"/potato identify alice "open"#,
            r#"/potato identify alice "a"b"#,
            r#"/potato identify alice "x\"#,
        ] {
            assert_eq!(Command::parse(bad, None).unwrap_err().code, ErrorCode::BadArguments, "{bad}");
        }
        let register = Command::parse(r#"/potato register "two words" me@example.com"#, None);
        assert_eq!(
            register,
            Ok(Command::Potato {
                request: PotatoRequest::Register {
                    nick: None,
                    password: Password("two words".into()),
                    email: "me@example.com".into()
                }
            })
        );
        // Too many words stays a usage error, quoted or not.
        assert!(Command::parse(r#"/potato identify alice "a b" c"#, None).is_err());
    }

    #[test]
    fn a_left_out_channel_comes_from_the_context() {
        let ctx = Some("#rust");
        assert_eq!(
            Command::parse("/kick bob", ctx),
            Ok(Command::Kick { channel: "#rust".into(), nick: "bob".into(), reason: None })
        );
        assert_eq!(Command::parse("/part", ctx), Ok(Command::Part { channel: "#rust".into(), reason: None }));
        assert_eq!(Command::parse("/bans", ctx), Ok(Command::Bans { channel: "#rust".into() }));
        assert_eq!(
            Command::parse("/me waves", ctx),
            Ok(Command::Me { target: "#rust".into(), text: "waves".into() })
        );
        assert_eq!(
            Command::parse("/me waves", Some("bob")),
            Ok(Command::Me { target: "bob".into(), text: "waves".into() })
        );
        // A nick is not a channel context.
        assert_eq!(Command::parse("/op bob", Some("carol")).unwrap_err().code, ErrorCode::BadArguments);
    }

    #[test]
    fn bad_lines_get_stable_codes() {
        assert_eq!(p("hello").unwrap_err().code, ErrorCode::UnknownCommand);
        assert_eq!(p("/").unwrap_err().code, ErrorCode::UnknownCommand);
        assert_eq!(p("/frobnicate").unwrap_err().code, ErrorCode::UnknownCommand);
        assert_eq!(p("/join").unwrap_err().code, ErrorCode::BadArguments);
        assert_eq!(p("/msg bob").unwrap_err().code, ErrorCode::BadArguments);
        assert_eq!(p("/me hi").unwrap_err().code, ErrorCode::BadArguments);
        for line in [
            "/op #c bob extra",
            "/nick two words",
            "/join #a key extra",
            "/whois a b",
            "/list x",
            "/names #a b",
            "/invite a #b c",
        ] {
            assert_eq!(p(line).unwrap_err().code, ErrorCode::BadArguments, "{line}");
        }
        assert_eq!(p("/mode #c mt").unwrap_err().code, ErrorCode::BadArguments);
        assert!(p("/kick").unwrap_err().message.contains("/kick [#channel] <nick> [reason]"));
    }

    #[test]
    fn every_command_has_help() {
        for c in COMMANDS {
            assert!(c.usage.starts_with(&format!("/{}", c.name)), "{}", c.name);
            assert!(help_for(c.name).is_some());
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parse_never_panics(line in "\\PC*", ctx in proptest::option::of("\\PC{0,12}")) {
                let _ = Command::parse(&line, ctx.as_deref());
            }

            #[test]
            fn parse_never_panics_on_command_like_lines(
                name in prop::sample::select(COMMANDS.iter().map(|c| c.name).collect::<Vec<_>>()),
                rest in "[ #a-z+\\-*!@\u{202e}\t]{0,40}",
            ) {
                let _ = Command::parse(&format!("/{name} {rest}"), Some("#ctx"));
            }
        }
    }

    #[test]
    fn a_kline_duration_typed_wrong_is_refused_not_taken_for_good() {
        for line in
            ["/kline bob 1y spam", "/kline bob 30min", "/kline bob 99999999999999999w", "/kline bob 11000d"]
        {
            assert_eq!(p(line).unwrap_err().code, ErrorCode::BadArguments, "{line}");
        }
        assert!(matches!(
            p("/kline bob perm spam"),
            Ok(Command::Oper { request: OperRequest::Kline { duration_secs: None, .. } })
        ));
    }
}
